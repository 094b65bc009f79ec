"""Type-check a formula AST and lower it to a register program (see :mod:`kernel`).

Names resolve to bar series, position state, ``[vars]`` (inlined, cycle-checked), ``[params]``
(constants) or functions. Identical sub-expressions share one register and one indicator state.
Position state may not feed an indicator, lookback or cross: those ops need market history only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jts.indicators.registry import FUNCTIONS, MAX_PARAMS, Spec
from jts.strategy import ast as A
from jts.strategy import kernel as K
from jts.strategy.errors import (
    DSLArityError,
    DSLNameError,
    DSLParamError,
    DSLTypeError,
    Source,
    did_you_mean,
)

SERIES = {"open": K.R_OPEN, "high": K.R_HIGH, "low": K.R_LOW, "close": K.R_CLOSE,
          "volume": K.R_VOLUME, "value": K.R_VALUE}
POSITION = {"position": K.R_POSITION, "bars_held": K.R_BARS_HELD,
            "entry_price": K.R_ENTRY_PRICE, "unrealized_pct": K.R_UNREALIZED}
SPECIAL = {"crossover": 2, "crossunder": 2, "if": 3, "abs": 1, "min": 2, "max": 2,
           "rising": (1, 2), "falling": (1, 2)}
RESERVED = set(SERIES) | set(POSITION) | set(FUNCTIONS) | set(SPECIAL) | {"and", "or", "not",
                                                                         "true", "false"}
MAX_LOOKBACK = 100_000
_BIN = {"+": K.ADD, "-": K.SUB, "*": K.MUL, "/": K.DIV, "<": K.LT, "<=": K.LE, ">": K.GT,
        ">=": K.GE, "==": K.EQ, "!=": K.NE, "and": K.AND, "or": K.OR}
NUM, BOOL = "number", "condition"


@dataclass(frozen=True)
class Val:
    reg: int
    typ: str
    posdep: bool
    warm: int
    const: bool


@dataclass
class Program:
    ops: np.ndarray  # int64[n_ops, COLS]
    fprm: np.ndarray  # float64[n_ops, 3]
    regs: np.ndarray  # float64[n_regs]; constants preloaded, NaN elsewhere
    state_size: int
    tail: np.ndarray  # int64 indices of position-dependent ops
    rules: dict[str, Val]
    indicators: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Compiler:
    def __init__(self, params: dict[str, float], vars_: dict[str, tuple[A.Node, Source]]) -> None:
        self.params = params
        self.vars = vars_
        self.rows: list[list[int]] = []
        self.frows: list[list[float]] = []
        self.posdep_ops: list[int] = []
        self.consts: dict[float, int] = {}
        self.n_regs = K.N_FIXED
        self.state = 0
        self.cache: dict[tuple[object, ...], Val] = {}
        self.var_vals: dict[str, Val] = {}
        self.stack: list[str] = []
        self.indicators: list[str] = []

    # ---------------------------------------------------------------- helpers
    def _reg(self, n: int = 1) -> int:
        r = self.n_regs
        self.n_regs += n
        return r

    def _emit(self, key: tuple[object, ...], op: int, ins: list[Val], typ: str, warm: int) -> Val:
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        regs = [v.reg for v in ins] + [0, 0, 0]
        dst = self._reg()
        posdep = any(v.posdep for v in ins)
        self.rows.append([op, dst, regs[0], regs[1], regs[2], 0, 0, 0, 0, 0, 0, 0])
        self.frows.append([0.0] * MAX_PARAMS)
        if posdep:
            self.posdep_ops.append(len(self.rows) - 1)
        val = Val(dst, typ, posdep, warm, all(v.const for v in ins))
        self.cache[key] = val
        return val

    def const(self, x: float) -> Val:
        r = self.consts.get(x)
        if r is None:
            r = self.consts[x] = self._reg()
        return Val(r, NUM, False, 0, True)

    def _need(self, v: Val, typ: str, node: A.Node, src: Source, what: str) -> None:
        if v.typ != typ:
            hint = ("compare it, e.g. `x > 0`" if typ == BOOL
                    else "a condition is true/false, not a number")
            raise DSLTypeError(f"{what} must be a {typ}, but this is a {v.typ}", src, node.loc,
                               hint)

    def constant(self, node: A.Node, src: Source, what: str) -> float:
        x = self._constant(node, src, what)
        if not math.isfinite(x):
            raise DSLParamError(f"{what} is not a finite number", src, node.loc)
        return x

    def _constant(self, node: A.Node, src: Source, what: str) -> float:
        if isinstance(node, A.Num):
            return node.value
        if isinstance(node, A.Name) and node.id in self.params:
            return self.params[node.id]
        if isinstance(node, A.Unary) and node.op == "-":
            return -self.constant(node.expr, src, what)
        if isinstance(node, A.Bin) and node.op in "+-*/":
            a, b = self.constant(node.left, src, what), self.constant(node.right, src, what)
            if node.op == "/" and b == 0:
                raise DSLParamError(f"{what}: division by zero", src, node.loc)
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[node.op]
        raise DSLParamError(f"{what} must be a constant (a number or a [params] name)", src,
                            node.loc, "indicator settings cannot change from bar to bar")

    # ---------------------------------------------------------------- compile
    def compile(self, node: A.Node, src: Source) -> Val:
        if isinstance(node, A.Num):
            return self.const(node.value)
        if isinstance(node, A.Bool):
            v = self.const(1.0 if node.value else 0.0)
            return Val(v.reg, BOOL, False, 0, True)
        if isinstance(node, A.Name):
            return self._name(node, src)
        if isinstance(node, A.Unary):
            v = self.compile(node.expr, src)
            if node.op == "-":
                self._need(v, NUM, node.expr, src, "the operand of `-`")
                return self._emit(("neg", v.reg), K.NEG, [v], NUM, v.warm)
            self._need(v, BOOL, node.expr, src, "the operand of `not`")
            return self._emit(("not", v.reg), K.NOT, [v], BOOL, v.warm)
        if isinstance(node, A.Bin):
            a, b = self.compile(node.left, src), self.compile(node.right, src)
            if node.op in ("and", "or"):
                self._need(a, BOOL, node.left, src, f"the left side of `{node.op}`")
                self._need(b, BOOL, node.right, src, f"the right side of `{node.op}`")
                typ = BOOL
            else:
                self._need(a, NUM, node.left, src, f"the left side of `{node.op}`")
                self._need(b, NUM, node.right, src, f"the right side of `{node.op}`")
                typ = NUM if node.op in "+-*/" else BOOL
            return self._emit((node.op, a.reg, b.reg), _BIN[node.op], [a, b], typ,
                              max(a.warm, b.warm))
        if isinstance(node, A.Lookback):
            v = self.compile(node.expr, src)
            self._need(v, NUM, node.expr, src, "a lookback `x[n]`")
            n = self.constant(node.bars, src, "the lookback")
            return self.lag(v, n, node, src)
        return self._call(node, src)

    def lag(self, v: Val, n: float, node: A.Node, src: Source) -> Val:
        if n != int(n) or n < 0:
            raise DSLParamError(f"lookback must be a whole number of bars ≥ 0, got {n:g}", src,
                                node.loc)
        if n > MAX_LOOKBACK:
            raise DSLParamError(f"lookback {int(n)} exceeds the maximum {MAX_LOOKBACK}", src,
                                node.loc)
        if v.posdep:
            raise DSLTypeError("position state cannot be looked back", src, node.loc,
                               "lookbacks need market history")
        if n == 0:
            return v
        key = ("lag", v.reg, int(n))
        if key in self.cache:
            return self.cache[key]
        out = self._emit(key, K.LAG, [v], v.typ, v.warm + int(n))
        self.rows[-1][5] = int(n)
        self.rows[-1][6] = self.state
        self.state += int(n) + 2
        return out

    def _name(self, node: A.Name, src: Source) -> Val:
        i = node.id
        if i in SERIES:
            return Val(SERIES[i], NUM, False, 0, False)
        if i in POSITION:
            return Val(POSITION[i], NUM, True, 0, False)
        if i in self.vars:
            if i in self.var_vals:
                return self.var_vals[i]
            if i in self.stack:
                chain = " -> ".join([*self.stack, i])
                raise DSLNameError(f"[vars] `{i}` refers to itself ({chain})",
                                   src, node.loc)
            self.stack.append(i)
            vnode, vsrc = self.vars[i]
            val = self.var_vals[i] = self.compile(vnode, vsrc)
            self.stack.pop()
            return val
        if i in self.params:
            return self.const(self.params[i])
        if i in FUNCTIONS or i in SPECIAL:
            raise DSLTypeError(f"`{i}` is a function", src, node.loc, f"call it: `{i}(...)`")
        names = set(SERIES) | set(POSITION) | set(self.vars) | set(self.params)
        raise DSLNameError(f"unknown name `{i}`", src, node.loc, did_you_mean(i, names))

    def _call(self, node: A.Call, src: Source) -> Val:
        if node.name in SPECIAL:
            return self._special(node, src)
        if node.name not in FUNCTIONS:
            names = set(FUNCTIONS) | set(SPECIAL)
            raise DSLNameError(f"unknown function `{node.name}`", src, node.loc,
                               did_you_mean(node.name, names) or "see `jts strategy explain`")
        spec, out_idx = FUNCTIONS[node.name]
        return self._indicator(node, spec, out_idx, src)

    def _indicator(self, node: A.Call, spec: Spec, out_idx: int, src: Source) -> Val:
        args = list(node.args)
        ins: list[Val] = []
        for field_ in spec.inputs:
            if field_ == "src":
                if not args:
                    raise DSLArityError(f"{node.name}() needs a series as its first argument",
                                        src, node.loc, f"e.g. `{node.name}(close, ...)`")
                a = args.pop(0)
                v = self.compile(a, src)
                self._need(v, NUM, a, src, f"the series of {node.name}()")
                if v.posdep:
                    raise DSLTypeError("position state cannot feed an indicator", src, a.loc,
                                       "indicators need market history")
                ins.append(v)
            else:
                ins.append(Val(SERIES[field_], NUM, False, 0, False))
        names = [p.name for p in spec.params]
        if len(args) > len(names):
            most = len(names) + spec.inputs.count("src")
            raise DSLArityError(f"{node.name}() takes at most {most}"
                                f" arguments, got {len(node.args) + len(node.kwargs)}", src,
                                args[len(names)].loc, f"parameters: {', '.join(names) or 'none'}")
        values = [p.default for p in spec.params]
        given: set[str] = set()
        for i, a in enumerate(args):
            values[i] = self.constant(a, src, f"{node.name}() {names[i]}")
            given.add(names[i])
        for kw in node.kwargs:
            if kw.name not in names:
                raise DSLArityError(f"{node.name}() has no parameter `{kw.name}`", src, kw.loc,
                                    did_you_mean(kw.name, names) or
                                    f"parameters: {', '.join(names) or 'none'}")
            if kw.name in given:
                raise DSLArityError(f"{node.name}() got `{kw.name}` twice", src, kw.loc)
            values[names.index(kw.name)] = self.constant(kw.value, src, f"{node.name}() {kw.name}")
            given.add(kw.name)
        for p, x in zip(spec.params, values, strict=True):
            if p.integer and x != int(x):
                raise DSLParamError(f"{node.name}() {p.name} must be a whole number, got {x:g}",
                                    src, node.loc)
            if not p.lo <= x <= p.hi:
                raise DSLParamError(f"{node.name}() {p.name} = {x:g} is out of range "
                                    f"[{p.lo:g}, {p.hi:g}]", src, node.loc)
        pt = tuple(float(x) for x in values)
        key = ("ind", spec.kind, tuple(v.reg for v in ins), pt)
        base = self.cache.get(key)
        if base is None:
            dst = self._reg(len(spec.outputs))
            row = [K.IND, dst, 0, 0, len(spec.outputs), spec.kind, self.state, len(ins)]
            row += [v.reg for v in ins] + [0] * (4 - len(ins))
            self.rows.append(row)
            self.frows.append(list(pt) + [0.0] * (MAX_PARAMS - len(pt)))
            self.state += spec.state(pt)
            warm = max((v.warm for v in ins), default=0)
            base = Val(dst, NUM, False, warm, False)
            self.cache[key] = base
            args_s = ", ".join(f"{n}={x:g}" for n, x in zip(names, pt, strict=True))
            self.indicators.append(f"{spec.name}({args_s})")
        warm = base.warm + spec.lookback(pt, out_idx)
        return Val(base.reg + out_idx, NUM, False, warm, False)

    def _special(self, node: A.Call, src: Source) -> Val:
        name, args = node.name, node.args
        want = SPECIAL[name]
        lo, hi = want if isinstance(want, tuple) else (want, want)
        if node.kwargs or not lo <= len(args) <= hi:
            n = f"{lo}" if lo == hi else f"{lo} or {hi}"
            raise DSLArityError(f"{name}() takes {n} positional arguments, got "
                                f"{len(args) + len(node.kwargs)}", src, node.loc)
        if name == "if":
            c, a, b = (self.compile(x, src) for x in args)
            self._need(c, BOOL, args[0], src, "the condition of if()")
            if a.typ != b.typ:
                raise DSLTypeError(f"if() branches differ: {a.typ} vs {b.typ}", src, args[2].loc)
            return self._emit(("if", c.reg, a.reg, b.reg), K.IF, [c, a, b], a.typ,
                              max(c.warm, a.warm, b.warm))
        vals = [self.compile(x, src) for x in args[:2] if name not in ("rising", "falling")]
        if name in ("rising", "falling"):
            xv = self.compile(args[0], src)
            self._need(xv, NUM, args[0], src, f"the series of {name}()")
            bars = self.constant(args[1], src, f"{name}() bars") if len(args) > 1 else 1.0
            prev = self.lag(xv, 1, node, src)
            spec = FUNCTIONS["highest" if name == "rising" else "lowest"][0]
            ext = self._ext(spec, prev, bars, node, src)
            op = K.GT if name == "rising" else K.LT
            return self._emit((name, xv.reg, ext.reg), op, [xv, ext], BOOL,
                              max(xv.warm, ext.warm))
        for v, arg in zip(vals, args, strict=True):
            self._need(v, NUM, arg, src, f"an argument of {name}()")
        if name == "abs":
            return self._emit(("abs", vals[0].reg), K.ABS, vals, NUM, vals[0].warm)
        if name in ("min", "max"):
            return self._emit((name, vals[0].reg, vals[1].reg), K.MIN2 if name == "min" else K.MAX2,
                              vals, NUM, max(v.warm for v in vals))
        a, b = vals
        if a.posdep or b.posdep:
            raise DSLTypeError("position state cannot be crossed", src, node.loc,
                               "crosses need market history")
        pa, pb = self.lag(a, 1, node, src), self.lag(b, 1, node, src)
        if name == "crossover":
            now = self._emit((">", a.reg, b.reg), K.GT, [a, b], BOOL, max(a.warm, b.warm))
            before = self._emit(("<=", pa.reg, pb.reg), K.LE, [pa, pb], BOOL, max(pa.warm, pb.warm))
        else:
            now = self._emit(("<", a.reg, b.reg), K.LT, [a, b], BOOL, max(a.warm, b.warm))
            before = self._emit((">=", pa.reg, pb.reg), K.GE, [pa, pb], BOOL, max(pa.warm, pb.warm))
        return self._emit(("and", now.reg, before.reg), K.AND, [now, before], BOOL,
                          max(now.warm, before.warm))

    def _ext(self, spec: Spec, prev: Val, n: float, node: A.Call, src: Source) -> Val:
        if n != int(n) or not 1 <= n <= MAX_LOOKBACK:
            raise DSLParamError(f"{node.name}() bars must be a whole number ≥ 1, got {n:g}", src,
                                node.loc)
        pt = (float(n),)
        key = ("ind", spec.kind, (prev.reg,), pt)
        if key not in self.cache:
            dst = self._reg()
            self.rows.append([K.IND, dst, 0, 0, 1, spec.kind, self.state, 1, prev.reg, 0, 0, 0])
            self.frows.append([float(n), 0.0, 0.0])
            self.state += spec.state(pt)
            self.cache[key] = Val(dst, NUM, False, prev.warm, False)
        v = self.cache[key]
        return Val(v.reg, NUM, False, v.warm + spec.lookback(pt, 0), False)

    def finish(self, rules: dict[str, Val]) -> Program:
        regs = np.full(self.n_regs, np.nan)
        for x, r in self.consts.items():
            regs[r] = x
        ops = np.array(self.rows, dtype=np.int64).reshape(-1, K.COLS)
        fprm = np.array(self.frows, dtype=np.float64).reshape(-1, MAX_PARAMS)
        return Program(ops, fprm, regs, max(self.state, 1),
                       np.array(self.posdep_ops, dtype=np.int64), rules, self.indicators)
