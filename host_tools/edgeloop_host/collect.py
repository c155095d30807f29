"""`edgeloop collect --broker mqtt://HOST:PORT --out DIR` (issue 7): the central side of the MQTT uplink.

Subscribes with an MQTT 5 shared subscription ($share/<group>/<prefix>/+/log), so several collectors behind
one broker (or a broker cluster) split the devices' records between them, and writes a Parquet data set:

    DIR/device=<id>/part-<collector>-<run>-<n>.parquet               samples and other records: seq,
                                                                     payload, received_ms
    DIR/kind=summary/device=<id>/part-<collector>-<run>-<n>.parquet  summaries (edgeloop.summary): seq,
                                                                     payload, received_ms, decoded fields

Every part file is fsync'ed (file and directory) before the collector acknowledges its records to the
device on <prefix>/<id>/ack with (first, last) sequence-number ranges; the device frees its flash log only
on those acknowledgements (docs/LOOP.md: the protocol, and why ranges). On start the collector reads the
sequence numbers already in DIR, so a record re-sent after a collector restart is acknowledged again
without being stored twice. Duplicates across collectors (a re-sent record that reaches another
collector) are removed when reading: `read_dataset(DIR)` keeps one row per (device, seq).
Malformed messages (a topic without a usable device id, a payload too short for its sequence number and
kind tag, an unknown kind, a record that does not decode) are counted, logged and skipped, never
acknowledged.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import struct
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from .records import decode_sample, decode_summary

log = logging.getLogger("edgeloop.collect")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_MAX_RANGES = 64          # (first, last) pairs per ack message: 512 bytes, small enough for any device
_LOG_FIRST = 20           # malformed messages logged one by one, then every _LOG_EVERY-th
_LOG_EVERY = 100
SUMMARY_DIR = "kind=summary"


class SeqSet:
    """The sequence numbers stored for one device: everything <= floor, plus a set above it."""

    def __init__(self):
        self.floor, self.above = 0, set()

    def add(self, seq: int) -> None:
        if seq > self.floor:
            self.above.add(seq)
            while self.floor + 1 in self.above:
                self.floor += 1
                self.above.discard(self.floor)

    def __contains__(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.above

    def __len__(self) -> int:
        return self.floor + len(self.above)


def ranges(seqs) -> list[tuple[int, int]]:
    """Sorted inclusive (first, last) runs of the integers in `seqs`."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return [(a, b) for a, b in out]


def ack_payloads(seqs) -> list[bytes]:
    """The ack messages for `seqs`: (first u32, last u32) little-endian pairs, at most _MAX_RANGES each."""
    r = ranges(seqs)
    return [b"".join(struct.pack("<II", a, b) for a, b in r[i:i + _MAX_RANGES]) for i in range(0, len(r), _MAX_RANGES)]


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stored_seqs(out: str | os.PathLike) -> dict[str, SeqSet]:
    """The (device -> sequence numbers) already durable in the data set DIR (every collector's parts)."""
    import pyarrow.parquet as pq

    got: dict[str, SeqSet] = {}
    root = Path(out)
    for sub in (root, root / SUMMARY_DIR):
        if not sub.is_dir():
            continue
        for d in sub.glob("device=*"):
            s = got.setdefault(d.name[len("device="):], SeqSet())
            for f in d.glob("part-*.parquet"):
                try:
                    seqs = pq.read_table(f, columns=["seq"]).column("seq").to_pylist()
                except Exception as e:  # noqa: BLE001  (a foreign or damaged file: its records get stored again)
                    log.warning("collect: %s: unreadable (%s), ignored", f, e)
                    continue
                for q in seqs:
                    s.add(q)
    return got


