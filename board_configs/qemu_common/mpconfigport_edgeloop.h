// edgeloop qemu_arm / qemu_rv32 / qemu_m0 boards: the qemu port's configuration plus what edgeloop needs.
// Selected with -DMP_CONFIGFILE (see each board's mpconfigboard.mk).
#if defined(QEMU_SOC_NRF51)
// The stock nRF51 board has no native emitter; Cortex-M0 runs armv6m code (natmods, viper).
#define MICROPY_EMIT_THUMB          (1)
#define MICROPY_EMIT_THUMB_ARMV7M   (0)
#endif

#include "mpconfigport.h"

#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME             (1)   // ticks_* from the board counter, sleep*
#undef MICROPY_PY_SYS_STDIO_BUFFER
#define MICROPY_PY_SYS_STDIO_BUFFER (1)   // sys.stdin.buffer / sys.stdout.buffer (mpremote mount)
#undef MICROPY_PY_SELECT
#define MICROPY_PY_SELECT           (1)   // select.poll on stdin (mpremote mount)
#define MICROPY_KBD_EXCEPTION       (1)   // Ctrl-C raises KeyboardInterrupt in running code
#define MICROPY_PY_OS_SYNC          (1)

// Poll the UART every few bytecode jumps/returns and while waiting, so Ctrl-C interrupts.
#ifndef __ASSEMBLER__
void edgeloop_board_poll(void);
void edgeloop_board_wfe(mp_int_t timeout_ms);
#endif
#define MICROPY_VM_HOOK_COUNT (64)
#define MICROPY_VM_HOOK_INIT static unsigned int vm_hook_divisor = MICROPY_VM_HOOK_COUNT;
#define MICROPY_VM_HOOK_POLL if (--vm_hook_divisor == 0) { \
        vm_hook_divisor = MICROPY_VM_HOOK_COUNT; \
        edgeloop_board_poll(); \
}
#define MICROPY_VM_HOOK_LOOP MICROPY_VM_HOOK_POLL
#define MICROPY_VM_HOOK_RETURN MICROPY_VM_HOOK_POLL
#define MICROPY_INTERNAL_EVENT_HOOK edgeloop_board_poll()
// Waits for input sleep (WFI) instead of spinning: see el_sleep in el_qemu_board.c.
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS) edgeloop_board_wfe((mp_int_t)(TIMEOUT_MS))
