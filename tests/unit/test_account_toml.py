"""Strict reading of the account TOML and the lots CSV (issue 9): every key and column has a
declared type and range, and every bad value is an ``InputError`` naming it, never a traceback."""

from __future__ import annotations

from decimal import Decimal

import pytest

from solver.io import check_against_universe, read_account_toml, read_lots_csv
from solver.market import synthesize
from solver.types import AccountSettings
from taxview.core.errors import InputError
from taxview.core.records import Restrictions

README_EXAMPLE = """
[account]
id = "A-1001"
type = "taxable"
cash = 2000.00
fractional = false

[tax]
st_rate = 0.408
lt_rate = 0.238

[optimizer]
te_max = 0.02
max_weight = 0.05
cash_target = 0.002
cash_max = 0.01
lambda_te = 50
lambda_tax = 1
cost_bps = 5
min_trade_dollars = 100

[exclude]
symbols = ["S001"]
sectors = ["Energy"]

[restrictions]
no_buy = ["S044"]
no_loss_sale = ["S101"]
"""


def read(tmp_path, text: str):
    f = tmp_path / "a.toml"
    f.write_text(text)
    return read_account_toml(f)


def refused(tmp_path, text: str, pattern: str) -> InputError:
    with pytest.raises(InputError, match=pattern) as exc:
        read(tmp_path, text)
    assert "\n" not in str(exc.value)
    return exc.value


def test_the_readme_example_reads_every_key(tmp_path):
    s, cash, r = read(tmp_path, README_EXAMPLE)
    assert (s.account_id, s.account_type, s.fractional, cash) == ("A-1001", "taxable", False, 200000)
    assert (s.st_rate, s.lt_rate, s.te_max, s.max_weight) == (0.408, 0.238, 0.02, 0.05)
    assert (s.cash_target, s.cash_max, s.lambda_te, s.lambda_tax) == (0.002, 0.01, 50.0, 1.0)
    assert (s.cost_bps, s.min_trade_dollars) == (5.0, 100.0)
    assert all(isinstance(getattr(s, k), float) for k in ("lambda_te", "cost_bps", "min_trade_dollars"))
    assert s.exclude_symbols == {"S001"} and s.exclude_sectors == {"Energy"}
    assert r == Restrictions(frozenset({"S044"}), frozenset({"S101"}))


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert read(tmp_path, "") == (AccountSettings(), 0, Restrictions())


def test_no_buy_given_as_string_is_refused_naming_the_key(tmp_path):
    e = refused(
        tmp_path, '[restrictions]\nno_buy = "S001"\n', r"^restrictions\.no_buy: must be a list of symbols, got a string"
    )
    assert e.field == "restrictions.no_buy"


def test_no_loss_sale_with_a_non_string_or_empty_item_is_refused(tmp_path):
    refused(
        tmp_path, '[restrictions]\nno_loss_sale = ["S001", 7]\n', r"^restrictions\.no_loss_sale: .*item 2 is an integer"
    )
    refused(tmp_path, '[restrictions]\nno_loss_sale = [""]\n', r"^restrictions\.no_loss_sale: .*item 1 is empty")


def test_excluded_symbols_given_as_string_are_refused_not_split_into_letters(tmp_path):
    refused(tmp_path, '[exclude]\nsymbols = "S001"\n', r"^exclude\.symbols: must be a list of symbols, got a string")
    refused(
        tmp_path, "[exclude]\nsectors = [1]\n", r"^exclude\.sectors: must be a list of sectors.*item 1 is an integer"
    )


@pytest.mark.parametrize("value", ['"no"', '"false"', "0", "1"])
def test_fractional_must_be_a_boolean(tmp_path, value):
    refused(tmp_path, f"[account]\nfractional = {value}\n", r"^account\.fractional: must be true or false, got an? ")
    assert read(tmp_path, "[account]\nfractional = true\n")[0].fractional is True


