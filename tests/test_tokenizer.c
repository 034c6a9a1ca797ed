/* tests/test_tokenizer.c - tokenizer and chat template: the transformers goldens (30 strings, two
   chats, a 100 KB document), real LFM2 pre-tokenization vectors, round trips of random bytes,
   streaming decode, malformed tokenizer.json files, speed. Helpers are prefixed tt_. */
#include <time.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static double tt_now(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* a loaded JSON file: text + token array (lfm2.h's own reader) */
typedef struct tt_json {
    char *text;
    size_t size;
    lfm2__json j;
} tt_json;

static int tt_json_open(tt_json *f, const char *rel) {
    char path[512];
    lfm2_error e;
    snprintf(path, sizeof path, "%s/%s", t_data_dir(), rel);
    memset(f, 0, sizeof *f);
    f->text = t_read_file(path, &f->size);
    if (!f->text) { printf("    cannot read %s\n", path); return 0; }
    if (lfm2__json_parse(&f->j, f->text, f->size, NULL, &e, LFM2_ERR_BAD_TOKENIZER, path) != LFM2_OK) {
        printf("    %s\n", e.message);
        free(f->text);
        f->text = NULL;
        return 0;
    }
    return 1;
}
static void tt_json_close(tt_json *f) {
    if (!f->text) return;
    lfm2__json_free(&f->j, NULL);
    free(f->text);
    f->text = NULL;
}
/* malloc'd unescaped copy of string token i (NUL-terminated), length in *n */
static char *tt_str(const lfm2__json *j, int32_t i, size_t *n) {
    char *s;
    int64_t l;
    if (i < 0 || j->tok[i].type != LFM2__J_STR) return NULL;
    s = (char *)malloc(j->tok[i].end - j->tok[i].start + 1);
    l = lfm2__json_str(j, i, s);
    s[l] = 0;
    if (n) *n = (size_t)l;
    return s;
}
/* int array token -> malloc'd int32 array */
static int32_t *tt_ids(const lfm2__json *j, int32_t arr, int32_t *n) {
    int32_t *o, k, c;
    *n = 0;
    if (arr < 0 || j->tok[arr].type != LFM2__J_ARR) return NULL;
    o = (int32_t *)malloc(sizeof(int32_t) * (size_t)(j->tok[arr].n + 1));
    for (k = 0, c = arr + 1; k < j->tok[arr].n; k++, c = j->tok[c].skip) {
        int64_t v = -1;
        lfm2__json_int(j, c, INT32_MIN, INT32_MAX, &v);
        o[k] = (int32_t)v;
    }
    *n = j->tok[arr].n;
    return o;
}

/* loads DIR/tokenizer.json (+ tokenizer_config.json if present) with lfm2__tokenizer_load */
static struct lfm2__tokenizer *tt_load_dir(const char *dir, int32_t model_vocab, double *ms) {
    char path[512];
    char *tj, *cj;
    size_t tn = 0, cn = 0;
    lfm2_error e;
    struct lfm2__tokenizer *t = NULL;
    double t0;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    tj = t_read_file(path, &tn);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    cj = t_read_file(path, &cn);
    if (!tj) { printf("    cannot read %s/tokenizer.json\n", dir); free(cj); return NULL; }
    t0 = tt_now();
    if (lfm2__tokenizer_load(tj, tn, cj, cn, model_vocab, NULL, &e, &t) != LFM2_OK) printf("    load %s: %s\n", dir, e.message);
    if (ms) *ms = (tt_now() - t0) * 1e3;
    free(tj);
    free(cj);
    return t;
}
static struct lfm2__tokenizer *tt_load_like(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tokenizer/lfm2-like", t_data_dir());
    return tt_load_dir(dir, 65536, NULL);
}

/* encodes text; returns malloc'd ids (cap len + 8) */
static int32_t *tt_encode(const struct lfm2__tokenizer *t, const char *s, size_t n, int flags, int32_t *n_out) {
    int32_t cap = (int32_t)n + 8;
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
    if (lfm2__tokenize_impl(t, s, n, flags, ids, cap, n_out) != LFM2_OK) *n_out = -1;
    return ids;
}
static int tt_ids_eq(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
}
/* first differing index, for messages */
static int32_t tt_first_diff(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    int32_t k;
    for (k = 0; k < na && k < nb; k++) if (a[k] != b[k]) return k;
    return k;
}
/* byte-level spelling of raw bytes (what pre_tokenize_str shows) */
static size_t tt_map(const char *s, size_t n, char *out) {
    size_t i, k = 0;
    for (i = 0; i < n; i++) lfm2__utf8_put(lfm2__byte_to_cp((unsigned char)s[i]), out, &k);
    return k;
}
/* compares the pre-tokens of text (whole text, no added-token matching) with JSON array arr */
static int tt_pretokens_match(const char *text, size_t n, const lfm2__json *j, int32_t arr, int32_t *n_got) {
    size_t i = 0;
    int32_t k = 0, c = arr + 1, ok = 1;
    char *buf = (char *)malloc(2 * n + 1);
    while (i < n) {
        size_t e = lfm2__split_next((const unsigned char *)text, i, n), m = tt_map(text + i, e - i, buf);
        if (k >= j->tok[arr].n || !lfm2__json_str_eq(j, c, buf, m)) ok = 0;
        if (k < j->tok[arr].n) c = j->tok[c].skip;
        k++;
        i = e;
    }
    free(buf);
    *n_got = k;
    return ok && k == j->tok[arr].n;
}

/* ---- 1. the 30 golden strings and the two chats --------------------------------------------- */

