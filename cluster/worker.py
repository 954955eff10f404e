"""The rebalance worker: a plain class (no Ray here) that rebalances a shard of households.

The coordinator wraps it with ``ray.remote``; tests can use it directly. It keeps its ledger
connection and its compiled problems (``ProblemCache``) for its whole life, across shards.

Every ledger call is retried on connection errors and timeouts for ``LedgerSettings.retry_s`` seconds (a
Redis restart, failover or stall); past that the account fails with ``ledger unavailable: ...``
and the shard goes on. Retrying a commit is safe: commits are idempotent by key, so one the server
applied before the connection broke answers with its stored result.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

import pyarrow as pa
import redis

from ledger.api import CommitResult
from ledger.connection import LedgerSettings, redact, retrying
from ledger.errors import LedgerError
from solver.problem import ProblemCache
from solver.snapshot import Snapshot
from solver.types import AccountSettings
from taxview.core.orders import Order, orders_of
from taxview.core.records import Trade

from .sharding import Shard
from .step import Outcome, described, rebalance_account, rebalance_household

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
ALLOCATION = pa.struct(
    [
        ("lot_id", pa.string()),
        ("shares", SHARES),
        ("basis", MONEY),
        ("realized_gain", MONEY),
        ("term", pa.string()),
    ]
)
ORDER_SCHEMA = pa.schema(  # one row per account, symbol and side: taxview.core.orders
    [
        ("run_id", pa.string()),
        ("date", pa.date32()),
        ("account", pa.string()),
        ("household", pa.string()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("shares", SHARES),
        ("price", MONEY),
        ("value", MONEY),
        ("allocations", pa.list_(ALLOCATION)),
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
        ("account_type", pa.string()),
        ("te_budget", pa.float64()),
        ("mandate_version", pa.int64()),
        ("orders", pa.int32()),
        ("notes", pa.string()),
        ("cash_flow", MONEY),
        ("node_id", pa.string()),  # the Ray node that ran the account's shard (set by the coordinator)
        ("tilts", pa.string()),  # JSON {style: [achieved, target]} (standard deviations); null: no tilts
        ("te_combined", pa.float64()),  # outside holdings complete: the TE of the account and them together
    ]
)


def _dollars(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents) / 100


def order_rows(run_id: str, date: dt.date, household: str, orders: list[Order]) -> list[dict]:
    """``orders.parquet``'s rows (``ORDER_SCHEMA``) of one account's orders."""
    return [
        {
            "run_id": run_id,
            "date": date,
            "account": o.account,
            "household": household,
            "symbol": o.symbol,
            "side": o.side,
            "shares": o.shares,
            "price": o.price,
            "value": _dollars(o.value_cents),
            "allocations": [
                {
                    "lot_id": a.lot_id,
                    "shares": a.shares,
                    "basis": _dollars(a.basis_cents),
                    "realized_gain": _dollars(a.gain_cents),
                    "term": a.term,
                }
                for a in o.allocations
            ],
        }
        for o in orders
    ]


class RebalanceWorker:
    def __init__(self, ledger: LedgerSettings, defaults: AccountSettings) -> None:
        self.store = ledger.open_store()
        self.retry_s = ledger.retry_s
        self.cache = ProblemCache()
        self.defaults = defaults
        self.accounts_done = 0

    def ping(self) -> bool:
        return True

    def run_shard(self, snap: Snapshot, run_id: str, shard: Shard) -> dict[str, Any]:
        """Rebalance every household of the shard together (``cluster.step.rebalance_household``);
        one account's failure never stops the others."""
        stages = {"ledger_read_s": 0.0, "solve_s": 0.0, "commit_s": 0.0, "household_sides_s": 0.0, "replayed": 0}
        trades: list[dict] = []
        orders: list[dict] = []
        accounts: list[dict] = []
        for household, members in shard.households:
            try:
                results = self.rebalance_household(snap, run_id, household, members, stages)
            except Exception as exc:  # a bug nobody foresaw: its accounts one by one, each failing alone
                print(f"taxview: warning: household {household}: {type(exc).__name__}: {exc}", file=sys.stderr)
                stages["household_fallbacks"] = stages.get("household_fallbacks", 0) + 1
                results = [self._one(snap, run_id, household, account, stages) for account in members]
            for row, rows, order_list in results:
                stages["replayed"] += bool(row["replayed"])
                accounts.append(row)
                trades += rows
                orders += order_list
                self.accounts_done += 1
        return {
            "shard_id": shard.shard_id,
            "trades": pa.RecordBatch.from_pylist(trades, schema=TRADE_SCHEMA),
            "orders": pa.RecordBatch.from_pylist(orders, schema=ORDER_SCHEMA),
            "accounts": pa.RecordBatch.from_pylist(accounts, schema=ACCOUNT_SCHEMA),
            "stages": stages,
        }

    def rebalance_household(self, snap: Snapshot, run_id: str, household: str, members, stages: dict) -> list:
        """A household's accounts through ``cluster.step.rebalance_household`` (each idempotent by
        run id and account), as output rows per account, in ``members``' order."""
        outs = rebalance_household(
            self.store, snap, household, members, run_id, self.defaults, self.cache, timings=stages, call=self._ledger
        )
        return [self._outcome_rows(run_id, household, out) for out in outs]

    def _one(self, snap: Snapshot, run_id: str, household: str, account: str, stages: dict):
        """One account through ``rebalance_account``, a failure its own error row (what a shard
        falls back on when the household step raised: the accounts booked replay)."""
        try:
            return self.rebalance_account(snap, run_id, household, account, stages)
        except Exception as exc:  # a bug or bad data nobody foresaw: this account only
            return self._failed(account, household, "error", f"{type(exc).__name__}: {exc}"), [], []

    def rebalance_account(
        self, snap: Snapshot, run_id: str, household: str, account: str, stages: dict, held: dict | None = None
    ):
        """One account through ``cluster.step`` (idempotent by run id and account), as output rows:
        its accounts.parquet row, its trades.parquet rows, its orders.parquet rows."""
        out = rebalance_account(
            self.store,
            snap,
            account,
            f"{run_id}:{account}",
            self.defaults,
            self.cache,
            household=household,
            held=held,
            timings=stages,
            call=self._ledger,
        )
        return self._outcome_rows(run_id, household, out)

    def _outcome_rows(self, run_id: str, household: str, out: Outcome):
        if not out.ok:
            row = self._failed(out.account, household, out.status, out.reason, out.solve_ms)
            if out.info is not None and out.settings is not None:
                row.update(described(out.info, out.settings), cash_flow=_dollars(out.cash_flow_cents))
            return row, [], []
        return self._rows(run_id, household, out.committed, replayed=out.committed.replayed)

    def _ledger(self, call):
        """A ledger call, retried through outages for ``retry_s`` (then ``LedgerUnavailable``); any
        other Redis error becomes a ``LedgerError`` with its message redacted."""
        try:
            return retrying(call, self.retry_s)
        except redis.RedisError as exc:
            raise LedgerError(redact(exc)) from None

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
    def _rows(run_id: str, household: str, c: CommitResult, replayed: bool):
        """Output rows from the committed result itself, so a replay reproduces them exactly: the
        realized gains of the three files come from the ledger's sales, the orders from the very
        trades written to trades.parquet (``orders_of``)."""
        gains = {s["lot_id"]: s for s in c.sales}
        bought = iter(c.new_lots)  # the ids the ledger gave the buys, in order
        trades, booked = [], []
        for x in c.trades:
            sale = gains.get(x["lot_id"]) if x["side"] == "sell" else None
            lot_id = x["lot_id"] if x["side"] == "sell" else next(bought, None)
            shares, price = Decimal(x["quantity"]), Decimal(x["price"])
            gain, term = (sale["gain_cents"], sale["term"]) if sale else (0, None)
            booked.append(Trade(x["symbol"], x["side"], shares, price, lot_id, gain, term))
            trades.append(
                {
                    "run_id": run_id,
                    "date": c.date,
                    "account": c.account,
                    "household": household,
                    "symbol": x["symbol"],
                    "side": x["side"],
                    "shares": shares,
                    "lot_id": lot_id,
                    "price": float(price),
                    "realized_gain": _dollars(gain) if sale else None,
                    "term": term,
                }
            )
        orders = orders_of(c.account, booked)
        st = sum(s["gain_cents"] for s in c.sales if s["term"] == "short")
        lt = sum(s["gain_cents"] for s in c.sales if s["term"] == "long")
        harvested = -sum(s["gain_cents"] for s in c.sales if s.get("recognized", True) and s["gain_cents"] < 0)
        m = c.meta or {}
        account = {
            "account": c.account,
            "household": household,
            "status": m.get("status", "optimal"),
            "reason": "; ".join(m["notes"]) if m.get("status") == "liquidated" and m.get("notes") else None,
            "te_ex_ante": m.get("te_ex_ante"),
            "harvested_loss": _dollars(harvested),
            "st_realized": _dollars(st),
            "lt_realized": _dollars(lt),
            "tax_estimate": _dollars(m.get("tax_estimate_cents")),
            "turnover": m.get("turnover"),
            "solve_ms": m.get("solve_ms"),
            "trades": len(trades),
            "replayed": replayed,
            "account_type": m.get("account_type"),
            "te_budget": m.get("te_budget"),
            "mandate_version": m.get("mandate_version"),
            "orders": len(orders),
            "notes": "; ".join(m.get("notes") or ()) or None,
            "cash_flow": _dollars(m.get("cash_flow_cents", 0)),
            "tilts": json.dumps(m["tilts"], sort_keys=True) if m.get("tilts") else None,
            "te_combined": m.get("te_combined"),
        }
        return account, trades, order_rows(run_id, c.date, household, orders)
