"""The wash-sale window: its length (``WINDOW_DAYS``, the one home of the number) and the
restrictions a household's windows put on each account on a date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from taxview.core.records import Restrictions

WINDOW_DAYS = 30  # days each side of a loss sale (the Lua scripts get it as an argument)
_NONE: frozenset[str] = frozenset()


def restrictions_from_windows(
    windows: Iterable[tuple[str, int, int]],
    date: dt.date,
    account_types: Mapping[str, str],
    names: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Restrictions]:
    """Each account's wash-sale restrictions on ``date`` from its household's windows: (identity
    key, last purchase, last loss sale) as proleptic ordinals, 0 for none. A loss sale in the last
    ``WINDOW_DAYS`` days (``date`` included) blocks buying the key in every account; a purchase
    blocks selling it at a loss, except in an IRA (its sales recognize nothing). ``names``: the
    symbols of an identity key (GOOG and GOOGL), default the key alone."""
    today = date.toordinal()
    no_buy: set[str] = set()
    no_loss: set[str] = set()
    for key, bought, lost in windows:
        these = names.get(key, (key,)) if names else (key,)
        if lost and 0 <= today - lost <= WINDOW_DAYS:
            no_buy.update(these)
        if bought and 0 <= today - bought <= WINDOW_DAYS:
            no_loss.update(these)
    nb, nl = frozenset(no_buy), frozenset(no_loss)
    return {a: Restrictions(nb, _NONE if t == "ira" else nl) for a, t in account_types.items()}


def blocked_names(windows: Iterable[tuple[str, int, int]], date: dt.date) -> list[tuple[str, str, dt.date]]:
    """What a household's windows block on ``date``: (identity key, ``no_buy`` | ``no_loss_sale``,
    the last day blocked), the same rule as ``restrictions_from_windows`` (the morning report)."""
    today = date.toordinal()
    out = []
    for key, bought, lost in windows:
        if lost and 0 <= today - lost <= WINDOW_DAYS:
            out.append((key, "no_buy", dt.date.fromordinal(lost + WINDOW_DAYS)))
        if bought and 0 <= today - bought <= WINDOW_DAYS:
            out.append((key, "no_loss_sale", dt.date.fromordinal(bought + WINDOW_DAYS)))
    return out
