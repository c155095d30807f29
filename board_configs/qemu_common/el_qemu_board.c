// edgeloop board support shared by the emulated qemu_rv32 (qemu `virt`, RV32IMAC) and qemu_m0
// (qemu `microbit`, nRF51 Cortex-M0) boards. Same behaviour as board_configs/qemu_arm/board.c:
//
// - main(): replaces the port's main() (linked with --wrap=main): the GC heap is a static array
//   (EL_HEAP_SIZE), the frozen _boot.py mounts littlefs on /flash, then /flash/boot.py and
//   (friendly REPL only) /flash/main.py run, like on a real board.
// - time: mp_hal_ticks_* / delay_* from a free-running counter on qemu's virtual clock
//   (virt: the CLINT mtime at 10 MHz; nRF51: TIMER0 in 32-bit mode at 1 MHz, read by CAPTURE),
//   so with `-icount shift=0` tick differences count instructions and are reproducible.
// - stdin: bytes that arrive while Python code runs are moved from the UART into a ring buffer
//   by a VM hook, which turns the interrupt character (Ctrl-C) into KeyboardInterrupt;
//   mp_hal_stdio_poll (select.poll on sys.stdin) sees that buffer and the UART.
// - _board.ramdisk(): a writable memoryview of a static RAM disk (EL_RAMDISK_SIZE) outside the
//   GC heap (survives soft resets; formatted by _boot.py on first use).
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

#ifndef EL_HEAP_SIZE
#error "EL_HEAP_SIZE must be set by the board (mpconfigboard.mk)"
#endif
#ifndef EL_RAMDISK_SIZE
#error "EL_RAMDISK_SIZE must be set by the board (mpconfigboard.mk)"
#endif
#ifndef EL_STACK_LIMIT
#define EL_STACK_LIMIT (8 * 1024)
#endif

// ---- UART ---------------------------------------------------------------------------------
#if defined(QEMU_SOC_VIRT)
// NS16550A at 0x10000000 (byte registers)
#define EL_UART_BASE ((volatile uint8_t *)0x10000000)
#define EL_UART_RBR (EL_UART_BASE[0])
#define EL_UART_FCR (EL_UART_BASE[2])
#define EL_UART_LSR (EL_UART_BASE[5])

static void el_uart_init(void) {
    EL_UART_FCR = 0x07;   // enable and clear the 16-byte FIFOs (qemu's default is no FIFO)
}

static inline int el_uart_rx_ready(void) {
    return EL_UART_LSR & 0x01;
}

static inline int el_uart_rx_byte(void) {
    return EL_UART_RBR;
}

// ---- time: CLINT mtime, 10 MHz in qemu virt
#define EL_MTIME_LO (*(volatile uint32_t *)0x0200BFF8)
#define EL_MTIME_HI (*(volatile uint32_t *)0x0200BFFC)

static void el_time_init(void) {
}

static uint64_t el_ticks_us64(void) {
    uint32_t hi, lo;
    do {
        hi = EL_MTIME_HI;
        lo = EL_MTIME_LO;
    } while (hi != EL_MTIME_HI);
    return (((uint64_t)hi << 32) | lo) / 10;
}

static uint32_t el_ticks_raw(void) {
    return EL_MTIME_LO;
}

#elif defined(QEMU_SOC_NRF51)
// nRF51 UART0 at 0x40002000 (as in ports/qemu/uart.c)
#define EL_UART_RXDRDY (*(volatile uint32_t *)0x40002108)
#define EL_UART_RXD (*(volatile uint32_t *)0x40002518)

static void el_uart_init(void) {
}

static inline int el_uart_rx_ready(void) {
    return EL_UART_RXDRDY != 0;
}

static inline int el_uart_rx_byte(void) {
    EL_UART_RXDRDY = 0;   // reading RXD sets it again if more bytes are waiting
    return EL_UART_RXD & 0xff;
}

// ---- time: TIMER0, 32-bit timer mode, 16 MHz / 2^4 = 1 MHz, read through CAPTURE[0]
#define EL_TIMER0(off) (*(volatile uint32_t *)(0x40008000 + (off)))
#define EL_TIMER_START 0x000
#define EL_TIMER_CLEAR 0x00c
#define EL_TIMER_CAPTURE0 0x040
#define EL_TIMER_MODE 0x504
#define EL_TIMER_BITMODE 0x508
#define EL_TIMER_PRESCALER 0x510
#define EL_TIMER_CC0 0x540

