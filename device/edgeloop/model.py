# The Model: a validated blob, an arena allocated once, and a list of (kernel, args) calls.
from . import backend
from . import blob as _blob


class Model:
    def __init__(self, buf, backend_name="auto"):
        info = _blob.parse(buf)
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
        self._calls = [(kernels[opcode], args) for opcode, args in info["ops"]]
        t_in, t_out = info["input"], info["output"]
        self.input_shape = t_in.shape
        self.output_shape = t_out.shape
        self.input_scale, self.input_zero_point = t_in.scale, t_in.zero_point
        self.output_scale, self.output_zero_point = t_out.scale, t_out.zero_point
        self.input_size = t_in.nbytes
        self.output_size = t_out.nbytes
        self._self_test = info["self_test"]
        mv = memoryview(self.arena)
        self._in = mv[t_in.offset:t_in.offset + t_in.nbytes]
        self._out = mv[t_out.offset:t_out.offset + t_out.nbytes]

    def predict(self, x, out=None):
        """Run one inference on int8 bytes `x`. Returns `out` (filled) or a view of the output that
        the next call overwrites."""
        if len(x) != self.input_size:
            raise ValueError("input has %d bytes, the model takes %d" % (len(x), self.input_size))
        self._in[:] = x
        blob, arena = self.blob, self.arena
        for kernel, args in self._calls:
            kernel(blob, arena, args)
        if out is None:
            return self._out
        out[:] = self._out
        return out


    def self_test(self):
        """Run the blob's self-test vector; True when the output matches bit for bit. A blob without
        one raises ValueError (a model that cannot prove itself must not be confirmed by OTA)."""
        if self._self_test is None:
            raise ValueError("model has no self-test vector")
        x_off, y_off = self._self_test
        mv = memoryview(self.blob)
        y = self.predict(mv[x_off:x_off + self.input_size])
        return bytes(y) == bytes(mv[y_off:y_off + self.output_size])


def load(path_or_buf, backend="auto"):
    """Load a model from a file path or a bytes-like blob (weights stay in that buffer: no copy)."""
    if isinstance(path_or_buf, str):
        with open(path_or_buf, "rb") as f:
            buf = f.read()
    else:
        buf = path_or_buf
    return Model(buf, backend)
