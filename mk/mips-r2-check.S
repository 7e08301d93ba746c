/*
 * Entry point of the MIPS static binaries: checks, with MIPS32 release 1
 * instructions only, that the CPU runs release 2 ones (seb), before any of
 * the program, all built for release 2 (rustc's mips32r2 default, OpenSSL as
 * mk/openssl.sh builds it), runs. On a release 1 core (the BMIPS3300 of
 * older Broadcom routers) it prints one line and exits 2, instead of dying
 * of SIGILL inside the C library's start. mk/cross-build.sh assembles it for
 * mips32, links it in and makes it the entry (-e camtls_start); it then
 * restores SIGILL's default action and jumps to the C library's _start with
 * the stack and registers it needs as the kernel left them.
 */
#include <sys/syscall.h>

	.section .rodata
message:
	.ascii	"camtls: this CPU lacks the MIPS32 release 2 instructions this build needs (24K, 74K and later cores have them)\n"
message_end:

	.text
	.set	noreorder
	.set	noat
	.set	mips32
	.globl	camtls_start
	.type	camtls_start, @function
camtls_start:
	/* struct sigaction for SIGILL: sa_flags, sa_handler, 16 bytes of mask. */
	addiu	$sp, $sp, -32
	lui	$t0, %hi(no_r2)
	addiu	$t0, $t0, %lo(no_r2)
	sw	$zero, 0($sp)
	sw	$t0, 4($sp)
	sw	$zero, 8($sp)
	sw	$zero, 12($sp)
	sw	$zero, 16($sp)
	sw	$zero, 20($sp)
	jal	set_sigill
	nop
	/* A release 2 instruction: SIGILL on release 1. */
	.set	push
	.set	mips32r2
	seb	$t0, $t0
	.set	pop
	/* Back to the default action, and on to the C library. */
	sw	$zero, 4($sp)
	jal	set_sigill
	nop
	addiu	$sp, $sp, 32
	lui	$t9, %hi(_start)
	addiu	$t9, $t9, %lo(_start)
	jr	$t9
	nop
	.size	camtls_start, .-camtls_start

set_sigill:
	li	$a0, 4			/* SIGILL */
	move	$a1, $sp
	move	$a2, $zero
	li	$a3, 16
	li	$v0, __NR_rt_sigaction
	syscall
	jr	$ra
	nop

no_r2:
	li	$a0, 2
	lui	$a1, %hi(message)
	addiu	$a1, $a1, %lo(message)
	lui	$a2, %hi(message_end)
	addiu	$a2, $a2, %lo(message_end)
	subu	$a2, $a2, $a1
	li	$v0, __NR_write
	syscall
	li	$a0, 2
	li	$v0, __NR_exit_group
	syscall

