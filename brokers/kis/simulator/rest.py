"""REST routes of the KIS simulator (OAuth, quotations, account queries, orders).

Wire format as KIS: request body keys UPPERCASE with string values, response keys
lowercase with string numbers, ``rt_cd``/``msg_cd``/``msg1`` on every /uapi answer, and the
``tr_cont`` response header for paging (``M`` more, ``D`` last page).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from aiohttp import web

from brokers.kis import wire
from brokers.kis.simulator.accounts import BAD_FIELD, OrderError
from brokers.kis.simulator.market import kst_hhmmss, kst_yyyymmdd
from brokers.kis.simulator.venue import Json, SimApp, SimHttpError, SimVenue, kis_error
from jts.clock import to_kst

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VENUE: web.AppKey[SimVenue] = web.AppKey("kis_venue", SimVenue)
FAULTS: web.AppKey[dict[str, list[str]]] = web.AppKey("kis_faults", dict)


def ok(payload: Json, *, tr_cont: str = "D", msg_cd: str = "MCA00000",
       msg1: str = "정상처리 되었습니다.") -> web.Response:
    body = {"rt_cd": "0", "msg_cd": msg_cd, "msg1": msg1, **payload}
    return web.json_response(body, headers={"tr_cont": tr_cont},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def guarded(fn: Handler) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        faults = request.app[FAULTS].get(request.path)
        fault = faults.pop(0) if faults else ""
        if fault == "html502":
            return web.Response(status=502, text="<html><body>Bad Gateway</body></html>",
                                content_type="text/html")
        try:
            resp = await fn(request)
        except SimHttpError as e:
            return web.json_response(e.body, status=e.status,
                                     dumps=lambda o: json.dumps(o, ensure_ascii=False))
        if fault.startswith("hang"):          # processed, but the answer never comes
            await asyncio.sleep(float(fault[4:] or 30))
        return resp
    return wrapper


async def _json(request: web.Request) -> Json:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise kis_error(500, "OPSQ1002", f"JSON 형식 오류 ({e})") from None
    if not isinstance(body, dict):
        raise kis_error(500, "OPSQ1002", "JSON body must be an object")
    return body


def _uapi(request: web.Request) -> tuple[SimVenue, str, SimApp]:
    venue = request.app[VENUE]
    app = venue.gate(request.headers)
    return venue, request.headers.get("tr_id", ""), app


def _quote(venue: SimVenue, code: str) -> Any:
    q = venue.market.quotes.get(code)
    if q is None:
        raise kis_error(500, "OPSQ0004", f"종목코드 오류 ({code})")
    return q


# -- OAuth ------------------------------------------------------------------------------------

async def token(request: web.Request) -> web.Response:
    return web.json_response(request.app[VENUE].issue_token(await _json(request)))


async def approval(request: web.Request) -> web.Response:
    return web.json_response(request.app[VENUE].approval(await _json(request)))


async def revoke(request: web.Request) -> web.Response:
    body = await _json(request)
    request.app[VENUE].revoke(str(body.get("token", "")))
    return web.json_response({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})


async def hashkey(request: web.Request) -> web.Response:
    body = await _json(request)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return web.json_response({"JsonBody": body, "HASH": digest})


# -- quotations -------------------------------------------------------------------------------

async def price(request: web.Request) -> web.Response:
    venue, _, _ = _uapi(request)
    q = _quote(venue, request.query.get("FID_INPUT_ISCD", ""))
    return ok({"output": {
        "stck_prpr": str(q.price), "prdy_vrss": str(q.price - q.prev_close),
        "prdy_vrss_sign": "2" if q.price > q.prev_close else "5" if q.price < q.prev_close
        else "3", "prdy_ctrt": f"{q.change_pct:.2f}", "acml_vol": str(q.volume),
        "acml_tr_pbmn": str(q.value), "stck_oprc": str(q.open), "stck_hgpr": str(q.high),
        "stck_lwpr": str(q.low), "stck_mxpr": str(q.upper), "stck_llam": str(q.lower),
        "stck_sdpr": str(q.prev_close)}})


async def multi_price(request: web.Request) -> web.Response:
    venue, _, _ = _uapi(request)
    rows = []
    for n in range(1, wire.MULTI_PRICE_MAX + 1):
        code = request.query.get(f"FID_INPUT_ISCD_{n}")
        if not code:
            continue
        q = _quote(venue, code)
        rows.append({"inter_shrn_iscd": q.code, "inter_kor_isnm": q.name,
                     "inter2_prpr": str(q.price), "inter2_prdy_vrss": str(q.price - q.prev_close),
                     "prdy_ctrt": f"{q.change_pct:.2f}", "acml_vol": str(q.volume),
                     "inter2_oprc": str(q.open), "inter2_hgpr": str(q.high),
                     "inter2_lwpr": str(q.low), "inter2_askp": str(q.ask),
                     "inter2_bidp": str(q.bid)})
    return ok({"output": rows})


def _ymd(s: str, field: str) -> date:
    try:
        return datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        raise kis_error(500, "OPSQ1003", f"{field} 날짜 형식 오류 ({s!r})") from None


async def daily_chart(request: web.Request) -> web.Response:
    venue, _, _ = _uapi(request)
    qy = request.query
    q = _quote(venue, qy.get("FID_INPUT_ISCD", ""))
    start = _ymd(qy.get("FID_INPUT_DATE_1", ""), "FID_INPUT_DATE_1")
    today = to_kst(venue.clock.now_ns()).date()
    end = min(_ymd(qy.get("FID_INPUT_DATE_2", ""), "FID_INPUT_DATE_2"), today)
    rows = venue.market.daily_bars(q.code, start, end)[:wire.DAILY_CHART_ROWS]
    return ok({"output1": {"hts_kor_isnm": q.name, "stck_prpr": str(q.price),
                           "stck_prdy_clpr": str(q.prev_close)},
               "output2": [{"stck_bsop_date": d.strftime("%Y%m%d"), "stck_oprc": str(o),
                            "stck_hgpr": str(h), "stck_lwpr": str(lo), "stck_clpr": str(c),
                            "acml_vol": str(v), "acml_tr_pbmn": str(v * c)}
                           for d, (o, h, lo, c, v) in rows]})


async def minute_chart(request: web.Request) -> web.Response:
    venue, _, _ = _uapi(request)
    q = _quote(venue, request.query.get("FID_INPUT_ISCD", ""))
    hour = request.query.get("FID_INPUT_HOUR_1", "") or kst_hhmmss(venue.clock.now_ns())
    if len(hour) != 6 or not hour.isdigit():
        raise kis_error(500, "OPSQ1003", f"FID_INPUT_HOUR_1 형식 오류 ({hour!r})")
    now = venue.clock.now_ns()
    rows = venue.market.minute_bars(q.code, now, hour, wire.MINUTE_CHART_ROWS)
    return ok({"output1": {"hts_kor_isnm": q.name, "stck_prpr": str(q.price),
                           "stck_prdy_clpr": str(q.prev_close)},
               "output2": [{"stck_bsop_date": t.strftime("%Y%m%d"),
                            "stck_cntg_hour": t.strftime("%H%M%S"), "stck_prpr": str(c),
                            "stck_oprc": str(o), "stck_hgpr": str(h), "stck_lwpr": str(lo),
                            "cntg_vol": str(v), "acml_tr_pbmn": str(v * c)}
                           for t, (o, h, lo, c, v) in rows]})


async def rank(request: web.Request) -> web.Response:
    venue, tr, _ = _uapi(request)
    by_change = tr == wire.TR_FLUCTUATION_RANK
    qs = sorted(venue.market.quotes.values(),
                key=lambda q: -q.change_pct if by_change else -q.volume)
    key = "stck_shrn_iscd" if by_change else "mksc_shrn_iscd"
    return ok({"output": [{key: q.code, "data_rank": str(i + 1), "hts_kor_isnm": q.name,
                           "stck_prpr": str(q.price), "prdy_ctrt": f"{q.change_pct:.2f}",
                           "acml_vol": str(q.volume)} for i, q in enumerate(qs)]})


# -- account queries ----------------------------------------------------------------------------

def _page(rows: list[Json], cursor: str, size: int) -> tuple[list[Json], str, str]:
    start = int(cursor) if cursor.strip().isdigit() else 0
    chunk = rows[start:start + size]
    more = start + size < len(rows)
    return chunk, (str(start + size) if more else ""), ("M" if more else "D")


async def balance(request: web.Request) -> web.Response:
    venue, tr, app = _uapi(request)
    venue.check_tr(tr, (wire.TR_BALANCE,))
    qy = request.query
    acct = venue.book.accounts[venue.account_of(app,
                                                qy.get("CANO", ""), qy.get("ACNT_PRDT_CD", ""))]
    rows = []
    for code, (qty, cost) in sorted(acct.positions.items()):
        q = venue.market.quotes[code]
        avg = cost / qty
        rows.append({"pdno": code, "prdt_name": q.name, "hldg_qty": str(qty),
                     "ord_psbl_qty": str(qty - acct.pending_sell(code)),
                     "pchs_avg_pric": f"{avg:.4f}", "pchs_amt": str(cost),
                     "prpr": str(q.price), "evlu_amt": str(qty * q.price),
                     "evlu_pfls_amt": str(qty * q.price - cost)})
    chunk, nk, cont = _page(rows, qy.get("CTX_AREA_NK100", ""), venue.settings.rows())
    stock_value = sum(int(r["evlu_amt"]) for r in rows)
    cash = str(acct.cash)
    return ok({"ctx_area_fk100": qy.get("CTX_AREA_FK100", ""), "ctx_area_nk100": nk,
               "output1": chunk,
               "output2": [{"dnca_tot_amt": cash, "nxdy_excc_amt": cash,
                            "prvs_rcdl_excc_amt": cash, "scts_evlu_amt": str(stock_value),
                            "tot_evlu_amt": str(acct.cash + stock_value),
                            "nass_amt": str(acct.cash + stock_value)}]}, tr_cont=cont)


async def psbl_order(request: web.Request) -> web.Response:
    venue, tr, app = _uapi(request)
    venue.check_tr(tr, (wire.TR_PSBL_ORDER,))
    qy = request.query
    acct = venue.book.accounts[venue.account_of(app,
                                                qy.get("CANO", ""), qy.get("ACNT_PRDT_CD", ""))]
    cash = acct.orderable_cash()
    px = int(qy.get("ORD_UNPR", "0") or 0)
    code = qy.get("PDNO", "")
    if px <= 0 and code in venue.market.quotes:
        px = venue.market.quotes[code].price
    return ok({"output": {"ord_psbl_cash": str(cash), "nrcvb_buy_amt": str(cash),
                          "max_buy_amt": str(cash),
                          "max_buy_qty": str(int(cash // px) if px > 0 else 0)}})


async def daily_ccld(request: web.Request) -> web.Response:
    venue, tr, app = _uapi(request)
    venue.check_tr(tr, (wire.TR_DAILY_CCLD,))
    qy = request.query
    acct = venue.book.accounts[venue.account_of(app,
                                                qy.get("CANO", ""), qy.get("ACNT_PRDT_CD", ""))]
    want = qy.get("ODNO", "")
    rows = []
    for o in sorted(acct.orders.values(), key=lambda o: o.odno, reverse=True):
        if want and o.odno != want:
            continue
        rows.append({"ord_dt": kst_yyyymmdd(o.ts_ns), "odno": o.odno, "orgn_odno": o.orgn_odno,
                     "sll_buy_dvsn_cd": o.side, "pdno": o.code,
                     "prdt_name": venue.market.quotes[o.code].name, "ord_qty": str(o.qty),
                     "ord_unpr": str(o.price), "ord_tmd": kst_hhmmss(o.ts_ns),
                     "tot_ccld_qty": str(o.filled), "avg_prvs": f"{o.avg_price:.0f}",
                     "tot_ccld_amt": str(o.filled_value), "rmn_qty": str(o.remaining),
                     "cncl_cfrm_qty": str(o.cancelled), "rjct_qty": "0",
                     "cncl_yn": "Y" if o.orgn_odno and o.qty == o.cancelled else "N",
                     "ord_dvsn_cd": o.dvsn, "excg_id_dvsn_cd": "KRX"})
    chunk, nk, cont = _page(rows, qy.get("CTX_AREA_NK100", ""), 100)
    return ok({"ctx_area_fk100": "", "ctx_area_nk100": nk, "output1": chunk,
               "output2": {"tot_ord_qty": str(sum(int(r["ord_qty"]) for r in rows)),
                           "tot_ccld_qty": str(sum(int(r["tot_ccld_qty"]) for r in rows))}},
              tr_cont=cont)


# -- orders -----------------------------------------------------------------------------------

def _fields(body: Json, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        value = body.get(name, "")
        if not isinstance(value, str):
            raise OrderError(BAD_FIELD, f"{name} must be a string, got {type(value).__name__}")
        out[name] = value
    return out


def _int(value: str, name: str) -> int:
    if not value.isdigit():
        raise OrderError(BAD_FIELD, f"{name} must be digits, got {value!r}")
    return int(value)


async def order_cash(request: web.Request) -> web.Response:
    venue, tr, app = _uapi(request)
    venue.check_tr(tr, (wire.TR_SELL, wire.TR_BUY, wire.TR_SELL_LEGACY, wire.TR_BUY_LEGACY))
    body = await _json(request)
    try:
        f = _fields(body, ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR",
                           "EXCG_ID_DVSN_CD"))
        account = venue.account_of(app, f["CANO"], f["ACNT_PRDT_CD"])
        if venue.settings.domain == "virtual" and f["EXCG_ID_DVSN_CD"] not in ("", "KRX"):
            raise OrderError(BAD_FIELD, "모의투자는 KRX 만 가능합니다 (virtual accepts KRX only)")
        side = "01" if tr[1:] in (wire.TR_SELL[1:], wire.TR_SELL_LEGACY[1:]) else "02"
        now = venue.clock.now_ns()
        order = venue.book.place(account, f["PDNO"], side, _int(f["ORD_QTY"], "ORD_QTY"),
                                 _int(f["ORD_UNPR"] or "0", "ORD_UNPR"), f["ORD_DVSN"], now)
    except OrderError as e:
        return web.json_response({"rt_cd": "1", "msg_cd": e.code, "msg1": e.message},
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))
    return ok({"output": {"KRX_FWDG_ORD_ORGNO": venue.book.orgno, "ODNO": order.odno,
                          "ORD_TMD": kst_hhmmss(now)}},
              msg_cd="APBK0013", msg1="주문 전송 완료 되었습니다.")


async def order_rvsecncl(request: web.Request) -> web.Response:
    venue, tr, app = _uapi(request)
    venue.check_tr(tr, (wire.TR_RVSECNCL,))
    body = await _json(request)
    try:
        f = _fields(body, ("CANO", "ACNT_PRDT_CD", "KRX_FWDG_ORD_ORGNO", "ORGN_ODNO",
                           "ORD_DVSN", "RVSE_CNCL_DVSN_CD", "ORD_QTY", "ORD_UNPR",
                           "QTY_ALL_ORD_YN"))
        account = venue.account_of(app, f["CANO"], f["ACNT_PRDT_CD"])
        now = venue.clock.now_ns()
        order = venue.book.cancel_or_modify(
            account, f["ORGN_ODNO"], f["RVSE_CNCL_DVSN_CD"], _int(f["ORD_QTY"] or "0", "ORD_QTY"),
            f["QTY_ALL_ORD_YN"] == "Y", _int(f["ORD_UNPR"] or "0", "ORD_UNPR"), f["ORD_DVSN"], now)
    except OrderError as e:
        return web.json_response({"rt_cd": "1", "msg_cd": e.code, "msg1": e.message},
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))
    return ok({"output": {"KRX_FWDG_ORD_ORGNO": venue.book.orgno, "ODNO": order.odno,
                          "ORD_TMD": kst_hhmmss(now)}},
              msg_cd="APBK0013", msg1="주문 전송 완료 되었습니다.")


def add_routes(app: web.Application) -> None:
    r = app.router
    for path, fn in ((wire.TOKEN, token), (wire.APPROVAL, approval), (wire.REVOKE, revoke),
                     (wire.HASHKEY, hashkey), (wire.ORDER_CASH, order_cash),
                     (wire.ORDER_RVSECNCL, order_rvsecncl)):
        r.add_post(path, guarded(fn))
    for path, fn in ((wire.PRICE, price), (wire.MULTI_PRICE, multi_price),
                     (wire.DAILY_CHART, daily_chart), (wire.MINUTE_CHART, minute_chart),
                     (wire.VOLUME_RANK, rank), (wire.FLUCTUATION_RANK, rank),
                     (wire.BALANCE, balance), (wire.PSBL_ORDER, psbl_order),
                     (wire.DAILY_CCLD, daily_ccld)):
        r.add_get(path, guarded(fn))
