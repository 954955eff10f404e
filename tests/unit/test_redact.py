"""Passwords in ledger URLs never reach a message; ledger calls retry within a bound (no Redis)."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from ledger.connection import redact, retrying
from ledger.errors import LedgerUnavailable
from taxview.cli import main


@pytest.mark.parametrize(
    "text, shown",
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        ("rediss://ledger:s3cret@ledger.internal:6380/0", "rediss://ledger:***@ledger.internal:6380/0"),
        ("cannot reach Redis at redis://:s3cret@h:1/0: refused", "cannot reach Redis at redis://:***@h:1/0: refused"),
        ("a redis://:a@h/0 and rediss://u:b@k/1", "a redis://:***@h/0 and rediss://u:***@k/1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),  # nothing to hide
        ("redis://user@h:6379/0", "redis://user@h:6379/0"),
    ],
)
def test_redact_hides_the_password_of_every_url(text, shown):
    assert redact(text) == shown


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_ledger_is_exit_1_in_one_line_without_the_password(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TAXVIEW_REDIS_URL", raising=False)
    url = f"redis://:s3cret-pw@127.0.0.1:{closed_port()}/0"
    assert main(["ledger", "show", "--account", "A", "--redis", url]) == 1
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err and ":***@127.0.0.1" in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("taxview: error: ")
    (tmp_path / "url").write_text(url + "\n")  # the same URL from a file (not in ps), same message
    assert main(["ledger", "show", "--account", "A", "--redis-url-file", str(tmp_path / "url")]) == 1
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err and ":***@127.0.0.1" in err
    monkeypatch.setenv("TAXVIEW_REDIS_URL", url)
    assert main(["ledger", "show", "--account", "A"]) == 1
    assert "s3cret-pw" not in capsys.readouterr().err
    assert main(["ledger", "show", "--account", "A", "--redis-url-file", str(tmp_path / "none")]) == 2


def test_retrying_rides_out_a_short_outage_and_gives_up_after_its_bound():
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise redis.exceptions.ConnectionError("Connection refused")
        return "ok"

    assert retrying(flaky, 5.0) == "ok" and len(calls) == 3

    def down():
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    t0 = time.monotonic()
    with pytest.raises(LedgerUnavailable, match="ledger unavailable: Timeout reading from socket"):
        retrying(down, 0.3)
    assert 0.3 <= time.monotonic() - t0 < 1.5

    def refused():
        calls.append(0)
        raise redis.exceptions.AuthenticationError("invalid password")

    calls.clear()
    with pytest.raises(redis.exceptions.AuthenticationError):
        retrying(refused, 5.0)
    assert len(calls) == 1  # a wrong password is not an outage
