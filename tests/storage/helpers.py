"""Small builders and raw-database access shared by the storage tests."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from jts.types import Fill, OrderRequest, Side

D = Decimal
BROKER, ACCOUNT = "paper", "acc1"


def order(coid: str, qty: str = "10", side: Side = Side.BUY,
          symbol: str = "005930") -> OrderRequest:
    return OrderRequest(coid, BROKER, ACCOUNT, symbol, side, D(qty), strategy="s1")


def fill(trade: str, coid: str, qty: str, price: str, side: Side = Side.BUY,
         symbol: str = "005930", ts_ns: int = 1_700_000_000_000_000_000,
         commission: str = "0", tax: str = "0") -> Fill:
    return Fill(BROKER, ACCOUNT, trade, coid, symbol, side, D(qty), D(price), D(commission),
                D(tax), ts_ns, "s1")


async def raw_exec(url: str, *statements: str) -> None:
    """Run SQL behind the ledger's back (to simulate tampering)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(urlsplit(url).path[1:], isolation_level=None)
        for s in statements:
            conn.execute(s)
        conn.close()
        return
    import asyncpg
    schema = parse_qs(urlsplit(url).query)["search_path"][0]
    c = await asyncpg.connect(url.split("?")[0], server_settings={"search_path": schema})
    for s in statements:
        await c.execute(s)
    await c.close()
