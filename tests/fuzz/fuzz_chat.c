/* fuzz target: lfm2_chat_format of arbitrary messages and tools, then the result tokenized with
   special-token parsing (realvocab-bf16's tokenizer). Input: byte 0 = flags (bit 0
   add_generation_prompt, bits 1-2 number of tools), then NUL-separated fields: the tools' JSON
   texts, then role, content, role, content, ... (a missing content is NULL).
   Invariants: the size query, the exact buffer and a buffer one byte short agree; the text
   starts with <|startoftext|>. */
#define LFM2_IMPLEMENTATION
#define FUZZ_REALVOCAB /* g_m: realvocab-bf16, loaded once (fuzz_common.h) */
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy, *p, *end, *fields[64];
    int nf = 0, add_gen, n_tools, i;
    lfm2_chat_message msgs[32];
    int32_t n_msgs = 0;
    size_t need = 0, got = 0;
    char *buf;
    lfm2_result rc;
    if (size < 1) return 0;
    add_gen = data[0] & 1;
    n_tools = (data[0] >> 1) & 3;
    copy = (char *)malloc(size + 1);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = 0;
    p = copy;
    end = copy + size - 1;
    while (p <= end && nf < 64) {
        fields[nf++] = p;
        p += strlen(p) + 1;
    }
    if (n_tools > nf) n_tools = nf;
    for (i = n_tools; i < nf && n_msgs < 32; i += 2) {
        msgs[n_msgs].role = fields[i];
        msgs[n_msgs].content = (i + 1 < nf) ? fields[i + 1] : NULL;
        n_msgs++;
    }
    rc = lfm2_chat_format(msgs, n_msgs, (const char *const *)fields, n_tools, add_gen, NULL, 0, &need);
    FUZZ_ASSERT(rc == LFM2_OK || rc == LFM2_ERR_BUFFER_TOO_SMALL);
    FUZZ_ASSERT(need >= 15);
    buf = (char *)malloc(need);
    rc = lfm2_chat_format(msgs, n_msgs, (const char *const *)fields, n_tools, add_gen, buf, need, &got);
    FUZZ_ASSERT(rc == LFM2_OK && got == need && memcmp(buf, "<|startoftext|>", 15) == 0);
    {
        char *tight = (char *)malloc(need - 1);
        FUZZ_ASSERT(lfm2_chat_format(msgs, n_msgs, (const char *const *)fields, n_tools, add_gen, tight, need - 1, &got) == LFM2_ERR_BUFFER_TOO_SMALL && got == need);
        free(tight);
    }
    {
        int32_t bound = lfm2_tokenize_bound(g_m, need, LFM2_TOKENIZE_PARSE_SPECIAL), n = 0;
        lfm2_token *ids = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)bound);
        FUZZ_ASSERT(lfm2_tokenize(g_m, buf, need, LFM2_TOKENIZE_PARSE_SPECIAL, ids, bound, &n) == LFM2_OK);
        FUZZ_ASSERT(n >= 1 && ids[0] == lfm2_token_bos(g_m));
        free(ids);
    }
    free(buf);
    free(copy);
    return 0;
}
