"""How the emulator reads one bulk import and applies it line by line, keeping a report of the rejected lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub_plugins.actito._model import ApiError, Import
from hub_plugins.actito.csvformat import MODES, SEGMENTATION, SEPARATORS, SUBSCRIPTION, read_zipped_csv


def read(data: bytes, parameters: Mapping[str, Any], max_bytes: int) -> tuple[str, str, list[str], list[list[str]]]:
    """``(mode, key column, header, rows)`` of an import, or :class:`ApiError` 400 saying what is wrong."""
    if len(data) > max_bytes:
        raise ApiError(400, "FILE_TOO_LARGE", f"the ZIP file is larger than {max_bytes} bytes")
    mode = parameters.get("mode", "CREATE_UPDATE")
    separator = SEPARATORS.get(parameters.get("format", "COMMA_SEPARATED_VALUES"))
    key = parameters.get("headerKeyColumn")
    if mode not in MODES or separator is None or not isinstance(key, str):
        raise ApiError(400, "INVALID_PARAMETERS", "give mode, format and headerKeyColumn (see the docs)")
    try:
        header, rows = read_zipped_csv(data, separator=separator, charset=parameters.get("charset", "UTF-8"))
    except ValueError as exc:
        raise ApiError(400, "INVALID_FILE", str(exc)) from None
    if key not in header:
        raise ApiError(400, "INVALID_PARAMETERS", f"headerKeyColumn '{key}' is not a column of the file")
    return mode, key, header, rows


def profile_line(cells: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, bool], list[tuple[str, str, bool]]]:
    """A profile line's attributes, subscriptions (``subscription:<name>``) and segmentations
    (``segmentation:<name>``, the cell being the category)."""
    values: dict[str, Any] = {}
    subscriptions: dict[str, bool] = {}
    segments: list[tuple[str, str, bool]] = []
    for name, cell in cells.items():
        if name.startswith(SUBSCRIPTION):
            if cell.lower() not in ("true", "false"):
                raise ApiError(400, "INVALID_SUBSCRIPTION", f"{name} must be true or false")
            subscriptions[name[len(SUBSCRIPTION) :]] = cell.lower() == "true"
        elif name.startswith(SEGMENTATION):
            segments.append((name[len(SEGMENTATION) :], cell, True))
        else:
            values[name] = cell
    return values, subscriptions, segments


def apply(
    job: Import, header: list[str], rows: list[list[str]], key: str, upsert: Callable[[dict[str, str]], bool]
) -> None:
    """Apply each line with ``upsert`` (True: created); a line it refuses goes to the report, the rest go on.
    An empty cell is "no value given" (inferred; see the README)."""
    for number, row in enumerate(rows, 2):
        cells = {name: cell for name, cell in zip(header, row, strict=False) if cell != ""}
        try:
            created = upsert(cells)
        except ApiError as exc:
            error = {"line": number, "key": cells.get(key), "code": exc.code, "message": exc.message}
            if "reference" in exc.extra:
                error["reference"] = exc.extra["reference"]
            job.errors.append(error)
            continue
        if created:
            job.created += 1
        else:
            job.updated += 1
