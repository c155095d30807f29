// Shared core of FULLY_CONNECTED and CONV_2D: see el_gemm.h.
//
// Layout: an activation panel xbuf[k][P] (int32 x' = x - zero point, P pixels interleaved, a k-chunk at
// a time), the weight rows read in place from the blob, accumulators acc[p][row] of a tile of up to
// EL_RT rows, and a requantization table of the tile's rows. Micro-kernels run over all the row groups
// of a tile in one call. Portable C everywhere, plus per ISA where gcc's code is far from the machine:
//   armv7m (Cortex-M3/M4/M7): CONV_2D on 2 rows x 3 pixels with SMLAL, two weight rows packed in one
//       operand (w0 + w1 * 2^23) so that one instruction does two MACs (64-bit lanes stay exact over
//       chunks of <= 128 taps); FULLY_CONNECTED (one pixel) with MLA on 4 rows; requantization.
//   armv6m (Cortex-M0/M0+): 4 rows, accumulators in high registers (8 low registers only);
//       FULLY_CONNECTED requantization.
//   rv32imc: CONV_2D on 4 rows x 4 pixels, requantized in the kernel's epilogue; FULLY_CONNECTED on
//       8 rows; requantization.
//   x86-64 (SSE2: the unix port, the x64 natmod): FULLY_CONNECTED with PMADDWD, 8 taps x 4 rows a step.
#include "el_gemm.h"
EL_HOT

#if defined(EL_FORCE_GENERIC)
#define EL_ARCH_GENERIC 1
#elif defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
#define EL_ARCH_ARMV7M 1
#elif defined(__ARM_ARCH_6M__)
#define EL_ARCH_ARMV6M 1
#elif defined(__riscv) && defined(__riscv_xlen) && __riscv_xlen == 32
#define EL_ARCH_RV32 1
#else
#define EL_ARCH_GENERIC 1
#endif
#if EL_ARCH_GENERIC && defined(__SSE2__) && !defined(EL_FORCE_GENERIC)
#define EL_X86_SSE2 1
#endif

#define EL_XBUF_WORDS 512   // activation panel: 2 KB of stack
#define EL_RT 32            // rows per tile; the armv7m assembly assumes 32 (128 bytes per acc row)
#define EL_MAX_P 4

// Arguments of a micro-kernel call (the assembly reads the fields at offsets 0, 4, ..., 40).
typedef struct {
    const int32_t *x;   // panel [kc][P]
    const int8_t *w;    // row 0 of the tile, at the chunk's first tap
    int32_t wstride;    // bytes from one weight row to the next (k)
    int32_t ngroups;    // groups of R rows to compute
    int32_t kc;         // taps in this chunk, >= 1 (<= kc_max)
    uint32_t *acc;      // acc[p * EL_RT + row]
    int32_t first;      // 1: store the sums, 0: add them
    // Only the RISC-V conv kernel reads these: with rq != NULL (last chunk, 4 pixels, table entries with
    // e >= 2) it requantizes in its epilogue into y[p * ystride + row] instead of storing the sums.
    const el_rqe_t *rq; // table entry of the tile's row 0
    int8_t *y;          // output of pixel 0, row 0
    int32_t ystride;
    const int32_t *zlh; // {zp, lo, hi}
} el_mk_args;

typedef void (*el_micro_fn)(const el_mk_args *a);
typedef struct {
    el_micro_fn fn;
    int r, p;
    int32_t kc_max;     // taps per call with x' = x - zero point (|x'| <= 255)
    int32_t kc_max_raw; // taps per call with raw x (|x| <= 128)
    int32_t rt;         // rows per tile: a multiple of r, <= EL_RT
} el_micro_t;

#define EL_MAC(a, x, w) a += (uint32_t)((x) * (w))

EL_INLINE void el_acc_put(uint32_t *acc, uint32_t v, int first) {
    *acc = first ? v : *acc + v;
}

// ---- portable micro-kernels ----

// Tail rows (and any P): one row at a time.
static void el_micro_c_r1(const el_mk_args *a, int P) {
    if (P == 1) {
        for (int32_t g = 0; g < a->ngroups; ++g) {
            const int8_t *w = a->w + (size_t)g * (size_t)a->wstride;
            const int32_t *x = a->x, *xe = x + a->kc;
            uint32_t s = 0;
            while (x < xe) {
                EL_MAC(s, *x++, *w++);
            }
            el_acc_put(a->acc + g, s, a->first);
        }
        return;
    }
    for (int32_t g = 0; g < a->ngroups; ++g) {
        const int8_t *w = a->w + (size_t)g * (size_t)a->wstride;
        for (int p = 0; p < P; ++p) {
            uint32_t s = 0;
            for (int32_t i = 0; i < a->kc; ++i) {
                EL_MAC(s, a->x[i * P + p], w[i]);
            }
            el_acc_put(a->acc + p * EL_RT + g, s, a->first);
        }
    }
}

#if EL_ARCH_GENERIC
// Group g's four weight rows (from w0, stride ws) against x[i0..kc), added to the sums a0..a3, then stored
// into the group's accumulators. The portable FC kernel runs all of it; the SSE2 one only its tail.
EL_INLINE void el_r4_rows(const el_mk_args *a, int32_t g, const int8_t *w0, size_t ws, int32_t i0,
                          uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
    const int8_t *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    const int32_t *x = a->x;
    for (int32_t i = i0; i < a->kc; ++i) {
        const int32_t xv = x[i];
        EL_MAC(a0, xv, w0[i]);
        EL_MAC(a1, xv, w1[i]);
        EL_MAC(a2, xv, w2[i]);
        EL_MAC(a3, xv, w3[i]);
    }
    uint32_t *acc = a->acc + 4 * g;
    el_acc_put(acc, a0, a->first);
    el_acc_put(acc + 1, a1, a->first);
    el_acc_put(acc + 2, a2, a->first);
    el_acc_put(acc + 3, a3, a->first);
}
#endif

#if EL_ARCH_GENERIC && !EL_X86_SSE2
static void el_micro_c_r4p1(const el_mk_args *a) {
    const size_t ws = (size_t)a->wstride;
    for (int32_t g = 0; g < a->ngroups; ++g) {
        el_r4_rows(a, g, a->w + 4 * (size_t)g * ws, ws, 0, 0, 0, 0, 0);
    }
}
#endif

#if EL_ARCH_GENERIC
static void el_micro_c_r4p3(const el_mk_args *a) {
    const size_t ws = (size_t)a->wstride;
    for (int32_t g = 0; g < a->ngroups; ++g) {
        const int8_t *w0 = a->w + 4 * (size_t)g * ws, *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
        const int32_t *x = a->x, *xe = x + 3 * a->kc;
        uint32_t a00 = 0, a01 = 0, a02 = 0, a10 = 0, a11 = 0, a12 = 0;
        uint32_t a20 = 0, a21 = 0, a22 = 0, a30 = 0, a31 = 0, a32 = 0;
        while (x < xe) {
            const int32_t x0 = x[0], x1 = x[1], x2 = x[2];
            int32_t w;
            x += 3;
            w = *w0++;
            EL_MAC(a00, x0, w);
            EL_MAC(a01, x1, w);
            EL_MAC(a02, x2, w);
            w = *w1++;
            EL_MAC(a10, x0, w);
            EL_MAC(a11, x1, w);
            EL_MAC(a12, x2, w);
            w = *w2++;
            EL_MAC(a20, x0, w);
            EL_MAC(a21, x1, w);
            EL_MAC(a22, x2, w);
            w = *w3++;
            EL_MAC(a30, x0, w);
            EL_MAC(a31, x1, w);
            EL_MAC(a32, x2, w);
        }
        uint32_t *acc = a->acc + 4 * g;
        const int f = a->first;
        el_acc_put(acc, a00, f);
        el_acc_put(acc + 1, a10, f);
        el_acc_put(acc + 2, a20, f);
        el_acc_put(acc + 3, a30, f);
        el_acc_put(acc + EL_RT, a01, f);
        el_acc_put(acc + EL_RT + 1, a11, f);
        el_acc_put(acc + EL_RT + 2, a21, f);
        el_acc_put(acc + EL_RT + 3, a31, f);
        el_acc_put(acc + 2 * EL_RT, a02, f);
        el_acc_put(acc + 2 * EL_RT + 1, a12, f);
        el_acc_put(acc + 2 * EL_RT + 2, a22, f);
        el_acc_put(acc + 2 * EL_RT + 3, a32, f);
    }
}

#if EL_X86_SSE2
// x86-64 (the unix port, the x64 natmod, the host library): FULLY_CONNECTED with PMADDWD, 8 taps of 4
// rows per step. Panel values |x'| <= 255 and weights fit int16, so the packing never saturates and each
// pair sum (<= 2 * 255 * 128) fits an int32 lane; lane adds wrap like the uint32 sums of the C kernels.
#include <emmintrin.h>

EL_INLINE __m128i el_w8_s16(const int8_t *w) {  // 8 int8 weights -> 8 int16
    const __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)w);
    return _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
}

EL_INLINE uint32_t el_hsum(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xB1));
    return (uint32_t)_mm_cvtsi128_si32(v);
}

