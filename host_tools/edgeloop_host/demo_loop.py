"""`edgeloop demo loop` (issue 7): the learning loop closed end to end on real parts, in one command.

    edgeloop demo loop [--devices 4] [--stream 400] [--epochs 40] [--out out/demo_loop]

1. A Mosquitto broker on a free loopback port (started here), a collector (`edgeloop collect`'s Collector,
   MQTT 5 shared subscription -> Parquet).
2. Devices: MicroPython unix-port processes (our firmware with the `_edgeloop` C module) running the real
   runtime from device/edgeloop. Each is provisioned like `edgeloop deploy` does it: the digits_mlp v1 blob
   with a manifest signed by a fresh demo key, and the public key; its first boot installs v1 through the
   verified OTA path (`ota.Updater.load()`).
3. THE SHIFT: each device's camera slipped by one pixel: device i sees every 8x8 image translated by
   SHIFTS[i % len(SHIFTS)] (rows down, columns right; zeros shifted in). The v1 MLP, trained on centred
   digits, loses about half its accuracy; the teacher (models/digits_teacher: a CNN trained with translation
   and contrast augmentation) still labels 97-99% of such images correctly.
4. Each device evaluates its held-out set (the digits test split, shifted its way, and unshifted), then runs
   a stream of shifted images from the training split (no labels), with a summary record at the end (class
   counts, top-1 logit histogram, drift statistic: edgeloop.summary); selection = Reservoir(AnyOf(SmallMargin,
   Drift(CUSUM against the blob's train_stats))) - SmallMargin is the low-confidence test here, because
   digits_mlp outputs logits, not probabilities - selected samples go to the flash log (edgeloop.flashlog)
   and are published over MQTT QoS 1 (edgeloop.uplink_mqtt + umqtt.simple), freed once a collector
   acknowledges them as stored.
5. `retrain` (edgeloop_host.retrain): teacher labels, re-distillation of a 64-32-10 student on the original
   plus the collected data, full int8, .elm v2, bit-exact check against tflite-micro, signed manifest. Each
   collected sample weighs 3 original ones (a few hundred collected images against 1347 originals; measured
   on 2 devices x 240 images: weight 1 recovers 48% of the lost accuracy, 3 recovers 72% and keeps the
   original test accuracy at 0.96, "balanced" 70% but original 0.94).
6. Rollout with `edgeloop fleet rollout` (edgeloop_host.fleet, canaries first) to the devices' fleet agents
   (edgeloop.fleet_agent over MQTT: verify signature/size/SHA-256/format, self-test, confirm).
7. Each device evaluates its held-out set again; every output is compared with tflite-micro's.
   Printed: accuracy before / after per device, the share of the lost accuracy recovered; a PNG plot.
"""
from __future__ import annotations

import binascii
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .broker import BrokerError, Mosquitto

REPO = Path(__file__).resolve().parents[2]
V1_ELM = REPO / "models/digits_mlp/digits_mlp.elm"
TEACHER = REPO / "models/digits_teacher/digits_teacher.keras"
UMQTT = REPO / "tests/device/umqtt/simple.py"   # micropython-umqtt.simple 1.3.4, vendored (see test_mqtt.py)
OUT_DIR = Path("out/demo_loop")
# (rows down, columns right) per device: one-pixel translations the teacher labels at 96.7-98.9% (models/digits_teacher/results.json)
SHIFTS = [(1, 0), (0, 1), (1, -1), (-1, -1), (0, -1), (-1, 0)]
UPDATE_NAME = "digits_v2"


class LoopError(RuntimeError):
    pass


class _Steps:
    def __init__(self, total: int, quiet: bool = False):
        self.total, self.n, self.t0, self.quiet = total, 0, time.time(), quiet

    def __call__(self, what: str):
        self.n += 1
        if not self.quiet:
            print(f"[{self.n}/{self.total}] {what} (t={time.time() - self.t0:.0f}s)", file=sys.stderr, flush=True)


def shift_name(s) -> str:
    dy, dx = s
    parts = ([f"{abs(dy)} px {'down' if dy > 0 else 'up'}"] if dy else []) + \
            ([f"{abs(dx)} px {'right' if dx > 0 else 'left'}"] if dx else [])
    return ", ".join(parts) or "none"


