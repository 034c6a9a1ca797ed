/* tests/fuzz/fuzz_common.h - shared by the libFuzzer targets of lfm2.h.

   Every target defines   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
   and includes this file once, after lfm2.h. Built two ways:
     clang -fsanitize=fuzzer,address,undefined ...   libFuzzer provides main()
     gcc -DFUZZ_REPLAY [-fsanitize=address,undefined] ...   the main() below replays the files
        (or every file of the folders) named on the command line through the same entry point;
        used by `make test` to replay tests/fuzz/regressions/<target>/.
   The targets find the test data in $LFM2_TEST_DATA, else tests/data (run from the repo root).
   A target calls FUZZ_ASSERT for the invariants it checks: a violation aborts (= a finding). */
#ifndef LFM2_FUZZ_COMMON_H
#define LFM2_FUZZ_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define FUZZ_ASSERT(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* replay builds print each input's result when FUZZ_VERBOSE is set */
#ifdef FUZZ_REPLAY
#define FUZZ_LOG(rc, msg) do { if (getenv("FUZZ_VERBOSE")) printf("  -> %s: %s\n", lfm2_result_string(rc), (rc) == LFM2_OK ? "" : (msg)); } while (0)
#else
#define FUZZ_LOG(rc, msg) do { (void)(rc); } while (0)
#endif

LFM2__MAYBE_UNUSED static const char *fuzz_data_dir(void) {
    const char *d = getenv("LFM2_TEST_DATA");
    return d ? d : "tests/data";
}
/* reads a whole file (NUL-terminated copy); exits when it is missing: the fuzzer cannot run */
LFM2__MAYBE_UNUSED static char *fuzz_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) { fprintf(stderr, "fuzz: cannot open %s (run from the repository root or set LFM2_TEST_DATA)\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char *)malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "fuzz: cannot read %s\n", path); exit(2); }
    fclose(f);
    buf[n] = 0;
    if (size) *size = (size_t)n;
    return buf;
}
LFM2__MAYBE_UNUSED static char *fuzz_read_data(const char *rel, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_data_dir(), rel);
    return fuzz_read(path, size);
}
/* loads a model folder of the test data once (exits on failure) */
LFM2__MAYBE_UNUSED static lfm2_model *fuzz_load_model(const char *name, int no_tokenizer) {
    char path[1024];
    lfm2_model_params p;
    lfm2_error e;
    lfm2_model *m = NULL;
    memset(&p, 0, sizeof p);
    p.error = &e;
    p.no_tokenizer = no_tokenizer;
    snprintf(path, sizeof path, "%s/%s", fuzz_data_dir(), name);
    if (lfm2_model_load_dir(path, &p, &m) != LFM2_OK) { fprintf(stderr, "fuzz: cannot load %s: %s\n", path, e.message); exit(2); }
    return m;
}
/* a tokenizer-only model (tests/data/tokenizer/lfm2-like has no weights): the micro model of
   fuzz_micro_model.h is too small for the real vocabulary, so the tokenizer is attached to a
   model struct by hand. Only the tokenizer API may be used on it. */
LFM2__MAYBE_UNUSED static lfm2_model *fuzz_tokenizer_model(const char *dir_rel) {
    static lfm2_model m;
    char path[1024];
    size_t tn, cn;
    char *tj, *tc;
    lfm2_error e;
    struct lfm2__tokenizer *t = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir_rel);
    tj = fuzz_read_data(path, &tn);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir_rel);
    tc = fuzz_read_data(path, &cn);
    if (lfm2__tokenizer_load(tj, tn, tc, cn, 65536, NULL, &e, &t) != LFM2_OK) { fprintf(stderr, "fuzz: tokenizer %s: %s\n", dir_rel, e.message); exit(2); }
    free(tj);
    free(tc);
    memset(&m, 0, sizeof m);
    m.cfg.vocab_size = 65536;
    m.cfg.bos_token_id = 1;
    m.cfg.n_eos = 1;
    m.cfg.eos_token_ids[0] = 7;
    m.tok = t;
    return &m;
}

/* The targets on the real LFM2 tokenizer (tokenize, detokenize, chat, chat_render) define
   FUZZ_REALVOCAB before including this file: g_m is then tests/data/realvocab-bf16 with its
   tokenizer, loaded once by LLVMFuzzerInitialize before the first input (so the load is not
   timed as part of an input; the replay main() calls it too) and kept for the process. */
#ifdef FUZZ_REALVOCAB
static lfm2_model *g_m;
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (!g_m) g_m = fuzz_load_model("realvocab-bf16", 0);
    return 0;
}
#endif

#ifdef FUZZ_REPLAY
#include <sys/stat.h>
#include <dirent.h>
static int fuzz_replay_file(const char *path) {
    size_t n;
    char *buf = fuzz_read(path, &n);
    uint8_t *copy = (uint8_t *)malloc(n ? n : 1); /* exact-size copy, so ASan sees overreads */
    memcpy(copy, buf, n);
    free(buf);
    printf("replay %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 1;
}
int main(int argc, char **argv) {
    int i, count = 0;
#ifdef FUZZ_REALVOCAB
    LLVMFuzzerInitialize(&argc, &argv);
#endif
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: no such file %s\n", argv[i]); return 2; }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *de;
            while (d && (de = readdir(d)) != NULL) {
                char p[2048];
                struct stat s2;
                if (de->d_name[0] == '.') continue;
                snprintf(p, sizeof p, "%s/%s", argv[i], de->d_name);
                if (stat(p, &s2) == 0 && S_ISREG(s2.st_mode)) count += fuzz_replay_file(p);
            }
            if (d) closedir(d);
        } else count += fuzz_replay_file(argv[i]);
    }
    printf("replayed %d inputs: no crash\n", count);
    return 0;
}
#endif
#endif
