"""KIS market data over REST for :class:`brokers.kis.broker.KisBroker`: quotes, rankings,
daily and minute charts (paged), each on its rate-limit lane."""

from __future__ import annotations

from datetime import date

from brokers.kis import parse, wire
from brokers.kis.rest import KisRest
from jts.ratelimit import Lane
from jts.types import Bar


class KisMarketData:
    rest: KisRest
    prev_closes: dict[str, float]

    # -- market data --------------------------------------------------------------------

    async def quote(self, symbol: str, lane: Lane = Lane.REALTIME) -> parse.Quote:
        resp = await self.rest.get(wire.PRICE, wire.TR_PRICE, {
            "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol}, lane=lane)
        return parse.quote(symbol, resp.body.get("output") or {})

    async def quotes(self, symbols: list[str], lane: Lane = Lane.REALTIME) -> list[parse.Quote]:
        out: list[parse.Quote] = []
        for i in range(0, len(symbols), wire.MULTI_PRICE_MAX):
            params: dict[str, str] = {}
            for n, sym in enumerate(symbols[i:i + wire.MULTI_PRICE_MAX], start=1):
                params[f"FID_COND_MRKT_DIV_CODE_{n}"] = "J"
                params[f"FID_INPUT_ISCD_{n}"] = sym
            resp = await self.rest.get(wire.MULTI_PRICE, wire.TR_MULTI_PRICE, params, lane=lane)
            out.extend(parse.multi_quotes(resp.body.get("output") or []))
        return out

    async def ranking(self, by: str = "volume", lane: Lane = Lane.BACKGROUND
                      ) -> list[parse.Quote]:
        """Surge discovery: top symbols by ``volume`` or by ``change`` (fluctuation)."""
        if by == "volume":
            path, tr = wire.VOLUME_RANK, wire.TR_VOLUME_RANK
            params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_COND_SCR_DIV_CODE": "20171",
                      "FID_INPUT_ISCD": "0000", "FID_DIV_CLS_CODE": "0",
                      "FID_BLNG_CLS_CODE": "0", "FID_TRGT_CLS_CODE": "111111111",
                      "FID_TRGT_EXLS_CLS_CODE": "0000000000", "FID_INPUT_PRICE_1": "",
                      "FID_INPUT_PRICE_2": "", "FID_VOL_CNT": "", "FID_INPUT_DATE_1": ""}
        elif by == "change":
            path, tr = wire.FLUCTUATION_RANK, wire.TR_FLUCTUATION_RANK
            params = {"fid_cond_mrkt_div_code": "J", "fid_cond_scr_div_code": "20170",
                      "fid_input_iscd": "0000", "fid_rank_sort_cls_code": "0",
                      "fid_input_cnt_1": "0", "fid_prc_cls_code": "0",
                      "fid_input_price_1": "", "fid_input_price_2": "", "fid_vol_cnt": "",
                      "fid_trgt_cls_code": "0", "fid_trgt_exls_cls_code": "0",
                      "fid_div_cls_code": "0", "fid_rsfl_rate1": "", "fid_rsfl_rate2": ""}
        else:
            raise ValueError(f"ranking by {by!r}: use 'volume' or 'change'")
        resp = await self.rest.get(path, tr, params, lane=lane)
        return parse.ranked(resp.body.get("output") or [])

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily bars in [start, end], oldest first, paging 100 rows per call."""
        bars: dict[int, Bar] = {}
        cursor = end
        while cursor >= start:
            resp = await self.rest.get(wire.DAILY_CHART, wire.TR_DAILY_CHART, {
                "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol,
                "FID_INPUT_DATE_1": start.strftime("%Y%m%d"),
                "FID_INPUT_DATE_2": cursor.strftime("%Y%m%d"), "FID_PERIOD_DIV_CODE": "D",
                "FID_ORG_ADJ_PRC": "0"})
            page = parse.daily_bars(symbol, resp.body.get("output2") or [])
            if not page:
                break
            for b in page:
                bars[b.ts_ns] = b
            oldest = parse.to_day(page[0].ts_ns)
            if len(page) < wire.DAILY_CHART_ROWS or oldest <= start:
                break
            cursor = date.fromordinal(oldest.toordinal() - 1)
        return [bars[k] for k in sorted(bars)]

    async def minute_bars(self, symbol: str, until_hhmmss: str = "153000", *,
                          since_ns: int = 0, lane: Lane = Lane.BACKGROUND) -> list[Bar]:
        """Today's one-minute bars up to ``until_hhmmss`` (back to ``since_ns`` when given),
        oldest first, 30 per call."""
        bars: dict[int, Bar] = {}
        hour = until_hhmmss
        while True:
            resp = await self.rest.get(wire.MINUTE_CHART, wire.TR_MINUTE_CHART, {
                "FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "J",
                "FID_INPUT_ISCD": symbol, "FID_INPUT_HOUR_1": hour,
                "FID_PW_DATA_INCU_YN": "Y"}, lane=lane)
            prev = parse.prev_close(resp.body.get("output1") or {})
            if prev:
                self.prev_closes[symbol] = prev
            page = parse.minute_bars(symbol, resp.body.get("output2") or [])
            new = [b for b in page if b.ts_ns not in bars]
            for b in new:
                bars[b.ts_ns] = b
            if len(page) < wire.MINUTE_CHART_ROWS or not new or page[0].ts_ns <= since_ns:
                break
            hour = parse.hhmmss_before(page[0].ts_ns)
        return [bars[k] for k in sorted(bars)]
