"""`edgeloop fleet rollout` (issue 7) with real parts: a Mosquitto broker on loopback and six MicroPython
unix-port processes running the real fleet agent (device/edgeloop/fleet_agent.py + umqtt.simple), each
on its own directory with the OTA slots and state. A good model reaches every device, canaries first; a
bad one (fails its self-test, bad signature, or a canary that cannot take it) stops at the canaries, which
roll back, and the other devices never receive it; a broker restart plus a device reboot in the middle of
the rollout does not stop it. Plus Updater.rollback's rules on the device, and the CLI's bad input."""
from __future__ import annotations

import ast
import json
import os
import threading
import time

import pytest

import fleetsim
import otagen
from edgeloop_host import broker, cli, fleet
from edgeloop_host.ota import manifest as M

pytestmark = pytest.mark.skipif(not os.path.exists(broker.MOSQUITTO), reason="mosquitto not installed")
N = 6


@pytest.fixture(scope="module")
def keys():
    return otagen.fleet()


@pytest.fixture(scope="module")
def updates(keys):
    u = otagen.update_set(keys, otagen.SMALL)                    # base v1, new v2, bad v3 (self-test fails)
    big = otagen.make_blob(otagen.LARGE, 2, 5)                   # ~100 KB: a download long enough to interrupt
    u["big"] = (big, M.sign_blob(big, keys.key, 2))
    v4 = otagen.make_blob(otagen.SMALL, 4, 4)
    u["badsig"] = (v4, M.sign_blob(v4, keys.other, 4))           # signed, but by a key the devices do not trust
    return u


class Sim:
    def __init__(self, tmp, keys, base, slots=None, reboot=False):
        from edgeloop_host.toolchain import firmware_path

        self.broker = broker.Mosquitto(tmp / "broker").start()
        self.url = self.broker.url
        lib = fleetsim.runtime_lib(tmp)
        fw = firmware_path("unix")
        slots = slots or {}
        self.devs = {f"dev{i}": fleetsim.Device(fw, lib, tmp, f"dev{i}", self.broker.port,
                                                slots.get(f"dev{i}", 256 * 1024), reboot) for i in range(N)}
        for d in self.devs.values():
            d.provision(keys.pub, *base).start()
        ok = fleetsim.wait_for(lambda: len(self.status()) == N, 30, 0.2)
        assert ok, "devices did not report: " + "; ".join(d.stderr()[-300:] for d in self.devs.values())

    def status(self):
        try:
            return {d: h for d, h in fleet.status(self.url).items() if h.get("state") == "running"}
        except fleet.FleetError:
            return {}

    def close(self):
        for d in self.devs.values():
            d.kill()
        self.broker.stop()


