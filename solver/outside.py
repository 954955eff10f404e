"""Holdings kept elsewhere (``AccountSettings.outside``): not tradable here, but part of the owner's
portfolio.

``exclude``: the names are excluded here (not bought; held lots sold), today's exclusion.

``complete``: the TE budget applies to the account and the outside holdings together against the
benchmark. With V the account's value, o (n,) the outside dollars per name, O = Σo and
α = V / (V + O) the account's share of the whole, the combined active weight is
α·(w − w_b + d) with d = (o − O·w_b) / V: an offset in the active weights, in the account's units.
The compiled problem's active variable becomes a = w − w_b + d (``solver.data``: d enters the
zero-cone, cap and budget rows' bounds — parameters, the same compiled problem), and the TE the
problem sees is the combined TE ÷ α: the optimizer's TE budget is te_max / α and λ_te is scaled by
α² (``solver_settings``), so the account underweights the held name and the names that move with it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from taxview.core.errors import InputError

from .snapshot import Snapshot
from .types import AccountSettings

if TYPE_CHECKING:
    from .account import Account


def check_outside(settings: AccountSettings, snap: Snapshot) -> None:
    """Outside holdings must name the market's symbols (a typo would hedge nothing)."""
    if settings.outside is None:
        return
    unknown = sorted(settings.outside.symbols - snap.index.keys())
    if unknown:
        raise InputError("outside.holdings", f"{len(unknown)} symbol(s) {unknown[:10]} not in the market")


def excluded(settings: AccountSettings) -> AccountSettings:
    """``exclude`` mode: the settings with the outside names excluded."""
    o = settings.outside
    if o is None or o.mode != "exclude" or o.symbols <= settings.exclude_symbols:
        return settings
    return replace(settings, exclude_symbols=settings.exclude_symbols | o.symbols)


def offset(settings: AccountSettings, snap: Snapshot, value: float) -> tuple[np.ndarray, float]:
    """(d (n,), α): the active-weight offset and the account's share of account + outside holdings;
    zeros and 1 unless ``complete``."""
    n = len(snap.symbols)
    o = settings.outside
    if o is None or o.mode != "complete":
        return np.zeros(n), 1.0
    dollars = np.zeros(n)
    for symbol, d in o.holdings:
        dollars[snap.index[symbol]] += float(d)
    total = float(dollars.sum())
    return (dollars - total * snap.benchmark) / value, value / (value + total)


def solver_settings(settings: AccountSettings, alpha: float) -> AccountSettings:
    """The settings as the optimizer sees them in ``complete`` mode (its TE is the combined ÷ α)."""
    if alpha == 1.0:
        return settings
    return replace(settings, te_max=settings.te_max / alpha, lambda_te=settings.lambda_te * alpha**2)


def combined_reason(account: Account, reason: str | None) -> str | None:
    """A failed account's reason, with outside holdings ``complete`` saying the TE figures in it
    are in the account's own units (the combined TE ÷ the account's share)."""
    if reason is None or account.alpha == 1.0 or "TE" not in reason:
        return reason
    return (
        f"{reason} (outside holdings, complete: the TE figures are the TE of account + outside holdings "
        f"÷ {account.alpha:.3f}, the account's share of the two; the mandate's budget is "
        f"{account.mandate.te_max:.2%} on the combined value)"
    )
