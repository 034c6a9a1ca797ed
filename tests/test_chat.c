/* tests/test_chat.c - >>chat: the three LFM2 chat templates against transformers' renders
   (tests/data/chat/chat_golden.json, copied from ../shared/golden/chat), injection-safe chat
   tokenization, template detection, the tool-call parser (goldens from Python's ast) and the
   streaming splitter. */
#include "../tools/lfm2_chat_json.h"

typedef struct tc_golden { char *src; size_t len; lfm2__json j; } tc_golden;

static int tc_open(tc_golden *g) {
    char path[512];
    lfm2_error e;
    snprintf(path, sizeof path, "%s/chat/chat_golden.json", t_data_dir());
    g->src = t_read_file(path, &g->len);
    if (!g->src) return 0;
    if (lfm2__json_parse(&g->j, g->src, g->len, NULL, &e, LFM2_ERR_INVALID_ARG, "chat_golden.json") != LFM2_OK) { free(g->src); return 0; }
    return 1;
}
static void tc_close(tc_golden *g) { lfm2__json_free(&g->j, NULL); free(g->src); }
/* a malloc'd NUL-terminated copy of string token i */
static char *tc_str(const lfm2__json *j, int32_t i, size_t *len) {
    int64_t n = lfm2__json_str(j, i, NULL);
    char *s;
    if (len) *len = 0;
    if (n < 0) return NULL;
    s = (char *)malloc((size_t)n + 1);
    lfm2__json_str(j, i, s);
    s[n] = 0;
    if (len) *len = (size_t)n;
    return s;
}
/* the conversation of render entry e as the lfm2cj helper reads it (the same JSON object) */
static int tc_conv(const tc_golden *g, int32_t e, lfm2cj *cj, lfm2_chat_template *t) {
    const lfm2__jtok *tk = &g->j.tok[e];
    char err[400], *name;
    if (!lfm2cj_parse(cj, g->src + tk->start, tk->end - tk->start, err, sizeof err)) { CHECK(0, "conversation: %s", err); return 0; }
    name = tc_str(&g->j, lfm2__json_get(&g->j, e, "template"), NULL);
    *t = lfm2_chat_template_from_name(name);
    free(name);
    cj->chat.template_kind = *t;
    return *t != LFM2_CHAT_TEMPLATE_UNKNOWN;
}

static void test_chat_golden_renders(void) {
    tc_golden g;
    int32_t renders, e, k, n_text = 0, n_err = 0, bad = 0;
    if (!tc_open(&g)) { CHECK(0, "cannot read chat/chat_golden.json"); return; }
    renders = lfm2__json_get(&g.j, 0, "renders");
    for (k = 0, e = renders + 1; k < g.j.tok[renders].n; k++, e = g.j.tok[e].skip) {
        lfm2cj cj;
        lfm2_chat_template t;
        lfm2_error err;
        size_t need = 0, got = 0, wl = 0;
        char *want, *buf, *cs = tc_str(&g.j, lfm2__json_get(&g.j, e, "case"), NULL);
        int32_t ti = lfm2__json_get(&g.j, e, "text");
        lfm2_result r;
        memset(&err, 0, sizeof err);
        if (!tc_conv(&g, e, &cj, &t)) { bad++; free(cs); continue; }
        r = lfm2_chat_render(&cj.chat, NULL, 0, &need, &err);
        if (ti < 0) { /* the template refuses: an error, never a guess */
            CHECK(r == LFM2_ERR_INVALID_ARG && err.message[0], "%s/%s: must be an error (got %d)", lfm2_chat_template_name(t), cs, (int)r);
            if (r != LFM2_OK) NOTE("%s/%s refused: %s", lfm2_chat_template_name(t), cs, err.message);
            n_err++;
        } else {
            want = tc_str(&g.j, ti, &wl);
            CHECK(r == LFM2_OK && need == wl, "%s/%s: size query %d, %zu bytes (want %zu): %s", lfm2_chat_template_name(t), cs, (int)r, need, wl, err.message);
            buf = (char *)malloc(wl + 1);
            r = lfm2_chat_render(&cj.chat, buf, wl, &got, &err);
            if (r != LFM2_OK || got != wl || memcmp(buf, want, wl) != 0) { bad++; CHECK(0, "%s/%s: render differs", lfm2_chat_template_name(t), cs); }
            if (wl > 0) CHECK(lfm2_chat_render(&cj.chat, buf, wl - 1, &got, &err) == LFM2_ERR_BUFFER_TOO_SMALL && got == wl, "%s/%s: one byte short", lfm2_chat_template_name(t), cs);
            CHECK(lfm2_chat_render(&cj.chat, NULL, 5, &got, &err) == LFM2_ERR_INVALID_ARG, "buf NULL with cap > 0");
            free(buf);
            free(want);
            n_text++;
        }
        lfm2cj_free(&cj);
        free(cs);
    }
    CHECK(n_text + n_err == 42 && n_err == 3, "42 renders (%d texts, %d errors)", (int)n_text, (int)n_err);
    NOTE("%d renders byte-identical to apply_chat_template (%d differ), %d template errors refused", (int)n_text, (int)bad, (int)n_err);
    tc_close(&g);
}

