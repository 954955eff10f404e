"""Pure US tax-calendar rules shared by the solver and the ledger (domain.md §2)."""

from __future__ import annotations

import datetime as dt


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
