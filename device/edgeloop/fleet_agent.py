# Fleet agent (issue 7): takes model updates and rollbacks over MQTT and reports the model's health
# (docs/OTA.md, "Fleet rollout").
#
#   from edgeloop import fleet_agent
#   from umqtt.simple import MQTTClient
#   a = fleet_agent.Agent("dev7", lambda: MQTTClient("dev7", "broker", 1883, keepalive=30))
#   a.run()                       # or a.boot(), then a.step(ms) from the application's own loop
#
# Topics (P = prefix): P/<dev>/cmd and P/all/cmd (commands, JSON), P/<dev>/health (retained JSON report),
# P/<dev>/online (retained "1", "0" as the last will), P/ota/<sha16>/<i> (the blob, retained chunks).
# The blob comes over the same MQTT connection as the commands: a board needs no second connection
# (or TLS session) to an HTTP server, and a chunk is fetched by subscribing to its retained topic, so a
# download resumes at the chunk the slot stops at, after a lost broker or a reboot. Integrity does not
# rest on the transport: Updater checks the signed manifest and the SHA-256.
import json
import time
from binascii import hexlify, unhexlify
from micropython import const

from . import ota

_CHUNK_WAIT_MS = const(15000)


class _Lost(Exception):
    pass    # the broker connection broke (reconnect); other OSErrors come from the filesystem


class _NewCommand(Exception):
    pass    # a command arrived during a download: it replaces the update


def _reverted(version, result):
    return ota.OTAError("reverted", "version %d: %s" % (version, ota.RESULTS[result].split(": ")[-1]))


