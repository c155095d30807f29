"""MQTT uplink and collection (issue 7) with real parts: a Mosquitto broker started on a free loopback
port, device processes on the MicroPython unix port running the real runtime (flash log + umqtt.simple
from micropython-lib, QoS 1, records freed only after the collectors' end-to-end acknowledgement), two
`edgeloop collect` collectors sharing an MQTT 5 shared subscription and writing partitioned Parquet; the
broker is restarted once mid-run, or a device is killed and restarted. Every record ends up in the data
set exactly once, and every device's summary in the summary partition."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
UMQTT = REPO / "tests/device/umqtt/simple.py"

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto not installed")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, d: Path):
        self.d, self.port, self.p = d, _free_port(), None
        (d / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            # started as root, mosquitto would switch to user "mosquitto", which cannot write its database here
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"persistence_location {d}/\nmax_queued_messages 100000\nlog_dest file {d}/mosquitto.log\n")

    def start(self):
        self.p = subprocess.Popen([MOSQUITTO, "-c", str(self.d / "mosquitto.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while time.time() - t0 < 10:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)


_DEVICE = """\
from edgeloop import flashlog, uplink_mqtt as U, select as S, summary as M
from umqtt.simple import MQTTClient
import time
DEV, PORT, N = %(dev)r, %(port)d, %(n)d
class Paced(MQTTClient):
    def publish(self, t, m, retain=False, qos=0):
        time.sleep_ms(%(pace)d)
        return super().publish(t, m, retain, qos)
L = flashlog.FlashLog('log', segment_size=4096, max_segments=64, sync_every=32)
if L.next_seq == 1:
    sm = M.Summary(n_classes=4, bins=4, period_ms=1 << 29)
    y = bytearray(4)
    for i in range(N):
        y[i %% 4], y[(i - 1) %% 4] = 100, 0
        s = S.Sample(b'%%s record %%d' %% (DEV.encode(), i + 1), y, t_ms=i, out_scale=1 / 256, out_zero_point=-128)
        s.reason = 'test'
        sm.add_sample(s, 100 + i)
        L.append(s.pack())
    sm.tick(L, force=True)
    L.sync()
print('EL-READY', L.next_seq - 1)
sent = U.run(L, lambda: Paced(DEV, '127.0.0.1', PORT), DEV, retry_ms=100, attempts=300, timeout_ms=%(timeout)d)
print('EL-SENT', sent, L.stats()['bytes'])
"""


def lib_dir(root: Path) -> Path:
    """The device runtime + umqtt.simple as the device processes import them (MICROPYPATH)."""
    lib = root / "lib"
    if not lib.exists():
        shutil.copytree(REPO / "device/edgeloop", lib / "edgeloop")
        (lib / "umqtt").mkdir()
        shutil.copyfile(UMQTT, lib / "umqtt/simple.py")
    return lib


def device(fw: Path, root: Path, dev: str, port: int, n: int, pace: int = 4, timeout_ms: int = 1000):
    d = root / dev
    d.mkdir(exist_ok=True)
    env = dict(os.environ, MICROPYPATH=f".frozen:{lib_dir(root)}")
    return subprocess.Popen([str(fw), "-X", "heapsize=4M", "-c", _DEVICE % {"dev": dev, "port": port, "n": n,
                                                                           "pace": pace, "timeout": timeout_ms}],
                            cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sample_x(dev: str, seq: int) -> bytes:
    return b"%s record %d" % (dev.encode(), seq)


def check_dataset(out: Path, ndev: int, nrec: int) -> int:
    """Every device's nrec samples exactly once (and nothing else) plus its one summary; returns the rows
    read before de-duplication."""
    import pyarrow.dataset as ds
    from edgeloop_host.collect import read_dataset
    from edgeloop_host.records import decode_sample

    t = read_dataset(out)
    keys = list(zip(t.column("device").to_pylist(), t.column("seq").to_pylist()))
    want = [(f"dev{i}", s) for i in range(ndev) for s in range(1, nrec + 1)]
    assert sorted(keys) == sorted(want)
    for k, p in zip(keys, t.column("payload").to_pylist()):
        d = decode_sample(p)
        assert d is not None and d["x"] == sample_x(*k) and d["t_ms"] == k[1] - 1 and d["reason"] == "test"
        assert d["y"][(k[1] - 1) % 4] == 100
    sm = read_dataset(out, kind="summary")
    assert sorted(zip(sm.column("device").to_pylist(), sm.column("seq").to_pylist())) == \
        sorted((f"dev{i}", nrec + 1) for i in range(ndev))
    q = nrec // 4
    for r in sm.to_pylist():
        assert r["n"] == nrec and r["counts"] == [q, q, q, q] and r["hist"] == [0, 0, 0, nrec]
        assert (r["latency_min_us"], r["latency_max_us"]) == (100, 100 + nrec - 1)
        assert r["latency_mean_us"] == (sum(range(100, 100 + nrec))) // nrec
    return ds.dataset(str(out), format="parquet", ignore_prefixes=[".", "kind="]).count_rows()


def communicate(procs, timeout: float):
    """(stdout, stderr) of every process, all of them done within `timeout` seconds in total."""
    t_end = time.time() + timeout
    return [p.communicate(timeout=max(0.1, t_end - time.time())) for p in procs]


def start_collectors(port: int, out: Path, n: int = 2, **kw):
    from edgeloop_host.collect import Collector

    cols = [Collector(f"mqtt://127.0.0.1:{port}", out, flush_every=50, client_id=f"col{i}", **kw).start()
            for i in range(n)]
    assert all(c.wait_connected(10) for c in cols)
    time.sleep(0.3)   # subscriptions in place
    return cols


@pytest.mark.parametrize("event", ["device_killed", "broker_restart"])
def test_devices_to_two_collectors(tmp_path, capsys, event):
    from edgeloop_host.toolchain import firmware_path

    fw = firmware_path("unix")
    (tmp_path / "broker").mkdir()
    b = Broker(tmp_path / "broker")
    b.start()
    out = tmp_path / "data"
    cols = start_collectors(b.port, out)
    devs = []
    ndev, nrec = 4, 100
    try:
        devs = [device(fw, tmp_path, f"dev{i}", b.port, nrec) for i in range(ndev)]
        time.sleep(0.6)
        if event == "broker_restart":
            b.stop()          # mid-run: devices and collectors lose the broker (and Mosquitto some messages)
            time.sleep(0.3)
            b.start()
        else:                 # a device loses power mid-run and boots again: it resumes from its flash log
            devs[0].kill()
            devs[0].wait()
            devs[0] = device(fw, tmp_path, "dev0", b.port, nrec)
        outs = communicate(devs, 90)
        for p, (so, se) in zip(devs, outs):
            assert p.returncode == 0, se
    finally:
        for c in cols:
            c.stop()
        for p in devs:
            if p.poll() is None:
                p.kill()
        b.stop()
    sent = [int(so.split("EL-SENT")[1].split()[0]) for so, _ in outs]
    left = [int(so.split("EL-SENT")[1].split()[1]) for so, _ in outs]
    assert left == [0] * ndev          # every record acknowledged by a collector and freed on the devices
    rows = check_dataset(out, ndev, nrec)
    st = [c.stats() for c in cols]
    with capsys.disabled():
        print(f"\n[mqtt, {ndev} devices x {nrec} records + 1 summary, 2 collectors, {event}] published "
              f"{sum(sent)} (with re-sends), collectors received {[s['received'] for s in st]}, "
              f"duplicates {[s['duplicates'] for s in st]}, {rows} rows stored, data set "
              f"{ndev * nrec} samples + {ndev} summaries = every record once")
