// DEPTHWISE_CONV_2D: TFLM reference_integer_ops::DepthwiseConvPerChannel (NHWC, N = 1,
// filter [1, k_h, k_w, out_c], out_c = in_c * depth_multiplier).
#include "el_gemm.h"
EL_HOT

#define EL_DW_RING_BYTES 1536  // padded input rows of one channel (stack)
#define EL_DW_MAX_TAPS 64      // filter taps held in a local array
#define EL_DW_MAX_RING 64      // rows in the ring
#define EL_DW_ROW_MAX 128      // output row sums of the 3x3 path

typedef struct {
    const int8_t *input;
    int8_t *output;
    const int8_t *filter;
    const int32_t *bias, *mult, *shift;
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top,
        pad_left, depth_mult, in_offset, out_zp, act_min, act_max, wpad, nring;
} el_dw_args;

// Requantization of one output (table entry): el_rqe_apply, with the Cortex-M0 product split.
EL_INLINE int32_t el_dw_requant(int32_t acc, const el_rqe_t *q) {
#if defined(__ARM_ARCH_6M__)
    if (q->sh >= 1) {
        const int32_t x = el_wadd(acc, q->bias);
        // as el_requant_v6 in el_gemm.c: four 16x16 products instead of a 64-bit multiply
        const uint32_t xl = (uint32_t)x & 0xFFFFu, ml = (uint32_t)q->mult & 0xFFFFu;
        const int32_t xh = x >> 16, mh = q->mult >> 16;
        const int32_t A = xh * (int32_t)ml;
        const int32_t L = x < 0 ? -(INT32_C(1) << 30) : INT32_C(1) << 30;
        const uint32_t sum = ((uint32_t)A & 0xFFFFu) + xl * (uint32_t)mh + ((xl * ml) >> 16)
                             + (uint32_t)((L >> 16) + 0x10000);
        return (xh * mh + (A >> 16) + (int32_t)(sum >> 16) - 1 + q->k_hi) >> q->sh;
    }
#endif
    return el_rqe_apply(acc, q);
}

// One output row of one output channel, 3x3 taps, stride 1, dilation 1 (the common case): sums into
// acc[0 .. n) by a sliding window over three padded rows; each input value is loaded once and feeds
// three outputs. (Requantization is a separate pass, so the loop keeps its values in registers.)
static void el_dw_row3x3(const int8_t *r0, const int8_t *r1, const int8_t *r2, const int8_t *w, int32_t n,
                         int32_t bias, int32_t *acc) {
    const int32_t w00 = w[0], w01 = w[1], w02 = w[2], w10 = w[3], w11 = w[4], w12 = w[5];
    const int32_t w20 = w[6], w21 = w[7], w22 = w[8];
    // a, b: sums of the outputs two and one columns to the left of the column being read
    int32_t x0 = r0[0], x1 = r1[0], x2 = r2[0];
    uint32_t a = (uint32_t)bias + (uint32_t)(x0 * w00 + x1 * w10 + x2 * w20);  // the sums wrap like TFLM's
    x0 = r0[1];
    x1 = r1[1];
    x2 = r2[1];
    a += (uint32_t)(x0 * w01 + x1 * w11 + x2 * w21);
    uint32_t b = (uint32_t)bias + (uint32_t)(x0 * w00 + x1 * w10 + x2 * w20);
    const int8_t *end = r0 + n + 2;
    r0 += 2;
    r1 += 2;
    r2 += 2;
    while (r0 < end) {
        x0 = *r0++;
        x1 = *r1++;
        x2 = *r2++;
        *acc++ = (int32_t)(a + (uint32_t)(x0 * w02 + x1 * w12 + x2 * w22));
        a = b + (uint32_t)(x0 * w01 + x1 * w11 + x2 * w21);
        b = (uint32_t)bias + (uint32_t)(x0 * w00 + x1 * w10 + x2 * w20);
    }
}

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
// Cortex-M3: y[i * ystride] = clamp(MBQM(acc[i]) + zp) for a table entry with e >= 1 (its bias already
// in the sums), 19 instructions per output. r0 acc, r1 acc end, r2 entry, r3 y, [sp] ystride,
// [sp, 4] {zp, lo, hi}.
__attribute__((naked)) static void el_dw_requant_m3(const int32_t *acc, const int32_t *end, const el_rqe_t *q,
                                                     int8_t *y, int32_t ystride, const int32_t *zp_lo_hi) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "ldr r5, [r2, #4]\n"    // mult
        "ldr r6, [r2, #8]\n"    // K low
        "ldr r7, [r2, #12]\n"   // K high
        "ldr r8, [r2, #16]\n"   // e - 1
        "ldr r9, [sp, #36]\n"
        "ldr r2, [sp, #40]\n"
        "ldr r10, [r2]\n"
        "ldr r11, [r2, #4]\n"
        "ldr r12, [r2, #8]\n"
        "1:\n"
        "ldr r2, [r0], #4\n"
        "mov r4, r6\n"
        "mov lr, r7\n"
        "smlal r4, lr, r2, r5\n"
        "and r2, r2, #0x80000000\n"
        "adds r4, r4, r2\n"
        "adc lr, lr, r2, asr #31\n"
        "asr lr, lr, r8\n"
        "add lr, lr, r10\n"
        "cmp lr, r11\n"
        "it lt\n"
        "movlt lr, r11\n"
        "cmp lr, r12\n"
        "it gt\n"
        "movgt lr, r12\n"
        "strb lr, [r3]\n"
        "add r3, r3, r9\n"
        "cmp r0, r1\n"
        "bne 1b\n"
        "pop {r4-r11, pc}\n");
}
#endif

