/* fuzz target: lfm2_chat_render and lfm2_chat_tokenize of arbitrary conversations, with each of
   the three templates (realvocab-bf16's tokenizer). Input: byte 0 = template (bits 0-1) +
   add_generation_prompt (bit 2) + keep_past_thinking (bit 3) + a date (bit 4) + trusted
   messages (bit 5); byte 1 = number of tools (0-3); then NUL-separated fields: the tools' JSON,
   then 5 fields per message: role, content ("\x01" = none, "\x02a\x03b" = parts: text a, then
   an image for each empty part), thinking ("" = none), tool call name ("" = none), its
   arguments. Invariants: the size query, the exact buffer and one byte short agree; a render
   starts with <|startoftext|>; chat_tokenize fails exactly when render fails, and its ids
   detokenize to the rendered bytes; the size query's size suffices. */
#define LFM2_IMPLEMENTATION
#define FUZZ_REALVOCAB /* g_m: realvocab-bf16, loaded once (fuzz_common.h) */
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy, *p, *end, *fields[96];
    int nf = 0, n_tools, i, np = 0;
    lfm2_chat_message msgs[16];
    lfm2_chat_part parts[64];
    lfm2_chat_tool_call calls[16];
    lfm2_chat chat;
    size_t need = 0, got = 0;
    char *buf;
    lfm2_result rc, rt;
    lfm2_error err;
    int32_t cap = 0, n = 0;
    if (size < 2) return 0;
    memset(&chat, 0, sizeof chat);
    memset(msgs, 0, sizeof msgs);
    chat.template_kind = 1 + (data[0] & 3) % 3;
    chat.add_generation_prompt = (data[0] >> 2) & 1;
    chat.keep_past_thinking = (data[0] >> 3) & 1;
    chat.date = ((data[0] >> 4) & 1) ? "2026-03-14" : NULL;
    n_tools = data[1] & 3;
    copy = (char *)malloc(size - 1);
    memcpy(copy, data + 2, size - 2);
    copy[size - 2] = 0;
    p = copy;
    end = copy + size - 2;
    while (p <= end && nf < 96) {
        fields[nf++] = p;
        p += strlen(p) + 1;
    }
    if (n_tools > nf) n_tools = nf;
    chat.tools = (const char *const *)fields;
    chat.n_tools = n_tools;
    for (i = n_tools; i + 4 < nf && chat.n_messages < 16; i += 5) {
        lfm2_chat_message *m = &msgs[chat.n_messages];
        m->role = fields[i];
        if (fields[i + 1][0] == 1) m->content = NULL;
        else if (fields[i + 1][0] == 2) {
            char *q = fields[i + 1] + 1;
            m->parts = parts + np;
            for (;;) {
                char *e = strchr(q, 3);
                if (np >= 64) break;
                if (e) *e = 0;
                parts[np].type = *q ? LFM2_CHAT_PART_TEXT : LFM2_CHAT_PART_IMAGE;
                parts[np].text = *q ? q : NULL;
                parts[np].json = NULL;
                np++;
                m->n_parts++;
                if (!e) break;
                q = e + 1;
            }
        } else m->content = fields[i + 1];
        m->thinking = fields[i + 2][0] ? fields[i + 2] : NULL;
        if (fields[i + 3][0]) {
            calls[chat.n_messages].name = fields[i + 3];
            calls[chat.n_messages].arguments = fields[i + 4];
            m->tool_calls = &calls[chat.n_messages];
            m->n_tool_calls = 1;
        }
        m->trusted = (data[0] >> 5) & 1;
        chat.n_messages++;
    }
    chat.messages = msgs;
    memset(&err, 0, sizeof err);
    rc = lfm2_chat_render(&chat, NULL, 0, &need, &err);
    FUZZ_LOG(rc, err.message);
    rt = lfm2_chat_tokenize(g_m, &chat, NULL, 0, &cap, &err);
    FUZZ_ASSERT((rc == LFM2_OK) == (rt == LFM2_OK));
    if (rc == LFM2_OK) {
        lfm2_token *ids;
        char *back;
        size_t bn = 0;
        FUZZ_ASSERT(need >= 15);
        buf = (char *)malloc(need);
        FUZZ_ASSERT(lfm2_chat_render(&chat, buf, need, &got, &err) == LFM2_OK && got == need && memcmp(buf, "<|startoftext|>", 15) == 0);
        FUZZ_ASSERT(lfm2_chat_render(&chat, buf, need - 1, &got, &err) == LFM2_ERR_BUFFER_TOO_SMALL && got == need);
        FUZZ_ASSERT(cap >= 1);
        ids = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)cap);
        FUZZ_ASSERT(lfm2_chat_tokenize(g_m, &chat, ids, cap, &n, &err) == LFM2_OK && n <= cap);
        back = (char *)malloc(need + 16);
        FUZZ_ASSERT(lfm2_detokenize(g_m, ids, n, 0, back, need + 16, &bn) == LFM2_OK && bn == need && memcmp(back, buf, need) == 0);
        if (n > 1) { /* a too-small buffer reports a size that works */
            int32_t n2 = 0, n3 = 0;
            rt = lfm2_chat_tokenize(g_m, &chat, ids, n / 2, &n2, &err);
            FUZZ_ASSERT(rt == LFM2_ERR_BUFFER_TOO_SMALL || rt == LFM2_OK);
            if (rt == LFM2_ERR_BUFFER_TOO_SMALL) FUZZ_ASSERT(n2 <= cap && lfm2_chat_tokenize(g_m, &chat, ids, n2, &n3, &err) == LFM2_OK && n3 == n);
        }
        free(back);
        free(ids);
        free(buf);
    } else FUZZ_ASSERT(err.message[0] != 0);
    free(copy);
    return 0;
}
