"""Trade-history CSV (domain.md §9) and the wash-sale report in JSON and as a table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from solver.io import csv_rows

from .errors import LedgerInputError
from .washsale import Report, TradeIn

_NUMBER = r"^\s*[0-9]+(\.[0-9]+)?\s*$"
COLUMNS = ("date", "account", "household", "account_type", "symbol", "side", "quantity", "price")


def read_trades_csv(path: Path | str) -> list[TradeIn]:
    """Parse every row (errors name the row and column); dates must not go back. The rule checks
    each trade's fields as it applies it (``washsale.validate_trade``), naming the row too.
    Rows are numbered as lines of the file (the header is row 1)."""
    path = Path(path)
    try:  # columnar parse (fast); a file it refuses is read again row by row for the exact error
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8"),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys((*COLUMNS, "lot_id"), pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        for _ in csv_rows(path, COLUMNS, "trades", LedgerInputError, optional=("lot_id",)):
            pass
        raise LedgerInputError(
            "trades", f"{path}: not a CSV file with the header {','.join(COLUMNS)}[,lot_id]"
        ) from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise LedgerInputError(missing[0], f"{path}: missing column(s) {missing}; need {list(COLUMNS)}")
    unknown = [c for c in table.column_names if c not in (*COLUMNS, "lot_id")]
    if unknown:
        raise LedgerInputError(unknown[0], f"{path}: unknown column(s) {unknown}")
    for name, pattern, what in (
        ("date", r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$", "an ISO date (YYYY-MM-DD)"),
        ("quantity", _NUMBER, "a plain decimal number"),
        ("price", _NUMBER, "a plain decimal number"),
    ):  # plain ASCII forms only: no 1_000, no other scripts' digits, no 20240102
        ok = pc.match_substring_regex(table.column(name), pattern).to_numpy(zero_copy_only=False)
        if not ok.all():
            i = int((~ok).argmax())
            value = table.column(name)[i].as_py()
            raise LedgerInputError(name, f"{path.name} row {i + 2}: {name} {value!r} is not {what}")
    cols = [table.column(c).to_pylist() for c in COLUMNS]
    lot_ids = table.column("lot_id").to_pylist() if "lot_id" in table.column_names else [""] * table.num_rows
    out: list[TradeIn] = []
    last: dt.date | None = None
    dates: dict[str, dt.date] = {}  # a file has a few thousand distinct dates
    for i, (date_s, account, household, kind, symbol, side, qty_s, price_s, lot_id) in enumerate(
        zip(*cols, lot_ids, strict=True)
    ):
        row_no = i + 2
        date = dates.get(date_s)
        if date is None:
            try:
                date = dates[date_s] = dt.date.fromisoformat(date_s.strip())
            except ValueError:
                raise LedgerInputError("date", f"{path.name} row {row_no}: {date_s!r} is not an ISO date") from None
        values = []
        for name, text in (("quantity", qty_s), ("price", price_s)):
            try:
                values.append(Decimal(text.strip()))
            except InvalidOperation:
                raise LedgerInputError(name, f"{path.name} row {row_no}: {text!r} is not a number") from None
        if last is not None and date < last:
            raise LedgerInputError(
                "date", f"{path.name} row {row_no}: {date} comes after {last}: trades must be in date order"
            )
        last = date
        out.append(
            TradeIn(
                date,
                account.strip(),
                household.strip(),
                kind.strip().lower(),
                symbol.strip(),
                side.strip().lower(),
                values[0],
                values[1],
                lot_id.strip() or None,
                row_no,
            )
        )
    return out


def money(cents: int) -> str:
    """Exact decimal string of dollars: -12345 -> '-123.45'."""
    d, c = divmod(abs(cents), 100)
    return f"-{d}.{c:02d}" if cents < 0 else f"{d}.{c:02d}"


def report_to_dict(r: Report) -> dict[str, Any]:
    iso: dict = {}  # dates repeat: format each once

    def day(d) -> str:
        text = iso.get(d)
        if text is None:
            text = iso[d] = d.isoformat()
        return text

    sales = [
        {
            "date": day(s.date),
            "account": s.account,
            "symbol": s.symbol,
            "quantity": str(s.quantity),
            "proceeds": money(s.proceeds_cents),
            "basis": money(s.basis_cents),
            "gain": money(s.gain_cents),
            "disallowed": money(s.disallowed_cents),
            "permanently_disallowed": money(s.permanent_cents),
            "recognized": money(s.recognized_cents),
            "term": s.term,
            "lot_id": s.lot_id,
            "recognized_in_account": s.recognized,
            "replacements": [
                {
                    "lot_id": x.lot_id,
                    "account": x.account,
                    "shares": str(x.shares),
                    "amount": money(x.amount_cents),
                    "permanent": x.permanent,
                }
                for x in s.replacements
            ],
        }
        for s in r.sales
    ]
    lots = [
        {
            "lot_id": x.lot_id,
            "account": x.account,
            "symbol": x.symbol,
            "quantity": str(x.quantity),
            "basis": money(x.basis_cents),
            "acquired": day(x.acquired),
            "holding_start": day(x.holding_start),
        }
        for x in r.lots
    ]
    totals: dict[str, dict[str, dict[str, int]]] = {}
    for s in r.sales:
        t = totals.setdefault(s.account, {}).setdefault(
            s.term,
            dict.fromkeys(("proceeds", "basis", "gain", "disallowed", "permanently_disallowed", "recognized"), 0),
        )
        t["proceeds"] += s.proceeds_cents
        t["basis"] += s.basis_cents
        t["gain"] += s.gain_cents
        t["disallowed"] += s.disallowed_cents
        t["permanently_disallowed"] += s.permanent_cents
        t["recognized"] += s.recognized_cents
    return {
        "sales": sales,
        "lots": lots,
        "totals": {
            a: {term: {k: money(v) for k, v in t.items()} for term, t in terms.items()} for a, terms in totals.items()
        },
    }


def report_table(r: Report) -> str:
    d = report_to_dict(r)
    lines = [
        "SALES",
        f"{'date':<10} {'account':<10} {'symbol':<7} {'qty':>10} {'proceeds':>12} {'basis':>12} "
        f"{'gain':>11} {'disallowed':>11} {'perm.lost':>10} {'term':<5} lot",
    ]
    for s in d["sales"]:
        lines.append(
            f"{s['date']:<10} {s['account']:<10} {s['symbol']:<7} {s['quantity']:>10} {s['proceeds']:>12} "
            f"{s['basis']:>12} {s['gain']:>11} {s['disallowed']:>11} {s['permanently_disallowed']:>10} "
            f"{s['term']:<5} {s['lot_id']}"
        )
    lines += [
        "",
        "OPEN LOTS",
        f"{'lot':<16} {'account':<10} {'symbol':<7} {'qty':>10} {'basis':>12} {'acquired':<10} holding_start",
    ]
    for x in d["lots"]:
        lines.append(
            f"{x['lot_id']:<16} {x['account']:<10} {x['symbol']:<7} {x['quantity']:>10} {x['basis']:>12} "
            f"{x['acquired']:<10} {x['holding_start']}"
        )
    lines += ["", "TOTALS (recognized = gain + disallowed + permanently lost)"]
    for a, terms in d["totals"].items():
        for term, t in sorted(terms.items()):
            lines.append(
                f"{a:<10} {term:<5} proceeds {t['proceeds']:>12} gain {t['gain']:>11} disallowed "
                f"{t['disallowed']:>10} lost {t['permanently_disallowed']:>10} "
                f"recognized {t['recognized']:>11}"
            )
    return "\n".join(lines)
