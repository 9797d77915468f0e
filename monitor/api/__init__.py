"""HTTP API and status page."""
