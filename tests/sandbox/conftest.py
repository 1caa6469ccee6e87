"""Fixtures: the tiny items API behind a FaultInjector on loopback, and a way to set its faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hub.sandbox import FaultInjector, Faults, serve

from .tiny import Served, notes_app


@pytest.fixture
def served() -> Iterator[Served]:
    app = notes_app()
    injector = FaultInjector(app)
    with serve(injector) as url, httpx.Client(base_url=url, timeout=5) as client:
        yield Served(injector=injector, notes=app.state.notes, url=url, client=client)


@pytest.fixture
def faulty(served: Served) -> Callable[..., FaultInjector]:
    """Set faults on the served app: ``faulty(error_rate=1)``."""

    def set_faults(**values: Any) -> FaultInjector:
        served.injector.faults = Faults(**values)
        return served.injector

    return set_faults
