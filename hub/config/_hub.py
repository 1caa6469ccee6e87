"""The whole of hub.yaml: the root model, assembled from the blocks in ``_models`` and ``_audience``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PositiveInt, ValidationInfo, model_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.engine import make_url

from hub.config._audience import (
    AttributesConfig,
    ContactPressureConfig,
    RecommendConfig,
    SegmentConfig,
    TriggerConfig,
    _check_name,
)
from hub.config._daemon import DaemonConfig
from hub.config._models import (
    _BLOCK,
    ConnectorConfig,
    DatabaseConfig,
    IdentityConfig,
    PluginsConfig,
    _check_connector_name,
    _check_zone,
    _context,
    _FromLoader,
    _set_by_loader,
)


def _project_dir(path: Path, info: ValidationInfo) -> Path:
    context = _context(info)
    path = context.project_dir if context is not None else path.absolute()
    if not path.is_dir():
        raise ValueError(f"directory not found: {path}")
    return path


class HubConfig(BaseModel):
    """The whole of hub.yaml, validated. Build it with :func:`hub.config.load_config`."""

    model_config = _BLOCK

    database: DatabaseConfig = DatabaseConfig()
    project_dir: Annotated[Path, AfterValidator(_project_dir)] = Field(default_factory=Path.cwd, validate_default=True)
    timezone: Annotated[str, AfterValidator(_check_zone)] = "UTC"
    batch_size: PositiveInt = 5000
    plugins: PluginsConfig = PluginsConfig()
    identity: IdentityConfig = IdentityConfig()
    connectors: dict[Annotated[str, AfterValidator(_check_connector_name)], ConnectorConfig] = {}
    attributes: AttributesConfig = AttributesConfig()
    contact_pressure: ContactPressureConfig = ContactPressureConfig()
    segments: dict[Annotated[str, AfterValidator(_check_name)], SegmentConfig] = {}
    triggers: dict[Annotated[str, AfterValidator(_check_name)], TriggerConfig] = {}
    recommend: RecommendConfig = RecommendConfig()
    daemon: DaemonConfig = DaemonConfig()
    source_file: Annotated[SkipJsonSchema[str], BeforeValidator(_set_by_loader)] = "<memory>"

    @model_validator(mode="before")
    @classmethod
    def _loader_values(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill the keys the loader owns: each connector's name from its key, the file from the context.

        A key left empty (``connectors:`` with nothing under it) means its default, as a reader expects.
        """
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if value is not None}
        for block in ("connectors", "segments", "triggers"):
            entries = data.get(block)
            if isinstance(entries, dict):
                data[block] = {
                    key: {"name": _FromLoader(str(key)), **entry}
                    if isinstance(entry, dict) and "name" not in entry
                    else entry
                    for key, entry in entries.items()
                }
        context = _context(info)
        if context is not None and "source_file" not in data:
            data["source_file"] = _FromLoader(context.source_file)
        return data

    def database_url(self) -> str:
        """``database.url`` with a relative SQLite path made absolute against ``project_dir``."""
        url = make_url(self.database.url)
        path = url.database
        if (
            url.get_backend_name() != "sqlite"
            or not path
            or path == ":memory:"
            or url.query.get("uri")
            or Path(path).is_absolute()
        ):
            return self.database.url
        return url.set(database=str(self.project_dir / path)).render_as_string(hide_password=False)
