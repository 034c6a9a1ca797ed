/* tests/test_sampler.c - sampler (transformers generate() processing, draws, RNG), generation
   loop, and end-to-end greedy / perplexity checks on the test models. Included by run_tests.c. */

/* ---- shared helpers ------------------------------------------------------------------------ */
typedef struct ts_json_doc { char *text; lfm2__json j; } ts_json_doc;
static int ts_json_load(ts_json_doc *d, const char *path) {
    size_t n;
    d->text = t_read_file(path, &n);
    d->j.tok = NULL;
    if (!d->text) return 0;
    return lfm2__json_parse(&d->j, d->text, n, NULL, NULL, LFM2_ERR_BAD_CONFIG, path) == LFM2_OK;
}
static void ts_json_free(ts_json_doc *d) {
    if (d->j.tok) lfm2__json_free(&d->j, NULL);
    free(d->text);
}
static double ts_json_num_or(const lfm2__json *j, int32_t obj, const char *key, double dflt, int *present) {
    double v;
    int32_t t = lfm2__json_get(j, obj, key);
    if (present) *present = 0;
    if (t < 0 || !lfm2__json_num(j, t, &v)) return dflt;
    if (present) *present = 1;
    return v;
}

/* Sampler params of one case of sampler.json["cases"]; with_default_top_k = generate()'s top_k=50
   when the case gives none (genK), 0 for the bare processor lists (procK). */
static lfm2_sampler_params ts_case_params(const lfm2__json *j, int32_t c, int with_default_top_k) {
    lfm2_sampler_params p;
    int has_k;
    double k;
    memset(&p, 0, sizeof p);
    p.temperature = (float)ts_json_num_or(j, c, "temperature", 1.0, NULL);
    k = ts_json_num_or(j, c, "top_k", 0.0, &has_k);
    p.top_k = has_k ? (int32_t)k : (with_default_top_k ? LFM2_SAMPLER_DEFAULT_TOP_K : 0);
    p.top_p = (float)ts_json_num_or(j, c, "top_p", 1.0, NULL);
    p.min_p = (float)ts_json_num_or(j, c, "min_p", 0.0, NULL);
    p.repetition_penalty = (float)ts_json_num_or(j, c, "repetition_penalty", 1.0, NULL);
    p.seed = 1234;
    return p;
}

/* Compares one processed row with the reference: same removed set, finite values within rel.
   Returns the number of mismatching removals; updates *worst (relative error). */
static int ts_cmp_row(const float *got, const float *ref, int32_t n, double *worst, int32_t *kept) {
    int32_t i, bad = 0, k = 0;
    for (i = 0; i < n; i++) {
        int gi = isinf(got[i]) && got[i] < 0, ri = isinf(ref[i]) && ref[i] < 0;
        if (gi != ri) { bad++; continue; }
        if (!ri) {
            double d = fabs((double)got[i] - (double)ref[i]);
            double m = fabs((double)ref[i]);
            double rel = d / (m > 1e-30 ? m : 1e-30);
            if (rel > *worst) *worst = rel;
            k++;
        }
    }
    if (kept) *kept = k;
    return bad;
}

static char ts_path_buf[1024];
static const char *ts_path(const char *rel) {
    snprintf(ts_path_buf, sizeof ts_path_buf, "%s/%s", t_data_dir(), rel);
    return ts_path_buf;
}

/* ---- sampler/golden-proc: procK.processed from proc.raw + proc.history ------------------- */
static void test_sampler_golden_proc(void) {
    t_ref f;
    ts_json_doc d;
    int32_t cases, procs, K, r;
    int64_t nraw, rows, nh;
    float *raw, *out;
    int32_t *hist;
    double worst = 0;
    int total_bad = 0, order_bad = 0, kept_bad = 0;
    if (!t_ref_open(&f, ts_path("sampler/sampler.safetensors"))) { CHECK(0, "cannot read sampler.safetensors"); return; }
    if (!ts_json_load(&d, ts_path("sampler/sampler.json"))) { CHECK(0, "cannot read sampler.json"); t_ref_close(&f); return; }
    cases = lfm2__json_get(&d.j, 0, "cases");
    procs = lfm2__json_get(&d.j, 0, "proc");
    raw = t_ref_f32n(&f, "proc.raw", &nraw, &rows);
    hist = t_ref_i32n(&f, "proc.history", &nh, NULL);
    CHECK(cases >= 0 && procs >= 0 && raw && hist && rows > 0, "sampler reference incomplete");
    if (cases < 0 || procs < 0 || !raw || !hist || rows <= 0) { free(raw); free(hist); ts_json_free(&d); t_ref_close(&f); return; }
    {
        int32_t V = (int32_t)(nraw / rows);
        out = (float *)malloc((size_t)V * sizeof(float));
        CHECK(d.j.tok[cases].n == 8 && d.j.tok[procs].n == 8, "expected 8 cases");
        for (K = 0; K < d.j.tok[cases].n; K++) {
            char name[64];
            int64_t np, prow;
            float *ref;
            lfm2_sampler *s = NULL;
            int32_t c = lfm2__json_at(&d.j, cases, K), pr = lfm2__json_at(&d.j, procs, K);
            int32_t order = lfm2__json_get(&d.j, pr, "order"), kept_arr = lfm2__json_get(&d.j, pr, "kept");
            lfm2_sampler_params p = ts_case_params(&d.j, c, 0);
            /* the processors this maps to, in order, must be exactly the reference's list */
            const char *mine[5];
            int32_t nm = 0, q;
            if (p.repetition_penalty != 1.0f) mine[nm++] = "RepetitionPenaltyLogitsProcessor";
            if (p.temperature != 1.0f) mine[nm++] = "TemperatureLogitsWarper";
            if (p.top_k > 0) mine[nm++] = "TopKLogitsWarper";
            if (p.top_p < 1.0f) mine[nm++] = "TopPLogitsWarper";
            if (p.min_p > 0.0f) mine[nm++] = "MinPLogitsWarper";
            if (order < 0 || d.j.tok[order].n != nm) order_bad++;
            else for (q = 0; q < nm; q++)
                if (!lfm2__json_str_eq(&d.j, lfm2__json_at(&d.j, order, q), mine[q], strlen(mine[q]))) order_bad++;

            snprintf(name, sizeof name, "proc%d.processed", (int)K);
            ref = t_ref_f32n(&f, name, &np, &prow);
            CHECK(ref && np == nraw, "%s missing", name);
            CHECK(lfm2_sampler_create(&p, V, NULL, &s) == LFM2_OK, "create case %d", (int)K);
            if (!ref || np != nraw || !s) { free(ref); lfm2_sampler_free(s); continue; }
            CHECK(lfm2_sampler_accept(s, hist, (int32_t)nh) == LFM2_OK, "accept history");
            for (r = 0; r < (int32_t)rows; r++) {
                int32_t kept = 0;
                int64_t kref = -1;
                int bad;
                lfm2_sampler_process(s, raw + (size_t)r * V, out);
                bad = ts_cmp_row(out, ref + (size_t)r * V, V, &worst, &kept);
                if (bad) NOTE("proc%d row %d: %d ids removed differently", (int)K, (int)r, bad);
                total_bad += bad;
                if (!lfm2__json_int(&d.j, lfm2__json_at(&d.j, kept_arr, r), 0, V, &kref) || kref != kept) kept_bad++;
            }
            free(ref);
            lfm2_sampler_free(s);
        }
        free(out);
        NOTE("8 cases x %d rows: removed-set mismatches %d, worst relative error %.3g", (int)rows, total_bad, worst);
        CHECK(order_bad == 0, "processor order differs from sampler.json in %d places", order_bad);
        CHECK(total_bad == 0, "%d removed-id mismatches", total_bad);
        CHECK(kept_bad == 0, "%d rows keep a different number of ids than sampler.json says", kept_bad);
        CHECK(worst <= 1e-5, "worst relative error %.3g > 1e-5", worst);
    }
    free(raw);
    free(hist);
    ts_json_free(&d);
    t_ref_close(&f);
}

