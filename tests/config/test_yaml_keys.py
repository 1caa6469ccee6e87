"""YAML keys are read as the words they are: a trigger's ``on:`` is the key "on", not the boolean true."""

from __future__ import annotations

from hub._yaml import loads_located


def test_yaml_1_1_boolean_words_as_keys_stay_words_and_as_values_stay_booleans():
    located = loads_located("on: order_placed\nyes: 1\noff: 2\nflag: on\n")

    assert located.data == {"on": "order_placed", "yes": 1, "off": 2, "flag": True}
    assert located.line(("on",)) == 1
