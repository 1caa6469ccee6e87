"""The bulk-import file format both sides agree on: a ZIP holding one UTF-8 CSV, and how columns are named.

Confirmed by Actito's docs: one CSV in a ZIP, the three separators by name, the ``charset``, ``mode`` and
``headerKeyColumn`` parameters. Inferred (see README): subscriptions and segmentations as columns named
``subscription:<name>`` and ``segmentation:<name>`` (value: ``true``/``false``, or the category), and an empty
cell meaning "no value given" rather than "erase".
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence

SEPARATORS = {"COMMA_SEPARATED_VALUES": ",", "SEMI_COLON_SEPARATED_VALUES": ";", "TAB_SEPARATED_VALUES": "\t"}
MODES = ("CREATE_UPDATE", "CREATE_ONLY", "UPDATE_ONLY")
SUBSCRIPTION = "subscription:"
SEGMENTATION = "segmentation:"


def zipped_csv(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, name: str = "import.csv", separator: str = ";"
) -> bytes:
    """A ZIP archive holding one UTF-8 CSV file with ``header`` and ``rows`` (every cell already text)."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=separator, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(name, text.getvalue().encode("utf-8"))
    return archive.getvalue()


def read_zipped_csv(data: bytes, *, separator: str, charset: str = "UTF-8") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the single CSV in ``data``; ValueError saying what is wrong with the file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zipped:
            names = [info.filename for info in zipped.infolist() if not info.is_dir()]
            if len(names) != 1:
                raise ValueError(f"the ZIP file must hold exactly one CSV file, not {len(names)}")
            raw = zipped.read(names[0])
    except zipfile.BadZipFile:
        raise ValueError("inputFile is not a ZIP file") from None
    try:
        text = raw.decode(charset).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError):
        raise ValueError(f"the CSV file is not valid {charset}") from None
    table = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    if not table or not table[0]:
        raise ValueError("the CSV file has no header line")
    return table[0], table[1:]
