"""The rebalance worker: a plain class (no Ray here) that rebalances a shard of households.

The coordinator wraps it with ``ray.remote``; tests can use it directly. It keeps its ledger
connection and its compiled problems (``ProblemCache``) for its whole life, across shards.

Every ledger call is retried on connection errors and timeouts for ``redis_retry_s`` seconds (a
Redis restart, failover or stall); past that the account fails with ``ledger unavailable: ...``
and the shard goes on. Retrying a commit is safe: commits are idempotent by key, so one the server
applied before the connection broke answers with its stored result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

import pyarrow as pa
import redis

from ledger.connection import LedgerUnavailable, client_from_url, redact, retrying
from ledger.errors import CommitRejected, LedgerError
from ledger.store import CommitResult, LedgerStore
from solver.problem import ProblemCache
from solver.snapshot import Snapshot
from solver.solve import solve_account
from solver.types import AccountSettings
from taxview.core.errors import TaxviewError

from .sharding import Shard

MONEY = pa.decimal128(18, 2)
SHARES = pa.decimal128(24, 6)
TRADE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("date", pa.date32()),
        ("account", pa.string()),
        ("household", pa.string()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("shares", SHARES),
        ("lot_id", pa.string()),
        ("price", pa.float64()),
        ("realized_gain", MONEY),
        ("term", pa.string()),
    ]
)
ACCOUNT_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("household", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("te_ex_ante", pa.float64()),
        ("harvested_loss", MONEY),
        ("st_realized", MONEY),
        ("lt_realized", MONEY),
        ("tax_estimate", MONEY),
        ("turnover", pa.float64()),
        ("solve_ms", pa.float64()),
        ("trades", pa.int32()),
        ("replayed", pa.bool_()),
    ]
)
WASH_RETRIES = 3


def _dollars(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


class RebalanceWorker:
    def __init__(
        self,
        redis_url: str,
        prefix: str = "tv",
        identical: Mapping[str, str] | None = None,
        settings: Mapping[str, Any] | None = None,
        redis_retry_s: float = 60.0,
        redis_timeout_s: float = 10.0,
    ) -> None:
        self.store = LedgerStore(client_from_url(redis_url, redis_timeout_s), prefix, identical)
        self.retry_s = redis_retry_s
        self.cache = ProblemCache()
        self.defaults = AccountSettings(**dict(settings or {}))
        self.accounts_done = 0

    def ping(self) -> bool:
        return True

    def run_shard(self, snap: Snapshot, run_id: str, shard: Shard) -> dict[str, Any]:
        """Rebalance every account of the shard; one account's failure never stops the others."""
        stages = {"ledger_read_s": 0.0, "solve_s": 0.0, "commit_s": 0.0, "replayed": 0}
        trades: list[dict] = []
        accounts: list[dict] = []
        for household, members in shard.households:
            held: dict[str, list] = {}  # the household's lots, read once (see rebalance_account)
            for account in members:
                try:
                    row, rows = self.rebalance_account(snap, run_id, household, account, stages, held)
                except Exception as exc:  # a bug or bad data nobody foresaw: this account only
                    row, rows = self._failed(account, household, "error", f"{type(exc).__name__}: {exc}"), []
                stages["replayed"] += bool(row["replayed"])
                accounts.append(row)
                trades += rows
                self.accounts_done += 1
        return {
            "shard_id": shard.shard_id,
            "trades": pa.RecordBatch.from_pylist(trades, schema=TRADE_SCHEMA),
            "accounts": pa.RecordBatch.from_pylist(accounts, schema=ACCOUNT_SCHEMA),
            "stages": stages,
        }

    def rebalance_account(
        self, snap: Snapshot, run_id: str, household: str, account: str, stages: dict, held: dict | None = None
    ):
        """``held``: the household's lots by account, filled on first use. A nightly commit never
        touches another account's lots (wash sales are refused), so one read serves the household's
        accounts in turn; anything changed behind our back is caught by the commit's validation."""
        key = f"{run_id}:{account}"
        ledger = self._ledger
        t = time.perf_counter()
        try:
            prior = ledger(lambda: self.store.committed(account, key))
            if prior is not None:  # done by an earlier (interrupted) run of this run id
                stages["ledger_read_s"] += time.perf_counter() - t
                return self._rows(run_id, snap, household, prior, replayed=True)
            info = ledger(lambda: self.store.account(account))
            if held is None:
                lots = ledger(lambda: self.store.lots(account))
            else:
                if not held:
                    held.update(ledger(lambda: self.store.household_lots(household)))
                    held.setdefault("", [])  # marks the household as read
                lots = held.get(account, [])  # ledger lots carry what the solver reads of a Lot
            settings = replace(
                self.defaults,
                account_id=account,
                account_type=info.account_type,
                st_rate=info.st_rate,
                lt_rate=info.lt_rate,
            )
            stages["ledger_read_s"] += time.perf_counter() - t
        except LedgerUnavailable as exc:
            stages["ledger_read_s"] += time.perf_counter() - t
            return self._failed(account, household, "error", str(exc)), []
        except (TaxviewError, redis.RedisError) as exc:
            stages["ledger_read_s"] += time.perf_counter() - t
            return self._failed(account, household, "error", f"ledger: {redact(exc)}"), []
        for attempt in range(1, WASH_RETRIES + 1):
            t = time.perf_counter()
            try:
                restrictions = ledger(lambda: self.store.restrictions(household, snap.date)).get(account)
            except LedgerUnavailable as exc:
                return self._failed(account, household, "error", str(exc)), []
            except (TaxviewError, redis.RedisError) as exc:
                return self._failed(account, household, "error", f"ledger: {redact(exc)}"), []
            finally:
                stages["ledger_read_s"] += time.perf_counter() - t
            t = time.perf_counter()
            try:
                result = solve_account(snap, lots, info.cash_cents, settings, restrictions, self.cache)
            except TaxviewError as exc:
                stages["solve_s"] += time.perf_counter() - t
                return self._failed(account, household, "error", f"bad data: {exc}"), []
            stages["solve_s"] += time.perf_counter() - t
            if not result.ok:
                return self._failed(account, household, result.status, result.reason, result.solve_ms), []
            meta = {
                "te_ex_ante": result.te_ex_ante,
                "harvested_loss_cents": result.harvested_loss_cents,
                "st_cents": result.realized.st_gain + result.realized.st_loss,
                "lt_cents": result.realized.lt_gain + result.realized.lt_loss,
                "tax_estimate_cents": result.tax_estimate_cents,
                "turnover": result.turnover,
                "solve_ms": result.solve_ms,
                "attempts": attempt,
            }
            orders = [
                {
                    "symbol": x.symbol,
                    "side": x.side,
                    "quantity": str(x.shares),
                    "price": str(Decimal(snap.price_cents[snap.index[x.symbol]]) / 100),
                    "lot_id": x.lot_id,
                }
                for x in result.trades
            ]
            t = time.perf_counter()
            try:
                commit = partial(self.store.commit, account, snap.date, orders, key, check_cash=True, meta=meta)
                committed = ledger(commit)
            except LedgerUnavailable as exc:
                stages["commit_s"] += time.perf_counter() - t
                return self._failed(account, household, "error", str(exc), result.solve_ms), []
            except CommitRejected as exc:
                stages["commit_s"] += time.perf_counter() - t
                if exc.code == "WASH_CONFLICT" and attempt < WASH_RETRIES:
                    continue  # another account of the household moved first: fresh restrictions
                return self._failed(account, household, "rejected", str(exc), result.solve_ms), []
            except (LedgerError, redis.RedisError) as exc:
                stages["commit_s"] += time.perf_counter() - t
                return self._failed(account, household, "error", f"commit: {redact(exc)}", result.solve_ms), []
            stages["commit_s"] += time.perf_counter() - t
            return self._rows(run_id, snap, household, committed, replayed=committed.replayed)
        raise AssertionError("unreachable")

    def _ledger(self, call):
        """A ledger call, retried through outages for ``retry_s`` (then ``LedgerUnavailable``)."""
        return retrying(call, self.retry_s)

    @staticmethod
    def _failed(account, household, status, reason, solve_ms=None) -> dict:
        return {
            "account": account,
            "household": household,
            "status": status,
            "reason": reason,
            "solve_ms": solve_ms,
            "trades": 0,
            "replayed": False,
        }

    @staticmethod
    def _rows(run_id: str, snap: Snapshot, household: str, c: CommitResult, replayed: bool):
        """Output rows from the committed result itself, so a replay reproduces them exactly."""
        gains = {s["lot_id"]: s for s in c.sales}
        trades = []
        for x in c.trades:
            sale = gains.get(x["lot_id"]) if x["side"] == "sell" else None
            trades.append(
                {
                    "run_id": run_id,
                    "date": c.date,
                    "account": c.account,
                    "household": household,
                    "symbol": x["symbol"],
                    "side": x["side"],
                    "shares": Decimal(x["quantity"]),
                    "lot_id": x["lot_id"],
                    "price": float(x["price"]),
                    "realized_gain": _dollars(sale["gain_cents"]) if sale else None,
                    "term": sale["term"] if sale else None,
                }
            )
        m = c.meta or {}
        account = {
            "account": c.account,
            "household": household,
            "status": "optimal",
            "reason": None,
            "te_ex_ante": m.get("te_ex_ante"),
            "harvested_loss": _dollars(m.get("harvested_loss_cents")),
            "st_realized": _dollars(m.get("st_cents")),
            "lt_realized": _dollars(m.get("lt_cents")),
            "tax_estimate": _dollars(m.get("tax_estimate_cents")),
            "turnover": m.get("turnover"),
            "solve_ms": m.get("solve_ms"),
            "trades": len(trades),
            "replayed": replayed,
        }
        return account, trades
