/* fuzz target: lfm2_detokenize, lfm2_token_to_piece and the streaming detokenizer on arbitrary
   id sequences (realvocab-bf16's tokenizer, loaded once). Input: byte 0 = mode (bit 0
   LFM2_DETOKENIZE_SKIP_SPECIAL, bit 1 ids as raw int32 instead of u16), then the ids
   (little-endian u16: 0..65535, vocab 65536 so ids past the tokenizer's 64400 are included;
   int32: anything, negative included).
   Invariants: out-of-vocabulary ids give INVALID_ARG; otherwise the streamed chunks concatenated
   (+ flush) equal the whole detokenization, which equals the concatenated pieces. */
#define LFM2_IMPLEMENTATION
#define FUZZ_REALVOCAB /* g_m: realvocab-bf16, loaded once (fuzz_common.h) */
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags, wide, bad = 0;
    int32_t n = 0, i, V;
    lfm2_token *ids;
    size_t need = 0, got = 0, pos = 0, k;
    char *whole, *streamed, piece[512];
    lfm2_detok_stream st;
    lfm2_result rc;
    if (size < 1) return 0;
    flags = data[0] & 1;
    wide = (data[0] >> 1) & 1;
    V = lfm2_model_config(g_m)->vocab_size;
    ids = (lfm2_token *)malloc(sizeof(lfm2_token) * (size / 2 + 1));
    for (k = 1; k + (wide ? 4u : 2u) <= size; k += wide ? 4u : 2u) {
        uint32_t v = (uint32_t)data[k] | ((uint32_t)data[k + 1] << 8);
        if (wide) v |= ((uint32_t)data[k + 2] << 16) | ((uint32_t)data[k + 3] << 24);
        ids[n] = (lfm2_token)v;
        if (ids[n] < 0 || ids[n] >= V) bad = 1;
        n++;
    }
    rc = lfm2_detokenize(g_m, ids, n, flags, NULL, 0, &need);
    if (bad) { FUZZ_ASSERT(rc == LFM2_ERR_INVALID_ARG); free(ids); return 0; }
    FUZZ_ASSERT(rc == LFM2_OK); /* a size query (buf NULL, cap 0) */
    FUZZ_ASSERT(need <= (size_t)n * 512);
    whole = (char *)malloc(need ? need : 1);
    rc = lfm2_detokenize(g_m, ids, n, flags, whole, need, &got);
    FUZZ_ASSERT(rc == LFM2_OK && got == need);
    if (need > 0) { /* one byte short */
        char *tight = (char *)malloc(need - 1 ? need - 1 : 1);
        FUZZ_ASSERT(lfm2_detokenize(g_m, ids, n, flags, tight, need - 1, &got) == LFM2_ERR_BUFFER_TOO_SMALL && got == need);
        free(tight);
    }
    /* streaming: chunks + flush == whole */
    memset(&st, 0, sizeof st);
    streamed = (char *)malloc(need + 4);
    for (i = 0; i < n; i++) {
        size_t pn = 0, cn = 0;
        rc = lfm2_token_to_piece(g_m, ids[i], piece, sizeof piece, &pn);
        FUZZ_ASSERT(rc == LFM2_OK && pn <= sizeof piece);
        rc = lfm2_detok_stream_push(g_m, &st, ids[i], flags, piece, pn + 3 < sizeof piece ? pn + 3 : sizeof piece, &cn);
        FUZZ_ASSERT(rc == LFM2_OK);
        FUZZ_ASSERT(pos + cn <= need);
        memcpy(streamed + pos, piece, cn);
        pos += cn;
    }
    {
        size_t fn = 0;
        char tail[3];
        FUZZ_ASSERT(lfm2_detok_stream_flush(&st, tail, sizeof tail, &fn) == LFM2_OK && fn <= 3);
        FUZZ_ASSERT(pos + fn <= need);
        memcpy(streamed + pos, tail, fn);
        pos += fn;
    }
    FUZZ_ASSERT(pos == need && memcmp(streamed, whole, need) == 0);
    free(streamed);
    free(whole);
    free(ids);
    return 0;
}
