/* lfm2-bench - speed of lfm2.h on one or more LFM2 model folders, beside the memory bandwidth of
   this machine measured in the same run.

     cc -O2 -march=native -Wall -Wextra -Werror -std=c99 -pedantic -fopenmp \
        -o build/lfm2-bench tools/lfm2-bench.c -lm -lpthread
     build/lfm2-bench -m /tmp/lfm2-350m-bf16 [-m DIR2 ...] [-p 512] [-n 128] [-t 1,2] [-r 3] [--quant int8|int4]
     build/lfm2-bench --bw-only [-t 1,2]          memory read bandwidth only

   For each model and each thread count it measures, like llama-bench:
     pp   a fresh context, the -p random prompt ids in ONE lfm2_context_decode call  -> tokens/s
     tg   a fresh context (after -d depth tokens, default 0), -n tokens one per lfm2_context_decode
          call, greedy (lfm2_argmax feeds the next id)                                -> tokens/s
   each -r times (mean +- sd, after one untimed warm-up), plus
     load   wall time of lfm2_model_load_dir (memory-mapped: pages come in on first use)
     TTFT   time to first token = prompt decode + argmax, fresh context: "cold" = the first call
            after load (page faults of the mapping included), the table's = mean of the warm pp runs
     RSS    peak resident set (VmHWM, reset between models via /proc/self/clear_refs)
     BW     read bandwidth: T threads stream over a buffer much larger than L3 (AVX-512 loads,
            best of several passes), in a forked child so it does not touch our RSS; sampled right
            before and right after the tg runs of every row, the higher of the two is used
     bound  tg upper bound = BW / weight bytes read per token. Bytes per token = every weight
            tensor once, except the embedding: with tied embeddings the head reads the whole
            [V, D] matrix every token and the lookup one row (KV-cache reads are left out; they
            are < 1% at these depths); MoE: the router and num_experts_per_tok of the num_experts
            experts of every sparse layer (the active weights: each expert counts k / E). With
            --quant int8|int4 (lfm2_model_params.weights) the
            matrices count at their quantized size (load time then includes the conversion, and
            peak RSS the pages of the source file it read).
   Bandwidth here drifts within minutes: compare only ratios measured in the same run.
   Windows (MinGW-w64: x86_64-w64-mingw32-gcc ... -lpsapi): the bandwidth child is this program
   started again with --bw-child (no fork), RSS is the process's peak working set
   (GetProcessMemoryInfo, never reset: "(process)"), no load average. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_HUGEPAGE (glibc) */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#include <psapi.h>
#else
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

#define MAX_THREADS_LIST 16
#define MAX_MODELS 16
#define MAX_REPS 64

static double now_s(void) {
#ifdef _WIN32
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* ================================ memory bandwidth ========================================== */

typedef struct bw_shared {
    unsigned char *buf;
    size_t bytes;
    int nthr, passes;
    pthread_barrier_t bar;
    double t[64];
    volatile uint64_t sink[64];
} bw_shared;

typedef struct bw_arg { bw_shared *s; int id; } bw_arg;

/* The reader: AVX-512 loads where the CPU has them (chosen at run time, so a baseline build
   without -march measures the same bandwidth as a native one), 64-bit loads otherwise. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define BW_HAVE_AVX512 1
__attribute__((target("avx512f"))) static uint64_t bw_read_avx512(const unsigned char *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    size_t i;
    uint64_t r[8];
    for (i = 0; i + 512 <= n; i += 512) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
        a4 = _mm512_xor_si512(a4, _mm512_load_si512((const void *)(p + i + 256)));
        a5 = _mm512_xor_si512(a5, _mm512_load_si512((const void *)(p + i + 320)));
        a6 = _mm512_xor_si512(a6, _mm512_load_si512((const void *)(p + i + 384)));
        a7 = _mm512_xor_si512(a7, _mm512_load_si512((const void *)(p + i + 448)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)),
                          _mm512_xor_si512(_mm512_xor_si512(a4, a5), _mm512_xor_si512(a6, a7)));
    _mm512_storeu_si512((void *)r, a0);
    return r[0] ^ r[1] ^ r[2] ^ r[3] ^ r[4] ^ r[5] ^ r[6] ^ r[7];
}
#endif
static uint64_t bw_read_u64(const unsigned char *p, size_t n) {
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, m = n / 8;
    for (i = 0; i + 8 <= m; i += 8) {
        a[0] ^= q[i]; a[1] ^= q[i + 1]; a[2] ^= q[i + 2]; a[3] ^= q[i + 3];
        a[4] ^= q[i + 4]; a[5] ^= q[i + 5]; a[6] ^= q[i + 6]; a[7] ^= q[i + 7];
    }
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}
static uint64_t bw_read(const unsigned char *p, size_t n) {
#ifdef BW_HAVE_AVX512
    if (__builtin_cpu_supports("avx512f")) return bw_read_avx512(p, n);
#endif
    return bw_read_u64(p, n);
}

static void *bw_worker(void *vp) {
    bw_arg *a = (bw_arg *)vp;
    bw_shared *s = a->s;
    size_t slice = (s->bytes / (size_t)s->nthr) & ~(size_t)4095;
    unsigned char *p = s->buf + slice * (size_t)a->id;
    int k;
    memset(p, a->id + 1, slice); /* first touch by the reading thread */
    for (k = 0; k < s->passes; k++) {
        double t0;
        pthread_barrier_wait(&s->bar);
        t0 = now_s();
        s->sink[a->id] ^= bw_read(p, slice);
        pthread_barrier_wait(&s->bar);
        if (a->id == 0) s->t[k] = now_s() - t0;
    }
    return NULL;
}

