/* lfm2_chat_json.h - a conversation as JSON -> lfm2_chat, for the tools, the CLI and the tests.

   The shape is that of a chat_golden.json render entry (and of transformers' arguments):
       {"messages": [{"role": "user", "content": "..." | [{"type": "image"}, {"type": "text", "text": "..."}],
                      "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {...}}}],
                      "thinking": "..."}, ...],
        "tools": [...] or null, "options": {"add_generation_prompt": true, "keep_past_thinking": false},
        "date": "YYYY-MM-DD"}
   add_generation_prompt defaults to true here (the goldens' and the CLI's convention).
   Include after lfm2.h with LFM2_IMPLEMENTATION defined: it uses the library's JSON reader.
   Everything is malloc'd into the lfm2cj and freed by lfm2cj_free. */
#ifndef LFM2_CHAT_JSON_H
#define LFM2_CHAT_JSON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lfm2cj {
    lfm2_chat chat;
    lfm2_chat_message *msgs;
    lfm2_chat_part *parts;
    lfm2_chat_tool_call *calls;
    const char **tools;
    char **strs;
    int n_strs, cap_strs;
    lfm2__json j;
} lfm2cj;

LFM2__MAYBE_UNUSED static char *lfm2cj_keep(lfm2cj *c, char *s) {
    if (!s) return NULL;
    if (c->n_strs == c->cap_strs) {
        int cap = c->cap_strs ? c->cap_strs * 2 : 64;
        char **p = (char **)realloc(c->strs, (size_t)cap * sizeof *p);
        if (!p) { free(s); return NULL; }
        c->strs = p;
        c->cap_strs = cap;
    }
    c->strs[c->n_strs++] = s;
    return s;
}
/* the decoded string of token i (NULL if not a string, or it holds a NUL) */
LFM2__MAYBE_UNUSED static const char *lfm2cj_str(lfm2cj *c, int32_t i) {
    int64_t n = lfm2__json_str(&c->j, i, NULL);
    char *s;
    if (n < 0) return NULL;
    s = (char *)malloc((size_t)n + 1);
    if (!s) return NULL;
    lfm2__json_str(&c->j, i, s);
    s[n] = 0;
    if ((int64_t)strlen(s) != n) { free(s); return NULL; }
    return lfm2cj_keep(c, s);
}
/* the JSON text of token i, as it is in the source */
LFM2__MAYBE_UNUSED static const char *lfm2cj_raw(lfm2cj *c, int32_t i) {
    const lfm2__jtok *t = &c->j.tok[i];
    size_t a = t->start, b = t->end;
    char *s;
    if (t->type == LFM2__J_STR) { a--; b++; } /* with its quotes */
    s = (char *)malloc(b - a + 1);
    if (!s) return NULL;
    memcpy(s, c->j.src + a, b - a);
    s[b - a] = 0;
    return lfm2cj_keep(c, s);
}

LFM2__MAYBE_UNUSED static void lfm2cj_free(lfm2cj *c) {
    int k;
    for (k = 0; k < c->n_strs; k++) free(c->strs[k]);
    free(c->strs);
    free(c->msgs);
    free(c->parts);
    free(c->calls);
    free((void *)c->tools);
    lfm2__json_free(&c->j, NULL);
    memset(c, 0, sizeof *c);
}

#define LFM2CJ_FAIL(...) do { snprintf(err, errcap, __VA_ARGS__); lfm2cj_free(c); return 0; } while (0)

/* Parses a conversation object (src must stay alive while c is used). 1 on success; 0 with a
   message in err. template_kind is left 0 for the caller to set. */
