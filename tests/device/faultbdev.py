# Runs ON the device (MicroPython): the power-cut flash of ota_sweep.py and flashlog_sweep.py.
# The flash is a RAM buffer under a real littlefs (vfs.VfsLfs2); a power cut is a FaultBlockDev that, at
# its k-th program/erase, programs only the first half of the block and then raises PowerCut out of
# littlefs (the code stops right there). A "reboot" mounts a fresh littlefs on a fresh block device over
# the same bytes: nothing of the interrupted run (objects, caches) survives.
import vfs


class PowerCut(Exception):
    pass


class Flash:
    """The flash chip: bytes that survive power cuts, erased (0xFF) at first."""

    def __init__(self, nblocks, bs=512):
        self.n, self.bs = nblocks, bs
        self.buf = bytearray(b"\xff" * (nblocks * bs))


def _heap_locked():
    try:
        bytearray(1)
    except MemoryError:
        return True
    return False


class FaultBlockDev:
    """Block device over `flash` that loses power at its `cut_at`-th program or erase (1-based; 0 =
    never): that operation programs only the first half of its bytes (torn=True) and raises PowerCut.
    A dead device changes nothing any more and raises PowerCut on every call, so that the interrupted
    code stops (a `with` block's close() must not mask the cut with a littlefs error); only the file
    finalisers of the interrupted run, which run with the heap locked, get a silent no-op.
    Counts operations, programs, erases and bytes programmed."""

    def __init__(self, flash, cut_at=0, torn=True):
        self.flash, self.bs = flash, flash.bs
        self.cut_at, self.torn = cut_at, torn
        self.ops = self.writes = self.erases = self.bytes_written = 0
        self.dead = False

    def _dead(self):
        if not _heap_locked():
            raise PowerCut()

    def _op(self):
        self.ops += 1
        return self.ops == self.cut_at

    def readblocks(self, n, dst, off=0):
        if self.dead:
            return self._dead()
        a = n * self.bs + off
        dst[:] = self.flash.buf[a:a + len(dst)]

    def writeblocks(self, n, src, off=0):
        if self.dead:
            return self._dead()
        cut = self._op()
        a = n * self.bs + off
        if cut:
            self.dead = True
            if self.torn:
                k = len(src) // 2
                self.flash.buf[a:a + k] = src[:k]
            raise PowerCut()
        self.flash.buf[a:a + len(src)] = src
        self.writes += 1
        self.bytes_written += len(src)

    def ioctl(self, op, arg):
        if op == 4:
            return self.flash.n
        if op == 5:
            return self.bs
        if op == 6:  # erase: NOR flash erases to 0xFF
            if self.dead:
                self._dead()
                return 0
            if self._op():
                self.dead = True
                raise PowerCut()
            a = arg * self.bs
            self.flash.buf[a:a + self.bs] = b"\xff" * self.bs
            self.erases += 1
            return 0
        return 0


class Mount:
    """A mount point whose filesystem lives on a Flash: power on (mount), off (unmount), format."""

    def __init__(self, path):
        self.path = path
        self._live = []

    def unmount(self):
        """Power off: the current block device goes dead (so nothing the old littlefs does on unmount
        or in a finaliser reaches the flash), then the old filesystem is unmounted."""
        while self._live:
            self._live.pop().dead = True
        try:
            vfs.umount(self.path)
        except OSError:
            pass

    def mount(self, flash, cut_at=0, torn=True):
        """Power on (a reboot): a fresh block device and a fresh littlefs over the flash bytes."""
        self.unmount()
        bdev = FaultBlockDev(flash, cut_at, torn)
        self._live.append(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), self.path)
        return bdev

    def format(self, flash):
        """Power off, then littlefs mkfs on `flash` (not mounted)."""
        self.unmount()
        vfs.VfsLfs2.mkfs(FaultBlockDev(flash))
