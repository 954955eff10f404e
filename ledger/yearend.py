"""The year-end roll of a household's loss carry-forward (domain.md §2, §10), and its Redis side
(a mixin of ``LedgerStore``; ``lua/yearend.lua``). The planning is pure: the memory ledger rolls
with the same ``plan_roll``.

For a household and a tax year Y: the recognized short- and long-term net gain of Y over the
household's accounts (each account's ``realized:<Y>:st|lt``, the gain budget's year to date; an
IRA's sales are never recognized, so they add nothing), plus the carry-forward going into Y,
netted by ``taxview.core.tax.net_year``, gives the carry-forward going into Y+1. The carry is the
household's, so it lives in the household's meta hash, one field per year (the roll of a year can
be run again and says what it found):

  carry_first   the household's first rolled year: its carry in is the opening carry (below)
  carry:<Y>     "st|lt", the carry going into Y (cents, each ≤ 0)
  roll:<Y>      the roll of Y as JSON (``Roll``): what went in, what came out

The opening carry is the mandates' ``carry_st``/``carry_lt`` (dollars ≤ 0): the household's loss
carried into its first rolled year, as an operator brings it over (last year's return). It is one
number of the household: state it on one of its accounts, or the same on several (different values
refuse the roll, naming them). It is read when the first year is rolled, and again only when that
year is rolled again (to correct it: change the mandate, roll the first year again).

Rolling Y again recomputes it: the same numbers write nothing (``unchanged``); others (a trade
booked into Y since, a corrected opening carry) restate it, journaled, and roll again the years
already rolled after it (their carry in changed). Years roll in order: Y needs Y−1 rolled
(``GAP``) unless it is the household's first, and a year before the first is refused. With
``start_idle`` off (the nightly's automatic roll) a household never rolled that realized nothing
in Y is skipped, so a new ledger's first January does not spend a year's deduction of a carry the
operator brought over for the year just starting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from taxview.core.mandate import from_json
from taxview.core.tax import ORDINARY_LOSS_CAP_CENTS, net_year

from .errors import CommitRejected, LedgerError, LedgerInputError
from .keys import Keys

if TYPE_CHECKING:  # the memory ledger imports the planning without Redis
    import redis
    from redis.commands.core import Script

MAX_ATTEMPTS = 50
CHANGED = ("rolled", "restated")  # the statuses that wrote


@dataclass(frozen=True, slots=True)
class AccountYear:
    """What a roll reads of one account of the household: its mandate version (the write is
    checked against it), its recognized net gain of the year by term (cents) and the opening
    carry its mandate states (cents ≤ 0; None: not stated)."""

    account: str
    mandate_version: int
    st_cents: int
    lt_cents: int
    carry_st: int | None = None
    carry_lt: int | None = None


@dataclass(frozen=True, slots=True)
class Roll:
    """One household's tax year closed, cents: the year's realized ST/LT over its accounts, the
    carry in (``opening``: the mandates' opening carry), the nets after the offset, the ordinary
    income the net loss offsets (≤ ``cap_cents``) and the carry out, into ``year + 1``."""

    year: int
    st_cents: int
    lt_cents: int
    carry_in_st: int
    carry_in_lt: int
    opening: bool
    net_st: int
    net_lt: int
    deduction_cents: int
    carry_st: int
    carry_lt: int
    cap_cents: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> Roll:
        return cls(**(json.loads(text) if isinstance(text, str) else text))


@dataclass(frozen=True, slots=True)
class YearEnd:
    """What rolling ``year`` did in one household: ``rolled`` (the first time), ``restated`` (the
    numbers changed; ``old`` were they), ``unchanged`` (nothing written) or ``skipped`` (never
    rolled and nothing realized, with ``start_idle`` off: ``roll`` is None)."""

    household: str
    year: int
    status: str
    roll: Roll | None
    old: Roll | None = None


@dataclass(frozen=True, slots=True)
class CarryBook:
    """A household's carry-forward as the ledger keeps it: the first rolled year, the carry going
    into each year (st, lt cents), and each year's roll."""

    first: int | None = None
    carry: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    rolls: Mapping[int, Roll] = field(default_factory=dict)

    def latest(self) -> tuple[int, int, int] | None:
        """(year, st, lt): the carry going into the last year the household rolled into."""
        if not self.carry:
            return None
        year = max(self.carry)
        return (year, *self.carry[year])


def book_of(fields: Mapping[str, str]) -> CarryBook:
    """The carry fields of a household's meta hash (the other fields are ignored)."""
    carry, rolls = {}, {}
    for name, value in fields.items():
        if name.startswith("carry:"):
            st, lt = value.split("|")
            carry[int(name[6:])] = (int(st), int(lt))
        elif name.startswith("roll:"):
            rolls[int(name[5:])] = Roll.from_json(value)
    first = int(fields["carry_first"]) if "carry_first" in fields else None
    return CarryBook(first, dict(sorted(carry.items())), dict(sorted(rolls.items())))


def mandate_carry(mandate: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The opening carry an account's mandate states, cents (None: not stated)."""
    out = []
    for key in ("carry_st", "carry_lt"):
        value = mandate.get(key)
        out.append(None if value is None else int(Decimal(value) * 100))
    return out[0], out[1]


def opening_carry(household: str, accounts: Iterable[AccountYear]) -> tuple[int, int]:
    """The household's opening carry (st, lt cents) from its accounts' mandates: one number each,
    stated on one account or the same on several; ``LedgerInputError`` when they differ."""
    out = []
    for key in ("carry_st", "carry_lt"):
        stated = {a.account: getattr(a, key) for a in accounts if getattr(a, key) is not None}
        if len(set(stated.values())) > 1:
            said = ", ".join(f"{a} {Decimal(cents).scaleb(-2)}" for a, cents in sorted(stated.items()))
            raise LedgerInputError(
                key,
                f"household {household}: its accounts state different {key} ({said}): it is one number "
                "of the household; state it on one account",
            )
        out.append(next(iter(stated.values()), 0))
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class Planned:
    """A roll planned on what was read: the result, the meta fields to write (none: nothing to
    do), the fields the plan read (field -> value, "" when absent: the write checks them), the
    journal entry, and whether ``year + 1`` is rolled already (then it is rolled again)."""

    result: YearEnd
    writes: dict[str, str]
    expect: dict[str, str]
    entry: dict[str, Any] | None
    next_rolled: bool


def plan_roll(
    household: str,
    year: int,
    fields: Mapping[str, str],
    accounts: Iterable[AccountYear],
    actor: str,
    at: str,
    start_idle: bool = True,
    cap_cents: int | None = None,
) -> Planned:
    """The roll of ``year`` for ``household`` on its meta ``fields`` and its ``accounts`` as read
    (pure). ``cap_cents``: the ordinary income a net loss offsets (None: the year's stored roll's,
    else $3,000). Refuses (``CommitRejected``) a year before the household's first (``BEFORE_FIRST``)
    and one whose previous year is not rolled (``GAP``)."""
    accounts = list(accounts)
    if not accounts:
        raise LedgerInputError("household", f"unknown household {household!r}")
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 9998:
        raise LedgerInputError("year", f"a tax year is a number like 2025, got {year!r}")
    expect = {name: fields.get(name, "") for name in ("carry_first", f"roll:{year}", f"carry:{year}")}
    old = Roll.from_json(fields[f"roll:{year}"]) if f"roll:{year}" in fields else None
    first = int(fields["carry_first"]) if "carry_first" in fields else None
    st = sum(a.st_cents for a in accounts)
    lt = sum(a.lt_cents for a in accounts)
    if first is None and not start_idle and st == 0 and lt == 0:
        return Planned(YearEnd(household, year, "skipped", None), {}, expect, None, False)
    if first is not None and year < first:
        raise CommitRejected(
            "BEFORE_FIRST", f"household {household}: its carry-forward starts in {first} (its opening carry went there)"
        )
    opening = first is None or year == first
    if opening:
        carry_in = opening_carry(household, accounts)
    elif f"carry:{year}" in fields:
        st_in, lt_in = fields[f"carry:{year}"].split("|")
        carry_in = (int(st_in), int(lt_in))
    else:
        raise CommitRejected(
            "GAP", f"household {household}: roll {year - 1} first (taxview ledger close-year {year - 1})"
        )
    cap = cap_cents if cap_cents is not None else old.cap_cents if old is not None else ORDINARY_LOSS_CAP_CENTS
    n = net_year(st, lt, carry_in[0], carry_in[1], cap)
    roll = Roll(
        year=year,
        st_cents=st,
        lt_cents=lt,
        carry_in_st=carry_in[0],
        carry_in_lt=carry_in[1],
        opening=opening,
        net_st=n.st_cents,
        net_lt=n.lt_cents,
        deduction_cents=n.deduction_cents,
        carry_st=n.carry_st_cents,
        carry_lt=n.carry_lt_cents,
        cap_cents=cap,
    )
    next_rolled = f"roll:{year + 1}" in fields
    if roll == old:
        return Planned(YearEnd(household, year, "unchanged", roll), {}, expect, None, False)
    status = "rolled" if old is None else "restated"
    writes = {
        "carry_first": str(year if first is None else first),
        f"carry:{year}": f"{carry_in[0]}|{carry_in[1]}",
        f"roll:{year}": roll.to_json(),
        f"carry:{year + 1}": f"{roll.carry_st}|{roll.carry_lt}",
    }
    entry = {
        "year_end": {
            "year": year,
            "at": at,
            "actor": actor,
            "old": None if old is None else asdict(old),
            "new": asdict(roll),
        }
    }
    return Planned(YearEnd(household, year, status, roll, old), writes, expect, entry, next_rolled)


def roll_chain(
    close_one: Callable[[int, bool, int | None], Planned], year: int, start_idle: bool, cap_cents: int | None
) -> list[YearEnd]:
    """Roll ``year``, then again every year already rolled after it while the carry changes."""
    planned = close_one(year, start_idle, cap_cents)
    out = [planned.result]
    while planned.result.status in CHANGED and planned.next_rolled:
        planned = close_one(planned.result.year + 1, True, None)
        out.append(planned.result)
    return out


@dataclass
class CloseReport:
    """Closing one tax year in every household: each household's ``YearEnd`` (and those of later
    years rolled again), the households that failed and why."""

    year: int
    results: list[YearEnd] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Households by what rolling ``year`` did."""
        out = {s: 0 for s in (*CHANGED, "unchanged", "skipped")}
        for r in self.results:
            if r.year == self.year:
                out[r.status] += 1
        return out | {"failed": len(self.failed)}

    def summary(self) -> str:
        c = self.counts()
        return (
            f"tax year {self.year} closed: {c['rolled']} rolled, {c['restated']} restated, {c['unchanged']} "
            f"unchanged, {c['skipped']} skipped (never rolled, nothing realized), {c['failed']} failed"
        )


def close_years(ledger: Any, year: int, actor: str, at: str, start_idle: bool = True) -> CloseReport:
    """Roll ``year`` in every household of ``ledger`` (either adapter); a household that fails is
    reported and the others go on. When none failed, the year is marked closed for the firm
    (``year_closed``: the nightly then leaves it alone)."""
    report = CloseReport(year)
    for hh in sorted(set(ledger.accounts().values())):
        try:
            report.results.extend(ledger.close_year(hh, year, actor, at, start_idle=start_idle))
        except LedgerError as exc:
            report.failed[hh] = str(exc)
    if not report.failed:
        ledger.mark_year_closed(year, {"at": at, "actor": actor, **report.counts()})
    return report


def account_year(account: str, fields: Mapping[str, str], year: int) -> AccountYear:
    """An account hash's fields (decoded) as a roll reads them."""
    st, lt = mandate_carry(from_json(fields.get("mandate")))
    return AccountYear(
        account,
        int(fields.get("mandate_version", 0)),
        int(fields.get(f"realized:{year}:st", 0)),
        int(fields.get(f"realized:{year}:lt", 0)),
        st,
        lt,
    )


class YearEnds:
    """``LedgerStore``'s year-end roll, on its client, key names and ``lua/yearend.lua``."""

    r: redis.Redis
    k: Keys
    _yearend: Script

    def close_year(
        self, household: str, year: int, actor: str, at: str, start_idle: bool = True, cap_cents: int | None = None
    ) -> list[YearEnd]:
        """Roll ``year`` for ``household`` (see the module): its ``YearEnd``, then those of the
        later years rolled again because their carry in changed. Atomic per year, journaled."""
        return roll_chain(
            lambda y, idle, cap: self._close_one(household, y, actor, at, idle, cap), year, start_idle, cap_cents
        )

    def _close_one(
        self, household: str, year: int, actor: str, at: str, start_idle: bool, cap_cents: int | None
    ) -> Planned:
        k = self.k
        for _ in range(MAX_ATTEMPTS):
            members = sorted(a.decode() for a in self.r.hkeys(k.members(household)))
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(k.meta(household))
            for a in members:
                pipe.hgetall(k.account(household, a))
            replies = [{f.decode(): v.decode() for f, v in h.items()} for h in pipe.execute()]
            accounts = [account_year(a, h, year) for a, h in zip(members, replies[1:])]
            planned = plan_roll(household, year, replies[0], accounts, actor, at, start_idle, cap_cents)
            if not planned.writes:
                return planned
            reply = self._yearend(
                keys=[k.meta(household), k.members(household), k.journal(household)]
                + [k.account(household, a) for a in members],
                args=[
                    year,
                    json.dumps(planned.expect),
                    json.dumps(planned.writes),
                    json.dumps(
                        [[a.account, str(a.mandate_version), str(a.st_cents), str(a.lt_cents)] for a in accounts]
                    ),
                    json.dumps(planned.entry, separators=(",", ":")),
                ],
            )
            if reply[0] == b"OK":
                return planned
            code, message = reply[1].decode(), reply[2].decode()
            if code != "STALE":
                raise CommitRejected(code, message)
        raise CommitRejected("BUSY", f"household {household!r} kept changing while its year {year} was rolled")

    def carry_book(self, household: str) -> CarryBook:
        return book_of({f.decode(): v.decode() for f, v in self.r.hgetall(self.k.meta(household)).items()})

    def year_closed(self, year: int) -> bool:
        """Whether ``year`` was closed in every household (``close_years`` without a failure)."""
        return bool(self.r.hexists(self.k.year_ends(), str(year)))

    def mark_year_closed(self, year: int, summary: Mapping[str, Any]) -> None:
        self.r.hset(self.k.year_ends(), str(year), json.dumps(dict(summary), sort_keys=True))


__all__ = [
    "AccountYear",
    "CarryBook",
    "CloseReport",
    "Roll",
    "YearEnd",
    "YearEnds",
    "book_of",
    "close_years",
    "opening_carry",
    "plan_roll",
]
