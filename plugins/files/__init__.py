"""Built-in plugin: the ``files`` source (CSV, JSON Lines and ARTS POSLog XML, plain or gzip, from paths or globs).

Bad lines become records with an ``_error`` key (see :mod:`hub_plugins.files.source`): the engine
rejects them.
"""

from hub import hookimpl
from hub_plugins.files.source import FilesSource


@hookimpl
def hub_connector_types() -> list[type[FilesSource]]:
    return [FilesSource]
