"""The compiled kernel: ``_kernel.c``, built with the system C compiler on first use.

One small C library with no Python API, loaded with ctypes: the projection's
columnar decoder (:mod:`catalog.events.columnar`) and the Kafka reader's
record-batch splitter (:mod:`catalog.log.kafka`) call into it. It is built
with ``$CC`` (default ``cc``) on first use and cached under
``~/.cache/catalog`` (or ``CATALOG_CACHE_DIR``) by a hash of its source, its
flags and the compiler; without a compiler both callers fall back to Python
(a warning says so once). This module knows nothing of events or logs: it
builds, loads and calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

_KERNEL: Native | None = None
_AVAILABLE: bool | None = None
_logger = logging.getLogger("catalog.native")


def available() -> bool:
    """Whether the compiled kernel loads here (built with the C compiler on first use)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            kernel()
            _AVAILABLE = True
        except (OSError, subprocess.SubprocessError) as exc:
            _warn_once(f"the compiled kernel is unavailable ({exc}); decoding event by event")
            _AVAILABLE = False
    return _AVAILABLE


def _warn_once(message: str) -> None:
    """Warn once per cache directory (a marker remembers it), not in every process."""
    marker = cache_dir() / "kernel-unavailable.warned"
    if marker.exists():
        _logger.debug(message)
        return
    _logger.warning(message + " (said once; `catalog config` shows it)")
    with contextlib.suppress(OSError):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(message + "\n")


def kernel() -> Native:
    """The compiled kernel (``_kernel.c``), built once per machine and source version."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = Native(_build_library())
    return _KERNEL


KERNEL_SOURCE = Path(__file__).with_name("_kernel.c")
CFLAGS = ("-O2", "-shared", "-fPIC", "-std=c99")


def cache_dir() -> Path:
    """Where the built kernel goes: ``CATALOG_CACHE_DIR``, else the user's cache."""
    explicit = os.environ.get("CATALOG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "catalog"


def library_path() -> tuple[Path, str]:
    """Where the kernel for this source, these flags and ``$CC`` is built; the compiler."""
    compiler = os.environ.get("CC", "cc")
    source = KERNEL_SOURCE.read_bytes()
    digest = hashlib.sha256(source + repr((CFLAGS, compiler)).encode()).hexdigest()[:16]
    return cache_dir() / f"kernel-{digest}.so", compiler


def status() -> str:
    """One line for ``catalog config``: is the columnar decoder built, or can it be?"""
    target, compiler = library_path()
    if target.exists():
        return f"built: {target}"
    if shutil.which(compiler):
        return f"built on first use with {compiler} into {target.parent}"
    return (
        f"unavailable (no C compiler {compiler!r}): big batches decode event by event, "
        "kafka-python splits Kafka record batches"
    )


def _build_library() -> Path:
    """Compile ``_kernel.c`` with ``$CC`` (default ``cc``) unless built already.

    The library's name carries a hash of the source, the flags and the
    compiler, so an upgrade builds a new one; it is written under a unique
    temporary name and renamed, so concurrent first uses are safe.
    """
    target, compiler = library_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        subprocess.run(
            [compiler, *CFLAGS, "-o", str(tmp), str(KERNEL_SOURCE)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        os.replace(tmp, target)
    except subprocess.CalledProcessError as exc:
        raise OSError(f"{compiler} failed: {exc.stderr.decode(errors='replace')[:500]}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


class Native:
    """The kernel's functions, called through ctypes on numpy arrays."""

    def __init__(self, path: Path) -> None:
        import ctypes

        lib = ctypes.CDLL(str(path))
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        self._decode = lib.catalog_decode
        self._decode.restype = i64
        self._decode.argtypes = [
            p,
            p,
            i64,
            p,
            i64,
            p,
            p,
            p,
            p,
            p,
            p,
            p,
            p,
            i64,
            p,
            p,
            p,
            p,
            p,
            i64,
            p,
        ]
        self._gather = lib.catalog_gather
        self._gather.restype = None
        self._gather.argtypes = [p, p, p, p, i64, p, p]
        self._offsets = lib.catalog_list_offsets
        self._offsets.restype = None
        self._offsets.argtypes = [p, p, i64, p]
        self._kafka = lib.catalog_kafka_records
        self._kafka.restype = i64
        self._kafka.argtypes = [p, i64, i64, i64, p, p, i64]

    def kafka_records(self, buf: Any, start: int, count: int, rec: Any, hdr: Any) -> int:
        """Split the ``count`` records of a Kafka record batch, ``buf[start:]``.

        Fills ``rec`` (10 int64 a record) and ``hdr`` (4 a header); see
        ``catalog_kafka_records`` in ``_kernel.c``. Returns ``count``, -1 for
        malformed bytes, -2 if ``hdr`` is too short.
        """
        import numpy as np

        i64 = np.int64
        if len(rec) < 10 * count:
            raise ValueError("rec holds fewer than 10 values a record")
        result: int = self._kafka(
            self._ptr(buf, np.uint8), start, len(buf), count,
            self._ptr(rec, i64), self._ptr(hdr, i64), len(hdr) // 4,
        )  # fmt: skip
        return result

    @staticmethod
    def _ptr(array: Any, dtype: Any) -> int:
        if array.dtype != dtype or not array.flags.c_contiguous:
            raise TypeError(f"kernel arrays must be contiguous {dtype}, got {array.dtype}")
        address: int = array.ctypes.data
        return address

    def decode(
        self,
        buf: Any,
        starts: Any,
        prefix: Any,
        ops: Any,
        jumps: Any,
        literals: Any,
        P: Any,
        Q: Any,
        base: Any,
        ncols: Any,
        cap: Any,
        counter: Any,
        status: Any,
        jstart: Any,
        jlen: Any,
        J: Any,
        jc: Any,
    ) -> int:
        import numpy as np

        u8, i64 = np.uint8, np.int64
        result: int = self._decode(
            self._ptr(buf, u8), self._ptr(starts, i64), len(starts) - 1,
            self._ptr(prefix, u8), len(prefix), self._ptr(ops, i64), self._ptr(jumps, i64),
            self._ptr(literals, u8), self._ptr(P, i64), self._ptr(Q, i64), self._ptr(base, i64),
            self._ptr(ncols, i64), self._ptr(cap, i64), len(ncols), self._ptr(counter, i64),
            self._ptr(status, np.int8), self._ptr(jstart, i64), self._ptr(jlen, i64),
            self._ptr(J, u8), len(J), self._ptr(jc, i64),
        )  # fmt: skip
        return result

    def gather(self, buf: Any, P: Any, Q: Any, valid: Any, offsets: Any, data: Any) -> None:
        import numpy as np

        assert len(P) == len(Q) == len(valid) == len(offsets) - 1
        self._gather(
            self._ptr(buf, np.uint8), self._ptr(P, np.int64), self._ptr(Q, np.int64),
            self._ptr(valid, np.bool_), len(P), self._ptr(offsets, np.int32),
            self._ptr(data, np.uint8),
        )  # fmt: skip

    def list_offsets(self, Q: Any, valid: Any, offsets: Any) -> None:
        import numpy as np

        assert len(Q) == len(valid) == len(offsets) - 1
        self._offsets(
            self._ptr(Q, np.int64), self._ptr(valid, np.bool_), len(Q), self._ptr(offsets, np.int32)
        )
