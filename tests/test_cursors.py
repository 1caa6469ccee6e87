import json
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from hub.cursors import Duration, IncrementalCursor, parse_duration, record_digest

OSLO = ZoneInfo("Europe/Oslo")


def at(minute: int) -> str:
    hour, minute = divmod(minute, 60)
    return f"2024-05-01T{10 + hour:02d}:{minute:02d}:00+00:00"


def run(state: dict | None, rows: list[tuple[str, str]], **kwargs) -> tuple[list[str], dict]:
    """One complete run over ``rows`` of (timestamp, key): the keys read and the state to save."""
    cursor = IncrementalCursor.from_state(state, **kwargs)
    read = []
    for raw, key in rows:
        value = cursor.parse(raw)
        if value is None or cursor.accepts(value, key):
            if value is not None:
                cursor.observe(value, key)
            read.append(key)
    return read, json.loads(json.dumps(cursor.completed_state()))


def test_first_run_reads_everything_and_remembers_the_maximum_and_its_keys():
    read, state = run(None, [(at(5), "a"), (at(9), "b"), (at(9), "c"), (at(1), "d")])

    assert read == ["a", "b", "c", "d"]
    assert state == {"last_value": at(9), "last_keys": ["b", "c"]}


def test_records_at_the_boundary_are_neither_lost_nor_read_twice():
    _, state = run(None, [(at(5), "a"), (at(9), "b")])

    read, state = run(state, [(at(5), "a"), (at(9), "b"), (at(9), "c"), (at(10), "d")])

    assert read == ["c", "d"]
    assert state == {"last_value": at(10), "last_keys": ["d"]}


def test_a_new_record_at_the_boundary_timestamp_joins_the_boundary():
    _, state = run(None, [(at(9), "b")])

    read, state = run(state, [(at(9), "b"), (at(9), "c")])

    assert read == ["c"]
    assert state == {"last_value": at(9), "last_keys": ["b", "c"]}


def test_lag_rereads_the_window_below_the_last_value_but_not_the_boundary():
    _, state = run(None, [(at(0), "a"), (at(12), "g"), (at(20), "c")])

    read, _ = run(state, [(at(0), "a"), (at(12), "g"), (at(15), "late"), (at(20), "c")], lag=timedelta(minutes=10))

    assert read == ["g", "late"]


def test_mid_run_state_keeps_the_starting_point_so_a_resumed_run_still_reads_older_rows():
    _, saved = run(None, [(at(5), "a")])
    cursor = IncrementalCursor.from_state(saved)
    cursor.observe(cursor.parse(at(30)), "z")

    resumed = IncrementalCursor.from_state(json.loads(json.dumps(cursor.state())))

    assert resumed.accepts(resumed.parse(at(10)), "m")
    assert not resumed.accepts(resumed.parse(at(5)), "a")
    assert resumed.last_value == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def test_completed_state_moves_the_starting_point_up():
    cursor = IncrementalCursor.from_state({"last_value": at(5), "last_keys": ["a"]})
    cursor.observe(cursor.parse(at(30)), "z")

    following = IncrementalCursor.from_state(cursor.completed_state())

    assert following.start_value == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert not following.accepts(following.parse(at(10)), "m")


def test_state_without_progress_is_the_same_as_the_completed_state():
    cursor = IncrementalCursor.from_state({"last_value": at(5), "last_keys": ["a"]})

    assert cursor.state() == cursor.completed_state() == {"last_value": at(5), "last_keys": ["a"]}


def test_naive_timestamps_are_in_the_given_timezone_and_compare_with_aware_ones():
    cursor = IncrementalCursor.from_state({"last_value": "2024-05-01T08:00:00+00:00"}, timezone=OSLO)

    assert cursor.parse("2024-05-01T10:00:00") == cursor.parse("2024-05-01T08:00:00Z")
    assert not cursor.accepts(cursor.parse("2024-05-01T09:59:59"), "x")
    assert cursor.accepts(cursor.parse("2024-05-01 10:00:01"), "x")


