"""A nightly run's summary: ``run.json`` and the table the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field

OK_STATUSES = frozenset(("optimal", "paused", "liquidated"))  # an account's night went as its mandate says


@dataclass
class RunSummary:
    run_id: str
    date: str
    accounts: int
    ok: int
    failed: int
    replayed: int
    trades: int
    wall_s: float
    accounts_per_s: float
    workers: int
    shards: int
    shard_retries: int
    shard_nodes: dict[str, int] = field(default_factory=dict)  # Ray node id -> shards it ran
    stages: dict[str, float] = field(default_factory=dict)
    worker_stages: dict[str, float] = field(default_factory=dict)
    harvested_loss: str = "0"
    tax_estimate: str = "0"
    out: str = ""
    interrupted: bool = False  # stopped by a signal: ``not_run`` accounts were not rebalanced
    signal: str | None = None
    not_run: int = 0
    orders: int = 0  # one per account, symbol and side
    orders_per_account_p50: float = 0.0
    orders_per_account_p90: float = 0.0
    cash_flows: int = 0  # account events since the last night (events.parquet)
    mandate_changes: int = 0
    redis_used_memory_bytes: int = 0
    report: str = ""  # the morning report (report.html), "" when it could not be written
    compacted: dict = field(default_factory=dict)  # the night's compaction (retention policy); {}: none


def summary_table(s: RunSummary) -> str:
    rows = [
        ("run", s.run_id),
        ("date", s.date),
        (
            "accounts",
            f"{s.accounts} ({s.ok} ok, {s.failed} failed, {s.replayed} replayed"
            + (f", {s.not_run} not run: interrupted by {s.signal}" if s.interrupted else "")
            + ")",
        ),
        (
            "trades",
            f"{s.trades} in {s.orders} orders (per account: median {s.orders_per_account_p50:g}, "
            f"p90 {s.orders_per_account_p90:g})",
        ),
        ("harvested losses", f"${float(s.harvested_loss):,.2f}"),
        ("estimated tax", f"${float(s.tax_estimate):,.2f} (negative: a saving)"),
        (
            "wall time",
            f"{s.wall_s:.1f}s (rebalance {s.stages['rebalance_s']:.1f}s, Ray start {s.stages['ray_setup_s']:.1f}s)",
        ),
        ("throughput", f"{s.accounts_per_s:.1f} accounts/s on {s.workers} workers"),
        (
            "output",
            f"{s.out}/trades.parquet, orders.parquet, accounts.parquet, blocked.parquet, events.parquet, run.json",
        ),
        ("morning report", s.report or "not written (see the warning above)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