static void test_golden30(void) {
    struct lfm2__tokenizer *t = tt_load_like();
    tt_json g;
    int32_t cases, k, c, bad_ids = 0, bad_bos = 0, bad_pieces = 0, bad_pre = 0, bad_dec = 0, n_cases = 0, chats, n_chat = 0;
    if (!t) { CHECK(0, "lfm2-like tokenizer did not load"); return; }
    if (!tt_json_open(&g, "tokenizer/tokenizer_golden.json")) { CHECK(0, "golden missing"); lfm2__tokenizer_free(t, NULL); return; }
    CHECK(t->n_tok == 64400, "tokenizer size %d, expected 64400", (int)t->n_tok);
    CHECK(t->bos_id == 1 && t->eos_id == 7 && t->n_prefix == 1 && t->prefix[0] == 1, "bos %d eos %d prefix %d", (int)t->bos_id, (int)t->eos_id, (int)t->n_prefix);
    cases = lfm2__json_get(&g.j, 0, "cases");
    for (k = 0, c = cases + 1; k < g.j.tok[cases].n; k++, c = g.j.tok[c].skip, n_cases++) {
        size_t n, dn = 0;
        char *text = tt_str(&g.j, lfm2__json_get(&g.j, c, "text"), &n);
        int32_t ne, nb, ng, ngb, npre, q, e2;
        int32_t *exp = tt_ids(&g.j, lfm2__json_get(&g.j, c, "ids"), &ne);
        int32_t *expb = tt_ids(&g.j, lfm2__json_get(&g.j, c, "ids_with_special"), &nb);
        int32_t *got = tt_encode(t, text, n, LFM2_TOKENIZE_PARSE_SPECIAL, &ng);
        int32_t *gotb = tt_encode(t, text, n, LFM2_TOKENIZE_PARSE_SPECIAL | LFM2_TOKENIZE_ADD_BOS, &ngb);
        int32_t pieces = lfm2__json_get(&g.j, c, "pieces");
        char *dec = (char *)malloc(n * 2 + 64), *exp_dec, *exp_def;
        size_t nd, ndd;
        if (!tt_ids_eq(got, ng, exp, ne)) {
            bad_ids++;
            CHECK(0, "case %d ids differ at %d (got %d ids, want %d)", (int)k, (int)tt_first_diff(got, ng, exp, ne), (int)ng, (int)ne);
        }
        if (!tt_ids_eq(gotb, ngb, expb, nb)) { bad_bos++; CHECK(0, "case %d ids_with_special differ", (int)k); }
        for (q = 0, e2 = pieces + 1; q < ng && q < g.j.tok[pieces].n; q++, e2 = g.j.tok[e2].skip) {
            size_t pl;
            const char *p = lfm2__tok_str(t, got[q], &pl);
            if (!p || !lfm2__json_str_eq(&g.j, e2, p, pl)) { bad_pieces++; CHECK(0, "case %d piece %d differs", (int)k, (int)q); break; }
        }
        if (!tt_pretokens_match(text, n, &g.j, lfm2__json_get(&g.j, c, "pretokens"), &npre)) {
            bad_pre++;
            CHECK(0, "case %d pre-tokens differ (%d pieces)", (int)k, (int)npre);
        }
        exp_dec = tt_str(&g.j, lfm2__json_get(&g.j, c, "decoded"), &nd);
        exp_def = tt_str(&g.j, lfm2__json_get(&g.j, c, "decoded_default"), &ndd);
        /* decoded and decoded_default: decode(ids) with special tokens kept (transformers'
           default; its clean_up_tokenization_spaces has no effect in v5) */
        if (lfm2__detokenize_impl(t, exp, ne, 0, dec, n * 2 + 64, &dn) != LFM2_OK || dn != nd || memcmp(dec, exp_dec, nd) != 0 ||
            dn != ndd || memcmp(dec, exp_def, ndd) != 0) {
            bad_dec++;
            CHECK(0, "case %d decoded differs", (int)k);
        }
        /* the BOS decodes to its text, and SKIP_SPECIAL removes it again */
        lfm2__detokenize_impl(t, expb, nb, LFM2_DETOKENIZE_SKIP_SPECIAL, dec, n * 2 + 64, &dn);
        if (!strstr(text, "<|")) CHECK(dn == n && memcmp(dec, text, n) == 0, "case %d: skip-special decode of ids_with_special", (int)k);
        free(text); free(exp); free(expb); free(got); free(gotb); free(dec); free(exp_dec); free(exp_def);
    }
    CHECK(n_cases == 30, "%d cases", (int)n_cases);
    chats = lfm2__json_get(&g.j, 0, "chat");
    for (k = 0, c = chats + 1; k < g.j.tok[chats].n; k++, c = g.j.tok[c].skip, n_chat++) {
        int32_t msgs = lfm2__json_get(&g.j, c, "messages"), q, e2, ne, ng;
        lfm2_chat_message mv[8];
        char *strs[16], out[4096];
        size_t n, ns = 0, tl;
        char *text = tt_str(&g.j, lfm2__json_get(&g.j, c, "text"), &tl);
        int32_t *exp = tt_ids(&g.j, lfm2__json_get(&g.j, c, "ids"), &ne), *got;
        for (q = 0, e2 = msgs + 1; q < g.j.tok[msgs].n && q < 8; q++, e2 = g.j.tok[e2].skip) {
            mv[q].role = strs[ns++] = tt_str(&g.j, lfm2__json_get(&g.j, e2, "role"), NULL);
            mv[q].content = strs[ns++] = tt_str(&g.j, lfm2__json_get(&g.j, e2, "content"), NULL);
        }
        CHECK(lfm2_chat_format(mv, q, NULL, 0, 1, out, sizeof out, &n) == LFM2_OK && n == tl && memcmp(out, text, n) == 0,
              "chat %d text differs", (int)k);
        got = tt_encode(t, out, n, LFM2_TOKENIZE_PARSE_SPECIAL, &ng);
        CHECK(tt_ids_eq(got, ng, exp, ne), "chat %d ids differ at %d", (int)k, (int)tt_first_diff(got, ng, exp, ne));
        while (ns) free(strs[--ns]);
        free(text); free(exp); free(got);
    }
    NOTE("%d cases: %d ids, %d ids_with_special, %d pieces, %d pretokens, %d decoded mismatches; %d chats",
         (int)n_cases, (int)bad_ids, (int)bad_bos, (int)bad_pieces, (int)bad_pre, (int)bad_dec, (int)n_chat);
    tt_json_close(&g);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- 2. the 100 KB document, and speed ------------------------------------------------------ */

static void test_doc(void) {
    char dir[512], path[512];
    struct lfm2__tokenizer *t;
    tt_json ids;
    char *doc;
    size_t n;
    int32_t ne, ng = 0, *exp, *got, reps = 0;
    double ms_load = 0, t0, secs;
    snprintf(dir, sizeof dir, "%s/tokenizer/lfm2-like", t_data_dir());
    t = tt_load_dir(dir, 65536, &ms_load);
    snprintf(path, sizeof path, "%s/tokenizer/doc.txt", t_data_dir());
    doc = t_read_file(path, &n);
    if (!t || !doc || !tt_json_open(&ids, "tokenizer/doc.ids.json")) { CHECK(0, "doc data missing"); free(doc); lfm2__tokenizer_free(t, NULL); return; }
    exp = tt_ids(&ids.j, lfm2__json_get(&ids.j, 0, "ids"), &ne);
    got = tt_encode(t, doc, n, LFM2_TOKENIZE_PARSE_SPECIAL, &ng);
    CHECK(tt_ids_eq(got, ng, exp, ne), "doc: %d ids, want %d, first difference at %d", (int)ng, (int)ne, (int)tt_first_diff(got, ng, exp, ne));
    NOTE("doc.txt: %zu bytes -> %d ids (want %d)", n, (int)ng, (int)ne);
    t0 = tt_now();
    do {
        lfm2__tokenize_impl(t, doc, n, LFM2_TOKENIZE_PARSE_SPECIAL, got, (int32_t)n + 8, &ng);
        reps++;
        secs = tt_now() - t0;
    } while (secs < 0.3);
    NOTE("load of the 64400-id tokenizer.json: %.1f ms; encode: %.1f MB/s (one core)", ms_load, (double)n * reps / secs / 1e6);
    free(exp); free(got); free(doc);
    tt_json_close(&ids);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- 3. real LFM2 pre-tokens, and the demo model's tokenizer ------------------------------- */

static void test_real_pretokens(void) {
    tt_json v;
    int32_t k, c, bad = 0;
    if (!tt_json_open(&v, "reference/vectors/webtyp_tokenizer_lfm2_ordinary.json")) { CHECK(0, "vectors missing"); return; }
    for (k = 0, c = 1; k < v.j.tok[0].n; k++, c = v.j.tok[c].skip) {
        size_t n;
        int32_t np;
        char *text = tt_str(&v.j, lfm2__json_get(&v.j, c, "text"), &n);
        if (!tt_pretokens_match(text, n, &v.j, lfm2__json_get(&v.j, c, "pretokens"), &np)) { bad++; CHECK(0, "vector %d: pre-tokens differ", (int)k); }
        free(text);
    }
    CHECK(v.j.tok[0].n == 26, "%d vectors", (int)v.j.tok[0].n);
    NOTE("%d real vectors, %d pre-token mismatches", (int)v.j.tok[0].n, (int)bad);
    tt_json_close(&v);
}

static void test_demo_code(void) {
    static const char code[] = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n"
                               "class Foo(object):\n\tx = {'a': 1, \"b\": [1.5e-3, None]}  # caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\n";
    struct lfm2__tokenizer *t = tt_load_dir("models/demo-code-8m", 8192, NULL);
    int32_t n, *ids;
    char buf[sizeof code * 2];
    size_t dn = 0;
    if (!t) { CHECK(0, "models/demo-code-8m tokenizer did not load"); return; }
    CHECK(t->n_tok == 8192, "size %d", (int)t->n_tok);
    ids = tt_encode(t, code, sizeof code - 1, LFM2_TOKENIZE_ADD_BOS, &n);
    CHECK(n > 0 && ids[0] == 1, "BOS first");
    CHECK(lfm2__detokenize_impl(t, ids, n, LFM2_DETOKENIZE_SKIP_SPECIAL, buf, sizeof buf, &dn) == LFM2_OK && dn == sizeof code - 1 &&
          memcmp(buf, code, dn) == 0, "demo-code-8m round trip");
    NOTE("demo-code-8m: %d bytes of Python -> %d ids, round trip exact", (int)(sizeof code - 1), (int)n);
    free(ids);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- 4. round trips of random byte strings ---------------------------------------------------- */

static uint64_t tt_rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void test_roundtrip(void) {
    static const char *const frags[] = {"<|im_start|>", "<|im_end|>", "<|startoftext|>", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL",
                                        "a", "Hello", " world", "123456", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80",
                                        "\xc2\xa0", "\xe3\x80\x80", "!!", "<|", "|>", "\xc5\xbf", "_x"};
    struct lfm2__tokenizer *t = tt_load_like();
    uint64_t seed = 42;
    int it, fails = 0, flags;
    int32_t total_ids = 0;
    char text[700], back[800];
    int32_t ids[720];
    if (!t) { CHECK(0, "tokenizer did not load"); return; }
    for (it = 0; it < 4000; it++) {
        size_t n = 0, dn = 0;
        int32_t ni = 0;
        int mode = it % 4;
        size_t len = (size_t)(tt_rng(&seed) % 600);
        while (n < len) {
            uint64_t r = tt_rng(&seed);
            if (mode == 0) text[n++] = (char)(r & 0xff);                              /* arbitrary bytes */
            else if (mode == 1) text[n++] = (char)(0x80 | (r & 0x7f));                /* high bytes only */
            else {                                                                    /* fragments */
                const char *f = frags[r % (sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                if (n + fl > sizeof text) break;
                memcpy(text + n, f, fl);
                n += fl;
                if (mode == 3 && (r >> 32) % 7 == 0 && n > 0) text[n - 1] = (char)(r >> 40); /* corrupt */
            }
        }
        for (flags = 0; flags < 4; flags++) {
            if (lfm2__tokenize_impl(t, text, n, flags, ids, (int32_t)n + 2, &ni) != LFM2_OK) { fails++; continue; }
            total_ids += ni;
            /* special tokens decode to their text, so the bytes match once the added BOS is dropped */
            if (flags & LFM2_TOKENIZE_ADD_BOS) CHECK(ni > 0 && ids[0] == 1, "BOS first");
            lfm2__detokenize_impl(t, ids + (flags & LFM2_TOKENIZE_ADD_BOS), ni - (flags & LFM2_TOKENIZE_ADD_BOS), 0, back, sizeof back, &dn);
            if (dn != n || memcmp(back, text, n) != 0) {
                if (fails < 3) CHECK(0, "round trip failed: iteration %d flags %d length %zu", it, flags, n);
                fails++;
            }
        }
    }
    CHECK(fails == 0, "%d round-trip failures", fails);
    NOTE("16000 encodes (4000 strings x 4 flag sets, up to 600 bytes, cap = len + 2): %d failures, %d ids", fails, (int)total_ids);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- streaming decode, special-token flags -------------------------------------------------- */

static void test_stream(void) {
    static const char text[] = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80\xf0\x9f\x8e\x89 ok \xff\xfe end\xe6\x97";
    struct lfm2__tokenizer *t = tt_load_like();
    lfm2_detok_stream st;
    int32_t ids[128], n, k, split = 0;
    char out[256], chunk[64];
    size_t on = 0, cn;
    if (!t) { CHECK(0, "tokenizer did not load"); return; }
    memset(&st, 0, sizeof st);
    lfm2__tokenize_impl(t, text, sizeof text - 1, 0, ids, 128, &n);
    for (k = 0; k < n; k++) {
        size_t i = 0;
        CHECK(lfm2__detok_stream_impl(t, &st, ids[k], 0, chunk, sizeof chunk, &cn) == LFM2_OK, "push");
        /* every chunk is valid UTF-8 except the bytes that can never become valid */
        while (i < cn) {
            int r = lfm2__utf8_seq((const unsigned char *)chunk + i, cn - i);
            CHECK(r != 0, "chunk %d ends inside a character", (int)k);
            i += r > 0 ? (size_t)r : 1;
        }
        if (st.n_pending) split++;
        memcpy(out + on, chunk, cn);
        on += cn;
    }
    CHECK(lfm2_detok_stream_flush(&st, chunk, sizeof chunk, &cn) == LFM2_OK && cn == 2, "flush gives the 2 trailing bytes");
    memcpy(out + on, chunk, cn);
    on += cn;
    CHECK(on == sizeof text - 1 && memcmp(out, text, on) == 0, "stream output == text");
    CHECK(split > 0, "no token ended inside a character: test text too easy");
    /* PARSE_SPECIAL off: control-token text is ordinary text */
    lfm2__tokenize_impl(t, "<|im_end|>", 10, 0, ids, 128, &n);
    CHECK(n > 1, "<|im_end|> without PARSE_SPECIAL must not be one token (got %d)", (int)n);
    lfm2__tokenize_impl(t, "<|im_end|>", 10, LFM2_TOKENIZE_PARSE_SPECIAL, ids, 128, &n);
    CHECK(n == 1 && ids[0] == 7, "<|im_end|> with PARSE_SPECIAL");
    CHECK(lfm2__tok_lookup(t, "<|im_end|>", 10) == 7 && lfm2__tok_lookup(t, "\xc4\xa0", 2) >= 0 && lfm2__tok_lookup(t, "zzzzzzzzzz", 10) < 0, "lookup");
    CHECK(lfm2__token_to_piece_impl(t, 65000, 0, chunk, sizeof chunk, &cn) == LFM2_OK && cn == 0, "id without string: 0 bytes");
    CHECK(lfm2__token_to_piece_impl(t, 65536, 0, chunk, sizeof chunk, &cn) == LFM2_ERR_INVALID_ARG, "id beyond the model");
    CHECK(lfm2__token_to_piece_impl(t, 6, 0, chunk, 3, &cn) == LFM2_ERR_BUFFER_TOO_SMALL && cn == 12, "small piece buffer");
    NOTE("%d tokens streamed, %d held back a partial character", (int)n, split);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- chat template: reference prompts and the tool-use form ------------------------------- */

static void test_chat(void) {
    tt_json v;
    int32_t k, c, bad = 0;
    char out[4096];
    size_t n;
    lfm2_chat_message mv[4];
    const char *tools[2] = {"{\"name\": \"get_weather\", \"parameters\": {}}", "{\"name\": \"f\"}"};
    static const char want_tools[] =
        "<|startoftext|><|im_start|>system\nBe brief.\nList of tools: <|tool_list_start|>[{\"name\": \"get_weather\", \"parameters\": {}}, "
        "{\"name\": \"f\"}]<|tool_list_end|><|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n"
        "<|tool_call_start|>[get_weather()]<|tool_call_end|><|im_end|>\n<|im_start|>tool\n<|tool_response_start|>sunny"
        "<|tool_response_end|><|im_end|>\n";
    static const char want_tools_nosys[] =
        "<|startoftext|><|im_start|>system\nList of tools: <|tool_list_start|>[{\"name\": \"f\"}]<|tool_list_end|><|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    if (tt_json_open(&v, "reference/vectors/webtyp_lfm_chat_template_cases.json")) {
        for (k = 0, c = 1; k < v.j.tok[0].n; k++, c = v.j.tok[c].skip) {
            int32_t msgs = lfm2__json_get(&v.j, c, "messages"), q, e2;
            char *strs[8], *prompt;
            size_t ns = 0, pl;
            for (q = 0, e2 = msgs + 1; q < v.j.tok[msgs].n && q < 4; q++, e2 = v.j.tok[e2].skip) {
                mv[q].role = strs[ns++] = tt_str(&v.j, lfm2__json_get(&v.j, e2, "role"), NULL);
                mv[q].content = strs[ns++] = tt_str(&v.j, lfm2__json_get(&v.j, e2, "content"), NULL);
            }
            prompt = tt_str(&v.j, lfm2__json_get(&v.j, c, "prompt"), &pl);
            if (lfm2_chat_format(mv, q, NULL, 0, 1, out, sizeof out, &n) != LFM2_OK || n != pl || memcmp(out, prompt, n) != 0) {
                bad++;
                CHECK(0, "chat case %d prompt differs", (int)k);
            }
            while (ns) free(strs[--ns]);
            free(prompt);
        }
        CHECK(v.j.tok[0].n == 6, "6 chat cases");
        tt_json_close(&v);
    } else CHECK(0, "chat vectors missing");
    mv[0].role = "system"; mv[0].content = "Be brief.";
    mv[1].role = "user"; mv[1].content = "Weather?";
    mv[2].role = "assistant"; mv[2].content = "<|tool_call_start|>[get_weather()]<|tool_call_end|>";
    mv[3].role = "tool"; mv[3].content = "sunny";
    CHECK(lfm2_chat_format(mv, 4, tools, 2, 0, out, sizeof out, &n) == LFM2_OK && n == sizeof want_tools - 1 && memcmp(out, want_tools, n) == 0,
          "tool-use template");
    mv[0].role = "user"; mv[0].content = "Hi";
    CHECK(lfm2_chat_format(mv, 1, tools + 1, 1, 1, out, sizeof out, &n) == LFM2_OK && n == sizeof want_tools_nosys - 1 &&
          memcmp(out, want_tools_nosys, n) == 0, "tool-use template without system message");
    /* without tools, "tool" content is not wrapped and a system message is an ordinary turn */
    mv[0].role = "tool"; mv[0].content = NULL;
    CHECK(lfm2_chat_format(mv, 1, NULL, 0, 0, out, sizeof out, &n) == LFM2_OK && n == 43 &&
          memcmp(out, "<|startoftext|><|im_start|>tool\n<|im_end|>\n", n) == 0, "plain template, NULL content");
    CHECK(lfm2_chat_format(mv, 1, NULL, 0, 0, out, 10, &n) == LFM2_ERR_BUFFER_TOO_SMALL && n == 43, "small buffer reports the size");
    CHECK(lfm2_chat_format(mv, 1, NULL, 0, 0, NULL, 0, &n) == LFM2_OK && n == 43, "size query (SIZE QUERIES: LFM2_OK)");
    mv[0].role = NULL;
    CHECK(lfm2_chat_format(mv, 1, NULL, 0, 0, out, sizeof out, &n) == LFM2_ERR_INVALID_ARG, "NULL role");
    NOTE("6 reference prompts (%d differ), tool-use and plain template cases", (int)bad);
}

/* ---- 6. malformed tokenizer.json ------------------------------------------------------------ */

static void test_malformed(void) {
    /* a tiny valid tokenizer; each case replaces one fragment of it */
    static const char base[] =
        "{\"added_tokens\": [{\"id\": 5, \"content\": \"<|x|>\", \"special\": true, \"lstrip\": false, \"rstrip\": false,"
        " \"single_word\": false, \"normalized\": false}], \"normalizer\": null,"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\":"
        " \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        " \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|x|>\", \"type_id\": 0}},"
        " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<|x|>\": {\"id\": \"<|x|>\", \"ids\": [5]}}},"
        " \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"byte_fallback\": false, \"ignore_merges\": true,"
        " \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 4, \"<|x|>\": 5}, \"merges\": [\"a b\", [\"\\u0120\", \"ab\"]]}}";
    static const struct { const char *from, *to, *expect; lfm2_result code; } cases[] = {
        {"{\"added_tokens\"", "[\"added_tokens\"", "invalid JSON", LFM2_ERR_BAD_TOKENIZER},
        {"\"type\": \"BPE\"", "\"type\": \"WordPiece\"", "WordPiece", LFM2_ERR_UNSUPPORTED},
        {"\"byte_fallback\": false", "\"byte_fallback\": true", "byte_fallback", LFM2_ERR_UNSUPPORTED},
        {"\"byte_fallback\": false", "\"byte_fallback\": 3", "byte_fallback", LFM2_ERR_BAD_TOKENIZER},
        {"\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}", "NFC", LFM2_ERR_UNSUPPORTED},
        {"{\"type\": \"Split\"", "{\"type\": \"Whitespace\"", "Whitespace", LFM2_ERR_UNSUPPORTED},
        {"\"behavior\": \"Isolated\"", "\"behavior\": \"Removed\"", "Removed", LFM2_ERR_UNSUPPORTED},
        {"\"decoder\": {\"type\": \"ByteLevel\"}", "\"decoder\": {\"type\": \"Metaspace\"}", "Metaspace", LFM2_ERR_UNSUPPORTED},
        {"{\"type\": \"TemplateProcessing\"", "{\"type\": \"RobertaProcessing\"", "RobertaProcessing", LFM2_ERR_UNSUPPORTED},
        {"\"merges\": [\"a b\"", "\"merges\": [\"a c\"", "\"c\"", LFM2_ERR_BAD_TOKENIZER},
        {"\"merges\": [\"a b\"", "\"merges\": [\"b a\"", "\"ba\"", LFM2_ERR_BAD_TOKENIZER},
        {"\"merges\": [\"a b\"", "\"merges\": [\"ab\"", "merges[0]", LFM2_ERR_BAD_TOKENIZER},
        {"\"merges\": [\"a b\"", "\"merges\": [7", "merges[0]", LFM2_ERR_BAD_TOKENIZER},
        {"\"ab\": 2", "\"ab\": 1", "id 1", LFM2_ERR_BAD_TOKENIZER},
        {"\"ab\": 2", "\"ab\": -2", "model.vocab[\"ab\"]", LFM2_ERR_BAD_TOKENIZER},
        {"\"ab\": 2", "\"ab\": 2.5", "model.vocab[\"ab\"]", LFM2_ERR_BAD_TOKENIZER},
        {"\"ab\": 2", "\"ab\": 99999999", "model.vocab[\"ab\"]", LFM2_ERR_BAD_TOKENIZER},
        {"\"ab\": 2", "\"ab\": 70000", "embedding rows", LFM2_ERR_BAD_TOKENIZER},
        {"\"b\": 1", "\"a\": 1", "\"a\" appears twice", LFM2_ERR_BAD_TOKENIZER},
        {"\"ids\": [5]", "\"ids\": [500]", "out of range", LFM2_ERR_BAD_TOKENIZER},
        {"{\"id\": 5, \"content\"", "{\"id\": \"5\", \"content\"", "added_tokens[0]", LFM2_ERR_BAD_TOKENIZER},
        {"\"content\": \"<|x|>\"", "\"content\": 5", "added_tokens[0]", LFM2_ERR_BAD_TOKENIZER},
        {"\"special\": true", "\"special\": \"yes\"", "special", LFM2_ERR_BAD_TOKENIZER},
        {"\"vocab\": {", "\"vocab\": [", "invalid JSON", LFM2_ERR_BAD_TOKENIZER},
        {"\"model\": {", "\"modelx\": {", "\"model\"", LFM2_ERR_BAD_TOKENIZER},
    };
    char buf[sizeof base + 64];
    size_t k;
    int ok_cases = 0;
    lfm2_error e;
    struct lfm2__tokenizer *t = NULL;
    int32_t ids[32], n;
    /* the base itself loads and works: ignore_merges, array-form merges, the template */
    CHECK(lfm2__tokenizer_load(base, sizeof base - 1, NULL, 0, 100, NULL, &e, &t) == LFM2_OK, "base: %s", e.message);
    if (t) {
        CHECK(lfm2__tokenize_impl(t, "ab abab<|x|>", 12, 3, ids, 32, &n) == LFM2_OK && n == 5 && ids[0] == 5 && ids[1] == 2 && ids[2] == 4 &&
              ids[3] == 2 && ids[4] == 5, "base encode (%d ids)", (int)n);
        lfm2__tokenizer_free(t, NULL);
    }
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = strstr(base, cases[k].from);
        size_t pre = (size_t)(p - base), fl = strlen(cases[k].from), tl = strlen(cases[k].to);
        lfm2_result r;
        memcpy(buf, base, pre);
        memcpy(buf + pre, cases[k].to, tl);
        memcpy(buf + pre + tl, p + fl, sizeof base - pre - fl);
        t = NULL;
        e.message[0] = 0;
        r = lfm2__tokenizer_load(buf, strlen(buf), NULL, 0, 100, NULL, &e, &t);
        CHECK(r == cases[k].code && t == NULL && strstr(e.message, cases[k].expect), "case %d: got %d (%s), want %d naming %s", (int)k, (int)r,
              e.message, (int)cases[k].code, cases[k].expect);
        if (r == cases[k].code && strstr(e.message, cases[k].expect)) ok_cases++;
        NOTE("%s", e.message);
        lfm2__tokenizer_free(t, NULL);
    }
    /* the Split patterns: the two equivalent to LFM2's load and cut alike; others are refused by name */
    {
        static const struct { const char *what, *pattern; lfm2_result code; } pats[] = {
            {"LFM2.5-8B-A1B's", NULL, LFM2_OK},
            {"cl100k's (possessive)", NULL, LFM2_OK},
            {"GPT-2's", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", LFM2_ERR_UNSUPPORTED},
            {"LFM2's with \\p{N}{1,4}", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,4}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", LFM2_ERR_UNSUPPORTED},
            {"LFM2's without (?i:)", "'s|'t|'re|'ve|'m|'ll|'d|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", LFM2_ERR_UNSUPPORTED},
            {"empty", "", LFM2_ERR_UNSUPPORTED},
        };
        const char *at = strstr(base, "\"(?i:'s"), *end = strstr(at + 1, "\"}"); /* the pattern string in base */
        size_t q;
        for (q = 0; q < sizeof pats / sizeof pats[0]; q++) {
            const char *pat = pats[q].pattern ? pats[q].pattern : lfm2__split_patterns[q + 1];
            char *b2 = (char *)malloc(sizeof base + 600), *o = b2;
            size_t pi;
            lfm2_result r;
            memcpy(o, base, (size_t)(at - base) + 1);
            o += (at - base) + 1;
            for (pi = 0; pat[pi]; pi++) { if (pat[pi] == '\\') *o++ = '\\'; *o++ = pat[pi]; }
            strcpy(o, end);
            t = NULL;
            e.message[0] = 0;
            r = lfm2__tokenizer_load(b2, strlen(b2), NULL, 0, 100, NULL, &e, &t);
            CHECK(r == pats[q].code && (r == LFM2_OK) == (t != NULL) && (r == LFM2_OK || strstr(e.message, "Split pattern")), "pattern %s: %d %s", pats[q].what, (int)r, e.message);
            if (t) CHECK(lfm2__tokenize_impl(t, "ab abab<|x|>", 12, 3, ids, 32, &n) == LFM2_OK && n == 5 && ids[2] == 4, "pattern %s: encode", pats[q].what);
            NOTE("TABLE\ttokenizer.json Split pattern %s\t%s\t%s", pats[q].what, lfm2_result_string(r), r ? e.message : "(accepted: cuts like LFM2's)");
            lfm2__tokenizer_free(t, NULL);
            free(b2);
        }
    }
    /* tokenizer_config.json naming an unknown token, and a wrong type */
    CHECK(lfm2__tokenizer_load(base, sizeof base - 1, "{\"bos_token\": \"<|nope|>\"}", 25, 100, NULL, &e, &t) == LFM2_ERR_BAD_TOKENIZER &&
          strstr(e.message, "<|nope|>"), "config: unknown bos");
    NOTE("%s", e.message);
    CHECK(lfm2__tokenizer_load(base, sizeof base - 1, "{\"add_bos_token\": 1}", 20, 100, NULL, &e, &t) == LFM2_ERR_BAD_TOKENIZER &&
          strstr(e.message, "add_bos_token"), "config: add_bos_token type");
    NOTE("%s", e.message);
    NOTE("%d of %d malformed files rejected with the culprit named", ok_cases, (int)(sizeof cases / sizeof cases[0]));
}

/* ---- model-level API (core loader) ----------------------------------------------------------- */

static void test_model_api(void) {
    char dir[512];
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error e;
    tt_json e2e;
    int32_t ne, ng, ids[64], *exp, *greedy, k;
    char text[4096], want_g[512];
    size_t n;
    lfm2_chat_message msg;
    memset(&msg, 0, sizeof msg);
    msg.role = "user";
    msg.content = "What is C. elegans?";
    memset(&p, 0, sizeof p);
    p.error = &e;
    snprintf(dir, sizeof dir, "%s/realvocab-bf16", t_data_dir());
    if (lfm2_model_load_dir(dir, &p, &m) != LFM2_OK) { CHECK(0, "load %s: %s", dir, e.message); return; }
    CHECK(lfm2_tokenizer_size(m) == 64400, "tokenizer size %d", (int)lfm2_tokenizer_size(m));
    CHECK(lfm2_token_bos(m) == 1, "bos");
    CHECK(lfm2_token_is_eog(m, 7) && lfm2_token_is_eog(m, 2) && !lfm2_token_is_eog(m, 1) && !lfm2_token_is_eog(m, 100), "eog ids");
    CHECK(lfm2_token_is_special(m, 6) && !lfm2_token_is_special(m, 600), "special flags");
    CHECK(lfm2_token_lookup(m, "<|im_start|>", 12) == 6, "lookup");
    if (tt_json_open(&e2e, "realvocab-bf16/e2e.json")) {
        size_t gl;
        char *gt = tt_str(&e2e.j, lfm2__json_get(&e2e.j, 0, "greedy_text"), &gl);
        exp = tt_ids(&e2e.j, lfm2__json_get(&e2e.j, 0, "prompt_ids"), &ne);
        greedy = tt_ids(&e2e.j, lfm2__json_get(&e2e.j, 0, "greedy_ids"), &k);
        CHECK(lfm2_chat_format(&msg, 1, NULL, 0, 1, text, sizeof text, &n) == LFM2_OK, "chat format");
        CHECK(lfm2_tokenize(m, text, n, LFM2_TOKENIZE_PARSE_SPECIAL, ids, 64, &ng) == LFM2_OK && tt_ids_eq(ids, ng, exp, ne), "e2e prompt ids");
        CHECK(lfm2_detokenize(m, greedy, k, 0, want_g, sizeof want_g, &n) == LFM2_OK && n == gl && memcmp(want_g, gt, gl) == 0,
              "e2e greedy text (ids >= 64400 decode to nothing)");
        free(gt); free(exp); free(greedy);
        tt_json_close(&e2e);
    }
    CHECK(lfm2_tokenize(m, "Hello", 5, LFM2_TOKENIZE_ADD_BOS, ids, 64, &ng) == LFM2_OK && ng >= 2 && ids[0] == 1, "ADD_BOS");
    CHECK(lfm2_tokenize_bound(m, 5, LFM2_TOKENIZE_ADD_BOS) == 6, "bound");
    CHECK(lfm2_tokenize(m, "Hello world", 11, 0, NULL, 0, &k) == LFM2_OK && k >= 2, "size query (%d)", (int)k);
    CHECK(lfm2_tokenize(m, "Hello world", 11, 0, ids, 1, &ng) == LFM2_ERR_BUFFER_TOO_SMALL && ng == k, "BUFFER_TOO_SMALL with the size needed");
    CHECK(lfm2_tokenize(m, "Hello world", 11, 0, ids, k, &ng) == LFM2_OK && ng == k, "exact buffer");
    CHECK(lfm2_token_to_piece(m, 65535, text, sizeof text, &n) == LFM2_OK && n == 0, "top id: no bytes");
    CHECK(lfm2_token_to_piece(m, 65536, text, sizeof text, &n) == LFM2_ERR_INVALID_ARG, "id beyond vocab");
    lfm2_model_free(m);
    /* a model loaded without its tokenizer */
    p.no_tokenizer = 1;
    if (lfm2_model_load_dir(dir, &p, &m) == LFM2_OK) {
        CHECK(lfm2_tokenize(m, "a", 1, 0, ids, 64, &ng) == LFM2_ERR_UNSUPPORTED, "no tokenizer -> UNSUPPORTED");
        CHECK(lfm2_detokenize(m, ids, 0, 0, text, 1, &n) == LFM2_ERR_UNSUPPORTED && lfm2_tokenizer_size(m) == 0 && lfm2_token_lookup(m, "a", 1) == -1,
              "no tokenizer: detokenize/size/lookup");
        CHECK(lfm2_token_is_eog(m, 2) && !lfm2_token_is_eog(m, 7), "eog from config without a tokenizer");
        lfm2_model_free(m);
    }
}

/* ---- 5. a real LFM2 folder (LFM2_MODEL_DIR) -------------------------------------------------- */

static void test_real_model(void) {
    const char *dir = getenv("LFM2_MODEL_DIR");
    char path[512];
    struct lfm2__tokenizer *t;
    tt_json v;
    int32_t k, c, bad = 0, bad_chat = 0, bad_safe = 0;
    if (!dir) T_SKIP("set LFM2_MODEL_DIR to a real LFM2 folder to check real ids");
    t = tt_load_dir(dir, 0, NULL);
    if (!t) { CHECK(0, "no tokenizer in %s", dir); return; }
    snprintf(path, sizeof path, "reference/vectors/webtyp_tokenizer_lfm2_ordinary.json");
    if (tt_json_open(&v, path)) {
        for (k = 0, c = 1; k < v.j.tok[0].n; k++, c = v.j.tok[c].skip) {
            size_t n;
            int32_t ne, ng;
            char *text = tt_str(&v.j, lfm2__json_get(&v.j, c, "text"), &n);
            int32_t *exp = tt_ids(&v.j, lfm2__json_get(&v.j, c, "ids"), &ne), *got = tt_encode(t, text, n, 0, &ng);
            if (!tt_ids_eq(got, ng, exp, ne)) { bad++; CHECK(0, "real vector %d ids differ", (int)k); }
            free(text); free(exp); free(got);
        }
        tt_json_close(&v);
    }
    if (tt_json_open(&v, "reference/vectors/webtyp_lfm_chat_template_cases.json")) {
        for (k = 0, c = 1; k < v.j.tok[0].n; k++, c = v.j.tok[c].skip) {
            size_t n;
            int32_t ne, ng, ns_, q, e2, msgs = lfm2__json_get(&v.j, c, "messages");
            char *prompt = tt_str(&v.j, lfm2__json_get(&v.j, c, "prompt"), &n);
            int32_t *exp = tt_ids(&v.j, lfm2__json_get(&v.j, c, "ids"), &ne), *got = tt_encode(t, prompt, n, LFM2_TOKENIZE_PARSE_SPECIAL, &ng);
            int32_t *safe = tt_ids(&v.j, lfm2__json_get(&v.j, c, "safe_ids"), &ns_);
            if (!tt_ids_eq(got, ng, exp, ne)) { bad_chat++; CHECK(0, "real chat %d ids differ", (int)k); }
            /* safe_ids: the template's control tokens parsed, the messages' text not */
            free(got);
            {
                int32_t *acc = (int32_t *)malloc(sizeof(int32_t) * (n + 64)), na = 0, m2;
                acc[na++] = 1;
                for (q = 0, e2 = msgs + 1; q < v.j.tok[msgs].n; q++, e2 = v.j.tok[e2].skip) {
                    size_t rl, cl;
                    char *role = tt_str(&v.j, lfm2__json_get(&v.j, e2, "role"), &rl), *ct = tt_str(&v.j, lfm2__json_get(&v.j, e2, "content"), &cl);
                    acc[na++] = 6;
                    lfm2__tokenize_impl(t, role, rl, 0, acc + na, (int32_t)(rl + 2), &m2);
                    na += m2;
                    lfm2__tokenize_impl(t, "\n", 1, 0, acc + na, 3, &m2);
                    na += m2;
                    lfm2__tokenize_impl(t, ct, cl, 0, acc + na, (int32_t)(cl + 2), &m2);
                    na += m2;
                    acc[na++] = 7;
                    lfm2__tokenize_impl(t, "\n", 1, 0, acc + na, 3, &m2);
                    na += m2;
                    free(role); free(ct);
                }
                acc[na++] = 6;
                lfm2__tokenize_impl(t, "assistant\n", 10, 0, acc + na, 12, &m2);
                na += m2;
                if (!tt_ids_eq(acc, na, safe, ns_)) { bad_safe++; CHECK(0, "real chat %d safe ids differ", (int)k); }
                free(acc);
            }
            free(prompt); free(exp); free(safe);
        }
        tt_json_close(&v);
    }
    NOTE("real tokenizer in %s: %d vector, %d chat, %d safe-chat mismatches", dir, (int)bad, (int)bad_chat, (int)bad_safe);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- the size-query convention of the header (buf NULL, cap 0: LFM2_OK with the size; a short
   buffer: LFM2_ERR_BUFFER_TOO_SMALL with the size; NULL with cap > 0: invalid) ---------------- */
static void test_size_queries(void) {
    static const char text[] = "Hello \xf0\x9f\xa6\x9c\xf0\x90\x8d\x88\xe1\x9a\xa0\xea\xa6\x84 world";
    lfm2_model *m = t_load("realvocab-bf16");
    lfm2_token ids[64];
    int32_t n = 0, k, split = -1;
    size_t need = 99, got = 0;
    char buf[256];
    lfm2_detok_stream st, before;
    CHECK(m != NULL, "load realvocab-bf16");
    if (!m) return;
    CHECK(lfm2_tokenize(m, text, sizeof text - 1, 0, ids, 64, &n) == LFM2_OK && n > 2, "tokenize");
    /* lfm2_token_to_piece */
    CHECK(lfm2_token_to_piece(m, ids[0], NULL, 0, &need) == LFM2_OK && need == 5, "token_to_piece query: %zu", need);
    CHECK(lfm2_token_to_piece(m, ids[0], buf, 2, &got) == LFM2_ERR_BUFFER_TOO_SMALL && got == 5, "token_to_piece short buffer");
    CHECK(lfm2_token_to_piece(m, ids[0], NULL, 4, &got) == LFM2_ERR_INVALID_ARG, "token_to_piece NULL with cap 4");
    /* lfm2_detokenize */
    CHECK(lfm2_detokenize(m, ids, n, 0, NULL, 0, &need) == LFM2_OK && need == sizeof text - 1, "detokenize query: %zu", need);
    CHECK(lfm2_detokenize(m, ids, n, 0, buf, need - 1, &got) == LFM2_ERR_BUFFER_TOO_SMALL && got == need, "detokenize short buffer");
    CHECK(lfm2_detokenize(m, ids, n, 0, buf, need, &got) == LFM2_OK && got == need && memcmp(buf, text, need) == 0, "detokenize exact fit");
    CHECK(lfm2_detokenize(m, ids, n, 0, NULL, 8, &got) == LFM2_ERR_INVALID_ARG, "detokenize NULL with cap 8");
    /* lfm2_detok_stream_push / _flush: a query changes nothing */
    memset(&st, 0, sizeof st);
    for (k = 0; k < n && split < 0; k++) {
        size_t q = 0;
        before = st;
        CHECK(lfm2_detok_stream_push(m, &st, ids[k], 0, NULL, 0, &q) == LFM2_OK, "push query");
        CHECK(memcmp(&st, &before, sizeof st) == 0, "a push query changed the stream");
        CHECK(lfm2_detok_stream_push(m, &st, ids[k], 0, buf, sizeof buf, &got) == LFM2_OK && got == q, "push: %zu bytes, query said %zu", got, q);
        if (st.n_pending > 0) split = k;
    }
    CHECK(split >= 0, "no token ended inside a character");
    if (split >= 0) {
        size_t q = 0;
        before = st;
        CHECK(lfm2_detok_stream_flush(&st, NULL, 0, &q) == LFM2_OK && q == (size_t)st.n_pending && memcmp(&st, &before, sizeof st) == 0,
              "flush query: LFM2_OK with %zu, stream unchanged", q);
        CHECK(lfm2_detok_stream_flush(&st, buf, q - 1, &got) == LFM2_ERR_BUFFER_TOO_SMALL && got == q, "flush short buffer");
        CHECK(lfm2_detok_stream_flush(&st, NULL, 2, &got) == LFM2_ERR_INVALID_ARG, "flush NULL with cap 2");
        CHECK(lfm2_detok_stream_flush(&st, buf, sizeof buf, &got) == LFM2_OK && got == q && st.n_pending == 0, "flush");
        NOTE("size queries: token_to_piece 5 bytes, detokenize %zu bytes, stream split after token %d with %zu bytes held back", need, (int)split, q);
    }
    lfm2_model_free(m);
}

/* ---- 7. the Split patterns: the three golden patterns, and a backtracking reference ---------- */

/* A small backtracking matcher for exactly the constructs of the three Split patterns (|, groups,
   (?i:...), (?!...), [...] and [^...] with \s \S \r \n \p{L} \p{N}, ? * + {m,n}, possessive ?+ ++),
   with leftmost-first alternation and greedy quantifiers, as Oniguruma and Python's regex run them.
   It reads the pattern strings themselves, so it checks lfm2.h's hand-written splitter and the
   equivalence of the three patterns independently of both. It works on code points, with classes
   from lfm2.h's Unicode table (the table is not what is under test here); an invalid UTF-8 byte
   is a code point of its own of class "other", as in lfm2.h. */
enum { TR_SET, TR_CAT, TR_ALT, TR_REP, TR_NLA, TR_EMPTY };
enum { TR_C_S = 0x200000, TR_C_NS, TR_C_L, TR_C_N }; /* class items of a set */
typedef struct tr_node {
    int type, a, b;             /* children (CAT, ALT: a then b; REP, NLA: a) */
    int min, max, poss;         /* REP; max -1 = unbounded */
    int neg, icase, n_items;    /* SET */
    uint32_t item[12];
} tr_node;
typedef struct tr_rx {
    tr_node node[160];
    int n_node, root, bad;
    const char *p;              /* parse position */
    int icase;
    /* the subject */
    const uint32_t *cp;
    const int *cls;
    long n;
} tr_rx;
typedef struct tr_k { int kind, node, count; long start; const struct tr_k *next; } tr_k; /* kind 0: match node; 1: REP iteration */

static int tr_new(tr_rx *r, int type) {
    tr_node *d;
    if (r->n_node >= (int)(sizeof r->node / sizeof r->node[0])) { r->bad = 1; return 0; }
    d = &r->node[r->n_node];
    memset(d, 0, sizeof *d);
    d->type = type;
    return r->n_node++;
}
static int tr_parse_alt(tr_rx *r);
static uint32_t tr_escape(tr_rx *r) { /* after '\' */
    char c = *r->p++;
    if (c == 'r') return '\r';
    if (c == 'n') return '\n';
    if (c == 's') return TR_C_S;
    if (c == 'S') return TR_C_NS;
    if (c == 'p' && r->p[0] == '{' && r->p[2] == '}' && (r->p[1] == 'L' || r->p[1] == 'N')) { c = r->p[1]; r->p += 3; return c == 'L' ? TR_C_L : TR_C_N; }
    if (c == '\'' || c == '\\' || c == '[' || c == ']' || c == '(' || c == ')' || c == '?' || c == '+' || c == '*' || c == '|' || c == '.') return (uint32_t)c;
    r->bad = 1;
    return 0;
}
static int tr_parse_atom(tr_rx *r) {
    int k, save;
    char c = *r->p;
    if (c == '(') {
        r->p++;
        save = r->icase;
        if (r->p[0] == '?' && r->p[1] == 'i' && r->p[2] == ':') { r->p += 3; r->icase = 1; k = tr_parse_alt(r); }
        else if (r->p[0] == '?' && r->p[1] == ':') { r->p += 2; k = tr_parse_alt(r); }
        else if (r->p[0] == '?' && r->p[1] == '!') { r->p += 2; k = tr_new(r, TR_NLA); r->node[k].a = tr_parse_alt(r); }
        else if (r->p[0] == '?') { r->bad = 1; return 0; }
        else k = tr_parse_alt(r);
        r->icase = save;
        if (*r->p != ')') { r->bad = 1; return k; }
        r->p++;
        return k;
    }
    k = tr_new(r, TR_SET);
    r->node[k].icase = r->icase;
    if (c == '[') {
        r->p++;
        if (*r->p == '^') { r->node[k].neg = 1; r->p++; }
        while (*r->p && *r->p != ']') {
            uint32_t it = (uint32_t)(unsigned char)*r->p++;
            if (it == '\\') it = tr_escape(r);
            if (r->node[k].n_items >= 12) { r->bad = 1; return k; }
            r->node[k].item[r->node[k].n_items++] = it;
        }
        if (*r->p != ']') r->bad = 1;
        else r->p++;
        return k;
    }
    if (c == '\\') { r->p++; r->node[k].item[0] = tr_escape(r); }
    else if (c == '.' || c == '^' || c == '$' || c == 0) r->bad = 1; /* not used by the patterns */
    else r->node[k].item[0] = (uint32_t)(unsigned char)*r->p++;
    r->node[k].n_items = 1;
    return k;
}
static int tr_parse_cat(tr_rx *r) {
    int cat = -1;
    while (*r->p && *r->p != '|' && *r->p != ')' && !r->bad) {
        int a = tr_parse_atom(r), min = -2, max = -1;
        char q = *r->p;
        if (q == '?') { min = 0; max = 1; }
        else if (q == '*') { min = 0; max = -1; }
        else if (q == '+') { min = 1; max = -1; }
        else if (q == '{') {
            char *e;
            min = (int)strtol(r->p + 1, &e, 10);
            if (*e != ',') { r->bad = 1; return a; }
            max = (int)strtol(e + 1, &e, 10);
            if (*e != '}') { r->bad = 1; return a; }
            r->p = e;
        }
        if (min != -2) {
            int rep = tr_new(r, TR_REP);
            r->p++;
            r->node[rep].a = a;
            r->node[rep].min = min;
            r->node[rep].max = max;
            if (*r->p == '+') { r->node[rep].poss = 1; r->p++; }
            else if (*r->p == '?') { r->bad = 1; return rep; } /* lazy: not used */
            a = rep;
        }
        if (cat < 0) cat = a;
        else { int c2 = tr_new(r, TR_CAT); r->node[c2].a = cat; r->node[c2].b = a; cat = c2; }
    }
    return cat < 0 ? tr_new(r, TR_EMPTY) : cat;
}
static int tr_parse_alt(tr_rx *r) {
    int left = tr_parse_cat(r);
    while (*r->p == '|' && !r->bad) {
        int alt = tr_new(r, TR_ALT);
        r->p++;
        r->node[alt].a = left;
        r->node[alt].b = tr_parse_cat(r);
        left = alt;
    }
    return left;
}
static int tr_compile(tr_rx *r, const char *pattern) {
    memset(r, 0, sizeof *r);
    r->p = pattern;
    r->root = tr_parse_alt(r);
    return !r->bad && *r->p == 0;
}

static uint32_t tr_fold(uint32_t c) { /* simple case folding of the letters that matter */
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's'; /* LATIN SMALL LETTER LONG S */
    if (c == 0x212A) return 'k'; /* KELVIN SIGN */
    return c;
}
static int tr_set_has(const tr_node *d, uint32_t c, int cls) {
    int k, hit = 0;
    for (k = 0; k < d->n_items && !hit; k++) {
        uint32_t it = d->item[k];
        if (it == TR_C_S) hit = cls == LFM2__CP_S;
        else if (it == TR_C_NS) hit = cls != LFM2__CP_S;
        else if (it == TR_C_L) hit = cls == LFM2__CP_L;
        else if (it == TR_C_N) hit = cls == LFM2__CP_N;
        else hit = d->icase ? tr_fold(c) == tr_fold(it) : c == it;
    }
    return hit != d->neg;
}
static long tr_match(const tr_rx *r, int node, long i, const tr_k *k);
static long tr_rep(const tr_rx *r, int node, int count, long i, const tr_k *k);
static long tr_cont(const tr_rx *r, long i, const tr_k *k) {
    if (!k) return i;
    if (k->kind == 1) return i == k->start ? -1 : tr_rep(r, k->node, k->count, i, k->next); /* no empty iterations */
    return tr_match(r, k->node, i, k->next);
}
static long tr_rep(const tr_rx *r, int node, int count, long i, const tr_k *k) {
    const tr_node *d = &r->node[node];
    if (d->max < 0 || count < d->max) {
        tr_k kk;
        long e;
        kk.kind = 1; kk.node = node; kk.count = count + 1; kk.start = i; kk.next = k;
        e = tr_match(r, d->a, i, &kk);
        if (e >= 0) return e;
    }
    return count >= d->min ? tr_cont(r, i, k) : -1;
}
/* end of the first match of node at i followed by the continuation k, or -1 */
static long tr_match(const tr_rx *r, int node, long i, const tr_k *k) {
    const tr_node *d = &r->node[node];
    long e;
    switch (d->type) {
    case TR_SET: return (i < r->n && tr_set_has(d, r->cp[i], r->cls[i])) ? tr_cont(r, i + 1, k) : -1;
    case TR_EMPTY: return tr_cont(r, i, k);
    case TR_CAT: {
        tr_k kk;
        kk.kind = 0; kk.node = d->b; kk.count = 0; kk.start = 0; kk.next = k;
        return tr_match(r, d->a, i, &kk);
    }
    case TR_ALT:
        e = tr_match(r, d->a, i, k);
        return e >= 0 ? e : tr_match(r, d->b, i, k);
    case TR_NLA: return tr_match(r, d->a, i, NULL) >= 0 ? -1 : tr_cont(r, i, k);
    case TR_REP:
        if (d->poss) { /* atomic: the greedy run alone, never given back */
            long j = i;
            int c = 0;
            while ((d->max < 0 || c < d->max) && (e = tr_match(r, d->a, j, NULL)) > j) { j = e; c++; }
            return c >= d->min ? tr_cont(r, j, k) : -1;
        }
        return tr_rep(r, node, 0, i, k);
    default: return -1;
    }
}
/* Cuts cp[0..n) like a Split with behavior Isolated: the matches (leftmost, from the end of the
   previous one; an empty match counts as none) and the gaps between them. ends[] receives the end
   of every piece; returns the number of pieces. */
static int tr_split(tr_rx *r, const uint32_t *cp, const int *cls, long n, long *ends) {
    long pos = 0, st;
    int np = 0;
    r->cp = cp;
    r->cls = cls;
    r->n = n;
    while (pos < n) {
        long e = -1;
        for (st = pos; st < n; st++) {
            e = tr_match(r, r->root, st, NULL);
            if (e > st) break;
        }
        if (st > pos) ends[np++] = st; /* a gap */
        if (st < n) { ends[np++] = e; pos = e; }
        else pos = n;
    }
    return np;
}

/* text -> code points (lfm2.h's decoding: an invalid byte is a unit of its own) with their byte
   offsets (off[n] = len) */
static long tt_units(const char *text, size_t len, uint32_t *cp, int *cls, size_t *off) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    long n = 0;
    while (i < len) {
        int c, l = lfm2__utf8_seq(s + i, len - i), k;
        size_t w = lfm2__cp_at(s, i, len, &c);
        uint32_t v = s[i];
        if (l >= 2) { v = s[i] & (l == 2 ? 0x1Fu : l == 3 ? 0x0Fu : 0x07u); for (k = 1; k < l; k++) v = (v << 6) | (s[i + (size_t)k] & 0x3Fu); }
        else if (l <= 0) v = 0x110000u + s[i]; /* not a code point: never equal to a pattern character */
        cp[n] = v;
        cls[n] = c;
        off[n++] = i;
        i += w;
    }
    off[n] = len;
    return n;
}
/* the native splitter's pieces as unit ends; -1 if a piece ends inside a unit */
static int tt_native_split(const char *text, size_t len, const size_t *off, long n, long *ends) {
    size_t i = 0;
    long u = 0;
    int np = 0;
    while (i < len) {
        size_t j = lfm2__split_next((const unsigned char *)text, i, len);
        while (u < n && off[u] < j) u++;
        if (off[u] != j) return -1;
        ends[np++] = u;
        i = j;
    }
    return np;
}
static int tt_ends_eq(const long *a, int na, const long *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(long) * (size_t)na) == 0);
}

static const char *const tt_pattern_names[3] = {"lfm2", "lfm2.5-8b-a1b", "cl100k-possessive"};

/* the golden pre-tokens of the three patterns (Python's regex): lfm2.h's splitter and the
   reference matcher both reproduce them, and lfm2.h knows each pattern string */
static void test_pretok_golden(void) {
    tt_json g;
    tr_rx *rx = (tr_rx *)malloc(sizeof(tr_rx) * 3);
    int32_t pats, cases, k, c, q, bad_native = 0, bad_rx = 0, n_cases = 0, per[3] = {0, 0, 0};
    if (!tt_json_open(&g, "pretokenize/pretok_golden.json")) { CHECK(0, "pretok golden missing"); free(rx); return; }
    pats = lfm2__json_get(&g.j, 0, "patterns");
    for (q = 0; q < 3; q++) {
        size_t pl;
        char *pat = tt_str(&g.j, lfm2__json_get(&g.j, pats, tt_pattern_names[q]), &pl);
        CHECK(pat && strcmp(pat, lfm2__split_patterns[q]) == 0, "pattern %s is not the string lfm2.h knows", tt_pattern_names[q]);
        CHECK(pat && tr_compile(&rx[q], pat), "reference matcher cannot read pattern %s", tt_pattern_names[q]);
        free(pat);
    }
    cases = lfm2__json_get(&g.j, 0, "cases");
    for (k = 0, c = cases + 1; k < g.j.tok[cases].n; k++, c = g.j.tok[c].skip, n_cases++) {
        size_t n, i;
        char *text = tt_str(&g.j, lfm2__json_get(&g.j, c, "text"), &n), *pname = tt_str(&g.j, lfm2__json_get(&g.j, c, "pattern"), NULL);
        int32_t arr = lfm2__json_get(&g.j, c, "pretokens"), e2, m;
        uint32_t *cp = (uint32_t *)malloc(sizeof(uint32_t) * (n + 1));
        int *cls = (int *)malloc(sizeof(int) * (n + 1));
        size_t *off = (size_t *)malloc(sizeof(size_t) * (n + 1));
        long *want = (long *)malloc(sizeof(long) * (n + 1)), *got = (long *)malloc(sizeof(long) * (n + 1)), nu;
        int nw = 0, ng;
        for (q = 0; q < 3 && strcmp(pname, tt_pattern_names[q]) != 0; q++) {}
        CHECK(q < 3, "case %d: unknown pattern %s", (int)k, pname);
        nu = tt_units(text, n, cp, cls, off);
        /* golden pieces -> unit ends */
        for (m = 0, e2 = arr + 1, i = 0; m < g.j.tok[arr].n; m++, e2 = g.j.tok[e2].skip) {
            size_t pl;
            char *piece = tt_str(&g.j, e2, &pl);
            long u;
            CHECK(i + pl <= n && memcmp(text + i, piece, pl) == 0, "case %d: golden pieces do not tile the text", (int)k);
            i += pl;
            for (u = 0; u <= nu && off[u] < i; u++) {}
            want[nw++] = u;
            free(piece);
        }
        ng = tt_native_split(text, n, off, nu, got);
        if (!tt_ends_eq(got, ng, want, nw)) { bad_native++; CHECK(0, "case %d (%s): lfm2.h's pre-tokens differ", (int)k, pname); }
        if (q < 3) {
            ng = tr_split(&rx[q], cp, cls, nu, got);
            if (!tt_ends_eq(got, ng, want, nw)) { bad_rx++; CHECK(0, "case %d (%s): the reference matcher's pre-tokens differ", (int)k, pname); }
            per[q]++;
        }
        free(text); free(pname); free(cp); free(cls); free(off); free(want); free(got);
    }
    CHECK(n_cases == 81 && per[0] == 27 && per[1] == 27 && per[2] == 27, "%d cases", (int)n_cases);
    NOTE("%d golden cases (27 per pattern): %d differ from lfm2.h's splitter, %d from the reference matcher", (int)n_cases, (int)bad_native, (int)bad_rx);
    tt_json_close(&g);
    free(rx);
}

/* The patterns cut alike: random strings from an alphabet of every character class the patterns
   distinguish, and every string of up to 5 characters from a smaller one, cut by lfm2.h and by
   the reference matcher running each of the three pattern strings. */
static void test_pretok_patterns(void) {
    static const char *const frags[] = {
        "a", "b", "Z", "s", "S", "t", "T", "m", "M", "d", "D", "l", "L", "v", "V", "e", "E", "r", "R",    /* ASCII letters */
        "\xc3\xa9", "\xc5\xbf", "\xc7\x85", "\xd0\xb6", "\xd0\x96", "\xc3\x9f", "\xe6\x97\xa5", "\xd8\xa7", /* é ſ ǅ ж Ж ß 日 ا */
        "\xcc\x81", "\xe0\xa4\xbe",                                                                       /* marks: U+0301, U+093E */
        "0", "7", "\xd9\xa3", "\xc2\xb2", "\xe2\x85\xab", "\xf0\x9d\x9f\x8e",                             /* 0 7 ٣ ² Ⅻ 𝟎 */
        "'", "\xe2\x80\x99", "'s", "'S", "'t", "'ll", "'LL", "'lL", "'ve", "'VE", "'re", "'Re", "'d", "'m", "'M", "'\xc5\xbf", "'l",
        " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\v", "\f", "\xc2\x85", "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80\xa8",
        "\xe1\x9a\x80", "\x1c",
        ".", ",", "!", "?", "-", "_", "(", "\"", "#", "/", "+", "=", "$", "\xe2\x82\xac", "\xe2\x94\x80", "\xf0\x9f\x99\x82", /* € ─ 🙂 */
        "\xff", "\xc3", "\xed\xa0\x80", "\x00",                                                           /* invalid UTF-8, NUL */
    };
    static const char *const small[] = {"a", "s", "l", "e", "'", "1", " ", "\t", "\r", "\n", ".", "\xc2\xa0"};
    /* controls that must differ: GPT-2's pattern, and LFM2's with its last two alternatives swapped */
    static const char *const controls[2] = {
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+|\\s+(?!\\S)"};
    tr_rx *rx = (tr_rx *)malloc(sizeof(tr_rx) * 5);
    int ctl_diff[2] = {0, 0};
    uint64_t seed = 2024;
    char text[512];
    uint32_t cp[512];
    int cls[512];
    size_t off[513];
    long ends[4][512];
    int np[4], it, q, bad = 0, bad_pat = 0, n_rand = 0, n_exh = 0, len;
    long pieces = 0;
    for (q = 0; q < 3; q++) CHECK(tr_compile(&rx[q], lfm2__split_patterns[q]), "reference matcher cannot read pattern %d", q);
    for (q = 0; q < 2; q++) CHECK(tr_compile(&rx[3 + q], controls[q]), "reference matcher cannot read control %d", q);
    for (it = 0; it < 60000 + 271452; it++) {
        size_t n = 0;
        long nu;
        if (it < 60000) { /* random: up to 40 fragments */
            int nf = (int)(tt_rng(&seed) % 41), f;
            for (f = 0; f < nf; f++) {
                const char *s = frags[tt_rng(&seed) % (sizeof frags / sizeof frags[0])];
                size_t l = s[0] ? strlen(s) : 1; /* "\x00" is one NUL byte */
                memcpy(text + n, s, l);
                n += l;
            }
            n_rand++;
        } else { /* exhaustive: string number x in base 12, lengths 1..5 */
            long x = it - 60000, base = 12;
            for (len = 1; x >= base; len++) { x -= base; base *= 12; }
            for (q = 0; q < len; q++, x /= 12) { const char *s = small[x % 12]; memcpy(text + n, s, strlen(s)); n += strlen(s); }
            n_exh++;
        }
        nu = tt_units(text, n, cp, cls, off);
        np[3] = tt_native_split(text, n, off, nu, ends[3]);
        for (q = 0; q < 3; q++) np[q] = tr_split(&rx[q], cp, cls, nu, ends[q]);
        pieces += np[3];
        if (!tt_ends_eq(ends[0], np[0], ends[1], np[1]) || !tt_ends_eq(ends[0], np[0], ends[2], np[2])) {
            if (bad_pat++ < 3) CHECK(0, "string %d: the three patterns cut differently (%d / %d / %d pieces)", it, np[0], np[1], np[2]);
        }
        if (it < 60000)
            for (q = 0; q < 2; q++) { /* the controls, on the random strings */
                long ce[512];
                int cn = tr_split(&rx[3 + q], cp, cls, nu, ce);
                if (!tt_ends_eq(ce, cn, ends[0], np[0])) ctl_diff[q]++;
            }
        if (!tt_ends_eq(ends[3], np[3], ends[0], np[0])) {
            if (bad++ < 3) CHECK(0, "string %d (%zu bytes): lfm2.h's splitter differs from the LFM2 pattern (%d vs %d pieces)", it, n, np[3], np[0]);
        }
    }
    CHECK(bad == 0 && bad_pat == 0, "%d / %d differences", bad, bad_pat);
    CHECK(ctl_diff[0] > 0 && ctl_diff[1] > 0, "the controls went unnoticed (%d, %d strings differ)", ctl_diff[0], ctl_diff[1]);
    NOTE("controls: GPT-2's pattern differs from LFM2's on %d, LFM2's with \\s+ before \\s+(?!\\S) on %d of the random strings",
         ctl_diff[0], ctl_diff[1]);
    NOTE("%d random strings (up to 40 of %d fragments) + %d exhaustive (length <= 5 over 12 characters), %ld pieces: "
         "%d differ between the 3 patterns, %d between lfm2.h and the matcher",
         n_rand, (int)(sizeof frags / sizeof frags[0]), n_exh, pieces, bad_pat, bad);
    free(rx);
}

/* ---- 8. long pre-tokens: windows, the in-place fallback, exactly fitting buffers ------------- */

/* BPE of the whole w[0..n) with a heap as large as it needs (the reference for long words):
   the final symbols into ids, their count returned */
static int32_t tt_bpe_ref(const struct lfm2__tokenizer *t, const unsigned char *w, int32_t n, int32_t *ids) {
    int32_t *s = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n + 1)), k, m = 0;
    lfm2__bpe_cand *h = (lfm2__bpe_cand *)malloc(sizeof(lfm2__bpe_cand) * (size_t)(3 * n + 1));
    for (k = 0; k < n; k++) s[k] = t->byte_id[w[k]];
    lfm2__bpe_heap(t, s, n, h);
    for (k = 0; k < n; k += lfm2__sym_width(t, s, k)) ids[m++] = s[k];
    free(s);
    free(h);
    return m;
}
/* symbols of the in-place state s[0..n) in order */
static int32_t tt_syms(const struct lfm2__tokenizer *t, const int32_t *s, int32_t n, int32_t *ids) {
    int32_t k, m = 0;
    for (k = 0; k < n; k += lfm2__sym_width(t, s, k)) ids[m++] = s[k];
    return m;
}

/* n bytes of one kind of long word into w */
static const char *const tt_kinds[] = {"random letters", "letters a b e th in", "one letter", "spaces", "spaces and tabs", "\xe2\x94\x80 (3 bytes)",
                                       "=", "emoji", "CJK", "period ab", "period abc", "accented letters", "any bytes", "symbols", "newlines"};
#define TT_N_KINDS ((int)(sizeof tt_kinds / sizeof tt_kinds[0]))
static void tt_word(int kind, unsigned char *w, int32_t n, uint64_t *seed) {
    static const char *const frag1[] = {"a", "b", "e", "th", "in"};
    static const char *const acc[] = {"\xc3\xa9", "\xc3\xa8", "\xc3\xb6", "e", "t", "\xc3\xa7", "\xc3\xbc"};
    static const char *const cjk[] = {"\xe6\x97\xa5", "\xe6\x9c\xac", "\xe8\xaa\x9e", "\xe7\x9a\x84", "\xe4\xb8\x80"};
    static const char sym[] = "=-*#~+<>|/";
    int32_t i = 0;
    while (i < n) {
        const char *f = NULL;
        char one[2] = {0, 0};
        uint64_t r = tt_rng(seed);
        switch (kind) {
        case 0: one[0] = (char)('a' + r % 26); f = one; break;
        case 1: f = frag1[r % 5]; break;
        case 2: f = "a"; break;
        case 3: f = " "; break;
        case 4: f = (r % 3) ? " " : "\t"; break;
        case 5: f = "\xe2\x94\x80"; break;
        case 6: f = "="; break;
        case 7: f = "\xf0\x9f\x99\x82"; break;
        case 8: f = cjk[r % 5]; break;
        case 9: f = (i % 2) ? "b" : "a"; break;
        case 10: f = (i % 3) == 0 ? "a" : (i % 3) == 1 ? "b" : "c"; break;
        case 11: f = acc[r % 7]; break;
        case 12: one[0] = (char)(r & 0xff); w[i++] = (unsigned char)one[0]; continue;
        case 13: one[0] = sym[r % 10]; f = one; break;
        default: f = (r % 2) ? "\n" : "\r\n"; break;
        }
        while (*f && i < n) w[i++] = (unsigned char)*f++;
    }
}

/* a tokenizer.json for the fallback and merge-order tests: the single characters of `chars`,
   "\u0120" (the space) and, for each merge "a b" in order, the string ab */
static struct lfm2__tokenizer *tt_synthetic_unk(const char *chars, const char *const *merges, int n_merges, int unk) {
    size_t cap = 64 + (size_t)n_merges * 600, n = 0;
    char *j = (char *)malloc(cap), *voc = (char *)malloc((size_t)(n_merges + 64) * 300);
    int nv = 0, k, q;
    lfm2_error e;
    struct lfm2__tokenizer *t = NULL;
    for (k = 0; chars[k]; k++) { voc[nv * 300] = chars[k]; voc[nv * 300 + 1] = 0; nv++; }
    if (unk) strcpy(voc + 300 * nv++, "<unk>");
    strcpy(voc + 300 * nv++, "\xc4\xa0");
    for (k = 0; k < n_merges; k++) {
        const char *sp = strchr(merges[k], ' ');
        char m[300];
        snprintf(m, sizeof m, "%.*s%s", (int)(sp - merges[k]), merges[k], sp + 1);
        for (q = 0; q < nv && strcmp(voc + 300 * q, m) != 0; q++) {}
        if (q == nv) strcpy(voc + 300 * nv++, m);
    }
    n += (size_t)sprintf(j + n, "{\"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                                "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"");
    for (k = 0; lfm2__split_patterns[0][k]; k++) {
        if (lfm2__split_patterns[0][k] == '\\') j[n++] = '\\';
        j[n++] = lfm2__split_patterns[0][k];
    }
    n += (size_t)sprintf(j + n, "\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
                                " \"use_regex\": false}]}, \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"},"
                                " \"model\": {\"type\": \"BPE\", %s\"vocab\": {", unk ? "\"unk_token\": \"<unk>\", " : "");
    for (k = 0; k < nv; k++) n += (size_t)sprintf(j + n, "%s\"%s\": %d", k ? ", " : "", voc + 300 * k, k);
    n += (size_t)sprintf(j + n, "}, \"merges\": [");
    for (k = 0; k < n_merges; k++) n += (size_t)sprintf(j + n, "%s\"%s\"", k ? ", " : "", merges[k]);
    n += (size_t)sprintf(j + n, "]}}");
    if (lfm2__tokenizer_load(j, n, NULL, 0, 0, NULL, &e, &t) != LFM2_OK) printf("    synthetic tokenizer: %s\n", e.message);
    free(j);
    free(voc);
    return t;
}
static struct lfm2__tokenizer *tt_synthetic(const char *chars, const char *const *merges, int n_merges) {
    return tt_synthetic_unk(chars, merges, n_merges, 0);
}

/* a de Bruijn sequence of order 2 over k symbols (every pair once): seq[0 .. k*k), cyclic */
static void tt_debruijn(int t, int p, int k, int *a, int *seq, int *len) {
    int j;
    if (t > 2) {
        if (2 % p == 0) for (j = 1; j <= p; j++) seq[(*len)++] = a[j];
        return;
    }
    a[t] = a[t - p];
    tt_debruijn(t + 1, p, k, a, seq, len);
    for (j = a[t - p] + 1; j < k; j++) {
        a[t] = j;
        tt_debruijn(t + 1, t, k, a, seq, len);
    }
}

/* the heap, the in-place passes, the linear scan and the windows agree (short words, long words
   of many kinds, merge lists out of training order); a 1 MB run of letters is fast */
static void test_long_words(void) {
    struct lfm2__tokenizer *t = tt_load_like(), *ill, *xrun;
    static const char *const alpha[] = {"a", "b", "e", "th", "in", "\xc3\xa9", " ", "\t"};
    /* out of training order: "ab a" and "ba b" come before the merges that make ab and ba */
    static const char *const ill_merges[] = {"ab a", "ba b", "a b", "b a", "ab ab", "aba b", "b b", "bb a", "a a", "aa aa", "bab ab"};
    char xr[8][300];
    const char *xm[8];
    uint64_t seed = 7;
    int it, bad = 0, bad_small = 0, n_small = 0, bad_ill = 0, bad_win = 0, n_win = 0, unsettled = 0, kind;
    int32_t s1[LFM2__BPE_WIN], s2[LFM2__BPE_WIN], r1[LFM2__BPE_WIN], r2[LFM2__BPE_WIN];
    lfm2__bpe_cand heap[3 * LFM2__BPE_WIN];
    unsigned char *w = (unsigned char *)malloc(1 << 20);
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8)), *ref = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8));
    int32_t nr, k;
    if (!t) { CHECK(0, "tokenizer did not load"); free(w); free(ids); free(ref); return; }
    /* 1. short words: heap vs in-place passes vs linear scan */
    for (it = 0; it < 3000; it++) {
        int32_t len = 2 + (int32_t)(tt_rng(&seed) % ((it & 1) ? LFM2__BPE_SMALL - 2 : LFM2__BPE_WIN - 2)), i, m1, m2;
        kind = it % 3; /* letters, spaces, anything */
        for (i = 0; i < len;) {
            const char *f = kind == 0 ? alpha[tt_rng(&seed) % 6] : kind == 1 ? alpha[6 + tt_rng(&seed) % 2] : NULL;
            if (!f) { w[i++] = (unsigned char)tt_rng(&seed); continue; }
            while (*f && i < len) w[i++] = (unsigned char)*f++;
        }
        for (i = 0; i < len; i++) s1[i] = s2[i] = t->byte_id[w[i]];
        lfm2__bpe_heap(t, s1, len, heap);
        lfm2__bpe_passes(t, s2, len);
        m1 = tt_syms(t, s1, len, r1);
        m2 = tt_syms(t, s2, len, r2);
        if (!tt_ids_eq(r1, m1, r2, m2)) bad++;
        if (len <= LFM2__BPE_SMALL) { /* the linear-scan path of short words gives the same symbols */
            int32_t n3 = len;
            for (i = 0; i < len; i++) s2[i] = t->byte_id[w[i]];
            lfm2__bpe_small(t, s2, &n3);
            if (!tt_ids_eq(r1, m1, s2, n3)) bad_small++;
            n_small++;
        }
    }
    CHECK(bad == 0, "heap and in-place BPE disagree on %d of 3000 words", bad);
    CHECK(bad_small == 0, "heap and linear-scan BPE disagree on %d of %d short words", bad_small, n_small);
    /* 2. a merge list out of training order: the passes stop where a merge makes a lower rank */
    ill = tt_synthetic("ab", ill_merges, (int)(sizeof ill_merges / sizeof ill_merges[0]));
    CHECK(ill != NULL, "out-of-order merge list loads");
    for (it = 0; ill && it < 3000; it++) {
        int32_t len = 2 + (int32_t)(tt_rng(&seed) % 600), i, m1, m2, *a = (int32_t *)malloc(sizeof(int32_t) * 4 * (size_t)len);
        for (i = 0; i < len; i++) { w[i] = (tt_rng(&seed) % 3) ? 'a' : 'b'; a[i] = a[len + i] = ill->byte_id[w[i]]; }
        m1 = tt_bpe_ref(ill, w, len, a + 2 * len);
        lfm2__bpe_passes(ill, a + len, len);
        m2 = tt_syms(ill, a + len, len, a + 3 * len);
        if (!tt_ids_eq(a + 2 * len, m1, a + 3 * len, m2)) bad_ill++;
        free(a);
    }
    CHECK(bad_ill == 0, "out-of-order merges: heap and in-place BPE disagree on %d of 3000 words", bad_ill);
    /* 3. long words of every kind: the windows give the whole word's BPE (or give up; they do not
       on these words), for the LFM2-like vocabulary and the out-of-order one */
    for (it = 0; it < 400; it++) {
        const struct lfm2__tokenizer *tk = (it % 10 == 9 && ill) ? ill : t;
        int32_t len = LFM2__BPE_WIN + 1 + (int32_t)(tt_rng(&seed) % (it < 380 ? 6000 : 120000)), prev_unk = 0;
        lfm2__enc e;
        kind = it % TT_N_KINDS;
        if (tk == ill) { int32_t i; for (i = 0; i < len; i++) w[i] = (tt_rng(&seed) % 3) ? 'a' : 'b'; }
        else tt_word(kind, w, len, &seed);
        nr = tt_bpe_ref(tk, w, len, ref);
        e.t = tk; e.out = ids; e.cap = len; e.n = 0;
        if (!lfm2__bpe_windows(&e, w, len, &prev_unk)) { unsettled++; continue; }
        n_win++;
        /* emitted ids: no unk in these vocabularies for these bytes, so they are the symbols */
        if (!tt_ids_eq(ids, e.n, ref, nr)) { if (bad_win++ < 3) CHECK(0, "word %d (%s, %d bytes): windows differ from the whole word's BPE at id %d", it, tk == ill ? "out-of-order merges" : tt_kinds[kind], (int)len, (int)tt_first_diff(ids, e.n, ref, nr)); }
    }
    CHECK(bad_win == 0 && unsettled == 0, "windows: %d wrong, %d not settled of 400 long words", bad_win, unsettled);
    /* 4. a run of 256-byte tokens cannot be settled in 512-byte windows: the in-place fallback */
    for (k = 0; k < 8; k++) { /* x^(2^k) + x^(2^k): tokens of up to 256 x */
        memset(xr[k], 'x', (size_t)1 << (k + 1));
        xr[k][1 << k] = ' ';
        xr[k][(1 << (k + 1)) + 1] = 0;
        xr[k][1 << (k + 1)] = 'x';
        xm[k] = xr[k];
    }
    xrun = tt_synthetic("x", xm, 8);
    CHECK(xrun != NULL && xrun->n_tok == 2 + 8, "x-run vocabulary (%d ids)", xrun ? (int)xrun->n_tok : 0);
    if (xrun) {
        int32_t prev_unk = 0, len = 100000, nn = 0, sq = 0;
        lfm2__enc e;
        memset(w, 'x', (size_t)len);
        nr = tt_bpe_ref(xrun, w, len, ref);
        e.t = xrun; e.out = ids; e.cap = len; e.n = 0;
        CHECK(!lfm2__bpe_windows(&e, w, len, &prev_unk), "a run of 256-byte tokens is not settled by 512-byte windows");
        /* through lfm2_tokenize: counted as its bytes, merged in place when out has room */
        CHECK(lfm2__tokenize_impl(xrun, (const char *)w, (size_t)len, 0, NULL, 0, &sq) == LFM2_OK && sq == len, "size query counts the bytes (%d)", (int)sq);
        CHECK(lfm2__tokenize_impl(xrun, (const char *)w, (size_t)len, 0, ids, len, &nn) == LFM2_OK && tt_ids_eq(ids, nn, ref, nr),
              "cap = the size needed: %d ids, want %d", (int)nn, (int)nr);
        CHECK(lfm2__tokenize_impl(xrun, (const char *)w, (size_t)len, 0, ids, nr, &nn) == LFM2_ERR_BUFFER_TOO_SMALL && nn == len,
              "cap = the %d ids: BUFFER_TOO_SMALL with the size needed (%d)", (int)nr, (int)nn);
        /* the same run after a byte without a token (the unk token, whose string is longer than
           one byte, lands where the in-place state is being read) */
        {
            struct lfm2__tokenizer *xu = tt_synthetic_unk("x", xm, 8, 1);
            CHECK(xu != NULL && xu->unk_id >= 0, "x-run with <unk> loads");
            if (xu) {
                w[0] = 'q';
                ref[0] = xu->unk_id;
                nr = 1 + tt_bpe_ref(xu, w + 1, len - 1, ref + 1);
                CHECK(lfm2__tokenize_impl(xu, (const char *)w, (size_t)len, 0, ids, len, &nn) == LFM2_OK && tt_ids_eq(ids, nn, ref, nr),
                      "unk + x-run in place: %d ids, want %d, first difference at %d", (int)nn, (int)nr, (int)tt_first_diff(ids, nn, ref, nr));
                lfm2__tokenizer_free(xu, NULL);
            }
            w[0] = 'x';
            nr = tt_bpe_ref(xrun, w, len, ref);
        }
        NOTE("x-run (256-byte tokens): 100000 bytes -> %d ids via the in-place fallback; size needed %d (its bytes); a buffer of %d ids: "
             "BUFFER_TOO_SMALL", (int)nr, (int)sq, (int)nr);
    }
    /* 5. merges whose order depends on the far end: the 1025 letters of a de Bruijn sequence
       (every pair of 32 letters once), each pair a merge, ranked from the right end to the left.
       The rightmost pair merges first and takes its left letter from the pair before it, and so
       on: the first letter pairs up or not by the parity of the length. Windows that agree with
       each other cannot know that; the last join fails and the in-place fallback runs. */
    {
        static const char sym32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
        int seq[1100], a3[3] = {0, 0, 0}, sl = 0, i;
        char (*mb)[4] = (char (*)[4])malloc(1024 * 4);
        const char **mp = (const char **)malloc(sizeof(char *) * 1024);
        struct lfm2__tokenizer *db;
        tt_debruijn(1, 1, 32, a3, seq, &sl);
        seq[sl] = seq[0]; /* the linear sequence: 1025 letters */
        for (i = 0; i < 1024; i++) { /* rank 0 = the last pair */
            mb[i][0] = sym32[seq[1023 - i]]; mb[i][1] = ' '; mb[i][2] = sym32[seq[1024 - i]]; mb[i][3] = 0;
            mp[i] = mb[i];
        }
        db = tt_synthetic(sym32, mp, 1024);
        CHECK(sl == 1024 && db != NULL && db->n_tok == 33 + 1024, "de Bruijn vocabulary (%d, %d ids)", sl, db ? (int)db->n_tok : 0);
        if (db) {
            int32_t prev_unk = 0, nn = -1, sq = -1;
            lfm2__enc e;
            for (i = 0; i <= 1024; i++) w[i] = (unsigned char)sym32[seq[i]];
            for (i = 1024; i <= 1025; i++) { /* the even prefix settles, the whole odd sequence does not */
                nr = tt_bpe_ref(db, w, i, ref);
                e.t = db; e.out = ids; e.cap = i; e.n = 0; prev_unk = 0;
                k = lfm2__bpe_windows(&e, w, i, &prev_unk);
                CHECK(k == (i == 1024) && (!k || tt_ids_eq(ids, e.n, ref, nr)), "de Bruijn, %d letters: windows settled %d", i, (int)k);
            }
            CHECK(nr == 513 && ref[0] == lfm2__vocab_find(db, (const char *)w, 1), "1025 letters -> %d ids (the first letter alone)", (int)nr);
            CHECK(lfm2__tokenize_impl(db, (const char *)w, 1025, 0, NULL, 0, &sq) == LFM2_OK && sq == 1025, "size query: the bytes (%d)", (int)sq);
            CHECK(lfm2__tokenize_impl(db, (const char *)w, 1025, 0, ids, 1025, &nn) == LFM2_OK && tt_ids_eq(ids, nn, ref, nr), "cap 1025: exact ids");
            CHECK(lfm2__tokenize_impl(db, (const char *)w, 1025, 0, ids, nr, &nn) == LFM2_ERR_BUFFER_TOO_SMALL && nn == 1025, "cap = ids: too small, %d", (int)nn);
            NOTE("de Bruijn run (merges ranked from the far end): 1024 letters settled by windows, 1025 by the in-place fallback (%d ids)", (int)nr);
        }
        lfm2__tokenizer_free(db, NULL);
        free(mb);
        free(mp);
    }
    NOTE("%d short words: heap vs in-place %d, vs linear scan %d of %d differ; out-of-order merges: %d of 3000 differ; "
         "%d long words (513..120512 bytes, %d kinds): windows %d differ, %d unsettled",
         3000, bad, bad_small, n_small, bad_ill, n_win, TT_N_KINDS, bad_win, unsettled);
    lfm2__tokenizer_free(xrun, NULL);
    lfm2__tokenizer_free(ill, NULL);
    lfm2__tokenizer_free(t, NULL);
    free(w); free(ids); free(ref);
}

