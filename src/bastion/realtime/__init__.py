"""Event fan-out to live connections: a broker interface and its implementations."""
