"""The order journal on real files: round trip, torn tails at every byte, corruption in the
middle reported, segments rotated, recycled and retired only once the ledger has them."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from jts.errors import StorageError
from jts.storage.order_wal import JournalCorrupt, JournalEntry, OrderWal, read_journal
from jts.types import OrderRequest, OrderType, Side

T0 = 1_764_000_000_000_000_000
SMALL = 4096                  # segment bytes: a few records each, so tests rotate often


def order(i: int, qty: str = "10", price: str | None = "70100.5") -> OrderRequest:
    return OrderRequest(f"J-{i:06d}", "paper", "paper-1", f"{i % 900 + 1:06d}",
                        Side.BUY if i % 2 else Side.SELL, Decimal(qty),
                        OrderType.LIMIT if price else OrderType.MARKET,
                        Decimal(price) if price else None, "s", "krx")


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record of a segment, read by the documented layout."""
    out, pos = [], 32
    while data[pos:pos + 4] == b"JORD":
        (length,) = struct.unpack_from("<I", data, pos + 8)
        out.append((pos, pos + 32 + length))
        pos += 32 + length
    return out


def stale_copy(record: bytes, number: int) -> bytes:
    """``record`` as a valid record of segment ``number`` (what a recycled file holds)."""
    body = record[8:12] + struct.pack("<I", number) + record[16:]
    return record[:4] + struct.pack("<I", zlib.crc32(body)) + body


def test_append_and_recover_round_trip(tmp_path: Path) -> None:
    wal = OrderWal.open(tmp_path / "j")
    bursts = [[order(1)], [order(2, "3", None), order(3, "0.5")], [order(i) for i in range(4, 54)]]
    for k, burst in enumerate(bursts):
        assert wal.append(burst, T0 + k) == (wal_active_number(tmp_path / "j"),)
    assert wal.append([], T0) == ()
    # a crash: nothing confirmed, nothing closed
    again = OrderWal.open(tmp_path / "j")
    assert again.recovered == [JournalEntry(k + 1, T0 + k, b) for k, b in enumerate(bursts)]
    assert again.recovered[1].orders[0].limit_price is None
    assert again.recovered[1].orders[1].quantity == Decimal("0.5")     # exact, not a float
    # appends go on after what was recovered (LSNs stay consecutive)
    again.append([order(99)], T0 + 9)
    assert [e.lsn for e in read_journal(tmp_path / "j")] == [1, 2, 3, 4]


def wal_active_number(path: Path) -> int:
    """The highest segment holding a record (the one being written)."""
    return max(int(p.stem) for p in segments(path) if records(p.read_bytes()))


def test_confirmed_then_closed_leaves_nothing_to_recover(tmp_path: Path) -> None:
    wal = OrderWal.open(tmp_path / "j")
    for i in range(5):
        wal.confirm(wal.append([order(i)], T0 + i))
    assert wal.pending == 0
    wal.close()
    again = OrderWal.open(tmp_path / "j")
    assert again.recovered == []
    assert len(segments(tmp_path / "j")) == 2          # the active one and one spare


def test_unconfirmed_orders_survive_a_clean_close(tmp_path: Path) -> None:
    wal = OrderWal.open(tmp_path / "j")
    wal.confirm(wal.append([order(1)], T0))
    wal.append([order(2)], T0 + 1)                     # the ledger never got this one
    wal.close()
    got = [o.client_order_id for e in OrderWal.open(tmp_path / "j").recovered for o in e.orders]
    assert "J-000002" in got


@pytest.mark.parametrize("fill", ["truncated", "zeros", "stale"])
def test_a_torn_last_record_at_every_byte_is_the_end_not_an_error(tmp_path: Path,
                                                                   fill: str) -> None:
    src = tmp_path / "src"
    wal = OrderWal.open(src, segment_bytes=SMALL)
    for k in range(3):
        wal.append([order(2 * k), order(2 * k + 1)], T0 + k)
    seg = max(segments(src), key=lambda p: len(records(p.read_bytes())))
    data = seg.read_bytes()
    start, end = records(data)[-1]
    whole = read_journal(src)
    assert len(whole) == 3
    probe = tmp_path / "probe"
    probe.mkdir()
    for cut in range(start, end):
        if fill == "truncated":
            torn = data[:cut]
        elif fill == "zeros":                         # a pre-allocated block never written
            torn = data[:cut] + bytes(len(data) - cut)
        else:                                         # a recycled segment's old records
            torn = data[:cut] + stale_copy(data[start:end], int(seg.stem) - 1) * 40
            torn = torn[:len(data)]
        (probe / seg.name).write_bytes(torn)
        assert read_journal(probe) == whole[:2], f"cut at {cut}"
    # and the journal opens on such a tail and goes on from it
    (probe / seg.name).write_bytes(data[:start + 7])
    reopened = OrderWal.open(probe, segment_bytes=SMALL)
    assert reopened.recovered == whole[:2]
    reopened.append([order(77)], T0 + 7)
    assert [e.lsn for e in read_journal(probe)] == [1, 2, 3]