class Agent:
    """device_id: the MQTT topic level of this board. make_client: returns a fresh umqtt.simple
    MQTTClient (keepalive > 0 makes the agent ping). updater: ota.Updater (default ota/ in the root).
    reboot: called once an update is verified, e.g. machine.reset (the next boot's Updater.load() tries
    it); by default (None) the agent tries it at once through the same load(). on_model(model): called
    with every newly loaded model."""

    def __init__(self, device_id, make_client, updater=None, prefix="edgeloop", backend="auto",
                 retry_ms=500, reboot=None, on_model=None):
        if not device_id or device_id in ("all", "ota") or "/" in device_id or "+" in device_id \
                or "#" in device_id:
            raise ValueError("device id %r: must be a non-empty topic level, not all / ota" % device_id)
        self.dev = device_id
        self.make_client = make_client
        self.u = updater if updater is not None else ota.Updater()
        self.prefix = prefix
        self.backend = backend
        self.retry_ms = retry_ms
        self.reboot = reboot
        self.on_model = on_model
        base = "%s/%s/" % (prefix, device_id)
        self.t_cmd = (base + "cmd").encode()
        self.t_all = ("%s/all/cmd" % prefix).encode()
        self.t_health = base + "health"
        self.t_online = base + "online"
        self.c = None
        self.model = None
        self.self_test = None
        self.error = None
        self.req = None        # id of the last command handled
        self.phase = "boot"
        self._cmd = None       # newest command not yet handled
        self._current = None   # the command being handled
        self._want = None      # chunk topic awaited
        self._chunk = None
        self._poll = None
        self._up = 0
        self._t = time.ticks_ms()
        self._ping = self._rx = time.ticks_ms()

    # ---- model ------------------------------------------------------------------------------------
    def boot(self):
        """Load the model as at start-up: a pending update is tried (self-test: confirm or revert)."""
        self.model = None
        try:
            self._set_model(self.u.load(self.backend))
            self.phase = "running"
        except (OSError, ValueError, MemoryError) as e:
            self.error = "boot: %s" % e
            self.phase = "no model"

    def _set_model(self, m):
        self.model = m
        self.self_test = m.self_test()
        if self.on_model is not None:
            self.on_model(m)

    def _active(self):
        s = self.u.state()
        if s.active == ota.NONE:
            return s, None
        try:
            return s, self.u._slot_manifest(s.active)
        except (OSError, ValueError):
            return s, None

    def health(self):
        s, m = self._active()
        now = time.ticks_ms()
        self._up += time.ticks_diff(now, self._t)
        self._t = now
        return {"dev": self.dev, "version": m.version if m else None,
                "sha": hexlify(m.sha256).decode() if m else None,
                "slot": None if s.active == ota.NONE else s.active, "self_test": self.self_test,
                "confirmed": bool(s.confirmed) and s.pending == ota.NONE, "counter": s.counter,
                "last": [s.last_version, ota.RESULTS[s.result]], "error": self.error, "req": self.req,
                "state": self.phase, "uptime": self._up // 1000}

    # ---- MQTT -------------------------------------------------------------------------------------
    def _on_msg(self, topic, msg):
        if topic == self._want:
            self._chunk = msg
        elif (topic == self.t_cmd or topic == self.t_all) and msg:
            self._cmd = msg      # the newest command wins (the per-device topic is retained: desired state)

    def _client(self):
        c = self.c
        if c is None:
            raise _Lost(OSError("not connected"))
        return c

    def _publish(self, topic, msg):
        c = self._client()
        try:
            c.publish(topic, msg, True, 1)
        except (OSError, IndexError, AssertionError) as e:   # IndexError: read() of a closed socket
            raise _Lost(e)

    def report(self):
        self._publish(self.t_health, json.dumps(self.health()))

    def connect(self):
        import select
        self.close()
        c = self.make_client()
        c.set_callback(self._on_msg)
        c.set_last_will(self.t_online, b"0", True, 1)
        self.c = c
        try:
            c.connect()
            try:   # TCP_NODELAY: umqtt writes a packet in pieces; Nagle + delayed ACKs cost ~40 ms each
                c.sock.setsockopt(6, 1, 1)
            except (OSError, AttributeError):
                pass
            c.subscribe(self.t_cmd, 1)
            c.subscribe(self.t_all, 1)
        except (OSError, IndexError, AssertionError) as e:
            raise _Lost(e)
        self._poll = select.poll()
        self._poll.register(c.sock, select.POLLIN)
        self._ping = self._rx = time.ticks_ms()
        if self.phase == "updating":     # the download broke off; it resumes if the command comes again
            self.phase = "running" if self.model is not None else "no model"
        self._publish(self.t_online, b"1")
        self.report()

    def close(self):
        if self.c is not None:
            try:
                self.c.sock.close()
            except Exception:
                pass
        self.c = None

    def _wait(self, ms):
        """Process at most one incoming message within `ms`. With a keepalive: ping every half of it,
        and a broker silent for 1.5 keepalives (no PINGRESP: a half-open connection) counts as lost."""
        c, p = self._client(), self._poll
        try:
            ka = c.keepalive
            now = time.ticks_ms()
            if ka and time.ticks_diff(now, self._ping) > ka * 500:
                if time.ticks_diff(now, self._rx) > ka * 1500:
                    raise OSError("no answer from the broker for %d s" % (ka * 3 // 2))
                c.ping()
                self._ping = now
            if p is not None and p.poll(ms):
                c.wait_msg()
                self._rx = time.ticks_ms()
        except (OSError, IndexError, AssertionError) as e:
            raise _Lost(e)

    def step(self, ms=200):
        """One turn of the agent (for an application's own loop): (re)connect if needed, then handle a
        pending command or wait up to `ms` for one. A lost broker: sleeps retry_ms, returns False."""
        try:
            if self.c is None:
                self.connect()
            if self._cmd is not None:
                cmd, self._cmd = self._cmd, None
                self._handle(cmd)
            else:
                self._wait(ms)
            return True
        except _Lost:
            self.close()
            time.sleep_ms(self.retry_ms)
            return False

    def run(self, until=None):
        """Boot, then serve commands forever (or until until() is true)."""
        if self.phase == "boot":
            self.boot()
        while until is None or not until():
            self.step(200)

    # ---- commands ---------------------------------------------------------------------------------
    def _handle(self, raw):
        self._current = raw
        try:
            cmd = json.loads(raw)
            op = cmd["op"]
            self.req = cmd.get("id")
        except (ValueError, KeyError, TypeError, AttributeError):
            self.error = "bad command: %r" % raw[:60]
            self.report()
            return
        self.error = None
        try:
            if op == "update":
                self._update(cmd)
            elif op == "rollback":
                s, m = self._active()
                if m is not None and hexlify(m.sha256).decode() == cmd["from"]:
                    self.model = None
                    self._set_model(self.u.rollback(self.backend))
            elif op != "report":
                self.error = "unknown command %r" % op
        except _NewCommand:     # handled next; the partial download stays in the slot for a resume
            self.error = "update: interrupted by a newer command"
        except _Lost:
            raise
        except (OSError, ValueError, KeyError, TypeError, MemoryError) as e:   # OTAError is a ValueError
            self.error = str(e) if isinstance(e, ota.OTAError) else "%s: %r" % (op, e)
            if self.model is None:   # dropped to make room for the new one: the active model again
                try:
                    self._set_model(self.u.load(self.backend))
                except (OSError, ValueError, MemoryError):
                    pass
        self.phase = "running" if self.model is not None else "no model"
        self.report()

    def _update(self, cmd):
        mf = unhexlify(cmd["manifest"])
        m = ota.Manifest(mf)
        s, act = self._active()
        if act is not None and act.sha256 == m.sha256:
            return                                   # already running it (a command delivered again)
        other = 1 - s.active if s.active != ota.NONE else 0
        if s.last_version == m.version and s.result not in (ota.R_NONE, ota.R_CONFIRMED, ota.R_ROLLBACK):
            try:
                tried = self.u._slot_manifest(other).raw == mf
            except (OSError, ValueError):
                tried = False
            if tried:                                # tried and reverted: do not try it again
                raise _reverted(m.version, s.result)
        off = self.u.begin(mf)
        self.phase = "updating"
        self.report()
        topic, size = cmd["topic"], int(cmd["chunk"])
        while off < m.size:
            i = off // size
            data = self._fetch(("%s/%d" % (topic, i)).encode())
            if len(data) != min(size, m.size - i * size):
                raise ota.OTAError("truncated", "chunk %d has %d bytes" % (i, len(data)))
            off = self.u.write(off, memoryview(data)[off - i * size:])
            data = None
        self.u.finish()                              # verified: pending, tried at the next load()
        if self.reboot is not None:
            self.close()
            self.reboot()                            # does not return on a board
        self.model = None
        import gc
        gc.collect()
        self._set_model(self.u.load(self.backend))   # self-test: confirmed, or reverted to the old model
        s = self.u.state()
        if s.result != ota.R_CONFIRMED or s.last_version != m.version:
            raise _reverted(m.version, s.result)

    def _fetch(self, topic):
        """The retained chunk on `topic` (subscribe, wait for it)."""
        self._want, self._chunk = topic, None
        try:
            c = self._client()
            try:
                c.subscribe(topic, 1)
            except (OSError, IndexError, AssertionError) as e:
                raise _Lost(e)
            t0 = time.ticks_ms()
            while self._chunk is None:
                if self._cmd is not None:
                    if self._cmd != self._current:
                        raise _NewCommand()
                    self._cmd = None     # the same command again (retained, re-sent after a reconnect)
                if time.ticks_diff(time.ticks_ms(), t0) > _CHUNK_WAIT_MS:
                    raise ota.OTAError("truncated", "chunk %s not on the broker" % topic.decode())
                self._wait(200)
            return self._chunk
        finally:
            self._want = self._chunk = None
