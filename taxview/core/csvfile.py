"""Reading CSV files strictly: errors name the file, the column or the row (as a file line)."""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import InputError


def csv_rows(
    path: Path | str,
    columns: tuple[str, ...],
    what: str,
    error: type[InputError] = InputError,
    optional: tuple[str, ...] | None = None,
):
    """(row number, row) of a CSV file with a header; a missing file, missing columns, a row
    with the wrong number of fields, bytes that are not UTF-8 or a malformed row raise ``error``
    naming the file, column or row. With ``optional`` given, any other column is refused too."""
    path = Path(path)
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise error(what, f"cannot open {path}: {exc.strerror}") from exc
    with f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise error(missing[0], f"{path}: missing column(s) {missing}; need {list(columns)}")
            unknown = [c for c in header if optional is not None and c not in (*columns, *optional)]
            if unknown:
                raise error(unknown[0], f"{path}: unknown column(s) {unknown}; known {[*columns, *optional]}")
            for row_no, row in enumerate(reader, start=2):
                if None in row or any(row.get(c) is None for c in columns):
                    raise error("row", f"{path.name} row {row_no}: wrong number of fields")
                yield row_no, row
        except UnicodeDecodeError:
            raise error(what, f"{path}: not UTF-8 text") from None
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            raise error(what, f"{path.name} row {reader.line_num + 1}: {exc}") from None