/* a 1 MB pre-token of random letters, of one letter, of spaces, of a 3-byte symbol: fast (the
   windows are O(n log n)) and identical to the whole word's BPE */
static void test_long_speed(void) {
    struct lfm2__tokenizer *t = tt_load_like();
    uint64_t seed = 8;
    unsigned char *w = (unsigned char *)malloc(1 << 20);
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8)), *ref = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8));
    int32_t n, nr;
    int kind;
    double t0, secs;
    if (!t) { CHECK(0, "tokenizer did not load"); free(w); free(ids); free(ref); return; }
    for (kind = 0; kind < 4; kind++) {
        int32_t len = 1 << 20, kk = kind == 0 ? 0 : kind == 1 ? 2 : kind == 2 ? 3 : 5;
        tt_word(kk, w, len, &seed);
        t0 = tt_now();
        CHECK(lfm2__tokenize_impl(t, (const char *)w, (size_t)len, 0, ids, len, &n) == LFM2_OK, "1 MB %s", tt_kinds[kk]);
        secs = tt_now() - t0;
        nr = tt_bpe_ref(t, w, len, ref);
        CHECK(tt_ids_eq(ids, n, ref, nr), "1 MB %s: ids differ from the whole word's BPE", tt_kinds[kk]);
        CHECK(secs < 10.0, "1 MB %s took %.2f s", tt_kinds[kk], secs); /* the in-place passes took minutes on random letters */
        NOTE("1 MB of %s (one pre-token): %d ids in %.3f s, identical to the whole word's BPE", tt_kinds[kk], (int)n, secs);
    }
    lfm2__tokenizer_free(t, NULL);
    free(w); free(ids); free(ref);
}

/* Texts with long pre-tokens (runs of letters, spaces, symbols; 129 .. 100000 bytes, mixed)
   encoded into a buffer of exactly their number of ids, and one short of it; the size query. */
static void test_exact_fit(void) {
    struct lfm2__tokenizer *t = tt_load_like();
    static const int32_t lens[] = {129, 200, 511, 512, 513, 700, 1025, 4096, 10000, 100000};
    static const int kinds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 14};
    uint64_t seed = 99;
    char *text = (char *)malloc(1 << 20);
    int32_t *roomy = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8)), *fit = (int32_t *)malloc(sizeof(int32_t) * ((1 << 20) + 8));
    int it, bad_fit = 0, bad_short = 0, bad_query = 0, n_texts = 0, long_pre = 0;
    long total_ids = 0;
    if (!t) { CHECK(0, "tokenizer did not load"); free(text); free(roomy); free(fit); return; }
    for (it = 0; it < 160; it++) {
        size_t n = 0, i;
        int32_t nr = -1, nf = -1, ns = -1, nq = -1, parts = 1 + (int)(tt_rng(&seed) % 4), p, flags = (it & 1) ? LFM2_TOKENIZE_ADD_BOS : 0;
        lfm2_result rc;
        /* one long run per text for the first ones (every length x kind), then mixes */
        if (it < 120) parts = 1;
        for (p = 0; p < parts; p++) {
            int32_t len = it < 120 ? lens[it % 10] : lens[tt_rng(&seed) % 10];
            int kind = it < 120 ? kinds[(it / 10) % 12] : kinds[tt_rng(&seed) % 12];
            if (len > 60000 && it >= 120) len = 30000;
            memcpy(text + n, p ? " and " : "Hi ", p ? 5u : 3u);
            n += p ? 5u : 3u;
            tt_word(kind, (unsigned char *)text + n, len, &seed);
            n += (size_t)len;
        }
        memcpy(text + n, " end.\n", 6);
        n += 6;
        for (i = 0; i < n;) { size_t j = lfm2__split_next((const unsigned char *)text, i, n); if (j - i > LFM2__BPE_WIN) long_pre++; i = j; }
        rc = lfm2__tokenize_impl(t, text, n, flags, roomy, (int32_t)n + 8, &nr);
        CHECK(rc == LFM2_OK, "text %d: roomy encode %d", it, (int)rc);
        total_ids += nr;
        if (lfm2__tokenize_impl(t, text, n, flags, NULL, 0, &nq) != LFM2_OK || nq != nr) { bad_query++; CHECK(0, "text %d: size query %d, want %d", it, (int)nq, (int)nr); }
        memset(fit, 0xff, sizeof(int32_t) * (size_t)nr);
        rc = lfm2__tokenize_impl(t, text, n, flags, fit, nr, &nf);
        if (rc != LFM2_OK || !tt_ids_eq(fit, nf, roomy, nr)) { bad_fit++; CHECK(0, "text %d (%zu bytes): exact buffer of %d: %s, %d ids", it, n, (int)nr, lfm2_result_string(rc), (int)nf); }
        rc = lfm2__tokenize_impl(t, text, n, flags, fit, nr - 1, &ns);
        if (rc != LFM2_ERR_BUFFER_TOO_SMALL || ns != nr) { bad_short++; CHECK(0, "text %d: one short: %s, %d", it, lfm2_result_string(rc), (int)ns); }
        n_texts++;
    }
    CHECK(long_pre > 100, "only %d pre-tokens longer than a window", long_pre);
    NOTE("%d texts (%d pre-tokens over 512 bytes, %ld ids): exact buffer %d failures, one short %d wrong, size query %d wrong",
         n_texts, long_pre, total_ids, bad_fit, bad_short, bad_query);
    free(text); free(roomy); free(fit);
    lfm2__tokenizer_free(t, NULL);
}

