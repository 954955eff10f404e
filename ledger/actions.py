"""Corporate actions in the Redis ledger (a mixin of ``LedgerStore``): splits and symbol changes,
household by household, each atomically by ``lua/corporate.lua``, journaled, idempotent by id.

Every household's snapshot is read first (``lua/corporate_read.lua``, pipelined) and the action
checked against all of them (``ledger.corporate.prepare``): a refusal writes nothing anywhere.
Then each household it changes is written by one script that re-checks the id, the household's
version (a trade since the read: read again, plan again) and the date. A household whose write
fails is reported (``ActionReport.failed``) and the others go on; running the action again
finishes what is missing (the households that have it replay).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from .codec import decode_lot, decode_sale, encode_lot, encode_sale
from .corporate import (
    Action,
    ActionReport,
    HouseholdPlan,
    HouseholdState,
    check_identity,
    plan_household,
    prepare,
)
from .errors import CommitRejected, LedgerError
from .keys import Keys

MAX_ATTEMPTS = 50
CHUNK = 500  # households per pipelined read


class CorporateActions:
    """``LedgerStore``'s corporate actions, on its client, key names and scripts."""

    r: redis.Redis
    k: Keys
    identical: Mapping[str, str]
    _corporate: Script
    _corporate_read: Script

    def apply_action(self, action: Action) -> ActionReport:
        """Check the action against every household (``LedgerInputError``: nothing written), then
        write it household by household; see ``ledger.corporate`` for the rules."""
        check_identity(action, self.identical)
        households = self.households()
        states: dict[str, tuple[HouseholdState, int]] = {}
        for i in range(0, len(households), CHUNK):
            for chunk, pipe in self._pipelines(households[i : i + CHUNK]):
                for hh in chunk:
                    self._read_state(action, hh, pipe)
                for hh, snap in zip(chunk, pipe.execute()):
                    states[hh] = self._state(action, hh, snap)
        plans, replayed = prepare(action, [st for st, _ in states.values()])
        report = ActionReport(action, replayed=replayed)
        for plan in plans:
            try:
                done = self._write(action, plan, states[plan.household][1])
            except LedgerError as exc:
                report.failed[plan.household] = str(exc)
                continue
            if done is None:
                report.replayed.append(plan.household)
            else:
                report.add(done)
        return report

    def apply_action_to(self, household: str, action: Action) -> HouseholdPlan | None:
        """The action in one household (a journal replay): its plan, or None when the household
        had it already. Raises ``LedgerInputError`` or ``CommitRejected``; nothing written then."""
        check_identity(action, self.identical)
        st, version = self._state(action, household, self._read_state(action, household))
        if st.recorded is not None:
            prepare(action, [st])  # the same id for another action is refused
            return None
        return self._write(action, plan_household(action, st), version)

    def _pipelines(self, households: list[str]) -> list[tuple[list[str], redis.client.Pipeline]]:
        """Pipelines for reading ``households``: one on one server; on a Redis Cluster, whose
        pipelines refuse scripts, one per master on its own connection, with its households."""
        if not isinstance(self.r, RedisCluster):
            return [(households, self.r.pipeline(transaction=False))]
        by_node: dict[str, tuple[list[str], redis.client.Pipeline]] = {}
        for hh in households:
            node = self.r.get_node_from_key(self.k.meta(hh))
            if node.name not in by_node:
                by_node[node.name] = ([], self.r.get_redis_connection(node).pipeline(transaction=False))
            by_node[node.name][0].append(hh)
        return list(by_node.values())

    # --- one household ----------------------------------------------------------------------

    def _lot_keys(self, action: Action) -> list[str]:
        """The identity keys of the lot hashes the action reads and writes."""
        return [self.identical.get(s, s) for s in action.keys]

    def _key_names(self, action: Action, hh: str) -> list[str]:
        k = self.k
        return [k.meta(hh), k.actions(hh), k.pending(hh), k.sales(hh), k.windows(hh)] + [
            k.lots(hh, key) for key in self._lot_keys(action)
        ]

    def _read_state(self, action: Action, hh: str, client=None):
        keys, args = self._key_names(action, hh), [action.action_id, *self._lot_keys(action)]
        return self._corporate_read(keys=keys, args=args, client=client)

    def _state(self, action: Action, hh: str, snap: list) -> tuple[HouseholdState, int]:
        meta = {snap[0][i].decode(): snap[0][i + 1].decode() for i in range(0, len(snap[0]), 2)}
        recorded = snap[1].decode().partition("|")[0] if snap[1] else None
        pending = [decode_sale(x.decode()) for x in snap[2] if x]
        windows = {}
        for key, value in zip(self._lot_keys(action), snap[3]):
            if value:
                b, _, l = value.decode().partition("|")
                windows[key] = (int(b or 0), int(l or 0))
        lots = [decode_lot(h[j].decode(), h[j + 1].decode()) for h in snap[4:] for j in range(0, len(h), 2)]
        last = int(meta.get("last_date", 0))
        st = HouseholdState(hh, lots, pending, windows, dt.date.fromordinal(last) if last else None, recorded)
        return st, int(meta.get("version", 0))

    def _write(self, action: Action, plan: HouseholdPlan, version: int) -> HouseholdPlan | None:
        """One household's plan through ``lua/corporate.lua``; on STALE read and plan again.
        Returns the plan written, or None when the household had the action already."""
        hh, k = plan.household, self.k
        lot_keys = self._lot_keys(action)
        g = {key: i + 1 for i, key in enumerate(lot_keys)}
        key_of = self.identical.get
        for _ in range(MAX_ATTEMPTS):
            writes = {
                "set": [[g[key_of(x.symbol, x.symbol)], x.lot_id, encode_lot(x)] for x in plan.lots],
                "del": [[g[key_of(action.symbol, action.symbol)], lot_id] for lot_id in plan.moved],
                "sales": [[s.sale_id, encode_sale(s)] for s in plan.sales],
                "groups": [action.new] if action.kind == "rename" and plan.lots else [],
                "win": [[key, f"{b or ''}|{l or ''}"] for key, (b, l) in sorted(plan.windows.items())],
                "win_del": plan.dropped_windows,
            }
            summary = {"lots": len(plan.lots), "sales": len(plan.sales)}
            reply = self._corporate(
                keys=[k.meta(hh), k.actions(hh), k.journal(hh), k.sales(hh), k.windows(hh), k.groups(hh)]
                + [k.lots(hh, key) for key in lot_keys],
                args=[
                    action.action_id,
                    action.digest,
                    version,
                    action.date.toordinal(),
                    action.date.isoformat(),
                    json.dumps(writes, separators=(",", ":")),
                    json.dumps(plan.entry(action), separators=(",", ":")),
                    json.dumps(summary),
                ],
            )
            status = reply[0].decode()
            if status == "OK":
                return plan
            if status == "REPLAY":
                return None
            code, message = reply[1].decode(), reply[2].decode()
            if code != "STALE":
                raise CommitRejected(code, f"household {hh}: {message}")
            st, version = self._state(action, hh, self._read_state(action, hh))
            if st.recorded is not None:
                prepare(action, [st])
                return None
            plan = plan_household(action, st)
        raise CommitRejected("BUSY", f"household {hh!r} kept changing; gave up after {MAX_ATTEMPTS} attempts")


__all__ = ["CorporateActions"]
