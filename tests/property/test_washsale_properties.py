"""Random household trade histories keep the wash-sale invariants (hypothesis)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.washsale import Household, TradeIn, cents_of

ACCOUNTS = (("A", "taxable"), ("S", "taxable"), ("I", "ira"))
SYMBOLS = ("XYZ", "ABC")


@st.composite
def histories(draw):
    """Valid trade sequences: sells only of held lots, dates never going back."""
    n = draw(st.integers(1, 40))
    date = dt.date(2023, 1, 2)
    held: dict[str, tuple[str, str, Decimal]] = {}  # lot -> (account, symbol, qty)
    trades = []
    for i in range(n):
        date += dt.timedelta(days=draw(st.integers(0, 20)))
        price = Decimal(draw(st.integers(100, 20000))) / 100
        account, kind = draw(st.sampled_from(ACCOUNTS))
        if held and draw(st.booleans()):
            lot_id = draw(st.sampled_from(sorted(held)))
            account, symbol, qty = held[lot_id]
            kind = dict(ACCOUNTS)[account]
            sell = Decimal(draw(st.integers(1, int(qty))))
            trades.append(TradeIn(date, account, "H", kind, symbol, "sell", sell, price, lot_id))
            if sell == qty:
                del held[lot_id]
            else:
                held[lot_id] = (account, symbol, qty - sell)
        else:
            symbol = draw(st.sampled_from(SYMBOLS))
            qty = Decimal(draw(st.integers(1, 50)))
            lot_id = f"L{i}"
            trades.append(TradeIn(date, account, "H", kind, symbol, "buy", qty, price, lot_id))
            held[lot_id] = (account, symbol, qty)
    return trades


def resolve(hh: Household, t: TradeIn) -> TradeIn:
    """Sells in the generated history name the original lot; after splits sell its first piece."""
    if t.side != "sell" or t.lot_id in hh.lots:
        return t
    pieces = sorted(x for x in hh.lots if x.startswith(t.lot_id + "."))
    left, chosen = t.quantity, None
    for p in pieces:
        if hh.lots[p].quantity >= left:
            chosen = p
            break
    if chosen is None:
        return None
    return TradeIn(t.date, t.account, t.household, t.account_type, t.symbol, t.side, t.quantity, t.price, chosen)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_random_histories_keep_the_invariants(trades):
    hh = Household("H")
    bought = defaultdict(Decimal)
    sold = defaultdict(Decimal)
    cost = 0
    purchased: dict[str, Decimal] = {}
    for t in trades:
        t = resolve(hh, t)
        if t is None:
            continue
        hh.apply(t)
        if t.side == "buy":
            bought[t.symbol] += t.quantity
            cost += cents_of(t.quantity, t.price)
            purchased[t.lot_id] = t.quantity
        else:
            sold[t.symbol] += t.quantity
    # quantities conserved per symbol; no negative lot; capacity within the lot
    held = defaultdict(Decimal)
    for x in hh.lots.values():
        assert x.quantity > 0 and 0 <= x.capacity <= x.quantity and x.basis_cents >= 0
        held[x.symbol] += x.quantity
    for s in SYMBOLS:
        assert bought[s] - sold[s] == held[s]
    used_per_purchase = defaultdict(Decimal)
    deferred = 0
    for s in hh.sales:
        loss = max(0, -s.gain_cents)
        assert 0 <= s.disallowed_cents + s.permanent_cents <= loss  # disallowed ≤ loss
        if not s.recognized or s.gain_cents >= 0:
            assert s.disallowed_cents == s.permanent_cents == 0 and not s.replacements  # gains never washed
        assert sum(r.shares for r in s.replacements) <= s.quantity
        assert sum(r.amount_cents for r in s.replacements) == s.disallowed_cents + s.permanent_cents
        for r in s.replacements:
            used_per_purchase[r.lot_id.split(".")[0]] += r.shares
        deferred += s.disallowed_cents
        # economic gain = recognized − deferred into basis − permanently lost
        if s.recognized:
            assert s.gain_cents == s.recognized_cents - s.disallowed_cents - s.permanent_cents
    for purchase, used in used_per_purchase.items():  # each replacement share used at most once
        assert used <= purchased[purchase]
    # every cent of cost and of deferred loss is either in a sale's basis or in an open lot
    assert cost + deferred == sum(s.basis_cents for s in hh.sales) + sum(x.basis_cents for x in hh.lots.values())
