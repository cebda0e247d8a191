"""The compiled kernel: ``_kernel.c``, built when the package is installed.

One small C library with no Python API, loaded with ctypes: the projection's
columnar decoder (:mod:`catalog.events.columnar`) and the Kafka reader's
record-batch splitter (:mod:`catalog.log.kafka`) call into it. The build
backend compiles it at install time (``hatch_build.py`` calls :func:`build`:
a wheel carries the library, an editable install builds it next to this
file), under a name that carries a hash of the source and the flags, so a
library built from another source is never loaded. Where there is none (no C
compiler at install time, or the source changed since: reinstall) both
callers fall back to Python — slower, the same results — and a warning says
so once per process. This module knows nothing of events or logs, and
imports nothing but the standard library (the build hook loads it alone).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

_KERNEL: Native | None = None
_AVAILABLE: bool | None = None
_logger = logging.getLogger("catalog.native")

KERNEL_SOURCE = Path(__file__).with_name("_kernel.c")
CFLAGS = ("-O2", "-shared", "-fPIC", "-std=c99")


def library_name(source: bytes) -> str:
    """The file name of the library built from ``source`` with :data:`CFLAGS`."""
    return f"_kernel-{hashlib.sha256(source + repr(CFLAGS).encode()).hexdigest()[:16]}.so"


def library_path() -> Path:
    """Where the library for this source is, once installed: beside this module."""
    return KERNEL_SOURCE.with_name(library_name(KERNEL_SOURCE.read_bytes()))


def build(directory: Path, compiler: str | None = None) -> Path:
    """Compile ``_kernel.c`` into ``directory`` with ``compiler`` (``$CC``, default ``cc``);
    the library's path. Libraries of other sources there are removed. Raises
    :class:`OSError` (the compiler's complaint) if it cannot be built."""
    compiler = compiler or os.environ.get("CC", "cc")
    target = directory / library_name(KERNEL_SOURCE.read_bytes())
    directory.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        subprocess.run(
            [compiler, *CFLAGS, "-o", str(tmp), str(KERNEL_SOURCE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        os.replace(tmp, target)
    except subprocess.CalledProcessError as exc:
        raise OSError(f"{compiler} failed: {exc.stderr.decode(errors='replace')[:500]}") from exc
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise OSError(f"{compiler}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    for old in directory.glob("_kernel-*.so"):
        if old != target:
            old.unlink()
    return target


def available() -> bool:
    """Whether the compiled kernel loads here."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            kernel()
            _AVAILABLE = True
        except OSError as exc:
            _logger.warning(
                "the compiled kernel is unavailable (%s); big batches decode event by event "
                "(said once; `catalog config` shows it)",
                exc,
            )
            _AVAILABLE = False
    return _AVAILABLE


def kernel() -> Native:
    """The compiled kernel (``_kernel.c``), as installed; :class:`OSError` if it is not."""
    global _KERNEL
    if _KERNEL is None:
        path = library_path()
        if not path.exists():
            raise OSError(
                f"{path.name} was not built for this source of {KERNEL_SOURCE.name} "
                "(reinstall the package with a C compiler: make venv, or pip install -e .)"
            )
        _KERNEL = Native(path)
    return _KERNEL


def status() -> str:
    """One line for ``catalog config``: is the compiled kernel there?"""
    path = library_path()
    if path.exists():
        return f"built: {path}"
    return (
        f"unavailable ({path.name} not built: reinstall with a C compiler): big batches "
        "decode event by event, kafka-python splits Kafka record batches"
    )


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
