"""What a nightly run writes beside its trades and accounts for the morning report: the names
household wash-sale windows block (``blocked.parquet``) and the account events since the last
night (``events.parquet``: mandate changes, cash flows), with run.json's counts of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger.connection import used_memory
from ledger.store import LedgerStore
from ledger.windows import blocked_names

BLOCKED_SCHEMA = pa.schema(
    [("household", pa.string()), ("symbol", pa.string()), ("restriction", pa.string()), ("until", pa.date32())]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("s", tz="UTC")),
        ("account", pa.string()),
        ("kind", pa.string()),
        ("actor", pa.string()),
        ("detail", pa.string()),
    ]
)
CHUNK = 1000  # households per pipelined read


def write_night_files(
    store: LedgerStore, households: Sequence[str], date: dt.date, paths: dict[str, Path]
) -> dict[str, Any]:
    """Write ``paths["blocked.parquet"]`` and ``paths["events.parquet"]``; returns run.json's
    ``mandate_changes``, ``cash_flows`` and ``redis_used_memory_bytes``. The events reported are
    those after the last night's (a stream id kept in Redis), so each is reported once."""
    rows = []
    for i in range(0, len(households), CHUNK):
        for hh, (windows, _) in store.windows_many(households[i : i + CHUNK]).items():
            rows += [
                {"household": hh, "symbol": s, "restriction": r, "until": u} for s, r, u in blocked_names(windows, date)
            ]
    pq.write_table(pa.Table.from_pylist(rows, schema=BLOCKED_SCHEMA), paths["blocked.parquet"])
    last = store.r.get(store.k.last_night())
    since = "(" + last.decode() if last else "-"
    entries = store.r.xrange(store.k.events(), min=since)
    events = []
    for _, f in entries:
        f = {k.decode(): v.decode() for k, v in f.items()}
        when = dt.datetime.fromisoformat(f["time"])
        events.append({**f, "time": when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)})
    pq.write_table(pa.Table.from_pylist(events, schema=EVENTS_SCHEMA), paths["events.parquet"])
    if entries:
        store.r.set(store.k.last_night(), entries[-1][0])
    return {
        "mandate_changes": sum(e["kind"] == "mandate" for e in events),
        "cash_flows": sum(e["kind"] == "cash_flow" for e in events),
        "redis_used_memory_bytes": used_memory(store.r),  # a cluster's: the sum over its masters
    }
