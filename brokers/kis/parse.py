"""KIS payloads → JTS values. The only module that reads KIS field names.

REST answers (lowercase keys, numbers as strings), error bodies (mapped by ``msg_cd`` to
the JTS error tree), WebSocket frames (``flag|TR|NNN|a^b^…``) and AES-256-CBC fill notices.
Bad payloads raise :class:`jts.errors.DataError` with the field at fault.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from brokers.kis import wire
from jts.clock import KST, NS, from_datetime, to_kst
from jts.errors import (
    AuthError,
    BrokerError,
    DataError,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    TransientError,
)
from jts.types import Bar, Position, Side, Tick

Json = dict[str, Any]
VENUE = "krx"


class Quote(msgspec.Struct, frozen=True):
    """A REST price snapshot (venue-neutral)."""

    symbol: str
    price: float
    change_pct: float
    volume: float
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    upper_limit: float = 0.0
    lower_limit: float = 0.0


class Book(msgspec.Struct, frozen=True):
    """Ten-level order book: (price, quantity) best first."""

    symbol: str
    ts_ns: int
    asks: tuple[tuple[float, float], ...]
    bids: tuple[tuple[float, float], ...]


class Notice(msgspec.Struct, frozen=True):
    """A decrypted fill / order notice."""

    account: str
    order_no: str
    orig_order_no: str
    side: Side
    kind: str              # "0" new, "1" modify, "2" cancel
    symbol: str
    quantity: Decimal      # fill qty for fills, order qty for acknowledgements
    price: Decimal
    hhmmss: str
    refused: bool
    is_fill: bool
    order_qty: Decimal


class OrderRow(msgspec.Struct, frozen=True):
    """One row of today's orders (inquire-daily-ccld)."""

    order_no: str
    orig_order_no: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    filled: Decimal
    avg_price: Decimal
    remaining: Decimal
    cancelled: Decimal
    hhmmss: str
    filled_amount: Decimal = Decimal(0)   # tot_ccld_amt: exact value of all fills so far


# -- numbers ------------------------------------------------------------------------------

def dec(row: Json, key: str) -> Decimal:
    raw = row.get(key, "")
    try:
        return Decimal(str(raw).strip() or "0")
    except InvalidOperation:
        raise DataError(f"KIS field {key}={raw!r} is not a number") from None


def num(row: Json, key: str) -> float:
    return float(dec(row, key))


