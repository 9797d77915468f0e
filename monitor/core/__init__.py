"""The services every part attaches to: the context (``context``), the event bus, durable
timers, the store (one SQLite file, one writer) and its sink to InfluxDB, the action runner,
the supervisor, metrics, the part protocol, and the model of readings and state."""