/* best read bandwidth in GB/s (1e9 B/s) of nthr threads over `mib` MiB, best of `passes` */
static double bw_measure_here(int nthr, size_t mib, int passes) {
    bw_shared s;
    bw_arg args[64];
    pthread_t th[64];
    int i, ok = 1;
    double best = 1e30;
    if (nthr < 1) nthr = 1;
    if (nthr > 64) nthr = 64;
    if (passes > 64) passes = 64;
    memset(&s, 0, sizeof s);
    s.bytes = mib << 20;
    s.nthr = nthr;
    s.passes = passes;
#ifdef _WIN32
    s.buf = (unsigned char *)VirtualAlloc(NULL, s.bytes, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (!s.buf) return -1;
#else
    s.buf = (unsigned char *)mmap(NULL, s.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.buf == MAP_FAILED) return -1;
#endif
#ifdef MADV_HUGEPAGE
    madvise(s.buf, s.bytes, MADV_HUGEPAGE);
#endif
    pthread_barrier_init(&s.bar, NULL, (unsigned)nthr);
    for (i = 0; i < nthr; i++) {
        args[i].s = &s;
        args[i].id = i;
        if (i > 0 && pthread_create(&th[i], NULL, bw_worker, &args[i]) != 0) ok = 0;
    }
    if (ok) bw_worker(&args[0]);
    for (i = 1; i < nthr; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&s.bar);
#ifdef _WIN32
    VirtualFree(s.buf, 0, MEM_RELEASE);
#else
    munmap(s.buf, s.bytes);
#endif
    if (!ok) return -1;
    for (i = 1; i < passes; i++) if (s.t[i] < best) best = s.t[i]; /* pass 0 = warm-up */
    return (double)(((s.bytes / (size_t)nthr) & ~(size_t)4095) * (size_t)nthr) / best / 1e9;
}

/* runs the measurement in a child process: its buffer never counts in our peak RSS, and its
   threads are plain pthreads (no OpenMP after fork) */
#ifdef _WIN32
/* Windows: no fork; this program again, with --bw-child, prints the value (_popen runs it through
   cmd.exe /c: the whole command is quoted once more, so that cmd keeps the quotes of the path) */
static double bw_measure(int nthr, size_t mib, int passes) {
    char exe[MAX_PATH], cmd[MAX_PATH + 96];
    FILE *f;
    double r = -1;
    DWORD n = GetModuleFileNameA(NULL, exe, sizeof exe);
    if (n == 0 || n >= sizeof exe) return -1;
    snprintf(cmd, sizeof cmd, "\"\"%s\" --bw-child %d %lu %d\"", exe, nthr, (unsigned long)mib, passes);
    fflush(stdout);
    fflush(stderr);
    if (!(f = _popen(cmd, "r"))) return -1;
    if (fscanf(f, "%lf", &r) != 1) r = -1;
    _pclose(f);
    return r;
}
#else
static double bw_measure(int nthr, size_t mib, int passes) {
    int fd[2];
    pid_t pid;
    double r = -1;
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) return -1;
    pid = fork();
    if (pid < 0) { close(fd[0]); close(fd[1]); return -1; }
    if (pid == 0) {
        double v;
        close(fd[0]);
        v = bw_measure_here(nthr, mib, passes);
        if (write(fd[1], &v, sizeof v) != (ssize_t)sizeof v) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r = -1;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return r;
}
#endif

/* ================================ process memory ============================================ */

#ifndef _WIN32
static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = atol(line + kl + 1); break; }
    fclose(f);
    return v;
}
#endif