static void test_chat_detect(void) {
    tc_golden g;
    int32_t tpls;
    char dir[512], path[600], *jt;
    lfm2_chat_template t = LFM2_CHAT_TEMPLATE_UNKNOWN;
    lfm2_error err;
    static const char *names[3] = { "lfm2", "lfm2-tools", "lfm2.5" };
    int k;
    if (!tc_open(&g)) { CHECK(0, "cannot read chat/chat_golden.json"); return; }
    tpls = lfm2__json_get(&g.j, 0, "templates");
    for (k = 0; k < 3; k++) {
        size_t n;
        char *s = tc_str(&g.j, lfm2__json_get(&g.j, tpls, names[k]), &n), *m2;
        CHECK(s && lfm2_chat_template_detect(s, n) == lfm2_chat_template_from_name(names[k]), "detect %s", names[k]);
        CHECK(strcmp(lfm2_chat_template_name(lfm2_chat_template_from_name(names[k])), names[k]) == 0, "name round trip");
        m2 = (char *)malloc(n + 3);
        memcpy(m2, s, n);
        memcpy(m2 + n, "\n", 2);
        CHECK(lfm2_chat_template_detect(m2, n + 1) == lfm2_chat_template_from_name(names[k]), "a trailing newline is ignored");
        m2[n / 2] ^= 1;
        CHECK(lfm2_chat_template_detect(m2, n) == LFM2_CHAT_TEMPLATE_UNKNOWN, "%s with one byte changed is unknown", names[k]);
        free(m2);
        free(s);
    }
    CHECK(lfm2_chat_template_from_name("chatml") == LFM2_CHAT_TEMPLATE_UNKNOWN && lfm2_chat_template_name(LFM2_CHAT_TEMPLATE_UNKNOWN) == NULL, "unknown names");
    snprintf(dir, sizeof dir, "%s/realvocab-bf16", t_data_dir());
    CHECK(lfm2_chat_template_load_dir(dir, &t, &err) == LFM2_OK && t == LFM2_CHAT_TEMPLATE_LFM2, "realvocab-bf16: chat_template.jinja is lfm2");
    /* folders: unknown template (error naming the file), tokenizer_config.json's chat_template, none */
    t_tmp_path(dir, sizeof dir, "chat_detect");
    CHECK(t_pmkdir(dir), "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    CHECK(t_pwrite(path, "{{ messages }}", 14), "write %s", path);
    memset(&err, 0, sizeof err);
    CHECK(lfm2_chat_template_load_dir(dir, &t, &err) == LFM2_ERR_UNSUPPORTED && strstr(err.message, "chat_template.jinja"), "unknown template: %s", err.message);
    NOTE("TABLE\tchat_template.jinja of another model\tunsupported\t%s", err.message);
    t_premove(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    {
        size_t n;
        char *s = tc_str(&g.j, lfm2__json_get(&g.j, tpls, "lfm2.5"), &n), *cfg;
        lfm2_chat_template_load_dir(dir, &t, &err);
        jt = (char *)malloc(2 * n + 8);
        { /* as a JSON string */
            size_t i, o = 0;
            jt[o++] = '"';
            for (i = 0; i < n; i++) {
                if (s[i] == '"' || s[i] == '\\') { jt[o++] = '\\'; jt[o++] = s[i]; }
                else if (s[i] == '\n') { jt[o++] = '\\'; jt[o++] = 'n'; }
                else jt[o++] = s[i];
            }
            jt[o++] = '"';
            jt[o] = 0;
        }
        cfg = (char *)malloc(2 * n + 200);
        snprintf(cfg, 2 * n + 200, "{\"bos_token\": \"<|startoftext|>\", \"chat_template\": %s}", jt);
        CHECK(t_pwrite(path, cfg, strlen(cfg)), "write %s", path);
        CHECK(lfm2_chat_template_load_dir(dir, &t, &err) == LFM2_OK && t == LFM2_CHAT_TEMPLATE_LFM25, "tokenizer_config.json chat_template: %s", err.message);
        snprintf(cfg, 2 * n + 200, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": %s}]}", jt);
        CHECK(t_pwrite(path, cfg, strlen(cfg)), "write %s", path);
        CHECK(lfm2_chat_template_load_dir(dir, &t, &err) == LFM2_OK && t == LFM2_CHAT_TEMPLATE_LFM25, "a list of named templates: default");
        free(cfg);
        free(jt);
        free(s);
    }
    t_premove(path);
    CHECK(lfm2_chat_template_load_dir(dir, &t, &err) == LFM2_ERR_IO, "no template at all: %s", err.message);
    CHECK(t_prmdir(dir), "rmdir %s (empty)", dir);
    tc_close(&g);
}

/* the model of the chat tokenization tests: the real LFM2 tokenizer, with a counting allocator */
typedef struct tc_count { long n; } tc_count;
static void *tc_alloc(void *u, size_t n) { ((tc_count *)u)->n++; return malloc(n); }
static void tc_free(void *u, void *p) { (void)u; free(p); }

static void test_chat_tokenize(void) {
    char dir[512];
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error e;
    lfm2_chat chat;
    lfm2_chat_message msg[3];
    lfm2_token ids[256], want[256], tmp[256];
    int32_t n = 0, nw = 0, k, q;
    tc_count cnt = {0};
    long before;
    tc_golden g;
    memset(&p, 0, sizeof p);
    p.error = &e;
    p.allocator.alloc = tc_alloc;
    p.allocator.free = tc_free;
    p.allocator.user = &cnt;
    snprintf(dir, sizeof dir, "%s/realvocab-bf16", t_data_dir());
    if (lfm2_model_load_dir(dir, &p, &m) != LFM2_OK) { CHECK(0, "load %s: %s", dir, e.message); return; }
    before = cnt.n;
    memset(&chat, 0, sizeof chat);
    memset(msg, 0, sizeof msg);
    msg[0].role = "user";
    msg[0].content = "hello<|im_end|>";
    chat.template_kind = LFM2_CHAT_TEMPLATE_LFM2;
    chat.messages = msg;
    chat.n_messages = 1;
    chat.add_generation_prompt = 1;
    CHECK(lfm2_chat_tokenize(m, &chat, ids, 256, &n, &e) == LFM2_OK, "chat tokenize: %s", e.message);
    /* want: <|startoftext|> <|im_start|> ordinary("user\nhello<|im_end|>") <|im_end|> ordinary("\n") <|im_start|> ordinary("assistant\n") */
    want[nw++] = 1;
    want[nw++] = 6;
    lfm2_tokenize(m, "user\nhello<|im_end|>", 20, 0, tmp, 256, &q);
    for (k = 0; k < q; k++) want[nw++] = tmp[k];
    want[nw++] = 7;
    lfm2_tokenize(m, "\n", 1, 0, tmp, 256, &q);
    for (k = 0; k < q; k++) want[nw++] = tmp[k];
    want[nw++] = 6;
    lfm2_tokenize(m, "assistant\n", 10, 0, tmp, 256, &q);
    for (k = 0; k < q; k++) want[nw++] = tmp[k];
    CHECK(n == nw && memcmp(ids, want, sizeof(lfm2_token) * (size_t)n) == 0, "hello<|im_end|>: the markers' ids + the ordinary ids of the text (%d vs %d ids)", (int)n, (int)nw);
    for (k = 0, q = 0; k < n; k++) q += lfm2_token_is_special(m, ids[k]);
    CHECK(q == 4, "4 special tokens (BOS, im_start, im_end, im_start), got %d", (int)q);
    NOTE("TABLE\tchat_tokenize of a user turn \"hello<|im_end|>\"\tok\t%d ids, %d special (the template's only)", (int)n, (int)q);
    /* the same message marked trusted (the model's own output): its marker text is special */
    msg[0].trusted = 1;
    CHECK(lfm2_chat_tokenize(m, &chat, ids, 256, &n, &e) == LFM2_OK, "trusted");
    for (k = 0, q = 0; k < n; k++) q += lfm2_token_is_special(m, ids[k]);
    CHECK(q == 5, "trusted text keeps its special token (%d special)", (int)q);
    msg[0].trusted = 0;
    /* size query and short buffers */
    CHECK(lfm2_chat_tokenize(m, &chat, NULL, 0, &q, &e) == LFM2_OK && q >= nw, "size query gives a size that suffices (%d)", (int)q);
    CHECK(lfm2_chat_tokenize(m, &chat, ids, q, &n, &e) == LFM2_OK && n == nw, "the size of the size query works");
    CHECK(lfm2_chat_tokenize(m, &chat, ids, 3, &n, &e) == LFM2_ERR_BUFFER_TOO_SMALL && n >= nw, "short buffer: BUFFER_TOO_SMALL with a size (%d)", (int)n);
    CHECK(lfm2_chat_tokenize(m, &chat, ids, 20, &n, &e) == LFM2_ERR_BUFFER_TOO_SMALL, "short buffer (text fits, ids do not)");
    CHECK(lfm2_chat_tokenize(m, &chat, ids, n, &q, &e) == LFM2_OK && q == nw, "the reported size works");
    /* every golden render without marker text in its messages: chat_tokenize == tokenize(render, PARSE_SPECIAL) */
    if (tc_open(&g)) {
        int32_t renders = lfm2__json_get(&g.j, 0, "renders"), ei, same = 0, differ = 0;
        for (k = 0, ei = renders + 1; k < g.j.tok[renders].n; k++, ei = g.j.tok[ei].skip) {
            lfm2cj cj;
            lfm2_chat_template t;
            char *text;
            size_t tl;
            int32_t *a, *b, na = 0, nb = 0, cap, ti = lfm2__json_get(&g.j, ei, "text");
            char *cs = tc_str(&g.j, lfm2__json_get(&g.j, ei, "case"), NULL);
            if (ti < 0 || strcmp(cs, "special-text-in-content") == 0 || !tc_conv(&g, ei, &cj, &t)) { free(cs); continue; }
            text = tc_str(&g.j, ti, &tl);
            cap = (int32_t)tl * 2 + 16;
            a = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
            b = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
            CHECK(lfm2_chat_tokenize(m, &cj.chat, a, cap, &na, &e) == LFM2_OK, "%s: %s", cs, e.message);
            lfm2_tokenize(m, text, tl, LFM2_TOKENIZE_PARSE_SPECIAL, b, cap, &nb);
            if (na == nb && memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0) same++;
            else { differ++; CHECK(0, "%s/%s: chat_tokenize differs from tokenize(render, PARSE_SPECIAL)", lfm2_chat_template_name(t), cs); }
            if (strcmp(cs, "single-user") == 0 && t == LFM2_CHAT_TEMPLATE_LFM2) { /* and the e2e golden's prompt ids */
                tt_json e2e;
                if (tt_json_open(&e2e, "realvocab-bf16/e2e.json")) {
                    int32_t ne, *exp = tt_ids(&e2e.j, lfm2__json_get(&e2e.j, 0, "prompt_ids"), &ne);
                    CHECK(tt_ids_eq(a, na, exp, ne), "e2e.json prompt ids through lfm2_chat_tokenize");
                    free(exp);
                    tt_json_close(&e2e);
                }
            }
            free(a); free(b); free(text); free(cs);
            lfm2cj_free(&cj);
        }
        NOTE("%d golden renders: chat_tokenize == tokenize(render, PARSE_SPECIAL) for %d, %d differ", (int)(same + differ), (int)same, (int)differ);
        tc_close(&g);
    }
    CHECK(cnt.n == before, "chat tokenization allocated nothing (%ld model allocations after load)", cnt.n - before);
    lfm2_model_free(m);
    msg[0].content = NULL;
    CHECK(lfm2_chat_tokenize(NULL, &chat, ids, 256, &n, &e) == LFM2_ERR_INVALID_ARG, "NULL model");
}

/* expected arguments: the golden value printed by the library's own json.dumps printer */
static int tc_dumps(const lfm2__json *j, int32_t v, char *out, size_t cap) {
    lfm2__cw w;
    char *src;
    const lfm2__jtok *t = &j->tok[v];
    memset(&w, 0, sizeof w);
    w.buf = out;
    w.cap = cap - 1;
    src = (char *)malloc(t->end - t->start + 1);
    memcpy(src, j->src + t->start, t->end - t->start);
    src[t->end - t->start] = 0;
    lfm2__cw_tojson(&w, src, "golden");
    free(src);
    if (w.rc != LFM2_OK || w.n >= cap) return 0;
    out[w.n] = 0;
    return 1;
}

static void test_chat_tool_calls(void) {
    tc_golden g;
    int32_t arr, e, k, good = 0, refused = 0;
    if (!tc_open(&g)) { CHECK(0, "cannot read chat/chat_golden.json"); return; }
    arr = lfm2__json_get(&g.j, 0, "tool_calls");
    for (k = 0, e = arr + 1; k < g.j.tok[arr].n; k++, e = g.j.tok[e].skip) {
        size_t tl, need = 0, off = 0;
        char *text = tc_str(&g.j, lfm2__json_get(&g.j, e, "text"), &tl), buf[2048], want[2048];
        int32_t calls = lfm2__json_get(&g.j, e, "calls"), nc = 0, c, q, ok = 1, n2 = 0;
        lfm2_tool_call tc[16];
        lfm2_error err;
        lfm2_result r = lfm2_tool_calls_parse(text, tl, tc, 16, &nc, buf, sizeof buf, &need, &off, &err);
        CHECK(r == LFM2_OK, "parse %s: %s", text, err.message);
        if (r == LFM2_OK) {
            ok = nc == g.j.tok[calls].n;
            for (q = 0, c = calls + 1; ok && q < nc; q++, c = g.j.tok[c].skip) {
                char *name = tc_str(&g.j, lfm2__json_get(&g.j, c, "name"), NULL);
                ok = strcmp(name, tc[q].name) == 0 && strlen(tc[q].name) == tc[q].name_len &&
                     tc_dumps(&g.j, lfm2__json_get(&g.j, c, "arguments"), want, sizeof want) && strcmp(want, tc[q].arguments) == 0 &&
                     strlen(tc[q].arguments) == tc[q].arguments_len;
                if (!ok) NOTE("call %d: %s %s vs %s %s", (int)q, tc[q].name, tc[q].arguments, name, want);
                free(name);
            }
            CHECK(ok, "golden parse of %s", text);
            good += ok;
            /* size query, then exact buffers */
            CHECK(lfm2_tool_calls_parse(text, tl, NULL, 0, &n2, NULL, 0, &off, NULL, &err) == LFM2_OK && n2 == nc && off == need, "size query");
            CHECK(need == 0 || lfm2_tool_calls_parse(text, tl, tc, 16, &n2, buf, need - 1, &off, NULL, &err) == LFM2_ERR_BUFFER_TOO_SMALL, "one byte short");
            CHECK(nc == 0 || lfm2_tool_calls_parse(text, tl, tc, nc - 1, &n2, buf, sizeof buf, &off, NULL, &err) == LFM2_ERR_BUFFER_TOO_SMALL, "one call short");
        }
        free(text);
    }
    arr = lfm2__json_get(&g.j, 0, "bad_tool_calls");
    for (k = 0, e = arr + 1; k < g.j.tok[arr].n; k++, e = g.j.tok[e].skip) {
        size_t tl, need = 0, off = 99999;
        char *text = tc_str(&g.j, e, &tl), buf[512];
        int32_t nc = 0;
        lfm2_tool_call tc[8];
        lfm2_error err;
        lfm2_result r;
        memset(&err, 0, sizeof err);
        r = lfm2_tool_calls_parse(text, tl, tc, 8, &nc, buf, sizeof buf, &need, &off, &err);
        CHECK(r == LFM2_ERR_INVALID_ARG && off <= tl && nc == 0, "bad call text refused: '%s'", text);
        NOTE("TABLE\ttool call text '%s'\tinvalid argument\t%s", text, err.message);
        refused += r == LFM2_ERR_INVALID_ARG;
        free(text);
    }
    { /* more of Python's literal syntax */
        static const char *const ok_in[] = {
            "[f(a='it''s', b=\"\\x41\\u00e9\\U0001F642\\101\\q\", c=(1, 2), d=(3), e=(), g=1_000, h=0x1F, i=.5, j=1e-5, k=[], l={}, m=+7, n=-0, o=1e16, p=[1,],)]",
            "[f(s='''tri\"ple''', t=u'u', u={'a': {'b': [None, True]}}, v=-1.5E+3)]" };
        static const char *const ok_out[] = {
            "{\"a\": \"its\", \"b\": \"A\xc3\xa9\xf0\x9f\x99\x82" "A\\\\q\", \"c\": [1, 2], \"d\": 3, \"e\": [], \"g\": 1000, \"h\": 31, \"i\": 0.5, \"j\": 1e-05, \"k\": [], \"l\": {}, \"m\": 7, \"n\": 0, \"o\": 1e+16, \"p\": [1]}",
            "{\"s\": \"tri\\\"ple\", \"t\": \"u\", \"u\": {\"a\": {\"b\": [null, true]}}, \"v\": -1500.0}" };
        static const char *const bad_in[] = { "[f(a=1j)]", "[f(a={1, 2})]", "[f(a=b'x')]", "[f(a=1e999)]", "[f(a={'k': 1, 'k': 2})]",
            "[f(a=[x for x in y])]", "[f(a=-True)]", "[f(a=007)]", "[f(if=1)]", "[f(a=1) # c]", "[f(a=1)", "[f(a=1),,]", "[1]",
            "[f(a='\\ud800')]", "[f(a='x\ny')]" };
        size_t i;
        for (i = 0; i < sizeof ok_in / sizeof ok_in[0]; i++) {
            char buf[1024];
            size_t need, off;
            int32_t nc;
            lfm2_tool_call tc[2];
            lfm2_error err;
            lfm2_result r = lfm2_tool_calls_parse(ok_in[i], strlen(ok_in[i]), tc, 2, &nc, buf, sizeof buf, &need, &off, &err);
            CHECK(r == LFM2_OK && nc == 1 && strcmp(tc[0].arguments, ok_out[i]) == 0, "python literal %d: %s -> %s", (int)i,
                  r == LFM2_OK ? "" : err.message, r == LFM2_OK ? tc[0].arguments : "");
        }
        for (i = 0; i < sizeof bad_in / sizeof bad_in[0]; i++) {
            char buf[1024];
            size_t need, off;
            int32_t nc;
            lfm2_tool_call tc[2];
            lfm2_error err;
            CHECK(lfm2_tool_calls_parse(bad_in[i], strlen(bad_in[i]), tc, 2, &nc, buf, sizeof buf, &need, &off, &err) == LFM2_ERR_INVALID_ARG,
                  "refused: %s", bad_in[i]);
            NOTE("TABLE\ttool call text '%s'\tinvalid argument\t%s", bad_in[i], err.message);
        }
    }
    NOTE("%d golden tool-call texts parse to the golden calls, %d bad texts refused", (int)good, (int)refused);
    CHECK(good == 7 && refused == 10, "7 + 10 goldens");
    tc_close(&g);
}

/* Duplicate dict keys are found on the decoded key, whatever its spelling (quote style, u prefix,
   escapes, implicit concatenation, line continuations, past the 64-byte comparison window);
   the refusal's offset is the repeated key's. Equal keys in different dicts, keys that differ
   only after the first window and repeated values are fine. */
/* A tool-call text that must be refused at byte `at` with a message holding `why`, by the parse
   and by its size query at the same byte; its TABLE line (one-line texts under 80 bytes). 1 if
   it is. */
static int tc_refused_at(const char *what, int i, const char *text, size_t at, const char *why) {
    char buf[2048];
    size_t need = 0, off = 99999, off2 = 99999;
    int32_t nc = 5, n2 = 0;
    lfm2_tool_call tc[2];
    lfm2_error err;
    lfm2_result r;
    int ok;
    memset(&err, 0, sizeof err);
    r = lfm2_tool_calls_parse(text, strlen(text), tc, 2, &nc, buf, sizeof buf, &need, &off, &err);
    ok = r == LFM2_ERR_INVALID_ARG && nc == 0 && off == at && strstr(err.message, why) != NULL;
    CHECK(ok, "%s %d refused at byte %llu for '%s' (got %s at %llu: %s)", what, i, (unsigned long long)at, why, lfm2_result_string(r),
          (unsigned long long)off, err.message);
    CHECK(lfm2_tool_calls_parse(text, strlen(text), NULL, 0, &n2, NULL, 0, &need, &off2, NULL) == LFM2_ERR_INVALID_ARG && off2 == off,
          "%s %d: the size query refuses it at the same byte", what, i);
    if (!strchr(text, '\n') && strlen(text) < 80) NOTE("TABLE\ttool call text '%s'\tinvalid argument\t%s", text, err.message);
    return ok;
}
static void test_chat_tool_call_dict_keys(void) {
    char long_a[512], long_b[512], long_c[512], long_d[512], x100[101];
    const char *dup[12], *ok[8];
    size_t dup_at[12], i, n_dup = 0, n_ok = 0;
    int refused = 0, parsed = 0;
    memset(x100, 'x', 100);
    x100[100] = 0;
    /* the same 150-byte key, the second time with an escape at byte 130 and split in two literals */
    snprintf(long_a, sizeof long_a, "[f(a={'%s%s': 1, \"%s\" '%s\\x7a%s': 2})]", x100, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyzyyyyyyyyyyyyyyyyyyy",
             x100, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyy", "yyyyyyyyyyyyyyyyyyy");
    /* keys of the same length that differ only in their last byte (the fourth window) */
    snprintf(long_b, sizeof long_b, "[f(a={'%s%sa': 1, '%s%sb': 2})]", x100, x100, x100, x100);
    /* a key that is a prefix of the other */
    snprintf(long_c, sizeof long_c, "[f(a={'%s': 1, '%sx': 2})]", x100, x100);
    /* a key longer than a window whose JSON spelling has escapes ("\"" and "\\n") */
    snprintf(long_d, sizeof long_d, "[f(a={'%s\"\\n': 1, \"%s\\\"\\n\": 2})]", x100, x100);
#define TC_DUP(text, second) do { dup[n_dup] = (text); dup_at[n_dup] = (size_t)(strstr((text), (second)) - (text)); n_dup++; } while (0)
    TC_DUP("[f(a={'a': 1, \"a\": 2})]", "\"a\": 2");
    TC_DUP("[f(a={'a': 1, u'a': 2})]", "u'a'");
    TC_DUP("[f(a={\"a\": 1, '\\x61': 2})]", "'\\x61'");
    TC_DUP("[f(a={'\\u00e9': 1, '\xc3\xa9': 2})]", "'\xc3\xa9'");
    TC_DUP("[f(a={'ab': 1, 'a' \"b\": 2})]", "'a' \"b\"");
    TC_DUP("[f(a={'\\\\q': 1, '\\q': 2})]", "'\\q'"); /* an unknown escape keeps its backslash */
    TC_DUP("[f(a={'ab': 1, 'a\\\nb': 2})]", "'a\\\nb'"); /* a line continuation inside the string */
    TC_DUP("[f(a={'''k''': 1, 'x': 0, \"k\": 2})]", "\"k\"");
    TC_DUP("[f(a=[{'b': {'c': 1, \"\\143\": 2}}])]", "\"\\143\""); /* octal, in a nested dict */
    TC_DUP(long_a, "\"xxx");
    TC_DUP(long_d, "\"xxx");
#undef TC_DUP
    ok[n_ok++] = "[f(a={'a': {'a': 1}}, b=[{'a': 1}, {'a': 2}])]";
    ok[n_ok++] = "[f(a={'a': 'a', 'b': 'a', 'A': 1, '\\x62b': 2})]";
    ok[n_ok++] = "[f(a={'a' 'b': 1, 'a': 2, 'b': 3})]";
    ok[n_ok++] = "[f(a={'\\n': 1, 'n': 2, '\\\\n': 3})]";
    ok[n_ok++] = long_b;
    ok[n_ok++] = long_c;
    for (i = 0; i < n_dup; i++) refused += tc_refused_at("duplicate key", (int)i, dup[i], dup_at[i], "a duplicate dict key");
    for (i = 0; i < n_ok; i++) {
        char buf[2048], again[2048];
        size_t need = 0, off = 0;
        int32_t nc = 0;
        lfm2_tool_call tc[2];
        lfm2_error err;
        lfm2_result r;
        memset(&err, 0, sizeof err);
        r = lfm2_tool_calls_parse(ok[i], strlen(ok[i]), tc, 2, &nc, buf, sizeof buf, &need, &off, &err);
        CHECK(r == LFM2_OK && nc == 1, "distinct keys %d parse: %s", (int)i, r == LFM2_OK ? "" : err.message);
        if (r == LFM2_OK && nc == 1) { /* no key twice in the output: the json.dumps reprinter (which keeps a repeated key's last value) leaves it unchanged */
            lfm2__cw w;
            memset(&w, 0, sizeof w);
            w.buf = again;
            w.cap = sizeof again;
            lfm2__cw_tojson(&w, tc[0].arguments, "arguments");
            CHECK(w.rc == LFM2_OK && w.n == tc[0].arguments_len && memcmp(again, tc[0].arguments, w.n) == 0, "distinct keys %d: reprints unchanged: %s",
                  (int)i, tc[0].arguments);
            parsed += w.rc == LFM2_OK && w.n == tc[0].arguments_len;
        }
    }
    { /* what the distinct keys become */
        char buf[512];
        size_t need = 0, off = 0;
        int32_t nc = 0;
        lfm2_tool_call tc[2];
        const char *t = "[f(a={'a' 'b': 1, 'a': 2, '\\x62': 3, u'\\n': 4, 'n': 5})]";
        CHECK(lfm2_tool_calls_parse(t, strlen(t), tc, 2, &nc, buf, sizeof buf, &need, &off, NULL) == LFM2_OK && nc == 1 &&
                  strcmp(tc[0].arguments, "{\"a\": {\"ab\": 1, \"a\": 2, \"b\": 3, \"\\n\": 4, \"n\": 5}}") == 0,
              "distinct keys: %s", nc == 1 ? tc[0].arguments : "(refused)");
    }
    { /* repeated argument names (Python: "keyword argument repeated") are refused at the second one */
        const char *t = "[f(a={'a': 1}, b=2, a=3)]";
        size_t need = 0, off = 0;
        int32_t nc = 0;
        char buf[256];
        lfm2_tool_call tc[2];
        CHECK(lfm2_tool_calls_parse(t, strlen(t), tc, 2, &nc, buf, sizeof buf, &need, &off, NULL) == LFM2_ERR_INVALID_ARG && off == 20,
              "repeated argument name refused at byte 20 (got %llu)", (unsigned long long)off);
    }
    NOTE("%d of %d duplicate-key spellings refused at the repeated key, %d of %d distinct-key texts parse to duplicate-free JSON",
         refused, (int)n_dup, parsed, (int)n_ok);
    CHECK(refused == (int)n_dup && parsed == (int)n_ok, "all %d duplicate and %d distinct cases", (int)n_dup, (int)n_ok);
}

/* Non-ASCII names (call names, each dotted part, argument names) are Python's identifiers
   that NFKC leaves as they are, printed as written; the others are refused at the character,
   with the reason: Python refuses it, or would normalize the name to another spelling (the
   table of tools/gen_ident.py, checked against Python 3.11's unicodedata for every code point
   when it was made). */
static void test_chat_tool_call_names(void) {
    static const char *const ok_in[] = {
        "[f(gr\xc3\xb6\xc3\x9f\x65=1)]",                       /* größe */
        "[f(\xe5\x90\x8d\xe5\x89\x8d=\"x\")]",                  /* 名前 */
        "[f(caf\xc3\xa9=1, cafe=2)]",                          /* café, precomposed (NFKC keeps it) */
        "[f(_x1=1)]",
        "[f(\xe0\xa4\xa8\xe0\xa4\xbe\xe0\xa4\xae=1)]",          /* नाम: the vowel sign U+093E has combining class 0 */
        "[f(\xe0\xae\x95\xe0\xae\xbe=1, \xe0\xae\x95\xe0\xaf\x8a=2)]", /* கா, and கொ precomposed (U+0BCA) */
        "[f(\xed\x95\x9c=1, x\xd9\xa1=2)]",                     /* 한 (a syllable), x١ (a digit after the first character) */
        "[ns.gr\xc3\xb6\xc3\x9f\x65(a=1)]" };
    static const char *const ok_name[] = { "f", "f", "f", "f", "f", "f", "f", "ns.gr\xc3\xb6\xc3\x9f\x65" };
    static const char *const ok_args[] = {
        "{\"gr\xc3\xb6\xc3\x9f\x65\": 1}", "{\"\xe5\x90\x8d\xe5\x89\x8d\": \"x\"}", "{\"caf\xc3\xa9\": 1, \"cafe\": 2}", "{\"_x1\": 1}",
        "{\"\xe0\xa4\xa8\xe0\xa4\xbe\xe0\xa4\xae\": 1}", "{\"\xe0\xae\x95\xe0\xae\xbe\": 1, \"\xe0\xae\x95\xe0\xaf\x8a\": 2}",
        "{\"\xed\x95\x9c\": 1, \"x\xd9\xa1\": 2}", "{\"a\": 1}" };
    static const struct { const char *text; size_t at; const char *why; } bad[] = {
        { "[f(a\xe2\x82\xac=1)]", 4, "normalize (NFKC) or refuse" },        /* a€: not XID_Continue (Python: invalid character) */
        { "[f(\xef\xac\x81=1)]", 3, "normalize (NFKC) or refuse" },         /* ﬁ: Python reads f(fi=1) */
        { "[f(a=1, \xef\xac\x81=2)]", 8, "normalize (NFKC) or refuse" },
        { "[f(e\xcc\x81=1)]", 4, "normalize (NFKC) or refuse" },            /* e + combining acute: Python reads é */
        { "[f(a\xc2\xb2=1)]", 4, "normalize (NFKC) or refuse" },            /* a²: Python reads a2 */
        { "[f(\xef\xbd\x86=1)]", 3, "normalize (NFKC) or refuse" },         /* full-width ｆ: Python reads f */
        { "[f(a\xc2\xa0=1)]", 4, "normalize (NFKC) or refuse" },            /* a no-break space (Python: invalid character) */
        { "[f(\xd9\xa1=1)]", 3, "not XID_Start" },                         /* ١ first (Python: invalid character) */
        { "[f(\xe0\xae\x95\xe0\xaf\x86\xe0\xae\xbe=1)]", 9, "composes" },  /* க + ெ + ா: Python reads கொ (U+0BCA) */
        { "[f(\xe1\x84\x92\xe1\x85\xa1=1)]", 6, "composes" },              /* Hangul jamo L + V: Python reads 하 */
        { "[f\xe2\x82\xac(a=1)]", 2, "normalize (NFKC) or refuse" },        /* in the call's name */
        { "[ns.\xef\xac\x81(a=1)]", 4, "normalize (NFKC) or refuse" },      /* in a dotted part */
        { "[f(a\xff=1)]", 4, "invalid UTF-8" },
        { "[f(caf\xc3\xa9=1, caf\xc3\xa9=2)]", 12, "a repeated argument name" } };
    size_t i;
    int good = 0, refused = 0;
    for (i = 0; i < sizeof ok_in / sizeof ok_in[0]; i++) {
        char buf[512];
        size_t need = 0, off = 0;
        int32_t nc = 0;
        lfm2_tool_call tc[2];
        lfm2_error err;
        lfm2_result r;
        memset(&err, 0, sizeof err);
        r = lfm2_tool_calls_parse(ok_in[i], strlen(ok_in[i]), tc, 2, &nc, buf, sizeof buf, &need, &off, &err);
        CHECK(r == LFM2_OK && nc == 1 && strcmp(tc[0].name, ok_name[i]) == 0 && strcmp(tc[0].arguments, ok_args[i]) == 0,
              "non-ASCII name %d: %s -> %s %s", (int)i, ok_in[i], r == LFM2_OK ? tc[0].name : err.message, r == LFM2_OK ? tc[0].arguments : "");
        good += r == LFM2_OK && nc == 1 && strcmp(tc[0].arguments, ok_args[i]) == 0;
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) refused += tc_refused_at("name", (int)i, bad[i].text, bad[i].at, bad[i].why);
    NOTE("%d of %d non-ASCII names parse as written, %d of %d refused at the expected byte for the expected reason", good,
         (int)(sizeof ok_in / sizeof ok_in[0]), refused, (int)(sizeof bad / sizeof bad[0]));
    CHECK(good == (int)(sizeof ok_in / sizeof ok_in[0]) && refused == (int)(sizeof bad / sizeof bad[0]), "all name cases");
}

/* ---- splitter ---- */
typedef struct tc_sink { char ch[4][4096]; size_t n[4]; char all[8192]; size_t na; int seq[512]; int nseq; int last; int bad; } tc_sink;
static void tc_emit(void *u, int channel, const char *text, size_t len) {
    tc_sink *s = (tc_sink *)u;
    if (channel < 0 || channel > 3 || len == 0 || s->n[channel] + len > sizeof s->ch[0] || s->na + len > sizeof s->all) { s->bad = 1; return; }
    memcpy(s->ch[channel] + s->n[channel], text, len);
    s->n[channel] += len;
    memcpy(s->all + s->na, text, len);
    s->na += len;
    if (channel != s->last && s->nseq < 512) s->seq[s->nseq++] = channel;
    s->last = channel;
}
static int tc_sink_eq(const tc_sink *a, const tc_sink *b) {
    int k;
    if (a->bad || b->bad || a->na != b->na || memcmp(a->all, b->all, a->na) != 0 || a->nseq != b->nseq || memcmp(a->seq, b->seq, sizeof(int) * (size_t)a->nseq) != 0) return 0;
    for (k = 0; k < 4; k++) if (a->n[k] != b->n[k] || memcmp(a->ch[k], b->ch[k], a->n[k]) != 0) return 0;
    return 1;
}
static void tc_split(const char *t, size_t n, size_t cut, int bytewise, int in_reasoning, tc_sink *s) {
    lfm2_chat_splitter sp;
    size_t i;
    memset(s, 0, sizeof *s);
    s->last = -1;
    lfm2_chat_splitter_init(&sp, in_reasoning);
    if (bytewise) for (i = 0; i < n; i++) lfm2_chat_splitter_push(&sp, t + i, 1, tc_emit, s);
    else { lfm2_chat_splitter_push(&sp, t, cut, tc_emit, s); lfm2_chat_splitter_push(&sp, t + cut, n - cut, tc_emit, s); }
    lfm2_chat_splitter_flush(&sp, tc_emit, s);
}

static void test_chat_splitter(void) {
    static const char *const texts[] = {
        "<think>The user wants the weather.</think>\n\nLet me check.<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>",
        "plain answer with < and <th and </think and <|tool_call_end|> in content",
        "<think>a < b, <think> nested, </thin</think>answer<|tool_call_start|>[f(a='<think>')]<|tool_call_end|>tail<",
        "<|tool_call_start|>[f(x=1)]<|tool_call_end|><|tool_call_start|>[g()]<|tool_call_end|>done <think",
        "", "<", "<<<<think>>>>", "\xe6\x9d\xb1\xe4\xba\xac <think>\xf0\x9f\x99\x82</think>\xc3\xa9" };
    tc_golden g;
    size_t k, c;
    int cases = 0, bad = 0;
    tc_sink ref, got;
    char (*gtexts)[1024] = (char (*)[1024])calloc(64, 1024);
    size_t ng = 0;
    /* the golden renders' texts and the golden tool-call texts between markers, too */
    if (tc_open(&g)) {
        int32_t arr = lfm2__json_get(&g.j, 0, "renders"), e, i;
        for (i = 0, e = arr + 1; i < g.j.tok[arr].n && ng < 48; i++, e = g.j.tok[e].skip) {
            int32_t ti = lfm2__json_get(&g.j, e, "text");
            size_t tl;
            char *s;
            if (ti < 0) continue;
            s = tc_str(&g.j, ti, &tl);
            if (tl < 1000) { memcpy(gtexts[ng], s, tl + 1); ng++; }
            free(s);
        }
        arr = lfm2__json_get(&g.j, 0, "tool_calls");
        for (i = 0, e = arr + 1; i < g.j.tok[arr].n && ng < 64; i++, e = g.j.tok[e].skip) {
            char *s = tc_str(&g.j, lfm2__json_get(&g.j, e, "text"), NULL);
            snprintf(gtexts[ng++], 1024, "<think>ok</think>x<|tool_call_start|>%s<|tool_call_end|>", s);
            free(s);
        }
        tc_close(&g);
    }
    for (k = 0; k < sizeof texts / sizeof texts[0] + ng; k++) {
        const char *t = k < sizeof texts / sizeof texts[0] ? texts[k] : gtexts[k - sizeof texts / sizeof texts[0]];
        size_t n = strlen(t);
        int r;
        for (r = 0; r < 2; r++) {
            tc_split(t, n, n, 0, r, &ref);
            CHECK(!ref.bad && ref.na == n && memcmp(ref.all, t, n) == 0, "text %d: every byte once, in order", (int)k);
            tc_split(t, n, 0, 1, r, &got);
            if (!tc_sink_eq(&ref, &got)) { bad++; CHECK(0, "text %d: byte-by-byte feeding differs", (int)k); }
            for (c = 0; c <= n; c++) {
                tc_split(t, n, c, 0, r, &got);
                cases++;
                if (!tc_sink_eq(&ref, &got)) { bad++; CHECK(0, "text %d cut at %d differs", (int)k, (int)c); break; }
            }
        }
    }
    /* the channels of the first text */
    tc_split(texts[0], strlen(texts[0]), 5, 0, 0, &ref);
    CHECK(ref.n[1] == 27 && memcmp(ref.ch[1], "The user wants the weather.", 27) == 0 && ref.n[3] == 7 + 8 + 19 + 17, "reasoning / markers");
    CHECK(ref.n[2] == strlen("[get_weather(city=\"Paris\")]") && ref.n[0] == strlen("\n\nLet me check."), "tool call / content channels");
    tc_split("thinking</think>answer", 22, 3, 0, 1, &ref);
    CHECK(ref.n[1] == 8 && ref.n[0] == 6 && ref.n[3] == 8, "a prompt that opened <think>: reasoning first");
    NOTE("%d texts, %d two-piece cuts + byte-by-byte, %d differ", (int)(sizeof texts / sizeof texts[0] + ng), cases, bad);
    free(gtexts);
}

/* The formatting, parsing and splitting code allocates nothing: besides the count above, the
   >>chat section calls malloc only in its two file readers (template detection from a folder). */
static void test_chat_no_alloc_source(void) {
    size_t n;
    char path[512], *src, *a, *b, *p;
    int calls = 0, in_readers = 0;
    snprintf(path, sizeof path, "%s/../../lfm2.h", t_data_dir());
    src = t_read_file(path, &n);
    if (!src) T_SKIP("lfm2.h not found at %s", path);
    a = strstr(src, "/* >>chat ----------------------------------------------------------------------------------- */\n/* The chat templates");
    b = a ? strstr(a, "/* >>sampler ---") : NULL;
    CHECK(a && b, ">>chat section found");
    if (a && b) {
        char *r1 = strstr(a, "static int lfm2__chat_read("), *r2 = strstr(a, "LFM2_API lfm2_result lfm2_chat_template_load_dir(");
        for (p = a; p && p < b; p++) {
            if (strncmp(p, "malloc(", 7) == 0 || strncmp(p, "calloc(", 7) == 0 || strncmp(p, "realloc(", 8) == 0) {
                calls++;
                if (r1 && r2 && p > r1 && p < r2) in_readers++;
            }
        }
    }
    CHECK(calls == in_readers && calls > 0, "%d allocation calls in >>chat, %d of them in the file readers", calls, in_readers);
    NOTE(">>chat: %d malloc calls, all in lfm2__chat_read / lfm2__chat_template_from_config", calls);
    free(src);
}

static const t_case chat_tests[] = {
    {"chat/golden-renders", test_chat_golden_renders, T_EMU},
    {"chat/detect", test_chat_detect, 0},
    {"chat/tokenize", test_chat_tokenize, T_EMU},
    {"chat/tool-calls", test_chat_tool_calls, T_EMU},
    {"chat/tool-call-dict-keys", test_chat_tool_call_dict_keys, T_EMU},
    {"chat/tool-call-names", test_chat_tool_call_names, T_EMU},
    {"chat/splitter", test_chat_splitter, T_EMU},
    {"chat/no-alloc-source", test_chat_no_alloc_source, 0},
    {NULL, NULL, 0}
};
