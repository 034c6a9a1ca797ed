/* tests/test_core.c - config, safetensors, forward pass against the transformers goldens,
   chunked prefill, state snapshots, malformed inputs. */

/* ---- helpers: reference tensors ------------------------------------------------------------ */

typedef struct t_ref {
    char *buf;
    size_t size;
    lfm2__stfile f;
} t_ref;

static int t_ref_open(t_ref *r, const char *path) {
    lfm2_error e;
    memset(r, 0, sizeof *r);
    r->buf = t_read_file(path, &r->size);
    if (!r->buf) return 0;
    if (lfm2__st_parse(r->buf, r->size, path, 0, NULL, &e, &r->f) != LFM2_OK) {
        printf("    %s\n", e.message);
        free(r->buf);
        r->buf = NULL;
        return 0;
    }
    return 1;
}
static void t_ref_close(t_ref *r) {
    lfm2__st_free(&r->f, NULL);
    free(r->buf);
}
/* f32 copy of a reference tensor (F32 or I32 stored), malloc'd; NULL if absent */
static float *t_ref_f32(const t_ref *r, const char *name, uint64_t *n) {
    const lfm2__tensor *t = lfm2__st_find(&r->f, name);
    float *o;
    if (!t || t->dtype != LFM2__DT_F32) return NULL;
    o = (float *)malloc(t->nbytes + 4);
    memcpy(o, t->data, t->nbytes);
    if (n) *n = t->numel;
    return o;
}
static int32_t *t_ref_i32(const t_ref *r, const char *name, uint64_t *n) {
    const lfm2__tensor *t = lfm2__st_find(&r->f, name);
    int32_t *o;
    if (!t || t->dtype != LFM2__DT_I32) return NULL;
    o = (int32_t *)malloc(t->nbytes + 4);
    memcpy(o, t->data, t->nbytes);
    if (n) *n = t->numel;
    return o;
}
/* max |a-b| / max |ref| */
static double t_rel_err(const float *a, const float *ref, size_t n) {
    double mx = 0, mr = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > mx || d != d) mx = d != d ? 1e30 : d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mr > 0 ? mx / mr : mx;
}

static lfm2_model *t_load(const char *name) {
    char path[512];
    lfm2_model *m = NULL;
    lfm2_error e;
    lfm2_model_params p;
    memset(&p, 0, sizeof p);
    p.error = &e;
    if (strchr(name, '/')) snprintf(path, sizeof path, "%s", name);
    else snprintf(path, sizeof path, "%s/%s", t_data_dir(), name);
    if (lfm2_model_load_dir(path, &p, &m) != LFM2_OK) printf("    load %s: %s\n", path, e.message);
    return m;
}

/* ---- config ------------------------------------------------------------------------------- */

static void test_config_real(void) {
    static const struct { const char *file; int32_t F, D, H, Hkv; uint64_t params; } cases[] = {
        {"reference/lfm2-350m/config.json", 4608, 1024, 16, 8, 354483968ULL},
        {"reference/lfm2-700m/config.RECONSTRUCTED.json", 6912, 1536, 24, 8, 742489344ULL},
        {"reference/lfm2-1.2b/config.json", 8192, 2048, 32, 8, 1170340608ULL},
    };
    static const int attn[6] = {2, 5, 8, 10, 12, 14};
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        size_t n;
        char *txt;
        lfm2_config c;
        lfm2_error e;
        int k, attn_ok = 1;
        snprintf(path, sizeof path, "%s/%s", t_data_dir(), cases[i].file);
        txt = t_read_file(path, &n);
        CHECK(txt != NULL, "cannot read %s", path);
        if (!txt) continue;
        CHECK(lfm2_config_parse(txt, n, &c, &e) == LFM2_OK, "%s: %s", cases[i].file, e.message);
        CHECK(c.ff_dim == cases[i].F, "%s: ff_dim %d, expected %d", cases[i].file, c.ff_dim, cases[i].F);
        CHECK(c.hidden_size == cases[i].D && c.num_attention_heads == cases[i].H && c.num_key_value_heads == cases[i].Hkv && c.head_dim == 64,
              "%s: dims", cases[i].file);
        CHECK(c.n_eos >= 1 && c.eos_token_ids[0] == 7, "%s: eos %d", cases[i].file, c.eos_token_ids[0]);
        CHECK(c.rope_theta == 1e6 && c.norm_eps == 1e-5f && c.conv_L_cache == 3 && c.tie_word_embeddings, "%s: theta/eps/L/tie", cases[i].file);
        for (k = 0; k < 16; k++) {
            int want = (k == 2 || k == 5 || k == 8 || k == 10 || k == 12 || k == 14);
            if (c.layer_is_attention[k] != want) attn_ok = 0;
        }
        (void)attn;
        CHECK(attn_ok && c.n_attention_layers == 6 && c.num_hidden_layers == 16, "%s: attention layers", cases[i].file);
        CHECK(lfm2_config_param_count(&c) == cases[i].params, "%s: %llu parameters, expected %llu", cases[i].file,
              (unsigned long long)lfm2_config_param_count(&c), (unsigned long long)cases[i].params);
        NOTE("%s: F=%d, attention layers 2,5,8,10,12,14, eos 7, %llu parameters", cases[i].file, c.ff_dim, (unsigned long long)lfm2_config_param_count(&c));
        free(txt);
    }
}

/* the two key styles of tiny-bf16 resolve to the same model */
static void test_config_styles(void) {
    char p1[512], p2[512];
    char *a, *b;
    size_t na, nb;
    lfm2_config ca, cb;
    snprintf(p1, sizeof p1, "%s/tiny-bf16/config.json", t_data_dir());
    snprintf(p2, sizeof p2, "%s/tiny-bf16-released-style/config.json", t_data_dir());
    a = t_read_file(p1, &na);
    b = t_read_file(p2, &nb);
    CHECK(a && b, "cannot read the configs");
    if (!a || !b) { free(a); free(b); return; }
    CHECK(lfm2_config_parse(a, na, &ca, NULL) == LFM2_OK && lfm2_config_parse(b, nb, &cb, NULL) == LFM2_OK, "parse");
    CHECK(memcmp(&ca, &cb, sizeof ca) == 0, "transformers-5 style and released style differ");
    CHECK(ca.ff_dim == 192, "ff_dim %d, expected 192 (256 -> int(2*256/3)=170 -> multiple of 32)", ca.ff_dim);
    NOTE("both styles: F=%d, attention layers %d, theta %g", ca.ff_dim, ca.n_attention_layers, ca.rope_theta);
    free(a);
    free(b);
}

/* every rule of config resolution, on small texts */
static void test_config_rules(void) {
    lfm2_config c;
    lfm2_error e;
    const char *base = "{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":2,";
    char buf[1024];
    /* all-attention fallback */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK, "%s", e.message);
    CHECK(c.n_attention_layers == 3 && c.n_conv_layers == 0, "no layer_types/full_attn_idxs must mean all attention");
    CHECK(c.ff_dim == 256, "default multiple_of 256: 256 -> 170 -> 256, got %d", c.ff_dim);
    /* null multiplier: no rounding (HF) */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":8192,\"block_ffn_dim_multiplier\":null}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 5461, "null multiplier: F %d, expected 5461", c.ff_dim);
    /* auto-adjust off */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":10752,\"block_auto_adjust_ff_dim\":false}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 10752, "auto-adjust off: F %d", c.ff_dim);
    /* block_ff_dim overrides intermediate_size */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":8192,\"block_ff_dim\":12288}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 8192, "block_ff_dim override: F %d", c.ff_dim);
    /* theta aliases */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"theta\":5000}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.rope_theta == 5000, "theta alias: %g", c.rope_theta);
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"rope_parameters\":{\"rope_theta\":20000.0,\"rope_type\":\"default\"}}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.rope_theta == 20000, "rope_parameters: %g", c.rope_theta);
    /* tie_embedding takes precedence */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"tie_word_embeddings\":true,\"tie_embedding\":false}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.tie_word_embeddings == 0, "tie_embedding precedence");
    /* eos list */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"eos_token_id\":[7,2]}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.n_eos == 2 && c.eos_token_ids[1] == 2, "eos list");
}

