"""Single-kernel test cases: argument words, a blob holding the constants and an arena holding the
activations, laid out exactly as the device loader would hand them to a kernel (el_kernels.h layouts).

Quantization parameters come either from float scales through TFLite's own formulas (realistic) or
straight from the random generator (anything the validation accepts). Used by the host property
tests, the fuzzer's seed corpus, the device tests and benchmarks/bench_kernels.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

KERNELS = ("fully_connected", "conv_2d", "depthwise_conv_2d", "average_pool_2d", "max_pool_2d", "add",
           "softmax", "logistic", "mean", "fully_connected_sparse")
KERNEL_IDS = {name: i for i, name in enumerate(KERNELS)}


@dataclass
class Case:
    kernel: str
    args: list[int]
    blob: bytes
    arena: bytearray
    out: tuple[int, int]            # (arena offset, length) of the output
    info: dict = field(default_factory=dict)  # shapes and parameters, for readable failures

    def output(self, arena: bytearray | None = None) -> bytes:
        a = self.arena if arena is None else arena
        return bytes(a[self.out[0]:self.out[0] + self.out[1]])


# ---- TFLite's quantization helpers (tensorflow/lite/kernels/internal/quantization_util.cc) ----

def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: (multiplier in [2^30, 2^31) or 0, shift)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round(q * (1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    m = ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) / (1 << left_shift) \
        if left_shift >= 0 else ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) * 2.0 ** -left_shift
    return int(math.floor(m))


# ---- packing ----

class _Blob:
    def __init__(self, rng: np.random.Generator, lead: int = 0):
        self.buf = bytearray(rng.integers(0, 256, lead, dtype=np.uint8).tobytes())
        self.rng = rng

    def put(self, arr: np.ndarray) -> int:
        while len(self.buf) % 4:
            self.buf.append(int(self.rng.integers(0, 256)))
        off = len(self.buf)
        self.buf += np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        return off

    def bytes(self) -> bytes:
        return bytes(self.buf) + bytes(int(v) for v in self.rng.integers(0, 256, 3))


def _arena(rng: np.random.Generator, *sizes: int) -> tuple[bytearray, list[int]]:
    """An arena holding disjoint spans of the given sizes in random order with random gaps."""
    order = rng.permutation(len(sizes))
    offs = [0] * len(sizes)
    pos = int(rng.integers(0, 8))
    for i in order:
        offs[i] = pos
        pos += sizes[i] + int(rng.integers(0, 8))
    arena = bytearray(rng.integers(0, 256, pos + int(rng.integers(0, 8)), dtype=np.uint8).tobytes())
    return arena, offs


def _i8(rng: np.random.Generator, n: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi + 1, n).astype(np.int8)


def _clamp(rng: np.random.Generator, out_zp: int) -> tuple[int, int]:
    r = rng.random()
    if r < 0.5:
        return -128, 127
    if r < 0.75:
        return max(out_zp, -128), 127          # ReLU
    lo = int(rng.integers(-128, 128))
    return lo, int(rng.integers(lo, 128))


def _requant_params(rng: np.random.Generator, n: int, acc_bits: float, realistic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers/shifts that map an accumulator of ~acc_bits bits onto int8."""
    if realistic:
        ms, ss = [], []
        for _ in range(n):
            real = 2.0 ** (7 - acc_bits) * float(rng.uniform(0.3, 3.0))
            m, s = quantize_multiplier(real)
            ms.append(m)
            ss.append(s)
        return np.array(ms, np.int32), np.array(ss, np.int32)
    m = rng.integers(0, 1 << 31, n, dtype=np.int64).astype(np.int32)
    s = rng.integers(-31, 31, n).astype(np.int32)
    return m, s


# ---- cases ----

def _fc_case(rng, kernel, x, weights, batches, depth, units, per_channel, bias, realistic, **info) -> Case:
    """A FULLY_CONNECTED-style case around `weights` (dense int8, or a sparse stream whose length becomes
    the last argument word)."""
    nq = units if per_channel else 1
    m, s = _requant_params(rng, nq, 7 + 7 + math.log2(depth) / 2 + 1, realistic)
    blob = _Blob(rng, int(rng.integers(0, 8)))
    w_off = blob.put(weights)
    b_off = blob.put(rng.integers(-40000, 40000, units).astype(np.int32)) if bias else -1
    m_off, s_off = blob.put(m), blob.put(s)
    arena, (i_off, o_off) = _arena(rng, batches * depth, batches * units)
    arena[i_off:i_off + x.size] = x.tobytes()
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    lo, hi = _clamp(rng, out_zp)
    args = [i_off, o_off, batches, depth, units, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off, nq]
    if kernel == "fully_connected_sparse":
        args.append(weights.size)
    return Case(kernel, args, blob.bytes(), arena, (o_off, batches * units),
                dict(batches=batches, depth=depth, units=units, **info))