static void el_micro_sse2_r4p1(const el_mk_args *a) {
    const size_t ws = (size_t)a->wstride;
    const int32_t kc = a->kc, k8 = kc & ~7;
    for (int32_t g = 0; g < a->ngroups; ++g) {
        const int8_t *w0 = a->w + 4 * (size_t)g * ws, *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
        const int32_t *x = a->x;
        __m128i s0 = _mm_setzero_si128(), s1 = s0, s2 = s0, s3 = s0;
        for (int32_t i = 0; i < k8; i += 8) {
            const __m128i xv = _mm_packs_epi32(_mm_loadu_si128((const __m128i *)(const void *)(x + i)),
                                               _mm_loadu_si128((const __m128i *)(const void *)(x + i + 4)));
            s0 = _mm_add_epi32(s0, _mm_madd_epi16(xv, el_w8_s16(w0 + i)));
            s1 = _mm_add_epi32(s1, _mm_madd_epi16(xv, el_w8_s16(w1 + i)));
            s2 = _mm_add_epi32(s2, _mm_madd_epi16(xv, el_w8_s16(w2 + i)));
            s3 = _mm_add_epi32(s3, _mm_madd_epi16(xv, el_w8_s16(w3 + i)));
        }
        el_r4_rows(a, g, w0, ws, k8, el_hsum(s0), el_hsum(s1), el_hsum(s2), el_hsum(s3));
    }
}
static const el_micro_t el_micro_fc = {el_micro_sse2_r4p1, 4, 1, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
#else
static const el_micro_t el_micro_fc = {el_micro_c_r4p1, 4, 1, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
#endif
static const el_micro_t el_micro_conv = {el_micro_c_r4p3, 4, 3, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
#endif

// ---- armv7m ----
#if EL_ARCH_ARMV7M
// FULLY_CONNECTED, one pixel: 5 rows with MLA, 8 taps per loop turn (90 instructions / 40 MACs);
// the first tap uses MUL, so the sums need no clearing. Loop registers: r0 x, r1 end, r2-r6 weight
// rows, r7-r11 sums, r12 x', lr w. Frame: [sp] args, [sp, 4] weight cursor, [sp, 8] acc cursor,
// [sp, 12] groups left, [sp, 16] x end, [sp, 20] end of the taps before the unrolled loop.
#define EL_M3_FC_STEP(op) \
        "ldr r12, [r0], #4\n" \
        "ldrsb lr, [r2], #1\n" \
        op " r7, r12, lr" EL_M3_ACC(r7) "\n" \
        "ldrsb lr, [r3], #1\n" \
        op " r8, r12, lr" EL_M3_ACC(r8) "\n" \
        "ldrsb lr, [r4], #1\n" \
        op " r9, r12, lr" EL_M3_ACC(r9) "\n" \
        "ldrsb lr, [r5], #1\n" \
        op " r10, r12, lr" EL_M3_ACC(r10) "\n" \
        "ldrsb lr, [r6], #1\n" \
        op " r11, r12, lr" EL_M3_ACC(r11) "\n"
__attribute__((naked)) static void el_micro_m3_r5p1(const el_mk_args *a) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "sub sp, sp, #24\n"
        "str r0, [sp]\n"
        "ldr r1, [r0, #4]\n"
        "str r1, [sp, #4]\n"
        "ldr r1, [r0, #20]\n"
        "str r1, [sp, #8]\n"
        "ldr r1, [r0, #12]\n"
        "str r1, [sp, #12]\n"
        "ldr r2, [r0, #0]\n"
        "ldr r1, [r0, #16]\n"
        "add r3, r2, r1, lsl #2\n"
        "str r3, [sp, #16]\n"
        "sub r1, r1, #1\n"
        "and r1, r1, #7\n"
        "add r1, r2, r1, lsl #2\n"
        "add r1, r1, #4\n"
        "str r1, [sp, #20]\n"
        "5:\n"
        "ldr r12, [sp]\n"
        "ldr r2, [sp, #4]\n"
        "ldr lr, [r12, #8]\n"
        "add r3, r2, lr\n"
        "add r4, r3, lr\n"
        "add r5, r4, lr\n"
        "add r6, r5, lr\n"
        "add lr, r6, lr\n"
        "str lr, [sp, #4]\n"
        "ldr r0, [r12, #0]\n"
#define EL_M3_ACC(r)
        EL_M3_FC_STEP("mul")
#undef EL_M3_ACC
#define EL_M3_ACC(r) ", " #r
        "ldr r1, [sp, #20]\n"
        "cmp r0, r1\n"
        "beq 2f\n"
        "1:\n"
        EL_M3_FC_STEP("mla")
        "cmp r0, r1\n"
        "bne 1b\n"
        "2:\n"
        "ldr r1, [sp, #16]\n"
        "cmp r0, r1\n"
        "beq 4f\n"
        "3:\n"
        EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla")
        EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla") EL_M3_FC_STEP("mla")
#undef EL_M3_ACC
        "cmp r0, r1\n"
        "bne 3b\n"
        "4:\n"
        "ldr r1, [sp, #8]\n"
        "ldr r12, [sp]\n"
        "ldr r12, [r12, #24]\n"
        "cmp r12, #0\n"
        "bne 6f\n"
        "ldm r1, {r0, r2, r3, r4, r5}\n"
        "add r7, r7, r0\n"
        "add r8, r8, r2\n"
        "add r9, r9, r3\n"
        "add r10, r10, r4\n"
        "add r11, r11, r5\n"
        "6:\n"
        "stm r1!, {r7, r8, r9, r10, r11}\n"
        "str r1, [sp, #8]\n"
        "ldr r1, [sp, #12]\n"
        "subs r1, r1, #1\n"
        "str r1, [sp, #12]\n"
        "bne 5b\n"
        "add sp, sp, #24\n"
        "pop {r4-r11, pc}\n");
}
#undef EL_M3_FC_STEP

// One row, one pixel (the rows FULLY_CONNECTED's 5-row groups leave over): MLA, 4 taps per turn.
// r0 x, r1 end, r2 w, r3 sum, r4 x', r5 w'; r6 args, r7 rows left, r8 acc, r9 weight cursor.
__attribute__((naked)) static void el_micro_m3_r1p1(const el_mk_args *a) {
    __asm__ volatile(
        "push {r4-r9, lr}\n"
        "mov r6, r0\n"
        "ldr r7, [r6, #12]\n"
        "ldr r8, [r6, #20]\n"
        "ldr r9, [r6, #4]\n"
        "5:\n"
        "mov r2, r9\n"
        "ldr r0, [r6, #8]\n"
        "add r9, r9, r0\n"
        "ldr r0, [r6, #0]\n"
        "ldr r1, [r6, #16]\n"
        "movs r3, #0\n"
        "and r4, r1, #3\n"
        "add r1, r0, r1, lsl #2\n"
        "cbz r4, 2f\n"
        "1:\n"
        "ldr r5, [r0], #4\n"
        "ldrsb r12, [r2], #1\n"
        "mla r3, r5, r12, r3\n"
        "subs r4, r4, #1\n"
        "bne 1b\n"
        "2:\n"
        "cmp r0, r1\n"
        "beq 4f\n"
        "3:\n"
        "ldm r0!, {r4, r5}\n"
        "ldrsb r12, [r2], #1\n"
        "mla r3, r4, r12, r3\n"
        "ldrsb r12, [r2], #1\n"
        "mla r3, r5, r12, r3\n"
        "ldm r0!, {r4, r5}\n"
        "ldrsb r12, [r2], #1\n"
        "mla r3, r4, r12, r3\n"
        "ldrsb r12, [r2], #1\n"
        "mla r3, r5, r12, r3\n"
        "cmp r0, r1\n"
        "bne 3b\n"
        "4:\n"
        "ldr r4, [r6, #24]\n"
        "cbnz r4, 6f\n"
        "ldr r4, [r8]\n"
        "add r3, r3, r4\n"
        "6:\n"
        "str r3, [r8], #4\n"
        "subs r7, r7, #1\n"
        "bne 5b\n"
        "pop {r4-r9, pc}\n");
}

// CONV_2D: 2 rows x 3 pixels with SMLAL. The two rows' weights are packed in one operand,
// W = w0 + w1 * 2^23, so one SMLAL adds x*w0 + x*w1 * 2^23 into a pixel's 64-bit lane pair: 2 MACs
// per instruction. With kc <= 128 taps |sum x*w0| <= 128 * 255 * 128 < 2^22, so the low 23 bits hold
// sum x*w0 exactly and the rest is sum x*w1. 16 instructions / 12 MACs in the loop.
// Loop registers: r0 x, r1 w0, r2 w1, r3 end, r4:r5 r6:r7 r8:r9 lanes of pixels 0..2, r10 W,
// r11 r12 lr the pixels' x'. Frame: [sp] args, [sp, 4] weight cursor, [sp, 8] acc cursor,
// [sp, 12] pairs left.
__attribute__((naked)) static void el_micro_m3_r2p3(const el_mk_args *a) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "sub sp, sp, #16\n"
        "str r0, [sp]\n"
        "ldr r1, [r0, #4]\n"
        "str r1, [sp, #4]\n"
        "ldr r1, [r0, #20]\n"
        "str r1, [sp, #8]\n"
        "ldr r1, [r0, #12]\n"
        "str r1, [sp, #12]\n"
        "5:\n"
        "ldr r12, [sp]\n"
        "ldr r1, [sp, #4]\n"
        "ldr r3, [r12, #8]\n"
        "add r2, r1, r3\n"
        "add r3, r2, r3\n"
        "str r3, [sp, #4]\n"
        "ldr r0, [r12, #0]\n"
        "ldr r3, [r12, #16]\n"
        "add r3, r3, r3, lsl #1\n"
        "add r3, r0, r3, lsl #2\n"
        // first tap: SMULL starts the lanes
        "ldrsb r10, [r1], #1\n"
        "ldrsb r11, [r2], #1\n"
        "add r10, r10, r11, lsl #23\n"
        "ldm r0!, {r11, r12, lr}\n"
        "smull r4, r5, r11, r10\n"
        "smull r6, r7, r12, r10\n"
        "smull r8, r9, lr, r10\n"
        // remaining kc - 1 taps: one if that is odd, then pairs
        "sub r11, r3, r0\n"
        "tst r11, #4\n"  // (kc - 1) * 12 bytes: bit 2 set iff kc - 1 is odd

        "beq 2f\n"
#define EL_M3_CONV_STEP \
        "ldrsb r10, [r1], #1\n" \
        "ldrsb r11, [r2], #1\n" \
        "add r10, r10, r11, lsl #23\n" \
        "ldm r0!, {r11, r12, lr}\n" \
        "smlal r4, r5, r11, r10\n" \
        "smlal r6, r7, r12, r10\n" \
        "smlal r8, r9, lr, r10\n"
        EL_M3_CONV_STEP
        "2:\n"
        "cmp r0, r3\n"
        "beq 4f\n"
        "3:\n"
        EL_M3_CONV_STEP EL_M3_CONV_STEP
#undef EL_M3_CONV_STEP
        "cmp r0, r3\n"
        "bne 3b\n"
        "4:\n"
        // lanes hi:lo = A + B * 2^23 -> A (row 0) and B (row 1), for each pixel
        "sbfx r10, r4, #0, #23\n"
        "subs r4, r4, r10\n"
        "sbc r5, r5, r10, asr #31\n"
        "lsrs r4, r4, #23\n"
        "orr r4, r4, r5, lsl #9\n"
        "sbfx r11, r6, #0, #23\n"
        "subs r6, r6, r11\n"
        "sbc r7, r7, r11, asr #31\n"
        "lsrs r6, r6, #23\n"
        "orr r6, r6, r7, lsl #9\n"
        "sbfx r12, r8, #0, #23\n"
        "subs r8, r8, r12\n"
        "sbc r9, r9, r12, asr #31\n"
        "lsrs r8, r8, #23\n"
        "orr r8, r8, r9, lsl #9\n"
        // acc[p * 32 + row], rows (r, r + 1): pixel 0 (r10, r4), 1 (r11, r6), 2 (r12, r8)
        "ldr r1, [sp, #8]\n"
        "ldr r2, [sp]\n"
        "ldr r2, [r2, #24]\n"
        "cmp r2, #0\n"
        "bne 6f\n"
        "ldrd r0, r2, [r1]\n"
        "add r10, r10, r0\n"
        "add r4, r4, r2\n"
        "ldrd r0, r2, [r1, #128]\n"
        "add r11, r11, r0\n"
        "add r6, r6, r2\n"
        "ldrd r0, r2, [r1, #256]\n"
        "add r12, r12, r0\n"
        "add r8, r8, r2\n"
        "6:\n"
        "strd r10, r4, [r1]\n"
        "strd r11, r6, [r1, #128]\n"
        "strd r12, r8, [r1, #256]\n"
        "add r1, r1, #8\n"
        "str r1, [sp, #8]\n"
        "ldr r1, [sp, #12]\n"
        "subs r1, r1, #1\n"
        "str r1, [sp, #12]\n"
        "bne 5b\n"
        "add sp, sp, #16\n"
        "pop {r4-r11, pc}\n");
}

