"""The service's HTTP face in process (FastAPI's TestClient, the in-memory ledger; no Ray): tokens
(created once, stored hashed, 401 without one and logged without it), errors as JSON (422 naming
the field, 404, 409 with the reason, 503 with Retry-After when the ledger is down, never a
traceback), the console's pages behind its sign-in, and no page loading anything from outside the app
(the charting library and Swagger UI are vendored under ``/static``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import stat
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import redis
from fastapi.testclient import TestClient

from cluster.service.app import make_app
from cluster.service.assets import CACHE_CONTROL, STATIC_DIR, json_for_script
from cluster.service.auth import Tokens, create_token, read_tokens
from cluster.service.core import Service
from ledger.api import AccountInfo
from ledger.connection import client_from_url, retrying
from ledger.memory import MemoryLedger
from ledger.server import free_port
from ledger.store import LedgerStore
from solver.problem import ProblemCache
from taxview.core.errors import InputError
from taxview.core.records import Lot

CACHE = ProblemCache()


@pytest.fixture(scope="module")
def env(small_snap, tmp_path_factory):
    work = tmp_path_factory.mktemp("app")
    led = MemoryLedger()
    led.add_accounts(
        [AccountInfo("H1-T", "H1", "taxable", cash_cents=1_000_000), AccountInfo("H1-I", "H1", "ira", cash_cents=0)]
    )
    for i, s in enumerate(small_snap.symbols):
        shares = int(500_000 * small_snap.benchmark[i] / small_snap.prices[i])
        if shares:
            basis = round(shares * small_snap.price_cents[i] / (0.8 if i % 3 == 0 else 1.2))
            led.open_lot("H1-T", Lot(f"T-{s}", s, Decimal(shares), basis, dt.date(2015, 2, 2)))
    token = create_token(work / "tokens", "advisor")
    svc = Service(led, small_snap, cache=CACHE)
    client = TestClient(make_app(lambda: svc, Tokens(work / "tokens")), raise_server_exceptions=False)
    return client, {"Authorization": f"Bearer {token}"}, token, work, led


def test_token_file_keeps_only_hashes_and_refuses_a_second_token_of_one_name(env):
    _, _, token, work, _ = env
    text = (work / "tokens").read_text()
    assert token not in text and text.startswith("advisor sha256:")
    assert stat.S_IMODE(os.stat(work / "tokens").st_mode) == 0o600
    assert list(read_tokens(work / "tokens").values()) == ["advisor"]
    with pytest.raises(InputError):
        create_token(work / "tokens", "advisor")
    with pytest.raises(InputError):
        create_token(work / "tokens", "bad name")


def test_missing_or_wrong_token_is_401_and_logged_without_the_token(env, caplog):
    client, auth, token, _, _ = env
    assert client.get("/healthz").status_code == 200
    with caplog.at_level(logging.WARNING, logger="taxview.serve"):
        for headers in ({}, {"Authorization": "Bearer " + token[:-2] + "xx"}):
            r = client.get("/v1/accounts/H1-T", headers=headers)
            assert r.status_code == 401 and r.json() == {"detail": "a valid bearer token is required"}
    assert "401 GET /v1/accounts/H1-T" in caplog.text and token[:-2] not in caplog.text
    assert client.get("/v1/accounts/H1-T", headers=auth).status_code == 200


def test_errors_are_json_with_the_field_never_a_traceback(env):
    client, auth, _, _, _ = env
    r = client.post("/v1/accounts/H1-T/proposals", headers=auth, json={"cash_to_raise": "12.345"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cash_to_raise"]
    r = client.post("/v1/accounts/H1-T/proposals", headers=auth, json={"colour": "red"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "colour"
    r = client.post(
        "/v1/households/H1/wash-check",
        headers=auth,
        json={"trades": [{"account": "H1-T", "symbol": "A^B{", "side": "buy", "quantity": "1"}]},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "symbol"
    assert client.get("/v1/accounts/H1-X", headers=auth).status_code == 404
    assert client.get("/v1/households/H2/restrictions", headers=auth).status_code == 404
    assert client.get("/v1/runs/nightly-1", headers=auth).status_code == 404


def test_a_stale_proposal_is_409_with_its_reason_and_a_replay_is_200(env):
    client, auth, _, _, led = env
    a = client.post("/v1/accounts/H1-T/proposals", headers=auth).json()
    b = client.post("/v1/accounts/H1-T/proposals", headers=auth, json={"te_max": 0.03}).json()
    assert client.post(f"/v1/proposals/{a['proposal_id']}/commit", headers=auth).status_code == 200
    r = client.post(f"/v1/proposals/{b['proposal_id']}/commit", headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "CHANGED" and r.json()["reason"].endswith("propose again")
    r = client.post(f"/v1/proposals/{a['proposal_id']}/commit", headers=auth)
    assert r.status_code == 200 and r.json()["replayed"] is True


def test_a_ledger_that_is_down_is_503_with_retry_after(small_snap, tmp_path):
    token = create_token(tmp_path / "tokens", "ops")
    down = LedgerStore(client_from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2))
    svc = Service(down, small_snap, cache=CACHE, call=lambda fn: retrying(fn, 0.3))
    client = TestClient(make_app(lambda: svc, Tokens(tmp_path / "tokens")), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    for r in (
        client.get("/readyz"),
        client.get("/v1/accounts/H1-T", headers=auth),
        client.post("/v1/accounts/H1-T/proposals", headers=auth),
        client.get("/v1/households/H1/restrictions", headers=auth),
    ):
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "Traceback" not in r.text and "redis://" not in r.text
    unretried = Service(down, small_snap, cache=CACHE)  # a raw redis error is a 503 too
    client = TestClient(make_app(lambda: unretried, Tokens(tmp_path / "tokens")), raise_server_exceptions=False)
    assert client.get("/v1/accounts/H1-T", headers=auth).status_code == 503
    assert isinstance(redis.exceptions.ConnectionError(), redis.exceptions.RedisError)


def test_console_needs_sign_in_then_shows_the_firm_account_and_household(env):
    client, _, token, _, led = env
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert client.post("/console/login", data={"token": "tv_nope"}).status_code == 401
    r = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    page = client.get("/console").text
    assert "H1-T" in page and "Households" in page
    page = client.get("/console/accounts/H1-T").text
    assert "Holdings against the benchmark" in page and 'data-chart="weights"' in page and "Lots (" in page
    assert page.count("<details open><summary>as a table</summary>") == 2  # the charts without JavaScript
    page = client.post("/console/accounts/H1-T/propose", data={"cash_to_raise": "1000"}).text
    assert "Proposal p-" in page and "Commit these trades" in page
    page = client.post(
        "/console/households/H1/wash-check", data={"account": "H1-I", "side": "buy", "symbol": "NOPE", "quantity": "1"}
    ).text
    assert "has no close" in page
    assert client.get("/console/accounts/H9-Z").status_code == 404
    client.cookies.clear()


def test_cli_token_create_prints_the_token_last_and_refuses_bad_input(tmp_path, capsys):
    from taxview.cli import main

    assert main(["serve", "token", "create", "desk-1", "--tokens", str(tmp_path / "tokens")]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert token.startswith("tv_") and Tokens(tmp_path / "tokens").who(token) == "desk-1"
    assert main(["serve", "token", "create", "desk-1", "--tokens", str(tmp_path / "tokens")]) == 2
    assert main(["serve", "token", "create", "a{b}", "--tokens", str(tmp_path / "tokens")]) == 2
    err = capsys.readouterr().err
    assert "desk-1" in err and "name" in err and "Traceback" not in err
    assert main(["serve", "--workdir", str(tmp_path), "--port", "8000"]) == 2  # no market there
    assert "no market in" in capsys.readouterr().err


def test_operator_bad_input_is_422_on_the_field_never_a_500(env, small_snap):
    """An operator's pass: what once answered 500 (JSON NaN literals, a 10^30 cash_to_raise, a trade
    dated 9999-12-31), a withdrawal more than the account is worth (was 422 on a field ``cash`` the
    body does not have, its amount garbled by floats), an empty account (was 422 too: it is the
    ledger's data, a status ``error`` as the nightly reports it) and a bad id in the path (was
    located in the body)."""
    client, auth, _, _, led = env
    before = led.household_version("H1")
    post = "/v1/accounts/H1-T/proposals"
    raw = {**auth, "content-type": "application/json"}
    for text, field in (('{"cash_to_raise": NaN}', "cash_to_raise"), ('{"cash_to_raise": -Infinity}', "cash_to_raise")):
        r = client.post(post, content=text, headers=raw)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field], r.text
    trade = {"account": "H1-T", "symbol": small_snap.symbols[0], "side": "buy"}
    nan = json.dumps({"trades": [{**trade, "quantity": "QTY"}]}).replace('"QTY"', "NaN")
    r = client.post("/v1/households/H1/wash-check", content=nan, headers=raw)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "trades", 0, "quantity"]
    for amount in ("1e30", "99999999999999999999999"):
        r = client.post(post, headers=auth, json={"cash_to_raise": amount})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cash_to_raise"]
        assert "10^12" in r.json()["detail"][0]["msg"]
    r = client.post(post, headers=auth, json={"cash_to_raise": "900000000.00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cash_to_raise"]
    assert "is worth" in r.json()["detail"][0]["msg"] and "900000000.00" in r.json()["detail"][0]["msg"]
    r = client.post("/v1/accounts/H1-I/proposals", headers=auth)  # no holdings, no cash
    assert r.status_code == 200 and r.json()["status"] == "error" and r.json()["proposal_id"] is None
    assert "no holdings" in r.json()["reason"]
    r = client.post(
        "/v1/households/H1/wash-check",
        headers=auth,
        json={"trades": [{**trade, "quantity": "1", "date": "9999-12-31"}]},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "trades", 0, "date"]
    # a trade's error is located at the trade (was ["body", "quantity"] for whichever trade it was)
    held = led.lots("H1-T")[0]
    sells = [{"account": "H1-T", "symbol": held.symbol, "side": "sell", "quantity": str(q)} for q in (1, 10**9)]
    r = client.post("/v1/households/H1/wash-check", headers=auth, json={"trades": sells})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "trades", 1, "quantity"], r.text
    r = client.post(
        "/v1/households/H1/wash-check", headers=auth, json={"trades": [sells[0], {**trade, "quantity": "-1"}]}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "trades", 1, "quantity"]
    r = client.post("/v1/accounts/H1{x}/proposals", headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "account"]
    r = client.post("/v1/households/H1*/wash-check", headers=auth, json={"trades": [{**trade, "quantity": "1"}]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "household"]
    assert led.household_version("H1") == before  # nothing written


def test_cli_token_create_refuses_an_unwritable_file_and_never_joins_a_hand_edited_last_line(tmp_path, capsys):
    """``serve token create`` into a file it cannot write was exit 1 with a bare ``NotADirectoryError``;
    into a file whose last line had no newline it joined that line, breaking every token in it."""
    from taxview.cli import main

    (tmp_path / "plain").write_text("")
    for where in (tmp_path / "plain" / "tokens", tmp_path / "no-such-dir" / "tokens"):
        assert main(["serve", "token", "create", "desk", "--tokens", str(where)]) == 2
        err = capsys.readouterr().err
        assert "tokens: cannot write" in err and str(where) in err and "Traceback" not in err
    tokens = tmp_path / "tokens"
    assert main(["serve", "token", "create", "alice", "--tokens", str(tokens)]) == 0
    alice = capsys.readouterr().out.splitlines()[-1]
    tokens.write_text(tokens.read_text().rstrip("\n"))  # edited by hand: no newline at the end
    assert main(["serve", "token", "create", "bob", "--tokens", str(tokens)]) == 0
    bob = capsys.readouterr().out.splitlines()[-1]
    assert list(read_tokens(tokens).values()) == ["alice", "bob"]
    assert Tokens(tokens).who(alice) == "alice" and Tokens(tokens).who(bob) == "bob"


def test_cli_serve_that_cannot_start_exits_clearly_and_leaves_nothing_behind(tmp_path, capsys):
    import socket

    from taxview.cli import main

    assert (
        main(["market", "synth", "--names", "8", "--days", "40", "--factors", "2", "--out", str(tmp_path / "market")])
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--workdir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} is in use" in err and "--port" in err and "Traceback" not in err
    for replicas in ("0", "100000"):  # 100000 once went on to start them all
        assert main(["serve", "--workdir", str(tmp_path), "--port", str(free_port()), "--replicas", replicas]) == 2
        assert "replicas: --replicas must be 1..64" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["market"]  # no tokens file, no ledger, no Ray
    # a ledger that does not answer: the first token was made but never shown; its file once stayed,
    # and the next start (a file there: no new token) locked everyone out
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["serve", "--workdir", str(tmp_path), "--port", str(free_port()), "--redis", redis_url]) == 1
    assert "cannot reach Redis" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["market"]


class _Refs(HTMLParser):
    """What a page makes the browser load: scripts, styles, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.refs.append(a["src"])
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"])


