# User C module wiring for CMake-based ports (esp32, rp2):
#   make USER_C_MODULES=<repo>/device/cmodule/micropython.cmake
add_library(usermod_edgeloop INTERFACE)

target_sources(usermod_edgeloop INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/el_kernels.c
    ${CMAKE_CURRENT_LIST_DIR}/mod_edgeloop.c
    ${CMAKE_CURRENT_LIST_DIR}/el_gemm.c
    ${CMAKE_CURRENT_LIST_DIR}/el_fc.c
    ${CMAKE_CURRENT_LIST_DIR}/el_fc_sparse.c
    ${CMAKE_CURRENT_LIST_DIR}/el_conv.c
    ${CMAKE_CURRENT_LIST_DIR}/el_depthwise.c
    ${CMAKE_CURRENT_LIST_DIR}/el_pool.c
    ${CMAKE_CURRENT_LIST_DIR}/el_mean.c
    ${CMAKE_CURRENT_LIST_DIR}/el_add.c
    ${CMAKE_CURRENT_LIST_DIR}/el_softmax.c
    ${CMAKE_CURRENT_LIST_DIR}/el_logistic.c
    ${CMAKE_CURRENT_LIST_DIR}/el_ed25519.c
    ${CMAKE_CURRENT_LIST_DIR}/el_sha512.c
)

target_include_directories(usermod_edgeloop INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_compile_options(usermod_edgeloop INTERFACE -O2 -fno-tree-loop-distribute-patterns)

target_link_libraries(usermod INTERFACE usermod_edgeloop)
