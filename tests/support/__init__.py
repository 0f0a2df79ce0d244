"""Test helpers: a real server in a thread, tenants, tokens."""