static double peak_rss_mib(void) {
#ifdef _WIN32
    PROCESS_MEMORY_COUNTERS pmc;
    memset(&pmc, 0, sizeof pmc);
    pmc.cb = sizeof pmc;
    if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return -1;
    return (double)pmc.PeakWorkingSetSize / (1024.0 * 1024.0);
#else
    long k = status_kib("VmHWM");
    if (k < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        k = ru.ru_maxrss;
    }
    return (double)k / 1024.0;
#endif
}

/* resets VmHWM to the current RSS (Linux >= 4.0); 0 on success */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (!f) return -1;
    ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ================================ statistics ================================================ */

typedef struct stats_t { double mean, sd, min, max; } stats_t;

static stats_t stats(const double *x, int n) {
    stats_t s = {0, 0, 0, 0};
    int i;
    if (n < 1) return s;
    s.min = s.max = x[0];
    for (i = 0; i < n; i++) {
        s.mean += x[i];
        if (x[i] < s.min) s.min = x[i];
        if (x[i] > s.max) s.max = x[i];
    }
    s.mean /= n;
    for (i = 0; i < n && n > 1; i++) s.sd += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0;
    return s;
}

/* ================================ model facts =============================================== */

typedef struct wfacts {
    double file_bytes;      /* all weight tensors as stored */
    double mem_bytes;       /* the same after load-time quantization (= file_bytes without) */
    double bytes_per_token; /* weights read per decoded token (see top of file) */
    double matmul_params;   /* parameters of every matrix product per token (head included) */
    char dtypes[64];        /* e.g. "BF16" or "BF16+F32", "->Q8" when quantized at load */
} wfacts;

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Bytes of a [rows, cols] float matrix after lfm2.h's load-time quantization (lfm2.h >>quant:
   blocks of 32 columns, one f16 scale each; Q8 = 1 byte, Q4 = half a byte a weight; with Q4 the
   embedding and the head stay Q8; matrices whose width is not a multiple of 32 stay as stored).
   Keep in step with lfm2__quant_bytes / lfm2__quantize_weights. */
static double quantized_bytes(double stored, int64_t rows, int64_t cols, int weights, int is_embed_or_head) {
    double n = (double)rows * (double)cols;
    int t = (weights == LFM2_WEIGHTS_Q4 && is_embed_or_head) ? LFM2_WEIGHTS_Q8 : weights;
    if (weights == LFM2_WEIGHTS_AS_STORED || cols % 32 != 0) return stored;
    return (t == LFM2_WEIGHTS_Q8 ? n : n / 2) + 2.0 * (n / 32);
}

/* weights = the lfm2_model_params.weights the model was loaded with */
static void model_facts(const lfm2_model *m, int weights, wfacts *w) {
    const lfm2_config *c = lfm2_model_config(m);
    int32_t i, n = lfm2_model_tensor_count(m), has_head = 0;
    double embed_bytes = 0, embed_rows = 0;
    memset(w, 0, sizeof *w);
    for (i = 0; i < n; i++) {
        lfm2_tensor_info ti;
        double numel = 1, bytes;
        int d, is_embed, is_scale, is_matrix, is_expert;
        double share;
        if (lfm2_model_tensor_info(m, i, &ti) != LFM2_OK) continue;
        for (d = 0; d < ti.n_dims; d++) numel *= (double)ti.shape[d];
        w->file_bytes += (double)ti.n_bytes;
        if (!strstr(w->dtypes, ti.dtype) && strlen(w->dtypes) + strlen(ti.dtype) + 2 < sizeof w->dtypes) {
            if (w->dtypes[0]) strcat(w->dtypes, "+");
            strcat(w->dtypes, ti.dtype);
        }
        /* pre-quantized folders (tools/lfm2-quantize): NAME as I8/U8 plus NAME_scale F16 */
        is_scale = ends_with(ti.name, "_scale");
        is_embed = !strncmp(ti.name, "model.embed_tokens.weight", 25);
        is_expert = strstr(ti.name, ".feed_forward.experts.") != NULL;
        is_matrix = ti.n_dims == 2 && !is_scale && (is_embed || !strcmp(ti.name, "lm_head.weight") || strstr(ti.name, "_proj.") ||
                                                    strstr(ti.name, "feed_forward.w") || is_expert);
        bytes = is_matrix ? quantized_bytes((double)ti.n_bytes, ti.shape[0], ti.shape[1], weights,
                                            is_embed || !strcmp(ti.name, "lm_head.weight"))
                          : (double)ti.n_bytes;
        w->mem_bytes += bytes;
        if (is_embed) {
            embed_bytes += bytes;
            if (!is_scale) embed_rows = (double)ti.shape[0];
            continue;
        }
        if (!strcmp(ti.name, "lm_head.weight")) has_head = 1;
        /* MoE: a token reads num_experts_per_tok of the num_experts experts of a sparse layer (the
           router in full): each expert tensor counts k / E (the active bytes) */
        share = (is_expert && c->num_experts > 0) ? (double)c->num_experts_per_tok / (double)c->num_experts : 1.0;
        w->bytes_per_token += bytes * share;
        if (is_matrix) w->matmul_params += numel * (!strcmp(ti.dtype, "U8") ? 2 : 1) * share;
    }
    if (embed_rows > 0) w->bytes_per_token += embed_bytes / embed_rows; /* the lookup: one row */
    if (!has_head) { /* tied: the head is the embedding matrix, read in full every token */
        w->bytes_per_token += embed_bytes;
        w->matmul_params += (double)c->vocab_size * (double)c->hidden_size;
    }
    if (weights == LFM2_WEIGHTS_Q8 && strlen(w->dtypes) + 5 < sizeof w->dtypes) strcat(w->dtypes, "->Q8");
    if (weights == LFM2_WEIGHTS_Q4 && strlen(w->dtypes) + 5 < sizeof w->dtypes) strcat(w->dtypes, "->Q4");
}

