"""GB/T 26875.3-2011 frames: ``@@``, serial number, version, time label, source and
destination addresses, data length, command, application data, a sum checksum, ``##``.

Multi-byte numbers are low byte first. The checksum is the sum, mod 256, of every byte from
the serial number to the end of the application data. ``Splitter`` finds frames in a TCP
stream (garbage between them is skipped and counted); ``decode`` takes one UDP datagram.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

START, END = b"@@", b"##"
HEADER = 27
"""Bytes before the application data: start 2, serial 2, version 2, time 6, source 6,
destination 6, length 2, command 1."""
MAX_DATA = 1024
"""The longest application data the standard allows."""
SMALLEST = HEADER + 3
"""A frame without application data."""


class Command(enum.IntEnum):
    CONTROL = 1
    SEND = 2
    CONFIRM = 3
    """确认: the frame with this serial number was taken."""
    REQUEST = 4
    ANSWER = 5
    DENY = 6
    """否认: the frame was refused."""


class FrameError(ValueError):
    """A frame that cannot be taken; ``serial`` and ``source`` when its header was readable
    (so it can be 否认-ed)."""

    def __init__(self, reason: str, serial: int | None = None, source: bytes | None = None,
                 destination: bytes | None = None):
        super().__init__(reason)
        self.reason, self.serial, self.source, self.destination = (reason, serial, source,
                                                                    destination)


@dataclass(frozen=True)
class Frame:
    serial: int
    command: int
    data: bytes = b""
    source: bytes = bytes(6)
    destination: bytes = bytes(6)
    sent: bytes = bytes(6)
    """The time label as sent: sec, min, hour, day, month, year - 2000."""
    version: tuple[int, int] = (1, 1)

    @property
    def sent_at(self) -> datetime | None:
        """The time label as a (site-local) time; None when it is no time."""
        return time_label(self.sent)

    def encode(self) -> bytes:
        body = (self.serial.to_bytes(2, "little") + bytes(self.version) + self.sent +
                self.source + self.destination + len(self.data).to_bytes(2, "little") +
                bytes([self.command]) + self.data)
        return START + body + bytes([checksum(body)]) + END

    def reply(self, command: Command, at: datetime) -> Frame:
        """确认 or 否认 of this frame: its serial number, addressed back to its source."""
        return replace(self, command=int(command), data=b"", source=self.destination,
                       destination=self.source, sent=label_of(at))


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def time_label(raw: bytes) -> datetime | None:
    sec, minute, hour, day, month, year = raw
    try:
        return datetime(2000 + year, month, day, hour, minute, sec)
    except ValueError:
        return None


def label_of(at: datetime) -> bytes:
    return bytes([at.second, at.minute, at.hour, at.day, at.month, at.year - 2000])


def decode(frame: bytes) -> Frame:
    """One whole frame (a UDP datagram); FrameError says what is wrong with it."""
    if frame[:2] != START:
        raise FrameError("does not start with @@")
    if len(frame) < HEADER:
        raise FrameError(f"truncated: {len(frame)} bytes, a frame has at least {SMALLEST}")
    serial = int.from_bytes(frame[2:4], "little")
    source, destination = frame[12:18], frame[18:24]
    length = int.from_bytes(frame[24:26], "little")
    if length > MAX_DATA:
        raise FrameError(f"data length {length} is over {MAX_DATA}", serial, source,
                         destination)
    if len(frame) < SMALLEST + length:
        raise FrameError(f"truncated: data length {length} needs {SMALLEST + length} bytes, "
                         f"got {len(frame)}", serial, source, destination)
    if len(frame) > SMALLEST + length:
        raise FrameError(f"{len(frame) - SMALLEST - length} bytes after the frame's end",
                         serial, source, destination)
    if frame[-2:] != END:
        raise FrameError("does not end with ##", serial, source, destination)
    body = frame[2:HEADER + length]
    if checksum(body) != frame[HEADER + length]:
        raise FrameError(f"checksum 0x{frame[HEADER + length]:02X}, the bytes sum to "
                         f"0x{checksum(body):02X}", serial, source, destination)
    return Frame(serial, frame[26], frame[HEADER:HEADER + length], source, destination,
                 frame[6:12], (frame[4], frame[5]))


class Splitter:
    """Frames out of a byte stream. ``feed`` gives each frame found, or the FrameError of one
    that is bad; bytes before a ``@@`` are skipped (``skipped`` counts them), and a bad frame
    is passed over one byte at a time, so the next good one is still found. A false start
    that announces more data than comes is given up by ``resync`` (the receiver calls it when
    the line has been quiet)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skipped = 0

    def feed(self, chunk: bytes) -> list[Frame | FrameError]:
        self.buffer += chunk
        out: list[Frame | FrameError] = []
        while True:
            start = self.buffer.find(START)
            if start < 0:
                keep = 1 if self.buffer.endswith(b"@") else 0   # half a start
                self._skip(len(self.buffer) - keep)
                return out
            self._skip(start)
            if len(self.buffer) < HEADER:
                return out
            length = int.from_bytes(self.buffer[24:26], "little")
            whole = SMALLEST + length
            if length <= MAX_DATA and len(self.buffer) < whole:
                return out
            try:
                out.append(decode(bytes(self.buffer[:whole])))
            except FrameError as err:
                out.append(err)
                self._skip(1)     # look for the next start inside it
                continue
            del self.buffer[:whole]

    def resync(self) -> list[Frame | FrameError]:
        """Nothing more came for a while, and what waits is no whole frame: its ``@@`` was
        not a start (a stray ``@`` before the real one): look again one byte on."""
        if not self.buffer:
            return []
        self._skip(1)
        return self.feed(b"")

    @property
    def waiting(self) -> int:
        """Bytes held for a frame not yet whole."""
        return len(self.buffer)

    def _skip(self, n: int) -> None:
        if n > 0:
            self.skipped += n
            del self.buffer[:n]
