// Ed25519 signature verification (RFC 8032), portable C99, no MicroPython headers, no libc calls.
// Verification only: edgeloop devices hold public keys, never private ones (OTA manifests, docs/OTA.md).
#ifndef EL_ED25519_H
#define EL_ED25519_H

#include <stddef.h>
#include <stdint.h>

// 1 when `sig` is a valid signature of msg[0..len) by `pub`, else 0. Accepts what RFC 8032 5.1.7
// accepts with the cofactorless equation: S < L, A a canonical point encoding, and R equal to the
// encoding of [S]B - [k]A. Not constant time (every input is public).
int el_ed25519_verify(const uint8_t sig[64], const uint8_t pub[32], const uint8_t *msg, size_t len);

#endif // EL_ED25519_H