static const el_micro_t el_micro_fc = {el_micro_m3_r5p1, 5, 1, 0x7FFFFFFF, 0x7FFFFFFF, 30};
// lanes: 128 * 255 * 128 < 2^22 with x', 255 * 128 * 128 < 2^22 with raw x
static const el_micro_t el_micro_conv = {el_micro_m3_r2p3, 2, 3, 128, 255, EL_RT};

// Requantize n outputs of one pixel: y[i] = clamp(MBQM(acc[i] + bias) + zp) from table entries with
// e >= 1 (19 instructions per output). r0 acc, r1 table, r2 n >= 1, r3 y, [sp] {zp, lo, hi}.
__attribute__((naked)) static void el_requant_m3(const uint32_t *acc, const el_rqe_t *t, int32_t n, int8_t *y,
                                                  const int32_t *zp_lo_hi) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "ldr r4, [sp, #36]\n"
        "ldr r5, [r4, #4]\n"
        "ldr r6, [r4, #8]\n"
        "ldr r4, [r4]\n"
        "1:\n"
        "ldr r7, [r0], #4\n"
        "ldm r1!, {r8, r9, r10, r11, r12}\n"
        "add r7, r7, r8\n"
        "smlal r10, r11, r7, r9\n"
        "and r8, r7, #0x80000000\n"
        "adds r10, r10, r8\n"
        "adc r11, r11, r7, asr #31\n"
        "asr r11, r11, r12\n"
        "add r11, r11, r4\n"
        "cmp r11, r5\n"
        "it lt\n"
        "movlt r11, r5\n"
        "cmp r11, r6\n"
        "it gt\n"
        "movgt r11, r6\n"
        "strb r11, [r3], #1\n"
        "subs r2, r2, #1\n"
        "bne 1b\n"
        "pop {r4-r11, pc}\n");
}

// The same straight from the bias / multiplier / shift arrays (no table: for FULLY_CONNECTED, where
// every output is computed once): K = 2^30 + 2^(30+e) is built in registers, t = 1 << (e - 1):
// K high word = t >> 1, low word = 2^30 | t << 31. Shifts >= 0 take the out-of-line path.
// r0 acc, r1 n >= 1, r2 y, r3 {bias[], mult[], shift[], zp, lo, hi}; 27 instructions per output.
__attribute__((naked)) static void el_requant_direct_m3(const uint32_t *acc, int32_t n, int8_t *y,
                                                         const int32_t *const *args) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "ldm r3, {r4, r5, r6, r7, r8, r9}\n"
        "1:\n"
        "ldr r10, [r0], #4\n"
        "ldr r3, [r4], #4\n"
        "add r10, r10, r3\n"
        "ldr r12, [r6], #4\n"
        "ldr r11, [r5], #4\n"
        "mvns lr, r12\n"
        "bmi 9f\n"
        "mov r3, #1\n"
        "lsl r3, r3, lr\n"
        "lsl r12, r3, #31\n"
        "orr r12, r12, #0x40000000\n"
        "lsr r3, r3, #1\n"
        "smlal r12, r3, r10, r11\n"
        "and r11, r10, #0x80000000\n"
        "adds r12, r12, r11\n"
        "adc r3, r3, r10, asr #31\n"
        "asr r3, r3, lr\n"
        "8:\n"
        "add r3, r3, r7\n"
        "cmp r3, r8\n"
        "it lt\n"
        "movlt r3, r8\n"
        "cmp r3, r9\n"
        "it gt\n"
        "movgt r3, r9\n"
        "strb r3, [r2], #1\n"
        "subs r1, r1, #1\n"
        "bne 1b\n"
        "pop {r4-r11, pc}\n"
        "9:\n"
        "lsl r10, r10, r12\n"
        "mov r12, #0x40000000\n"
        "mov r3, #0\n"
        "smlal r12, r3, r10, r11\n"
        "lsr r12, r12, #31\n"
        "orr r3, r12, r3, lsl #1\n"
        "b 8b\n");
}
#define EL_HAVE_REQUANT_ASM 1
#define EL_HAVE_DIRECT 1
#endif


// ---- rv32imc ----
#if EL_ARCH_RV32
// Naked functions: the bodies save what they use. Arguments: a0 = el_mk_args
// {x 0, w 4, wstride 8, ngroups 12, kc 16, acc 20, first 24}.
#define EL_RV_SAVE \
    "addi sp, sp, -64\n" \
    "sw s0, 0(sp)\n" "sw s1, 4(sp)\n" "sw s2, 8(sp)\n" "sw s3, 12(sp)\n" \
    "sw s4, 16(sp)\n" "sw s5, 20(sp)\n" "sw s6, 24(sp)\n" "sw s7, 28(sp)\n" \
    "sw s8, 32(sp)\n" "sw s9, 36(sp)\n" "sw s10, 40(sp)\n" "sw s11, 44(sp)\n" \
    "sw ra, 48(sp)\n"
#define EL_RV_RESTORE \
    "lw s0, 0(sp)\n" "lw s1, 4(sp)\n" "lw s2, 8(sp)\n" "lw s3, 12(sp)\n" \
    "lw s4, 16(sp)\n" "lw s5, 20(sp)\n" "lw s6, 24(sp)\n" "lw s7, 28(sp)\n" \
    "lw s8, 32(sp)\n" "lw s9, 36(sp)\n" "lw s10, 40(sp)\n" "lw s11, 44(sp)\n" \
    "lw ra, 48(sp)\n" \
    "addi sp, sp, 64\n" \
    "ret\n"

