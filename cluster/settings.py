"""One nightly run as its entry point states it (the CLI, the demo, a test, a benchmark): built
once, frozen, passed to ``cluster.coordinator.rebalance`` with the ledger's ``LedgerSettings`` and
the firm's default ``AccountSettings`` (``read_firm_defaults``: one TOML file, whose
``[retention]`` table is the ledger's retention policy, ``read_retention``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ledger.retention import DEFAULT_KEEP_DAYS, RetentionPolicy
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
    retention: RetentionPolicy | None = None  # compact after the night (its ``nightly``); None: never

    @property
    def name(self) -> str:
        return self.run_id or f"nightly-{self.date}"


def read_firm_defaults(path: str | Path) -> AccountSettings:
    """The firm's defaults from one TOML file: a ``[defaults]`` table of mandate keys
    (``taxview.core.mandate``) that the optimizer reads — what an account does not state."""
    doc = _firm_doc(path)
    unknown = sorted(set(doc) - {"defaults", "retention"})
    if unknown:
        raise InputError(unknown[0], f"{path}: unknown section (the firm file has [defaults] and [retention])")
    read_retention(path, doc=doc)  # the whole file is checked at once
    table = doc.get("defaults", {})
    if not isinstance(table, dict):
        raise InputError("defaults", f"{path}: [defaults] must be a table")
    values = check(table, f"{path} [defaults]")
    per_account = sorted((set(values) - SOLVER_KEYS) | (set(values) & {"outside"}))  # holdings are one owner's
    if per_account:
        raise InputError(per_account[0], f"{path}: {per_account[0]} is set per account, not for the firm")
    return settings_with(AccountSettings(), values)


def _firm_doc(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError("firm", f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError("firm", f"{path} is not valid TOML: {exc}") from None


def read_retention(
    path: str | Path | None, default_archive: str | Path | None = None, doc: dict | None = None
) -> RetentionPolicy:
    """The firm's retention policy, the ``[retention]`` table of its TOML file (``keep_days``:
    days of history kept in Redis, at least 1, default 45; ``archive``: the archive directory,
    relative to the file, default ``default_archive``; ``nightly``: compact after each night,
    default true). No file, or no table: the default policy."""
    if doc is None:
        doc = _firm_doc(path) if path else {}
    table = doc.get("retention", {})
    if not isinstance(table, dict):
        raise InputError("retention", f"{path}: [retention] must be a table")
    unknown = sorted(set(table) - {"keep_days", "archive", "nightly"})
    if unknown:
        raise InputError(unknown[0], f"{path} [retention]: unknown key (keep_days, archive, nightly)")
    keep = table.get("keep_days", DEFAULT_KEEP_DAYS)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 1 <= keep <= 36_500:
        raise InputError("keep_days", f"{path} [retention]: keep_days must be a whole number of days ≥ 1, got {keep!r}")
    nightly = table.get("nightly", True)
    if not isinstance(nightly, bool):
        raise InputError("nightly", f"{path} [retention]: nightly must be true or false, got {nightly!r}")
    archive = table.get("archive")
    if archive is not None and (not isinstance(archive, str) or not archive):
        raise InputError("archive", f"{path} [retention]: archive must be a directory path, got {archive!r}")
    if archive is not None and path:
        archive = Path(path).parent / archive
    return RetentionPolicy(keep, archive if archive is not None else default_archive, nightly)


def settings_with(base: AccountSettings, mandate: Mapping[str, Any]) -> AccountSettings:
    """``base`` with a mandate's optimizer keys over it (names as frozensets)."""
    kw = {k: frozenset(v) if k.startswith("exclude_") else v for k, v in mandate.items() if k in SOLVER_KEYS}
    return replace(base, **kw)


SOLVER_KEYS = frozenset(AccountSettings.__dataclass_fields__) - {"account_id", "account_type", "st_rate", "lt_rate"}
