"""HTTP API and the console's page."""
