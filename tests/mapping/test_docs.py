"""docs/mappings.md stays true: its example compiles and maps as shown, and it lists every entity field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from hub._yaml import loads_located
from hub.mapping import compile_mapping
from hub.records import ENTITY_FIELDS
from hub_plugins.standard.transforms import TRANSFORMS

DOC = Path(__file__).parents[2] / "docs" / "mappings.md"


def block(name: str, language: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name}:start -->\n```{language}\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert found, f"no {name} block in {DOC}"
    return found.group(1)


def test_the_example_maps_the_example_record_as_documented() -> None:
    mapping = compile_mapping(
        loads_located(block("example", "yaml"), file="docs/mappings.md"), TRANSFORMS, timezone="Europe/Oslo"
    )
    mapped = mapping.map(json.loads(block("raw", "json")))
    assert mapped.key == "R-1001"
    assert mapped.rows == {
        "customer": [
            {
                "member_no": None,
                "email": "kari.nordmann@example.no",
                "phone": "+4791234567",
                "first_name": "Kari",
            }
        ],
        "order": [
            {
                "external_id": "R-1001",
                "placed_at": datetime(2024, 5, 1, 12, 30, tzinfo=ZoneInfo("Europe/Oslo")),
                "store_external_id": "S7",
                "channel": "pos",
                "currency": "NOK",
                "total": Decimal("1249.50"),
            }
        ],
        "order_line": [
            {
                "order_external_id": "R-1001",
                "line_no": 0,
                "sku": "AB-1",
                "quantity": Decimal("1"),
                "unit_price": Decimal("999"),
            },
            {
                "order_external_id": "R-1001",
                "line_no": 1,
                "sku": "CD-2",
                "quantity": Decimal("2.5"),
                "unit_price": Decimal("99.80"),
            },
        ],
        "consent": [{"channel": "email", "status": "opt_in", "at": datetime(2024, 4, 30, 8, 0, tzinfo=UTC)}],
    }


def test_every_entity_and_field_is_documented_with_its_required_mark() -> None:
    text = DOC.read_text(encoding="utf-8")
    for entity, fields in ENTITY_FIELDS.items():
        row = re.search(rf"^\| `{entity}` \| (.*) \|$", text, re.M)
        assert row, f"{entity} is missing from the entity table"
        for field, required in fields.items():
            mark = f"**`{field}`**" if required else f"`{field}`"
            assert re.search(rf"(^|, ){re.escape(mark)}( \(|,|$)", row.group(1)), f"{entity}.{field}"


def test_every_built_in_transform_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in TRANSFORMS:
        assert re.search(rf"^\| (`\w+`, )*`{name}`", text, re.M), name