/* malformed configs: each a specific error naming the key */
static void test_config_errors(void) {
    static const struct { const char *json; lfm2_result rc; const char *needle; } cases[] = {
        {"", LFM2_ERR_BAD_CONFIG, "empty"},
        {"{\"vocab_size\":100", LFM2_ERR_BAD_CONFIG, "byte"},
        {"[1,2]", LFM2_ERR_BAD_CONFIG, "object"},
        {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "vocab_size"},
        {"{\"vocab_size\":\"100\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "vocab_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64.5,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "hidden_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":100000,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "num_hidden_layers"},
        {"{\"vocab_size\":100,\"hidden_size\":1e300,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "hidden_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":3,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "num_key_value_heads"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2}", LFM2_ERR_BAD_CONFIG, "intermediate_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"layer_types\":[\"conv\",\"sliding_attention\"]}", LFM2_ERR_UNSUPPORTED, "sliding_attention"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"layer_types\":[\"conv\"]}", LFM2_ERR_BAD_CONFIG, "layer_types"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"full_attn_idxs\":[5]}", LFM2_ERR_BAD_CONFIG, "full_attn_idxs"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"norm_eps\":-1}", LFM2_ERR_BAD_CONFIG, "norm_eps"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_theta\":NaN}", LFM2_ERR_BAD_CONFIG, "byte"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_theta\":1e999}", LFM2_ERR_BAD_CONFIG, "rope_theta"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"conv_bias\":\"yes\"}", LFM2_ERR_BAD_CONFIG, "conv_bias"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"model_type\":\"llama\"}", LFM2_ERR_UNSUPPORTED, "llama"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_parameters\":{\"rope_type\":\"yarn\"}}", LFM2_ERR_UNSUPPORTED, "yarn"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"block_dim\":32}", LFM2_ERR_BAD_CONFIG, "block_dim"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", LFM2_ERR_BAD_CONFIG, "deep"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lfm2_config c;
        lfm2_error e;
        lfm2_result rc;
        memset(&e, 0, sizeof e);
        rc = lfm2_config_parse(cases[i].json, strlen(cases[i].json), &c, &e);
        CHECK(rc == cases[i].rc, "case %d: got %s, expected %s (%s)", (int)i, lfm2_result_string(rc), lfm2_result_string(cases[i].rc), e.message);
        CHECK(strstr(e.message, cases[i].needle) != NULL, "case %d: message \"%s\" does not name \"%s\"", (int)i, e.message, cases[i].needle);
        NOTE("config case %2d -> %s: %s", (int)i, lfm2_result_string(rc), e.message);
    }
}

/* ---- forward pass against the goldens ----------------------------------------------------- */

static void t_golden_model(const char *name) {
    char path[512];
    t_ref r;
    lfm2_model *m = t_load(name);
    lfm2_context *c = NULL;
    lfm2_context_params cp;
    const lfm2_config *cf;
    uint64_t n_ids = 0, n = 0;
    int32_t *ids, *gids;
    float *ref, *out, *hid;
    double err, worst_h = 0;
    int32_t V, D, L, t, i;
    CHECK(m != NULL, "load %s", name);
    if (!m) return;
    cf = lfm2_model_config(m);
    V = cf->vocab_size;
    D = cf->hidden_size;
    L = cf->num_hidden_layers;
    snprintf(path, sizeof path, "%s/%s/ref.safetensors", t_data_dir(), name);
    CHECK(t_ref_open(&r, path), "open %s", path);
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = 512;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_OK, "context");
    /* short prompt: logits at every position and the hidden states of every layer */
    ids = t_ref_i32(&r, "short.ids", &n_ids);
    ref = t_ref_f32(&r, "short.logits", &n);
    out = (float *)malloc(sizeof(float) * n_ids * (size_t)V);
    hid = (float *)malloc(sizeof(float) * (size_t)(L + 2) * n_ids * (size_t)D);
    c->dbg_hidden = hid;
    CHECK(lfm2_context_decode_all(c, ids, (int32_t)n_ids, out) == LFM2_OK, "decode_all: %s", lfm2_context_error(c));
    c->dbg_hidden = NULL;
    err = t_rel_err(out, ref, n);
    CHECK(err < 1e-4, "short.logits: rel err %.3g", err);
    NOTE("%s short.logits [%d x %d]: max|err|/max|ref| = %.3g", name, (int)n_ids, V, err);
    free(ref);
    ref = t_ref_f32(&r, "short.hidden", &n);
    CHECK(ref && n == (uint64_t)(L + 2) * n_ids * (uint64_t)D, "short.hidden shape");
    if (ref) {
        for (i = 0; i < L + 2; i++) {
            double e = t_rel_err(hid + (size_t)i * n_ids * D, ref + (size_t)i * n_ids * D, n_ids * (size_t)D);
            CHECK(e < 1e-4, "short.hidden[%d]: rel err %.3g", i, e);
            if (e > worst_h) worst_h = e;
        }
        NOTE("%s short.hidden [%d stages]: worst per-stage rel err = %.3g", name, L + 2, worst_h);
    }
    free(ref);
    free(hid);
    free(out);
    /* long prompt */
    free(ids);
    lfm2_context_reset(c);
    ids = t_ref_i32(&r, "long.ids", &n_ids);
    out = (float *)malloc(sizeof(float) * n_ids * (size_t)V);
    CHECK(lfm2_context_decode_all(c, ids, (int32_t)n_ids, out) == LFM2_OK, "decode_all long: %s", lfm2_context_error(c));
    ref = t_ref_f32(&r, "long.logits", &n);
    if (ref) {
        err = t_rel_err(out, ref, n);
        CHECK(err < 1e-4, "long.logits: rel err %.3g", err);
        NOTE("%s long.logits [%d x %d]: rel err = %.3g", name, (int)n_ids, V, err);
    } else {
        int32_t *am = t_ref_i32(&r, "long.argmax", &n);
        int bad = 0;
        ref = t_ref_f32(&r, "long.logits_last", NULL);
        CHECK(ref && am, "long.logits_last / long.argmax");
        if (ref && am) {
            err = t_rel_err(out + (n_ids - 1) * (size_t)V, ref, (size_t)V);
            CHECK(err < 1e-4, "long.logits_last: rel err %.3g", err);
            for (t = 0; t < (int32_t)n; t++) if (lfm2_argmax(out + (size_t)t * V, V) != am[t]) bad++;
            CHECK(bad == 0, "long.argmax: %d of %d positions differ", bad, (int)n);
            NOTE("%s long [%d]: last-position rel err = %.3g, argmax at every position %s", name, (int)n_ids, err, bad ? "DIFFERS" : "identical");
        }
        free(am);
    }
    free(ref);
    free(out);
    free(ids);
    /* greedy decode with the cache, one token at a time */
    lfm2_context_reset(c);
    ids = t_ref_i32(&r, "short.ids", &n_ids);
    gids = t_ref_i32(&r, "greedy.ids", &n);
    {
        const float *lg;
        float *gl = t_ref_f32(&r, "greedy.logits", NULL);
        float *top = t_ref_f32(&r, "greedy.top8_values", NULL);
        int32_t *topi = t_ref_i32(&r, "greedy.top8_ids", NULL);
        int32_t mismatch = -1;
        double werr = 0;
        CHECK(lfm2_context_decode(c, ids, (int32_t)n_ids, &lg) == LFM2_OK, "prefill");
        for (t = 0; t < (int32_t)n; t++) {
            lfm2_token next = lfm2_argmax(lg, V);
            if (gl) { double e = t_rel_err(lg, gl + (size_t)t * V, (size_t)V); if (e > werr) werr = e; }
            if (top && topi) {
                float mr = 0, mx = 0;
                for (i = 0; i < 8; i++) {
                    double d = fabs(lg[topi[t * 8 + i]] - top[t * 8 + i]);
                    if (d > mx) mx = (float)d;
                    if (fabs(top[t * 8 + i]) > mr) mr = (float)fabs(top[t * 8 + i]);
                }
                if (mx / mr > werr) werr = mx / mr;
            }
            if (next != gids[t] && mismatch < 0) mismatch = t;
            next = gids[t]; /* follow the reference path so later steps stay comparable */
            CHECK(lfm2_context_decode(c, &next, 1, &lg) == LFM2_OK, "decode step %d", t);
        }
        CHECK(mismatch < 0, "greedy.ids differ from step %d", mismatch);
        CHECK(werr < 1e-4, "greedy logits rel err %.3g", werr);
        NOTE("%s greedy [%d steps, cached, one token each]: ids %s, logits rel err = %.3g", name, (int)n, mismatch < 0 ? "identical" : "DIFFER", werr);
        free(gl); free(top); free(topi);
    }
    free(gids);
    free(ids);
    t_ref_close(&r);
    lfm2_context_free(c);
    lfm2_model_free(m);
}

static void test_golden_tiny_bf16(void) { t_golden_model("tiny-bf16"); }
static void test_golden_tiny_bf16_released(void) {
    /* same weights, released-style config: the references of tiny-bf16 apply */
    lfm2_model *m = t_load("tiny-bf16-released-style");
    CHECK(m != NULL, "load");
    if (m) {
        char path[512];
        t_ref r;
        lfm2_context *c;
        uint64_t n_ids, n;
        int32_t *ids;
        float *ref, *out;
        double e;
        snprintf(path, sizeof path, "%s/tiny-bf16-released-style/ref.safetensors", t_data_dir());
        CHECK(t_ref_open(&r, path), "ref");
        lfm2_context_create(m, NULL, &c);
        ids = t_ref_i32(&r, "long.ids", &n_ids);
        ref = t_ref_f32(&r, "long.logits", &n);
        out = (float *)malloc(sizeof(float) * n);
        CHECK(lfm2_context_decode_all(c, ids, (int32_t)n_ids, out) == LFM2_OK, "decode");
        e = t_rel_err(out, ref, n);
        CHECK(e < 1e-4, "rel err %.3g", e);
        NOTE("tiny-bf16-released-style long.logits: rel err = %.3g", e);
        free(ids); free(ref); free(out);
        t_ref_close(&r);
        lfm2_context_free(c);
        lfm2_model_free(m);
    }
}
static void test_golden_tiny_f32(void) { t_golden_model("tiny-f32-untied-bias"); }
static void test_golden_tiny_f16(void) { t_golden_model("tiny-f16-sharded"); }
static void test_golden_realvocab(void) { t_golden_model("realvocab-bf16"); }

