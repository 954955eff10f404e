"""Corporate actions (domain.md §10): a split and a symbol change, planned on a household's state.
Pure (no Redis): the Redis store (``ledger.actions``, ``lua/corporate.lua``) and the in-memory
ledger apply the same plans, so both book an action the same way.

Rules, the same in both adapters:

* **A split** of SYMBOL by RATIO (new shares per old share, an exact positive rational: ``2``,
  ``3:2``, ``1:10``) multiplies the quantity and the replacement capacity of every open lot of
  SYMBOL acquired before the action's date D by RATIO; the basis (total cents), the acquisition
  date and the holding-period start stay. A pending loss sale of SYMBOL (sold in the 30 days
  before D, shares still waiting for a replacement) has its unmatched shares multiplied too, so a
  replacement bought after the split washes the right fraction of its loss. Lots acquired on or
  after D (post-split purchases, an import of post-split positions) are left as they are.
* **Fractions**: quantities stay exact ``Decimal`` shares to a millionth (``validate.MAX_PLACES``).
  A lot (or capacity, or pending sale) whose new quantity is not a whole number of millionths
  (0.000001 × 3:2) is refused, and with it the whole action, naming the lot: the ledger never
  rounds a share away. Book the custodian's cash in lieu as a sale of the fraction first, then
  apply the split.
* **A symbol change** OLD → NEW gives every open lot of OLD the symbol NEW (same lot ids, basis,
  dates), moves the household's wash-sale window of OLD to NEW (so restrictions name NEW) and makes
  OLD's pending loss sales NEW's. It is refused while NEW is in use anywhere in the ledger (open
  lots, a pending loss sale, or a purchase or loss sale within 30 days of D in any household): a
  rename never merges two securities. Once an action is under way (some household has it), a
  re-run merges what it finds (a NEW lot bought after the rename is the same security): lots
  join NEW's (lot ids are unique in a household), windows keep each side's later date. A symbol of
  an identical group (``identical``) is not renamed (refused).
* **The date**: an action dated D applies to a household as it stood at the open of D, so a
  household it changes must have no trade dated D or later (its last trade is before D); else
  the action is refused naming the household. Trades dated D are at post-split prices: applied
  after them, a split would have let that night harvest a fake loss, and lots bought that day
  would be multiplied. Applying the action moves the household's last date to D, so a trade
  dated before D is refused from then on.
* Households the action does not touch (no lot, no pending sale, no recent window of the symbol)
  are not checked and not written. A symbol no household holds is a no-op (nothing written).
* **Identity**: each action has an id (default ``split:SYMBOL:RATIO:DATE`` with RATIO reduced —
  ``2`` and ``4:2`` are one action — or ``rename:OLD:NEW:DATE``), recorded in each household it
  changes: a replay changes nothing, the same id for another action is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from .errors import LedgerInputError
from .keys import check_symbol
from .records import OpenLot, Sale
from .validate import MAX_PLACES, MAX_SHARES, plain_shares
from .windows import WINDOW_DAYS

MAX_RATIO_TERM = 10**6  # a ratio's numerator and denominator: 1:1,000,000 .. 1,000,000:1
_RATIO = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?")
_ACTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:^-]{0,199}")
_MILLION = 10**MAX_PLACES


def parse_ratio(text: str | Fraction) -> Fraction:
    """``2``, ``3:2``, ``1:10``, ``1.5``: new shares per old share, an exact positive rational other
    than 1; else ``LedgerInputError`` (0, negative, NaN, malformed)."""
    if isinstance(text, Fraction):
        ratio = text
    else:
        m = _RATIO.fullmatch(str(text))
        if not m:
            raise LedgerInputError("ratio", f"ratio {text!r} is not N or N:M (new shares per old share: 2, 3:2, 1:10)")
        try:
            ratio = Fraction(Decimal(m[1])) / Fraction(Decimal(m[2] or "1"))
        except (ZeroDivisionError, InvalidOperation):
            raise LedgerInputError("ratio", f"ratio {text!r} divides by zero") from None
    if ratio <= 0:
        raise LedgerInputError("ratio", f"ratio {text!s} must be > 0")
    if ratio == 1:
        raise LedgerInputError("ratio", f"ratio {text!s} changes nothing")
    if max(ratio.numerator, ratio.denominator) > MAX_RATIO_TERM:
        raise LedgerInputError("ratio", f"ratio {text!s} is outside 1:{MAX_RATIO_TERM}..{MAX_RATIO_TERM}:1")
    return ratio


def ratio_text(ratio: Fraction) -> str:
    """``2`` for 2:1, else ``N:M`` reduced (``3:2``, ``1:10``)."""
    return str(ratio.numerator) if ratio.denominator == 1 else f"{ratio.numerator}:{ratio.denominator}"


@dataclass(frozen=True, slots=True)
class Action:
    """One corporate action: ``split`` of ``symbol`` by ``ratio``, or ``rename`` of ``symbol`` to
    ``new``, effective ``date`` (the first day of the new shares or name)."""

    kind: str
    symbol: str
    date: dt.date
    action_id: str
    ratio: Fraction = Fraction(1)
    new: str = ""

    @property
    def content(self) -> dict[str, Any]:
        """What the action is (its journal form, without the counts)."""
        out = {"id": self.action_id, "kind": self.kind, "symbol": self.symbol, "date": self.date.isoformat()}
        if self.kind == "split":
            out["ratio"] = ratio_text(self.ratio)
        else:
            out["new"] = self.new
        return out

    @property
    def digest(self) -> str:
        """What the id is bound to: the same id with other content is refused."""
        body = {k: v for k, v in self.content.items() if k != "id"}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @property
    def keys(self) -> tuple[str, ...]:
        """The symbols the action names: their lot hashes and windows are what it reads."""
        return (self.symbol,) if self.kind == "split" else (self.symbol, self.new)

    def describe(self) -> str:
        if self.kind == "split":
            return f"split {self.symbol} {ratio_text(self.ratio)} on {self.date}"
        return f"rename {self.symbol} → {self.new} on {self.date}"


def _action_id(value: str | None, default: str) -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not _ACTION_ID.fullmatch(value):
        raise LedgerInputError(
            "id", f"action id {value!r}: use letters, digits and . _ - / : ^ (at most 200, from a letter or digit)"
        )
    return value


def _date(value: dt.date) -> dt.date:
    if type(value) is not dt.date:
        raise LedgerInputError("date", f"date {value!r} is not a date")
    return value


def split_action(symbol: str, ratio: str | Fraction, date: dt.date, action_id: str | None = None) -> Action:
    check_symbol(symbol)
    r = parse_ratio(ratio)
    default = f"split:{symbol}:{ratio_text(r)}:{_date(date).isoformat()}"
    return Action("split", symbol, date, _action_id(action_id, default), ratio=r)


def rename_action(old: str, new: str, date: dt.date, action_id: str | None = None) -> Action:
    check_symbol(old, field="old")
    check_symbol(new, field="new")
    if old == new:
        raise LedgerInputError("new", f"renaming {old} to itself changes nothing")
    default = f"rename:{old}:{new}:{_date(date).isoformat()}"
    return Action("rename", old, date, _action_id(action_id, default), new=new)


def check_identity(action: Action, identical: Mapping[str, str]) -> None:
    """A rename of a symbol in an identical group (GOOG=GOOGL) is refused: its lots, windows and
    pending sales are shared with another symbol. (A split of one is fine: it adjusts that symbol's
    lots and pending sales in the shared key.)"""
    if action.kind == "rename":
        keyed = set(identical) | set(identical.values())
        for symbol in action.keys:
            if symbol in keyed:
                raise LedgerInputError("symbol", f"{symbol} is in an identical group (--identical): not renamed")


def action_from_json(d: Mapping[str, Any]) -> Action:
    """An action back from its journal form (``Action.content``)."""
    date = dt.date.fromisoformat(d["date"])
    if d["kind"] == "split":
        return split_action(d["symbol"], d["ratio"], date, d["id"])
    return rename_action(d["symbol"], d["new"], date, d["id"])


@dataclass(slots=True)
class HouseholdState:
    """What an action reads of one household: the open lots of its keys, the pending loss sales,
    the windows of its keys (identity key -> (last buy, last loss sale), ordinals, 0: none), the
    date of the last trade, and the digest recorded for the action's id (None: not applied)."""

    household: str
    lots: list[OpenLot]
    pending: list[Sale]
    windows: dict[str, tuple[int, int]]
    last_date: dt.date | None
    recorded: str | None = None


