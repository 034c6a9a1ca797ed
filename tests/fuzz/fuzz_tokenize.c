/* fuzz target: lfm2_tokenize of arbitrary bytes (the realvocab-bf16 model's LFM2 tokenizer, loaded
   once). Input: byte 0 = flags (bit 0 LFM2_TOKENIZE_ADD_BOS, bit 1 LFM2_TOKENIZE_PARSE_SPECIAL,
   bit 2 use a too-small output buffer first), the rest = the text.
   Invariants: the bound holds; every id is in the vocabulary; without ADD_BOS,
   detokenize(tokenize(s)) == s (special tokens decode to their text); with PARSE_SPECIAL off no
   special token appears (no injection); the size query (out NULL, cap 0) reports a size that
   succeeds, with the same ids, and that is the number of ids unless a pre-token needed the in-place
   fallback; a buffer of exactly the ids succeeds then; one short gives BUFFER_TOO_SMALL with the
   size needed. */
#define LFM2_IMPLEMENTATION
#define FUZZ_REALVOCAB /* g_m: realvocab-bf16, loaded once (fuzz_common.h) */
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags, small, i;
    const char *text;
    size_t len, dn = 0;
    int32_t bound, n = 0, need = 0, V;
    lfm2_token *ids;
    char *back;
    lfm2_result rc;
    if (size < 1) return 0;
    flags = data[0] & 3;
    small = (data[0] >> 2) & 1;
    text = (const char *)data + 1;
    len = size - 1;
    V = lfm2_model_config(g_m)->vocab_size;
    bound = lfm2_tokenize_bound(g_m, len, flags);
    FUZZ_ASSERT(bound >= (int32_t)len);
    ids = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)(bound + 1));
    if (small && len > 0) {
        rc = lfm2_tokenize(g_m, text, len, flags, ids, 0, &n);
        FUZZ_ASSERT(rc == LFM2_ERR_BUFFER_TOO_SMALL && n >= 1);
    }
    rc = lfm2_tokenize(g_m, text, len, flags, ids, bound, &n);
    FUZZ_ASSERT(rc == LFM2_OK);
    FUZZ_ASSERT(n >= 0 && n <= bound);
    rc = lfm2_tokenize(g_m, text, len, flags, NULL, 0, &need);
    FUZZ_ASSERT(rc == LFM2_OK && need >= n && need <= bound);
    for (i = 0; i < n; i++) {
        FUZZ_ASSERT(ids[i] >= 0 && ids[i] < V && ids[i] < lfm2_tokenizer_size(g_m));
        if (!(flags & LFM2_TOKENIZE_PARSE_SPECIAL) && !(flags & LFM2_TOKENIZE_ADD_BOS)) FUZZ_ASSERT(!lfm2_token_is_special(g_m, ids[i]));
    }
    if (small && n > 1) { /* a buffer of the size needed, of exactly the ids, one short */
        int32_t n2 = 0;
        lfm2_token *tight = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)need);
        rc = lfm2_tokenize(g_m, text, len, flags, tight, need, &n2);
        FUZZ_ASSERT(rc == LFM2_OK && n2 == n && memcmp(tight, ids, sizeof(lfm2_token) * (size_t)n) == 0);
        if (need == n) {
            rc = lfm2_tokenize(g_m, text, len, flags, tight, n - 1, &n2);
            FUZZ_ASSERT(rc == LFM2_ERR_BUFFER_TOO_SMALL && n2 == n);
        }
        free(tight);
    }
    if (!(flags & LFM2_TOKENIZE_ADD_BOS)) {
        rc = lfm2_detokenize(g_m, ids, n, 0, NULL, 0, &dn);
        FUZZ_ASSERT(rc == LFM2_OK || rc == LFM2_ERR_BUFFER_TOO_SMALL);
        FUZZ_ASSERT(dn == len);
        back = (char *)malloc(dn ? dn : 1);
        rc = lfm2_detokenize(g_m, ids, n, 0, back, dn, &dn);
        FUZZ_ASSERT(rc == LFM2_OK && dn == len && memcmp(back, text, len) == 0);
        free(back);
    }
    free(ids);
    return 0;
}