/* ---- 9. a 128,000-id vocabulary (LFM2.5-8B-A1B's size), generated here --------------------- */

/* ids: 0-7 special tokens, 8-263 the 256 byte tokens, then every string of 2 and 3 lowercase
   letters and the first 4-letter ones in order up to 127998, each merged from its prefix and
   its last letter (merge rank = id - 264), 127999 a special token; the Split pattern of
   LFM2.5-8B-A1B. */
#define TT_V128 128000
#define TT_N4 (TT_V128 - 1 - 264 - 676 - 17576)
static int32_t tt_v128_rank(const char *s, int len) { /* rank of the merge that makes s, -1 if s is no token */
    int32_t x = 0, k;
    for (k = 0; k < len; k++) x = x * 26 + (s[k] - 'a');
    if (len == 2) return x;
    if (len == 3) return 676 + x;
    if (len == 4 && x < TT_N4) return 676 + 17576 + x;
    return -1;
}
static char *tt_v128_json(size_t *len) {
    static const char *const specials[8] = {"<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|reserved_3|>", "<|reserved_4|>", "<|reserved_5|>", "<|im_start|>", "<|im_end|>"};
    size_t cap = 8u << 20, n = 0;
    char *j = (char *)malloc(cap), s[8];
    int32_t id, k, b;
    n += (size_t)sprintf(j + n, "{\"added_tokens\": [");
    for (k = 0; k < 9; k++)
        n += (size_t)sprintf(j + n, "%s{\"id\": %d, \"content\": \"%s\", \"special\": true, \"lstrip\": false, \"rstrip\": false, \"single_word\": false, \"normalized\": false}",
                             k ? ", " : "", k < 8 ? (int)k : TT_V128 - 1, k < 8 ? specials[k] : "<|last|>");
    n += (size_t)sprintf(j + n, "], \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"");
    for (k = 0; lfm2__split_patterns[1][k]; k++) {
        if (lfm2__split_patterns[1][k] == '\\') j[n++] = '\\';
        j[n++] = lfm2__split_patterns[1][k];
    }
    n += (size_t)sprintf(j + n, "\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true,"
                                " \"use_regex\": false}]}, \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|startoftext|>\","
                                " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<|startoftext|>\": {\"id\": \"<|startoftext|>\","
                                " \"ids\": [1]}}}, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null,"
                                " \"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": {");
    for (b = 0; b < 256; b++) { /* the byte-level spelling of each byte, JSON-escaped */
        char u[4];
        size_t k2 = 0;
        lfm2__utf8_put(lfm2__byte_to_cp((unsigned)b), u, &k2);
        n += (size_t)sprintf(j + n, "%s\"%s%.*s\": %d", b ? ", " : "", (b == '"' || b == '\\') ? "\\" : "", (int)k2, u, 8 + b);
    }
    for (id = 264; id < TT_V128 - 1; id++) {
        int32_t r = id - 264, l = r < 676 ? 2 : r < 676 + 17576 ? 3 : 4, x = r - (l == 2 ? 0 : l == 3 ? 676 : 676 + 17576);
        for (k = l - 1; k >= 0; k--, x /= 26) s[k] = (char)('a' + x % 26);
        n += (size_t)sprintf(j + n, ", \"%.*s\": %d", (int)l, s, (int)id);
    }
    n += (size_t)sprintf(j + n, "}, \"merges\": [");
    for (id = 264; id < TT_V128 - 1; id++) {
        int32_t r = id - 264, l = r < 676 ? 2 : r < 676 + 17576 ? 3 : 4, x = r - (l == 2 ? 0 : l == 3 ? 676 : 676 + 17576);
        for (k = l - 1; k >= 0; k--, x /= 26) s[k] = (char)('a' + x % 26);
        n += (size_t)sprintf(j + n, "%s\"%.*s %c\"", id > 264 ? ", " : "", (int)(l - 1), s, s[l - 1]);
    }
    n += (size_t)sprintf(j + n, "]}}");
    *len = n;
    return j;
}
/* the reference: BPE of a lowercase word with the rule above, by repeated scans (strings) */
static int32_t tt_v128_bpe(const char *w, int32_t n, int32_t *ids) {
    int32_t st[4096], ln[4096], m = n, k, best, br;
    for (k = 0; k < n; k++) { st[k] = k; ln[k] = 1; }
    for (;;) {
        best = -1;
        br = INT32_MAX;
        for (k = 0; k + 1 < m; k++) {
            int32_t r;
            if (ln[k + 1] != 1 || ln[k] + 1 > 4) continue;
            r = tt_v128_rank(w + st[k], ln[k] + 1);
            if (r >= 0 && r < br) { br = r; best = k; }
        }
        if (best < 0) break;
        ln[best]++;
        for (k = best + 1; k + 1 < m; k++) { st[k] = st[k + 1]; ln[k] = ln[k + 1]; }
        m--;
    }
    for (k = 0; k < m; k++) ids[k] = ln[k] == 1 ? 8 + (unsigned char)w[st[k]] : 264 + tt_v128_rank(w + st[k], ln[k]);
    return m;
}

static void test_vocab128k(void) {
    size_t jn, n, dn;
    char *json = tt_v128_json(&jn), *text = (char *)malloc(1 << 16), *back = (char *)malloc(1 << 17);
    struct lfm2__tokenizer *t = NULL;
    lfm2_error e;
    double t0 = tt_now(), ms;
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (1 << 16)), *want = (int32_t *)malloc(sizeof(int32_t) * (1 << 16)), nid, nw, k;
    uint64_t seed = 128000;
    int it, bad = 0, bad_rt = 0;
    lfm2_result rc = lfm2__tokenizer_load(json, jn, NULL, 0, TT_V128, NULL, &e, &t);
    ms = (tt_now() - t0) * 1e3;
    CHECK(rc == LFM2_OK, "the 128,000-id tokenizer.json loads: %s", e.message);
    if (rc != LFM2_OK) { free(json); free(text); free(back); free(ids); free(want); return; }
    CHECK(t->n_tok == TT_V128 && t->n_ids == TT_V128, "size %d / %d ids", (int)t->n_tok, (int)t->n_ids);
    /* special tokens at their ids, both ways */
    CHECK(lfm2__tokenize_impl(t, "<|im_start|>x<|last|>", 21, LFM2_TOKENIZE_PARSE_SPECIAL | LFM2_TOKENIZE_ADD_BOS, ids, 16, &nid) == LFM2_OK &&
          nid == 4 && ids[0] == 1 && ids[1] == 6 && ids[2] == 8 + 'x' && ids[3] == TT_V128 - 1, "special tokens (%d ids)", (int)nid);
    CHECK(lfm2__detokenize_impl(t, ids, nid, 0, back, 64, &dn) == LFM2_OK && dn == 36 && memcmp(back, "<|startoftext|><|im_start|>x<|last|>", 36) == 0, "special decode");
    CHECK(lfm2__tok_lookup(t, "<|im_end|>", 10) == 7 && t->bos_id == 1 && lfm2__tok_lookup(t, "gfyx", 4) < 0 && lfm2__tok_lookup(t, "gfyw", 4) == TT_V128 - 2,
          "lookups: the last 4-letter token gfyw is id %d", (int)lfm2__tok_lookup(t, "gfyw", 4));
    /* words of lowercase letters (some longer than a window) vs the reference BPE */
    for (it = 0; it < 400; it++) {
        int32_t nwds = 1 + (int32_t)(tt_rng(&seed) % 6), q, len;
        n = 0;
        nw = 0;
        for (q = 0; q < nwds; q++) {
            len = 1 + (int32_t)(tt_rng(&seed) % (it % 20 == 0 ? 3000 : 40));
            if (q) { text[n++] = ' '; want[nw++] = 8 + 0x20; } /* the space: "Ġ" has no merges here */
            for (k = 0; k < len; k++) text[n + (size_t)k] = (char)('a' + tt_rng(&seed) % (it % 3 ? 26 : 5));
            nw += tt_v128_bpe(text + n, len, want + nw);
            n += (size_t)len;
        }
        if (lfm2__tokenize_impl(t, text, n, 0, ids, 1 << 16, &nid) != LFM2_OK || !tt_ids_eq(ids, nid, want, nw)) {
            if (bad++ < 3) CHECK(0, "text %d (%zu bytes): ids differ from the reference at %d", it, n, (int)tt_first_diff(ids, nid, want, nw));
        }
    }
    /* any bytes round-trip */
    for (it = 0; it < 200; it++) {
        n = (size_t)(tt_rng(&seed) % 2000);
        for (k = 0; k < (int32_t)n; k++) text[k] = (char)tt_rng(&seed);
        if (lfm2__tokenize_impl(t, text, n, 0, ids, (int32_t)n + 2, &nid) != LFM2_OK || lfm2__detokenize_impl(t, ids, nid, 0, back, 1 << 17, &dn) != LFM2_OK ||
            dn != n || memcmp(back, text, n) != 0)
            bad_rt++;
    }
    CHECK(bad == 0 && bad_rt == 0, "%d id mismatches, %d round-trip failures", bad, bad_rt);
    lfm2__tokenizer_free(t, NULL);
    /* the model's embedding must hold every id */
    t = NULL;
    CHECK(lfm2__tokenizer_load(json, jn, NULL, 0, TT_V128 - 1, NULL, &e, &t) == LFM2_ERR_BAD_TOKENIZER && strstr(e.message, "127999"), "127999 rows: %s", e.message);
    NOTE("128,000 ids (%.1f MB of tokenizer.json) loaded in %.0f ms; 400 texts vs the reference BPE: %d differ; 200 byte strings round trip: %d fail",
         (double)jn / 1e6, ms, bad, bad_rt);
    free(json); free(text); free(back); free(ids); free(want);
}

static const t_case tokenizer_tests[] = {
    {"tokenizer/golden30", test_golden30, T_EMU},
    {"tokenizer/doc", test_doc, 0},
    {"tokenizer/real_pretokens", test_real_pretokens, 0},
    {"tokenizer/demo_code_8m", test_demo_code, 0},
    {"tokenizer/roundtrip", test_roundtrip, 0},
    {"tokenizer/long_words", test_long_words, 0},
    {"tokenizer/long_speed", test_long_speed, T_SLOW},
    {"tokenizer/exact_fit", test_exact_fit, 0},
    {"tokenizer/vocab128k", test_vocab128k, 0},
    {"tokenizer/pretok_golden", test_pretok_golden, T_EMU},
    {"tokenizer/pretok_patterns", test_pretok_patterns, 0},
    {"tokenizer/stream", test_stream, 0},
    {"tokenizer/size-queries", test_size_queries, 0},
    {"tokenizer/chat", test_chat, 0},
    {"tokenizer/malformed", test_malformed, 0},
    {"tokenizer/model_api", test_model_api, 0},
    {"tokenizer/real_model", test_real_model, 0},
    {NULL, NULL, 0},
};
