"""The C kernels built as a host library (tests/clib.py) against the pure-Python kernels
(device/edgeloop/pykernels.py, run here under CPython) and the numpy reference: property tests over
random shapes, strides, paddings, dilations, multipliers and zero points; hostile argument words must
give the same rejection from both; everything also runs under UndefinedBehaviorSanitizer."""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clib
import kernel_cases as kc

REPO = clib.REPO


def _load_pykernels():
    spec = importlib.util.spec_from_file_location("el_pykernels", REPO / "device/edgeloop/pykernels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PK = _load_pykernels()


def run_python(case: kc.Case):
    """(status message or "ok", arena after) from the pure-Python kernel."""
    arena = bytearray(case.arena)
    try:
        getattr(PK, case.kernel)(case.blob, arena, list(case.args))
        return "ok", arena
    except ValueError as e:
        return str(e), arena


def run_c(case: kc.Case, variant: str = "O2"):
    arena = bytearray(case.arena)
    status = clib.load(variant).call(case.kernel, case.args, case.blob, arena)
    return clib.STATUS[status], arena


@pytest.fixture(scope="module")
def lib():
    return clib.load("O2")


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


# ---- fixed-point primitives ----------------------------------------------------------------

I32 = st.integers(-(1 << 31), (1 << 31) - 1)


@settings(max_examples=3000, **SETTINGS)
@given(I32, I32, st.integers(0, 31))
def test_fixed_point_primitives(lib, a, b, e):
    from edgeloop_host import reference as R

    assert lib.dll.el_srdhm(a, b) == int(R.saturating_rounding_doubling_high_mul(a, b)) == PK.srdhm(a, b)
    assert lib.dll.el_rdbypot(a, e) == int(R.rounding_divide_by_pot(a, e)) == PK.rdbypot(a, e)
    shift = e - 31 if b & 1 else min(e, 30)
    if b >= 0:
        assert lib.dll.el_mbqm(a, b, shift) == int(R.multiply_by_quantized_multiplier(a, b, shift)) \
            == PK.mbqm(a, b, shift)


@settings(max_examples=3000, **SETTINGS)
@given(I32, st.integers(1, 5))
def test_exp_and_logistic_fixed_point(lib, a, bits):
    assert lib.dll.el_exp_neg(a, bits) == PK.exp_on_negative_values(a, bits)
    assert lib.dll.el_logistic_fp(a, bits) == PK.logistic_fp(a, bits)


def test_exp_and_logistic_values(lib):
    """Sanity against float math: the fixed-point functions approximate exp and the sigmoid."""
    for x in np.linspace(-15.9, 0, 200):
        raw = int(round(x * (1 << 26)))
        assert abs(lib.dll.el_exp_neg(raw, 5) / 2**31 - np.exp(x)) < 1e-6
    for x in np.linspace(-7.9, 7.9, 200):
        raw = int(round(x * (1 << 27)))
        assert abs(lib.dll.el_logistic_fp(raw, 4) / 2**31 - 1 / (1 + np.exp(-x))) < 1e-6


# ---- every kernel: C == Python on random valid cases ---------------------------------------

@settings(max_examples=400, **SETTINGS)
@given(st.sampled_from(kc.KERNELS), st.integers(0, 2**32 - 1), st.booleans())
def test_c_equals_python_random_cases(kernel, seed, realistic):
    case = kc.random_case(np.random.default_rng(seed), kernel, realistic)
    s_py, a_py = run_python(case)
    s_c, a_c = run_c(case)
    assert s_c == s_py, case.info
    assert s_c == "ok" or kernel == "softmax" and s_c == clib.STATUS[12] and not realistic, case.info
    assert a_c == a_py, (case.info, case.args)
    if s_c == "ok":  # nothing outside the output span was written
        o, n = case.out
        assert a_c[:o] == case.arena[:o] and a_c[o + n:] == case.arena[o + n:]


@pytest.mark.parametrize("kernel", kc.KERNELS)
def test_c_equals_python_under_ubsan(kernel):
    rng = np.random.default_rng(1234 + kc.KERNEL_IDS[kernel])
    for i in range(60):
        case = kc.random_case(rng, kernel, realistic=bool(i % 2))
        s_py, a_py = run_python(case)
        s_c, a_c = run_c(case, "ubsan")
        assert (s_c, a_c) == (s_py, a_py), case.info


@pytest.mark.parametrize("kernel", kc.KERNELS)
def test_portable_c_path_equals_python(kernel):
    """The portable C micro-kernels (EL_FORCE_GENERIC: no SSE2 / Thumb / RV32 code), which ports without
    our assembly (ESP32's xtensawin) run: the x86 build otherwise never executes them."""
    rng = np.random.default_rng(777 + kc.KERNEL_IDS[kernel])
    for i in range(60):
        case = kc.random_case(rng, kernel, realistic=bool(i % 2))
        s_py, a_py = run_python(case)
        s_c, a_c = run_c(case, "generic")
        assert (s_c, a_c) == (s_py, a_py), case.info


def reference_output(case: kc.Case) -> bytes:
    """The numpy reference (host_tools/edgeloop_host/reference.py) on the case's words and buffers."""
    from edgeloop_host import reference as R

    a, blob, arena = case.args, case.blob, case.arena

    def i8(buf, off, n):
        return np.frombuffer(bytes(buf[off:off + n]), np.int8)

    def i32(off, n):
        return None if off == -1 else np.frombuffer(blob[off:off + 4 * n], "<i4")

    k = case.kernel
    if k == "fully_connected":
        i, o, b, d, u, izp, ozp, lo, hi, w, bias, m, sh, nq = a
        y = R.fully_connected(i8(arena, i, b * d).reshape(b, d), i8(blob, w, u * d).reshape(u, d),
                              i32(bias, u), izp, ozp, i32(m, nq), i32(sh, nq), lo, hi)
    elif k == "fully_connected_sparse":
        i, o, b, d, u, izp, ozp, lo, hi, w, bias, m, sh, nq, w_len = a
        y = R.fully_connected_sparse(i8(arena, i, b * d).reshape(b, d), blob[w:w + w_len], u, i32(bias, u), izp,
                                     ozp, i32(m, nq), i32(sh, nq), lo, hi)
    elif k in ("conv_2d", "depthwise_conv_2d"):
        i, o, ih, iw, ic, oh, ow, oc, kh, kw, sh_, sw, dh, dw, pt, pl = a[:16]
        if k == "conv_2d":
            izp, ozp, lo, hi, w, bias, m, s = a[16:]
            filt = i8(blob, w, oc * kh * kw * ic).reshape(oc, kh, kw, ic)
            y = R.conv_2d(i8(arena, i, ih * iw * ic).reshape(1, ih, iw, ic), filt, i32(bias, oc), izp, ozp,
                          i32(m, oc), i32(s, oc), sh_, sw, dh, dw, pt, pl, oh, ow, lo, hi)
        else:
            dm, izp, ozp, lo, hi, w, bias, m, s = a[16:]
            filt = i8(blob, w, kh * kw * oc).reshape(1, kh, kw, oc)
            y = R.depthwise_conv_2d(i8(arena, i, ih * iw * ic).reshape(1, ih, iw, ic), filt, i32(bias, oc), izp,
                                    ozp, i32(m, oc), i32(s, oc), sh_, sw, dh, dw, pt, pl, dm, oh, ow, lo, hi)
    elif k in ("average_pool_2d", "max_pool_2d"):
        i, o, ih, iw, c, oh, ow, sh_, sw, fh, fw, pt, pl, lo, hi = a
        fn = R.average_pool_2d if k == "average_pool_2d" else R.max_pool_2d
        y = fn(i8(arena, i, ih * iw * c).reshape(1, ih, iw, c), sh_, sw, fh, fw, pt, pl, oh, ow, lo, hi)
    elif k == "add":
        i1, i2, o, n, zp1, zp2, zpo, ls, m1, s1, m2, s2, mo, so, lo, hi = a
        y = R.add(i8(arena, i1, n), i8(arena, i2, n), zp1, zp2, zpo, ls, m1, s1, m2, s2, mo, so, lo, hi)
    elif k == "softmax":
        i, o, rows, depth, m, ls, diff_min = a
        y = R.softmax(i8(arena, i, rows * depth).reshape(rows, depth), m, ls, diff_min)
    elif k == "logistic":
        i, o, n, zp, radius, m, s = a
        y = R.logistic(i8(arena, i, n), zp, radius, m, s)
    elif k == "mean":
        i, o, h, w, c, izp, ozp, m, s = a
        y = R.mean_hw(i8(arena, i, h * w * c).reshape(1, h, w, c), izp, ozp, m, s)
    else:
        raise ValueError(k)
    return np.asarray(y, np.int8).tobytes()


@settings(max_examples=400, **SETTINGS)
@given(st.sampled_from(kc.KERNELS), st.integers(0, 2**32 - 1))
def test_c_equals_numpy_reference(kernel, seed):
    """The C host library against the host engineer's numpy reference (realistic parameters)."""
    case = kc.random_case(np.random.default_rng(seed), kernel, realistic=True)
    s_c, a_c = run_c(case)
    if s_c == clib.STATUS[12]:
        return  # softmax sum beyond TFLM's range: the reference has no such check
    assert s_c == "ok", case.info
    assert case.output(a_c) == reference_output(case), (case.info, case.args)


# Values a hostile args array may hold, on top of small perturbations of the real word.
NASTY = (0, 1, -1, 2, 3, 4, 7, 127, 128, -128, -129, 255, 256, 0xFFFF, 0x10000, 0x1000000, 0x1000001,
         0x3FFFFFFF, 0x40000000, 0x7FFFFFFF, -0x80000000, -0x7FFFFFFF, 30, 31, 32, -31, -32, 4095, 4096)


@settings(max_examples=1500, **SETTINGS)
@given(st.sampled_from(kc.KERNELS), st.integers(0, 2**32 - 1), st.data())
def test_hostile_words_same_verdict(kernel, seed, data):
    """Any word set to any hostile value: C and Python agree on the verdict (and on the result when
    the words are still valid); under UBSan, so no undefined behaviour either."""
    rng = np.random.default_rng(seed)
    case = kc.random_case(rng, kernel, realistic=bool(seed & 1), small=True)
    args = list(case.args)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(args) - 1))
        v = data.draw(st.one_of(st.sampled_from(NASTY), st.integers(-3, 3).map(lambda d, w=args[i]: w + d),
                                st.sampled_from([len(case.arena), len(case.blob)])))
        args[i] = max(-(1 << 31), min((1 << 31) - 1, v))
    if data.draw(st.booleans()):
        args = args[:data.draw(st.integers(0, len(args)))] if data.draw(st.booleans()) else args + [0]
    bad = kc.Case(kernel, args, case.blob, case.arena, case.out)
    s_py, a_py = run_python(bad)
    s_c, a_c = run_c(bad, "ubsan")
    assert s_c == s_py, (args, case.args)
    if s_c != "ok":
        if s_c != clib.STATUS[12]:  # only the softmax range check fires mid-way
            assert a_c == case.arena, "a rejected call wrote to the arena"
    assert a_c == a_py


