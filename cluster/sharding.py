"""Household-pure sharding (pure: no Ray, no Redis).

A household never spans two shards: its accounts are rebalanced one after another, so each sees
the wash-sale restrictions the previous one created. Shards are balanced by account count.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: int
    households: tuple[tuple[str, tuple[str, ...]], ...]  # (household, its accounts in order)

    @property
    def accounts(self) -> int:
        return sum(len(a) for _, a in self.households)


def group_by_household(account_household: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """household -> its accounts, sorted (taxable accounts before IRAs is up to the caller)."""
    out: dict[str, list[str]] = {}
    for account, household in account_household.items():
        out.setdefault(household, []).append(account)
    return {hh: tuple(sorted(accts)) for hh, accts in sorted(out.items())}


def make_shards(households: Mapping[str, tuple[str, ...]], target_accounts: int = 16) -> list[Shard]:
    """Cut households into shards of about ``target_accounts`` accounts (largest households first,
    each into the currently smallest shard), deterministic for the same input."""
    if target_accounts < 1:
        raise ValueError("target_accounts must be >= 1")
    total = sum(len(a) for a in households.values())
    n = max(1, -(-total // target_accounts))
    heap = [(0, i) for i in range(n)]
    bins: list[list[tuple[str, tuple[str, ...]]]] = [[] for _ in range(n)]
    for hh, accts in sorted(households.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        size, i = heapq.heappop(heap)
        bins[i].append((hh, accts))
        heapq.heappush(heap, (size + len(accts), i))
    return [Shard(i, tuple(sorted(b))) for i, b in enumerate(bins) if b]
