"""``taxview accounts``: account mandates — import a file, set keys, show one account.

Every change is checked in full before anything is written (exit 2 naming the account and key),
versioned, and journaled in the household (when, who, old → new); the nightly run reads it from
its next run on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path

from .cmd_ledger import _Ledger, roll_dollars


def _actor(args: argparse.Namespace) -> str:
    return args.actor or getpass.getuser()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _cmd_accounts_import(args: argparse.Namespace) -> int:
    from ledger.api import AccountInfo
    from ledger.files import read_account_rows
    from taxview.core.errors import InputError

    rows = read_account_rows(args.file)
    seen: set[str] = set()
    with _Ledger(args) as store:
        homes = store.accounts()
        new, changes = [], []
        for where, row in rows:  # every row checked before anything is written
            account, mandate = row["account"], dict(row["mandate"])
            if account in seen:
                raise InputError("account", f"{where}: account {account!r} is listed twice")
            seen.add(account)
            if account in homes:
                if row.get("household", homes[account]) != homes[account]:
                    raise InputError("household", f"{where}: the account belongs to household {homes[account]!r}")
                if "cash_cents" in row:
                    raise InputError("cash", f"{where}: cash of an existing account moves with `taxview cash`")
                if mandate:
                    changes.append((account, mandate))
                continue
            for key in ("household", "account_type"):
                if key not in row and key not in mandate:
                    raise InputError(key, f"{where}: a new account needs {key}")
            kind = mandate.pop("account_type")
            rates = {k: mandate.pop(k) for k in ("st_rate", "lt_rate") if k in mandate}
            new.append(
                AccountInfo(
                    account, row["household"], kind, **rates, cash_cents=row.get("cash_cents", 0), mandate=mandate
                )
            )
        store.check_accounts(new)
        store.add_accounts(new)
        at, actor = _now(), _actor(args)
        for account, mandate in changes:
            store.set_mandate(account, mandate, actor, at)
    print(f"accounts: {len(new)} created, {len(changes)} mandates changed", file=sys.stderr)
    return 0


def _cmd_accounts_set(args: argparse.Namespace) -> int:
    from taxview.core.errors import InputError
    from taxview.core.mandate import check

    pairs = {}
    for item in args.changes:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError("change", f"{item!r} is not key=value (an empty value: back to the firm's default)")
        pairs[key.strip()] = value
    changes = check(pairs, f"account {args.account}", resets=True)
    for key in ("account_type", "st_rate", "lt_rate"):
        if key in changes and changes[key] is None:
            raise InputError(key, f"account {args.account}: {key} has no firm default; give a value")
    with _Ledger(args) as store:
        info = store.set_mandate(args.account, changes, _actor(args), _now())
    print(f"account {info.account}: mandate version {info.mandate_version}", file=sys.stderr)
    return 0


def _cmd_accounts_show(args: argparse.Namespace) -> int:
    from cluster.settings import read_firm_defaults, read_retention
    from cluster.step import settings_for
    from ledger.mandates import shown
    from ledger.trades import money
    from solver.types import AccountSettings
    from taxview.core.mandate import plain

    defaults = read_firm_defaults(args.firm) if args.firm else AccountSettings()
    archive = read_retention(args.firm, Path(args.workdir) / "archive").archive_dir  # older history, compacted
    with _Ledger(args) as store:
        info = store.account(args.account)
        journal = store.journal(info.household, archive if Path(archive).is_dir() else None)
        history = [e for e in journal if e["account"] == args.account and "mandate" in e["entry"]]
        book = store.carry_book(info.household)
    effective = settings_for(defaults, info)
    out = {
        "account": info.account,
        "household": info.household,
        "cash": money(info.cash_cents),
        "mandate_version": info.mandate_version,
        "mandate": shown(info),
        "status": info.mandate.get("status", "active"),
        "effective": {
            k: sorted(v) if isinstance(v, frozenset) else plain(k, v)
            for k, v in sorted(vars_of(effective).items())
            if k != "account_id"
        },
        "history": [e["entry"]["mandate"] for e in history],
        "carry_forward": {
            "first_year": book.first,
            "into": {str(y): {"st": money(st), "lt": money(lt)} for y, (st, lt) in book.carry.items()},
            "rolls": {str(y): roll_dollars(r) for y, r in book.rolls.items()},
        },
    }
    if args.json:
        json.dump(out, sys.stdout, indent=1, default=str)
        print()
        return 0
    print(
        f"account {info.account} in household {info.household}: mandate version {info.mandate_version}, {out['status']}"
    )
    print(f"  cash {out['cash']}")
    print("  states: " + ", ".join(f"{k}={v}" for k, v in out["mandate"].items()))
    print("  effective: " + ", ".join(f"{k}={v}" for k, v in out["effective"].items()))
    latest = book.latest()
    if latest is None:
        print(
            f"  household {info.household} carry-forward: not rolled yet (the opening carry: the mandates' "
            "carry_st/carry_lt)"
        )
    else:
        year, st, lt = latest
        print(
            f"  household {info.household} carry-forward into {year}: ST {money(st)} LT {money(lt)} "
            f"(rolled from {year - 1}; first rolled {book.first})"
        )
    for h in out["history"]:
        changed = {k: (h["old"].get(k), h["new"].get(k)) for k in h["old"].keys() | h["new"].keys()}
        diff = ", ".join(f"{k}: {a} → {b}" for k, (a, b) in sorted(changed.items()) if a != b)
        print(f"  v{h['version']} {h['at']} by {h['actor']}: {diff or 'no change'}")
    return 0


def vars_of(settings) -> dict:
    return {f: getattr(settings, f) for f in settings.__dataclass_fields__}


def _cmd_cash(args: argparse.Namespace) -> int:
    """One flow (ACCOUNT AMOUNT --date D) or a night's file (``account,amount,date,reason``)."""
    from taxview.core.errors import InputError

    if args.file:
        if args.account or args.amount:
            raise InputError("file", "give --file or ACCOUNT AMOUNT, not both")
        flows = _read_flows(args.file)
    else:
        if not (args.account and args.amount and args.date):
            raise InputError("amount", "give ACCOUNT AMOUNT --date D (or --file FLOWS.csv)")
        where = f"account {args.account}"
        flows = [(where, args.account, _amount(args.amount, where), _day(args.date, where), args.reason or "")]
    with _Ledger(args) as store:
        homes = store.accounts()
        values = _account_values(store, args.market, {a for _, a, c, _, _ in flows if c < 0}) if args.market else {}
        for where, account, cents, _, _ in flows:  # every flow checked before any is written
            if account not in homes:
                raise InputError("account", f"{where}: unknown account {account!r}")
            if cents < 0 and account in values and -cents > values[account]:
                has = values[account] / 100
                raise InputError(
                    "amount", f"{where}: a withdrawal of ${-cents / 100:,.2f} is larger than the account (${has:,.2f})"
                )
        at, actor, new = _now(), _actor(args), 0
        for _, account, cents, day, reason in flows:
            new += store.add_cash_flow(account, cents, day, reason, actor, at)
    print(f"cash flows: {new} recorded, {len(flows) - new} already recorded; booked on their nights", file=sys.stderr)
    return 0


