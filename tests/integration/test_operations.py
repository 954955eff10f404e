"""Operations: one private redis-server per workdir, security defaults, Redis outages, signals,
concurrent runs, worker deaths. Real redis-server processes, real Ray (num_cpus=2), real signals."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from test_nightly import journal_trades, load_firm, normalize, parquet_trades

from cluster.coordinator import rebalance
from cluster.errors import ClusterError
from cluster.reaper import descendants
from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from ledger.server import PrivateLedger, RedisServer, ServerBusy, read_state
from ledger.store import LedgerStore
from solver.market import read_market
from taxview.cli import main

REPO = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def last_date(market_dir) -> str:
    return str(read_market(market_dir).dates[-1])


def run_on(url: str, market_dir, out, after_shard=None, redis_retry_s=60.0, redis_timeout_s=10.0, **kw):
    kw = {"workers": 2, "quiet": True, "shard_size": 2, "factors": 8, **kw}
    ledger = LedgerSettings(url, retry_s=redis_retry_s, timeout_s=redis_timeout_s)
    return rebalance(RunSettings(last_date(market_dir), market_dir, out, **kw), ledger, after_shard=after_shard)


def commits_by_key(store: LedgerStore, run_id: str) -> Counter:
    return Counter(
        e["key"]
        for hh in {store.household_of(a) for a in store.accounts()}
        for e in store.journal(hh)
        if e["key"].startswith(run_id + ":")
    )


def check_outputs(out: Path, store: LedgerStore, run_id: str) -> tuple[dict, list[dict]]:
    """run.json agrees with accounts.parquet, and trades.parquet holds exactly the run's commits
    for the accounts it reports (nothing committed is missing, nothing reported is uncommitted)."""
    import json

    summary = json.loads((out / "run.json").read_text())
    rows = pq.read_table(out / "accounts.parquet").to_pylist()
    assert summary["replayed"] == sum(r["replayed"] for r in rows)
    assert summary["ok"] == sum(r["status"] == "optimal" for r in rows)
    assert summary["ok"] + summary["failed"] + summary["not_run"] == summary["accounts"]
    done = {r["account"] for r in rows if r["status"] == "optimal"}
    journal = Counter({k: n for k, n in normalize(journal_trades(store, run_id)).items() if k[0] in done})
    assert parquet_trades(out / "trades.parquet") == journal
    assert set(commits_by_key(store, run_id).values()) <= {1}  # nothing applied twice
    assert not list(out.glob(".*.partial"))
    return summary, rows


@pytest.fixture
def own_server(tmp_path):
    """A redis-server of this test's own, to stall, restart or stop."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


# --- the private server: one per workdir, private files, a password ----------------------------


