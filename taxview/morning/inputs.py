"""A nightly run's output directory, read for the morning report: what must be there, what may be.

``run.json``, ``accounts.parquet`` and ``trades.parquet`` must be there (the coordinator writes
``run.json`` last, so its presence says the Parquet files are complete). Newer runs add optional
columns to ``accounts.parquet``, optional keys to ``run.json`` and optional files:
``blocked.parquet`` and ``events.parquet``, each ``None`` here when absent (the report says "not
recorded in this run"), and ``orders.parquet`` (without it the report groups the trades).
Anything present but malformed is an ``InputError`` naming the file and the column or key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from taxview.core.errors import InputError

MONEY = pa.decimal128(38, 2)

# A column's kind: the Arrow types accepted for it and the type it is read as.
_KINDS: dict[str, tuple[Callable[[pa.DataType], bool], pa.DataType | None]] = {
    "str": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), pa.string()),
    "float": (lambda t: pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t), pa.float64()),
    "int": (pa.types.is_integer, pa.int64()),
    "money": (pa.types.is_decimal, MONEY),  # dollars, exact (never float, never integer cents)
    "date": (pa.types.is_date, pa.date32()),
    "time": (lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t), None),  # kept as written (time zone)
}

ACCOUNT_COLUMNS = {
    "account": "str",
    "household": "str",
    "status": "str",
    "reason": "str",
    "te_ex_ante": "float",
    "harvested_loss": "money",
    "tax_estimate": "money",
}
ACCOUNT_OPTIONAL = {
    "account_type": "str",
    "te_budget": "float",  # annualized, as te_ex_ante
    "mandate_version": "int",
    "cash_flow": "money",  # dollars: a deposit positive, a withdrawal negative
    "notes": "str",  # the solver's notes joined by "; "
    "orders": "int",
    "tilts": "str",  # JSON {style: [achieved, target]}, standard deviations of the style score
    "te_combined": "float",  # outside holdings complete: the TE its budget applies to
}
TRADE_COLUMNS = {
    "account": "str",
    "symbol": "str",
    "side": "str",
    "shares": "float",
    "price": "float",
    "realized_gain": "money",
}
ORDER_COLUMNS = {"account": "str", "symbol": "str", "side": "str", "value": "money"}
BLOCKED_COLUMNS = {"household": "str", "symbol": "str", "restriction": "str", "until": "date"}
EVENT_COLUMNS = {"time": "time", "account": "str", "kind": "str", "actor": "str", "detail": "str"}

RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "run_id": str,
    "date": str,
    "accounts": int,
    "ok": int,
    "failed": int,
    "trades": int,
    "wall_s": (int, float),
    "accounts_per_s": (int, float),
}
RUN_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "workers": int,
    "interrupted": bool,
    "not_run": int,
    "orders": int,
    "orders_per_account_p50": (int, float),
    "orders_per_account_p90": (int, float),
    "cash_flows": int,
    "mandate_changes": int,
    "redis_used_memory_bytes": int,
}


@dataclass(frozen=True)
class RunInputs:
    """One night's outputs as the report reads them. ``accounts`` has every optional column, None
    where the run did not record it; ``blocked``, ``events`` and ``orders`` are None where their
    file is absent."""

    run_dir: Path
    run: dict[str, Any]
    accounts: pa.Table
    trades: pa.Table
    blocked: pa.Table | None
    events: pa.Table | None
    orders: pa.Table | None = None

    def recorded(self, column: str) -> bool:
        """Whether ``accounts.parquet`` has this optional column."""
        return column in self.accounts.column_names


def read_run(run_dir: Path) -> RunInputs:
    """Read and check a run directory (InputError when a required file is missing or any file is malformed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("run", f"{run_dir} is not a directory (a nightly run's --out)")
    return RunInputs(
        run_dir=run_dir,
        run=_read_run_json(run_dir / "run.json"),
        accounts=_read_table(run_dir / "accounts.parquet", ACCOUNT_COLUMNS, ACCOUNT_OPTIONAL),
        trades=_read_table(run_dir / "trades.parquet", TRADE_COLUMNS),
        blocked=_read_table(run_dir / "blocked.parquet", BLOCKED_COLUMNS, required=False),
        events=_read_table(run_dir / "events.parquet", EVENT_COLUMNS, required=False),
        orders=_read_table(run_dir / "orders.parquet", ORDER_COLUMNS, required=False),
    )


def _missing(path: Path) -> InputError:
    return InputError(
        path.name, f"{path.parent} has no {path.name}: is it the --out directory of a finished nightly run?"
    )


def _read_run_json(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text())
    except FileNotFoundError:
        raise _missing(path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path.name, f"cannot read {path}: {exc}") from None
    if not isinstance(run, dict):
        raise InputError(path.name, f"{path} is not a JSON object")
    for keys, required in ((RUN_KEYS, True), (RUN_OPTIONAL, False)):
        for key, kind in keys.items():
            if key not in run or (not required and run[key] is None):
                if required:
                    raise InputError(f"{path.name}: {key}", f"missing in {path}")
                continue
            value = run[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise InputError(f"{path.name}: {key}", f"expected a {_type_name(kind)}, got {value!r}")
    return run


def _type_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def _read_table(
    path: Path, columns: dict[str, str], optional: dict[str, str] | None = None, required: bool = True
) -> pa.Table | None:
    """The columns the report uses, each cast to its kind's type; optional ones only when present."""
    if not path.exists():
        if required:
            raise _missing(path)
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path.name, f"cannot read {path} as Parquet: {exc}") from None
    wanted = {**columns, **{k: v for k, v in (optional or {}).items() if k in table.column_names}}
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(path.name, f"{path} lacks the column(s) {', '.join(missing)}")
    out = {}
    for name, kind in wanted.items():
        col = table.column(name)
        accepts, target = _KINDS[kind]
        if not (pa.types.is_null(col.type) or accepts(col.type)):
            raise InputError(f"{path.name}: {name}", f"expected {kind} values, found Arrow type {col.type}")
        if target is not None and col.type != target:
            try:
                col = col.cast(target)
            except pa.ArrowException as exc:
                raise InputError(f"{path.name}: {name}", f"cannot read as {kind}: {exc}") from None
        out[name] = col
    return pa.table(out)
