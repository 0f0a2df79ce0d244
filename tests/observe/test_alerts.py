"""Alert rules over signals, on a fake clock: for-duration, cool-down, resolution, anomalies."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.core.clock import FakeClock
from bastion.observe.alerts import AlertEngine, Notification, Rule
from bastion.observe.baselines import Baselines, Ewma
from bastion.observe.detectors import Signals
from bastion.observe.events import Actor, Origin, SecurityEvent


class Recorder:
    """A notifier that keeps what it was sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def failure(clock: FakeClock, ip: str, account: str, action: str = "auth.login") -> SecurityEvent:
    """An authentication failure at the clock's time."""
    return SecurityEvent(
        action=action,
        outcome="failure",
        at=clock.now(),
        sequence=1,
        node="n",
        actor=Actor(subject=account),
        origin=Origin(ip=ip),
        reason="bad_password",
    )


def engine_with(rule: Rule, clock: FakeClock) -> tuple[AlertEngine, Signals, Recorder]:
    signals, recorder = Signals(spraying_max_sources=2), Recorder()
    return AlertEngine([rule], signals, [recorder], clock, Baselines(warmup=5)), signals, recorder


async def test_threshold_waits_for_duration_then_fires_once_and_cools_down() -> None:
    """Pending until for_seconds passed; one notification; none again within the cool-down."""
    clock = FakeClock()
    rule = Rule(
        "failed",
        "auth_failures",
        threshold=2,
        window_seconds=60,
        for_seconds=20,
        cooldown_seconds=300,
    )
    engine, signals, recorder = engine_with(rule, clock)
    for i in range(3):
        signals.on_event(failure(clock, "192.0.2.1", f"acct{i}"))
    assert await engine.evaluate() == []
    assert engine.snapshot()[0]["state"] == "pending"
    clock.advance(21)
    for i in range(3):
        signals.on_event(failure(clock, "192.0.2.1", f"acct{i}"))
    (fired,) = await engine.evaluate()
    assert (fired.status, fired.value) == ("firing", 6.0)
    assert await engine.evaluate() == []
    clock.advance(61)
    assert await engine.evaluate() == []  # resolved inside the cool-down: stays quiet
    assert engine.snapshot()[0]["state"] == "inactive"
    clock.advance(10)
    for i in range(3):
        signals.on_event(failure(clock, "192.0.2.1", f"acct{i}"))
    await engine.evaluate()
    clock.advance(21)
    assert await engine.evaluate() == []  # firing again, but still cooling down
    assert engine.snapshot()[0]["state"] == "firing"
    clock.advance(300)
    for i in range(3):
        signals.on_event(failure(clock, "192.0.2.1", f"acct{i}"))
    assert await engine.evaluate() == []  # still firing: no repeat
    assert len(recorder.sent) == 1


async def test_resolution_is_notified_after_the_cool_down() -> None:
    """A rule that fired says so again when it resolves, once the cool-down is over."""
    clock = FakeClock()
    rule = Rule("errors", "http_5xx", threshold=0, window_seconds=10, cooldown_seconds=5)
    engine, signals, recorder = engine_with(rule, clock)
    signals.on_request(clock.timestamp(), 503, 0.01, None)
    await engine.evaluate()
    clock.advance(11)
    await engine.evaluate()
    assert [n.status for n in recorder.sent] == ["firing", "resolved"]


async def test_an_anomaly_rule_fires_on_a_spike_beyond_k_sigma() -> None:
    """A steady request rate builds the baseline; a tenfold spike is an anomaly."""
    clock = FakeClock()
    rule = Rule("spike", "requests", kind="anomaly", k=4, window_seconds=10, cooldown_seconds=0)
    engine, signals, _recorder = engine_with(rule, clock)
    for round_ in range(12):
        for _ in range(10 + round_ % 3):
            signals.on_request(clock.timestamp(), 200, 0.01, None)
        assert await engine.evaluate() == []
        clock.advance(10)
    for _ in range(120):
        signals.on_request(clock.timestamp(), 200, 0.01, None)
    (fired,) = await engine.evaluate()
    assert fired.value == 120


def test_ewma_tracks_mean_and_variance() -> None:
    """The incremental EWMA converges on a constant and measures spread."""
    ewma = Ewma(alpha=0.5)
    for value in (10.0, 10.0, 10.0, 10.0):
        ewma.update(value)
    assert ewma.mean == 10.0
    assert ewma.std == 0.0
    ewma.update(20.0)
    assert ewma.mean == 15.0
    assert ewma.std > 0
    baselines = Baselines(warmup=2, min_std=1.0, hourly=True)
    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert baselines.score("s", 5.0, noon) is None
    baselines.score("s", 5.0, noon)
    assert baselines.score("s", 5.0, noon) == 0.0
    assert baselines.snapshot("s")["observations"] == 3


def test_credential_stuffing_is_many_accounts_from_one_address() -> None:
    """One address failing for 12 accounts reads 12; many addresses, one account each, reads 1."""
    clock = FakeClock()
    signals = Signals()
    for i in range(12):
        signals.on_event(failure(clock, "203.0.113.7", f"victim{i}"))
        signals.on_event(failure(clock, f"198.51.100.{i}", "alice"))
    reading = signals.read("credential_stuffing", 60, clock.timestamp())
    assert reading.value == 12
    assert reading.details == {"source": "203.0.113.7", "accounts": 12}


def test_password_spraying_is_few_failures_per_account_from_few_sources() -> None:
    """20 accounts tried once or twice from two addresses reads 20; from 30 addresses, 0."""
    clock = FakeClock()
    sprayed, distributed = Signals(spraying_max_sources=2), Signals(spraying_max_sources=2)
    for i in range(20):
        sprayed.on_event(failure(clock, f"192.0.2.{i % 2}", f"user{i}"))
        distributed.on_event(failure(clock, f"192.0.2.{i}", f"user{i}"))
    assert sprayed.read("password_spraying", 60, clock.timestamp()).value == 20
    assert distributed.read("password_spraying", 60, clock.timestamp()).value == 0


def test_enumeration_and_token_reuse_and_window_expiry() -> None:
    """404s per principal and token reuse count within the window only."""
    clock = FakeClock()
    signals = Signals()
    for _ in range(30):
        signals.on_request(clock.timestamp(), 404, 0.001, "usr_scanner")
    signals.on_request(clock.timestamp(), 404, 0.001, "usr_honest")
    reuse = failure(clock, "192.0.2.9", "usr_victim", action="token.reuse_detected")
    signals.on_event(reuse)
    reading = signals.read("enumeration", 60, clock.timestamp())
    assert (reading.value, reading.details) == (30, {"principal": "usr_scanner"})
    assert signals.read("token_reuse", 60, clock.timestamp()).value == 1
    clock.advance(61)
    assert signals.read("enumeration", 60, clock.timestamp()).value == 0
