"""The synthetic firm of the demo and the benchmarks (domain.md §8): households with a taxable
account, often a spouse's and sometimes an IRA, holding lots bought over past years."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pyarrow as pa

from ledger.api import AccountInfo
from solver.market import Market
from solver.synthetic import synth_lots


def synth_firm(market: Market, t: int, accounts: int, seed: int = 7) -> tuple[list[AccountInfo], pa.Table]:
    """About 2.5 accounts per household; lots worth $0.3M–$5M per account, ~5 per name."""
    rng = np.random.default_rng(seed)
    infos: list[AccountInfo] = []
    h = 0
    while len(infos) < accounts:
        members = [("T", "taxable")]
        if rng.random() < 0.8:
            members.append(("S", "taxable"))
        if rng.random() < 0.7:
            members.append(("I", "ira"))
        for tag, kind in members[: accounts - len(infos)]:
            cash = int(rng.uniform(0.001, 0.01) * 1e6 * 100)
            infos.append(AccountInfo(f"H{h:05d}-{tag}", f"H{h:05d}", kind, 0.408, 0.238, cash))
        h += 1
    cols: dict[str, list] = {k: [] for k in ("account", "lot_id", "symbol", "quantity", "basis_cents", "acquired")}
    for a in infos:
        value = float(np.exp(rng.uniform(np.log(3e5), np.log(5e6))))
        for lot in synth_lots(market, t, rng, value=value, prefix=f"{a.account}:"):
            cols["account"].append(a.account)
            cols["lot_id"].append(lot.lot_id)
            cols["symbol"].append(lot.symbol)
            cols["quantity"].append(str(lot.quantity))
            cols["basis_cents"].append(lot.basis_cents)
            cols["acquired"].append(lot.acquired.toordinal())
    table = pa.table(
        {
            "account": pa.array(cols["account"], pa.string()),
            "lot_id": pa.array(cols["lot_id"], pa.string()),
            "symbol": pa.array(cols["symbol"], pa.string()),
            "quantity": pa.array(cols["quantity"], pa.string()),
            "basis_cents": pa.array(cols["basis_cents"], pa.int64()),
            "acquired": pa.array(cols["acquired"], pa.int64()),
            "holding_start": pa.array(cols["acquired"], pa.int64()),
        }
    )
    return infos, table


def demo_mandates(infos: list[AccountInfo], seed: int = 7) -> dict[str, dict]:
    """A realistic mix of mandates (checked by ``taxview.core.mandate.check``): IRAs without tax
    awareness; among taxable accounts some sector exclusions, tight TE budgets and gain budgets,
    a few paused and one liquidating."""
    rng = np.random.default_rng(seed + 1)
    out: dict[str, dict] = {}
    taxable = [a.account for a in infos if a.account_type != "ira"]
    for a in infos:
        if a.account_type == "ira":
            out[a.account] = {"lambda_tax": 0.0}
    for account in taxable:
        u, m = rng.random(), {}
        if u < 0.10:
            m["exclude_sectors"] = ("Energy",)
        elif u < 0.20:
            m["te_max"] = 0.0075
        elif u < 0.30:
            m["gain_budget"] = Decimal("5000.00")
        elif u < 0.33:
            m["status"] = "paused"
        if m:
            out[account] = m
    if taxable:
        out[taxable[len(taxable) // 2]] = {"status": "liquidate"}
    return out


def demo_flows(
    accounts: list[str], value_of: Callable[[str], int], rng: np.random.Generator, share: float = 0.03
) -> list[tuple[str, int, str]]:
    """A night's cash flows on about ``share`` of the accounts: deposits of $5k–$100k, and
    withdrawals of 1–10% of the account (``value_of``: its value in cents, asked only then)."""
    out = []
    for account in accounts:
        if rng.random() >= share:
            continue
        if rng.random() < 0.6:
            out.append((account, int(rng.uniform(5_000, 100_000)) * 100, "deposit"))
        elif (value := value_of(account)) > 0:
            out.append((account, -int(value * rng.uniform(0.01, 0.10) / 100) * 100, "withdrawal"))
    return out
