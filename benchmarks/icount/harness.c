// Bare-metal instruction counter for the edgeloop kernels (benchmarks/icount/run.py builds and runs it).
// Runs each case of cases.h twice (the second run is measured), prints
//   EL <name> <instructions> <crc32 of the output>
// The instruction count comes from the machine's counter under `qemu -icount shift=0`:
//   ARM (mps2-an385): FPGAIO 25 MHz counter, 1 tick = 40 instructions (1 ns per instruction);
//   RISC-V (virt):    minstret, which qemu derives from icount.
#include <stdint.h>
#include <stddef.h>
#include "el_kernels.h"

void el_putc(char c);
void el_exit(int code);
uint32_t el_counter(void);     // raw counter
extern const uint32_t el_counter_scale;  // instructions per counter tick

static void puts_(const char *s) {
    while (*s) {
        el_putc(*s++);
    }
}

static void putu(uint32_t v) {
    char buf[12];
    int i = 11;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_(buf + i);
}

typedef int (*el_kernel_fn)(const int32_t *, size_t, const uint8_t *, size_t, int8_t *, size_t);

#include "cases.h"

int main(void) {
    for (unsigned i = 0; i < sizeof(el_cases) / sizeof(el_cases[0]); ++i) {
        const struct el_case *c = &el_cases[i];
        int st = c->fn(c->args, c->nargs, c->blob, c->blob_len, c->arena, c->arena_len);
        uint32_t t0 = el_counter();
        st |= c->fn(c->args, c->nargs, c->blob, c->blob_len, c->arena, c->arena_len);
        uint32_t t1 = el_counter();
        puts_("EL ");
        puts_(c->name);
        puts_(" ");
        putu((t1 - t0) * el_counter_scale);
        puts_(" ");
        putu(el_crc32(0, (const uint8_t *)c->arena + c->out_off, c->out_len));
        puts_(" ");
        putu((uint32_t)st);
        puts_("\n");
    }
    puts_("EL-DONE\n");
    el_exit(0);
    return 0;
}
