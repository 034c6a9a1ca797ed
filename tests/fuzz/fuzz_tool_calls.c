/* fuzz target: lfm2_tool_calls_parse of arbitrary text. Invariants: the size query, exact
   buffers and short ones agree; on success every name is an identifier path and every
   arguments text is a JSON object that the library's json.dumps printer reprints unchanged
   (valid JSON, already in Python's format); on a refusal the byte offset is inside the text. */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    int32_t nc = 0, nc2 = 0, k;
    size_t need = 0, got = 0, off = 0;
    lfm2_error err;
    lfm2_result rc;
    memset(&err, 0, sizeof err);
    rc = lfm2_tool_calls_parse(text, size, NULL, 0, &nc, NULL, 0, &need, &off, &err);
    FUZZ_LOG(rc, err.message);
    if (rc != LFM2_OK) {
        FUZZ_ASSERT(rc == LFM2_ERR_INVALID_ARG && off <= size && nc == 0 && err.message[0]);
        return 0;
    }
    {
        lfm2_tool_call *calls = (lfm2_tool_call *)malloc(sizeof *calls * (size_t)(nc + 1));
        char *buf = (char *)malloc(need + 1);
        FUZZ_ASSERT(lfm2_tool_calls_parse(text, size, calls, nc, &nc2, buf, need, &got, &off, &err) == LFM2_OK && nc2 == nc && got == need);
        if (need) FUZZ_ASSERT(lfm2_tool_calls_parse(text, size, calls, nc, &nc2, buf, need - 1, &got, &off, &err) == LFM2_ERR_BUFFER_TOO_SMALL && got == need);
        if (nc) FUZZ_ASSERT(lfm2_tool_calls_parse(text, size, calls, nc - 1, &nc2, buf, need, &got, &off, &err) == LFM2_ERR_BUFFER_TOO_SMALL && nc2 == nc);
        FUZZ_ASSERT(lfm2_tool_calls_parse(text, size, calls, nc, &nc2, buf, need, &got, &off, &err) == LFM2_OK);
        for (k = 0; k < nc; k++) {
            lfm2__cw w;
            char *again = (char *)malloc(calls[k].arguments_len + 1);
            FUZZ_ASSERT(calls[k].name_len > 0 && strlen(calls[k].name) == calls[k].name_len && strlen(calls[k].arguments) == calls[k].arguments_len);
            FUZZ_ASSERT(calls[k].arguments[0] == '{' && calls[k].arguments[calls[k].arguments_len - 1] == '}');
            memset(&w, 0, sizeof w);
            w.buf = again;
            w.cap = calls[k].arguments_len;
            lfm2__cw_tojson(&w, calls[k].arguments, "arguments");
            FUZZ_ASSERT(w.rc == LFM2_OK && w.n == calls[k].arguments_len && memcmp(again, calls[k].arguments, w.n) == 0);
            free(again);
        }
        free(calls);
        free(buf);
    }
    return 0;
}
