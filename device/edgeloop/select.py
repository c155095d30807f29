# Sample selection on the device (issue 7): which inferences are worth logging and sending back.
#
#     from edgeloop import select as S
#     sel = S.RateLimit(S.AnyOf(S.LowConfidence(0.6), S.SmallMargin(0.1), S.Drift(model.meta)), 10, 60000)
#     y = model.predict(x)
#     for s in sel.offer(S.Sample(x, y, model)):
#         log.append(...)          # s.reason says why (e.g. "low_confidence")
#
# A policy is a stage: offer(sample) returns the list of samples to keep now (usually [] or [sample]).
# Predicates (LowConfidence, SmallMargin, HighAnomaly, Classes, EveryNth, Drift) keep a sample when their
# test holds and set sample.reason; AnyOf / AllOf combine predicates; RateLimit and Reservoir wrap any
# stage (RateLimit passes at most `count` per `period_ms`; Reservoir keeps a uniform sample of `k` of what
# its inner stage passes over each window of `window` candidates and releases it when the window closes).
import random
import struct
import time


def _s8(v):
    return v - 256 if v > 127 else v


class Sample:
    """One inference: int8 input `x`, int8 output `y` (bytes-like), the model (for output quantization
    and labels), an optional anomaly `score` and a timestamp in ms."""

    def __init__(self, x, y, model=None, score=None, t_ms=None, out_scale=None, out_zero_point=None):
        self.x, self.y, self.model, self.score = x, bytes(y), model, score
        self.t_ms = time.ticks_ms() if t_ms is None else t_ms
        self.scale = out_scale if out_scale is not None else (model.output_scale if model else 1.0)
        self.zp = out_zero_point if out_zero_point is not None else (model.output_zero_point if model else 0)
        self.reason = None
        self._top = None

    def _tops(self):
        if self._top is None:
            y = self.y
            i1 = i2 = -1
            for i in range(len(y)):
                v = _s8(y[i])
                if i1 < 0 or v > _s8(y[i1]):
                    i1, i2 = i, i1
                elif i2 < 0 or v > _s8(y[i2]):
                    i2 = i
            self._top = (i1, i2)
        return self._top

    def pack(self):
        """The sample as a flash-log record: b"S", t_ms u32, reason (u8 length + ASCII), x (u16 length +
        int8 bytes), y (u16 length + int8 bytes). edgeloop logs pull decodes it."""
        r = (self.reason or "").encode()
        x, y = bytes(self.x), self.y
        t = self.t_ms & 0xFFFFFFFF  # type: ignore[operator]  # ticks are ints on every port
        return (b"S" + struct.pack("<IB", t, len(r)) + r + struct.pack("<H", len(x)) + x
                + struct.pack("<H", len(y)) + y)

    def value(self, i):
        return (_s8(self.y[i]) - self.zp) * self.scale

    @property
    def top1(self):
        return self._tops()[0]

    @property
    def confidence(self):
        return self.value(self._tops()[0])

    @property
    def margin(self):
        i1, i2 = self._tops()
        return self.value(i1) - (self.value(i2) if i2 >= 0 else 0.0)


class Policy:
    name = "policy"

    def test(self, s):
        raise NotImplementedError

    def offer(self, s):
        if self.test(s):
            if s.reason is None:
                s.reason = self.name
            return [s]
        return []


class LowConfidence(Policy):
    """Top-1 output (dequantized: a probability for a softmax head) below `threshold`."""
    name = "low_confidence"

    def __init__(self, threshold):
        self.threshold = threshold

    def test(self, s):
        return s.confidence < self.threshold


class SmallMargin(Policy):
    """Top-1 minus top-2 (dequantized) below `margin`."""
    name = "small_margin"

    def __init__(self, margin):
        self.margin = margin

    def test(self, s):
        return s.margin < self.margin


class HighAnomaly(Policy):
    """Anomaly score above `threshold` (default: the model's META anomaly threshold); the score is the
    sample's own or model.score(x)."""
    name = "anomaly"

    def __init__(self, threshold=None, model=None):
        if threshold is None and model is not None:
            a = model.meta.get("anomaly") or {}
            threshold = a.get("threshold", model.meta.get("anomaly_threshold"))
        if threshold is None:
            raise ValueError("HighAnomaly: no threshold given and none in the model's metadata")
        self.threshold = threshold

    def test(self, s):
        if s.score is None:
            s.score = s.model.score(s.x)
        return s.score > self.threshold


class Classes(Policy):
    """Top-1 class is one of `classes` (indices, or label names looked up in the model's labels)."""
    name = "class_of_interest"

    def __init__(self, classes, model=None):
        labels = (model.meta.get("labels") if model is not None else None) or []
        self.classes = set(labels.index(c) if isinstance(c, str) else c for c in classes)

    def test(self, s):
        return s.top1 in self.classes


class EveryNth(Policy):
    name = "every_nth"

    def __init__(self, n):
        self.n, self.i = n, 0

    def test(self, s):
        self.i += 1
        if self.i >= self.n:
            self.i = 0
            return True
        return False


