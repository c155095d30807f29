"""Device summaries (issue 7, device/edgeloop/summary.py) on the MicroPython unix port with the committed
digits model: per-class counts and the confidence histogram against the same numbers computed on the
host from TFLM's outputs (the device is bit-exact), the drift statistic, latency, model identity; the
periodic tick into a real flash log, wide counts, the allocation-free add_q(), and the host decoders
(edgeloop_host.records, `logs pull`'s data set)."""
from __future__ import annotations

import ast
import binascii
import struct

import numpy as np
import pytest

from edgeloop_host.records import decode, decode_sample, decode_summary

N = 200
LO, HI, BINS = 0.0, 16.0, 8


@pytest.fixture(scope="module")
def t(unix_target, digits):
    unix_target.put_bytes(digits.elm, "sum_digits.elm")
    unix_target.put_bytes(digits.x[:N].astype(np.int8).tobytes(), "sum_x.bin")
    return unix_target


def _run(t, code):
    out = t.exec(code + "\nprint('EL-OUT', repr(r))\n", timeout=120)
    return ast.literal_eval(out.split("EL-OUT", 1)[1].strip())


def test_summary_matches_the_host(t, digits):
    r = _run(t, f"""
import binascii, edgeloop
from edgeloop import select as S, summary as M
m = edgeloop.load('sum_digits.elm')
X = open('sum_x.bin', 'rb').read()
n = m.input_size
drift = S.Drift(m.meta)
sm = M.Summary(m, bins={BINS}, lo={LO}, hi={HI}, drift=drift)
for i in range({N}):
    x = X[i * n:(i + 1) * n]
    s = S.Sample(x, m.predict(x), m)
    drift.update(x)
    sm.add_sample(s)
r = (binascii.hexlify(sm.pack()).decode(), drift.value, drift.last, list(m.latency_us))
""")
    p, dval, dlast, lat = binascii.unhexlify(r[0]), r[1], r[2], r[3]
    assert decode(p)[0] == "M" and decode_sample(p) is None
    d = decode_summary(p)
    meta = digits.graph.meta
    yq = digits.y_tflm[:N].astype(np.int64)
    top1 = np.argmax(yq, axis=1)
    conf = (yq[np.arange(N), top1] - meta["output"]["zero_point"]) * meta["output"]["scale"]
    bins = np.clip(((conf - LO) * BINS / (HI - LO)).astype(int), 0, BINS - 1)
    assert d["n"] == N
    assert d["counts"] == np.bincount(top1, minlength=10).tolist()
    assert d["hist"] == np.bincount(bins, minlength=BINS).tolist()
    assert len(set(d["hist"])) > 2          # the range spreads the digits model's logits over the bins
    assert d["drift"] == pytest.approx(dval, rel=1e-6) and d["drift_last"] == pytest.approx(dlast, rel=1e-6)
    assert d["latency_min_us"] <= d["latency_mean_us"] <= d["latency_max_us"] and d["latency_max_us"] > 0
    assert d["latency_min_us"] <= min(lat) and max(lat) <= d["latency_max_us"]   # the last 32 runs
    assert d["blob_crc"] == struct.unpack_from("<I", digits.elm, 12)[0]
    assert (d["model_id"], d["model_version"]) == struct.unpack_from("<II", digits.elm, 20)   # blob header
    assert len(p) == 1 + 16 + 2 * (10 + BINS) + 8 + 24      # u16 counts: 79 bytes


def test_tick_log_wide_counts_and_no_allocation(t, tmp_path):
    r = _run(t, """
import binascii, micropython, edgeloop
from edgeloop import flashlog, summary as M
m = edgeloop.load('sum_digits.elm')
T = [1000]
sm = M.Summary(m, period_ms=500, now=lambda: T[0])
L = flashlog.FlashLog('sum_log')
out = {'early': sm.tick(L)}
y = m.predict(bytes(m.input_size))
micropython.heap_lock()
try:
    for i in range(50):
        sm.add_q(3, 0xF0, 250 + i)     # int8 -16
    ok = True
except MemoryError:
    ok = False
micropython.heap_unlock()
out['no_alloc'] = ok
T[0] += 499
out['at499'] = sm.tick(L)
T[0] += 1
out['seq'] = sm.tick(L)
out['after_reset'] = sm.n
sm.counts[1] = 70000
out['wide'] = binascii.hexlify(sm.pack()).decode()
out['recs'] = [(q, binascii.hexlify(p).decode()) for q, p in L.read()]
L.ack(L.next_seq - 1)
r = out
""")
    assert r["early"] is None and r["at499"] is None and r["no_alloc"] is True and r["after_reset"] == 0
    assert [q for q, _ in r["recs"]] == [r["seq"]]
    d = decode_summary(binascii.unhexlify(r["recs"][0][1]))
    assert d["n"] == 50 and d["counts"][3] == 50 and sum(d["counts"]) == 50 and d["period_ms"] == 500
    assert (d["latency_min_us"], d["latency_mean_us"], d["latency_max_us"]) == (250, 274, 299)
    assert d["drift"] is None and not d["drifting"]
    w = decode_summary(binascii.unhexlify(r["wide"]))
    assert w["counts"][1] == 70000 and w["n"] == 0 and w["latency_max_us"] == 0
    # the host side of `logs pull`: kinds told apart, summaries decoded into the .npz
    from edgeloop_host import logs

    s_rec = b"S" + struct.pack("<IB", 5, 1) + b"a" + struct.pack("<H", 1) + b"\x07" + struct.pack("<H", 1) + b"\x09"
    path = logs.write_dataset([(1, s_rec), (2, binascii.unhexlify(r["recs"][0][1])), (3, b"other")], tmp_path)
    z = np.load(path)
    assert z["kind"].tolist() == ["S", "M", "?"]
    assert z["summary"][0] == "" and '"counts"' in str(z["summary"][1]) and z["t_ms"][0] == 5


def test_decoders_reject_damage():
    good = bytes.fromhex("4d01000202") + struct.pack("<III", 7, 100, 3) + struct.pack("<4H", 1, 2, 0, 3) \
        + struct.pack("<6I", 1, 2, 3, 4, 5, 6)
    d = decode_summary(good)
    assert d["counts"] == [1, 2] and d["hist"] == [0, 3] and d["blob_crc"] == 4
    for bad in (good[:-1], good + b"\0", b"M", b"M\x02" + good[2:], b"S" + good[1:]):
        assert decode_summary(bad) is None
    assert decode(b"Zxx") == ("?", None) and decode(good)[0] == "M"
