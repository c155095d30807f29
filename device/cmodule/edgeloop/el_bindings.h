// MicroPython bindings of the edgeloop kernels, shared by the user C module (mod_edgeloop.c) and the
// natmod (device/natmod/natmod_edgeloop.c). Included after "py/runtime.h" or "py/dynruntime.h".
// Every kernel takes (blob, arena, args): a readable buffer, a writable buffer and an array('i') of
// argument words (layouts in el_kernels.h). The kernels validate every word against the buffer sizes.
#ifndef EL_BINDINGS_H
#define EL_BINDINGS_H

#include "el_kernels.h"

static const int32_t *el_args_words(mp_obj_t args_in, size_t *n) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(args_in, &info, MP_BUFFER_READ);
    if ((info.typecode != 'i' && info.typecode != 'l') || (info.len & 3) != 0
        || ((uintptr_t)info.buf & 3) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("args must be an array('i') of int32 words"));
    }
    *n = info.len / 4;
    return (const int32_t *)info.buf;
}

// Raise ValueError carrying the kernel's message (a runtime string, so it cannot go through
// MP_ERROR_TEXT when the firmware compresses ROM text).
static void el_check(int status) {
    if (status != EL_OK) {
        #if MICROPY_ENABLE_DYNRUNTIME
        mp_raise_msg(&mp_type_ValueError, el_status_str(status));
        #else
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s"), el_status_str(status));
        #endif
    }
}

typedef int (*el_kernel_fn)(const int32_t *, size_t, const uint8_t *, size_t, int8_t *, size_t);

static mp_obj_t el_call_kernel(el_kernel_fn kernel, mp_obj_t blob_in, mp_obj_t arena_in, mp_obj_t args_in) {
    mp_buffer_info_t blob, arena;
    mp_get_buffer_raise(blob_in, &blob, MP_BUFFER_READ);
    mp_get_buffer_raise(arena_in, &arena, MP_BUFFER_WRITE);
    size_t n;
    const int32_t *words = el_args_words(args_in, &n);
    el_check(kernel(words, n, (const uint8_t *)blob.buf, blob.len, (int8_t *)arena.buf, arena.len));
    return mp_const_none;
}

// <op>(blob, arena, args): one binding per kernel of el_kernels.h.
#define EL_KERNEL_BINDING(op) \
    static mp_obj_t el_##op##_fn(mp_obj_t blob_in, mp_obj_t arena_in, mp_obj_t args_in) { \
        return el_call_kernel(el_##op, blob_in, arena_in, args_in); \
    } \
    static MP_DEFINE_CONST_FUN_OBJ_3(el_##op##_obj, el_##op##_fn);

EL_KERNEL_BINDING(fully_connected)
EL_KERNEL_BINDING(fully_connected_sparse)
EL_KERNEL_BINDING(conv_2d)
EL_KERNEL_BINDING(depthwise_conv_2d)
EL_KERNEL_BINDING(average_pool_2d)
EL_KERNEL_BINDING(max_pool_2d)
EL_KERNEL_BINDING(mean)
EL_KERNEL_BINDING(add)
EL_KERNEL_BINDING(softmax)
EL_KERNEL_BINDING(logistic)

// el_move(d, s, n): memmove without libc (natmods have none).
static void el_move(uint8_t *d, const uint8_t *s, size_t n) {
    if (d > s && d < s + n) {
        for (size_t i = n; i-- > 0;) {
            d[i] = s[i];
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            d[i] = s[i];
        }
    }
}

// run(blob, arena, calls[, input, x]): with `input` and `x`, first copies len(input) bytes of x into
// `input` (the model's input view), then calls[i](blob, arena, calls[i + 1]) for i = 0, 2, 4, ... of a
// tuple (kernel, args, kernel, args, ...): Model.predict's copy and op loop in one C call instead of
// Python (each kernel still validates its words). A tuple, so that a callee cannot resize it.
static mp_obj_t el_run_fn(size_t n_args, const mp_obj_t *args) {
    if (!mp_obj_is_type(args[2], &mp_type_tuple)) {
        mp_raise_TypeError(MP_ERROR_TEXT("calls must be a tuple"));
    }
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(args[2], &n, &items);
    if ((n & 1) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("calls must pair each kernel with its args"));
    }
    if (n_args == 4) {
        mp_raise_TypeError(MP_ERROR_TEXT("run takes the input view and x together"));
    }
    if (n_args == 5) {
        mp_buffer_info_t dst, src;
        mp_get_buffer_raise(args[3], &dst, MP_BUFFER_WRITE);
        if (!mp_get_buffer(args[4], &src, MP_BUFFER_READ)) {
            mp_raise_ValueError(MP_ERROR_TEXT("input must be int8 bytes (bytes, bytearray, array('b'), "
                                              "memoryview); use predict_float() for floats"));
        }
        if (src.len < dst.len) {
            mp_raise_ValueError(MP_ERROR_TEXT("input has fewer bytes than the model takes"));
        }
        el_move((uint8_t *)dst.buf, (const uint8_t *)src.buf, dst.len);
    }
    mp_obj_t call[3] = {args[0], args[1], mp_const_none};
    for (size_t i = 0; i < n; i += 2) {
        call[2] = items[i + 1];
        mp_call_function_n_kw(items[i], 3, 0, call);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(el_run_obj, 3, 5, el_run_fn);

// copy(dst, src, n): the first n bytes of buffer src into buffer dst (TypeError for objects without the
// buffer protocol, ValueError when n exceeds either); overlapping buffers are fine.
static mp_obj_t el_copy_fn(mp_obj_t dst_in, mp_obj_t src_in, mp_obj_t n_in) {
    mp_buffer_info_t dst, src;
    mp_get_buffer_raise(dst_in, &dst, MP_BUFFER_WRITE);
    mp_get_buffer_raise(src_in, &src, MP_BUFFER_READ);
    const mp_int_t n = mp_obj_get_int(n_in);
    if (n < 0 || (size_t)n > dst.len || (size_t)n > src.len) {
        mp_raise_ValueError(MP_ERROR_TEXT("copy: n is negative or exceeds a buffer"));
    }
    el_move((uint8_t *)dst.buf, (const uint8_t *)src.buf, (size_t)n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_3(el_copy_obj, el_copy_fn);

// crc32(data, crc=0) -> int, as binascii.crc32 / zlib.crc32
static mp_obj_t el_crc32_fn(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t data;
    mp_get_buffer_raise(args[0], &data, MP_BUFFER_READ);
    uint32_t crc = n_args > 1 ? (uint32_t)mp_obj_get_int_truncated(args[1]) : 0;
    crc = el_crc32(crc, (const uint8_t *)data.buf, data.len);
    return mp_obj_new_int_from_uint(crc);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(el_crc32_obj, 1, 2, el_crc32_fn);

#endif // EL_BINDINGS_H
