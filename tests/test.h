/* tests/test.h - the tiny test framework of lfm2.h's suite.
   Each test_*.c file defines static test functions and a table
       static const t_case NAME_tests[] = { {"group/name", fn}, ..., {NULL, NULL} };
   that tests/run_tests.c lists. A test function returns nothing; it reports with the macros
   below. Every numeric check prints its worst error. */
#ifndef LFM2_TEST_H
#define LFM2_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#if defined(__wasi__)
/* WASI has no threads and no shell: the tests' "threads" run one after the other, and system()
   fails (the tests that need a shell check its result) */
#include <sys/types.h> /* (wasi-libc's pthread_t and pthread_mutex_t; the calls below are stand-ins) */
#define pthread_mutex_init(m, a) ((void)(m), (void)(a), 0)
#define pthread_mutex_destroy(m) ((void)(m), 0)
#define pthread_mutex_lock(m) ((void)(m), 0)
#define pthread_mutex_unlock(m) ((void)(m), 0)
#define pthread_create(t, a, f, arg) (*(t) = 0, (void)(a), (void)(f)(arg), 0)
#define pthread_join(t, r) ((void)(t), (void)(r), 0)
#define system(cmd) ((void)(cmd), -1)
#define T_NO_PTHREAD_H 1
#endif

/* Tags select tests for the stages of make test (run_tests @tag), so that renaming a test never
   silently drops it from a stage. */
enum {
    T_ISA = 1,     /* results depend on the kernels: run once per instruction-set level and build variant */
    T_EMU = 2,     /* the representative subset run under emulators (qemu, wine, node) */
    T_SLOW = 4,    /* statistical or long: left out under valgrind */
    T_THREADS = 8, /* threading: run under ThreadSanitizer */
    T_LONG = 16    /* minutes under Valgrind (many whole-model runs; ASan, and TSan for the threading
                      ones, run them in full): left out under Valgrind only */
};
typedef struct t_case { const char *name; void (*fn)(void); int tags; } t_case;

static int t_fail_count = 0;      /* failures in the whole run */
static int t_check_count = 0;     /* checks in the whole run   */
static int t_cur_failed = 0;      /* failures in the current test */
static int t_skipped = 0;         /* set by T_SKIP */

/* CHECK(cond, fmt, ...): counts a check; prints a FAIL line with the message when cond is false. */
#define CHECK(cond, ...) do { t_check_count++; if (!(cond)) { t_fail_count++; t_cur_failed++; \
    printf("    FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)
/* NOTE(fmt, ...): an informational line printed under the current test (worst errors, sizes). */
#define NOTE(...) do { printf("    "); printf(__VA_ARGS__); printf("\n"); } while (0)
/* T_SKIP(fmt, ...): marks the current test skipped (for example no real model folder) and returns. */
#define T_SKIP(...) do { t_skipped = 1; printf("    skip: "); printf(__VA_ARGS__); printf("\n"); return; } while (0)

/* directory of the test data (tests/data), overridable with LFM2_TEST_DATA */
static const char *t_data_dir(void) {
    const char *d = getenv("LFM2_TEST_DATA");
    return d ? d : "tests/data";
}
/* reads a whole file; returns malloc'd buffer (NUL-terminated) or NULL */
static char *t_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (size) *size = (size_t)n; }
    return buf;
}
#include "load_one.h" /* t_load_one (run_tests.c includes lfm2.h first) */

/* tiny-bf16 loaded from memory with generation_config.json text gen (the loader reads its eos
   ids): the load's result, *m the model (NULL on error) */
