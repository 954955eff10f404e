"""A delisted name through the per-account step (``cluster.step``) on the in-memory ledger: from its
delisting date on every account sells it at its last close and buys none, a loss lot a wash sale
would hold back goes on a later night, a liquidation sells it too; and ``taxview solve`` does the
same. The market is a real directory: a synthetic one, a universe update, closes appended."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from cluster.step import rebalance_account
from ledger.api import AccountInfo
from ledger.memory import MemoryLedger
from solver.io import write_lots_csv
from solver.market import read_market, synthesize, write_market
from solver.problem import ProblemCache
from solver.snapshot import Snapshot, load_snapshot
from solver.types import AccountSettings
from taxview.cli import main
from taxview.core.records import Lot

GONE = "S003"
NEW_DAYS = 30  # business days after the market's last: GONE trades on the first only


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("delisted") / "mkt"
    write_market(synthesize(names=20, days=300, factors=4, seed=11), d)
    market = read_market(d)
    days = [str(x) for x in np.busday_offset(market.dates[-1], np.arange(1, NEW_DAYS + 1), roll="backward")]
    (d.parent / "u.csv").write_text(f"symbol,action,date\n{GONE},delist,{days[0]}\n")
    assert main(["market", "universe", "--market", str(d), "--file", str(d.parent / "u.csv")]) == 0
    rows = ["date,symbol,close"]
    for k, day in enumerate(days):
        rows += [
            f"{day},{s},{market.prices[-1, i] * (1 + 0.002 * k):.2f}"
            for i, s in enumerate(market.symbols)
            if s != GONE or k == 0
        ]
    (d.parent / "c.csv").write_text("\n".join(rows) + "\n")
    assert main(["market", "append", "--market", str(d), "--prices", str(d.parent / "c.csv")]) == 0
    return d


def _snap(market_dir: Path, k: int) -> Snapshot:
    """The snapshot of the k-th new day (0: the delisting day)."""
    market = read_market(market_dir)
    return load_snapshot(market_dir, str(market.dates[len(market.dates) - NEW_DAYS + k]), factors=4)[1]


def _lots(snap: Snapshot, value: float, prefix: str) -> list[Lot]:
    """One lot per name still trading, about at benchmark weight, each 10% up since 2015."""
    out = []
    for i, s in enumerate(snap.symbols):
        shares = int(value * snap.benchmark[i] / snap.prices[i])
        if shares:
            basis = round(shares * snap.price_cents[i] / 1.1)
            out.append(Lot(f"{prefix}-{s}", s, Decimal(shares), basis, dt.date(2015, 3, 2)))
    return out


def _gone_lot(snap: Snapshot, lot_id: str, shares: int, gain: float, acquired: dt.date) -> Lot:
    """A lot of the delisted name with ``gain`` (a fraction of its basis) at its last close."""
    price = snap.price_cents[snap.index[GONE]]
    return Lot(lot_id, GONE, Decimal(shares), round(shares * price / (1 + gain)), acquired)


def _ledger(accounts: dict[str, tuple[str, int, list[Lot]]]) -> MemoryLedger:
    led = MemoryLedger()
    led.add_accounts([AccountInfo(a, hh, "taxable", cash_cents=cash) for a, (hh, cash, _) in accounts.items()])
    for a, (_, _, lots) in accounts.items():
        for x in lots:
            led.open_lot(a, x)
    return led


def test_from_its_delisting_day_on_every_account_sells_it_at_its_last_close_and_buys_none(market_dir):
    on_the_day, later = _snap(market_dir, 0), _snap(market_dir, 5)
    assert on_the_day.delisted == later.delisted == {GONE}
    last_close = on_the_day.price_cents[on_the_day.index[GONE]]
    assert later.price_cents[later.index[GONE]] == last_close  # no close after its last day: the last one
    old = dt.date(2015, 6, 1)
    led = _ledger(
        {
            "A": ("H1", 2_000_000, [*_lots(on_the_day, 1e6, "a"), _gone_lot(on_the_day, "a-gain", 300, 0.4, old)]),
            "B": ("H2", 1_000_000, [*_lots(on_the_day, 5e5, "b"), _gone_lot(on_the_day, "b-loss", 200, -0.3, old)]),
            "C": ("H3", 50_000_000, []),  # cash only: buys the index, never the delisted name
        }
    )
    outcomes = {
        "A": rebalance_account(led, on_the_day, "A", "night0:A", AccountSettings(), ProblemCache()),
        "B": rebalance_account(led, later, "B", "night5:B", AccountSettings(), ProblemCache()),
        "C": rebalance_account(led, later, "C", "night5:C", AccountSettings(), ProblemCache()),
    }
    for account, out in outcomes.items():
        assert out.ok, (account, out.reason)
        assert GONE in out.settings.exclude_symbols
        assert not [t for t in out.result.trades if t.symbol == GONE and t.side == "buy"]
        assert not [x for x in led.lots(account) if x.symbol == GONE]
    for account, lot_id, gain in (("A", "a-gain", True), ("B", "b-loss", False)):
        (sold,) = [t for t in outcomes[account].result.trades if t.symbol == GONE]
        assert (sold.side, sold.lot_id, sold.price) == ("sell", lot_id, Decimal(last_close) / 100)
        (sale,) = [s for s in outcomes[account].committed.sales if s["symbol"] == GONE]
        assert (sale["gain_cents"] > 0) == gain
    assert len([t for t in outcomes["C"].result.trades if t.side == "buy"]) == len(later.symbols) - 1


def test_a_loss_lot_a_wash_sale_holds_back_is_sold_on_a_later_night(market_dir):
    """The household bought the name 10 days before its delisting: its older loss lot may not be
    sold at a loss yet (it would wash); the gain lot goes tonight, the loss lot after the window."""
    on_the_day = _snap(market_dir, 0)
    recent = on_the_day.date - dt.timedelta(days=10)
    lots = [
        *_lots(on_the_day, 1e6, "e"),
        _gone_lot(on_the_day, "e-loss", 200, -0.3, dt.date(2015, 6, 1)),
        _gone_lot(on_the_day, "e-new", 50, 0.05, recent),
    ]
    led = _ledger({"E": ("H", 1_000_000, lots)})
    out = rebalance_account(led, on_the_day, "E", "night0:E", AccountSettings(), ProblemCache())
    assert out.ok, out.reason
    assert [(t.lot_id, t.side) for t in out.result.trades if t.symbol == GONE] == [("e-new", "sell")]
    assert [x.lot_id for x in led.lots("E") if x.symbol == GONE] == ["e-loss"]
    assert any(GONE in note and "wash-sale" in note for note in out.result.notes), out.result.notes

    later = _snap(market_dir, NEW_DAYS - 1)
    assert (later.date - recent).days > 30
    out = rebalance_account(led, later, "E", "night29:E", AccountSettings(), ProblemCache())
    assert out.ok, out.reason
    (sold,) = [t for t in out.result.trades if t.symbol == GONE]
    assert (sold.lot_id, sold.price) == ("e-loss", Decimal(on_the_day.price_cents[on_the_day.index[GONE]]) / 100)
    assert not [x for x in led.lots("E") if x.symbol == GONE]


def test_a_liquidation_sells_the_delisted_name_at_its_last_close(market_dir):
    later = _snap(market_dir, 3)
    led = _ledger({"L": ("H", 0, [*_lots(later, 2e5, "l"), _gone_lot(later, "l-gone", 40, 0.2, dt.date(2015, 6, 1))])})
    led.set_mandate("L", {"status": "liquidate"}, "ops", "2024-01-01T00:00:00+00:00")
    out = rebalance_account(led, later, "L", "night3:L", AccountSettings(), ProblemCache())
    assert out.status == "liquidated" and out.reason is None
    (sale,) = [s for s in out.committed.sales if s["symbol"] == GONE]
    assert sale["lot_id"] == "l-gone" and led.lots("L") == []


def test_taxview_solve_sells_a_delisted_name_too(tmp_path, market_dir, capsys):
    later = _snap(market_dir, 2)
    write_lots_csv(
        [*_lots(later, 5e5, "s"), _gone_lot(later, "s-gone", 100, 0.1, dt.date(2016, 1, 4))], tmp_path / "l.csv"
    )
    (tmp_path / "a.toml").write_text('[account]\nid = "S1"\ncash = 10000\n')
    args = ["--market", str(market_dir), "--date", str(later.date), "--account", str(tmp_path / "a.toml")]
    assert main(["solve", *args, "--lots", str(tmp_path / "l.csv"), "--json"]) == 0
    trades = json.loads(capsys.readouterr().out)["trades"]
    assert [(t["side"], t["lot_id"], t["price"]) for t in trades if t["symbol"] == GONE] == [
        ("sell", "s-gone", later.price_cents[later.index[GONE]] / 100)
    ]
