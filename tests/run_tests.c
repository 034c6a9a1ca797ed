/* tests/run_tests.c - the lfm2.h test suite, one translation unit so that the library's static
   internals can be tested directly. Usage: run_tests [substring-filter ...]
   Prints each test, its checks' worst errors, and a closing "N passed, N failed, N skipped" line;
   exit status = number of failed tests (capped at 255). */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include "test.h"

#include "test_core.c"
#include "test_tokenizer.c"
#include "test_sampler.c"
#include "test_hardening.c"

static const t_case *t_tables[] = { core_tests, tokenizer_tests, sampler_tests, hardening_tests };

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    size_t ti;
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("lfm2.h %s tests (%s)\n", lfm2_version_string(), lfm2_build_info());
    for (ti = 0; ti < sizeof t_tables / sizeof t_tables[0]; ti++) {
        const t_case *c;
        for (c = t_tables[ti]; c->name; c++) {
            int k, match = (argc < 2);
            for (k = 1; k < argc; k++) if (strstr(c->name, argv[k])) match = 1;
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
    printf("%d checks\n", t_check_count);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed > 255 ? 255 : failed;
}