static lfm2_result t_load_tiny_gen(const char *gen, lfm2_model **m, lfm2_error *e) {
    char path[1024], *cfg, *st;
    size_t cfg_n = 0, st_n = 0;
    lfm2_model_sources s;
    lfm2_buffer b;
    lfm2_model_params p;
    lfm2_result rc = LFM2_ERR_IO;
    *m = NULL;
    memset(e, 0, sizeof *e);
    snprintf(path, sizeof path, "%s/tiny-bf16/config.json", t_data_dir());
    cfg = t_read_file(path, &cfg_n);
    snprintf(path, sizeof path, "%s/tiny-bf16/model.safetensors", t_data_dir());
    st = t_read_file(path, &st_n);
    if (cfg && st) {
        memset(&s, 0, sizeof s);
        memset(&p, 0, sizeof p);
        b.data = st; b.size = st_n; b.name = "model.safetensors";
        s.config_json = cfg; s.config_json_size = cfg_n;
        s.safetensors = &b; s.n_safetensors = 1;
        s.generation_config_json = gen; s.generation_config_json_size = strlen(gen);
        p.error = e;
        rc = lfm2_model_load_memory(&s, &p, m);
    } else snprintf(e->message, sizeof e->message, "cannot read tests/data/tiny-bf16");
    free(cfg);
    free(st);
    return rc;
}

/* ---- the reference tensors (ref.safetensors, sampler.safetensors): one reader ----------------
   The table is parsed by the library's own validating parser; values are decoded little-endian
   (safetensors' byte order) whatever the host. Accessors return malloc'd copies (NULL when the
   tensor is absent or of another kind); *n = element count, *rows = shape[0] (1 for a scalar). */
typedef struct t_ref {
    char *buf;
    size_t size;
    lfm2__stfile f;
} t_ref;
static int t_ref_open(t_ref *r, const char *path) {
    lfm2_error e;
    memset(r, 0, sizeof *r);
    r->buf = t_read_file(path, &r->size);
    if (!r->buf) return 0;
    if (lfm2__st_parse(r->buf, r->size, path, 0, NULL, &e, &r->f) != LFM2_OK) {
        printf("    %s\n", e.message);
        free(r->buf);
        r->buf = NULL;
        return 0;
    }
    return 1;
}
static void t_ref_close(t_ref *r) {
    lfm2__st_free(&r->f, NULL);
    free(r->buf);
    memset(r, 0, sizeof *r);
}
/* element i of tensor t as a double (F32 / F64 / I32 / I64, little-endian) */
static double t_ref_elem(const lfm2__tensor *t, uint64_t i) {
    const unsigned char *p = t->data + i * lfm2__dtype_size[t->dtype];
    uint64_t u = 0;
    int k, sz = lfm2__dtype_size[t->dtype];
    for (k = sz - 1; k >= 0; k--) u = (u << 8) | p[k];
    if (t->dtype == LFM2__DT_F32) { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); return f; }
    if (t->dtype == LFM2__DT_F64) { double d; memcpy(&d, &u, 8); return d; }
    if (t->dtype == LFM2__DT_I32) return (double)(int32_t)(uint32_t)u;
    return (double)(int64_t)u; /* I64 */
}
/* kind 'f': F32 or F64 tensors, 'i': I32 or I64 */
static const lfm2__tensor *t_ref_find(const t_ref *r, const char *name, int kind, int64_t *n, int64_t *rows) {
    const lfm2__tensor *t = lfm2__st_find(&r->f, name);
    if (!t) return NULL;
    if (kind == 'f' && t->dtype != LFM2__DT_F32 && t->dtype != LFM2__DT_F64) return NULL;
    if (kind == 'i' && t->dtype != LFM2__DT_I32 && t->dtype != LFM2__DT_I64) return NULL;
    if (n) *n = (int64_t)t->numel;
    if (rows) *rows = t->ndim > 0 ? t->shape[0] : 1;
    return t;
}
static float *t_ref_f32n(const t_ref *r, const char *name, int64_t *n, int64_t *rows) {
    const lfm2__tensor *t = t_ref_find(r, name, 'f', n, rows);
    float *o;
    uint64_t i;
    if (!t || !(o = (float *)malloc((size_t)t->numel * sizeof(float) + 4))) return NULL;
    for (i = 0; i < t->numel; i++) o[i] = (float)t_ref_elem(t, i);
    return o;
}
static double *t_ref_f64n(const t_ref *r, const char *name, int64_t *n) {
    const lfm2__tensor *t = t_ref_find(r, name, 'f', n, NULL);
    double *o;
    uint64_t i;
    if (!t || !(o = (double *)malloc((size_t)t->numel * sizeof(double) + 8))) return NULL;
    for (i = 0; i < t->numel; i++) o[i] = t_ref_elem(t, i);
    return o;
}
static int32_t *t_ref_i32n(const t_ref *r, const char *name, int64_t *n, int64_t *rows) {
    const lfm2__tensor *t = t_ref_find(r, name, 'i', n, rows);
    int32_t *o;
    uint64_t i;
    if (!t || !(o = (int32_t *)malloc((size_t)t->numel * sizeof(int32_t) + 4))) return NULL;
    for (i = 0; i < t->numel; i++) o[i] = (int32_t)t_ref_elem(t, i);
    return o;
}
/* the same with an unsigned count and no row count */
static float *t_ref_f32(const t_ref *r, const char *name, uint64_t *n) {
    int64_t k = 0;
    float *o = t_ref_f32n(r, name, &k, NULL);
    if (n) *n = (uint64_t)k;
    return o;
}
static int32_t *t_ref_i32(const t_ref *r, const char *name, uint64_t *n) {
    int64_t k = 0;
    int32_t *o = t_ref_i32n(r, name, &k, NULL);
    if (n) *n = (uint64_t)k;
    return o;
}
/* max |a-b| / max |ref| (NaN in a counts as a huge error) */
static double t_rel_err(const float *a, const float *ref, size_t n) {
    double mx = 0, mr = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > mx || d != d) mx = d != d ? 1e30 : d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mr > 0 ? mx / mr : mx;
}
/* ---- perplexity: one next-token loss loop ---------------------------------------------------
   t_nll: nll plus -log softmax(logits[t])[ids[t + 1]] for each of the n - 1 positions t of ids[0..n),
   added one by one (logits: n rows of V; log-sum-exp from the row maximum, in double) */
