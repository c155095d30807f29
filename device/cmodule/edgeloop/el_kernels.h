// edgeloop int8 kernels: portable C99, no MicroPython headers, no libc.
// The same sources are built as a MicroPython user C module, as natmods (.mpy) and as a host library.
// Arithmetic follows TensorFlow Lite Micro's reference integer kernels bit for bit.
//
// Every entry point has the same ABI:
//     int el_<op>(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
//                 int8_t *arena, size_t arena_len);
// `args` are the op's argument words (layouts below). Arena offsets index `arena`, blob offsets
// index `blob`. Each kernel validates every word against the buffers (in 64-bit arithmetic) before it
// touches memory, and returns EL_OK or an EL_E_* status without writing anything on error (the one
// data-dependent error, SOFTMAX's EL_E_RANGE, can come after earlier rows were written).
// Activations are int8; 2-D ops use NHWC with N = 1. The output of an op never overlaps its inputs.
#ifndef EL_KERNELS_H
#define EL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define EL_KERNELS_VERSION 3  // 3: fully_connected_sparse

// Status codes returned by every entry point; el_status_str() gives the message.
enum {
    EL_OK = 0,
    EL_E_NARGS,        // wrong number of argument words for the op
    EL_E_DIM,          // a dimension is < 1 or too large, or shapes do not match
    EL_E_ARENA_RANGE,  // an activation does not fit in the arena
    EL_E_BLOB_RANGE,   // constant data does not fit in the blob
    EL_E_ALIGN,        // int32 constant data is not 4-byte aligned
    EL_E_OVERLAP,      // input and output activations overlap
    EL_E_ZERO_POINT,   // zero point outside -128..127
    EL_E_CLAMP,        // activation clamp outside -128..127 or min > max
    EL_E_QUANT,        // multiplier < 0, shift out of range, or bad per-channel count
    EL_E_GEOMETRY,     // stride / dilation / padding / filter size out of range, or an empty window
    EL_E_PARAM,        // another op parameter out of range (e.g. softmax diff_min > 0)
    EL_E_RANGE,        // the data drove the computation outside TFLM's range (softmax sum too large)
    EL_E_SPARSE,       // a sparse weight stream's row counts or column indices do not fit its matrix
    EL_E_COUNT_
};

const char *el_status_str(int status);

// Fixed-point primitives (gemmlowp / TFLM), exposed for the host tests.
int32_t el_srdhm(int32_t a, int32_t b);                  // SaturatingRoundingDoublingHighMul
int32_t el_rdbypot(int32_t x, int exponent);             // RoundingDivideByPOT, exponent 0..31
int32_t el_mbqm(int32_t x, int32_t multiplier, int shift);  // MultiplyByQuantizedMultiplier
#ifdef EL_HOST_TESTS
int32_t el_exp_neg(int32_t a, int integer_bits);         // exp_on_negative_values, integer_bits 1..5
int32_t el_logistic_fp(int32_t a, int integer_bits);     // gemmlowp::logistic, integer_bits 1..5
#endif

// ---- FULLY_CONNECTED (TFLM reference_integer_ops::FullyConnected, per-channel or per-tensor) ----
enum {
    EL_FC_IN_OFF,        // arena: int8 [batches, in_features]
    EL_FC_OUT_OFF,       // arena: int8 [batches, out_features]
    EL_FC_BATCHES,
    EL_FC_IN_FEATURES,
    EL_FC_OUT_FEATURES,
    EL_FC_IN_ZP,         // input zero point
    EL_FC_OUT_ZP,        // output zero point
    EL_FC_ACT_MIN,
    EL_FC_ACT_MAX,
    EL_FC_W_OFF,         // blob: int8 [out_features, in_features]
    EL_FC_BIAS_OFF,      // blob: int32 [out_features], 4-aligned, or -1 for none
    EL_FC_MULT_OFF,      // blob: int32 [n_quant], 4-aligned, each >= 0
    EL_FC_SHIFT_OFF,     // blob: int32 [n_quant], 4-aligned, each in [-31, 30]
    EL_FC_N_QUANT,       // 1 (per-tensor) or out_features (per-channel)
    EL_FC_NARGS
};
int el_fully_connected(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len);