// FULLY_CONNECTED, one pixel: 8 rows, 16 taps per loop turn with immediate offsets and one pointer
// bump per row (410 instructions / 128 MACs). Rows a1-a7 t2, sums s0-s7, x' t3, w t4,
// x t0, end t1; s8 groups left, s9 acc cursor, s10 weight cursor, s11 wstride.
#define EL_RV_FC_MAC(w, off, acc) "lb t4, " #off "(" #w ")\n" "mul t4, t4, t3\n" "add " #acc ", " #acc ", t4\n"
#define EL_RV_FC_STEP(j) \
    "lw t3, " #j "*4(t0)\n" \
    EL_RV_FC_MAC(a1, j, s0) EL_RV_FC_MAC(a2, j, s1) EL_RV_FC_MAC(a3, j, s2) EL_RV_FC_MAC(a4, j, s3) \
    EL_RV_FC_MAC(a5, j, s4) EL_RV_FC_MAC(a6, j, s5) EL_RV_FC_MAC(a7, j, s6) EL_RV_FC_MAC(t2, j, s7)
#define EL_RV_BUMP(n) \
    "addi a1, a1, " #n "\n" "addi a2, a2, " #n "\n" "addi a3, a3, " #n "\n" "addi a4, a4, " #n "\n" \
    "addi a5, a5, " #n "\n" "addi a6, a6, " #n "\n" "addi a7, a7, " #n "\n" "addi t2, t2, " #n "\n"
__attribute__((naked)) static void el_micro_rv_r8p1(const el_mk_args *a) {
    __asm__ volatile(
        EL_RV_SAVE
        "lw s8, 12(a0)\n"
        "lw s9, 20(a0)\n"
        "lw s10, 4(a0)\n"
        "lw s11, 8(a0)\n"
        "1:\n"
        "mv a1, s10\n"
        "add a2, a1, s11\n"
        "add a3, a2, s11\n"
        "add a4, a3, s11\n"
        "add a5, a4, s11\n"
        "add a6, a5, s11\n"
        "add a7, a6, s11\n"
        "add t2, a7, s11\n"
        "add s10, t2, s11\n"
        "li s0, 0\n" "li s1, 0\n" "li s2, 0\n" "li s3, 0\n"
        "li s4, 0\n" "li s5, 0\n" "li s6, 0\n" "li s7, 0\n"
        "lw t0, 0(a0)\n"
        "lw t1, 16(a0)\n"
        "andi t6, t1, 15\n"
        "slli t1, t1, 2\n"
        "add t1, t0, t1\n"
        "beqz t6, 3f\n"
        "2:\n"
        EL_RV_FC_STEP(0)
        "addi t0, t0, 4\n"
        EL_RV_BUMP(1)
        "addi t6, t6, -1\n"
        "bnez t6, 2b\n"
        "3:\n"
        "beq t0, t1, 5f\n"
        "4:\n"
        EL_RV_FC_STEP(0) EL_RV_FC_STEP(1) EL_RV_FC_STEP(2) EL_RV_FC_STEP(3)
        EL_RV_FC_STEP(4) EL_RV_FC_STEP(5) EL_RV_FC_STEP(6) EL_RV_FC_STEP(7)
        EL_RV_FC_STEP(8) EL_RV_FC_STEP(9) EL_RV_FC_STEP(10) EL_RV_FC_STEP(11)
        EL_RV_FC_STEP(12) EL_RV_FC_STEP(13) EL_RV_FC_STEP(14) EL_RV_FC_STEP(15)
        "addi t0, t0, 64\n"
        EL_RV_BUMP(16)
        "bne t0, t1, 4b\n"
        "5:\n"
        "lw t5, 24(a0)\n"
        "bnez t5, 6f\n"
        "lw t3, 0(s9)\n" "add s0, s0, t3\n" "lw t3, 4(s9)\n" "add s1, s1, t3\n"
        "lw t3, 8(s9)\n" "add s2, s2, t3\n" "lw t3, 12(s9)\n" "add s3, s3, t3\n"
        "lw t3, 16(s9)\n" "add s4, s4, t3\n" "lw t3, 20(s9)\n" "add s5, s5, t3\n"
        "lw t3, 24(s9)\n" "add s6, s6, t3\n" "lw t3, 28(s9)\n" "add s7, s7, t3\n"
        "6:\n"
        "sw s0, 0(s9)\n" "sw s1, 4(s9)\n" "sw s2, 8(s9)\n" "sw s3, 12(s9)\n"
        "sw s4, 16(s9)\n" "sw s5, 20(s9)\n" "sw s6, 24(s9)\n" "sw s7, 28(s9)\n"
        "addi s9, s9, 32\n"
        "addi s8, s8, -1\n"
        "bnez s8, 1b\n"
        EL_RV_RESTORE);
}
#undef EL_RV_FC_STEP
#undef EL_RV_FC_MAC

// CONV_2D: 4 rows x 4 pixels, 4 taps per loop turn (166 instructions / 64 MACs): all 28 registers.
// Rows a1 a2 a3 a4, pixels' x' a5 a6 a7 t2, w t3, product t4, x t0, end t1, sums s0-s11 t5 t6 ra a0
// (row r, pixel p). Frame (above the saved registers): 52 args, 56 groups left, 60 weight cursor,
// 64 acc cursor, 68 table cursor (0: store the sums), 72 output cursor, 76 ystride, 80 zp, 84 lo, 88 hi.
//
// With args->rq the epilogue requantizes the 16 sums in place (as el_requant_rv4, 16 instructions per
// output) instead of storing them for a separate pass: that saves the 16 stores, the 16 loads and the
// pass's loop overhead. Registers there: the sums, entry t2 bias, t3 mult, t4 K's high word, a5 shift,
// a1-a4 the pixels' outputs, a6 lo, a7 hi, t0 t1 work, zp in s0 once the first output has freed it.
#define EL_RV_RQ_OUT(S, y, row, zp_load) \
    "add " #S ", " #S ", t2\n"       /* x = acc + bias */ \
    "mul t0, " #S ", t3\n" \
    "mulh t1, " #S ", t3\n" \
    "srai " #S ", " #S ", 31\n" \
    "add t1, t1, " #S "\n" \
    "ori " #S ", " #S ", 1\n" \
    "slli " #S ", " #S ", 30\n"      /* L = 2^30 - [x < 0] * 2^31 */ \
    "add " #S ", t0, " #S "\n" \
    "sltu " #S ", " #S ", t0\n"      /* carry of lo + L */ \
    "add t1, t1, " #S "\n" \
    zp_load \
    "add t1, t1, t4\n" \
    "sra t1, t1, a5\n" \
    "add t1, t1, s0\n" \
    "bge t1, a6, 21f\n" \
    "mv t1, a6\n" \
    "21:\n" \
    "bge a7, t1, 22f\n" \
    "mv t1, a7\n" \
    "22:\n" \
    "sb t1, " #row "(" #y ")\n"
// table entry of row r (1..3) of the group; 68(sp) already points at the next group's entries
#define EL_RV_RQ_ENTRY(r) \
    "lw t0, 68(sp)\n" \
    "lw t2, " #r "*20-80(t0)\n" "lw t3, " #r "*20-76(t0)\n" "lw t4, " #r "*20-68(t0)\n" \
    "lw a5, " #r "*20-64(t0)\n"
#define EL_RV_CV_ROW(w, off, s0, s1, s2, s3) \
    "lb t3, " #off "(" #w ")\n" \
    "mul t4, t3, a5\n" "add " #s0 ", " #s0 ", t4\n" \
    "mul t4, t3, a6\n" "add " #s1 ", " #s1 ", t4\n" \
    "mul t4, t3, a7\n" "add " #s2 ", " #s2 ", t4\n" \
    "mul t4, t3, t2\n" "add " #s3 ", " #s3 ", t4\n"
#define EL_RV_CV_ROW0(w, s0, s1, s2, s3) \
    "lb t3, 0(" #w ")\n" \
    "mul " #s0 ", t3, a5\n" "mul " #s1 ", t3, a6\n" "mul " #s2 ", t3, a7\n" "mul " #s3 ", t3, t2\n"
#define EL_RV_CV_STEP(j) \
    "lw a5, " #j "*16(t0)\n" "lw a6, " #j "*16+4(t0)\n" "lw a7, " #j "*16+8(t0)\n" "lw t2, " #j "*16+12(t0)\n" \
    EL_RV_CV_ROW(a1, j, s0, s1, s2, s3) EL_RV_CV_ROW(a2, j, s4, s5, s6, s7) \
    EL_RV_CV_ROW(a3, j, s8, s9, s10, s11) EL_RV_CV_ROW(a4, j, t5, t6, ra, a0)
