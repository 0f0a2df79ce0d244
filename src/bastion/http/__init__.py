"""Transport: routes, schemas, dependencies, the WebSocket protocol, error rendering."""
