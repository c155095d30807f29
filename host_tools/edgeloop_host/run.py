"""Run a blob on a target: the host reference, or real MicroPython (unix port, stock wheel, emulated board)."""
from __future__ import annotations

import numpy as np

from . import blob, reference

TARGETS = ("host", "unix", "stock", "qemu-arm", "qemu-rv32", "qemu-m0")
BACKENDS = ("auto", "c", "viper", "python")


class DeviceError(RuntimeError):
    """The device code raised; `reason` is the exception line from the board."""

    def __init__(self, reason: str, traceback: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.traceback = traceback


def last_exception_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln.split(":", 1)[0]:
            return ln
    return lines[-1] if lines else "device error"


def run_on_target(model_bytes: bytes, x: np.ndarray, target: str, backend: str = "auto", session=None,
                  c_module: str | None = None):
    """Run every row of x (int8, (N, *input_shape)) through the model on `target`.
    Returns (y int8 array (N, *output_shape), backend used). `session` reuses an open target;
    `c_module` names an installed module (a natmod) to use as the "c" backend."""
    if target == "host":
        graph = blob.decode(model_bytes)
        return reference.run(graph, x), "numpy-reference"
    from .targets import TargetError, open_target

    t = session if session is not None else open_target(target)
    try:
        if session is None:
            t.install_runtime()
        t.put_bytes(model_bytes, "el_model.elm")
        t.put_bytes(np.ascontiguousarray(x, dtype=np.int8).tobytes(), "el_in.bin")
        code = ("from edgeloop.batch import run_file\n"
                f"n, b, s = run_file('el_model.elm', 'el_in.bin', 'el_out.bin', {backend!r}, {c_module!r})\n"
                "print('EL-RESULT', n, b, 'x'.join(str(d) for d in s))\n")
        try:
            out = t.exec(code, timeout=600)
        except TargetError as e:
            raise DeviceError(f"on {target}: {last_exception_line(e.traceback or str(e))}", e.traceback) from None
        result = [ln for ln in out.splitlines() if ln.startswith("EL-RESULT")]
        if not result:
            raise DeviceError(f"device printed no result: {out.strip()[-300:]}")
        _, n, used, shape = result[-1].split()
        y = np.frombuffer(t.get("el_out.bin"), dtype=np.int8)
    finally:
        if session is None:
            t.close()
    dims = tuple(int(d) for d in shape.split("x"))
    out_shape = dims[1:] if dims[0] == 1 else dims  # per-sample shape, as reference.run returns
    n = int(n)
    if n != len(x) or y.size != n * int(np.prod(out_shape)):
        raise DeviceError(f"device returned {y.size} output bytes for {n} of {len(x)} inputs")
    return y.reshape((n, *out_shape)), used
