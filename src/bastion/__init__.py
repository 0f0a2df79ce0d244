"""Bastion: a self-hostable, secure-by-design in-app chat API server."""

__version__ = "0.1.0"
