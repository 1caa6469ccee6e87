"""A correct plugin passes the whole contract, every check included (the toy API has tokens and segments)."""

from tests.testing._toy import ToyContract


class TestToyContract(ToyContract):
    pass
