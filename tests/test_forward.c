/* tests/test_forward.c - the forward pass against the transformers goldens (logits at every
   position, hidden states after every layer, long prompts, greedy decodes with the cache), chunked
   prefill, threads, state snapshots, decode limits. */

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

static const t_case forward_tests[] = {
    {"forward/golden-tiny-bf16", test_golden_tiny_bf16, T_ISA | T_EMU},
    {"forward/golden-tiny-bf16-released-style", test_golden_tiny_bf16_released, T_ISA},
    {"forward/golden-tiny-f32-untied-bias", test_golden_tiny_f32, T_ISA | T_EMU},
    {"forward/golden-tiny-f16-sharded", test_golden_tiny_f16, T_ISA | T_EMU},
    {"forward/golden-realvocab-bf16", test_golden_realvocab, T_ISA | T_EMU},
    {"forward/golden-demo-code-8m", test_golden_demo, T_ISA | T_EMU},
    {"forward/chunked-prefill", test_chunked_prefill, T_ISA | T_EMU},
    {"forward/threads-identical", test_threads_identical, T_ISA | T_THREADS},
    {"forward/state-snapshot", test_state_snapshot, 0},
    {"forward/decode-limits", test_decode_limits, 0},
    {NULL, NULL, 0}
};
