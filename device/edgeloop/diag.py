# edgeloop.diag(): one JSON-serialisable snapshot of the board, the runtime and the current model,
# for `edgeloop diag` over the serial REPL.
import gc
import os
import sys

from . import backend
from . import model as _model


def _largest_free_block(limit):
    # MicroPython has no API for it: binary-search the largest bytearray that can be allocated.
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            b = bytearray(mid)
            del b
            lo = mid
        except MemoryError:
            hi = mid - 1
    gc.collect()
    return lo


def _fs(path):
    try:
        st = os.statvfs(path)
        return {"path": path, "free": st[0] * st[3], "total": st[0] * st[2]}
    except (OSError, AttributeError):
        return None


def diag(model=None):
    from . import VERSION

    m = model if model is not None else _model.current()
    gc.collect()
    free = gc.mem_free()
    impl = sys.implementation
    d = {
        "firmware": {
            "name": impl.name,
            "version": ".".join(str(v) for v in impl.version[:3]),
            "machine": getattr(impl, "_machine", sys.platform),
            "mpy": getattr(impl, "_mpy", None),
            "platform": sys.platform,
        },
        "runtime": VERSION,
        "backends": backend.available(),
        "c_module": backend.c_module_build(),
        "heap": {"free": free, "used": gc.mem_alloc(), "largest_free_block": _largest_free_block(free)},
        "fs": _fs("/flash") or _fs("/") or _fs("."),
        "model": None,
    }
    if m is not None:
        lat = m.latency_stats()
        d["model"] = {
            "id": m.model_id, "version": m.version, "backend": m.backend, "bytes": len(m.blob),
            "arena": len(m.arena), "input_shape": list(m.input_shape), "output_shape": list(m.output_shape),
            "runs": m.runs,
            "latency_us": None if lat is None else {"min": lat[0], "median": lat[1], "max": lat[2]},
        }
    return d