@pytest.mark.parametrize(
    ("section", "key", "value", "got"),
    [
        ("optimizer", "te_max", "true", "a boolean"),
        ("optimizer", "cost_bps", '"5"', "a string"),
        ("tax", "st_rate", "nan", "nan"),
        ("optimizer", "lambda_tax", "inf", "inf"),
        ("optimizer", "min_trade_dollars", "[100]", "a list"),
        ("optimizer", "lambda_te", "1e999", "inf"),
        ("optimizer", "max_weight", "1979-05-27", "a date"),
    ],
)
def test_number_keys_refuse_booleans_strings_and_non_finite_values(tmp_path, section, key, value, got):
    refused(tmp_path, f"[{section}]\n{key} = {value}\n", rf"^{section}\.{key}: must be a finite number, got {got}")


@pytest.mark.parametrize(
    ("section", "key", "value", "need"),
    [
        ("tax", "st_rate", "1.0", r"in \[0, 1\)"),
        ("tax", "lt_rate", "-0.1", r"in \[0, 1\)"),
        ("optimizer", "te_max", "0", "> 0"),
        ("optimizer", "max_weight", "0", r"in \(0, 1\]"),
        ("optimizer", "max_weight", "1.5", r"in \(0, 1\]"),
        ("optimizer", "cash_target", "1", r"in \[0, 1\)"),
        ("optimizer", "cash_max", "-0.01", r"in \[0, 1\)"),
        ("optimizer", "lambda_te", "0", "> 0"),
        ("optimizer", "lambda_tax", "-1", ">= 0"),
        ("optimizer", "cost_bps", "-1", ">= 0"),
        ("optimizer", "min_trade_dollars", "-5", ">= 0"),
        ("account", "cash", "-1", ">= 0"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(tmp_path, section, key, value, need):
    refused(tmp_path, f"[{section}]\n{key} = {value}\n", rf"^{section}\.{key}: must be {need}, got ")


def test_range_boundaries_and_integers_are_accepted(tmp_path):
    s, cash, _ = read(
        tmp_path,
        "[account]\ncash = 0\n[tax]\nst_rate = 0\n[optimizer]\nmax_weight = 1\nlambda_tax = 0\n"
        "cost_bps = 0\nmin_trade_dollars = 0\ncash_target = 0\n",
    )
    assert (cash, s.st_rate, s.max_weight, s.lambda_tax, s.cost_bps, s.cash_target) == (0, 0.0, 1.0, 0.0, 0.0, 0.0)
    assert isinstance(s.max_weight, float)


def test_cash_target_above_cash_max_is_refused(tmp_path):
    refused(
        tmp_path,
        "[optimizer]\ncash_target = 0.05\ncash_max = 0.02\n",
        r"^optimizer\.cash_target: must be <= optimizer\.cash_max \(0\.02\)",
    )
    # against the default cash_max (0.01) too
    refused(
        tmp_path,
        "[optimizer]\ncash_target = 0.05\n",
        r"^optimizer\.cash_target: must be <= optimizer\.cash_max \(0\.01\)",
    )
    refused(
        tmp_path,
        "[optimizer]\ncash_max = 0.001\n",
        r"^optimizer\.cash_max: must be >= optimizer\.cash_target \(0\.002\)",
    )
    assert read(tmp_path, "[optimizer]\ncash_target = 0.02\ncash_max = 0.02\n")[0].cash_max == 0.02


@pytest.mark.parametrize(
    ("value", "got"), [('"100"', "a string"), ("true", "a boolean"), ("inf", "inf"), ("nan", "nan")]
)
def test_cash_must_be_a_finite_number(tmp_path, value, got):
    refused(tmp_path, f"[account]\ncash = {value}\n", rf"^account\.cash: must be a finite number, got {got}")


def test_cash_is_read_to_exact_cents_and_an_absurd_amount_is_refused(tmp_path):
    assert read(tmp_path, "[account]\ncash = 100.1\n")[1] == 10010
    assert read(tmp_path, "[account]\ncash = 12345678901234567\n")[1] == 1234567890123456700
    refused(tmp_path, "[account]\ncash = 1e300\n", r"^account\.cash: .*too large")


def test_account_id_must_be_a_non_empty_string(tmp_path):
    refused(tmp_path, '[account]\nid = ""\n', r"^account\.id: must not be empty")
    refused(tmp_path, "[account]\nid = 5\n", r"^account\.id: must be a string, got an integer")


def test_account_type_must_be_one_of_the_documented_types(tmp_path):
    refused(
        tmp_path, '[account]\ntype = "IRA"\n', r"^account\.type: must be one of taxable\|ira\|trust\|other, got 'IRA'"
    )
    assert read(tmp_path, '[account]\ntype = "ira"\n')[0].account_type == "ira"


def test_a_section_given_as_a_plain_value_is_refused(tmp_path):
    refused(tmp_path, "account = 5\n", r"^account: must be a table \[account\], got an integer")
    refused(tmp_path, "cash = 5\n", r"^cash: unknown section")


def test_a_non_utf8_account_file_is_refused_not_a_traceback(tmp_path):
    f = tmp_path / "a.toml"
    f.write_bytes(b'[account]\nid = "\xff"\n')
    with pytest.raises(InputError, match="^account: .*UTF-8"):
        read_account_toml(f)


# ---- names checked where the universe is known (taxview solve, after loading the snapshot) ----

MARKET = synthesize(names=6, days=10, factors=2, seed=3)


def test_unknown_excluded_symbols_are_refused_against_the_universe():
    s = AccountSettings(exclude_symbols=frozenset({MARKET.symbols[0], "ZZZ", "AAA"}))
    with pytest.raises(InputError, match=r"^exclude\.symbols: .*\['AAA', 'ZZZ'\] not in the market"):
        check_against_universe(s, Restrictions(), MARKET)


def test_unknown_excluded_sectors_are_refused_listing_the_known_sectors():
    s = AccountSettings(exclude_sectors=frozenset({"Enrgy"}))
    with pytest.raises(InputError, match=r"^exclude\.sectors: .*\['Enrgy'\].*known: \[") as exc:
        check_against_universe(s, Restrictions(), MARKET)
    assert MARKET.sectors[0] in str(exc.value)


@pytest.mark.parametrize("key", ["no_buy", "no_loss_sale"])
def test_unknown_restriction_symbols_are_refused(key):
    r = Restrictions(**{key: frozenset({"NOPE"})})
    with pytest.raises(InputError, match=rf"^restrictions\.{key}: .*\['NOPE'\]"):
        check_against_universe(AccountSettings(), r, MARKET)


def test_known_names_pass_the_universe_check():
    s = AccountSettings(exclude_symbols=frozenset(MARKET.symbols[:2]), exclude_sectors=frozenset(MARKET.sectors[:1]))
    r = Restrictions(frozenset(MARKET.symbols[2:3]), frozenset(MARKET.symbols[3:4]))
    assert check_against_universe(s, r, MARKET) is None


# ---- lots CSV ----

HEADER = "lot_id,symbol,quantity,basis,acquired,holding_start\n"


def lots_refused(tmp_path, body: str | bytes, pattern: str, header: str = HEADER) -> None:
    f = tmp_path / "lots.csv"
    data = header.encode() + (body if isinstance(body, bytes) else body.encode())
    f.write_bytes(data)
    with pytest.raises(InputError, match=pattern) as exc:
        read_lots_csv(f)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("a,S000,NaN,100,2020-01-02,", "quantity"),
        ("a,S000,Infinity,100,2020-01-02,", "quantity"),
        ("a,S000,10,-inf,2020-01-02,", "basis"),
        ("a,S000,10,sNaN,2020-01-02,", "basis"),
        ("a,S000,0,100,2020-01-02,", "quantity"),
        ("a,S000,10,-1,2020-01-02,", "basis"),
        ("a,S000,10,100,2020-02-30,", "acquired"),
        ("a,S000,10,100,yesterday,", "acquired"),
        ("a,S000,10,100,,", "acquired"),
        ("a,S000,10,100,2020-01-02,01/01/2019", "holding_start"),
    ],
)
def test_lots_bad_numbers_and_dates_are_refused_naming_row_and_column(tmp_path, row, column):
    lots_refused(tmp_path, f"ok,S001,1,1,2020-01-02,\n{row}\n", rf"^{column}: lots\.csv row 3: ")


def test_lots_basis_too_large_for_cents_is_refused_not_a_traceback(tmp_path):
    lots_refused(tmp_path, "a,S000,10,1e30,2020-01-02,\n", r"^basis: lots\.csv row 2: .*too large")


def test_lots_empty_symbol_is_refused(tmp_path):
    lots_refused(tmp_path, "a, ,10,100,2020-01-02,\n", r"^symbol: lots\.csv row 2: empty")


def test_lots_duplicate_lot_id_is_refused_naming_both_rows(tmp_path):
    lots_refused(
        tmp_path,
        "a,S000,1,1,2020-01-02,\nb,S001,1,1,2020-01-02,\na,S002,1,1,2020-01-02,\n",
        r"^lot_id: lots\.csv row 4: 'a' .*row 2",
    )


def test_lots_holding_start_after_acquired_is_refused_but_earlier_is_kept(tmp_path):
    lots_refused(
        tmp_path, "a,S000,1,1,2020-01-02,2020-03-01\n", r"^holding_start: lots\.csv row 2: 2020-03-01 is after acquired"
    )
    f = tmp_path / "ok.csv"
    f.write_text(HEADER + "a,S000,1,1,2020-01-02,2019-06-01\n")  # tacked on by a wash sale: legitimate
    assert str(read_lots_csv(f)[0].holding_start) == "2019-06-01"


def test_lots_unknown_column_is_refused_rather_than_ignored(tmp_path):
    lots_refused(
        tmp_path,
        "a,S000,1,1,2020-01-02,2019-06-01\n",
        r"^holdingstart: .*unknown column",
        header=HEADER.replace("holding_start", "holdingstart"),
    )


def test_lots_file_that_is_not_utf8_is_refused_not_a_traceback(tmp_path):
    lots_refused(tmp_path, b"a,S\xff00,1,1,2020-01-02,\n", r"^lots: .*lots\.csv: not UTF-8 text")


def test_lots_file_with_an_oversized_field_is_refused_not_a_traceback(tmp_path):
    lots_refused(tmp_path, "a," + "S" * 200_000 + ",1,1,2020-01-02,\n", r"^lots: lots\.csv row 2: ")


def test_lots_file_with_a_byte_order_mark_is_read(tmp_path):
    f = tmp_path / "lots.csv"
    f.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"a,S000,1,1,2020-01-02,\n")
    assert [x.lot_id for x in read_lots_csv(f)] == ["a"]


