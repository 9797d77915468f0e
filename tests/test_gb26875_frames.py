"""GB/T 26875.3 frames and application data, on published frames whose checksums were
recomputed: a component's fire alarm, an operation at the transmission device, a frame with
one byte of data; and every way a frame can be wrong."""

from __future__ import annotations

from datetime import datetime

import pytest

from drivers.gb26875.data import ComponentState, DataError, Operation, Unknown, decode_data
from drivers.gb26875.frame import Command, Frame, FrameError, Splitter, decode

FIRE = bytes.fromhex(
    "4040 0000 0101 180d11160a14 000000000000 060504030201 3000 02"
    "02 01 01 03 00 d9000600 0200 a3c1c7f8a3b1b2e3dfc8b2b8d7dfc0c8" + "00" * 15 +
    "301213010814 68 2323")
"""Type 2: system 1 (type 1, address 3), component d9000600 in 火警, "Ａ区１层呷哺走廊",
at 2020-08-01 19:18:48; checksum 0x68."""
OPERATION = bytes.fromhex("4040 3113 1000 160F11030316 000000000000 C0A801046D1D 0A00 02 "
                          "18 01 0200 160F11030316 16 2323")
"""Type 24, one object; checksum 0x16."""
ONE_BYTE = bytes.fromhex("4040 F809 1000 081E09030316 000000000000 C0A801046D1D 0100 02 16 "
                         "6C 2323")
"""Command 2 with a single data byte; checksum 0x6C."""


def test_a_components_fire_alarm_is_decoded() -> None:
    frame = decode(FIRE)
    assert (frame.serial, frame.command, frame.version) == (0, Command.SEND, (1, 1))
    assert frame.source == bytes(6) and frame.destination == bytes.fromhex("060504030201")
    assert frame.sent_at == datetime(2020, 10, 22, 17, 13, 24)
    [fire] = decode_data(frame.data)
    assert isinstance(fire, ComponentState)
    assert (fire.system_type, fire.system, fire.component_type) == (1, 3, 0)
    assert fire.component == 0x000600D9
    assert fire.status == {"fire"}
    assert fire.description == "Ａ区１层呷哺走廊"
    assert fire.at == datetime(2020, 8, 1, 19, 18, 48)


def test_an_operation_and_a_one_byte_frame_are_decoded() -> None:
    [op] = decode_data(decode(OPERATION).data)
    assert isinstance(op, Operation) and op.system is None
    assert (op.operation, op.operator) == ({"silence"}, 0)
    assert op.at == datetime(2022, 3, 3, 17, 15, 22)
    frame = decode(ONE_BYTE)
    assert frame.serial == 0x09F8 and frame.data == b"\x16"
    assert decode_data(frame.data) == [Unknown(0x16, b"\x16")]   # kept, never dropped


def test_a_frame_encodes_to_its_bytes_and_is_confirmed_with_its_serial() -> None:
    frame = decode(OPERATION)
    assert frame.encode() == OPERATION
    at = datetime(2026, 12, 3, 18, 5, 9)
    ack = decode(frame.reply(Command.CONFIRM, at).encode())
    assert (ack.serial, ack.command, ack.data) == (frame.serial, Command.CONFIRM, b"")
    assert (ack.source, ack.destination) == (frame.destination, frame.source)
    assert ack.sent_at == at


def damaged(frame: bytes, at: int, value: int) -> bytes:
    return frame[:at] + bytes([value]) + frame[at + 1:]


@pytest.mark.parametrize(("frame", "says"), [
    (damaged(OPERATION, len(OPERATION) - 3, 0x30), "checksum 0x30, the bytes sum to 0x16"),
    (OPERATION[:-1], "truncated"),
    (OPERATION[:20], "truncated"),
    (OPERATION[:-2] + b"#!", "does not end with ##"),
    (OPERATION + b"\0", "1 bytes after the frame's end"),
    (damaged(OPERATION, 25, 0x05), "data length 1290 is over 1024"),
    (b"garbage" + OPERATION, "does not start with @@")])
def test_a_bad_frame_says_what_is_wrong(frame: bytes, says: str) -> None:
    with pytest.raises(FrameError) as info:
        decode(frame)
    assert says in info.value.reason


def test_a_bad_frame_can_be_denied_by_its_serial() -> None:
    with pytest.raises(FrameError) as info:
        decode(damaged(OPERATION, len(OPERATION) - 3, 0x30))
    assert info.value.serial == 0x1331 and info.value.source == bytes(6)


def test_the_stream_is_split_into_frames_past_garbage_and_bad_frames() -> None:
    splitter = Splitter()
    bad = damaged(FIRE, len(FIRE) - 3, 0x00)
    stream = b"\xff\x00noise@" + OPERATION + bad + b"##@@" + FIRE
    got: list[Frame | FrameError] = []
    for i in range(0, len(stream), 7):                 # as TCP may cut it
        got += splitter.feed(stream[i:i + 7])
    while splitter.waiting:                            # the line goes quiet
        got += splitter.resync()
    assert [x for x in got if isinstance(x, Frame)] == [decode(OPERATION), decode(FIRE)]
    assert "checksum 0x00, the bytes sum to 0x68" in [
        x.reason for x in got if isinstance(x, FrameError)]
    assert splitter.skipped > 0


def test_the_stream_holds_half_a_frame_until_the_rest_comes() -> None:
    splitter = Splitter()
    assert splitter.feed(FIRE[:40]) == [] and splitter.waiting == 40
    assert splitter.feed(FIRE[40:]) == [decode(FIRE)]


def test_data_that_does_not_fit_its_count_is_refused() -> None:
    with pytest.raises(DataError, match="type 24 with 2 objects needs 18 bytes, got 10"):
        decode_data(b"\x18\x02" + bytes.fromhex("0200160F11030316"))


def test_a_stray_at_sign_before_a_frame_is_given_up_when_the_line_goes_quiet() -> None:
    splitter = Splitter()
    got = splitter.feed(b"@" + OPERATION)      # "@@@": the first start is a false one
    if not got:                                # it announced more than came: wait, then
        got = splitter.resync()                # look one byte on
    assert [x for x in got if isinstance(x, Frame)] == [decode(OPERATION)]
