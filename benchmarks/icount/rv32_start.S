# RISC-V startup for qemu virt: stack, .bss, main, exit through the SiFive test device.
    .section .text.start
    .globl _start
_start:
    la sp, _estack
    la t0, _sbss
    la t1, _ebss
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call main
    li a0, 0
    call el_exit