@dataclass(slots=True)
class HouseholdPlan:
    """What an action writes in one household: lots as they become (a rename's under NEW), the
    ids leaving OLD's lot hash, pending sales as they become, windows to set and to drop."""

    household: str
    lots: list[OpenLot] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    dropped_windows: list[str] = field(default_factory=list)

    @property
    def affected(self) -> bool:
        return bool(self.lots or self.sales or self.windows)

    def entry(self, action: Action) -> dict[str, Any]:
        """The household's journal entry."""
        body = {**action.content, "lots": sorted(x.lot_id for x in self.lots), "sales": [s.sale_id for s in self.sales]}
        return {"corporate": body}


@dataclass(slots=True)
class ActionReport:
    """An action across the ledger: households changed now (with how many lots and pending
    sales), households that had it already, households whose write failed (-> why)."""

    action: Action
    households: list[str] = field(default_factory=list)
    lots: int = 0
    sales: int = 0
    replayed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def add(self, plan: HouseholdPlan) -> None:
        self.households.append(plan.household)
        self.lots += len(plan.lots)
        self.sales += len(plan.sales)

    def summary(self) -> str:
        s = (
            f"{self.action.describe()} (id {self.action.action_id}): {len(self.households)} households, "
            f"{self.lots} lots and {self.sales} pending sales adjusted; {len(self.replayed)} households had it already"
        )
        return s + (f"; {len(self.failed)} households FAILED" if self.failed else "")


