"""The device classes (``base``: the interface and its registry): plain boxes (``plain``) and
the UPS with the power topology it brings (``ups``)."""
