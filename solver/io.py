"""Account files (TOML), lot files (CSV) and the JSON form of a ``SolveResult``.

Lots CSV header: ``lot_id,symbol,quantity,basis,acquired[,holding_start]``; ``basis`` is the
lot's total cost basis in dollars, dates ISO. Errors name the row and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import InputError
from .money import cents_to_dollars, dollars_to_cents
from .types import AccountSettings, Lot, Restrictions, SolveResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOT_COLUMNS = ("lot_id", "symbol", "quantity", "basis", "acquired")


def parse_decimal(text: str, field: str, where: str) -> Decimal:
    try:
        v = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise InputError(field, f"{where}: {text!r} is not a number") from None
    if not v.is_finite():
        raise InputError(field, f"{where}: {text!r} is not a finite number")
    return v


def parse_date(text: str, field: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise InputError(field, f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


def csv_rows(path: Path | str, columns: tuple[str, ...], what: str, error: type[InputError] = InputError):
    """(row number, row) of a CSV file with a header; a missing file, missing columns or a row
    with the wrong number of fields raise ``error`` naming the file, column or row."""
    path = Path(path)
    try:
        f = path.open(newline="")
    except OSError as exc:
        raise error(what, f"cannot open {path}: {exc.strerror}") from exc
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise error(missing[0], f"{path}: missing column(s) {missing}; need {list(columns)}")
        for row_no, row in enumerate(reader, start=2):
            if None in row or any(row.get(c) is None for c in columns):
                raise error("row", f"{path.name} row {row_no}: wrong number of fields")
            yield row_no, row


def read_lots_csv(path: Path | str) -> list[Lot]:
    path = Path(path)
    lots: list[Lot] = []
    for row_no, row in csv_rows(path, LOT_COLUMNS, "lots"):
        where = f"{path.name} row {row_no}"
        qty = parse_decimal(row["quantity"], "quantity", where)
        if qty <= 0:
            raise InputError("quantity", f"{where}: quantity must be > 0, got {qty}")
        basis = parse_decimal(row["basis"], "basis", where)
        if basis < 0:
            raise InputError("basis", f"{where}: basis must be >= 0, got {basis}")
        hs = (row.get("holding_start") or "").strip()
        lots.append(
            Lot(
                lot_id=row["lot_id"].strip() or f"row{row_no}",
                symbol=row["symbol"].strip(),
                quantity=qty,
                basis_cents=dollars_to_cents(basis),
                acquired=parse_date(row["acquired"], "acquired", where),
                holding_start=parse_date(hs, "holding_start", where) if hs else None,
            )
        )
    return lots


def write_lots_csv(lots: list[Lot], path: Path | str) -> None:
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*LOT_COLUMNS, "holding_start"])
        for lot in lots:
            w.writerow(
                [
                    lot.lot_id,
                    lot.symbol,
                    lot.quantity,
                    f"{cents_to_dollars(lot.basis_cents):.2f}",
                    lot.acquired.isoformat(),
                    lot.holding_start.isoformat() if lot.holding_start else "",
                ]
            )


_SECTIONS: dict[str, dict[str, str]] = {
    "account": {"id": "account_id", "type": "account_type", "cash": "", "fractional": "fractional"},
    "tax": {"st_rate": "st_rate", "lt_rate": "lt_rate"},
    "optimizer": {
        k: k
        for k in (
            "te_max",
            "max_weight",
            "cash_target",
            "cash_max",
            "lambda_te",
            "lambda_tax",
            "cost_bps",
            "min_trade_dollars",
        )
    },
    "exclude": {"symbols": "exclude_symbols", "sectors": "exclude_sectors"},
    "restrictions": {"no_buy": "", "no_loss_sale": ""},
}


def read_account_toml(path: Path | str) -> tuple[AccountSettings, int, Restrictions]:
    """Account settings, cash (cents) and wash-sale restrictions from a TOML file (README)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError("account", f"cannot open {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError("account", f"{path} is not valid TOML: {exc}") from exc
    kw: dict[str, Any] = {}
    for section, table in doc.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise InputError(section, f"{path}: unknown section [{section}] (known: {list(_SECTIONS)})")
        for key in table:
            if key not in _SECTIONS[section]:
                raise InputError(f"{section}.{key}", f"{path}: unknown key (known: {list(_SECTIONS[section])})")
    acct = doc.get("account", {})
    cash = parse_decimal(str(acct.get("cash", 0)), "account.cash", str(path))
    if cash < 0:
        raise InputError("account.cash", f"cash must be >= 0, got {cash}")
    for section, keys in _SECTIONS.items():
        for key, attr in keys.items():
            if attr and key in doc.get(section, {}):
                value = doc[section][key]
                if section == "exclude":
                    value = frozenset(str(v) for v in value)
                kw[attr] = value
    for k in (
        "st_rate",
        "lt_rate",
        "te_max",
        "max_weight",
        "cash_target",
        "cash_max",
        "lambda_te",
        "lambda_tax",
        "cost_bps",
        "min_trade_dollars",
    ):
        if k in kw:
            if isinstance(kw[k], bool) or not isinstance(kw[k], (int, float)):
                raise InputError(k, f"{path}: must be a number, got {kw[k]!r}")
            kw[k] = float(kw[k])
    if "account_id" in kw:
        kw["account_id"] = str(kw["account_id"])
    r = doc.get("restrictions", {})
    restrictions = Restrictions(frozenset(r.get("no_buy", ())), frozenset(r.get("no_loss_sale", ())))
    return AccountSettings(**kw), dollars_to_cents(cash), restrictions


def result_to_dict(r: SolveResult) -> dict[str, Any]:
    """The JSON form (README "taxview solve"): money in dollars with exact cents."""
    out: dict[str, Any] = {"status": r.status, "reason": r.reason, "solve_ms": round(r.solve_ms, 3)}
    out["trades"] = [
        {
            "symbol": t.symbol,
            "side": t.side,
            "shares": float(t.shares) if t.shares != t.shares.to_integral_value() else int(t.shares),
            "lot_id": t.lot_id,
            "price": t.price,
            "realized_gain": cents_to_dollars(t.realized_gain_cents) if t.side == "sell" else None,
            "term": t.term,
        }
        for t in r.trades
    ]
    out["weights"] = {k: round(v, 8) for k, v in sorted(r.weights.items())}
    out["cash_weight"] = round(r.cash_weight, 8)
    out["te_ex_ante"] = r.te_ex_ante
    out["realized"] = {
        k: cents_to_dollars(getattr(r.realized, k)) for k in ("st_gain", "st_loss", "lt_gain", "lt_loss")
    }
    out["tax_estimate"] = cents_to_dollars(r.tax_estimate_cents)
    out["harvested_loss"] = cents_to_dollars(r.harvested_loss_cents)
    out["turnover"] = r.turnover
    out["passes"] = r.passes
    out["iterations"] = r.iterations
    out["notes"] = list(r.notes)
    return out
