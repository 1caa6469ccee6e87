"""The demo plugin: a deterministic, streaming data set whose manifest tells hub what it must make of it."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest
import typer
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hub import Source
from hub.app import Hub
from hub.delivery.outbound import load_outbound_mapping
from hub.engine.map import MapResult, map_batch
from hub.identity import Key, KeyReader, key_of
from hub.mapping import load_mapping
from hub.plugins import make_plugin_manager
from hub_plugins import demo as demo_plugin
from hub_plugins import files as files_plugin
from hub_plugins import standard as standard_plugin
from hub_plugins import voyado as voyado_plugin
from hub_plugins.demo import _sorted, generator
from hub_plugins.demo._people import FIRST_NAMES, LAST_NAMES, LOCAL_PATTERNS, Scramble
from hub_plugins.demo.generator import Manifest, generate
from hub_plugins.standard.transforms import TRANSFORMS

REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = 1500
MALFORMED_KINDS = {"bad_date", "bad_email", "bad_quantity", "broken_json", "missing_receipt_id"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """One generated data set, read (never written) by the tests below."""
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, customers=CUSTOMERS, seed=42)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def pos_rows(root: Path) -> Iterator[dict[str, str]]:
    for path in sorted((root / "pos").glob("receipts-*.csv")):
        yield from csv_rows(path)


def web_orders(where: Path) -> Iterator[dict[str, Any]]:
    """Parsed orders of one file or of a data set; the deliberately broken lines are left out."""
    for path in [where] if where.is_file() else sorted((where / "webshop").glob("orders-*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue


def e164(text: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(text, "NO"), phonenumbers.PhoneNumberFormat.E164)


# --- determinism -----------------------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, seed=7)
    generate(tmp_path / "b", customers=300, seed=7)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_another_seed_writes_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, seed=7)
    generate(tmp_path / "b", customers=300, seed=8)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in a if name.startswith(("erp/", "webshop/", "pos/", "pim/")))


def test_output_does_not_depend_on_string_hashing(tmp_path: Path) -> None:
    generate(tmp_path / "here", customers=300, seed=7)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join(sys.path)}
    script = "import sys; from pathlib import Path; from hub_plugins.demo.generator import generate; "
    script += "generate(Path(sys.argv[1]), customers=300, seed=7)"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there")], check=True, env=env, timeout=120)
    assert digests(tmp_path / "here") == digests(tmp_path / "there")


def test_spilling_and_merge_rounds_do_not_change_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path / "in_memory", customers=300, seed=7)
    monkeypatch.setattr(generator, "SPILL_BYTES", 4096)
    monkeypatch.setattr(_sorted, "FAN_IN", 3)
    generate(tmp_path / "spilled", customers=300, seed=7)
    assert digests(tmp_path / "in_memory") == digests(tmp_path / "spilled")


def test_memory_does_not_grow_with_customers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small spill budget, so both runs hold a full buffer: what remains is whatever grows per person.
    monkeypatch.setattr(generator, "SPILL_BYTES", 32 << 10)
    peaks = []
    for customers in (150, 900):
        tracemalloc.start()
        try:
            generate(tmp_path / str(customers), customers=customers, seed=3)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.1, peaks  # keeping every Person alone would add 20 %


# --- the data set ----------------------------------------------------------------------------------------------


def test_monthly_files_are_in_time_order(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    for path in sorted((root / "pos").glob("receipts-*.csv")):
        stamps = [(r["business_date"], r["receipt_id"]) for r in csv_rows(path)]
        assert all(d.startswith(path.stem.removeprefix("receipts-")) for d, _ in stamps)
        assert [d for d, _ in stamps] == sorted(d for d, _ in stamps)
    for path in sorted((root / "webshop").glob("orders-*.jsonl")):
        month = path.stem.removeprefix("orders-")
        created = [o["created_at"] for o in web_orders(path)]
        well_formed = [c for c in created if c.startswith(month)]
        assert len(well_formed) > 0.98 * len(created)  # the rest are the malformed dates
        assert well_formed == sorted(well_formed)


def test_manifest_counts_what_is_in_the_files(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    for name, count in manifest.files.items():
        lines = (root / name).read_bytes().splitlines()
        assert len(lines) - (not name.endswith(".jsonl")) == count, name
    assert Manifest.load(root) == manifest


def test_volumes_are_as_specified(demo: tuple[Path, Manifest]) -> None:
    _, manifest = demo
    orders = manifest.orders["web_orders"] + manifest.orders["pos_receipts"] + manifest.orders["pos_returns"]
    lines = manifest.orders["web_order_lines"] + manifest.orders["pos_lines"]
    assert manifest.streams["pim.stores"] == 160
    assert 2900 <= manifest.streams["pim.products"] <= 3100
    assert len([f for f in manifest.files if f.startswith("webshop/orders-")]) == 24
    assert 2.5 <= orders / CUSTOMERS <= 4.0  # about 30,000 orders for 10,000 customers
    assert 2.2 <= lines / orders <= 3.0
    assert manifest.orders["pos_returns"] > 0 and manifest.orders["web_refunds"] > 0
    assert manifest.orders["pos_anonymous_receipts"] / manifest.orders["pos_receipts"] > 0.1


def test_a_few_customers_buy_very_often_and_b2b_most(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    receipts: dict[str, set[str]] = {}
    for row in pos_rows(root):
        if row["loyalty_id"] not in ("", "0"):
            receipts.setdefault(row["loyalty_id"], set()).add(row["receipt_id"])
    counts = sorted((len(r) for r in receipts.values()), reverse=True)
    assert sum(counts[: len(counts) // 10]) > 0.35 * sum(counts)  # the top tenth makes over a third
    assert counts[len(counts) // 2] <= 3  # the median member comes back once or twice
    erp = csv_rows(root / "erp" / "customers.csv", ";")
    b2b = {r["medlemsnr"] for r in erp if r["kundetype"] == "B" and r["medlemsnr"]}
    b2b_mean = sum(len(receipts.get(m, ())) for m in b2b) / len(b2b)
    assert b2b_mean > 4 * sum(counts) / len(counts)
    assert 0.02 < sum(r["kundetype"] == "B" for r in erp) / CUSTOMERS < 0.045


def test_shared_identities_are_written_differently_by_each_system(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    erp = csv_rows(root / "erp" / "customers.csv", ";")
    web_emails: dict[str, set[str]] = {}
    web_phones: dict[str, set[str]] = {}
    for order in web_orders(root):
        customer = order["customer"]
        web_emails.setdefault(customer["email"].strip().lower(), set()).add(customer["email"])
        if customer["phone"]:
            web_phones.setdefault(e164(customer["phone"]), set()).add(customer["phone"])
    shared_emails = [r["epost"] for r in erp if r["epost"].strip().lower() in web_emails]
    shared_phones = [r["mobil"] for r in erp if r["mobil"] and e164(r["mobil"]) in web_phones]
    assert len(shared_emails) > 50 and len(shared_phones) > 20
    assert not any(e in web_emails[e.strip().lower()] for e in shared_emails)
    assert not any(p in web_phones[e164(p)] for p in shared_phones)
    assert {"0047 ", "-", " "} <= {marker for p in shared_phones for marker in ("0047 ", "-", " ") if marker in p}
    members = {r["loyalty_id"] for r in pos_rows(root)}
    assert sum(r["medlemsnr"] in members for r in erp if r["medlemsnr"] not in ("", "0")) > 100


def test_some_people_are_linked_only_through_a_third_system(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    web_phones = {e164(o["customer"]["phone"]) for o in web_orders(root) if o["customer"]["phone"]}
    members = {r["loyalty_id"] for r in pos_rows(root)}
    bridges = [
        r
        for r in csv_rows(root / "erp" / "customers.csv", ";")
        if not r["epost"] and r["mobil"] not in ("", "00000000") and r["medlemsnr"] not in ("", "0")
        and e164(r["mobil"]) in web_phones and r["medlemsnr"] in members
    ]  # fmt: skip
    assert bridges  # web shop (email + phone) -> ERP (phone + member number) -> tills (member number)


def test_malformed_rows_and_placeholders_are_present(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    records = sum(manifest.streams[s] for s in manifest.rejects)
    assert set(manifest.malformed) == MALFORMED_KINDS
    assert 0.003 < sum(manifest.malformed.values()) / records < 0.008
    assert sum(manifest.rejects.values()) == sum(manifest.malformed.values())
    assert any(o["customer"]["email"] == "noreply@shop.no" for o in web_orders(root))
    assert any(r["loyalty_id"] == "0" for r in pos_rows(root))
    erp = csv_rows(root / "erp" / "customers.csv", ";")
    assert any(r["medlemsnr"] == "0" for r in erp) and any(r["mobil"] == "00000000" for r in erp)


def test_expected_customers_is_not_simply_the_people(demo: tuple[Path, Manifest]) -> None:
    _, manifest = demo
    assert manifest.persons == CUSTOMERS
    assert manifest.persons_split > 0 and manifest.persons_unseen > 0
    assert manifest.expected_customers != manifest.persons


def test_email_local_parts_are_unique_to_a_name() -> None:
    locals_ = {
        p.format(f=first, l=last).lower() for first in FIRST_NAMES for last in LAST_NAMES for p in LOCAL_PATTERNS
    }
    assert len(locals_) == len(FIRST_NAMES) * len(LAST_NAMES) * len(LOCAL_PATTERNS)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 3000), seed=st.integers(0, 2**32))
def test_scramble_is_a_permutation(size: int, seed: int) -> None:
    import random

    scramble = Scramble(size, random.Random(seed))
    assert sorted(scramble(i) for i in range(size)) == list(range(size))


# --- the shipped mappings and configuration --------------------------------------------------------------------


def _is_outbound(path: Path) -> bool:
    """Outbound mappings (unified customer -> a destination's fields) have ``fields:`` and no ``entities:``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return "fields" in data and "entities" not in data


SHIPPED = sorted((REPO / "mappings").glob("*.yaml"))


@pytest.mark.parametrize("path", [p for p in SHIPPED if not _is_outbound(p)], ids=lambda p: p.name)
def test_every_shipped_inbound_mapping_compiles(path: Path) -> None:
    assert load_mapping(path, TRANSFORMS, timezone="Europe/Oslo").entities


@pytest.mark.parametrize("path", [p for p in SHIPPED if _is_outbound(p)], ids=lambda p: p.name)
def test_every_shipped_outbound_mapping_compiles(path: Path) -> None:
    assert load_outbound_mapping(path, TRANSFORMS, timezone="Europe/Oslo").fields


@pytest.fixture(scope="module")
def demo_hub(demo: tuple[Path, Manifest], tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """The embedded config/hub.yaml, with its project directory holding the generated data and the mappings."""
    root, _ = demo
    project = tmp_path_factory.mktemp("project")
    (project / "var").mkdir()
    (project / "var" / "demo").symlink_to(root)
    (project / "mappings").symlink_to(REPO / "mappings")
    pm = make_plugin_manager(entrypoints=False, plugins=[files_plugin, standard_plugin, voyado_plugin])
    return Hub.load(REPO / "config" / "hub.yaml", pm=pm, project_dir=project)


@pytest.fixture(scope="module")
def mapped(demo_hub: Hub) -> list[tuple[str, int, MapResult]]:
    """Per stream of the config: how many records its source read, and what mapping them gave."""
    out = []
    for name in demo_hub.sources():
        source = demo_hub.connector(name)
        assert isinstance(source, Source)
        for stream in source.streams():
            records = [r for batch in source.read(stream, None) for r in batch.records]
            out.append((f"{name}.{stream}", len(records), map_batch(demo_hub.mapping(name, stream), records)))
    return out


def test_config_reads_every_stream_and_rejects_exactly_the_malformed_rows(
    demo: tuple[Path, Manifest], mapped: list[tuple[str, int, MapResult]]
) -> None:
    _, manifest = demo
    assert {stream: count for stream, count, _ in mapped} == manifest.streams
    assert {stream: len(result.rejects) for stream, _, result in mapped if result.rejects} == manifest.rejects


def test_merging_the_mapped_identities_gives_the_expected_customers(
    demo: tuple[Path, Manifest], demo_hub: Hub, mapped: list[tuple[str, int, MapResult]]
) -> None:
    _, manifest = demo
    reader = KeyReader(demo_hub.config.identity.blocked_values)
    parent: dict[Key, Key] = {}

    def find(key: Key) -> Key:
        while parent[key] != key:
            key = parent[key]
        return key

    for stream, _, result in mapped:
        system = stream.split(".")[0]
        for row in result.mapped:
            keys = [key_of(kind, value, system) for kind, value in reader.values(row.customer or {}).items()]
            for key in keys:
                parent.setdefault(key, key)
            for key in keys[1:]:
                parent[find(key)] = find(keys[0])
    assert sum(1 for key, up in parent.items() if key == up) == manifest.expected_customers


def test_config_blocks_the_placeholders(demo_hub: Hub) -> None:
    blocked = demo_hub.config.identity.blocked_values
    assert blocked == {"email": ["noreply@shop.no"], "member_no": ["0"], "phone": [e164("00000000")]}
    assert demo_hub.config.identity.max_per_customer["member_no"] == 1
    assert demo_hub.config.timezone == "Europe/Oslo"


# --- the command -------------------------------------------------------------------------------------------------


def test_demo_data_command_writes_the_data_set(tmp_path: Path) -> None:
    cli = typer.Typer()
    cli.callback()(lambda: None)  # a group, as hub's CLI is, so the command is addressed by name
    demo_plugin.hub_commands(cli=cli)
    out = tmp_path / "var" / "demo"
    result = CliRunner().invoke(cli, ["demo-data", "--out", str(out), "--customers", "200", "--seed", "5"])
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert manifest.persons == 200 and manifest.seed == 5
    assert f"{manifest.expected_customers:,} customers expected" in result.output


def test_the_demo_plugin_is_registered_by_entry_point() -> None:
    pm = make_plugin_manager()
    assert pm.get_plugin("demo") is demo_plugin
