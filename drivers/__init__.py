"""Protocol drivers; each registers itself by its config ``type``."""
