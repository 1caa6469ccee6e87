"""Shared fixtures live in hub's pytest plugin, ``hub.testing`` (the ``pytest11`` entry point).

Hypothesis runs without per-example deadlines (the machines are shared and noisy; durations are benchmarks'
business) and, in CI, derandomized, so a red build is reproducible rather than a roll of the dice.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "hub",
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("hub")