static void test_golden_demo(void) {
    lfm2_model *m = t_load("models/demo-code-8m");
    t_ref r;
    lfm2_context *c;
    int p;
    CHECK(m != NULL, "load models/demo-code-8m");
    if (!m) return;
    CHECK(t_ref_open(&r, "models/demo-code-8m/ref.safetensors"), "ref");
    lfm2_context_create(m, NULL, &c);
    for (p = 0; p < 3; p++) {
        char nm[64];
        uint64_t n_ids, n;
        int32_t *ids, *g;
        float *ref, *out;
        double e;
        int32_t V = lfm2_model_config(m)->vocab_size, t, bad = -1;
        const float *lg;
        snprintf(nm, sizeof nm, "p%d.ids", p);
        ids = t_ref_i32(&r, nm, &n_ids);
        snprintf(nm, sizeof nm, "p%d.logits", p);
        ref = t_ref_f32(&r, nm, &n);
        snprintf(nm, sizeof nm, "p%d.greedy", p);
        g = t_ref_i32(&r, nm, NULL);
        out = (float *)malloc(sizeof(float) * n);
        lfm2_context_reset(c);
        CHECK(lfm2_context_decode_all(c, ids, (int32_t)n_ids, out) == LFM2_OK, "decode");
        e = t_rel_err(out, ref, n);
        CHECK(e < 1e-4, "p%d.logits rel err %.3g", p, e);
        lg = lfm2_context_logits(c);
        for (t = 0; t < 48; t++) {
            lfm2_token nx = lfm2_argmax(lg, V);
            if (nx != g[t] && bad < 0) bad = t;
            CHECK(lfm2_context_decode(c, &nx, 1, &lg) == LFM2_OK, "step");
        }
        CHECK(bad < 0, "p%d.greedy differs at step %d", p, bad);
        NOTE("demo-code-8m p%d: logits rel err = %.3g over %d positions; 48 greedy tokens %s", p, e, (int)n_ids, bad < 0 ? "identical" : "DIFFER");
        free(ids); free(ref); free(g); free(out);
    }
    t_ref_close(&r);
    lfm2_context_free(c);
    lfm2_model_free(m);
}

/* whole prompt vs one token at a time vs chunks of 2, 3, 7 (and a small n_batch) */
static void test_chunked_prefill(void) {
    static const char *models[] = {"tiny-bf16", "tiny-f32-untied-bias", "tiny-f16-sharded"};
    size_t mi;
    for (mi = 0; mi < 3; mi++) {
        lfm2_model *m = t_load(models[mi]);
        char path[512];
        t_ref r;
        int32_t *ids;
        uint64_t n;
        int32_t V, N = 40, chunks[5] = {1, 2, 3, 7, 40}, ci, i;
        float *whole, *part;
        lfm2_context *c;
        double worst = 0;
        CHECK(m != NULL, "load");
        if (!m) continue;
        V = lfm2_model_config(m)->vocab_size;
        snprintf(path, sizeof path, "%s/%s/ref.safetensors", t_data_dir(), models[mi]);
        t_ref_open(&r, path);
        ids = t_ref_i32(&r, "long.ids", &n);
        whole = (float *)malloc(sizeof(float) * (size_t)N * V);
        part = (float *)malloc(sizeof(float) * (size_t)N * V);
        lfm2_context_create(m, NULL, &c);
        CHECK(lfm2_context_decode_all(c, ids, N, whole) == LFM2_OK, "whole");
        for (ci = 0; ci < 5; ci++) {
            lfm2_context_params cp;
            lfm2_context *c2;
            double e;
            memset(&cp, 0, sizeof cp);
            cp.n_batch = (ci == 4) ? 5 : 0;  /* last case: the library splits into n_batch = 5 itself */
            lfm2_context_create(m, &cp, &c2);
            for (i = 0; i < N; i += chunks[ci]) {
                int32_t k = (N - i < chunks[ci]) ? N - i : chunks[ci];
                CHECK(lfm2_context_decode_all(c2, ids + i, k, part + (size_t)i * V) == LFM2_OK, "chunk");
            }
            e = t_rel_err(part, whole, (size_t)N * V);
            if (e > worst) worst = e;
            CHECK(e < 1e-5, "%s chunk %d: rel err %.3g", models[mi], chunks[ci], e);
            CHECK(lfm2_context_pos(c2) == N, "pos");
            lfm2_context_free(c2);
        }
        NOTE("%s: whole vs chunks of 1, 2, 3, 7 and n_batch 5: worst rel diff = %.3g", models[mi], worst);
        free(whole); free(part); free(ids);
        t_ref_close(&r);
        lfm2_context_free(c);
        lfm2_model_free(m);
    }
}

/* bit-identical logits for 1 and 2 threads and for any chunking, with every weight format
   (as stored = bf16, int8 and int4 at load: the int8-activation kernels too) */
static void test_threads_identical(void) {
    static const int32_t types[4] = {LFM2_WEIGHTS_AS_STORED, LFM2_WEIGHTS_AS_STORED, LFM2_WEIGHTS_Q8, LFM2_WEIGHTS_Q4};
    static const char *names[4] = {"bf16", "bf16 keep_layout", "q8", "q4"};
    int ti;
    for (ti = 0; ti < 4; ti++) {
        char path[1024];
        lfm2_model_params p;
        lfm2_model *m = NULL;
        lfm2_context_params cp;
        lfm2_context *c1, *c2, *c3;
        lfm2_token ids[20];
        float *a, *b, *cc;
        int32_t V, i;
        int same_threads, same_chunks;
        memset(&p, 0, sizeof p);
        p.weights = types[ti];
        p.keep_layout = ti == 1;
        snprintf(path, sizeof path, "%s/realvocab-bf16", t_data_dir());
        CHECK(lfm2_model_load_dir(path, &p, &m) == LFM2_OK, "load %s", names[ti]);
        if (!m) continue;
        V = lfm2_model_config(m)->vocab_size;
        for (i = 0; i < 20; i++) ids[i] = (i * 7919 + 13) % V;
        memset(&cp, 0, sizeof cp);
        cp.n_threads = 1;
        lfm2_context_create(m, &cp, &c1);
        lfm2_context_create(m, &cp, &c3);
        cp.n_threads = 2;
        lfm2_context_create(m, &cp, &c2);
        a = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        b = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        cc = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        lfm2_context_decode_all(c1, ids, 20, a);
        lfm2_context_decode_all(c2, ids, 20, b);
        for (i = 0; i < 20; i += 3) lfm2_context_decode_all(c3, ids + i, 20 - i < 3 ? 20 - i : 3, cc + (size_t)i * V);
        same_threads = memcmp(a, b, sizeof(float) * 20 * (size_t)V) == 0;
        same_chunks = memcmp(a, cc, sizeof(float) * 20 * (size_t)V) == 0;
        CHECK(same_threads, "%s: 1 and 2 threads differ", names[ti]);
        CHECK(same_chunks, "%s: whole and chunks of 3 differ", names[ti]);
        NOTE("%s (%s): 1 vs 2 threads %s, whole vs chunks of 3 %s", names[ti], LFM2__IS_FX(m->layers[0].w1.dtype) || m->layers[0].w1.dtype >= LFM2__DT_Q8X ? "interleaved" : "row-major",
             same_threads ? "bit-identical" : "DIFFERENT", same_chunks ? "bit-identical" : "DIFFERENT");
        free(a); free(b); free(cc);
        lfm2_context_free(c1);
        lfm2_context_free(c2);
        lfm2_context_free(c3);
        lfm2_model_free(m);
    }
}

/* snapshot mid-generation, restore in a fresh context: identical logits afterwards */
static void test_state_snapshot(void) {
    lfm2_model *m = t_load("tiny-bf16");
    lfm2_context *a, *b;
    lfm2_context_params cp;
    lfm2_token ids[12] = {1, 5, 9, 100, 200, 300, 17, 42, 7, 8, 9, 10}, t;
    const float *la, *lb;
    size_t need, wrote;
    void *buf;
    int32_t V, s, same = 1;
    CHECK(m != NULL, "load");
    if (!m) return;
    V = lfm2_model_config(m)->vocab_size;
    lfm2_context_create(m, NULL, &a);
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = 256;
    lfm2_context_create(m, &cp, &b);
    lfm2_context_decode(a, ids, 8, &la);
    t = lfm2_argmax(la, V);
    lfm2_context_decode(a, &t, 1, &la);
    need = lfm2_context_state_size(a);
    CHECK(lfm2_context_state_save(a, NULL, 0, &wrote) == LFM2_ERR_BUFFER_TOO_SMALL && wrote == need, "size report");
    buf = malloc(need);
    CHECK(lfm2_context_state_save(a, buf, need, &wrote) == LFM2_OK && wrote == need, "save");
    CHECK(lfm2_context_state_load(b, buf, need) == LFM2_OK, "load: %s", lfm2_context_error(b));
    CHECK(lfm2_context_pos(b) == 9, "pos after load");
    lb = lfm2_context_logits(b);
    CHECK(lb && memcmp(la, lb, sizeof(float) * (size_t)V) == 0, "restored logits");
    for (s = 0; s < 10; s++) {
        lfm2_token ta = lfm2_argmax(la, V), tb = lfm2_argmax(lb, V);
        if (ta != tb) same = 0;
        lfm2_context_decode(a, &ta, 1, &la);
        lfm2_context_decode(b, &tb, 1, &lb);
        if (memcmp(la, lb, sizeof(float) * (size_t)V) != 0) same = 0;
    }
    CHECK(same, "continuations differ after restore");
    /* corrupt / foreign states are refused */
    ((uint32_t *)buf)[3] += 1;
    CHECK(lfm2_context_state_load(b, buf, need) == LFM2_ERR_INVALID_ARG, "wrong hidden size must be refused");
    NOTE("state of %zu bytes at pos 9: restored context continues with identical logits for 10 steps; foreign header refused (%s)", need, lfm2_context_error(b));
    CHECK(lfm2_context_state_load(b, buf, need - 4) == LFM2_ERR_INVALID_ARG, "short state must be refused");
    free(buf);
    lfm2_context_free(a);
    lfm2_context_free(b);
    lfm2_model_free(m);
}

