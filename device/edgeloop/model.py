# The Model: a validated blob, an arena allocated once, and a list of (kernel, args) calls.
# predict() allocates nothing on the C and viper paths: inputs are copied into the arena, outputs are
# a view of it, latencies go into a preallocated ring.
# predict() is the hot path. MicroPython allocates a function's frame on the heap, on every call, when
# its locals + value stack + try blocks exceed 11 words, and the allocator scans the heap for room from
# its first hole (digits_mlp on x86 with four models loaded: 56k instructions per inference instead of
# 20k). So predict() stays within 11 words: it reuses its argument x as a variable, keeps the start time
# in an array and leaves the try block of the input copy to _edgeloop.run, which copies the input and
# runs the ops in C where the C module is present (_run otherwise). Its state is one tuple
# (self._hot: instance attribute loads are map lookups, stores on a class with properties also look
# the class up) and arrays.
import time
from array import array
from micropython import const

from . import backend

try:  # the input copy + op loop, and the output copy, in C (run calls whichever kernels it is given)
    from _edgeloop import run as _c_run, copy as _c_copy
except ImportError:
    _c_run = _c_copy = None
_copy = _c_copy or backend.copier()

_ticks_us = time.ticks_us
_ticks_diff = time.ticks_diff

_LATENCY_RING = const(32)