class Collector:
    def __init__(self, broker: str, out: str | os.PathLike, group: str = "edgeloop", prefix: str = "edgeloop",
                 flush_every: int = 200, client_id: str | None = None, flush_interval: float = 0.2):
        import paho.mqtt.client as mqtt

        u = urlparse(broker)
        if u.scheme not in ("mqtt", "") or not u.hostname:
            raise ValueError(f"collect: broker must be mqtt://HOST:PORT, not {broker!r}")
        self.host, self.port = u.hostname, u.port or 1883
        self.broker = broker
        self.out = Path(out)
        self.prefix = prefix
        self.topic = f"$share/{group}/{prefix}/+/log"
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.id = client_id or "collector-" + uuid.uuid4().hex[:8]
        self.rows: list[tuple[str, int, bytes, int]] = []
        self._buffered: dict[str, set[int]] = {}
        self._reack: dict[str, set[int]] = {}
        self.durable = stored_seqs(self.out)         # ack state survives restarts: it is the data set
        self.recovered = sum(len(s) for s in self.durable.values())
        self.received = self.duplicates = self.malformed = self.written = 0
        self.summaries = self.acks_sent = 0
        self._parts = 0
        # part files are named by collector id, a per-start token and a counter: a collector restarted
        # with the same id never overwrites the parts of its previous run
        self._run = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.id, protocol=mqtt.MQTTv5)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.1, 1.0)
        self.c.max_inflight_messages_set(200)

    @property
    def seen(self) -> set[tuple[str, int]]:
        """(device, seq) of every record this collector knows stored or buffered (compatibility view)."""
        out = {(d, q) for d, s in self._buffered.items() for q in s}
        for d, s in self.durable.items():
            out.update((d, q) for q in range(1, s.floor + 1))
            out.update((d, q) for q in s.above)
        return out

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            log.warning("collect: the broker at %s refused the connection: %s", self.broker, reason)
            return
        client.subscribe(self.topic, qos=1)

    def _bad(self, msg, why: str) -> None:
        self.malformed += 1
        if self.malformed <= _LOG_FIRST or self.malformed % _LOG_EVERY == 0:
            log.warning("collect: malformed message #%d on %r (%d bytes): %s; skipped", self.malformed,
                        msg.topic, len(msg.payload), why)

    def _on_message(self, client, userdata, msg):
        try:
            self._take(msg)
        except Exception:  # noqa: BLE001  (an exception here would end paho's network thread)
            log.exception("collect: handling a message on %r failed (its record stays unacknowledged)", msg.topic)

    def _take(self, msg):
        parts = msg.topic.split("/")
        if len(parts) < 3 or parts[-1] != "log" or not _DEVICE_ID.match(parts[-2]):
            return self._bad(msg, "no usable device id in the topic (want <prefix>/<id>/log, id of [A-Za-z0-9_.:-])")
        p = msg.payload
        if len(p) < 5:
            return self._bad(msg, "shorter than a sequence number and a kind tag (5 bytes)")
        (seq,) = struct.unpack_from("<I", p, 0)
        if seq == 0:
            return self._bad(msg, "sequence number 0 (device logs start at 1)")
        kind = p[4:5]
        if kind == b"S":
            if decode_sample(p[4:]) is None:
                return self._bad(msg, f"seq {seq}: a sample record (kind 'S') that does not decode")
        elif kind == b"M":
            if decode_summary(p[4:]) is None:
                return self._bad(msg, f"seq {seq}: a summary record (kind 'M') that does not decode")
        else:
            return self._bad(msg, f"seq {seq}: unknown record kind 0x{p[4]:02x}")
        dev = parts[-2]
        with self._lock:
            self.received += 1
            if seq in self.durable.get(dev, ()):
                self.duplicates += 1
                self._reack.setdefault(dev, set()).add(seq)   # stored already: acknowledge it again
                return
            buf = self._buffered.setdefault(dev, set())
            if seq in buf:
                self.duplicates += 1                          # acknowledged with its first copy
                return
            buf.add(seq)
            self.rows.append((dev, seq, bytes(p[4:]), int(time.time() * 1000)))
            if len(self.rows) >= self.flush_every:
                self._flush()

    def _write(self, d: Path, table) -> None:
        import pyarrow.parquet as pq

        d.mkdir(parents=True, exist_ok=True)
        self._parts += 1
        name = f"part-{self.id}-{self._run}-{self._parts}"
        tmp = d / f".{name}.tmp"
        with open(tmp, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, d / f"{name}.parquet")
        _fsync_dir(d)

    def _flush(self) -> None:
        import pyarrow as pa

        rows, self.rows = self.rows, []
        by_dev: dict[str, list] = {}
        for r in rows:
            by_dev.setdefault(r[0], []).append(r)
        acks = self._reack
        self._reack = {}
        try:
            for dev in list(by_dev):
                rs = by_dev[dev]
                summ = [r for r in rs if r[2][:1] == b"M"]
                other = [r for r in rs if r[2][:1] != b"M"]
                if other:
                    self._write(self.out / f"device={dev}", pa.table({
                        "seq": pa.array([r[1] for r in other], pa.int64()),
                        "payload": pa.array([r[2] for r in other], pa.binary()),
                        "received_ms": pa.array([r[3] for r in other], pa.int64())}))
                if summ:
                    self._write(self.out / SUMMARY_DIR / f"device={dev}", _summary_table(summ))
                    self.summaries += len(summ)
                del by_dev[dev]
                # durable now: only then acknowledged
                s = self.durable.setdefault(dev, SeqSet())
                for r in rs:
                    s.add(r[1])
                self._buffered[dev].difference_update(r[1] for r in rs)
                acks.setdefault(dev, set()).update(r[1] for r in rs)
                self.written += len(rs)
        finally:
            # a failed write (full disk...): its rows stay buffered for the next flush, unacknowledged
            self.rows = [r for rs in by_dev.values() for r in rs] + self.rows
            for dev, seqs in acks.items():
                for m in ack_payloads(seqs):
                    self.c.publish(f"{self.prefix}/{dev}/ack", m, qos=1)
                    self.acks_sent += 1

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001  (a full disk: keep the rows, retry, say why)
                log.exception("collect: flush failed; retrying")

    def start(self) -> Collector:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        # a persistent session: the broker queues the share group's messages while this collector
        # reconnects (also across a broker restart when the broker persists its sessions)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.c.connect_async(self.host, self.port, keepalive=10, clean_start=False, properties=props)
        self.c.loop_start()
        self._stop.clear()
        self._timer = threading.Thread(target=self._tick, name=f"{self.id}-flush", daemon=True)
        self._timer.start()
        return self

    def wait_connected(self, timeout: float) -> bool:
        t0 = time.time()
        while not self.c.is_connected():
            if time.time() - t0 > timeout:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        if self.c.is_connected():
            self.flush()             # the last acknowledgements still go out
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:  # noqa: BLE001
            pass
        self.flush()

    def stats(self) -> dict:
        return {"id": self.id, "received": self.received, "duplicates": self.duplicates,
                "malformed": self.malformed, "written": self.written, "summaries": self.summaries,
                "acks_sent": self.acks_sent, "recovered": self.recovered}


