"""A third-party plugin as small as it gets: one connector type and one transform, found by its entry point."""

from collections.abc import Iterator
from typing import Any

from hub import Batch, ConnectorSettings, Source, Stream, hookimpl


class CountingSettings(ConnectorSettings):
    count: int = 3


class CountingSource(Source):
    """Yields ``count`` numbered records; enough to prove discovery and the read contract."""

    type = "counting"
    Settings = CountingSettings

    def streams(self) -> dict[str, Stream]:
        return {"numbers": Stream(name="numbers", key="n")}

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        start = cursor or 0
        records = [{"n": n} for n in range(start, self.settings.count)]
        yield Batch(records=records, cursor=self.settings.count)


@hookimpl
def hub_connector_types() -> list[type[Source]]:
    return [CountingSource]


@hookimpl
def hub_transforms() -> dict[str, Any]:
    return {"shout": lambda: lambda value: None if value is None else f"{value}!"}