class Drift(Policy):
    """Input drift against the training statistics of the blob's META (`train_stats`: int8 mean / std per
    input value, channel or chunk). Per sample the statistic is d = mean over the input values of
    z^2 (z = (x - mean) / max(std, 1), clipped at `clip`), whose expectation on training-like data is 1. A
    one-sided test on d - 1 flags drift: method "cusum" (g = max(0, g + d - 1 - delta), drift while
    g > threshold) or "ph" (Page-Hinkley: m += d - 1 - delta, drift while m - min(m) > threshold).
    Selects the samples seen while drifting. `stride` uses every stride-th input value (large inputs)."""
    name = "drift"

    def __init__(self, meta, method="cusum", delta=0.5, threshold=20.0, clip=16.0, stride=1):
        st = meta.get("train_stats") if meta else None
        if not st:
            raise ValueError("Drift: the model's metadata has no train_stats")
        if method not in ("cusum", "ph"):
            raise ValueError("Drift: method is 'cusum' or 'ph'")
        self.method, self.delta, self.threshold, self.clip, self.stride = method, delta, threshold, clip, stride
        self.mean = [float(v) for v in st["mean"]]
        self.inv = [1.0 / max(float(v), 1.0) for v in st["std"]]
        self.axis, self.size = st.get("axis", "feature"), int(st.get("size", 1))
        self.g = 0.0        # cusum / ph cumulative sum
        self.m_min = 0.0
        self.last = 0.0     # last per-sample statistic d
        self.n = 0
        self.drifting = False

    def _group(self, i):
        if self.axis == "channel":
            return i % len(self.mean)
        return i // self.size   # feature (size 1) or chunk

    def statistic(self, x):
        acc, k, clip, mean, inv = 0.0, 0, self.clip, self.mean, self.inv
        for i in range(0, len(x), self.stride):
            g = self._group(i)
            z = (_s8(x[i]) - mean[g]) * inv[g]
            z = z * z
            acc += z if z < clip else clip
            k += 1
        return acc / k if k else 0.0

    def update(self, x):
        d = self.last = self.statistic(x)
        self.n += 1
        if self.method == "cusum":
            self.g = max(0.0, self.g + d - 1.0 - self.delta)
            self.drifting = self.g > self.threshold
        else:
            self.g += d - 1.0 - self.delta
            if self.g < self.m_min:
                self.m_min = self.g
            self.drifting = self.g - self.m_min > self.threshold
        return self.drifting

    @property
    def value(self):
        return self.g if self.method == "cusum" else self.g - self.m_min

    def test(self, s):
        return self.update(s.x)


class AnyOf(Policy):
    """Keeps a sample when any predicate holds (every predicate sees every sample, so stateful ones such
    as Drift and EveryNth keep counting); the reason is the first that held."""

    def __init__(self, *policies):
        self.policies = policies

    def offer(self, s):
        hit = None
        for p in self.policies:
            if p.test(s) and hit is None:
                hit = p.name
        if hit is None:
            return []
        s.reason = hit
        return [s]


class AllOf(Policy):
    """Keeps a sample when every predicate holds; the reason joins their names with '+'."""

    def __init__(self, *policies):
        self.policies = policies

    def offer(self, s):
        ok = True
        for p in self.policies:
            ok = p.test(s) and ok
        if not ok:
            return []
        s.reason = "+".join(p.name for p in self.policies)
        return [s]


class RateLimit(Policy):
    """At most `count` samples per `period_ms` from `inner` (token bucket, refilled continuously)."""

    def __init__(self, inner, count, period_ms, now=None):
        self.inner, self.count, self.period = inner, count, period_ms
        self.now = now or time.ticks_ms
        self.tokens = float(count)
        self.t = self.now()
        self.refused = 0

    def offer(self, s):
        out = self.inner.offer(s)
        if not out:
            return out
        t = self.now()
        self.tokens = min(float(self.count), self.tokens + time.ticks_diff(t, self.t) * self.count / self.period)
        self.t = t
        keep = []
        for o in out:
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                keep.append(o)
            else:
                self.refused += 1
        return keep


class Reservoir(Policy):
    """A uniform random sample of `k` of the samples `inner` passes, over each window of `window`
    candidates offered (reservoir sampling, algorithm R): returns them when the window closes (or on
    flush()), so at most k per window reach the log, fairly spread over the window."""

    def __init__(self, inner, k, window, seed=None):
        self.inner, self.k, self.window = inner, k, window
        self.kept, self.seen, self.offered = [], 0, 0
        if seed is not None:
            random.seed(seed)

    def offer(self, s):
        self.offered += 1
        for o in self.inner.offer(s):
            self.seen += 1
            if len(self.kept) < self.k:
                self.kept.append(o)
            else:
                j = random.getrandbits(30) % self.seen
                if j < self.k:
                    self.kept[j] = o
        if self.offered >= self.window:
            return self.flush()
        return []

    def flush(self):
        out, self.kept, self.seen, self.offered = self.kept, [], 0, 0
        return out