/* ---- sampler/golden-gen: each step of genK from genK.raw with the history so far ------------ */
static void test_sampler_golden_gen(void) {
    t_ref f;
    ts_json_doc d;
    int32_t cases, gen_kept, K;
    int64_t np;
    int32_t *prompt;
    double worst = 0;
    int total_bad = 0, kept_bad = 0, chosen_removed = 0, steps = 0;
    if (!t_ref_open(&f, ts_path("sampler/sampler.safetensors"))) { CHECK(0, "cannot read sampler.safetensors"); return; }
    if (!ts_json_load(&d, ts_path("sampler/sampler.json"))) { CHECK(0, "cannot read sampler.json"); t_ref_close(&f); return; }
    cases = lfm2__json_get(&d.j, 0, "cases");
    gen_kept = lfm2__json_get(&d.j, 0, "gen_kept");
    prompt = t_ref_i32n(&f, "gen.prompt", &np, NULL);
    CHECK(cases >= 0 && gen_kept >= 0 && prompt, "sampler reference incomplete");
    for (K = 0; cases >= 0 && prompt && K < d.j.tok[cases].n; K++) {
        char n1[64], n2[64], n3[64];
        int64_t nr, rows, npr, nseq;
        float *raw, *pro, *out;
        int32_t *seq, V, r;
        lfm2_sampler *s = NULL;
        lfm2_sampler_params p = ts_case_params(&d.j, lfm2__json_at(&d.j, cases, K), 1);
        snprintf(n1, sizeof n1, "gen%d.raw", (int)K);
        snprintf(n2, sizeof n2, "gen%d.processed", (int)K);
        snprintf(n3, sizeof n3, "gen%d.sequence", (int)K);
        raw = t_ref_f32n(&f, n1, &nr, &rows);
        pro = t_ref_f32n(&f, n2, &npr, NULL);
        seq = t_ref_i32n(&f, n3, &nseq, NULL);
        CHECK(raw && pro && seq && nr == npr && rows > 0 && nseq == np + rows, "gen%d tensors", (int)K);
        if (!raw || !pro || !seq || nr != npr || rows <= 0 || nseq != np + rows) { free(raw); free(pro); free(seq); continue; }
        CHECK(memcmp(seq, prompt, (size_t)np * sizeof(int32_t)) == 0, "gen%d.sequence does not start with gen.prompt", (int)K);
        V = (int32_t)(nr / rows);
        out = (float *)malloc((size_t)V * sizeof(float));
        CHECK(lfm2_sampler_create(&p, V, NULL, &s) == LFM2_OK, "create");
        if (s && out) {
            lfm2_sampler_accept(s, seq, (int32_t)np); /* the prompt */
            for (r = 0; r < (int32_t)rows; r++) {
                int32_t kept = 0, chosen = seq[np + r];
                int64_t kref = -1;
                int bad;
                lfm2_sampler_process(s, raw + (size_t)r * V, out);
                bad = ts_cmp_row(out, pro + (size_t)r * V, V, &worst, &kept);
                if (bad) NOTE("gen%d step %d: %d ids removed differently", (int)K, (int)r, bad);
                total_bad += bad;
                if (!lfm2__json_int(&d.j, lfm2__json_at(&d.j, lfm2__json_at(&d.j, gen_kept, K), r), 0, V, &kref) || kref != kept) kept_bad++;
                if (chosen < 0 || chosen >= V || isinf(out[chosen])) chosen_removed++;
                lfm2_sampler_accept(s, &seq[np + r], 1); /* step r+1 sees the token just sampled */
                steps++;
            }
        }
        lfm2_sampler_free(s);
        free(out);
        free(raw);
        free(pro);
        free(seq);
    }
    NOTE("%d steps: removed-set mismatches %d, worst relative error %.3g", steps, total_bad, worst);
    CHECK(steps == 80, "expected 8 cases x 10 steps, ran %d", steps);
    CHECK(total_bad == 0, "%d removed-id mismatches", total_bad);
    CHECK(kept_bad == 0, "%d steps keep a different number of ids than sampler.json gen_kept", kept_bad);
    CHECK(chosen_removed == 0, "%d tokens transformers sampled are removed by our processing", chosen_removed);
    CHECK(worst <= 1e-5, "worst relative error %.3g > 1e-5", worst);
    free(prompt);
    ts_json_free(&d);
    t_ref_close(&f);
}

