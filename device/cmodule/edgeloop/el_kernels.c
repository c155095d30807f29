// edgeloop kernels: status messages, exported fixed-point primitives, CRC-32.
// The ops live one per file (el_fc.c, el_conv.c, ...); see el_kernels.h for their argument words.
#include "el_common.h"

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
    "invalid stride, dilation, padding or filter size",
    "op parameter out of range",
    "values outside the range TFLM computes",
    "sparse weight counts or column indices out of range",
};

const char *el_status_str(int status) {
    if (status < 0 || status >= EL_E_COUNT_) {
        return "unknown error";
    }
    return el_messages[status];
}

// ---- validation of per-channel quantization arrays (every call, every channel: keep it tight) ----

int el_check_quant(const uint8_t *blob, size_t blob_len, int64_t m_off, int64_t s_off, int64_t n) {
    if (!el_in_range(m_off, 4 * n, blob_len) || !el_in_range(s_off, 4 * n, blob_len)) {
        return EL_E_BLOB_RANGE;
    }
    if (!el_aligned4(blob, m_off) || !el_aligned4(blob, s_off)) {
        return EL_E_ALIGN;
    }
    const int32_t *mult = (const int32_t *)(const void *)(blob + m_off);
    const int32_t *shift = (const int32_t *)(const void *)(blob + s_off);
    const int32_t *mend = mult + n;  // n <= 2^24 (a validated dimension)
    // Branch-free: t = shift + 31 must be in [0, 61], i.e. t and 61 - t both without the top bit;
    // a multiplier must not have it either.
    uint32_t bad = 0;
    while (mult < mend) {
        const uint32_t t = (uint32_t)*shift++ + 31u;
        bad |= (uint32_t)*mult++ | t | (61u - t);
    }
    return bad >> 31 ? EL_E_QUANT : EL_OK;
}

// ---- gemmlowp fixed point, as in TFLM (double rounding); the kernels use the inline versions ----

int32_t el_srdhm(int32_t a, int32_t b) {
    return el_srdhm_i(a, b);
}

int32_t el_rdbypot(int32_t x, int exponent) {
    return el_rdbypot_i(x, exponent);
}

int32_t el_mbqm(int32_t x, int32_t multiplier, int shift) {
    return el_mbqm_i(x, multiplier, shift);
}

#ifdef EL_HOST_TESTS  // only the host tests call these; the boards keep the flash
int32_t el_exp_neg(int32_t a, int integer_bits) {
    return el_exp_on_negative_values(a, integer_bits);
}

int32_t el_logistic_fp(int32_t a, int integer_bits) {
    return el_fp_logistic(a, integer_bits);
}
#endif

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
