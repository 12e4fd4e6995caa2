"""The composition root: what a process runs on, built once.

``serve`` (the app and its scheduler), ``worker`` and every other command build one
``Runtime`` and hand it, or the pieces of it a layer below needs, to what they run: one
engine (one connection pool) per process, one protocol registry, one clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Engine

import rules
from surveillance.alerting.jobs import AlertJobs
from surveillance.config import Settings, get_settings
from surveillance.kit import secret_box
from surveillance.kit.clock import Clock, system_clock
from surveillance.kit.db import make_engine
from surveillance.protocols.registry import registry_for


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    registry: rules.ProtocolRegistry
    clock: Clock
    settings: Settings

    def with_clock(self, clock: Clock) -> Runtime:
        """The same runtime (same engine) asking ``clock`` what time it is."""
        return replace(self, clock=clock)


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    registry: rules.ProtocolRegistry | None = None,
) -> Runtime:
    """The runtime on ``settings`` (default: the environment). The schema is not touched:
    migrating is the caller's decision (``kit.migrate.upgrade``)."""
    settings = settings or get_settings()
    # The keys of the secrets stored encrypted (webhook signing secrets): this process's.
    secret_box.configure(settings.encryption_keys_value, settings.data_dir)
    return Runtime(
        # As many pooled connections as request threads (see Settings.db_threads); the
        # scheduler's few jobs borrow from the same pool's overflow.
        engine=make_engine(settings.database_url, pool_size=settings.db_threads),
        registry=registry or registry_for(settings.protocols_dir),
        clock=clock,
        settings=settings,
    )


def alert_jobs(runtime: Runtime) -> AlertJobs:
    """The scheduled alert jobs (scan, digests, dispatch) on ``runtime``."""
    return AlertJobs(
        engine=runtime.engine,
        settings=runtime.settings,
        registry=runtime.registry,
        clock=runtime.clock,
    )
