"""Key ages as Prometheus gauges, computed at scrape time.

Creation times are sampled in the background (reading them may mean a request to
Vault, which a scrape must not wait for); each scrape turns them into ages against the
current time, so the value is exact however rarely the sample is refreshed. Labels are
bounded: ``source`` is ``local`` or ``vault``. Every app's KEK derives from the same
root version, so one series covers them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector


@dataclass(frozen=True, slots=True)
class KekSample:
    """What the key source said about its newest KEK version."""

    source: str
    version: int
    created: float
    """Unix seconds."""
    max_age_seconds: float


class KeyAgeCollector(Collector):
    """``bastion_kek_age_seconds``, its policy limit, and ``bastion_signing_key_age_seconds``."""

    def __init__(self) -> None:
        self.keks: dict[str, KekSample] = {}
        """The last sample per key source (one in a server; the label set stays bounded)."""
        self.signing_created: float | None = None

    def record(self, sample: KekSample) -> None:
        """Keep ``sample`` as its source's newest."""
        self.keks[sample.source] = sample

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """Ages as of now, from the last samples (nothing before the first)."""
        now = time.time()
        if self.keks:
            samples = sorted(self.keks.values(), key=lambda k: k.source)
            yield _by_source(
                "bastion_kek_age_seconds",
                "Age of the KEK version new data keys are wrapped under.",
                {k.source: max(0.0, now - k.created) for k in samples},
            )
            yield _by_source(
                "bastion_kek_max_age_seconds",
                "Key age policy (encryption.kek_max_age_days), in seconds.",
                {k.source: k.max_age_seconds for k in samples},
            )
            yield _by_source(
                "bastion_kek_version",
                "KEK version new wraps use.",
                {k.source: float(k.version) for k in samples},
            )
        if self.signing_created is not None:
            yield GaugeMetricFamily(
                "bastion_signing_key_age_seconds",
                "Time since the active token-signing key became active.",
                value=max(0.0, now - self.signing_created),
            )


def _by_source(name: str, documentation: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["source"])
    for source, value in values.items():
        family.add_metric([source], value)
    return family


_installed: list[KeyAgeCollector] = []


def install() -> KeyAgeCollector:
    """The process's collector, registered on the default registry once."""
    if not _installed:
        collector = KeyAgeCollector()
        REGISTRY.register(collector)
        _installed.append(collector)
    return _installed[0]
