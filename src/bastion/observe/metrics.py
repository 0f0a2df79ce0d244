"""Prometheus metrics, on prometheus-client's default registry.

Every family is declared here, once, so the exposition at ``/metrics`` lists them all
(other modules may add their own to the same default registry). Labels are bounded:
routes are templates, statuses are numbers, reasons are short codes — never ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "bastion_http_requests", "HTTP requests served.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bastion_http_request_duration_seconds",
    "Time to serve an HTTP request.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
AUTH_ATTEMPTS = Counter(
    "bastion_auth_attempts",
    "Authentication attempts (logins, token requests) by outcome and reason.",
    ["outcome", "reason"],
)
AUTHZ_DENIALS = Counter(
    "bastion_authz_denials",
    "Authorization denials (403 and policy denials), by reason and permission.",
    ["reason", "permission"],
)
WEBSOCKETS_ACTIVE = Gauge("bastion_websocket_connections", "Open WebSocket connections.")
MESSAGES_SENT = Counter("bastion_messages_sent", "Messages stored by a send.")
MESSAGES_DELIVERED = Counter(
    "bastion_messages_delivered", "Message events written to WebSocket connections."
)
DELIVERY_LATENCY = Histogram(
    "bastion_message_delivery_seconds",
    "From a message event's creation to its write on a WebSocket.",
    buckets=_LATENCY_BUCKETS,
)
DB_QUERY_LATENCY = Histogram(
    "bastion_db_query_duration_seconds",
    "Database statement execution time.",
    buckets=_LATENCY_BUCKETS,
)
DB_POOL_IN_USE = Gauge("bastion_db_pool_connections_in_use", "Pooled connections checked out.")
DB_POOL_SIZE = Gauge("bastion_db_pool_size", "Connections the pool keeps.")
EVENT_LOOP_LAG = Gauge(
    "bastion_event_loop_lag_seconds", "How late the event loop ran a timer (last sample)."
)
SECURITY_EVENTS = Counter(
    "bastion_security_events",
    "Security events emitted, by action and outcome.",
    ["action", "outcome"],
)
AUDIT_APPENDS = Counter("bastion_audit_appends", "Records appended to the audit log.")
AUDIT_FAILURES = Counter("bastion_audit_failures", "Events the audit log could not record.")
ALERTS_FIRING = Gauge(
    "bastion_alert_firing", "1 while an alert rule is firing, else 0.", ["rule", "severity"]
)
ALERTS_FIRED = Counter(
    "bastion_alerts_fired", "Alert notifications sent, by rule.", ["rule", "severity"]
)
NOTIFY_FAILURES = Counter(
    "bastion_alert_notify_failures",
    "Alert notifications that failed after retries.",
    ["notifier"],
)
SIEM_DELIVERED = Counter("bastion_siem_delivered", "Events delivered to a SIEM.", ["target"])
SIEM_DROPPED = Counter(
    "bastion_siem_dropped", "Events dropped because a SIEM queue overflowed.", ["target"]
)
SIEM_QUEUE = Gauge("bastion_siem_queue_depth", "Events waiting for a SIEM.", ["target"])

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_TIME_CHARS = 10


def id_time(prefixed_id: str) -> float:
    """The creation time (Unix seconds) carried by a ULID-based id such as ``evt_…``."""
    ulid = prefixed_id.rpartition("_")[2]
    millis = 0
    for char in ulid[:_ULID_TIME_CHARS]:
        millis = millis * 32 + _CROCKFORD.index(char)
    return millis / 1000


def message_delivered(event_id: str, now: float) -> None:
    """Count one message event written to a socket, and how long it took since creation."""
    MESSAGES_DELIVERED.inc()
    DELIVERY_LATENCY.observe(max(0.0, now - id_time(event_id)))


def total(counter: Counter) -> float:
    """The sum of a counter over all its label values."""
    return sum(
        sample.value
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )
