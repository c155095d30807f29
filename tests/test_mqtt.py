"""MQTT uplink and collection (issue 7) with real parts: a Mosquitto broker started on a free loopback
port, device processes on the MicroPython unix port running the real runtime (flash log + umqtt.simple
from micropython-lib, QoS 1, records freed only after the collectors' end-to-end acknowledgement), two
`edgeloop collect` collectors sharing an MQTT 5 shared subscription and writing partitioned Parquet; the
broker is restarted once mid-run, or a device is killed and restarted. Every record ends up in the data
set exactly once, and every device's summary in the summary partition."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeloop_host import broker as mosquitto

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO = mosquitto.MOSQUITTO
UMQTT = REPO / "tests/device/umqtt/simple.py"

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto not installed")


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


def sent_and_left(outs) -> tuple[list[int], list[int]]:
    """Per device program: records published (re-sends included), log bytes left (its EL-SENT line)."""
    fields = [so.split("EL-SENT")[1].split() for so, _ in outs]
    return [int(f[0]) for f in fields], [int(f[1]) for f in fields]


def stop_all(cols, devs, broker) -> None:
    for c in cols:
        c.stop()
    for p in devs:
        if p.poll() is None:
            p.kill()
    broker.stop()


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
    b = mosquitto.Mosquitto(tmp_path / "broker")
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
        stop_all(cols, devs, b)
    sent, left = sent_and_left(outs)
    assert left == [0] * ndev          # every record acknowledged by a collector and freed on the devices
    rows = check_dataset(out, ndev, nrec)
    st = [c.stats() for c in cols]
    with capsys.disabled():
        print(f"\n[mqtt, {ndev} devices x {nrec} records + 1 summary, 2 collectors, {event}] published "
              f"{sum(sent)} (with re-sends), collectors received {[s['received'] for s in st]}, "
              f"duplicates {[s['duplicates'] for s in st]}, {rows} rows stored, data set "
              f"{ndev * nrec} samples + {ndev} summaries = every record once")


# ---- the end-to-end acknowledgement and bad input, piece by piece ------------------------------------


def _sample(seq: int, x: bytes = b"abc") -> bytes:
    """An MQTT payload as a device sends it: seq + a Sample.pack() record."""
    return (struct.pack("<I", seq) + b"S" + struct.pack("<IB", seq, 1) + b"r" + struct.pack("<H", len(x)) + x
            + struct.pack("<H", 2) + b"\x01\x02")


class _Peer:
    """A paho client standing in for the network side of devices: publishes raw payloads, records acks."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.acked: dict[str, set[int]] = {}
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe("edgeloop/+/ack", qos=1)
        time.sleep(0.3)

    def _on_message(self, client, userdata, m):
        p = bytes(m.payload)
        assert len(p) % 8 == 0
        s = self.acked.setdefault(m.topic.split("/")[1], set())
        for i in range(0, len(p), 8):
            a, b = struct.unpack_from("<II", p, i)
            s.update(range(a, b + 1))

    def pub(self, topic: str, payload: bytes):
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _until(cond, timeout: float = 10.0):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.05)


@pytest.fixture
def broker(tmp_path):
    (tmp_path / "broker").mkdir()
    b = mosquitto.Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_collector_skips_malformed_messages(tmp_path, broker, caplog):
    caplog.set_level("WARNING", logger="edgeloop.collect")
    out = tmp_path / "data"
    (col,) = start_collectors(broker.port, out, n=1)
    peer = _Peer(broker.port)
    try:
        bad = [("edgeloop/devA/log", b"\x01\x00", "shorter than"),
               ("edgeloop/devA/log", struct.pack("<I", 2) + b"Zjunk", "unknown record kind 0x5a"),
               ("edgeloop/devA/log", bytes(range(1, 41)), "unknown record kind 0x05"),       # garbage
               ("edgeloop/devA/log", struct.pack("<I", 3) + b"S\x01", "sample record (kind 'S') that does not"),
               ("edgeloop/devA/log", struct.pack("<I", 4) + b"M\x01\x00\x02", "summary record (kind 'M') that"),
               ("edgeloop/devA/log", _sample(0), "sequence number 0"),
               ("edgeloop/bad id!/log", _sample(6), "no usable device id")]
        peer.pub("edgeloop/devA/log", _sample(1))
        for topic, payload, _ in bad:
            peer.pub(topic, payload)
        peer.pub("edgeloop/devA/log", _sample(5))
        _until(lambda: col.malformed == len(bad) and col.written == 2 and peer.acked.get("devA") == {1, 5})
        assert col.c.is_connected() and col.received == 2
    finally:
        peer.close()
        col.stop()
    msgs = [r.getMessage() for r in caplog.records if "malformed message" in r.getMessage()]
    assert len(msgs) == len(bad)
    for (_, _, why), m in zip(bad, msgs):
        assert why in m and "skipped" in m
    assert set(peer.acked) == {"devA"}                      # nothing malformed acknowledged
    from edgeloop_host.collect import read_dataset

    t = read_dataset(out)
    assert sorted(t.column("seq").to_pylist()) == [1, 5]


