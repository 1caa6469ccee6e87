"""The built-in mapping transforms, registered by the standard plugin through ``hub_transforms``.

Each entry of :data:`TRANSFORMS` is a *factory*: the mapping compiler calls it once with the arguments
written in the YAML (``{e164: {region: SE}}`` -> ``e164(region="SE")``, ``{truncate: 40}`` ->
``truncate(40)``) and gets back a function of one value. That function runs per record, raises
``ValueError`` with a short reason to reject the record, and passes ``None`` (a missing value) through
unless missing values are its point (``default``). A factory raises ``TypeError`` or ``ValueError`` for
arguments that make no sense, so a mapping fails when it is compiled rather than on every record.

Text transforms accept numbers too (JSON sources give ints) and write them as text first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

Transform = Callable[[Any], Any]
Factory = Callable[..., Transform]

_UNSET: Any = object()


#: Parsed e-mails and phones are cached per transform: the same customer's keys repeat on every order they place.
_CACHE_SIZE = 1 << 15
#: E-mail length limits in characters (ASCII): the whole address, the mailbox (strict mode), the domain.
_EMAIL_MAX, _MAILBOX_MAX, _DOMAIN_MAX = 254, 64, 253


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any) -> str:
    """A value as text: numbers are written out; anything else (a list, an object, a bool) is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {type(value).__name__}")


def _text_arg(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"`{name}` must be text, got {_short(value)}")
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text_transform(method: Callable[[str], str]) -> Transform:
    def apply(value: Any) -> Any:
        return None if value is None else method(_text(value))

    return apply


def strip() -> Transform:
    """Remove leading and trailing whitespace."""
    return _text_transform(str.strip)


def lower() -> Transform:
    return _text_transform(str.lower)


def upper() -> Transform:
    return _text_transform(str.upper)


def title() -> Transform:
    """``"ola NORDMANN"`` -> ``"Ola Nordmann"``."""
    return _text_transform(str.title)


def email() -> Transform:
    """Normalise an e-mail address (trimmed, lower case) and reject one that is not valid. No DNS look-up:
    mapping must not depend on the network, and deliverability is the ESP's business.

    Most addresses are plain ASCII (``ola.nordmann+shop@example.no``): :func:`_plain_email` accepts those
    in about a microsecond, and only the rest go through email_validator (~100 µs each), cached.
    """
    special = tuple("." + name for name in SPECIAL_USE_DOMAIN_NAMES)

    @lru_cache(maxsize=_CACHE_SIZE)
    def normalise(text: str) -> str:
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"{_short(text)} is not a valid e-mail address: {exc}") from None

    def apply(value: Any) -> Any:
        if value is None:
            return None
        text = _text(value).strip().lower()
        return text if _plain_email(text, special) else normalise(text)

    return apply


