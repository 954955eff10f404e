"""Trade-history CSV (domain.md §9) and the wash-sale report in JSON and as a table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from solver.io import csv_rows

from .errors import LedgerInputError
from .washsale import Report, TradeIn, validate_trade

COLUMNS = ("date", "account", "household", "account_type", "symbol", "side", "quantity", "price")


def read_trades_csv(path: Path | str) -> list[TradeIn]:
    """Parse and validate every row (errors name the row and column); dates must not go back."""
    path = Path(path)
    out: list[TradeIn] = []
    last: dt.date | None = None
    for row_no, row in csv_rows(path, COLUMNS, "trades", LedgerInputError):
        where = f"{path.name} row {row_no}: "
        try:
            date = dt.date.fromisoformat(row["date"].strip())
        except ValueError:
            raise LedgerInputError("date", f"{where}{row['date']!r} is not an ISO date") from None
        values = {}
        for name in ("quantity", "price"):
            try:
                values[name] = Decimal(row[name].strip())
            except InvalidOperation:
                raise LedgerInputError(name, f"{where}{row[name]!r} is not a number") from None
        t = TradeIn(
            date=date,
            account=row["account"].strip(),
            household=row["household"].strip(),
            account_type=row["account_type"].strip().lower(),
            symbol=row["symbol"].strip(),
            side=row["side"].strip().lower(),
            quantity=values["quantity"],
            price=values["price"],
            lot_id=(row.get("lot_id") or "").strip() or None,
            row=row_no,
        )
        validate_trade(t, where)
        if last is not None and date < last:
            raise LedgerInputError("date", f"{where}{date} comes after {last}: trades must be in date order")
        last = date
        out.append(t)
    return out


def money(cents: int) -> str:
    """Exact decimal string of dollars: -12345 -> '-123.45'."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def report_to_dict(r: Report) -> dict[str, Any]:
    sales = [
        {
            "date": s.date.isoformat(),
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
            "acquired": x.acquired.isoformat(),
            "holding_start": x.holding_start.isoformat(),
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
