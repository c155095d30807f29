"""Sample selection policies on the device (issue 7), on the MicroPython unix port with the committed
digits model: every predicate against the same rule computed on the host from TFLM's outputs (the device
is bit-exact), composition, rate limit with a fake clock, reservoir sampling under a budget, and input
drift (CUSUM and Page-Hinkley against the blob's train_stats) silent on test data, raised on shifted data."""
from __future__ import annotations

import ast

import numpy as np
import pytest

N = 300


@pytest.fixture(scope="module")
def t(unix_target, digits):
    unix_target.put_bytes(digits.elm, "sel_digits.elm")
    x = digits.x[:N].astype(np.int8)
    unix_target.put_bytes(x.tobytes(), "sel_x.bin")
    shifted = np.clip(x.astype(np.int16) + 64, -128, 127).astype(np.int8)
    unix_target.put_bytes(shifted.tobytes(), "sel_xs.bin")
    return unix_target


_PRE = """\
import edgeloop
from edgeloop import select as S
m = edgeloop.load('sel_digits.elm')
X = open('sel_x.bin', 'rb').read()
XS = open('sel_xs.bin', 'rb').read()
n = m.input_size
def samples(buf=X, t0=0):
    for i in range(len(buf) // n):
        x = buf[i * n:(i + 1) * n]
        yield i, S.Sample(x, m.predict(x), m, t_ms=t0 + i * 100)
def run(pol, buf=X):
    out = []
    for i, s in samples(buf):
        for o in pol.offer(s):
            out.append((i, o.reason))
    return out
"""


def _run(t, code):
    out = t.exec(_PRE + code + "\nprint('EL-OUT', repr(r))\n", timeout=120)
    return ast.literal_eval(out.split("EL-OUT", 1)[1].strip())


def test_predicates_match_the_host(t, digits):
    r = _run(t, """
r = dict(low=run(S.LowConfidence(8.0)), margin=run(S.SmallMargin(2.0)),
         cls=run(S.Classes(['3', 8], m)), nth=run(S.EveryNth(7)),
         any=run(S.AnyOf(S.LowConfidence(8.0), S.SmallMargin(2.0))),
         all=run(S.AllOf(S.LowConfidence(8.0), S.SmallMargin(2.0))))
""")
    meta = digits.graph.meta
    y = (digits.y_tflm[:N].astype(np.float64) - meta["output"]["zero_point"]) * meta["output"]["scale"]
    srt = np.sort(y, axis=1)
    top1, conf, margin = np.argmax(digits.y_tflm[:N], axis=1), srt[:, -1], srt[:, -1] - srt[:, -2]
    low, small = conf < 8.0, margin < 2.0
    labels = meta["labels"]
    want_cls = {labels.index("3"), 8}
    assert [i for i, _ in r["low"]] == list(np.flatnonzero(low))
    assert [i for i, _ in r["margin"]] == list(np.flatnonzero(small))
    assert [i for i, _ in r["cls"]] == [i for i in range(N) if top1[i] in want_cls]
    assert [i for i, _ in r["nth"]] == list(range(6, N, 7))
    assert [i for i, _ in r["any"]] == list(np.flatnonzero(low | small))
    assert all(w == ("low_confidence" if low[i] else "small_margin") for i, w in r["any"])
    assert r["all"] == [(i, "low_confidence+small_margin") for i in np.flatnonzero(low & small)]
    assert 0 < len(r["low"]) < N and 0 < len(r["margin"]) < N


def test_rate_limit_and_reservoir(t):
    r = _run(t, """
clock = [0]
rl = S.RateLimit(S.EveryNth(1), 5, 10000, now=lambda: clock[0])
got = []
for i, s in samples():
    clock[0] = i * 100          # 10 samples per second offered
    got += [i for o in rl.offer(s)]
res = S.Reservoir(S.EveryNth(1), 4, 50, seed=1)
windows = []
for i, s in samples():
    out = res.offer(s)
    if out:
        windows.append(sorted(j for o in out for j in range(len(X) // n) if o.x == X[j * n:(j + 1) * n]))
# fairness: how often each position of a 20-candidate window ends up kept (k=2), over many windows
counts = [0] * 20
res2 = S.Reservoir(S.EveryNth(1), 2, 20, seed=7)
class Fake:
    pass
for w in range(1500):
    for p in range(20):
        f = Fake(); f.pos = p; f.reason = None
        for o in res2.offer(f):
            counts[o.pos] += 1
r = dict(got=got, refused=rl.refused, windows=windows, counts=counts)
""")
    # bucket of 5 full at start, then 1 token per 2 s = every 20th sample
    assert r["got"][:5] == [0, 1, 2, 3, 4]
    assert len(r["got"]) == 5 + (N * 100 - 1) // 2000 and r["refused"] == N - len(r["got"])
    assert len(r["windows"]) == N // 50
    for w, kept in enumerate(r["windows"]):
        assert len(kept) == 4 and all(50 * w <= j < 50 * (w + 1) for j in kept)
    # each position kept with probability 2/20: 150 expected of 1500 windows
    assert sum(r["counts"]) == 3000 and all(95 < c < 210 for c in r["counts"]), r["counts"]


@pytest.mark.parametrize("method", ["cusum", "ph"])
def test_drift_silent_on_test_data_raised_on_shifted_data(t, method):
    r = _run(t, f"""
d = S.Drift(m.meta, method={method!r})
base = [d.update(x) for i, x in ((i, X[i * n:(i + 1) * n]) for i in range(len(X) // n))]
stat_base = d.last
first = None
for i in range(len(XS) // n):
    if d.update(XS[i * n:(i + 1) * n]) and first is None:
        first = i
sel = run(S.Drift(m.meta, method={method!r}), XS)
r = dict(false_alarms=sum(base), first=first, value=d.value, selected=len(sel), reason=sel[0][1] if sel else None)
""")
    assert r["false_alarms"] == 0
    assert r["first"] is not None and r["first"] < 10, r
    assert r["selected"] >= N - 10 and r["reason"] == "drift"


def test_drift_needs_train_stats(t):
    r = _run(t, """
try:
    S.Drift({'labels': []})
    r = None
except ValueError as e:
    r = str(e)
""")
    assert "train_stats" in r