def _refs(page: str) -> list[str]:
    parser = _Refs()
    parser.feed(page)
    return parser.refs + re.findall(r"""(?:url|css_url|js_url)\s*[:(=]\s*['"]([^'"]+)""", page)


def test_docs_and_every_console_page_load_only_the_apps_own_files_cached_for_a_year(env):
    client, _, token, _, _ = env
    pages = {"/docs": client.get("/docs"), "/console/login": client.get("/console/login")}
    client.post("/console/login", data={"token": token})
    pages["/console"] = client.get("/console")
    pages["account"] = client.get("/console/accounts/H1-T")
    pages["proposal"] = client.post("/console/accounts/H1-T/propose", data={"cash_to_raise": "1000"})
    pages["household"] = client.get("/console/households/H1")
    pages["wash-check"] = client.post(
        "/console/households/H1/wash-check", data={"account": "H1-I", "side": "buy", "symbol": "NOPE", "quantity": "1"}
    )
    pages["error"] = client.get("/console/accounts/H9-Z")
    client.cookies.clear()
    assets = set()
    for name, r in pages.items():
        assert r.headers["content-type"].startswith("text/html"), name
        assert "cdn." not in r.text and "unpkg" not in r.text, name
        for ref in _refs(r.text):
            if ref != "data:,":  # the console's empty favicon (no request)
                assert ref.startswith("/") and not ref.startswith("//"), (name, ref)  # the app's own, never a CDN
                assets.add(ref)
    assert {a.split("?")[0] for a in assets} >= {
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui.css",
        "/static/chartjs/chart.umd.min.js",
        "/static/console.js",
    }
    assert "/openapi.json" in pages["/docs"].text and client.get("/redoc").status_code == 404
    for url in assets - {"/openapi.json"}:
        r = client.get(url)  # no token, no cookie: public library code
        path = url.split("?")[0].removeprefix("/static/")
        assert r.status_code == 200 and r.content == (STATIC_DIR / path).read_bytes(), url
        assert r.headers["cache-control"] == CACHE_CONTROL and "?v=" in url  # a new file is a new URL
        assert url.endswith(hashlib.sha256(r.content).hexdigest()[:12])


