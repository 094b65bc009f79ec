"""Trading costs — the single source of truth for the paper broker (Decimal) and the
backtester (plain floats from :meth:`CostModel.as_floats` / :meth:`CostModel.tax_schedule`):
brokerage commission per venue (with an optional minimum), the KRX securities transaction
tax on sells (rates with effective dates in ``jts/data/krx_tax.toml``), crypto maker/taker
fees, and slippage in basis points with adverse tick rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from jts.calendar import default_krx_calendar
from jts.datafiles import load_data_toml
from jts.errors import ConfigError
from jts.krx import Market, round_price
from jts.money import adverse, krw
from jts.types import Side

TAX_FILE = "jts/data/krx_tax.toml"
BPS = Decimal(10_000)
CRYPTO_QUANTUM = Decimal("0.00000001")


class VenueFees(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fees of one venue. ``kind="krx"``: ``commission_rate`` on every trade (whole won,
    truncated), never below ``min_commission``, plus the sell tax; ``kind="crypto"``:
    ``maker_rate``/``taker_rate`` and no tax. ``tick_rounding`` snaps fills to KRX ticks."""

    kind: Literal["krx", "crypto"] = "krx"
    commission_rate: Decimal = Decimal("0.00015")
    min_commission: Decimal = Decimal(0)
    maker_rate: Decimal = Decimal(0)
    taker_rate: Decimal = Decimal(0)
    tick_rounding: bool = True

    def __post_init__(self) -> None:
        for name in ("commission_rate", "min_commission", "maker_rate", "taker_rate"):
            value: Decimal = getattr(self, name)
            if value < 0 or (name != "min_commission" and value >= 1):
                raise ValueError(f"{name} out of range: {value}")

    @property
    def rounds_to_ticks(self) -> bool:
        """KRX venues snap to the KRX tick grid (unless disabled); crypto never does."""
        return self.kind == "krx" and self.tick_rounding


def _default_venues() -> dict[str, VenueFees]:
    return {
        "krx": VenueFees(),
        "upbit": VenueFees(kind="crypto", commission_rate=Decimal(0),
                           maker_rate=Decimal("0.0005"), taker_rate=Decimal("0.0005")),
        "binance": VenueFees(kind="crypto", commission_rate=Decimal(0),
                             maker_rate=Decimal("0.001"), taker_rate=Decimal("0.001")),
    }


class TaxRate(NamedTuple):
    effective: date        # first settlement (transfer) date the rate applies to
    stt: Decimal           # 증권거래세
    rural: Decimal         # 농어촌특별세

    @property
    def total(self) -> Decimal:
        return self.stt + self.rural


def load_tax_table(path: str | None = None) -> dict[Market, tuple[TaxRate, ...]]:
    """Parse a tax-rate file (default: the bundled one), sorted by effective date."""
    doc, name = load_data_toml("krx_tax.toml", path, what="tax")
    table: dict[Market, list[TaxRate]] = {m: [] for m in Market}
    for i, row in enumerate(doc.get("rate", [])):
        eff = row.get("effective")
        if not isinstance(eff, date):
            raise ConfigError("effective must be a TOML date", file=name,
                              key=f"rate[{i}].effective")
        for market in Market:
            entry = row.get(market.value)
            if entry is None:
                raise ConfigError("missing market", file=name, key=f"rate[{i}].{market.value}")
            try:
                stt, rural = Decimal(str(entry["stt"])), Decimal(str(entry["rural"]))
            except (KeyError, ArithmeticError, TypeError) as exc:
                raise ConfigError(f"need stt and rural rates as decimals ({exc})", file=name,
                                  key=f"rate[{i}].{market.value}") from exc
            if not (0 <= stt < 1 and 0 <= rural < 1):
                raise ConfigError("rate out of range", file=name,
                                  key=f"rate[{i}].{market.value}")
            table[market].append(TaxRate(eff, stt, rural))
    if not table[Market.KOSPI]:
        raise ConfigError("no [[rate]] entries", file=name)
    return {m: tuple(sorted(rows)) for m, rows in table.items()}


@functools.cache
def _tax_table(path: str | None) -> dict[Market, tuple[TaxRate, ...]]:
    return load_tax_table(path)


class CostFloats(NamedTuple):
    """Plain floats for a numba kernel; derived from the same :class:`CostModel`."""

    commission_rate: float
    min_commission: float
    maker_rate: float
    taker_rate: float
    sell_tax_rate: float
    slippage_bps: float
    tick_rounding: bool


class CostModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """All trading costs; frozen, decodable from the ``[costs]`` table of jts.toml."""

    venues: dict[str, VenueFees] = msgspec.field(default_factory=_default_venues)
    slippage_bps: Decimal = Decimal(5)
    tax_file: str | None = None
    settlement_days: int = 2       # the tax rate follows the settlement (transfer) date

    def __post_init__(self) -> None:
        if self.slippage_bps < 0 or self.slippage_bps > 1_000:
            raise ValueError(f"slippage_bps out of range 0..1000: {self.slippage_bps}")
        if not 0 <= self.settlement_days <= 5:
            raise ValueError(f"settlement_days out of range 0..5: {self.settlement_days}")

    @classmethod
    def from_config(cls, raw: Mapping[str, object] | msgspec.Struct,
                    file: str | None = None) -> CostModel:
        """Decode a ``[costs]`` table (a mapping or a config struct); configured venues are
        merged over the defaults. Flat ``commission_rate``/``min_commission`` keys set the
        ``krx`` venue's values."""
        data = dict(msgspec.structs.asdict(raw) if isinstance(raw, msgspec.Struct) else raw)
        flat = {k: data.pop(k) for k in ("commission_rate", "min_commission") if k in data}
        if flat:
            venues = dict(data.get("venues") or {})
            venues["krx"] = {**dict(venues.get("krx") or {}), **flat}
            data["venues"] = venues
        try:
            model = msgspec.convert(data, cls)
            return msgspec.structs.replace(model, venues={**_default_venues(), **model.venues})
        except msgspec.ValidationError as exc:
            raise ConfigError(str(exc), file=file, key="costs") from exc

    def fees(self, venue: str) -> VenueFees:
        try:
            return self.venues[venue]
        except KeyError:
            raise ConfigError(f"no fees configured for venue {venue!r}",
                              key=f"costs.venues.{venue}") from None

    def commission(self, venue: str, side: Side, notional: Decimal,
                   maker: bool = False) -> Decimal:
        """Brokerage commission (KRX: whole won, truncated, at least the minimum)."""
        fees = self.fees(venue)
        if notional <= 0:
            return Decimal(0)
        if fees.kind == "krx":
            return max(krw(notional * fees.commission_rate), fees.min_commission)
        rate = fees.maker_rate if maker else fees.taker_rate
        return (notional * rate).quantize(CRYPTO_QUANTUM, rounding=ROUND_HALF_UP)

    def tax_rate(self, market: Market | str, on: date) -> TaxRate:
        """The sell-tax rate for a trade on ``on`` (looked up by its settlement date)."""
        settle = default_krx_calendar().add_trading_days(on, self.settlement_days)
        rows = _tax_table(self.tax_file)[Market(market)]
        chosen = rows[0]
        if settle < chosen.effective:
            raise ConfigError(f"no tax rate before {chosen.effective}",
                              file=self.tax_file or TAX_FILE)
        for row in rows:
            if row.effective <= settle:
                chosen = row
        return chosen

    def tax(self, venue: str, market: Market | str | None, side: Side, notional: Decimal,
            on: date) -> Decimal:
        """Securities transaction tax + rural special tax on a KRX sell (each truncated to
        whole won); zero on buys and on crypto venues."""
        if side is Side.BUY or notional <= 0 or self.fees(venue).kind != "krx":
            return Decimal(0)
        rate = self.tax_rate(market or Market.KOSPI, on)
        return krw(notional * rate.stt) + krw(notional * rate.rural)

    def fill_price(self, side: Side, ref_price: Decimal, slippage_bps: Decimal | None = None,
                   venue: str = "krx", market: Market | str | None = None) -> Decimal:
        """``ref_price`` moved against the trader by the slippage, then (KRX) rounded to the
        tick grid in the adverse direction: buys round up, sells round down."""
        bps = self.slippage_bps if slippage_bps is None else slippage_bps
        raw = ref_price * (1 + side.sign * bps / BPS)
        if not self.fees(venue).rounds_to_ticks:
            return raw.quantize(CRYPTO_QUANTUM, rounding=ROUND_DOWN) if side is Side.SELL \
                else raw.quantize(CRYPTO_QUANTUM, rounding=ROUND_HALF_UP)
        return round_price(raw, adverse(side), market)

    # --- the backtester's view --------------------------------------------------------

    def as_floats(self, venue: str = "krx", market: Market | str = Market.KOSPI,
                  on: date | None = None) -> CostFloats:
        """Float parameters for kernels; ``on`` picks the sell-tax rate (default: today)."""
        fees = self.fees(venue)
        tax = 0.0
        if fees.kind == "krx":
            tax = float(self.tax_rate(market, on or date.today()).total)
        return CostFloats(float(fees.commission_rate), float(fees.min_commission),
                          float(fees.maker_rate), float(fees.taker_rate), tax,
                          float(self.slippage_bps), fees.rounds_to_ticks)

    def tax_schedule(self, market: Market | str) -> tuple[npt.NDArray[np.int64],
                                                          npt.NDArray[np.float64]]:
        """``(effective_days, total_rates)``: days since 1970-01-01 of each rate's first
        settlement date, and its total rate. A kernel picks the rate of a trade settling on
        day ``s`` as ``rates[np.searchsorted(days, s, side="right") - 1]``."""
        rows = _tax_table(self.tax_file)[Market(market)]
        epoch = date(1970, 1, 1)
        days = np.array([(r.effective - epoch).days for r in rows], dtype=np.int64)
        rates = np.array([float(r.total) for r in rows], dtype=np.float64)
        return days, rates