/* ---- sampler/rng: xoshiro256** + splitmix64 known answers, seed independence -------------- */
static void test_sampler_rng(void) {
    lfm2__rng r;
    uint64_t a, b, c;
    lfm2__rng_seed(&r, 42);
    a = lfm2__rng_next(&r);
    b = lfm2__rng_next(&r);
    c = lfm2__rng_next(&r);
    /* reference values computed independently from the published algorithms */
    CHECK(a == 0x15780b2e0c2ec716ull && b == 0x6104d9866d113a7eull && c == 0xae17533239e499a1ull,
          "xoshiro256** stream for seed 42: %016llx %016llx %016llx", (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
    {
        double lo = 1, hi = 0, mean = 0;
        int i;
        lfm2__rng_seed(&r, 7);
        for (i = 0; i < 100000; i++) {
            double u = lfm2__rng_uniform(&r);
            if (u < lo) lo = u;
            if (u > hi) hi = u;
            mean += u;
        }
        mean /= 100000;
        NOTE("uniform: min %.3g max %.9f mean %.5f", lo, hi, mean);
        CHECK(lo >= 0 && hi < 1 && fabs(mean - 0.5) < 0.005, "uniform out of range or biased");
    }
}

/* Wilson-Hilferty upper quantile of chi-square with df degrees of freedom, z = normal quantile */
static double ts_chi2_crit(int df, double z) {
    double h = 2.0 / (9.0 * df);
    double t = 1.0 - h + z * sqrt(h);
    return df * t * t * t;
}

/* Draws n tokens from logits with params; chi-square of the counts against softmax(processed). */
static void ts_chi2_case(const char *label, const float *logits, int32_t V, const lfm2_sampler_params *p,
                         const int32_t *hist, int32_t nh, int n) {
    lfm2_sampler *s = NULL;
    float *proc = (float *)malloc((size_t)V * sizeof(float));
    double *prob = (double *)calloc((size_t)V, sizeof(double));
    long *cnt = (long *)calloc((size_t)V, sizeof(long));
    double mx = -HUGE_VAL, sum = 0, chi2 = 0, e_acc = 0, o_acc = 0;
    int32_t i, alive = 0, df = -1, removed_drawn = 0;
    int k;
    if (!proc || !prob || !cnt || lfm2_sampler_create(p, V, NULL, &s) != LFM2_OK) { CHECK(0, "alloc"); goto done; }
    lfm2_sampler_accept(s, hist, nh);
    lfm2_sampler_process(s, logits, proc);
    for (i = 0; i < V; i++) if (!isinf(proc[i]) && proc[i] > mx) mx = proc[i];
    for (i = 0; i < V; i++) if (!isinf(proc[i])) { prob[i] = exp((double)proc[i] - mx); sum += prob[i]; alive++; }
    for (i = 0; i < V; i++) prob[i] /= sum;
    for (k = 0; k < n; k++) {
        lfm2_token t = -1;
        lfm2_sampler_sample(s, logits, &t);
        if (t < 0 || t >= V) { removed_drawn++; continue; }
        if (isinf(proc[t])) removed_drawn++;
        cnt[t]++;
    }
    /* bins: ids with expectation >= 5 alone, the rest pooled (pool kept only if it reaches 5) */
    for (i = 0; i < V; i++) {
        double e;
        if (isinf(proc[i])) continue;
        e = prob[i] * n;
        if (e >= 5) { chi2 += (cnt[i] - e) * (cnt[i] - e) / e; df++; }
        else { e_acc += e; o_acc += (double)cnt[i]; }
    }
    if (e_acc >= 5) { chi2 += (o_acc - e_acc) * (o_acc - e_acc) / e_acc; df++; }
    else if (e_acc > 0) { /* too small to be its own bin: check it is not grossly violated */
        CHECK(o_acc <= 5 + 10 * e_acc, "%s: pooled rare ids drawn %g times, expected %g", label, o_acc, e_acc);
    }
    if (df < 1) df = 1;
    {
        double crit = ts_chi2_crit(df, 3.719); /* upper 1e-4 quantile */
        NOTE("%s: %d ids alive, %d draws, chi2 = %.1f on %d df (critical value at p=1e-4: %.1f)", label, (int)alive, n, chi2, (int)df, crit);
        CHECK(chi2 < crit, "%s: chi-square %.1f >= %.1f", label, chi2, crit);
    }
    CHECK(removed_drawn == 0, "%s: %d draws hit a removed id", label, (int)removed_drawn);
done:
    lfm2_sampler_free(s);
    free(proc);
    free(prob);
    free(cnt);
}

/* ---- sampler/frequencies: 10^5 draws follow softmax(processed) ------------------------------ */
static void test_sampler_frequencies(void) {
    t_ref f;
    int64_t nraw, rows, nh;
    float *raw;
    int32_t *hist, V;
    lfm2_sampler_params p;
    if (!t_ref_open(&f, ts_path("sampler/sampler.safetensors"))) { CHECK(0, "cannot read sampler.safetensors"); return; }
    raw = t_ref_f32n(&f, "proc.raw", &nraw, &rows);
    hist = t_ref_i32n(&f, "proc.history", &nh, NULL);
    CHECK(raw && hist, "proc tensors");
    if (raw && hist) {
        V = (int32_t)(nraw / rows);
        /* the model-card recipe with a few survivors */
        p = lfm2_sampler_default_params();
        p.seed = 99;
        p.min_p = 0.02f;
        p.temperature = 0.7f;
        ts_chi2_case("recipe T=0.7 min_p=0.02 row 4", raw + 4 * (size_t)V, V, &p, hist, (int32_t)nh, 100000);
        /* a wide distribution: every id alive, pooled tail */
        memset(&p, 0, sizeof p);
        p.temperature = 1.5f;
        p.repetition_penalty = 0.8f;
        p.seed = 5;
        ts_chi2_case("T=1.5 penalty 0.8, all ids", raw, V, &p, hist, (int32_t)nh, 100000);
        /* top-k + top-p */
        memset(&p, 0, sizeof p);
        p.temperature = 1.0f;
        p.top_k = 20;
        p.top_p = 0.95f;
        p.seed = 11;
        ts_chi2_case("top_k 20 top_p 0.95", raw + 2 * (size_t)V, V, &p, hist, (int32_t)nh, 100000);
    }
    free(raw);
    free(hist);
    t_ref_close(&f);
}

/* ---- sampler/determinism: same seed, same tokens; logits untouched; no allocation --------- */
typedef struct ts_count_alloc { long n_alloc, n_free; } ts_count_alloc;
static void *ts_ca_alloc(void *u, size_t n) { ((ts_count_alloc *)u)->n_alloc++; return malloc(n); }
static void ts_ca_free(void *u, void *p) { ((ts_count_alloc *)u)->n_free++; free(p); }

static void test_sampler_determinism(void) {
    enum { V = 1000, N = 2000 };
    static float logits[V], copy[V];
    static lfm2_token a[N], b[N], c[N];
    ts_count_alloc ca = {0, 0};
    lfm2_allocator al;
    lfm2_sampler *s = NULL;
    lfm2_sampler_params p = lfm2_sampler_default_params();
    long allocs_after_create;
    int i, same_ab = 1, diff_ac = 0, distinct = 0;
    uint32_t x = 12345;
    for (i = 0; i < V; i++) { x = x * 1664525u + 1013904223u; logits[i] = (float)((x >> 8) % 1000) / 200.0f; }
    memcpy(copy, logits, sizeof logits);
    al.alloc = ts_ca_alloc; al.free = ts_ca_free; al.user = &ca;
    p.temperature = 1.0f;
    p.min_p = 0.0f;
    p.repetition_penalty = 1.0f;
    p.top_k = 0;
    p.seed = 2024;
    CHECK(lfm2_sampler_create(&p, V, &al, &s) == LFM2_OK, "create");
    if (!s) return;
    allocs_after_create = ca.n_alloc;
    for (i = 0; i < N; i++) lfm2_sampler_sample(s, logits, &a[i]);
    lfm2_sampler_seed(s, 2024);
    for (i = 0; i < N; i++) lfm2_sampler_sample(s, logits, &b[i]);
    lfm2_sampler_seed(s, 2025);
    for (i = 0; i < N; i++) lfm2_sampler_sample(s, logits, &c[i]);
    for (i = 0; i < N; i++) { if (a[i] != b[i]) same_ab = 0; if (a[i] != c[i]) diff_ac++; }
    {
        static unsigned char seen[V];
        for (i = 0; i < N; i++) if (!seen[a[i]]) { seen[a[i]] = 1; distinct++; }
    }
    NOTE("%d draws: seed repeat identical %s, another seed differs in %d places, %d distinct ids", N, same_ab ? "yes" : "no", diff_ac, distinct);
    CHECK(same_ab, "the same seed gave different tokens");
    CHECK(diff_ac > N / 2, "another seed gave nearly the same tokens");
    CHECK(distinct > 50, "too few distinct tokens: %d", distinct);
    /* history and penalties, process + sample many times: no allocation, logits untouched */
    {
        lfm2_token h[3] = {1, 2, 3};
        float out[V];
        lfm2_sampler_params q = lfm2_sampler_default_params();
        CHECK(lfm2_sampler_set_params(s, &q) == LFM2_OK, "set_params");
        lfm2_sampler_accept(s, h, 3);
        for (i = 0; i < 200; i++) {
            lfm2_token t;
            lfm2_sampler_process(s, logits, out);
            lfm2_sampler_sample(s, logits, &t);
            lfm2_sampler_accept(s, &t, 1);
        }
        q.top_p = 0.9f;
        lfm2_sampler_set_params(s, &q);
        for (i = 0; i < 200; i++) { lfm2_token t; lfm2_sampler_sample(s, logits, &t); }
    }
    CHECK(ca.n_alloc == allocs_after_create, "sampling allocated %ld times", ca.n_alloc - allocs_after_create);
    CHECK(memcmp(copy, logits, sizeof logits) == 0, "the sampler wrote to the logits");
    lfm2_sampler_free(s);
    CHECK(ca.n_alloc == ca.n_free, "allocations %ld, frees %ld", ca.n_alloc, ca.n_free);
}

/* ---- sampler/greedy-and-args: zero params = greedy after the penalty; argument checks ------ */
static void test_sampler_greedy_args(void) {
    float logits[6] = {1.0f, 3.0f, 2.96f, -1.0f, -0.5f, 0.0f}, out[6];
    lfm2_sampler *s = NULL;
    lfm2_sampler_params p;
    lfm2_token t = -1, h;
    memset(&p, 0, sizeof p);
    CHECK(lfm2_sampler_create(NULL, 6, NULL, &s) == LFM2_OK, "create with NULL params");
    lfm2_sampler_sample(s, logits, &t);
    CHECK(t == 1, "greedy picked %d, expected 1", (int)t);
    lfm2_sampler_free(s);
    s = NULL;
    p.repetition_penalty = 1.05f; /* 3.0/1.05 = 2.857 < 2.96: the penalty flips the argmax */
    lfm2_sampler_create(&p, 6, NULL, &s);
    h = 1;
    lfm2_sampler_accept(s, &h, 1);
    lfm2_sampler_accept(s, &h, 1); /* a set: a second time changes nothing */
    CHECK(lfm2_sampler_history_size(s) == 1, "history size %d", (int)lfm2_sampler_history_size(s));
    lfm2_sampler_sample(s, logits, &t);
    CHECK(t == 2, "greedy after penalty picked %d, expected 2", (int)t);
    lfm2_sampler_process(s, logits, out);
    CHECK(fabsf(out[1] - 3.0f / 1.05f) < 1e-6f && out[2] == (float)2.96f && out[0] == 1.0f, "penalised scores wrong");
    h = 3;
    lfm2_sampler_accept(s, &h, 1);
    lfm2_sampler_process(s, logits, out);
    CHECK(out[3] == (float)(-1.0f * 1.05f), "a negative score must be multiplied: %g", out[3]);
    h = 5;
    lfm2_sampler_accept(s, &h, 1);
    lfm2_sampler_process(s, logits, out);
    CHECK(out[5] == 0.0f, "zero stays zero");
    lfm2_sampler_reset(s);
    lfm2_sampler_sample(s, logits, &t);
    CHECK(t == 1 && lfm2_sampler_history_size(s) == 0, "reset must forget the history");
    /* argument validation */
    {
        lfm2_token bad[2] = {0, 6};
        lfm2_sampler_params q;
        lfm2_sampler *s2 = (lfm2_sampler *)&q;
        CHECK(lfm2_sampler_accept(s, bad, 2) == LFM2_ERR_INVALID_ARG && lfm2_sampler_history_size(s) == 0,
              "an id outside the vocabulary must be rejected and add nothing");
        CHECK(lfm2_sampler_process(s, logits, (float *)logits) == LFM2_ERR_INVALID_ARG, "aliasing out");
        CHECK(lfm2_sampler_sample(s, NULL, &t) == LFM2_ERR_INVALID_ARG, "NULL logits");
        CHECK(lfm2_sampler_create(&p, 0, NULL, &s2) == LFM2_ERR_INVALID_ARG && s2 == NULL, "vocab 0");
        q = p; q.temperature = -HUGE_VALF;
        CHECK(lfm2_sampler_create(&q, 6, NULL, &s2) == LFM2_ERR_INVALID_ARG, "temperature -inf accepted");
        q = p; q.top_p = 1.5f;
        CHECK(lfm2_sampler_create(&q, 6, NULL, &s2) == LFM2_ERR_INVALID_ARG, "top_p 1.5 accepted");
        q = p; q.min_p = -0.1f;
        CHECK(lfm2_sampler_create(&q, 6, NULL, &s2) == LFM2_ERR_INVALID_ARG, "min_p < 0 accepted");
        q = p; q.top_k = -1;
        CHECK(lfm2_sampler_set_params(s, &q) == LFM2_ERR_INVALID_ARG, "top_k < 0 accepted");
        q = p; q.repetition_penalty = NAN;
        CHECK(lfm2_sampler_set_params(s, &q) == LFM2_ERR_INVALID_ARG, "NaN penalty accepted");
    }
    lfm2_sampler_free(s);
    lfm2_sampler_free(NULL);
}


/* ---- model-based tests ---------------------------------------------------------------------- */
static lfm2_model *ts_load_model(const char *dir) {
    lfm2_model *m = NULL;
    lfm2_error err;
    lfm2_model_params mp;
    memset(&mp, 0, sizeof mp);
    memset(&err, 0, sizeof err);
    mp.error = &err;
    if (lfm2_model_load_dir(dir, &mp, &m) != LFM2_OK) { NOTE("cannot load %s: %s", dir, err.message); return NULL; }
    return m;
}
static lfm2_context *ts_context(const lfm2_model *m, int32_t n_ctx) {
    lfm2_context *c = NULL;
    lfm2_context_params cp;
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = n_ctx;
    if (lfm2_context_create(m, &cp, &c) != LFM2_OK) return NULL;
    return c;
}

/* collects generated tokens and their streamed text */
typedef struct ts_collect {
    lfm2_token ids[256];
    int32_t n;
    char text[8192];
    size_t len;
    int stop_after;      /* on_token asks to stop after this many tokens (0 = never) */
    int abort_after;     /* should_abort says yes once this many tokens came (0 = never) */
} ts_collect;
static int ts_on_token(void *user, lfm2_token t, const char *text, size_t len) {
    ts_collect *c = (ts_collect *)user;
    if (t >= 0 && c->n < 256) c->ids[c->n++] = t;
    if (c->len + len < sizeof c->text) { memcpy(c->text + c->len, text, len); c->len += len; }
    return c->stop_after > 0 && c->n >= c->stop_after;
}
static int ts_should_abort(void *user) {
    ts_collect *c = (ts_collect *)user;
    return c->abort_after > 0 && c->n >= c->abort_after;
}
static lfm2_result ts_generate(lfm2_context *ctx, lfm2_sampler *s, const lfm2_token *prompt, int32_t n,
                               int32_t max_tokens, ts_collect *col, lfm2_generate_result *res) {
    lfm2_generate_params gp;
    memset(&gp, 0, sizeof gp);
    gp.max_tokens = max_tokens;
    gp.on_token = ts_on_token;
    gp.should_abort = ts_should_abort;
    gp.user = col;
    return lfm2_generate(ctx, s, prompt, n, &gp, res);
}

/* ---- sampler/e2e-realvocab: chat template -> ids -> 16 greedy ids (tests/data/realvocab-bf16) */
static void test_sampler_e2e_realvocab(void) {
    ts_json_doc d;
    lfm2_model *m;
    lfm2_context *c = NULL;
    lfm2_sampler *s = NULL;
    lfm2_chat_message msgs[8];
    char *msg_text[16];
    int32_t nm = 0, i, jm, jp, jg, n_ids = 0, mism = -1;
    char render[4096];
    size_t rlen = 0;
    lfm2_token ids[512];
    ts_collect col;
    lfm2_generate_result res;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/realvocab-bf16", t_data_dir());
    if (!ts_json_load(&d, ts_path("realvocab-bf16/e2e.json"))) { CHECK(0, "cannot read e2e.json"); return; }
    m = ts_load_model(dir);
    CHECK(m != NULL, "load %s", dir);
    if (!m) { ts_json_free(&d); return; }
    jm = lfm2__json_get(&d.j, 0, "messages");
    jp = lfm2__json_get(&d.j, 0, "prompt_ids");
    jg = lfm2__json_get(&d.j, 0, "greedy_ids");
    for (i = 0; jm >= 0 && i < d.j.tok[jm].n && i < 8; i++) {
        int32_t mo = lfm2__json_at(&d.j, jm, i);
        int32_t r = lfm2__json_get(&d.j, mo, "role"), t = lfm2__json_get(&d.j, mo, "content");
        int64_t lr = lfm2__json_str(&d.j, r, NULL), lt = lfm2__json_str(&d.j, t, NULL);
        msg_text[2 * nm] = (char *)calloc((size_t)(lr < 0 ? 0 : lr) + 1, 1);
        msg_text[2 * nm + 1] = (char *)calloc((size_t)(lt < 0 ? 0 : lt) + 1, 1);
        lfm2__json_str(&d.j, r, msg_text[2 * nm]);
        lfm2__json_str(&d.j, t, msg_text[2 * nm + 1]);
        msgs[nm].role = msg_text[2 * nm];
        msgs[nm].content = msg_text[2 * nm + 1];
        nm++;
    }
    CHECK(lfm2_chat_format(msgs, nm, NULL, 0, 1, render, sizeof render, &rlen) == LFM2_OK, "chat format");
    CHECK(lfm2_tokenize(m, render, rlen, LFM2_TOKENIZE_PARSE_SPECIAL, ids, 512, &n_ids) == LFM2_OK, "tokenize");
    {
        int ok = jp >= 0 && d.j.tok[jp].n == n_ids;
        for (i = 0; ok && i < n_ids; i++) {
            int64_t v;
            if (!lfm2__json_int(&d.j, lfm2__json_at(&d.j, jp, i), 0, INT32_MAX, &v) || v != ids[i]) { ok = 0; mism = i; }
        }
        NOTE("chat template: %d prompt ids, %s", (int)n_ids, ok ? "identical" : "DIFFERENT");
        CHECK(ok, "prompt ids differ from e2e.json (first difference at %d)", (int)mism);
    }
    c = ts_context(m, 256);
    CHECK(c && lfm2_sampler_create(NULL, lfm2_model_config(m)->vocab_size, NULL, &s) == LFM2_OK, "context/sampler");
    if (c && s) {
        lfm2_result rc;
        int same = 1;
        char dec[8192];
        size_t dlen = 0;
        memset(&col, 0, sizeof col);
        rc = ts_generate(c, s, ids, n_ids, 16, &col, &res);
        CHECK(rc == LFM2_OK && res.stop_reason == LFM2_STOP_MAX_TOKENS && res.n_generated == 16,
              "generate: %s, stop %d, %d tokens", lfm2_result_string(rc), (int)res.stop_reason, (int)res.n_generated);
        for (i = 0; i < 16; i++) {
            int64_t v = -1;
            lfm2__json_int(&d.j, lfm2__json_at(&d.j, jg, i), 0, INT32_MAX, &v);
            if (i >= col.n || v != col.ids[i]) { if (same) NOTE("first greedy difference at %d: %d vs %d", (int)i, i < col.n ? (int)col.ids[i] : -1, (int)v); same = 0; }
        }
        NOTE("greedy: %d of 16 ids generated, %s", (int)col.n, same ? "identical" : "DIFFERENT");
        CHECK(same, "greedy ids differ from e2e.json");
        CHECK(lfm2_context_pos(c) == n_ids + 16, "context holds %d tokens, expected %d", (int)lfm2_context_pos(c), (int)(n_ids + 16));
        /* the streamed text is the exact detokenization; e2e.json's text went through
           transformers' decode */
        CHECK(lfm2_detokenize(m, col.ids, col.n, 0, dec, sizeof dec, &dlen) == LFM2_OK, "detokenize");
        CHECK(dlen == col.len && memcmp(dec, col.text, dlen) == 0, "streamed text differs from lfm2_detokenize");
        {
            int32_t gt = lfm2__json_get(&d.j, 0, "greedy_text");
            CHECK(lfm2__json_str_eq(&d.j, gt, col.text, col.len), "streamed text differs from e2e.json greedy_text: \"%.*s\"", (int)col.len, col.text);
        }
    }
    for (i = 0; i < 2 * nm; i++) free(msg_text[i]);
    lfm2_sampler_free(s);
    lfm2_context_free(c);
    lfm2_model_free(m);
    ts_json_free(&d);
}

/* ---- sampler/demo-greedy: 48 greedy tokens of each reference prompt (models/demo-code-8m) ---- */
static void test_sampler_demo_greedy(void) {
    t_ref f;
    lfm2_model *m;
    lfm2_context *c;
    lfm2_sampler *s = NULL;
    int K, all_same = 1;
    if (!t_ref_open(&f, "models/demo-code-8m/ref.safetensors")) { CHECK(0, "cannot read models/demo-code-8m/ref.safetensors"); return; }
    m = ts_load_model("models/demo-code-8m");
    CHECK(m != NULL, "load models/demo-code-8m");
    if (!m) { t_ref_close(&f); return; }
    c = ts_context(m, 512);
    CHECK(c && lfm2_sampler_create(NULL, lfm2_model_config(m)->vocab_size, NULL, &s) == LFM2_OK, "context/sampler");
    for (K = 0; c && s && K < 3; K++) {
        char n1[32], n2[32];
        int64_t np, ng;
        int32_t *ids, *greedy, i, first_diff = -1;
        ts_collect col;
        lfm2_generate_result res;
        lfm2_result rc;
        snprintf(n1, sizeof n1, "p%d.ids", K);
        snprintf(n2, sizeof n2, "p%d.greedy", K);
        ids = t_ref_i32n(&f, n1, &np, NULL);
        greedy = t_ref_i32n(&f, n2, &ng, NULL);
        CHECK(ids && greedy && ng == 48, "%s / %s", n1, n2);
        if (!ids || !greedy || ng != 48) { free(ids); free(greedy); all_same = 0; continue; }
        lfm2_context_reset(c);
        lfm2_sampler_reset(s);
        memset(&col, 0, sizeof col);
        rc = ts_generate(c, s, ids, (int32_t)np, 48, &col, &res);
        CHECK(rc == LFM2_OK && res.stop_reason == LFM2_STOP_MAX_TOKENS, "p%d: %s, stop %d", K, lfm2_result_string(rc), (int)res.stop_reason);
        for (i = 0; i < 48; i++) if (i >= col.n || col.ids[i] != greedy[i]) { first_diff = i; break; }
        NOTE("p%d: %d-token prompt, %d/48 greedy tokens identical", K, (int)np, first_diff < 0 ? 48 : (int)first_diff);
        if (first_diff >= 0) all_same = 0;
        free(ids);
        free(greedy);
    }
    CHECK(all_same, "greedy tokens differ from the reference");
    lfm2_sampler_free(s);
    lfm2_context_free(c);
    lfm2_model_free(m);
    t_ref_close(&f);
}

/* ---- sampler/demo-perplexity: teacher-forced eval.ids, every position --------------------- */
static void test_sampler_demo_perplexity(void) {
    t_ref f;
    ts_json_doc d;
    lfm2_model *m;
    lfm2_context *c;
    int64_t n_ids, rows, n_nll;
    int32_t *ids;
    double *nll_ref, ref_ppl = 0, sum = 0, worst = 0;
    float *logits = NULL;
    int32_t V, T, r, t, count = 0;
    if (!t_ref_open(&f, "models/demo-code-8m/ref.safetensors")) { CHECK(0, "cannot read models/demo-code-8m/ref.safetensors"); return; }
    if (!ts_json_load(&d, "models/demo-code-8m/ref.json")) { CHECK(0, "cannot read ref.json"); t_ref_close(&f); return; }
    ref_ppl = ts_json_num_or(&d.j, 0, "eval_ppl_f64", 0, NULL);
    ids = t_ref_i32n(&f, "eval.ids", &n_ids, &rows);
    nll_ref = t_ref_f64n(&f, "eval.nll", &n_nll);
    m = ts_load_model("models/demo-code-8m");
    CHECK(ids && nll_ref && m && rows == 8 && n_ids == 8 * 256 && n_nll == 8 * 255 && ref_ppl > 1, "reference data / model");
    if (!ids || !nll_ref || !m || rows != 8 || n_nll != rows * (n_ids / rows - 1)) goto done;
    V = lfm2_model_config(m)->vocab_size;
    T = (int32_t)(n_ids / rows);
    c = ts_context(m, T);
    logits = (float *)malloc((size_t)T * (size_t)V * sizeof(float));
    CHECK(c && logits, "context / buffer");
    for (r = 0; c && logits && r < (int32_t)rows; r++) {
        const int32_t *row = ids + (size_t)r * T;
        lfm2_result rc;
        lfm2_context_reset(c); /* each row a fresh sequence */
        rc = lfm2_context_decode_all(c, row, T, logits);
        CHECK(rc == LFM2_OK, "decode_all row %d: %s", (int)r, lfm2_result_string(rc));
        if (rc != LFM2_OK) break;
        for (t = 0; t + 1 < T; t++) {
            const float *z = logits + (size_t)t * V;
            double mx = z[0], se = 0, nll, e;
            int32_t i;
            for (i = 1; i < V; i++) if (z[i] > mx) mx = z[i];
            for (i = 0; i < V; i++) se += exp((double)z[i] - mx);
            nll = mx + log(se) - (double)z[row[t + 1]];
            e = fabs(nll - nll_ref[(size_t)r * (T - 1) + t]);
            if (e > worst) worst = e;
            sum += nll;
            count++;
        }
    }
    lfm2_context_free(c);
    if (count == (int32_t)(rows * (T - 1))) {
        double ppl = exp(sum / count), rel = fabs(ppl / ref_ppl - 1);
        NOTE("perplexity %.6f (reference %.6f, relative difference %.2e) over %d tokens; worst |nll - ref| = %.3g",
             ppl, ref_ppl, rel, (int)count, worst);
        CHECK(rel <= 1e-3, "perplexity %.6f is not within 0.1%% of %.6f", ppl, ref_ppl);
    } else CHECK(0, "scored %d of %d positions", (int)count, (int)(rows * (T - 1)));
done:
    free(logits);
    free(ids);
    free(nll_ref);
    lfm2_model_free(m);
    ts_json_free(&d);
    t_ref_close(&f);
}

/* ---- sampler/generate-loop: cache reuse across calls, stops, abort, context full -------------- */
static void test_sampler_generate_loop(void) {
    static const lfm2_token A[6] = {340, 299, 3736, 276, 4816, 86};   /* "def fibonacci(n" ... */
    static const lfm2_token B[4] = {212, 272, 379, 291};
    lfm2_model *m = ts_load_model("models/demo-code-8m");
    lfm2_context *c1 = NULL, *c2 = NULL;
    lfm2_sampler *s1 = NULL, *s2 = NULL;
    lfm2_sampler_params p;
    ts_collect a, b, ref;
    lfm2_generate_result res;
    lfm2_result rc;
    lfm2_token all[64];
    int32_t n_all = 0, i, V;
    CHECK(m != NULL, "load models/demo-code-8m");
    if (!m) return;
    V = lfm2_model_config(m)->vocab_size;
    memset(&p, 0, sizeof p);
    p.repetition_penalty = 1.3f; /* greedy with a strong penalty: the history must be exact too */
    c1 = ts_context(m, 64);
    c2 = ts_context(m, 64);
    lfm2_sampler_create(&p, V, NULL, &s1);
    lfm2_sampler_create(&p, V, NULL, &s2);
    CHECK(c1 && c2 && s1 && s2, "contexts / samplers");
    if (!c1 || !c2 || !s1 || !s2) goto done;
    /* two calls on one context (turn 1: A -> a, turn 2: B -> b) versus one call on A+a+B */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&ref, 0, sizeof ref);
    rc = ts_generate(c1, s1, A, 6, 10, &a, &res);
    CHECK(rc == LFM2_OK && a.n == 10 && lfm2_context_pos(c1) == 16, "turn 1: %s, %d tokens, pos %d", lfm2_result_string(rc), (int)a.n, (int)lfm2_context_pos(c1));
    rc = ts_generate(c1, s1, B, 4, 10, &b, &res);
    CHECK(rc == LFM2_OK && b.n == 10 && lfm2_context_pos(c1) == 30, "turn 2: %s, %d tokens, pos %d", lfm2_result_string(rc), (int)b.n, (int)lfm2_context_pos(c1));
    memcpy(all, A, sizeof A); n_all = 6;
    memcpy(all + n_all, a.ids, (size_t)a.n * sizeof(lfm2_token)); n_all += a.n;
    memcpy(all + n_all, B, sizeof B); n_all += 4;
    rc = ts_generate(c2, s2, all, n_all, 10, &ref, &res);
    {
        int same = rc == LFM2_OK && ref.n == b.n;
        for (i = 0; same && i < b.n; i++) if (ref.ids[i] != b.ids[i]) same = 0;
        NOTE("second turn with the cache kept vs one prefill of the whole sequence: %s", same ? "identical" : "DIFFERENT");
        CHECK(same, "cache reuse across generate calls changes the tokens");
        CHECK(lfm2_sampler_history_size(s1) == lfm2_sampler_history_size(s2), "histories differ: %d vs %d",
              (int)lfm2_sampler_history_size(s1), (int)lfm2_sampler_history_size(s2));
    }
    /* on_token stop, abort, context full */
    lfm2_context_reset(c1); lfm2_sampler_reset(s1);
    memset(&a, 0, sizeof a); a.stop_after = 3;
    rc = ts_generate(c1, s1, A, 6, 0, &a, &res);
    CHECK(rc == LFM2_OK && res.stop_reason == LFM2_STOP_CALLBACK && res.n_generated == 3 && lfm2_context_pos(c1) == 9,
          "callback stop: %s, reason %d, %d tokens, pos %d", lfm2_result_string(rc), (int)res.stop_reason, (int)res.n_generated, (int)lfm2_context_pos(c1));
    lfm2_context_reset(c1); lfm2_sampler_reset(s1);
    memset(&a, 0, sizeof a); a.abort_after = 4;
    rc = ts_generate(c1, s1, A, 6, 0, &a, &res);
    CHECK(rc == LFM2_ERR_ABORTED && res.n_generated == 4 && lfm2_context_pos(c1) == 10,
          "abort: %s, %d tokens, pos %d", lfm2_result_string(rc), (int)res.n_generated, (int)lfm2_context_pos(c1));
    lfm2_context_reset(c1); lfm2_sampler_reset(s1);
    memset(&a, 0, sizeof a);
    {
        lfm2_error err;
        lfm2_generate_params gp;
        memset(&gp, 0, sizeof gp);
        memset(&err, 0, sizeof err);
        gp.on_token = ts_on_token;
        gp.user = &a;
        gp.error = &err;
        rc = lfm2_generate(c1, s1, A, 6, &gp, &res);
        NOTE("unlimited generation in a 64-token context: %s after %d tokens (%s)", lfm2_result_string(rc), (int)res.n_generated, err.message);
        CHECK((rc == LFM2_ERR_CONTEXT_FULL && lfm2_context_pos(c1) == 64 && res.n_generated == 58) ||
              (rc == LFM2_OK && res.stop_reason == LFM2_STOP_EOG), "context full not reported");
        lfm2_context_reset(c1);
        gp.max_tokens = 30;
        rc = lfm2_generate(c1, s1, all, n_all, &gp, &res);
        CHECK(rc == LFM2_OK && lfm2_context_pos(c1) == n_all + res.n_generated, "%d-token prompt: %s", (int)n_all, lfm2_result_string(rc));
        i = lfm2_context_pos(c1);
        memcpy(all + n_all, all, (size_t)n_all * sizeof(lfm2_token)); /* a 40-token prompt */
        rc = lfm2_generate(c1, s1, all, 2 * n_all, &gp, &res);
        CHECK(i + 2 * n_all > 64 && rc == LFM2_ERR_CONTEXT_FULL && res.n_prompt == 0 && lfm2_context_pos(c1) == i,
              "a prompt that does not fit (%d + %d > 64) must be refused untouched: %s, pos %d", (int)i, (int)(2 * n_all), lfm2_result_string(rc), (int)lfm2_context_pos(c1));
        CHECK(lfm2_generate(c1, s1, all, 0, &gp, &res) == LFM2_ERR_INVALID_ARG, "empty prompt accepted");
        CHECK(lfm2_generate(NULL, s1, all, 1, &gp, &res) == LFM2_ERR_INVALID_ARG, "NULL context accepted");
    }
    {
        lfm2_sampler *small = NULL;
        lfm2_sampler_create(NULL, 100, NULL, &small);
        CHECK(lfm2_generate(c2, small, A, 6, NULL, NULL) == LFM2_ERR_INVALID_ARG, "a sampler of another vocabulary accepted");
        lfm2_sampler_free(small);
    }
done:
    lfm2_sampler_free(s1);
    lfm2_sampler_free(s2);
    lfm2_context_free(c1);
    lfm2_context_free(c2);
    lfm2_model_free(m);
}

/* ---- sampler/generate-no-tokenizer: a model without tokenizer.json still generates ids ------- */
static void test_sampler_generate_no_tokenizer(void) {
    static const lfm2_token prompt[5] = {1, 20, 30, 40, 50};
    lfm2_model *m = ts_load_model("tests/data/tiny-bf16");
    lfm2_context *c = NULL;
    lfm2_sampler *s = NULL;
    ts_collect col;
    lfm2_generate_result res;
    lfm2_result rc;
    CHECK(m != NULL, "load tests/data/tiny-bf16");
    if (!m) return;
    c = ts_context(m, 64);
    lfm2_sampler_create(NULL, lfm2_model_config(m)->vocab_size, NULL, &s);
    memset(&col, 0, sizeof col);
    memset(&res, 0, sizeof res);
    rc = (c && s) ? ts_generate(c, s, prompt, 5, 8, &col, &res) : LFM2_ERR_OUT_OF_MEMORY;
    NOTE("%s, %d tokens, %d text bytes, stop reason %d", lfm2_result_string(rc), (int)col.n, (int)col.len, (int)res.stop_reason);
    CHECK(rc == LFM2_OK && col.len == 0 && res.n_generated == col.n &&
          (res.stop_reason == LFM2_STOP_MAX_TOKENS ? col.n == 8 : res.stop_reason == LFM2_STOP_EOG),
          "generation without a tokenizer");
    lfm2_sampler_free(s);
    lfm2_context_free(c);
    lfm2_model_free(m);
}

/* ---- sampler/cli-data: the expected outputs of tests/cli_test.sh are what the library decodes
   the reference ids to (and what transformers decoded them to) ------------------------------- */
static void test_sampler_cli_data(void) {
    t_ref f;
    ts_json_doc d;
    lfm2_model *m;
    int K, ok_all = 1;
    if (!t_ref_open(&f, "models/demo-code-8m/ref.safetensors")) { CHECK(0, "cannot read ref.safetensors"); return; }
    if (!ts_json_load(&d, "models/demo-code-8m/ref.json")) { CHECK(0, "cannot read ref.json"); t_ref_close(&f); return; }
    m = ts_load_model("models/demo-code-8m");
    CHECK(m != NULL, "load models/demo-code-8m");
    for (K = 0; m && K < 3; K++) {
        char name[64], path[256], dec[4096], key[32];
        size_t dlen = 0, plen = 0, elen = 0;
        int64_t ng;
        int32_t *greedy;
        char *prompt, *expect;
        int ok;
        snprintf(name, sizeof name, "p%d.greedy", K);
        greedy = t_ref_i32n(&f, name, &ng, NULL);
        snprintf(path, sizeof path, "%s/cli/demo-p%d.prompt", t_data_dir(), K);
        prompt = t_read_file(path, &plen);
        snprintf(path, sizeof path, "%s/cli/demo-p%d.expected", t_data_dir(), K);
        expect = t_read_file(path, &elen);
        snprintf(key, sizeof key, "p%d.greedy_text", K);
        ok = greedy && prompt && expect &&
             lfm2_detokenize(m, greedy, (int32_t)ng, 0, dec, sizeof dec, &dlen) == LFM2_OK &&
             lfm2__json_str_eq(&d.j, lfm2__json_at(&d.j, lfm2__json_get(&d.j, 0, "prompts"), K), prompt, plen) &&
             lfm2__json_str_eq(&d.j, lfm2__json_get(&d.j, 0, key), dec, dlen) &&
             elen == plen + dlen + 1 && memcmp(expect, prompt, plen) == 0 &&
             memcmp(expect + plen, dec, dlen) == 0 && expect[elen - 1] == '\n';
        CHECK(ok, "tests/data/cli/demo-p%d.{prompt,expected} do not match the reference ids / ref.json", K);
        if (!ok) ok_all = 0;
        /* and the prompt text tokenizes (no BOS) to the reference prompt ids */
        if (prompt) {
            int32_t *ids, n = 0, i, same;
            int64_t np;
            lfm2_token tok[256];
            snprintf(name, sizeof name, "p%d.ids", K);
            ids = t_ref_i32n(&f, name, &np, NULL);
            same = ids && lfm2_tokenize(m, prompt, plen, 0, tok, 256, &n) == LFM2_OK && n == (int32_t)np;
            for (i = 0; same && i < n; i++) if (tok[i] != ids[i]) same = 0;
            CHECK(same, "prompt %d does not tokenize to p%d.ids", K, K);
            if (!same) ok_all = 0;
            free(ids);
        }
        free(greedy);
        free(prompt);
        free(expect);
    }
    NOTE("3 CLI reference outputs %s", ok_all ? "match the library's and transformers' decoding" : "MISMATCH");
    lfm2_model_free(m);
    ts_json_free(&d);
    t_ref_close(&f);
}

/* ---- sampler/chat-continuation: a later turn's text, appended to the cache that holds the
   first turn and the answer (without its end token), renders exactly like the template --------- */
static void test_sampler_chat_continuation(void) {
    /* the text examples/lfm2.c sends for every user turn after the first */
    static const char pre[] = "<|im_end|>\n<|im_start|>user\n", post[] = "<|im_end|>\n<|im_start|>assistant\n";
    lfm2_chat_message conv[5];
    char full[1024], part[1024];
    size_t nf = 0, np = 0;
    int with_sys;
    for (with_sys = 0; with_sys < 2; with_sys++) {
        lfm2_chat_message *c = conv;
        int32_t n = 0, n1;
        if (with_sys) { c[n].role = "system"; c[n].content = "Be brief."; n++; }
        c[n].role = "user"; c[n].content = "What is C. elegans?"; n++;
        n1 = n;
        c[n].role = "assistant"; c[n].content = "A nematode."; n++;
        c[n].role = "user"; c[n].content = "And why?"; n++;
        CHECK(lfm2_chat_format(c, n, NULL, 0, 1, full, sizeof full, &nf) == LFM2_OK, "format");
        CHECK(lfm2_chat_format(c, n1, NULL, 0, 1, part, sizeof part, &np) == LFM2_OK, "format first turn");
        np += (size_t)sprintf(part + np, "%s%s%s", "A nematode.", pre, "And why?");
        np += (size_t)sprintf(part + np, "%s", post);
        CHECK(nf == np && memcmp(full, part, nf) == 0, "incremental turn text differs from the template:\n%.*s\nvs\n%.*s",
              (int)np, part, (int)nf, full);
    }
}

/* ---- sampler/generate-abort-prefill: should_abort reaches the prefill, per layer of every chunk;
   an abort there keeps the completed chunks (context and history), and the rest of the prompt fed
   later gives the tokens of an uninterrupted run */
typedef struct ts_abort_count { int calls, stop_at; } ts_abort_count;
static int ts_abort_count_fn(void *user) {
    ts_abort_count *a = (ts_abort_count *)user;
    a->calls++;
    return a->stop_at > 0 && a->calls >= a->stop_at;
}
static void test_sampler_generate_abort_prefill(void) {
    lfm2_model *m = ts_load_model("models/demo-code-8m");
    lfm2_context *c = NULL, *r = NULL;
    lfm2_context_params cp;
    lfm2_sampler *s = NULL, *sr = NULL;
    lfm2_sampler_params p;
    lfm2_generate_params gp;
    lfm2_generate_result res;
    ts_abort_count ab;
    ts_collect col, colr;
    lfm2_token prompt[30];
    lfm2_result rc;
    int32_t i, V, L, nb = 4, N = 30, chunks = (30 + 3) / 4, same;
    CHECK(m != NULL, "load models/demo-code-8m");
    if (!m) return;
    V = lfm2_model_config(m)->vocab_size;
    L = lfm2_model_config(m)->num_hidden_layers;
    for (i = 0; i < N; i++) prompt[i] = (i * 211 + 17) % 4000 + 100;
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = 128;
    cp.n_batch = nb;
    lfm2_context_create(m, &cp, &c);
    lfm2_context_create(m, &cp, &r);
    memset(&p, 0, sizeof p);
    p.repetition_penalty = 1.3f; /* greedy; the penalty makes the history matter */
    lfm2_sampler_create(&p, V, NULL, &s);
    lfm2_sampler_create(&p, V, NULL, &sr);
    CHECK(c && r && s && sr, "contexts / samplers");
    if (!c || !r || !s || !sr) goto done;
    memset(&gp, 0, sizeof gp);
    gp.max_tokens = 1;
    gp.should_abort = ts_abort_count_fn;
    gp.user = &ab;
    memset(&ab, 0, sizeof ab);
    rc = lfm2_generate(c, s, prompt, N, &gp, &res);
    CHECK(rc == LFM2_OK, "generate: %s", lfm2_result_string(rc));
    CHECK(ab.calls >= L * chunks, "should_abort polled %d times for a prefill of %d chunks of %d layers", ab.calls, chunks, L);
    NOTE("lfm2_generate, %d-token prompt in chunks of %d, %d layers: should_abort polled %d times", N, nb, L, ab.calls);
    /* aborted in the middle of the 4th chunk */
    lfm2_context_reset(c);
    lfm2_sampler_reset(s);
    memset(&ab, 0, sizeof ab);
    ab.stop_at = 1 + 3 * L + 2;
    rc = lfm2_generate(c, s, prompt, N, &gp, &res);
    CHECK(rc == LFM2_ERR_ABORTED && res.n_prompt == 3 * nb && lfm2_context_pos(c) == 3 * nb && res.n_generated == 0,
          "aborted prefill: %s, n_prompt %d, pos %d", lfm2_result_string(rc), (int)res.n_prompt, (int)lfm2_context_pos(c));
    {
        lfm2_sampler *h = NULL;
        lfm2_sampler_create(&p, V, NULL, &h);
        lfm2_sampler_accept(h, prompt, 3 * nb);
        CHECK(h && lfm2_sampler_history_size(s) == lfm2_sampler_history_size(h), "history after the abort: %d ids, expected %d",
              (int)lfm2_sampler_history_size(s), h ? (int)lfm2_sampler_history_size(h) : -1);
        lfm2_sampler_free(h);
    }
    /* the rest of the prompt in a second call: the same answer as one uninterrupted call */
    memset(&col, 0, sizeof col);
    memset(&colr, 0, sizeof colr);
    rc = ts_generate(c, s, prompt + 3 * nb, N - 3 * nb, 12, &col, &res);
    CHECK(rc == LFM2_OK, "resume: %s", lfm2_result_string(rc));
    rc = ts_generate(r, sr, prompt, N, 12, &colr, &res);
    CHECK(rc == LFM2_OK, "uninterrupted: %s", lfm2_result_string(rc));
    same = col.n == colr.n && col.n == 12;
    for (i = 0; same && i < col.n; i++) if (col.ids[i] != colr.ids[i]) same = 0;
    CHECK(same, "the answer after an aborted prefill differs from an uninterrupted one");
    NOTE("abort at poll %d: %d prompt tokens kept; the resumed answer (12 greedy tokens) is %s", 1 + 3 * L + 2, 3 * nb, same ? "identical" : "DIFFERENT");
done:
    lfm2_sampler_free(s);
    lfm2_sampler_free(sr);
    lfm2_context_free(c);
    lfm2_context_free(r);
    lfm2_model_free(m);
}

/* ---- sampler/bad-logits: NaN or all -inf logits are an error (LFM2_ERR_BAD_LOGITS, *out = -1), never
   token 0; lfm2_generate returns it with a message and emits nothing for that position */
static int ts_count_tokens(void *user, lfm2_token t, const char *text, size_t len) {
    (void)t; (void)text; (void)len;
    (*(int *)user)++;
    return 0;
}
static void test_sampler_bad_logits(void) {
    enum { V = 16 };
    static const char *kind[7] = {"all NaN", "all -inf", "one NaN among finite", "+inf among finite",
                                  "-inf but one finite", "finite, one -inf", "all +inf"};
    /* expected results: greedy, sampling (-1 = LFM2_ERR_BAD_LOGITS) */
    static const int want_greedy[7] = {-1, -1, -1, 5, 9, 3, 0}, want_sample[7] = {-1, -1, -1, -1, 9, -2, -1};
    lfm2_sampler_params sp = lfm2_sampler_default_params();
    lfm2_sampler *g = NULL, *smp = NULL;
    float lg[V];
    int k, i, mode;
    lfm2_sampler_create(NULL, V, NULL, &g);
    sp.top_k = 0;
    sp.min_p = 0;
    lfm2_sampler_create(&sp, V, NULL, &smp);
    CHECK(g && smp, "samplers");
    if (!g || !smp) { lfm2_sampler_free(g); lfm2_sampler_free(smp); return; }
    for (k = 0; k < 7; k++) {
        for (i = 0; i < V; i++) lg[i] = (float)(i % 5) * 0.25f - (i == 3 ? -2.0f : 0.0f); /* id 3 the largest */
        if (k == 0) for (i = 0; i < V; i++) lg[i] = NAN;
        if (k == 1) for (i = 0; i < V; i++) lg[i] = -HUGE_VALF;
        if (k == 2) lg[7] = NAN;
        if (k == 3) lg[5] = HUGE_VALF;
        if (k == 4) { for (i = 0; i < V; i++) lg[i] = -HUGE_VALF; lg[9] = 0.5f; }
        if (k == 5) lg[11] = -HUGE_VALF;
        if (k == 6) for (i = 0; i < V; i++) lg[i] = HUGE_VALF;
        for (mode = 0; mode < 2; mode++) {
            lfm2_token t = 12345;
            lfm2_result rc = lfm2_sampler_sample(mode ? smp : g, lg, &t);
            int want = mode ? want_sample[k] : want_greedy[k];
            if (want == -1)
                CHECK(rc == LFM2_ERR_BAD_LOGITS && t == -1, "%s, %s: %s, token %d (expected an error)", kind[k], mode ? "sampling" : "greedy", lfm2_result_string(rc), (int)t);
            else if (want == -2)
                CHECK(rc == LFM2_OK && t >= 0 && t < V && t != 11, "%s, %s: %s, token %d", kind[k], mode ? "sampling" : "greedy", lfm2_result_string(rc), (int)t);
            else
                CHECK(rc == LFM2_OK && t == want, "%s, %s: %s, token %d (expected %d)", kind[k], mode ? "sampling" : "greedy", lfm2_result_string(rc), (int)t, want);
            NOTE("TABLE\tlfm2_sampler_sample, %s logits, %s\t%s\t%s", kind[k], mode ? "temperature 0.3" : "greedy", lfm2_result_string(rc),
                 rc == LFM2_OK ? "(sampled)" : "*out = -1");
        }
    }
    lfm2_sampler_free(g);
    lfm2_sampler_free(smp);
    /* lfm2_generate on a model whose final norm holds a NaN: every logit is NaN */
    {
        lfm2_model *m = ts_load_model("models/demo-code-8m");
        lfm2_context *c = NULL;
        lfm2_sampler *s = NULL;
        lfm2_generate_params gp;
        lfm2_generate_result res;
        lfm2_error err;
        lfm2_token prompt[3] = {340, 299, 3736};
        int n_tok = 0;
        lfm2_result rc;
        CHECK(m != NULL, "load models/demo-code-8m");
        if (!m) return;
        ((float *)m->final_norm)[17] = NAN;
        c = ts_context(m, 64);
        lfm2_sampler_create(NULL, lfm2_model_config(m)->vocab_size, NULL, &s);
        memset(&gp, 0, sizeof gp);
        memset(&err, 0, sizeof err);
        gp.max_tokens = 8;
        gp.on_token = ts_count_tokens;
        gp.user = &n_tok;
        gp.error = &err;
        rc = lfm2_generate(c, s, prompt, 3, &gp, &res);
        CHECK(rc == LFM2_ERR_BAD_LOGITS && n_tok == 0 && res.n_generated == 0 && lfm2_context_pos(c) == 3,
              "generate with NaN logits: %s, %d tokens emitted, pos %d", lfm2_result_string(rc), n_tok, (int)lfm2_context_pos(c));
        CHECK(strstr(err.message, "NaN") != NULL, "message: %s", err.message);
        NOTE("TABLE\tlfm2_generate, model with a NaN in the final norm (all logits NaN)\t%s\t%s", lfm2_result_string(rc), err.message);
        lfm2_sampler_free(s);
        lfm2_context_free(c);
        lfm2_model_free(m);
    }
}

/* lfm2_sampler_params_from_generation_config: the LFM2.5 recipe, transformers' defaults behind a
   partial recipe, the model-card fallback for LFM2's files (no recipe) and no file, json.loads
   reading (escaped keys, repeated keys, null, other keys), refusals naming the key; and the
   loader: a generation_config.json with a recipe (or odd sampling values) loads, its eos ids
   count, the sampling keys are not the loader's business. */
static int ts_params_eq(const lfm2_sampler_params *a, const lfm2_sampler_params *b) {
    return a->temperature == b->temperature && a->top_k == b->top_k && a->top_p == b->top_p && a->min_p == b->min_p &&
           a->repetition_penalty == b->repetition_penalty && a->seed == b->seed;
}
static void test_sampler_generation_config(void) {
    static const struct { const char *json; float t, tp, mp, rp; int32_t k; } ok[] = {
        /* the LFM2.5 recipe (the LFM2.5-1.2B card: temperature 0.1, top_k 50, top_p 0.1, repetition_penalty 1.05) */
        { "{\n  \"bos_token_id\": 1,\n  \"do_sample\": true,\n  \"eos_token_id\": 7,\n  \"pad_token_id\": 0,\n  \"repetition_penalty\": 1.05,\n"
          "  \"temperature\": 0.1,\n  \"top_k\": 50,\n  \"top_p\": 0.1,\n  \"transformers_version\": \"4.57.1\"\n}\n", 0.1f, 0.1f, 0, 1.05f, 50 },
        /* do_sample alone: generate()'s defaults (temperature 1, top_k 50, top_p 1 = off) */
        { "{\"do_sample\": true}", 1.0f, 0, 0, 1.0f, 50 },
        /* do_sample false (or absent): greedy, whatever the temperature; the other values kept */
        { "{\"do_sample\": false, \"temperature\": 0.7, \"top_k\": 20}", 0, 0, 0, 1.0f, 20 },
        { "{\"temperature\": 0.7, \"min_p\": 0.15}", 0, 0, 0.15f, 1.0f, 50 },
        /* top_p 1 is off; top_k 0 is off; min_p and the penalty as given */
        { "{\"do_sample\": true, \"top_p\": 1.0, \"top_k\": 0, \"min_p\": 0.05, \"repetition_penalty\": 1.2}", 1.0f, 0, 0.05f, 1.2f, 0 },
        /* json.loads: an escaped key is the key, the last of a repeated key counts, null is absent, other keys ignored */
        { "{\"do_sample\": true, \"top\\u005fk\": 7, \"temperature\": 0.5, \"temperature\": 0.2, \"top_p\": null, \"num_beams\": 4, \"x\": {\"top_k\": 1}}",
          0.2f, 0, 0, 1.0f, 7 },
        { "{\"do_sample\": true, \"temperature\": 0.5, \"temperature\": null}", 1.0f, 0, 0, 1.0f, 50 },
        /* a float top_k that is an integer; temperature 0 with do_sample is greedy; bounds */
        { " {\"do_sample\": true, \"top_k\": 40.0, \"temperature\": 0, \"top_p\": 0, \"min_p\": 1}\r\n", 0, 0, 1.0f, 1.0f, 40 },
    };
    static const struct { const char *json, *key; } bad[] = {
        { "{\"do_sample\": true, \"temperature\": -0.1}", "temperature" },
        { "{\"do_sample\": true, \"temperature\": 1e300}", "temperature" }, /* does not fit a float */
        { "{\"top_k\": -1}", "top_k" }, { "{\"top_k\": 2.5}", "top_k" }, { "{\"top_k\": 3e9}", "top_k" },
        { "{\"top_p\": 1.5}", "top_p" }, { "{\"min_p\": -0.01}", "min_p" },
        { "{\"repetition_penalty\": 0}", "repetition_penalty" }, { "{\"repetition_penalty\": -1}", "repetition_penalty" },
        { "{\"repetition_penalty\": 1e39}", "repetition_penalty" },
        { "{\"do_sample\": 1}", "do_sample" }, { "{\"do_sample\": \"yes\"}", "do_sample" }, { "{\"temperature\": true}", "temperature" },
        { "{\"temperature\": \"0.3\"}", "temperature" }, { "{\"top_k\": [50]}", "top_k" },
        { "{\"temperature\": 0.3", NULL }, { "{\"temperature\": 0.3} x", NULL }, { "{\"temperature\": 0.3}{}", NULL }, { "{} x", NULL },
        { "[]", NULL }, { "", NULL }, { "{\"temperature\" 0.3}", NULL }, { "{\"a\": 1,}", NULL },
    };
    const lfm2_sampler_params card = lfm2_sampler_default_params();
    lfm2_sampler_params p;
    lfm2_error e;
    lfm2_result rc;
    int found = 7, n_ok = 0, n_bad = 0, n_files = 0;
    size_t i;
    char path[1024];
    /* no file, and LFM2's own files (no recipe): the model-card recipe, found 0 */
    memset(&p, 0xff, sizeof p);
    rc = lfm2_sampler_params_from_generation_config(NULL, 0, &p, &found, &e);
    CHECK(rc == LFM2_OK && found == 0 && ts_params_eq(&p, &card), "no generation_config.json: the model-card recipe");
    {
        static const char *const files[] = { "%s/../../../shared/reference/lfm2-350m/generation_config.json",
            "%s/../../../shared/reference/lfm2-1.2b/generation_config.json", "%s/tiny-bf16/generation_config.json",
            "%s/realvocab-bf16/generation_config.json" };
        for (i = 0; i < sizeof files / sizeof files[0]; i++) {
            size_t n = 0;
            char *txt;
            snprintf(path, sizeof path, files[i], t_data_dir());
            txt = t_read_file(path, &n);
            if (!txt) { NOTE("(%s absent)", path); continue; }
            memset(&p, 0xff, sizeof p);
            found = 7;
            rc = lfm2_sampler_params_from_generation_config(txt, n, &p, &found, &e);
            CHECK(rc == LFM2_OK && found == 0 && ts_params_eq(&p, &card), "%s (no recipe): the model-card recipe: %s", path,
                  rc == LFM2_OK ? "" : e.message);
            n_files++;
            free(txt);
        }
        CHECK(n_files >= 2, "%d LFM2 generation_config.json files read", n_files);
    }
    CHECK(card.temperature == 0.3f && card.min_p == 0.15f && card.repetition_penalty == 1.05f && card.top_k == 50 && card.seed == 0,
          "the model-card recipe: temperature 0.3, min_p 0.15, repetition_penalty 1.05, top_k 50");
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(&p, 0xff, sizeof p);
        found = 7;
        memset(&e, 0, sizeof e);
        rc = lfm2_sampler_params_from_generation_config(ok[i].json, strlen(ok[i].json), &p, &found, &e);
        CHECK(rc == LFM2_OK && found == 1 && p.temperature == ok[i].t && p.top_k == ok[i].k && p.top_p == ok[i].tp && p.min_p == ok[i].mp &&
                  p.repetition_penalty == ok[i].rp && p.seed == 0,
              "recipe %d: %s -> T %g k %d p %g min_p %g rep %g (%s)", (int)i, ok[i].json, p.temperature, (int)p.top_k, p.top_p, p.min_p,
              p.repetition_penalty, rc == LFM2_OK ? "" : e.message);
        if (rc == LFM2_OK) { /* what it gives is a valid sampler */
            lfm2_sampler *s = NULL;
            CHECK(lfm2_sampler_create(&p, 16, NULL, &s) == LFM2_OK && s, "recipe %d: sampler_create", (int)i);
            lfm2_sampler_free(s);
        }
        n_ok += rc == LFM2_OK && found == 1;
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        found = 7;
        memset(&e, 0, sizeof e);
        rc = lfm2_sampler_params_from_generation_config(bad[i].json, strlen(bad[i].json), &p, &found, &e);
        CHECK(rc == LFM2_ERR_BAD_CONFIG && found == 0 && strstr(e.message, "generation_config.json") &&
                  (bad[i].key ? strstr(e.message, bad[i].key) != NULL : (strstr(e.message, "malformed JSON") && !strstr(e.message, "do_sample"))),
              "refused: '%s': %s (%s)", bad[i].json, lfm2_result_string(rc), e.message);
        NOTE("TABLE\tgeneration_config.json '%s' (sampler recipe)\t%s\t%s", bad[i].json, lfm2_result_string(rc), e.message);
        n_bad += rc == LFM2_ERR_BAD_CONFIG;
    }
    CHECK(lfm2_sampler_params_from_generation_config(NULL, 3, &p, &found, &e) == LFM2_ERR_INVALID_ARG, "NULL json with len 3");
    CHECK(lfm2_sampler_params_from_generation_config("{}", 2, NULL, &found, &e) == LFM2_ERR_INVALID_ARG, "NULL out");
    CHECK(lfm2_sampler_params_from_generation_config("{}", 2, &p, NULL, NULL) == LFM2_OK && ts_params_eq(&p, &card), "{}: fallback, found optional");
    { /* the loader reads only eos_token_id from generation_config.json: a recipe, even an odd one, loads */
        const char *const gens[] = { ok[0].json, "{\"eos_token_id\": [7, 5], \"temperature\": \"hot\", \"top_k\": -3}" }; /* (automatic: ok[0].json is not a constant) */
        size_t g;
        for (g = 0; g < 2; g++) {
            lfm2_model *m = NULL;
            rc = t_load_tiny_gen(gens[g], &m, &e);
            CHECK(rc == LFM2_OK && lfm2_token_is_eog(m, 7) && lfm2_token_is_eog(m, 2) && (g == 0 || lfm2_token_is_eog(m, 5)) && !lfm2_token_is_eog(m, 3),
                  "load with generation_config.json %d: %s (%s)", (int)g, lfm2_result_string(rc), e.message);
            lfm2_model_free(m);
        }
    }
    NOTE("%d LFM2 files -> the model-card recipe, %d of %d recipes read as transformers would, %d of %d malformed / out-of-range texts refused",
         n_files, n_ok, (int)(sizeof ok / sizeof ok[0]), n_bad, (int)(sizeof bad / sizeof bad[0]));
    CHECK(n_ok == (int)(sizeof ok / sizeof ok[0]) && n_bad == (int)(sizeof bad / sizeof bad[0]), "every case");
}

