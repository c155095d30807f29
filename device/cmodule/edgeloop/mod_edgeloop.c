// `_edgeloop`: the edgeloop kernel module, built into firmware as a user C module.
#include "py/runtime.h"
#include "el_bindings.h"
#include "el_bindings_crypto.h"

static const mp_rom_map_elem_t el_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__edgeloop) },
    { MP_ROM_QSTR(MP_QSTR_KERNELS_VERSION), MP_ROM_INT(EL_KERNELS_VERSION) },
    { MP_ROM_QSTR(MP_QSTR_BUILD), MP_ROM_QSTR(MP_QSTR_usermod) },
    { MP_ROM_QSTR(MP_QSTR_fully_connected), MP_ROM_PTR(&el_fully_connected_obj) },
    { MP_ROM_QSTR(MP_QSTR_fully_connected_sparse), MP_ROM_PTR(&el_fully_connected_sparse_obj) },
    { MP_ROM_QSTR(MP_QSTR_conv_2d), MP_ROM_PTR(&el_conv_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_depthwise_conv_2d), MP_ROM_PTR(&el_depthwise_conv_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_average_pool_2d), MP_ROM_PTR(&el_average_pool_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_max_pool_2d), MP_ROM_PTR(&el_max_pool_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_mean), MP_ROM_PTR(&el_mean_obj) },
    { MP_ROM_QSTR(MP_QSTR_add), MP_ROM_PTR(&el_add_obj) },
    { MP_ROM_QSTR(MP_QSTR_softmax), MP_ROM_PTR(&el_softmax_obj) },
    { MP_ROM_QSTR(MP_QSTR_logistic), MP_ROM_PTR(&el_logistic_obj) },
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&el_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_copy), MP_ROM_PTR(&el_copy_obj) },
    { MP_ROM_QSTR(MP_QSTR_crc32), MP_ROM_PTR(&el_crc32_obj) },
    { MP_ROM_QSTR(MP_QSTR_ed25519_verify), MP_ROM_PTR(&el_ed25519_verify_obj) },
    { MP_ROM_QSTR(MP_QSTR_sha512), MP_ROM_PTR(&el_sha512_obj) },
};
static MP_DEFINE_CONST_DICT(el_module_globals, el_module_globals_table);

const mp_obj_module_t el_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&el_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__edgeloop, el_user_cmodule);
