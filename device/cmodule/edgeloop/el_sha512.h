// SHA-512 (FIPS 180-4), portable C99, no MicroPython headers. Used by Ed25519 verification (OTA).
#ifndef EL_SHA512_H
#define EL_SHA512_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[8];
    uint64_t n;          // bytes hashed so far
    uint8_t buf[128];
    size_t fill;
} el_sha512_ctx;

void el_sha512_init(el_sha512_ctx *c);
void el_sha512_update(el_sha512_ctx *c, const uint8_t *data, size_t len);
void el_sha512_final(el_sha512_ctx *c, uint8_t out[64]);
void el_sha512(const uint8_t *data, size_t len, uint8_t out[64]);

#endif // EL_SHA512_H
