"""The journal read back (a mixin of ``LedgerStore``): a household's entries, the ledger's state
for comparisons and export, and a ledger rebuilt by replaying every journal in order.

Each household's journal is a Redis Stream: account records (``add_accounts``), mandate changes
(``lua/mandate.lua``), imports (``lua/import.lua``), corporate actions (``lua/corporate.lua``),
year-end rolls (``lua/yearend.lua``) and commits (``lua/commit.lua``) append to it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import redis

from taxview.core.mandate import check

from .api import AccountInfo
from .codec import encode_lot, encode_sale, lot_field
from .corporate import action_from_json
from .errors import LedgerError
from .keys import Keys
from .plan import trades_from_wire
from .yearend import Roll

if TYPE_CHECKING:
    from .store import LedgerStore


class Journal:
    """``LedgerStore``'s journal reads and rebuild, on its client and key names."""

    r: redis.Redis
    k: Keys

    def journal(self, household: str) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in self.r.xrange(self.k.journal(household)):
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.append({"id": entry_id.decode(), **f, "entry": json.loads(f["entry"])})
        return out

    def state(self) -> dict[str, Any]:
        """Everything the ledger holds about lots and sales, for comparisons and export."""
        out: dict[str, Any] = {}
        for hh in self.households():
            lots = sorted((x.lot_id, encode_lot(x)) for held in self.household_lots(hh).values() for x in held)
            sales = [encode_sale(s) for s in self.sales(hh)]
            windows = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.windows(hh)).items()}
            pending = sorted(x.decode() for x in self.r.smembers(self.k.pending(hh)))
            meta = {k.decode(): v.decode() for k, v in self.r.hgetall(self.k.meta(hh)).items()}
            carry = {k: v for k, v in sorted(meta.items()) if k.startswith(("carry", "roll:"))}
            out[hh] = {"lots": lots, "sales": sales, "windows": windows, "pending": pending, "carry": carry}
        return out

    def rebuild_from_journal(self, target: LedgerStore) -> int:
        """Replay every household's journal into ``target`` (an empty ledger), in order: account
        records (created or restated), mandates, imports, corporate actions, year-end rolls,
        commits. Returns commits replayed."""
        homes = self.accounts()
        journals = {hh: self.journal(hh) for hh in sorted(set(homes.values()))}
        journaled = {e["account"] for entries in journals.values() for e in entries if "account" in e["entry"]}
        legacy = []  # accounts created before records were journaled: as they are now, opening cash
        for a in sorted(set(homes) - journaled):
            info = self.account(a)
            opening = int(self.r.hget(self.k.account(info.household, a), "opening_cash_cents") or 0)
            legacy.append(AccountInfo(a, info.household, info.account_type, info.st_rate, info.lt_rate, opening))
        target.add_accounts(legacy)
        n = 0
        for hh, entries in journals.items():
            for e in entries:
                entry = e["entry"]
                if "account" in entry:
                    r = entry["account"]
                    mandate = check(r.get("mandate") or {}, f"journal of {hh}")
                    info = AccountInfo(
                        e["account"], hh, r["type"], r["st_rate"], r["lt_rate"], r["cash_cents"], mandate
                    )
                    target.add_accounts([info], replace=[e["account"]])
                elif "mandate" in entry:  # restated as it became: every key, the dropped ones back to default
                    m = entry["mandate"]
                    restate = {k: None for k in m["old"]} | {"account_type": None, "st_rate": None, "lt_rate": None}
                    restate.update(check(m["new"], f"journal of {hh}"))
                    target.set_mandate(e["account"], restate, m["actor"], m["at"])
                elif "cash_flow" in entry:
                    f = entry["cash_flow"]
                    if "applied" in f:  # booked on its night
                        target.apply_cash_flows(e["account"], dt.date.fromisoformat(f["date"]))
                    else:
                        day = dt.date.fromisoformat(f["date"])
                        target.add_cash_flow(e["account"], f["cents"], day, f["reason"], f["actor"], f["at"], f["id"])
                elif "import" in entry:  # restored verbatim: same purchase numbers, same pieces
                    target.write_import(
                        hh,
                        [
                            (self.key_of(lot_field(enc, "symbol")), lid, enc, None, None)
                            for lid, enc in entry["import"] or []
                        ],
                        remove=[(key, lid) for key, lid in entry.get("removed") or []],
                        replace=list(entry.get("replace") or []),
                    )
                elif "corporate" in entry:  # the same action in this household, planned on its state
                    target.apply_action_to(hh, action_from_json(entry["corporate"]))
                elif "year_end" in entry:  # rolled again on the state replayed so far: the same numbers
                    y = entry["year_end"]
                    new = Roll.from_json(y["new"])
                    done = target.close_year(hh, y["year"], y["actor"], y["at"], cap_cents=new.cap_cents)[0]
                    if done.roll != new:
                        raise LedgerError(f"journal of {hh}: the roll of {y['year']} replays as {done.roll}, not {new}")
                else:
                    target.commit(
                        e["account"],
                        dt.date.fromisoformat(e["date"]),
                        trades_from_wire(entry["trades"]),
                        e["key"],
                        allow_wash=entry["allow_wash"],
                    )
                    n += 1
        return n


__all__ = ["Journal"]