static const t_case sampler_tests[] = {
    {"sampler/golden-proc", test_sampler_golden_proc, 0},
    {"sampler/golden-gen", test_sampler_golden_gen, 0},
    {"sampler/rng", test_sampler_rng, 0},
    {"sampler/frequencies", test_sampler_frequencies, T_SLOW},
    {"sampler/determinism", test_sampler_determinism, 0},
    {"sampler/greedy-and-args", test_sampler_greedy_args, 0},
    {"sampler/generate-loop", test_sampler_generate_loop, T_LONG},
    {"sampler/bad-logits", test_sampler_bad_logits, 0},
    {"sampler/generate-abort-prefill", test_sampler_generate_abort_prefill, 0},
    {"sampler/generate-no-tokenizer", test_sampler_generate_no_tokenizer, 0},
    {"sampler/e2e-realvocab", test_sampler_e2e_realvocab, 0},
    {"sampler/demo-greedy", test_sampler_demo_greedy, T_LONG},
    {"sampler/demo-perplexity", test_sampler_demo_perplexity, T_SLOW},
    {"sampler/cli-data", test_sampler_cli_data, 0},
    {"sampler/chat-continuation", test_sampler_chat_continuation, 0},
    {"sampler/generation-config", test_sampler_generation_config, 0},
    {NULL, NULL, 0}
};
