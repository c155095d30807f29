// qemu virt: ns16550a UART at 0x10000000, SiFive test finisher at 0x100000, minstret from icount.
#include <stdint.h>

const uint32_t el_counter_scale = 1;

uint32_t el_counter(void) {
    uint32_t v;
    __asm__ volatile(".insn i 0x73, 2, %0, x0, -1278" : "=r"(v));  // csrr %0, minstret (no zicsr needed)
    return v;
}

void el_putc(char c) {
    *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}

void el_exit(int code) {
    *(volatile uint32_t *)0x100000 = code ? (uint32_t)(code << 16) | 0x3333u : 0x5555u;
    for (;;) {
    }
}
