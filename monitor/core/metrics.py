"""The daemon's own figures in Prometheus format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.poll_latency = Histogram(
            "vigil_poll_latency_seconds", "Time from poll start to decoded reply", ["device"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.poll_failures = Counter("vigil_poll_failures_total", "Failed polls", ["device"],
                                     registry=r)
        self.readings = Counter("vigil_readings_total", "Readings accepted", registry=r)
        self.device_up = Gauge("vigil_device_up", "1 when the device answers", ["device"],
                               registry=r)
        self.outbox_bytes = Gauge("vigil_outbox_bytes", "Line protocol waiting for the sink",
                                  registry=r)
        self.outbox_lines = Gauge("vigil_outbox_lines", "Lines waiting for the sink", registry=r)
        self.store_queued = Gauge("vigil_store_queued",
                                  "Readings and operations waiting in memory for a commit",
                                  ["kind"], registry=r)
        self.outbox_dropped = Counter("vigil_outbox_dropped_lines_total",
                                      "Lines dropped because the outbox hit its bounds",
                                      registry=r)
        self.sink_lag = Gauge("vigil_sink_lag_seconds", "Age of the oldest unsent batch",
                              registry=r)
        self.sink_written = Gauge("vigil_sink_written_lines",
                                  "Lines the sink delivered since start", registry=r)
        self.push_messages = Gauge("vigil_push_messages",
                                   "Messages each push source received, by outcome",
                                   ["source", "outcome"], registry=r)
        self.bus_published = Gauge("vigil_bus_events_published",
                                   "Events published on the bus since start", registry=r)
        self.bus_errors = Counter("vigil_bus_subscriber_errors_total",
                                  "Events a bus subscriber failed on", ["subscriber"],
                                  registry=r)
        self.bus_dropped = Counter("vigil_bus_dropped_events_total",
                                   "Events dropped because a subscriber's queue was full",
                                   ["subscriber"], registry=r)
        self.task_restarts = Counter("vigil_task_restarts_total",
                                     "Background tasks restarted after they died", ["task"],
                                     registry=r)
        self.timers_pending = Gauge("vigil_timers_pending", "Durable timers armed", registry=r)
        self.alarms_active = Gauge("vigil_alarms_active", "Active alarms", ["severity"],
                                   registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
