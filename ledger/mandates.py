"""Account mandates in the ledger (a mixin of ``LedgerStore``): versioned, journaled, atomic.

An account's type and rates live in its hash as before; the rest of its mandate (what it states
beyond the firm's defaults, ``taxview.core.mandate``) is one JSON field beside ``mandate_version``.
A change is checked by the caller, applied to the version it was read at by ``lua/mandate.lua``
(STALE: read again and re-apply) and journaled in the household: when, who, old → new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis
from redis.commands.core import Script

from taxview.core.mandate import to_json

from .api import AccountInfo, with_mandate
from .errors import CommitRejected, UnknownAccount
from .keys import Keys

MAX_ATTEMPTS = 50


def shown(info: AccountInfo) -> dict[str, Any]:
    """An account's mandate as the journal and ``accounts show`` print it."""
    return {
        "account_type": info.account_type,
        "st_rate": info.st_rate,
        "lt_rate": info.lt_rate,
        **json.loads(to_json(info.mandate)),
    }


class MandateWrites:
    """``LedgerStore``'s mandate changes, on its client, key names and ``lua/mandate.lua``."""

    r: redis.Redis
    k: Keys
    _mandate: Script

    def set_mandate(self, account: str, changes: Mapping[str, Any], actor: str, at: str) -> AccountInfo:
        """Apply checked ``changes`` (``None``: back to the firm's default) at the next version;
        returns the account as it now is. ``at``: when (ISO timestamp), ``actor``: who."""
        for _ in range(MAX_ATTEMPTS):
            old = self.account(account)
            new = with_mandate(old, changes)
            entry = {"mandate": {"at": at, "actor": actor, "version": new.mandate_version}}
            entry["mandate"].update(old=shown(old), new=shown(new))
            k = self.k
            reply = self._mandate(
                keys=[
                    k.account(old.household, account),
                    k.members(old.household),
                    k.meta(old.household),
                    k.journal(old.household),
                ],
                args=[
                    account,
                    old.mandate_version,
                    new.account_type,
                    repr(float(new.st_rate)),
                    repr(float(new.lt_rate)),
                    to_json(new.mandate),
                    json.dumps(entry, separators=(",", ":")),
                ],
            )
            if reply[0] == b"OK":
                before, after = shown(old), shown(new)
                diff = "; ".join(
                    f"{key} {before.get(key, 'default')} → {after.get(key, 'default')}"
                    for key in sorted(before.keys() | after.keys())
                    if before.get(key) != after.get(key)
                )
                event = {"time": at, "account": account, "kind": "mandate", "actor": actor, "detail": diff}
                self.r.xadd(k.events(), event)
                return new
            code, message = reply[1].decode(), reply[2].decode()
            if code == "UNKNOWN_ACCOUNT":
                raise UnknownAccount(account)
            if code != "STALE":
                raise CommitRejected(code, message)
        raise CommitRejected("BUSY", f"account {account!r}: its mandate kept changing")
