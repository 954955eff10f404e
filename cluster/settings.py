"""One nightly run as its entry point states it (the CLI, the demo, a test, a benchmark): built
once, frozen, passed to ``cluster.coordinator.rebalance`` with the ledger's ``LedgerSettings`` and
the firm's default ``AccountSettings``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunSettings:
    date: str  # the night rebalanced (ISO date)
    market_dir: str | Path  # prices.parquet, ... and optionally riskmodel/
    out_dir: str | Path  # trades.parquet, accounts.parquet, run.json
    run_id: str | None = None  # idempotency of the run; default nightly-DATE
    address: str | None = None  # a Ray cluster (auto, ray://host:10001); default a local Ray
    workers: int | None = None  # worker actors; default one per CPU
    shard_size: int = 8  # accounts per shard (households never split)
    factors: int = 20  # PCA factors when the market has no riskmodel/
    run_wait_s: float = 3600.0  # wait this long for another coordinator of the same run id
    max_shard_attempts: int = 5  # a shard whose worker dies this often fails its accounts
    drain_s: float = 120.0  # after SIGTERM/SIGINT, wait this long for the shards in flight
    quiet: bool = False  # no progress bar

    @property
    def name(self) -> str:
        return self.run_id or f"nightly-{self.date}"
