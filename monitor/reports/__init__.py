"""One report machinery (``documents``: HTML from ``templates``, CSV, PDF) for every export:
the incident report and drill comparison (``incident``), the alarm-system review."""