def fully_connected(rng, batches=1, depth=16, units=8, per_channel=True, bias=True, realistic=True) -> Case:
    x = _i8(rng, batches * depth)
    w = _i8(rng, units * depth, -127, 127)
    return _fc_case(rng, "fully_connected", x, w, batches, depth, units, per_channel, bias, realistic)


def sparse_weights(rng, units: int, depth: int, sparsity: float) -> np.ndarray:
    """int8 [units, depth] with round(sparsity * size) zeros at random places (the rest nonzero)."""
    w = rng.integers(1, 128, units * depth) * rng.choice([-1, 1], units * depth)
    w[rng.permutation(w.size)[:int(round(sparsity * w.size))]] = 0
    return w.astype(np.int8).reshape(units, depth)


def fully_connected_sparse(rng, batches=1, depth=16, units=8, sparsity=0.75, per_channel=True, bias=True,
                           realistic=True, weights=None) -> Case:
    """FULLY_CONNECTED with weights in encoding 1 (host_tools/edgeloop_host/sparse.py)."""
    from edgeloop_host import sparse

    w = sparse_weights(rng, units, depth, sparsity) if weights is None else weights
    x = _i8(rng, batches * depth)
    stream = np.frombuffer(sparse.encode(w), np.uint8)
    return _fc_case(rng, "fully_connected_sparse", x, stream, batches, depth, units, per_channel, bias, realistic,
                    sparsity=sparsity)


def same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """(output size, pad before) of TFLite SAME padding."""
    out = (size + stride - 1) // stride
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


def valid_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    eff = (k - 1) * dilation + 1
    return (size - eff + stride) // stride, 0


def conv_2d(rng, in_h=6, in_w=6, in_c=3, out_c=4, k_h=3, k_w=3, stride=(1, 1), dilation=(1, 1),
            padding="same", bias=True, realistic=True, out_hw=None, pads=None) -> Case:
    if out_hw is None:
        f = same_padding if padding == "same" else valid_padding
        out_h, pad_top = f(in_h, k_h, stride[0], dilation[0])
        out_w, pad_left = f(in_w, k_w, stride[1], dilation[1])
    else:
        (out_h, out_w), (pad_top, pad_left) = out_hw, pads
    x = _i8(rng, in_h * in_w * in_c)
    w = _i8(rng, out_c * k_h * k_w * in_c, -127, 127)
    m, s = _requant_params(rng, out_c, 15 + math.log2(k_h * k_w * in_c) / 2, realistic)
    blob = _Blob(rng, int(rng.integers(0, 8)))
    w_off = blob.put(w)
    b_off = blob.put(rng.integers(-40000, 40000, out_c).astype(np.int32)) if bias else -1
    m_off, s_off = blob.put(m), blob.put(s)
    arena, (i_off, o_off) = _arena(rng, x.size, out_h * out_w * out_c)
    arena[i_off:i_off + x.size] = x.tobytes()
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    lo, hi = _clamp(rng, out_zp)
    args = [i_off, o_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride[0], stride[1],
            dilation[0], dilation[1], pad_top, pad_left, in_zp, out_zp, lo, hi, w_off, b_off, m_off, s_off]
    return Case("conv_2d", args, blob.bytes(), arena, (o_off, out_h * out_w * out_c),
                dict(in_hwc=(in_h, in_w, in_c), out_hwc=(out_h, out_w, out_c), k=(k_h, k_w), stride=stride,
                     dilation=dilation, pads=(pad_top, pad_left)))


def depthwise_conv_2d(rng, in_h=6, in_w=6, in_c=4, depth_multiplier=1, k_h=3, k_w=3, stride=(1, 1),
                      dilation=(1, 1), padding="same", bias=True, realistic=True, out_hw=None, pads=None) -> Case:
    if out_hw is None:
        f = same_padding if padding == "same" else valid_padding
        out_h, pad_top = f(in_h, k_h, stride[0], dilation[0])
        out_w, pad_left = f(in_w, k_w, stride[1], dilation[1])
    else:
        (out_h, out_w), (pad_top, pad_left) = out_hw, pads
    out_c = in_c * depth_multiplier
    x = _i8(rng, in_h * in_w * in_c)
    w = _i8(rng, k_h * k_w * out_c, -127, 127)
    m, s = _requant_params(rng, out_c, 15 + math.log2(k_h * k_w) / 2, realistic)
    blob = _Blob(rng, int(rng.integers(0, 8)))
    w_off = blob.put(w)
    b_off = blob.put(rng.integers(-40000, 40000, out_c).astype(np.int32)) if bias else -1
    m_off, s_off = blob.put(m), blob.put(s)
    arena, (i_off, o_off) = _arena(rng, x.size, out_h * out_w * out_c)
    arena[i_off:i_off + x.size] = x.tobytes()
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    lo, hi = _clamp(rng, out_zp)
    args = [i_off, o_off, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride[0], stride[1],
            dilation[0], dilation[1], pad_top, pad_left, depth_multiplier, in_zp, out_zp, lo, hi,
            w_off, b_off, m_off, s_off]
    return Case("depthwise_conv_2d", args, blob.bytes(), arena, (o_off, out_h * out_w * out_c),
                dict(in_hwc=(in_h, in_w, in_c), out_hwc=(out_h, out_w, out_c), k=(k_h, k_w), stride=stride,
                     dilation=dilation, pads=(pad_top, pad_left), depth_multiplier=depth_multiplier))