def _scaled(q: Decimal, ratio: Fraction) -> Decimal | None:
    """``q`` × ``ratio`` exactly, or None when it is not a whole number of millionths."""
    f = Fraction(q) * ratio * _MILLION
    if f.denominator != 1:
        return None
    return plain_shares(Decimal(f.numerator).scaleb(-MAX_PLACES))


def _active(window: tuple[int, int], date: dt.date) -> bool:
    """Whether a window's purchase or loss sale still counts on or after ``date``."""
    return any(w and date.toordinal() - w <= WINDOW_DAYS for w in window)


def _waiting(sale: Sale, symbol: str, date: dt.date) -> bool:
    """A pending loss sale of ``symbol`` that a purchase on or after ``date`` could still match."""
    return sale.symbol == symbol and sale.unmatched > 0 and sale.date < date and (date - sale.date).days <= WINDOW_DAYS


def plan_split(action: Action, st: HouseholdState) -> HouseholdPlan:
    plan = HouseholdPlan(st.household)
    where = f"household {st.household}: "
    for x in sorted(st.lots, key=lambda x: x.lot_id):
        if x.symbol != action.symbol or x.acquired >= action.date:
            continue
        qty, cap = _scaled(x.quantity, action.ratio), _scaled(x.capacity, action.ratio)
        if qty is None or cap is None:
            bad = x.quantity if qty is None else x.capacity
            raise LedgerInputError(
                "ratio",
                f"{where}lot {x.lot_id} of account {x.account}: {bad} × {ratio_text(action.ratio)} is not a whole "
                f"number of millionths of a share (book the fraction's cash in lieu as a sale first)",
            )
        if qty > MAX_SHARES:
            raise LedgerInputError("ratio", f"{where}lot {x.lot_id}: {qty} shares is over 10^12")
        plan.lots.append(replace(x, quantity=qty, capacity=cap))
    for s in st.pending:
        if _waiting(s, action.symbol, action.date):
            unmatched = _scaled(s.unmatched, action.ratio)
            if unmatched is None:
                raise LedgerInputError(
                    "ratio",
                    f"{where}pending sale {s.sale_id} of account {s.account}: {s.unmatched} unmatched shares × "
                    f"{ratio_text(action.ratio)} is not a whole number of millionths",
                )
            plan.sales.append(replace(s, unmatched=unmatched, replacements=list(s.replacements)))
    return plan


