"""What a field does per record, after its raw value is found: transforms -> missing? default -> type ->
required check, as one closure per field.

This is the hot path: a 10-field mapping calls these closures ten times per record. The common case, one
plain key of the record and no transforms, gets closures of its own that inline ``dict.get`` and, for
``decimal`` and ``int`` fields, the C constructor; anything unusual falls back to the full converter, which
also writes the error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.mapping.coerce import Converter

Transform = Callable[[Any], Any]
FieldGetter = Callable[[dict[str, Any], Any, int], Any]

_REQUIRED = "required value is missing"
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def is_missing(value: Any) -> bool:
    """None, blank text and empty lists or objects are missing."""
    if value is None:
        return True
    cls = value.__class__
    if cls is str:
        return not value or value.isspace()
    if cls is list or cls is dict:
        return not value
    return False


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A field's steps after extraction, ready to be closed over."""

    transforms: tuple[tuple[str, Transform], ...]
    convert: Converter
    default: Any
    has_default: bool
    required: bool
    type: str

    def run_once(self, value: Any) -> Any:
        """Run the pipeline on a constant, at compile time."""
        return self.closure(lambda root, element, index: value)({}, None, 0)

    def closure(self, extract: FieldGetter, root_key: str | None = None) -> FieldGetter:
        """The per-record closure ``(root, element, index) -> value``; raises ValueError with the reason.

        ``root_key``: the field reads this one key of the record, so ``extract`` can be inlined.
        """
        if root_key is not None and not self.transforms:
            if self.type == "decimal":
                return self._decimal_key(root_key)
            if self.type == "int":
                return self._int_key(root_key)
            return self._key(root_key)
        return self._general(extract)

    def _missing(self) -> Callable[[], Any]:
        default, has_default, required = self.default, self.has_default, self.required

        def missing() -> Any:
            if has_default:
                return default
            if required:
                raise ValueError(_REQUIRED)
            return None

        return missing

    def _key(self, key: str) -> FieldGetter:
        convert, missing, text = self.convert, self._missing(), self.type == "str"

        def get_key(root: dict[str, Any], element: Any, index: int) -> Any:
            value = root.get(key)
            if value is None:
                return missing()
            cls = value.__class__
            if cls is str:
                if not value or value.isspace():
                    return missing()
                return value if text else convert(value)
            if (cls is list or cls is dict) and not value:
                return missing()
            return convert(value)

        return get_key

    def _decimal_key(self, key: str) -> FieldGetter:
        convert, missing = self.convert, self._missing()

        def get_decimal(root: dict[str, Any], element: Any, index: int) -> Any:
            value = root.get(key)
            if value.__class__ is str and value and not value.isspace():
                try:
                    number = Decimal(value)
                except (ArithmeticError, ValueError):  # decimal.InvalidOperation: "1 234,50", or not a number at all
                    return convert(value)
                return number if number.is_finite() else convert(value)
            return missing() if is_missing(value) else convert(value)

        return get_decimal

    def _int_key(self, key: str) -> FieldGetter:
        convert, missing = self.convert, self._missing()

        def get_int(root: dict[str, Any], element: Any, index: int) -> Any:
            value = root.get(key)
            if value.__class__ is str and value and not value.isspace():
                try:
                    number = int(value)
                except ValueError:  # "12.0", "1 234", or not a number at all
                    return convert(value)
                return number if _INT_MIN <= number <= _INT_MAX else convert(value)
            return missing() if is_missing(value) else convert(value)

        return get_int

    def _general(self, extract: FieldGetter) -> FieldGetter:
        transforms, convert, missing = self.transforms, self.convert, self._missing()

        def get(root: dict[str, Any], element: Any, index: int) -> Any:
            value = extract(root, element, index)
            if is_missing(value):
                value = None
            for name, transform in transforms:
                try:
                    value = transform(value)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{name}: {exc}") from None
            if transforms and is_missing(value):
                value = None
            return missing() if value is None else convert(value)

        return get