def _amount(text: str, where: str) -> int:
    from decimal import Decimal, InvalidOperation

    from taxview.core.errors import InputError

    try:
        d = Decimal(str(text).strip())
    except InvalidOperation:
        raise InputError("amount", f"{where}: amount {text!r} is not a number") from None
    if not d.is_finite() or d == 0 or d != d.quantize(Decimal("0.01")) or abs(d) >= Decimal(10) ** 13:
        raise InputError("amount", f"{where}: amount must be non-zero dollars to the cent under 10^13, got {text!r}")
    return int(d * 100)


def _day(text: str, where: str) -> dt.date:
    from taxview.core.errors import InputError

    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError("date", f"{where}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


def _read_flows(path: str) -> list[tuple]:
    from taxview.core.csvfile import csv_rows

    out = []
    for row_no, row in csv_rows(path, ("account", "amount", "date"), "cash flows", optional=("reason",)):
        where = f"{path} row {row_no}"
        out.append(
            (
                where,
                row["account"].strip(),
                _amount(row["amount"], where),
                _day(row["date"], where),
                (row.get("reason") or "").strip(),
            )
        )
    return out


def _account_values(store, market_dir: str, accounts: set[str]) -> dict[str, int]:
    """Cash plus holdings at the market's last close, in cents, of each account."""
    from solver.market import read_market
    from taxview.core.money import value_cents

    m = read_market(market_dir)
    m.require_closes(len(m.dates) - 1, len(m.dates) - 1, "a withdrawal is valued at the market's last close")
    last = {s: float(p) for s, p in zip(m.symbols, m.prices[-1])}
    out = {}
    for a in accounts:
        held = sum(value_cents(x.quantity, last[x.symbol]) for x in store.lots(a) if x.symbol in last)
        out[a] = store.account(a).cash_cents + held
    return out
