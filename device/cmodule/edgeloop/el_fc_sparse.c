// FULLY_CONNECTED with sparse weights (docs/FORMAT.md, encoding 1): TFLM's FullyConnected arithmetic,
// walking the (column delta, value) pairs in place so that zero weights cost nothing.
#include "el_common.h"
EL_HOT

#define EL_FCS_MAX_FEATURES 0xFFFF

#if defined(__GNUC__)
#define EL_NOINLINE __attribute__((noinline))
#else
#define EL_NOINLINE
#endif

// Largest column a row reaches = the sum of its deltas (deltas are >= 0). Summed two deltas per word in
// 16-bit lanes (the low byte of each half-word); 256 words per chunk cannot carry out of a lane. Kept out
// of line so that its loop has the registers to itself.
static EL_NOINLINE int el_fcs_row_ok(const uint32_t *p, uint32_t nwords, uint32_t max_col) {
    uint32_t total = 0;
    while (nwords != 0) {
        const uint32_t chunk = nwords < 256u ? nwords : 256u;
        const uint32_t *end = p + chunk, *end2 = p + (chunk & ~1u);
        nwords -= chunk;
        uint32_t lanes = 0, lanes2 = 0;
        while (p != end2) {
            lanes += p[0] & 0x00FF00FFu;
            lanes2 += p[1] & 0x00FF00FFu;
            p += 2;
        }
        if (p != end) {
            lanes += *p++ & 0x00FF00FFu;
        }
        total += (lanes & 0xFFFFu) + (lanes >> 16) + (lanes2 & 0xFFFFu) + (lanes2 >> 16);
        if (total > max_col) {  // also keeps `total` far from overflowing
            return 0;
        }
    }
    return 1;
}

// One row: sum of value * (x[column] + offset) over the words [p, end) of validated pairs. The offset is
// applied once, through the sum of the values. Out of line for the same reason as el_fcs_row_ok.
static EL_NOINLINE uint32_t el_fcs_dot(const uint32_t *p, const uint32_t *end, const int8_t *x, int32_t offset) {
    uint32_t acc = 0, wsum = 0;
    if ((end - p) & 1) {
        const uint32_t w = *p++;
        const int32_t v0 = (int8_t)(w >> 8), v1 = (int8_t)(w >> 24);
        x += w & 0xFFu;
        acc += (uint32_t)(*x * v0);
        x += (w >> 16) & 0xFFu;
        acc += (uint32_t)(*x * v1);
        wsum += (uint32_t)(v0 + v1);
    }
    while (p != end) {  // two words (four pairs) per turn
        const uint32_t w = p[0], u = p[1];
        p += 2;
        const int32_t v0 = (int8_t)(w >> 8), v1 = (int8_t)(w >> 24);
        const int32_t v2 = (int8_t)(u >> 8), v3 = (int8_t)(u >> 24);
        x += w & 0xFFu;
        acc += (uint32_t)(*x * v0);
        x += (w >> 16) & 0xFFu;
        acc += (uint32_t)(*x * v1);
        x += u & 0xFFu;
        acc += (uint32_t)(*x * v2);
        x += (u >> 16) & 0xFFu;
        acc += (uint32_t)(*x * v3);
        wsum += (uint32_t)(v0 + v1 + v2 + v3);
    }
    return acc + wsum * (uint32_t)offset;
}

// The stream's counts add up to its length and no row reads past column depth - 1.
static int el_fcs_check_stream(const uint8_t *s, int64_t len, int32_t units, int32_t depth) {
    const int64_t head = 4 * (((int64_t)units + 1) / 2);
    if (len < head) {
        return EL_E_SPARSE;
    }
    const uint16_t *nw = (const uint16_t *)(const void *)s;
    int64_t words = 0;
    for (int32_t r = 0; r < units; ++r) {
        words += nw[r];
    }
    if (head + 4 * words != len) {
        return EL_E_SPARSE;
    }
    const uint32_t *p = (const uint32_t *)(const void *)(s + head);
    for (int32_t r = 0; r < units; ++r) {
        if (!el_fcs_row_ok(p, nw[r], (uint32_t)depth - 1u)) {
            return EL_E_SPARSE;
        }
        p += nw[r];
    }
    return EL_OK;
}

