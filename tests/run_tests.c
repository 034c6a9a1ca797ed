/* tests/run_tests.c - the lfm2.h test suite, one translation unit so that the library's static
   internals can be tested directly. The files follow the parts of the header:
       test_config.c    config.json                 test_load.c      safetensors, folders
       test_forward.c   forward pass vs goldens     test_kernels.c   formats, kernels, quantization
       test_tokenizer.c tokenizer                   test_sampler.c   sampler, generate
       test_hardening.c allocation failure, threads, limits, malformed inputs
       test_platform.c  the file layer: special files, unreadable files, UTF-8 paths, > 4 GiB, byte order
       test_moe.c       LFM2-MoE: config, goldens, experts, threads/chunks, quantization
       test_chat.c      chat templates, chat tokenization, tool calls, splitter
   Usage: run_tests [FILTER ...] | --levels (the instruction-set levels this CPU runs)
   FILTER = a substring of test names, @TAG (tests with that tag:
   isa, emu, slow, threads, long), or either prefixed with '-' to leave those tests out. With no
   including filter every test runs. Prints each test, its checks' worst errors, and a closing
   "N passed, N failed, N skipped" line; exit status = number of failed tests (capped at 255).
   The files the tests write go to one scratch folder per run: $LFM2_TEST_TMP, else build/tmp-<pid>
   (tests/t_files.h), so that runs at the same time (make -j test) do not share paths. */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include "test.h"
#include "t_files.h"

#include "test_config.c"
#include "test_load.c"
#include "test_forward.c"
#include "test_kernels.c"
#include "test_tokenizer.c"
#include "test_sampler.c"
#include "test_hardening.c"
#include "test_platform.c"
#include "test_moe.c"
#include "test_chat.c"

static const t_case *t_tables[] = { config_tests, load_tests, forward_tests, kernels_tests, tokenizer_tests, sampler_tests,
                                    hardening_tests, platform_tests, moe_tests, chat_tests };

static int t_tag_bit(const char *s) {
    if (strcmp(s, "isa") == 0) return T_ISA;
    if (strcmp(s, "emu") == 0) return T_EMU;
    if (strcmp(s, "slow") == 0) return T_SLOW;
    if (strcmp(s, "threads") == 0) return T_THREADS;
    if (strcmp(s, "long") == 0) return T_LONG;
    return -1;
}
/* 1 if filter f (without its '-') selects test c */
static int t_selects(const char *f, const t_case *c) {
    if (f[0] == '@') return (c->tags & t_tag_bit(f + 1)) != 0;
    return strstr(c->name, f) != NULL;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0, n_incl = 0, k;
    size_t ti;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "--levels") == 0) { /* the instruction-set levels this machine runs, for make test */
        int32_t l, cpu = (int32_t)lfm2_cpu_isa();
        for (l = LFM2_ISA_SCALAR; l < LFM2_ISA_COUNT; l++) if (lfm2__isa_has(cpu, l)) printf("%s\n", lfm2_isa_name((lfm2_isa)l));
        return 0;
    }
    for (k = 1; k < argc; k++) {
        const char *f = argv[k][0] == '-' ? argv[k] + 1 : argv[k];
        if (f[0] == '@' && t_tag_bit(f + 1) < 0) { printf("unknown tag %s (isa, emu, slow, threads, long)\n", f); return 255; }
        if (argv[k][0] != '-') n_incl++;
    }
    printf("lfm2.h %s tests (%s)\n", lfm2_version_string(), lfm2_build_info());
    for (ti = 0; ti < sizeof t_tables / sizeof t_tables[0]; ti++) {
        const t_case *c;
        for (c = t_tables[ti]; c->name; c++) {
            int match = (n_incl == 0);
            for (k = 1; k < argc; k++) {
                if (argv[k][0] == '-') { if (t_selects(argv[k] + 1, c)) { match = 0; break; } }
                else if (t_selects(argv[k], c)) match = 1;
            }
            if (!match) continue;
            printf("%s\n", c->name);
            t_cur_failed = 0;
            t_skipped = 0;
            c->fn();
            if (t_cur_failed) { failed++; printf("  FAILED %s\n", c->name); }
            else if (t_skipped) skipped++;
            else { passed++; printf("  ok\n"); }
        }
    }
    t_tmp_finish(); /* the scratch folder, if a test made files (tests/t_files.h) */
    printf("%d checks\n", t_check_count);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (passed + failed + skipped == 0) { printf("no test matched\n"); return 255; }
    return failed > 255 ? 255 : failed;
}
