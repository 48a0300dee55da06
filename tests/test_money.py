from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fenqi.money import (
    Money,
    Remainder,
    Rounding,
    allocate,
    apply_bp,
    format_fen,
    parse_yuan,
    split_evenly,
)


@given(st.integers(0, 10**12), st.integers(1, 60), st.sampled_from(list(Remainder)))
def test_split_evenly_sums_to_whole(total: int, parts: int, remainder: Remainder) -> None:
    out = split_evenly(total, parts, remainder)
    assert sum(out) == total and len(out) == parts
    assert max(out) - min(out) <= parts  # the remainder is less than one fen per part
    assert all(x >= 0 for x in out)


def test_split_remainder_goes_where_the_product_says() -> None:
    assert split_evenly(1000, 3) == [333, 333, 334]
    assert split_evenly(1000, 3, Remainder.FIRST) == [334, 333, 333]


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_allocate_sums_to_whole(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        with pytest.raises(ValueError):
            allocate(total, weights)
        return
    out = allocate(total, weights)
    assert sum(out) == total
    assert all(w > 0 or x == 0 for w, x in zip(weights, out, strict=True))


def test_apply_bp_rounding() -> None:
    assert apply_bp(10_000, 250) == 250
    assert apply_bp(333, 5) == 0  # 0.1665 fen rounds half up to 0
    assert apply_bp(1_000, 5, Rounding.UP) == 1
    assert apply_bp(100, Decimal("2.5")) == 0


def test_money_refuses_floats_and_mixed_currency() -> None:
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(1, "CNY") + Money(1, "USD")
    assert str(Money(123456)) == "1,234.56 CNY"
    assert format_fen(-5) == "-0.05"


@given(st.integers(min_value=0, max_value=10**15))
def test_parse_yuan_reads_back_what_format_fen_writes(amount_fen: int) -> None:
    assert parse_yuan(format_fen(amount_fen)) == amount_fen


def test_parse_yuan_refuses_what_is_not_an_amount() -> None:
    assert parse_yuan(" 12000 ") == 1_200_000 and parse_yuan("0.5") == 50 and parse_yuan(".07") == 7
    assert parse_yuan("12,000.50") == 1_200_050 and parse_yuan("1,234,567") == 123_456_700
    # issue 25 item 11d: "1,0,0" was read as ¥100; commas belong between groups of three
    for bad in (
        "",
        "abc",
        "-5",
        "1.234",
        "1.2.3",
        "1e5",
        "²",
        ".",
        "12 000",
        "1,0,0",
        "1,00",
        ",100",
        "100,",
        "1,0000",
        "12,34.5",
        "5.",
        "1..5",
        "١٢",
    ):
        with pytest.raises(ValueError):
            parse_yuan(bad)
