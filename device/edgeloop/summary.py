# Periodic summaries on the device (issue 7): small flash-log records that describe what the model saw
# over a period, whether or not any sample was selected.
#
#     from edgeloop import summary
#     sm = summary.Summary(model, drift=drift_policy, period_ms=60000)
#     sm.add_sample(S.Sample(x, y, model))            # after each inference, or, allocation-free:
#     sm.add_q(top1, y[top1])                         # the top-1 index and its int8 output byte
#     sm.tick(log)                                    # appends a record and starts a new period when due
#
# Record (kind tag b"M"; samples are b"S", select.Sample.pack), little-endian:
#     b"M" | version u8 (1) | flags u8 | n_classes u8 | bins u8 | t_ms u32 | period_ms u32 | n u32 |
#     counts[n_classes] | hist[bins] | (drift f32, last f32 if flags & 2) |
#     latency_us min u32, mean u32, max u32 | blob crc32 u32 | model_id u32 | model_version u32
# counts / hist are u16, or u32 when flags & 1 (a count above 65535). hist[i] counts the inferences whose
# top-1 confidence (dequantized, clamped to [lo, hi], default [0, 1]: a softmax probability; give the range
# for a logits head) fell in bin i of `bins` equal bins over [lo, hi). flags & 4: the drift
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
    def __init__(self, model=None, n_classes=None, bins=10, drift=None, period_ms=60000, now=None, lo=0.0, hi=1.0):
        if n_classes is None:
            n_classes = model.output_size if model is not None else 0
        if not 0 < n_classes < 256 or not 0 < bins < 256:
            raise ValueError("summary: 1..255 classes and confidence bins")
        self.model, self.drift, self.period_ms = model, drift, period_ms
        self.bins, self.lo, self.hi = bins, lo, hi
        if not hi > lo:
            raise ValueError("summary: confidence range needs hi > lo")
        self.now = now or time.ticks_ms
        self.counts = array("I", [0] * n_classes)
        self.hist = array("I", [0] * bins)
        self.crc = self.model_id = self.version = 0
        if model is not None:
            self.crc = struct.unpack_from("<I", model.blob, 12)[0]   # the blob header's CRC32
            self.model_id, self.version = model.model_id, model.version
            # the bin of every int8 output value, computed once: add_q() then needs no float
            sc, zp = model.output_scale, model.output_zero_point
            self._lut = bytearray(self._bin((v - 256 if v > 127 else v) * 1.0 * sc - zp * sc) for v in range(256))
        else:
            self._lut = bytearray(0)
        self.reset()

    def _bin(self, conf):
        b = int((conf - self.lo) * self.bins / (self.hi - self.lo)) if conf > self.lo else 0
        return b if b < self.bins else self.bins - 1

    def reset(self):
        for i in range(len(self.counts)):
            self.counts[i] = 0
        for i in range(self.bins):
            self.hist[i] = 0
        self.n = self.lat_n = self.lat_sum = self.lat_max = 0
        self.lat_min = 0x3FFFFFFF   # largest small int on 32-bit ports: no heap
        self.t0 = self.now()

    def add(self, top1, confidence, latency_us=None):
        """One inference: its top-1 class index and (float) confidence; latency_us defaults to the
        model's last predict() time."""
        self._count(top1, self._bin(confidence), latency_us)

    def add_q(self, top1, q, latency_us=None):
        """One inference by its top-1 index and that output's int8 byte (0..255 as read from the output
        buffer): no heap allocation. Needs the model."""
        if not self._lut:
            raise ValueError("summary: add_q() needs the model (its output quantization)")
        self._count(top1, self._lut[q & 0xFF], latency_us)

    def _count(self, top1, b, latency_us):
        if 0 <= top1 < len(self.counts):
            self.counts[top1] += 1
        self.hist[b] += 1
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
        """A select.Sample (its top-1 and confidence)."""
        if self._lut and s.model is self.model:
            i = s.top1
            self._count(i, self._lut[s.y[i]], latency_us)
        else:
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
        struct.pack_into(_HDR, b, 1, VERSION, flags, nc, nb, t & 0xFFFFFFFF,  # type: ignore[operator]
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
