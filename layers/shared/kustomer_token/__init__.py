"""Sign website visitors into Kustomer chat: the shared package of the token service."""

__version__ = "0.1.0"
