"""The SDK's version, sent in the User-Agent of every request."""

__version__ = "1.1.0"