class Model:
    def __init__(self, buf, backend_name="auto"):
        info = _parse(buf)
        # The C kernels read int32 constants in place and need them 4-byte aligned in memory; a blob
        # from an unaligned ROMFS image (or a sliced buffer) is copied once to RAM instead.
        self.zero_copy = _aligned(buf)
        if not self.zero_copy:
            buf = bytearray(buf)
        self.blob = buf
        self.model_id = info["model_id"]
        self.version = info["model_version"]
        self.backend, kernels = backend.select(backend_name)
        try:
            self.arena = bytearray(info["arena_size"])
        except MemoryError:
            import gc
            gc.collect()
            raise MemoryError("model needs a %d-byte arena, only %d bytes of heap are free"
                              % (info["arena_size"], gc.mem_free()))
        self._calls = [(backend.bind(self.backend, kernels, opcode, buf, self.arena, args), args)
                       for opcode, args in info["ops"]]
        t_in, t_out = info["input"], info["output"]
        self.input_shape = t_in.shape
        self.output_shape = t_out.shape
        self.input_scale, self.input_zero_point = t_in.scale, t_in.zero_point
        self.output_scale, self.output_zero_point = t_out.scale, t_out.zero_point
        self.input_size = t_in.nbytes
        self.output_size = t_out.nbytes
        self._self_test = info["self_test"]
        self._meta_span = info["meta"]
        self._meta = None
        self._copy = _copy
        mv = memoryview(self.arena)
        self._in = mv[t_in.offset:t_in.offset + t_in.nbytes]
        self._out = mv[t_out.offset:t_out.offset + t_out.nbytes]
        self.latency_us = array("i", [0] * _LATENCY_RING)
        self._state = array("i", [0, 0, 0])  # next latency slot, runs, start of the current inference
        # everything predict() needs, in one attribute load
        self._hot = (buf, self.arena, tuple(v for call in self._calls for v in call), self._in, self._copy,
                     self.input_size, self._out, self.output_size, self.latency_us, self._state,
                     _c_run or _run)

    @property
    def runs(self):
        """Inferences so far (stops counting at 2^30 - 1)."""
        return self._state[1]

    @property
    def _ring(self):
        return self._state[0]

    @property
    def meta(self):
        """The blob's META JSON (labels, normalization, thresholds...), parsed on first use."""
        if self._meta is None:
            self._meta = {}
            if self._meta_span is not None:
                import json
                off, n = self._meta_span
                try:
                    self._meta = json.loads(bytes(memoryview(self.blob)[off:off + n]))
                except ValueError:
                    raise ValueError("META section is not valid JSON")
        return self._meta

    @property
    def labels(self):
        return self.meta.get("labels")

    def predict(self, x, out=None):
        """One inference on int8 input bytes `x` (bytes, bytearray, array('b'), memoryview).
        Returns `out` filled with the int8 output, or a view of the output the next call overwrites."""
        h = self._hot
        if len(x) != h[5]:
            raise ValueError("input has %d bytes, the model takes %d" % (len(x), h[5]))
        # the start time: 64-bit ports' ticks exceed the int32 slot, which keeps them mod 2^32; their
        # ticks period (2^62) is a multiple of 2^32, so the latency, stored mod 2^32 too, is exact
        h[9][2] = _ticks_us()  # type: ignore[call-overload]
        h[10](h[0], h[1], h[2], h[3], x)  # copies x into the input view, runs the ops
        x = h[9]  # x was copied: its slot is reused
        i = x[0]
        h[8][i] = _ticks_diff(_ticks_us(), x[2])
        x[0] = 0 if i == _LATENCY_RING - 1 else i + 1
        if x[1] < 0x3FFFFFFF:  # stays a small int: no heap
            x[1] += 1
        if out is None:
            return h[6]
        if len(out) != h[7]:
            raise ValueError("out has %d bytes, the model gives %d" % (len(out), h[7]))
        h[4](out, h[6], h[7])
        return out

    def quantize(self, xf, out=None):
        """Floats -> int8 input bytes with the model's input scale and zero point."""
        if len(xf) != self.input_size:
            raise ValueError("input has %d values, the model takes %d" % (len(xf), self.input_size))
        q = out if out is not None else bytearray(self.input_size)
        s, z = self.input_scale, self.input_zero_point
        for i in range(self.input_size):
            v = xf[i] / s
            v = int(v + 0.5) if v >= 0 else -int(0.5 - v)  # round half away from zero, as TFLite
            v += z
            q[i] = (-128 if v < -128 else (127 if v > 127 else v)) & 0xFF
        return q

    def dequantize(self, yq):
        s, z = self.output_scale, self.output_zero_point
        return [s * ((v - 256 if v > 127 else v) - z) for v in yq]

    def predict_float(self, xf):
        """Floats in (quantized with the model's input parameters), dequantized floats out."""
        return self.dequantize(self.predict(self.quantize(xf)))

    def classify(self, x):
        """(label, confidence) for int8 bytes or floats `x`. Confidence is the softmax probability
        (taken from a SOFTMAX output as is, computed from logits otherwise)."""
        y = self.predict(x if _is_bytes(x) else self.quantize(x))
        best = 0
        for i in range(1, len(y)):
            if _s8(y[i]) > _s8(y[best]):
                best = i
        yf = self.dequantize(y)
        if self.output_zero_point == -128 and abs(self.output_scale - 1 / 256) < 1e-9:
            conf = yf[best]
        else:
            import math
            m = yf[best]
            conf = 1 / sum(math.exp(v - m) for v in yf)
        labels = self.labels
        return (labels[best] if labels else best), conf

    def score(self, x):
        """Anomaly score of an autoencoder: mean squared reconstruction error in float units."""
        xq = x if _is_bytes(x) else self.quantize(x)
        if self.input_size != self.output_size:
            raise ValueError("score() needs an autoencoder (output size == input size)")
        y = self.predict(xq)
        si, zi, so, zo = self.input_scale, self.input_zero_point, self.output_scale, self.output_zero_point
        err = 0.0
        for i in range(self.input_size):
            d = si * (_s8(xq[i]) - zi) - so * (_s8(y[i]) - zo)
            err += d * d
        return err / self.input_size

    def is_anomaly(self, x):
        t = self.meta.get("anomaly_threshold")
        if t is None:
            raise ValueError("model has no anomaly_threshold in its metadata")
        return self.score(x) > t

    def self_test(self):
        """Run the blob's self-test vector; True when the output matches bit for bit. A blob without
        one raises ValueError (a model that cannot prove itself must not be confirmed by OTA)."""
        if self._self_test is None:
            raise ValueError("model has no self-test vector")
        x_off, y_off = self._self_test
        mv = memoryview(self.blob)
        y = self.predict(mv[x_off:x_off + self.input_size])
        return bytes(y) == bytes(mv[y_off:y_off + self.output_size])

    def latency_stats(self):
        """(min, median, max) microseconds over the last runs, or None before the first."""
        n = min(self.runs, _LATENCY_RING)
        if not n:
            return None
        v = sorted(self.latency_us[:n])
        return v[0], v[n // 2], v[-1]


# h: (blob, arena, (kernel, args, kernel, args, ...), input view, copy, input size, output view,
#     output size, latency ring, [next latency slot, runs, start time], run)
# (h is built in Model.__init__; predict() indexes it)
def _run(blob, arena, calls, xin, x):
    """_edgeloop.run where the C module is absent (its frame is over 11 words: slower, same result)."""
    try:
        _copy(xin, x, len(xin))
    except TypeError:
        raise ValueError("input must be int8 bytes (bytes, bytearray, array('b'), memoryview); "
                         "use predict_float() for floats")
    i = 0
    while i < len(calls):
        calls[i](blob, arena, calls[i + 1])
        i += 2


def _parse(buf):
    # The blob parser (the runtime's largest module) is needed only while a model loads: import it
    # then, and drop it afterwards so its bytecode leaves the heap - unless someone had imported it
    # already (a tool loading many blobs keeps it resident with `import edgeloop.blob`).
    import sys
    resident = "edgeloop.blob" in sys.modules
    from . import blob
    try:
        return blob.parse(buf)
    finally:
        if not resident:
            _unload("blob")


def _unload(name):
    import sys
    sys.modules.pop("edgeloop." + name, None)
    pkg = sys.modules.get("edgeloop")
    if pkg is not None:
        try:
            delattr(pkg, name)
        except (AttributeError, TypeError):
            pass


def _aligned(buf):
    try:
        import uctypes
        return uctypes.addressof(buf) & 3 == 0
    except (ImportError, TypeError, AttributeError):
        return True


def _s8(v):
    return v - 256 if v > 127 else v


def _is_bytes(x):
    return isinstance(x, (bytes, bytearray, memoryview)) or (hasattr(x, "typecode") and x.typecode == "b")


_current = None


def load(path_or_buf, backend="auto"):
    """Load a model from a file path or a bytes-like blob. A `bytes` object frozen into firmware or a
    memoryview of a ROMFS file keeps its weights where they are: nothing is copied."""
    global _current
    if isinstance(path_or_buf, str):
        buf = _read(path_or_buf)
    else:
        buf = path_or_buf
    _current = Model(buf, backend)
    return _current


def _read(path):
    # On a ROMFS mount, the file maps to memory: take a zero-copy view of it.
    try:
        with open(path, "rb") as f:
            m = memoryview(f)
            return m
    except (TypeError, OSError):
        pass
    # One allocation of the exact size: f.read() grows its buffer step by step, and on a small heap the
    # copies fragment it (qemu-m0: MemoryError for a 24 KB blob with 117 KB free).
    import gc
    import os
    n = os.stat(path)[6]
    gc.collect()
    buf = bytearray(n)
    mv = memoryview(buf)
    got = 0
    with open(path, "rb") as f:
        while got < n:
            k = f.readinto(mv[got:])
            if not k:
                break
            got += k
    if got != n:
        raise OSError("%s: read %d of %d bytes" % (path, got, n))
    return buf


def current():
    """The model loaded last (for diagnostics)."""
    return _current
