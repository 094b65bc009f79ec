"""On-disk cache of aligned bar reads, keyed by the bars table's data version.

A large :meth:`~jts.storage.timeseries.ClickHouseTimeSeries.read_bars` result is written
*while it is read*: the output matrices of a miss are a shared mapping of a preallocated
file, so caching costs the reader no extra copy of the result. That file is *staged* on
tmpfs (``/dev/shm``) when it has room: write faults on a shared tmpfs mapping cost about half
what they cost on a disk file (ext4 converts unwritten extents and tracks dirty pages; a
2.3 GB miss cost +2.5–3.3 CPU-s over an uncached read that way, +0.8 staged). The caller gets
a private copy-on-write mapping of the file — its writes never reach the cache — and a
background thread copies a staged file into the cache directory (``sendfile``), makes the
entry durable (``fdatasync``) and renames it into place, so a crash can never leave a visible
entry with missing data; the staging file is then unlinked (the caller's mapping keeps its
pages). A hit is an ``mmap`` of the entry: pages come from the page cache as the backtester
touches them.

The key covers everything the result depends on: the store and table identity, the query
(symbols, range, timeframe, fields, dtype) and the data version — every active part of the
partitions the read touches (name, block range, mutation version). Any insert, mutation or
dropped part changes it; a background merge also does (a harmless extra miss).

Entry file: a 4 KiB header (magic, JSON: key, shape, dtype, fields, offsets), the ``ts_ns``
axis, then each (symbols × time) matrix, every section 4 KiB aligned. An entry that fails
validation is deleted and read again from the store. Entries are evicted oldest-used first
beyond ``max_bytes``.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import mmap
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

FloatArray = npt.NDArray[np.floating[Any]]
I64 = npt.NDArray[np.int64]
log = structlog.get_logger(__name__)
MAGIC = b"JTSBARS1"
PAGE = 4096
SUFFIX = ".bars"
FREE_MARGIN = 1 << 30               # leave this much disk free after an entry
STALE_S = 86_400                    # abandoned temporary files older than this are removed
EXIT_WAIT_S = 30.0                  # at exit, wait this long for entries still being written
# a miss is filled in a RAM-backed staging file (tmpfs: shared-mapping page faults cost about
# half what they cost on a file on disk), then copied to the cache directory in the background
STAGE = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
STAGE_PREFIX = "jts-bars-"
_PARTITION = re.compile(r"^\('([^']*)',\s*(\d+)\)$")
_PENDING: set[threading.Thread] = set()


@atexit.register
def _wait_at_exit() -> None:
    deadline = time.monotonic() + EXIT_WAIT_S
    for thread in list(_PENDING):
        thread.join(max(0.0, deadline - time.monotonic()))


def _pad(n: int) -> int:
    return -(-n // PAGE) * PAGE


def _layout(n_rows: int, n_times: int, fields: Sequence[str],
            dtype: np.dtype[Any]) -> tuple[list[int], int]:
    """Offsets of each field's matrix and the file size (header, ts, matrices)."""
    pos = PAGE + _pad(n_times * 8)
    offsets = []
    for _ in fields:
        offsets.append(pos)
        pos += _pad(n_rows * n_times * dtype.itemsize)
    return offsets, pos