/* decode limits: context full, bad ids */
static void test_decode_limits(void) {
    lfm2_model *m = t_load("tiny-bf16");
    lfm2_context_params cp;
    lfm2_context *c;
    lfm2_token ids[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, bad = 512, neg = -1;
    const float *lg;
    CHECK(m != NULL, "load");
    if (!m) return;
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = 8;
    lfm2_context_create(m, &cp, &c);
    CHECK(lfm2_context_decode(c, ids, 10, &lg) == LFM2_ERR_CONTEXT_FULL && lg == NULL, "10 tokens into n_ctx 8");
    NOTE("%s", lfm2_context_error(c));
    CHECK(lfm2_context_pos(c) == 0, "position unchanged after refusal");
    CHECK(lfm2_context_decode(c, ids, 8, &lg) == LFM2_OK, "8 tokens fit");
    CHECK(lfm2_context_decode(c, ids, 1, &lg) == LFM2_ERR_CONTEXT_FULL, "9th token");
    lfm2_context_reset(c);
    CHECK(lfm2_context_decode(c, &bad, 1, &lg) == LFM2_ERR_INVALID_ARG, "id = vocab_size");
    NOTE("%s", lfm2_context_error(c));
    CHECK(lfm2_context_decode(c, &neg, 1, &lg) == LFM2_ERR_INVALID_ARG, "negative id");
    CHECK(lfm2_context_decode(c, ids, 0, &lg) == LFM2_ERR_INVALID_ARG, "n = 0");
    lfm2_context_free(c);
    lfm2_model_free(m);
}

/* ---- malformed weights -------------------------------------------------------------------- */

/* rebuilds a safetensors file with its header text edited: replace `from` by `to` once */
static char *t_st_edit(const char *file, size_t size, const char *from, const char *to, size_t *out_size) {
    uint64_t hl = lfm2__rd_u64le((const unsigned char *)file);
    char *h = (char *)malloc(hl + 1), *pos, *nh, *out;
    size_t nhl, i;
    memcpy(h, file + 8, hl);
    h[hl] = 0;
    pos = strstr(h, from);
    if (!pos) { free(h); return NULL; }
    nhl = hl - strlen(from) + strlen(to);
    nhl += (8 - (nhl - hl) % 8) % 8;   /* pad with spaces, as writers do, so the data stays aligned */
    nh = (char *)malloc(nhl + 1);
    memset(nh, ' ', nhl);
    memcpy(nh, h, (size_t)(pos - h));
    memcpy(nh + (pos - h), to, strlen(to));
    memcpy(nh + (pos - h) + strlen(to), pos + strlen(from), strlen(pos + strlen(from)));
    *out_size = 8 + nhl + (size - 8 - hl);
    out = (char *)malloc(*out_size);
    for (i = 0; i < 8; i++) out[i] = (char)((nhl >> (8 * i)) & 0xff);
    memcpy(out + 8, nh, nhl);
    memcpy(out + 8 + nhl, file + 8 + hl, size - 8 - hl);
    free(h);
    free(nh);
    return out;
}

static lfm2_result t_load_mem(const char *cfg, size_t cfg_n, const void *st, size_t st_n, lfm2_error *e) {
    lfm2_model *m;
    lfm2_result rc = t_load_one(cfg, cfg_n, st, st_n, LFM2_WEIGHTS_AS_STORED, e, &m);
    lfm2_model_free(m);
    return rc;
}

static void test_weights_errors(void) {
    char path[512];
    size_t cn, sn;
    char *cfg, *st;
    lfm2_error e;
    static const struct { const char *from, *to; lfm2_result rc; const char *needle; } edits[] = {
        /* offsets outside the data */
        {"\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[65536,65664]}",
         "\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[965536,965664]}", LFM2_ERR_BAD_WEIGHTS, "outside"},
        /* overlapping */
        {"\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[65536,65664]}",
         "\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64],\"data_offsets\":[65400,65528]}", LFM2_ERR_BAD_WEIGHTS, "overlap"},
        /* size != shape x dtype */
        {"\"shape\":[64],\"data_offsets\":[65536,65664]", "\"shape\":[65],\"data_offsets\":[65536,65664]", LFM2_ERR_BAD_WEIGHTS, "needs"},
        /* wrong shape (consistent bytes) */
        {"\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64]", "\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[32,2]", LFM2_ERR_BAD_WEIGHTS, "model.embedding_norm.weight"},
        /* wrong dtype for a weight */
        {"\"model.embedding_norm.weight\":{\"dtype\":\"BF16\",\"shape\":[64]", "\"model.embedding_norm.weight\":{\"dtype\":\"I16\",\"shape\":[64]", LFM2_ERR_UNSUPPORTED, "I16"},
        /* unknown dtype */
        {"\"model.embedding_norm.weight\":{\"dtype\":\"BF16\"", "\"model.embedding_norm.weight\":{\"dtype\":\"Q4K\"", LFM2_ERR_UNSUPPORTED, "Q4K"},
        /* missing tensor (renamed) */
        {"\"model.embedding_norm.weight\"", "\"model.embedding_normX.weight\"", LFM2_ERR_BAD_WEIGHTS, "model.embedding_norm.weight"},
        /* duplicate key in the header: two entries named the same */
        {"\"model.embedding_norm.weight\"", "\"model.embed_tokens.weight\"", LFM2_ERR_BAD_WEIGHTS, "model.embed_tokens.weight"},
        /* negative offset */
        {"\"data_offsets\":[65536,65664]", "\"data_offsets\":[-1,65664]", LFM2_ERR_BAD_WEIGHTS, "data_offsets"},
        /* shape not a list */
        {"\"shape\":[64],\"data_offsets\":[65536,65664]", "\"shape\":64,\"data_offsets\":[65536,65664]", LFM2_ERR_BAD_WEIGHTS, "shape"},
        /* broken JSON */
        {"\"model.embedding_norm.weight\":{", "\"model.embedding_norm.weight\":[", LFM2_ERR_BAD_WEIGHTS, "byte"},
        /* huge dimension */
        {"\"shape\":[64],\"data_offsets\":[65536,65664]", "\"shape\":[99999999999999999999],\"data_offsets\":[65536,65664]", LFM2_ERR_BAD_WEIGHTS, "shape"},
    };
    size_t i;
    snprintf(path, sizeof path, "%s/tiny-bf16/config.json", t_data_dir());
    cfg = t_read_file(path, &cn);
    snprintf(path, sizeof path, "%s/tiny-bf16/model.safetensors", t_data_dir());
    st = t_read_file(path, &sn);
    CHECK(cfg && st, "read tiny-bf16");
    if (!cfg || !st) return;
    CHECK(t_load_mem(cfg, cn, st, sn, &e) == LFM2_OK, "the unedited model loads from memory: %s", e.message);
    /* truncations */
    {
        static const size_t cuts[] = {0, 4, 8, 20, 200};
        size_t k;
        for (k = 0; k < 5; k++) {
            lfm2_result rc = t_load_mem(cfg, cn, st, cuts[k], &e);
            CHECK(rc == LFM2_ERR_BAD_WEIGHTS, "truncated to %zu bytes: %s", cuts[k], lfm2_result_string(rc));
            NOTE("truncated to %3zu bytes -> %s: %s", cuts[k], lfm2_result_string(rc), e.message);
        }
        {
            lfm2_result rc = t_load_mem(cfg, cn, st, sn - 1, &e);
            CHECK(rc == LFM2_ERR_BAD_WEIGHTS, "one byte short");
            NOTE("one byte short -> %s: %s", lfm2_result_string(rc), e.message);
        }
    }
    /* header length past the end */
    {
        char *cp = (char *)malloc(sn);
        lfm2_result rc;
        memcpy(cp, st, sn);
        cp[6] = 1;
        rc = t_load_mem(cfg, cn, cp, sn, &e);
        CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "header length"), "header length past end: %s", e.message);
        NOTE("header length past the end -> %s: %s", lfm2_result_string(rc), e.message);
        free(cp);
    }
    for (i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        size_t en;
        char *ed = t_st_edit(st, sn, edits[i].from, edits[i].to, &en);
        lfm2_result rc;
        CHECK(ed != NULL, "edit %d does not apply", (int)i);
        if (!ed) continue;
        rc = t_load_mem(cfg, cn, ed, en, &e);
        CHECK(rc == edits[i].rc, "edit %d: got %s, expected %s (%s)", (int)i, lfm2_result_string(rc), lfm2_result_string(edits[i].rc), e.message);
        CHECK(strstr(e.message, edits[i].needle) != NULL, "edit %d: message \"%s\" lacks \"%s\"", (int)i, e.message, edits[i].needle);
        NOTE("weights edit %2d -> %s: %s", (int)i, lfm2_result_string(rc), e.message);
        free(ed);
    }
    /* a header whose length leaves the bf16 data at an odd address */
    {
        char *odd;
        lfm2_result rc;
        uint64_t hl = lfm2__rd_u64le((const unsigned char *)st);
        odd = (char *)malloc(sn + 1);
        memcpy(odd, st, 8);
        odd[0] = (char)((hl + 1) & 0xff); odd[1] = (char)((hl + 1) >> 8);
        memcpy(odd + 8, st + 8, hl);
        odd[8 + hl] = ' ';
        memcpy(odd + 9 + hl, st + 8 + hl, sn - 8 - hl);
        rc = t_load_mem(cfg, cn, odd, sn + 1, &e);
        CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "aligned"), "misaligned data: %s", e.message);
        NOTE("data region at an odd offset -> %s: %s", lfm2_result_string(rc), e.message);
        free(odd);
    }
    /* config inconsistent with the tensors: FFN width */
    {
        char *c2 = (char *)malloc(cn + 16), *q;
        lfm2_result rc;
        strcpy(c2, cfg);
        q = strstr(c2, "\"intermediate_size\": 256");
        CHECK(q != NULL, "config edit");
        if (q) {
            memcpy(q, "\"intermediate_size\": 512", 24);
            rc = t_load_mem(c2, cn, st, sn, &e);
            CHECK(rc == LFM2_ERR_BAD_CONFIG && strstr(e.message, "w1"), "FFN mismatch: %s", e.message);
            NOTE("config FFN width vs w1 rows -> %s: %s", lfm2_result_string(rc), e.message);
        }
        free(c2);
    }
    free(cfg);
    free(st);
}

