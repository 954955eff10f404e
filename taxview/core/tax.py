"""Pure US tax rules shared by the solver, the ledger and the backtest (domain.md §2): the
long-term test (``term_of``) and the netting of a tax year (``net_year``), exact in cents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import InputError


def add_one_year(d: dt.date) -> dt.date:
    """Same calendar day a year later; Feb 29 maps to Feb 28."""
    try:
        return d.replace(year=d.year + 1)
    except ValueError:
        return d.replace(year=d.year + 1, day=28)


def term_of(holding_start: dt.date, sold: dt.date) -> str:
    """'long' when sold more than one year after ``holding_start`` (the acquisition date).

    Bought 2023-06-15: sold 2024-06-15 is short, 2024-06-16 is long. Bought 2020-02-29:
    sold 2021-02-28 is short, 2021-03-01 is long (holding starts the day after purchase).
    """
    return "long" if sold > add_one_year(holding_start) else "short"


ORDINARY_LOSS_CAP_CENTS = 300_000  # a net capital loss offsets at most $3,000 of ordinary income a year
MARRIED_SEPARATELY_CAP_CENTS = 150_000  # $1,500 married filing separately


@dataclass(frozen=True, slots=True)
class YearNetting:
    """One tax year after §2 netting, integer cents. ``st_cents``/``lt_cents``: the year's net
    short/long-term result once the carry-forward is added and the two nets offset each other (a
    gain is taxed at its rate; never a gain on one side and a loss on the other). A net loss
    offsets ``deduction_cents`` of ordinary income (≤ the cap); the rest carries into the next
    year keeping its character, ``carry_st_cents``/``carry_lt_cents`` ≤ 0."""

    st_cents: int
    lt_cents: int
    deduction_cents: int
    carry_st_cents: int
    carry_lt_cents: int


def net_year(
    st_cents: int,
    lt_cents: int,
    carry_st_cents: int = 0,
    carry_lt_cents: int = 0,
    cap_cents: int = ORDINARY_LOSS_CAP_CENTS,
) -> YearNetting:
    """§2 netting of one tax year, exact: the year's realized short- and long-term net gains
    (negative: losses) plus the losses carried in (≤ 0, each keeping its character); ST nets with
    ST, LT with LT, then a loss on one side offsets a gain on the other (the result keeps the
    character of the larger). A net loss offsets up to ``cap_cents`` of ordinary income, short-term
    loss used first; what is left carries forward.

    ST −$10,000, LT +$4,000, no carry: net ST −$6,000; $3,000 deducted; −$3,000 ST carried.
    """
    for name, value in (
        ("st_cents", st_cents),
        ("lt_cents", lt_cents),
        ("carry_st_cents", carry_st_cents),
        ("carry_lt_cents", carry_lt_cents),
        ("cap_cents", cap_cents),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(name, f"must be whole cents (an int), got {value!r}")
    if carry_st_cents > 0 or carry_lt_cents > 0:
        raise InputError("carry", f"a carry-forward is a loss (<= 0), got ST {carry_st_cents}, LT {carry_lt_cents}")
    if cap_cents < 0:
        raise InputError("cap_cents", f"must be >= 0, got {cap_cents}")
    st, lt = st_cents + carry_st_cents, lt_cents + carry_lt_cents
    if st < 0 < lt or lt < 0 < st:  # the two nets offset each other; the larger keeps its character
        net = st + lt
        st, lt = (net, 0) if (net < 0 and st < 0) or (net >= 0 and st > 0) else (0, net)
    loss_st, loss_lt = min(st, 0), min(lt, 0)
    deduction = min(cap_cents, -(loss_st + loss_lt))
    use_st = min(deduction, -loss_st)  # the short-term loss offsets ordinary income first
    return YearNetting(st, lt, deduction, loss_st + use_st, loss_lt + deduction - use_st)
