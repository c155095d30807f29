"""`edgeloop demo`: Keras -> int8 TFLite -> .elm -> the unix port and an emulated microcontroller,
every int8 output checked against TensorFlow Lite Micro."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

OUT_DIR = Path("out/demo")


class _Steps:
    def __init__(self, total: int):
        self.total, self.n, self.t0 = total, 0, time.time()

    def __call__(self, what: str):
        self.n += 1
        print(f"[{self.n}/{self.total}] {what} (t={time.time() - self.t0:.0f}s)", file=sys.stderr, flush=True)


def main(epochs: int = 60, board: str = "qemu-arm", seed: int = 0) -> int:
    from . import blob, oracle, reference, zoo
    from . import train as T
    from .convert import convert
    from .run import run_on_target

    step = _Steps(7)
    rec = zoo.recipe("digits_mlp")
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    step(f"training the digits MLP (64-32-10, {epochs} epochs) on scikit-learn's digits with TensorFlow")
    x_tr, y_tr, x_te, y_te = rec.load_data()
    model = rec.train(epochs=epochs, seed=seed)
    acc_float = rec.float_accuracy(model, x_te, y_te)

    step("full-integer post-training quantization with the TFLite converter")
    tfl = T.quantize_keras(model, x_tr, per_channel=True)
    (OUT_DIR / "digits_mlp.tflite").write_bytes(tfl)

    step("converting to an .elm blob")
    elm = convert(tfl, OUT_DIR / "digits_mlp.elm", model_id=1, model_version=1, meta={"labels": rec.LABELS})
    graph = blob.decode(elm)
    xq = T.quantize_input(x_te, graph.input().scale, graph.input().zero_point)
    np.save(OUT_DIR / "test_inputs.npy", xq)

    step(f"TensorFlow Lite Micro (the oracle) on {len(xq)} test samples")
    y_tflm = oracle.tflm_run(tfl, xq)

    rows = [("float (Keras)", "", acc_float, None)]

    def add(name, where, y):
        rows.append((name, where, float(np.mean(np.argmax(y.reshape(len(y), -1), axis=1) == y_te)),
                     bool(np.array_equal(y, y_tflm))))

    add("int8 TFLM", "tflite-micro on CPython", y_tflm)
    rows[-1] = rows[-1][:3] + (None,)
    step("host numpy reference")
    add("int8 edgeloop", "host numpy reference", reference.run(graph, xq))
    step("MicroPython unix port with the _edgeloop C module")
    y, used = run_on_target(elm, xq, "unix")
    add("int8 edgeloop", f"MicroPython unix port ({used})", y)
    step(f"emulated Cortex-M3 board ({board}), model deployed with mpremote")
    y, used = run_on_target(elm, xq, board)
    add("int8 edgeloop", f"{board}: qemu mps2-an385 ({used})", y)

    print()
    print(f"digits MLP, {len(y_te)} test samples, blob {len(elm)} bytes (.tflite {len(tfl)} bytes), "
          f"arena {graph.arena_size} bytes")
    print(f"{'model':<16}{'runs on':<44}{'accuracy':>9}  {'identical to TFLM':>17}")
    for name, where, acc, same in rows:
        verdict = "" if same is None else ("yes, all outputs" if same else "NO")
        print(f"{name:<16}{where:<44}{acc:>9.4f}  {verdict:>17}")
    all_same = all(same for *_, same in rows if same is not None)
    print()
    print("every int8 output identical to TensorFlow Lite Micro: " + ("YES" if all_same else "NO"))
    print(f"artifacts in {OUT_DIR}/")
    return 0 if all_same else 1
