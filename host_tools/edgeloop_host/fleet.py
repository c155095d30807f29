"""Staged OTA rollout over MQTT (issue 7; protocol in docs/OTA.md, "Fleet rollout").

    r = rollout("mqtt://broker:1883", blob, manifest, devices=None, canary=0.1, timeout=60)
    r.ok, r.failed, r.rolled_back, r.seconds

The blob goes to the broker as retained chunks (P/ota/<sha16>/<i>); each device gets a retained command
on P/<dev>/cmd and answers with a retained health report on P/<dev>/health (device/edgeloop/fleet_agent.py).
A canary group (deterministic, at least one device) goes first; only when every canary reports the new
SHA-256, confirmed and self-tested, do the others get the command. A canary that fails or stays silent
halts the rollout: the canaries are told to roll back, the others never hear of the update.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

CHUNK = 4096
_DEV = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
RESERVED = ("all", "ota")


class FleetError(ValueError):
    """Bad input or an unreachable broker (the CLI prints it as one line, exit status 1)."""


@dataclass
class RolloutResult:
    ok: bool
    message: str
    version: int
    sha: str
    canaries: list[str]
    rest: list[str]
    updated: list[str] = field(default_factory=list)        # report the new sha, confirmed, self-tested
    failed: dict[str, str] = field(default_factory=dict)    # device -> why
    rolled_back: list[str] = field(default_factory=list)    # canaries back on their previous sha
    halted: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    reports: dict[str, dict] = field(default_factory=dict)  # device -> last health report
    previous: dict[str, str | None] = field(default_factory=dict)  # device -> sha before the rollout


def parse_broker(url: str) -> tuple[str, int]:
    u = urlparse(url if "://" in url else "mqtt://" + url)
    try:
        port = u.port or 1883
    except ValueError:
        raise FleetError(f"broker {url!r}: bad port") from None
    if u.scheme != "mqtt" or not u.hostname:
        raise FleetError(f"broker must be mqtt://HOST:PORT, not {url!r}")
    return u.hostname, port


def parse_canary(v) -> float:
    """0.1, "0.1" or "10%" -> 0.1; must be in (0, 1]."""
    try:
        f = float(v[:-1]) / 100 if isinstance(v, str) and v.endswith("%") else float(v)
    except ValueError:
        raise FleetError(f"canary {v!r}: give a fraction (0.1) or a percentage (10%)") from None
    if not 0 < f <= 1:
        raise FleetError(f"canary {v!r}: must be above 0% and at most 100%")
    return f


def choose_canaries(devices, canary: float) -> list[str]:
    """ceil(canary * n) devices, at least one, ordered by SHA-256 of the id: the same group every time,
    spread over the id space rather than the first names."""
    order = sorted(devices, key=lambda d: hashlib.sha256(d.encode()).digest())
    return sorted(order[:max(1, math.ceil(canary * len(order) - 1e-9))])


def check_update(blob: bytes, manifest: bytes, pubkey: bytes | None = None):
    """The manifest must describe this blob (size, SHA-256); with `pubkey` its signature is checked too."""
    from .ota.manifest import ManifestError, parse_manifest

    try:
        m = parse_manifest(manifest)
    except ManifestError as e:
        raise FleetError(f"manifest: {e}") from None
    if m.size != len(blob) or m.sha256 != hashlib.sha256(blob).digest():
        raise FleetError(f"the manifest does not describe this blob (manifest: {m.size} bytes, sha256 "
                         f"{m.sha256.hex()[:16]}...; blob: {len(blob)} bytes, sha256 "
                         f"{hashlib.sha256(blob).hexdigest()[:16]}...)")
    if pubkey is not None and not m.verify(pubkey):
        raise FleetError("the manifest's signature does not verify with the given public key")
    return m


class Fleet:
    """A paho-mqtt connection that keeps every device's last health report and online flag.
    `generation` counts (re)connections: a rollout re-publishes what it owns after a broker restart."""

    def __init__(self, broker: str, prefix: str = "edgeloop", connect_timeout: float = 10.0):
        import paho.mqtt.client as mqtt

        self.host, self.port = parse_broker(broker)
        self.url = broker
        self.prefix = prefix
        self.health: dict[str, dict] = {}
        self.online: dict[str, bool] = {}
        self.malformed = 0
        self._sent = []
        self.generation = 0
        self.last_message = time.monotonic()
        self.cond = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edgeloop-fleet-" + uuid.uuid4().hex[:8])
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.1, 1.0)
        try:
            self.c.connect(self.host, self.port, keepalive=30)   # refused / unknown host: fails here
        except (OSError, ValueError) as e:
            raise FleetError(f"broker {broker}: cannot connect ({getattr(e, 'strerror', None) or e})") from None
        self.c.loop_start()
        with self.cond:
            if not self.cond.wait_for(lambda: self.generation > 0, connect_timeout):
                self.close()
                raise FleetError(f"broker {broker}: no connection within {connect_timeout:g} s "
                                 "(is it running, is the address right?)")

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            return
        client.subscribe([(f"{self.prefix}/+/health", 1), (f"{self.prefix}/+/online", 1)])
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        dev, kind = parts[-2], parts[-1]
        with self.cond:
            self.last_message = time.monotonic()
            if kind == "online":
                self.online[dev] = msg.payload == b"1"
            elif msg.payload:
                try:
                    h = json.loads(msg.payload)
                    if not isinstance(h, dict):
                        raise ValueError
                except ValueError:
                    self.malformed += 1
                    return
                h["received"] = time.time()
                self.health[dev] = h
            self.cond.notify_all()

    def publish(self, topic: str, payload: bytes, retain: bool = True):
        self._sent.append(self.c.publish(topic, payload, qos=1, retain=retain))
        if len(self._sent) > 256:
            self._sent = [i for i in self._sent if not i.is_published()]

    def command(self, dev: str, cmd: dict):
        self.publish(f"{self.prefix}/{dev}/cmd", json.dumps(cmd).encode())

    def clear_command(self, dev: str):
        self.publish(f"{self.prefix}/{dev}/cmd", b"")

    def settle(self, quiet: float = 0.5, limit: float = 3.0):
        """Wait until the retained reports have arrived: `quiet` s without a message (at most `limit`)."""
        t0 = time.monotonic()
        with self.cond:
            self.last_message = time.monotonic()
            while time.monotonic() - t0 < limit and time.monotonic() - self.last_message < quiet:
                self.cond.wait(0.05)

    def close(self, flush: float = 5.0):
        t_end = time.monotonic() + flush    # what was published reaches the broker before we leave
        for i in self._sent:
            while not i.is_published() and time.monotonic() < t_end:
                time.sleep(0.01)
        self.c.disconnect()
        self.c.loop_stop()


def _verdict(h: dict | None, rid: str, sha: str) -> tuple[bool | None, str]:
    """(True: updated, False: failed, None: no answer yet) and a reason."""
    if h is None or h.get("req") != rid or h.get("state") == "updating":
        return None, ""
    if h.get("error"):
        return False, h["error"]
    if h.get("sha") != sha:
        return False, f"still runs sha {str(h.get('sha'))[:12]}"
    if not (h.get("confirmed") and h.get("self_test")):
        return False, f"runs it but confirmed={h.get('confirmed')} self_test={h.get('self_test')}"
    return True, ""


class _Phase:
    """Send one command to a group and wait for every answer (re-sending after a reconnection)."""

    def __init__(self, fleet: Fleet, devices, cmd: dict, republish):
        self.f, self.devices, self.cmd, self.republish = fleet, list(devices), cmd, republish

    def run(self, timeout: float, judge) -> dict[str, tuple[bool, str]]:
        f, gen = self.f, self.f.generation
        for d in self.devices:
            f.command(d, self.cmd)
        out: dict[str, tuple[bool, str]] = {}
        t_end = time.monotonic() + timeout
        with f.cond:
            while len(out) < len(self.devices) and time.monotonic() < t_end:
                if f.generation != gen:          # the broker came back: what it may have lost, again
                    gen = f.generation
                    f.cond.release()
                    try:
                        self.republish()
                        for d in self.devices:
                            if d not in out:
                                f.command(d, self.cmd)
                    finally:
                        f.cond.acquire()
                for d in self.devices:
                    if d not in out:
                        v, why = judge(f.health.get(d))
                        if v is not None:
                            out[d] = (v, why)
                f.cond.wait(0.1)
        for d in self.devices:
            if d not in out:
                h = f.health.get(d)
                state = "offline" if f.online.get(d) is False else (h or {}).get("state", "never reported")
                out[d] = (False, f"no answer within {timeout:g} s (last seen: {state})")
        return out


def discover(fleet: Fleet) -> list[str]:
    fleet.settle()
    return sorted(d for d in fleet.health if _DEV.match(d) and d not in RESERVED)


def status(broker: str, prefix: str = "edgeloop") -> dict[str, dict]:
    """Every device's last (retained) health report, with `online` added."""
    f = Fleet(broker, prefix)
    try:
        f.settle()
        return {d: dict(h, online=f.online.get(d)) for d, h in sorted(f.health.items())}
    finally:
        f.close()


