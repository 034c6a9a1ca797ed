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

typedef struct t_case { const char *name; void (*fn)(void); } t_case;

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
#endif
