"""Which recommender connectors the configuration asks for, built through the hub like every connector."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.config._audience import BUILTIN
from hub.connectors import Recommender
from hub.errors import ConfigError
from hub.recommend.builtin import settings_of

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = ["configured_recommenders", "recommender"]


def recommender(hub: Hub, name: str) -> Recommender:
    """The connector ``name`` as a recommender; a ConfigError when it is not one."""
    connector = hub.connector(name)
    if not isinstance(connector, Recommender):
        cc = hub.config.connectors[name]
        raise ConfigError(
            f"{hub.config.source_file}: connector {name!r} (type {cc.plugin!r}) is not a recommender; "
            f"recommendations can come from a recommender connector or from {BUILTIN!r}"
        )
    return connector


def configured_recommenders(hub: Hub) -> dict[str, Recommender]:
    """name -> connector, for every enabled connector a trigger's ``recommendations`` (or
    ``recommend.triggers``) names. A disabled one is left out: the built-in answers for it."""
    settings = [trigger.recommendations for trigger in hub.config.triggers.values()]
    settings.append(settings_of(hub.config).triggers)
    names = {s.from_ for s in settings if s is not None and s.limit > 0 and s.from_ != BUILTIN}
    return {
        name: recommender(hub, name)
        for name in sorted(names)
        if name in hub.config.connectors and hub.config.connectors[name].enabled
    }
