// edgeloop board support of the emulated boards: qemu_arm (qemu `mps2-an385`, Cortex-M3),
// qemu_rv32 (qemu `virt`, RV32IMAC) and qemu_m0 (qemu `microbit`, nRF51 Cortex-M0).
//
// - main(): replaces the port's main() (linked with --wrap=main): the GC heap is a static array
//   (EL_HEAP_SIZE), the frozen _boot.py mounts littlefs on /flash, then /flash/boot.py and
//   (friendly REPL only) /flash/main.py run, like on a real board.
// - time: mp_hal_ticks_* / delay_* from a free-running counter on qemu's virtual clock
//   (MPS2: the FPGAIO counter prescaled to 1 MHz; virt: the CLINT mtime at 10 MHz; nRF51: TIMER0
//   in 32-bit mode at 1 MHz, read by CAPTURE), so with `-icount shift=0` tick differences count
//   instructions and are reproducible.
// - stdin: bytes that arrive while Python code runs are moved from the UART into a ring buffer
//   by a VM hook, which turns the interrupt character (Ctrl-C) into KeyboardInterrupt;
//   mp_hal_stdio_poll (select.poll on sys.stdin) sees that buffer and the UART.
// - idle: an indefinite wait (stdin, select.poll without a timeout) sleeps in WFI until the UART
//   receives (edgeloop_board_wfe, el_sleep), so an idle board costs the host no CPU. The UART
//   interrupt only wakes the core: it is armed only while interrupts are masked and never taken,
//   so no vector table entry is needed.
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
#ifndef EL_RX_BUF_SIZE
#define EL_RX_BUF_SIZE (512)
#endif

// ---- UART, wake-up and counter of each SoC ------------------------------------------------
// Each SoC provides el_uart_init/rx_ready/rx_byte, el_time_init, el_ticks_raw, el_ticks_us64 and
// el_sleep(): with interrupts masked, arm the UART receive interrupt as a wake-up source, WFI
// unless el_wake_pending(), disarm. The interrupt is never taken, so no handler is needed; a
// byte that arrives between the check and the WFI leaves the interrupt pending, so WFI returns.
static int el_wake_pending(void);

#if defined(QEMU_SOC_MPS2)
// CMSDK APB UART0 at 0x40004000 (as in ports/qemu/uart.c); its RX interrupt is NVIC IRQ 0.
#define EL_UART_DATA (*(volatile uint32_t *)0x40004000)
#define EL_UART_STATE (*(volatile uint32_t *)0x40004004)
#define EL_UART_CTRL (*(volatile uint32_t *)0x40004008)
#define EL_UART_INTSTATUS (*(volatile uint32_t *)0x4000400c)
#define EL_UART_STATE_RXFULL (1 << 1)
#define EL_UART_CTRL_RXINTEN (1 << 3)
#define EL_UART_INT_RX (1 << 1)
#define EL_UART_IRQ (0)

static void el_uart_init(void) {
    EL_UART_CTRL |= EL_UART_CTRL_RXINTEN;   // only wakes el_sleep's WFI
}

static inline int el_uart_rx_ready(void) {
    return EL_UART_STATE & EL_UART_STATE_RXFULL;
}

static inline int el_uart_rx_byte(void) {
    return EL_UART_DATA & 0xff;
}

static void el_uart_irq_ack(void) {
    EL_UART_INTSTATUS = EL_UART_INT_RX;     // write 1 to clear
}

// ---- time: the FPGAIO free-running counter, 25 MHz / (24 + 1) = 1 MHz
#define EL_FPGAIO_COUNTER (*(volatile uint32_t *)0x40028018)
#define EL_FPGAIO_PRESCALE (*(volatile uint32_t *)0x4002801c)

static uint32_t el_ticks_raw(void) {
    return EL_FPGAIO_COUNTER;
}

static void el_counter_init(void) {
    EL_FPGAIO_PRESCALE = 24;
}

#elif defined(QEMU_SOC_NRF51)
// nRF51 UART0 at 0x40002000 (as in ports/qemu/uart.c), NVIC IRQ 2 (peripheral id).
#define EL_UART_RXDRDY (*(volatile uint32_t *)0x40002108)
#define EL_UART_INTENSET (*(volatile uint32_t *)0x40002304)
#define EL_UART_RXD (*(volatile uint32_t *)0x40002518)
#define EL_UART_INTEN_RXDRDY (1 << 2)
#define EL_UART_IRQ (2)

static void el_uart_init(void) {
    EL_UART_INTENSET = EL_UART_INTEN_RXDRDY;   // only wakes el_sleep's WFI
}

static inline int el_uart_rx_ready(void) {
    return EL_UART_RXDRDY != 0;
}

static inline int el_uart_rx_byte(void) {
    EL_UART_RXDRDY = 0;   // reading RXD sets it again if more bytes are waiting
    return EL_UART_RXD & 0xff;
}

