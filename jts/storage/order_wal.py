"""The order journal: a write-ahead log of every order the desk sends, made durable in the
calling thread before the first order of a burst leaves (docs/architecture.md, "Order journal").

It owns the journal directory (``[orders] journal``, default ``<state_dir>/orders.wal``), its
segment files, their record format, recovery after a crash and checkpointing.

* **Segments** ``00000001.seg``, ``00000002.seg`` … have a fixed size and are written full of
  zeros when created, so an append is one ``pwrite`` into allocated blocks plus one
  ``os.fdatasync`` (no size or extent change for the file system to journal). A segment
  opens with a 32-byte header (magic, version, number, size, CRC32); records follow::

      magic u32 | crc32 u32 | length u32 | segment u32 | lsn i64 | ts_ns i64 | payload

  ``payload`` is a msgpack array of msgspec-encoded OrderRequests (length bytes); the CRC
  covers everything after itself. One ``append`` (a burst) is one record — two when it
  straddles segments, the first synced before the second is written. ``lsn`` numbers
  records consecutively across segments.
* **Recovery** reads each segment's records up to the first that is not valid. A torn last
  record is what a crash mid-append leaves (its burst was never sent) and is not an error;
  a valid record *after* an invalid one, an LSN gap (within or between segments) or a bad
  segment header is corruption and raises :class:`JournalCorrupt` — we halt, not guess.
* **Checkpointing**: ``append`` returns a ticket; ``confirm(ticket)`` says the ledger has
  durably committed those orders. A full segment whose records are all confirmed is retired,
  oldest first (so the segments still holding records stay contiguous): it is recycled as the
  next spare segment (renamed, given a new header; its stale records carry the old segment
  number and are ignored) or deleted when a spare exists. A clean ``close`` with everything
  confirmed retires the active segment too, so the next start reads nothing.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import structlog

from jts.errors import InvariantError, StorageError
from jts.types import OrderRequest

log = structlog.get_logger(__name__)

SEGMENT_BYTES = 4 << 20          # ~20,000 single-order bursts per segment
VERSION = 1
_SEG = struct.Struct("<8sIQQI")     # magic, version, number, size, crc32 of the rest
_SEG_MAGIC = b"JTS-OWAL"
_HEADER = 32
_REC = struct.Struct("<IIIIqq")     # magic, crc32, length, segment, lsn, ts_ns
_REC_MAGIC_BYTES = b"JORD"
_REC_MAGIC = int.from_bytes(_REC_MAGIC_BYTES, "little")
_TMP = "spare.tmp"
_ZEROS = bytes(1 << 20)
Ticket = tuple[int, ...]            # the segment number of each record an append wrote

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[OrderRequest]).decode


class JournalCorrupt(StorageError):
    """The journal is damaged somewhere other than its torn tail: refuse to guess."""


class JournalEntry(msgspec.Struct, frozen=True):
    """One recovered record: the orders of one append (a burst) and when it was made."""

    lsn: int
    ts_ns: int
    orders: list[OrderRequest]


@dataclass
class _Segment:
    number: int
    path: Path
    fd: int = -1
    end: int = _HEADER          # where the next record goes
    pending: int = 0            # records the ledger has not confirmed yet
    sealed: bool = False        # no more appends (rotated away, or read at start)


@dataclass
class _Scan:
    entries: list[JournalEntry] = field(default_factory=list)
    with_records: list[tuple[int, Path]] = field(default_factory=list)
    empty: list[tuple[int, Path]] = field(default_factory=list)
    last_lsn: int = 0
    highest: int = 0


def _segment_header(number: int, size: int) -> bytes:
    body = _SEG.pack(_SEG_MAGIC, VERSION, number, size, 0)[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def _parse(data: bytes, pos: int, number: int) -> tuple[int, int, int] | None:
    """(lsn, ts_ns, end) of a valid record of segment ``number`` at ``pos``, else None."""
    if pos + _REC.size > len(data):
        return None
    magic, crc, length, seg, lsn, ts_ns = _REC.unpack_from(data, pos)
    end = pos + _REC.size + length
    if magic != _REC_MAGIC or seg != number or length == 0 or end > len(data):
        return None
    if zlib.crc32(memoryview(data)[pos + 8:end]) != crc:
        return None
    return lsn, ts_ns, end


def _valid_after(data: bytes, pos: int, number: int) -> tuple[int, int] | None:
    """(offset, lsn) of the first valid record of this segment after ``pos``."""
    at = data.find(_REC_MAGIC_BYTES, pos + 1)
    while at != -1:
        got = _parse(data, at, number)
        if got is not None:
            return at, got[0]
        at = data.find(_REC_MAGIC_BYTES, at + 1)
    return None


def _numbered(path: Path) -> list[tuple[int, Path]]:
    out = []
    for p in path.iterdir():
        if p.suffix == ".seg":
            if not (len(p.stem) == 8 and p.stem.isdigit()):
                raise JournalCorrupt(f"order journal {path}: unexpected file {p.name}")
            out.append((int(p.stem), p))
    return sorted(out)


def read_journal(path: Path) -> list[JournalEntry]:
    """Every complete record in the journal at ``path``, in order (reads only)."""
    return _scan(Path(path)).entries


def _scan(path: Path) -> _Scan:
    scan = _Scan()
    prev: int | None = None          # the last LSN read, across segments
    for number, seg_path in _numbered(path):
        where = f"order journal {path}: {seg_path.name}"
        data = seg_path.read_bytes()
        head = data[:_SEG.size]
        if len(head) < _SEG.size or head[:8] != _SEG_MAGIC:
            raise JournalCorrupt(f"{where}: not a journal segment (bad header)")
        _, version, hnum, _, crc = _SEG.unpack(head)
        if zlib.crc32(head[:-4]) != crc or version != VERSION or hnum != number:
            raise JournalCorrupt(f"{where}: damaged segment header (version {version}, "
                                 f"number {hnum})")
        pos, n = _HEADER, 0
        while (got := _parse(data, pos, number)) is not None:
            lsn, ts_ns, end = got
            if prev is not None and lsn != prev + 1:
                raise JournalCorrupt(f"{where}: record at offset {pos} has LSN {lsn}, expected "
                                     f"{prev + 1}: records are missing")
            try:
                orders = _decode(memoryview(data)[pos + _REC.size:end])
            except msgspec.DecodeError as exc:
                raise JournalCorrupt(f"{where}: record LSN {lsn} at offset {pos} has a valid "
                                     f"checksum but cannot be decoded: {exc}") from None
            scan.entries.append(JournalEntry(lsn, ts_ns, orders))
            prev, pos, n = lsn, end, n + 1
        later = _valid_after(data, pos, number)
        if later is not None:
            raise JournalCorrupt(f"{where}: the record at offset {pos} is damaged but a valid "
                                 f"record (LSN {later[1]}) follows at offset {later[0]}: the "
                                 "journal is corrupt in the middle; refusing to guess which "
                                 "orders were sent")
        torn = _REC.unpack_from(data, pos) if pos + _REC.size <= len(data) else None
        if torn is not None and torn[0] == _REC_MAGIC and torn[3] == number:
            log.warning("order_journal_torn_tail", file=str(seg_path), offset=pos)
        (scan.with_records if n else scan.empty).append((number, seg_path))
        scan.highest = number
    scan.last_lsn = prev or 0
    return scan


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OrderWal:
    """The journal at ``path`` open for appending (see the module docstring)."""

    def __init__(self, path: Path, scan: _Scan, *, sync: bool, segment_bytes: int) -> None:
        self.path = path
        self.sync = sync
        self.size = segment_bytes
        self.recovered = scan.entries          # what the last run left: restore, then confirm
        self._segments: dict[int, _Segment] = {
            n: _Segment(n, p, pending=1, sealed=True) for n, p in scan.with_records}
        self._recovered_segments = [n for n, _ in scan.with_records]
        self._last_number = scan.highest
        self._next_lsn = scan.last_lsn + 1
        self._free = [p for _, p in scan.empty]  # recycled before anything is created
        self._broken = ""
        self._spare: _Segment | None = None
        self._active = self._make_segment()
        self._activate(self._active)
        self._spare = self._make_segment()
        for p in self._free:
            p.unlink()
        self._free.clear()
        _fsync_dir(path)

    @classmethod
    def open(cls, path: Path | str, *, sync: bool = True,
             segment_bytes: int = SEGMENT_BYTES) -> OrderWal:
        """Open (creating if needed) the journal; what it holds is in ``recovered``. Raises
        JournalCorrupt (damaged in the middle) or StorageError (cannot be used)."""
        path = Path(path)
        if segment_bytes < 4096:
            raise ValueError("segment_bytes must be at least 4096")
        try:
            if path.exists() and not path.is_dir():
                raise StorageError(f"order journal {path}: exists and is not a directory")
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            (path / _TMP).unlink(missing_ok=True)    # a spare a crash left half-prepared
            scan = _scan(path)
            wal = cls(path, scan, sync=sync, segment_bytes=segment_bytes)
        except OSError as exc:
            raise StorageError(f"order journal {path}: {exc.strerror or exc}") from None
        log.info("order_journal_opened", path=str(path), recovered_records=len(scan.entries),
                 recovered_orders=sum(len(e.orders) for e in scan.entries),
                 segments=len(scan.with_records), sync=sync)
        return wal

    # ---- the write path (the desk's, synchronous) ---------------------------------------
    def append(self, orders: list[OrderRequest], ts_ns: int) -> Ticket:
        """Write ``orders`` durably (one fdatasync; two if the burst straddles segments).
        Returns the ticket to ``confirm`` once the ledger has them. Any OSError breaks the
        journal for good (after a failed fsync the file's state is unknown): StorageError."""
        if self._broken:
            raise StorageError(f"order journal {self.path}: unusable after an earlier write "
                               f"error ({self._broken}); restart the daemon")
        parts = [_encode(o) for o in orders]
        biggest = max(map(len, parts), default=0)
        if biggest > self.size - _HEADER - _REC.size - 5:
            raise StorageError(f"order journal {self.path}: an order of {biggest} bytes "
                               "exceeds a segment; nothing was written or sent")
        ticket: list[int] = []
        i = 0
        try:
            while i < len(parts):
                seg = self._active
                room = self.size - seg.end - _REC.size - 5
                j, used = i, 0
                while j < len(parts) and used + len(parts[j]) <= room:
                    used += len(parts[j])
                    j += 1
                if j == i:                    # not even one more fits: the next segment
                    self._rotate()
                    continue
                self._write_record(seg, parts[i:j], ts_ns)
                ticket.append(seg.number)
                i = j
                if i < len(parts):            # the earlier segment is durable first
                    self._sync(seg)
                    self._rotate()
            if ticket:
                self._sync(self._active)
        except OSError as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            raise StorageError(f"order journal {self.path}: write failed: {self._broken}; "
                               "no order of this burst was sent") from None
        return tuple(ticket)

    def _write_record(self, seg: _Segment, parts: list[bytes], ts_ns: int) -> None:
        payload = b"\xdd" + len(parts).to_bytes(4, "big") + b"".join(parts)
        body = _REC.pack(0, 0, len(payload), seg.number, self._next_lsn, ts_ns)[8:] + payload
        record = _REC_MAGIC_BYTES + struct.pack("<I", zlib.crc32(body)) + body
        view, at = memoryview(record), seg.end
        while view:
            written = os.pwrite(seg.fd, view, at)
            view, at = view[written:], at + written
        seg.end += len(record)
        seg.pending += 1
        self._next_lsn += 1

    def _sync(self, seg: _Segment) -> None:
        if self.sync:
            os.fdatasync(seg.fd)

    def _rotate(self) -> None:
        old = self._active
        old.sealed = True
        os.close(old.fd)
        old.fd = -1
        new = self._spare if self._spare is not None else self._make_segment()
        self._spare = None
        self._activate(new)
        self._active = new
        log.info("order_journal_rotated", sealed=old.path.name, active=new.path.name)

    # ---- segments -----------------------------------------------------------------------
    def _make_segment(self) -> _Segment:
        """The next segment, header durable: a recycled file when one is free, else a new
        zero-filled one."""
        number = self._last_number + 1
        final = self.path / f"{number:08d}.seg"
        tmp = self.path / _TMP
        recycle = self._free.pop() if self._free else None
        if recycle is not None and recycle.stat().st_size != self.size:
            recycle.unlink()
            recycle = None
        if recycle is not None:
            os.replace(recycle, tmp)
            _fsync_dir(self.path)             # the old name must not come back with a new header
            fd = os.open(tmp, os.O_RDWR | os.O_CLOEXEC)
        else:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            for at in range(0, self.size, len(_ZEROS)):
                os.pwrite(fd, _ZEROS[:min(len(_ZEROS), self.size - at)], at)
        try:
            os.pwrite(fd, _segment_header(number, self.size), 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.path)
        self._last_number = number
        return _Segment(number, final)

    def _activate(self, seg: _Segment) -> None:
        seg.fd = os.open(seg.path, os.O_RDWR | os.O_CLOEXEC)
        self._segments[seg.number] = seg

    # ---- checkpointing ------------------------------------------------------------------
    def confirm(self, ticket: Ticket) -> None:
        """The ledger has durably committed the orders of ``ticket``'s append."""
        for number in ticket:
            seg = self._segments.get(number)
            if seg is None or seg.pending <= 0:
                raise InvariantError(f"order journal {self.path}: ticket {ticket} confirmed "
                                     "twice")
            seg.pending -= 1
        self._checkpoint()

    def confirm_recovered(self) -> None:
        """Every recovered order is in the ledger now: the old segments can go."""
        for number in self._recovered_segments:
            self._segments[number].pending = 0
        self._recovered_segments = []
        self.recovered = []
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Retire confirmed, sealed segments, oldest first."""
        if self._broken:
            return
        try:
            while self._segments:
                seg = next(iter(self._segments.values()))
                if not seg.sealed or seg.pending > 0:
                    return
                del self._segments[seg.number]
                if seg.fd >= 0:
                    os.close(seg.fd)
                    seg.fd = -1
                if self._spare is None:
                    self._free.append(seg.path)
                    self._spare = self._make_segment()
                else:
                    seg.path.unlink()
                    _fsync_dir(self.path)
        except OSError as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            raise StorageError(f"order journal {self.path}: checkpoint failed: "
                               f"{self._broken}") from None

    @property
    def pending(self) -> int:
        """Records not yet confirmed (recovered segments count one each)."""
        return sum(s.pending for s in self._segments.values())

    def close(self) -> None:
        """Close the files; with nothing pending the active segment is retired too."""
        if not self._broken and self.pending == 0 and self._active.end > _HEADER:
            self._active.sealed = True
            self._checkpoint()
        for seg in (*self._segments.values(), self._spare):
            if seg is not None and seg.fd >= 0:
                os.close(seg.fd)
                seg.fd = -1