/* ================================ quantization ============================================== */

/* --quant none|int8|int4 (also q8|q4): lfm2_model_params.weights, the load-time conversion of
   the weight matrices. Returns the LFM2_WEIGHTS_* value, or -1. */
static int parse_quant(const char *q) {
    if (!q || !strcmp(q, "none")) return LFM2_WEIGHTS_AS_STORED;
    if (!strcmp(q, "int8") || !strcmp(q, "q8")) return LFM2_WEIGHTS_Q8;
    if (!strcmp(q, "int4") || !strcmp(q, "q4")) return LFM2_WEIGHTS_Q4;
    fprintf(stderr, "--quant %s: expected none, int8 (q8) or int4 (q4)\n", q);
    return -1;
}

/* ================================ benchmark ================================================= */

typedef struct opts {
    const char *models[MAX_MODELS];
    int n_models;
    int p, n, d, reps, batch;
    int threads[MAX_THREADS_LIST], n_threads;
    size_t bw_mib;
    int bw_passes;
    const char *quant;
    unsigned long long seed;
    int bw_only, no_bw, jsonl, bf16_act, keep_layout, profile, huge_pages;
} opts;

static uint64_t rng_state = 0x1234567ull;
static uint32_t rnd32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    const char *p;
    while (n > 1 && path[n - 1] == '/') n--;
    for (p = path + n; p > path && p[-1] != '/'; p--) {}
    return p;
}

