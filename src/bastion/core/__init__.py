"""Settings, errors, ids and clock: the leaf layer, free of I/O."""