static double t_nll(double nll, const float *logits, int32_t V, const int32_t *ids, int32_t n) {
    int32_t t;
    for (t = 0; t + 1 < n; t++) {
        const float *l = logits + (size_t)t * V;
        double mx = l[0], s = 0;
        int32_t k;
        for (k = 1; k < V; k++) if (l[k] > mx) mx = l[k];
        for (k = 0; k < V; k++) s += exp(l[k] - mx);
        nll += mx + log(s) - l[ids[t + 1]];
    }
    return nll;
}
/* the perplexity of c's model on demo-code-8m's eval text (ref.safetensors eval.ids: 8 rows of 256
   tokens, each decoded from a reset context); 0 if the logits cannot be allocated */
static double t_eval_perplexity(lfm2_context *c, int32_t V, const int32_t *ids) {
    float *lg = (float *)malloc(sizeof(float) * 256 * (size_t)V);
    double nll = 0;
    int32_t row;
    if (!lg) return 0;
    for (row = 0; row < 8; row++) {
        lfm2_context_reset(c);
        lfm2_context_decode_all(c, ids + row * 256, 256, lg);
        nll = t_nll(nll, lg, V, ids + row * 256, 256);
    }
    free(lg);
    return exp(nll / (8 * 255));
}

/* loads tests/data/NAME (or a path with a '/') with default params; prints the error */
static lfm2_model *t_load(const char *name) {
    char path[512];
    lfm2_model *m = NULL;
    lfm2_error e;
    lfm2_model_params p;
    memset(&p, 0, sizeof p);
    p.error = &e;
    if (strchr(name, '/')) snprintf(path, sizeof path, "%s", name);
    else snprintf(path, sizeof path, "%s/%s", t_data_dir(), name);
    if (lfm2_model_load_dir(path, &p, &m) != LFM2_OK) printf("    load %s: %s\n", path, e.message);
    return m;
}
#endif
