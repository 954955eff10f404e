"""A tiny nightly run directory for the morning report's tests: three accounts whose totals are
known by hand, written with the coordinator's own schemas, with or without the optional inputs
(accounts.parquet's extra columns, run.json's extra keys, blocked.parquet, events.parquet).

The known answers (see tests/unit/test_morning_report.py):
- A1 (household H1, taxable): harvested $1,000.00, tax estimate −$400.00, TE 1.2% against a 1.0%
  budget (over, 1.2×), solver notes, 4 orders: AAA sell 15 sh × $50, BBB sell 20 × $10 (losses
  $300 + $250 on AAA, $450 on BBB), CCC buy 30 × $20, DDD sell 1 × $100 at a $50 gain.
- A2 (household H1, IRA): TE 0.5% against 2%, 2 orders: AAA sell 4 × $50 at a $100 loss (an IRA's:
  no harvest), BBB buy 10 × $10.
- A3 (household H2, taxable): infeasible, with a reason carrying script and markup (MALICIOUS).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cluster.night import BLOCKED_SCHEMA, EVENTS_SCHEMA
from cluster.worker import ACCOUNT_SCHEMA, MONEY, SHARES, TRADE_SCHEMA

DATE = dt.date(2024, 3, 1)
RUN_ID = f"nightly-{DATE}"
MALICIOUS = (
    "<script>document.title='pwned';alert('pwned')</script>"
    "<img src=x onerror=\"document.title='pwned'\"> TE budget 0.50% cannot hold with the exclusions"
)
NOTE = "cash above cash_max 2.00%: too few names may be bought"

OPTIONAL_ACCOUNT_FIELDS = [
    ("account_type", pa.string()),
    ("te_budget", pa.float64()),
    ("mandate_version", pa.int64()),
    ("cash_flow", MONEY),
    ("notes", pa.string()),
    ("orders", pa.int32()),
    ("tilts", pa.string()),
    ("te_combined", pa.float64()),
]


def _d(x: str | None) -> Decimal | None:
    return None if x is None else Decimal(x)


def _accounts(optional: bool) -> pa.Table:
    base = [
        ("A1", "H1", "optimal", None, 0.012, "1000.00", "-500.00", "-500.00", "-400.00", 0.05, 40.0, 5),
        ("A2", "H1", "optimal", None, 0.005, "0.00", "-100.00", "0.00", "0.00", 0.01, 30.0, 2),
        ("A3", "H2", "infeasible", MALICIOUS, None, None, None, None, None, None, 12.0, 0),
    ]
    extra = [
        ("taxable", 0.010, 2, "5000.00", NOTE, 4, '{"value": [0.5021, 0.5]}'),
        ("ira", 0.020, 1, None, None, 2, '{"momentum": [-0.19, -0.2], "value": [0.47, 0.5]}'),
        ("taxable", 0.005, 3, "-2500.00", None, 0, None),
    ]
    rows = []
    for (a, hh, status, reason, te, harvested, st, lt, tax, turnover, ms, trades), more in zip(base, extra):
        row = {
            "account": a,
            "household": hh,
            "status": status,
            "reason": reason,
            "te_ex_ante": te,
            "harvested_loss": _d(harvested),
            "st_realized": _d(st),
            "lt_realized": _d(lt),
            "tax_estimate": _d(tax),
            "turnover": turnover,
            "solve_ms": ms,
            "trades": trades,
            "replayed": False,
        }
        if optional:
            kind, budget, version, flow, notes, orders, tilts = more
            row |= {
                "account_type": kind,
                "te_budget": budget,
                "mandate_version": version,
                "cash_flow": _d(flow),
                "notes": notes,
                "orders": orders,
                "tilts": tilts,
            }
        rows.append(row)
    schema = ACCOUNT_SCHEMA
    if not optional:  # a run from before the newer columns: the coordinator's schema without them
        for name, _ in OPTIONAL_ACCOUNT_FIELDS:
            if schema.get_field_index(name) >= 0:
                schema = schema.remove(schema.get_field_index(name))
    if optional:
        for name, kind in OPTIONAL_ACCOUNT_FIELDS:  # the coordinator may already write some of them
            if schema.get_field_index(name) < 0:
                schema = schema.append(pa.field(name, kind))
    return pa.Table.from_pylist(rows, schema=schema)


def _trades() -> pa.Table:
    rows = [
        ("A1", "H1", "AAA", "sell", "10", "A1-1", 50.0, "-300.00", "short"),
        ("A1", "H1", "AAA", "sell", "5", "A1-2", 50.0, "-250.00", "long"),
        ("A1", "H1", "BBB", "sell", "20", "A1-3", 10.0, "-450.00", "long"),
        ("A1", "H1", "CCC", "buy", "30", "A1-9", 20.0, None, None),
        ("A1", "H1", "DDD", "sell", "1", "A1-4", 100.0, "50.00", "long"),
        ("A2", "H1", "AAA", "sell", "4", "A2-1", 50.0, "-100.00", "short"),
        ("A2", "H1", "BBB", "buy", "10", "A2-9", 10.0, None, None),
    ]
    assert TRADE_SCHEMA.field("shares").type == SHARES
    return pa.Table.from_pylist(
        [
            {
                "run_id": RUN_ID,
                "date": DATE,
                "account": a,
                "household": hh,
                "symbol": sym,
                "side": side,
                "shares": Decimal(sh),
                "lot_id": lot,
                "price": price,
                "realized_gain": _d(gain),
                "term": term,
            }
            for a, hh, sym, side, sh, lot, price, gain, term in rows
        ],
        schema=TRADE_SCHEMA,
    )


def _run_json(optional: bool) -> dict:
    run = {
        "run_id": RUN_ID,
        "date": str(DATE),
        "accounts": 3,
        "ok": 2,
        "failed": 1,
        "replayed": 0,
        "trades": 7,
        "wall_s": 1.5,
        "accounts_per_s": 2.0,
        "workers": 1,
        "shards": 2,
        "shard_retries": 0,
        "stages": {"rebalance_s": 1.5},
        "worker_stages": {},
        "harvested_loss": "1000.00",
        "tax_estimate": "-400.00",
        "out": "",
        "interrupted": False,
        "signal": None,
        "not_run": 0,
    }
    if optional:
        run |= {
            "orders": 6,
            "orders_per_account_p50": 3.0,
            "orders_per_account_p90": 3.8,
            "cash_flows": 2,
            "mandate_changes": 1,
            "redis_used_memory_bytes": 3 * 2**20,
        }
    return run


def _blocked() -> pa.Table:
    rows = [
        ("H1", "AAA", "no_buy", dt.date(2024, 3, 31)),
        ("H2", "AAA", "no_loss_sale", dt.date(2024, 3, 25)),
        ("H2", "AAA", "no_buy", dt.date(2024, 3, 20)),
        ("H1", "BBB", "no_buy", dt.date(2024, 3, 31)),
    ]
    return pa.Table.from_pylist([dict(zip(BLOCKED_SCHEMA.names, r)) for r in rows], schema=BLOCKED_SCHEMA)


def _events() -> pa.Table:
    at = dt.datetime(2024, 2, 29, tzinfo=dt.timezone.utc)
    rows = [
        (at.replace(hour=17, minute=5), "A1", "mandate", "pm@firm", "te_budget 1.50% -> 1.00%"),
        (at.replace(hour=16), "A3", "cash_flow", "ops", "withdrawal $2,500.00"),
        (at.replace(hour=16, minute=30), "A1", "cash_flow", "ops", "deposit $5,000.00"),
    ]
    return pa.Table.from_pylist([dict(zip(EVENTS_SCHEMA.names, r)) for r in rows], schema=EVENTS_SCHEMA)


def write_run_dir(path: Path, optional: bool = True) -> Path:
    """Write the three-account night into ``path`` (created); ``optional``: the newer inputs too."""
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(_accounts(optional), path / "accounts.parquet")
    pq.write_table(_trades(), path / "trades.parquet")
    if optional:
        pq.write_table(_blocked(), path / "blocked.parquet")
        pq.write_table(_events(), path / "events.parquet")
    (path / "run.json").write_text(json.dumps(_run_json(optional), indent=2) + "\n")
    return path