#: A lower-case ASCII address that email_validator accepts unchanged: a dot-atom mailbox of common characters,
#: and host labels of letters, digits and inner hyphens under an alphabetic top-level domain.
_PLAIN_EMAIL = re.compile(r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _plain_email(text: str, special: tuple[str, ...]) -> bool:
    """True when ``text`` is certainly valid and already normalised, so email_validator would return it as is.

    Conservative on purpose: anything it does not vouch for (other characters, a ``--`` such as Punycode's
    ``xn--``, a special-use domain such as ``.local``, the length limits, including the mailbox's 64 of
    strict mode) is left to email_validator, which decides and words the error.
    """
    if len(text) > _EMAIL_MAX or _PLAIN_EMAIL.fullmatch(text) is None:
        return False
    mailbox, _, domain = text.partition("@")
    return (
        len(mailbox) <= _MAILBOX_MAX
        and len(domain) <= _DOMAIN_MAX
        and "--" not in domain
        and not domain.endswith(special)
    )


def e164(region: str | bool | None = None) -> Transform:
    """Normalise a phone number to E.164 (``+4791234567``). ``region`` (ISO 3166 alpha-2) reads national
    numbers and the region's international prefix (``0047...``); without it a number must start with ``+``."""
    if region is False:
        # YAML 1.1 reads an unquoted NO as false: `{e164: {region: NO}}` means Norway (the "Norway problem").
        region = "NO"
    if region is not None:
        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {region!r}; use an ISO 3166 alpha-2 code such as 'NO' or 'SE'")
        region = region.upper()
    default_region = region

    @lru_cache(maxsize=_CACHE_SIZE)
    def normalise(text: str) -> str:
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            raise ValueError(f"{_short(text)} is not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError(f"{_short(text)} is not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def apply(value: Any) -> Any:
        if value is None:
            return None
        return normalise(_text(value))

    return apply


def value_map(
    values: dict[str, Any] | None = None, *, default: Any = _UNSET, strict: bool = False, **pairs: Any
) -> Transform:
    """Replace values through a table: ``{map: {J: opt_in, N: opt_out}}``. Unmapped values pass through,
    become ``default`` when it is given, or reject the record with ``strict: true``. A source value that is
    literally ``values``, ``default`` or ``strict`` goes in the ``values:`` form:
    ``{map: {values: {...}, strict: true}}``."""
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"expected a table of values, got {_short(values)}")
    table = {str(k): v for k, v in {**(values or {}), **pairs}.items()}
    if not table:
        raise ValueError("the value table is empty")
    if not isinstance(strict, bool):
        raise ValueError(f"`strict` must be true or false, got {_short(strict)}")
    known = ", ".join(repr(k) for k in table)

    def apply(value: Any) -> Any:
        if value is None:
            return None
        key = value if isinstance(value, str) else str(value)
        if key in table:
            return table[key]
        if strict:
            raise ValueError(f"{_short(value)} is not one of {known}")
        return value if default is _UNSET else default

    return apply


def default(value: Any) -> Transform:
    """Use ``value`` where the value so far is missing (mid-chain; a field's ``default:`` applies last)."""
    fallback = value

    def apply(current: Any) -> Any:
        return fallback if _is_missing(current) else current

    return apply


def concat(sep: str = " ") -> Transform:
    """Join a list (from ``paths:`` or a ``[]`` path) with ``sep``, leaving out missing items."""
    separator = _text_arg("sep", sep)

    def apply(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return separator.join(_text(item).strip() for item in value if not _is_missing(item))

    return apply


def split(sep: str | None = None, index: int | None = None) -> Transform:
    """Split text on ``sep`` (default: any whitespace) into trimmed parts: the list of non-empty parts, or
    with ``index`` the part at that position (negative counts from the end; past the end is missing)."""
    separator = None if sep is None else _text_arg("sep", sep)
    if separator == "":
        raise ValueError("`sep` cannot be empty")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise ValueError(f"`index` must be a whole number, got {_short(index)}")

    def apply(value: Any) -> Any:
        if value is None:
            return None
        parts = [part.strip() for part in _text(value).split(separator)]
        if index is None:
            return [part for part in parts if part]
        return parts[index] if -len(parts) <= index < len(parts) else None

    return apply


def replace(old: str, new: str = "") -> Transform:
    """Replace every ``old`` with ``new`` (default: remove it)."""
    before, after = _text_arg("old", old), _text_arg("new", new)
    if not before:
        raise ValueError("`old` cannot be empty")

    def apply(value: Any) -> Any:
        return None if value is None else _text(value).replace(before, after)

    return apply


def digits() -> Transform:
    """Keep only the digits: ``"NO-0150 Oslo"`` -> ``"0150"``."""

    def apply(value: Any) -> Any:
        return None if value is None else "".join(char for char in _text(value) if char.isdecimal())

    return apply


def prefix(text: str) -> Transform:
    """Put ``text`` before a present value: ``{prefix: "POS-"}``."""
    before = _text_arg("prefix", text)

    def apply(value: Any) -> Any:
        return None if value is None else before + _text(value)

    return apply


def suffix(text: str) -> Transform:
    """Put ``text`` after a present value."""
    after = _text_arg("suffix", text)

    def apply(value: Any) -> Any:
        return None if value is None else _text(value) + after

    return apply


def truncate(length: int) -> Transform:
    """Cut text to at most ``length`` characters."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"`length` must be a whole number of 0 or more, got {_short(length)}")

    def apply(value: Any) -> Any:
        return None if value is None else _text(value)[:length]

    return apply


def nullif(values: list[Any] | str | int | float) -> Transform:
    """Treat these values (compared as trimmed text) as missing: ``{nullif: ["-", "0", "n/a"]}``."""
    items = values if isinstance(values, list) else [values]
    nulls = frozenset(_text_arg("nullif", item).strip() for item in items)

    def apply(value: Any) -> Any:
        if value is None or isinstance(value, bool | list | dict):
            return value
        text = value.strip() if isinstance(value, str) else str(value)
        return None if text in nulls else value

    return apply


#: Transform name -> factory; what the standard plugin returns from ``hub_transforms``.
TRANSFORMS: dict[str, Factory] = {
    "concat": concat,
    "default": default,
    "digits": digits,
    "e164": e164,
    "email": email,
    "lower": lower,
    "map": value_map,
    "nullif": nullif,
    "prefix": prefix,
    "replace": replace,
    "split": split,
    "strip": strip,
    "suffix": suffix,
    "title": title,
    "truncate": truncate,
    "upper": upper,
}
