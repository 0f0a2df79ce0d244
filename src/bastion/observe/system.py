"""Process and host health through psutil, read at scrape time; event-loop lag sampling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from bastion.observe import metrics

PoolStatus = Callable[[], tuple[int, int]]
"""Returns (pool size, connections checked out)."""


class SystemCollector(Collector):
    """CPU, memory, open files and free disk of the data directory."""

    def __init__(self, data_dir: Path, pool_status: PoolStatus | None = None) -> None:
        self.data_dir = data_dir
        self.pool_status = pool_status
        self._process = psutil.Process()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """One sample of every gauge."""
        process = self._process
        with process.oneshot():
            yield _gauge("bastion_process_cpu_percent", "Process CPU use.", process.cpu_percent())
            memory = process.memory_info().rss
            yield _gauge("bastion_process_memory_rss_bytes", "Resident memory.", memory)
            yield _gauge("bastion_process_open_fds", "Open file descriptors.", process.num_fds())
        yield _gauge("bastion_host_cpu_percent", "Host CPU use.", psutil.cpu_percent())
        host = psutil.virtual_memory()
        yield _gauge("bastion_host_memory_used_percent", "Host memory in use.", host.percent)
        yield _gauge("bastion_host_memory_available_bytes", "Host memory free.", host.available)
        disk = psutil.disk_usage(str(self.data_dir if self.data_dir.exists() else Path.cwd()))
        yield _gauge("bastion_data_dir_free_bytes", "Free disk of the data directory.", disk.free)
        yield _gauge(
            "bastion_data_dir_used_percent", "Disk use of the data directory.", disk.percent
        )
        if self.pool_status is not None:
            size, in_use = self.pool_status()
            metrics.DB_POOL_SIZE.set(size)
            metrics.DB_POOL_IN_USE.set(in_use)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


_installed: list[SystemCollector] = []


def install(data_dir: Path, pool_status: PoolStatus | None = None) -> SystemCollector:
    """Register the collector on the default registry once per process (later calls retarget)."""
    if _installed:
        collector = _installed[0]
        collector.data_dir, collector.pool_status = data_dir, pool_status
        return collector
    collector = SystemCollector(data_dir, pool_status)
    REGISTRY.register(collector)
    _installed.append(collector)
    return collector


async def sample_loop_lag(interval: float = 1.0) -> None:
    """Measure how late a timer fires, as a gauge, until cancelled."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval)
        metrics.EVENT_LOOP_LAG.set(max(0.0, time.perf_counter() - started - interval))


def gauges(data_dir: Path) -> dict[str, Callable[[float], float]]:
    """Host CPU, memory and data-disk use as alert signals (the window is not needed)."""

    def disk(_window: float) -> float:
        target = data_dir if data_dir.exists() else Path.cwd()
        return float(psutil.disk_usage(str(target)).percent)

    return {
        "cpu_percent": lambda _window: float(psutil.cpu_percent(interval=None)),
        "memory_percent": lambda _window: float(psutil.virtual_memory().percent),
        "disk_used_percent": disk,
    }