// y[i * ystride] = clamp(requant(acc[i]) + zp) for one channel's table entry.
static void el_dw_requant_row(const int32_t *acc, int32_t n, const el_rqe_t *q, int8_t *y, int32_t ystride,
                              int32_t zp, int32_t lo, int32_t hi) {
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    if (q->sh >= 0 && q->bias == 0 && n > 0) {
        const int32_t zlh[3] = {zp, lo, hi};
        el_dw_requant_m3(acc, acc + n, q, y, ystride, zlh);
        return;
    }
#endif
    for (const int32_t *e = acc + n; acc < e; ++acc, y += ystride) {
        int32_t v = el_wadd(el_dw_requant(*acc, q), zp);
        v = v < lo ? lo : v;
        *y = (int8_t)(v > hi ? hi : v);
    }
}

static void el_dw_rows(const el_dw_args *d) {
    int8_t ring[EL_DW_RING_BYTES];
    int32_t tag[EL_DW_MAX_RING];           // input row held by each ring slot
    int32_t slot_off[EL_DW_MAX_TAPS];      // (ky * dil_h) mod nring
    int8_t wk[EL_DW_MAX_TAPS];
    int32_t rowacc[EL_DW_ROW_MAX];
    const int32_t taps = d->k_h * d->k_w, zp = -d->in_offset;
    const int fast3 = d->k_h == 3 && d->k_w == 3 && d->stride_w == 1 && d->dil_w == 1;
    // ring slot of input row iy = oy * stride_h - pad_top + ky * dil_h is (oy * stride_h + ky * dil_h) mod
    // nring: kept incrementally (no division per row: Cortex-M0 has none)
    const int32_t step = d->stride_h % d->nring;
    for (int32_t ky = 0; ky < d->k_h; ++ky) {
        slot_off[ky] = (ky * d->dil_h) % d->nring;
    }
    for (int32_t ci = 0; ci < d->in_c; ++ci) {
        for (int32_t i = 0; i < d->nring; ++i) {
            tag[i] = INT32_MIN;
        }
        for (int32_t m = 0; m < d->depth_mult; ++m) {
            const int32_t co = ci * d->depth_mult + m;
            // this channel's taps, the folded bias and its requantization entry
            int32_t wsum = 0;
            for (int32_t t = 0; t < taps; ++t) {
                wk[t] = d->filter[(size_t)t * (size_t)d->out_c + (size_t)co];
                wsum += wk[t];
            }
            el_rqe_t q;
            el_rqe_prepare(&q, (int32_t)((d->bias != NULL ? (uint32_t)d->bias[co] : 0u)
                                         + (uint32_t)wsum * (uint32_t)d->in_offset),
                           d->mult[co], d->shift[co]);
            el_rqe_t q0 = q;  // for sums that already hold the bias
            q0.bias = 0;
            int32_t base = 0;  // (oy * stride_h) mod nring
            for (int32_t oy = 0; oy < d->out_h; ++oy, base = base + step >= d->nring ? base + step - d->nring : base + step) {
                const int8_t *rows[EL_DW_MAX_TAPS];
                for (int32_t ky = 0; ky < d->k_h; ++ky) {
                    const int32_t iy = oy * d->stride_h - d->pad_top + ky * d->dil_h;
                    int32_t slot = base + slot_off[ky];
                    slot = slot >= d->nring ? slot - d->nring : slot;
                    int8_t *r = ring + (size_t)slot * (size_t)d->wpad;
                    if (tag[slot] != iy) {  // gather the padded row once
                        tag[slot] = iy;
                        if (iy < 0 || iy >= d->in_h) {
                            for (int32_t j = 0; j < d->wpad; ++j) {
                                r[j] = (int8_t)zp;
                            }
                        } else {
                            const int8_t *src = d->input + (size_t)iy * (size_t)d->in_w * (size_t)d->in_c + (size_t)ci;
                            int32_t j = 0;
                            for (; j < d->wpad && j < d->pad_left; ++j) {
                                r[j] = (int8_t)zp;
                            }
                            const int32_t jend = d->pad_left + d->in_w < d->wpad ? d->pad_left + d->in_w : d->wpad;
                            if (j < jend) {  // (the pointer exists only when it points into the row)
                                const int8_t *sp = src + (size_t)(j - d->pad_left) * (size_t)d->in_c;
                                for (; j < jend; ++j, sp += d->in_c) {
                                    r[j] = *sp;
                                }
                            }
                            for (; j < d->wpad; ++j) {
                                r[j] = (int8_t)zp;
                            }
                        }
                    }
                    rows[ky] = r;
                }
                int8_t *y = d->output + (size_t)oy * (size_t)d->out_w * (size_t)d->out_c + (size_t)co;
                if (fast3 && d->out_w <= EL_DW_ROW_MAX) {
                    el_dw_row3x3(rows[0], rows[1], rows[2], wk, d->out_w, q.bias, rowacc);
                    el_dw_requant_row(rowacc, d->out_w, &q0, y, d->out_c, d->out_zp, d->act_min, d->act_max);
                    continue;
                }
                for (int32_t ox = 0; ox < d->out_w; ++ox, y += d->out_c) {
                    uint32_t acc = 0;
                    const int32_t x0 = ox * d->stride_w;
                    for (int32_t ky = 0; ky < d->k_h; ++ky) {
                        const int8_t *r = rows[ky] + x0;
                        const int8_t *w = wk + ky * d->k_w;
                        for (int32_t kx = 0; kx < d->k_w; ++kx) {
                            acc += (uint32_t)(r[kx * d->dil_w] * w[kx]);
                        }
                    }
                    int32_t v = el_wadd(el_dw_requant((int32_t)acc, &q), d->out_zp);
                    v = v < d->act_min ? d->act_min : v;
                    *y = (int8_t)(v > d->act_max ? d->act_max : v);
                }
            }
        }
    }
}

