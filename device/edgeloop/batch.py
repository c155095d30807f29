# Batch evaluation on the board: run every input record of a file through a model, write the outputs.
# Used by `edgeloop run` and useful on a real board to check a model against the host reference.
import os

from . import backend as _backend
from .model import load


def run_file(model_path, in_path, out_path, backend="auto", c_module=None):
    """Returns (records run, backend name, output shape). `c_module` names a module to use as the "c"
    backend for this run (e.g. a natmod installed under another name)."""
    if c_module:
        prev = _backend.use_c_module(__import__(c_module))
        try:
            return run_file(model_path, in_path, out_path, backend)
        finally:
            _backend.use_c_module(prev)
    m = load(model_path, backend)
    n_in = m.input_size
    size = os.stat(in_path)[6]
    if size % n_in:
        raise ValueError("input file has %d bytes, not a whole number of %d-byte inputs" % (size, n_in))
    x = bytearray(n_in)
    count = 0
    with open(in_path, "rb") as fi, open(out_path, "wb") as fo:
        while fi.readinto(x) == n_in:
            fo.write(m.predict(x))
            count += 1
    return count, m.backend, m.output_shape