def cache_key(parts: Sequence[object]) -> str:
    """A stable hex key for JSON-serialisable ``parts``."""
    text = json.dumps(list(parts), separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Draft:
    """A miss being filled: ``columns`` are writable shared views on the entry file."""

    def __init__(self, cache: ArrayCache, key: str, tmp: Path, fd: int, mm: mmap.mmap,
                 header: dict[str, Any], staged: bool = False) -> None:
        self._cache, self.key, self._tmp, self._fd, self._mm = cache, key, tmp, fd, mm
        self._header, self._staged = header, staged
        self.columns = _views(mm, header)

    def _unmap(self) -> None:
        self.columns = {}
        try:
            self._mm.close()
        except BufferError:             # a view is still alive: unmapped when it goes
            pass

    def finish(self, keep: bool) -> dict[str, FloatArray]:
        """Private (copy-on-write) views of the filled matrices; with ``keep`` the entry is
        synced and published in the background, else its file is removed."""
        self._unmap()
        private = mmap.mmap(self._fd, self._header["size"], flags=mmap.MAP_PRIVATE,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
        out = _views(private, self._header)
        if keep:
            self._cache._publish(self._tmp, self._fd, self.key, self._staged)
        else:
            self._remove()
        return out

    def discard(self) -> None:
        """Drop the draft (a failed or repeated read)."""
        self._unmap()
        self._remove()

    def _remove(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._tmp.unlink(missing_ok=True)


class ArrayCache:
    """Aligned bar matrices on disk (see the module docstring)."""

    def __init__(self, directory: Path, max_bytes: int, min_bytes: int = 64 << 20,
                 stage: Path | None = STAGE) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self.stage = stage if stage is not None and os.access(stage, os.W_OK) else None
        self._pending: list[threading.Thread] = []
        self.hits = self.misses = 0
        directory.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(directory, "*.tmp")
        if self.stage is not None:
            _remove_abandoned(self.stage, f"{STAGE_PREFIX}*.tmp")

    def _path(self, key: str) -> Path:
        return self.directory / f"{key[:40]}{SUFFIX}"

    def get(self, key: str) -> tuple[I64, dict[str, FloatArray]] | None:
        """The entry for ``key`` (``ts_ns`` and private views of its matrices), or None."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self.misses += 1
            return None
        try:
            header = _read_header(fd)
            size = os.fstat(fd).st_size
            if header is None or header["key"] != key or header["size"] != size:
                log.warning("timeseries_cache_entry_invalid", path=str(path))
                path.unlink(missing_ok=True)
                self.misses += 1
                return None
            mm = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        try:
            os.utime(path)              # most recently used: evicted last
        except OSError:
            pass
        self.hits += 1
        return np.frombuffer(mm, np.int64, header["times"], PAGE), _views(mm, header)

    def create(self, key: str, ts_ns: I64, n_rows: int, fields: Sequence[str],
               dtype: np.dtype[Any]) -> Draft | None:
        """A file-backed output for a miss, or None when the result is too small or too
        large to cache, or the disk is short of space."""
        offsets, size = _layout(n_rows, ts_ns.size, fields, dtype)
        payload = n_rows * ts_ns.size * dtype.itemsize * len(offsets)
        if payload < self.min_bytes or size > self.max_bytes:
            return None
        if _free(self.directory) < size + FREE_MARGIN:
            log.warning("timeseries_cache_disk_full", directory=str(self.directory))
            return None
        staged = self.stage is not None and _free(self.stage) >= size + FREE_MARGIN
        where = self.stage if staged and self.stage else self.directory
        prefix = STAGE_PREFIX if staged else ""
        tmp = where / f"{prefix}{key[:40]}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # real blocks (tmpfs: memory) up front: no ENOSPC later as a SIGBUS on a fault
            os.posix_fallocate(fd, 0, size)
            header = {"key": key, "rows": n_rows, "times": int(ts_ns.size),
                      "dtype": dtype.str, "fields": list(fields), "offsets": offsets,
                      "size": size}
            blob = MAGIC + json.dumps(header).encode()
            if len(blob) > PAGE:
                raise OSError("cache header too large")
            os.pwrite(fd, blob, 0)
            os.pwrite(fd, np.ascontiguousarray(ts_ns, np.int64).tobytes(), PAGE)
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            log.warning("timeseries_cache_create_failed", error=str(exc))
            os.close(fd)
            tmp.unlink(missing_ok=True)
            return None
        return Draft(self, key, tmp, fd, mm, header, staged)

    def _publish(self, tmp: Path, fd: int, key: str, staged: bool) -> None:
        def run() -> None:
            try:
                if staged:
                    _copy_to(fd, self.directory / f"{tmp.name[len(STAGE_PREFIX):]}",
                             self._path(key))
                else:
                    os.fdatasync(fd)    # data on disk before the entry becomes visible
                    os.replace(tmp, self._path(key))
            except OSError as exc:
                log.warning("timeseries_cache_write_failed", error=str(exc))
            finally:
                os.close(fd)
                tmp.unlink(missing_ok=True)     # staged: the caller's mapping keeps its pages
            self._evict()
            _PENDING.discard(threading.current_thread())
        thread = threading.Thread(target=run, name="jts-tscache", daemon=True)
        self._pending = [t for t in self._pending if t.is_alive()] + [thread]
        _PENDING.add(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for entries still being written; False if some are after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._pending):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._pending = [t for t in self._pending if t.is_alive()]
        return not self._pending

    def _evict(self) -> None:
        entries = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        total = sum(e[1] for e in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


def _remove_abandoned(directory: Path, pattern: str) -> None:
    """Temporary files of processes that died before publishing."""
    now = time.time()
    for path in directory.glob(pattern):
        parts = path.name.split(".")
        try:
            pid = int(parts[1])
            alive = pid == os.getpid() or _alive(pid)
            if not alive or now - path.stat().st_mtime > STALE_S:
                path.unlink(missing_ok=True)
        except (ValueError, IndexError, OSError):
            continue


def _free(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _copy_to(src: int, tmp: Path, final: Path) -> None:
    """Copy the staged file ``src`` to ``tmp`` on the cache's disk, sync it, rename it to
    ``final`` (in-kernel copy; ``tmp`` is removed on failure)."""
    size = os.fstat(src).st_size
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        done = 0
        while done < size:
            n = os.sendfile(out, src, done, size - done)
            if n <= 0:
                raise OSError(f"short copy of a cache entry ({done} of {size} bytes)")
            done += n
        os.fdatasync(out)               # data on disk before the entry becomes visible
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_header(fd: int) -> dict[str, Any] | None:
    blob = os.pread(fd, PAGE, 0)
    if not blob.startswith(MAGIC):
        return None
    try:
        header = json.loads(blob[len(MAGIC):].rstrip(b"\0"))
        offsets, size = _layout(header["rows"], header["times"], header["fields"],
                                np.dtype(header["dtype"]))
    except (ValueError, KeyError, TypeError):
        return None
    if offsets != header["offsets"] or size != header["size"]:
        return None
    return header  # type: ignore[no-any-return]


def _views(mm: mmap.mmap, header: dict[str, Any]) -> dict[str, FloatArray]:
    dtype = np.dtype(header["dtype"])
    shape = (header["rows"], header["times"])
    count = shape[0] * shape[1]
    return {f: np.frombuffer(mm, dtype, count, off).reshape(shape)
            for f, off in zip(header["fields"], header["offsets"], strict=True)}


def parts_version(rows: Sequence[Sequence[Any]], base: str, years: range) -> list[str]:
    """The data version of the partitions a read touches: the sorted names of their active
    parts (``rows`` of ``partition, name``; a partition whose key cannot be parsed counts)."""
    names = []
    for partition, name in rows:
        m = _PARTITION.match(str(partition))
        if m and (m.group(1) != base or int(m.group(2)) not in years):
            continue
        names.append(str(name))
    return sorted(names)
