import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub import Batch, ConnectorContext, SourceError
from hub.plugins import connector_types, make_plugin_manager
from hub_plugins import files as files_plugin
from hub_plugins.files.settings import FilesSettings
from hub_plugins.files.source import FilesSource


def make_source(root: Path, batch_size: int = 3, **settings: Any) -> FilesSource:
    context = ConnectorContext(name="pos", project_dir=root, timezone="Europe/Oslo", extra={"batch_size": batch_size})
    return FilesSource(FilesSettings(**settings), context)


def read(source: FilesSource, cursor: Any = None, stream: str = "records") -> list[Batch]:
    """All batches of a read, each cursor passed through JSON as the engine stores it."""
    return [Batch(b.records, json.loads(json.dumps(b.cursor))) for b in source.read(stream, cursor)]


def records(batches: list[Batch]) -> list[dict[str, Any]]:
    return [record for batch in batches for record in batch.records]


def write_csv(path: Path, rows: list[str], header: str = "id,email") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


def rows(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n},{prefix}{n}@example.com" for n in range(count)]


def ids(batches: list[Batch]) -> list[str]:
    return [record["id"] for record in records(batches)]


# -- full reads -------------------------------------------------------------------------------------------


def test_full_read_covers_every_file_in_name_order_in_batches_of_at_most_batch_size(tmp_path):
    write_csv(tmp_path / "in" / "b.csv", rows("b", 2))
    write_csv(tmp_path / "in" / "a.csv", rows("a", 4))
    write_csv(tmp_path / "in" / "c.csv", rows("c", 5))

    batches = read(make_source(tmp_path, paths=["in/*.csv"]))

    assert ids(batches) == ["a0", "a1", "a2", "a3", "b0", "b1", "c0", "c1", "c2", "c3", "c4"]
    assert all(len(batch.records) <= 3 for batch in batches)
    assert records(batches)[0] == {"id": "a0", "email": "a0@example.com"}
    assert set(batches[-1].cursor["files"]) == {"in/a.csv", "in/b.csv", "in/c.csv"}
    assert "current" not in batches[-1].cursor


def test_gzip_csv_is_read_as_strings(tmp_path):
    with gzip.open(tmp_path / "sales.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("id,amount\n1,9.90\n2,15\n")

    batches = read(make_source(tmp_path, paths=["*.csv.gz"]))

    assert records(batches) == [{"id": "1", "amount": "9.90"}, {"id": "2", "amount": "15"}]


def test_gzip_jsonl_keeps_parsed_values(tmp_path):
    write_jsonl(tmp_path / "orders.jsonl.gz", [{"id": 1, "lines": [{"sku": "A", "qty": 2}], "paid": True}])

    batches = read(make_source(tmp_path, paths=["*.jsonl.gz"]))

    assert records(batches) == [{"id": 1, "lines": [{"sku": "A", "qty": 2}], "paid": True}]


def test_globs_recurse_match_each_file_once_and_skip_dot_files(tmp_path):
    write_csv(tmp_path / "x" / "2024" / "01" / "a.csv", rows("a", 1))
    write_csv(tmp_path / "x" / "b.csv", rows("b", 1))
    write_csv(tmp_path / "x" / ".c.csv.tmp", rows("c", 1))
    write_csv(tmp_path / "x" / ".d.csv", rows("d", 1))

    batches = read(make_source(tmp_path, paths=["x/**/*.csv", "x/b.csv"]))

    assert ids(batches) == ["a0", "b0"]
    assert list(batches[-1].cursor["files"]) == ["x/2024/01/a.csv", "x/b.csv"]


def test_absolute_patterns_outside_the_project_are_remembered_by_absolute_path(tmp_path):
    outside = write_csv(tmp_path / "elsewhere" / "a.csv", rows("a", 1))
    project = tmp_path / "project"
    project.mkdir()

    batches = read(make_source(project, paths=[str(tmp_path / "elsewhere" / "*.csv")]))

    assert ids(batches) == ["a0"]
    assert list(batches[-1].cursor["files"]) == [outside.as_posix()]


def test_a_pattern_that_matches_nothing_reads_nothing(tmp_path):
    batches = read(make_source(tmp_path, paths=["inbox/*.csv"]))

    assert records(batches) == []


def test_streams_form_offers_one_stream_per_entry_with_top_level_defaults(tmp_path):
    (tmp_path / "customers.csv").write_text("id;name\n1;Åse\n", encoding="cp1252")
    (tmp_path / "orders.csv").write_text("id|total\n7|10\n", encoding="cp1252")
    source = make_source(
        tmp_path,
        encoding="cp1252",
        delimiter=";",
        streams={
            "customers": {"paths": ["customers.csv"], "key": "id"},
            "orders": {"paths": ["orders.csv"], "delimiter": "|"},
        },
    )

    assert set(source.streams()) == {"customers", "orders"}
    assert source.streams()["customers"].key == "id"
    assert records(read(source, stream="customers")) == [{"id": "1", "name": "Åse"}]
    assert records(read(source, stream="orders")) == [{"id": "7", "total": "10"}]


def test_tsv_files_default_to_tab_and_semicolons_are_configurable(tmp_path):
    (tmp_path / "a.tsv").write_text("id\temail\n1\tx@example.com\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id;email\n2;y@example.com\n", encoding="utf-8")

    tsv = records(read(make_source(tmp_path, paths=["*.tsv"])))
    semicolon = records(read(make_source(tmp_path, paths=["b.csv"], delimiter=";")))

    assert tsv == [{"id": "1", "email": "x@example.com"}]
    assert semicolon == [{"id": "2", "email": "y@example.com"}]


def test_csv_without_header_uses_the_configured_columns(tmp_path):
    (tmp_path / "a.csv").write_text("1,x@example.com\n2,y@example.com\n", encoding="utf-8")

    batches = read(make_source(tmp_path, paths=["a.csv"], header=False, columns=["id", "email"]))

    assert ids(batches) == ["1", "2"]


def test_csv_quoted_fields_may_hold_delimiters_and_newlines(tmp_path):
    (tmp_path / "a.csv").write_text('id,note\n1,"a, b"\n2,"two\nlines"\n', encoding="utf-8")

    batches = read(make_source(tmp_path, paths=["a.csv"]))

    assert records(batches) == [{"id": "1", "note": "a, b"}, {"id": "2", "note": "two\nlines"}]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfid,email\n1,x@example.com\n")
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "2"}\n')

    assert ids(read(make_source(tmp_path, paths=["a.csv"]))) == ["1"]
    assert ids(read(make_source(tmp_path, paths=["b.jsonl"]))) == ["2"]


