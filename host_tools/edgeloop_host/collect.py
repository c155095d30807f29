"""`edgeloop collect --broker mqtt://HOST:PORT --out DIR` (issue 7): the central side of the MQTT uplink.

Subscribes with an MQTT 5 shared subscription ($share/<group>/<prefix>/+/log), so several collectors behind
one broker (or a broker cluster) split the devices' records between them, and writes a Parquet data set
partitioned by device (DIR/device=<id>/part-<collector>-<n>.parquet, columns seq, payload, received_ms).
A collector drops the duplicates it sees itself; duplicates across collectors (a record re-sent after a
lost PUBACK may reach another collector) are removed when reading: `read_dataset(DIR)` keeps one row per
(device, seq). Malformed messages (a topic without a device id, a payload shorter than its 4-byte
sequence number) are counted and skipped.
"""
from __future__ import annotations

import os
import struct
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse


class Collector:
    def __init__(self, broker: str, out: str | os.PathLike, group: str = "edgeloop", prefix: str = "edgeloop",
                 flush_every: int = 200, client_id: str | None = None):
        import paho.mqtt.client as mqtt

        u = urlparse(broker)
        if u.scheme not in ("mqtt", "") or not u.hostname:
            raise ValueError(f"collect: broker must be mqtt://HOST:PORT, not {broker!r}")
        self.host, self.port = u.hostname, u.port or 1883
        self.out = Path(out)
        self.topic = f"$share/{group}/{prefix}/+/log"
        self.flush_every = flush_every
        self.id = client_id or "collector-" + uuid.uuid4().hex[:8]
        self.rows: list[tuple[str, int, bytes, int]] = []
        self.seen: set[tuple[str, int]] = set()
        self.received = self.duplicates = self.malformed = self.written = 0
        self._parts = 0
        self._lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.id, protocol=mqtt.MQTTv5)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.1, 1.0)

    def _on_connect(self, client, userdata, flags, reason, properties):
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) < 3 or not parts[-2] or len(msg.payload) < 4:
            self.malformed += 1
            return
        dev = parts[-2]
        (seq,) = struct.unpack_from("<I", msg.payload, 0)
        with self._lock:
            self.received += 1
            if (dev, seq) in self.seen:
                self.duplicates += 1
                return
            self.seen.add((dev, seq))
            self.rows.append((dev, seq, bytes(msg.payload[4:]), int(time.time() * 1000)))
            if len(self.rows) >= self.flush_every:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows, self.rows = self.rows, []
        by_dev: dict[str, list] = {}
        for r in rows:
            by_dev.setdefault(r[0], []).append(r)
        for dev, rs in by_dev.items():
            d = self.out / f"device={dev}"
            d.mkdir(parents=True, exist_ok=True)
            t = pa.table({"seq": pa.array([r[1] for r in rs], pa.int64()),
                          "payload": pa.array([r[2] for r in rs], pa.binary()),
                          "received_ms": pa.array([r[3] for r in rs], pa.int64())})
            self._parts += 1
            tmp = d / f".part-{self.id}-{self._parts}.tmp"
            pq.write_table(t, tmp)
            os.replace(tmp, d / f"part-{self.id}-{self._parts}.parquet")
            self.written += len(rs)

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def start(self) -> Collector:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        # a persistent session: the broker queues the share group's messages while this collector
        # reconnects (also across a broker restart when the broker persists its sessions)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.c.connect_async(self.host, self.port, keepalive=10, clean_start=False, properties=props)
        self.c.loop_start()
        return self

    def stop(self) -> None:
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.flush()

    def stats(self) -> dict:
        return {"id": self.id, "received": self.received, "duplicates": self.duplicates,
                "malformed": self.malformed, "written": self.written}


def read_dataset(out: str | os.PathLike):
    """The collected data set as a pyarrow Table (columns device, seq, payload, received_ms), one row per
    (device, seq)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    t = ds.dataset(str(out), format="parquet", partitioning="hive").to_table()
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


def cmd_collect(args) -> int:
    c = Collector(args.broker, args.out, group=args.group)
    c.start()
    print(f"collecting {c.topic} from {args.broker} into {args.out} (Ctrl-C stops)", flush=True)
    try:
        t0 = time.time()
        while args.seconds is None or time.time() - t0 < args.seconds:
            time.sleep(1.0)
            c.flush()
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()
    print(c.stats())
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("collect", help="collect devices' log records from an MQTT broker into Parquet (issue 7)")
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    p.add_argument("--out", required=True, help="output directory (Parquet, partitioned by device)")
    p.add_argument("--group", default="edgeloop", help="shared subscription group (default: edgeloop)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=cmd_collect)