int el_fully_connected_sparse(const int32_t *a, size_t nargs, const uint8_t *blob, size_t blob_len,
                              int8_t *arena, size_t arena_len) {
    if (nargs != EL_FCS_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t batches = a[EL_FCS_BATCHES];
    const int32_t depth = a[EL_FCS_IN_FEATURES];
    const int32_t units = a[EL_FCS_OUT_FEATURES];
    const int32_t nq = a[EL_FCS_N_QUANT];
    if (!el_dim_ok(batches) || !el_dim_ok(depth) || !el_dim_ok(units) || depth > EL_FCS_MAX_FEATURES
        || units > EL_FCS_MAX_FEATURES) {
        return EL_E_DIM;
    }
    const int64_t in_len = el_mul(batches, depth);
    const int64_t out_len = el_mul(batches, units);
    const int64_t in_off = a[EL_FCS_IN_OFF];
    const int64_t out_off = a[EL_FCS_OUT_OFF];
    if (!el_in_range(in_off, in_len, arena_len) || !el_in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (el_overlap(in_off, in_len, out_off, out_len)) {
        return EL_E_OVERLAP;
    }
    if (!el_is_int8(a[EL_FCS_IN_ZP]) || !el_is_int8(a[EL_FCS_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_FCS_ACT_MIN];
    const int32_t act_max = a[EL_FCS_ACT_MAX];
    if (!el_clamp_ok(act_min, act_max)) {
        return EL_E_CLAMP;
    }
    if (nq != 1 && nq != units) {
        return EL_E_QUANT;
    }
    const int64_t w_off = a[EL_FCS_W_OFF];
    const int64_t w_len = a[EL_FCS_W_LEN];
    const int64_t b_off = a[EL_FCS_BIAS_OFF];
    if (!el_in_range(w_off, w_len, blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    if (!el_aligned4(blob, w_off)) {
        return EL_E_ALIGN;
    }
    int st = el_check_bias(blob, blob_len, b_off, units);
    if (st == EL_OK) {
        st = el_check_quant(blob, blob_len, a[EL_FCS_MULT_OFF], a[EL_FCS_SHIFT_OFF], nq);
    }
    if (st == EL_OK) {
        st = el_fcs_check_stream(blob + w_off, w_len, units, depth);
    }
    if (st != EL_OK) {
        return st;
    }

    const uint16_t *nwords = (const uint16_t *)(const void *)(blob + w_off);
    const uint32_t *pairs0 = (const uint32_t *)(const void *)(blob + w_off + 4 * (((int64_t)units + 1) / 2));
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t *mult = (const int32_t *)(const void *)(blob + a[EL_FCS_MULT_OFF]);
    const int32_t *shift = (const int32_t *)(const void *)(blob + a[EL_FCS_SHIFT_OFF]);
    const int32_t offset = -a[EL_FCS_IN_ZP];
    const int32_t out_zp = a[EL_FCS_OUT_ZP];
    const int32_t qstep = nq != 1;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = arena + in_off + (int64_t)b * depth;
        int8_t *y = arena + out_off + (int64_t)b * units;
        const uint32_t *p = pairs0;
        for (int32_t r = 0; r < units; ++r) {
            uint32_t acc = el_fcs_dot(p, p + nwords[r], x, offset);
            p += nwords[r];
            if (bias != NULL) {
                acc += (uint32_t)bias[r];
            }
            const int32_t q = r * qstep;
            const int32_t v = el_wadd(el_mbqm_i((int32_t)acc, mult[q], (int)shift[q]), out_zp);
            y[r] = (int8_t)el_clamp(v, act_min, act_max);
        }
    }
    return EL_OK;
}