// ---- FULLY_CONNECTED with sparse weights (docs/FORMAT.md, encoding 1; also a 1x1 stride-1 CONV_2D) ----
// The weights are a stream: u16 nwords[units] padded to 4 bytes, then per row nwords u32 words of two
// (u8 column delta, i8 value) pairs. The kernel walks it in place and checks, before writing anything,
// that the counts add up to w_len and that no row's columns reach in_features. Same arithmetic as
// el_fully_connected: zero weights are skipped, the outputs are identical.
enum {
    EL_FCS_IN_OFF,       // arena: int8 [batches, in_features]
    EL_FCS_OUT_OFF,      // arena: int8 [batches, out_features]
    EL_FCS_BATCHES,
    EL_FCS_IN_FEATURES,  // <= 65535 (a row's columns are u16-counted)
    EL_FCS_OUT_FEATURES, // <= 65535
    EL_FCS_IN_ZP,
    EL_FCS_OUT_ZP,
    EL_FCS_ACT_MIN,
    EL_FCS_ACT_MAX,
    EL_FCS_W_OFF,        // blob: the stream, 4-aligned
    EL_FCS_BIAS_OFF,     // blob: int32 [out_features] or -1
    EL_FCS_MULT_OFF,     // blob: int32 [n_quant]
    EL_FCS_SHIFT_OFF,    // blob: int32 [n_quant]
    EL_FCS_N_QUANT,      // 1 or out_features
    EL_FCS_W_LEN,        // bytes of the stream
    EL_FCS_NARGS
};
int el_fully_connected_sparse(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                              int8_t *arena, size_t arena_len);

// ---- CONV_2D (TFLM reference_integer_ops::ConvPerChannel) ----
// Padding taps (outside the input) are skipped, as in TFLM. Dims 1..2^24; stride, dilation >= 1,
// padding >= 0, all <= 65535.
enum {
    EL_CONV_IN_OFF,      // arena: int8 [in_h, in_w, in_c]
    EL_CONV_OUT_OFF,     // arena: int8 [out_h, out_w, out_c]
    EL_CONV_IN_H,
    EL_CONV_IN_W,
    EL_CONV_IN_C,
    EL_CONV_OUT_H,
    EL_CONV_OUT_W,
    EL_CONV_OUT_C,
    EL_CONV_K_H,
    EL_CONV_K_W,
    EL_CONV_STRIDE_H,
    EL_CONV_STRIDE_W,
    EL_CONV_DIL_H,
    EL_CONV_DIL_W,
    EL_CONV_PAD_TOP,
    EL_CONV_PAD_LEFT,
    EL_CONV_IN_ZP,
    EL_CONV_OUT_ZP,
    EL_CONV_ACT_MIN,
    EL_CONV_ACT_MAX,
    EL_CONV_W_OFF,       // blob: int8 [out_c, k_h, k_w, in_c] (OHWI)
    EL_CONV_BIAS_OFF,    // blob: int32 [out_c] or -1
    EL_CONV_MULT_OFF,    // blob: int32 [out_c]
    EL_CONV_SHIFT_OFF,   // blob: int32 [out_c]
    EL_CONV_NARGS
};
int el_conv_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
               int8_t *arena, size_t arena_len);

// ---- DEPTHWISE_CONV_2D (TFLM reference_integer_ops::DepthwiseConvPerChannel) ----
// out_c = in_c * depth_multiplier; output channel c reads input channel c / depth_multiplier.
enum {
    EL_DW_IN_OFF,        // arena: int8 [in_h, in_w, in_c]
    EL_DW_OUT_OFF,       // arena: int8 [out_h, out_w, out_c]
    EL_DW_IN_H,
    EL_DW_IN_W,
    EL_DW_IN_C,
    EL_DW_OUT_H,
    EL_DW_OUT_W,
    EL_DW_OUT_C,
    EL_DW_K_H,
    EL_DW_K_W,
    EL_DW_STRIDE_H,
    EL_DW_STRIDE_W,
    EL_DW_DIL_H,
    EL_DW_DIL_W,
    EL_DW_PAD_TOP,
    EL_DW_PAD_LEFT,
    EL_DW_DEPTH_MULT,
    EL_DW_IN_ZP,
    EL_DW_OUT_ZP,
    EL_DW_ACT_MIN,
    EL_DW_ACT_MAX,
    EL_DW_W_OFF,         // blob: int8 [k_h, k_w, out_c]
    EL_DW_BIAS_OFF,      // blob: int32 [out_c] or -1
    EL_DW_MULT_OFF,      // blob: int32 [out_c]
    EL_DW_SHIFT_OFF,     // blob: int32 [out_c]
    EL_DW_NARGS
};
int el_depthwise_conv_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                         int8_t *arena, size_t arena_len);