static void print_header(const opts *o) {
    printf("| model | weights | GiB | threads | load s | TTFT ms | pp%d t/s | pp GFLOP/s | tg%d t/s | BW GB/s | tg bound t/s | tg %% of bound | peak RSS MiB |\n",
           o->p, o->n);
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

/* one model: returns 0 on success */
static int bench_model(const opts *o, const char *dir) {
    lfm2_model *m = NULL;
    lfm2_model_params mp;
    lfm2_error err;
    const lfm2_config *cfg;
    wfacts w;
    lfm2_token *prompt = NULL;
    double t_load, cold_ttft = -1;
    int ti, rc = 1, have_hwm_reset;

    have_hwm_reset = reset_peak_rss() == 0;
    memset(&mp, 0, sizeof mp);
    memset(&err, 0, sizeof err);
    mp.error = &err;
    mp.no_tokenizer = 1;
    mp.weights = parse_quant(o->quant);
    mp.keep_layout = o->keep_layout;
    mp.huge_pages = o->huge_pages;
    if (mp.weights < 0) return 1;
    t_load = now_s();
    if (lfm2_model_load_dir(dir, &mp, &m) != LFM2_OK) {
        fprintf(stderr, "lfm2-bench: cannot load %s: %s\n", dir, err.message);
        return 1;
    }
    t_load = now_s() - t_load;
    cfg = lfm2_model_config(m);
    model_facts(m, mp.weights, &w);
    if (o->bf16_act && strlen(w.dtypes) + 10 < sizeof w.dtypes) strcat(w.dtypes, " bf16-act");
    if (o->keep_layout && strlen(w.dtypes) + 13 < sizeof w.dtypes) strcat(w.dtypes, " row-major");
    fprintf(stderr, "# %s: D=%d F=%d layers=%d (attn %d) V=%d, %s, %.3f GB of weights in memory, %.3f GB read per token\n", dir,
            cfg->hidden_size, cfg->ff_dim, cfg->num_hidden_layers, cfg->n_attention_layers, cfg->vocab_size, w.dtypes,
            w.mem_bytes / 1e9, w.bytes_per_token / 1e9);

    prompt = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)(o->p + o->d + 1));
    if (!prompt) goto done;
    rng_state = o->seed ? o->seed : 1;
    {
        int k;
        for (k = 0; k < o->p + o->d + 1; k++) prompt[k] = (lfm2_token)(rnd32() % (uint32_t)cfg->vocab_size);
    }

    for (ti = 0; ti < o->n_threads; ti++) {
        lfm2_context *c = NULL;
        lfm2_context_params cp;
        lfm2_error cerr;
        const float *logits = NULL;
        double pp[MAX_REPS], tg[MAX_REPS], ttft[MAX_REPS], bw_before = -1, bw_after = -1, bw;
        int r, k, nthr = o->threads[ti];
        lfm2_token tok = 0;
        stats_t spp, stg, sttft;

        memset(&cp, 0, sizeof cp);
        cp.n_ctx = (o->p > o->d + o->n + 1 ? o->p : o->d + o->n + 1) + 16;
        cp.n_batch = o->batch;
        cp.n_threads = nthr;
        cp.bf16_activations = o->bf16_act;
        cp.error = &cerr;
        if (lfm2_context_create(m, &cp, &c) != LFM2_OK) {
            fprintf(stderr, "lfm2-bench: context: %s\n", cerr.message);
            goto done;
        }
#define CHECK(call)                                                                                  \
    do {                                                                                             \
        lfm2_result rr_ = (call);                                                                    \
        if (rr_ != LFM2_OK) {                                                                        \
            fprintf(stderr, "lfm2-bench: %s: %s\n", lfm2_result_string(rr_), lfm2_context_error(c)); \
            lfm2_context_free(c);                                                                    \
            goto done;                                                                               \
        }                                                                                            \
    } while (0)
        if (ti == 0) { /* cold time to first token: first prompt after load, page faults included */
            double t0 = now_s();
            CHECK(lfm2_context_decode(c, prompt, o->p, &logits));
            tok = lfm2_argmax(logits, cfg->vocab_size);
            cold_ttft = now_s() - t0;
            { /* the random weights must keep activations finite, or the timings mean little */
                int32_t v, bad = 0;
                double amax = 0;
                for (v = 0; v < cfg->vocab_size; v++) {
                    if (!isfinite(logits[v])) bad++;
                    else if (fabs(logits[v]) > amax) amax = fabs(logits[v]);
                }
                if (bad) fprintf(stderr, "lfm2-bench: WARNING: %d non-finite logits after the prompt\n", (int)bad);
                else fprintf(stderr, "# logits after the prompt are finite, max |logit| %.3g, argmax %d\n", amax, (int)tok);
            }
            lfm2_context_reset(c);
        }
        /* warm-up (untimed): a short prompt and two single tokens */
        CHECK(lfm2_context_decode(c, prompt, o->p < 32 ? o->p : 32, &logits));
        for (k = 0; k < 2; k++) {
            tok = lfm2_argmax(logits, cfg->vocab_size);
            CHECK(lfm2_context_decode(c, &tok, 1, &logits));
        }
        for (r = 0; r < o->reps; r++) { /* pp: one decode call with the whole prompt */
            double t0;
            lfm2_context_reset(c);
            t0 = now_s();
            CHECK(lfm2_context_decode(c, prompt, o->p, &logits));
            pp[r] = now_s() - t0;
            tok = lfm2_argmax(logits, cfg->vocab_size);
            ttft[r] = now_s() - t0;
        }
        if (!o->no_bw) bw_before = bw_measure(nthr, o->bw_mib, o->bw_passes);
        for (r = 0; r < o->reps; r++) { /* tg: n single-token decode calls, greedy */
            double t0;
            lfm2_context_reset(c);
            if (o->d > 0) CHECK(lfm2_context_decode(c, prompt + 1, o->d, &logits));
            tok = prompt[0];
            t0 = now_s();
            for (k = 0; k < o->n; k++) {
                CHECK(lfm2_context_decode(c, &tok, 1, &logits));
                tok = lfm2_argmax(logits, cfg->vocab_size);
            }
            tg[r] = now_s() - t0;
        }
        if (!o->no_bw) bw_after = bw_measure(nthr, o->bw_mib, o->bw_passes);
#ifdef LFM2_PROFILE
        if (o->profile) { /* one more pp and tg run, the time of every part of the forward pass */
            double prof[2][LFM2__P_N], wall[2], t0;
            int pass, part;
            for (pass = 0; pass < 2; pass++) {
                lfm2_context_reset(c);
                memset(c->prof, 0, sizeof c->prof);
                t0 = now_s();
                if (pass == 0) CHECK(lfm2_context_decode(c, prompt, o->p, &logits));
                else {
                    tok = prompt[0];
                    for (k = 0; k < o->n; k++) {
                        CHECK(lfm2_context_decode(c, &tok, 1, &logits));
                        tok = lfm2_argmax(logits, cfg->vocab_size);
                    }
                }
                wall[pass] = now_s() - t0;
                for (part = 0; part < LFM2__P_N; part++) prof[pass][part] = c->prof[part];
            }
            if (o->jsonl) {
                printf("{\"profile\": \"%s\", \"threads\": %d, \"pp_wall_s\": %.6f, \"tg_wall_s\": %.6f, \"parts\": {", base_name(dir), nthr,
                       wall[0], wall[1]);
                for (part = 0; part < LFM2__P_N; part++)
                    printf("%s\"%s\": [%.6f, %.6f]", part ? ", " : "", lfm2__prof_names[part], prof[0][part], prof[1][part]);
                printf("}}\n");
            } else {
                double sum[2] = {0, 0};
                printf("\n| part (%s, %d threads) | pp%d ms per token | pp %% | tg ms per token | tg %% |\n|---|---:|---:|---:|---:|\n",
                       base_name(dir), nthr, o->p);
                for (part = 0; part < LFM2__P_N; part++) {
                    printf("| %s | %.4f | %.1f%% | %.4f | %.1f%% |\n", lfm2__prof_names[part], 1e3 * prof[0][part] / o->p,
                           100 * prof[0][part] / wall[0], 1e3 * prof[1][part] / o->n, 100 * prof[1][part] / wall[1]);
                    sum[0] += prof[0][part];
                    sum[1] += prof[1][part];
                }
                printf("| (outside the parts: call overhead, argmax) | %.4f | %.1f%% | %.4f | %.1f%% |\n", 1e3 * (wall[0] - sum[0]) / o->p,
                       100 * (wall[0] - sum[0]) / wall[0], 1e3 * (wall[1] - sum[1]) / o->n, 100 * (wall[1] - sum[1]) / wall[1]);
                printf("| **all** | %.4f | | %.4f | |\n\n", 1e3 * wall[0] / o->p, 1e3 * wall[1] / o->n);
            }
        }
#endif
#undef CHECK
        lfm2_context_free(c);
        for (r = 0; r < o->reps; r++) { pp[r] = o->p / pp[r]; tg[r] = o->n / tg[r]; }
        spp = stats(pp, o->reps);
        stg = stats(tg, o->reps);
        sttft = stats(ttft, o->reps);
        bw = bw_before > bw_after ? bw_before : bw_after;
        fprintf(stderr, "# threads=%d: pp %.2f +- %.2f t/s, tg %.2f +- %.2f t/s, TTFT %.1f ms (cold %.1f ms), BW before/after tg %.1f / %.1f GB/s, last id %d\n",
                nthr, spp.mean, spp.sd, stg.mean, stg.sd, sttft.mean * 1e3, cold_ttft * 1e3, bw_before, bw_after, (int)tok);
        if (o->jsonl) {
            printf("{\"model\": \"%s\", \"dir\": \"%s\", \"weights\": \"%s\", \"weight_bytes\": %.0f, \"file_bytes\": %.0f, \"bytes_per_token\": %.0f, "
                   "\"threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"depth\": %d, \"reps\": %d, \"quant\": \"%s\", \"load_s\": %.4f, "
                   "\"ttft_cold_ms\": %.2f, \"ttft_ms\": %.2f, \"pp_ts\": %.4f, \"pp_sd\": %.4f, \"pp_best\": %.4f, \"pp_gflops\": %.2f, "
                   "\"tg_ts\": %.4f, \"tg_sd\": %.4f, \"tg_best\": %.4f, \"bw_before_gbs\": %.2f, \"bw_after_gbs\": %.2f, \"bw_gbs\": %.2f, "
                   "\"tg_bound_ts\": %.3f, \"tg_frac_of_bound\": %.4f, \"peak_rss_mib\": %.1f}\n",
                   base_name(dir), dir, w.dtypes, w.mem_bytes, w.file_bytes, w.bytes_per_token, nthr, o->p, o->n, o->d, o->reps, o->quant, t_load,
                   cold_ttft * 1e3, sttft.mean * 1e3, spp.mean, spp.sd, spp.max, 2.0 * w.matmul_params * spp.mean / 1e9, stg.mean, stg.sd,
                   stg.max, bw_before, bw_after, bw, bw > 0 ? bw * 1e9 / w.bytes_per_token : -1.0,
                   bw > 0 ? stg.mean * w.bytes_per_token / (bw * 1e9) : -1.0, peak_rss_mib());
        } else {
            printf("| %s | %s | %.2f | %d | %.2f | %.0f | %.2f ± %.2f | %.1f | %.2f ± %.2f | ", base_name(dir), w.dtypes,
                   w.mem_bytes / 1073741824.0, nthr, t_load, sttft.mean * 1e3, spp.mean, spp.sd, 2.0 * w.matmul_params * spp.mean / 1e9,
                   stg.mean, stg.sd);
            if (bw > 0) printf("%.1f | %.1f | %.0f%% | ", bw, bw * 1e9 / w.bytes_per_token, 100.0 * stg.mean * w.bytes_per_token / (bw * 1e9));
            else printf("- | - | - | ");
            printf("%.0f%s |\n", peak_rss_mib(), have_hwm_reset ? "" : " (process)");
        }
        fflush(stdout);
    }
    rc = 0;
