# Entry point for CMake-based ports: USER_C_MODULES=<repo>/device/cmodule/micropython.cmake
include(${CMAKE_CURRENT_LIST_DIR}/edgeloop/micropython.cmake)
