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

/* the in-place pass algorithm (long pre-tokens) agrees with the heap (short ones) */
static void test_long_words(void) {
    struct lfm2__tokenizer *t = tt_load_like();
    static const char *const alpha[] = {"a", "b", "e", "th", "in", "\xc3\xa9", " ", "\t"};
    uint64_t seed = 7;
    int it, bad = 0, bad_small = 0, n_small = 0;
    int32_t s1[LFM2__BPE_STACK], s2[LFM2__BPE_STACK];
    int32_t *ids;
    char *big;
    int32_t n, cap;
    size_t dn, k;
    if (!t) { CHECK(0, "tokenizer did not load"); return; }
    for (it = 0; it < 3000; it++) {
        unsigned char w[LFM2__BPE_STACK];
        /* every other word short enough for the linear-scan path */
        int32_t len = 2 + (int32_t)(tt_rng(&seed) % ((it & 1) ? LFM2__BPE_SMALL - 2 : LFM2__BPE_STACK - 2)), i;
        int kind = it % 3; /* letters, spaces, anything */
        for (i = 0; i < len;) {
            const char *f = kind == 0 ? alpha[tt_rng(&seed) % 6] : kind == 1 ? alpha[6 + tt_rng(&seed) % 2] : NULL;
            if (!f) { w[i++] = (unsigned char)tt_rng(&seed); continue; }
            while (*f && i < len) w[i++] = (unsigned char)*f++;
        }
        for (i = 0; i < len; i++) s1[i] = s2[i] = t->byte_id[w[i]];
        lfm2__bpe_heap(t, s1, len);
        lfm2__bpe_passes(t, s2, len);
        for (i = 0; i < len; i++)
            if ((s1[i] >= -1 || s2[i] >= -1) && s1[i] != s2[i]) { bad++; break; }
        if (len <= LFM2__BPE_SMALL) { /* the linear-scan path of short words gives the same symbols */
            int32_t s3[LFM2__BPE_SMALL], r1[LFM2__BPE_SMALL], n3 = len, n1 = 0, q;
            for (i = 0; i < len; i++) s3[i] = t->byte_id[w[i]];
            lfm2__bpe_small(t, s3, &n3);
            for (q = 0; q < len; q += lfm2__sym_width(t, s1, q)) r1[n1++] = s1[q]; /* the heap's symbols in order */
            if (n1 != n3 || memcmp(r1, s3, sizeof(int32_t) * (size_t)n1) != 0) bad_small++;
            n_small++;
        }
    }
    CHECK(bad == 0, "heap and in-place BPE disagree on %d of 3000 words", bad);
    CHECK(bad_small == 0, "heap and linear-scan BPE disagree on %d of %d short words", bad_small, n_small);
    NOTE("heap vs in-place BPE: %d of 3000 words differ; heap vs linear scan: %d of %d short words differ", bad, bad_small, n_small);
    /* a 1 MB run of letters and one of spaces: the in-place path, exact cap */
    big = (char *)malloc(1 << 20);
    for (k = 0; k < (1u << 20); k++) big[k] = k < (1u << 19) ? "abcde"[k % 5] : ' ';
    cap = (1 << 20) + 2;
    ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap);
    CHECK(lfm2__tokenize_impl(t, big, 1u << 20, LFM2_TOKENIZE_ADD_BOS, ids, cap, &n) == LFM2_OK, "1 MB encode");
    CHECK(lfm2__detokenize_impl(t, ids + 1, n - 1, 0, big, 1 << 20, &dn) == LFM2_OK && dn == (1u << 20), "1 MB decode");
    for (k = 0; k < dn && big[k] == (k < (1u << 19) ? "abcde"[k % 5] : ' '); k++) {}
    CHECK(k == (1u << 20), "1 MB round trip");
    /* too small: BUFFER_TOO_SMALL with the bound */
    CHECK(lfm2__tokenize_impl(t, big, 1u << 20, LFM2_TOKENIZE_ADD_BOS, ids, 1000, &n) == LFM2_ERR_BUFFER_TOO_SMALL && n == (1 << 20) + 1,
          "small cap -> BUFFER_TOO_SMALL with the bound (got %d)", (int)n);
    NOTE("3000 words: heap vs in-place BPE, %d disagreements; 1 MB pre-tokens round trip", bad);
    free(ids);
    free(big);
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
    CHECK(lfm2_chat_format(mv, 1, NULL, 0, 0, NULL, 0, &n) == LFM2_ERR_BUFFER_TOO_SMALL && n == 43, "size query");
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
    lfm2_chat_message msg = {"user", "What is C. elegans?"};
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
    CHECK(lfm2_tokenize(m, "Hello world", 11, 0, ids, 1, &ng) == LFM2_ERR_BUFFER_TOO_SMALL && ng == 11, "BUFFER_TOO_SMALL bound");
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

static const t_case tokenizer_tests[] = {
    {"tokenizer/golden30", test_golden30, T_EMU},
    {"tokenizer/doc", test_doc, 0},
    {"tokenizer/real_pretokens", test_real_pretokens, 0},
    {"tokenizer/demo_code_8m", test_demo_code, 0},
    {"tokenizer/roundtrip", test_roundtrip, 0},
    {"tokenizer/long_words", test_long_words, 0},
    {"tokenizer/stream", test_stream, 0},
    {"tokenizer/size-queries", test_size_queries, 0},
    {"tokenizer/chat", test_chat, 0},
    {"tokenizer/malformed", test_malformed, 0},
    {"tokenizer/model_api", test_model_api, 0},
    {"tokenizer/real_model", test_real_model, 0},
    {NULL, NULL, 0},
};
