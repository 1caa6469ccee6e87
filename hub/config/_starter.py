"""The commented hub.yaml that ``hub init`` writes: small, valid as written, and a tour of the keys."""

from __future__ import annotations

_STARTER = """\
# hub configuration. Every key is described in docs/configuration.md.
# Any value may use ${NAME} or ${NAME:-default} (environment variables) and ${scheme:reference}
# (secrets from a plugin, e.g. ${env:API_KEY}); write $${ for a literal ${.

database:
  # Any SQLAlchemy URL. A relative SQLite path starts at project_dir.
  # PostgreSQL: postgresql+psycopg://hub:${PGPASSWORD}@localhost/hub
  url: sqlite:///var/hub.db

# Where relative paths (mappings, data files, SQLite) start. Default: the working directory.
# project_dir: .

# IANA time zone for schedules and for dates that carry none.
timezone: UTC

# Records read, mapped and loaded per transaction.
batch_size: 5000

# plugins:
#   disable: [some_plugin]

# identity:
#   source_priority: [example]          # connector names, most trusted first
#   blocked_values:
#     email: ["noreply@shop.example"]
#   max_per_customer: {member_no: 1, email: 5, phone: 5, external_id: 5}

connectors:
  example:                              # the connector's name: lower-case letters, digits and _
    plugin: files                       # a connector type from an installed plugin (see `hub plugins`)
    mapping: mappings/example.yaml      # one mapping for every stream, or {stream: file}
    settings:
      paths: ["data/*.csv"]
    # schedule: {every: 15m}            # or {cron: "0 2 * * *"}
    # enabled: false
"""


def starter_config() -> str:
    """A commented starter hub.yaml: SQLite, one ``files`` connector reading ``data/*.csv``."""
    return _STARTER