done:
    free(prompt);
    lfm2_model_free(m);
    return rc;
}

static void usage(void) {
    fprintf(stderr,
            "usage: lfm2-bench -m DIR [-m DIR ...] [options]\n"
            "  -p N           prompt tokens for pp / TTFT (default 512)\n"
            "  -n N           generated tokens for tg (default 128)\n"
            "  -d N           context depth before the tg run (default 0, as llama-bench)\n"
            "  -t LIST        thread counts, e.g. 1,2 (default 1,2)\n"
            "  -r, --reps N   repetitions, mean +- sd reported (default 3)\n"
            "  -b N           lfm2_context_params.n_batch (default 0 = library default)\n"
            "  --quant Q      none|int8|int4 (q8|q4): lfm2_model_params.weights, quantize at load\n"
            "  --seed N       seed of the random prompt ids (default 1)\n"
            "  --bf16-act     lfm2_context_params.bf16_activations = 1 (bf16 weights x bf16 activations)\n"
            "  --keep-layout  lfm2_model_params.keep_layout = 1 (float weights in the file's row-major layout)\n"
            "  --huge-pages   lfm2_model_params.huge_pages = 1 (transparent huge pages for the converted weights)\n"
            "  --profile      after the timed runs, one pp and one tg run more with the wall time of every\n"
            "                 part of the forward pass (needs -DLFM2_PROFILE: build/lfm2-bench-prof)\n"
            "  --bw-mib N     bandwidth buffer size in MiB (default 1024)\n"
            "  --bw-passes N  bandwidth passes, best of N-1 after a warm-up (default 6)\n"
            "  --no-bw        skip the bandwidth measurements\n"
            "  -o md|jsonl    output: markdown table (default) or one JSON object per row\n"
            "  --bw-only      only measure the bandwidth for each -t\n");
}

