"""The surge detector: ranks the whole universe for unusual activity, batch by batch.

It owns :class:`SurgeConfig` (the ``[surge]`` table of ``jts.toml``), :class:`SurgeCandidate`
and :class:`SurgeDetector`. Ticks arrive as arrays (symbol index, venue ns, price, volume) or
as ``list[Tick]``; one numba call per batch (:mod:`jts.surge_kernels`) updates every symbol's
rolling window and scores every symbol the batch touched on four signals:

* **volume**: z-score of ``log1p(volume per minute over the last volume_window_s)`` against a
  per-symbol, per-minute-of-session profile learned from history bars and updated online;
* **velocity**: return over the last ``velocity_window_s``;
* **breakout**: last price above the high of ``[now - breakout_window_s, now - breakout_skip_s]``;
* **imbalance**: ``(bid - ask) / (bid + ask)`` from :meth:`SurgeDetector.update_book`.

A symbol is emitted when its volume z-score crosses ``volume_z_min`` (plus price/book
confirmation when ``require_price_move``) and its cool-down — measured on the ticks' own
timestamps, never the wall clock — has passed. See docs/surge.md.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import structlog

from jts import surge_kernels as K
from jts.errors import ConfigError, DataError
from jts.tick_batch import columns_of
from jts.types import Bar, Tick

log = structlog.get_logger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
NS = 1_000_000_000
_NEVER = np.iinfo(np.int64).min
_SESSIONS = {"krx": (86_400, 390), "virtual": (390 * 60, 390), "24h": (86_400, 1_440)}
_DIRECTIONS = {"both": K.DIR_BOTH, "up": K.DIR_UP, "down": K.DIR_DOWN}


class SurgeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every threshold of the surge detector (``[surge]`` in jts.toml)."""

    enabled: bool = True
    # time-of-day buckets: "krx" = minutes after 09:00 KST (390, later prints share one
    # bucket), "virtual" = the simulated market's back-to-back 390-minute days, "24h" = crypto
    session: Literal["krx", "virtual", "24h"] = "krx"
    slot_s: Annotated[int, msgspec.Meta(ge=1, le=60)] = 5        # ring resolution
    volume_window_s: Annotated[int, msgspec.Meta(ge=2, le=3_600)] = 60
    velocity_window_s: Annotated[int, msgspec.Meta(ge=2, le=7_200)] = 120
    breakout_window_s: Annotated[int, msgspec.Meta(ge=10, le=7_200)] = 1_200
    breakout_skip_s: Annotated[int, msgspec.Meta(ge=0, le=3_600)] = 60
    volume_z_min: Annotated[float, msgspec.Meta(gt=0, le=50)] = 4.0
    velocity_min_pct: Annotated[float, msgspec.Meta(ge=0, le=30)] = 0.5
    breakout_min_pct: Annotated[float, msgspec.Meta(ge=0, le=30)] = 0.0
    imbalance_min: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    require_price_move: bool = True      # volume alone is not enough: velocity/breakout/book too
    direction: Literal["both", "up", "down"] = "both"
    score_min: Annotated[float, msgspec.Meta(ge=0, le=1_000)] = 0.0
    cooldown_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 600
    max_candidates: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 50   # per batch
    # ticks stamped this far past the (robust) end of their batch are dropped as a bad clock
    max_future_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    # profile learning
    prior_weight: Annotated[float, msgspec.Meta(ge=0, le=1_000)] = 3.0
    profile_max_days: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 20
    level_span_min: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 2_000
    min_profile_obs: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10
    sigma_floor: Annotated[float, msgspec.Meta(gt=0, le=5)] = 0.15
    sigma_default: Annotated[float, msgspec.Meta(gt=0, le=5)] = 0.5
    winsor_sigma: Annotated[float, msgspec.Meta(gt=0, le=20)] = 3.0
    # score = max(z, 0) + w_vel·|velocity %| + w_brk·max(breakout %, 0) + w_imb·|imbalance|
    velocity_weight: Annotated[float, msgspec.Meta(ge=0, le=100)] = 1.0
    breakout_weight: Annotated[float, msgspec.Meta(ge=0, le=100)] = 2.0
    imbalance_weight: Annotated[float, msgspec.Meta(ge=0, le=100)] = 2.0

    def __post_init__(self) -> None:
        for name in ("volume_window_s", "velocity_window_s", "breakout_window_s",
                     "breakout_skip_s"):
            if getattr(self, name) % self.slot_s:
                raise ValueError(f"{name} must be a multiple of slot_s ({self.slot_s})")
        if self.volume_window_s < 2 * self.slot_s:
            raise ValueError("volume_window_s must span at least two slots")
        if self.breakout_skip_s >= self.breakout_window_s:
            raise ValueError("breakout_skip_s must be shorter than breakout_window_s")


