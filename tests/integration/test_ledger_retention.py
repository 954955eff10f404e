"""Retention without loss (issue 16): compaction archives old history to Parquet and trims it from
Redis, and nothing the wash-sale engine, the year-end roll or a rebuild needs is lost (real
redis-server)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import archive as arc
from ledger.api import AccountInfo
from ledger.errors import CommitRejected, LedgerError
from ledger.store import LedgerStore
from taxview.cli import main
from taxview.core.records import Trade
from tests.property.test_washsale_properties import draw_history

D = dt.date


def history(store: LedgerStore) -> None:
    """A household with a taxable account and an IRA: a gain sale, a loss washed into a lot still
    held, a loss whose replacement was sold since, a recent loss still waiting for a replacement."""
    store.add_accounts([AccountInfo("A", "H", "taxable", 0.4, 0.2, 10**9), AccountInfo("I", "H", "ira", 0, 0, 10**8)])
    store.commit(
        "A", D(2024, 1, 2), [buy(100, 10, "XYZ", "x1"), buy(10, 50, "ABC", "b1"), buy(20, 30, "QQQ", "q1")], "k1"
    )
    store.commit(
        "A", D(2024, 1, 10), [Trade("XYZ", "sell", 50, 8, "x1")], "k2", allow_wash=True
    )  # a $100 loss (x1 is its own purchase)
    store.commit(
        "A", D(2024, 1, 20), [buy(20, 9, "XYZ", "x2")], "k3", allow_wash=True
    )  # 20 shares replace: $40 into x2
    store.commit(
        "A", D(2024, 2, 1), [Trade("QQQ", "sell", 20, 25, "q1")], "k4", allow_wash=True
    )  # a $100 loss, no replacement
    store.commit("A", D(2024, 2, 5), [buy(5, 26, "QQQ", "q2")], "k5", allow_wash=True)  # 5 of 20 shares replaced
    store.commit(
        "A", D(2024, 2, 20), [Trade("QQQ", "sell", 5, 27, "q2")], "k6", allow_wash=True
    )  # the replacement sold
    store.commit("A", D(2024, 3, 1), [Trade("ABC", "sell", 5, 60, "b1")], "k7")  # a gain
    store.commit("A", D(2024, 5, 20), [Trade("ABC", "sell", 5, 40, "b1")], "k8")  # a loss: pending past the cut


def buy(qty, price, symbol, lot=None) -> Trade:
    return Trade(symbol, "buy", qty, price, lot)


def sale_dates(store: LedgerStore) -> dict[str, D]:
    return {s.sale_id: s.date for s in store.sales("H")}


def test_compaction_archives_what_no_rule_needs_and_keeps_what_one_does(store, tmp_path):
    history(store)
    before = store.state()
    infos = {a: store.account(a) for a in ("A", "I")}
    sales = {s.sale_id: s for s in store.sales("H")}
    report = store.compact(D(2024, 4, 15), tmp_path / "archive")
    kept = sale_dates(store)
    # the gain of 03-01 and the loss of 02-01 (its replacement piece sold since, 70 days before the
    # cut) leave; the loss of 01-10 stays (its disallowed $40 sits in x2's basis, x2 still held);
    # the sale after the cut stays; every sale still waiting for a replacement stays
    gone = set(sales) - set(kept)
    assert {(sales[s].symbol, sales[s].date) for s in gone} == {
        ("ABC", D(2024, 3, 1)),
        ("QQQ", D(2024, 2, 1)),
        ("QQQ", D(2024, 2, 20)),
    }
    assert any(sales[s].symbol == "XYZ" and sales[s].disallowed_cents == 4000 for s in kept)
    assert report.archived == {"journal": 9, "idempotency": 7, "sale": 3} == report.trimmed
    # what Redis still has: the journal after the last entry dated before the cut, k8's record
    assert [e["key"] for e in store.journal("H")] == ["k8"]
    assert store.committed("A", "k7") is None and store.committed("A", "k8") is not None
    # nothing lost: the archive and Redis together are the ledger; totals and accounts unchanged
    assert store.state(tmp_path / "archive") == before
    assert {a: store.account(a) for a in ("A", "I")} == infos
    target = LedgerStore(store.r, prefix="copy")
    assert store.rebuild_from_journal(target, tmp_path / "archive") == 8
    assert target.state() == before and target.account("A") == infos["A"]
    # the archive file is checksummed in the sha256sum format
    (path,) = arc.files(tmp_path / "archive")
    digest, name = arc.checksum_path(path).read_text().split()
    assert name == path.name and digest == arc.sha256_file(path)
    assert pq.read_table(path).num_rows == 19


def test_a_pending_loss_inside_its_window_is_never_archived(store, tmp_path):
    history(store)
    pending = {x.decode() for x in store.r.smembers(store.k.pending("H"))}
    store.compact(D(2024, 6, 1), tmp_path / "a")  # k8's loss of 05-20 waits for a replacement until 06-19
    assert pending and pending <= set(sale_dates(store))
    # and it still washes a purchase in its window after the compaction: the same as without
    got = store.commit("A", D(2024, 6, 10), [buy(5, 41, "ABC")], "k9", allow_wash=True)
    assert got.sales == [] and store.lots("A")[0].symbol == "ABC"
    washed = [s for s in store.sales("H") if s.sale_id in pending]
    assert washed and washed[0].disallowed_cents > 0


def test_a_commit_dated_before_the_compaction_date_is_refused_not_applied_twice(store, tmp_path):
    history(store)
    store.compact(D(2024, 5, 21), tmp_path / "a")  # k8 (05-20) is archived with its idempotency record
    assert store.committed("A", "k8") is None
    before = store.state()
    with pytest.raises(CommitRejected, match="ARCHIVED"):  # a re-run of k8 would otherwise sell again
        store.commit("A", D(2024, 5, 20), [Trade("XYZ", "sell", 1, 40, "x2")], "k8")
    assert store.state() == before
    store.commit("A", D(2024, 5, 21), [Trade("XYZ", "sell", 1, 40, "x2")], "k10")  # on the date: fine


def test_compacting_again_archives_nothing_twice(store, tmp_path):
    history(store)
    first = store.compact(D(2024, 4, 15), tmp_path / "a")
    again = store.compact(D(2024, 4, 15), tmp_path / "a")
    assert first.file and again.file is None and sum(again.archived.values()) == 0
    assert len(arc.files(tmp_path / "a")) == 1


def test_an_interrupted_compaction_is_finished_by_the_next_without_duplicate_rows(store, tmp_path):
    history(store)
    store.add_accounts([AccountInfo("B", "G", "taxable", 0.4, 0.2, 10**8)])
    store.commit("B", D(2024, 1, 3), [buy(10, 10, "XYZ", "g1")], "g1")
    store.commit("B", D(2024, 1, 4), [Trade("XYZ", "sell", 10, 12, "g1")], "g2")
    want = store.state()
    real = store._compact
    calls = []

    def dies_on_the_second_household(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("killed")
        return real(*args, **kwargs)

    store._compact = dies_on_the_second_household
    with pytest.raises(ConnectionError):
        store.compact(D(2024, 4, 15), tmp_path / "a")
    store._compact = real
    assert store.r.get(store.k.compaction()) is not None  # the record says: unfinished
    report = store.compact(D(2024, 4, 20), tmp_path / "a")  # finishes the first, then its own
    assert report.resumed and store.r.get(store.k.compaction()) is None
    rows = arc.read(arc.files(tmp_path / "a")).to_pydict()
    ids = list(zip(rows["kind"], rows["household"], rows["id"]))
    assert len(ids) == len(set(ids))  # no row archived twice
    assert store.state(tmp_path / "a") == want


def test_a_compaction_stopped_before_its_checksum_writes_its_file_again(store, tmp_path):
    history(store)
    want = store.state()
    archive = tmp_path / "a"
    archive.mkdir()
    # as a crash while writing leaves it: the compaction recorded, a partial file, no checksum
    name = arc.next_name(archive, "2024-04-15")
    (archive / f".{name}.partial").write_bytes(b"PAR1 half a file")
    record = json.dumps({"file": name, "archive": str(archive.resolve()), "before": "2024-04-15"})
    store.r.set(store.k.compaction(), record)
    report = store.compact(D(2024, 4, 15), archive)
    assert report.file and report.resumed is None and not (archive / f".{name}.partial").exists()
    assert store.state(archive) == want
    # another archive directory is refused while one is unfinished
    store.r.set(store.k.compaction(), record)
    with pytest.raises(LedgerError, match="interrupted"):
        store.compact(D(2024, 4, 15), tmp_path / "other")


# --- the import's journal entry names its file ------------------------------------------------

ACCOUNTS = "account,household,account_type,cash\nA,H,taxable,1000\nI,H,ira,0\nB,G,taxable,5\n"
LOTS = (
    "account,lot_id,symbol,quantity,basis,acquired\n"
    "A,a1,XYZ,100,1000.00,2023-01-03\nA,a2,ABC,10,500,2023-05-01\nI,i1,XYZ,3,30,2023-02-01\nB,g1,XYZ,7,70,2023-01-03\n"
)


def cli(args: list[str], url: str) -> int:
    return main(["ledger", *args, "--redis", url])


def test_an_imports_journal_entry_names_the_file_and_its_checksum(tmp_path, redis_server, redis_client):
    (tmp_path / "a.csv").write_text(ACCOUNTS)
    (tmp_path / "l.csv").write_text(LOTS)
    assert (
        cli(["import", "--accounts", str(tmp_path / "a.csv"), "--lots", str(tmp_path / "l.csv")], redis_server.url) == 0
    )
    store = LedgerStore(redis_client)
    (entry,) = [e["entry"] for e in store.journal("H") if "import_file" in e["entry"]]
    src = entry["import_file"]
    assert "import" not in entry and src["lots"] == 3 and src["path"] == str((tmp_path / "l.csv").resolve())
    assert src["sha256"] == arc.sha256_file(tmp_path / "l.csv")
    target = LedgerStore(redis_client, prefix="copy")
    store.rebuild_from_journal(target)
    assert target.state() == store.state()
    # the file changed: the journal cannot replay it, and says which file
    (tmp_path / "l.csv").write_text(LOTS.replace("1000.00", "999.00"))
    with pytest.raises(LedgerError, match="l.csv"):
        store.rebuild_from_journal(LedgerStore(redis_client, prefix="copy2"))


def test_export_and_import_into_an_empty_ledger_with_the_archive_rebuild_the_same_state(
    tmp_path, redis_server, redis_client, capsys
):
    url = redis_server.url
    (tmp_path / "a.csv").write_text(ACCOUNTS)
    (tmp_path / "l.csv").write_text(LOTS)
    assert cli(["import", "--accounts", str(tmp_path / "a.csv"), "--lots", str(tmp_path / "l.csv")], url) == 0
    store = LedgerStore(redis_client)
    store.set_mandate("A", {"te_max": 0.02}, "test", "2024-01-01T00:00:00+00:00")
    store.add_cash_flow("A", 500_000, D(2024, 1, 5), "deposit", "test", "2024-01-01T00:00:00+00:00")
    store.apply_cash_flows("A", D(2024, 1, 5))
    store.commit("A", D(2024, 1, 5), [Trade("XYZ", "sell", 60, "7.50", "a1")], "n1")  # a loss
    store.commit("I", D(2024, 1, 20), [buy(10, 8, "XYZ")], "n2", allow_wash=True)  # lost for good in the IRA
    store.commit("A", D(2024, 3, 1), [Trade("ABC", "sell", 4, 70, "a2")], "n3")
    store.commit("B", D(2024, 3, 2), [Trade("XYZ", "sell", 7, 20, "g1")], "n4")
    store.close_year("H", 2023, "test", "2024-01-02T00:00:00+00:00")
    store.commit("A", D(2024, 6, 3), [Trade("ABC", "sell", 1, 71, "a2")], "n5")
    want, accounts = store.state(), {a: store.account(a) for a in ("A", "I", "B")}
    archive, export = tmp_path / "archive", tmp_path / "export"
    assert cli(["compact", "--before", "2024-05-01", "--archive", str(archive), "--json"], url) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["archived"]["sale"] >= 2 and done["archived"]["journal"] >= 8
    assert store.state(archive) == want
    (tmp_path / "l.csv").rename(tmp_path / "moved.csv")  # the import file is kept by the archive
    assert cli(["export", "--out", str(export)], url) == 0
    empty = url.rsplit("/", 1)[0] + "/1"  # another database of the same server: an empty ledger
    assert cli(["import", "--journal", str(export), "--archive", str(archive)], empty) == 0
    assert "lots as exported" in capsys.readouterr().err
    import redis

    rebuilt = LedgerStore(redis.Redis.from_url(empty))
    assert rebuilt.state() == want
    assert {a: rebuilt.account(a) for a in ("A", "I", "B")} == accounts
    # a second time into the now full ledger is refused, naming the flag
    assert cli(["import", "--journal", str(export), "--archive", str(archive)], empty) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["compact", "--before", "2024-13-01"], "date"),
        (["import", "--journal", "/nonexistent"], "journal"),
    ],
)
def test_bad_compaction_input_exits_2_naming_the_field(tmp_path, redis_server, redis_client, capsys, args, field):
    assert cli([*args, "--workdir", str(tmp_path)], redis_server.url) == 2
    assert field in capsys.readouterr().err


def test_a_firm_files_retention_policy_is_checked(tmp_path):
    from cluster.settings import read_firm_defaults, read_retention
    from taxview.core.errors import InputError

    firm = tmp_path / "firm.toml"
    firm.write_text("[retention]\nkeep_days = 60\narchive = 'arc'\nnightly = false\n")
    policy = read_retention(firm)
    assert (policy.keep_days, Path(policy.archive_dir), policy.nightly) == (60, tmp_path / "arc", False)
    assert policy.before(D(2024, 3, 1)) == D(2024, 1, 1)
    read_firm_defaults(firm)
    firm.write_text("[retention]\nkeep_days = 0\n")
    with pytest.raises(InputError, match="keep_days"):
        read_firm_defaults(firm)
    assert read_retention(None, "w/archive").keep_days == 45


# --- the property: compaction changes no outcome -----------------------------------------------


def _batches(trades):
    out: list[list] = []
    for t in trades:
        if out and (t.date, t.account) == (out[-1][0].date, out[-1][0].account):
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _apply(store: LedgerStore, batches, start: int) -> list:
    outcomes = []
    for i, batch in enumerate(batches, start=start):
        trades = [Trade(x.symbol, x.side, x.quantity, x.price, x.lot_id) for x in batch]
        try:
            r = store.commit(batch[0].account, batch[0].date, trades, f"c{i}", allow_wash=True)
            outcomes.append((r.sales, r.new_lots, r.trades))
        except CommitRejected as exc:
            outcomes.append(exc.code)
    return outcomes


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_compaction_changes_no_state_and_no_later_commits_outcome(redis_client, data):
    trades, _ = draw_history(data, {})
    batches = _batches(trades)
    split = data.draw(st.integers(0, len(batches)), label="compact before batch")
    redis_client.flushall()
    plain, compacted = LedgerStore(redis_client, prefix="plain"), LedgerStore(redis_client, prefix="comp")
    accounts = {t.account: AccountInfo(t.account, "H", t.account_type, 0.4, 0.2) for t in trades}
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp)
        for store in (plain, compacted):
            store.add_accounts(accounts.values())
            _apply(store, batches[:split], 0)
        cut = batches[split][0].date if split < len(batches) else trades[-1].date + dt.timedelta(days=1)
        cut -= dt.timedelta(days=data.draw(st.integers(0, 40), label="days before the next commit"))
        first = compacted.compact(cut, archive)
        event(f"archived before the next commits: {'some sales' if first.archived['sale'] else 'no sale'}")
        assert _apply(plain, batches[split:], split) == _apply(compacted, batches[split:], split)
        # and once more, well after the end: every closed sale out of every window leaves
        last = compacted.compact(trades[-1].date + dt.timedelta(days=90), archive)
        event(f"archived at the end: {'some sales' if last.archived['sale'] else 'no sale'}")
        want = plain.state()
        assert compacted.state(archive) == want
        assert {a: plain.account(a) for a in accounts} == {a: compacted.account(a) for a in accounts}
        rebuilt = LedgerStore(redis_client, prefix="rebuilt")
        compacted.rebuild_from_journal(rebuilt, archive)
        assert rebuilt.state() == want


# --- the nightly compacts after its night (real local Ray) --------------------------------------


def test_the_nightly_compacts_per_the_policy_and_nothing_is_lost(local_ray, redis_server, redis_client, tmp_path):
    from cluster.coordinator import rebalance
    from cluster.settings import RunSettings
    from ledger.connection import LedgerSettings
    from ledger.importer import import_lots
    from ledger.retention import RetentionPolicy
    from solver.market import read_market, synthesize, write_market
    from taxview.demo import synth_firm

    write_market(synthesize(names=40, days=260, factors=6, seed=11), tmp_path / "m")
    m = read_market(tmp_path / "m")
    infos, lots = synth_firm(m, len(m.dates) - 3, 6, seed=5)
    store = LedgerStore(redis_client)
    store.add_accounts(infos)
    import_lots(store, lots)
    policy = RetentionPolicy(keep_days=0, archive_dir=tmp_path / "archive")  # keep nothing dated before the night
    nights = []
    for date in m.dates[-2:]:
        run = RunSettings(
            str(date),
            tmp_path / "m",
            tmp_path / str(date),
            workers=2,
            quiet=True,
            shard_size=4,
            factors=6,
            retention=policy,
        )
        nights.append(rebalance(run, LedgerSettings(redis_server.url)))
    first, second = nights
    assert first.failed == second.failed == 0
    # the second night archives the first night's commits: one idempotency record per account
    assert second.compacted["archived"]["idempotency"] == len(infos) == second.compacted["trimmed"]["idempotency"]
    assert json.loads((tmp_path / str(m.dates[-1]) / "run.json").read_text())["compacted"] == second.compacted
    assert all(store.committed(a.account, f"nightly-{m.dates[-2]}:{a.account}") is None for a in infos)
    assert all(store.committed(a.account, f"nightly-{m.dates[-1]}:{a.account}") is not None for a in infos)
    rebuilt = LedgerStore(redis_client, prefix="copy")
    store.rebuild_from_journal(rebuilt, tmp_path / "archive")
    assert rebuilt.state() == store.state(tmp_path / "archive")