def test_a_damaged_record_in_the_middle_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "j"
    wal = OrderWal.open(path)
    for k in range(3):
        wal.append([order(k)], T0 + k)
    (seg,) = [p for p in segments(path) if records(p.read_bytes())]
    data = bytearray(seg.read_bytes())
    first, _ = records(bytes(data))[0]
    for at in (first + 40, first + 9):                # a payload byte, then the length field
        bad = bytearray(data)
        bad[at] ^= 0x55
        seg.write_bytes(bytes(bad))
        with pytest.raises(JournalCorrupt, match="corrupt in the middle") as ei:
            OrderWal.open(path)
        assert seg.name in str(ei.value) and f"offset {first}" in str(ei.value)
        assert "\n" not in str(ei.value)


def test_lost_records_between_segments_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "j"
    wal = OrderWal.open(path, segment_bytes=SMALL)
    for k in range(80):
        wal.append([order(k)], T0 + k)
    full = [p for p in segments(path) if records(p.read_bytes())]
    assert len(full) >= 3
    kept = tmp_path / "kept"
    shutil.copytree(path, kept)
    full[1].unlink()                                   # a whole segment gone
    with pytest.raises(JournalCorrupt, match="records are missing"):
        read_journal(path)
    shutil.rmtree(path)
    shutil.copytree(kept, path)
    data = bytearray(full[0].read_bytes())            # the last record of a full segment
    start, end = records(bytes(data))[-1]
    data[start:end] = bytes(end - start)
    full[0].write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="records are missing"):
        OrderWal.open(path, segment_bytes=SMALL)


def test_a_bad_segment_header_or_stray_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "j"
    OrderWal.open(path).append([order(1)], T0)
    seg = segments(path)[0]
    data = bytearray(seg.read_bytes())
    data[12] ^= 1                                      # the segment number
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="damaged segment header"):
        OrderWal.open(path)
    seg.write_bytes(b"not a journal")
    with pytest.raises(JournalCorrupt, match="not a journal segment"):
        OrderWal.open(path)
    seg.unlink()
    (path / "7.seg").write_bytes(b"")
    with pytest.raises(JournalCorrupt, match=r"unexpected file 7\.seg"):
        OrderWal.open(path)


def test_segments_are_retired_oldest_first_once_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "j"
    wal = OrderWal.open(path, segment_bytes=SMALL)
    tickets = [wal.append([order(k)], T0 + k) for k in range(80)]
    assert len({t for ticket in tickets for t in ticket}) >= 4
    files = len(segments(path))
    for ticket in tickets[1:]:                         # everything but the very first burst
        wal.confirm(ticket)
    assert len(segments(path)) == files                # the oldest segment holds the rest
    wal.confirm(tickets[0])
    assert len(segments(path)) == 2 and wal.pending == 0
    # recycled segments keep their old records on disk: they are not recovered
    for k in range(80, 130):
        wal.confirm(wal.append([order(k)], T0 + k))
    wal.append([order(130)], T0 + 130)
    recovered = OrderWal.open(path, segment_bytes=SMALL).recovered
    lsns = [e.lsn for e in recovered]
    assert lsns == list(range(lsns[0], 132)) and lsns[0] > 80
    assert recovered[-1].orders == [order(130)]


def test_a_burst_larger_than_a_segment_spans_segments(tmp_path: Path) -> None:
    path = tmp_path / "j"
    wal = OrderWal.open(path, segment_bytes=SMALL)
    burst = [order(i) for i in range(60)]              # ~10 KiB
    ticket = wal.append(burst, T0)
    assert len(ticket) >= 3 and list(ticket) == sorted(ticket)
    got = OrderWal.open(path, segment_bytes=SMALL).recovered
    assert [o for e in got for o in e.orders] == burst
    with pytest.raises(StorageError, match="exceeds a segment"):
        wal.append([order(1, price="1" * 5000)], T0)


def test_a_write_error_makes_the_journal_refuse_every_later_append(tmp_path: Path) -> None:
    wal = OrderWal.open(tmp_path / "j")
    wal.append([order(1)], T0)
    os.close(wal._active.fd)                           # the file is gone under it (EBADF)
    with pytest.raises(StorageError, match=r"write failed.*no order of this burst was sent"):
        wal.append([order(2)], T0)
    with pytest.raises(StorageError, match="unusable after an earlier write error"):
        wal.append([order(3)], T0)


def test_a_journal_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "j").write_text("x")
    with pytest.raises(StorageError, match="exists and is not a directory"):
        OrderWal.open(tmp_path / "j")


def test_without_sync_appends_still_reach_the_file(tmp_path: Path) -> None:
    wal = OrderWal.open(tmp_path / "j", sync=False)
    wal.append([order(1)], T0)
    assert [e.orders for e in read_journal(tmp_path / "j")] == [[order(1)]]