static uint64_t el_us_acc;
static uint32_t el_us_last;

static uint32_t el_ticks_raw(void) {
    EL_TIMER0(EL_TIMER_CAPTURE0) = 1;
    return EL_TIMER0(EL_TIMER_CC0);
}

static void el_time_init(void) {
    EL_TIMER0(EL_TIMER_MODE) = 0;        // timer
    EL_TIMER0(EL_TIMER_BITMODE) = 3;     // 32 bit
    EL_TIMER0(EL_TIMER_PRESCALER) = 4;   // 1 MHz
    EL_TIMER0(EL_TIMER_CLEAR) = 1;
    EL_TIMER0(EL_TIMER_START) = 1;
    el_us_last = el_ticks_raw();
    el_us_acc = 0;
}

// Microseconds since boot, extended to 64 bits (needs a call at least every 71 minutes).
static uint64_t el_ticks_us64(void) {
    uint32_t now = el_ticks_raw();
    el_us_acc += (uint32_t)(now - el_us_last);
    el_us_last = now;
    return el_us_acc;
}

#else
#error "el_qemu_board.c: unsupported QEMU_SOC"
#endif

// ---- stdin ring buffer --------------------------------------------------------------------
static uint8_t el_rx_buf[512];
static volatile uint32_t el_rx_head, el_rx_tail;   // head: next write, tail: next read

static inline uint32_t el_rx_count(void) {
    return el_rx_head - el_rx_tail;
}

// Move pending UART bytes into the ring buffer, turning the interrupt char into a pending
// KeyboardInterrupt. Called from the VM hook, from event waits and from the stdio poll.
void edgeloop_board_poll(void) {
    while (el_rx_count() < sizeof(el_rx_buf) && el_uart_rx_ready()) {
        int c = el_uart_rx_byte();
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
        if (el_uart_rx_ready()) {
            return el_uart_rx_byte();
        }
        mp_event_handle_nowait();
    }
}

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ret = 0;
    if (poll_flags & MP_STREAM_POLL_RD) {
        if (el_rx_count() > 0 || el_uart_rx_ready()) {
            ret |= MP_STREAM_POLL_RD;
        }
    }
    if (poll_flags & MP_STREAM_POLL_WR) {
        ret |= MP_STREAM_POLL_WR;
    }
    return ret;
}

// ---- time ---------------------------------------------------------------------------------
mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)el_ticks_us64();
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(el_ticks_us64() / 1000);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return el_ticks_raw();
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

// ---- RAM disk and heap --------------------------------------------------------------------
static uint8_t el_ramdisk[EL_RAMDISK_SIZE] __attribute__((aligned(16)));
static uint8_t el_heap[EL_HEAP_SIZE] __attribute__((aligned(16)));

static mp_obj_t el_board_ramdisk(void) {
    return mp_obj_new_memoryview(MP_OBJ_ARRAY_TYPECODE_FLAG_RW | 'B', sizeof(el_ramdisk), el_ramdisk);
}
static MP_DEFINE_CONST_FUN_OBJ_0(el_board_ramdisk_obj, el_board_ramdisk);

static const mp_rom_map_elem_t el_board_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__board) },
    { MP_ROM_QSTR(MP_QSTR_ramdisk), MP_ROM_PTR(&el_board_ramdisk_obj) },
    { MP_ROM_QSTR(MP_QSTR_RAMDISK_SIZE), MP_ROM_INT(EL_RAMDISK_SIZE) },
    { MP_ROM_QSTR(MP_QSTR_HEAP_SIZE), MP_ROM_INT(EL_HEAP_SIZE) },
};
static MP_DEFINE_CONST_DICT(el_board_globals, el_board_globals_table);

const mp_obj_module_t el_board_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&el_board_globals,
};
MP_REGISTER_MODULE(MP_QSTR__board, el_board_module);

// ---- main ---------------------------------------------------------------------------------
int __wrap_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    mp_stack_ctrl_init();
    mp_stack_set_limit(EL_STACK_LIMIT);
    el_uart_init();
    el_time_init();
    gc_init(el_heap, el_heap + sizeof(el_heap));

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