/* model folders on disk: missing folder, missing shard named by the index, index mismatch */
static void test_dir_errors(void) {
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error e;
    lfm2_result rc;
    char dir[] = "build/tmp_modeldir";
    char path[512], cmd[1024];
    FILE *f;
    memset(&p, 0, sizeof p);
    p.error = &e;
    rc = lfm2_model_load_dir("no/such/folder", &p, &m);
    CHECK(rc == LFM2_ERR_IO && m == NULL && strstr(e.message, "config.json"), "missing folder: %s", e.message);
    NOTE("missing folder -> %s: %s", lfm2_result_string(rc), e.message);
    /* a copy of tiny-f16-sharded without one shard */
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp %s/tiny-f16-sharded/* %s/ && rm %s/model-00003-of-00008.safetensors",
             dir, dir, t_data_dir(), dir, dir);
    CHECK(system(cmd) == 0, "prepare %s", dir);
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_IO && strstr(e.message, "model-00003-of-00008.safetensors"), "missing shard: %s", e.message);
    NOTE("index names a missing shard -> %s: %s", lfm2_result_string(rc), e.message);
    /* an index that puts a tensor in the wrong shard */
    snprintf(cmd, sizeof cmd, "cp %s/tiny-f16-sharded/model-00003-of-00008.safetensors %s/ && "
             "sed -i 's/\"model.embedding_norm.weight\": \"model-00008-of-00008.safetensors\"/\"model.embedding_norm.weight\": \"model-00001-of-00008.safetensors\"/' %s/model.safetensors.index.json",
             t_data_dir(), dir, dir);
    CHECK(system(cmd) == 0, "edit index");
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "model.embedding_norm.weight"), "index mismatch: %s", e.message);
    NOTE("index puts a tensor in the wrong shard -> %s: %s", lfm2_result_string(rc), e.message);
    /* path traversal in the index */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    f = fopen(path, "wb");
    if (f) { fputs("{\"weight_map\":{\"model.embed_tokens.weight\":\"../../etc/passwd\"}}", f); fclose(f); }
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "plain file name"), "traversal: %s", e.message);
    NOTE("index shard \"../../etc/passwd\" -> %s: %s", lfm2_result_string(rc), e.message);
    /* no weights at all */
    snprintf(cmd, sizeof cmd, "rm -f %s/*.safetensors %s/model.safetensors.index.json", dir, dir);
    CHECK(system(cmd) == 0, "rm");
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_IO && strstr(e.message, "model.safetensors"), "no weights: %s", e.message);
    NOTE("no weights -> %s: %s", lfm2_result_string(rc), e.message);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

/* The interleaved float layout (AVX-512 builds, lfm2_model_params.keep_layout = 0): every matrix
   holds the same values as the row-major file, logits agree with the row-major kernels to float
   rounding, the mapped pages were released (peak memory one copy), and buffers given to
   lfm2_model_load_memory are neither reordered nor written */
static void test_interleaved_layout(void) {
    static const char *names[4] = {"tiny-bf16", "tiny-f32-untied-bias", "tiny-f16-sharded", "realvocab-bf16"};
    int ni;
    double worst = 0;
    int32_t n_fx = 0, n_mats = 0;
    for (ni = 0; ni < 4; ni++) {
        char path[512];
        lfm2_model_params p;
        lfm2_model *a = NULL, *b = NULL;
        lfm2_error e;
        lfm2__mat *la[2 + 7 * 64], *lb[2 + 7 * 64];
        int32_t n, i, r, k, same = 1, V;
        memset(&p, 0, sizeof p);
        p.error = &e;
        snprintf(path, sizeof path, "%s/%s", t_data_dir(), names[ni]);
        CHECK(lfm2_model_load_dir(path, &p, &a) == LFM2_OK, "%s: %s", names[ni], e.message);
        p.keep_layout = 1;
        CHECK(lfm2_model_load_dir(path, &p, &b) == LFM2_OK, "%s keep_layout: %s", names[ni], e.message);
        if (!a || !b) { lfm2_model_free(a); lfm2_model_free(b); continue; }
        n = lfm2__model_mats(a, la);
        CHECK(n == lfm2__model_mats(b, lb), "matrix count");
        for (i = 0; i < n; i++) {
            CHECK(!LFM2__IS_FX(lb[i]->dtype), "%s keep_layout: matrix %d was reordered", names[ni], i);
#ifdef LFM2__FX_KERNELS
            {
                int want = lb[i]->rows % 16 == 0 && lb[i]->cols % 2 == 0;
#ifndef LFM2__FX_F32
                want &= lb[i]->dtype != LFM2__DT_F32;
#endif
                CHECK(LFM2__IS_FX(la[i]->dtype) == want, "%s: matrix %d (%d x %d) layout %d", names[ni], i, la[i]->rows, la[i]->cols, la[i]->dtype);
            }
#else
            CHECK(!LFM2__IS_FX(la[i]->dtype), "no interleaved layout without its kernels");
#endif
            n_fx += LFM2__IS_FX(la[i]->dtype);
            n_mats++;
            for (r = 0; r < la[i]->rows; r++)
                for (k = 0; k < la[i]->cols; k++) same &= lfm2__wget(la[i], r, k) == lfm2__wget(lb[i], r, k);
        }
        CHECK(same, "%s: interleaved matrices hold other values than the file", names[ni]);
        V = lfm2_model_config(a)->vocab_size;
        {
            lfm2_context *ca, *cb;
            lfm2_token ids[12];
            float *oa = (float *)malloc(sizeof(float) * 12 * (size_t)V), *ob = (float *)malloc(sizeof(float) * 12 * (size_t)V);
            double rel;
            for (i = 0; i < 12; i++) ids[i] = (i * 7919 + 5) % V;
            lfm2_context_create(a, NULL, &ca);
            lfm2_context_create(b, NULL, &cb);
            lfm2_context_decode_all(ca, ids, 12, oa);
            lfm2_context_decode_all(cb, ids, 12, ob);
            rel = t_rel_err(oa, ob, 12 * (size_t)V);
            CHECK(rel < 1e-5, "%s: interleaved vs row-major logits rel err %.3g", names[ni], rel);
            if (rel > worst) worst = rel;
            lfm2_context_free(ca);
            lfm2_context_free(cb);
            free(oa); free(ob);
        }
        lfm2_model_free(a);
        lfm2_model_free(b);
    }
    NOTE("%s: %d of %d matrices interleaved, values identical to the file, logits vs row-major kernels: worst rel err %.2g",
         lfm2_build_info(), n_fx, n_mats, worst);
    {   /* lfm2_model_load_memory: the caller's buffer stays as it was */
        char path[512];
        size_t cn, sn;
        char *cfg, *st, *copy;
        lfm2_error e;
        lfm2_model *m = NULL;
        snprintf(path, sizeof path, "%s/tiny-bf16/config.json", t_data_dir());
        cfg = t_read_file(path, &cn);
        snprintf(path, sizeof path, "%s/tiny-bf16/model.safetensors", t_data_dir());
        st = t_read_file(path, &sn);
        CHECK(cfg && st, "read tiny-bf16");
        if (cfg && st) {
            copy = (char *)malloc(sn);
            memcpy(copy, st, sn);
            CHECK(t_load_one(cfg, cn, st, sn, LFM2_WEIGHTS_AS_STORED, &e, &m) == LFM2_OK, "load_memory: %s", e.message);
            if (m) {
                lfm2_context *c;
                const float *lg;
                lfm2_token ids[3] = {1, 2, 3};
                CHECK(!LFM2__IS_FX(m->layers[0].w1.dtype), "load_memory reordered a caller's buffer");
                lfm2_context_create(m, NULL, &c);
                CHECK(lfm2_context_decode(c, ids, 3, &lg) == LFM2_OK, "decode");
                lfm2_context_free(c);
                lfm2_model_free(m);
            }
            CHECK(memcmp(copy, st, sn) == 0, "load_memory wrote into the caller's buffer");
            NOTE("lfm2_model_load_memory: the caller's %zu-byte buffer used as it is (row-major), unchanged", sn);
            free(copy);
        }
        free(cfg); free(st);
    }
}

