"""Where proposals wait for their commit: in process (tests, one replica) or in the ledger's Redis,
so any replica commits what another proposed. A proposal is a JSON document under its id, kept
``ttl_s`` seconds (a day's proposal is stale the next day anyway)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any, Protocol

TTL_S = 24 * 3600


def new_proposal_id() -> str:
    """A fresh id in the ledger's id alphabet (``ledger.keys``): ``p-`` and 24 hex digits."""
    return f"p-{secrets.token_hex(12)}"


class ProposalBook(Protocol):
    def put(self, proposal_id: str, doc: dict[str, Any]) -> None: ...

    def get(self, proposal_id: str) -> dict[str, Any] | None: ...


class MemoryProposals:
    """Proposals in this process (thread-safe), dropped after ``ttl_s``."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._docs: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def put(self, proposal_id: str, doc: dict[str, Any]) -> None:
        with self._lock:
            now = time.monotonic()
            self._docs = {k: v for k, v in self._docs.items() if v[0] > now}
            self._docs[proposal_id] = (now + self.ttl_s, json.dumps(doc))

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        with self._lock:
            got = self._docs.get(proposal_id)
        if got is None or got[0] <= time.monotonic():
            return None
        return json.loads(got[1])


class RedisProposals:
    """Proposals in the ledger's Redis under ``<prefix>:proposal:<id>`` with a TTL (not ledger
    state: nothing in the ledger reads them; a commit is checked against the ledger itself)."""

    def __init__(self, client: Any, prefix: str = "tv", ttl_s: int = TTL_S) -> None:
        self.r, self.prefix, self.ttl_s = client, prefix, ttl_s

    def put(self, proposal_id: str, doc: dict[str, Any]) -> None:
        self.r.set(f"{self.prefix}:proposal:{proposal_id}", json.dumps(doc, separators=(",", ":")), ex=self.ttl_s)

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{self.prefix}:proposal:{proposal_id}")
        return None if raw is None else json.loads(raw)


def nothing_to_book(proposal_id: str, doc: dict[str, Any], version: int, cash: str) -> dict[str, Any]:
    """The commit of a proposal with no orders: a success that writes nothing, so the household's
    version stays ``version`` (now) and its other pending proposals remain committable (booking an
    empty commit would bump the version and make them 409 for nothing). ``cash``: dollars now."""
    return {
        "proposal_id": proposal_id,
        "account": doc["account"],
        "household": doc["household"],
        "date": doc["date"],
        "replayed": False,
        "empty": True,
        "detail": "the proposal has no orders: nothing booked, the household's version is unchanged",
        "proposed_on_version": doc["version"],
        "ledger_version": version,
        "sales": [],
        "new_lots": [],
        "cash": cash,
    }
