"""config/examples/raptor.yaml is a valid configuration: Raptor beside Voyado, recommending for post-purchase mails."""

from pathlib import Path

from hub.app import Hub
from hub.plugins import make_plugin_manager
from hub_plugins import raptor as raptor_plugin
from hub_plugins.raptor.connector import RaptorConnector

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "raptor.yaml"


def test_the_raptor_example_loads_with_raptor_beside_voyado_and_its_mappings_compile() -> None:
    pm = make_plugin_manager()
    if not pm.is_registered(raptor_plugin):
        pm.register(raptor_plugin, name="raptor")

    hub = Hub.load(EXAMPLE, pm=pm, project_dir=EXAMPLE.parents[2], environ={})
    try:
        assert hub.check_mappings() == []
        assert hub.destinations()[-2:] == ["voyado", "raptor"]
        assert isinstance(hub.connector("raptor"), RaptorConnector)
        recommendations = hub.config.triggers["post_purchase"].recommendations
        assert recommendations is not None and recommendations.from_ == "raptor"
    finally:
        hub.close()