def test_utf16_jsonl_is_decoded_before_parsing(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "ø"}\n', encoding="utf-16")

    assert ids(read(make_source(tmp_path, paths=["a.jsonl"], encoding="utf-16"))) == ["ø"]


def test_an_explicit_format_reads_files_with_any_name(tmp_path):
    write_jsonl(tmp_path / "export.txt", [{"id": "1"}])

    assert ids(read(make_source(tmp_path, paths=["export.txt"], format="jsonl"))) == ["1"]


# -- incremental by file ----------------------------------------------------------------------------------


def test_a_second_read_from_the_last_cursor_returns_nothing(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 4))
    source = make_source(tmp_path, paths=["*.csv"])
    first = read(source)

    assert read(source, first[-1].cursor) == []


def test_a_new_file_is_read_alone(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 4))
    source = make_source(tmp_path, paths=["*.csv"])
    cursor = read(source)[-1].cursor
    write_csv(tmp_path / "b.csv", rows("b", 2))

    assert ids(read(source, cursor)) == ["b0", "b1"]


def test_a_changed_file_is_read_again(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 2))
    write_csv(tmp_path / "b.csv", rows("b", 2))
    source = make_source(tmp_path, paths=["*.csv"])
    cursor = read(source)[-1].cursor
    write_csv(tmp_path / "a.csv", ["a0,new@example.com", "a1,a1@example.com"])

    batches = read(source, cursor)

    assert records(batches) == [
        {"id": "a0", "email": "new@example.com"},
        {"id": "a1", "email": "a1@example.com"},
    ]
    assert read(source, batches[-1].cursor) == []


def test_a_removed_file_is_dropped_from_the_cursor(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 1))
    write_csv(tmp_path / "b.csv", rows("b", 1))
    source = make_source(tmp_path, paths=["*.csv"])
    cursor = read(source)[-1].cursor
    (tmp_path / "a.csv").unlink()

    batches = read(source, cursor)

    assert records(batches) == []
    assert list(batches[-1].cursor["files"]) == ["b.csv"]


@pytest.mark.parametrize("crash_after", range(4))
def test_resuming_from_a_mid_file_cursor_reads_exactly_the_rest(tmp_path, crash_after):
    write_csv(tmp_path / "a.csv", rows("a", 5))
    write_csv(tmp_path / "b.csv", rows("b", 4))
    source = make_source(tmp_path, paths=["*.csv"])
    full = read(source)
    committed = full[: crash_after + 1]

    resumed = read(source, committed[-1].cursor)

    assert ids(committed) + ids(resumed) == ids(full)


