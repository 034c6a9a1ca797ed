/* fuzz target: the streaming splitter. Input: byte 0 = in_reasoning (bit 0), byte 1 = a seed
   for the cuts, the rest = generated text. The text is fed whole, byte by byte and in pieces
   of pseudo-random sizes. Invariants: the bytes come out exactly once, in order; every way of
   feeding gives the same channels; markers come out whole on the marker channel. */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

/* The harness's own functions (fuzz_split_*) are left out of coverage tracing
   (coverage_ignore.txt): their loops and checks are not the splitter's, and tracing them took a
   quarter of the time. */
typedef struct sink { char *all; unsigned char *chan; size_t n, cap; int bad; } sink;
static void fuzz_split_emit(void *u, int channel, const char *text, size_t len) {
    sink *s = (sink *)u;
    if (len == 0 || channel < 0 || channel > 3 || s->n + len > s->cap) { s->bad = 1; return; }
    if (channel == LFM2_CHAT_MARKER)
        FUZZ_ASSERT((len == 7 && !memcmp(text, "<think>", 7)) || (len == 8 && !memcmp(text, "</think>", 8)) ||
                    (len == 19 && !memcmp(text, "<|tool_call_start|>", 19)) || (len == 17 && !memcmp(text, "<|tool_call_end|>", 17)));
    memcpy(s->all + s->n, text, len);
    memset(s->chan + s->n, channel, len);
    s->n += len;
}
#ifdef __GNUC__
__attribute__((noinline)) /* not inlined into the traced entry point */
#endif
static void fuzz_split_run(const char *t, size_t n, int mode, unsigned seed, int r, sink *s) {
    lfm2_chat_splitter sp;
    size_t i = 0;
    s->n = 0;
    s->bad = 0;
    lfm2_chat_splitter_init(&sp, r);
    while (i < n) {
        size_t step = mode == 0 ? n : mode == 1 ? 1 : 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 24);
        if (step > n - i) step = n - i;
        FUZZ_ASSERT(lfm2_chat_splitter_push(&sp, t + i, step, fuzz_split_emit, s) == LFM2_OK);
        i += step;
    }
    FUZZ_ASSERT(lfm2_chat_splitter_flush(&sp, fuzz_split_emit, s) == LFM2_OK);
}

static char *g_all[2];
static unsigned char *g_chan[2];
static size_t g_cap;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sink a, b;
    const char *t;
    size_t n;
    int mode;
    if (size < 2) return 0;
    t = (const char *)data + 2;
    n = size - 2;
    if (n + 1 > g_cap) { /* the sinks grow and are kept (no four allocations per input) */
        g_cap = n + 1;
        g_all[0] = (char *)realloc(g_all[0], g_cap); g_all[1] = (char *)realloc(g_all[1], g_cap);
        g_chan[0] = (unsigned char *)realloc(g_chan[0], g_cap); g_chan[1] = (unsigned char *)realloc(g_chan[1], g_cap);
        FUZZ_ASSERT(g_all[0] && g_all[1] && g_chan[0] && g_chan[1]);
    }
    a.cap = b.cap = n; /* exactly the text: a byte too many is caught (s->n + len > s->cap) */
    a.all = g_all[0]; b.all = g_all[1];
    a.chan = g_chan[0]; b.chan = g_chan[1];
    fuzz_split_run(t, n, 0, 0, data[0] & 1, &a);
    FUZZ_ASSERT(!a.bad && a.n == n && memcmp(a.all, t, n) == 0);
    for (mode = 1; mode <= 2; mode++) {
        fuzz_split_run(t, n, mode, data[1], data[0] & 1, &b);
        FUZZ_ASSERT(!b.bad && b.n == n && memcmp(b.all, t, n) == 0 && memcmp(a.chan, b.chan, n) == 0);
    }
    return 0;
}