def test_vendored_assets_are_the_files_their_readme_names():
    table = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", (STATIC_DIR / "README.md").read_text(), re.M)
    assert {name for name, _ in table} >= {"chartjs/chart.umd.min.js", "swagger-ui/swagger-ui-bundle.js"}
    for name, digest in table:
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (STATIC_DIR / "chartjs" / "LICENSE.md").read_text()
    assert "Apache License" in (STATIC_DIR / "swagger-ui" / "LICENSE").read_text()


def test_chart_data_in_a_page_cannot_close_its_script_element():
    value = {"symbols": ["</script><script>alert(1)</script>", "A&B", "<!--", "\u2028"], "weights": [0.5, 0.25]}
    text = json_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_the_console_commit_of_a_proposal_with_no_orders_books_nothing(env):
    client, auth, token, _, led = env
    for _ in range(4):  # the account rebalanced until the solver has nothing left to trade
        p = client.post("/v1/accounts/H1-T/proposals", headers=auth).json()
        if not p["orders"]:
            break
        assert client.post(f"/v1/proposals/{p['proposal_id']}/commit", headers=auth).status_code == 200
    assert p["orders"] == [] and p["proposal_id"]
    version = led.household_version("H1")
    client.post("/console/login", data={"token": token})
    page = client.post(f"/console/proposals/{p['proposal_id']}/commit").text
    client.cookies.clear()
    assert f"had no orders: nothing booked; household version {version} unchanged" in page
    done = client.post(f"/v1/proposals/{p['proposal_id']}/commit", headers=auth).json()
    assert done["empty"] is True and done["ledger_version"] == version == led.household_version("H1")