def translate(x, dy: int, dx: int):
    """(N, 64) 8x8 images moved dy rows down, dx columns right; zeros shifted in."""
    im = np.asarray(x, np.float32).reshape(-1, 8, 8)
    out = np.zeros_like(im)
    out[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
        im[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)]
    return out.reshape(len(im), 64)


# ---------------------------------------------------------------------------------------------
# Real parts: broker, device processes


# Device programs (MicroPython). Placeholders: %(dev)r, %(port)d, ...
_DEV_EVAL = """\
import binascii, json
from edgeloop import ota
u = ota.Updater('ota')
before = u.state().as_dict()
m = u.load()                  # first boot: installs the factory model; after an update: self-test + confirm
after = u.state().as_dict()
out = bytearray(m.output_size)
res = []
for name in ('eval_shifted.bin', 'eval_original.bin'):
    ys = bytearray()
    with open(name, 'rb') as f:
        x = bytearray(m.input_size)
        while f.readinto(x) == m.input_size:
            m.predict(x, out)
            ys += out
    res.append(binascii.hexlify(ys).decode())
print('EL-EVAL', json.dumps({'version': m.version, 'backend': m.backend, 'before': before, 'after': after,
                             'shifted': res[0], 'original': res[1]}))
"""

_DEV_RUN = """\
import json
from edgeloop import ota, flashlog, select as S, summary, uplink_mqtt as U
from umqtt.simple import MQTTClient
DEV, PORT = %(dev)r, %(port)d
m = ota.Updater('ota').load()
log = flashlog.FlashLog('log')
drift = S.Drift(m.meta)
sel = S.Reservoir(S.AnyOf(S.SmallMargin(%(margin)r), drift), %(k)d, %(window)d, seed=%(seed)d)
sm = summary.Summary(m, drift=drift, period_ms=3600000, lo=-10.0, hi=30.0)   # top-1 logit histogram
reasons, n, first_drift = {}, 0, None
x, y = bytearray(m.input_size), bytearray(m.output_size)

def keep(samples):
    for s in samples:
        log.append(s.pack())
        reasons[s.reason] = reasons.get(s.reason, 0) + 1

with open('stream.bin', 'rb') as f:
    while f.readinto(x) == m.input_size:
        m.predict(x, y)
        s = S.Sample(bytes(x), y, m)
        keep(sel.offer(s))
        sm.add_sample(s)
        n += 1
        if first_drift is None and drift.drifting:
            first_drift = n
keep(sel.flush())
sm.tick(log, force=True)      # what the model saw, whether selected or not
log.sync()
sent = U.run(log, lambda: MQTTClient(DEV, '127.0.0.1', PORT), DEV, retry_ms=100, attempts=100)
st = log.stats()
print('EL-RUN', json.dumps({'seen': n, 'selected': reasons, 'sent': sent, 'log_bytes_left': st['bytes'],
                            'acked': st['acked'], 'drift_after': first_drift, 'drift_stat': drift.value}))
"""

_DEV_AGENT = """\
import json, time
from edgeloop import ota, fleet_agent
from umqtt.simple import MQTTClient
DEV, PORT, WANT = %(dev)r, %(port)d, %(version)d
t0 = time.ticks_ms()
a = fleet_agent.Agent(DEV, lambda: MQTTClient(DEV, '127.0.0.1', PORT, keepalive=10), ota.Updater('ota'),
                      retry_ms=100)

def done():   # serve commands until the new version runs confirmed (its report is out), or time is up
    if time.ticks_diff(time.ticks_ms(), t0) > %(ms)d:
        return True
    return (a.model is not None and a.model.version == WANT and a.phase == 'running'
            and a.u.state().pending == ota.NONE)

a.run(until=done)
a.close()
print('EL-AGENT', json.dumps(a.health()))
"""


