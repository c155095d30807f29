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


def available():
    names = ["python"]
    if _c is not None:
        names.insert(0, "c")
    return names


def select(name="auto"):
    """Return (backend name, {opcode: kernel}) for `name` in auto|c|python."""
    if name == "auto":
        name = available()[0]
    if name == "c":
        if _c is None:
            raise ValueError("backend 'c' requested but the _edgeloop C module is not present")
        return name, {FULLY_CONNECTED: _c.fully_connected}
    if name == "python":
        from . import pykernels
        return name, {FULLY_CONNECTED: pykernels.fully_connected}
    raise ValueError("unknown backend %r (auto, c, python)" % (name,))


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
    try:
        from . import viperkernels
        return viperkernels.copy
    except (ImportError, SyntaxError, ValueError, NotImplementedError):
        return _slice_copy


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
