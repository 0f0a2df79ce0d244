"""The chat domain: apps, users, channels, members, messages, reactions, receipts."""