def load_config(data: Mapping[str, Any], *, file: str | None = None) -> SurgeConfig:
    """Decode a ``[surge]`` table; errors name the key (``surge.volume_z_min``)."""
    try:
        return msgspec.convert(dict(data), SurgeConfig)
    except msgspec.ValidationError as e:
        msg, _, where = str(e).partition(" - at `$.")
        field = where.rstrip("`")
        choices: list[str] = {"session": list(_SESSIONS), "direction": list(_DIRECTIONS)}.get(
            field, [])
        if choices:
            msg += f" (use one of {', '.join(choices)})"
        raise ConfigError(msg, file=file, key=f"surge.{field}" if field else "surge") from None


class SurgeCandidate(msgspec.Struct, frozen=True):
    """One flagged symbol. ``velocity``/``breakout`` are fractions (0.012 = +1.2 %),
    ``None`` when not yet measurable; ``imbalance`` is ``None`` without a book.
    Each reason reads ``key=value`` with key in volume_z/velocity/breakout/imbalance."""

    symbol: str
    score: float
    reasons: tuple[str, ...]
    ts_ns: int
    volume_z: float
    velocity: float | None
    breakout: float | None
    imbalance: float | None


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


class SurgeDetector:
    """Whole-universe surge scoring over batches of ticks (not thread-safe; one task owns it)."""

    def __init__(self, symbols: Sequence[str], cfg: SurgeConfig | None = None) -> None:
        cfg = cfg or SurgeConfig()
        if not symbols:
            raise ConfigError("the surge detector needs at least one symbol", key="surge")
        if len(set(symbols)) != len(symbols):
            raise ConfigError("duplicate symbols in the surge universe", key="surge")
        self.cfg = cfg
        self.symbols: list[str] = list(symbols)
        self.index: dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        n = len(self.symbols)
        period_s, nmain = _SESSIONS[cfg.session]
        slot = cfg.slot_s
        ring = max(cfg.volume_window_s, cfg.velocity_window_s, cfg.breakout_window_s) // slot + 2
        self.ring = ring
        self._ip = np.zeros(K.N_IPARAMS, dtype=np.int64)
        ip = self._ip
        ip[K.I_SLOT_NS], ip[K.I_RING] = slot * NS, ring
        ip[K.I_WVOL], ip[K.I_WVEL] = cfg.volume_window_s // slot, cfg.velocity_window_s // slot
        ip[K.I_WBRK], ip[K.I_WSKIP] = cfg.breakout_window_s // slot, cfg.breakout_skip_s // slot
        ip[K.I_PERIOD_NS], ip[K.I_NMAIN] = period_s * NS, nmain
        ip[K.I_MIN_OBS], ip[K.I_NCAP] = cfg.min_profile_obs, cfg.profile_max_days
        ip[K.I_LEVEL_SPAN], ip[K.I_COOLDOWN_NS] = cfg.level_span_min, cfg.cooldown_s * NS
        ip[K.I_DIRECTION], ip[K.I_REQUIRE_MOVE] = _DIRECTIONS[cfg.direction], cfg.require_price_move
        self._fp = np.zeros(K.N_FPARAMS, dtype=np.float64)
        fp = self._fp
        fp[K.F_Z_MIN], fp[K.F_VEL_MIN] = cfg.volume_z_min, cfg.velocity_min_pct / 100.0
        fp[K.F_BRK_MIN], fp[K.F_IMB_MIN] = cfg.breakout_min_pct / 100.0, cfg.imbalance_min
        fp[K.F_PRIOR_K], fp[K.F_WINSOR] = cfg.prior_weight, cfg.winsor_sigma
        fp[K.F_SIGMA_FLOOR], fp[K.F_SCORE_MIN] = cfg.sigma_floor, cfg.score_min
        fp[K.F_W_VEL], fp[K.F_W_BRK] = cfg.velocity_weight, cfg.breakout_weight
        fp[K.F_W_IMB] = cfg.imbalance_weight
        nb_ = nmain + 1
        self.n_buckets = nb_
        # rolling window (symbols × slots)
        self._ring_vol = np.zeros((n, ring))
        self._ring_hi = np.zeros((n, ring))
        self._ring_close = np.zeros((n, ring))
        self._ring_stamp = np.full((n, ring), _NEVER, dtype=np.int64)
        self._cur_slot = np.full(n, -1, dtype=np.int64)
        self._last_ts = np.full(n, -1, dtype=np.int64)
        self._last_px = np.full(n, np.nan)
        self._min_idx = np.full(n, -1, dtype=np.int64)
        self._min_vol = np.zeros(n)
        self._min_partial = np.ones(n, dtype=np.bool_)
        # time-of-day profile (symbols × buckets)
        self._prof_mean = np.zeros((n, nb_))
        self._prof_n = np.zeros((n, nb_), dtype=np.int64)
        self._level = np.full(n, np.nan)
        self._var = np.full(n, cfg.sigma_default ** 2)
        self._obs = np.zeros(n, dtype=np.int64)
        self._shape = np.zeros(nb_)
        # book, emission, scratch and outputs
        self._book_imb = np.full(n, np.nan)
        self._last_emit = np.full(n, _NEVER, dtype=np.int64)
        self._touched = np.zeros(n, dtype=np.bool_)
        self._touched_list = np.zeros(n, dtype=np.int64)
        self._out_idx = np.zeros(n, dtype=np.int64)
        self._counters = np.zeros(K.N_COUNTERS, dtype=np.int64)
        self._z = np.full(n, np.nan)
        self._vel = np.full(n, np.nan)
        self._brk = np.full(n, np.nan)
        self._score = np.zeros(n)
        self._flags = np.zeros(n, dtype=np.int64)
        self._eval_ts = np.full(n, -1, dtype=np.int64)
        # per-symbol summaries of the completed slots' windows (see surge_kernels._refresh)
        self._cache_k = np.full(n, K.NO_SLOT, dtype=np.int64)
        self._c_vol = np.zeros(n)
        self._c_ref = np.full(n, np.nan)
        self._c_hi = np.full(n, -1.0)
        self.batches = 0
        self.emitted = 0
        self.warmup_bars = 0
        self.warmup_ignored = 0
        self._lat_us: deque[float] = deque(maxlen=1_000)
        self._max_ts = -1

    # --- warm-up -----------------------------------------------------------------------
    def warm_up(self, history: Mapping[str, Sequence[Bar]]) -> None:
        """Learn the volume profile (and seed the rolling window) from 1-minute bars.
        Bars of other timeframes and unknown symbols are counted and logged, not used."""
        sym: list[int] = []
        start: list[int] = []
        vol: list[float] = []
        high: list[float] = []
        close: list[float] = []
        unknown = 0
        for code, bars in history.items():
            i = self.index.get(code)
            if i is None:
                unknown += len(bars)
                continue
            for b in bars:
                if b.timeframe != "1m":
                    self.warmup_ignored += 1
                    continue
                sym.append(i)
                start.append(b.ts_ns)
                vol.append(b.volume)
                high.append(b.high)
                close.append(b.close)
        if unknown or self.warmup_ignored:
            log.warning("surge_warmup_ignored_bars", unknown_symbol=unknown,
                        not_1m=self.warmup_ignored)
        self.warm_up_arrays(np.asarray(sym, dtype=np.int64), np.asarray(start, dtype=np.int64),
                            np.asarray(vol, dtype=np.float64), np.asarray(high, dtype=np.float64),
                            np.asarray(close, dtype=np.float64))

    def warm_up_arrays(self, sym: I64, start_ns: I64, volume: F64, high: F64,
                       close: F64) -> None:
        """Array form of :meth:`warm_up`: one row per 1-minute bar (any order)."""
        n = len(sym)
        if not (len(start_ns) == len(volume) == len(high) == len(close) == n):
            raise DataError("warm-up arrays differ in length")
        if n == 0:
            return
        if sym.min() < 0 or sym.max() >= len(self.symbols):
            raise DataError("warm-up symbol index out of range")
        order = np.lexsort((start_ns, sym))
        sym, start_ns = sym[order], start_ns[order]
        volume, high, close = volume[order], high[order], close[order]
        ok = np.isfinite(volume) & (volume >= 0) & np.isfinite(close) & (close > 0)
        if not ok.all():
            log.warning("surge_warmup_bad_bars", count=int((~ok).sum()))
            sym, start_ns, volume = sym[ok], start_ns[ok], volume[ok]
            high, close = high[ok], close[ok]
        K.fit_profile(sym, start_ns, volume, period_ns=int(self._ip[K.I_PERIOD_NS]),
                      nmain=int(self._ip[K.I_NMAIN]), ncap=self.cfg.profile_max_days,
                      sigma_floor=self.cfg.sigma_floor, sigma_default=self.cfg.sigma_default,
                      prof_mean=self._prof_mean, prof_n=self._prof_n, level=self._level,
                      var=self._var, obs=self._obs, shape=self._shape)
        # seed the ring with the bars inside its span of each symbol's last bar
        last = np.full(len(self.symbols), _NEVER, dtype=np.int64)
        np.maximum.at(last, sym, start_ns)
        span = self.ring * int(self._ip[K.I_SLOT_NS])
        recent = start_ns >= last[sym] - span
        K.seed_ring(sym[recent], start_ns[recent], np.ones(int(recent.sum()), dtype=np.int64),
                    high[recent], close[recent], volume[recent], self._ip[K.I_SLOT_NS],
                    self.ring, self._ring_vol, self._ring_hi, self._ring_close,
                    self._ring_stamp, self._cur_slot, self._last_ts, self._last_px)
        self._cache_k[:] = K.NO_SLOT          # the seeded slots are not in the window caches
        self._min_partial[:] = True
        self.warmup_bars += len(sym)
        log.info("surge_warmed_up", bars=len(sym), symbols=int(np.unique(sym).size),
                 buckets_seen=int((self._prof_n.sum(axis=0) > 0).sum()))

    # --- live --------------------------------------------------------------------------
    def update(self, sym_idx: npt.ArrayLike, ts_ns: npt.ArrayLike, price: npt.ArrayLike,
               volume: npt.ArrayLike) -> list[SurgeCandidate]:
        """Ingest one batch (parallel arrays) and return the new candidates, best first."""
        t0 = time.perf_counter()
        s = np.ascontiguousarray(sym_idx, dtype=np.int64)
        t = np.ascontiguousarray(ts_ns, dtype=np.int64)
        p = np.ascontiguousarray(price, dtype=np.float64)
        v = np.ascontiguousarray(volume, dtype=np.float64)
        if not (s.ndim == t.ndim == p.ndim == v.ndim == 1 and len(s) == len(t) == len(p)
                == len(v)):
            raise DataError(f"update() needs four 1-D arrays of one length, got shapes "
                            f"{s.shape}, {t.shape}, {p.shape}, {v.shape}")
        k = len(t)
        # reference: median of three late samples (batches are roughly in time order), so a
        # single wild timestamp cannot move it and a long replay batch keeps its tail
        ref = int(np.median(t[[k // 2, (7 * k) // 8, k - 1]])) if k else 0
        limit = ref + self.cfg.max_future_s * NS if k else _NEVER
        ne = K.process_batch(s, t, p, v, self._ip, self._fp, self._ring_vol, self._ring_hi,
                             self._ring_close, self._ring_stamp, self._cur_slot, self._last_ts,
                             self._last_px, self._min_idx, self._min_vol, self._min_partial,
                             self._prof_mean, self._prof_n, self._level, self._var, self._obs,
                             self._shape, self._book_imb, self._last_emit, self._touched,
                             self._touched_list, self._counters, self._z, self._vel,
                             self._brk, self._score, self._flags, self._eval_ts,
                             self._out_idx, limit, self._cache_k, self._c_vol, self._c_ref,
                             self._c_hi)
        self.batches += 1
        self._max_ts = int(self._last_ts.max())
        out: list[SurgeCandidate] = []
        if ne:
            idx = self._out_idx[:ne]
            idx = idx[np.argsort(-self._score[idx], kind="stable")][: self.cfg.max_candidates]
            self._last_emit[idx] = self._eval_ts[idx]
            out = [self._candidate(int(i)) for i in idx]
            self.emitted += len(out)
            for c in out:
                log.info("surge_candidate", symbol=c.symbol, score=round(c.score, 2),
                         reasons=list(c.reasons))
        self._lat_us.append((time.perf_counter() - t0) * 1e6)
        return out

    def update_ticks(self, ticks: Sequence[Tick]) -> list[SurgeCandidate]:
        """Convenience: :meth:`update` from ``Tick`` objects (unknown symbols are counted)."""
        cols = getattr(ticks, "columns", None)      # a jts.tick_batch.TickBatch over our index
        if cols is None or cols[0] is not self.index:
            cols = columns_of(ticks, self.index)
        return self.update(*cols[1:])

    def update_book(self, sym_idx: npt.ArrayLike, bid_qty: npt.ArrayLike,
                    ask_qty: npt.ArrayLike) -> None:
        """Record top-of-book (or depth-summed) quantities; imbalance is
        ``(bid - ask) / (bid + ask)``, unknown (NaN) when both are zero."""
        i = np.asarray(sym_idx, dtype=np.int64)
        b = np.asarray(bid_qty, dtype=np.float64)
        a = np.asarray(ask_qty, dtype=np.float64)
        if np.any((i < 0) | (i >= len(self.symbols))):
            raise DataError("update_book: symbol index out of range")
        if np.any(~np.isfinite(b) | ~np.isfinite(a) | (b < 0) | (a < 0)):
            raise DataError("update_book: quantities must be finite and non-negative")
        tot = a + b
        with np.errstate(invalid="ignore", divide="ignore"):
            self._book_imb[i] = np.where(tot > 0, (b - a) / tot, np.nan)

    def clear_book(self, sym_idx: npt.ArrayLike) -> None:
        self._book_imb[np.asarray(sym_idx, dtype=np.int64)] = np.nan

    # --- reading -----------------------------------------------------------------------
    def _candidate(self, i: int) -> SurgeCandidate:
        flags = int(self._flags[i])
        z, vel, brk, imb = (float(self._z[i]), float(self._vel[i]), float(self._brk[i]),
                            float(self._book_imb[i]))
        reasons: list[str] = []
        if flags & K.FLAG_VOLUME:
            reasons.append(f"volume_z={z:.1f}")
        if flags & K.FLAG_VELOCITY:
            reasons.append(f"velocity={100 * vel:+.2f}%/{self.cfg.velocity_window_s}s")
        if flags & K.FLAG_BREAKOUT:
            reasons.append(f"breakout={100 * brk:+.2f}%/{self.cfg.breakout_window_s}s")
        if flags & K.FLAG_IMBALANCE:
            reasons.append(f"imbalance={imb:+.2f}")
        return SurgeCandidate(self.symbols[i], round(float(self._score[i]), 4), tuple(reasons),
                              int(self._eval_ts[i]), 0.0 if math.isnan(z) else round(z, 4),
                              _opt(vel), _opt(brk), _opt(imb))

    def top(self, n: int = 20, *, fresh_s: float | None = None) -> list[SurgeCandidate]:
        """The ``n`` highest current scores among symbols scored within ``fresh_s`` market
        seconds of the newest tick (default: the volume window) — the hot list for coverage
        planning, whether or not a symbol is in its cool-down or crossed a threshold."""
        if n <= 0 or self._max_ts < 0:
            return []
        fresh = self.cfg.volume_window_s if fresh_s is None else fresh_s
        live = (self._eval_ts >= self._max_ts - int(fresh * NS)) & (self._score > 0)
        idx = np.flatnonzero(live)
        idx = idx[np.argsort(-self._score[idx], kind="stable")][:n]
        return [self._candidate(int(i)) for i in idx]

    def expected_volume_per_min(self, sym_idx: int, ts_ns: int) -> float:
        """The profile's typical volume per minute for a symbol at a time of day (NaN if
        nothing is known yet)."""
        b = K.bucket_of(ts_ns, int(self._ip[K.I_PERIOD_NS]), int(self._ip[K.I_NMAIN]))
        mu = K.expected(sym_idx, b, self._prof_mean, self._prof_n, self._level, self._shape,
                        self.cfg.prior_weight)
        return float(math.expm1(mu)) if not math.isnan(mu) else math.nan

    def status(self) -> dict[str, Any]:
        """Counters and the current hot list for ``jts status``."""
        c = self._counters
        lat = np.asarray(self._lat_us) if self._lat_us else np.zeros(1)
        return {
            "symbols": len(self.symbols),
            "batches": self.batches,
            "ticks": int(c[K.C_TICKS]),
            "dropped": {"bad_symbol": int(c[K.C_BAD_SYMBOL]), "bad_price": int(c[K.C_BAD_PRICE]),
                        "bad_volume": int(c[K.C_BAD_VOLUME]), "late": int(c[K.C_LATE]),
                        "future": int(c[K.C_FUTURE])},
            "out_of_order": int(c[K.C_OUT_OF_ORDER]),
            "minutes_learned": int(c[K.C_FOLDED]),
            "warmup_bars": self.warmup_bars,
            "profiled_symbols": int((self._obs >= self.cfg.min_profile_obs).sum()),
            "candidates_emitted": self.emitted,
            "batch_us_p50": round(float(np.percentile(lat, 50)), 1),
            "batch_us_p99": round(float(np.percentile(lat, 99)), 1),
            "top": [{"symbol": x.symbol, "score": round(x.score, 2), "reasons": list(x.reasons)}
                    for x in self.top(5)],
        }
