"""Cash flows (a mixin of ``LedgerStore``): deposits and withdrawals recorded for a date and
booked on that night, before the account is solved (``lua/cashflow.lua``).

A flow waits in its account's hash until the nightly of its date (or a later one) moves it into
cash, journaled; a deposit is then invested by the night's solve, a withdrawal raised by it (cash
may stand below zero until the solve's sells). Recording is idempotent by flow id; so is booking
(a night's flows leave the pending set as they are booked).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING

from .errors import CommitRejected, LedgerInputError, UnknownAccount
from .keys import Keys

if TYPE_CHECKING:  # the memory ledger imports this module's checks without Redis
    import redis
    from redis.commands.core import Script

MAX_FLOW_CENTS = 10**15


def flow_id(account: str, date: dt.date, cents: int, reason: str) -> str:
    """The default id of a flow: the same request twice is one flow."""
    return hashlib.sha256(f"{account}|{date.isoformat()}|{cents}|{reason}".encode()).hexdigest()[:16]


def check_flow(cents: object, reason: str, where: str) -> int:
    if not isinstance(cents, int) or isinstance(cents, bool) or cents == 0 or abs(cents) >= MAX_FLOW_CENTS:
        raise LedgerInputError("amount", f"{where}amount must be a non-zero number of cents under 10^15, got {cents!r}")
    if "|" in reason or "\n" in reason or len(reason) > 200:
        raise LedgerInputError("reason", f"{where}reason must be one line of at most 200 characters without '|'")
    return cents


class CashFlows:
    """``LedgerStore``'s cash flows, on its client, key names and ``lua/cashflow.lua``."""

    r: redis.Redis
    k: Keys
    _cashflow: Script

    def add_cash_flow(
        self, account: str, cents: int, date: dt.date, reason: str, actor: str, at: str, flow: str | None = None
    ) -> bool:
        """Record a flow of ``cents`` (negative: a withdrawal) for the night of ``date``; False
        when this flow id was recorded before (a replay)."""
        check_flow(cents, reason, f"account {account}: ")
        hh = self.household_of(account)
        flow = flow or flow_id(account, date, cents, reason)
        entry = {"cash_flow": {"id": flow, "date": date.isoformat(), "cents": cents, "reason": reason}}
        entry["cash_flow"].update(actor=actor, at=at)
        reply = self._cashflow(
            keys=[self.k.account(hh, account), self.k.meta(hh), self.k.journal(hh)],
            args=[
                "add",
                account,
                flow,
                date.toordinal(),
                cents,
                f"{date.toordinal()}|{cents}|{reason}",
                json.dumps(entry, separators=(",", ":")),
            ],
        )
        if reply[0] == b"ERR":
            code, message = reply[1].decode(), reply[2].decode()
            if code == "UNKNOWN_ACCOUNT":
                raise UnknownAccount(account)
            raise CommitRejected(code, message)
        if reply[0] == b"REPLAY":
            return False
        detail = f"{'deposit' if cents > 0 else 'withdrawal'} ${abs(cents) / 100:,.2f} on {date}" + (
            f": {reason}" if reason else ""
        )
        self.r.xadd(
            self.k.events(), {"time": at, "account": account, "kind": "cash_flow", "actor": actor, "detail": detail}
        )
        return True

    def apply_cash_flows(self, account: str, date: dt.date) -> int:
        """Book every flow of ``account`` dated on or before ``date`` into its cash; returns the
        cents booked for this night (the same again on a re-run of the night)."""
        hh = self.household_of(account)
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        reply = self._cashflow(
            keys=[self.k.account(hh, account), self.k.meta(hh), self.k.journal(hh)],
            args=["apply", account, date.toordinal(), date.isoformat(), at],
        )
        if reply[0] == b"ERR":
            raise UnknownAccount(account)
        return int(reply[1])

    def pending_cash_flows(self, account: str) -> list[tuple[dt.date, int, str]]:
        """Flows recorded and not yet booked: (date, cents, reason), in date order."""
        hh = self.household_of(account)
        out = []
        for field, value in self.r.hgetall(self.k.account(hh, account)).items():
            if field.startswith(b"flow:"):
                ordinal, cents, reason = value.decode().split("|", 2)
                out.append((dt.date.fromordinal(int(ordinal)), int(cents), reason))
        return sorted(out)