static int parse_threads(const char *s, opts *o) {
    o->n_threads = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256 || o->n_threads >= MAX_THREADS_LIST) return -1;
        o->threads[o->n_threads++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return o->n_threads > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    opts o;
    int i, rc = 0;
#ifndef _WIN32
    struct utsname un;
#endif
    FILE *info;
    memset(&o, 0, sizeof o);
    o.p = 512;
    o.n = 128;
    o.reps = 3;
    o.threads[0] = 1;
    o.threads[1] = 2;
    o.n_threads = 2;
    o.bw_mib = 1024;
    o.bw_passes = 6;
    o.seed = 1;
    o.quant = "none";
#ifdef _WIN32
    if (argc == 5 && !strcmp(argv[1], "--bw-child")) { /* bw_measure's child */
        printf("%.6f\n", bw_measure_here(atoi(argv[2]), (size_t)atol(argv[3]), atoi(argv[4])));
        return 0;
    }
#endif
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--no-bw")) { o.no_bw = 1; takes = 0; }
        else if (!strcmp(a, "--bw-only")) { o.bw_only = 1; takes = 0; }
        else if (!strcmp(a, "--bf16-act")) { o.bf16_act = 1; takes = 0; }
        else if (!strcmp(a, "--keep-layout")) { o.keep_layout = 1; takes = 0; }
        else if (!strcmp(a, "--huge-pages")) { o.huge_pages = 1; takes = 0; }
        else if (!strcmp(a, "--profile")) {
#ifndef LFM2_PROFILE
            fprintf(stderr, "lfm2-bench: --profile needs a build with -DLFM2_PROFILE (make tools builds build/lfm2-bench-prof)\n");
            return 2;
#endif
            o.profile = 1;
            takes = 0;
        }
        else if (!strcmp(a, "-o") && v && !strcmp(v, "jsonl")) o.jsonl = 1;
        else if (!strcmp(a, "-o") && v && !strcmp(v, "md")) o.jsonl = 0;
        else if (!v) { usage(); return 2; }
        else if (!strcmp(a, "-m")) { if (o.n_models >= MAX_MODELS) { usage(); return 2; } o.models[o.n_models++] = v; }
        else if (!strcmp(a, "-p")) o.p = atoi(v);
        else if (!strcmp(a, "-n")) o.n = atoi(v);
        else if (!strcmp(a, "-d")) o.d = atoi(v);
        else if (!strcmp(a, "-b")) o.batch = atoi(v);
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) o.reps = atoi(v);
        else if (!strcmp(a, "-t")) { if (parse_threads(v, &o) != 0) { fprintf(stderr, "bad -t %s\n", v); return 2; } }
        else if (!strcmp(a, "--quant")) o.quant = v;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--bw-mib")) o.bw_mib = (size_t)atol(v);
        else if (!strcmp(a, "--bw-passes")) o.bw_passes = atoi(v);
        else { usage(); return 2; }
        i += takes;
    }
    if (o.p < 1 || o.n < 1 || o.d < 0 || o.reps < 1 || o.reps > MAX_REPS || o.batch < 0 || o.bw_mib < 64 || o.bw_passes < 2 ||
        (!o.bw_only && o.n_models == 0)) {
        usage();
        return 2;
    }

    /* the exact command, for the notes (to stderr with -o jsonl, so stdout stays JSON) */
    info = o.jsonl ? stderr : stdout;
    fprintf(info, "command: ");
    for (i = 0; i < argc; i++) fprintf(info, "%s%s", i ? " " : "", argv[i]);
    fprintf(info, "\n");
