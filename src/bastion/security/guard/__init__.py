"""Pure ASGI guards that run before any routing or parsing."""
