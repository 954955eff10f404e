"""The service's HTTP face: a FastAPI app over ``cluster.service.core.Service`` (no Ray here: Ray
Serve runs it in ``cluster.serve``; tests run it in process).

Every route but ``/healthz``, ``/readyz``, the OpenAPI docs (``/docs``, on the vendored Swagger UI)
and the static assets (``/static``, ``assets.py``) needs a bearer token (``auth.Tokens``); a missing or
wrong one is 401 and logged without the token. Errors are JSON, never a traceback: bad input 422
naming the field, an unknown account, household, proposal or run 404, a refused commit 409 with its
code and reason, a ledger that does not answer 503 with ``Retry-After``, anything else 500 (logged).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' local annotations (Caller) at runtime

import datetime as dt
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from ledger.errors import CommitRejected, LedgerUnavailable
from taxview.core.errors import InputError

from .assets import PREFIX, static_files, swagger_page
from .auth import Tokens
from .core import NotFound, Overrides, Service

log = logging.getLogger("taxview.serve")
RETRY_AFTER_S = 5
MAX_TRADES = 1000


class ProposalRequest(BaseModel):
    """Overrides of the account's mandate for this proposal only."""

    model_config = ConfigDict(extra="forbid")
    cash_to_raise: Decimal | None = Field(None, description='dollars of cash to raise (exact, e.g. "50000.00")')
    te_max: float | None = Field(None, description="tracking-error budget for this proposal (annualized)")
    exclude: list[str] = Field(default_factory=list, max_length=1000, description="names not to hold")


class IntendedTrade(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str
    symbol: str
    side: Literal["buy", "sell"]
    quantity: Decimal = Field(description="shares")
    price: Decimal | None = Field(None, description="dollars per share (default: the day's close)")
    date: dt.date | None = Field(None, description="default: the service's market day")
    lot_id: str | None = Field(None, description="a sell's lot (default: first in, first out)")


class WashCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trades: list[IntendedTrade] = Field(min_length=1, max_length=MAX_TRADES)


class Unauthorized(Exception):
    pass


def error_response(exc: BaseException, where: str = "", path: tuple[str, ...] = ()) -> JSONResponse:
    """The JSON answer for an error the service raised (see the module's docstring); an
    ``InputError`` on one of the route's ``path`` parameters is located in the path, else in ``where``."""
    if isinstance(exc, NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)
    if isinstance(exc, InputError):
        place = "path" if exc.field in path else where
        index = getattr(exc, "index", None)  # a wash-check's trade
        loc = [place, "trades", index, exc.field] if place == "body" and index is not None else [place, exc.field]
        loc = loc if place else [exc.field]
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]},
            status_code=422,
        )
    if isinstance(exc, CommitRejected):
        if exc.code == "BUSY":
            return _unavailable(str(exc))
        reason = str(exc).split(": ", 1)[-1]
        if exc.code == "CHANGED":
            reason += ": propose again"
        return JSONResponse({"detail": str(exc), "code": exc.code, "reason": reason}, status_code=409)
    if isinstance(exc, LedgerUnavailable) or _redis_down(exc):
        return _unavailable("the ledger is unavailable; try again shortly")
    log.exception("internal error%s", f" ({where})" if where else "", exc_info=exc)
    return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _redis_down(exc: BaseException) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))


def answer(call: Callable[[], Any], where: str = "", path: tuple[str, ...] = ()) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - every error becomes JSON, never a traceback
        return error_response(exc, where, path)


def _json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot carry (NaN, Infinity, Decimals, bytes...) as strings: a
    request's echoed input in a 422 (``{"quantity": NaN}`` is valid to Python's JSON parser)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def make_app(get_service: Callable[[], Service], tokens: Tokens, console: bool = True) -> FastAPI:
    """The app over the service ``get_service()`` returns (a replica's), guarded by ``tokens``."""
    app = FastAPI(
        title="taxview",
        version="1",
        description="On-demand proposals, commits and household wash-sale checks over the tax-lot ledger "
        "(money as decimal strings of dollars, shares as decimal strings).",
        docs_url=None,  # served below on the vendored Swagger UI (FastAPI's loads it from a CDN)
        redoc_url=None,
    )
    app.mount(PREFIX, static_files(), name="static")  # no token: public library code (assets.py)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return swagger_page(app.openapi_url or "/openapi.json", f"{app.title} · API")

    bearer = HTTPBearer(auto_error=False)

    def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        who = tokens.who(credentials.credentials if credentials else None)
        if who is None:
            why = "no bearer token" if credentials is None else "unknown token"
            client = request.client.host if request.client else "?"
            log.warning("401 %s %s from %s: %s", request.method, request.url.path, client, why)
            raise Unauthorized
        return who

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _json_safe(exc.errors())}, status_code=422)

    @app.exception_handler(Unauthorized)
    def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"detail": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    Caller = Annotated[str, Depends(caller)]

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """The process answers (no auth)."""
        return {"ok": True}

    @app.get("/readyz", tags=["health"])
    def readyz() -> Any:
        """The replica has its service and the ledger answers (no auth)."""
        return answer(lambda: get_service().ready())

    @app.post("/v1/accounts/{account}/proposals", tags=["proposals"])
    def propose(account: str, who: Caller, body: ProposalRequest | None = None) -> Any:
        """Solve the account now with its mandate and these overrides; nothing is written. A solved
        proposal has an id bound to the household's ledger version."""
        body = body or ProposalRequest()
        o = Overrides(body.cash_to_raise, body.te_max, tuple(body.exclude))
        return answer(lambda: get_service().propose(account, o), "body", ("account",))

    @app.post("/v1/proposals/{proposal_id}/commit", tags=["proposals"])
    def commit(proposal_id: str, who: Caller) -> Any:
        """Book the proposal if its household has not changed since (else 409: propose again);
        a repeat answers what was booked (``replayed``)."""
        log.info("commit %s by %s", proposal_id, who)
        return answer(lambda: get_service().commit(proposal_id), "path")

    @app.post("/v1/households/{household}/wash-check", tags=["wash sales"])
    def wash_check(household: str, body: WashCheckRequest, who: Caller) -> Any:
        """For each intended trade (in any account of the household): whether it would wash, which
        sales or purchases, how many shares, the amount disallowed (or lost for good to an IRA), and
        until when the name is blocked — from the ledger's own wash-sale engine."""
        rows = [t.model_dump() for t in body.trades]
        return answer(lambda: get_service().wash_check(household, rows), "body", ("household",))

    @app.get("/v1/households/{household}/restrictions", tags=["wash sales"])
    def restrictions(household: str, who: Caller, date: dt.date | None = None) -> Any:
        """What the household's wash-sale windows block on ``date`` (default: the market day)."""
        return answer(lambda: get_service().restrictions(household, date), "path")

    @app.get("/v1/accounts/{account}", tags=["accounts"])
    def account(account: str, who: Caller) -> Any:
        """Lots with unrealized gain and term, holdings against the benchmark, mandate, YTD
        realized, cash."""
        return answer(lambda: get_service().account(account), "path")

    @app.get("/v1/runs/{run_id}", tags=["runs"])
    def run(run_id: str, who: Caller) -> Any:
        """A nightly run's summary (its run.json)."""
        return answer(lambda: get_service().run(run_id), "path")

    if console:
        from .console import add_console

        add_console(app, get_service, tokens)
    return app