/* loading from memory and without mmap gives the same logits as mmap'd loading */
static void test_load_variants(void) {
    lfm2_model *a = t_load("tiny-f16-sharded"), *b = NULL;
    lfm2_model_params p;
    lfm2_error e;
    char path[512];
    CHECK(a != NULL, "load");
    memset(&p, 0, sizeof p);
    p.error = &e;
    p.no_mmap = 1;
    snprintf(path, sizeof path, "%s/tiny-f16-sharded", t_data_dir());
    CHECK(lfm2_model_load_dir(path, &p, &b) == LFM2_OK, "no_mmap: %s", e.message);
    if (a && b) {
        lfm2_context *ca, *cb;
        lfm2_token ids[5] = {1, 2, 3, 4, 5};
        const float *la, *lb;
        lfm2_context_create(a, NULL, &ca);
        lfm2_context_create(b, NULL, &cb);
        lfm2_context_decode(ca, ids, 5, &la);
        lfm2_context_decode(cb, ids, 5, &lb);
        CHECK(memcmp(la, lb, sizeof(float) * 256) == 0, "mmap and read differ");
        NOTE("tiny-f16-sharded: mmap'd and read files give bit-identical logits (%s layout)",
             LFM2__IS_FX(a->layers[0].w1.dtype) ? "interleaved" : "row-major");
        CHECK(lfm2_model_tensor_count(a) > 0, "tensor count");
        lfm2_context_free(ca);
        lfm2_context_free(cb);
    }
    lfm2_model_free(a);
    lfm2_model_free(b);
}


/* ---- kernels: SIMD against the scalar reference, every weight format ---------------------- */

static uint32_t t_rng = 12345u;
static float t_randf(void) { t_rng = t_rng * 1664525u + 1013904223u; return (float)((t_rng >> 8) & 0xffff) / 32768.0f - 1.0f; }

static void test_kernels_vs_scalar(void) {
    /* rows % 16 == 0 and cols % 64 == 0 quantize to the interleaved Q8X / Q4X in VNNI builds */
    static const int32_t shapes[][3] = {{1, 1, 1}, {3, 17, 1}, {5, 64, 4}, {7, 96, 5}, {13, 48, 9}, {64, 256, 1}, {33, 320, 7}, {4, 1024, 16},
                                        {16, 64, 1}, {32, 128, 9}, {48, 192, 16}, {16, 1088, 11}, {16, 2, 3}, {32, 34, 17}, {16, 96, 8}};
    static const int32_t dts[3] = {LFM2__DT_F32, LFM2__DT_BF16, LFM2__DT_F16};
    size_t si;
    double worst[5] = {0, 0, 0, 0, 0}, worst_x[3] = {0, 0, 0};
    int n_x = 0;
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int32_t N = shapes[si][0], K = shapes[si][1], B = shapes[si][2], di;
        float *wf = (float *)malloc(sizeof(float) * (size_t)N * K), *x = (float *)malloc(sizeof(float) * (size_t)B * K);
        float *o1 = (float *)malloc(sizeof(float) * (size_t)B * N), *o2 = (float *)malloc(sizeof(float) * (size_t)B * N);
        uint16_t *w16 = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)N * K);
        unsigned char *qa = (unsigned char *)malloc(LFM2__QROW_BYTES(K) * (size_t)B);
        size_t i;
        for (i = 0; i < (size_t)N * K; i++) wf[i] = t_randf();
        for (i = 0; i < (size_t)B * K; i++) x[i] = t_randf();
        for (di = 0; di < 5; di++) {
            lfm2__mat w;
            unsigned char *qmem = NULL;
            double mo = 0, md = 0;
            memset(&w, 0, sizeof w);
            w.rows = N;
            w.cols = K;
            if (di < 3) {
                w.dtype = dts[di];
                if (di == 0) w.data = wf;
                else {
                    for (i = 0; i < (size_t)N * K; i++) w16[i] = di == 1 ? lfm2__f32_to_bf16(wf[i]) : lfm2__f32_to_f16(wf[i]);
                    w.data = w16;
                }
            } else {
                int32_t type = di == 3 ? LFM2_WEIGHTS_Q8 : LFM2_WEIGHTS_Q4;
                if (K % 32 != 0) continue;
                w.dtype = LFM2__DT_F32;
                w.data = wf;
                qmem = (unsigned char *)malloc(lfm2__quant_bytes(&w, type));
                lfm2__quantize_mat(&w, type, qmem);
            }
            lfm2__matmul_ref(o1, x, B, &w, 2, qa);
            lfm2__matmul(o2, x, B, &w, 2, qa, 0);
            for (i = 0; i < (size_t)B * N; i++) {
                double d = fabs((double)o1[i] - o2[i]);
                if (d > md) md = d;
                if (fabs(o1[i]) > mo) mo = fabs(o1[i]);
            }
            if (mo == 0) mo = 1;
            CHECK(md / mo < 1e-5, "N=%d K=%d B=%d dtype %d: SIMD vs scalar rel err %.3g", N, K, B, di, md / mo);
            if (md / mo > worst[di]) worst[di] = md / mo;
#ifdef LFM2__FX_KERNELS
#ifndef LFM2__FX_F32
            if (di > 0 && N % 16 == 0 && K % 2 == 0 && di < 3) { /* (f32 stays row-major in this build) */
#else
            if (di < 3 && N % 16 == 0 && K % 2 == 0) { /* the interleaved layout: the same values, its own kernel */
#endif
                size_t es = di == 0 ? 4 : 2, gb = 16 * (size_t)K * es;
                unsigned char *xm = (unsigned char *)malloc((size_t)N * K * es), *tmp = (unsigned char *)malloc(gb);
                lfm2__mat wx = w;
                int32_t g, r, k, same = 1;
                for (g = 0; g < N / 16; g++) lfm2__interleave_group(xm + g * gb, (const unsigned char *)w.data + g * gb, tmp, K, w.dtype);
                wx.data = xm;
                wx.dtype = di == 0 ? LFM2__DT_F32X : di == 1 ? LFM2__DT_BF16X : LFM2__DT_F16X;
                for (r = 0; r < N; r++)
                    for (k = 0; k < K; k++) same &= lfm2__wget(&wx, r, k) == lfm2__wget(&w, r, k);
                CHECK(same, "N=%d K=%d dtype %d: interleaved layout holds other values", N, K, di);
                lfm2__matmul(o2, x, B, &wx, 2, qa, 0);
                md = 0;
                for (i = 0; i < (size_t)B * N; i++)
                    if (fabs((double)o1[i] - o2[i]) > md) md = fabs((double)o1[i] - o2[i]);
                CHECK(md / mo < 1e-5, "N=%d K=%d B=%d dtype %d interleaved: SIMD vs scalar rel err %.3g", N, K, B, di, md / mo);
                if (md / mo > worst_x[di]) worst_x[di] = md / mo;
                n_x++;
                free(xm); free(tmp);
            }
#endif
            free(qmem);
        }
        free(wf); free(x); free(o1); free(o2); free(w16); free(qa);
    }
    NOTE("%s matmul vs scalar reference, worst rel err: f32 %.2g, bf16 %.2g, f16 %.2g, q8 %.2g, q4 %.2g", lfm2_build_info(),
         worst[0], worst[1], worst[2], worst[3], worst[4]);
#ifdef LFM2__FX_KERNELS
    NOTE("interleaved float layouts (%d matrices, values identical element by element): f32x %.2g, bf16x %.2g, f16x %.2g",
         n_x, worst_x[0], worst_x[1], worst_x[2]);
#else
    (void)worst_x; (void)n_x;
#endif
    {   /* dot and axpy */
        float a[77], b[77], y1[77], y2[77];
        double e = 0;
        int i;
        for (i = 0; i < 77; i++) { a[i] = t_randf(); b[i] = t_randf(); y1[i] = y2[i] = t_randf(); }
        e = fabs(lfm2__dot_f32(a, b, 77) - lfm2__dot_ref(a, b, 77));
        CHECK(e < 1e-5, "dot: %.3g", e);
        lfm2__axpy(y1, 0.37f, a, 77);
        for (i = 0; i < 77; i++) y2[i] += 0.37f * a[i];
        for (i = 0; i < 77; i++) if (fabs(y1[i] - y2[i]) > e) e = fabs(y1[i] - y2[i]);
        CHECK(e < 1e-5, "axpy: %.3g", e);
        NOTE("dot/axpy vs scalar: max abs err %.2g", e);
    }
    {   /* SiLU-gate and softmax (vector exp) against libm */
        float g[301], u[301], sm[301];
        double eg = 0, es = 0, sum = 0, mx = -1e30;
        int i;
        for (i = 0; i < 301; i++) { g[i] = t_randf() * 40.0f; u[i] = t_randf(); sm[i] = t_randf() * 30.0f; }
        g[0] = -100.0f; g[1] = 100.0f; g[2] = 0.0f;
        {
            float g2[301], sm2[301];
            memcpy(g2, g, sizeof g);
            memcpy(sm2, sm, sizeof sm);
            lfm2__silu_mul(g2, u, 301);
            lfm2__softmax(sm2, 301);
            for (i = 0; i < 301; i++) {
                double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
                double d = fabs(g2[i] - want) / (fabs(want) + 1e-30);
                if (fabs(want) > 1e-30 && d > eg) eg = d;
                if (sm[i] > mx) mx = sm[i];
            }
            for (i = 0; i < 301; i++) sum += exp((double)sm[i] - mx);
            for (i = 0; i < 301; i++) {
                double want = exp((double)sm[i] - mx) / sum;
                double d = fabs(sm2[i] - want) / want;
                if (d > es) es = d;
            }
        }
        CHECK(eg < 2e-6, "silu_mul rel err %.3g", eg);
        CHECK(es < 2e-6, "softmax rel err %.3g", es);
        NOTE("silu*u and softmax (vector exp) vs double libm: rel err %.2g and %.2g", eg, es);
    }
}

