"""The fast paths of the hot loop agree exactly with the slow, authoritative code they short-cut."""

from __future__ import annotations

import string
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.mapping.coerce import _fixed_width
from hub_plugins.standard.transforms import TRANSFORMS

FORMATS = ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S"]
digits_and_noise = st.text(alphabet=string.digits + "-.:T /+x", min_size=0, max_size=22)


def strptime_or_none(text: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


@given(fmt=st.sampled_from(FORMATS), moment=st.datetimes(min_value=datetime(1900, 1, 1)))
def test_fixed_width_parsing_reads_every_well_formed_text_as_strptime_does(fmt, moment):
    parse = _fixed_width(fmt)
    assert parse is not None
    text = moment.strftime(fmt)
    assert parse(text) == strptime_or_none(text, fmt)


@given(fmt=st.sampled_from(FORMATS), text=digits_and_noise)
def test_fixed_width_parsing_never_accepts_what_strptime_rejects_or_reads_it_differently(fmt, text):
    parsed = _fixed_width(fmt)(text)
    if parsed is not None:
        assert parsed == strptime_or_none(text, fmt)


local = st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20)
domain = st.lists(
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12), min_size=2, max_size=3
)


@settings(max_examples=1000)
@given(local=local, labels=domain)
def test_the_email_transform_agrees_with_email_validator(local, labels):
    text = f"{local}@{'.'.join(labels)}".lower()
    email = TRANSFORMS["email"]()
    try:
        expected: str | None = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = email(text)
    except ValueError:
        got = None
    assert got == expected
