// Ed25519 verification, portable C99 (see el_ed25519.h). Field elements mod p = 2^255 - 19 are 16
// signed 64-bit limbs of radix 2^16 (products are 32x32->64 bit, cheap on Cortex-M3/M4); points are in
// extended twisted Edwards coordinates (RFC 8032 5.1.4). The double scalar multiplication
// [S]B + [k](-A) shares its doublings between the two scalars (Straus).
#include "el_ed25519.h"
#include "el_sha512.h"

// No libc in here: the natmod links without it, so GCC must not turn the copy / clear loops into
// memcpy / memset calls.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

typedef int64_t fe[16];

// The field multiply is the hot loop (about 4,000 calls per verification): unrolled, whatever -O level
// the port builds with (MicroPython ports use -Os).
#if defined(__GNUC__) && !defined(__clang__)
#define EL_DO_PRAGMA(x) _Pragma(#x)
#define EL_UNROLL EL_DO_PRAGMA(GCC unroll 16)
#else
#define EL_UNROLL
#endif

typedef struct {
    fe X, Y, Z, T;
} ge;

// Constants as radix-2^16 limbs (generated from the RFC 8032 values).
static const fe EL_D = {0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const fe EL_D2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const fe EL_SQRTM1 = {0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};
static const fe EL_BX = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const fe EL_BY = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};
static const fe EL_BT = {0xdda3, 0xa5b7, 0x8ab3, 0x6dde, 0x52f5, 0x7751, 0x9f80, 0x20f0, 0xe37d, 0x64ab, 0x4e8e, 0x66ea, 0x7665, 0xd78b, 0x5f0f, 0x6787};
// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes.
static const uint8_t EL_L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2,
    0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};

// ---- field arithmetic mod p ----------------------------------------------------------------------

static void fe_copy(fe o, const fe a) {
    for (int i = 0; i < 16; i++) {
        o[i] = a[i];
    }
}

static void fe_small(fe o, int64_t v) {
    o[0] = v;
    for (int i = 1; i < 16; i++) {
        o[i] = 0;
    }
}

// Carry every limb into [0, 2^16); the carry out of the top limb wraps as 2^256 = 38 (mod p).
static void fe_carry(fe o) {
    EL_UNROLL
    for (int i = 0; i < 16; i++) {
        o[i] += (int64_t)1 << 16;
        int64_t c = o[i] >> 16;   // arithmetic shift: floor division
        if (i < 15) {
            o[i + 1] += c - 1;
        } else {
            o[0] += 38 * (c - 1);
        }
        o[i] -= c * 65536;
    }
}

static void fe_add(fe o, const fe a, const fe b) {
    for (int i = 0; i < 16; i++) {
        o[i] = a[i] + b[i];
    }
}

static void fe_sub(fe o, const fe a, const fe b) {
    for (int i = 0; i < 16; i++) {
        o[i] = a[i] - b[i];
    }
}

// Inputs: limbs below 2^20 in magnitude (fe_mul / fe_carry outputs are below 2^17, and the point formulas
// add or subtract at most four of them). Product scanning, one output limb at a time in a 64-bit
// accumulator, with the reduction folded in: a_i b_j with i + j >= 16 lands on limb i + j - 16 times 38
// (2^256 = 38 mod p); |acc| < 16 * 2^20 * 38 * 2^20 < 2^50. Two carry passes bring every limb below 2^17.
static void fe_mul(fe o, const fe a, const fe b) {
    int32_t x[16], y[16], y38[16];
    for (int i = 0; i < 16; i++) {
        x[i] = (int32_t)a[i];
        y[i] = (int32_t)b[i];
        y38[i] = 38 * y[i];
    }
    EL_UNROLL
    for (int k = 0; k < 16; k++) {
        int64_t acc = 0;
        EL_UNROLL
        for (int i = 0; i <= k; i++) {
            acc += (int64_t)x[i] * y[k - i];
        }
        EL_UNROLL
        for (int i = k + 1; i < 16; i++) {
            acc += (int64_t)x[i] * y38[k + 16 - i];
        }
        o[k] = acc;
    }
    fe_carry(o);
    fe_carry(o);
}

static void fe_sq(fe o, const fe a) {
    fe_mul(o, a, a);
}

// o = a^(p-2) = 1/a
static void fe_inv(fe o, const fe a) {
    fe c;
    fe_copy(c, a);
    for (int i = 253; i >= 0; i--) {
        fe_sq(c, c);
        if (i != 2 && i != 4) {
            fe_mul(c, c, a);
        }
    }
    fe_copy(o, c);
}

// o = a^((p-5)/8) = a^(2^252-3)
static void fe_pow2523(fe o, const fe a) {
    fe c;
    fe_copy(c, a);
    for (int i = 250; i >= 0; i--) {
        fe_sq(c, c);
        if (i != 1) {
            fe_mul(c, c, a);
        }
    }
    fe_copy(o, c);
}

