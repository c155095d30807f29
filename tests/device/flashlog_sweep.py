# Runs ON the device (MicroPython): the flash log under power cuts, and its flash wear.
# The flash and its power cuts are faultbdev.py's (shared with ota_sweep.py); sweep() tries every k
# until a run completes without reaching its cut.
from edgeloop import flashlog
from faultbdev import Flash, Mount, PowerCut

MOUNT = "/el_logsim"
ROOT = MOUNT + "/log"


_sim = Mount(MOUNT)
mount = _sim.mount
unmount = _sim.unmount


def fresh(nblocks, bs):
    flash = Flash(nblocks, bs)
    _sim.format(flash)
    return flash


def payload(seq):
    n = 10 + (seq * 7) % 29
    return bytes(((seq * 31 + j * 7) & 0xFF) for j in range(n))


LOGKW = {"segment_size": 400, "max_segments": 3, "sync_every": 3}
NREC = 48


def workload(st, logkw=LOGKW, nrec=NREC):
    """Appends NREC records (rollovers, drops of the oldest segment, an ack in the middle), tracking in
    `st` what is known to be durable when each call returned."""
    L = flashlog.FlashLog(ROOT, **logkw)
    for i in range(nrec):
        st["appending"] = L.next_seq
        pl = payload(L.next_seq)
        segs = L._segments()
        if (L._cur_size and L._cur_size + len(pl) + flashlog.OVERHEAD > L.segment_size
                and len(segs) + 1 > L.max_segments):
            st["maybe"] = segs[1] - 1   # this append drops the oldest segment
        L.append(pl)
        st["synced"] = L.synced_seq
        st["gone"] = L.acked
        st["maybe"] = 0
        if i == nrec // 2:
            a = L.synced_seq - 2
            st["maybe"] = a
            L.ack(a)
            st["gone"] = L.acked
            st["maybe"] = 0
    L.close()
    st["synced"] = L.synced_seq


def check(st, logkw=LOGKW):
    """After the reboot: every record durable at the cut is there, none is corrupt or unknown, and the
    log takes new records with higher sequence numbers."""
    L = flashlog.FlashLog(ROOT, **logkw)
    seen, last = [], 0
    stats = {}
    for seq, p in L.read(0, stats):
        assert seq > last, ("order", seq, last)
        assert p == payload(seq), ("corrupt record", seq)
        assert seq <= st["appending"], ("unknown record", seq, st["appending"])
        seen.append(seq)
        last = seq
    assert not stats.get("skipped_bytes"), ("torn bytes inside littlefs", stats)
    s = set(seen)
    lo = max(st["gone"], st["maybe"])  # records a cut drop/ack may or may not have freed
    for seq in range(lo + 1, st["synced"] + 1):
        assert seq in s, ("lost synced record", seq, st, seen)
    # the log keeps working: new records come after everything already seen
    new = [L.append(payload(L.next_seq)) for _ in range(4)]
    L.sync()
    assert new[0] > max(seen + [st["gone"]]), ("sequence went backwards", new, seen)
    got = [q for q, p in L.read(new[0] - 1) if p == payload(q)]
    assert got == new, ("new records", got, new)
    L.close()
    return len(seen)


def sweep(nblocks=32, bs=512, torn=True, limit=100000, verbose=False, logkw=LOGKW, nrec=NREC):
    """Cut at every program/erase of the workload. Returns counts."""
    base = fresh(nblocks, bs)
    snap = bytes(base.buf)
    k, total_ops, recovered = 0, None, 0
    while k < limit:
        k += 1
        if verbose:
            print('cut', k)
        flash = Flash(nblocks, bs)
        flash.buf[:] = snap
        dev = mount(flash, cut_at=k, torn=torn)
        st = {"appending": 0, "synced": 0, "gone": 0, "maybe": 0}
        try:
            workload(st, logkw, nrec)
        except PowerCut:
            pass
        else:
            total_ops = dev.ops
            unmount()
            break
        mount(flash)
        try:
            check(st, logkw)
        except AssertionError as e:
            unmount()
            raise AssertionError("cut at op %d: %r" % (k, e))
        recovered += 1
    unmount()
    return {"cuts": recovered, "ops": total_ops, "writes": dev.writes, "erases": dev.erases}


def wear(payload_len=64, nrec=2000, sync_every=16, nblocks=128, bs=4096, segment_size=8192, max_segments=48):
    """Programs/erases per record for `nrec` records of `payload_len` bytes, after a warm-up that fills
    the log to its bound (so segment deletions are included)."""
    flash = fresh(nblocks, bs)
    dev = mount(flash)
    L = flashlog.FlashLog(ROOT, segment_size=segment_size, max_segments=max_segments, sync_every=sync_every)
    p = bytes(payload_len)
    warm = (segment_size * max_segments) // (payload_len + flashlog.OVERHEAD) + 10
    for _ in range(warm):
        L.append(p)
    w0, e0, b0 = dev.writes, dev.erases, dev.bytes_written
    for _ in range(nrec):
        L.append(p)
    L.close()
    r = {"payload": payload_len, "sync_every": sync_every, "bs": bs,
         "prog_bytes_per_rec": (dev.bytes_written - b0) / nrec, "progs_per_rec": (dev.writes - w0) / nrec,
         "erases_per_rec": (dev.erases - e0) / nrec, "dropped": L.dropped}
    unmount()
    return r