def kst_ns(yyyymmdd: str, hhmmss: str = "000000") -> int:
    try:
        dt = datetime.strptime(yyyymmdd + hhmmss, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        raise DataError(f"KIS date/time {yyyymmdd!r} {hhmmss!r} is malformed") from None
    return from_datetime(dt)


def kst_day(ts_ns: int) -> str:
    return to_kst(ts_ns).strftime("%Y%m%d")


def to_day(ts_ns: int) -> date:
    return to_kst(ts_ns).date()


def hhmmss_before(ts_ns: int) -> str:
    """The KIS time one minute before ``ts_ns`` (for paging minute charts backwards)."""
    return (to_kst(ts_ns) - timedelta(minutes=1)).strftime("%H%M%S")


# -- errors -------------------------------------------------------------------------------

def error_for(status: int, body: Json | None, text: str, *, order: bool) -> BrokerError:
    """Map a failed answer to the JTS error tree, by code, never by message text.

    ``order``: the request was an order/cancel that may have reached the exchange; an
    answer without a definite code then means the outcome is unknown."""
    body = body or {}
    code = str(body.get("msg_cd") or body.get("error_code") or "")
    msg = str(body.get("msg1") or body.get("error_description") or text[:200]).strip()
    label = f"KIS {code or status}: {msg}"
    if code == wire.RATE_EXCEEDED:
        return RateLimited(label, code=code, broker="kis")
    if code == wire.TOKEN_THROTTLED:
        return RateLimited(label, code=code, broker="kis", retry_after=60.0)
    if code in (wire.TOKEN_EXPIRED, wire.TOKEN_INVALID, "EGW00103", "EGW00105"):
        return AuthError(label, code=code, broker="kis")
    if code == wire.DOMAIN_MISMATCH or code == "OPSQ0003":
        return AuthError(f"{label} — real/virtual mix-up: the app key or TR id belongs to the "
                         "other domain; check `domain` and the app key variables in jts.toml",
                         code=code, broker="kis")
    if code:
        # a definite answer from KIS: the request was refused and did not take effect
        return OrderRejected(label, code=code, broker="kis") if order \
            else BrokerError(label, code=code, broker="kis")
    if order and status >= 500:
        return OrderOutcomeUnknown(f"KIS HTTP {status} without a KIS code after the order was "
                                   f"sent: {msg}", broker="kis")
    if status >= 500 or status == 429:
        return TransientError(f"KIS HTTP {status}: {msg}", broker="kis")
    return OrderRejected(label, broker="kis") if order else BrokerError(label, broker="kis")


# -- REST bodies --------------------------------------------------------------------------

def quote(symbol: str, out: Json) -> Quote:
    return Quote(symbol, num(out, "stck_prpr"), num(out, "prdy_ctrt"), num(out, "acml_vol"),
                 num(out, "stck_oprc"), num(out, "stck_hgpr"), num(out, "stck_lwpr"),
                 num(out, "stck_mxpr"), num(out, "stck_llam"))


def multi_quotes(rows: list[Json]) -> list[Quote]:
    return [Quote(str(r.get("inter_shrn_iscd", "")), num(r, "inter2_prpr"),
                  num(r, "prdy_ctrt"), num(r, "acml_vol"), num(r, "inter2_oprc"),
                  num(r, "inter2_hgpr"), num(r, "inter2_lwpr")) for r in rows]


def prev_close(out: Json) -> float:
    """The previous close from a chart answer's ``output1`` (0.0 when absent)."""
    if not isinstance(out, dict) or not out.get("stck_prdy_clpr"):
        return 0.0
    return num(out, "stck_prdy_clpr")


def ranked(rows: list[Json]) -> list[Quote]:
    """Volume / fluctuation ranking rows, in rank order."""
    return [Quote(str(r.get("mksc_shrn_iscd") or r.get("stck_shrn_iscd") or ""),
                  num(r, "stck_prpr"), num(r, "prdy_ctrt"), num(r, "acml_vol")) for r in rows]


def daily_bars(symbol: str, rows: list[Json]) -> list[Bar]:
    """Daily bars, oldest first; ``ts_ns`` is the session open (09:00 KST)."""
    bars = [Bar(symbol, "1d", kst_ns(str(r.get("stck_bsop_date", "")), "090000"),
                num(r, "stck_oprc"), num(r, "stck_hgpr"), num(r, "stck_lwpr"),
                num(r, "stck_clpr"), num(r, "acml_vol"), num(r, "acml_tr_pbmn"))
            for r in rows if r.get("stck_bsop_date")]
    return sorted(bars, key=lambda b: b.ts_ns)


def minute_bars(symbol: str, rows: list[Json]) -> list[Bar]:
    """One-minute bars, oldest first; the KIS label (HHMM00) is taken as the open time."""
    bars = [Bar(symbol, "1m", kst_ns(str(r.get("stck_bsop_date", "")),
                                     str(r.get("stck_cntg_hour", ""))),
                num(r, "stck_oprc"), num(r, "stck_hgpr"), num(r, "stck_lwpr"),
                num(r, "stck_prpr"), num(r, "cntg_vol"), num(r, "acml_tr_pbmn"))
            for r in rows if r.get("stck_bsop_date")]
    return sorted(bars, key=lambda b: b.ts_ns)


def positions(rows: list[Json], account: str) -> list[Position]:
    out = []
    for r in rows:
        qty = dec(r, "hldg_qty")
        if qty:
            out.append(Position("kis", account, str(r.get("pdno", "")), qty,
                                dec(r, "pchs_avg_pric")))
    return out


def cash(summary: list[Json] | Json) -> Decimal:
    """Settlement cash (D+2, ``prvs_rcdl_excc_amt``) from balance ``output2``."""
    row = summary[0] if isinstance(summary, list) and summary else summary
    if not isinstance(row, dict):
        raise DataError("KIS balance output2 is empty")
    return dec(row, "prvs_rcdl_excc_amt")


def side_of(code: str) -> Side:
    if code == "01":
        return Side.SELL
    if code == "02":
        return Side.BUY
    raise DataError(f"KIS side code {code!r} is neither 01 (sell) nor 02 (buy)")


def order_rows(rows: list[Json]) -> list[OrderRow]:
    return [OrderRow(str(r.get("odno", "")), str(r.get("orgn_odno", "")),
                     str(r.get("pdno", "")), side_of(str(r.get("sll_buy_dvsn_cd", ""))),
                     dec(r, "ord_qty"), dec(r, "ord_unpr"), dec(r, "tot_ccld_qty"),
                     dec(r, "avg_prvs"), dec(r, "rmn_qty"), dec(r, "cncl_cfrm_qty"),
                     str(r.get("ord_tmd", "")), dec(r, "tot_ccld_amt")) for r in rows]


# -- WebSocket ----------------------------------------------------------------------------

def split_frame(text: str) -> tuple[bool, str, int, str]:
    """``flag|TR|NNN|payload`` → (encrypted, tr_id, count, payload)."""
    parts = text.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("0", "1") or not parts[2].isdigit():
        raise DataError(f"malformed KIS frame header {text[:40]!r}")
    return parts[0] == "1", parts[1], int(parts[2]), parts[3]


def _records(payload: str, count: int, width: int, tr_id: str) -> list[list[str]]:
    fields = payload.split("^")
    if count < 1 or len(fields) != count * width:
        raise DataError(f"{tr_id} frame has {len(fields)} fields, expected {count}×{width}")
    return [fields[i * width:(i + 1) * width] for i in range(count)]


_T = {name: i for i, name in enumerate(wire.TRADE_FIELDS)}


def trades(payload: str, count: int, recv_ns: int) -> list[Tick]:
    out = []
    for rec in _records(payload, count, len(wire.TRADE_FIELDS), wire.WS_TRADE):
        try:
            price, vol = float(rec[_T["STCK_PRPR"]]), float(rec[_T["CNTG_VOL"]])
        except ValueError:
            raise DataError(f"{wire.WS_TRADE} price/volume not numeric: {rec[:3]}") from None
        ts = kst_ns(rec[_T["BSOP_DATE"]], rec[_T["STCK_CNTG_HOUR"]])
        out.append(Tick(VENUE, rec[_T["MKSC_SHRN_ISCD"]], ts, recv_ns, price, vol))
    return out


def book(payload: str, count: int, recv_ns: int) -> list[Book]:
    out = []
    for rec in _records(payload, count, len(wire.BOOK_FIELDS), wire.WS_BOOK):
        try:
            asks = tuple((float(rec[3 + i]), float(rec[23 + i])) for i in range(10))
            bids = tuple((float(rec[13 + i]), float(rec[33 + i])) for i in range(10))
        except ValueError:
            raise DataError(f"{wire.WS_BOOK} levels not numeric for {rec[0]}") from None
        out.append(Book(rec[0], recv_ns, asks, bids))
    return out


def decrypt(key: str, iv: str, b64: str) -> str:
    """Base64 of AES-256-CBC/PKCS7 → text; DataError when it cannot be decrypted."""
    try:
        raw = base64.b64decode(b64, validate=True)
        dec_ = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = dec_.update(raw) + dec_.finalize()
        unpad = padding.PKCS7(128).unpadder()
        return (unpad.update(padded) + unpad.finalize()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"undecryptable KIS notice ({type(e).__name__}: {e})") from None


_N = {name: i for i, name in enumerate(wire.NOTICE_FIELDS)}


def notice(text: str) -> Notice:
    f = text.split("^")
    if len(f) != len(wire.NOTICE_FIELDS):
        raise DataError(f"KIS notice has {len(f)} fields, expected {len(wire.NOTICE_FIELDS)}")

    def d(name: str) -> Decimal:
        return dec({name: f[_N[name]]}, name)

    return Notice(f[_N["ACNT_NO"]], f[_N["ODER_NO"]], f[_N["OODER_NO"]],
                  side_of(f[_N["SELN_BYOV_CLS"]]), f[_N["RCTF_CLS"]], f[_N["STCK_SHRN_ISCD"]],
                  d("CNTG_QTY"), d("CNTG_UNPR"), f[_N["STCK_CNTG_HOUR"]],
                  f[_N["RFUS_YN"]] == "1", f[_N["CNTG_YN"]] == "2", d("ODER_QTY"))


def order_ack(out: Json) -> tuple[str, str]:
    """(ODNO, KRX_FWDG_ORD_ORGNO) from an order answer."""
    odno = str(out.get("ODNO") or out.get("odno") or "")
    if not odno:
        raise DataError("KIS order answer has no ODNO")
    return odno, str(out.get("KRX_FWDG_ORD_ORGNO") or out.get("krx_fwdg_ord_orgno") or "")


__all__ = ["NS", "Book", "Notice", "OrderRow", "Quote"]
