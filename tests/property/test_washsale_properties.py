"""Random household histories keep the wash-sale conservation laws (domain.md §3), on the pure
engine and, replayed commit by commit, on the Redis ledger (tests/integration)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.batch import run
from ledger.errors import LedgerInputError
from ledger.keys import dot_prefixes, made_lot_id
from ledger.records import TradeIn
from ledger.washsale import Household
from taxview.core.money import cents_of

ACCOUNTS = (("A", "taxable"), ("S", "taxable"), ("I", "ira"))
SYMBOLS = ("XYZ", "GOOG", "GOOGL")
IDENTICAL = {"GOOGL": "GOOG"}


def _named(hh: Household, account: str, name: str) -> list:
    """Open lots a sell naming ``name`` takes from: the lot, or the pieces of a split lot."""
    return [
        x for x in hh.lots.values() if x.account == account and (x.lot_id == name or x.lot_id.startswith(name + "."))
    ]


def _fingerprint(hh: Household):
    lots = sorted((x.lot_id, x.quantity, x.basis_cents, x.capacity, x.holding_start) for x in hh.lots.values())
    pending = [(s.sale_id, s.unmatched, s.loss_left_cents) for s in hh.pending]
    return lots, pending, len(hh.sales), hh.seq, hh.sale_seq, dict(hh.ids)


def draw_history(data, identical) -> tuple[list[TradeIn], Household]:
    """A valid history, drawn against the engine's state: buys (named or not, whole or half
    shares), sells by lot id (a lot, or a split lot by the id it was bought under), FIFO sells and
    two-lot orders, in three accounts of one household (spouse and IRA), same-day trades. Along the
    way a refused trade (selling one share more than held, reusing a lot id) must change nothing.
    Some buys are named in the ledger's own form (``<account>-<yyyymmdd>-<n>``), free ones: on the
    Redis ledger, whose made ids live apart from the given ones, they must be free too."""
    hh = Household("H", identical)
    date, trades, n = dt.date(2023, 1, 2), [], data.draw(st.integers(1, 40), label="trades")
    for i in range(n):
        date += dt.timedelta(days=data.draw(st.integers(0, 12)))
        account, kind = data.draw(st.sampled_from(ACCOUNTS))
        price = Decimal(data.draw(st.integers(100, 9000))) / 100
        held = sorted(x.lot_id for x in hh.lots.values() if x.account == account)
        action = data.draw(st.sampled_from(["buy", "sell_id", "sell_fifo", "order"])) if held else "buy"
        last = trades[-1] if trades else None
        if action != "buy" and last and last.side == "sell" and (last.date, last.account) == (date, account):
            date += dt.timedelta(days=1)  # a new row selling the same name that day would join that sale
        if action == "buy":
            symbol = data.draw(st.sampled_from(SYMBOLS))
            qty = Decimal(data.draw(st.integers(1, 40))) / data.draw(st.sampled_from([1, 2]))
            lot_id = data.draw(st.sampled_from([None, f"L{i}", "made form"]))
            if lot_id == "made form":  # a name of the ledger's own form, maybe one it made: taken or free
                other = data.draw(st.sampled_from([a for a, _ in ACCOUNTS]))
                lot_id = made_lot_id(other, date - dt.timedelta(days=data.draw(st.integers(0, 1))), 1 + i // 2)
                if not hh.id_free(lot_id):
                    lot_id = None
            group = [TradeIn(date, account, "H", kind, symbol, "buy", qty, price, lot_id)]
        elif action == "sell_fifo":
            symbol = data.draw(st.sampled_from(sorted({hh.lots[x].symbol for x in held})))
            have = sum(x.quantity for x in hh.lots.values() if x.account == account and x.symbol == symbol)
            qty = Decimal(data.draw(st.integers(1, int(have * 2)))) / 2
            group = [TradeIn(date, account, "H", kind, symbol, "sell", qty, price, None)]
        else:
            lots = data.draw(
                st.lists(st.sampled_from(held), min_size=1, max_size=1 if action == "sell_id" else 2, unique=True)
            )
            symbol = hh.lots[lots[0]].symbol
            group = []
            for lid in lots:
                if hh.lots[lid].symbol != symbol:
                    continue
                name = data.draw(st.sampled_from([lid, *dot_prefixes(lid)]))  # a piece, or the lot as bought
                have = sum(x.quantity for x in _named(hh, account, name))
                if any(g.lot_id in (name, *dot_prefixes(name)) or name in dot_prefixes(g.lot_id) for g in group):
                    continue  # the same lot named twice in one order
                qty = Decimal(data.draw(st.integers(1, int(have * 2)))) / 2
                group.append(TradeIn(date, account, "H", kind, symbol, "sell", qty, price, name))
        if data.draw(st.booleans(), label="try a bad trade first"):
            before = _fingerprint(hh)
            bad = group[0]
            if bad.side == "sell":
                have = sum(x.quantity for x in hh.lots.values() if x.account == account and x.symbol == bad.symbol)
                bad = TradeIn(bad.date, bad.account, "H", kind, bad.symbol, "sell", have + 1, price, None)
                with pytest.raises(LedgerInputError):
                    hh.apply_sale([bad])
            elif hh.ids:
                used = data.draw(st.sampled_from(sorted(x for x, v in hh.ids.items() if v == "1")))
                with pytest.raises(LedgerInputError):
                    hh.apply(TradeIn(bad.date, bad.account, "H", kind, bad.symbol, "buy", bad.quantity, price, used))
            assert _fingerprint(hh) == before  # refused: nothing changed
        if group[0].side == "sell":
            hh.apply_sale(group)
        else:
            hh.apply(group[0])
        trades += group
    return trades, hh


def check_conservation(trades: list[TradeIn], sales, lots, identical) -> None:
    key = lambda symbol: identical.get(symbol, symbol)  # noqa: E731
    bought, sold, held = defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal)
    cost, basis_in = defaultdict(int), defaultdict(int)
    for t in trades:
        if t.side == "buy":
            bought[t.account, t.symbol] += t.quantity
            cost[key(t.symbol)] += cents_of(t.quantity, t.price)
    for x in lots:
        assert x.quantity > 0 and x.basis_cents >= 0 and 0 <= x.capacity <= x.quantity
        held[x.account, x.symbol] += x.quantity
        basis_in[key(x.symbol)] += x.basis_cents
    for s in sales:
        sold[s.account, s.symbol] += s.quantity
        loss = max(0, -s.gain_cents)
        assert 0 <= s.disallowed_cents + s.permanent_cents <= loss  # a loss disallows at most itself
        if not s.recognized or s.gain_cents >= 0:  # gains (and IRA sales) wash nothing
            assert s.disallowed_cents == s.permanent_cents == 0 and not s.replacements
        else:
            assert s.recognized_cents == s.gain_cents + s.disallowed_cents + s.permanent_cents
        assert sum(r.amount_cents for r in s.replacements) == s.disallowed_cents + s.permanent_cents
        assert sum(r.shares for r in s.replacements) <= s.quantity
        cost[key(s.symbol)] += s.disallowed_cents  # deferred into a replacement's basis
        basis_in[key(s.symbol)] += s.basis_cents
    # open shares = bought − sold, per account and symbol
    for k in set(bought) | set(sold) | set(held):
        assert bought[k] - sold[k] == held[k], k
    # cost of buys + non-permanently disallowed losses = basis of open lots + basis of sold shares
    for k in set(cost) | set(basis_in):
        assert cost[k] == basis_in[k], k


def check_one_bite(hh: Household) -> None:
    """Each purchased share absorbs at most one disallowed loss, bought within 30 days of the sale."""

    def purchase(lot_id: str) -> str:  # the registered id a piece carries as its prefix
        return next(p for p in [*dot_prefixes(lot_id), lot_id] if hh.ids.get(p) == "1")

    shares = defaultdict(Decimal)  # each purchase's shares, open or sold
    for x in hh.lots.values():
        shares[purchase(x.lot_id)] += x.quantity
    for s in hh.sales:
        shares[purchase(s.lot_id)] += s.quantity
    acquired = {purchase(x.lot_id): x.acquired for x in hh.lots.values()}
    used = defaultdict(Decimal)
    for s in hh.sales:
        for r in s.replacements:
            used[purchase(r.lot_id)] += r.shares
            if purchase(r.lot_id) in acquired:
                assert abs((acquired[purchase(r.lot_id)] - s.date).days) <= 30
    for p, n in used.items():
        assert n <= shares[p], p


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_random_histories_keep_the_conservation_laws(data, with_identical):
    identical = IDENTICAL if with_identical else {}
    trades, hh = draw_history(data, identical)
    check_conservation(trades, hh.sales, hh.lots.values(), identical)
    check_one_bite(hh)
    # the batch report groups the same file the same way: the same outcome
    report = run(trades, identical)
    assert sorted((s.sale_id, s.lot_id, s.disallowed_cents, s.permanent_cents) for s in report.sales) == sorted(
        (s.sale_id, s.lot_id, s.disallowed_cents, s.permanent_cents) for s in hh.sales
    )
