"""Observability: structured logs (metrics, baselines and alerts plug in here)."""
