"""A simulated site on loopback for trying Vigil out."""
