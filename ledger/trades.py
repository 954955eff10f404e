"""Trade-history CSV (domain.md §9) and the wash-sale report in JSON and as a table."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import signal
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taxview.core.csvfile import csv_rows
from taxview.core.errors import TaxviewError

from .batch import Report, run
from .errors import LedgerInputError
from .records import OpenLot, Sale, TradeIn

_NUMBER = r"^\s*[0-9]+(\.[0-9]+)?\s*$"
COLUMNS = ("date", "account", "household", "account_type", "symbol", "side", "quantity", "price")


def read_trades_csv(path: Path | str) -> list[TradeIn]:
    """Parse every row (errors name the row and column); dates must not go back. The rule checks
    each trade's fields as it applies it (``validate.validate_trade``), naming the row too.
    Rows are numbered as lines of the file (the header is row 1)."""
    return trades_of(read_trades_table(path))


def read_trades_table(path: Path | str) -> pa.Table:
    """The trade file as text columns, checked as a whole: header, plain ASCII dates and numbers,
    dates in order. ``trades_of`` makes the trades of any of its rows."""
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
    if "lot_id" not in table.column_names:
        table = table.append_column("lot_id", pa.array([""] * table.num_rows, pa.string()))
    table = table.select([*COLUMNS, "lot_id"])
    table = pa.table([pc.utf8_trim_whitespace(c) for c in table.columns], names=table.column_names)
    for name, pattern, what in (
        ("date", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "an ISO date (YYYY-MM-DD)"),
        ("quantity", _NUMBER, "a plain decimal number"),
        ("price", _NUMBER, "a plain decimal number"),
    ):  # plain ASCII forms only: no 1_000, no other scripts' digits, no 20240102
        ok = pc.match_substring_regex(table.column(name), pattern).to_numpy(zero_copy_only=False)
        if not ok.all():
            i = int((~ok).argmax())
            value = table.column(name)[i].as_py()
            raise LedgerInputError(name, f"{path.name} row {i + 2}: {name} {value!r} is not {what}")
    dates = np.array(table.column("date").to_pylist(), dtype=object)  # fixed-width ISO text: sorts as dates
    back = np.flatnonzero(dates[1:] < dates[:-1])
    if len(back):
        i = int(back[0]) + 1
        raise LedgerInputError(
            "date", f"{path.name} row {i + 2}: {dates[i]} comes after {dates[i - 1]}: trades must be in date order"
        )
    return table.replace_schema_metadata({"name": path.name})


def trades_of(table: pa.Table, rows: Sequence[int] | None = None) -> list[TradeIn]:
    """The trades of ``rows`` (0-based data rows, default all) of a ``read_trades_table``."""
    name = (table.schema.metadata or {}).get(b"name", b"").decode()
    index = range(table.num_rows) if rows is None else rows
    if rows is not None:
        table = table.take(pa.array(rows, pa.int64()))
    cols = [table.column(c).to_pylist() for c in (*COLUMNS, "lot_id")]
    out: list[TradeIn] = []
    dates: dict[str, dt.date] = {}  # a file has a few thousand distinct dates
    for i, date_s, account, household, kind, symbol, side, qty_s, price_s, lot_id in zip(index, *cols, strict=True):
        date = dates.get(date_s)
        if date is None:
            try:
                date = dates[date_s] = dt.date.fromisoformat(date_s)
            except ValueError:
                raise LedgerInputError("date", f"{name} row {i + 2}: {date_s!r} is not a date") from None
        out.append(
            TradeIn(
                date,
                account,
                household,
                kind.lower(),
                symbol,
                side.lower(),
                Decimal(qty_s),
                Decimal(price_s),
                lot_id or None,
                i + 2,
            )
        )
    return out


def money(cents: int) -> str:
    """Exact decimal string of dollars: -12345 -> '-123.45'."""
    d, c = divmod(abs(cents), 100)
    return f"-{d}.{c:02d}" if cents < 0 else f"{d}.{c:02d}"


class _Days(dict):
    """ISO text of dates, each formatted once (a report repeats a few thousand dates)."""

    def __missing__(self, d: dt.date) -> str:
        text = self[d] = d.isoformat()
        return text


def _sale_row(s: Sale, day: _Days) -> dict[str, Any]:
    return {
        "date": day[s.date],
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


def _lot_row(x: OpenLot, day: _Days) -> dict[str, Any]:
    return {
        "lot_id": x.lot_id,
        "account": x.account,
        "symbol": x.symbol,
        "quantity": str(x.quantity),
        "basis": money(x.basis_cents),
        "acquired": day[x.acquired],
        "holding_start": day[x.holding_start],
    }


_TOTALS = ("proceeds", "basis", "gain", "disallowed", "permanently_disallowed", "recognized")


def _totals(sales: Iterable[Sale]) -> dict[str, dict[str, list[int]]]:
    """Cents per account and term: proceeds, basis, gain, disallowed, permanently lost, recognized."""
    totals: dict[str, dict[str, list[int]]] = {}
    for s in sales:
        t = totals.setdefault(s.account, {}).setdefault(s.term, [0] * 6)
        for i, v in enumerate(
            (s.proceeds_cents, s.basis_cents, s.gain_cents, s.disallowed_cents, s.permanent_cents, s.recognized_cents)
        ):
            t[i] += v
    return totals


def _totals_text(totals: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, dict[str, str]]]:
    return {
        a: {term: dict(zip(_TOTALS, map(money, totals[a][term]))) for term in sorted(totals[a])} for a in sorted(totals)
    }


def report_to_dict(r: Report) -> dict[str, Any]:
    day = _Days()
    return {
        "sales": [_sale_row(s, day) for s in r.sales],
        "lots": [_lot_row(x, day) for x in r.lots],
        "totals": _totals_text(_totals(r.sales)),
    }


def report_json(table: pa.Table, identical: Mapping[str, str] | None = None, workers: int = 1) -> str:
    """``report_to_dict`` of the trades of a ``read_trades_table`` as compact JSON text.
    Households are independent, so with ``workers`` > 1 they are parsed and applied in forked
    processes — each a run of households in id order with about equal rows, so that on any date
    one process's sales all come before the next one's — and the pieces are joined in report
    order: the same text either way."""
    pairs = pa.table({"a": table.column("account"), "h": table.column("household")}).group_by(["a", "h"]).aggregate([])
    if pairs.num_rows != len(pc.unique(pairs.column("a"))):  # an account in two households
        run(trades_of(table), identical)  # raises the serial run's error, naming the row
    households = table.column("household").to_numpy(zero_copy_only=False).astype(object)
    names, codes, counts = np.unique(households, return_inverse=True, return_counts=True)
    buckets = max(1, min(workers, len(names)))
    # household i goes to bucket floor(rows before it / rows per bucket): runs of equal weight
    bucket_of = np.minimum((np.cumsum(counts) - counts) * buckets // max(1, len(households)), buckets - 1)
    rows = [np.flatnonzero(bucket_of[codes] == b) for b in range(buckets)]
    rows = [r for r in rows if len(r)] or [np.arange(len(households))]
    if len(rows) == 1 or "fork" not in mp.get_all_start_methods():
        parts = [_report_part(trades_of(table), identical)]
    else:
        global _JOB
        _JOB = (table, rows, identical)
        try:
            pool = mp.get_context("fork").Pool(len(rows), initializer=_plain_signals)
            try:
                parts = pool.map(_report_bucket, range(len(rows)))
                pool.close()  # the workers end by themselves once the work is done
            finally:
                pool.terminate()
                pool.join()
        except TaxviewError:
            run(trades_of(table), identical)  # the first error in file order, as a serial run reports it
            raise
        finally:
            _JOB = None
    by_date: dict[dt.date, list[str]] = {}
    for part in parts:  # in household order
        for date, text in part[0]:
            by_date.setdefault(date, []).append(text)
    sales = ",".join(text for date in sorted(by_date) for text in by_date[date])
    lots = ",".join(text for _, text in sorted(x for part in parts for x in part[1]))
    totals = {a: t for part in parts for a, t in part[2].items()}
    return (
        f'{{"sales":[{sales}],"lots":[{lots}],"totals":' + json.dumps(_totals_text(totals), separators=(",", ":")) + "}"
    )


_JOB: tuple | None = None  # what forked report workers read (inherited, not pickled)


def _plain_signals() -> None:
    """Forked workers must not inherit the command's own SIGTERM/SIGINT handlers: ``terminate``
    would then wait forever on a worker that unwinds instead of dying."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides


def _report_bucket(i: int):
    table, rows, identical = _JOB
    return _report_part(trades_of(table, rows[i].tolist()), identical)


def _report_part(trades: list[TradeIn], identical):
    """Of some households: their sales as JSON text per date, their lots per account, totals."""
    r = run(trades, identical)
    day = _Days()
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    sales, lots = [], []
    for date, group in groupby(r.sales, key=attrgetter("date")):  # run() orders sales by date
        sales.append((date, dumps([_sale_row(s, day) for s in group])[1:-1]))
    for account, group in groupby(r.lots, key=attrgetter("account")):  # and lots by account
        lots.append((account, dumps([_lot_row(x, day) for x in group])[1:-1]))
    return sales, lots, _totals(r.sales)


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