__attribute__((naked)) static void el_micro_rv_r4p4(const el_mk_args *a) {
    __asm__ volatile(
        "addi sp, sp, -32\n"
        EL_RV_SAVE
        "sw a0, 52(sp)\n"
        "lw t0, 12(a0)\n"
        "sw t0, 56(sp)\n"
        "lw t0, 4(a0)\n"
        "sw t0, 60(sp)\n"
        "lw t0, 20(a0)\n"
        "sw t0, 64(sp)\n"
        "lw t0, 28(a0)\n"
        "sw t0, 68(sp)\n"
        "beqz t0, 1f\n"
        "lw t0, 32(a0)\n" "sw t0, 72(sp)\n"
        "lw t0, 36(a0)\n" "sw t0, 76(sp)\n"
        "lw t1, 40(a0)\n"
        "lw t0, 0(t1)\n" "sw t0, 80(sp)\n"
        "lw t0, 4(t1)\n" "sw t0, 84(sp)\n"
        "lw t0, 8(t1)\n" "sw t0, 88(sp)\n"
        "1:\n"
        "lw t0, 52(sp)\n"
        "lw a1, 60(sp)\n"
        "lw t1, 8(t0)\n"
        "add a2, a1, t1\n"
        "add a3, a2, t1\n"
        "add a4, a3, t1\n"
        "add t3, a4, t1\n"
        "sw t3, 60(sp)\n"
        "lw t1, 16(t0)\n"
        "lw t0, 0(t0)\n"
        "slli t1, t1, 4\n"
        "add t1, t0, t1\n"           // end of the panel
        "sub t3, t1, t0\n"
        "li t4, 64\n"
        "blt t3, t4, 8f\n"           // fewer than 4 taps
        // first 4 taps: MUL starts the sums
        "lw a5, 0(t0)\n" "lw a6, 4(t0)\n" "lw a7, 8(t0)\n" "lw t2, 12(t0)\n"
        EL_RV_CV_ROW0(a1, s0, s1, s2, s3) EL_RV_CV_ROW0(a2, s4, s5, s6, s7)
        EL_RV_CV_ROW0(a3, s8, s9, s10, s11) EL_RV_CV_ROW0(a4, t5, t6, ra, a0)
        EL_RV_CV_STEP(1) EL_RV_CV_STEP(2) EL_RV_CV_STEP(3)
        "addi t0, t0, 64\n"
        "addi a1, a1, 4\n" "addi a2, a2, 4\n" "addi a3, a3, 4\n" "addi a4, a4, 4\n"
        "j 2f\n"
        "8:\n"                       // 1..3 taps: clear the sums
        "li s0, 0\n" "li s1, 0\n" "li s2, 0\n" "li s3, 0\n" "li s4, 0\n" "li s5, 0\n"
        "li s6, 0\n" "li s7, 0\n" "li s8, 0\n" "li s9, 0\n" "li s10, 0\n" "li s11, 0\n"
        "li t5, 0\n" "li t6, 0\n" "li ra, 0\n" "li a0, 0\n"
        // then single taps until a multiple of 4 is left
        "2:\n"
        "sub t3, t1, t0\n"
        "andi t3, t3, 48\n"
        "beqz t3, 3f\n"
        EL_RV_CV_STEP(0)
        "addi t0, t0, 16\n"
        "addi a1, a1, 1\n" "addi a2, a2, 1\n" "addi a3, a3, 1\n" "addi a4, a4, 1\n"
        "j 2b\n"
        "3:\n"
        "beq t0, t1, 5f\n"
        "4:\n"
        EL_RV_CV_STEP(0) EL_RV_CV_STEP(1) EL_RV_CV_STEP(2) EL_RV_CV_STEP(3)
        "addi t0, t0, 64\n"
        "addi a1, a1, 4\n" "addi a2, a2, 4\n" "addi a3, a3, 4\n" "addi a4, a4, 4\n"
        "bne t0, t1, 4b\n"
        "5:\n"
        // acc[p * 32 + row]: row r of this group at cursor + 4r, pixel p at + 128p
        "lw t0, 52(sp)\n"
        "lw t1, 64(sp)\n"
        "lw t2, 24(t0)\n"
        "addi t3, t1, 16\n"
        "sw t3, 64(sp)\n"
        "bnez t2, 6f\n"
#define EL_RV_CV_ADD(reg, off) "lw t3, " #off "(t1)\n" "add " #reg ", " #reg ", t3\n"
        EL_RV_CV_ADD(s0, 0) EL_RV_CV_ADD(s1, 128) EL_RV_CV_ADD(s2, 256) EL_RV_CV_ADD(s3, 384)
        EL_RV_CV_ADD(s4, 4) EL_RV_CV_ADD(s5, 132) EL_RV_CV_ADD(s6, 260) EL_RV_CV_ADD(s7, 388)
        EL_RV_CV_ADD(s8, 8) EL_RV_CV_ADD(s9, 136) EL_RV_CV_ADD(s10, 264) EL_RV_CV_ADD(s11, 392)
        EL_RV_CV_ADD(t5, 12) EL_RV_CV_ADD(t6, 140) EL_RV_CV_ADD(ra, 268) EL_RV_CV_ADD(a0, 396)
#undef EL_RV_CV_ADD
        "6:\n"
        "lw t0, 68(sp)\n"
        "bnez t0, 9f\n"
#define EL_RV_CV_PUT(reg, off) "sw " #reg ", " #off "(t1)\n"
        EL_RV_CV_PUT(s0, 0) EL_RV_CV_PUT(s1, 128) EL_RV_CV_PUT(s2, 256) EL_RV_CV_PUT(s3, 384)
        EL_RV_CV_PUT(s4, 4) EL_RV_CV_PUT(s5, 132) EL_RV_CV_PUT(s6, 260) EL_RV_CV_PUT(s7, 388)
        EL_RV_CV_PUT(s8, 8) EL_RV_CV_PUT(s9, 136) EL_RV_CV_PUT(s10, 264) EL_RV_CV_PUT(s11, 392)
        EL_RV_CV_PUT(t5, 12) EL_RV_CV_PUT(t6, 140) EL_RV_CV_PUT(ra, 268) EL_RV_CV_PUT(a0, 396)
#undef EL_RV_CV_PUT
        "7:\n"
        "lw t0, 56(sp)\n"
        "addi t0, t0, -1\n"
        "sw t0, 56(sp)\n"
        "bnez t0, 1b\n"
        "lw s0, 0(sp)\n" "lw s1, 4(sp)\n" "lw s2, 8(sp)\n" "lw s3, 12(sp)\n"
        "lw s4, 16(sp)\n" "lw s5, 20(sp)\n" "lw s6, 24(sp)\n" "lw s7, 28(sp)\n"
        "lw s8, 32(sp)\n" "lw s9, 36(sp)\n" "lw s10, 40(sp)\n" "lw s11, 44(sp)\n"
        "lw ra, 48(sp)\n"
        "addi sp, sp, 96\n"
        "ret\n"
        "9:\n"                      // requantize: t0 = this group's table entries
        "addi t1, t0, 80\n"
        "sw t1, 68(sp)\n"
        "lw t2, 0(t0)\n" "lw t3, 4(t0)\n" "lw t4, 12(t0)\n" "lw a5, 16(t0)\n"
        "lw a1, 72(sp)\n"
        "lw t1, 76(sp)\n"
        "addi a6, a1, 4\n"
        "sw a6, 72(sp)\n"
        "add a2, a1, t1\n"
        "add a3, a2, t1\n"
        "add a4, a3, t1\n"
        "lw a6, 84(sp)\n"
        "lw a7, 88(sp)\n"
        EL_RV_RQ_OUT(s0, a1, 0, "lw s0, 80(sp)\n")
        EL_RV_RQ_OUT(s1, a2, 0, "") EL_RV_RQ_OUT(s2, a3, 0, "") EL_RV_RQ_OUT(s3, a4, 0, "")
        EL_RV_RQ_ENTRY(1)
        EL_RV_RQ_OUT(s4, a1, 1, "") EL_RV_RQ_OUT(s5, a2, 1, "") EL_RV_RQ_OUT(s6, a3, 1, "")
        EL_RV_RQ_OUT(s7, a4, 1, "")
        EL_RV_RQ_ENTRY(2)
        EL_RV_RQ_OUT(s8, a1, 2, "") EL_RV_RQ_OUT(s9, a2, 2, "") EL_RV_RQ_OUT(s10, a3, 2, "")
        EL_RV_RQ_OUT(s11, a4, 2, "")
        EL_RV_RQ_ENTRY(3)
        EL_RV_RQ_OUT(t5, a1, 3, "") EL_RV_RQ_OUT(t6, a2, 3, "") EL_RV_RQ_OUT(ra, a3, 3, "")
        EL_RV_RQ_OUT(a0, a4, 3, "")
        "j 7b\n");
}
#undef EL_RV_RQ_OUT
#undef EL_RV_RQ_ENTRY
#undef EL_RV_CV_STEP
#undef EL_RV_CV_ROW0
#undef EL_RV_CV_ROW

// Requantize n outputs of one pixel from table entries with e >= 2: with x = acc + bias, u = x*m,
// L = 2^30 - [x < 0] * 2^31, floor((u + L) / 2^32) = hi + carry(lo + L) + (x >> 31), then + 2^(e-2)
// (K's high part) and >> (e - 1). a0 acc, a1 table, a2 n >= 1, a3 y, a4 {zp, lo, hi}; 27 per output.
__attribute__((naked)) static void el_requant_rv(const uint32_t *acc, const el_rqe_t *t, int32_t n, int8_t *y,
                                                  const int32_t *zp_lo_hi) {
    __asm__ volatile(
        "add a2, a3, a2\n"
        "lw a5, 4(a4)\n"
        "lw a6, 8(a4)\n"
        "lw a4, 0(a4)\n"
        "lui a7, 0x40000\n"
        "1:\n"
        "lw t0, 0(a0)\n"
        "lw t1, 0(a1)\n"
        "lw t2, 4(a1)\n"
        "lw t3, 12(a1)\n"
        "lw t4, 16(a1)\n"
        "add t0, t0, t1\n"
        "mul t5, t0, t2\n"
        "mulh t6, t0, t2\n"
        "srai t1, t0, 31\n"
        "slli t2, t1, 31\n"
        "add t2, t2, a7\n"
        "add t0, t5, t2\n"
        "sltu t0, t0, t5\n"
        "add t6, t6, t0\n"
        "add t6, t6, t1\n"
        "add t6, t6, t3\n"
        "sra t6, t6, t4\n"
        "add t6, t6, a4\n"
        "bge t6, a5, 2f\n"
        "mv t6, a5\n"
        "2:\n"
        "bge a6, t6, 3f\n"
        "mv t6, a6\n"
        "3:\n"
        "sb t6, 0(a3)\n"
        "addi a0, a0, 4\n"
        "addi a1, a1, 20\n"
        "addi a3, a3, 1\n"
        "bne a3, a2, 1b\n"
        "ret\n");
}

