"""Evaluators of a compiled program: streaming (per-symbol state, one numba call per batch)
and vectorized (whole arrays per op; position-dependent ops evaluated per bar by
:func:`jts.strategy.kernel.eval_bar`)."""

from __future__ import annotations

import numpy as np

from jts.errors import DataError
from jts.indicators.dispatch import run_batch
from jts.indicators.registry import SPECS
from jts.strategy import kernel as K
from jts.strategy.compile import Program

_N_OUT = {s.kind: len(s.outputs) for s in SPECS}
F64 = np.float64


class StreamEvaluator:
    """Per-symbol streaming state; symbols are dense indices 0..n_symbols-1."""

    def __init__(self, prog: Program, n_symbols: int, entry_reg: int, exit_reg: int) -> None:
        self._p = prog
        self._entry, self._exit = entry_reg, exit_reg
        self._regs = prog.regs.copy()
        self.state = np.zeros((n_symbols, prog.state_size))
        self._one_i = np.zeros(1, np.int64)
        self._one_b = np.zeros((1, 6))
        self._one_f = np.zeros(1)
        self._one_h = np.zeros(1, np.int64)
        self._one_e = np.zeros(1)
        self._oe = np.zeros(1, np.bool_)
        self._ox = np.zeros(1, np.bool_)

    @property
    def n_symbols(self) -> int:
        return int(self.state.shape[0])

    def resize(self, n_symbols: int) -> None:
        """Grow (new symbols start fresh) or shrink the symbol table."""
        new = np.zeros((n_symbols, self._p.state_size))
        k = min(n_symbols, self.n_symbols)
        new[:k] = self.state[:k]
        self.state = new

    def reset(self, sym: int) -> None:
        self.state[sym] = 0.0

    def update(self, sym: int, open_: float, high: float, low: float, close: float,
               volume: float, value: float, position: float = 0.0, bars_held: int = 0,
               entry_price: float = float("nan")) -> tuple[bool, bool]:
        """One closed bar of one symbol -> (entry, exit)."""
        self._one_i[0] = sym
        b = self._one_b[0]
        b[0], b[1], b[2], b[3], b[4], b[5] = open_, high, low, close, volume, value
        self._one_f[0] = position
        self._one_h[0] = bars_held
        self._one_e[0] = entry_price
        K.run_rows(self._p.ops, self._p.fprm, self._regs, self.state, self._one_i, self._one_b,
                   self._one_f, self._one_h, self._one_e, self._entry, self._exit, self._oe,
                   self._ox)
        return bool(self._oe[0]), bool(self._ox[0])

    def update_batch(self, sym_idx: np.ndarray, ohlcvv: np.ndarray, position: np.ndarray,
                     bars_held: np.ndarray, entry_price: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """k closed bars (rows processed in order) -> (entry bool[k], exit bool[k])."""
        k = sym_idx.shape[0]
        if ohlcvv.shape != (k, 6) or position.shape != (k,) or bars_held.shape != (k,) \
                or entry_price.shape != (k,):
            raise DataError("update_batch: shapes must be [k], [k,6], [k], [k], [k]")
        if k and (sym_idx.min() < 0 or sym_idx.max() >= self.n_symbols):
            raise DataError(f"update_batch: symbol index out of range 0..{self.n_symbols - 1}")
        oe = np.empty(k, np.bool_)
        ox = np.empty(k, np.bool_)
        K.run_rows(self._p.ops, self._p.fprm, self._regs, self.state,
                   np.ascontiguousarray(sym_idx, np.int64), np.ascontiguousarray(ohlcvv, F64),
                   np.ascontiguousarray(position, F64), np.ascontiguousarray(bars_held, np.int64),
                   np.ascontiguousarray(entry_price, F64), self._entry, self._exit, oe, ox)
        return oe, ox


class VectorSignals:
    """Whole-array evaluation of one symbol.

    ``regs`` (float64[n_regs, n_bars]) holds every market-only sub-expression; ``ops``/``tail``
    is the per-bar remainder. A numba backtest kernel calls
    ``kernel.eval_bar(vs.ops, vs.tail, vs.regs, t, position, bars_held, entry_price,
    vs.entry_reg, vs.exit_reg)``. When ``position_dependent`` is False, ``entry``/``exit``
    are already complete.
    """

    def __init__(self, prog: Program, entry_reg: int, exit_reg: int, cols: list[np.ndarray]
                 ) -> None:
        n = cols[0].shape[0]
        if any(c.shape != (n,) for c in cols):
            raise DataError("vector: open/high/low/close/volume/value must be 1-D and equal length")
        self.ops = prog.ops
        self.tail = prog.tail
        self.entry_reg, self.exit_reg = entry_reg, exit_reg
        regs = np.full((prog.regs.shape[0], n), np.nan)
        for j, c in enumerate(cols):
            regs[j] = c
        for r in range(K.N_FIXED, prog.regs.shape[0]):
            if not np.isnan(prog.regs[r]):
                regs[r] = prog.regs[r]
        tail = set(prog.tail.tolist())
        with np.errstate(all="ignore"):
            for i in range(prog.ops.shape[0]):
                if i not in tail:
                    _vector_op(prog, i, regs)
        self.regs = regs
        self.position_dependent = bool(tail)
        self.entry = regs[entry_reg] != 0.0 if not tail else None
        self.exit = regs[exit_reg] != 0.0 if not tail else None

    def signals(self, position: np.ndarray, bars_held: np.ndarray, entry_price: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Entry/exit per bar given the position state in force at each bar."""
        if not self.position_dependent:
            assert self.entry is not None and self.exit is not None
            return self.entry.copy(), self.exit.copy()
        n = self.regs.shape[1]
        e = np.empty(n, np.bool_)
        x = np.empty(n, np.bool_)
        for t in range(n):  # convenience path; backtests call eval_bar from numba instead
            e[t], x[t] = K.eval_bar(self.ops, self.tail, self.regs, t, float(position[t]),
                                    int(bars_held[t]), float(entry_price[t]), self.entry_reg,
                                    self.exit_reg)
        return e, x


def _vector_op(prog: Program, i: int, regs: np.ndarray) -> None:
    op, dst, a, b, c = (int(v) for v in prog.ops[i, :5])
    if op == K.IND:
        kind, n_in = int(prog.ops[i, 5]), int(prog.ops[i, 7])
        xs = np.ascontiguousarray(regs[prog.ops[i, 8: 8 + n_in]])
        size = _state_size(kind, prog.fprm[i])
        out = run_batch(kind, xs, prog.fprm[i], c, size)
        regs[dst: dst + c] = out
        return
    if op == K.LAG:
        n = int(prog.ops[i, 5])
        regs[dst, :n] = np.nan
        regs[dst, n:] = regs[a, : regs.shape[1] - n]
        return
    x, y, z = regs[a], regs[b], regs[c]
    if op == K.ADD:
        r = x + y
    elif op == K.SUB:
        r = x - y
    elif op == K.MUL:
        r = x * y
    elif op == K.DIV:
        r = np.where(y != 0.0, x / np.where(y != 0.0, y, 1.0), np.nan)
    elif op == K.NEG:
        r = -x
    elif op in (K.LT, K.LE, K.GT, K.GE, K.EQ, K.NE):
        fn = {K.LT: np.less, K.LE: np.less_equal, K.GT: np.greater, K.GE: np.greater_equal,
              K.EQ: np.equal, K.NE: np.not_equal}[op]
        r = fn(x, y).astype(F64)
    elif op == K.AND:
        r = ((x != 0.0) & (y != 0.0)).astype(F64)
    elif op == K.OR:
        r = ((x != 0.0) | (y != 0.0)).astype(F64)
    elif op == K.NOT:
        r = (x == 0.0).astype(F64)
    elif op == K.IF:
        r = np.where(x != 0.0, y, z)
    elif op == K.ABS:
        r = np.abs(x)
    elif op == K.MIN2:
        r = np.minimum(x, y)
    else:
        r = np.maximum(x, y)
    regs[dst] = r


def _state_size(kind: int, fprm: np.ndarray) -> int:
    spec = next(s for s in SPECS if s.kind == kind)
    return max(spec.state(tuple(float(v) for v in fprm[: len(spec.params)])), 1)
