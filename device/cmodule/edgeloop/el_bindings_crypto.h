// MicroPython bindings of the OTA crypto (el_ed25519.c, el_sha512.c), shared by the user C module
// (mod_edgeloop.c) and the natmod (device/natmod/natmod_edgeloop.c). Included after "py/runtime.h" or
// "py/dynruntime.h". Registered names: ed25519_verify, sha512.
#ifndef EL_BINDINGS_CRYPTO_H
#define EL_BINDINGS_CRYPTO_H

#include "el_ed25519.h"
#include "el_sha512.h"

// ed25519_verify(signature, public_key, message) -> bool
static mp_obj_t el_ed25519_verify_fn(mp_obj_t sig_in, mp_obj_t pub_in, mp_obj_t msg_in) {
    mp_buffer_info_t sig, pub, msg;
    mp_get_buffer_raise(sig_in, &sig, MP_BUFFER_READ);
    mp_get_buffer_raise(pub_in, &pub, MP_BUFFER_READ);
    mp_get_buffer_raise(msg_in, &msg, MP_BUFFER_READ);
    if (sig.len != 64 || pub.len != 32) {
        return mp_const_false;
    }
    int ok = el_ed25519_verify((const uint8_t *)sig.buf, (const uint8_t *)pub.buf,
        (const uint8_t *)msg.buf, msg.len);
    return mp_obj_new_bool(ok);
}
static MP_DEFINE_CONST_FUN_OBJ_3(el_ed25519_verify_obj, el_ed25519_verify_fn);

// sha512(data) -> 64-byte digest
static mp_obj_t el_sha512_fn(mp_obj_t data_in) {
    mp_buffer_info_t data;
    mp_get_buffer_raise(data_in, &data, MP_BUFFER_READ);
    uint8_t out[64];
    el_sha512((const uint8_t *)data.buf, data.len, out);
    return mp_obj_new_bytes(out, 64);
}
static MP_DEFINE_CONST_FUN_OBJ_1(el_sha512_obj, el_sha512_fn);

#endif // EL_BINDINGS_CRYPTO_H
