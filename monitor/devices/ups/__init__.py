"""The UPS: NUT's status vocabulary (``status``), the class (``kind``) and the power topology
it brings (``power``)."""
