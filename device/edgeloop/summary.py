# Periodic summaries on the device (issue 7): small flash-log records that describe what the model saw
# over a period, whether or not any sample was selected.
#
#     from edgeloop import summary
#     sm = summary.Summary(model, drift=drift_policy, period_ms=60000)
#     label = ...; sm.add(top1, confidence)           # after each inference (allocation-free)
#     sm.tick(log)                                    # appends a record and starts a new period when due
#
# Record (kind tag b"M"; samples are b"S", select.Sample.pack), little-endian:
#     b"M" | version u8 (1) | flags u8 | n_classes u8 | bins u8 | t_ms u32 | period_ms u32 | n u32 |
#     counts[n_classes] | hist[bins] | (drift f32, last f32 if flags & 2) |
#     latency_us min u32, mean u32, max u32 | blob crc32 u32 | model_id u32 | model_version u32
# counts / hist are u16, or u32 when flags & 1 (a count above 65535). hist[i] counts the inferences whose
# top-1 confidence (dequantized, clamped to [0, 1]) fell in [i / bins, (i + 1) / bins). flags & 4: the drift
# test was signalling drift at the end of the period. edgeloop_host.records.decode_summary reads it.
import struct
import time
from array import array

from micropython import const

VERSION = const(1)
_HDR = "<BBBBIII"    # after b"M": version, flags, n_classes, bins, t_ms, period_ms, n
_TAIL = "<IIIIII"    # latency min / mean / max, blob crc, model id, model version
F_WIDE = const(1)
F_DRIFT = const(2)
F_DRIFTING = const(4)


class Summary:
    def __init__(self, model=None, n_classes=None, bins=10, drift=None, period_ms=60000, now=None):
        if n_classes is None:
            n_classes = model.output_size if model is not None else 0
        if not 0 < n_classes < 256 or not 0 < bins < 256:
            raise ValueError("summary: 1..255 classes and confidence bins")
        self.model, self.drift, self.period_ms = model, drift, period_ms
        self.bins = bins
        self.now = now or time.ticks_ms
        self.counts = array("I", [0] * n_classes)
        self.hist = array("I", [0] * bins)
        self.crc = self.model_id = self.version = 0
        if model is not None:
            self.crc = struct.unpack_from("<I", model.blob, 12)[0]   # the blob header's CRC32
            self.model_id, self.version = model.model_id, model.version
        self.reset()

    def reset(self):
        for i in range(len(self.counts)):
            self.counts[i] = 0
        for i in range(self.bins):
            self.hist[i] = 0
        self.n = self.lat_n = self.lat_sum = self.lat_max = 0
        self.lat_min = 0x3FFFFFFF   # largest small int on 32-bit ports: no heap
        self.t0 = self.now()

    def add(self, top1, confidence, latency_us=None):
        """One inference: its top-1 class index and confidence; latency_us defaults to the model's last
        predict() time."""
        if 0 <= top1 < len(self.counts):
            self.counts[top1] += 1
        b = int(confidence * self.bins) if confidence > 0 else 0
        self.hist[b if b < self.bins else self.bins - 1] += 1
        self.n += 1
        if latency_us is None and self.model is not None and self.model.runs:
            m = self.model
            latency_us = m.latency_us[(m._ring - 1) % len(m.latency_us)]
        if latency_us is not None:
            self.lat_n += 1
            self.lat_sum += latency_us
            if latency_us < self.lat_min:
                self.lat_min = latency_us
            if latency_us > self.lat_max:
                self.lat_max = latency_us

    def add_sample(self, s, latency_us=None):
        """A select.Sample (its top-1 and dequantized confidence)."""
        self.add(s.top1, s.confidence, latency_us)

    def due(self):
        return time.ticks_diff(self.now(), self.t0) >= self.period_ms

    def pack(self):
        nc, nb = len(self.counts), self.bins
        wide = max(max(self.counts), max(self.hist)) > 0xFFFF
        flags = (F_WIDE if wide else 0) | (F_DRIFT if self.drift is not None else 0)
        if self.drift is not None and self.drift.drifting:
            flags |= F_DRIFTING
        w = 4 if wide else 2
        size = 1 + struct.calcsize(_HDR) + w * (nc + nb) + (8 if self.drift is not None else 0) + struct.calcsize(_TAIL)
        b = bytearray(size)
        b[0] = 0x4D   # "M"
        t = self.now()
        struct.pack_into(_HDR, b, 1, VERSION, flags, nc, nb, t & 0xFFFFFFFF,
                         time.ticks_diff(t, self.t0) & 0xFFFFFFFF, self.n)
        i = 1 + struct.calcsize(_HDR)
        fmt = "<I" if wide else "<H"
        for a in (self.counts, self.hist):
            for v in a:
                struct.pack_into(fmt, b, i, v)
                i += w
        if self.drift is not None:
            struct.pack_into("<ff", b, i, self.drift.value, self.drift.last)
            i += 8
        if self.lat_n:
            lat = (self.lat_min, self.lat_sum // self.lat_n, self.lat_max)
        else:
            lat = (0, 0, 0)
        struct.pack_into(_TAIL, b, i, lat[0], lat[1], lat[2], self.crc, self.model_id, self.version)
        return bytes(b)

    def tick(self, log, force=False):
        """When the period is over (or `force`): appends the summary to `log`, starts a new period and
        returns the record's sequence number; None otherwise."""
        if not (force or self.due()):
            return None
        seq = log.append(self.pack())
        self.reset()
        return seq