static void el_uart_irq_ack(void) {
    // the line is RXDRDY itself: low whenever el_uart_rx_ready() is false
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

static uint32_t el_ticks_raw(void) {
    EL_TIMER0(EL_TIMER_CAPTURE0) = 1;
    return EL_TIMER0(EL_TIMER_CC0);
}

static void el_counter_init(void) {
    EL_TIMER0(EL_TIMER_MODE) = 0;        // timer
    EL_TIMER0(EL_TIMER_BITMODE) = 3;     // 32 bit
    EL_TIMER0(EL_TIMER_PRESCALER) = 4;   // 1 MHz
    EL_TIMER0(EL_TIMER_CLEAR) = 1;
    EL_TIMER0(EL_TIMER_START) = 1;
}

#elif defined(QEMU_SOC_VIRT)
// NS16550A at 0x10000000 (byte registers), PLIC source 10.
#define EL_UART_BASE ((volatile uint8_t *)0x10000000)
#define EL_UART_RBR (EL_UART_BASE[0])
#define EL_UART_IER (EL_UART_BASE[1])
#define EL_UART_FCR (EL_UART_BASE[2])
#define EL_UART_LSR (EL_UART_BASE[5])
#define EL_UART_IRQ (10)
// PLIC, context 0 = hart 0 machine mode
#define EL_PLIC_PRIORITY(src) (*(volatile uint32_t *)(0x0c000000 + 4 * (src)))
#define EL_PLIC_ENABLE0 (*(volatile uint32_t *)0x0c002000)
#define EL_PLIC_THRESHOLD0 (*(volatile uint32_t *)0x0c200000)
#define EL_PLIC_CLAIM0 (*(volatile uint32_t *)0x0c200004)
#define EL_MIE_MEIE (1u << 11)

static void el_uart_init(void) {
    EL_UART_FCR = 0x07;   // enable and clear the 16-byte FIFOs (qemu's default is no FIFO)
    EL_UART_IER = 0x01;   // received-data interrupt: only wakes el_sleep's WFI
    EL_PLIC_PRIORITY(EL_UART_IRQ) = 1;
    EL_PLIC_THRESHOLD0 = 0;
    EL_PLIC_ENABLE0 |= 1u << EL_UART_IRQ;
}

static inline int el_uart_rx_ready(void) {
    return EL_UART_LSR & 0x01;
}

static inline int el_uart_rx_byte(void) {
    return EL_UART_RBR;
}

// WFI wakes on (mip & mie) != 0 even with mstatus.MIE clear, so the trap is never taken.
static void el_sleep(void) {
    uint32_t mstatus, meie = EL_MIE_MEIE;
    __asm volatile (".option push\n.option arch, +zicsr\n"
                    "csrrci %0, mstatus, 8\n"          // MIE off
                    ".option pop" : "=r" (mstatus) : : "memory");
    uint32_t id = EL_PLIC_CLAIM0;                      // forget an earlier wake-up
    if (id) {
        EL_PLIC_CLAIM0 = id;
    }
    __asm volatile (".option push\n.option arch, +zicsr\ncsrs mie, %0\n.option pop"
                    : : "r" (meie) : "memory");
    if (!el_wake_pending()) {
        __asm volatile ("wfi" : : : "memory");
    }
    __asm volatile (".option push\n.option arch, +zicsr\n"
                    "csrc mie, %0\n"
                    "csrw mstatus, %1\n"               // MIE as it was
                    ".option pop" : : "r" (meie), "r" (mstatus) : "memory");
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

#else
#error "el_qemu_board.c: unsupported QEMU_SOC"
#endif

#if defined(QEMU_SOC_MPS2) || defined(QEMU_SOC_NRF51)
// Cortex-M NVIC: enable, clear-enable and clear-pending registers of IRQs 0..31.
#define EL_NVIC_ISER (*(volatile uint32_t *)0xe000e100)
#define EL_NVIC_ICER (*(volatile uint32_t *)0xe000e180)
#define EL_NVIC_ICPR (*(volatile uint32_t *)0xe000e280)

static void el_sleep(void) {
    uint32_t primask;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r" (primask) : : "memory");
    el_uart_irq_ack();                      // the line drops: the next byte raises it again
    EL_NVIC_ICPR = 1u << EL_UART_IRQ;       // forget an earlier edge
    EL_NVIC_ISER = 1u << EL_UART_IRQ;       // enabled: a pending UART interrupt ends WFI
    if (!el_wake_pending()) {
        __asm volatile ("dsb\n wfi" : : : "memory");
    }
    EL_NVIC_ICER = 1u << EL_UART_IRQ;       // disabled again, so it is never taken
    EL_NVIC_ICPR = 1u << EL_UART_IRQ;
    __asm volatile ("msr primask, %0" : : "r" (primask) : "memory");
}
#endif

#if defined(QEMU_SOC_MPS2) || defined(QEMU_SOC_NRF51)
// A 32-bit 1 MHz counter extended to 64 bits.
static uint64_t el_us_acc;
static uint32_t el_us_last;

static void el_time_init(void) {
    el_counter_init();
    el_us_last = el_ticks_raw();
    el_us_acc = 0;
}

// Microseconds since boot (needs a call at least every 71 minutes).
static uint64_t el_ticks_us64(void) {
    uint32_t now = el_ticks_raw();
    el_us_acc += (uint32_t)(now - el_us_last);
    el_us_last = now;
    return el_us_acc;
}
#endif

// ---- stdin ring buffer --------------------------------------------------------------------
static uint8_t el_rx_buf[EL_RX_BUF_SIZE];
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

// True when a wait for input must not sleep: bytes buffered or in the UART, a pending
// KeyboardInterrupt or scheduled callback. Called with interrupts masked (el_sleep).
static int el_wake_pending(void) {
    return el_rx_count() > 0 || el_uart_rx_ready()
           || MP_STATE_MAIN_THREAD(mp_pending_exception) != MP_OBJ_NULL
           #if MICROPY_ENABLE_SCHEDULER
           || MP_STATE_VM(sched_state) == MP_SCHED_PENDING
           #endif
    ;
}

// MICROPY_INTERNAL_WFE: an indefinite wait (stdin, select.poll without a timeout) sleeps until
// the UART receives; a timed wait returns at once and its caller keeps polling the clock.
void edgeloop_board_wfe(mp_int_t timeout_ms) {
    if (timeout_ms < 0) {
        el_sleep();
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
        mp_event_wait_indefinite();   // handles Ctrl-C / callbacks, then sleeps until the UART receives
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
