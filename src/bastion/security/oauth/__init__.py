"""OAuth 2.0: one module per RFC, a framework-free core behind ``server.py``."""
