"""The audit log, request-log addresses, alert notifiers, SIEM targets and monitoring."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.observe import metrics as metric_families
from bastion.observe import system as system_metrics
from bastion.observe.alerts import AlertEngine, Notifier, Rule
from bastion.observe.detectors import Signals
from bastion.observe.monitoring import CounterIncrease, Monitoring
from bastion.observe.notifiers import (
    EmailNotifier,
    LogNotifier,
    SmtpConfig,
    WebhookNotifier,
)
from bastion.observe.siem import (
    JsonLinesTarget,
    SiemSink,
    SyslogTarget,
    Target,
    cef,
    json_message,
)
from bastion.security.audit import keys as audit_keys
from bastion.security.audit.checkpoints import Checkpoints
from bastion.security.audit.log import AuditLog
from bastion.security.audit.records import Redactor, export_dict, truncate_ip
from bastion.store.db import Database


def audit_log(settings: Settings, db: Database) -> AuditLog:
    """The audit log sink with its HMAC key and failure policy."""
    audit = settings.audit
    configured = audit.hmac_key.get_secret_value() if audit.hmac_key else None
    key = audit_keys.load_hmac_key(settings.server.data_dir, configured)
    return AuditLog(
        db,
        Redactor(key, audit.hmac_fields, audit.ip),
        fail_closed=audit.fail_closed,
        reads_fail_closed=audit.reads_fail_closed,
    )


def log_ip(settings: Settings) -> Callable[[str | None], str | None]:
    """How request logs show client addresses (``monitor.log_ip``)."""
    mode = settings.monitor.log_ip
    if mode == "none":
        return lambda _address: None
    if mode == "full":
        return lambda address: address
    if mode == "truncate":
        return lambda address: truncate_ip(address) if address else None
    configured = settings.audit.hmac_key
    key = audit_keys.load_hmac_key(
        settings.server.data_dir, configured.get_secret_value() if configured else None
    )
    redactor = Redactor(key, (), "hmac")
    return redactor.ip


def notifiers(settings: Settings) -> list[Notifier]:
    """The log, plus the webhook and e-mail when configured."""
    mon = settings.monitor
    found: list[Notifier] = [LogNotifier()]
    if mon.webhook_url and mon.webhook_secret:
        secret = mon.webhook_secret.get_secret_value().encode()
        found.append(
            WebhookNotifier(
                mon.webhook_url,
                secret,
                retries=mon.webhook_retries,
                backoff=mon.webhook_backoff_seconds,
            )
        )
    if mon.smtp_host and mon.email_to:
        password = mon.smtp_password.get_secret_value() if mon.smtp_password else None
        config = SmtpConfig(
            host=mon.smtp_host,
            port=mon.smtp_port,
            sender=mon.email_from,
            recipients=mon.email_to,
            starttls=mon.smtp_starttls,
            username=mon.smtp_username,
            password=password,
        )
        found.append(EmailNotifier(config))
    return found


def siem_targets(settings: Settings, node: str) -> list[Target]:
    """The configured SIEM destinations."""
    mon = settings.monitor
    targets: list[Target] = []
    if mon.siem_jsonl:
        targets.append(JsonLinesTarget(mon.siem_jsonl))
    if mon.siem_syslog_host:
        tls = None
        if mon.siem_syslog_tls:
            ca = str(mon.siem_syslog_ca_file) if mon.siem_syslog_ca_file else None
            tls = ssl.create_default_context(cafile=ca)
        formatter = cef if mon.siem_syslog_format == "cef" else json_message
        targets.append(
            SyslogTarget(
                mon.siem_syslog_host,
                mon.siem_syslog_port,
                formatter=formatter,
                tls=tls,
                hostname=node,
            )
        )
    return targets


def monitoring(settings: Settings, clock: Clock, redactor: Redactor, node: str) -> Monitoring:
    """Signals, alert rules with their notifiers, and SIEM sinks."""
    mon = settings.monitor
    signals = Signals(mon.spraying_max_sources)
    signals.gauges.update(system_metrics.gauges(settings.server.data_dir))
    signals.gauges["audit_failures"] = CounterIncrease(
        lambda: metric_families.total(metric_families.AUDIT_FAILURES), clock
    )
    signals.gauges["siem_dropped"] = CounterIncrease(
        lambda: metric_families.total(metric_families.SIEM_DROPPED), clock
    )
    rules = [Rule(**rule.model_dump()) for rule in mon.alert_rules]
    engine = AlertEngine(rules, signals, notifiers(settings), clock)
    sinks = [
        SiemSink(target, lambda event: export_dict(event, redactor), mon.siem_queue_max)
        for target in siem_targets(settings, node)
    ]
    return Monitoring(signals, engine, clock, sinks, mon.alerts_enabled, mon.evaluation_seconds)


def checkpoints(settings: Settings, db: Database, clock: Clock) -> Checkpoints:
    """The signer of audit checkpoints, with its own key."""
    passphrase = settings.auth.keys_passphrase
    keys = audit_keys.checkpoint_keys(
        settings.server.data_dir, passphrase.get_secret_value() if passphrase else None
    )
    return Checkpoints(db, keys, clock)
