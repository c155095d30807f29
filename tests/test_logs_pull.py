"""`edgeloop logs pull` (issue 7) against the emulated Cortex-M3 board (qemu mps2-an385, littlefs /flash):
samples selected on the board go into its flash log; a pull copies and decodes them into an .npz data set
and acknowledges them so the board frees the segments; the next pull brings only what is new."""
from __future__ import annotations

import numpy as np
import pytest

from edgeloop_host import logs

ROOT = "t_pull_log"


def _fill(t, start, count):
    t.exec(f"""
from edgeloop import flashlog, select as S
L = flashlog.FlashLog({ROOT!r}, segment_size=1024, max_segments=8, sync_every=4)
for i in range({start}, {start + count}):
    s = S.Sample(bytes((i + j) & 0xFF for j in range(16)), bytes(((i * 3 + j) & 0x7F for j in range(4))),
                 None, t_ms=1000 * i, out_scale=0.5, out_zero_point=0)
    s.reason = 'low_confidence' if i % 2 else 'drift'
    L.append(s.pack())
L.append(b'summary %d' % {start})
L.close()
""", timeout=120)


@pytest.mark.qemu
def test_pull_decodes_acks_and_frees(qemu_arm_target, tmp_path):
    t = qemu_arm_target
    t.exec(f"import os\nfor n in (os.listdir({ROOT!r}) if {ROOT!r} in os.listdir() else []):\n"
           f"    os.remove({ROOT!r} + '/' + n)\n")
    _fill(t, 0, 60)
    r = logs.pull(t, tmp_path, root=ROOT)
    assert r["records"] == 61 and r["samples"] == 60 and r["first"] == 1 and r["acked"] == 61
    d = np.load(r["path"])
    assert list(d["seq"]) == list(range(1, 62))
    assert list(d["kind"]) == ["S"] * 60 + ["?"]
    for i in range(60):
        assert bytes(d["x"][i].astype(np.uint8)) == bytes((i + j) & 0xFF for j in range(16))
        assert list(d["y"][i]) == [(i * 3 + j) & 0x7F for j in range(4)]
        assert d["t_ms"][i] == 1000 * i and d["reason"][i] == ("low_confidence" if i % 2 else "drift")
    o = d["raw_offsets"]
    assert bytes(d["raw"][o[60]:o[61]]) == b"summary 0"
    segs = t.eval(f"len(__import__('os').listdir({ROOT!r}))")
    assert segs == 1                      # everything acknowledged: freed, one empty segment keeps the seq
    assert logs.pull(t, tmp_path, root=ROOT)["records"] == 0
    _fill(t, 100, 5)
    r2 = logs.pull(t, tmp_path, root=ROOT)
    assert r2["records"] == 6 and r2["first"] == 62 and r2["last"] == 67
    assert len(list(tmp_path.glob("log_*.npz"))) == 2


def test_decode_rejects_damaged_sample_records():
    assert logs.decode_sample(b"S" + bytes(3)) is None
    assert logs.decode_sample(b"X123") is None
    good = b"S" + (5).to_bytes(4, "little") + b"\x01a" + b"\x01\x00\x07" + b"\x01\x00\x09"
    assert logs.decode_sample(good) == {"t_ms": 5, "reason": "a", "x": b"\x07", "y": b"\x09"}
    assert logs.decode_sample(good + b"\x00") is None
