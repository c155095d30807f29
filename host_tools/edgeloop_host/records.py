"""Decoding the device's flash-log records (issue 7). The first byte of a record is its kind tag:
b"S" a selected sample (device/edgeloop/select.py Sample.pack), b"M" a periodic summary
(device/edgeloop/summary.py). Records of other kinds (older logs, applications' own records) decode to
None here; `edgeloop logs pull` keeps their bytes, the MQTT collector rejects them (docs/LOOP.md)."""
from __future__ import annotations

import struct

KIND_SAMPLE, KIND_SUMMARY = b"S", b"M"
_S_HDR = struct.Struct("<BBBBIII")
_S_TAIL = struct.Struct("<IIIIII")


def decode_sample(p: bytes) -> dict | None:
    """A Sample.pack() record, or None for another kind (or a damaged one)."""
    try:
        if p[:1] != KIND_SAMPLE:
            return None
        t_ms, rl = struct.unpack_from("<IB", p, 1)
        i = 6
        reason = p[i:i + rl].decode()
        i += rl
        (xl,) = struct.unpack_from("<H", p, i)
        x = p[i + 2:i + 2 + xl]
        i += 2 + xl
        (yl,) = struct.unpack_from("<H", p, i)
        y = p[i + 2:i + 2 + yl]
        if len(x) != xl or len(y) != yl or i + 2 + yl != len(p):
            return None
        return {"t_ms": t_ms, "reason": reason, "x": bytes(x), "y": bytes(y)}
    except (struct.error, UnicodeDecodeError):
        return None


def decode_summary(p: bytes) -> dict | None:
    """A summary.Summary.pack() record (version 1), or None for another kind / a damaged one."""
    try:
        if p[:1] != KIND_SUMMARY:
            return None
        ver, flags, nc, nb, t_ms, period_ms, n = _S_HDR.unpack_from(p, 1)
        if ver != 1:
            return None
        i = 1 + _S_HDR.size
        w = "I" if flags & 1 else "H"
        vals = struct.unpack_from(f"<{nc + nb}{w}", p, i)
        i += struct.calcsize(f"<{nc + nb}{w}")
        drift = drift_last = None
        if flags & 2:
            drift, drift_last = struct.unpack_from("<ff", p, i)
            i += 8
        lat_min, lat_mean, lat_max, crc, model_id, version = _S_TAIL.unpack_from(p, i)
        if i + _S_TAIL.size != len(p):
            return None
        return {"t_ms": t_ms, "period_ms": period_ms, "n": n, "counts": list(vals[:nc]),
                "hist": list(vals[nc:]), "drift": drift, "drift_last": drift_last,
                "drifting": bool(flags & 4), "latency_min_us": lat_min, "latency_mean_us": lat_mean,
                "latency_max_us": lat_max, "blob_crc": crc, "model_id": model_id, "model_version": version}
    except struct.error:
        return None


def decode(p: bytes) -> tuple[str, dict | None]:
    """(kind, fields): "S" / "M" with the decoded fields (None when damaged), "?" for another kind."""
    k = bytes(p[:1])
    if k == KIND_SAMPLE:
        return "S", decode_sample(p)
    if k == KIND_SUMMARY:
        return "M", decode_summary(p)
    return "?", None
