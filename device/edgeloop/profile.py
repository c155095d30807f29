# Per-op timing of a loaded model (benchmarks/bench_models.py, `edgeloop diag --profile`).
# profile() runs the model's calls in predict()'s order on predict()'s data: the input is copied in,
# then each op runs `runs` times before the next one, so every op reads the activations it reads in an
# inference (an op never writes its own inputs: repeating it changes nothing). Works on every backend
# (it calls what Model.predict calls) and leaves model.py's hot path alone. Not allocation-free.
# Under `qemu -icount shift=0` one tick of time.ticks_us() is 1000 instructions, exactly.
import struct
import time

from . import backend

_ticks_us = time.ticks_us
_ticks_diff = time.ticks_diff


def ops(model):
    """[(op name, MACs)] of a loaded model, in execution order. MACs as `edgeloop inspect` counts them:
    nominal (padding taps included, sparse weights counted dense), 0 for pools, MEAN, ADD, SOFTMAX and
    LOGISTIC. Names are the blob's operators (a sparse FULLY_CONNECTED / 1x1 CONV_2D keeps its name)."""
    buf = model.blob
    hsize = struct.unpack_from("<H", buf, 6)[0]
    nsec = struct.unpack_from("<H", buf, 28)[0]
    for i in range(nsec):  # the blob was validated when the model loaded: the OPS section is there
        tag, _, pos, _ = struct.unpack_from("<4sIII", buf, hsize + 16 * i)
        if tag == b"OPS ":
            break
    count = struct.unpack_from("<I", buf, pos)[0]
    if count != len(model._calls):
        raise ValueError("the blob has %d ops, the model %d calls" % (count, len(model._calls)))
    pos += 4
    out = []
    for _, a in model._calls:
        opcode, nwords = struct.unpack_from("<HH", buf, pos)
        pos += 4 + 4 * nwords
        out.append((backend.KERNELS[opcode].upper(), _macs(opcode, a)))
    return out


def _macs(opcode, a):
    # a: the kernel's argument words (blob.py _fc_args / _conv_args / _sparse_args)
    if opcode == 9 or (opcode == 3 and len(a) == 15):  # FC, or sparse: (x, y, batches, depth, units...)
        return a[2] * a[3] * a[4]
    if opcode == 3 or opcode == 4:  # (x, y, in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, ...)
        return a[5] * a[6] * a[7] * a[8] * a[9] * (a[4] if opcode == 3 else 1)
    return 0


def profile(model, x, runs=100):
    """[(op name, MACs, ticks)] for each op of `model` on int8 input `x`: ticks is the time.ticks_us()
    difference over `runs` back-to-back calls of the op's kernel (divide by runs), loop included, as
    predict() calls it. Afterwards the model's output holds predict(x)'s result."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    model.predict(x)  # checks x (size, type) the way an inference does, and warms the caches
    names = ops(model)
    blob, arena = model.blob, model.arena
    model._copy(model._in, x, model.input_size)
    out = []
    i = 0
    for k, a in model._calls:
        t0 = _ticks_us()
        for _ in range(runs):
            k(blob, arena, a)
        dt = _ticks_diff(_ticks_us(), t0)
        out.append((names[i][0], names[i][1], dt))
        i += 1
    return out


def predict_ticks(model, x, runs=100):
    """time.ticks_us() difference over `runs` back-to-back model.predict(x) calls (the whole call:
    input copy, op dispatch, latency bookkeeping), to set against the sum of profile()'s ops."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    p = model.predict
    p(x)
    t0 = _ticks_us()
    for _ in range(runs):
        p(x)
    return _ticks_diff(_ticks_us(), t0)