def test_collector_restart_recovers_ack_state(tmp_path, broker):
    """A record re-sent after the collector restarted is acknowledged from what the data set holds, and
    not stored again."""
    from edgeloop_host.collect import Collector, read_dataset

    out = tmp_path / "data"
    (a,) = start_collectors(broker.port, out, n=1)
    peer = _Peer(broker.port)
    try:
        for q in range(1, 6):
            peer.pub("edgeloop/devB/log", _sample(q))
        _until(lambda: a.written == 5 and peer.acked.get("devB") == {1, 2, 3, 4, 5})
        a.stop()
        peer.acked.clear()
        b = Collector(f"mqtt://127.0.0.1:{broker.port}", out, client_id="col0").start()   # the same collector, again
        assert b.recovered == 5 and 3 in b.durable["devB"] and 6 not in b.durable["devB"]
        assert b.wait_connected(10)
        time.sleep(0.3)
        peer.pub("edgeloop/devB/log", _sample(3))          # its ack was lost: the device sends it again
        peer.pub("edgeloop/devB/log", _sample(6))
        _until(lambda: peer.acked.get("devB") == {3, 6})
        b.stop()
    finally:
        peer.close()
    assert (b.written, b.duplicates) == (1, 1)
    import pyarrow.dataset as ds

    assert ds.dataset(str(out), format="parquet", ignore_prefixes=[".", "kind="]).count_rows() == 6
    assert sorted(read_dataset(out).column("seq").to_pylist()) == [1, 2, 3, 4, 5, 6]


