# Frozen boot script of the edgeloop qemu boards: littlefs2 on the RAM disk at /flash.
# The RAM disk is a static buffer outside the GC heap, so its content survives soft resets
# (mpremote soft-resets on every connection); it is formatted on first use.
import os
import sys
import vfs
import _board


class RAMBlockDev:
    def __init__(self, buf, block_size=512):
        self.buf = buf
        self.bs = block_size
        self.n = len(buf) // block_size

    def readblocks(self, n, dst, off=0):
        a = n * self.bs + off
        dst[:] = self.buf[a : a + len(dst)]

    def writeblocks(self, n, src, off=0):
        a = n * self.bs + off
        self.buf[a : a + len(src)] = src

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase (nothing to do for RAM)
            return 0
        return None


def _mount():
    bdev = RAMBlockDev(_board.ramdisk())
    try:
        fs = vfs.VfsLfs2(bdev)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev)
        fs = vfs.VfsLfs2(bdev)
    vfs.mount(fs, "/flash")
    os.chdir("/flash")
    try:
        os.mkdir("/flash/lib")
    except OSError:
        pass
    if "/flash/lib" not in sys.path:
        sys.path.append("/flash/lib")


_mount()
del _mount, RAMBlockDev
