"""The tamper-evident audit log: a hash chain in the database, signed checkpoints, verify.

Modelled on CloudTrail log-file integrity (hash-chained records, periodic signed
digests, ``validate-logs``) and Vault audit devices (fail closed, identifiers HMAC'd).
"""
