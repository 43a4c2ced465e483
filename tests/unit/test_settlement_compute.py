"""The settlement arithmetic: product.md's worked example to the cent, and its invariants."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.settlement.compute import Holding, settle, split_largest_remainder

FEE = Decimal("0.05")


def test_the_worked_example_of_product_md():
    # budget 6,000,000, premium 0.25, 2,540 tokens: price 2,953, threshold 2,032; S = 2,400.
    result = settle(
        holdings=[Holding(1, 1000, 1), Holding(2, 1400, 2)],
        token_price_cents=2953,
        threshold_tokens=2032,
        fee_rate=FEE,
        v_target_cents=1_000_000,
        v_verified_cents=700_000,
        buffer_rate=Decimal("0.05"),
    )

    assert result.raised_cents == 7_087_200
    assert result.cost_tranche_cents == 6_000_496
    assert result.cost_fee_cents == 300_025
    assert result.cost_released_cents == 5_700_471
    assert result.escrow_cents == 1_086_704
    assert result.tokens_minted == 1680
    assert result.premium_payout_cents == 760_692
    assert result.premium_fee_cents == 38_035
    assert result.premium_paid_out_cents == 722_657
    assert result.refund_total_cents == 326_012
    assert (
        result.cost_fee_cents
        + result.cost_released_cents
        + result.premium_fee_cents
        + result.premium_paid_out_cents
        + result.refund_total_cents
    ) == 7_087_200
    # product.md: 84 of the 1,680 go to the buffer pool, 1,596 to the buyers (1,000 : 1,400).
    assert result.tokens_buffer == 84
    assert [(b.tokens_minted, b.refund_cents) for b in result.buyers] == [
        (665, 135_838),
        (931, 190_174),
    ]


def test_the_buffer_is_the_floor_of_its_share_of_the_minted():
    def buffer(minted_of_100, rate):
        return settle(
            holdings=[Holding(1, 100, 1)],
            token_price_cents=10,
            threshold_tokens=1,
            fee_rate=FEE,
            v_target_cents=100,
            v_verified_cents=minted_of_100,
            buffer_rate=Decimal(rate),
        ).tokens_buffer

    assert buffer(19, "0.05") == 0  # 0.95
    assert buffer(20, "0.05") == 1
    assert buffer(39, "0.05") == 1  # 1.95
    assert buffer(100, "0") == 0
    assert buffer(100, "0.999") == 99


def test_left_over_units_go_to_the_largest_remainders_then_the_earlier_pledge():
    holdings = [Holding(10, 1, 3), Holding(20, 1, 1), Holding(30, 1, 2)]
    # 2 units over 3 equal holdings: the remainders tie, so the two earliest pledges win.
    assert split_largest_remainder(2, holdings) == {10: 0, 20: 1, 30: 1}
    # 7 over 1, 2, 4: exact shares 1, 2, 4.
    assert split_largest_remainder(7, [Holding(1, 1, 1), Holding(2, 2, 2), Holding(3, 4, 3)]) == {
        1: 1,
        2: 2,
        3: 4,
    }


def test_nothing_verified_refunds_the_whole_escrow():
    result = settle(
        holdings=[Holding(1, 100, 1)],
        token_price_cents=1000,
        threshold_tokens=80,
        fee_rate=FEE,
        v_target_cents=5000,
        v_verified_cents=0,
        buffer_rate=Decimal("0.05"),
    )
    assert (result.tokens_minted, result.premium_payout_cents, result.refund_total_cents) == (
        0,
        0,
        20_000,
    )


@pytest.mark.parametrize(
    ("verified", "paid", "message"),
    [(1001, 100, "between zero"), (-1, 100, "between zero"), (500, 79, "below its threshold")],
)
def test_impossible_inputs_are_refused(verified, paid, message):
    with pytest.raises(ValueError, match=message):
        settle(
            holdings=[Holding(1, paid, 1)],
            token_price_cents=1000,
            threshold_tokens=80,
            fee_rate=FEE,
            v_target_cents=1000,
            v_verified_cents=verified,
            buffer_rate=Decimal("0.05"),
        )


@st.composite
def projects(draw):
    price = draw(st.integers(1, 500_000))
    threshold = draw(st.integers(1, 5_000))
    total = draw(st.integers(threshold, threshold * 2))
    sizes = draw(st.lists(st.integers(1, 500), min_size=1, max_size=40))
    paid = sum(sizes)
    if paid < threshold:
        sizes.append(threshold - paid)
    holdings = [Holding(n, size, n) for n, size in enumerate(sizes)]
    target = draw(st.integers(1, 10**12))
    verified = draw(st.integers(0, target))
    fee = Decimal(draw(st.integers(0, 999))) / 1000
    buffer = Decimal(draw(st.integers(0, 999))) / 1000
    return holdings, price, threshold, target, verified, fee, total, buffer


@settings(max_examples=400)
@given(projects())
def test_every_cent_and_token_is_accounted_for(project):
    holdings, price, threshold, target, verified, fee, _total, buffer = project
    result = settle(
        holdings=holdings,
        token_price_cents=price,
        threshold_tokens=threshold,
        fee_rate=fee,
        v_target_cents=target,
        v_verified_cents=verified,
        buffer_rate=buffer,
    )

    charges = sum(h.tokens_paid for h in holdings) * price
    assert charges == (
        result.cost_released_cents
        + result.cost_fee_cents
        + result.premium_paid_out_cents
        + result.premium_fee_cents
        + result.refund_total_cents
    )
    assert result.tokens_buffer == int(result.tokens_minted * buffer)  # floor: both >= 0
    assert sum(b.tokens_minted for b in result.buyers) + result.tokens_buffer == (
        result.tokens_minted
    )
    assert sum(b.refund_cents for b in result.buyers) == result.refund_total_cents
    for share in result.buyers:
        assert 0 <= share.tokens_minted <= share.tokens_paid
        assert share.refund_cents >= 0
    for amount in (
        result.cost_released_cents,
        result.premium_paid_out_cents,
        result.refund_total_cents,
        result.escrow_cents,
    ):
        assert amount >= 0
