"""One entry point for every streaming kernel (``step_any``) and the generic batch runner.

``run_batch`` feeds a whole array through the streaming kernel, so the batch form equals the
streaming form bit for bit by construction.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from jts.indicators import momentum, moving, patterns, volatility, volume


@nb.njit(cache=True)
def step_any(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    if kind < 20:
        moving.step(kind, st, o, x, p, out)
    elif kind < 50:
        momentum.step(kind, st, o, x, p, out)
    elif kind < 70:
        volatility.step(kind, st, o, x, p, out)
    elif kind < 80:
        volume.step(kind, st, o, x, p, out)
    else:
        patterns.step(kind, st, o, x, p, out)


@nb.njit(cache=True)
def run_batch(kind, xs, p, n_out, ssize):  # type: ignore[no-untyped-def]
    """xs: float64[n_inputs, n]; returns float64[n_out, n]."""
    n = xs.shape[1]
    k = xs.shape[0]
    out = np.empty((n_out, n))
    st = np.zeros(ssize)
    xb = np.zeros(4)
    ob = np.zeros(8)
    for i in range(n):
        for j in range(k):
            xb[j] = xs[j, i]
        step_any(kind, st, 0, xb, p, ob)
        for j in range(n_out):
            out[j, i] = ob[j]
    return out
