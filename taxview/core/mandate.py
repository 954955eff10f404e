"""An account's mandate: what it states beyond the firm's defaults (domain.md §10).

A mandate is a mapping of keys to values; every key has one kind and one range here, and every
way in (``taxview accounts import``, ``accounts set``, the firm's TOML) goes through ``check``, so
a bad value is refused naming the account and the key before anything is written. The ledger
stores the checked mapping as JSON (``to_json``), versioned; the nightly step merges it over the
firm's defaults. Dollar amounts are ``Decimal`` (exact), rates and weights float64 fractions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InputError
from .records import Outside

ACCOUNT_TYPES = ("taxable", "ira", "trust", "other")
STATUSES = ("active", "paused", "liquidate")
SECTORS = (  # the GICS sectors, as the markets here name them
    "Communication",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)


# Style tilts an account may state: the compiled problem has this many tilt rows (``solver.problem``).
MAX_TILTS = 4
OUTSIDE_MODES = ("exclude", "complete")
MAX_TILT = 3.0  # standard deviations of a style's score
STYLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")  # a style's column in styles.parquet (``solver.styles``)


class _Refused(ValueError):
    pass


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise _Refused("must be a number, got a boolean")
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _Refused(f"must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise _Refused(f"must be a finite number, got {value!r}")
    return x


def _dollars(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Refused("must be an amount in dollars, got a boolean")
    try:
        d = Decimal(value.strip() if isinstance(value, str) else repr(value) if isinstance(value, float) else value)
    except (TypeError, ValueError, InvalidOperation):
        raise _Refused(f"must be an amount in dollars, got {value!r}") from None
    if not d.is_finite() or abs(d) >= Decimal(10) ** 13:
        raise _Refused(f"must be a finite amount under $10^13, got {value!r}")
    if d != d.quantize(Decimal("0.01")):
        raise _Refused(f"must be whole cents, got {value!r}")
    return d.quantize(Decimal("0.01"))


def _integer(value: Any) -> int:
    x = _number(value)
    if x != int(x):
        raise _Refused(f"must be a whole number, got {value!r}")
    return int(x)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Refused(f"must be true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Refused(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _names(value: Any) -> tuple[str, ...]:
    """A list, or a text of comma-separated names ('' or [] for none)."""
    if isinstance(value, str):
        value = [x for x in value.split(",") if x.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Refused(f"must be a list of names, got {value!r}")
    return tuple(sorted({v.strip() for v in value}))


def _pairs(value: Any, what: str) -> list[tuple[str, Any]]:
    """A mapping, a list of [name, value] pairs, or a text ``name=value,name=value``."""
    if isinstance(value, str):
        pairs = []
        for item in (x for x in value.split(",") if x.strip()):
            name, eq, v = item.partition("=")
            if not eq or not name.strip():
                raise _Refused(f"must be {what} as name=value pairs, got {item!r}")
            pairs.append((name.strip(), v))
        return pairs
    if isinstance(value, Mapping):
        return [(str(k).strip(), v) for k, v in value.items()]
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        return [(str(k).strip(), v) for k, v in value]
    raise _Refused(f"must be a table of {what}, got {value!r}")


def _tilts(value: Any) -> tuple[tuple[str, float], ...]:
    """{style: t}: the active exposure to the style at least t standard deviations of its score
    (t < 0: at most t, a lean away); at most ``MAX_TILTS`` styles, |t| ≤ ``MAX_TILT``."""
    out: dict[str, float] = {}
    for style, t in _pairs(value, "style tilts"):
        if not STYLE_NAME.fullmatch(style):
            raise _Refused(f"style {style!r} must be letters, digits and _ (not first a digit)")
        if style in out:
            raise _Refused(f"{style}: given twice")
        try:
            x = _number(t)
        except _Refused as exc:
            raise _Refused(f"{style}: {exc}") from None
        if abs(x) > MAX_TILT:
            raise _Refused(f"{style}: a tilt must be within ±{MAX_TILT:g} standard deviations, got {t!r}")
        out[style] = x
    if len(out) > MAX_TILTS:
        raise _Refused(f"at most {MAX_TILTS} styles may be tilted, got {len(out)}: {sorted(out)}")
    return tuple(sorted(out.items()))


def _outside(value: Any) -> Outside:
    """{mode: exclude|complete, holdings: {symbol: dollars > 0}}, or a text ``mode:SYM=dollars,...``."""
    if isinstance(value, Outside):
        return value
    if isinstance(value, str):
        mode, colon, rest = value.partition(":")
        value = {"mode": mode.strip(), "holdings": rest} if colon else {"mode": value.strip(), "holdings": ""}
    if not isinstance(value, Mapping):
        raise _Refused(f"must be a table with mode and holdings, got {value!r}")
    unknown = sorted(set(value) - {"mode", "holdings"})
    if unknown:
        raise _Refused(f"has unknown key {unknown[0]!r} (known: mode, holdings)")
    mode = value.get("mode", "exclude")
    if mode not in OUTSIDE_MODES:
        raise _Refused(f"mode must be one of {'|'.join(OUTSIDE_MODES)}, got {mode!r}")
    holdings: dict[str, Decimal] = {}
    for symbol, dollars in _pairs(value.get("holdings", {}), "holdings (symbol: dollars)"):
        from ledger.keys import is_symbol  # the ledger's symbol alphabet (lazy: the core imports no ledger)

        if not is_symbol(symbol):
            raise _Refused(f"holdings: {symbol!r} is not a symbol")
        if symbol in holdings:
            raise _Refused(f"holdings.{symbol}: given twice")
        try:
            d = _dollars(dollars)
        except _Refused as exc:
            raise _Refused(f"holdings.{symbol} {exc}") from None
        if d <= 0:
            raise _Refused(f"holdings.{symbol} must be dollars > 0, got {dollars!r}")
        holdings[symbol] = d
    if not holdings:
        raise _Refused("holdings: at least one symbol with its dollars")
    return Outside(mode, tuple(sorted(holdings.items())))


def _one_of(options: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda x: x in options, "one of " + "|".join(options))


_RATE = (lambda x: 0 <= x < 1, "in [0, 1)")
_POSITIVE = (lambda x: x > 0, "> 0")
_NON_NEGATIVE = (lambda x: x >= 0, ">= 0")
_NON_POSITIVE = (lambda x: x <= 0, "<= 0 (a loss carried forward)")
_ANY = (lambda x: True, "")

# key -> (reader, (range check, range in words)). The keys an AccountSettings has are the solver's.
KEYS: dict[str, tuple[Callable[[Any], Any], tuple[Callable[[Any], bool], str]]] = {
    "account_type": (_text, _one_of(ACCOUNT_TYPES)),
    "st_rate": (_number, _RATE),
    "lt_rate": (_number, _RATE),
    "te_max": (_number, _POSITIVE),
    "lambda_tax": (_number, _NON_NEGATIVE),  # 0: not tax aware
    "lambda_te": (_number, _POSITIVE),
    "max_weight": (_number, (lambda x: 0 < x <= 1, "in (0, 1]")),
    "cash_target": (_number, _RATE),
    "cash_max": (_number, _RATE),
    "cost_bps": (_number, _NON_NEGATIVE),
    "min_trade_dollars": (_number, _NON_NEGATIVE),
    "min_trade_weight": (_number, _RATE),
    "max_names_traded": (_integer, (lambda x: x >= 1, ">= 1")),
    "term_horizon_days": (_integer, (lambda x: 0 <= x <= 365, "in [0, 365]")),
    "fractional": (_boolean, _ANY),
    "exclude_symbols": (_names, _ANY),
    "exclude_sectors": (_names, (lambda xs: set(xs) <= set(SECTORS), "GICS sectors: " + ", ".join(SECTORS))),
    "status": (_text, _one_of(STATUSES)),
    "transition": (_boolean, _ANY),  # the gain budget sets the pace toward the benchmark (solver.limits)
    "tilts": (_tilts, _ANY),  # {style: t}, standard deviations of the style's score (``solver.tilts``)
    "outside": (_outside, _ANY),  # holdings elsewhere: mode exclude|complete, holdings {symbol: dollars}
    "gain_budget": (_dollars, _ANY),  # annual net realized gain allowed, dollars (negative: a net loss)
    "carry_st": (_dollars, _NON_POSITIVE),  # the household's short-term loss carried forward
    "carry_lt": (_dollars, _NON_POSITIVE),
}


def check(values: Mapping[str, Any], where: str, resets: bool = False) -> dict[str, Any]:
    """``values`` read and range-checked: an unknown key, a value of the wrong kind or out of
    range raises ``InputError`` naming ``where`` (the account, the file row) and the key. An
    empty value (``""`` or ``None``) means "the firm's default": dropped, or with ``resets`` kept
    as ``None`` (a change that takes the key back to the default)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in KEYS:
            raise InputError(key, f"{where}: unknown mandate key {key!r} (known: {', '.join(KEYS)})")
        if value is None or (isinstance(value, str) and not value.strip()):
            if resets:
                out[key] = None
            continue
        read, (ok, need) = KEYS[key]
        try:
            v = read(value)
        except _Refused as exc:
            raise InputError(key, f"{where}: {key} {exc}") from None
        if not ok(v):
            raise InputError(key, f"{where}: {key} must be {need}, got {value!r}")
        out[key] = v
    if out.get("cash_target") is not None and out.get("cash_max") is not None and out["cash_target"] > out["cash_max"]:
        raise InputError("cash_target", f"{where}: cash_target must be <= cash_max ({out['cash_max']})")
    return out


def plain(key: str, v: Any) -> Any:
    """A mandate value in its JSON form."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, Outside):
        return {"mode": v.mode, "holdings": {s: str(d) for s, d in v.holdings}}
    if key == "tilts" and isinstance(v, tuple):
        return dict(v)
    return list(v) if isinstance(v, tuple) else v


def to_json(mandate: Mapping[str, Any]) -> str:
    """The stored form: keys sorted, dollars as exact strings, names as lists, tilts and outside
    holdings as tables."""
    return json.dumps({k: plain(k, v) for k, v in mandate.items()}, sort_keys=True, separators=(",", ":"))


def from_json(text: str | None) -> dict[str, Any]:
    """The stored form read back and checked again (a hand-edited hash cannot slip through)."""
    return check(json.loads(text), "stored mandate") if text else {}