// The same straight from bias / multiplier / shift arrays (FULLY_CONNECTED; every shift <= -2):
// K's high part 2^(e-2) and the shift e-1 come from the shift word. a0 acc, a1 n >= 1, a2 y,
// a3 {bias[], mult[], shift[], zp, lo, hi}.
__attribute__((naked)) static void el_requant_direct_rv(const uint32_t *acc, int32_t n, int8_t *y,
                                                         const int32_t *const *args) {
    __asm__ volatile(
        "addi sp, sp, -16\n"
        "sw s0, 0(sp)\n"
        "sw s1, 4(sp)\n"
        "sw s2, 8(sp)\n"
        "lw a4, 0(a3)\n"
        "lw a5, 4(a3)\n"
        "lw a6, 8(a3)\n"
        "lw a7, 12(a3)\n"
        "lw s0, 16(a3)\n"
        "lw s1, 20(a3)\n"
        "add a1, a2, a1\n"
        "lui s2, 0x40000\n"
        "1:\n"
        "lw t0, 0(a0)\n"
        "lw t1, 0(a4)\n"
        "lw t2, 0(a5)\n"
        "lw t3, 0(a6)\n"
        "add t0, t0, t1\n"
        "mul t5, t0, t2\n"
        "mulh t6, t0, t2\n"
        "srai t1, t0, 31\n"
        "slli t2, t1, 31\n"
        "add t2, t2, s2\n"
        "add t0, t5, t2\n"
        "sltu t0, t0, t5\n"
        "add t6, t6, t0\n"
        "add t6, t6, t1\n"
        "not t4, t3\n"            // e - 1
        "addi t3, t4, -1\n"       // e - 2
        "li t1, 1\n"
        "sll t1, t1, t3\n"
        "add t6, t6, t1\n"
        "sra t6, t6, t4\n"
        "add t6, t6, a7\n"
        "bge t6, s0, 2f\n"
        "mv t6, s0\n"
        "2:\n"
        "bge s1, t6, 3f\n"
        "mv t6, s1\n"
        "3:\n"
        "sb t6, 0(a2)\n"
        "addi a0, a0, 4\n"
        "addi a4, a4, 4\n"
        "addi a5, a5, 4\n"
        "addi a6, a6, 4\n"
        "addi a2, a2, 1\n"
        "bne a2, a1, 1b\n"
        "lw s0, 0(sp)\n"
        "lw s1, 4(sp)\n"
        "lw s2, 8(sp)\n"
        "addi sp, sp, 16\n"
        "ret\n");
}
#define EL_HAVE_REQUANT_RV 1

// Four pixels at once (the tail rows of a 4x4 conv tile: its row groups are requantized in the kernel's
// epilogue): acc[p * 32 + r] for rows r < n, entries with e >= 2, outputs y[p * ystride + r]; each table
// entry is loaded once for its four outputs (83 instructions per row).
// a0 acc, a1 table, a2 n >= 1, a3 y, a4 ystride, a5 {zp, lo, hi}.
#define EL_RV_RQ4(off, y) \
    "lw t5, " #off "(a0)\n" \
    "add t5, t5, t0\n" \
    "mul t6, t5, t1\n" \
    "mulh a7, t5, t1\n" \
    "srai t5, t5, 31\n" \
    "slli t4, t5, 31\n" \
    "add t4, t4, s0\n" \
    "add t4, t6, t4\n" \
    "sltu t4, t4, t6\n" \
    "add a7, a7, t4\n" \
    "add a7, a7, t5\n" \
    "add a7, a7, t2\n" \
    "sra a7, a7, t3\n" \
    "add a7, a7, s1\n" \
    "bge a7, s2, 1f\n" \
    "mv a7, s2\n" \
    "1:\n" \
    "bge s3, a7, 2f\n" \
    "mv a7, s3\n" \
    "2:\n" \
    "sb a7, 0(" #y ")\n"
__attribute__((naked)) static void el_requant_rv4(const uint32_t *acc, const el_rqe_t *t, int32_t n, int8_t *y,
                                                   int32_t ystride, const int32_t *zp_lo_hi) {
    __asm__ volatile(
        "addi sp, sp, -32\n"
        "sw s0, 0(sp)\n" "sw s1, 4(sp)\n" "sw s2, 8(sp)\n" "sw s3, 12(sp)\n"
        "sw s4, 16(sp)\n" "sw s5, 20(sp)\n" "sw s6, 24(sp)\n"
        "lui s0, 0x40000\n"
        "lw s1, 0(a5)\n"
        "lw s2, 4(a5)\n"
        "lw s3, 8(a5)\n"
        "add s4, a3, a4\n"
        "add s5, s4, a4\n"
        "add s6, s5, a4\n"
        "3:\n"
        "lw t0, 0(a1)\n"
        "lw t1, 4(a1)\n"
        "lw t2, 12(a1)\n"
        "lw t3, 16(a1)\n"
        EL_RV_RQ4(0, a3) EL_RV_RQ4(128, s4) EL_RV_RQ4(256, s5) EL_RV_RQ4(384, s6)
        "addi a0, a0, 4\n"
        "addi a1, a1, 20\n"
        "addi a3, a3, 1\n"
        "addi s4, s4, 1\n"
        "addi s5, s5, 1\n"
        "addi s6, s6, 1\n"
        "addi a2, a2, -1\n"
        "bnez a2, 3b\n"
        "lw s0, 0(sp)\n" "lw s1, 4(sp)\n" "lw s2, 8(sp)\n" "lw s3, 12(sp)\n"
        "lw s4, 16(sp)\n" "lw s5, 20(sp)\n" "lw s6, 24(sp)\n"
        "addi sp, sp, 32\n"
        "ret\n");
}
#undef EL_RV_RQ4
#define EL_HAVE_DIRECT 1

