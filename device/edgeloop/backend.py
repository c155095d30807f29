# Kernel backends. Every backend exposes the same kernels with the same (blob, arena, args) ABI.
# "c": the _edgeloop C module (built into the firmware, or the natmod .mpy on the path);
# "python": pure MicroPython, bit-exact with the C kernels, for stock firmware without the natmod.
# pykernels is imported only when needed: where the C module is present it would be dead heap.


def _import_c():
    try:
        import _edgeloop
        return _edgeloop
    except ImportError:
        return None


_c = _import_c()

FULLY_CONNECTED = 9
# TFLite builtin opcode -> kernel name, the same in the C module and in pykernels (el_kernels.h).
# 0x109 is edgeloop's own: FULLY_CONNECTED / 1x1 CONV_2D with sparse weights (blob.FC_SPARSE).
KERNELS = {9: "fully_connected", 3: "conv_2d", 4: "depthwise_conv_2d", 1: "average_pool_2d",
           17: "max_pool_2d", 40: "mean", 0: "add", 25: "softmax", 14: "logistic",
           0x109: "fully_connected_sparse"}


def _missing(name):
    def kernel(blob, arena, args):
        raise ValueError("the C module has no %s kernel: update the firmware or the natmod" % name)
    return kernel


def _table(mod):
    return {op: getattr(mod, name, None) or _missing(name) for op, name in KERNELS.items()}


def _viper():
    try:
        from . import viperkernels
        return viperkernels
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return None


def _vcopy():
    try:
        from . import vcopy
        return vcopy.copy
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return None


def available():
    """Backends this firmware can run, fastest first (viper: where the firmware has the emitter)."""
    names = ["python"]
    if _vcopy() is not None:
        names.insert(0, "viper")
    if _c is not None:
        names.insert(0, "c")
    return names


def select(name="auto"):
    """Return (backend name, {opcode: kernel}) for `name` in auto|c|viper|python."""
    if name == "auto":
        name = available()[0]
    if name == "c":
        if _c is None:
            raise ValueError("backend 'c' requested but the _edgeloop C module is not present")
        return name, _table(_c)
    if name == "viper":
        v = _viper()
        if v is None:
            raise ValueError("backend 'viper' requested but this firmware has no viper emitter")
        return name, _table(v)
    if name == "python":
        from . import pykernels
        return name, _table(pykernels)
    raise ValueError("unknown backend %r (auto, c, viper, python)" % (name,))


def bind(name, kernels, opcode, blob, arena, args):
    """The callable that runs one op of a loaded model. The viper backend validates once at load and
    binds a private copy of the words; the C and Python kernels validate on every call."""
    if name == "viper":
        k = _viper().bind(opcode, blob, arena, args)
        if k is not None:
            return k
    return kernels[opcode]


def use_c_module(module):
    """Use `module` (e.g. a natmod imported under another name) as the "c" backend; returns the previous
    one. Lets firmware with `_edgeloop` built in also run the natmod, and a user pick a build."""
    global _c
    prev, _c = _c, module
    return prev


def _slice_copy(dst, src, n):
    dst[:n] = src


def copier():
    """An allocation-free copy(dst, src, n) where the firmware allows it."""
    return _vcopy() or _slice_copy


def c_module_build():
    """"usermod" (built into the firmware), "natmod" (.mpy), or None."""
    return None if _c is None else getattr(_c, "BUILD", "unknown")


def backend_name():
    return available()[0]


def crc32(data, crc=0):
    if _c is not None:
        return _c.crc32(data, crc)
    from . import pykernels
    return pykernels.crc32(data, crc)