// Canonical little-endian encoding (value reduced into [0, p)).
static void fe_pack(uint8_t out[32], const fe a) {
    fe t, m;
    fe_copy(t, a);
    fe_carry(t);
    fe_carry(t);
    fe_carry(t);
    for (int pass = 0; pass < 2; pass++) {
        m[0] = t[0] - 0xffed;
        for (int i = 1; i < 15; i++) {
            m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
            m[i - 1] &= 0xffff;
        }
        m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
        int64_t borrow = (m[15] >> 16) & 1;
        m[14] &= 0xffff;
        if (!borrow) {   // t >= p: take t - p
            fe_copy(t, m);
        }
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = (uint8_t)(t[i] & 0xff);
        out[2 * i + 1] = (uint8_t)((t[i] >> 8) & 0xff);
    }
}

static void fe_unpack(fe o, const uint8_t in[32]) {
    for (int i = 0; i < 16; i++) {
        o[i] = in[2 * i] + ((int64_t)in[2 * i + 1] << 8);
    }
    o[15] &= 0x7fff;
}

static int fe_equal(const fe a, const fe b) {
    uint8_t x[32], y[32];
    fe_pack(x, a);
    fe_pack(y, b);
    int diff = 0;
    for (int i = 0; i < 32; i++) {
        diff |= x[i] ^ y[i];
    }
    return diff == 0;
}

static int fe_parity(const fe a) {
    uint8_t x[32];
    fe_pack(x, a);
    return x[0] & 1;
}

static int fe_is_zero(const fe a) {
    uint8_t x[32];
    fe_pack(x, a);
    int acc = 0;
    for (int i = 0; i < 32; i++) {
        acc |= x[i];
    }
    return acc == 0;
}

// ---- points ---------------------------------------------------------------------------------------

// r = p + q (RFC 8032 5.1.4, a = -1); r may alias p or q.
static void ge_add(ge *r, const ge *p, const ge *q) {
    fe a, b, c, d, e, f, g, h, t;
    fe_sub(a, p->Y, p->X);
    fe_sub(t, q->Y, q->X);
    fe_mul(a, a, t);
    fe_add(b, p->Y, p->X);
    fe_add(t, q->Y, q->X);
    fe_mul(b, b, t);
    fe_mul(c, p->T, q->T);
    fe_mul(c, c, EL_D2);
    fe_mul(d, p->Z, q->Z);
    fe_add(d, d, d);
    fe_sub(e, b, a);
    fe_sub(f, d, c);
    fe_add(g, d, c);
    fe_add(h, b, a);
    fe_mul(r->X, e, f);
    fe_mul(r->Y, g, h);
    fe_mul(r->T, e, h);
    fe_mul(r->Z, f, g);
}

// r = 2p (RFC 8032 5.1.4); r may alias p.
static void ge_double(ge *r, const ge *p) {
    fe a, b, c, e, f, g, h, s;
    fe_sq(a, p->X);
    fe_sq(b, p->Y);
    fe_sq(c, p->Z);
    fe_add(c, c, c);
    fe_add(h, a, b);
    fe_add(s, p->X, p->Y);
    fe_sq(s, s);
    fe_sub(e, h, s);
    fe_sub(g, a, b);
    fe_add(f, c, g);
    fe_mul(r->X, e, f);
    fe_mul(r->Y, g, h);
    fe_mul(r->T, e, h);
    fe_mul(r->Z, f, g);
}

// RFC 8032 5.1.3. Returns 0, or -1 when `s` encodes no point (y >= p, no square root, or x = 0 with
// the sign bit set).
static int ge_decode(ge *r, const uint8_t s[32]) {
    // y >= p happens only for the encodings 2^255 - 19 .. 2^255 - 1 of the low 255 bits.
    int all_ff = (s[31] & 0x7f) == 0x7f;
    for (int i = 1; i < 31; i++) {
        all_ff &= s[i] == 0xff;
    }
    if (all_ff && s[0] >= 0xed) {
        return -1;
    }
    int sign = s[31] >> 7;
    fe one, u, v, v3, x, t, vx2;
    fe_small(one, 1);
    fe_unpack(r->Y, s);
    fe_sq(u, r->Y);
    fe_mul(v, u, EL_D);
    fe_sub(u, u, one);             // u = y^2 - 1
    fe_add(v, v, one);             // v = d y^2 + 1
    fe_sq(v3, v);
    fe_mul(v3, v3, v);             // v^3
    fe_sq(t, v3);
    fe_mul(t, t, v);               // v^7
    fe_mul(t, t, u);               // u v^7
    fe_pow2523(t, t);              // (u v^7)^((p-5)/8)
    fe_mul(x, u, v3);
    fe_mul(x, x, t);               // x = u v^3 (u v^7)^((p-5)/8)
    fe_sq(vx2, x);
    fe_mul(vx2, vx2, v);
    if (!fe_equal(vx2, u)) {
        fe zero;
        fe_small(zero, 0);
        fe_sub(t, zero, u);
        if (!fe_equal(vx2, t)) {
            return -1;
        }
        fe_mul(x, x, EL_SQRTM1);
    }
    if (fe_is_zero(x) && sign) {
        return -1;
    }
    if (fe_parity(x) != sign) {
        fe zero;
        fe_small(zero, 0);
        fe_sub(x, zero, x);
        fe_carry(x);
    }
    fe_copy(r->X, x);
    fe_small(r->Z, 1);
    fe_mul(r->T, x, r->Y);
    return 0;
}

