# Viper (native code compiled on the board) helpers: imported only where the firmware has the viper
# emitter; importing this module raises otherwise and the caller falls back to pure Python.
import micropython


@micropython.viper
def copy(dst: ptr8, src: ptr8, n: int):
    # Allocation-free copy between any two buffers (bytearray, memoryview, array).
    i = 0
    while i < n:
        dst[i] = src[i]
        i += 1