// ---- AVERAGE_POOL_2D / MAX_POOL_2D (TFLM reference_integer_ops::AveragePool / MaxPool) ----
// Input and output share scale and zero point. The average divides the in-bounds taps' sum by their
// count, rounding half away from zero; every window must hold at least one tap (TFLM fails otherwise),
// and filter_h * filter_w <= 2^23. Max pool of an empty window gives max(-128, act_min), as TFLM.
enum {
    EL_POOL_IN_OFF,      // arena: int8 [in_h, in_w, c]
    EL_POOL_OUT_OFF,     // arena: int8 [out_h, out_w, c]
    EL_POOL_IN_H,
    EL_POOL_IN_W,
    EL_POOL_C,
    EL_POOL_OUT_H,
    EL_POOL_OUT_W,
    EL_POOL_STRIDE_H,
    EL_POOL_STRIDE_W,
    EL_POOL_F_H,
    EL_POOL_F_W,
    EL_POOL_PAD_TOP,
    EL_POOL_PAD_LEFT,
    EL_POOL_ACT_MIN,
    EL_POOL_ACT_MAX,
    EL_POOL_NARGS
};
int el_average_pool_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len);
int el_max_pool_2d(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                   int8_t *arena, size_t arena_len);

// ---- ADD (TFLM reference_integer_ops::Add, equal shapes, no broadcasting) ----
// left_shift in [0, 31] (20 for int8); multipliers >= 0; shifts in [-31, 0] (TFLM's
// MultiplyByQuantizedMultiplierSmallerThanOneExp). The two inputs may be the same tensor.
enum {
    EL_ADD_IN1_OFF,      // arena: int8 [size]
    EL_ADD_IN2_OFF,      // arena: int8 [size]
    EL_ADD_OUT_OFF,      // arena: int8 [size]
    EL_ADD_SIZE,
    EL_ADD_IN1_ZP,
    EL_ADD_IN2_ZP,
    EL_ADD_OUT_ZP,
    EL_ADD_LEFT_SHIFT,
    EL_ADD_IN1_MULT,
    EL_ADD_IN1_SHIFT,
    EL_ADD_IN2_MULT,
    EL_ADD_IN2_SHIFT,
    EL_ADD_OUT_MULT,
    EL_ADD_OUT_SHIFT,
    EL_ADD_ACT_MIN,
    EL_ADD_ACT_MAX,
    EL_ADD_NARGS
};
int el_add(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
           int8_t *arena, size_t arena_len);

// ---- SOFTMAX (TFLM reference_ops::Softmax, int8 in, int8 out with scale 1/256, zero point -128) ----
// Over the last axis: `rows` rows of `depth` values. input_multiplier >= 0, input_left_shift in
// [0, 31], diff_min <= 0, depth <= 4095 (the Q12 sum of exps cannot wrap). A row whose sum of exps
// reaches 2^9 (only possible for depth >= 512) makes TFLM abort (its exponent check); here it
// returns EL_E_RANGE.
enum {
    EL_SM_IN_OFF,        // arena: int8 [rows, depth]
    EL_SM_OUT_OFF,       // arena: int8 [rows, depth]
    EL_SM_ROWS,
    EL_SM_DEPTH,
    EL_SM_INPUT_MULT,
    EL_SM_INPUT_LEFT_SHIFT,
    EL_SM_DIFF_MIN,
    EL_SM_NARGS
};
#define EL_SM_MAX_DEPTH 4095
int el_softmax(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
               int8_t *arena, size_t arena_len);

// ---- LOGISTIC (TFLM reference_integer_ops::Logistic, int8 out with scale 1/256, zero point -128) ----
// input_range_radius >= 0, input_multiplier >= 0, input_left_shift in [-31, 30].
enum {
    EL_LOG_IN_OFF,       // arena: int8 [size]
    EL_LOG_OUT_OFF,      // arena: int8 [size]
    EL_LOG_SIZE,
    EL_LOG_IN_ZP,
    EL_LOG_RANGE_RADIUS,
    EL_LOG_INPUT_MULT,
    EL_LOG_INPUT_LEFT_SHIFT,
    EL_LOG_NARGS
};
int el_logistic(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
                int8_t *arena, size_t arena_len);

// ---- MEAN over H and W (TFLM reference_ops::QuantizedMeanOrSum, integer path; docs/FORMAT.md) ----
// sum = sum of the h*w inputs of a channel - in_zp * h*w (int32, wrapping);
// out = clamp(MultiplyByQuantizedMultiplier(sum, multiplier, shift) + out_zp, -128, 127).
// The host folds 1/(h*w) into multiplier (>= 0) and shift ([-31, 30]).
enum {
    EL_MEAN_IN_OFF,      // arena: int8 [h, w, c]
    EL_MEAN_OUT_OFF,     // arena: int8 [c]
    EL_MEAN_H,
    EL_MEAN_W,
    EL_MEAN_C,
    EL_MEAN_IN_ZP,
    EL_MEAN_OUT_ZP,
    EL_MEAN_MULT,
    EL_MEAN_SHIFT,
    EL_MEAN_NARGS
};
int el_mean(const int32_t *args, size_t nargs, const uint8_t *blob, size_t blob_len,
            int8_t *arena, size_t arena_len);

// CRC-32 (IEEE 802.3, as zlib.crc32), continuing from `crc`.
uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif // EL_KERNELS_H
