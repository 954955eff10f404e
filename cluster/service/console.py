"""The web console at ``/console`` (issue 14): server-rendered HTML over the same ``Service`` as the
API — the firm's last night, an account (holdings against the benchmark, lots, the household's
wash-sale calendar, mandate, TE against budget, propose and commit), a household (a wash-check
form). Plain HTML and no build step: the charts are drawn in the browser by the vendored Chart.js
(``static/``, served by ``assets``) from JSON embedded in the page, each over a table that is the
page without JavaScript.

Sign-in takes an API token and keeps it in an HttpOnly, SameSite=Strict cookie scoped to
``/console`` (so another site cannot post a commit with it); every page checks it again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.errors import CommitRejected, LedgerUnavailable
from taxview.core.errors import InputError

from .assets import asset_url, json_for_script
from .auth import Tokens
from .core import NotFound, Overrides, Service

log = logging.getLogger("taxview.serve")
COOKIE = "taxview_console"
_REPLAYED = " (already: replayed)"
e = html.escape


def add_console(app: FastAPI, get_service: Callable[[], Service], tokens: Tokens) -> None:
    """The console's routes on ``app`` (hidden from the OpenAPI schema)."""

    def signed_in(request: Request) -> str | None:
        return tokens.who(request.cookies.get(COOKIE))

    def login_redirect() -> Response:
        return RedirectResponse("/console/login", status_code=303)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0].strip() for k, v in parse_qs(body, keep_blank_values=True).items()}

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        return origin is None or origin.split("://", 1)[-1] == request.headers.get("host")

    async def render(request: Request, build: Callable[[], str], status: int = 200) -> Response:
        try:
            return HTMLResponse(await run_in_threadpool(build), status_code=status)
        except Exception as exc:  # noqa: BLE001 - an error page, never a traceback
            code, message = _error(exc)
            return HTMLResponse(_page("error", f"<div class='error'>{e(message)}</div>", back=True), code)

    @app.get("/console/login", include_in_schema=False)
    def login_page() -> HTMLResponse:
        return HTMLResponse(_page("sign in", _LOGIN.format(error="")))

    @app.post("/console/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        token = (await form(request)).get("token", "")
        if tokens.who(token) is None or not same_origin(request):
            client = request.client.host if request.client else "?"
            log.warning("401 POST /console/login from %s: unknown token", client)
            body = _LOGIN.format(error="<div class='error'>That token is not valid.</div>")
            return HTMLResponse(_page("sign in", body), status_code=401)
        out = RedirectResponse("/console", status_code=303)
        secure = request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
        out.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/console", secure=secure)
        return out

    @app.post("/console/logout", include_in_schema=False)
    def logout() -> Response:
        out = login_redirect()
        out.delete_cookie(COOKIE, path="/console")
        return out

    @app.get("/console", include_in_schema=False)
    async def firm(request: Request) -> Response:
        if signed_in(request) is None:
            return login_redirect()
        return await render(request, lambda: _firm(get_service().firm()))

    @app.get("/console/accounts/{account}", include_in_schema=False)
    async def account(request: Request, account: str) -> Response:
        if signed_in(request) is None:
            return login_redirect()
        return await render(request, lambda: _account(get_service(), account))

    @app.post("/console/accounts/{account}/propose", include_in_schema=False)
    async def propose(request: Request, account: str) -> Response:
        if signed_in(request) is None or not same_origin(request):
            return login_redirect()
        f = await form(request)

        def build() -> str:
            o = _overrides(f)
            return _account(get_service(), account, proposal=get_service().propose(account, o), asked=f)

        return await render(request, build)

    @app.post("/console/proposals/{proposal_id}/commit", include_in_schema=False)
    async def commit(request: Request, proposal_id: str) -> Response:
        who = signed_in(request)
        if who is None or not same_origin(request):
            return login_redirect()
        log.info("console commit %s by %s", proposal_id, who)

        def build() -> str:
            done = get_service().commit(proposal_id)
            return _account(get_service(), done["account"], committed=done)

        return await render(request, build)

    @app.get("/console/households/{household}", include_in_schema=False)
    async def household(request: Request, household: str) -> Response:
        if signed_in(request) is None:
            return login_redirect()
        return await render(request, lambda: _household(get_service(), household))

    @app.post("/console/households/{household}/wash-check", include_in_schema=False)
    async def wash_check(request: Request, household: str) -> Response:
        if signed_in(request) is None or not same_origin(request):
            return login_redirect()
        f = await form(request)

        def build() -> str:
            row = {k: f.get(k) or None for k in ("account", "symbol", "side", "quantity", "price", "date", "lot_id")}
            try:
                checked = get_service().wash_check(household, [row])
            except InputError as exc:
                return _household(get_service(), household, asked=f, error=str(exc))
            return _household(get_service(), household, asked=f, checked=checked)

        return await render(request, build)


def _error(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, InputError):
        return 422, str(exc)
    if isinstance(exc, CommitRejected):
        extra = ": propose again" if exc.code == "CHANGED" else ""
        return 409, f"not committed: {exc}{extra}"
    if isinstance(exc, LedgerUnavailable) or type(exc).__module__.startswith("redis"):
        return 503, "the ledger is unavailable; try again shortly"
    log.exception("console error", exc_info=exc)
    return 500, "internal error (logged on the server)"


def _overrides(f: Mapping[str, str]) -> Overrides:
    cash = f.get("cash_to_raise") or None
    te = f.get("te_max") or None
    try:
        cash_d = Decimal(cash.replace(",", "").lstrip("$")) if cash else None
    except ArithmeticError:
        raise InputError("cash_to_raise", f"cash to raise must be dollars, got {cash!r}") from None
    try:
        te_f = float(te.rstrip("%")) / 100 if te else None
    except ValueError:
        raise InputError("te_max", f"the TE budget must be a percentage, got {te!r}") from None
    exclude = tuple(x.strip() for x in (f.get("exclude") or "").replace(" ", ",").split(",") if x.strip())
    return Overrides(cash_d, te_f, exclude)


# --- pages ---------------------------------------------------------------------------------------


def _firm(firm: Mapping[str, Any]) -> str:
    parts = []
    last = firm["last_run"]
    if last is None:
        parts.append("<section><h2>Last night</h2><p class='muted'>No nightly run found.</p></section>")
    else:
        s = last["summary"]
        cards = [
            ("run", e(s["run_id"])),
            ("night", e(s["date"])),
            ("accounts", f"{s['accounts']:,} ({s['ok']:,} ok)"),
            ("failed", f"<span class='{'bad' if s['failed'] else 'good'}'>{s['failed']:,}</span>"),
            ("trades", f"{s['trades']:,} in {s.get('orders', 0):,} orders"),
            ("harvested losses", _usd(s["harvested_loss"])),
            ("estimated tax", _usd(s["tax_estimate"])),
            ("wall time", f"{s['wall_s']:.1f} s"),
        ]
        parts.append(f"<section><h2>Last night</h2>{_cards(cards)}</section>")
        rows = [
            [_link_account(r["account"]), _link_household(r["household"]), e(r["status"]), e(r["reason"] or "")]
            for r in last["failed"]
        ]
        parts.append(
            "<section><h2>Failures</h2>"
            + (_table(["account", "household", "status", "reason"], rows) if rows else "<p class='muted'>None.</p>")
            + "</section>"
        )
        rows = [
            [_link_account(r["account"]), _pct(r["te_ex_ante"]), _pct(r["te_budget"])]
            for r in sorted(last["over_budget"], key=lambda r: -(r["te_ex_ante"] - r["te_budget"]))
        ]
        parts.append(
            "<section><h2>Accounts over their TE budget</h2>"
            + (_table(["account", "TE ex ante", "budget"], rows, "num") if rows else "<p class='muted'>None.</p>")
            + "</section>"
        )
    households = firm["households"]
    rows = [
        [_link_household(h), " ".join(_link_account(a) for a in accounts)]
        for h, accounts in list(households.items())[:300]
    ]
    more = f"<p class='muted'>… and {len(households) - 300:,} more households.</p>" if len(households) > 300 else ""
    parts.append(f"<section><h2>Households</h2>{_table(['household', 'accounts'], rows)}{more}</section>")
    return _page(f"firm · {firm['date']}", "".join(parts))


def _account(
    svc: Service,
    account: str,
    proposal: Mapping[str, Any] | None = None,
    committed: Mapping[str, Any] | None = None,
    asked: Mapping[str, str] | None = None,
) -> str:
    v = svc.account(account)
    r = svc.restrictions(v["household"])
    te, budget = v["te_now"], v["te_budget"]
    over = te is not None and te > budget * 1.001
    cards = [
        ("household", _link_household(v["household"])),
        ("type", e(v["account_type"])),
        ("status", e(v["status"])),
        ("value", _usd(v["value"])),
        ("cash", _usd(v["cash"])),
        ("unrealized", _signed(v["unrealized"])),
        (f"realized {v['realized_ytd']['year']}", _signed(v["realized_ytd"]["net"])),
        ("TE now / budget", f"<span class='{'bad' if over else 'good'}'>{_pct(te)}</span> / {_pct(budget)}"),
    ]
    parts = [f"<section>{_cards(cards)}{_te_bar(te, budget)}{_styles(v['style_exposures'])}</section>"]
    if committed is not None and committed.get("empty"):
        parts.append(
            "<section class='ok'><h2>Committed</h2>"
            f"<p>Proposal {e(committed['proposal_id'])} had no orders: nothing booked; household version "
            f"{committed['ledger_version']} unchanged.</p></section>"
        )
    elif committed is not None:
        parts.append(
            "<section class='ok'><h2>Committed</h2>"
            f"<p>Proposal {e(committed['proposal_id'])} booked{_REPLAYED if committed['replayed'] else ''}: "
            f"{len(committed['sales'])} lot sales, {len(committed['new_lots'])} new lots; cash now "
            f"{_usd(committed['cash'])}; household version {committed['ledger_version']}.</p></section>"
        )
    parts.append(_propose_form(account, asked or {}, budget))
    if proposal is not None:
        parts.append(_proposal(proposal))
    parts.append(f"<section><h2>Holdings against the benchmark</h2>{_weights_chart(v['holdings'])}</section>")
    blocked = [[e(b["symbol"]), _what(b["what"]), e(b["until"])] for b in r["blocked"]]
    parts.append(
        f"<section><h2>Household wash-sale calendar ({e(r['date'])})</h2>"
        + (_table(["name", "blocked", "until"], blocked) if blocked else "<p class='muted'>Nothing blocked.</p>")
        + "</section>"
    )
    lots = sorted(v["lots"], key=lambda x: (x["unrealized_cents"] is None, x["unrealized_cents"] or 0))
    rows = [
        [
            e(x["lot_id"]),
            e(x["symbol"]),
            e(x["shares"]),
            _usd(x["basis"]),
            _usd(x["value"]) if x["value"] else "—",
            _signed(x["unrealized"]) if x["unrealized"] else "—",
            e(x["term"]),
            e(x["acquired"]),
            e(x["long_term_from"]),
        ]
        for x in lots
    ]
    parts.append(
        f"<section><h2>Lots ({len(rows)}, largest losses first)</h2>"
        + _gains_chart(v["lots"])
        + "<h3>Lots</h3>"
        + _table(
            ["lot", "name", "shares", "basis", "value", "unrealized", "term", "acquired", "long-term from"], rows, "num"
        )
        + "</section>"
    )
    mandate = [[e(k), e(_show(val))] for k, val in sorted(v["mandate"].items())]
    parts.append(
        f"<section><h2>Mandate (version {v['mandate_version']})</h2>"
        + (_table(["key", "value"], mandate) if mandate else "<p class='muted'>The firm's defaults.</p>")
        + f"<p class='muted'>Rates: short-term {_pct(v['rates']['short'])}, long-term {_pct(v['rates']['long'])}; "
        f"TE budget {_pct(budget)}.</p></section>"
    )
    return _page(f"account {account}", "".join(parts), charts=True)


def _propose_form(account: str, asked: Mapping[str, str], budget: float) -> str:
    return f"""<section><h2>Propose a rebalance</h2>
<form method="post" action="/console/accounts/{quote(account)}/propose" class="inline">
<label>Cash to raise ($)
<input name="cash_to_raise" value="{e(asked.get("cash_to_raise", ""))}" placeholder="0"></label>
<label>TE budget (%) <input name="te_max" value="{e(asked.get("te_max", ""))}" placeholder="{budget * 100:g}"></label>
<label>Exclude <input name="exclude" value="{e(asked.get("exclude", ""))}" placeholder="AAA, BBB"></label>
<button type="submit" id="propose">Propose</button></form>
<p class="muted">Nothing is written until you commit the proposal.</p></section>"""


def _proposal(p: Mapping[str, Any]) -> str:
    if not p.get("proposal_id"):
        return f"<section class='warn'><h2>Proposal</h2><p>{e(p['status'])}: {e(p.get('reason') or '')}</p></section>"
    rows = [
        [
            e(o["symbol"]),
            f"<span class='{o['side']}'>{e(o['side'])}</span>",
            e(o["shares"]),
            _usd(o["price"]),
            _usd(o["value"]),
            _signed(o["gain"]) if o["side"] == "sell" else "",
            _tax(o["tax_effect"]) if o["side"] == "sell" else "",
            str(len(o["allocations"])),
        ]
        for o in sorted(  # sells first, the largest losses first; then buys, the largest first
            p["orders"], key=lambda o: (o["side"] != "sell", Decimal(o["gain"]), -Decimal(o["value"]))
        )
    ]
    cards = [
        ("orders", str(len(p["orders"]))),
        ("harvested losses", _usd(p["harvested_loss"])),
        ("realized ST / LT", f"{_signed(p['realized']['short'])} / {_signed(p['realized']['long'])}"),
        ("tax effect", _tax(p["tax_estimate"])),
        ("TE after", f"{_pct(p['te_ex_ante'])} (budget {_pct(p['te_budget'])})"),
        ("cash after", _usd(p["cash_after"])),
    ]
    head = ["name", "side", "shares", "price", "value", "gain", "tax effect", "lots"]
    tickets = _table(head, rows, "num") if rows else "<p>No trades.</p>"
    return f"""<section class="proposal" id="proposal"><h2>Proposal {e(p["proposal_id"])}</h2>
<p class="muted">On {e(p["date"])}, household version {p["ledger_version"]}; solved in {p["solve_ms"] or 0:.0f} ms.
Tax effect: negative is a saving.</p>{_cards(cards)}
{tickets}
<form method="post" action="/console/proposals/{e(p["proposal_id"])}/commit">
<button type="submit" id="commit">Commit these trades</button></form></section>"""


def _household(
    svc: Service,
    household: str,
    asked: Mapping[str, str] | None = None,
    checked: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> str:
    h = svc.household(household)
    r = h["restrictions"]
    asked = asked or {}
    rows = [[_link_account(a["account"]), e(a["account_type"]), _usd(a["cash"])] for a in h["accounts"]]
    parts = [f"<section><h2>Accounts</h2>{_table(['account', 'type', 'cash'], rows)}</section>"]
    options = "".join(
        f"<option{' selected' if a['account'] == asked.get('account') else ''}>{e(a['account'])}</option>"
        for a in h["accounts"]
    )
    side = asked.get("side", "sell")
    parts.append(f"""<section><h2>Wash-sale check</h2>
<p class="muted">A trade someone is about to place, against the household's lots and recent trades (the ledger's
own wash-sale engine). Price and date default to the market day's close.</p>
<form method="post" action="/console/households/{quote(household)}/wash-check" class="inline">
<label>Account <select name="account">{options}</select></label>
<label>Side <select name="side"><option{" selected" if side == "sell" else ""}>sell</option>
<option{" selected" if side == "buy" else ""}>buy</option></select></label>
<label>Name <input name="symbol" value="{e(asked.get("symbol", ""))}" required></label>
<label>Shares <input name="quantity" value="{e(asked.get("quantity", ""))}" required></label>
<label>Price ($) <input name="price" value="{e(asked.get("price", ""))}" placeholder="close"></label>
<label>Date <input name="date" value="{e(asked.get("date", ""))}" placeholder="{e(r["date"])}"></label>
<button type="submit" id="check">Check</button></form></section>""")
    if error:
        parts.append(f"<section class='warn'><div class='error'>{e(error)}</div></section>")
    if checked is not None:
        t = checked["trades"][0]
        lost = Decimal(t["permanently_disallowed"])
        verdict = (
            f"<p class='verdict bad'>Washes: {_usd(t['disallowed'])} disallowed"
            f"{', ' + _usd(lost) + ' lost for good (IRA)' if lost else ''}.</p>"
            if t["washes"]
            else "<p class='verdict good'>No wash sale.</p>"
        )
        detail = []
        for s in t["sales"]:
            reps = ", ".join(f"{e(x['shares'])} sh of {e(x['lot_id'])} in {e(x['account'])}" for x in s["replacements"])
            detail.append(
                [e(s["lot_id"]), e(s["shares"]), _signed(s["gain"]), e(s["term"]), _usd(s["disallowed"]), reps or "—"]
            )
        table = (
            _table(["lot sold", "shares", "gain", "term", "disallowed", "replaced by"], detail, "num") if detail else ""
        )
        washed = [
            [
                e(w["account"]),
                e(w["symbol"]),
                e(w["date"]),
                e(w["shares"]),
                _usd(w["disallowed"]),
                _usd(w["permanently_disallowed"]),
            ]
            for w in t["washed_sales"]
        ]
        if washed:
            table += _table(["sale in", "name", "sold", "shares", "disallowed", "lost for good"], washed, "num")
        block = t["blocked"]
        then = f"<p class='muted'>Afterwards: {_what(block['what'])} until {e(block['until'])}.</p>" if block else ""
        parts.append(
            f"<section id='result'><h2>{e(t['side'])} {e(t['quantity'])} {e(t['symbol'])} in {e(t['account'])} "
            f"on {e(t['date'])} at {_usd(t['price'])}</h2>{verdict}{table}{then}</section>"
        )
    blocked = [[e(b["symbol"]), _what(b["what"]), e(b["until"])] for b in r["blocked"]]
    parts.append(
        f"<section><h2>Wash-sale calendar ({e(r['date'])})</h2>"
        + (_table(["name", "blocked", "until"], blocked) if blocked else "<p class='muted'>Nothing blocked.</p>")
        + "</section>"
    )
    return _page(f"household {household}", "".join(parts))


# --- pieces --------------------------------------------------------------------------------------


_MET = {True: "<span class='bad'>short</span>", False: "<span class='good'>met</span>"}


def _styles(rows: Sequence[Mapping[str, Any]]) -> str:
    """The risk panel's style exposures (standard deviations of each style's score) against the
    mandate's tilt targets; nothing when the market has no styles."""
    if not rows:
        return ""
    body = [
        [
            e(r["style"]),
            f"{r['exposure']:+.3f}",
            "—" if r["target"] is None else f"{'≥' if r['target'] >= 0 else '≤'} {r['target']:+.2f}",
            "" if r["target"] is None else _MET[r["short"]],
        ]
        for r in sorted(rows, key=lambda r: (r["target"] is None, r["style"]))
    ]
    return "<h3>Active style exposures</h3>" + _table(["style", "exposure (sd)", "tilt target", ""], body, "num")


def _weights_chart(holdings: Sequence[Mapping[str, Any]], top: int = 20) -> str:
    """The account's weight against the benchmark's for the largest names (fractions of value)."""
    rows = sorted(holdings, key=lambda h: -max(h["weight"], h["benchmark"]))[:top]
    if not rows:
        return "<p class='muted'>No holdings.</p>"
    data = {
        "symbols": [h["symbol"] for h in rows],
        "account": [round(h["weight"], 6) for h in rows],
        "benchmark": [round(h["benchmark"], 6) for h in rows],
    }
    table = [
        [e(h["symbol"]), _pct(h["weight"]), _pct(h["benchmark"]), f"{(h['weight'] - h['benchmark']) * 100:+.2f} pp"]
        for h in rows
    ]
    title = f"the {len(rows)} largest names: account and benchmark weights"
    return _chart(
        "weights", data, len(rows) * 22 + 50, title, _table(["name", "account", "benchmark", "active"], table, "num")
    )


def _gains_chart(lots: Sequence[Mapping[str, Any]], top: int = 20) -> str:
    """Unrealized gain (loss) by name, dollars, the largest in size; nothing when no lot is priced."""
    by_name: dict[str, Decimal] = {}
    count: dict[str, int] = {}
    for x in lots:
        if x["unrealized"]:
            by_name[x["symbol"]] = by_name.get(x["symbol"], Decimal(0)) + Decimal(str(x["unrealized"]))
            count[x["symbol"]] = count.get(x["symbol"], 0) + 1
    rows = sorted(by_name.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    if not rows:
        return ""
    rows.sort(key=lambda kv: kv[1])  # losses first
    data = {"symbols": [s for s, _ in rows], "gain": [float(g) for _, g in rows]}
    table = [[e(s), _signed(g), str(count[s])] for s, g in rows]
    title = f"the {len(rows)} largest unrealized gains and losses by name"
    return "<h3>Unrealized gain and loss by name</h3>" + _chart(
        "gains", data, len(rows) * 18 + 40, title, _table(["name", "unrealized", "lots"], table, "num")
    )


def _chart(kind: str, data: Mapping[str, Any], height: int, title: str, table: str) -> str:
    """A chart ``static/console.js`` draws from ``data`` (JSON in the page, escaped), over ``table``:
    what the page shows without JavaScript (folded away once the chart is drawn)."""
    return (
        f'<figure class="jschart" data-chart="{e(kind)}">'
        f'<div class="box" style="height:{height}px"><canvas role="img" aria-label="{e(title)}"></canvas></div>'
        f'<script type="application/json">{json_for_script(data)}</script>'
        f"<details open><summary>as a table</summary>{table}</details></figure>"
    )


def _te_bar(te: float | None, budget: float) -> str:
    if te is None:
        return ""
    full = max(te, budget) * 1.25
    return (
        '<div class="tebar" title="tracking error against budget">'
        f'<div class="fill {"bad" if te > budget * 1.001 else "good"}" '
        f'style="width:{min(te / full, 1) * 100:.1f}%"></div>'
        f'<div class="mark" style="left:{budget / full * 100:.1f}%"></div></div>'
    )


def _cards(items: Sequence[tuple[str, str]]) -> str:
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><div class='k'>{e(k)}</div><div class='v'>{v}</div></div>" for k, v in items)
        + "</div>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _usd(amount: Any) -> str:
    d = Decimal(str(amount))
    return f"{'−' if d < 0 else ''}${abs(d):,.2f}"


def _signed(amount: Any) -> str:
    d = Decimal(str(amount))
    cls = "neg" if d < 0 else "pos" if d > 0 else ""
    return f"<span class='{cls}'>{_usd(d)}</span>"


def _tax(amount: Any) -> str:
    """A tax effect: a saving (negative) in green, a cost in red."""
    d = Decimal(str(amount))
    cls = "pos" if d < 0 else "neg" if d > 0 else ""
    return f"<span class='{cls}'>{_usd(d)}</span>"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _what(what: str) -> str:
    return {"no_buy": "no purchase", "no_loss_sale": "no sale at a loss"}.get(what, e(what))


def _show(value: Any) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


def _link_account(a: str) -> str:
    return f"<a href='/console/accounts/{quote(a)}'>{e(a)}</a>"


def _link_household(h: str) -> str:
    return f"<a href='/console/households/{quote(h)}'>{e(h)}</a>"


def _page(title: str, body: str, back: bool = False, charts: bool = False) -> str:
    nav = "<a href='javascript:history.back()'>back</a> · " if back else ""
    scripts = (
        f'<script src="{asset_url("chartjs/chart.umd.min.js")}" defer></script>'
        f'<script src="{asset_url("console.js")}" defer></script>'
        if charts
        else ""
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>taxview · {e(title)}</title>
<link rel="icon" href="data:,"><style>{_CSS}</style>{scripts}</head>
<body><header><a class="brand" href="/console">taxview</a>
<span class="title">{e(title)}</span><nav>{nav}<a href="/console">firm</a> · <a href="/docs">API</a>
<form method="post" action="/console/logout" class="logout"><button>sign out</button></form></nav></header>
<main>{body}</main></body></html>"""


_LOGIN = """<section class="login"><h2>Sign in</h2>{error}
<form method="post" action="/console/login"><label>API token <input type="password" name="token" id="token"
autocomplete="off" required></label> <button type="submit" id="signin">Sign in</button></form>
<p class="muted">A token from <code>taxview serve token create NAME --tokens FILE</code>.</p></section>"""

_CSS = """
:root{--ink:#1d2733;--muted:#6b7785;--line:#e3e8ee;--bg:#f6f8fa;--acct:#2f6fb0;--bench:#b8c4d0;
--good:#1f7a4d;--bad:#b3261e}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
background:var(--bg)}header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#16202b;color:#fff}
header a{color:#cfe0f2;text-decoration:none}.brand{font-weight:700;font-size:17px;color:#fff!important}
.title{flex:1;color:#dfe6ee}nav{display:flex;gap:8px;align-items:center}.logout{display:inline;margin:0}
.logout button{background:none;border:1px solid #50647a;color:#cfe0f2;padding:2px 8px;border-radius:4px;cursor:pointer}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}section{background:#fff;border:1px solid var(--line);
border-radius:8px;padding:14px 18px;margin:14px 0}h2{font-size:15px;margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{min-width:130px;padding:8px 12px;border:1px solid var(--line);
border-radius:6px;background:#fbfcfd}.card .k{color:var(--muted);font-size:12px}.card .v{font-size:16px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}th{text-align:left;color:var(--muted);font-weight:600;
border-bottom:1px solid var(--line);padding:5px 8px}td{border-bottom:1px solid #f0f2f5;padding:4px 8px}
table.num td:not(:first-child){font-variant-numeric:tabular-nums}a{color:var(--acct)}
.neg,.bad{color:var(--bad)}.pos,.good{color:var(--good)}.muted{color:var(--muted)}.sell{color:var(--bad)}
.buy{color:var(--good)}form.inline{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
input,select{font:inherit;padding:5px 8px;border:1px solid #c9d2dc;border-radius:5px;min-width:110px}
button{font:inherit;padding:6px 14px;border-radius:5px;border:1px solid var(--acct);background:var(--acct);
color:#fff;cursor:pointer}#commit{background:var(--good);border-color:var(--good);margin-top:10px}
.error{color:var(--bad);font-weight:600}.ok{border-color:#bfe0cc;background:#f3fbf6}
.warn{border-color:#f0d2cf;background:#fdf5f4}.proposal{border-color:#c8d9ec}
.verdict{font-size:16px;font-weight:600}h3{font-size:13px;margin:14px 0 6px;color:var(--muted)}
figure.jschart{margin:0}.jschart .box{display:none;position:relative;max-width:900px}.jschart.drawn .box{display:block}
.jschart details{margin-top:6px}.jschart summary{cursor:pointer;color:var(--muted);font-size:12px}
.jschart details table{max-width:620px}
.tebar{position:relative;height:8px;background:#eef1f4;border-radius:4px;margin-top:12px;max-width:520px}
.tebar .fill{height:8px;border-radius:4px}.tebar .fill.good{background:#4c9a6e}.tebar .fill.bad{background:#c0504a}
.tebar .mark{position:absolute;top:-3px;width:2px;height:14px;background:var(--ink)}
.login{max-width:460px;margin:60px auto}
"""