def plan_rename(action: Action, st: HouseholdState) -> HouseholdPlan:
    plan = HouseholdPlan(st.household)
    old, new = action.symbol, action.new
    for x in sorted(st.lots, key=lambda x: x.lot_id):
        if x.symbol == old:
            plan.lots.append(replace(x, symbol=new))
            plan.moved.append(x.lot_id)
    for s in st.pending:
        if _waiting(s, old, action.date):
            plan.sales.append(replace(s, symbol=new, replacements=list(s.replacements)))
    window = st.windows.get(old, (0, 0))
    if window != (0, 0) and (plan.lots or plan.sales or _active(window, action.date)):
        theirs = st.windows.get(new, (0, 0))
        plan.windows[new] = (max(window[0], theirs[0]), max(window[1], theirs[1]))
        plan.dropped_windows.append(old)
    return plan


def plan_household(action: Action, st: HouseholdState) -> HouseholdPlan:
    """The household's writes (``affected`` False: none), or ``LedgerInputError`` naming the
    household: a lot not representable after a split, a trade dated on or after the action."""
    plan = plan_split(action, st) if action.kind == "split" else plan_rename(action, st)
    if plan.affected and st.last_date is not None and st.last_date >= action.date:
        raise LedgerInputError(
            "date",
            f"household {st.household} traded on {st.last_date}, on or after the action's date {action.date}: "
            "an action applies to the lots held at the open of its date (enter it before that day's trades)",
        )
    return plan


def in_use(symbol: str, st: HouseholdState, date: dt.date) -> bool:
    """Whether ``symbol`` holds lots, a pending loss sale or a window counting on ``date`` in the household."""
    return (
        any(x.symbol == symbol for x in st.lots)
        or any(_waiting(s, symbol, date) for s in st.pending)
        or _active(st.windows.get(symbol, (0, 0)), date)
    )


def prepare(action: Action, states: Iterable[HouseholdState]) -> tuple[list[HouseholdPlan], list[str]]:
    """Check an action against every household before anything is written: the plans of the
    households it changes, and the households that have it already. ``LedgerInputError`` (nothing
    to write) when the id was used for another action, when a household refuses it, or when a
    rename's NEW is in use and the action is not under way yet."""
    states = sorted(states, key=lambda s: s.household)
    replayed = []
    for st in states:
        if st.recorded is not None:
            if st.recorded != action.digest:
                raise LedgerInputError(
                    "id", f"action id {action.action_id!r} was used for a different action (household {st.household})"
                )
            replayed.append(st.household)
    fresh = [st for st in states if st.recorded is None]
    if action.kind == "rename" and not replayed:
        busy = [st.household for st in fresh if in_use(action.new, st, action.date)]
        if busy:
            raise LedgerInputError(
                "new",
                f"{action.new} is in use in {len(busy)} household(s) ({', '.join(busy[:5])}): a rename does "
                "not merge two securities",
            )
    plans, refused = [], []
    for st in fresh:
        try:
            plan = plan_household(action, st)
        except LedgerInputError as exc:
            refused.append(exc)
            continue
        if plan.affected:
            plans.append(plan)
    if refused:
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        message = "; ".join(str(x).partition(": ")[2] for x in refused[:3])
        raise LedgerInputError(refused[0].field, f"{action.describe()} refused, nothing written: {message}{more}")
    return plans, replayed


__all__ = [
    "Action",
    "ActionReport",
    "HouseholdPlan",
    "HouseholdState",
    "action_from_json",
    "check_identity",
    "in_use",
    "parse_ratio",
    "plan_household",
    "prepare",
    "ratio_text",
    "rename_action",
    "split_action",
]
