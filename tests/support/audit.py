"""Make the audit log refuse inserts (and undo it), to test fail-closed behaviour."""

from __future__ import annotations


def block_audit_inserts(url: str) -> list[str]:
    """Statements making audit inserts fail while every read still works."""
    if url.startswith("postgresql"):
        return [
            "CREATE FUNCTION audit_log_blocked() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$",
            "CREATE TRIGGER audit_log_blocked BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_blocked()",
        ]
    return [
        "CREATE TRIGGER audit_log_blocked BEFORE INSERT ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"
    ]


def unblock_audit_inserts(url: str) -> list[str]:
    """Statements undoing ``block_audit_inserts``."""
    if url.startswith("postgresql"):
        return [
            "DROP TRIGGER audit_log_blocked ON audit_log",
            "DROP FUNCTION audit_log_blocked()",
        ]
    return ["DROP TRIGGER audit_log_blocked"]
