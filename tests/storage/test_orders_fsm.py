"""The order state machine (jts.orders) and the position arithmetic (ledger_core)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jts.errors import InvariantError
from jts.orders import can_transition, transition
from jts.storage.ledger_core import apply_to_position
from jts.types import OrderStatus as S
from jts.types import Side

statuses = st.sampled_from(list(S))


@given(statuses, statuses)
def test_terminal_states_accept_only_themselves(a: S, b: S) -> None:
    if a.is_terminal and a != b:
        assert not can_transition(a, b)
        with pytest.raises(InvariantError, match=f"{a.value} -> {b.value}"):
            transition(a, b)


@given(statuses)
def test_unknown_resolves_to_anything_but_new(b: S) -> None:
    assert can_transition(S.UNKNOWN, b) is (b is not S.NEW)


def test_happy_path_and_no_way_back() -> None:
    path = [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    for a, b in itertools.pairwise(path):
        assert transition(a, b) is b
    assert not can_transition(S.ACCEPTED, S.SUBMITTED)
    assert not can_transition(S.PARTIALLY_FILLED, S.ACCEPTED)
    assert not can_transition(S.SUBMITTED, S.NEW)


fills = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]),
                           st.integers(1, 1000), st.integers(1, 100_000)), max_size=40)


@given(fills, st.integers(1, 100_000))
def test_position_pnl_conserves_money(seq: list[tuple[Side, int, int]], mark: int) -> None:
    """Cash from trading + position at mark == realized + unrealized (avg-cost identity)."""
    q, avg, realized, cash = Decimal(0), Decimal(0), Decimal(0), Decimal(0)
    for side, qty, price in seq:
        q, avg, r = apply_to_position(q, avg, side, Decimal(qty), Decimal(price))
        realized += r
        cash += Decimal(-side.sign * qty * price)
    unrealized = q * (Decimal(mark) - avg)
    assert abs((cash + q * mark) - (realized + unrealized)) < Decimal("1e-3")
    assert q == sum(s.sign * n for s, n, _ in seq)