class Device:
    """One simulated device: a directory (its flash) and MicroPython unix-port processes run in it."""

    def __init__(self, root: Path, name: str, shift, fw: Path, lib: Path):
        self.name, self.shift, self.fw, self.lib = name, shift, fw, lib
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)

    def provision(self, elm: bytes, manifest: bytes, pubkey_raw: bytes) -> None:
        """What `edgeloop deploy` puts on a board: model, signed manifest, the fleet's public key."""
        (self.dir / "model.elm").write_bytes(elm)
        (self.dir / "model.mf").write_bytes(manifest)
        (self.dir / "ota").mkdir(exist_ok=True)
        (self.dir / "ota/trust.pub").write_bytes(pubkey_raw)

    def start(self, code: str) -> subprocess.Popen:
        env = dict(os.environ, MICROPYPATH=f".frozen:{self.lib}")
        return subprocess.Popen([str(self.fw), "-X", "heapsize=4M", "-c", code], cwd=self.dir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(dev: Device, p: subprocess.Popen, tag: str, timeout: float = 300) -> dict:
    try:
        so, se = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        so, se = p.communicate()
        raise LoopError(f"{dev.name}: no answer within {timeout:.0f}s") from None
    for line in so.splitlines():
        if line.startswith(tag + " "):
            return json.loads(line[len(tag) + 1:])
    raise LoopError(f"{dev.name}: the device program failed (exit {p.returncode}): "
                    f"{(se.strip().splitlines() or ['no output'])[-1]}")


def _run_all(devs, make_code, tag: str) -> list[dict]:
    procs = [(d, d.start(make_code(d))) for d in devs]
    return [_finish(d, p, tag) for d, p in procs]


def _write_int8(path: Path, x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    from .train import quantize_input

    q = quantize_input(x, scale, zp)
    path.write_bytes(q.tobytes())
    return q


# ---------------------------------------------------------------------------------------------
# Rollout: `edgeloop fleet rollout` (edgeloop_host.fleet.rollout): the blob goes to the broker as retained
# chunks, a canary group first; each device runs the fleet agent (device/edgeloop/fleet_agent.py), which
# downloads over the same MQTT connection, verifies (Updater: signature, size, SHA-256, format), loads the new
# model with its self-test and confirms it (or reverts), and reports its health; only when every canary
# reports v2 confirmed do the others get it.

def rollout(devs, broker_port: int, elm: bytes, manifest: bytes, pubkey: bytes, version: int,
            canary: float = 0.5, timeout: float = 120, log=None) -> tuple[dict, list[dict]]:
    from . import fleet

    procs = [(d, d.start(_DEV_AGENT % {"dev": d.name, "port": broker_port, "version": version,
                                       "ms": int(timeout * 1000)})) for d in devs]
    try:
        r = fleet.rollout(f"mqtt://127.0.0.1:{broker_port}", elm, manifest, devices=[d.name for d in devs],
                          canary=canary, timeout=timeout, log=log or (lambda m: None), pubkey=pubkey)
        if not r.ok:
            raise LoopError(f"rollout failed: {r.message}")
    except Exception:
        for _, p in procs:   # agents that will not get (or confirm) the update: stop them now
            p.kill()
            p.wait()
        raise
    reports = [_finish(d, p, "EL-AGENT", timeout + 30) for d, p in procs]
    res = {"ok": r.ok, "message": r.message, "canaries": r.canaries, "rest": r.rest, "updated": r.updated,
           "failed": r.failed, "seconds": round(r.seconds, 1), "phases": {k: round(v, 1) for k, v in r.phases.items()}}
    return res, reports


# ---------------------------------------------------------------------------------------------


def _accuracy(hexes: str, n_out: int, labels: np.ndarray) -> tuple[float, np.ndarray]:
    y = np.frombuffer(binascii.unhexlify(hexes), np.int8).reshape(-1, n_out)
    if len(y) != len(labels):
        raise LoopError(f"device returned {len(y)} outputs for {len(labels)} samples")
    return float(np.mean(np.argmax(y, axis=1) == labels)), y


def main(devices: int = 4, stream: int = 400, epochs: int = 40, out: str | os.PathLike = OUT_DIR, seed: int = 0,
         margin: float = 3.0, keep: int = 60, window: int = 100, collected_weight: str = "3", quiet: bool = False,
         plot: bool = True) -> dict:
    """Runs the loop; returns the figures (also written to OUT/results.json)."""
    from . import blob, oracle, zoo
    from .collect import Collector, read_dataset
    from .ota.manifest import generate_keys, load_private_key, load_public_key, sign_blob
    from .retrain import retrain
    from .toolchain import firmware_path

    if devices < 1 or stream < 10:
        raise LoopError("need at least 1 device and a stream of at least 10 images")
    if not TEACHER.exists():
        raise LoopError(f"{TEACHER} is missing: `PYTHONPATH=host_tools python models/digits_teacher/teacher.py`")
    say = _Steps(7, quiet)
    t_start = time.time()
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    say("firmware (MicroPython unix port + _edgeloop C module), runtime, demo key, data")
    fw = firmware_path("unix")
    lib = out / "lib"
    shutil.copytree(REPO / "device/edgeloop", lib / "edgeloop", ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "umqtt").mkdir()
    shutil.copyfile(UMQTT, lib / "umqtt/simple.py")
    priv, pub = generate_keys(out / "fleet")
    key = load_private_key(priv)
    v1 = V1_ELM.read_bytes()
    g1 = blob.decode(v1)
    s_in, z_in = g1.input().scale, g1.input().zero_point
    n_out = int(np.prod(g1.output().shape))
    rec = zoo.recipe("digits_mlp")
    x_tr, y_tr, x_te, y_te = rec.load_data()
    np.savez(out / "digits.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
             labels=np.array(rec.LABELS))
    rng = np.random.default_rng(seed)
    devs = []
    for i in range(devices):
        d = Device(out / "devices", f"dev{i}", SHIFTS[i % len(SHIFTS)], fw, lib)
        d.provision(v1, sign_blob(v1, key), load_public_key(pub))
        idx = rng.choice(len(x_tr), min(stream, len(x_tr)), replace=False)
        _write_int8(d.dir / "stream.bin", translate(x_tr[idx], *d.shift), s_in, z_in)
        d.eval_shifted = translate(x_te, *d.shift)
        devs.append(d)

    def evaluate(model_tflite: bytes, version: int) -> list[dict]:
        for d in devs:   # the held-out set in the deployed model's input quantization
            gq = blob.decode((d.dir / "model.elm").read_bytes()) if version == 1 else g2
            d.q_shift = _write_int8(d.dir / "eval_shifted.bin", d.eval_shifted, gq.input().scale,
                                    gq.input().zero_point)
            d.q_orig = _write_int8(d.dir / "eval_original.bin", x_te, gq.input().scale, gq.input().zero_point)
        res = _run_all(devs, lambda d: _DEV_EVAL, "EL-EVAL")
        rows = []
        for d, r in zip(devs, res):
            if r["version"] != version:
                raise LoopError(f"{d.name} runs version {r['version']}, expected {version} (state {r['after']})")
            a_s, y_s = _accuracy(r["shifted"], n_out, y_te)
            a_o, y_o = _accuracy(r["original"], n_out, y_te)
            exact = (np.array_equal(y_s, oracle.tflm_run(model_tflite, d.q_shift).reshape(y_s.shape))
                     and np.array_equal(y_o, oracle.tflm_run(model_tflite, d.q_orig).reshape(y_o.shape)))
            rows.append({"device": d.name, "shift": shift_name(d.shift), "version": r["version"],
                         "backend": r["backend"], "shifted": a_s, "original": a_o, "bit_exact_tflm": bool(exact),
                         "state": r["after"]})
        return rows

    broker = Mosquitto(out / "broker", persistence=False)
    collector = None
    try:
        say(f"Mosquitto on 127.0.0.1:{broker.port}, collector; {devices} devices boot v1 and evaluate their "
            f"shifted held-out images")
        broker.start()
        port = broker.port
        collector = Collector(f"mqtt://127.0.0.1:{port}", out / "collected", flush_every=100,
                              client_id=f"demo-collector-{os.getpid()}").start()
        v1_tfl = (REPO / "models/digits_mlp/digits_mlp.tflite").read_bytes()
        before = evaluate(v1_tfl, 1)

        say(f"devices run {stream} shifted images each, select (small margin / drift, reservoir {keep} of "
            f"{window}), log to flash, publish over MQTT QoS 1")
        runs = _run_all(devs, lambda d: _DEV_RUN % {"dev": d.name, "port": port, "margin": margin, "k": keep,
                                                    "window": window, "seed": seed + int(d.name[3:])}, "EL-RUN")
        sent = sum(r["sent"] for r in runs)                     # publications, re-sends included
        logged = sum(sum(r["selected"].values()) for r in runs)  # distinct samples (+ 1 summary each)
        # the uplink returns once a collector acknowledged every record as stored (fsync'ed Parquet)
        collector.stop()
        collector = None
        rows = read_dataset(out / "collected").num_rows
        sums = read_dataset(out / "collected", kind="summary")
        if rows != logged or sums.num_rows != devices or any(r["log_bytes_left"] for r in runs):
            raise LoopError(f"the data set holds {rows} of the {logged} samples and {sums.num_rows} of the "
                            f"{devices} summaries the devices logged (flash log bytes left: "
                            f"{[r['log_bytes_left'] for r in runs]})")
        summaries = {d: {"n": n, "drift": round(float(v), 1), "drifting": bool(f), "counts": c}
                     for d, n, v, f, c in zip(*(sums.column(k).to_pylist()
                                                for k in ("device", "n", "drift", "drifting", "counts")))}

        say(f"collected {rows} records; retrain: teacher labels, re-distill, int8, check vs tflite-micro, sign")
        v2_dir = out / "v2"
        v2_dir.mkdir()
        summary = retrain(out / "collected", TEACHER, out / "digits.npz", V1_ELM, student_arch="mlp:32",
                          out=v2_dir / f"{UPDATE_NAME}.elm", key=priv, epochs=epochs, seed=seed,
                          collected_weight=collected_weight, progress=not quiet)
        v2_tfl = (v2_dir / f"{UPDATE_NAME}.tflite").read_bytes()
        g2 = blob.decode((v2_dir / f"{UPDATE_NAME}.elm").read_bytes())

        say(f"fleet rollout of v{summary['version']} over MQTT, canaries first (verify, self-test, confirm)")
        ro, agents = rollout(devs, port, (v2_dir / f"{UPDATE_NAME}.elm").read_bytes(),
                             (v2_dir / f"{UPDATE_NAME}.mf").read_bytes(), load_public_key(pub),
                             summary["version"], log=None if quiet else (lambda m: print("  " + m, file=sys.stderr)))
    finally:
        if collector is not None:
            collector.stop()
        broker.stop()

    say("devices boot v2 and evaluate their shifted held-out images again")
    after = evaluate(v2_tfl, summary["version"])

    say("results")
    per_dev = []
    for d, b, a, r in zip(devs, before, after, runs):
        lost = b["original"] - b["shifted"]
        per_dev.append({"device": d.name, "shift": b["shift"], "v1_original": b["original"],
                        "v1_shifted": b["shifted"], "v2_shifted": a["shifted"], "v2_original": a["original"],
                        "recovered": (a["shifted"] - b["shifted"]) / lost if lost > 0 else None,
                        "selected": r["selected"], "sent": r["sent"], "drift_after": r["drift_after"],
                        "summary": summaries.get(d.name),
                        "v1_bit_exact": b["bit_exact_tflm"], "v2_bit_exact": a["bit_exact_tflm"],
                        "v2_state": a["state"], "backend": a["backend"]})
    mean = {k: float(np.mean([p[k] for p in per_dev])) for k in ("v1_original", "v1_shifted", "v2_shifted",
                                                                 "v2_original")}
    lost = mean["v1_original"] - mean["v1_shifted"]
    recovered = (mean["v2_shifted"] - mean["v1_shifted"]) / lost if lost > 0 else float("nan")
    res = {"devices": per_dev, "mean": mean, "recovered": recovered, "records_logged": logged, "records_sent": sent,
           "records_stored": rows,
           "retrain": summary, "rollout": ro, "agents": agents, "v2_version": summary["version"],
           "v2_bit_exact": all(p["v2_bit_exact"] for p in per_dev) and summary["bit_exact"],
           "seconds": round(time.time() - t_start, 1)}
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    if plot:
        res["plot"] = str(_plot(per_dev, out / "accuracy.png"))
    if not quiet:
        _print(res)
    return res


def _print(res: dict) -> None:
    print()
    print(f"digits_mlp v1 -> v{res['v2_version']}: {len(res['devices'])} devices (MicroPython unix port, "
          f"{res['devices'][0]['backend']} kernels), accuracy on each device's held-out images (450, digits test split)")
    print(f"{'device':<7}{'camera shift':<22}{'v1 orig':>8}{'v1 shift':>9}{'v2 shift':>9}{'v2 orig':>8}"
          f"{'recovered':>10}{'logged':>7}  selected")
    for p in res["devices"]:
        rec = f"{p['recovered']:.0%}" if p["recovered"] is not None else "-"
        sel = ", ".join(f"{k} {v}" for k, v in sorted(p["selected"].items()))
        print(f"{p['device']:<7}{p['shift']:<22}{p['v1_original']:>8.4f}{p['v1_shifted']:>9.4f}"
              f"{p['v2_shifted']:>9.4f}{p['v2_original']:>8.4f}{rec:>10}{sum(p['selected'].values()):>7}  {sel}")
    m = res["mean"]
    print(f"{'mean':<29}{m['v1_original']:>8.4f}{m['v1_shifted']:>9.4f}{m['v2_shifted']:>9.4f}"
          f"{m['v2_original']:>8.4f}{res['recovered']:>10.0%}{res['records_logged']:>7}")
    print()
    print(f"accuracy lost to the shift {m['v1_original'] - m['v1_shifted']:.4f}, recovered after one iteration "
          f"{m['v2_shifted'] - m['v1_shifted']:.4f} = {res['recovered']:.0%} (goal >= 50%): "
          + ("MET" if res["recovered"] >= 0.5 else "NOT MET"))
    print("device summaries (collected, kind=summary): " + "; ".join(
        f"{p['device']} {p['summary']['n']} images, CUSUM {p['summary']['drift']}"
        + (" DRIFTING" if p['summary']['drifting'] else "") for p in res["devices"] if p.get("summary")))
    print(f"records: {res['records_logged']} samples + {len(res['devices'])} summaries logged on the devices, "
          f"{res['records_sent']} published (with re-sends), "
          f"{res['records_stored']} samples in the Parquet data set, all acknowledged and freed on the devices; "
          f"v{res['v2_version']} confirmed on every device: "
          + ("yes" if all(p["v2_state"]["active_version"] == res["v2_version"] for p in res["devices"]) else "NO"))
    print("every device output (v1 and v2) identical to tflite-micro: "
          + ("YES" if res["v2_bit_exact"] and all(p["v1_bit_exact"] for p in res["devices"]) else "NO"))
    print(f"plot: {res.get('plot', '-')}; total {res['seconds']:.0f}s")


def _plot(per_dev, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(per_dev)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * n, 3.6))
    keys = [("v1_original", "v1, original", "#9e9e9e"), ("v1_shifted", "v1, shifted", "#d62728"),
            ("v2_shifted", "v2, shifted", "#2ca02c"), ("v2_original", "v2, original", "#1f77b4")]
    w = 0.2
    for j, (k, label, c) in enumerate(keys):
        ax.bar(np.arange(n) + (j - 1.5) * w, [p[k] for p in per_dev], w, label=label, color=c)
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels([f"{p['device']}\n{p['shift']}" for p in per_dev], fontsize=8)
    ax.set_ylim(0, 1.22)
    ax.set_ylabel("accuracy on held-out images")
    ax.set_title("edgeloop demo loop: per-device accuracy before (v1) and after (v2) one iteration", fontsize=9)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cmd_demo_loop(args) -> int:
    from .cli import UserError

    try:
        res = main(devices=args.devices, stream=args.stream, epochs=args.epochs, out=args.out, seed=args.seed)
    except (LoopError, BrokerError) as e:
        raise UserError(str(e)) from None
    return 0 if res["recovered"] >= 0.5 and res["v2_bit_exact"] else 1
