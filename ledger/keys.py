"""Redis key builders, the id alphabet and lot ids (free, made by the ledger, in piece order).

Every key of a household carries the hash tag ``{hh:<id>}`` so one Lua script can check and write
a whole household atomically, also on Redis Cluster. Ids become parts of key names, hash fields
and ``|``-separated lot encodings, so every id is checked against one alphabet before it reaches
Redis: letters, digits and ``. _ - /`` (lot ids also ``:``, symbols also ``^``), starting with a
letter or digit, 64 characters at most (symbols 24). No ``{ } : | *``, spaces or control characters, so no id can
forge another household's hash tag, another key, a lot field or a line of output.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Set
from functools import lru_cache

from .errors import LedgerInputError

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}"
# a hash field, never in a key name (":" is fine); longer, as the ledger's own ids and pieces are
LOT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}"
SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/^-]{0,23}"
_ID, _LOT_ID, _SYMBOL = (re.compile(x) for x in (ID_PATTERN, LOT_ID_PATTERN, SYMBOL_PATTERN))
ID_RULE = "letters, digits and . _ - / (starting with a letter or digit, at most 64 characters)"
LOT_ID_RULE = "letters, digits and . _ - / : (starting with a letter or digit, at most 200 characters)"
SYMBOL_RULE = "letters, digits and . _ - / ^ (starting with a letter or digit, at most 24 characters)"


def is_id(value: object) -> bool:
    return isinstance(value, str) and _matches(_ID, value)


def is_symbol(value: object) -> bool:
    return isinstance(value, str) and _matches(_SYMBOL, value)


@lru_cache(maxsize=1 << 16)  # the same accounts and symbols come back on every trade
def _matches(pattern: re.Pattern, value: str) -> bool:
    return pattern.fullmatch(value) is not None


def check_id(field: str, value: object, where: str = "") -> str:
    """``value`` if it is a valid account, household or lot id; else ``LedgerInputError`` naming ``field``."""
    if not is_id(value):
        raise LedgerInputError(field, f"{where}{field} {value!r} is not a valid id: use {ID_RULE}")
    return value  # type: ignore[return-value]


def is_lot_id(value: object) -> bool:
    return isinstance(value, str) and _LOT_ID.fullmatch(value) is not None


def check_lot_id(value: object, where: str = "") -> str:
    if not is_lot_id(value):
        raise LedgerInputError("lot_id", f"{where}lot_id {value!r} is not a valid lot id: use {LOT_ID_RULE}")
    return value


def check_symbol(value: object, where: str = "", field: str = "symbol") -> str:
    if not is_symbol(value):
        raise LedgerInputError(field, f"{where}{field} {value!r} is not a valid symbol: use {SYMBOL_RULE}")
    return value  # type: ignore[return-value]


def id_free(used: Mapping[str, str], lot_id: str, freed: Set[str] = frozenset()) -> bool:
    """May a new purchase be called ``lot_id``, given the registry ``used`` (id -> "1", a dot-prefix
    of one -> "p")? Not when the id was ever used (open or closed), nor when it is inside another
    id's namespace (``b.1`` while ``b`` exists: the ledger names ``b``'s pieces so) or holds one
    (``b`` while ``b.1`` exists). ``freed``: ids given back by lots an import removes."""
    if lot_id in used and lot_id not in freed:
        return False
    return all(used.get(p) != "1" or p in freed for p in dot_prefixes(lot_id))


def dot_prefixes(lot_id: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: the ids whose namespace ``lot_id`` would fall in."""
    if "." not in lot_id:
        return []
    parts = lot_id.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def piece_order(lot_id: str) -> tuple:
    """Natural order of lot ids and their pieces: ``b.1`` < ``b.2`` < ``b.2.1`` < ``b.10``."""
    if "." not in lot_id:
        return ()
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in lot_id.split("."))


def made_lot_id(account: str, date: dt.date, seq: int) -> str:
    """The lot id the ledger gives a purchase that names none (no dots: it opens no namespace)."""
    return f"{account.replace('.', '_')}-{date:%Y%m%d}-{seq}"


class Keys:
    def __init__(self, prefix: str = "tv") -> None:
        self.p = prefix

    @staticmethod
    def tag(household: str) -> str:
        check_id("household", household)  # defence in depth: callers validate first
        return "{hh:" + household + "}"

    # global (written on import / account creation only)
    def account_index(self) -> str:
        return f"{self.p}:accounts"  # hash account -> household

    def households(self) -> str:
        return f"{self.p}:households"  # set of household ids

    def events(self) -> str:
        # stream of account events (mandate changes, cash flows) for the morning report: a feed,
        # written after the household's own journal entry (the book of record)
        return f"{self.p}:events"

    def last_night(self) -> str:
        return f"{self.p}:nightly:last"  # the stream id up to which the last nightly reported events

    def year_ends(self) -> str:
        return f"{self.p}:yearend"  # hash tax year -> summary JSON: closed in every household

    def compaction(self) -> str:
        return f"{self.p}:compact:open"  # the compaction under way: its archive file (ledger/compaction.py)

    # per household
    def meta(self, hh: str) -> str:
        # version, last_date, seq, sale_seq, archived_before (compaction); the carry-forward:
        # carry_first, carry:<year>, roll:<year>
        return f"{self.p}:hh:{self.tag(hh)}"

    def account(self, hh: str, account: str) -> str:
        check_id("account", account)
        return f"{self.p}:acct:{self.tag(hh)}:{account}"  # type, rates, cash, settings

    def members(self, hh: str) -> str:
        return f"{self.p}:members:{self.tag(hh)}"  # hash account -> type

    def windows(self, hh: str) -> str:
        return f"{self.p}:win:{self.tag(hh)}"  # hash key -> "last_buy_ordinal|last_loss_ordinal"

    def journal(self, hh: str) -> str:
        return f"{self.p}:journal:{self.tag(hh)}"  # stream of commits

    def idempotency(self, hh: str) -> str:
        return f"{self.p}:idem:{self.tag(hh)}"  # hash key -> "digest|result json"

    def actions(self, hh: str) -> str:
        return f"{self.p}:actions:{self.tag(hh)}"  # hash corporate action id -> "digest|summary json"

    def sales(self, hh: str) -> str:
        return f"{self.p}:sales:{self.tag(hh)}"  # hash sale_id -> sale record (ledger/codec.py)

    def pending(self, hh: str) -> str:
        return f"{self.p}:pending:{self.tag(hh)}"  # set of sale ids still waiting for replacements

    def groups(self, hh: str) -> str:
        return f"{self.p}:groups:{self.tag(hh)}"  # set of identity keys with lots

    def ids(self, hh: str) -> str:
        # every lot id ever given to a purchase of the household -> "1"; "p" marks a dot-prefix of one
        # (the ids the ledger made are in ``made``)
        return f"{self.p}:ids:{self.tag(hh)}"

    def made(self, hh: str) -> str:
        # the lot ids the ledger made, 5 bytes per purchase number (lua/_ids.lua)
        return f"{self.p}:made:{self.tag(hh)}"

    def lots(self, hh: str, key: str) -> str:
        return f"{self.p}:lots:{self.tag(hh)}:{key}"  # hash lot_id -> encoded lot
