// `_edgeloop` as a dynamic native module (.mpy) for stock firmware: same kernels, same bindings.
#include "py/dynruntime.h"
#include "el_bindings.h"
#include "el_bindings_crypto.h"

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY

    mp_store_global(MP_QSTR_KERNELS_VERSION, MP_OBJ_NEW_SMALL_INT(EL_KERNELS_VERSION));
    mp_store_global(MP_QSTR_BUILD, MP_OBJ_NEW_QSTR(MP_QSTR_natmod));
    mp_store_global(MP_QSTR_fully_connected, MP_OBJ_FROM_PTR(&el_fully_connected_obj));
    mp_store_global(MP_QSTR_fully_connected_sparse, MP_OBJ_FROM_PTR(&el_fully_connected_sparse_obj));
    mp_store_global(MP_QSTR_conv_2d, MP_OBJ_FROM_PTR(&el_conv_2d_obj));
    mp_store_global(MP_QSTR_depthwise_conv_2d, MP_OBJ_FROM_PTR(&el_depthwise_conv_2d_obj));
    mp_store_global(MP_QSTR_average_pool_2d, MP_OBJ_FROM_PTR(&el_average_pool_2d_obj));
    mp_store_global(MP_QSTR_max_pool_2d, MP_OBJ_FROM_PTR(&el_max_pool_2d_obj));
    mp_store_global(MP_QSTR_mean, MP_OBJ_FROM_PTR(&el_mean_obj));
    mp_store_global(MP_QSTR_add, MP_OBJ_FROM_PTR(&el_add_obj));
    mp_store_global(MP_QSTR_softmax, MP_OBJ_FROM_PTR(&el_softmax_obj));
    mp_store_global(MP_QSTR_logistic, MP_OBJ_FROM_PTR(&el_logistic_obj));
    mp_store_global(MP_QSTR_run, MP_OBJ_FROM_PTR(&el_run_obj));
    mp_store_global(MP_QSTR_copy, MP_OBJ_FROM_PTR(&el_copy_obj));
    mp_store_global(MP_QSTR_crc32, MP_OBJ_FROM_PTR(&el_crc32_obj));
    mp_store_global(MP_QSTR_ed25519_verify, MP_OBJ_FROM_PTR(&el_ed25519_verify_obj));
    mp_store_global(MP_QSTR_sha512, MP_OBJ_FROM_PTR(&el_sha512_obj));

    MP_DYNRUNTIME_INIT_EXIT
}
