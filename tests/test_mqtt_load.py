"""MQTT uplink load test (issue 7): 20 MicroPython unix-port device processes x 1,000 sample records (+ one
summary each), 2 collectors on one shared subscription, the Mosquitto broker restarted once mid-run and one
device process killed and restarted mid-run. The final data set holds every record exactly once and every
device's flash log is empty (each record acknowledged end to end). Prints the counts (BENCHMARKS.md "MQTT
uplink load test"). Runs in `make test` (about a minute); `-m "not load"` leaves it out."""
from __future__ import annotations

import time

import pytest

from edgeloop_host.broker import MOSQUITTO, Mosquitto
from test_mqtt import check_dataset, communicate, device, sent_and_left, start_collectors, stop_all

pytestmark = [pytest.mark.load,
              pytest.mark.skipif(not __import__("os").path.exists(MOSQUITTO), reason="mosquitto not installed")]

NDEV, NREC = 20, 1000


def test_load_20_devices_x_1000_records(tmp_path, capsys):
    from edgeloop_host.toolchain import firmware_path

    fw = firmware_path("unix")
    (tmp_path / "broker").mkdir()
    b = Mosquitto(tmp_path / "broker")
    b.start()
    out = tmp_path / "data"
    cols = start_collectors(b.port, out, n=2)
    total = NDEV * (NREC + 1)

    def stored():
        return sum(c.written for c in cols)

    devs, events = [], []
    t0 = time.time()
    try:
        devs = [device(fw, tmp_path, f"dev{i}", b.port, NREC, pace=0, timeout_ms=2000) for i in range(NDEV)]
        # the events happen while records flow: the device kill at ~25 %, the broker restart at ~50 % stored
        while stored() < total // 4 and time.time() - t0 < 60:
            time.sleep(0.02)
        killed = 7
        devs[killed].kill()
        devs[killed].wait()
        events.append(f"dev{killed} killed at {stored()} stored, {time.time() - t0:.1f} s")
        devs[killed] = device(fw, tmp_path, f"dev{killed}", b.port, NREC, pace=0, timeout_ms=2000)
        while stored() < total // 2 and time.time() - t0 < 90:
            time.sleep(0.02)
        b.stop()
        events.append(f"broker restarted at {stored()} stored, {time.time() - t0:.1f} s")
        time.sleep(0.3)
        b.start()
        outs = communicate(devs, 150)
        for p, (so, se) in zip(devs, outs):
            assert p.returncode == 0, se
        wall = time.time() - t0
    finally:
        stop_all(cols, devs, b)
    sent, left = sent_and_left(outs)
    sent = sum(sent)
    assert left == [0] * NDEV             # every device's flash log empty: all acknowledged end to end
    rows = check_dataset(out, NDEV, NREC)  # every record exactly once, payloads intact, summaries decoded
    st = [c.stats() for c in cols]
    received = sum(s["received"] for s in st)
    dups = sum(s["duplicates"] for s in st)
    assert sum(s["written"] for s in st) == rows + sum(s["summaries"] for s in st)
    assert received - dups == sum(s["written"] for s in st)
    assert sum(s["malformed"] for s in st) == 0
    from collections import Counter

    from edgeloop_host.collect import read_dataset
    per_dev = Counter(read_dataset(out).column("device").to_pylist())
    per_dev_summ = Counter(read_dataset(out, kind="summary").column("device").to_pylist())
    with capsys.disabled():
        print(f"\n[mqtt load: {NDEV} devices x {NREC} records + 1 summary, 2 collectors; {'; '.join(events)}] "
              f"{wall:.1f} s; published {sent} by the final device processes (re-sends included; the killed "
              f"process's own count is lost with it), collectors received {received} "
              f"({[s['received'] for s in st]}), duplicates dropped at the collectors {dups}, "
              f"rows stored {rows} samples + {sum(s['summaries'] for s in st)} summaries, duplicates removed "
              f"on read {rows - sum(per_dev.values())}, final rows per device {sorted(set(per_dev.values()))} "
              f"samples + {sorted(set(per_dev_summ.values()))} summary over {len(per_dev)} devices, "
              f"acks sent {sum(s['acks_sent'] for s in st)}, "
              f"{len(list(out.rglob('*.parquet')))} Parquet files")
