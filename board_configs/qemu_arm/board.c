// edgeloop qemu_arm board support (qemu -machine mps2-an385, Cortex-M3).
//
// - main(): replaces the port's main() (linked with --wrap=main): the GC heap spans all RAM
//   between .bss and a 64 KB stack (~3 MB), the frozen _boot.py mounts littlefs on /flash,
//   then /flash/boot.py and (friendly REPL only) /flash/main.py run, like on a real board.
// - time: mp_hal_ticks_* / delay_* from the MPS2 FPGAIO free-running counter, prescaled to
//   1 MHz (25 MHz / (24 + 1)). It runs on qemu's virtual clock, so with `-icount shift=0`
//   tick differences count instructions (1 us = 1000 instructions) and are reproducible.
// - stdin: bytes that arrive while Python code runs are moved from the UART into a ring buffer
//   by a VM hook, which turns the interrupt character (Ctrl-C) into KeyboardInterrupt;
//   mp_hal_stdio_poll (select.poll on sys.stdin) sees that buffer and the UART.
// - _board.ramdisk(): a writable memoryview of a static 512 KB RAM disk outside the GC heap
//   (survives soft resets; formatted by _boot.py on first use).
#include <stdint.h>
#include <string.h>

#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/objarray.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "py/stream.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/runtime/pyexec.h"

#define EL_STACK_SIZE (64 * 1024)
#define EL_RAMDISK_SIZE (512 * 1024)

// ---- UART (CMSDK APB UART0, as in ports/qemu/uart.c) --------------------------------------
typedef struct {
    volatile uint32_t DATA;
    volatile uint32_t STATE;
    volatile uint32_t CTRL;
    volatile uint32_t INTSTATUS;
    volatile uint32_t BAUDDIV;
} el_uart_t;
#define EL_UART0 ((el_uart_t *)0x40004000)
#define EL_UART_STATE_RXFULL (1 << 1)

static uint8_t el_rx_buf[1024];
static volatile uint32_t el_rx_head, el_rx_tail;   // head: next write, tail: next read

static inline uint32_t el_rx_count(void) {
    return el_rx_head - el_rx_tail;
}

// Move pending UART bytes into the ring buffer, turning the interrupt char into a pending
// KeyboardInterrupt. Called from the VM hook, from event waits and from the stdio poll.
void edgeloop_board_poll(void) {
    while ((EL_UART0->STATE & EL_UART_STATE_RXFULL) && el_rx_count() < sizeof(el_rx_buf)) {
        int c = EL_UART0->DATA & 0xff;
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
            continue;
        }
        el_rx_buf[el_rx_head % sizeof(el_rx_buf)] = (uint8_t)c;
        el_rx_head++;
    }
}

int __wrap_mp_hal_stdin_rx_chr(void) {
    for (;;) {
        if (el_rx_count() > 0) {
            int c = el_rx_buf[el_rx_tail % sizeof(el_rx_buf)];
            el_rx_tail++;
            return c;
        }
        if (EL_UART0->STATE & EL_UART_STATE_RXFULL) {
            return EL_UART0->DATA & 0xff;
        }
        mp_event_handle_nowait();
    }
}

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ret = 0;
    if (poll_flags & MP_STREAM_POLL_RD) {
        if (el_rx_count() > 0 || (EL_UART0->STATE & EL_UART_STATE_RXFULL)) {
            ret |= MP_STREAM_POLL_RD;
        }
    }
    if (poll_flags & MP_STREAM_POLL_WR) {
        ret |= MP_STREAM_POLL_WR;
    }
    return ret;
}

// ---- time: MPS2 FPGAIO counter ------------------------------------------------------------
#define EL_FPGAIO_COUNTER (*(volatile uint32_t *)0x40028018)
#define EL_FPGAIO_PRESCALE (*(volatile uint32_t *)0x4002801c)

static uint64_t el_us_acc;
static uint32_t el_us_last;

static void el_time_init(void) {
    EL_FPGAIO_PRESCALE = 24;   // 25 MHz / 25 = 1 MHz
    el_us_last = EL_FPGAIO_COUNTER;
    el_us_acc = 0;
}

// Microseconds since boot, extended to 64 bits (needs a call at least every 71 minutes).
static uint64_t el_ticks_us64(void) {
    uint32_t now = EL_FPGAIO_COUNTER;
    el_us_acc += (uint32_t)(now - el_us_last);
    el_us_last = now;
    return el_us_acc;
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)el_ticks_us64();
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(el_ticks_us64() / 1000);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return EL_FPGAIO_COUNTER;
}

uint64_t mp_hal_time_ns(void) {
    return el_ticks_us64() * 1000;
}

void mp_hal_delay_us(mp_uint_t us) {
    uint64_t end = el_ticks_us64() + us;
    while (el_ticks_us64() < end) {
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    uint64_t end = el_ticks_us64() + (uint64_t)ms * 1000;
    while (el_ticks_us64() < end) {
        mp_event_handle_nowait();   // polls the UART (Ctrl-C) and runs pending callbacks
    }
}

// ---- RAM disk -----------------------------------------------------------------------------
static uint8_t el_ramdisk[EL_RAMDISK_SIZE] __attribute__((aligned(16)));

static mp_obj_t el_board_ramdisk(void) {
    return mp_obj_new_memoryview(MP_OBJ_ARRAY_TYPECODE_FLAG_RW | 'B', sizeof(el_ramdisk), el_ramdisk);
}
static MP_DEFINE_CONST_FUN_OBJ_0(el_board_ramdisk_obj, el_board_ramdisk);

static const mp_rom_map_elem_t el_board_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__board) },
    { MP_ROM_QSTR(MP_QSTR_ramdisk), MP_ROM_PTR(&el_board_ramdisk_obj) },
    { MP_ROM_QSTR(MP_QSTR_RAMDISK_SIZE), MP_ROM_INT(EL_RAMDISK_SIZE) },
};
static MP_DEFINE_CONST_DICT(el_board_globals, el_board_globals_table);

const mp_obj_module_t el_board_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&el_board_globals,
};
MP_REGISTER_MODULE(MP_QSTR__board, el_board_module);

// ---- main ---------------------------------------------------------------------------------
extern uint8_t _heap_start[], _estack[];

int __wrap_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    mp_stack_ctrl_init();
    mp_stack_set_limit(EL_STACK_SIZE - 4096);
    el_time_init();
    gc_init(_heap_start, (void *)((uintptr_t)_estack - EL_STACK_SIZE));

    for (;;) {
        mp_init();

        pyexec_frozen_module("_boot.py", false);
        pyexec_file_if_exists("boot.py");
        if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL) {
            pyexec_file_if_exists("main.py");
        }

        for (;;) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                if (pyexec_raw_repl() != 0) {
                    break;
                }
            } else {
                if (pyexec_friendly_repl() != 0) {
                    break;
                }
            }
        }

        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}
