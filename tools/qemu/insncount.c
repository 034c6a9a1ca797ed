/* tools/qemu/insncount.c - a qemu-user TCG plugin that counts the guest instructions a program
   retires (for the instruction counts of README "ARM: work per token"). Debian's qemu-user has
   plugin support but ships no plugins, so this is a minimal one, declared against the plugin API
   of qemu 7.2 (QEMU_PLUGIN_VERSION 1; the declarations below are the few it uses):
       gcc -O2 -shared -fPIC -o insncount.so tools/qemu/insncount.c
       qemu-aarch64 -plugin ./insncount.so -d plugin -D count.txt PROGRAM ARGS...
   writes "insns N" (one vCPU: run the program single-threaded; the inline add is not atomic),
   and, before it, "mark I N" at every write(2) to standard output (the count when the program
   printed its I-th piece of output: the phase marks of tools/qemu/work.c, or llama-bench's table
   rows, one per test). */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "qemu_plugin_min.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
static uint64_t insns, marks[4096];
static int n_marks;

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8) {
    (void)id; (void)vcpu; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (num == 64 && a1 == 1 && n_marks < 4096) marks[n_marks++] = insns; /* aarch64 write(1, ...) */
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb));
}
static void at_exit(qemu_plugin_id_t id, void *p) {
    char buf[64];
    int i;
    (void)id;
    (void)p;
    for (i = 0; i < n_marks; i++) {
        snprintf(buf, sizeof buf, "mark %d %llu\n", i, (unsigned long long)marks[i]);
        qemu_plugin_outs(buf);
    }
    snprintf(buf, sizeof buf, "insns %llu\n", (unsigned long long)insns);
    qemu_plugin_outs(buf);
}
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