LFM2__MAYBE_UNUSED static int lfm2cj_parse(lfm2cj *c, const char *src, size_t len, char *err, size_t errcap) {
    lfm2_error e;
    int32_t msgs, tools, opts, date, k, i, np = 0, nc = 0;
    memset(c, 0, sizeof *c);
    if (lfm2__json_parse(&c->j, src, len, NULL, &e, LFM2_ERR_INVALID_ARG, "conversation") != LFM2_OK) {
        snprintf(err, errcap, "%s", e.message);
        return 0;
    }
    if (c->j.tok[0].type != LFM2__J_OBJ) LFM2CJ_FAIL("conversation: not a JSON object");
    msgs = lfm2__json_get(&c->j, 0, "messages");
    if (msgs < 0 || c->j.tok[msgs].type != LFM2__J_ARR) LFM2CJ_FAIL("conversation: \"messages\" must be a list");
    /* count parts and calls */
    for (i = msgs + 1, k = 0; k < c->j.tok[msgs].n; k++, i = c->j.tok[i].skip) {
        int32_t ct = lfm2__json_get(&c->j, i, "content"), tc = lfm2__json_get(&c->j, i, "tool_calls");
        if (c->j.tok[i].type != LFM2__J_OBJ) LFM2CJ_FAIL("message %d: not an object", (int)k);
        if (ct >= 0 && c->j.tok[ct].type == LFM2__J_ARR) np += c->j.tok[ct].n;
        if (tc >= 0 && c->j.tok[tc].type == LFM2__J_ARR) nc += c->j.tok[tc].n;
    }
    c->msgs = (lfm2_chat_message *)calloc((size_t)c->j.tok[msgs].n + 1, sizeof *c->msgs);
    c->parts = (lfm2_chat_part *)calloc((size_t)np + 1, sizeof *c->parts);
    c->calls = (lfm2_chat_tool_call *)calloc((size_t)nc + 1, sizeof *c->calls);
    if (!c->msgs || !c->parts || !c->calls) LFM2CJ_FAIL("out of memory");
    np = nc = 0;
    for (i = msgs + 1, k = 0; k < c->j.tok[msgs].n; k++, i = c->j.tok[i].skip) {
        lfm2_chat_message *m = &c->msgs[k];
        int32_t ro = lfm2__json_get(&c->j, i, "role"), ct = lfm2__json_get(&c->j, i, "content");
        int32_t tc = lfm2__json_get(&c->j, i, "tool_calls"), th = lfm2__json_get(&c->j, i, "thinking");
        if (ro < 0 || !(m->role = lfm2cj_str(c, ro))) LFM2CJ_FAIL("message %d: \"role\" must be a string", (int)k);
        if (ct >= 0) {
            uint8_t ty = c->j.tok[ct].type;
            if (ty == LFM2__J_STR) { if (!(m->content = lfm2cj_str(c, ct))) LFM2CJ_FAIL("message %d: bad content string", (int)k); }
            else if (ty == LFM2__J_ARR) {
                int32_t q, p;
                m->parts = c->parts + np;
                for (q = ct + 1, p = 0; p < c->j.tok[ct].n; p++, q = c->j.tok[q].skip) {
                    lfm2_chat_part *pt = &c->parts[np++];
                    int32_t ty2 = lfm2__json_get(&c->j, q, "type"), tx = lfm2__json_get(&c->j, q, "text");
                    if (c->j.tok[q].type != LFM2__J_OBJ) LFM2CJ_FAIL("message %d: a content part is not an object", (int)k);
                    pt->json = lfm2cj_raw(c, q);
                    if (lfm2__json_str_is(&c->j, ty2, "image")) pt->type = LFM2_CHAT_PART_IMAGE;
                    else if (lfm2__json_str_is(&c->j, ty2, "text")) pt->type = LFM2_CHAT_PART_TEXT;
                    else pt->type = LFM2_CHAT_PART_OTHER;
                    if (tx >= 0 && c->j.tok[tx].type == LFM2__J_STR) pt->text = lfm2cj_str(c, tx);
                    m->n_parts++;
                }
            } else LFM2CJ_FAIL("message %d: content must be a string or a list of parts", (int)k);
        }
        if (th >= 0 && !(m->thinking = lfm2cj_str(c, th))) LFM2CJ_FAIL("message %d: \"thinking\" must be a string", (int)k);
        if (tc >= 0) {
            int32_t q, p;
            if (c->j.tok[tc].type != LFM2__J_ARR) LFM2CJ_FAIL("message %d: \"tool_calls\" must be a list", (int)k);
            m->tool_calls = c->calls + nc;
            for (q = tc + 1, p = 0; p < c->j.tok[tc].n; p++, q = c->j.tok[q].skip) {
                lfm2_chat_tool_call *call = &c->calls[nc++];
                int32_t fn = lfm2__json_get(&c->j, q, "function"), nm, ar;
                if (fn < 0) fn = q; /* {"name", "arguments"} directly */
                nm = lfm2__json_get(&c->j, fn, "name");
                ar = lfm2__json_get(&c->j, fn, "arguments");
                if (nm < 0 || !(call->name = lfm2cj_str(c, nm))) LFM2CJ_FAIL("message %d: a tool call without a name", (int)k);
                if (ar < 0 || !(call->arguments = lfm2cj_raw(c, ar))) LFM2CJ_FAIL("message %d: a tool call without arguments", (int)k);
                m->n_tool_calls++;
            }
        }
    }
    c->chat.messages = c->msgs;
    c->chat.n_messages = c->j.tok[msgs].n;
    tools = lfm2__json_get(&c->j, 0, "tools");
    if (tools >= 0 && c->j.tok[tools].type == LFM2__J_ARR) {
        c->tools = (const char **)calloc((size_t)c->j.tok[tools].n + 1, sizeof *c->tools);
        if (!c->tools) LFM2CJ_FAIL("out of memory");
        for (i = tools + 1, k = 0; k < c->j.tok[tools].n; k++, i = c->j.tok[i].skip)
            if (!(c->tools[k] = lfm2cj_raw(c, i))) LFM2CJ_FAIL("out of memory");
        c->chat.tools = c->tools;
        c->chat.n_tools = c->j.tok[tools].n;
    } else if (tools >= 0 && c->j.tok[tools].type != LFM2__J_NULL) LFM2CJ_FAIL("conversation: \"tools\" must be a list or null");
    c->chat.add_generation_prompt = 1;
    opts = lfm2__json_get(&c->j, 0, "options");
    if (opts >= 0) {
        if (c->j.tok[opts].type != LFM2__J_OBJ) LFM2CJ_FAIL("conversation: \"options\" must be an object");
        c->chat.add_generation_prompt = lfm2__json_bool(&c->j, opts, "add_generation_prompt", 1);
        c->chat.keep_past_thinking = lfm2__json_bool(&c->j, opts, "keep_past_thinking", 0);
        if (c->chat.add_generation_prompt < 0 || c->chat.keep_past_thinking < 0) LFM2CJ_FAIL("conversation: options must be booleans");
    }
    date = lfm2__json_get(&c->j, 0, "date");
    if (date >= 0 && c->j.tok[date].type != LFM2__J_NULL && !(c->chat.date = lfm2cj_str(c, date))) LFM2CJ_FAIL("conversation: \"date\" must be a string");
    return 1;
}

/* A JSON list of tool schemas (the CLI's tools.json) -> tools[] (raw JSON texts). */
LFM2__MAYBE_UNUSED static int lfm2cj_parse_tools(lfm2cj *c, const char *src, size_t len, char *err, size_t errcap) {
    lfm2_error e;
    int32_t i, k;
    memset(c, 0, sizeof *c);
    if (lfm2__json_parse(&c->j, src, len, NULL, &e, LFM2_ERR_INVALID_ARG, "tools") != LFM2_OK) { snprintf(err, errcap, "%s", e.message); return 0; }
    if (c->j.tok[0].type != LFM2__J_ARR) LFM2CJ_FAIL("tools: not a JSON list of tool schemas");
    c->tools = (const char **)calloc((size_t)c->j.tok[0].n + 1, sizeof *c->tools);
    if (!c->tools) LFM2CJ_FAIL("out of memory");
    for (i = 1, k = 0; k < c->j.tok[0].n; k++, i = c->j.tok[i].skip)
        if (!(c->tools[k] = lfm2cj_raw(c, i))) LFM2CJ_FAIL("out of memory");
    c->chat.tools = c->tools;
    c->chat.n_tools = c->j.tok[0].n;
    return 1;
}
#undef LFM2CJ_FAIL
#endif
