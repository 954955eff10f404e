"""Settings are built once at the entry point and passed down: frozen, picklable (they cross to
Ray workers), and the ledger's URL — it carries the password — never shows in a repr."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from cluster.settings import RunSettings
from ledger.connection import LedgerSettings
from solver.types import AccountSettings


def test_the_ledger_url_is_kept_out_of_the_repr():
    s = LedgerSettings("redis://:s3cret@db.internal:6379/0", identical=(("GOOGL", "GOOG"),))
    assert "s3cret" not in repr(s) and "GOOG" in repr(s)


@pytest.mark.parametrize(
    "settings",
    [
        LedgerSettings("redis://:pw@127.0.0.1:1/0", retry_s=5.0),
        RunSettings("2024-03-01", "market", "out", workers=2),
        AccountSettings(te_max=0.01),
    ],
)
def test_settings_are_frozen_and_cross_process_boundaries(settings):
    assert pickle.loads(pickle.dumps(settings)) == settings
    field = dataclasses.fields(settings)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(settings, field, None)


def test_a_run_is_named_by_its_date_unless_given_an_id():
    assert RunSettings("2024-03-01", "m", "o").name == "nightly-2024-03-01"
    assert RunSettings("2024-03-01", "m", "o", run_id="rerun-7").name == "rerun-7"