def _collect_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "host_tools"))
    return subprocess.Popen([sys.executable, "-m", "edgeloop_host.cli", "collect", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_collect_cli_broker_down(tmp_path):
    port = mosquitto.free_port()
    p = _collect_cli("--broker", f"mqtt://127.0.0.1:{port}", "--out", str(tmp_path / "d"), "--connect-timeout", "1.5")
    so, se = p.communicate(timeout=60)
    assert p.returncode == 3, (so, se)
    assert f"cannot reach the MQTT broker at mqtt://127.0.0.1:{port} (Connection refused) after 1.5 s" in se
    # a broker that comes up while the collector waits: it connects and runs
    p = _collect_cli("--broker", f"mqtt://127.0.0.1:{port}", "--out", str(tmp_path / "d"), "--connect-timeout", "30",
                     "--seconds", "0.5")
    waiting = p.stderr.readline()           # after 2 s without a broker it says so, and keeps trying
    assert f"waiting for the MQTT broker at mqtt://127.0.0.1:{port} (Connection refused); retrying" in waiting
    (tmp_path / "broker").mkdir()
    b = mosquitto.Mosquitto(tmp_path / "broker", port=port)
    b.start()
    try:
        so, se = p.communicate(timeout=60)
    finally:
        b.stop()
    assert p.returncode == 0, se
    assert "collecting $share/edgeloop/edgeloop/+/log" in so and "'malformed': 0" in so


_HOLD = """\
import os, time
from edgeloop import flashlog, uplink_mqtt as U, select as S
from umqtt.simple import MQTTClient
DEV, PORT = 'devH', %(port)d
L = flashlog.FlashLog('log')
for i in range(10):
    L.append(S.Sample(b'%%d' %% i, b'\\x01', t_ms=i, out_scale=1.0, out_zero_point=0).pack())
up = U.Uplink(L, DEV, timeout_ms=400)
c = MQTTClient(DEV, '127.0.0.1', PORT)
c.connect()
up.connected(c)
ok = up.drain(timeout_ms=1500)
print('EL-HOLD', ok, up.pending(), up.sent, up.resent, L.stats()['bytes'])
while True:
    try:
        os.stat('go')
        break
    except OSError:
        time.sleep_ms(20)
ok = up.drain(timeout_ms=20000)
print('EL-DONE', ok, up.pending(), up.sent, up.resent, L.stats()['bytes'])
"""


def test_device_keeps_records_until_a_collector_acks(tmp_path, broker):
    """PUBACK is not enough: with no collector the broker PUBACKs and drops every record, and the device
    keeps them all (re-sending after its timeout); once a collector runs they are stored and freed."""
    from edgeloop_host.collect import read_dataset
    from edgeloop_host.toolchain import firmware_path

    fw = firmware_path("unix")
    d = tmp_path / "devH"
    d.mkdir()
    env = dict(os.environ, MICROPYPATH=f".frozen:{lib_dir(tmp_path)}")
    p = subprocess.Popen([str(fw), "-X", "heapsize=4M", "-c", _HOLD % {"port": broker.port}], cwd=d, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cols = []
    try:
        line = p.stdout.readline().split()
        assert line[:3] == ["EL-HOLD", "False", "10"], (line, p.stderr.read() if p.poll() is not None else "")
        sent, resent, left = int(line[3]), int(line[4]), int(line[5])
        assert sent >= 20 and resent == sent - 10 and left > 0     # re-sent after the timeout, all still on flash
        cols = start_collectors(broker.port, tmp_path / "data", n=1)
        (d / "go").touch()
        so, se = p.communicate(timeout=60)
    finally:
        for c in cols:
            c.stop()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, se
    done = so.split()
    assert done[:3] == ["EL-DONE", "True", "0"] and done[5] == "0", so
    assert sorted(read_dataset(tmp_path / "data").column("seq").to_pylist()) == list(range(1, 11))


_STEADY = """\
import time
from edgeloop import flashlog, uplink_mqtt as U, select as S
from umqtt.simple import MQTTClient
L = flashlog.FlashLog('log')
starts = [0]
_start = L._start
def counted(first):
    starts[0] += 1
    _start(first)
L._start = counted
up = U.Uplink(L, 'devS', timeout_ms=2000)
c = MQTTClient('devS', '127.0.0.1', %(port)d)
c.connect()
up.connected(c)
for i in range(30):          # one record at a time, each acknowledged before the next: a steady flow
    L.append(S.Sample(b'%%d' %% i, b'\\\\x01', t_ms=i, out_scale=1.0, out_zero_point=0).pack())
    t0 = time.ticks_ms()
    while up.pending() and time.ticks_diff(time.ticks_ms(), t0) < 10000:
        up.poll()
        time.sleep_ms(2)
print('EL-STEADY', up.pending(), starts[0], L.acked, len(L._segments()))
up.drain()
print('EL-DRAINED', up.pending(), starts[0], L.stats()['bytes'])
"""


def test_steady_flow_does_not_start_a_segment_per_record(tmp_path, broker):
    """Acknowledging the log's newest record makes the flash log start a new segment file; the uplink
    holds the last record back while the segment is small, so a steady flow does not create (and erase)
    a file per record."""
    from edgeloop_host.toolchain import firmware_path

    fw = firmware_path("unix")
    d = tmp_path / "devS"
    d.mkdir()
    cols = start_collectors(broker.port, tmp_path / "data", n=1)
    env = dict(os.environ, MICROPYPATH=f".frozen:{lib_dir(tmp_path)}")
    try:
        r = subprocess.run([str(fw), "-X", "heapsize=4M", "-c", _STEADY % {"port": broker.port}], cwd=d, env=env,
                           capture_output=True, text=True, timeout=120)
    finally:
        for c in cols:
            c.stop()
    assert r.returncode == 0, r.stderr
    steady = r.stdout.split("EL-STEADY")[1].split("EL-DRAINED")[0].split()
    assert steady == ["0", "0", "29", "1"]       # all acknowledged, no new segment, the log holds back seq 30
    assert r.stdout.split("EL-DRAINED")[1].split() == ["0", "1", "0"]   # drain(): freed, one new segment
