// edgeloop int8 kernels: portable C99, no MicroPython headers.
// The same source is built as a MicroPython user C module, as natmods (.mpy) and as a host library.
// Arithmetic follows TensorFlow Lite Micro's reference integer kernels bit for bit.
#ifndef EL_KERNELS_H
#define EL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define EL_KERNELS_VERSION 1

// Status codes returned by every entry point; el_status_str() gives the message.
enum {
    EL_OK = 0,
    EL_E_NARGS,        // wrong number of argument words for the op
    EL_E_DIM,          // a dimension is < 1 or too large
    EL_E_ARENA_RANGE,  // an activation does not fit in the arena
    EL_E_BLOB_RANGE,   // constant data does not fit in the blob
    EL_E_ALIGN,        // int32 constant data is not 4-byte aligned
    EL_E_OVERLAP,      // input and output activations overlap
    EL_E_ZERO_POINT,   // zero point outside -128..127
    EL_E_CLAMP,        // activation clamp outside -128..127 or min > max
    EL_E_QUANT,        // multiplier < 0, shift outside [-31, 30], or bad per-channel count
    EL_E_COUNT_
};

const char *el_status_str(int status);

// Fixed-point primitives (gemmlowp / TFLM), exposed for the host tests.
int32_t el_srdhm(int32_t a, int32_t b);                  // SaturatingRoundingDoublingHighMul
int32_t el_rdbypot(int32_t x, int exponent);             // RoundingDivideByPOT, exponent 0..31
int32_t el_mbqm(int32_t x, int32_t multiplier, int shift);  // MultiplyByQuantizedMultiplier

// FULLY_CONNECTED argument words (int32). Arena offsets index `arena`, blob offsets index `blob`.
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
    EL_FC_MULT_OFF,      // blob: int32 [n_quant], 4-aligned
    EL_FC_SHIFT_OFF,     // blob: int32 [n_quant], 4-aligned
    EL_FC_N_QUANT,       // 1 (per-tensor) or out_features (per-channel)
    EL_FC_NARGS
};

int el_fully_connected(const int32_t *args, size_t nargs,
                       const uint8_t *blob, size_t blob_len,
                       int8_t *arena, size_t arena_len);

// CRC-32 (IEEE 802.3, as zlib.crc32), continuing from `crc`.
uint32_t el_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif // EL_KERNELS_H
