# Flash log (issue 7): records the device wants to send back (selected samples, summaries), kept on
# littlefs until the uplink acknowledges them.
#
# Layout: a directory of segment files named by the sequence number of their first record
# ("%010d.seg"). A record on flash is a frame:
#     magic u16 (0xE70C) | length u16 | seq u32 | payload | crc32 u32 over (length, seq, payload)
# Records are appended to the newest segment; the file is synced every `sync_every` records (littlefs
# rewrites the file's last block and commits its metadata on every sync of an appended file, so each
# sync costs flash wear: see BENCHMARKS.md "Flash log"). A record is durable once a sync covering it
# returned (`synced_seq`); littlefs makes a file's content atomic at its last sync, so a power cut
# loses only the records appended since. The reader still checks every frame: a torn or corrupt frame
# is skipped (resynchronising on the next valid frame) and never returned.
#
# Bounded size: at most `max_segments` segment files of about `segment_size` bytes; when a new
# segment would exceed that, the oldest is deleted (its records are dropped and counted).
# ack(seq) frees every segment whose records are all <= seq; sequence numbers never go backwards, also
# across reboots (an empty segment named by the next sequence number keeps it when all is freed).
import os
import struct

from edgeloop import backend

MAGIC = 0xE70C
HDR = 8  # magic, length, seq
OVERHEAD = HDR + 4
MAX_PAYLOAD = 0xFFFF
# Defaults: 64 segments of 8 KB = a 512 KB log; a sync every 64 records keeps the wear of a 512 KB
# partition of 100k-cycle flash above 10 years at one ~64-byte record per second (BENCHMARKS.md). A power
# cut loses at most the last SYNC_EVERY - 1 records (call sync() after an important one).
SEGMENT_SIZE = 8192
MAX_SEGMENTS = 64
SYNC_EVERY = 64


class LogError(ValueError):
    pass


def _name(seq):
    return "%010d.seg" % seq


def _frame(seq, payload):
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise LogError("flashlog: record of %d bytes is larger than %d" % (n, MAX_PAYLOAD))
    b = bytearray(OVERHEAD + n)
    struct.pack_into("<HHI", b, 0, MAGIC, n, seq)
    b[HDR:HDR + n] = payload
    struct.pack_into("<I", b, HDR + n, backend.crc32(memoryview(b)[2:HDR + n]))
    return b


def parse(buf, stats=None):
    """Yields (seq, payload) for every valid frame of a segment's bytes `buf`, in order. A bad frame
    (torn tail, flipped bits) is skipped: the parser moves on byte by byte to the next frame whose CRC
    checks and whose seq is above the last good one. `stats` (a dict) counts skipped bytes."""
    mv = memoryview(buf)
    i, end, last = 0, len(buf), -1
    skipped = 0
    while i + OVERHEAD <= end:
        magic, n, seq = struct.unpack_from("<HHI", buf, i)
        j = i + HDR + n
        if (magic == MAGIC and j + 4 <= end and seq > last
                and struct.unpack_from("<I", buf, j)[0] == backend.crc32(mv[i + 2:j])):
            yield seq, bytes(mv[i + HDR:j])
            last = seq
            i = j + 4
            continue
        i += 1
        skipped += 1
    skipped += end - i
    if stats is not None:
        stats["skipped_bytes"] = stats.get("skipped_bytes", 0) + skipped