#ifdef LFM2__BF16DOT
/* worst |o - exact| / sum|terms| of o[B x N] against the double sum of the bf16-rounded products */
static double t_bf16dot_err(const uint16_t *w16, const float *x, const float *o, int32_t N, int32_t K, int32_t B) {
    double md = 0;
    int32_t b, r, k;
    for (b = 0; b < B; b++)
        for (r = 0; r < N; r++) {
            double want = 0, sa = 0;
            for (k = 0; k < K; k++) {
                double t = (double)lfm2__bf16_to_f32(w16[r * K + k]) * lfm2__bf16_to_f32(lfm2__f32_to_bf16(x[b * K + k]));
                want += t;
                sa += fabs(t);
            }
            if (fabs(o[b * N + r] - want) / sa > md) md = fabs(o[b * N + r] - want) / sa;
        }
    return md;
}

#endif
/* lfm2_context_params.bf16_activations: the vdpbf16ps kernel against a double-precision sum of
   the same bf16-rounded products; then a whole model against the exact f32 path, 1 vs 2
   threads and whole vs chunked identical */
static void test_bf16_activations(void) {
#ifdef LFM2__BF16DOT
    static const int32_t shapes[][3] = {{4, 64, 4}, {7, 96, 5}, {33, 320, 7}, {64, 1024, 16}, {5, 32, 1}, {16, 64, 17}, {32, 96, 33}};
    size_t si;
    double worst = 0, worst_x = 0;
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int32_t N = shapes[si][0], K = shapes[si][1], B = shapes[si][2], k;
        uint16_t *w16 = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)N * K);
        float *x = (float *)malloc(sizeof(float) * (size_t)B * K), *o = (float *)malloc(sizeof(float) * (size_t)B * N);
        unsigned char *qa = (unsigned char *)malloc(LFM2__QROW_BYTES(K) * (size_t)B);
        lfm2__mat w;
        double md = 0, mo = 0;
        for (k = 0; k < N * K; k++) w16[k] = lfm2__f32_to_bf16(t_randf());
        for (k = 0; k < B * K; k++) x[k] = t_randf();
        memset(&w, 0, sizeof w);
        w.rows = N; w.cols = K; w.dtype = LFM2__DT_BF16; w.data = w16;
        lfm2__matmul(o, x, B, &w, 2, qa, 1);
        md = t_bf16dot_err(w16, x, o, N, K, B);
        (void)mo;
        CHECK(md < 1e-6, "N=%d K=%d B=%d: bf16 dot vs double sum of the bf16 products: %.3g of sum|terms|", N, K, B, md);
        if (md > worst) worst = md;
#ifdef LFM2__FX_KERNELS
        if (N % 16 == 0) { /* the interleaved layout's kernel */
            unsigned char *xm = (unsigned char *)malloc((size_t)N * K * 2), *tmp = (unsigned char *)malloc(32 * (size_t)K);
            float *ox = (float *)malloc(sizeof(float) * (size_t)B * N);
            lfm2__mat wx = w;
            int32_t g;
            for (g = 0; g < N / 16; g++) lfm2__interleave_group(xm + (size_t)g * 32 * K, (const unsigned char *)w16 + (size_t)g * 32 * K, tmp, K, LFM2__DT_BF16);
            wx.data = xm;
            wx.dtype = LFM2__DT_BF16X;
            lfm2__matmul(ox, x, B, &wx, 2, qa, 1);
            md = t_bf16dot_err(w16, x, ox, N, K, B);
            CHECK(md < 1e-6, "N=%d K=%d B=%d interleaved: bf16 dot vs double sum: %.3g of sum|terms|", N, K, B, md);
            if (md > worst_x) worst_x = md;
            free(xm); free(tmp); free(ox);
        }
#endif
        free(w16); free(x); free(o); free(qa);
    }
    NOTE("%s: bf16 dot kernel vs double sum of the same bf16 products: worst %.2g of sum|terms| (interleaved layout: %.2g)",
         lfm2_build_info(), worst, worst_x);
    {
        lfm2_model *m = t_load("realvocab-bf16");
        lfm2_context_params cp;
        lfm2_context *ce, *c1, *c2, *c3;
        lfm2_token ids[20];
        float *e, *a, *b2, *cc;
        int32_t V, i;
        double rel;
        CHECK(m != NULL, "load");
        if (!m) return;
        V = lfm2_model_config(m)->vocab_size;
        for (i = 0; i < 20; i++) ids[i] = (i * 7919 + 13) % V;
        memset(&cp, 0, sizeof cp);
        cp.n_threads = 1;
        lfm2_context_create(m, &cp, &ce);
        cp.bf16_activations = 1;
        lfm2_context_create(m, &cp, &c1);
        lfm2_context_create(m, &cp, &c3);
        cp.n_threads = 2;
        lfm2_context_create(m, &cp, &c2);
        e = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        a = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        b2 = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        cc = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        lfm2_context_decode_all(ce, ids, 20, e);
        lfm2_context_decode_all(c1, ids, 20, a);
        lfm2_context_decode_all(c2, ids, 20, b2);
        for (i = 0; i < 20; i += 3) lfm2_context_decode_all(c3, ids + i, 20 - i < 3 ? 20 - i : 3, cc + (size_t)i * V);
        rel = t_rel_err(a, e, 20 * (size_t)V);
        CHECK(memcmp(a, b2, sizeof(float) * 20 * (size_t)V) == 0, "bf16 activations: 1 and 2 threads differ");
        CHECK(memcmp(a, cc, sizeof(float) * 20 * (size_t)V) == 0, "bf16 activations: whole and chunks of 3 differ");
        CHECK(rel > 0 && rel < 5e-2, "bf16 activations vs f32: rel err %.3g (expected small but nonzero)", rel);
        NOTE("realvocab-bf16, 20 tokens: bf16 activations vs the exact f32 path: rel err %.2g (the price of the fast path); "
             "1 vs 2 threads and whole vs chunks of 3 bit-identical", rel);
        free(e); free(a); free(b2); free(cc);
        lfm2_context_free(ce); lfm2_context_free(c1); lfm2_context_free(c2); lfm2_context_free(c3);
        lfm2_model_free(m);
    }
#else
    T_SKIP("this build has no bf16 dot product (AVX512_BF16): bf16_activations is ignored");
#endif
}

/* quantization round trip: dequantized values within half a step of the originals */
static void test_quant_roundtrip(void) {
    float x[256], y[256];
    int8_t q8[256];
    uint8_t q4[128];
    uint16_t sc[8];
    lfm2__mat w;
    int i, t;
    double e8 = 0, e4 = 0;
    for (i = 0; i < 256; i++) x[i] = t_randf() * (i < 32 ? 0.001f : 3.0f);
    x[40] = 0; for (i = 64; i < 96; i++) x[i] = 0; /* an all-zero block */
    for (t = 0; t < 2; t++) {
        memset(&w, 0, sizeof w);
        w.rows = 1; w.cols = 256; w.scales = sc;
        if (t == 0) { lfm2__quantize_row_q8(x, 256, q8, sc); w.data = q8; w.dtype = LFM2__DT_Q8; }
        else { lfm2__quantize_row_q4(x, 256, q4, sc); w.data = q4; w.dtype = LFM2__DT_Q4; }
        lfm2__row_to_f32(y, &w, 0, 0, 256);
        for (i = 0; i < 256; i++) {
            float d = lfm2__f16_to_f32(sc[i / 32]);
            double err = fabs(y[i] - x[i]);
            /* q8: half a step; q4: values beyond the 16 levels clamp, at most one step away */
            CHECK(err <= (t ? 1.0 : 0.5) * fabs(d) * 1.001 + 1e-12, "%s element %d: %g vs %g (step %g)", t ? "q4" : "q8", i, y[i], x[i], d);
            if (t == 0 && err > e8) e8 = err;
            if (t == 1 && err > e4) e4 = err;
        }
    }
    NOTE("dequantized: q8 within half a step (max err %.3g), q4 within one step (max err %.3g)", e8, e4);
    {   /* whole matrices through lfm2__quantize_mat: the layout this build uses at load (row-major
           Q8 / Q4, or the interleaved Q8X / Q4X of the VNNI kernel) holds the same numbers */
        enum { R = 48, K = 192 };
        static float wf[R * K];
        for (t = 0; t < 2; t++) {
            unsigned char *mem;
            int r, k, bad = 0;
            memset(&w, 0, sizeof w);
            for (i = 0; i < R * K; i++) wf[i] = t_randf() * ((i / 32) % 5 == 0 ? 0.01f : 2.0f);
            w.rows = R; w.cols = K; w.dtype = LFM2__DT_F32; w.data = wf;
            mem = (unsigned char *)malloc(lfm2__quant_bytes(&w, t ? LFM2_WEIGHTS_Q4 : LFM2_WEIGHTS_Q8));
            lfm2__quantize_mat(&w, t ? LFM2_WEIGHTS_Q4 : LFM2_WEIGHTS_Q8, mem);
            for (r = 0; r < R; r++)
                for (k = 0; k < K; k++) {
                    int8_t q8b[32];
                    uint8_t q4b[16];
                    uint16_t scb;
                    float y32[32];
                    lfm2__mat wb;
                    /* the row quantizer on this block alone must give the same value */
                    memset(&wb, 0, sizeof wb);
                    wb.rows = 1; wb.cols = 32; wb.scales = &scb;
                    if (t) { lfm2__quantize_row_q4(wf + r * K + (k / 32) * 32, 32, q4b, &scb); wb.data = q4b; wb.dtype = LFM2__DT_Q4; }
                    else { lfm2__quantize_row_q8(wf + r * K + (k / 32) * 32, 32, q8b, &scb); wb.data = q8b; wb.dtype = LFM2__DT_Q8; }
                    lfm2__row_to_f32(y32, &wb, 0, 0, 32);
                    if (lfm2__wget(&w, r, k) != y32[k % 32]) bad++;
                }
            CHECK(bad == 0, "%s: %d elements of the %s layout differ from the row quantizer", t ? "q4" : "q8", bad,
                  w.dtype >= LFM2__DT_Q8X ? "interleaved" : "row-major");
            NOTE("%s %dx%d through quantize_mat (%s layout): every element equals the row quantizer's", t ? "q4" : "q8", R, K,
                 w.dtype >= LFM2__DT_Q8X ? "interleaved" : "row-major");
            free(mem);
        }
    }
}