def test_private_server_has_a_password_private_files_and_keeps_it_out_of_ps(tmp_path):
    data = tmp_path / "w" / "redis"
    with PrivateLedger(data) as led:
        redis.Redis.from_url(led.url).set("k", "v")
        pid = read_state(data)["pid"]
        password = (data / "password").read_text().strip()
        assert len(password) >= 32 and f":{password}@" in led.url
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        port = read_state(data)["port"]
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, retry=Retry(NoBackoff(), 0)).ping()  # no password, no access
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"password", "redis.conf", "redis.log"} and any("aof" in p.name for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [(p, oct(p.stat().st_mode)) for p in files]
    with PrivateLedger(data) as led:  # the same password next time, and the data is there
        assert (data / "password").read_text().strip() == password
        assert redis.Redis.from_url(led.url).get("k") == b"v"


def test_a_second_server_on_one_data_directory_is_refused(tmp_path):
    with RedisServer(tmp_path / "d"):
        with pytest.raises(ServerBusy, match="in use by pid"):
            RedisServer(tmp_path / "d").start()


def test_commands_on_one_workdir_share_its_server_and_the_owner_waits_for_them(tmp_path, capsys):
    data = tmp_path / "redis"
    first = PrivateLedger(data, command="taxview rebalance").open()
    second = PrivateLedger(data, command="taxview ledger show").open()
    assert first.owner and not second.owner and second.url == first.url
    pid = read_state(data)["pid"]
    closing = threading.Thread(target=first.close)
    closing.start()
    time.sleep(0.6)
    assert closing.is_alive() and redis.Redis.from_url(second.url).ping()  # still serving the second
    assert "waiting for them" in capsys.readouterr().err
    second.close()
    closing.join(timeout=10)
    assert not closing.is_alive() and not running(pid)
    with pytest.raises(ServerBusy, match="empty ledger"):  # the demo does not wipe a ledger in use
        with PrivateLedger(data).open(), PrivateLedger(data).open(fresh=True):
            pass


def test_a_server_left_by_a_killed_owner_is_stopped_by_the_next_command(tmp_path):
    data = tmp_path / "redis"
    code = (
        "import sys, time, redis; from ledger.server import PrivateLedger;"
        f"led = PrivateLedger({str(data)!r}).open(); redis.Redis.from_url(led.url).set('k', 'v');"
        "print('up', flush=True); time.sleep(60)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert owner.stdout.readline().strip() == "up"
    stale = read_state(data)["pid"]
    owner.kill()  # no reaper in this bare process: its redis-server is left running
    owner.wait()
    assert running(stale)
    with PrivateLedger(data) as led:
        assert read_state(data)["pid"] != stale and not running(stale)
        assert redis.Redis.from_url(led.url).get("k") == b"v"


# --- the CLI: concurrent commands on one workdir, signals, SIGKILL -------------------------------


def firm_in_workdir(work: Path, market_dir, accounts: int) -> list[str]:
    with PrivateLedger(work / "redis") as led:
        return load_firm(LedgerStore(redis.Redis.from_url(led.url)), market_dir, accounts=accounts)


def taxview(*args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TAXVIEW_REDIS_URL"}
    cmd = [sys.executable, "-c", "import sys; from taxview.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def rebalance_args(work: Path, market_dir, out: Path, *extra: str) -> list[str]:
    return ["rebalance", "--date", last_date(market_dir), "--market", str(market_dir), "--out", str(out),
            "--workdir", str(work), "--factors", "8", "--shard-size", "2", "--quiet", *extra]  # fmt: skip


def redis_servers_in(data: Path) -> set[int]:
    """Pids of the redis-server processes running in ``data`` (their working directory)."""
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            is_redis = b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
            if is_redis and os.readlink(f"/proc/{pid}/cwd") == str(data):
                out.add(int(pid))
        except OSError:
            pass
    return out


def wait_for(predicate, timeout: float = 60.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_two_rebalances_on_one_workdir_share_one_server_and_apply_each_commit_once(market_dir, tmp_path):
    work = tmp_path / "w"
    accounts = firm_in_workdir(work, market_dir, 10)
    procs = [taxview(*rebalance_args(work, market_dir, tmp_path / f"out{i}", "--workers", "1")) for i in range(2)]
    seen: set[int] = set()
    at_once = 0
    while any(p.poll() is None for p in procs):
        now = redis_servers_in((work / "redis").resolve())
        seen, at_once = seen | now, max(at_once, len(now))
        time.sleep(0.1)
    errs = [p.stderr.read() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert at_once == 1 and len(seen) == 1  # never a second redis-server on the data directory: shared
    with PrivateLedger(work / "redis") as led:  # the ledger opens, every commit is there once
        store = LedgerStore(redis.Redis.from_url(led.url))
        run_id = f"nightly-{last_date(market_dir)}"
        assert commits_by_key(store, run_id) == Counter({f"{run_id}:{a}": 1 for a in accounts})
        replayed = sorted(check_outputs(tmp_path / f"out{i}", store, run_id)[0]["replayed"] for i in range(2))
    assert replayed == [0, len(accounts)]  # the second waited for the first, then replayed it all


def listening_sockets(pids) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                out.append(f[1].split(":")[0])
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_sigterm_mid_run_writes_complete_outputs_and_stops_what_it_started(market_dir, tmp_path):
    work, out = tmp_path / "w", tmp_path / "out"
    firm_in_workdir(work, market_dir, 24)
    proc = taxview(*rebalance_args(work, market_dir, out))
    assert wait_for(lambda: list(out.glob(".accounts.parquet.*.partial")) or proc.poll() is not None)
    server = read_state(work / "redis")["pid"]
    os.kill(server, signal.SIGSTOP)  # hold the run in the middle (workers wait on the ledger)
    try:
        started = descendants(proc.pid)
        addresses = listening_sockets(started)
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.3)
    finally:
        os.kill(server, signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err
    assert len(addresses) >= 3 and set(addresses) <= LOOPBACK, addresses  # redis, gcs, raylet, workers
    assert wait_for(lambda: not [p for p in started if running(p)], timeout=15)
    with PrivateLedger(work / "redis") as led:
        summary, rows = check_outputs(out, LedgerStore(redis.Redis.from_url(led.url)), summary_run_id(out))
    assert summary["interrupted"] and summary["signal"] == "SIGTERM" and summary["not_run"] > 0


def summary_run_id(out: Path) -> str:
    import json

    return json.loads((out / "run.json").read_text())["run_id"]


def test_sigkill_mid_run_leaves_no_process_behind_and_the_next_run_finishes(local_ray, market_dir, tmp_path):
    work = tmp_path / "w"
    accounts = firm_in_workdir(work, market_dir, 16)
    proc = taxview(*rebalance_args(work, market_dir, tmp_path / "first"))
    assert wait_for(lambda: list((tmp_path / "first").glob(".accounts.parquet.*.partial")) or proc.poll() is not None)
    started = descendants(proc.pid)
    assert redis_servers_in((work / "redis").resolve()) & set(started)
    proc.kill()
    proc.wait()
    assert wait_for(lambda: not [p for p in started if running(p)], timeout=15)  # the reaper
    out = tmp_path / "again"
    assert main(rebalance_args(work, market_dir, out)) == 0  # the stale lock does not block
    with PrivateLedger(work / "redis") as led:
        store = LedgerStore(redis.Redis.from_url(led.url))
        summary, rows = check_outputs(out, store, summary_run_id(out))
        assert sorted(r["account"] for r in rows) == sorted(accounts) and summary["failed"] == 0
        assert len(commits_by_key(store, summary["run_id"])) == len(accounts)


# --- Redis outages ------------------------------------------------------------------------------


def test_a_redis_stall_longer_than_the_client_timeout_is_ridden_out(local_ray, own_server, market_dir, tmp_path):
    store = LedgerStore(own_server.client())
    accounts = load_firm(store, market_dir, accounts=24)
    stalled: list[float] = []

    def stall(done, actors):
        if done == 1:
            os.kill(own_server.pid, signal.SIGSTOP)
            threading.Timer(1.5, os.kill, (own_server.pid, signal.SIGCONT)).start()
            stalled.append(time.monotonic())

    s = run_on(own_server.url, market_dir, tmp_path / "out", after_shard=stall, redis_retry_s=5, redis_timeout_s=0.5)
    assert stalled and time.monotonic() - stalled[0] > 1.4  # shards were still running through it
    summary, rows = check_outputs(tmp_path / "out", store, s.run_id)
    assert s.failed == 0 and sorted(r["account"] for r in rows) == sorted(accounts), [r["reason"] for r in rows]
    assert len(commits_by_key(store, s.run_id)) == len(accounts)


def test_a_redis_restart_mid_run_is_ridden_out(local_ray, own_server, market_dir, tmp_path):
    store = LedgerStore(own_server.client())
    accounts = load_firm(store, market_dir, accounts=24)
    restarted: list[RedisServer] = []

    def restart(done, actors):
        if done == 1:
            own_server.stop()  # SIGTERM: the AOF is flushed; the workers see connections refused

            def again():
                time.sleep(0.5)
                restarted.append(RedisServer(own_server.workdir, port=own_server.port).start())

            threading.Thread(target=again).start()

    try:
        s = run_on(own_server.url, market_dir, tmp_path / "out", after_shard=restart, redis_retry_s=10)
        assert wait_for(lambda: restarted, timeout=10)
        store = LedgerStore(restarted[0].client())
        summary, rows = check_outputs(tmp_path / "out", store, s.run_id)
        assert s.failed == 0 and sorted(r["account"] for r in rows) == sorted(accounts), [r["reason"] for r in rows]
        assert len(commits_by_key(store, s.run_id)) == len(accounts)
    finally:
        for server in restarted:
            server.stop()


def test_an_outage_past_the_retry_bound_fails_accounts_with_the_reason_and_a_rerun_finishes(
    local_ray, own_server, market_dir, tmp_path
):
    store = LedgerStore(own_server.client())
    accounts = load_firm(store, market_dir, accounts=16)

    def outage(done, actors):
        if done == 1:
            os.kill(own_server.pid, signal.SIGSTOP)
            threading.Timer(2.5, os.kill, (own_server.pid, signal.SIGCONT)).start()

    s = run_on(own_server.url, market_dir, tmp_path / "a", after_shard=outage, redis_retry_s=0.8, redis_timeout_s=0.3)
    summary, rows = check_outputs(tmp_path / "a", store, s.run_id)
    failed = [r for r in rows if r["status"] != "optimal"]
    assert s.failed == len(failed) > 0 and len(rows) == len(accounts)
    assert all(r["reason"].startswith("ledger unavailable: ") for r in failed), [r["reason"] for r in failed]
    again = run_on(own_server.url, market_dir, tmp_path / "b")  # the ledger is back: the rest is done
    summary, rows = check_outputs(tmp_path / "b", store, again.run_id)
    # an account failed mid-commit may have been committed once the server woke: the rerun replays it
    assert again.failed == 0 and again.replayed >= len(accounts) - len(failed)
    assert len(commits_by_key(store, s.run_id)) == len(accounts)


# --- one coordinator per run id; worker deaths -----------------------------------------------


def test_a_second_coordinator_of_the_same_run_waits_for_the_first_then_replays(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    load_firm(store, market_dir, accounts=6)
    run_id = f"nightly-{last_date(market_dir)}"
    redis_client.set(f"tv:run:{run_id}", "elsewhere pid 1", px=60_000)  # another coordinator runs it
    with pytest.raises(ClusterError, match="in progress elsewhere"):
        run_on(redis_server.url, market_dir, tmp_path / "a", run_wait_s=0.5)
    assert not commits_by_key(store, run_id)
    threading.Timer(1.0, redis_client.delete, (f"tv:run:{run_id}",)).start()
    s = run_on(redis_server.url, market_dir, tmp_path / "b", run_wait_s=30)
    assert s.failed == 0 and s.stages["lease_wait_s"] >= 0.5 and not redis_client.exists(f"tv:run:{run_id}")


def test_a_shard_whose_worker_keeps_dying_fails_its_accounts_and_the_night_goes_on(
    local_ray, redis_server, redis_client, market_dir, tmp_path
):
    store = LedgerStore(redis_client)
    accounts = load_firm(store, market_dir, accounts=16)

    def kill_all(done, actors):
        if done == 1:
            for a in actors:
                ray.kill(a, no_restart=False)  # their shards in flight die with them

    s = run_on(redis_server.url, market_dir, tmp_path / "out", after_shard=kill_all, max_shard_attempts=1)
    summary, rows = check_outputs(tmp_path / "out", store, s.run_id)
    failed = [r for r in rows if r["status"] != "optimal"]
    assert sorted(r["account"] for r in rows) == sorted(accounts) and 0 < s.failed == len(failed) < len(accounts)
    assert all(r["reason"].startswith("worker died 1 times: ") for r in failed), [r["reason"] for r in failed]


def test_rebalance_exit_codes(local_ray, redis_server, redis_client, market_dir, tmp_path, capsys):
    store = LedgerStore(redis_client)
    args = ["rebalance", "--date", last_date(market_dir), "--market", str(market_dir), "--factors", "8", "--quiet"]
    url = ["--redis", redis_server.url]
    assert main([*args, "--out", str(tmp_path / "a"), *url]) == 2  # an empty ledger: bad input
    assert "no accounts" in capsys.readouterr().err
    load_firm(store, market_dir, accounts=6, corrupt="H00001-T")
    assert main([*args, "--out", str(tmp_path / "b"), *url]) == 1  # an account failed
    rows = pq.read_table(tmp_path / "b" / "accounts.parquet").to_pylist()
    assert [r["account"] for r in rows if r["status"] != "optimal"] == ["H00001-T"]
    assert pa.types.is_boolean(pq.read_schema(tmp_path / "b" / "accounts.parquet").field("replayed").type)
