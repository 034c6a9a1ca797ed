/* tools/qemu/work.c - fixed amounts of lfm2.h work for instruction counting under qemu-user
   (tools/qemu/count.sh): load a model folder; prefill P random token ids in one
   lfm2_context_decode call; reset, prefill 3P; decode N tokens one at a time (greedy); decode 3N
   more; on one thread. After each phase it prints a line (a write to standard output: the mark
   that tools/qemu/insncount.c records), so one run gives the instructions per prefill token,
   (c(3P) - c(P)) / 2P, and per decoded token, (c(3N) - c(N)) / 2N, without the load.
     work MODEL_DIR P N [bf16|int8|int4|bf16act]
   (bf16: the folder's weights as stored; int8 / int4: LFM2_WEIGHTS_Q8 / _Q4 at load; bf16act:
   bf16 activations.) Each phase line has its wall time and tokens/s (also the wasm speed runs of
   README "ARM and WebAssembly"). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#define LFM2_IMPLEMENTATION
#include "../../lfm2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

int main(int argc, char **argv) {
    lfm2_model_params mp;
    lfm2_context_params cp;
    lfm2_error err;
    lfm2_model *m = NULL;
    lfm2_context *c = NULL;
    const float *lg = NULL;
    lfm2_token ids[512], t = 0;
    int32_t P, N, i, k, V;
    const char *mode = argc > 4 ? argv[4] : "bf16";
    if (argc < 4) { fprintf(stderr, "usage: work MODEL_DIR P N [bf16|int8|int4|bf16act]\n"); return 2; }
    P = atoi(argv[2]);
    N = atoi(argv[3]);
    if (P < 1 || P > 128 || N < 0 || N > 100) { fprintf(stderr, "P in [1, 128], N in [0, 100]\n"); return 2; }
    memset(&mp, 0, sizeof mp);
    memset(&cp, 0, sizeof cp);
    mp.error = &err;
    mp.n_threads = 1;
    mp.no_tokenizer = 1;
    if (strcmp(mode, "int8") == 0) mp.weights = LFM2_WEIGHTS_Q8;
    if (strcmp(mode, "int4") == 0) mp.weights = LFM2_WEIGHTS_Q4;
    cp.n_threads = 1;
    cp.n_ctx = 1024;
    cp.n_batch = 512;
    cp.bf16_activations = strcmp(mode, "bf16act") == 0;
    cp.error = &err;
    if (lfm2_model_load_dir(argv[1], &mp, &m) != LFM2_OK) { fprintf(stderr, "load: %s\n", err.message); return 1; }
    if (lfm2_context_create(m, &cp, &c) != LFM2_OK) { fprintf(stderr, "context: %s\n", err.message); return 1; }
    V = lfm2_model_config(m)->vocab_size;
    for (i = 0; i < 3 * P; i++) ids[i] = (lfm2_token)((i * 7919 + 13) % V);
    printf("loaded: level %s, %s\n", lfm2_isa_name(lfm2_model_isa(m)), mode);
    fflush(stdout);
    for (k = 1; k <= 3; k += 2) {
        double t0 = now_s(), dt;
        lfm2_context_reset(c);
        if (lfm2_context_decode(c, ids, k * P, &lg) != LFM2_OK) { fprintf(stderr, "prefill: %s\n", lfm2_context_error(c)); return 1; }
        dt = now_s() - t0;
        printf("prefill %d: %.3f s, %.2f tok/s\n", (int)(k * P), dt, (double)(k * P) / dt);
        fflush(stdout);
    }
    for (k = 1; k <= 3; k += 2) {
        double t0 = now_s(), dt;
        for (i = 0; i < k * N; i++) {
            t = lfm2_argmax(lg, V);
            if (lfm2_context_decode(c, &t, 1, &lg) != LFM2_OK) { fprintf(stderr, "decode: %s\n", lfm2_context_error(c)); return 1; }
        }
        dt = now_s() - t0;
        printf("decode %d: %.3f s, %.2f tok/s, last token %d\n", (int)(k * N), dt, (double)(k * N) / dt, (int)lfm2_argmax(lg, V));
        fflush(stdout);
    }
    lfm2_context_free(c);
    lfm2_model_free(m);
    return 0;
}
