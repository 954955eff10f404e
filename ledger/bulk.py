"""The store's writes besides commits: account records and opening lots (a mixin of ``LedgerStore``).

An account is checked in full and claimed in the account index (HSETNX) before its record is
written and journaled in its household; a household's opening lots are written by one script
(``lua/import.lua``) that checks their ids first. Reading the files and planning an import are
``ledger.files``'s and ``ledger.importer``'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import redis
from redis.commands.core import Script

from taxview.core.mandate import to_json

from .api import MAX_CASH_CENTS, AccountInfo
from .codec import lot_field
from .errors import CommitRejected, LedgerInputError
from .keys import Keys, check_id, dot_prefixes, id_free
from .records import OpenLot

ACCOUNT_TYPES = ("taxable", "ira", "trust", "other")
IDS_PAGE = 5000  # lot ids per registry lookup (``lua/ids.lua``)


class BulkWrites:
    """``LedgerStore``'s account records and opening lots, on its client, key names and import script."""

    r: redis.Redis
    k: Keys
    _import: Script
    _ids: Script

    def check_accounts(self, accounts: Sequence[AccountInfo], replace: Iterable[str] = ()) -> None:
        """Validate new accounts in full (ids, type, rates, cash; none listed twice; none already in
        the ledger unless named in ``replace``, and then in the same household); writes nothing."""
        replace = set(replace)
        seen: set[str] = set()
        for i, a in enumerate(accounts, start=1):
            where = f"accounts row {i}: "
            check_id("account", a.account, where)
            check_id("household", a.household, where)
            if a.account_type not in ACCOUNT_TYPES:
                raise LedgerInputError("account_type", f"{where}{a.account_type!r} is not taxable|ira|trust|other")
            for name in ("st_rate", "lt_rate"):
                rate = getattr(a, name)
                if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
                    raise LedgerInputError(name, f"{where}{name} must be a number in [0, 1), got {rate!r}")
            if not isinstance(a.cash_cents, int) or not -MAX_CASH_CENTS < a.cash_cents < MAX_CASH_CENTS:
                raise LedgerInputError("cash", f"{where}cash must be under $10^13, got {a.cash_cents!r} cents")
            if a.account in seen:
                raise LedgerInputError("account", f"{where}account {a.account!r} is listed twice")
            seen.add(a.account)
        names = [a.account for a in accounts]  # the index in pages: one HMGET per 1,000 accounts
        index = self.k.account_index()
        existing = [hh for i in range(0, len(names), 1000) for hh in self.r.hmget(index, names[i : i + 1000])]
        for i, (a, hh) in enumerate(zip(accounts, existing), start=1):
            if hh is None:
                continue
            if a.account not in replace:
                raise LedgerInputError(
                    "account",
                    f"accounts row {i}: account {a.account!r} is already in the ledger "
                    f"(to restate it from this file: --replace-account {a.account})",
                )
            if hh.decode() != a.household:
                raise LedgerInputError(
                    "household", f"accounts row {i}: account {a.account!r} belongs to household {hh.decode()!r}"
                )

    def add_accounts(self, accounts: Iterable[AccountInfo], replace: Iterable[str] = ()) -> int:
        """Create accounts (validated in full first, nothing written on an error); an account in
        ``replace`` that exists gets its type, rates and cash from ``accounts``. Each account's
        record is journaled in its household, so ``rebuild_from_journal`` restates it in order."""
        accounts, replace = list(accounts), set(replace)
        self.check_accounts(accounts, replace)
        index = self.k.account_index()
        new = [a for a in accounts if a.account not in replace or self.r.hget(index, a.account) is None]
        # Claim new ids in the account index first: HSETNX is atomic, so two commands racing to
        # create one account cannot both do it (the loser takes its claims back and is refused).
        pipe = self.r.pipeline(transaction=False)
        for a in new:
            pipe.hsetnx(index, a.account, a.household)
        won = pipe.execute() if new else []
        if not all(won):
            lost = next(a.account for a, ok in zip(new, won) if not ok)
            mine = [a.account for a, ok in zip(new, won) if ok]
            if mine:
                self.r.hdel(index, *mine)
            raise LedgerInputError("account", f"account {lost!r} was created by another command meanwhile")
        pipe = self.r.pipeline(transaction=False)
        for a in accounts:
            record = {"type": a.account_type, "st_rate": float(a.st_rate), "lt_rate": float(a.lt_rate)}
            pipe.sadd(self.k.households(), a.household)
            pipe.hset(self.k.members(a.household), a.account, a.account_type)
            pipe.hset(
                self.k.account(a.household, a.account),
                mapping={
                    "household": a.household,
                    "type": a.account_type,
                    "st_rate": repr(record["st_rate"]),
                    "lt_rate": repr(record["lt_rate"]),
                    "cash_cents": a.cash_cents,
                    "mandate": to_json(a.mandate),
                },
            )
            pipe.hincrby(self.k.account(a.household, a.account), "mandate_version", 1)
            pipe.hsetnx(self.k.account(a.household, a.account), "opening_cash_cents", a.cash_cents)
            pipe.hsetnx(self.k.meta(a.household), "version", 0)
            pipe.hincrby(self.k.meta(a.household), "version", 1)  # plans made on the old record go stale
            entry = {"account": {**record, "cash_cents": a.cash_cents, "mandate": json.loads(to_json(a.mandate))}}
            pipe.xadd(
                self.k.journal(a.household),
                {"key": "", "account": a.account, "date": "", "entry": json.dumps(entry, separators=(",", ":"))},
            )
        pipe.execute()
        return len(accounts)

    def import_lots(self, lots: Sequence[OpenLot]) -> int:
        """Bulk-load opening lots: each a new purchase (the ledger numbers it); accounts must exist,
        lot ids must be new to their household. Validated in full first; see ``ledger.importer``."""
        from .files import lots_table
        from .importer import import_lots

        return import_lots(self, lots_table(lots))

    def free_ids(self, household: str, lot_ids: Sequence[str], freed: set[str] = frozenset()) -> list[bool]:
        """Whether each id may name a new purchase of the household (``Household.id_free``);
        ``freed``: ids given back by lots removed in the same import (``importer.freed_ids``)."""
        used = self.used_ids(household, sorted({x for lid in lot_ids for x in (lid, *dot_prefixes(lid))}))
        return [id_free(used, lid, freed) for lid in lot_ids]

    def used_ids(self, household: str, lot_ids: Sequence[str]) -> dict[str, str]:
        """What the household's lot-id registry says of each id that is not free: "1" (it names a
        purchase, given or made by the ledger) or "p" (a dot-prefix of one); ``lua/_ids.lua``."""
        k, out = self.k, {}
        for i in range(0, len(lot_ids), IDS_PAGE):
            page = list(lot_ids[i : i + IDS_PAGE])
            got = self._ids(keys=[k.ids(household), k.meta(household), k.made(household)], args=page)
            out.update({x: v.decode() for x, v in zip(page, got) if v is not None})
        return out

    def write_import(
        self,
        household: str,
        rows: Sequence[tuple],
        remove: Sequence[tuple[str, str]] = (),
        replace: Sequence[str] = (),
        version: int | None = None,
        source: Mapping[str, str] | None = None,
    ) -> int:
        """One household's opening lots in one script (``lua/import.lua``). ``rows``: (identity
        key, lot id, head ``account|symbol|quantity|basis_cents|acquired|holding_start``, capacity,
        purchase label or None) for new purchases — rows sharing a label are one purchase — or
        (key, lot id, encoded lot, None, None) to restore a journal verbatim. ``remove``: (key, lot
        id) of open lots deleted first (a replaced account's, read at ``version``); their ids and
        namespaces are given back. ``source``: the import file (``path``, ``sha256``) the rows came
        from: the journal then names it instead of copying every lot.
        Raises ``CommitRejected`` (``ID_TAKEN``, ``STALE``), nothing written."""
        keys = sorted({r[0] for r in rows} | {k for k, _ in remove})
        g = {k: i + 1 for i, k in enumerate(keys)}
        latest: dict[str, int] = {}
        for row in rows:
            acquired = int(lot_field(row[2], "acquired"))
            latest[row[0]] = max(latest.get(row[0], 0), acquired)
        payload = {
            "keys": keys,
            "lots": [
                [g[key], lid, head, False if cap is None else str(cap), dot_prefixes(lid), label or False]
                for key, lid, head, cap, label in rows
            ],
            "remove": [[g[k], lid] for k, lid in remove],
            "free": sorted({x for _, lid in remove for x in (lid, *dot_prefixes(lid))}),
            "replace": list(replace),
            "latest": sorted(latest.items()),
        }
        if source is not None:
            payload["source"] = {"path": str(source["path"]), "sha256": source["sha256"]}
        k = self.k
        reply = self._import(
            keys=[k.meta(household), k.ids(household), k.windows(household), k.journal(household), k.groups(household)]
            + [k.made(household)]
            + [k.lots(household, key) for key in keys],
            args=[json.dumps(payload, separators=(",", ":")), "" if version is None else version],
        )
        if reply[0] != b"OK":
            raise CommitRejected(reply[1].decode(), f"household {household!r}: {reply[2].decode()}")
        return int(reply[1])


__all__ = ["BulkWrites"]
