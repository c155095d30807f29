# The one viper helper every backend uses: an allocation-free buffer copy. Kept apart from
# viperkernels so that firmware running the C kernels does not load the viper and Python kernels.
import micropython


@micropython.viper
def copy(dst: ptr8, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[i] = src[i]
        i += 1
