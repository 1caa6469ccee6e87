"""hub: commerce systems in, one unified customer model, marketing platforms out.

The public API for plugin authors is re-exported here; everything else is internal.
"""

from hub.connectors import (
    Batch,
    CheckResult,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Source,
    Stream,
)
from hub.errors import (
    ConfigError,
    ConfigIssue,
    HubError,
    MappingError,
    PluginError,
    RecordError,
    SchemaOutOfDate,
    SourceError,
)
from hub.plugins import hookimpl, make_plugin_manager
from hub.records import ENTITY_FIELDS, Mapped, RejectedRecord

__version__ = "0.1.0"

__all__ = [
    "ENTITY_FIELDS",
    "Batch",
    "CheckResult",
    "ConfigError",
    "ConfigIssue",
    "Connector",
    "ConnectorContext",
    "ConnectorSettings",
    "HubError",
    "Mapped",
    "MappingError",
    "PluginError",
    "RecordError",
    "RejectedRecord",
    "SchemaOutOfDate",
    "Source",
    "SourceError",
    "Stream",
    "__version__",
    "hookimpl",
    "make_plugin_manager",
]
