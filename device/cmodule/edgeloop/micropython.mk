# User C module wiring for make-based ports (unix, qemu): USER_C_MODULES=<repo>/device/cmodule
EDGELOOP_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/el_kernels.c
SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/mod_edgeloop.c
# The int8 ops, one per file (el_kernels.h lists their argument words).
SRC_USERMOD_C += $(addprefix $(EDGELOOP_MOD_DIR)/,el_gemm.c el_fc.c el_fc_sparse.c el_conv.c el_depthwise.c el_pool.c el_mean.c \
                   el_add.c el_softmax.c el_logistic.c)
SRC_USERMOD_C += $(EDGELOOP_MOD_DIR)/el_ed25519.c $(EDGELOOP_MOD_DIR)/el_sha512.c

CFLAGS_USERMOD += -I$(EDGELOOP_MOD_DIR) -O2
# Keep loops as loops: no calls to memset/memcpy behind our back (the natmods have no libc).
CFLAGS_USERMOD += -fno-tree-loop-distribute-patterns
