/*
 * A qemu TCG plugin for make bench-mips: counts the guest instructions a
 * program executes, into a counter that the harness reads while the program
 * runs.
 *
 *   qemu-mipsel -plugin insn.so,out=FILE PROGRAM ...
 *
 * FILE is created (or truncated) and mapped shared; its first 8 bytes are a
 * host-endian unsigned 64-bit count of guest instructions executed so far.
 * The harness reads it before and after a phase of load and divides the
 * difference by the operations served, so no signal or marker in the guest
 * is needed. A forked child (nginx's worker) inherits the mapping and adds to
 * the same counter: the file counts the whole process tree.
 *
 * Each translated block adds its instruction count when it starts (an inline
 * add, the cheapest instrumentation qemu offers). A block left early by a
 * fault counts whole, and the add is not atomic, so two guest threads running
 * at once on two host cores could lose an update; the harness pins each
 * emulated server to one core, as a router has, which makes that a matter of
 * a preemption landing between one load and one store.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t *counter;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, counter,
                                             qemu_plugin_tb_n_insns(tb));
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *out = NULL;
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        }
    }
    if (!out) {
        fprintf(stderr, "insn-count: give out=FILE\n");
        return -1;
    }
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) {
        perror("insn-count: out");
        return -1;
    }
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        perror("insn-count: mmap");
        return -1;
    }
    counter = map;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    return 0;
}