static void ge_encode(uint8_t out[32], const ge *p) {
    fe zi, x, y;
    fe_inv(zi, p->Z);
    fe_mul(x, p->X, zi);
    fe_mul(y, p->Y, zi);
    fe_pack(out, y);
    out[31] ^= (uint8_t)(fe_parity(x) << 7);
}

// ---- scalars mod L --------------------------------------------------------------------------------

static int sc_is_canonical(const uint8_t s[32]) {   // s < L
    for (int i = 31; i >= 0; i--) {
        if (s[i] < EL_L[i]) {
            return 1;
        }
        if (s[i] > EL_L[i]) {
            return 0;
        }
    }
    return 0;   // s == L
}

// r = h mod L for a 512-bit little-endian h: folds the top bytes down with 2^252 = -(L - 2^252).
static void sc_reduce(uint8_t r[32], const uint8_t h[64]) {
    int64_t x[64];
    for (int i = 0; i < 64; i++) {
        x[i] = h[i];
    }
    for (int i = 63; i >= 32; i--) {
        int64_t carry = 0;
        int j;
        for (j = i - 32; j < i - 12; j++) {
            x[j] += carry - 16 * x[i] * EL_L[j - (i - 32)];
            carry = (x[j] + 128) >> 8;
            x[j] -= carry * 256;
        }
        x[j] += carry;
        x[i] = 0;
    }
    int64_t carry = 0;
    for (int j = 0; j < 32; j++) {
        x[j] += carry - (x[31] >> 4) * EL_L[j];
        carry = x[j] >> 8;
        x[j] &= 255;
    }
    for (int j = 0; j < 32; j++) {
        x[j] -= carry * EL_L[j];
    }
    for (int i = 0; i < 32; i++) {
        x[i + 1] += x[i] >> 8;
        r[i] = (uint8_t)(x[i] & 255);
    }
}

// ---- verification ---------------------------------------------------------------------------------

int el_ed25519_verify(const uint8_t sig[64], const uint8_t pub[32], const uint8_t *msg, size_t len) {
    if (!sc_is_canonical(sig + 32)) {
        return 0;
    }
    ge a;
    if (ge_decode(&a, pub) != 0) {
        return 0;
    }
    uint8_t h[64], k[32];
    el_sha512_ctx ctx;
    el_sha512_init(&ctx);
    el_sha512_update(&ctx, sig, 32);
    el_sha512_update(&ctx, pub, 32);
    el_sha512_update(&ctx, msg, len);
    el_sha512_final(&ctx, h);
    sc_reduce(k, h);

    // -A, B and B - A for the joint ladder
    fe zero;
    fe_small(zero, 0);
    fe_sub(a.X, zero, a.X);
    fe_carry(a.X);
    fe_sub(a.T, zero, a.T);
    fe_carry(a.T);
    ge b, ba, q;
    fe_copy(b.X, EL_BX);
    fe_copy(b.Y, EL_BY);
    fe_small(b.Z, 1);
    fe_copy(b.T, EL_BT);
    ge_add(&ba, &b, &a);
    fe_small(q.X, 0);
    fe_small(q.Y, 1);
    fe_small(q.Z, 1);
    fe_small(q.T, 0);
    const uint8_t *s = sig + 32;
    for (int i = 252; i >= 0; i--) {   // S, k < L < 2^253
        ge_double(&q, &q);
        int bs = (s[i >> 3] >> (i & 7)) & 1;
        int bk = (k[i >> 3] >> (i & 7)) & 1;
        if (bs && bk) {
            ge_add(&q, &q, &ba);
        } else if (bs) {
            ge_add(&q, &q, &b);
        } else if (bk) {
            ge_add(&q, &q, &a);
        }
    }
    uint8_t enc[32];
    ge_encode(enc, &q);
    int diff = 0;
    for (int i = 0; i < 32; i++) {
        diff |= enc[i] ^ sig[i];
    }
    return diff == 0;
}
