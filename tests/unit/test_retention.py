"""What a household gives up to the archive (``ledger.retention``, pure: no Redis)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from ledger.codec import encode_sale
from ledger.records import Replacement, Sale
from ledger.retention import JournalEntry, RetentionPolicy, cut_household, journal_prefix, sale_candidates

D = dt.date


def sale(n: int, day: D, proceeds: int, basis: int, recognized: bool = True, rep=()) -> tuple[str, str]:
    sale_id = f"H:{n}"
    replacements = [Replacement(a, b, Decimal(c), e, f) for a, b, c, e, f in rep]
    s = Sale(sale_id, day, "A", "XYZ", Decimal(10), proceeds, basis, "short", "x1", "x1", 40, recognized)
    s.replacements = replacements
    return sale_id, encode_sale(s)


def old_sale(n: int, day: D, proceeds: int, basis: int, rep=()) -> tuple[str, str]:
    """A sale as the first version stored it (JSON)."""
    doc = {"id": f"H:{n}", "d": day.toordinal(), "a": "A", "s": "XYZ", "q": "10", "p": proceeds, "b": basis}
    doc.update(t="short", l="x1", pid="x1", h=40, r=True, dis=0, perm=0, u="0", left=0)
    return f"H:{n}", json.dumps({**doc, "rep": [list(x) for x in rep]})


def entry(i: int, date: str = "", key: str = "") -> JournalEntry:
    return JournalEntry(f"{1000 + i}-0", key, "A", date, "{}")


def test_the_journal_gives_up_the_prefix_up_to_its_last_entry_dated_before_the_cut():
    entries = [entry(0), entry(1, "2024-01-02", "k1"), entry(2), entry(3, "2024-03-01", "k2"), entry(4)]
    assert journal_prefix(entries, D(2024, 3, 1)) == entries[:2]  # the mandate at 2 waits for k2
    assert journal_prefix(entries, D(2024, 3, 2)) == entries[:4]  # the undated tail stays
    assert journal_prefix([entry(0), entry(1)], D(2030, 1, 1)) == []  # nothing dated: nothing goes


def test_a_loss_leaves_only_once_no_commit_from_the_cut_on_is_in_its_window():
    loss, gain = sale(1, D(2024, 3, 1), 700, 1000), sale(2, D(2024, 3, 1), 1200, 1000)
    sales = dict([loss, gain])
    # a commit on 03-31 is 30 days after the loss: inside its window (both ends count)
    assert set(sale_candidates(sales, set(), D(2024, 3, 31))) == {"H:2"}
    assert set(sale_candidates(sales, set(), D(2024, 4, 1))) == {"H:1", "H:2"}
    assert set(sale_candidates(sales, set(), D(2024, 3, 1))) == set()  # the cut's own day stays
    # a loss still waiting for a replacement never leaves; an IRA's loss washes nothing: it goes
    assert set(sale_candidates(sales, {"H:1"}, D(2025, 1, 1))) == {"H:2"}
    ira = dict([sale(3, D(2024, 3, 1), 700, 1000, recognized=False)])
    assert set(sale_candidates(ira, set(), D(2024, 3, 2))) == {"H:3"}


def test_a_sale_whose_loss_sits_in_an_open_lots_basis_stays():
    washed = sale(1, D(2024, 1, 10), 400, 500, rep=[("x2", "A", "20", 40, False)])
    lost = sale(2, D(2024, 1, 10), 400, 500, rep=[("i1", "I", "20", 40, True)])  # IRA: lost for good
    sales = dict([washed, lost])
    kept = cut_household("H", [], {}, sales, set(), {"x2", "i1"}, D(2024, 6, 1))
    assert set(kept.sales) == {"H:2"}
    gone = cut_household("H", [], {}, sales, set(), set(), D(2024, 6, 1))  # x2 sold since
    assert set(gone.sales) == {"H:1", "H:2"}


def test_sales_stored_by_the_first_version_are_cut_by_the_same_rule():
    washed = old_sale(1, D(2024, 1, 10), 400, 500, rep=[("x2", "A", "20", 40, False)])
    gain, loss = old_sale(2, D(2024, 3, 1), 1200, 1000), old_sale(3, D(2024, 3, 1), 700, 1000)
    sales = dict([washed, gain, loss])
    cut = cut_household("H", [], {}, sales, set(), {"x2"}, D(2024, 3, 31))
    assert cut.sales == {"H:2": (D(2024, 3, 1), sales["H:2"])}  # stored as it was: the archive's copy
    assert set(cut_household("H", [], {}, sales, set(), set(), D(2024, 4, 1)).sales) == {"H:1", "H:2", "H:3"}


def test_idempotency_records_go_by_their_commits_date():
    idem = {"k1": 'd1|{"date": "2024-01-02"}', "k2": 'd2|{"date": "2024-03-01"}'}
    cut = cut_household("H", [], idem, {}, set(), set(), D(2024, 3, 1))
    assert cut.idempotency == {"k1": (D(2024, 1, 2), idem["k1"])}


def test_the_policy_dates_a_nights_compaction():
    assert RetentionPolicy().before(D(2024, 3, 15)) == D(2024, 1, 30)  # 45 days by default
    assert RetentionPolicy(keep_days=1).before(D(2024, 3, 4)) == D(2024, 3, 3)
