# Runs ON the device (MicroPython): cut the power at every flash operation of an OTA update and check that
# the device always comes back with a verified model and a consistent state, and that a retried update
# then succeeds. The flash and its power cuts are faultbdev.py's (shared with flashlog_sweep.py).
import os

from edgeloop import ota
from faultbdev import Flash, Mount

MOUNT = "/el_sim"
ROOT = MOUNT + "/ota"
BS = 512   # block size of the simulated flash


_sim = Mount(MOUNT)
mount = _sim.mount
unmount = _sim.unmount


def updater(pub, **kw):
    return ota.Updater(ROOT, public_key=pub, **kw)


def push(u, blob, manifest, chunk=4096):
    off = u.begin(manifest)
    mv = memoryview(blob)
    while off < len(blob):
        off = u.write(off, mv[off:off + chunk])
    return u.finish()


def provision(flash, pub, blob, manifest, **kw):
    """A fresh device: format, install `blob` as the first model and confirm it."""
    _sim.format(flash)
    mount(flash)
    u = updater(pub, **kw)
    push(u, blob, manifest)
    m = u.load()
    assert m.version == ota.Manifest(manifest).version


def check_consistent(u, versions):
    """After a reboot: a valid state, a verified active model that passes its self-test, and a pending
    slot (if any) that verifies too. Returns the model."""
    s = u.state()
    assert s.seq > 0, "no valid state record"
    assert s.active in (0, 1), "no active slot"
    assert s.pending in (0, 1, ota.NONE) and s.pending != s.active
    assert s.counter == s.active_version, "counter %d vs active version %d" % (s.counter, s.active_version)
    assert s.attempts <= u.max_attempts
    if s.pending != ota.NONE:
        u._read_verified(s.pending, u._slot_manifest(s.pending))
    m = u.load()
    assert m.version in versions, "model version %d not in %r" % (m.version, versions)
    assert m.self_test(), "the model that came up fails its self-test"
    return m


def sequence(flash, pub, blob, manifest, cut_at, **kw):
    """Mount with a cut at `cut_at`, run download, verify, switch, boot (self-test), confirm.
    Returns (completed, bdev)."""
    bdev = mount(flash, cut_at)
    try:
        u = updater(pub, **kw)
        push(u, blob, manifest)
        u.load()
    except Exception:
        if not bdev.dead:   # a real failure, not the power cut
            raise
    return not bdev.dead, bdev


def _sample(total, n, seed):
    """n distinct cut points in 1..total from a small LCG (no dependence on the random module)."""
    if n >= total:
        return list(range(1, total + 1))
    picked = []
    x = seed & 0x7FFFFFFF
    while len(picked) < n:
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        k = 1 + (x >> 8) % total
        if k not in picked:
            picked.append(k)
    return sorted(picked)


def sweep(pub, base, new, bad, nblocks, log=print, ks=None, sample=None, **kw):
    """base/new/bad: (blob, manifest). Exhaustive over every flash operation of the good update and of
    the bad update (which must revert), unless `ks` restricts the cut points or `sample` = (n, seed)
    picks n of them at random.
    Returns {"good": n, "bad": n, "ops_good": .., "ops_bad": .., "bytes_good": .., "bytes_bad": ..}."""
    v_base = ota.Manifest(base[1]).version
    v_new = ota.Manifest(new[1]).version
    flash = Flash(nblocks, BS)
    provision(flash, pub, base[0], base[1], **kw)
    unmount()
    snapshot = bytes(flash.buf)
    result = {}
    for name, (blob, mf), final in (("good", new, v_new), ("bad", bad, v_base)):
        unmount()
        flash.buf[:] = snapshot
        done, bdev = sequence(flash, pub, blob, mf, 0, **kw)
        assert done
        total = bdev.ops
        result["ops_" + name] = total
        result["bytes_" + name] = bdev.bytes_written
        result["writes_" + name] = bdev.writes
        result["erases_" + name] = bdev.erases
        if sample is not None:
            cuts = _sample(total, sample[0], sample[1] + len(name))
        elif ks is not None:
            cuts = [k for k in ks if 1 <= k <= total]
        else:
            cuts = range(1, total + 1)
        n = 0
        for k in cuts:
            try:
                _one_cut(flash, snapshot, pub, name, blob, mf, k, v_base, final, kw)
            except Exception as e:
                raise AssertionError("%s update, power cut at flash operation %d of %d: %s %s"
                                     % (name, k, total, type(e).__name__, e))
            n += 1
        result[name] = n
        log("%s update: %d flash operations (%d programs, %d erases, %d bytes programmed), %d cut points"
            " tried" % (name, total, result["writes_" + name], result["erases_" + name],
                        result["bytes_" + name], n))
    unmount()
    return result


def _one_cut(flash, snapshot, pub, name, blob, mf, k, v_base, final, kw):
    unmount()
    flash.buf[:] = snapshot
    done, _ = sequence(flash, pub, blob, mf, k, **kw)
    assert not done, "cut %d never happened" % k
    mount(flash)                              # reboot: littlefs must mount
    u = updater(pub, **kw)
    m = check_consistent(u, (v_base, final))
    if name == "bad":
        assert m.version == v_base, "cut %d: the bad model is running" % k
    u = updater(pub, **kw)                    # the update is retried and completes
    try:
        push(u, blob, mf)
    except ota.OTAError as e:
        # the retry of an update that already got confirmed before the cut is a replay
        assert e.code == "downgrade" and m.version == final, "cut %d: retry failed: %s" % (k, e)
    m = updater(pub, **kw).load()
    assert m.version == final, "cut %d: after the retry version %d, want %d" % (k, m.version, final)
    assert m.self_test()
    s = updater(pub, **kw).state()
    assert s.active_version == final and s.counter == final and s.pending == ota.NONE