def test_a_half_read_file_that_changed_is_read_from_the_start(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 5))
    source = make_source(tmp_path, paths=["*.csv"])
    first_batch = read(source)[0]
    assert first_batch.cursor["current"]["records"] == 3
    write_csv(tmp_path / "a.csv", rows("n", 4))

    assert ids(read(source, first_batch.cursor)) == ["n0", "n1", "n2", "n3"]


def test_the_batch_that_ends_a_file_marks_it_done(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 2))

    batches = read(make_source(tmp_path, paths=["*.csv"]))

    assert len(batches) == 1
    assert batches[0].cursor["files"]["a.csv"]["size"] == (tmp_path / "a.csv").stat().st_size


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=4),
    batch_size=st.integers(min_value=1, max_value=6),
    crash=st.integers(min_value=0, max_value=100),
    bad_line=st.booleans(),
)
def test_resumed_read_after_any_crash_point_completes_the_full_read(sizes, batch_size, crash, bad_line):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n, size in enumerate(sizes):
            lines: list[Any] = [{"id": f"{n}-{i}"} for i in range(size)]
            if bad_line:
                lines.insert(size // 2, "{not json")
            write_jsonl(root / f"f{n}.jsonl", lines)
        source = make_source(root, batch_size=batch_size, paths=["*.jsonl"])
        full = read(source)
        prefix = full[: crash % (len(full) + 1)]

        resumed = read(source, prefix[-1].cursor if prefix else None)

        assert records(prefix) + records(resumed) == records(full)
        assert read(source, resumed[-1].cursor if resumed else prefix[-1].cursor) == []


# -- incremental by updated_at ----------------------------------------------------------------------------


def write_changes(path: Path, changes: list[tuple[str, str]]) -> None:
    write_csv(path, [f"{key},{at}" for key, at in changes], header="id,updated_at")


@settings(max_examples=100, deadline=None)
@given(
    earlier=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6),
    later=st.lists(st.lists(st.integers(min_value=0, max_value=9), max_size=6), min_size=1, max_size=3),
    batch_size=st.integers(min_value=1, max_value=4),
    crash=st.integers(min_value=0, max_value=100),
)
def test_resuming_an_updated_at_read_after_any_crash_point_completes_it(earlier, later, batch_size, crash):
    """Minutes out of order, some below, at and above what an earlier run saw: a resume changes nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_changes(root / "0.csv", [(f"e{i}", f"2024-05-01T10:{m:02d}:00") for i, m in enumerate(earlier)])
        source = make_source(root, batch_size=batch_size, paths=["*.csv"], key="id", updated_at="updated_at")
        start = read(source)[-1].cursor
        for n, minutes in enumerate(later, start=1):
            write_changes(
                root / f"{n}.csv", [(f"l{n}-{i}", f"2024-05-01T10:{m:02d}:00") for i, m in enumerate(minutes)]
            )
        full = read(source, start)
        prefix = full[: crash % (len(full) + 1)]

        resumed = read(source, prefix[-1].cursor if prefix else start)

        assert records(prefix) + records(resumed) == records(full)
        assert [batch.cursor for batch in prefix + resumed][-1:] == [batch.cursor for batch in full][-1:]


def test_updated_at_reads_only_changed_rows_of_a_re_exported_file(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T11:00:00")])
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at")
    cursor = read(source)[-1].cursor
    write_changes(
        tmp_path / "c.csv",
        [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T11:00:00"), ("a", "2024-05-01T12:00:00")],
    )

    assert [(r["id"], r["updated_at"]) for r in records(read(source, cursor))] == [("a", "2024-05-01T12:00:00")]


def test_a_second_updated_at_read_from_the_last_cursor_returns_nothing(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T11:00:00")])
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at", lag="1h")
    first = read(source)

    assert first[-1].cursor["updated_at"] == {"last_value": "2024-05-01T09:00:00+00:00", "last_keys": ["b"]}
    assert read(source, first[-1].cursor) == []


def test_rows_sharing_the_boundary_timestamp_are_neither_lost_nor_repeated(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T11:00:00")])
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at")
    cursor = read(source)[-1].cursor
    write_changes(
        tmp_path / "c.csv",
        [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T11:00:00"), ("c", "2024-05-01T11:00:00")],
    )

    second = read(source, cursor)
    (tmp_path / "c.csv").write_text((tmp_path / "c.csv").read_text() + "d,2024-05-01T11:00:00\n")
    third = read(source, second[-1].cursor)

    assert ids(second) == ["c"]
    assert ids(third) == ["d"]
    assert third[-1].cursor["updated_at"]["last_keys"] == ["b", "c", "d"]


def test_the_lag_window_is_read_again(tmp_path):
    write_changes(
        tmp_path / "c.csv",
        [("a", "2024-05-01T10:00:00"), ("g", "2024-05-01T10:12:00"), ("c", "2024-05-01T10:20:00")],
    )
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at", lag="10m")
    cursor = read(source)[-1].cursor
    (tmp_path / "c.csv").write_text((tmp_path / "c.csv").read_text() + "late,2024-05-01T10:15:00\n")

    assert ids(read(source, cursor)) == ["g", "late"]


def test_a_resumed_run_still_reads_rows_older_than_those_already_seen_in_it(tmp_path):
    write_changes(
        tmp_path / "c.csv",
        [
            ("x", "2024-05-01T12:00:00"),
            ("y", "2024-05-01T12:30:00"),
            ("z", "2024-05-01T13:00:00"),
            ("old", "2024-05-01T09:00:00"),
        ],
    )
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at")
    first_batch = read(source)[0]

    assert ids(read(source, first_batch.cursor)) == ["old"]


def test_rows_without_a_key_use_their_content_at_the_boundary(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00")])
    source = make_source(tmp_path, paths=["c.csv"], updated_at="updated_at")
    cursor = read(source)[-1].cursor
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00"), ("b", "2024-05-01T10:00:00")])

    assert ids(read(source, cursor)) == ["b"]


def test_rows_with_an_empty_updated_at_are_always_read(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "2024-05-01T10:00:00"), ("b", "")])
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at")
    cursor = read(source)[-1].cursor
    (tmp_path / "c.csv").write_text((tmp_path / "c.csv").read_text() + "\n")

    assert ids(read(source, cursor)) == ["b"]


def test_an_updated_at_that_is_not_a_timestamp_becomes_an_error_record(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "31/12/2024"), ("b", "2024-05-01T10:00:00")])

    batches = read(make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at"))

    error, good = records(batches)
    assert error["_error"] == "line 2: updated_at: '31/12/2024' is not an ISO 8601 timestamp"
    assert (error["_file"], error["_line"]) == ("c.csv", 2)
    assert json.loads(error["_raw"]) == {"id": "a", "updated_at": "31/12/2024"}
    assert good["id"] == "b"


def test_updated_at_may_compare_as_text(tmp_path):
    write_changes(tmp_path / "c.csv", [("a", "0001"), ("b", "0002")])
    source = make_source(tmp_path, paths=["c.csv"], key="id", updated_at="updated_at", updated_at_as="string")
    cursor = read(source)[-1].cursor
    write_changes(tmp_path / "c.csv", [("a", "0001"), ("b", "0002"), ("c", "0003")])

    assert ids(read(source, cursor)) == ["c"]


# -- bad data ---------------------------------------------------------------------------------------------


def test_a_malformed_jsonl_line_becomes_an_error_record_and_the_rest_is_read(tmp_path):
    write_jsonl(tmp_path / "o.jsonl", [{"id": "1"}, '{"id": "2",', "", "[1, 2]", {"id": "3"}])

    got = records(read(make_source(tmp_path, paths=["*.jsonl"])))

    assert [r.get("id") for r in got] == ["1", None, None, "3"]
    assert got[1] == {
        "_error": "line 2: invalid JSON: unexpected end of data at column 12",
        "_raw": '{"id": "2",',
        "_file": "o.jsonl",
        "_line": 2,
    }
    assert got[2]["_error"] == "line 4: expected a JSON object, got list"


def test_a_ragged_csv_row_becomes_an_error_record_and_the_rest_is_read(tmp_path):
    (tmp_path / "a.csv").write_text('id,email\n1,x@example.com\n2,"y, z",extra\n\n3\n4,w@example.com\n')

    got = records(read(make_source(tmp_path, paths=["a.csv"])))

    assert got[0] == {"id": "1", "email": "x@example.com"}
    assert got[1] == {
        "_error": "line 3: expected 2 columns, got 3",
        "_raw": '2,"y, z",extra',
        "_file": "a.csv",
        "_line": 3,
    }
    assert got[2]["_error"] == "line 5: expected 2 columns, got 1"
    assert got[3] == {"id": "4", "email": "w@example.com"}


def test_a_csv_file_without_a_configured_column_is_a_source_error(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 1))
    source = make_source(tmp_path, paths=["a.csv"], updated_at="changed")

    with pytest.raises(SourceError, match=r"a.csv: no column 'changed'; the columns are: id, email"):
        read(source)


def test_a_file_in_the_wrong_encoding_is_a_source_error_that_names_the_setting(tmp_path):
    (tmp_path / "a.csv").write_bytes("id,name\n1,Åse\n".encode("cp1252"))

    with pytest.raises(SourceError, match=r"a.csv: .*not valid utf-8-sig.*set encoding:"):
        read(make_source(tmp_path, paths=["a.csv"]))


def test_a_corrupt_gzip_file_is_a_source_error(tmp_path):
    (tmp_path / "a.csv.gz").write_bytes(b"not gzip at all")

    with pytest.raises(SourceError, match=r"a.csv.gz: not a readable gzip file"):
        read(make_source(tmp_path, paths=["*.gz"]))


def test_a_file_of_unknown_format_is_a_source_error_that_names_the_setting(tmp_path):
    (tmp_path / "a.txt").write_text("id\n1\n")

    with pytest.raises(SourceError, match="set format: csv or format: jsonl for stream 'records'"):
        read(make_source(tmp_path, paths=["*.txt"]))


def test_an_unknown_stream_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="has no stream 'orders'; it has: records"):
        read(make_source(tmp_path, paths=["*.csv"]), stream="orders")


def test_a_cursor_of_another_shape_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="not a files cursor"):
        read(make_source(tmp_path, paths=["*.csv"]), cursor="2024-01-01")


# -- check ------------------------------------------------------------------------------------------------


def test_check_counts_the_files_each_pattern_matches(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 1))
    write_csv(tmp_path / "b.csv", rows("b", 1))
    write_jsonl(tmp_path / "c.jsonl", [{"id": 1}])

    result = make_source(tmp_path, paths=["*.csv", "*.jsonl"]).check()

    assert result.ok
    assert result.message == "records: *.csv matches 2 files\nrecords: *.jsonl matches 1 file"


def test_check_fails_when_a_pattern_matches_nothing(tmp_path):
    result = make_source(tmp_path, paths=["inbox/*.csv"]).check()

    assert not result.ok
    assert result.message == f"records: inbox/*.csv matches no files (looked in {tmp_path})"


def test_check_fails_on_an_unreadable_file_and_names_it(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 1))
    (tmp_path / "b.csv.gz").write_bytes(b"broken")

    result = make_source(tmp_path, paths=["*.csv", "*.csv.gz"]).check()

    assert not result.ok
    assert "records: b.csv.gz: not a readable gzip file" in result.message


def test_check_fails_when_a_configured_column_is_missing(tmp_path):
    write_csv(tmp_path / "a.csv", rows("a", 1))

    result = make_source(tmp_path, paths=["*.csv"], key="customer_no").check()

    assert not result.ok
    assert "records: a.csv: no column 'customer_no'" in result.message


def test_check_fails_when_the_first_line_is_not_a_json_object(tmp_path):
    (tmp_path / "a.jsonl").write_text('[{"id": 1}]\n')

    result = make_source(tmp_path, paths=["*.jsonl"]).check()

    assert not result.ok
    assert "records: a.jsonl: line 1: expected a JSON object, got list" in result.message


# -- settings and registration ----------------------------------------------------------------------------


def test_settings_need_paths_or_streams():
    with pytest.raises(ValidationError, match="not neither"):
        FilesSettings()


def test_settings_take_paths_or_streams_not_both():
    with pytest.raises(ValidationError, match="not both"):
        FilesSettings(paths=["a.csv"], streams={"b": {"paths": ["b.csv"]}})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"paths": ["a.csv"], "header": False}, "header: false needs columns"),
        ({"paths": ["a.csv"], "delimiter": ":"}, "not a supported delimiter"),
        ({"paths": ["a.csv"], "encoding": "klingon"}, "unknown encoding"),
        ({"paths": ["a.csv"], "lag": "soon"}, "not a duration"),
        ({"paths": ["a.csv"], "updated_at": "u", "updated_at_as": "string", "lag": "5m"}, "lag needs"),
        ({"paths": ["a.jsonl"], "format": "jsonl", "delimiter": ";"}, "CSV files only"),
        ({"paths": []}, "at least 1 item"),
        ({"paths": ["a.csv"], "sheet": 1}, "Extra inputs are not permitted"),
        ({"streams": {"a": {"paths": ["a.csv"], "glob": "x"}}}, "Extra inputs are not permitted"),
    ],
)
def test_settings_reject_invalid_options(settings, message):
    with pytest.raises(ValidationError, match=message):
        FilesSettings(**settings)


def test_settings_accept_named_delimiters():
    assert FilesSettings(paths=["a.csv"], delimiter="tab").delimiter == "\t"


def test_the_plugin_registers_the_files_connector_type():
    pm = make_plugin_manager(entrypoints=False, plugins=[files_plugin])

    assert connector_types(pm) == {"files": FilesSource}
