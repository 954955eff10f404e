"""Redis Cluster without a cluster: every key of a household hashes to one slot (so each script's
keys do), and a ``redis+cluster://`` URL names a cluster."""

from __future__ import annotations

import pytest
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, ResponseError, TryAgainError

from ledger.connection import cluster_scheme, redact, retrying
from ledger.keys import Keys


def household_keys(k: Keys, hh: str) -> list[str]:
    return [
        k.meta(hh),
        k.account(hh, "A-1"),
        k.members(hh),
        k.windows(hh),
        k.journal(hh),
        k.idempotency(hh),
        k.actions(hh),
        k.sales(hh),
        k.pending(hh),
        k.groups(hh),
        k.ids(hh),
        k.lots(hh, "XYZ"),
        k.lots(hh, "BRK.B"),
    ]


def test_every_key_of_a_household_is_in_the_slot_of_its_tag():
    k = Keys("tv")
    for hh in ("H1", "hh-000017", "a.b/c_d"):
        slots = {key_slot(x.encode()) for x in household_keys(k, hh)}
        assert slots == {key_slot(("hh:" + hh).encode())}
    # households spread: 1,000 of them land on hundreds of slots, not one
    assert len({key_slot(k.meta(f"H{i}").encode()) for i in range(1000)}) > 900


def test_a_cluster_url_is_named_by_its_scheme_and_read_as_a_plain_one():
    assert cluster_scheme("redis+cluster://:pw@10.0.0.5:7000/0") == (True, "redis://:pw@10.0.0.5:7000/0")
    assert cluster_scheme("rediss+cluster://h:7000") == (True, "rediss://h:7000")
    assert cluster_scheme("redis://h:6379/0") == (False, "redis://h:6379/0")
    assert redact("redis+cluster://:s3cret@h:7000/0") == "redis+cluster://:***@h:7000/0"


def test_a_failover_in_progress_is_retried_and_other_errors_are_not():
    answers = [ClusterDownError("CLUSTERDOWN The cluster is down"), TryAgainError("TRYAGAIN"), "ok"]

    def call():
        x = answers.pop(0)
        if isinstance(x, Exception):
            raise x
        return x

    assert retrying(call, bound_s=5) == "ok" and not answers
    with pytest.raises(ResponseError):
        retrying(lambda: (_ for _ in ()).throw(ResponseError("WRONGTYPE")), bound_s=5)
