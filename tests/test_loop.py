"""Issue 7, closing the loop: `edgeloop demo loop` in a small configuration on real parts (Mosquitto on
loopback, MicroPython unix-port device processes running device/edgeloop, the Parquet collector, retrain with
the teacher, OTA over HTTP with self-test and confirm), and `edgeloop retrain`'s bad-input errors."""
from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest

from edgeloop_host import cli
from edgeloop_host.demo_loop import TEACHER, V1_ELM

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _record(x: bytes, y: bytes = bytes(10), reason: bytes = b"drift") -> bytes:
    # the flash-log record of edgeloop.select.Sample.pack() (decoded by edgeloop_host.logs.decode_sample)
    return (b"S" + struct.pack("<IB", 1234, len(reason)) + reason + struct.pack("<H", len(x)) + x
            + struct.pack("<H", len(y)) + y)


@pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto not installed")
def test_demo_loop_recovers_accuracy_and_v2_is_bit_exact(tmp_path, capsys):
    from edgeloop_host.demo_loop import main

    r = main(devices=2, stream=240, epochs=40, out=tmp_path / "loop", quiet=True, plot=False)
    with capsys.disabled():
        m = r["mean"]
        print(f"\n[demo loop, 2 devices x 240 images] v1 original {m['v1_original']:.4f}, v1 shifted "
              f"{m['v1_shifted']:.4f}, v2 shifted {m['v2_shifted']:.4f}, v2 original {m['v2_original']:.4f}; "
              f"recovered {r['recovered']:.0%}; {r['records_stored']} records; {r['seconds']:.0f}s")
    # the shift really hurts v1, and the loop wins at least half of it back
    assert m["v1_original"] - m["v1_shifted"] > 0.3
    assert r["recovered"] >= 0.5
    # every device output of v1 and v2 is bit-exact with tflite-micro; retrain's own held-out check too
    assert r["retrain"]["bit_exact"] and r["v2_bit_exact"]
    assert all(d["v1_bit_exact"] and d["v2_bit_exact"] for d in r["devices"])
    # every device confirmed v2 through the OTA path (self-test at boot), every acknowledged record stored
    assert all(d["v2_state"]["active_version"] == 2 and d["v2_state"]["counter"] == 2 for d in r["devices"])
    assert r["rollout"]["ok"] and sorted(r["rollout"]["updated"]) == ["dev0", "dev1"]
    assert r["records_stored"] == r["records_logged"] == r["retrain"]["collected"] > 0
    assert r["records_sent"] >= r["records_logged"] + 2           # + one summary record per device
    # the summaries reached the collector: 240 images each; the drift test fired on dev1 (1 px right)
    assert [d["summary"]["n"] for d in r["devices"]] == [240, 240] and r["devices"][1]["summary"]["drifting"]
    assert (tmp_path / "loop/v2/digits_v2.mf").stat().st_size == 144


@pytest.fixture(scope="module")
def orig_npz(tmp_path_factory):
    from edgeloop_host import zoo

    d = tmp_path_factory.mktemp("orig")
    x_tr, y_tr, x_te, y_te = zoo.recipe("digits_mlp").load_data()
    np.savez(d / "digits.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return d / "digits.npz"


def _logs(tmp_path, xs) -> str:
    from edgeloop_host.logs import write_dataset

    d = tmp_path / "collected"
    write_dataset([(i + 1, _record(bytes(x))) for i, x in enumerate(xs)], d)
    return str(d)


def _retrain(tmp_path, collected, data, teacher=str(TEACHER), extra=()):
    return cli.main(["retrain", "--collected", str(collected), "--model", str(V1_ELM), "--teacher", str(teacher),
                     "--data", str(data), "-o", str(tmp_path / "v2.elm"), *extra])


def test_retrain_bad_inputs(tmp_path, orig_npz, capsys):
    def err(rc):
        assert rc == 1
        return capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no records to learn from" in err(_retrain(tmp_path, empty, orig_npz))
    assert "no such file" in err(_retrain(tmp_path, tmp_path / "nothere", orig_npz))
    # records that are not samples (e.g. summaries) only
    from edgeloop_host.logs import write_dataset

    write_dataset([(1, b"Xsummary"), (2, b"Xsummary")], tmp_path / "summaries")
    assert "2 records but no samples" in err(_retrain(tmp_path, tmp_path / "summaries", orig_npz))
    # samples of another model (32-byte inputs) for a 64-input model
    col = _logs(tmp_path, [np.zeros(32, np.int8)] * 3)
    assert "has 32 input bytes but the model takes 64" in err(_retrain(tmp_path, col, orig_npz))
    shutil.rmtree(col)
    good = _logs(tmp_path, [np.full(64, -100, np.int8)] * 5)
    assert "teacher .keras model" in err(_retrain(tmp_path, good, orig_npz, teacher=tmp_path / "t.keras"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((20, 10), np.float32), y_train=np.zeros(20, np.int64))
    assert "samples have shape (10,)" in err(_retrain(tmp_path, good, bad))
    assert "--student-arch 'lstm'" in err(_retrain(tmp_path, good, orig_npz, extra=["--student-arch", "lstm"]))
    for w in ("x", "-1", "nan"):
        assert "--collected-weight" in err(_retrain(tmp_path, good, orig_npz, extra=["--collected-weight", w]))
    # a teacher whose input does not match the data
    from edgeloop_host.pipeline import build_classifier

    t = build_classifier((10,), 10, "mlp", (8,))
    t.save(tmp_path / "t10.keras")
    assert "the teacher takes (10,)" in err(_retrain(tmp_path, good, orig_npz, teacher=tmp_path / "t10.keras"))
    assert not (tmp_path / "v2.elm").exists()


def test_retrain_cli_logs_pull_input_signed(tmp_path, orig_npz, capsys):
    """The CLI on `edgeloop logs pull` .npz input: v1 + 1, same model id, signed, bit-exact (checked inside)."""
    from edgeloop_host import blob, zoo
    from edgeloop_host.demo_loop import translate
    from edgeloop_host.ota import manifest as M
    from edgeloop_host.train import quantize_input

    g1 = blob.decode(V1_ELM.read_bytes())
    x_tr = zoo.recipe("digits_mlp").load_data()[0]
    xq = quantize_input(translate(x_tr[:40], 1, 0), g1.input().scale, g1.input().zero_point)
    col = _logs(tmp_path, list(xq))
    priv, pub = M.generate_keys(tmp_path / "k")
    assert _retrain(tmp_path, col, orig_npz, extra=["--epochs", "2", "--key", str(priv)]) == 0
    out = capsys.readouterr()
    assert "40 collected samples" in out.err and "bit-exact with tflite-micro" in out.out
    elm = (tmp_path / "v2.elm").read_bytes()
    m = M.parse_manifest((tmp_path / "v2.mf").read_bytes())
    assert m.verify(M.load_public_key(pub)) and m.size == len(elm) and m.version == 2 and m.model_id == 1
    assert struct.unpack_from("<II", elm, 20) == (1, 2)
    assert blob.decode(elm).meta["retrain"]["collected"] == 40