int el_depthwise_conv_2d(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
                         int8_t *arena, size_t arena_len) {
    if (nargs != EL_DW_NARGS) {
        return EL_E_NARGS;
    }
    int st = el_check_conv_geometry(a);
    if (st != EL_OK) {
        return st;
    }
    const int32_t in_h = a[EL_DW_IN_H], in_w = a[EL_DW_IN_W], in_c = a[EL_DW_IN_C];
    const int32_t out_h = a[EL_DW_OUT_H], out_w = a[EL_DW_OUT_W], out_c = a[EL_DW_OUT_C];
    const int32_t k_h = a[EL_DW_K_H], k_w = a[EL_DW_K_W];
    const int32_t depth_mult = a[EL_DW_DEPTH_MULT];
    if (!el_dim_ok(depth_mult) || el_mul(in_c, depth_mult) != out_c) {
        return EL_E_DIM;
    }
    const int64_t in_len = el_mul(el_mul(in_h, in_w), in_c);
    const int64_t out_len = el_mul(el_mul(out_h, out_w), out_c);
    const int64_t in_off = a[EL_DW_IN_OFF], out_off = a[EL_DW_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_DW_IN_ZP]) || !el_is_int8(a[EL_DW_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_DW_ACT_MIN], act_max = a[EL_DW_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    const int64_t w_off = a[EL_DW_W_OFF], b_off = a[EL_DW_BIAS_OFF];
    if (!el_in_range(w_off, el_mul(el_mul(k_h, k_w), out_c), blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    st = el_check_bias(blob, blob_len, b_off, out_c);
    if (st == EL_OK) {
        st = el_check_quant(blob, blob_len, a[EL_DW_MULT_OFF], a[EL_DW_SHIFT_OFF], out_c);
    }
    if (st != EL_OK) {
        return st;
    }

    const int8_t *input = arena + in_off;
    int8_t *output = arena + out_off;
    const int8_t *filter = (const int8_t *)(blob + w_off);
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t *mult = (const int32_t *)(const void *)(blob + a[EL_DW_MULT_OFF]);
    const int32_t *shift = (const int32_t *)(const void *)(blob + a[EL_DW_SHIFT_OFF]);
    const int32_t in_offset = -a[EL_DW_IN_ZP], out_zp = a[EL_DW_OUT_ZP];
    const int32_t stride_h = a[EL_DW_STRIDE_H], stride_w = a[EL_DW_STRIDE_W];
    const int32_t dil_h = a[EL_DW_DIL_H], dil_w = a[EL_DW_DIL_W];
    const int32_t pad_top = a[EL_DW_PAD_TOP], pad_left = a[EL_DW_PAD_LEFT];

    // Padded rows of one input channel: width spans every tap of an output row, the ring holds every
    // row one output row can reach. Padding holds the zero point (in_offset * sum of weights is folded
    // into the bias, so padding adds w * (zp - zp) = 0, as TFLM skipping it).
    const int64_t wpad = (int64_t)(out_w - 1) * stride_w + (int64_t)(k_w - 1) * dil_w + 1;
    const int64_t nring = (int64_t)(k_h - 1) * dil_h + 1;
    if (el_mul(wpad, nring) <= EL_DW_RING_BYTES && nring <= EL_DW_MAX_RING && k_h * k_w <= EL_DW_MAX_TAPS) {
        el_dw_args d;
        d.input = input;
        d.output = output;
        d.filter = filter;
        d.bias = bias;
        d.mult = mult;
        d.shift = shift;
        d.in_h = in_h;
        d.in_w = in_w;
        d.in_c = in_c;
        d.out_h = out_h;
        d.out_w = out_w;
        d.out_c = out_c;
        d.k_h = k_h;
        d.k_w = k_w;
        d.stride_h = stride_h;
        d.stride_w = stride_w;
        d.dil_h = dil_h;
        d.dil_w = dil_w;
        d.pad_top = pad_top;
        d.pad_left = pad_left;
        d.depth_mult = depth_mult;
        d.in_offset = in_offset;
        d.out_zp = out_zp;
        d.act_min = act_min;
        d.act_max = act_max;
        d.wpad = (int32_t)wpad;
        d.nring = (int32_t)nring;
        el_dw_rows(&d);
        return EL_OK;
    }

    // Anything larger: TFLM's loops as they are.
    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * stride_w - pad_left;
            int8_t *y = output + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)out_c;
            for (int32_t co = 0; co < out_c; ++co) {
                const int32_t ci = co / depth_mult;
                uint32_t acc = 0;
                for (int32_t ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = iy0 + ky * dil_h;
                    if (iy < 0 || iy >= in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = ix0 + kx * dil_w;
                        if (ix < 0 || ix >= in_w) {
                            continue;
                        }
                        const int32_t x = input[((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c
                                                + (size_t)ci];
                        const int32_t w = filter[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)out_c
                                                 + (size_t)co];
                        acc += (uint32_t)((x + in_offset) * w);
                    }
                }
                if (bias != NULL) {
                    acc += (uint32_t)bias[co];
                }
                const int32_t v = el_wadd(el_mbqm_i((int32_t)acc, mult[co], shift[co]), out_zp);
                y[co] = (int8_t)el_clamp(v, act_min, act_max);
            }
        }
    }
    return EL_OK;
}