class FlashLog:
    def __init__(self, root="log", segment_size=SEGMENT_SIZE, max_segments=MAX_SEGMENTS,
                 sync_every=SYNC_EVERY):
        if segment_size < 2 * OVERHEAD or max_segments < 2 or sync_every < 1:
            raise LogError("flashlog: segment_size >= %d, max_segments >= 2, sync_every >= 1" % (2 * OVERHEAD))
        self.root = root.rstrip("/")
        self.segment_size = segment_size
        self.max_segments = max_segments
        self.sync_every = sync_every
        self.dropped = 0      # records lost to the size bound since open
        self.pending = 0      # records appended since the last sync
        self._f = None
        self.acked = 0
        self._mkdirs()
        segs = self._segments()
        if not segs:
            self.next_seq = 1
            self._start(1)
        else:
            self._cur = segs[-1]
            buf = self._read_seg(segs[-1])
            last = None
            stats: dict = {}
            for seq, _ in parse(buf, stats):
                last = seq
            self.next_seq = (last + 1) if last is not None else segs[-1]
            if stats.get("skipped_bytes"):
                # damaged tail: never reuse a sequence number the damaged bytes may have carried, never
                # append after garbage: start a fresh segment
                self.next_seq = max(self.next_seq, segs[-1] + len(buf) // OVERHEAD)
                self._start(self.next_seq)
            else:
                self._cur_size = len(buf)
        self.synced_seq = self.next_seq - 1
        self.acked = self._segments()[0] - 1

    def _mkdirs(self):
        p = ""
        for part in self.root.split("/"):
            if not part:
                p = "/"
                continue
            p = p + part if p.endswith("/") or not p else p + "/" + part
            try:
                os.mkdir(p)
            except OSError:
                pass

    def _path(self, first):
        return self.root + "/" + _name(first)

    def _segments(self):
        out = []
        for n in os.listdir(self.root):
            if len(n) == 14 and n.endswith(".seg"):
                try:
                    out.append(int(n[:10]))
                except ValueError:
                    pass
        out.sort()
        return out

    def _read_seg(self, first):
        try:
            with open(self._path(first), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def _close(self):
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
            self.synced_seq = self.next_seq - 1
            self.pending = 0

    def _start(self, first):
        """A new segment starting at `first` (created empty and committed), then the size bound."""
        self._close()
        open(self._path(first), "wb").close()
        self._cur, self._cur_size = first, 0
        segs = self._segments()
        while len(segs) > self.max_segments or (len(segs) > 1 and self._low_space()):
            old = segs.pop(0)
            self.dropped += sum(1 for _ in parse(self._read_seg(old)))
            os.remove(self._path(old))
            self.acked = max(self.acked, segs[0] - 1)

    def _low_space(self):
        """Less free space than two segments (and littlefs' copy-on-write of a block or two)."""
        try:
            st = os.statvfs(self.root)
        except (OSError, AttributeError):
            return False
        return st[0] * st[3] < 2 * self.segment_size + 4 * st[0]

    def append(self, payload):
        """Appends one record; returns its sequence number. Durable after the next sync (every
        `sync_every` records, or sync() / close())."""
        fr = _frame(self.next_seq, payload)
        if self._cur_size and self._cur_size + len(fr) > self.segment_size:
            self._start(self.next_seq)
        if self._f is None:
            self._f = open(self._path(self._cur), "ab")
        try:
            self._f.write(fr)
        except OSError as e:
            # full filesystem: drop the oldest segment and retry once in a fresh segment
            self._f = None
            segs = self._segments()
            if len(segs) < 2:
                raise LogError("flashlog: filesystem full (%s)" % e)
            self.dropped += sum(1 for _ in parse(self._read_seg(segs[0])))
            os.remove(self._path(segs[0]))
            self.acked = max(self.acked, segs[1] - 1)
            self._start(self.next_seq)
            self._f = open(self._path(self._cur), "ab")
            self._f.write(fr)
        self._cur_size += len(fr)
        seq = self.next_seq
        self.next_seq += 1
        self.pending += 1
        if self.pending >= self.sync_every:
            self.sync()
        return seq

    def sync(self):
        if self._f is not None and self.pending:
            self._f.flush()
            self.synced_seq = self.next_seq - 1
            self.pending = 0

    def close(self):
        self._close()

    def read(self, after_seq=None, stats=None):
        """Yields (seq, payload) of every readable record with seq > after_seq (default: the acked
        one), oldest first. Pending records are synced first."""
        self.sync()
        if after_seq is None:
            after_seq = self.acked
        segs = self._segments()
        for i, first in enumerate(segs):
            if i + 1 < len(segs) and segs[i + 1] - 1 <= after_seq:
                continue
            for seq, p in parse(self._read_seg(first), stats):
                if seq > after_seq:
                    yield seq, p

    def ack(self, seq):
        """The records up to `seq` are safe elsewhere: frees every segment holding only such records."""
        if seq >= self.next_seq:
            seq = self.next_seq - 1
        if seq <= self.acked:
            return
        if seq == self.next_seq - 1 and self._cur_size:
            self._start(self.next_seq)   # everything acked: a fresh segment keeps the sequence number
        segs = self._segments()
        for i in range(len(segs) - 1):
            if segs[i + 1] - 1 <= seq:
                os.remove(self._path(segs[i]))
        self.acked = seq

    def stats(self):
        segs = self._segments()
        size = 0
        for s in segs:
            try:
                size += os.stat(self._path(s))[6]
            except OSError:
                pass
        return {"segments": len(segs), "bytes": size, "next_seq": self.next_seq, "acked": self.acked,
                "synced_seq": self.synced_seq, "pending": self.pending, "dropped": self.dropped}
