"""Shared pieces for source connectors: :mod:`hub.sources.http` (retries, throttles and pacing for API reads)."""
