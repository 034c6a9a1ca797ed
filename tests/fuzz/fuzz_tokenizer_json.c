/* fuzz target: tokenizer.json (or, built with -DFUZZ_TOKENIZER_CONFIG, tokenizer_config.json)
   -> the tokenizer loader lfm2__tokenizer_load; the other file is the mini seed of
   corpus/tokenizer_config (resp. the nano seed of corpus/tokenizer_json, 16 merges: cheap to
   parse on every input), read once. A tokenizer that loads is
   used: a fixed text with special tokens is encoded and decoded, every id's piece is fetched. */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

static char *g_other;
static size_t g_other_n;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "<|startoftext|><|im_start|>user\nHello, w\xc3\xb6rld! 123 \xf0\x9f\x98\x80\xff  x<|im_end|>\n";
    struct lfm2__tokenizer *t = NULL;
    lfm2_error e;
    lfm2_result rc;
    char *input = (char *)malloc(size ? size : 1);
    memcpy(input, data, size);
    memset(&e, 0, sizeof e);
    if (!g_other) {
#ifdef FUZZ_TOKENIZER_CONFIG
        g_other = fuzz_read("tests/fuzz/corpus/tokenizer_json/nano-tokenizer.json", &g_other_n);
#else
        g_other = fuzz_read("tests/fuzz/corpus/tokenizer_config/mini-tokenizer_config.json", &g_other_n);
#endif
    }
#ifdef FUZZ_TOKENIZER_CONFIG
    rc = lfm2__tokenizer_load(g_other, g_other_n, input, size, 65536, NULL, &e, &t);
#else
    rc = lfm2__tokenizer_load(input, size, g_other, g_other_n, 65536, NULL, &e, &t);
#endif
    FUZZ_LOG(rc, e.message);
    if (rc == LFM2_OK) {
        lfm2_model m;
        int32_t ids[256], n = 0, i, ts;
        char buf[4096];
        size_t bn = 0;
        FUZZ_ASSERT(t != NULL);
        memset(&m, 0, sizeof m);
        m.cfg.vocab_size = 65536;
        m.tok = t;
        rc = lfm2_tokenize(&m, text, sizeof text - 1, LFM2_TOKENIZE_ADD_BOS | LFM2_TOKENIZE_PARSE_SPECIAL, ids, 256, &n);
        FUZZ_ASSERT(rc == LFM2_OK && n <= lfm2_tokenize_bound(&m, sizeof text - 1, LFM2_TOKENIZE_ADD_BOS | LFM2_TOKENIZE_PARSE_SPECIAL));
        for (i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < 65536);
        rc = lfm2_detokenize(&m, ids, n, 0, buf, sizeof buf, &bn);
        FUZZ_ASSERT(rc == LFM2_OK || rc == LFM2_ERR_BUFFER_TOO_SMALL);
        rc = lfm2_tokenize(&m, text, sizeof text - 1, 0, ids, 256, &n);
        FUZZ_ASSERT(rc == LFM2_OK);
        ts = lfm2_tokenizer_size(&m);
        FUZZ_ASSERT(ts >= 0 && ts <= 65536);
        for (i = 0; i < ts && i < 4096; i++) {
            rc = lfm2_token_to_piece(&m, i, buf, sizeof buf, &bn);
            FUZZ_ASSERT(rc == LFM2_OK || rc == LFM2_ERR_BUFFER_TOO_SMALL);
            if (rc == LFM2_OK) (void)lfm2_token_lookup(&m, buf, bn);
            (void)lfm2_token_is_special(&m, i);
            (void)lfm2_token_is_eog(&m, i);
        }
        (void)lfm2_token_bos(&m);
        lfm2__tokenizer_free(t, NULL);
    } else {
        FUZZ_ASSERT(t == NULL && e.code == rc && e.message[0] != 0);
    }
    free(input);
    return 0;
}
