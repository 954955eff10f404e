"""Account files (TOML), lot files (CSV) and the JSON form of a ``SolveResult``.

Lots CSV header: ``lot_id,symbol,quantity,basis,acquired[,holding_start]``; ``basis`` is the
lot's total cost basis in dollars, dates ISO. Errors name the row and the column.

Account TOML (README "Account file"): every key has a declared kind and range (``_ACCOUNT_KEYS``);
errors name the key as ``section.key``. Names the file cannot know (symbols, sectors) are checked
against the market by ``check_against_universe`` once a snapshot is loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from taxview.core.csvfile import csv_rows
from taxview.core.errors import InputError
from taxview.core.mandate import MAX_TILT, MAX_TILTS, OUTSIDE_MODES, STYLE_NAME
from taxview.core.money import SHARE_QUANTUM, cents_to_dollars, dollars_to_cents
from taxview.core.records import Lot, Outside, Restrictions

from .types import AccountSettings, SolveResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOT_COLUMNS = ("lot_id", "symbol", "quantity", "basis", "acquired")
LOT_OPTIONAL_COLUMNS = ("holding_start",)
ACCOUNT_TYPES = ("taxable", "ira", "trust", "other")
MAX_SHARES = Decimal(10) ** 12  # a lot's shares, as the ledger's (``ledger.validate``)
MAX_DOLLARS = Decimal(10) ** 13  # an amount of the account file (as the mandate's, taxview.core.mandate)


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


def to_cents(dollars: Decimal, field: str, where: str) -> int:
    """``dollars_to_cents`` with an amount too large to hold in cents as an ``InputError``."""
    try:
        return dollars_to_cents(dollars)
    except InvalidOperation:
        raise InputError(field, f"{where}{dollars} is too large") from None


def read_lots_csv(path: Path | str) -> list[Lot]:
    path = Path(path)
    lots: list[Lot] = []
    first_row: dict[str, int] = {}
    for row_no, row in csv_rows(path, LOT_COLUMNS, "lots", optional=LOT_OPTIONAL_COLUMNS):
        where = f"{path.name} row {row_no}"
        lot_id = row["lot_id"].strip() or f"row{row_no}"
        if lot_id in first_row:
            raise InputError("lot_id", f"{where}: {lot_id!r} already used in row {first_row[lot_id]}")
        first_row[lot_id] = row_no
        symbol = row["symbol"].strip()
        if not symbol:
            raise InputError("symbol", f"{where}: empty")
        qty = parse_decimal(row["quantity"], "quantity", where)
        if not 0 < qty <= MAX_SHARES:
            raise InputError("quantity", f"{where}: quantity must be > 0 and <= 10^12 shares, got {qty}")
        if qty != qty.quantize(SHARE_QUANTUM):
            raise InputError("quantity", f"{where}: quantity {qty} has more than 6 decimal places (the ledger's)")
        basis = parse_decimal(row["basis"], "basis", where)
        if basis < 0:
            raise InputError("basis", f"{where}: basis must be >= 0, got {basis}")
        acquired = parse_date(row["acquired"], "acquired", where)
        hs = (row.get("holding_start") or "").strip()
        holding_start = parse_date(hs, "holding_start", where) if hs else None
        # a wash sale moves the holding period earlier (tacked on), never later
        if holding_start is not None and holding_start > acquired:
            raise InputError("holding_start", f"{where}: {holding_start} is after acquired {acquired}")
        lots.append(
            Lot(
                lot_id=lot_id,
                symbol=symbol,
                quantity=qty,
                basis_cents=to_cents(basis, "basis", f"{where}: basis "),
                acquired=acquired,
                holding_start=holding_start,
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


class _Refused(Exception):
    """A value of the account file is refused; ``read_account_toml`` names the key."""


def _a(value: Any) -> str:
    """What a TOML value is, for messages: 'a string', 'an integer', 'nan', ..."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (list, "a list"))
    kinds += ((dict, "a table"), (dt.date, "a date"), (dt.time, "a time"))
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def _dollars(value: Any) -> Decimal:
    """A finite TOML integer or float (not a boolean), exactly as written."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refused(f"must be a finite number, got {_a(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused(f"must be a finite number, got {value}")
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _cents(value: Any) -> int:
    """A dollar amount to the cent (negative allowed) as integer cents."""
    d = _dollars(value)
    if abs(d) >= MAX_DOLLARS:  # before quantize, which cannot hold more digits than its context
        raise _Refused(f"must be under $10^13 in size, got {value}")
    if d != d.quantize(Decimal("0.01")):
        raise _Refused(f"must be dollars to the cent, got {d}")
    return dollars_to_cents(d)


def _number(value: Any) -> float:
    d = _dollars(value)
    if not math.isfinite(float(d)):  # an integer beyond float range
        raise _Refused("must be a finite number, got inf")
    return float(d)


def _integer(value: Any) -> int:
    x = _number(value)
    if x != int(x):
        raise _Refused(f"must be a whole number, got {_a(value)}")
    return int(x)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused(f"must be true or false, got {_a(value)}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused(f"must be a string, got {_a(value)}")
    if not value.strip():
        raise _Refused("must not be empty")
    return value.strip()


def _names(what: str) -> Callable[[Any], frozenset[str]]:
    def read(value: Any) -> frozenset[str]:
        if not isinstance(value, list):
            raise _Refused(f"must be a list of {what}, got {_a(value)}")
        for i, v in enumerate(value, start=1):
            if not isinstance(v, str) or not v.strip():
                raise _Refused(f"must be a list of {what}; item {i} is {'empty' if isinstance(v, str) else _a(v)}")
        return frozenset(v.strip() for v in value)

    return read


_RATE = (lambda x: 0 <= x < 1, "in [0, 1)")
_POSITIVE = (lambda x: x > 0, "> 0")
_NON_NEGATIVE = (lambda x: x >= 0, ">= 0")
_ANY = (lambda x: True, "")

# section -> key -> (name in the result, reader (type), (range check, range in words))
_ACCOUNT_KEYS: dict[str, dict[str, tuple[str, Callable[[Any], Any], tuple[Callable[[Any], bool], str]]]] = {
    "account": {
        "id": ("account_id", _text, _ANY),
        "type": ("account_type", _text, (lambda t: t in ACCOUNT_TYPES, "one of " + "|".join(ACCOUNT_TYPES))),
        "cash": ("cash", _dollars, _NON_NEGATIVE),
        "fractional": ("fractional", _boolean, _ANY),
    },
    "tax": {
        "st_rate": ("st_rate", _number, _RATE),
        "lt_rate": ("lt_rate", _number, _RATE),
        "gain_allowance": ("gain_allowance_cents", _cents, _ANY),  # tonight's, dollars (negative: a net loss)
        "gain_budget": ("gain_budget_cents", _cents, _ANY),  # a year's, dollars (the backtest's)
    },
    "optimizer": {
        "te_max": ("te_max", _number, _POSITIVE),
        "max_weight": ("max_weight", _number, (lambda x: 0 < x <= 1, "in (0, 1]")),
        "cash_target": ("cash_target", _number, _RATE),
        "cash_max": ("cash_max", _number, _RATE),
        "lambda_te": ("lambda_te", _number, _POSITIVE),  # the solver needs some TE penalty
        "lambda_tax": ("lambda_tax", _number, _NON_NEGATIVE),  # 0: not tax aware
        "cost_bps": ("cost_bps", _number, _NON_NEGATIVE),
        "min_trade_dollars": ("min_trade_dollars", _number, _NON_NEGATIVE),
        "min_trade_weight": ("min_trade_weight", _number, _RATE),
        "max_names_traded": ("max_names_traded", _integer, (lambda x: x >= 1, ">= 1")),
        "term_horizon_days": ("term_horizon_days", _integer, (lambda x: 0 <= x <= 365, "in [0, 365]")),
        "transition": ("transition", _boolean, _ANY),
    },
    "exclude": {
        "symbols": ("exclude_symbols", _names("symbols"), _ANY),
        "sectors": ("exclude_sectors", _names("sectors"), _ANY),
    },
    "restrictions": {
        "no_buy": ("no_buy", _names("symbols"), _ANY),
        "no_loss_sale": ("no_loss_sale", _names("symbols"), _ANY),
    },
}


def _read_tilts(table: dict, path: Path) -> tuple[tuple[str, float], ...]:
    """``[tilts]``: style = standard deviations of its score (negative: a lean away)."""
    out = []
    for style, value in table.items():
        name = f"tilts.{style}"
        if not STYLE_NAME.fullmatch(style):
            raise InputError(name, f"style {style!r} must be letters, digits and _ (not first a digit) ({path})")
        try:
            t = _number(value)
        except _Refused as exc:
            raise InputError(name, f"{exc} ({path})") from None
        if abs(t) > MAX_TILT:
            raise InputError(name, f"must be within ±{MAX_TILT:g} standard deviations, got {t} ({path})")
        out.append((style, t))
    if len(out) > MAX_TILTS:
        raise InputError("tilts", f"at most {MAX_TILTS} styles may be tilted, got {len(out)} ({path})")
    return tuple(sorted(out))


def _read_outside(table: dict, path: Path) -> Outside:
    """``[outside]``: mode = "exclude" | "complete", and ``[outside.holdings]`` SYMBOL = dollars."""
    unknown = sorted(set(table) - {"mode", "holdings"})
    if unknown:
        raise InputError(f"outside.{unknown[0]}", f"unknown key (known: ['mode', 'holdings']) ({path})")
    mode = table.get("mode", "exclude")
    if mode not in OUTSIDE_MODES:
        raise InputError("outside.mode", f"must be one of {'|'.join(OUTSIDE_MODES)}, got {mode!r} ({path})")
    holdings = table.get("holdings")
    if not isinstance(holdings, dict) or not holdings:
        raise InputError("outside.holdings", f"needs a table [outside.holdings] of SYMBOL = dollars ({path})")
    out = []
    for symbol, value in holdings.items():
        name = f"outside.holdings.{symbol}"
        try:
            cents = _cents(value)
        except _Refused as exc:
            raise InputError(name, f"{exc} ({path})") from None
        if cents <= 0:
            raise InputError(name, f"must be dollars > 0, got {value} ({path})")
        if symbol.strip() in dict(out):
            raise InputError(name, f"{symbol.strip()!r} is given twice ({path})")
        out.append((symbol.strip(), Decimal(cents) / 100))
    return Outside(mode, tuple(sorted(out)))


def read_account_toml(path: Path | str) -> tuple[AccountSettings, int, Restrictions]:
    """Account settings, cash (cents) and wash-sale restrictions from a TOML file (README).

    Every key is optional; an unknown key, a value of the wrong type or out of range raises
    ``InputError`` naming it as ``section.key``. ``[tilts]`` and ``[outside]`` (with
    ``[outside.holdings]``) name styles and symbols, checked against the market once it is loaded."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError("account", f"cannot open {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InputError("account", f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError("account", f"{path} is not valid TOML: {exc}") from exc
    kw: dict[str, Any] = {}
    for section, table in doc.items():
        if section not in _ACCOUNT_KEYS and section not in ("tilts", "outside"):
            raise InputError(section, f"unknown section (known: {[*_ACCOUNT_KEYS, 'tilts', 'outside']}) ({path})")
        if not isinstance(table, dict):
            raise InputError(section, f"must be a table [{section}], got {_a(table)} ({path})")
        if section == "tilts":
            kw["tilts"] = _read_tilts(table, path)
            continue
        if section == "outside":
            kw["outside"] = _read_outside(table, path)
            continue
        for key, value in table.items():
            name = f"{section}.{key}"
            if key not in _ACCOUNT_KEYS[section]:
                raise InputError(name, f"unknown key (known: {list(_ACCOUNT_KEYS[section])}) ({path})")
            attr, read, (ok, need) = _ACCOUNT_KEYS[section][key]
            try:
                kw[attr] = read(value)
            except _Refused as exc:
                raise InputError(name, f"{exc} ({path})") from None
            if not ok(kw[attr]):
                got = repr(kw[attr]) if isinstance(kw[attr], str) else str(kw[attr])
                raise InputError(name, f"must be {need}, got {got} ({path})")
    cash = to_cents(kw.pop("cash", Decimal(0)), "account.cash", "")
    restrictions = Restrictions(kw.pop("no_buy", frozenset()), kw.pop("no_loss_sale", frozenset()))
    s = AccountSettings(**kw)
    if s.cash_target > s.cash_max:
        if "cash_target" in kw:
            raise InputError(
                "optimizer.cash_target", f"must be <= optimizer.cash_max ({s.cash_max}), got {s.cash_target} ({path})"
            )
        raise InputError(
            "optimizer.cash_max", f"must be >= optimizer.cash_target ({s.cash_target}), got {s.cash_max} ({path})"
        )
    return s, cash, restrictions


def check_against_universe(settings: AccountSettings, restrictions: Restrictions, universe: Any) -> None:
    """Refuse excluded or restricted names the market does not have (a typo would otherwise
    exclude or restrict nothing). ``universe``: a ``Snapshot`` or ``Market`` (``symbols``,
    ``sectors``); the error names the account-file key and the unknown names."""
    symbols, sectors = set(universe.symbols), set(universe.sectors)
    outside = settings.outside.symbols if settings.outside is not None else frozenset()
    for name, given, known, what in (
        ("outside.holdings", outside, symbols, "symbol"),
        ("exclude.symbols", settings.exclude_symbols, symbols, "symbol"),
        ("exclude.sectors", settings.exclude_sectors, sectors, "sector"),
        ("restrictions.no_buy", restrictions.no_buy, symbols, "symbol"),
        ("restrictions.no_loss_sale", restrictions.no_loss_sale, symbols, "symbol"),
    ):
        unknown = sorted(given - known)
        if unknown:
            more = f" (known: {sorted(known)})" if what == "sector" else ""
            shown = unknown[:10] + (["..."] if len(unknown) > 10 else [])
            raise InputError(name, f"{len(unknown)} unknown {what}(s) {shown} not in the market{more}")


def result_to_dict(r: SolveResult) -> dict[str, Any]:
    """The JSON form (README "taxview solve"): money in dollars with exact cents."""
    out: dict[str, Any] = {"status": r.status, "reason": r.reason, "solve_ms": round(r.solve_ms, 3)}
    out["trades"] = [
        {
            "symbol": t.symbol,
            "side": t.side,
            "shares": float(t.shares) if t.shares != t.shares.to_integral_value() else int(t.shares),
            "lot_id": t.lot_id,
            "price": float(t.price),
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
    out["active_exposures"] = {
        style: {"achieved": round(got, 6), "target": target} for style, (got, target) in r.active_exposures.items()
    }
    out["te_combined"] = r.te_combined
    out["te_from_tilts"] = r.te_from_tilts
    for t in out["trades"]:
        reason = r.order_reasons.get((t["symbol"], t["side"]))
        if reason:
            t["reason"] = reason
    return out
