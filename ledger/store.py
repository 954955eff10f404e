"""The tax-lot ledger in Redis (adapter around the pure ``ledger.washsale`` rule).

Layout: see ``ledger.keys``. Lots live per (household, identity key) so a commit reads only the
names it trades. A commit is planned in Python by ``ledger.washsale`` on a consistent snapshot
(``lua/read.lua``) and applied by ``lua/commit.lua``, which re-validates everything (the account,
the household version the plan was made on, dates, lots and quantities, wash-sale windows) before
it writes; a household changed in between answers STALE and the commit is planned again. So the
Redis ledger and the batch report share one implementation of the rule, and concurrent commits
to a household serialize.

Money is integer cents and quantities are ``Decimal`` strings in Redis; dates of windows and
metadata are proleptic ordinals (``date.toordinal()``).

Here: the reads and the commit (the nightly's hot path). Account records and opening lots are
``ledger.bulk``'s, the journal read back and replayed ``ledger.journal``'s, mandates
``ledger.mandates``', corporate actions ``ledger.actions``' and the year-end roll of the
households' carry-forward ``ledger.yearend``'s, compaction into the archive ``ledger.compaction``'s:
mixins of the store.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import redis

from taxview.core.mandate import from_json
from taxview.core.records import Restrictions, Trade

from .actions import CorporateActions
from .api import AccountInfo, CommitResult, identity_names
from .bulk import BulkWrites
from .cashflows import CashFlows
from .codec import decode_lot, decode_sale, lua_prelude
from .compaction import Compaction
from .errors import CommitRejected, LedgerInputError, UnknownAccount
from .journal import Journal
from .keys import Keys, dot_prefixes, made_lot_id, piece_order
from .mandates import MandateWrites
from .plan import commit_digest, key_reused, plan_commit, wire_trades
from .records import Account, OpenLot, Sale
from .replicated import ReplicatedScript, replicated
from .washsale import Household
from .windows import WINDOW_DAYS, restrictions_from_windows
from .yearend import YearEnds

MAX_ATTEMPTS = 200
PAGE = 1000  # fields per HSCAN/SSCAN call and per HMGET of a global key


def _lua(name: str, *helpers: str) -> str:
    """A script of ``lua/``, behind the codec's prelude (``LOT``, ``lot_field``; see ``ledger.codec``)
    and the helpers it names (``lua/_*.lua``: functions shared by scripts)."""
    lua = resources.files("ledger").joinpath("lua")
    return lua_prelude() + "".join(lua.joinpath(h).read_text() for h in (*helpers, name))


class LedgerStore(BulkWrites, Journal, MandateWrites, CashFlows, CorporateActions, YearEnds, Compaction):
    """The ledger on one Redis (or Redis Cluster: every script touches one hash slot)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "tv",
        identical: Mapping[str, str] | None = None,
        replica_wait_ms: int = 2000,
    ) -> None:
        """``client``: a ``redis.Redis`` or a ``RedisCluster`` (``ledger.connection``); on a cluster
        every write script waits up to ``replica_wait_ms`` for a replica (``ledger.replicated``)."""
        self.r = client
        self.k = Keys(prefix)
        self.identical = dict(identical or {})

        def write(text: str):
            return replicated(client, client.register_script(text), replica_wait_ms)

        self._read = client.register_script(_lua("read.lua", "_ids.lua"))
        self._ids = client.register_script(_lua("ids.lua", "_ids.lua"))
        self._commit = write(_lua("commit.lua", "_replay.lua", "_ids.lua"))
        self._account_lots = client.register_script(_lua("account_lots.lua"))
        self._import = write(_lua("import.lua", "_ids.lua"))
        self._mandate = write(_lua("mandate.lua"))
        self._cashflow = write(_lua("cashflow.lua"))
        self._corporate = write(_lua("corporate.lua", "_replay.lua"))
        self._corporate_read = client.register_script(_lua("corporate_read.lua"))
        self._yearend = write(_lua("yearend.lua"))
        self._compact = write(_lua("compact.lua"))
        self._homes: dict[str, str] = {}
        self._seq_hint: dict[str, int] = {}  # household -> its last purchase number seen (made ids)

    def key_of(self, symbol: str) -> str:
        return self.identical.get(symbol, symbol)

    # --- accounts ----------------------------------------------------------------------------

    def household_of(self, account: str) -> str:
        hh = self._homes.get(account)  # an account never changes household: cache it
        if hh is None:
            raw = self.r.hget(self.k.account_index(), account)
            if raw is None:
                raise UnknownAccount(account)
            hh = self._homes[account] = raw.decode()
        return hh

    def account(self, account: str) -> AccountInfo:
        hh = self.household_of(account)
        h = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.account(hh, account)).items()}
        return AccountInfo(
            account,
            hh,
            h["type"],
            float(h["st_rate"]),
            float(h["lt_rate"]),
            int(h["cash_cents"]),
            from_json(h.get("mandate")),
            int(h.get("mandate_version", 0)),
            tuple(
                (dt.date.fromordinal(int(v.split("|", 2)[0])), int(v.split("|", 2)[1]))
                for f, v in h.items()
                if f.startswith("flow:")
            ),
            {f.removeprefix("realized:"): int(v) for f, v in h.items() if f.startswith("realized:")},
        )

    def accounts(self) -> dict[str, str]:
        """account -> household, for every account: the index read in pages (HSCAN, ``PAGE``
        fields a call), so 100,000 accounts never make one reply that holds their shard's master."""
        return {a.decode(): h.decode() for a, h in self.r.hscan_iter(self.k.account_index(), count=PAGE)}

    def households(self) -> list[str]:
        """Every household id, sorted: the household set read in pages (SSCAN)."""
        return sorted({x.decode() for x in self.r.sscan_iter(self.k.households(), count=PAGE)})

    # --- lots --------------------------------------------------------------------------------

    def lots(self, account: str) -> list[OpenLot]:
        hh = self.household_of(account)
        out = self._read_lots(hh, account)
        return sorted(out, key=lambda x: (x.symbol, x.acquired, x.seq, piece_order(x.lot_id)))

    def household_lots(self, household: str) -> dict[str, list[OpenLot]]:
        """Every open lot of a household by account, in one script (sorted like ``lots``)."""
        out: dict[str, list[OpenLot]] = {}
        for lot in self._read_lots(household, ""):
            out.setdefault(lot.account, []).append(lot)
        for lots in out.values():
            lots.sort(key=lambda x: (x.symbol, x.acquired, x.seq, piece_order(x.lot_id)))
        return out

    def _read_lots(self, household: str, account: str) -> list[OpenLot]:
        # Lua filters by account server side: a household's other accounts never cross the wire.
        # The script is handed every lot hash it reads; the groups set only grows, so a set that
        # grew since we listed it (a concurrent first buy of a name) answers RETRY.
        for _ in range(MAX_ATTEMPTS):
            groups = sorted(x.decode() for x in self.r.smembers(self.k.groups(household)))
            reply = self._account_lots(
                keys=[self.k.groups(household)] + [self.k.lots(household, g) for g in groups], args=[account]
            )
            if reply[0] == b"OK":
                flat = reply[1]
                return [decode_lot(flat[i].decode(), flat[i + 1].decode()) for i in range(0, len(flat), 2)]
        raise CommitRejected("BUSY", f"household {household!r} kept changing while its lots were read")

    def household_state(self, household: str, keys: Sequence[str]) -> dict[str, Any]:
        """What a dry run of trades in the identity ``keys`` needs (the service's wash-check), read
        in one MULTI: the household's version, last trade date, purchase and sale numbers, its
        accounts' types, its open lots of ``keys`` and its loss sales of them still pending."""
        k = self.k
        for _ in range(MAX_ATTEMPTS):
            pending = sorted(x.decode() for x in self.r.smembers(k.pending(household)))
            pipe = self.r.pipeline(transaction=True)
            pipe.hmget(k.meta(household), "version", "last_date", "seq", "sale_seq")
            pipe.hgetall(k.members(household))
            pipe.smembers(k.pending(household))
            for key in keys:
                pipe.hgetall(k.lots(household, key))
            if pending:
                pipe.hmget(k.sales(household), pending)
            replies = pipe.execute()
            if sorted(x.decode() for x in replies[2]) != pending:
                continue  # a commit in between: read again
            version, last, seq, sale_seq = (int(x or 0) for x in replies[0])
            lots = [decode_lot(f.decode(), v.decode()) for h in replies[3 : 3 + len(keys)] for f, v in h.items()]
            sales = [decode_sale(v.decode()) for v in (replies[3 + len(keys)] if pending else []) if v]
            wanted = set(keys)
            return {
                "version": version,
                "last_date": dt.date.fromordinal(last) if last else None,
                "seq": seq,
                "sale_seq": sale_seq,
                "accounts": {a.decode(): t.decode() for a, t in replies[1].items()},
                "lots": lots,
                "pending": [s for s in sales if self.key_of(s.symbol) in wanted],
            }
        raise CommitRejected("BUSY", f"household {household!r} kept changing while it was read")

    def sales(self, household: str) -> list[Sale]:
        out = [decode_sale(v.decode()) for v in self.r.hvals(self.k.sales(household))]
        return sorted(out, key=lambda s: (s.date, int(s.sale_id.rsplit(":", 1)[1])))

    # --- restrictions ------------------------------------------------------------------------

    def restrictions(self, household: str, date: dt.date) -> dict[str, Restrictions]:
        """Per account of ``household``: symbols it may not buy, symbols it may not sell at a loss."""
        return self.restrictions_many([household], date)[household]

    def restrictions_many(self, households: Sequence[str], date: dt.date) -> dict[str, dict[str, Restrictions]]:
        """Restrictions of many households in one pipelined round trip."""
        names = identity_names(self.identical)
        return {
            hh: restrictions_from_windows(last, date, types, names)
            for hh, (last, types) in self.windows_many(households).items()
        }

    def windows_many(self, households: Sequence[str]) -> dict[str, tuple[list[tuple[str, int, int]], dict[str, str]]]:
        """Per household: its windows (identity key, last buy, last loss sale; ordinals, 0: none)
        and its accounts' types, in one pipelined round trip."""
        pipe = self.r.pipeline(transaction=False)
        for hh in households:
            pipe.hgetall(self.k.windows(hh))
            pipe.hgetall(self.k.members(hh))
        replies = pipe.execute()
        out = {}
        for i, hh in enumerate(households):
            windows, members = replies[2 * i], replies[2 * i + 1]
            last = []  # "" in Redis: none
            for key, value in windows.items():
                b, l = value.decode().split("|")
                last.append((key.decode(), int(b or 0), int(l or 0)))
            out[hh] = (last, {a.decode(): t.decode() for a, t in members.items()})
        return out

    def household_version(self, household: str) -> int:
        """The household's version: it moves with every write to the household (commit, import,
        mandate, cash flow, corporate action)."""
        return int(self.r.hget(self.k.meta(household), "version") or 0)

    # --- commit ------------------------------------------------------------------------------

    def commit(
        self,
        account: str,
        date: dt.date,
        trades: Sequence[Trade],
        idempotency_key: str,
        allow_wash: bool = False,
        check_cash: bool = False,
        meta: Mapping[str, Any] | None = None,
        expect_version: int | None = None,
    ) -> CommitResult:
        """Apply one account's trades of ``date`` atomically and idempotently.

        ``trades``: ``Trade`` records as the solver makes them (a sell without ``lot_id``: first in,
        first out). ``allow_wash=False`` (the nightly path) refuses any trade
        that would create a wash sale (``CommitRejected('WASH_CONFLICT')``); ``True`` applies it
        with the wash-sale adjustments (history replays, client-directed trades).
        A replay of the same key returns the stored result; the same key with other content is
        refused (``KEY_REUSED``); bad input raises ``LedgerInputError``; nothing is written then.
        The account's cash moves by sell proceeds minus buy costs; ``check_cash`` refuses a commit
        that would take it below zero (``OVERDRAFT``). ``meta`` (JSON) is stored with the result.
        An empty ``trades`` records the key (an account that had nothing to trade in a run).
        ``expect_version``: refuse (``CHANGED``) unless the household is still at that version (a
        proposal made on it, the service's); commit.lua checks the version the plan was made on,
        so a change in between answers STALE, the snapshot is read again and this refuses.
        """
        hh = self.household_of(account)
        if not idempotency_key:
            raise LedgerInputError("idempotency_key", "an idempotency key is required")
        request = wire_trades(account, hh, date, trades)
        digest = commit_digest(account, date, request, allow_wash)
        keys_needed = sorted({self.key_of(t["symbol"]) for t in request})
        # Which lots planning needs, per key: the lots sold by id (and the pieces of a split one),
        # the account's lots when a sell names none (FIFO), and read.lua adds the household's lots
        # of the last WINDOW_DAYS when the key was bought then (replacement candidates).
        named_by_key: dict[str, set[str]] = {g: set() for g in keys_needed}
        fifo: set[str] = set()
        for t in request:
            if t["side"] == "sell":
                if t["lot_id"]:
                    named_by_key[self.key_of(t["symbol"])].add(t["lot_id"])
                else:
                    fifo.add(self.key_of(t["symbol"]))
        modes = [[g, sorted(named_by_key[g]), g in fifo] for g in keys_needed]
        named = [t["lot_id"] for t in request if t["side"] == "buy" and t["lot_id"]]
        buys = sum(1 for t in request if t["side"] == "buy")
        k = self.k
        base_keys = [k.meta(hh), k.members(hh), k.pending(hh), k.sales(hh), k.idempotency(hh), k.windows(hh)]
        attempt = 0
        while attempt < MAX_ATTEMPTS:
            attempt += 1
            made = []
            if buys > len(named):  # the ids the engine may make: <account>-<date>-<purchase number>,
                # from the household's last purchase number we saw (a wrong guess costs one more read)
                seq = self._seq_hint.get(hh, 0)
                made = [made_lot_id(account, date, seq + i) for i in range(1, buys + 5)]
            probe = sorted({x for lid in named + made for x in (lid, *dot_prefixes(lid))})
            snap = self._read(
                keys=base_keys + [k.ids(hh), k.made(hh)] + [k.lots(hh, g) for g in keys_needed],
                args=[
                    idempotency_key,
                    date.toordinal(),
                    json.dumps({"keys": modes, "ids": probe, "account": account}, separators=(",", ":")),
                    WINDOW_DAYS,
                ],
            )
            stored = snap[3]
            if stored:
                d, _, result = stored.decode().partition("|")
                if d != digest:
                    raise key_reused(idempotency_key)
                if isinstance(self._commit, ReplicatedScript):  # on a cluster: on a replica too
                    self._commit.confirm(k.meta(hh))
                return self._result(json.loads(result), replayed=True, attempts=attempt)
            ids = {x: v.decode() for x, v in zip(probe, snap[4]) if v is not None}
            while True:  # plan; when it made ids not looked up yet, look them up and plan again
                house, version = self._household(hh, snap)
                if expect_version is not None and version != expect_version:
                    raise CommitRejected(
                        "CHANGED", f"household {hh!r} changed since version {expect_version} (now {version})"
                    )
                house.ids = dict(ids)
                acct_type = house.accounts.get(account)
                if acct_type is None:
                    raise UnknownAccount(account)
                self._seq_hint[hh] = house.seq
                planned = plan_commit(house, account, acct_type.account_type, date, request, allow_wash)
                unseen = sorted({y for x, _ in planned["writes"]["ids"] for y in (x, *dot_prefixes(x))} - set(probe))
                if not unseen:
                    break
                # the plan took them for free; if they are, it stands (a registry that moved since
                # the snapshot moved the household's version too: commit.lua answers STALE)
                probe += unseen
                found = self.used_ids(hh, unseen)
                if not found:
                    break
                ids.update(found)
            reply = self._commit(
                keys=[
                    k.meta(hh),
                    k.account(hh, account),
                    k.windows(hh),
                    k.journal(hh),
                    k.idempotency(hh),
                    k.sales(hh),
                    k.pending(hh),
                    k.groups(hh),
                    k.ids(hh),
                    k.made(hh),
                ]
                + [k.lots(hh, g) for g in keys_needed],
                args=[
                    idempotency_key,
                    digest,
                    version,
                    date.toordinal(),
                    account,
                    int(allow_wash),
                    json.dumps(planned["checks"]),
                    json.dumps(planned["writes"]),
                    json.dumps({"trades": request, "allow_wash": allow_wash}),
                    json.dumps({**planned["result"], "meta": dict(meta or {})}),
                    date.isoformat(),
                    planned["cash_delta"],
                    int(check_cash),
                    WINDOW_DAYS,
                    date.year,
                    planned["realized"]["short"],
                    planned["realized"]["long"],
                ],
            )
            status = reply[0].decode()
            if status == "OK":
                self._seq_hint[hh] = house.seq
            if status in ("OK", "REPLAY"):
                return self._result(json.loads(reply[1]), replayed=status == "REPLAY", attempts=attempt)
            code, message = reply[1].decode(), reply[2].decode()
            if code == "STALE":
                time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                continue
            if code == "UNKNOWN_ACCOUNT":
                raise UnknownAccount(account)
            raise CommitRejected(code, message)
        raise CommitRejected("BUSY", f"household {hh!r} kept changing; gave up after {MAX_ATTEMPTS} attempts")

    def _household(self, hh: str, snap: list) -> tuple[Household, int]:
        meta = {snap[0][i].decode(): snap[0][i + 1].decode() for i in range(0, len(snap[0]), 2)}
        house = Household(hh, self.identical)
        for i in range(0, len(snap[1]), 2):
            a = snap[1][i].decode()
            house.accounts[a] = Account(a, hh, snap[1][i + 1].decode())
        house.pending = sorted(
            (decode_sale(x.decode()) for x in snap[2] if x), key=lambda s: int(s.sale_id.rsplit(":", 1)[1])
        )
        for h in snap[5:]:  # only what read.lua sent (see commit)
            for j in range(0, len(h), 2):
                house.load(decode_lot(h[j].decode(), h[j + 1].decode()))
        last = int(meta.get("last_date", 0))
        house.last_date = dt.date.fromordinal(last) if last else None
        house.seq = int(meta.get("seq", 0))
        house.sale_seq = int(meta.get("sale_seq", 0))
        return house, int(meta.get("version", 0))

    def _result(self, d: dict, replayed: bool, attempts: int) -> CommitResult:
        return CommitResult(
            d["account"],
            dt.date.fromisoformat(d["date"]),
            replayed,
            d["sales"],
            d["new_lots"],
            attempts,
            d.get("trades", []),
            d.get("meta", {}),
        )

    def committed(self, account: str, idempotency_key: str) -> CommitResult | None:
        """The stored result of a commit made with this key, or None."""
        hh = self.household_of(account)
        stored = self.r.hget(self.k.idempotency(hh), idempotency_key)
        if stored is None:
            return None
        if isinstance(self._commit, ReplicatedScript):  # on a cluster: on a replica too
            self._commit.confirm(self.k.meta(hh))
        return self._result(json.loads(stored.decode().partition("|")[2]), replayed=True, attempts=0)


__all__ = ["LedgerStore"]