def test_huge_or_twice_given_outside_holdings_are_refused_naming_the_symbol(tmp_path):
    """``S001 = 1e30`` once escaped as a bare ``decimal.InvalidOperation`` (exit 1); ``" S001"`` and
    ``S001`` were two holdings of one name."""
    head = '[outside]\nmode = "complete"\n[outside.holdings]\n'
    e = refused(tmp_path, head + "S001 = 1e30\n", r"^outside\.holdings\.S001: must be under \$10\^13")
    assert e.field == "outside.holdings.S001"
    e = refused(tmp_path, head + '" S001" = 10\nS001 = 5\n', "'S001' is given twice")
    assert e.field == "outside.holdings.S001"
    e = refused(tmp_path, '[tilts]\n"va lue" = 0.5\n', "style 'va lue' must be letters, digits and _")
    assert e.field == "tilts.va lue"
    e = refused(tmp_path, "[tax]\ngain_budget = -1e30\n", r"^tax\.gain_budget: must be under \$10\^13")
    assert e.field == "tax.gain_budget"


def test_lots_csv_refuses_more_shares_or_places_than_the_ledger_holds(tmp_path):
    """A quantity of 1e30 once reached the orders' cents and escaped as ``InvalidOperation``; one of
    1e-7 shares made an infeasible solve (the ledger keeps 6 places)."""
    f = tmp_path / "lots.csv"
    for qty, message in (("1e30", "quantity must be > 0 and <= 10\\^12 shares"), ("0.0000001", "more than 6 decimal")):
        f.write_text(f"lot_id,symbol,quantity,basis,acquired\nL1,S001,{qty},100,2015-03-01\n")
        with pytest.raises(InputError, match=f"^quantity: lots.csv row 2: .*{message}") as err:
            read_lots_csv(f)
        assert err.value.field == "quantity"
    f.write_text(
        "lot_id,symbol,quantity,basis,acquired\nL1,S001,1000000000000,100,2015-03-01\nL2,S001,0.000001,1,2015-03-01\n"
    )
    assert [x.quantity for x in read_lots_csv(f)] == [Decimal(10) ** 12, Decimal("0.000001")]
