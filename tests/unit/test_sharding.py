"""Household-pure sharding (pure: no Ray)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cluster.sharding import group_by_household, make_shards


@given(
    st.dictionaries(st.text("abcdef", min_size=1, max_size=6), st.integers(0, 30), min_size=1, max_size=200),
    st.integers(1, 20),
)
def test_shards_are_household_pure_complete_and_balanced(accounts, size):
    homes = {a: f"H{h}" for a, h in accounts.items()}
    shards = make_shards(group_by_household(homes), size)
    seen_accounts = [a for s in shards for _, accts in s.households for a in accts]
    seen_households = [hh for s in shards for hh, _ in s.households]
    assert sorted(seen_accounts) == sorted(homes)  # every account exactly once
    assert len(seen_households) == len(set(seen_households))  # a household never spans two shards
    for s in shards:
        for hh, accts in s.households:
            assert all(homes[a] == hh for a in accts)
    biggest = max(len(v) for v in group_by_household(homes).values())
    assert max(s.accounts for s in shards) <= max(size, biggest) + biggest


def test_sharding_is_deterministic():
    homes = {f"A{i}": f"H{i // 3}" for i in range(50)}
    assert make_shards(group_by_household(homes), 7) == make_shards(group_by_household(homes), 7)
