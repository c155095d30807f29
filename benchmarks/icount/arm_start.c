// Cortex-M startup for qemu mps2-an385: vector table, .data/.bss init, semihosting output and exit.
#include <stdint.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);

#define FPGAIO_COUNTER (*(volatile uint32_t *)0x40028018)
#define FPGAIO_PRESCALE (*(volatile uint32_t *)0x4002801c)
const uint32_t el_counter_scale = 40;  // 25 MHz counter, 1 instruction per virtual ns

uint32_t el_counter(void) {
    return FPGAIO_COUNTER;
}

static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void el_putc(char c) {
    semihost(0x03, &c);  // SYS_WRITEC
}

void el_exit(int code) {
    (void)code;
    semihost(0x18, (void *)0x20026);  // SYS_EXIT, ADP_Stopped_ApplicationExit
    for (;;) {
    }
}

void reset_handler(void) {
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) {
        *d++ = *s++;
    }
    for (d = &_sbss; d < &_ebss; ++d) {
        *d = 0;
    }
    FPGAIO_PRESCALE = 0;
    el_exit(main());
}

static void fault(void) {
    el_exit(1);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack, (void *)reset_handler, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault,
};
