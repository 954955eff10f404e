"""One nightly run as its entry point states it (the CLI, the demo, a test, a benchmark): built
once, frozen, passed to ``cluster.coordinator.rebalance`` with the ledger's ``LedgerSettings`` and
the firm's default ``AccountSettings`` (``read_firm_defaults``: one TOML file)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.core.mandate import check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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


def read_firm_defaults(path: str | Path) -> AccountSettings:
    """The firm's defaults from one TOML file: a ``[defaults]`` table of mandate keys
    (``taxview.core.mandate``) that the optimizer reads — what an account does not state."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError("firm", f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError("firm", f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"defaults"})
    if unknown:
        raise InputError(unknown[0], f"{path}: unknown section (the firm file has one: [defaults])")
    table = doc.get("defaults", {})
    if not isinstance(table, dict):
        raise InputError("defaults", f"{path}: [defaults] must be a table")
    values = check(table, f"{path} [defaults]")
    per_account = sorted((set(values) - SOLVER_KEYS) | (set(values) & {"outside"}))  # holdings are one owner's
    if per_account:
        raise InputError(per_account[0], f"{path}: {per_account[0]} is set per account, not for the firm")
    return settings_with(AccountSettings(), values)


def settings_with(base: AccountSettings, mandate: Mapping[str, Any]) -> AccountSettings:
    """``base`` with a mandate's optimizer keys over it (names as frozensets)."""
    kw = {k: frozenset(v) if k.startswith("exclude_") else v for k, v in mandate.items() if k in SOLVER_KEYS}
    return replace(base, **kw)


SOLVER_KEYS = frozenset(AccountSettings.__dataclass_fields__) - {"account_id", "account_type", "st_rate", "lt_rate"}
