"""hub.yaml -> a validated, typed :class:`HubConfig`.

Loading goes: parse with the line of every key (``hub._yaml``), resolve ``${...}`` placeholders in every
string, then validate every block in one pass, with the installed connector types checking their own
``settings``. Every problem is collected and raised together as one :class:`hub.errors.ConfigError` whose
issues read ``file:line: key.path: message``. No message, repr or dump shows the resolved value of a
secret setting.
"""

from hub.config._hub import HubConfig
from hub.config._interpolate import InterpolationError, interpolate
from hub.config._load import DEFAULT_CONFIG_PATH, config_path, load_config
from hub.config._models import (
    DEFAULT_DATABASE_URL,
    DEFAULT_MAX_PER_CUSTOMER,
    ConnectorConfig,
    DatabaseConfig,
    IdentityConfig,
    IdentityKind,
    PluginsConfig,
    Schedule,
)
from hub.config._schema import config_json_schema
from hub.config._starter import starter_config

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_MAX_PER_CUSTOMER",
    "ConnectorConfig",
    "DatabaseConfig",
    "HubConfig",
    "IdentityConfig",
    "IdentityKind",
    "InterpolationError",
    "PluginsConfig",
    "Schedule",
    "config_json_schema",
    "config_path",
    "interpolate",
    "load_config",
    "starter_config",
]