def test_misaligned_int32_data_is_rejected():
    case = kc.conv_2d(np.random.default_rng(5))
    arena = bytearray(case.arena)
    assert clib.load().call(case.kernel, case.args, case.blob, arena, blob_align=1) == 5  # EL_E_ALIGN


def test_overlap_rules():
    rng = np.random.default_rng(9)
    for kernel in kc.KERNELS:
        case = kc.random_case(rng, kernel, small=True)
        a = list(case.args)
        a[1 if kernel != "add" else 2] = a[0]  # output on top of (the first) input
        s_c, _ = run_c(kc.Case(kernel, a, case.blob, case.arena, case.out))
        assert s_c == "input and output activations overlap", kernel
    case = kc.add(rng, 16, same_input=True)  # x + x is fine
    assert run_c(case)[0] == "ok"


def test_softmax_sum_overflow_is_reported_like_tflm_aborts():
    # 600 equal logits: the sum of exps is 600 > 2^9, TFLM's exponent check fails
    case = kc.softmax(np.random.default_rng(1), rows=1, depth=600)
    o = case.args[0]
    case.arena[o:o + 600] = bytes(600)
    assert run_c(case)[0] == run_python(case)[0] == "values outside the range TFLM computes"


def test_asan_build_runs_the_kernels_clean():
    """Every kernel on random cases inside a process with AddressSanitizer (libasan preloaded)."""
    try:
        clib.build("asan")
        env = dict(os.environ, **clib.asan_env())
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.skip(f"no ASan toolchain: {e}")
    code = (
        "import sys, numpy as np\n"
        f"sys.path[:0] = [{str(REPO / 'tests')!r}, {str(REPO / 'host_tools')!r}]\n"
        "import clib, kernel_cases as kc\n"
        "lib = clib.load('asan')\n"
        "rng = np.random.default_rng(7)\n"
        "n = 0\n"
        "for kernel in kc.KERNELS:\n"
        "    for i in range(40):\n"
        "        c = kc.random_case(rng, kernel, realistic=bool(i % 2))\n"
        "        assert lib.call(c.kernel, c.args, c.blob, bytearray(c.arena)) in (0, 12)\n"
        "        n += 1\n"
        "print('ASAN-OK', n)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"ASAN-OK {40 * len(kc.KERNELS)}" in r.stdout, r.stdout + r.stderr[-3000:]
