"""Start-up and shutdown: the services, the background tasks, and their order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from bastion.app.keys import key_store, rotation_policy
from bastion.app.services import build_services
from bastion.app.storage import key_source
from bastion.chat import timed_roles
from bastion.chat.revocations import CutoffSync
from bastion.chat.users import keep_loading_revocations
from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.http.deps import Services
from bastion.http.websocket import ConnectionRegistry
from bastion.observe import key_ages as key_age_metrics
from bastion.observe import system as system_metrics
from bastion.security import key_ages
from bastion.security.key_rotation import maintain
from bastion.security.oauth.grants import RevocationSync
from bastion.store import housekeeping


@dataclass(slots=True)
class Lifespan:
    """Build the services at start-up, run their background tasks, and close both."""

    settings: Settings
    clock: Clock

    @contextlib.asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        """Serve between start-up and shutdown with the services on ``app.state``."""
        services = await self._open()
        tasks = await self._start_tasks(services)
        app.state.services = services
        app.state.connections = ConnectionRegistry(self.settings.realtime.max_connections_per_user)
        # A revocation closes the affected sockets now, not at their next frame.
        services.tokens.revocations.subscribe(app.state.connections.on_revoked)
        services.monitoring.start()
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise stall requests under load.
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await _close(services)

    async def _open(self) -> Services:
        """Build the services; refused at start (a TLS misconfiguration) releases them."""
        services = build_services(self.settings, self.clock)
        try:
            await services.ratelimit.check_store()
        except RuntimeError:
            await services.ratelimit.close()
            await services.broker.close()
            await services.db.close()
            raise
        return services

    async def _start_tasks(self, services: Services) -> list[asyncio.Task[None]]:
        """Load revocations (briefly waited for), then start every periodic task."""
        settings, clock = self.settings, self.clock
        cutoffs = CutoffSync(services.chat.ctx)
        # With the database down, start anyway (health probes answer, /readyz says 503)
        # and keep trying; tokens are refused until the revocations are in.
        revoked = RevocationSync(services.db, services.tokens, clock)
        loader = asyncio.create_task(
            keep_loading_revocations(services.chat.ctx, loaders=[cutoffs.load, revoked.load])
        )
        await asyncio.wait({loader}, timeout=settings.database.connect_timeout)
        refresh = settings.resource_server.revocation_refresh_seconds
        encryption = settings.encryption
        return [
            loader,
            asyncio.create_task(cutoffs.keep_loading(refresh)),
            asyncio.create_task(revoked.keep_loading(refresh)),
            asyncio.create_task(
                maintain(
                    key_store(settings),
                    services.keys,
                    rotation_policy(settings),
                    services.events,
                    clock,
                )
            ),
            asyncio.create_task(
                services.checkpoints.run(settings.audit.checkpoint_interval_seconds)
            ),
            asyncio.create_task(system_metrics.sample_loop_lag()),
            asyncio.create_task(
                housekeeping.keep_purging(services.db, clock, settings.oauth.purge_interval_seconds)
            ),
            asyncio.create_task(
                timed_roles.keep_announcing(
                    services.chat.ctx, settings.realtime.timed_role_check_seconds
                )
            ),
            await _key_ages(settings),
            asyncio.create_task(
                services.chat.ctx.indexer.run(
                    encryption.index_interval_seconds, encryption.index_idle_seconds
                )
            ),
            asyncio.create_task(
                services.ratelimit.admin.keep_reloading(settings.ratelimit.override_refresh_seconds)
            ),
        ]


async def _close(services: Services) -> None:
    """Close what holds connections: stores, sinks, the broker, and the database last."""
    await services.ratelimit.close()
    await services.dpop.close()
    await services.monitoring.close()
    await services.broker.close()
    await services.db.close()


async def _key_ages(settings: Settings) -> asyncio.Task[None]:
    """Sample key ages once now (so the first scrape has them), then keep refreshing."""
    collector = key_age_metrics.install()
    source, signing = key_source(settings), key_store(settings)
    max_age = settings.encryption.kek_max_age_days
    await key_ages.sample(collector, source, signing, max_age)
    interval = settings.encryption.key_age_refresh_seconds
    return asyncio.create_task(
        key_ages.keep_sampling(collector, source, signing, max_age, interval)
    )
