"""Python and Lua read one lot encoding (ledger.codec) and one wash-sale window (WINDOW_DAYS),
checked on the real redis-server."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from importlib import resources

import pytest

import ledger.plan
import ledger.store
import ledger.washsale
import ledger.windows
from ledger.api import AccountInfo
from ledger.codec import LOT_FIELDS, encode_lot, lot_field, lua_prelude
from ledger.errors import CommitRejected
from ledger.records import OpenLot
from ledger.store import LedgerStore
from ledger.windows import WINDOW_DAYS
from taxview.core.records import Trade

LOTS = [
    OpenLot("a1", "A", "XYZ", Decimal(100), 100000, dt.date(2023, 1, 3), dt.date(2023, 1, 3), "p1", Decimal(100), 1),
    OpenLot(
        "acct-20240315-7.2",
        "H1/spouse.2",
        "BRK.B",
        Decimal("0.000001"),
        0,
        dt.date(1900, 1, 1),
        dt.date(1900, 1, 1),
        "p7",
        Decimal(0),
        123456,
    ),
]

# every field through the prelude's positions, both ways the scripts read one: lot_field and LOT
READ_EVERY_FIELD = """
local parts, start = {}, 1
while true do
  local bar = string.find(ARGV[1], '|', start, true)
  if not bar then parts[#parts + 1] = string.sub(ARGV[1], start); break end
  parts[#parts + 1] = string.sub(ARGV[1], start, bar - 1)
  start = bar + 1
end
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = {lot_field(ARGV[1], ARGV[i]), parts[LOT[ARGV[i]]]}
end
return out
"""


@pytest.mark.parametrize("lot", LOTS, ids=lambda x: x.lot_id)
def test_lua_reads_every_field_of_a_python_encoded_lot_at_the_shared_position(redis_client, lot):
    enc = encode_lot(lot)
    got = redis_client.eval(lua_prelude() + READ_EVERY_FIELD, 0, enc, *LOT_FIELDS)
    for name, (by_pattern, by_position) in zip(LOT_FIELDS, got):
        assert by_pattern.decode() == by_position.decode() == lot_field(enc, name), name


def test_no_lua_script_holds_its_own_window_or_field_position():
    for path in resources.files("ledger").joinpath("lua").iterdir():
        if path.name.endswith(".lua"):
            text = path.read_text()
            assert not re.search(r"\b30\b", text), f"{path.name}: the window comes in as an argument"
            assert "'^[^|]*|" not in text and "|(%d+)$" not in text, f"{path.name}: read fields through LOT"


def test_the_window_reaches_the_commit_script_from_the_one_constant(redis_client, monkeypatch):
    """With a 5-day window a rebuy on day 6 is no wash sale for the planner, and commit.lua must
    agree: it re-checks the window with the length it is given, not a number of its own."""
    for module in (ledger.windows, ledger.washsale, ledger.store, ledger.plan):
        monkeypatch.setattr(module, "WINDOW_DAYS", 5)
    store = LedgerStore(redis_client)
    store.add_accounts([AccountInfo("A", "H1", "taxable")])
    store.import_lots([LOTS[0]])
    sell = Trade("XYZ", "sell", 100, "7.50", "a1")
    store.commit("A", dt.date(2024, 3, 1), [sell], "k1")
    buy = Trade("XYZ", "buy", 1, "7.60")
    with pytest.raises(CommitRejected, match="WASH_CONFLICT.*within 5 days"):
        store.commit("A", dt.date(2024, 3, 6), [buy], "k2")
    store.commit("A", dt.date(2024, 3, 7), [buy], "k3")  # day 6: outside the window
    assert store.restrictions("H1", dt.date(2024, 3, 7))["A"].no_buy == frozenset()
    assert WINDOW_DAYS == 30  # the real one, untouched outside this test