#ifdef _WIN32
    {
        SYSTEM_INFO si;
        OSVERSIONINFOA ov;
        GetNativeSystemInfo(&si);
        memset(&ov, 0, sizeof ov);
        ov.dwOSVersionInfoSize = sizeof ov;
        if (!GetVersionExA(&ov)) ov.dwMajorVersion = ov.dwMinorVersion = ov.dwBuildNumber = 0;
        fprintf(info, "machine: %s Windows %lu.%lu.%lu, %lu online CPUs\n",
                si.wProcessorArchitecture == PROCESSOR_ARCHITECTURE_AMD64 ? "x86_64" : si.wProcessorArchitecture == PROCESSOR_ARCHITECTURE_ARM64 ? "arm64" : "other",
                (unsigned long)ov.dwMajorVersion, (unsigned long)ov.dwMinorVersion, (unsigned long)ov.dwBuildNumber, (unsigned long)si.dwNumberOfProcessors);
    }
#else
    if (uname(&un) == 0) fprintf(info, "machine: %s %s, %ld online CPUs\n", un.machine, un.release, sysconf(_SC_NPROCESSORS_ONLN));
#endif
    {
        double la[3];
        FILE *f = fopen("/proc/loadavg", "r");
        if (f && fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) == 3)
            fprintf(info, "load average at start: %.2f %.2f %.2f (other processes skew the timings)\n", la[0], la[1], la[2]);
        if (f) fclose(f);
    }
    fprintf(info, "lfm2.h %s, build: %s, compiler: %s\n", lfm2_version_string(), lfm2_build_info(),
#if defined(__clang__)
            "clang " __clang_version__
#elif defined(__GNUC__)
            "gcc " __VERSION__
#else
            "unknown"
#endif
    );
    if (o.bw_only || !o.no_bw) {
        fprintf(info, "memory read bandwidth (%zu MiB buffer, best of %d passes):", o.bw_mib, o.bw_passes - 1);
        for (i = 0; i < o.n_threads; i++) {
            double bw = bw_measure(o.threads[i], o.bw_mib, o.bw_passes);
            fprintf(info, " %d thr %.1f GB/s%s", o.threads[i], bw, i + 1 < o.n_threads ? "," : "\n");
            if (o.jsonl) printf("{\"bw_threads\": %d, \"bw_gbs\": %.2f}\n", o.threads[i], bw);
        }
    }
    if (o.bw_only) return 0;
    fprintf(info, "pp = %d prompt tokens in one lfm2_context_decode call; tg = %d tokens one per call (depth %d); mean ± sd of %d reps; quant %s; n_batch %d%s\n\n",
            o.p, o.n, o.d, o.reps, o.quant, o.batch, o.batch ? "" : " (library default)");
    if (!o.jsonl) print_header(&o);
    fflush(stdout);
    for (i = 0; i < o.n_models; i++)
        if (bench_model(&o, o.models[i]) != 0) rc = 1;
    return rc;
}