@pytest.fixture
def sim_factory(tmp_path, keys, updates):
    made = []

    def make(**kw):
        s = Sim(tmp_path, keys, updates["base"], **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _sha(blob):
    import hashlib
    return hashlib.sha256(blob).hexdigest()


def test_good_rollout_reaches_every_device_canaries_first(sim_factory, updates, capsys):
    sim = sim_factory()
    blob, mf = updates["new"]
    r = fleet.rollout(sim.url, blob, mf, canary=0.2, timeout=30, log=lambda s: None)
    assert r.ok, r.message
    assert r.canaries == fleet.choose_canaries(sim.devs, 0.2) and len(r.canaries) == 2
    assert r.updated == sorted(sim.devs) and not r.failed and not r.halted
    st = sim.status()
    for d in sim.devs:
        h = st[d]
        assert (h["sha"], h["version"], h["confirmed"], h["self_test"], h["error"]) == (_sha(blob), 2, True, True,
                                                                                       None), (d, h)
    # the rest were only sent the update after every canary had confirmed it
    last_canary = max(r.reports[d]["received"] for d in r.canaries)
    assert all(r.reports[d]["received"] > last_canary for d in r.rest)
    assert cli.main(["fleet", "status", "--broker", sim.url]) == 0
    out = capsys.readouterr().out
    assert all(f"{d}" in out for d in sim.devs) and out.count(_sha(blob)[:12]) == N
    assert cli.main(["fleet", "status", "--broker", sim.url, "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert sorted(js) == sorted(sim.devs) and all(h["sha"] == _sha(blob) and h["online"] for h in js.values())
    again = fleet.rollout(sim.url, blob, mf, canary=0.2, timeout=30, log=lambda s: None)   # idempotent
    assert again.ok and again.updated == sorted(sim.devs)
    assert all(m["last"] == [2, "confirmed"] and m["counter"] == 2 for m in again.reports.values())
    # bad commands get an error in the report (the agent keeps serving); the fleet-wide topic reaches all
    f = fleet.Fleet(sim.url)
    try:
        f.publish("edgeloop/dev0/cmd", b"\xffnot json", retain=False)
        f.command("dev1", {"op": "frobnicate", "id": "c1"})
        f.command("dev2", {"op": "update", "id": "c2", "manifest": "zz"})
        f.command("dev3", {"op": "update", "id": "c3", "manifest": updates["bad"][1].hex()})   # no chunk topic
        want = {"dev0": "bad command", "dev1": "unknown command 'frobnicate'", "dev2": "update: ",
                "dev3": "update: KeyError"}
        got = fleetsim.wait_for(lambda: all((f.health.get(d) or {}).get("error") for d in want) and
                                {d: f.health[d]["error"] for d in want}, 10)
        assert got and all(got[d].startswith(w) for d, w in want.items()), {d: f.health.get(d) for d in want}
        for d in want:
            f.clear_command(d)
        f.publish("edgeloop/all/cmd", b'{"op": "report", "id": "everyone"}', retain=False)
        assert fleetsim.wait_for(lambda: all((f.health.get(d) or {}).get("req") == "everyone" for d in sim.devs), 10)
        assert all(f.health[d]["error"] is None and f.health[d]["sha"] == _sha(blob) for d in sim.devs)
    finally:
        f.close()
    with capsys.disabled():
        print(f"\n[fleet] {N} devices, {len(blob)}-byte model: rollout {r.seconds:.2f} s "
              f"(canaries {r.phases['canary']:.2f} s, rest {r.phases['rest']:.2f} s)")


@pytest.mark.parametrize("bad", ["self-test fails", "bad signature"])
def test_bad_model_stops_at_the_canaries(sim_factory, updates, tmp_path, capsys, bad):
    sim = sim_factory()
    base_sha = _sha(updates["base"][0])
    blob, mf = updates["bad" if bad == "self-test fails" else "badsig"]
    (tmp_path / "m.elm").write_bytes(blob)
    (tmp_path / "m.mf").write_bytes(mf)
    rc = cli.main(["fleet", "rollout", str(tmp_path / "m.elm"), "--broker", sim.url, "--canary", "34%",
                   "--timeout", "30"])
    err = capsys.readouterr().err
    canaries = fleet.choose_canaries(sim.devs, 0.34)
    assert rc == 1 and len(canaries) == 3
    assert "halted" in err and all(d in err for d in canaries), err
    assert ("self-test failed" if bad == "self-test fails" else "wrong_key") in err
    st = sim.status()
    for d, dev in sim.devs.items():
        h = st[d]
        assert (h["sha"], h["version"], h["confirmed"]) == (base_sha, 1, True), (d, h)
        if d in canaries:
            assert h["req"] is not None             # answered the rollback
        else:
            assert h["req"] is None                 # never received a command
            assert mf not in dev.manifests()        # nor a byte of the update


def test_canary_that_took_the_update_is_rolled_back(sim_factory, updates, capsys):
    canaries = fleet.choose_canaries([f"dev{i}" for i in range(N)], 0.5)
    small = canaries[0]                              # its slots hold the 6 KB model, not the 100 KB one
    sim = sim_factory(slots={small: 64 * 1024})
    blob, mf = updates["big"]
    r = fleet.rollout(sim.url, blob, mf, canary=0.5, timeout=30, log=lambda s: None)
    assert not r.ok and r.halted and r.canaries == canaries
    assert list(r.failed) == [small] and "too_large" in r.failed[small]
    assert r.rolled_back == canaries and f"halted: canary device {small}" in r.message
    st = sim.status()
    base_sha = _sha(updates["base"][0])
    for d in canaries[1:]:                           # confirmed version 2, then rolled back to version 1
        assert (st[d]["sha"], st[d]["version"], st[d]["last"], st[d]["counter"], st[d]["self_test"]) == \
            (base_sha, 1, [2, "rolled back by command"], 2, True), st[d]
    for d in sim.devs:
        assert st[d]["sha"] == base_sha
        if d not in canaries:
            assert st[d]["req"] is None and mf not in sim.devs[d].manifests()
    with capsys.disabled():
        print(f"\n[fleet] halted at {small}: canary phase {r.phases['canary']:.2f} s, rollback of "
              f"{len(canaries)} canaries {r.phases['rollback']:.2f} s, total {r.seconds:.2f} s")


def test_silent_canary_times_out_and_halts(sim_factory, updates):
    sim = sim_factory()
    canaries = fleet.choose_canaries(sim.devs, 0.34)
    dead = canaries[1]
    sim.devs[dead].kill()                            # loses power before the rollout: its last will says offline
    blob, mf = updates["new"]
    t0 = time.monotonic()
    r = fleet.rollout(sim.url, blob, mf, devices=list(sim.devs), canary=0.34, timeout=3, log=lambda s: None)
    assert r.halted and list(r.failed) == [dead] and time.monotonic() - t0 < 3 + 3 + 5
    assert r.failed[dead] == "no answer within 3 s (last seen: offline)"
    assert r.rolled_back == [d for d in canaries if d != dead] and f"NOT rolled back: {dead}" in r.message
    st = sim.status()
    assert all(st[d]["sha"] == _sha(updates["base"][0]) for d in st)
    # the rollback stays retained for the silent canary: when it comes back, it is told to leave the model
    cmd = json.loads(_retained(sim.url, f"edgeloop/{dead}/cmd"))
    assert cmd["op"] == "rollback" and cmd["from"] == _sha(blob)
    sim.devs[dead].start()
    assert fleetsim.wait_for(lambda: (sim.status().get(dead) or {}).get("req") == cmd["id"], 15, 0.2)
    h = sim.status()[dead]
    assert (h["sha"], h["error"]) == (_sha(updates["base"][0]), None)


def _retained(url, topic):
    import paho.mqtt.client as mqtt

    got = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
    c.on_message = lambda c, u, m: got.append(m.payload)
    host, port = fleet.parse_broker(url)
    c.connect(host, port)
    c.loop_start()
    try:
        fleetsim.wait_for(lambda: got, 5)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0]


def test_broker_restart_and_device_reboot_during_rollout(sim_factory, updates, capsys):
    sim = sim_factory()
    blob, mf = updates["big"]
    canaries = fleet.choose_canaries(sim.devs, 0.2)
    victim = sorted(set(sim.devs) - set(canaries))[0]
    events = []

    def chaos():                       # as soon as the victim is downloading: it and the broker go down
        slot = sim.devs[victim].dir / "ota/s1.elm"
        fleetsim.wait_for(lambda: slot.exists() and slot.stat().st_size > 0, 20, 0.001)
        sim.broker.stop()
        sim.devs[victim].kill()
        events.append(("down", slot.stat().st_size))
        time.sleep(0.5)
        sim.broker.start()
        sim.devs[victim].start()
        events.append("up")

    th = []

    def log(s):
        if "canaries ok" in s:
            th.append(threading.Thread(target=chaos))
            th[0].start()

    r = fleet.rollout(sim.url, blob, mf, canary=0.2, timeout=40, log=log, chunk=1024)
    for t in th:
        t.join()
    assert [e if isinstance(e, str) else e[0] for e in events] == ["down", "up"]
    assert 0 < events[0][1] < len(blob)             # killed in the middle of its download
    assert r.ok, r.message
    st = sim.status()
    assert {d: (h["sha"], h["confirmed"]) for d, h in st.items()} == {d: (_sha(blob), True) for d in sim.devs}
    with capsys.disabled():
        print(f"\n[fleet] broker restarted and {victim} killed with {events[0][1]} of {len(blob)} bytes in its "
              f"slot: rollout completed in {r.seconds:.2f} s (canaries {r.phases['canary']:.2f} s, "
              f"rest {r.phases['rest']:.2f} s)")


def test_devices_that_reboot_into_the_update(sim_factory, updates):
    """Agents with reboot=: after `finish` the process ends (a reset) and a new one boots; the OTA state
    machine tries the pending model at boot, and the retained command delivered again only reports."""
    sim = sim_factory(reboot=True)
    base_sha = _sha(updates["base"][0])
    r = fleet.rollout(sim.url, *updates["bad"], canary=0.34, timeout=30, log=lambda s: None)
    assert r.halted and sorted(r.failed) == r.canaries and r.rolled_back == r.canaries
    assert all("reverted: version 3: self-test failed" in w for w in r.failed.values()), r.failed
    assert [sim.devs[d].boots for d in sorted(sim.devs)] == [2 if d in r.canaries else 1 for d in sorted(sim.devs)]
    assert {d: h["sha"] for d, h in sim.status().items()} == {d: base_sha for d in sim.devs}
    blob, mf = updates["new"]
    r = fleet.rollout(sim.url, blob, mf, canary=0.34, timeout=30, log=lambda s: None)
    assert r.ok, r.message
    assert all(sim.devs[d].boots == (3 if d in r.canaries else 2) for d in sim.devs)
    assert {d: (h["sha"], h["confirmed"], h["last"]) for d, h in sim.status().items()} == \
        {d: (_sha(blob), True, [2, "confirmed"]) for d in sim.devs}


_ROLLBACK = """\
import ota_check as C
from edgeloop import ota
rd = C.rd
U = lambda: ota.Updater('ota_rb', public_key=%(pub)r)
C.rmtree('ota_rb')
out = {}
C.install(U(), rd('u_base.elm'), rd('u_base.mf')); U().load()
out['only one model'] = C.outcome(lambda: U().rollback().version)
C.install(U(), rd('u_bad.elm'), rd('u_bad.mf')); U().load()            # v3 fails its self-test: reverted
out['after a reverted update'] = C.outcome(lambda: U().rollback().version)
C.install(U(), rd('u_new.elm'), rd('u_new.mf')); U().load()            # v2 confirmed
out['back to v1'] = C.outcome(lambda: U().rollback().version)
s = U().state()
out['state'] = (s.active_version, s.counter, s.last_version, ota.RESULTS[s.result], U().load().version)
out['again'] = C.outcome(lambda: U().rollback().version)               # v2 is newer: no roll-forward
out['reinstall v2'] = C.outcome(lambda: C.install(U(), rd('u_new.elm'), rd('u_new.mf')))
print(repr(out))
"""


def test_updater_rollback_rules(unix_target, keys, updates):
    t = unix_target
    t.put(f"{otagen.__file__.rsplit('/', 1)[0]}/device/ota_check.py", "ota_check.py")
    for name in ("base", "new", "bad"):
        t.put_bytes(updates[name][0], f"u_{name}.elm")
        t.put_bytes(updates[name][1], f"u_{name}.mf")
    out = ast.literal_eval(t.exec(_ROLLBACK % {"pub": keys.pub}, timeout=120).strip())
    assert out["only one model"][0] == "no_model"
    assert out["after a reverted update"][0] == "no_model"     # slot holds v3, never confirmed
    assert out["back to v1"] == ("ok", 1)
    assert out["state"] == (1, 2, 2, "rolled back by command", 1)   # the security counter stays at 2
    assert out["again"][0] == "no_model"
    assert out["reinstall v2"][0] == "downgrade"                # a fixed model needs a new version


def test_cli_bad_input(tmp_path, updates, capsys):
    blob, mf = updates["new"]
    (tmp_path / "m.elm").write_bytes(blob)
    (tmp_path / "m.mf").write_bytes(mf)
    (tmp_path / "other.mf").write_bytes(updates["base"][1])
    b = broker.Mosquitto(tmp_path / "broker").start()
    try:
        cases = {
            "canary 0%": (["--canary", "0%"], "above 0%"),
            "canary abc": (["--canary", "abc"], "fraction"),
            "canary 150%": (["--canary", "150%"], "at most 100%"),
            "manifest of another blob": (["--manifest", str(tmp_path / "other.mf")], "does not describe this blob"),
            "no manifest": (["--manifest", str(tmp_path / "none.mf")], "No such file"),
            "reserved device id": (["--devices", "dev1,all"], "device ids"),
            "no devices on the broker": ([], "no devices found"),
            "broker down": (["--broker", f"mqtt://127.0.0.1:{broker.free_port()}"], "cannot connect"),
            "not an mqtt url": (["--broker", "http://127.0.0.1:1"], "mqtt://HOST:PORT"),
        }
        for name, (extra, want) in cases.items():
            argv = ["fleet", "rollout", str(tmp_path / "m.elm"), "--broker", b.url, "--timeout", "5"] + extra
            assert cli.main(argv) == 1, name
            err = capsys.readouterr().err
            assert err.startswith("edgeloop: error:") and want in err, (name, err)
        assert cli.main(["fleet", "status", "--broker", b.url]) == 1
        assert "no device has a health report" in capsys.readouterr().err
    finally:
        b.stop()
