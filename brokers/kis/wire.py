"""KIS Open API wire constants shared by the adapter and the simulator.

Hosts, paths, TR ids, error codes and the official real-time column lists
(../shared/brokers/PROTOCOLS.md §B1). Only names and numbers live here; parsing is in
:mod:`brokers.kis.parse`.
"""

from __future__ import annotations

from typing import Final, Literal

Domain = Literal["real", "virtual"]

REST_HOSTS: Final[dict[str, str]] = {
    "real": "https://openapi.koreainvestment.com:9443",
    "virtual": "https://openapivts.koreainvestment.com:29443",
}
WS_HOSTS: Final[dict[str, str]] = {
    "real": "ws://ops.koreainvestment.com:21000/tryitout",
    "virtual": "ws://ops.koreainvestment.com:31000/tryitout",
}

# -- paths -------------------------------------------------------------------------------
TOKEN = "/oauth2/tokenP"
REVOKE = "/oauth2/revokeP"
APPROVAL = "/oauth2/Approval"
HASHKEY = "/uapi/hashkey"
_Q = "/uapi/domestic-stock/v1/quotations/"
_T = "/uapi/domestic-stock/v1/trading/"
PRICE = _Q + "inquire-price"
MULTI_PRICE = _Q + "intstock-multprice"
DAILY_CHART = _Q + "inquire-daily-itemchartprice"
MINUTE_CHART = _Q + "inquire-time-itemchartprice"
VOLUME_RANK = _Q + "volume-rank"
FLUCTUATION_RANK = "/uapi/domestic-stock/v1/ranking/fluctuation"
ORDER_CASH = _T + "order-cash"
ORDER_RVSECNCL = _T + "order-rvsecncl"
BALANCE = _T + "inquire-balance"
PSBL_ORDER = _T + "inquire-psbl-order"
DAILY_CCLD = _T + "inquire-daily-ccld"

# -- TR ids (real; virtual trading TRs replace the leading T with V) -----------------------
TR_PRICE = "FHKST01010100"
TR_MULTI_PRICE = "FHKST11300006"
TR_DAILY_CHART = "FHKST03010100"
TR_MINUTE_CHART = "FHKST03010200"
TR_VOLUME_RANK = "FHPST01710000"
TR_FLUCTUATION_RANK = "FHPST01700000"
TR_SELL = "TTTC0011U"
TR_BUY = "TTTC0012U"
TR_SELL_LEGACY = "TTTC0801U"
TR_BUY_LEGACY = "TTTC0802U"
TR_RVSECNCL = "TTTC0013U"
TR_BALANCE = "TTTC8434R"
TR_PSBL_ORDER = "TTTC8908R"
TR_DAILY_CCLD = "TTTC0081R"

WS_TRADE = "H0STCNT0"
WS_BOOK = "H0STASP0"
WS_NOTICE_REAL = "H0STCNI0"
WS_NOTICE_VIRTUAL = "H0STCNI9"

MULTI_PRICE_MAX = 30
DAILY_CHART_ROWS = 100
MINUTE_CHART_ROWS = 30
BALANCE_ROWS = {"real": 50, "virtual": 20}
RATE_LIMIT = {"real": 20, "virtual": 2}
WS_MAX_SUBSCRIPTIONS = 40


def tr_for(domain: Domain, real_tr: str) -> str:
    """The TR id for ``domain``: virtual trading swaps a leading T/J/C for V."""
    if domain == "virtual" and real_tr[:1] in ("T", "J", "C"):
        return "V" + real_tr[1:]
    return real_tr


# -- error codes ---------------------------------------------------------------------------
RATE_EXCEEDED = "EGW00201"        # 초당 거래건수를 초과하였습니다.
TOKEN_EXPIRED = "EGW00123"        # 기간이 만료된 token 입니다.
TOKEN_INVALID = "EGW00121"        # 유효하지 않은 token 입니다.
TOKEN_THROTTLED = "EGW00133"      # 접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)
DOMAIN_MISMATCH = "EGW02004"      # 실전투자 도메인은 모의투자 앱키로 호출하실 수 없습니다.
WS_SUBSCRIBED = "OPSP0000"
WS_UNSUBSCRIBED = "OPSP0001"
WS_MAX_SUBSCRIBE = "OPSP0008"

# -- real-time column lists (official) -------------------------------------------------------
TRADE_FIELDS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD", "STCK_CNTG_HOUR", "STCK_PRPR", "PRDY_VRSS_SIGN", "PRDY_VRSS",
    "PRDY_CTRT", "WGHN_AVRG_STCK_PRC", "STCK_OPRC", "STCK_HGPR", "STCK_LWPR", "ASKP1",
    "BIDP1", "CNTG_VOL", "ACML_VOL", "ACML_TR_PBMN", "SELN_CNTG_CSNU", "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU", "CTTR", "SELN_CNTG_SMTN", "SHNU_CNTG_SMTN", "CCLD_DVSN", "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE", "OPRC_HOUR", "OPRC_VRSS_PRPR_SIGN", "OPRC_VRSS_PRPR",
    "HGPR_HOUR", "HGPR_VRSS_PRPR_SIGN", "HGPR_VRSS_PRPR", "LWPR_HOUR", "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR", "BSOP_DATE", "NEW_MKOP_CLS_CODE", "TRHT_YN", "ASKP_RSQN1",
    "BIDP_RSQN1", "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL", "PRDY_SMNS_HOUR_ACML_VOL_RATE", "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE", "VI_STND_PRC",
)
BOOK_FIELDS: Final[tuple[str, ...]] = (
    "MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)), *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)), *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    "TOTAL_ASKP_RSQN", "TOTAL_BIDP_RSQN", "OVTM_TOTAL_ASKP_RSQN", "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR", "ANTC_CNQN", "ANTC_VOL", "ANTC_CNTG_VRSS", "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT", "ACML_VOL", "TOTAL_ASKP_RSQN_ICDC", "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC", "OVTM_TOTAL_BIDP_ICDC", "STCK_DEAL_CLS_CODE",
)
NOTICE_FIELDS: Final[tuple[str, ...]] = (
    "CUST_ID", "ACNT_NO", "ODER_NO", "OODER_NO", "SELN_BYOV_CLS", "RCTF_CLS", "ODER_KIND",
    "ODER_COND", "STCK_SHRN_ISCD", "CNTG_QTY", "CNTG_UNPR", "STCK_CNTG_HOUR", "RFUS_YN",
    "CNTG_YN", "ACPT_YN", "BRNC_NO", "ODER_QTY", "ACNT_NAME", "ORD_COND_PRC", "ORD_EXG_GB",
    "POPUP_YN", "FILLER", "CRDT_CLS", "CRDT_LOAN_DATE", "CNTG_ISNM40", "ODER_PRC",
)
assert len(TRADE_FIELDS) == 46 and len(BOOK_FIELDS) == 59 and len(NOTICE_FIELDS) == 26
