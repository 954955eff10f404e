"""The service layer on the Redis store (the suite's real redis-server, no Ray): the same answers as
on the in-memory ledger (wash-check, restrictions, proposal), a commit refused once the household's
version moved (CHANGED, nothing written), and eight clients committing proposals of one household
at once: exactly one is booked, the others get CHANGED, every account's lots and cash add up."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
from decimal import Decimal

import pytest

from cluster.service.core import Service
from cluster.service.proposals import RedisProposals
from ledger.api import AccountInfo
from ledger.errors import CommitRejected
from ledger.importer import import_lots
from ledger.memory import MemoryLedger
from ledger.store import LedgerStore
from solver.problem import ProblemCache
from taxview.core.records import Lot, Trade
from tests.integration.test_serve import lots_table

CACHE = ProblemCache()
ACCOUNTS = [("H1-A", "taxable", 1_000_000), ("H1-B", "taxable", 500_000), ("H1-I", "ira", 3_000_000)]


def _lots(snap) -> list[tuple[str, Lot]]:
    out = []
    for k, (account, _, _) in enumerate(ACCOUNTS[:2]):
        for i, s in enumerate(snap.symbols):
            shares = int((600_000 - 200_000 * k) * snap.benchmark[i] / snap.prices[i])
            if shares:
                gain = (-0.2, 0.1, 0.3)[(i + k) % 3]
                basis = round(shares * snap.price_cents[i] / (1 + gain))
                out.append((account, Lot(f"{account}-{s}", s, Decimal(shares), basis, dt.date(2015, 4, 1))))
    return out


def _infos():
    return [AccountInfo(a, "H1", kind, cash_cents=cash) for a, kind, cash in ACCOUNTS]


@pytest.fixture
def both(redis_client, small_snap):
    """The same household in Redis and in memory, with one loss sale booked 12 days ago."""
    store = LedgerStore(redis_client)
    store.add_accounts(_infos())
    import_lots(store, lots_table(_lots(small_snap)))
    memory = MemoryLedger()
    memory.add_accounts(_infos())
    for account, lot in _lots(small_snap):
        memory.open_lot(account, lot)
    name = small_snap.symbols[0]  # held at a 20% loss by H1-A
    sold = [Trade(name, "sell", Decimal(5), Decimal("1.00"), f"H1-A-{name}")]
    for led in (store, memory):
        led.commit("H1-A", small_snap.date - dt.timedelta(days=12), sold, "earlier", allow_wash=True)
    svc = Service(store, small_snap, proposals=RedisProposals(redis_client), cache=CACHE)
    return svc, Service(memory, small_snap, cache=CACHE), name


def test_the_store_and_the_memory_ledger_give_the_same_answers(both, small_snap):
    on_redis, in_memory, name = both
    trades = [
        {"account": "H1-I", "symbol": name, "side": "buy", "quantity": "3"},
        {"account": "H1-B", "symbol": name, "side": "buy", "quantity": "4"},
        {"account": "H1-B", "symbol": small_snap.symbols[1], "side": "sell", "quantity": "10"},
        {"account": "H1-A", "symbol": small_snap.symbols[3], "side": "sell", "quantity": "7"},
    ]
    a, b = on_redis.wash_check("H1", trades), in_memory.wash_check("H1", trades)
    assert a["trades"] == b["trades"]
    assert a["trades"][0]["permanently_disallowed"] != "0.00" and a["trades"][1]["disallowed"] != "0.00"
    assert on_redis.restrictions("H1") == in_memory.restrictions("H1")
    assert name in on_redis.restrictions("H1")["accounts"]["H1-B"]["no_buy"]
    pa, pb = on_redis.propose("H1-A"), in_memory.propose("H1-A")
    assert pa["orders"] == pb["orders"] and pa["tax_estimate"] == pb["tax_estimate"]
    assert on_redis.account("H1-B") == in_memory.account("H1-B")


def test_a_commit_after_any_write_to_the_household_is_changed_and_writes_nothing(both):
    svc, _, _ = both
    store = svc.ledger
    p = svc.propose("H1-B")
    store.set_mandate("H1-I", {"lambda_tax": 0.0}, "test", "2024-01-01T00:00:00Z")  # another account's mandate
    before = (store.household_version("H1"), store.lots("H1-B"), store.account("H1-B").cash_cents)
    with pytest.raises(CommitRejected) as err:
        svc.commit(p["proposal_id"])
    assert err.value.code == "CHANGED"
    assert (store.household_version("H1"), store.lots("H1-B"), store.account("H1-B").cash_cents) == before
    assert store.committed("H1-B", f"proposal:{p['proposal_id']}") is None


def test_committing_a_proposal_with_no_orders_writes_nothing_and_keeps_other_proposals_valid(both):
    svc, _, _ = both
    store = svc.ledger
    for _ in range(4):  # the account rebalanced until the solver has nothing left to trade
        empty = svc.propose("H1-A")
        if not empty["orders"]:
            break
        svc.commit(empty["proposal_id"])
    assert empty["proposal_id"] and empty["orders"] == []
    pending = svc.propose("H1-B")  # another proposal of the household, at the same version
    assert pending["orders"] and pending["ledger_version"] == empty["ledger_version"]
    before = (store.household_version("H1"), store.lots("H1-A"), store.account("H1-A").cash_cents)
    for _ in range(2):  # a repeat is the same no-op
        done = svc.commit(empty["proposal_id"])
        assert done["empty"] is True and done["replayed"] is False and "nothing booked" in done["detail"]
        assert (done["sales"], done["new_lots"], done["ledger_version"]) == ([], [], before[0])
        assert done["cash"] == empty["cash_after"]
    assert (store.household_version("H1"), store.lots("H1-A"), store.account("H1-A").cash_cents) == before
    assert store.committed("H1-A", f"proposal:{empty['proposal_id']}") is None
    booked = svc.commit(pending["proposal_id"])  # not CHANGED: the empty commit moved nothing
    assert booked["empty"] is False and (booked["sales"] or booked["new_lots"])
    assert booked["ledger_version"] == store.household_version("H1") == before[0] + 1


def test_eight_clients_commit_at_once_one_is_booked(both):
    svc, _, _ = both
    store = svc.ledger
    proposals = [svc.propose(a) for a in ("H1-A", "H1-B") for _ in range(4)]
    assert len({p["ledger_version"] for p in proposals}) == 1
    before = {a: (store.account(a).cash_cents, sum(x.quantity for x in store.lots(a))) for a in ("H1-A", "H1-B")}

    def commit(p):
        try:
            return svc.commit(p["proposal_id"])
        except CommitRejected as exc:
            return exc.code

    with cf.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(commit, proposals))
    booked = [(p, a) for p, a in zip(proposals, answers) if isinstance(a, dict)]
    assert len(booked) == 1 and sorted(a for a in answers if isinstance(a, str)) == ["CHANGED"] * 7
    won, done = booked[0]
    assert store.household_version("H1") == won["ledger_version"] + 1
    for account, (cash, shares) in before.items():
        if account == won["account"]:
            bought = sum(Decimal(o["shares"]) for o in won["orders"] if o["side"] == "buy")
            sold = sum(Decimal(o["shares"]) for o in won["orders"] if o["side"] == "sell")
            assert sum(x.quantity for x in store.lots(account)) == shares + bought - sold
            assert store.account(account).cash_cents == round(Decimal(won["cash_after"]) * 100)
        else:
            assert (store.account(account).cash_cents, sum(x.quantity for x in store.lots(account))) == (cash, shares)