def _summary_table(rs):
    import pyarrow as pa

    dec = [decode_summary(r[2]) for r in rs]
    cols = {"seq": pa.array([r[1] for r in rs], pa.int64()),
            "payload": pa.array([r[2] for r in rs], pa.binary()),
            "received_ms": pa.array([r[3] for r in rs], pa.int64())}
    for k in ("t_ms", "period_ms", "n", "latency_min_us", "latency_mean_us", "latency_max_us", "blob_crc",
              "model_id", "model_version"):
        cols[k] = pa.array([d[k] for d in dec], pa.int64())
    cols["counts"] = pa.array([d["counts"] for d in dec], pa.list_(pa.int64()))
    cols["hist"] = pa.array([d["hist"] for d in dec], pa.list_(pa.int64()))
    cols["drift"] = pa.array([d["drift"] for d in dec], pa.float64())
    cols["drift_last"] = pa.array([d["drift_last"] for d in dec], pa.float64())
    cols["drifting"] = pa.array([d["drifting"] for d in dec], pa.bool_())
    return pa.table(cols)


def read_dataset(out: str | os.PathLike, kind: str = "sample"):
    """The collected data set as a pyarrow Table, one row per (device, seq). kind "sample" (default):
    the records under DIR/device=* (samples and any other kind; columns device, seq, payload, received_ms);
    "summary": DIR/kind=summary (the summary columns, see _summary_table)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if kind not in ("sample", "summary"):
        raise ValueError(f"read_dataset: kind is 'sample' or 'summary', not {kind!r}")
    root = Path(out) / SUMMARY_DIR if kind == "summary" else Path(out)
    if kind == "summary" and not root.is_dir():
        return pa.table({"device": pa.array([], pa.string()), "seq": pa.array([], pa.int64())})
    part = ds.partitioning(pa.schema([("device", pa.string())]), flavor="hive")
    t = ds.dataset(str(root), format="parquet", partitioning=part,
                   ignore_prefixes=[".", "_", "kind="]).to_table()
    if t.num_rows == 0:
        return t
    keys = set()
    keep = []
    devs, seqs = t.column("device").to_pylist(), t.column("seq").to_pylist()
    for i, k in enumerate(zip(devs, seqs)):
        if k not in keys:
            keys.add(k)
            keep.append(i)
    return t.take(pa.array(keep))


def _probe(host: str, port: int) -> str:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "it accepts TCP connections but did not complete an MQTT 5 connection"
    except OSError as e:
        return e.strerror or str(e)


def cmd_collect(args) -> int:
    import sys

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    c = Collector(args.broker, args.out, group=args.group, flush_interval=args.flush_interval)
    c.start()
    try:
        first = min(2.0, args.connect_timeout)
        if not c.wait_connected(first) and args.connect_timeout > first:
            print(f"edgeloop collect: waiting for the MQTT broker at {args.broker} ({_probe(c.host, c.port)}); "
                  f"retrying for up to {args.connect_timeout:g} s", file=sys.stderr, flush=True)
        if not c.wait_connected(max(0.0, args.connect_timeout - first)):
            c.stop()
            print(f"edgeloop collect: cannot reach the MQTT broker at {args.broker} "
                  f"({_probe(c.host, c.port)}) after {args.connect_timeout:g} s; "
                  "is it running? (--connect-timeout sets the wait)", file=sys.stderr, flush=True)
            return 3
        print(f"collecting {c.topic} from {args.broker} into {args.out} "
              f"({c.recovered} records already stored) (Ctrl-C stops)", flush=True)
        t0 = time.time()
        while args.seconds is None or time.time() - t0 < args.seconds:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    c.stop()
    print(c.stats(), flush=True)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("collect", help="collect devices' log records from an MQTT broker into Parquet (issue 7)")
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    p.add_argument("--out", required=True, help="output directory (Parquet, partitioned by device)")
    p.add_argument("--group", default="edgeloop", help="shared subscription group (default: edgeloop)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--connect-timeout", type=float, default=30.0,
                   help="give up (exit status 3) when the broker cannot be reached for this long (default: 30 s)")
    p.add_argument("--flush-interval", type=float, default=0.2,
                   help="seconds between writes (and so acknowledgements) at the latest (default: 0.2)")
    p.set_defaults(func=cmd_collect)
