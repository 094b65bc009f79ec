"""Start-up recovery of the order journal into the ledger.

The desk journals a burst (:mod:`jts.storage.order_wal`) before sending it and records it in
the ledger after; a crash in between leaves orders in the journal only. At start, before
reconciliation, :func:`restore_journal` records every journaled order the ledger lacks as
NEW ("may have been sent"), with an audit entry and an ``order_recovered_from_journal``
warning, so reconciliation (:mod:`jts.reconcile`) asks the broker what became of it. It is
never sent again. Then the journal's old segments are retired.
"""

from __future__ import annotations

import structlog

from jts.storage.ledger import Ledger
from jts.storage.order_wal import OrderWal
from jts.types import OrderRequest

log = structlog.get_logger(__name__)


async def restore_journal(wal: OrderWal, ledger: Ledger) -> list[OrderRequest]:
    """Record the journal's orders missing from ``ledger``; returns them. A ledger that
    cannot be read or written raises (StorageError) and the journal keeps everything."""
    entries = wal.recovered
    ids = [o.client_order_id for e in entries for o in e.orders]
    known = await ledger.known_orders(ids) if ids else set()
    restored: list[OrderRequest] = []
    for entry in entries:
        missing: list[OrderRequest] = []
        for o in entry.orders:
            if o.client_order_id not in known:
                known.add(o.client_order_id)
                missing.append(o)
        if not missing:
            continue
        await ledger.record_orders(missing, ts_ns=entry.ts_ns)
        for o in missing:
            fields: dict[str, object] = {
                "client_order_id": o.client_order_id, "broker": o.broker,
                "account": o.account, "symbol": o.symbol, "side": o.side.value,
                "quantity": str(o.quantity), "order_type": o.order_type.value,
                "limit_price": None if o.limit_price is None else str(o.limit_price),
                "strategy": o.strategy, "journaled_ns": entry.ts_ns, "lsn": entry.lsn}
            log.warning("order_recovered_from_journal", **fields)
            await ledger.audit("order_recovered_from_journal", fields)
        restored += missing
    if entries:
        log.info("order_journal_restored", records=len(entries), orders=len(ids),
                 recorded=len(restored))
    wal.confirm_recovered()
    return restored