def pool(rng, kind="average_pool_2d", in_h=6, in_w=6, c=3, f_h=2, f_w=2, stride=(2, 2), padding="valid") -> Case:
    f = same_padding if padding == "same" else valid_padding
    out_h, pad_top = f(in_h, f_h, stride[0], 1)
    out_w, pad_left = f(in_w, f_w, stride[1], 1)
    x = _i8(rng, in_h * in_w * c)
    arena, (i_off, o_off) = _arena(rng, x.size, out_h * out_w * c)
    arena[i_off:i_off + x.size] = x.tobytes()
    lo, hi = _clamp(rng, int(rng.integers(-128, 128)))
    args = [i_off, o_off, in_h, in_w, c, out_h, out_w, stride[0], stride[1], f_h, f_w, pad_top, pad_left, lo, hi]
    blob = bytes(int(v) for v in rng.integers(0, 256, int(rng.integers(0, 16))))
    return Case(kind, args, blob, arena, (o_off, out_h * out_w * c),
                dict(in_hwc=(in_h, in_w, c), out_hw=(out_h, out_w), f=(f_h, f_w), stride=stride,
                     pads=(pad_top, pad_left)))


def add(rng, size=32, realistic=True, same_input=False) -> Case:
    if realistic:
        s1, s2, so = (float(v) for v in rng.uniform(0.005, 0.2, 3))
        left_shift = 20
        twice_max = 2 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice_max)
        m2, sh2 = quantize_multiplier(s2 / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    else:
        left_shift = int(rng.integers(0, 32))
        m1, m2, mo = (int(v) for v in rng.integers(0, 1 << 31, 3))
        sh1, sh2, sho = (int(v) for v in rng.integers(-31, 1, 3))
    arena, (i1, i2, o) = _arena(rng, size, size, size)
    if same_input:
        i2 = i1
    zp1, zp2, zpo = (int(v) for v in rng.integers(-128, 128, 3))
    lo, hi = _clamp(rng, zpo)
    args = [i1, i2, o, size, zp1, zp2, zpo, left_shift, m1, sh1, m2, sh2, mo, sho, lo, hi]
    blob = bytes(int(v) for v in rng.integers(0, 256, int(rng.integers(0, 16))))
    return Case("add", args, blob, arena, (o, size), dict(size=size))


def softmax_params(input_scale: float, beta: float = 1.0) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's SoftmaxPrepare computes them."""
    real = min(beta * input_scale * (1 << (31 - 5)), (1 << 31) - 1.0)
    m, s = quantize_multiplier(real)  # QuantizeMultiplierGreaterThanOne
    diff_min = -calculate_input_radius(5, s)
    return m, s, diff_min


def softmax(rng, rows=2, depth=10, realistic=True) -> Case:
    if realistic:
        m, ls, diff_min = softmax_params(float(rng.uniform(0.01, 0.5)), float(rng.choice([1.0, 0.5, 2.0])))
    else:
        m = int(rng.integers(0, 1 << 31))
        ls = int(rng.integers(0, 32))
        diff_min = -int(rng.integers(0, 1 << 31))
    n = rows * depth
    arena, (i, o) = _arena(rng, n, n)
    args = [i, o, rows, depth, m, ls, diff_min]
    blob = bytes(int(v) for v in rng.integers(0, 256, int(rng.integers(0, 16))))
    return Case("softmax", args, blob, arena, (o, n), dict(rows=rows, depth=depth))


def logistic_params(input_scale: float) -> tuple[int, int, int]:
    """(input_range_radius, input_multiplier, input_left_shift) as TFLM's LogisticPrepare for int8."""
    real = input_scale * (1 << (31 - 4))
    q, shift = math.frexp(real)
    mult = int(round(q * (1 << 31)))
    if mult == 1 << 31:  # TFLM would overflow here; keep the value it rounds to in practice
        mult, shift = 1 << 30, shift + 1
    radius = calculate_input_radius(4, shift, 31)
    return radius, mult, shift


def logistic(rng, size=40, realistic=True) -> Case:
    if realistic:
        radius, m, s = logistic_params(float(rng.uniform(0.005, 0.5)))
    else:
        radius = int(rng.integers(0, 1 << 31))
        m = int(rng.integers(0, 1 << 31))
        s = int(rng.integers(-31, 31))
    arena, (i, o) = _arena(rng, size, size)
    args = [i, o, size, int(rng.integers(-128, 128)), radius, m, s]
    blob = bytes(int(v) for v in rng.integers(0, 256, int(rng.integers(0, 16))))
    return Case("logistic", args, blob, arena, (o, size), dict(size=size))


def mean_params(input_scale: float, output_scale: float, n: int) -> tuple[int, int]:
    """(multiplier, shift) with 1/n folded in, as the importer computes them (docs/FORMAT.md)."""
    m, e = quantize_multiplier(input_scale / output_scale)
    k = min(int(math.floor(math.log2(n))), 32, 31 + e)
    return (m << k) // n, e - k


def mean(rng, h=4, w=4, c=8, realistic=True) -> Case:
    if realistic:
        s_in = float(rng.uniform(0.01, 0.2))
        mult, shift = mean_params(s_in, s_in * float(rng.uniform(0.5, 2.0)), h * w)
    else:
        mult, shift = int(rng.integers(0, 1 << 31)), int(rng.integers(-31, 31))
    x = _i8(rng, h * w * c)
    arena, (i, o) = _arena(rng, x.size, c)
    arena[i:i + x.size] = x.tobytes()
    in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, 2))
    args = [i, o, h, w, c, in_zp, out_zp, mult, shift]
    blob = bytes(int(v) for v in rng.integers(0, 256, int(rng.integers(0, 16))))
    return Case("mean", args, blob, arena, (o, c), dict(hwc=(h, w, c)))