static const el_micro_t el_micro_fc = {el_micro_rv_r8p1, 8, 1, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
static const el_micro_t el_micro_conv = {el_micro_rv_r4p4, 4, 4, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
#endif

// ---- armv6m ----
#if EL_ARCH_ARMV6M
// 4 rows, one pixel (FULLY_CONNECTED and CONV_2D): the four weight rows are read with one negative
// index counting up to 0 (register-offset LDRSB is all Thumb-1 has), x' with LDM, sums in r8-r11
// (ADD works on high registers). 57 instructions / 16 MACs (4 taps per loop turn).
// Frame: [sp] args, [sp, 4] groups left, [sp, 8] weight cursor, [sp, 12] acc cursor.
#define EL_V6_STEP \
        "ldm r0!, {r2}\n" \
        "ldrsb r3, [r4, r1]\n" "muls r3, r2, r3\n" "add r8, r3\n" \
        "ldrsb r3, [r5, r1]\n" "muls r3, r2, r3\n" "add r9, r3\n" \
        "ldrsb r3, [r6, r1]\n" "muls r3, r2, r3\n" "add r10, r3\n" \
        "ldrsb r3, [r7, r1]\n" "muls r3, r2, r3\n" "add r11, r3\n" \
        "adds r1, r1, #1\n"
__attribute__((naked)) static void el_micro_v6_r4p1(const el_mk_args *a) {
    __asm__ volatile(
        ".syntax unified\n"  // gcc emits Thumb-1 in divided syntax
        "push {r4-r7, lr}\n"
        "mov r4, r8\n"
        "mov r5, r9\n"
        "mov r6, r10\n"
        "mov r7, r11\n"
        "push {r4-r7}\n"
        "sub sp, sp, #16\n"
        "str r0, [sp]\n"
        "ldr r1, [r0, #12]\n"
        "str r1, [sp, #4]\n"
        "ldr r1, [r0, #4]\n"
        "str r1, [sp, #8]\n"
        "ldr r1, [r0, #20]\n"
        "str r1, [sp, #12]\n"
        "1:\n"
        "ldr r0, [sp]\n"
        "ldr r1, [r0, #16]\n"
        "ldr r3, [r0, #8]\n"
        "ldr r2, [sp, #8]\n"
        "adds r4, r2, r1\n"
        "adds r5, r4, r3\n"
        "adds r6, r5, r3\n"
        "adds r7, r6, r3\n"
        "adds r2, r7, r3\n"
        "subs r2, r2, r1\n"
        "str r2, [sp, #8]\n"
        "ldr r0, [r0, #0]\n"
        "movs r2, #0\n"
        "mov r8, r2\n"
        "mov r9, r2\n"
        "mov r10, r2\n"
        "mov r11, r2\n"
        "negs r1, r1\n"
        "lsls r3, r1, #30\n"  // Z iff 4 divides kc
        "beq 2f\n"
        "5:\n"                // single taps until a multiple of 4 is left
        EL_V6_STEP
        "lsls r3, r1, #30\n"
        "bne 5b\n"
        "cmp r1, #0\n"
        "beq 3f\n"
        "2:\n"
        EL_V6_STEP
        EL_V6_STEP
        EL_V6_STEP
        EL_V6_STEP
        "bne 2b\n"
        "3:\n"
        "ldr r0, [sp]\n"
        "ldr r1, [r0, #24]\n"
        "ldr r2, [sp, #12]\n"
        "cmp r1, #0\n"
        "bne 4f\n"
        "ldr r3, [r2, #0]\n"
        "add r8, r3\n"
        "ldr r3, [r2, #4]\n"
        "add r9, r3\n"
        "ldr r3, [r2, #8]\n"
        "add r10, r3\n"
        "ldr r3, [r2, #12]\n"
        "add r11, r3\n"
        "4:\n"
        "mov r3, r8\n"
        "str r3, [r2, #0]\n"
        "mov r3, r9\n"
        "str r3, [r2, #4]\n"
        "mov r3, r10\n"
        "str r3, [r2, #8]\n"
        "mov r3, r11\n"
        "str r3, [r2, #12]\n"
        "adds r2, r2, #16\n"
        "str r2, [sp, #12]\n"
        "ldr r1, [sp, #4]\n"
        "subs r1, r1, #1\n"
        "str r1, [sp, #4]\n"
        "bne 1b\n"
        "add sp, sp, #16\n"
        "pop {r4-r7}\n"
        "mov r8, r4\n"
        "mov r9, r5\n"
        "mov r10, r6\n"
        "mov r11, r7\n"
        "pop {r4-r7, pc}\n"
        ".syntax divided\n");
}
#undef EL_V6_STEP

static const el_micro_t el_micro_fc = {el_micro_v6_r4p1, 4, 1, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};
static const el_micro_t el_micro_conv = {el_micro_v6_r4p1, 4, 1, 0x7FFFFFFF, 0x7FFFFFFF, EL_RT};

// floor((x*m + L) / 2^32) for m >= 0 and L a multiple of 2^16 with |L| <= 2^31, from four 16x16
// products (Cortex-M0 has no 32x32->64 multiply; libgcc's 64-bit one costs far more):
// x*m = xh*mh*2^32 + (xh*ml + xl*mh)*2^16 + xl*ml, A = xh*ml = Ah*2^16 + Al.
EL_INLINE int32_t el_hiword_v6m(int32_t x, int32_t m, int32_t L) {
    const uint32_t xl = (uint32_t)x & 0xFFFFu, ml = (uint32_t)m & 0xFFFFu;
    const int32_t xh = x >> 16, mh = m >> 16;
    const int32_t A = xh * (int32_t)ml;
    const uint32_t sum = ((uint32_t)A & 0xFFFFu) + xl * (uint32_t)mh + ((xl * ml) >> 16)
                         + (uint32_t)((L >> 16) + 0x10000);  // + 2^16 keeps it >= 0; < 2^32
    return xh * mh + (A >> 16) + (int32_t)(sum >> 16) - 1;
}

static void el_requant_v6(const uint32_t *acc, const el_rqe_t *t, int32_t n, int8_t *y, const int32_t *zlh) {
    const int32_t zp = zlh[0], lo = zlh[1], hi = zlh[2];
    for (const uint32_t *e = acc + n; acc < e; ++acc, ++t) {
        const int32_t x = (int32_t)(*acc + (uint32_t)t->bias);
        // K = 2^30 + 2^(30+e): the 2^30 - [x < 0] * 2^31 part below the high word, 2^(e-2) in it
        const int32_t h = el_hiword_v6m(x, t->mult, x < 0 ? -(INT32_C(1) << 30) : INT32_C(1) << 30) + t->k_hi;
        int32_t v = el_wadd(h >> t->sh, zp);
        v = v < lo ? lo : v;
        *y++ = (int8_t)(v > hi ? hi : v);
    }
}
#define EL_HAVE_REQUANT_V6 1

// FULLY_CONNECTED: straight from the arrays (every shift <= -2), as el_requant_direct_m3, in assembly:
// gcc's code for the C form spills on the 8 low registers (~77 instructions per output; this is 44).
// hiword as el_hiword_v6m, with L / 2^16 = +-2^14 added to A = xh*ml (|A| < 2^31 - 2^15, so it cannot
// overflow) instead of a biased sum; sum = (A + L/2^16) % 2^16 + xl*mh + xl*ml / 2^16 < 2^32.
// Then (h + 2^(e-2)) >> (e-1) as ((h >> (e-2)) + 1) >> 1 (nested floors).
// Low registers: r0 acc cursor (also indexes bias / mult / shift by their distance to it), r1-r5 work,
// r6 y, r7 hi; r8 r9 r11 bias / mult / shift - (acc + 4), r10 acc end, r12 zp, lr lo.
__attribute__((naked)) static void el_requant_direct_v6(const uint32_t *acc, int32_t n, int8_t *y,
                                                         const int32_t *const *args) {
    __asm__ volatile(
        ".syntax unified\n"
        "push {r4-r7, lr}\n"
        "mov r4, r8\n"
        "mov r5, r9\n"
        "mov r6, r10\n"
        "mov r7, r11\n"
        "push {r4-r7}\n"
        "lsls r1, r1, #2\n"
        "adds r1, r0, r1\n"
        "mov r10, r1\n"
        "mov r6, r2\n"
        "adds r2, r0, #4\n"   // the loads below index from the advanced acc cursor
        "ldr r4, [r3, #0]\n"
        "subs r4, r4, r2\n"
        "mov r8, r4\n"
        "ldr r4, [r3, #4]\n"
        "subs r4, r4, r2\n"
        "mov r9, r4\n"
        "ldr r4, [r3, #8]\n"
        "subs r4, r4, r2\n"
        "mov r11, r4\n"
        "ldr r4, [r3, #12]\n"
        "mov r12, r4\n"
        "ldr r4, [r3, #16]\n"
        "mov lr, r4\n"
        "ldr r7, [r3, #20]\n"
        "1:\n"
        "ldm r0!, {r1}\n"
        "mov r2, r8\n"
        "ldr r2, [r0, r2]\n"
        "adds r1, r1, r2\n"      // x = acc + bias
        "mov r3, r9\n"
        "ldr r3, [r0, r3]\n"     // m
        "asrs r2, r1, #16\n"     // xh
        "uxth r1, r1\n"          // xl
        "lsrs r4, r3, #16\n"     // mh
        "uxth r3, r3\n"          // ml
        "movs r5, r1\n"
        "muls r5, r3, r5\n"      // xl*ml
        "muls r3, r2, r3\n"      // A = xh*ml
        "muls r1, r4, r1\n"      // xl*mh
        "muls r4, r2, r4\n"      // xh*mh
        "asrs r2, r2, #31\n"
        "lsls r2, r2, #1\n"
        "adds r2, r2, #1\n"      // x < 0 ? -1 : 1
        "lsls r2, r2, #14\n"
        "adds r3, r3, r2\n"      // A + L / 2^16
        "lsrs r5, r5, #16\n"
        "adds r5, r5, r1\n"
        "uxth r1, r3\n"
        "adds r5, r5, r1\n"
        "lsrs r5, r5, #16\n"
        "asrs r3, r3, #16\n"
        "adds r4, r4, r3\n"
        "adds r4, r4, r5\n"      // h = floor((x*m + L) / 2^32)
        "mov r1, r11\n"
        "ldr r1, [r0, r1]\n"     // shift = -e
        "mvns r1, r1\n"
        "subs r1, r1, #1\n"      // e - 2 >= 0
        "asrs r4, r1\n"
        "adds r4, r4, #1\n"
        "asrs r4, r4, #1\n"
        "add r4, r12\n"
        "cmp r4, lr\n"
        "bge 2f\n"
        "mov r4, lr\n"
        "2:\n"
        "cmp r4, r7\n"
        "ble 3f\n"
        "mov r4, r7\n"
        "3:\n"
        "strb r4, [r6]\n"
        "adds r6, r6, #1\n"
        "cmp r0, r10\n"
        "bne 1b\n"
        "pop {r4-r7}\n"
        "mov r8, r4\n"
        "mov r9, r5\n"
        "mov r10, r6\n"
        "mov r11, r7\n"
        "pop {r4-r7, pc}\n"
        ".syntax divided\n");
}
#define EL_HAVE_DIRECT 1
#endif

// ---- driver ----

#if EL_HAVE_DIRECT
static const int32_t el_zero32[EL_MAX_P * EL_RT] = {0};
#endif

static void el_requant_c(const uint32_t *acc, const el_rqe_t *t, int32_t n, int8_t *y, const int32_t *zlh) {
    for (int32_t i = 0; i < n; ++i) {
        int32_t v = el_wadd(el_rqe_apply((int32_t)acc[i], &t[i]), zlh[0]);
        v = v < zlh[1] ? zlh[1] : v;
        y[i] = (int8_t)(v > zlh[2] ? zlh[2] : v);
    }
}

typedef struct {
    const el_gemm_t *g;
    const el_micro_t *mk;
    int32_t kc;
    int32_t xbuf[EL_XBUF_WORDS];
    el_rqe_t rq[EL_RT];
    uint32_t acc[EL_MAX_P * EL_RT];
    int32_t zlh[3];
    int fast_rq;     // every table entry has e >= 1
    int fast_rq2;    // every table entry has e >= 2
#if EL_HAVE_DIRECT
    int direct;      // requantize from the arrays (no table)
    const int32_t *dargs[6];
    int32_t rep_m[EL_RT], rep_s[EL_RT];  // per-tensor values, one per row of a tile
#endif
} el_gemm_state;

// Requantization table of rows [r0, r0 + nr); with fold, bias += in_offset * sum of the row's weights.
static void el_build_table(el_gemm_state *st, int32_t r0, int32_t nr) {
    const el_gemm_t *g = st->g;
    const int32_t *mult = g->mult + (g->per_channel ? r0 : 0);
    const int32_t *shift = g->shift + (g->per_channel ? r0 : 0);
    const int qs = g->per_channel ? 1 : 0;
    int32_t min_sh = 31;
    for (int32_t i = 0; i < nr; ++i) {
        uint32_t b = g->bias != NULL ? (uint32_t)g->bias[r0 + i] : 0u;
        if (g->fold) {
            const int8_t *w = g->w + (size_t)(r0 + i) * (size_t)g->k, *we = w + g->k;
            int32_t sum = 0;  // |sum| <= 128 * k < 2^31 (k < 2^24)
            while (w < we) {
                sum += *w++;
            }
            b += (uint32_t)sum * (uint32_t)g->in_offset;
        }
        el_rqe_prepare(&st->rq[i], (int32_t)b, mult[i * qs], shift[i * qs]);
        min_sh = st->rq[i].sh < min_sh ? st->rq[i].sh : min_sh;
    }
    st->fast_rq = min_sh >= 0;
    st->fast_rq2 = min_sh >= 1;
}

// Pixels [p0, p0 + np) x rows [r0, r0 + nr): panel fills (all of them if `refill`, else only when the
// k range needs several chunks), micro-kernels, requantization.
static void el_gemm_tile(el_gemm_state *st, int32_t p0, int np, int32_t r0, int32_t nr, int refill) {
    const el_gemm_t *g = st->g;
    const el_micro_t *mk = st->mk;
    const int P = mk->p, R = mk->r;
    const int32_t K = g->k, kc = st->kc;
    el_mk_args a;
    a.x = st->xbuf;
    a.wstride = K;
#if EL_HAVE_REQUANT_RV
    // the 4x4 conv kernel requantizes its row groups in its epilogue (last chunk); tail rows below
    // (the other kernels never read these fields: not set there, they would cost every tile)
    int8_t *y0 = g->out + (size_t)p0 * (size_t)g->rows + (size_t)r0;
    const int fused = np == 4 && P == 4 && st->fast_rq2 && !st->direct;
    a.y = y0;
    a.ystride = g->rows;
    a.zlh = st->zlh;
#endif
    for (int32_t k0 = 0; k0 < K; k0 += kc) {
        const int32_t n = K - k0 < kc ? K - k0 : kc;
        if (refill || kc < K) {
            for (int j = 0; j < np; ++j) {
                g->fill(g->ctx, p0 + j, k0, n, st->xbuf + j, P);
            }
            for (int j = np; j < P; ++j) {
                for (int32_t i = 0; i < n; ++i) {
                    st->xbuf[i * P + j] = 0;
                }
            }
        }
        a.w = g->w + (size_t)r0 * (size_t)K + (size_t)k0;
        a.kc = n;
        a.first = k0 == 0;
        a.acc = st->acc;
        a.ngroups = nr / R;
#if EL_HAVE_REQUANT_RV
        a.rq = fused && k0 + n >= K ? st->rq : NULL;
#endif
        if (a.ngroups > 0 && mk->fn != 0) {
            mk->fn(&a);
        } else {
            a.ngroups = 0;
        }
        if (a.ngroups * R < nr) {  // tail rows, one at a time
            el_mk_args t = a;
            t.w = a.w + (size_t)(a.ngroups * R) * (size_t)K;
            t.acc = st->acc + a.ngroups * R;
            t.ngroups = nr - a.ngroups * R;
#if EL_ARCH_ARMV7M
            if (P == 1) {
                el_micro_m3_r1p1(&t);
            } else
#endif
            el_micro_c_r1(&t, P);
        }
    }
#if EL_HAVE_REQUANT_RV
    if (fused) {
        const int32_t done = a.ngroups * R;
        if (done < nr) {
            el_requant_rv4(st->acc + done, st->rq + done, nr - done, y0 + done, g->rows, st->zlh);
        }
        return;
    }
#endif
    for (int j = 0; j < np; ++j) {
        int8_t *y = g->out + (size_t)(p0 + j) * (size_t)g->rows + (size_t)r0;
        const uint32_t *acc = st->acc + j * EL_RT;
#if EL_HAVE_DIRECT
        if (st->direct) {
#if EL_ARCH_ARMV7M
            el_requant_direct_m3(acc, nr, y, st->dargs);
#elif EL_ARCH_RV32
            el_requant_direct_rv(acc, nr, y, st->dargs);
#else
            el_requant_direct_v6(acc, nr, y, st->dargs);
#endif
            continue;
        }
#endif
#if EL_HAVE_REQUANT_ASM
        if (st->fast_rq) {
            el_requant_m3(acc, st->rq, nr, y, st->zlh);
            continue;
        }
#endif
#if EL_HAVE_REQUANT_RV
        if (st->fast_rq2) {
            el_requant_rv(acc, st->rq, nr, y, st->zlh);
            continue;
        }
#endif
#if EL_HAVE_REQUANT_V6
        if (st->fast_rq2) {
            el_requant_v6(acc, st->rq, nr, y, st->zlh);
            continue;
        }
#endif
        el_requant_c(acc, st->rq, nr, y, st->zlh);
    }
}

void el_gemm_run(const el_gemm_t *g) {
    el_gemm_state st;
    st.g = g;
    st.mk = g->npix > 1 ? &el_micro_conv : &el_micro_fc;
    const el_micro_t *mk = st.mk;
    const int P = mk->p;
    const int32_t K = g->k, rows = g->rows, rt = mk->rt;
    int32_t kc = EL_XBUF_WORDS / P;
    const int32_t kc_max = g->fold ? mk->kc_max_raw : mk->kc_max;
    kc = kc < kc_max ? kc : kc_max;
    st.kc = kc < K ? kc : K;
    st.zlh[0] = g->out_zp;
    st.zlh[1] = g->act_min;
    st.zlh[2] = g->act_max;
    st.fast_rq = 0;
#if EL_HAVE_DIRECT
    // One pixel block (FULLY_CONNECTED): requantize straight from the arrays, no table.
    st.direct = g->npix <= P && !g->fold;
#if EL_ARCH_RV32 || EL_ARCH_ARMV6M
    {   // the RISC-V and Cortex-M0 versions take shifts <= -2 only
        const int32_t nq = g->per_channel ? g->rows : 1;
        int32_t max_shift = -31;
        for (int32_t i = 0; i < nq; ++i) {
            max_shift = g->shift[i] > max_shift ? g->shift[i] : max_shift;
        }
        st.direct &= max_shift <= -2;
    }
#endif
    st.dargs[3] = (const int32_t *)(intptr_t)g->out_zp;
    st.dargs[4] = (const int32_t *)(intptr_t)g->act_min;
    st.dargs[5] = (const int32_t *)(intptr_t)g->act_max;
    if (st.direct && !g->per_channel) {
        for (int i = 0; i < EL_RT; ++i) {
            st.rep_m[i] = g->mult[0];
            st.rep_s[i] = g->shift[0];
        }
    }
#endif
    if (g->fold) {
        // row tiles outside: the folded biases are computed once per row
        for (int32_t r0 = 0; r0 < rows; r0 += rt) {
            const int32_t nr = rows - r0 < rt ? rows - r0 : rt;
            el_build_table(&st, r0, nr);
            for (int32_t p0 = 0; p0 < g->npix; p0 += P) {
                el_gemm_tile(&st, p0, g->npix - p0 < P ? (int)(g->npix - p0) : P, r0, nr, 1);
            }
        }
        return;
    }
    // pixel blocks outside: a one-chunk panel serves every row tile
    int32_t rtile = rt;
#if EL_HAVE_DIRECT
    if (st.direct && P == 1 && g->per_channel) {  // no table, one pixel: the tile may span all accumulators
        rtile = (EL_MAX_P * EL_RT / mk->r) * mk->r;
    }
#endif
    for (int32_t p0 = 0; p0 < g->npix; p0 += P) {
        for (int32_t r0 = 0; r0 < rows; r0 += rtile) {
            const int32_t nr = rows - r0 < rtile ? rows - r0 : rtile;
#if EL_HAVE_DIRECT
            if (st.direct) {
                st.dargs[0] = g->bias != NULL ? g->bias + r0 : el_zero32;
                st.dargs[1] = g->per_channel ? g->mult + r0 : st.rep_m;
                st.dargs[2] = g->per_channel ? g->shift + r0 : st.rep_s;
            } else
#endif
            if (p0 == 0 || rows > rtile) {
                el_build_table(&st, r0, nr);
            }
            el_gemm_tile(&st, p0, g->npix - p0 < P ? (int)(g->npix - p0) : P, r0, nr, r0 == 0);
        }
    }
}
