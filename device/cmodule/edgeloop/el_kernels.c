// edgeloop int8 kernels. See el_kernels.h. One op, one clear loop, every offset validated first.
#include "el_kernels.h"

static const char *const el_messages[EL_E_COUNT_] = {
    "ok",
    "wrong number of argument words",
    "dimension out of range",
    "activation outside the arena",
    "constant data outside the blob",
    "int32 constant data not 4-byte aligned",
    "input and output activations overlap",
    "zero point outside -128..127",
    "activation clamp invalid",
    "invalid quantization multiplier, shift or channel count",
};

const char *el_status_str(int status) {
    if (status < 0 || status >= EL_E_COUNT_) {
        return "unknown error";
    }
    return el_messages[status];
}

// ---- gemmlowp fixed point, as in TFLM (double rounding) ----

int32_t el_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t n = ab + (ab >= 0 ? (INT64_C(1) << 30) : (1 - (INT64_C(1) << 30)));
    // Division by 2^31 truncating towards zero, without a 64-bit divide (none on Cortex-M0).
    if (n < 0) {
        n += (INT64_C(1) << 31) - 1;
    }
    return (int32_t)(n >> 31);
}

int32_t el_rdbypot(int32_t x, int exponent) {
    int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t el_mbqm(int32_t x, int32_t multiplier, int shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    // TFLM computes x * (1 << left) in int32; wrap explicitly instead of relying on overflow.
    int32_t shifted = (int32_t)((uint32_t)x << left);
    return el_rdbypot(el_srdhm(shifted, multiplier), right);
}

// ---- validation helpers: all sizes in 64 bits so no product can overflow ----

static int in_range(int64_t off, int64_t len, size_t limit) {
    return off >= 0 && len >= 0 && off + len <= (int64_t)limit;
}

static int aligned4(const uint8_t *base, int64_t off) {
    return (((uintptr_t)base + (uintptr_t)off) & 3u) == 0;
}

static int is_int8(int32_t v) {
    return v >= -128 && v <= 127;
}

#define EL_MAX_DIM 0x1000000  // 16 M elements along one axis is beyond any microcontroller

static int dim_ok(int32_t d) {
    return d >= 1 && d <= EL_MAX_DIM;
}

// ---- FULLY_CONNECTED (TFLM reference_integer_ops::FullyConnected, per-channel or per-tensor) ----

int el_fully_connected(const int32_t *a, size_t nargs,
                       const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len) {
    if (nargs != EL_FC_NARGS) {
        return EL_E_NARGS;
    }
    const int32_t batches = a[EL_FC_BATCHES];
    const int32_t depth = a[EL_FC_IN_FEATURES];
    const int32_t units = a[EL_FC_OUT_FEATURES];
    const int32_t nq = a[EL_FC_N_QUANT];
    if (!dim_ok(batches) || !dim_ok(depth) || !dim_ok(units)) {
        return EL_E_DIM;
    }
    const int64_t in_len = (int64_t)batches * depth;
    const int64_t out_len = (int64_t)batches * units;
    const int64_t in_off = a[EL_FC_IN_OFF];
    const int64_t out_off = a[EL_FC_OUT_OFF];
    if (!in_range(in_off, in_len, arena_len) || !in_range(out_off, out_len, arena_len)) {
        return EL_E_ARENA_RANGE;
    }
    if (in_off < out_off + out_len && out_off < in_off + in_len) {
        return EL_E_OVERLAP;
    }
    if (!is_int8(a[EL_FC_IN_ZP]) || !is_int8(a[EL_FC_OUT_ZP])) {
        return EL_E_ZERO_POINT;
    }
    const int32_t act_min = a[EL_FC_ACT_MIN];
    const int32_t act_max = a[EL_FC_ACT_MAX];
    if (!is_int8(act_min) || !is_int8(act_max) || act_min > act_max) {
        return EL_E_CLAMP;
    }
    if (nq != 1 && nq != units) {
        return EL_E_QUANT;
    }
    const int64_t w_off = a[EL_FC_W_OFF];
    const int64_t b_off = a[EL_FC_BIAS_OFF];
    const int64_t m_off = a[EL_FC_MULT_OFF];
    const int64_t s_off = a[EL_FC_SHIFT_OFF];
    if (!in_range(w_off, (int64_t)units * depth, blob_len)
        || (b_off != -1 && !in_range(b_off, 4 * (int64_t)units, blob_len))
        || !in_range(m_off, 4 * (int64_t)nq, blob_len)
        || !in_range(s_off, 4 * (int64_t)nq, blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    if ((b_off != -1 && !aligned4(blob, b_off)) || !aligned4(blob, m_off) || !aligned4(blob, s_off)) {
        return EL_E_ALIGN;
    }
    const int32_t *mult = (const int32_t *)(const void *)(blob + m_off);
    const int32_t *shift = (const int32_t *)(const void *)(blob + s_off);
    for (int32_t q = 0; q < nq; ++q) {
        if (mult[q] < 0 || shift[q] < -31 || shift[q] > 30) {
            return EL_E_QUANT;
        }
    }

    const int8_t *weights = (const int8_t *)(blob + w_off);
    const int32_t *bias = b_off == -1 ? NULL : (const int32_t *)(const void *)(blob + b_off);
    const int32_t in_offset = -a[EL_FC_IN_ZP];
    const int32_t out_zp = a[EL_FC_OUT_ZP];
    const int per_channel = nq != 1;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = arena + in_off + (int64_t)b * depth;
        int8_t *y = arena + out_off + (int64_t)b * units;
        const int8_t *w = weights;
        for (int32_t c = 0; c < units; ++c) {
            // Unsigned accumulation: TFLM's int32 wrap-around, without signed-overflow UB.
            uint32_t acc = 0;
            for (int32_t k = 0; k < depth; ++k) {
                acc += (uint32_t)((x[k] + in_offset) * w[k]);
            }
            w += depth;
            if (bias != NULL) {
                acc += (uint32_t)bias[c];
            }
            const int q = per_channel ? c : 0;
            int32_t v = el_mbqm((int32_t)acc, mult[q], shift[q]) + out_zp;
            v = v < act_min ? act_min : v;
            v = v > act_max ? act_max : v;
            y[c] = (int8_t)v;
        }
    }
    return EL_OK;
}

// ---- CRC-32, nibble table: 64 bytes of table, 2 lookups per byte ----

static const uint32_t el_crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    for (size_t i = 0; i < len; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ el_crc_nibble[crc & 15];
        crc = (crc >> 4) ^ el_crc_nibble[crc & 15];
    }
    return ~crc;
}