/* int8 activations (lfm2__quantize_act, SIMD in AVX-512 builds) against a plain restatement of
   its definition: every byte equal, for ordinary, zero, tiny, huge, NaN and infinite blocks */
static void test_quant_act(void) {
    enum { K = 256 };
    float x[K];
    unsigned char got[3 * K + K / 8], want[3 * K + K / 8];
    int q4, i, b, cases = 0;
    for (i = 0; i < K; i++) x[i] = t_randf() * (i < 64 ? 3.0f : 0.01f);
    for (i = 64; i < 96; i++) x[i] = 0;          /* a zero block */
    x[100] = 1e-35f;                              /* a block below 1e-30 */
    for (i = 97; i < 128; i++) if (i != 100) x[i] = 0;
    x[130] = NAN;                                 /* NaN and inf blocks */
    x[170] = -INFINITY;
    x[200] = 3e38f; x[201] = -3e38f;              /* huge but finite */
    x[224] = 0.5f / 127.0f;                       /* ties: 0.5 steps round away from zero */
    x[225] = 127.0f; x[226] = -1.5f; x[227] = 2.5f;
    for (q4 = 0; q4 < 2; q4++) {
        int32_t *ws = (int32_t *)(void *)(want + K);
        float *wd = (float *)(void *)(want + 2 * K);
        int32_t *wsb = (int32_t *)(void *)(want + 3 * K);
        lfm2__quantize_act(got, x, K, q4);
        for (b = 0; b < K; b += 32) {
            float amax = 0, id = 0, dx = 0;
            int bad = 0, qv[32];
            for (i = 0; i < 32; i++) { float a = fabsf(x[b + i]); if (!(a <= FLT_MAX)) bad = 1; if (a > amax) amax = a; }
            if (bad) dx = NAN;
            else if (amax >= 1e-30f) { dx = amax / 127.0f; id = 127.0f / amax; }
            for (i = 0; i < 32; i++) {
                float v = bad ? 0.0f : x[b + i] * id;
                int qi = (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
                qv[i] = qi > 127 ? 127 : qi < -127 ? -127 : qi;
                want[b + i] = (unsigned char)qv[i];
            }
            wsb[b / 32] = 0;
            for (i = 0; i < 8; i++) {
                ws[b / 4 + i] = (q4 ? -8 : -128) * (qv[4 * i] + qv[4 * i + 1] + qv[4 * i + 2] + qv[4 * i + 3]);
                wsb[b / 32] += ws[b / 4 + i];
                wd[b / 4 + i] = dx;
            }
        }
        for (i = 0; i < 3 * K + K / 8; i++) {
            /* NaN scales: compare as "both NaN" */
            if (i >= 2 * K && i < 3 * K && (i - 2 * K) % 4 == 0) {
                float g, w;
                memcpy(&g, got + i, 4);
                memcpy(&w, want + i, 4);
                if (g != g && w != w) { i += 3; continue; }
            }
            if (got[i] != want[i]) break;
        }
        CHECK(i == 3 * K + K / 8, "%s activations: byte %d differs", q4 ? "q4" : "q8", i);
        cases++;
    }
    NOTE("%s: quantized activations identical to the definition for %d layouts x 8 blocks (zero, tiny, NaN, inf, huge, ties)",
         lfm2_build_info(), cases);
}

/* perplexity of demo-code-8m's eval text with bf16 (as stored), int8 and int4 weights */
static void test_quant_perplexity(void) {
    static const int32_t types[4] = {LFM2_WEIGHTS_AS_STORED, LFM2_WEIGHTS_Q8, LFM2_WEIGHTS_Q4, LFM2_WEIGHTS_AS_STORED};
    static const double limits[4] = {0.001, 0.005, 0.05, 0.005};
    static const char *names[4] = {"bf16", "int8", "int4", "bf16 + bf16 activations"};
    t_ref r;
    int32_t *ids;
    uint64_t n;
    double ref_ppl = 10.769904755694034;
    int ti;
    CHECK(t_ref_open(&r, "models/demo-code-8m/ref.safetensors"), "ref");
    ids = t_ref_i32(&r, "eval.ids", &n);
    for (ti = 0; ti < 4; ti++) {
        lfm2_model *m = NULL;
        lfm2_model_params p;
        lfm2_context_params cp;
        lfm2_error e;
        lfm2_context *c;
        float *lg;
        int32_t V, row, t;
        double nll = 0, ppl;
        long cnt = 0;
        memset(&p, 0, sizeof p);
        p.error = &e;
        p.weights = types[ti];
        CHECK(lfm2_model_load_dir("models/demo-code-8m", &p, &m) == LFM2_OK, "load: %s", e.message);
        if (!m) continue;
        V = lfm2_model_config(m)->vocab_size;
        memset(&cp, 0, sizeof cp);
        cp.bf16_activations = ti == 3;
        lfm2_context_create(m, &cp, &c);
        lg = (float *)malloc(sizeof(float) * 256 * (size_t)V);
        for (row = 0; row < 8; row++) {
            lfm2_context_reset(c);
            lfm2_context_decode_all(c, ids + row * 256, 256, lg);
            for (t = 0; t < 255; t++) {
                const float *l = lg + (size_t)t * V;
                double mx = l[0], s = 0;
                int32_t k;
                for (k = 1; k < V; k++) if (l[k] > mx) mx = l[k];
                for (k = 0; k < V; k++) s += exp(l[k] - mx);
                nll += mx + log(s) - l[ids[row * 256 + t + 1]];
                cnt++;
            }
        }
        ppl = exp(nll / cnt);
        CHECK(fabs(ppl / ref_ppl - 1) < limits[ti], "%s perplexity %.4f vs %.4f", names[ti], ppl, ref_ppl);
        NOTE("demo-code-8m eval perplexity with %s weights: %.4f (reference %.4f, %+.3f%%, limit %.1f%%)", names[ti], ppl, ref_ppl,
             100 * (ppl / ref_ppl - 1), 100 * limits[ti]);
        free(lg);
        lfm2_context_free(c);
        lfm2_model_free(m);
    }
    free(ids);
    t_ref_close(&r);
}

static const t_case core_tests[] = {
    {"core/config-real", test_config_real},
    {"core/config-styles", test_config_styles},
    {"core/config-rules", test_config_rules},
    {"core/config-errors", test_config_errors},
    {"core/golden-tiny-bf16", test_golden_tiny_bf16},
    {"core/golden-tiny-bf16-released-style", test_golden_tiny_bf16_released},
    {"core/golden-tiny-f32-untied-bias", test_golden_tiny_f32},
    {"core/golden-tiny-f16-sharded", test_golden_tiny_f16},
    {"core/golden-realvocab-bf16", test_golden_realvocab},
    {"core/golden-demo-code-8m", test_golden_demo},
    {"core/chunked-prefill", test_chunked_prefill},
    {"core/threads-identical", test_threads_identical},
    {"core/state-snapshot", test_state_snapshot},
    {"core/decode-limits", test_decode_limits},
    {"core/weights-errors", test_weights_errors},
    {"core/dir-errors", test_dir_errors},
    {"core/load-variants", test_load_variants},
    {"core/interleaved-layout", test_interleaved_layout},
    {"core/kernels-vs-scalar", test_kernels_vs_scalar},
    {"core/quant-roundtrip", test_quant_roundtrip},
    {"core/quant-act", test_quant_act},
    {"core/bf16-activations", test_bf16_activations},
    {"core/quant-perplexity", test_quant_perplexity},
    {NULL, NULL}
};
