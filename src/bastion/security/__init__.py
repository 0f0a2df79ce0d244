"""The reusable API-security layer: OAuth 2.0 tokens, principals, secrets, keys.

Nothing here knows about chat: it takes plain data and declares what it needs from
storage as ``Protocol``s that the composition root wires to ``bastion.store``.
"""