def random_case(rng: np.random.Generator, kernel: str, realistic: bool = True, small: bool = False) -> Case:
    """A random valid case of `kernel` with random shapes (small: a few hundred MACs at most)."""
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    big = 4 if small else 12
    if kernel == "fully_connected":
        return fully_connected(rng, r(1, 3), r(1, 6 * big), r(1, 3 * big), bool(rng.random() < 0.7),
                               bool(rng.random() < 0.8), realistic)
    if kernel == "fully_connected_sparse":
        sparsity = float(rng.choice([0.0, 0.5, 0.75, 0.9, 1.0, float(rng.random())]))
        depth = r(1, 6 * big) if rng.random() < 0.85 else r(256, 100 * big)  # long rows: escape pairs
        return fully_connected_sparse(rng, r(1, 3), depth, r(1, 3 * big), sparsity, bool(rng.random() < 0.7),
                                      bool(rng.random() < 0.8), realistic)
    if kernel in ("conv_2d", "depthwise_conv_2d"):
        k_h, k_w = r(1, 4), r(1, 4)
        stride = (r(1, 3), r(1, 3))
        dil = (r(1, 2), r(1, 2)) if rng.random() < 0.3 else (1, 1)
        eff_h, eff_w = (k_h - 1) * dil[0] + 1, (k_w - 1) * dil[1] + 1
        in_h = r(eff_h, max(big, eff_h))
        in_w = r(eff_w, max(big, eff_w))
        padding = "same" if rng.random() < 0.6 else "valid"
        if kernel == "conv_2d":
            return conv_2d(rng, in_h, in_w, r(1, big), r(1, big), k_h, k_w, stride, dil, padding,
                           bool(rng.random() < 0.8), realistic)
        return depthwise_conv_2d(rng, in_h, in_w, r(1, big), r(1, 3), k_h, k_w, stride, dil, padding,
                                 bool(rng.random() < 0.8), realistic)
    if kernel in ("average_pool_2d", "max_pool_2d"):
        f_h, f_w = r(1, 4), r(1, 4)
        return pool(rng, kernel, r(f_h, big), r(f_w, big), r(1, big), f_h, f_w, (r(1, 3), r(1, 3)),
                    "same" if rng.random() < 0.5 else "valid")
    if kernel == "add":
        return add(rng, r(1, 8 * big), realistic, bool(rng.random() < 0.1))
    if kernel == "softmax":
        return softmax(rng, r(1, 4), r(1, 4 * big), realistic)
    if kernel == "logistic":
        return logistic(rng, r(1, 40 * big), realistic)
    if kernel == "mean":
        return mean(rng, r(1, big), r(1, big), r(1, 2 * big), realistic)
    raise ValueError(kernel)
