"""Redis key builders. Every key of a household carries the hash tag ``{hh:<id>}`` so one Lua
script can check and write a whole household atomically, also on Redis Cluster."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "tv") -> None:
        self.p = prefix

    @staticmethod
    def tag(household: str) -> str:
        return "{hh:" + household + "}"

    # global (written on import / account creation only)
    def account_index(self) -> str:
        return f"{self.p}:accounts"  # hash account -> household

    def households(self) -> str:
        return f"{self.p}:households"  # set of household ids

    # per household
    def meta(self, hh: str) -> str:
        return f"{self.p}:hh:{self.tag(hh)}"  # version, last_date, seq, sale_seq

    def account(self, hh: str, account: str) -> str:
        return f"{self.p}:acct:{self.tag(hh)}:{account}"  # type, rates, cash, settings

    def members(self, hh: str) -> str:
        return f"{self.p}:members:{self.tag(hh)}"  # set of the household's accounts

    def windows(self, hh: str) -> str:
        return f"{self.p}:win:{self.tag(hh)}"  # hash key -> "last_buy_ordinal|last_loss_ordinal"

    def journal(self, hh: str) -> str:
        return f"{self.p}:journal:{self.tag(hh)}"  # stream of commits

    def idempotency(self, hh: str) -> str:
        return f"{self.p}:idem:{self.tag(hh)}"  # hash key -> "digest|result json"

    def sales(self, hh: str) -> str:
        return f"{self.p}:sales:{self.tag(hh)}"  # hash sale_id -> sale json

    def pending(self, hh: str) -> str:
        return f"{self.p}:pending:{self.tag(hh)}"  # set of sale ids still waiting for replacements

    def groups(self, hh: str) -> str:
        return f"{self.p}:groups:{self.tag(hh)}"  # set of identity keys with lots

    def lots(self, hh: str, key: str) -> str:
        return f"{self.p}:lots:{self.tag(hh)}:{key}"  # hash lot_id -> encoded lot
