"""ROMFS images with 4-byte-aligned files: MicroPython's own VfsRom reads them back, and a model opened
from one runs in place (zero-copy) instead of being copied to RAM."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from edgeloop_host import romfs

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=12)


@settings(max_examples=8, deadline=None)
@given(files=st.dictionaries(NAMES, st.binary(max_size=400), min_size=1, max_size=5))
def test_vfsrom_reads_back_every_file_aligned(unix_target, files):
    img = romfs.build(files)
    unix_target.put_bytes(img, "t.img")
    out = unix_target.exec("""
import vfs, os, uctypes
img = open('t.img', 'rb').read()
vfs.mount(vfs.VfsRom(img), '/romt')
for n in sorted(os.listdir('/romt')):
    with open('/romt/' + n, 'rb') as f:
        mv = memoryview(f)
        print(n, bytes(mv).hex() or '-', (uctypes.addressof(mv) - uctypes.addressof(img)) if len(mv) else 0)
vfs.umount('/romt')
""")
    got = {}
    for line in out.splitlines():
        name, data, offset = line.split(" ")
        got[name] = bytes.fromhex(data.strip("-"))
        offset = int(offset)
        assert offset % 4 == 0, f"{name} at image offset {offset}"
    assert got == files


def test_model_from_aligned_romfs_is_zero_copy(qemu_arm_target, digits):
    t = qemu_arm_target
    t.put_bytes(romfs.build({"m.elm": digits.elm}), "models.img")
    out = t.exec("""
import vfs, gc, edgeloop
img = open('models.img', 'rb').read()
vfs.mount(vfs.VfsRom(img), '/romz')
gc.collect()
a = gc.mem_alloc()
m = edgeloop.load('/romz/m.elm')
gc.collect()
print(type(m.blob).__name__, m.zero_copy, gc.mem_alloc() - a, m.self_test())
del m
vfs.umount('/romz')
""")
    kind, zero_copy, heap, ok = out.split()
    assert (kind, zero_copy, ok) == ("memoryview", "True", "True")
    assert int(heap) < len(digits.elm) // 2  # the weights stayed in the image