def rollout(broker, blob, manifest, devices=None, canary=0.1, timeout=60, log=print, *,
            prefix: str = "edgeloop", chunk: int = CHUNK, pubkey: bytes | None = None,
            connect_timeout: float = 10.0) -> RolloutResult:
    """Roll `blob` + signed `manifest` out to `devices` (None: every device with a health report),
    canaries first. Returns a RolloutResult (ok False: halted or some device failed); raises FleetError
    for bad input or an unreachable broker."""
    t0 = time.monotonic()
    blob, manifest = bytes(blob), bytes(manifest)
    m = check_update(blob, manifest, pubkey)
    canary = parse_canary(canary)
    if not 256 <= chunk <= 65536:
        raise FleetError(f"chunk {chunk}: must be 256..65536 bytes")
    if timeout <= 0:
        raise FleetError(f"timeout {timeout}: must be positive")
    if devices is not None:
        devices = sorted(set(devices))
        bad = [d for d in devices if not _DEV.match(d) or d in RESERVED]
        if bad or not devices:
            raise FleetError(f"device ids must be 1-64 characters of A-Z a-z 0-9 _ . : - and not "
                             f"{' / '.join(RESERVED)}: {bad or 'none given'}")
    sha = m.sha256.hex()
    f = Fleet(broker, prefix, connect_timeout)
    try:
        if devices is None:
            devices = discover(f)
            if not devices:
                raise FleetError(f"no devices found: none has a health report on {prefix}/+/health "
                                 "(is the fleet agent running?); name them with --devices")
            log(f"discovered {len(devices)} devices: {', '.join(devices)}")
        else:
            f.settle(0.3, 1.0)
        old = {d: (f.health.get(d) or {}).get("sha") for d in devices}
        canaries = choose_canaries(devices, canary)
        rest = [d for d in devices if d not in canaries]
        r = RolloutResult(False, "", m.version, sha, canaries, rest)

        topic = f"{prefix}/ota/{sha[:16]}"
        chunks = [blob[i:i + chunk] for i in range(0, len(blob), chunk)]

        def publish_blob():
            for i, c in enumerate(chunks):
                f.publish(f"{topic}/{i}", c)

        publish_blob()
        cmd = {"op": "update", "id": uuid.uuid4().hex[:12], "manifest": manifest.hex(), "topic": topic,
               "chunk": chunk, "version": m.version}
        judge_update = lambda h: _verdict(h, cmd["id"], sha)  # noqa: E731
        log(f"version {m.version} ({len(blob)} bytes, {len(chunks)} chunks, sha256 {sha[:16]}...): "
            f"canaries {', '.join(canaries)} ({len(canaries)} of {len(devices)})")
        t = time.monotonic()
        res = _Phase(f, canaries, cmd, publish_blob).run(timeout, judge_update)
        r.phases["canary"] = time.monotonic() - t
        bad = {d: why for d, (ok, why) in res.items() if not ok}
        r.updated = [d for d, (ok, _) in res.items() if ok]
        if bad:
            r.halted, r.failed = True, bad
            for d, why in sorted(bad.items()):
                log(f"  canary {d} FAILED: {why}")
            log(f"halting: rolling the canaries back; {len(rest)} devices were not sent the update")
            rb = {"op": "rollback", "id": uuid.uuid4().hex[:12], "from": sha}

            def judge_rb(h):
                if h is None or h.get("req") != rb["id"]:
                    return None, ""
                if h.get("sha") == sha:
                    return False, h.get("error") or "still runs the new model"
                return True, ""

            t = time.monotonic()
            back = _Phase(f, canaries, rb, lambda: None).run(min(timeout, 30), judge_rb)
            r.phases["rollback"] = time.monotonic() - t
            r.rolled_back = sorted(d for d, (ok, _) in back.items() if ok)
            stuck = {d: why for d, (ok, why) in back.items() if not ok}
            for d in r.rolled_back:
                f.clear_command(d)      # acknowledged; an unacknowledged rollback stays retained
            for d, why in stuck.items():
                log(f"  canary {d} did not confirm the rollback: {why}")
            r.updated = []
            r.message = (f"halted: canary device{'s' if len(bad) > 1 else ''} "
                         f"{', '.join(f'{d} ({w})' for d, w in sorted(bad.items()))} failed; canaries "
                         f"rolled back: {', '.join(r.rolled_back) or 'none'}"
                         + (f"; NOT rolled back: {', '.join(sorted(stuck))}" if stuck else "")
                         + f"; {len(rest)} other devices never received version {m.version}")
        else:
            log(f"  canaries ok in {r.phases['canary']:.1f} s; now the other {len(rest)} devices")
            if rest:
                t = time.monotonic()
                res2 = _Phase(f, rest, cmd, publish_blob).run(timeout, judge_update)
                r.phases["rest"] = time.monotonic() - t
                r.updated += [d for d, (ok, _) in res2.items() if ok]
                r.failed = {d: why for d, (ok, why) in res2.items() if not ok}
            for d, why in sorted(r.failed.items()):
                log(f"  {d} FAILED: {why}")
            for d in devices:
                f.clear_command(d)
            r.ok = not r.failed
            r.message = (f"version {m.version} on all {len(devices)} devices" if r.ok else
                         f"version {m.version} on {len(r.updated)} of {len(devices)} devices; failed: "
                         + ", ".join(f"{d} ({w})" for d, w in sorted(r.failed.items())))
        for i in range(len(chunks)):
            f.publish(f"{topic}/{i}", b"")          # the broker drops the retained blob
        r.updated.sort()
        r.reports = {d: f.health.get(d) for d in devices}
        r.previous = old
        r.seconds = time.monotonic() - t0
        log(f"done: {r.message} ({r.seconds:.1f} s)" if r.ok else
            f"{'halted' if r.halted else 'finished with failures'} after {r.seconds:.1f} s")
        return r
    finally:
        f.close()
