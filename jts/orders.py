"""The order state machine: which status may follow which.

One table, two functions. ``can_transition(a, b)`` answers; ``transition(a, b)`` returns ``b``
or raises :class:`jts.errors.InvariantError`. A repeated status (``accepted`` → ``accepted``,
a broker re-sending the same report) is an idempotent no-op and always allowed.

::

    new ──► submitted ──► accepted ──► partially_filled ──► filled
     │          │            │               │
     └──────────┴────────────┴───────────────┴──► cancelled / rejected / expired / unknown
    unknown ──► any status the broker reports (except new)

Fills may race acknowledgements, so ``new`` and ``submitted`` may go straight to
``partially_filled`` or ``filled``. Terminal states (filled, cancelled, rejected, expired)
accept nothing further.
"""

from __future__ import annotations

from jts.errors import InvariantError
from jts.types import OrderStatus as S

_ALL_BUT_NEW = frozenset(s for s in S if s is not S.NEW)

TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED,
                      S.REJECTED, S.EXPIRED, S.UNKNOWN}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED,
                            S.EXPIRED, S.UNKNOWN}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED,
                           S.UNKNOWN}),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.CANCELLED, S.EXPIRED, S.UNKNOWN}),
    S.UNKNOWN: _ALL_BUT_NEW,
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


def can_transition(current: S, new: S) -> bool:
    """True when an order in ``current`` may move to ``new`` (same status: always)."""
    return current == new or new in TRANSITIONS[current]


def transition(current: S, new: S, *, client_order_id: str = "") -> S:
    """Return ``new`` if the move is legal, else raise :class:`InvariantError`."""
    if not can_transition(current, new):
        who = f"order {client_order_id}: " if client_order_id else ""
        raise InvariantError(f"{who}illegal order transition {current.value} -> {new.value}")
    return new
