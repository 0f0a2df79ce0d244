"""Rate limiting: policies as data, counters in a `limits` store, penalties and shedding."""
