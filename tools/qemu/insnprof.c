/* tools/qemu/insnprof.c - a qemu-user TCG plugin that says where a phase's instructions go (the
   profile of tools/BENCH_NOTES.md session 6), declared like tools/qemu/insncount.c against the
   plugin API of qemu 7.2. It counts every translated block's executions (one counter per
   translation, inline) and, between the program's writes to standard output number M and M + 1
   (PROF_MARK=M, default 1: tools/qemu/work.c's "prefill P" .. "prefill 3P"), writes the
   instructions each block retired as "ADDRESS COUNT" lines to PROF_OUT (default /tmp/prof.txt),
   after "# mark I N" lines (the total at every write). Symbolise with the program's symbols: build
   it -static (no PIE: the addresses are the link-time ones) and map each address to the
   symbol at or below it (`aarch64-linux-gnu-nm -n`).
       gcc -O2 -shared -fPIC -o insnprof.so tools/qemu/insnprof.c
       aarch64-linux-gnu-gcc -O2 -std=c99 -static -o works tools/qemu/work.c -lm -lpthread
       PROF_MARK=0 PROF_OUT=p.txt qemu-aarch64 -cpu max -plugin ./insnprof.so ./works DIR 8 0 int8
   One vCPU: run the program single-threaded (the inline adds are not atomic). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>

#include "qemu_plugin_min.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;
typedef struct { uint64_t va, n, snap; } prof_slot;
#define PROF_CHUNK 65536 /* slots are allocated in chunks: a counter's address must not move */
static prof_slot *chunks[4096];
static int n_slots, n_marks, mark0 = 1;
static const char *out_path = "/tmp/prof.txt";

static prof_slot *slot_at(int i) { return &chunks[i / PROF_CHUNK][i % PROF_CHUNK]; }
static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8) {
    uint64_t total = 0;
    FILE *f;
    int i;
    (void)id; (void)vcpu; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (!(num == 64 && a1 == 1)) return; /* aarch64 write(1, ...) */
    for (i = 0; i < n_slots; i++) total += slot_at(i)->n;
    f = fopen(out_path, n_marks ? "a" : "w");
    if (!f) return;
    fprintf(f, "# mark %d %llu\n", n_marks, (unsigned long long)total);
    n_marks++;
    if (n_marks == mark0 + 1)
        for (i = 0; i < n_slots; i++) slot_at(i)->snap = slot_at(i)->n;
    if (n_marks == mark0 + 2)
        for (i = 0; i < n_slots; i++) {
            prof_slot *s = slot_at(i);
            if (s->n != s->snap) fprintf(f, "%llx %llu\n", (unsigned long long)s->va, (unsigned long long)(s->n - s->snap));
        }
    fclose(f);
}
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    prof_slot *s;
    (void)id;
    if (n_slots / PROF_CHUNK >= 4096) return; /* (2^28 translations: not met) */
    if (n_slots % PROF_CHUNK == 0 && !(chunks[n_slots / PROF_CHUNK] = (prof_slot *)calloc(PROF_CHUNK, sizeof(prof_slot)))) return;
    s = slot_at(n_slots++);
    s->va = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &s->n, qemu_plugin_tb_n_insns(tb));
}
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info; (void)argc; (void)argv;
    if (getenv("PROF_MARK")) mark0 = atoi(getenv("PROF_MARK"));
    if (getenv("PROF_OUT")) out_path = getenv("PROF_OUT");
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
