"""§2's netting of a tax year (``taxview.core.tax.net_year``): known answers, and on random years
the laws it keeps — nothing made or lost by the offset, a net loss split exactly between the
deduction and the carry-forward, the cap, carries ≤ 0 keeping their character, ST used first."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxview.core.errors import InputError
from taxview.core.tax import MARRIED_SEPARATELY_CAP_CENTS, ORDINARY_LOSS_CAP_CENTS, YearNetting, net_year

CENTS = st.integers(min_value=-(10**13), max_value=10**13)
LOSS = st.integers(min_value=-(10**13), max_value=0)
CAP = st.sampled_from([ORDINARY_LOSS_CAP_CENTS, MARRIED_SEPARATELY_CAP_CENTS, 0, 1])


@pytest.mark.parametrize(
    ("st_cents", "lt_cents", "carry", "cap", "want"),
    [
        (10_000_00, 5_000_00, (0, 0), 3_000_00, YearNetting(10_000_00, 5_000_00, 0, 0, 0)),  # gains: nothing to net
        (-4_000_00, 10_000_00, (0, 0), 3_000_00, YearNetting(0, 6_000_00, 0, 0, 0)),  # ST loss offsets the LT gain
        (-10_000_00, 4_000_00, (0, 0), 3_000_00, YearNetting(-6_000_00, 0, 3_000_00, -3_000_00, 0)),  # keeps ST
        (4_000_00, -10_000_00, (0, 0), 3_000_00, YearNetting(0, -6_000_00, 3_000_00, 0, -3_000_00)),  # keeps LT
        (2_000_00, 0, (-3_000_00, 0), 3_000_00, YearNetting(-1_000_00, 0, 1_000_00, 0, 0)),  # the carry nets in
        (0, -5_000_00, (-1_000_00, 0), 3_000_00, YearNetting(-1_000_00, -5_000_00, 3_000_00, 0, -3_000_00)),
        (-1_000_00, -1_000_00, (0, 0), 1_500_00, YearNetting(-1_000_00, -1_000_00, 1_500_00, 0, -500_00)),  # MFS
        (0, 0, (-7_000_00, -2_000_00), 3_000_00, YearNetting(-7_000_00, -2_000_00, 3_000_00, -4_000_00, -2_000_00)),
        (5_000_00, 0, (0, -5_000_00), 3_000_00, YearNetting(0, 0, 0, 0, 0)),  # an LT carry offsets an ST gain
        (-1, 0, (0, 0), 3_000_00, YearNetting(-1, 0, 1, 0, 0)),  # a cent
    ],
)
def test_a_year_nets_st_with_st_lt_with_lt_then_across_with_the_cap_and_the_carry(st_cents, lt_cents, carry, cap, want):
    assert net_year(st_cents, lt_cents, carry[0], carry[1], cap) == want


def test_a_positive_carry_a_float_or_a_negative_cap_is_refused():
    with pytest.raises(InputError, match="carry"):
        net_year(0, 0, 100, 0)
    with pytest.raises(InputError, match="st_cents"):
        net_year(1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cap_cents"):
        net_year(0, 0, cap_cents=-1)


@settings(max_examples=2000, deadline=None)
@given(CENTS, CENTS, LOSS, LOSS, CAP)
def test_netting_conserves_the_year_and_splits_a_net_loss_between_deduction_and_carry(st_in, lt_in, cst, clt, cap):
    n = net_year(st_in, lt_in, cst, clt, cap)
    total = st_in + lt_in + cst + clt
    assert n.st_cents + n.lt_cents == total  # the offset makes and loses nothing
    assert not (n.st_cents < 0 < n.lt_cents or n.lt_cents < 0 < n.st_cents)  # never a gain beside a loss
    assert 0 <= n.deduction_cents <= cap
    assert n.carry_st_cents <= 0 and n.carry_lt_cents <= 0
    loss = -(min(n.st_cents, 0) + min(n.lt_cents, 0))
    if loss > 0:  # conservation: the net loss is deducted (up to the cap) or carried, to the cent
        assert n.deduction_cents + -(n.carry_st_cents + n.carry_lt_cents) == loss
        assert n.deduction_cents == min(cap, loss)
    else:
        assert (n.deduction_cents, n.carry_st_cents, n.carry_lt_cents) == (0, 0, 0)


@settings(max_examples=2000, deadline=None)
@given(CENTS, CENTS, LOSS, LOSS, CAP)
def test_a_carry_keeps_its_character_and_the_short_term_loss_is_used_first(st_in, lt_in, cst, clt, cap):
    n = net_year(st_in, lt_in, cst, clt, cap)
    assert n.carry_st_cents == 0 or n.st_cents <= n.carry_st_cents < 0  # an ST carry comes from an ST loss
    assert n.carry_lt_cents == 0 or n.lt_cents <= n.carry_lt_cents < 0
    if n.carry_st_cents < 0:  # ST left over: the deduction took nothing of the LT loss
        assert n.carry_lt_cents == min(n.lt_cents, 0)
    if n.lt_cents < 0 and n.carry_lt_cents > n.lt_cents:  # LT used: the ST loss went first, all of it
        assert n.carry_st_cents == 0


@settings(max_examples=500, deadline=None)
@given(CENTS, CENTS, LOSS, LOSS)
def test_a_loss_carried_into_a_quiet_year_is_used_the_same_way_as_in_the_year_it_was_made(st_in, lt_in, cst, clt):
    """Two years rolled one after the other: the second year's carry-in is the first's carry-out, and
    over both the deductions plus what is still carried equal the losses (when no gain came)."""
    first = net_year(min(st_in, 0), min(lt_in, 0), cst, clt)
    second = net_year(0, 0, first.carry_st_cents, first.carry_lt_cents)
    made = -(min(st_in, 0) + min(lt_in, 0) + cst + clt)
    assert first.deduction_cents + second.deduction_cents - second.carry_st_cents - second.carry_lt_cents == made