@pytest.mark.parametrize(
    "raw",
    [
        "2024-05-01T10:00:00Z",
        "2024-05-01T12:00:00+02:00",
        " 2024-05-01T10:00:00Z ",
        datetime(2024, 5, 1, 12, tzinfo=OSLO),
        datetime(2024, 5, 1, 10),
        "2024-05-01T10:00:00.000000+00:00",
    ],
)
def test_parse_accepts_iso_text_and_datetimes(raw):
    cursor = IncrementalCursor()
    cursor.observe(cursor.parse(raw), "k")

    assert cursor.last_value == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_parse_takes_a_date_as_its_midnight_in_the_timezone():
    cursor = IncrementalCursor(timezone=OSLO)
    cursor.observe(cursor.parse(date(2024, 5, 1)), "k")

    assert cursor.last_value == datetime(2024, 4, 30, 22, tzinfo=UTC)


@pytest.mark.parametrize("raw", [None, ""])
def test_a_missing_value_parses_to_none(raw):
    assert IncrementalCursor().parse(raw) is None


@pytest.mark.parametrize("raw", ["31/12/2024", "yesterday", 1714557600])
def test_a_value_that_is_not_a_timestamp_is_an_error(raw):
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp"):
        IncrementalCursor().parse(raw)


def test_string_cursors_compare_text():
    _, state = run(None, [("B-0002", "2"), ("B-0010", "10")], kind="string")

    read, _ = run(state, [("B-0002", "2"), ("B-0010", "10"), ("B-0011", "11")], kind="string")

    assert state["last_value"] == "B-0010"
    assert read == ["11"]


def test_string_cursors_take_no_lag():
    with pytest.raises(ValueError, match="lag"):
        IncrementalCursor(kind="string", lag=timedelta(minutes=1))


def test_initial_value_skips_older_records_on_the_first_run_only():
    read, state = run(None, [(at(1), "old"), (at(7), "new")], initial_value=at(5))

    assert read == ["new"]
    assert IncrementalCursor.from_state(state, initial_value=at(59)).start_value == datetime(
        2024, 5, 1, 10, 7, tzinfo=UTC
    )


def test_initial_value_is_kept_when_a_run_finds_nothing():
    _, state = run(None, [(at(1), "old")], initial_value=at(5))

    read, _ = run(state, [(at(1), "old"), (at(3), "older")])

    assert read == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("PT10M", timedelta(minutes=10)),
        ("600", timedelta(minutes=10)),
        (90, timedelta(seconds=90)),
    ],
)
def test_duration_settings_accept_compact_iso_and_seconds(text, expected):
    assert TypeAdapter(Duration).validate_python(text) == expected


@pytest.mark.parametrize("text", ["-5m", "ten minutes", "5 parsecs", "-60"])
def test_duration_settings_reject_negative_or_unknown_text(text):
    with pytest.raises(ValidationError):
        TypeAdapter(Duration).validate_python(text)


def test_parse_duration_leaves_non_strings_alone():
    assert parse_duration(timedelta(seconds=3)) == timedelta(seconds=3)


def test_record_digest_ignores_key_order_and_sees_values():
    assert record_digest({"a": 1, "b": "x"}) == record_digest({"b": "x", "a": 1})
    assert record_digest({"a": 1, "b": "x"}) != record_digest({"a": 1, "b": "y"})


@given(
    runs=st.lists(st.lists(st.integers(min_value=0, max_value=3), max_size=6), min_size=1, max_size=5),
    seed=st.integers(),
)
def test_every_record_is_read_exactly_once_across_runs(runs, seed):
    """Records appear with values at or above the last one seen; each run reads the whole table, shuffled."""
    table: list[tuple[str, str]] = []
    seen: list[str] = []
    state = None
    high = 0
    shuffle = random.Random(seed).shuffle
    for steps in runs:
        for step in steps:
            high += step
            table.append((at(high), f"k{len(table)}"))
        rows = list(table)
        shuffle(rows)
        read, state = run(state, rows)
        seen.extend(read)

    assert sorted(seen) == sorted(key for _, key in table)
