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
/* Two job systems of a "caller" for lfm2_parallel: one runs the tasks of a step in reverse order
   on the calling thread, one runs every task on a thread of its own (pthreads); both count the
   steps and tasks they ran. */
typedef struct t_hook { long steps, tasks; int threaded; } t_hook;
#if defined(LFM2__PTHREADS)
typedef struct t_hook_job { lfm2_task_fn fn; void *arg; int32_t i; } t_hook_job;
static void *t_hook_thread(void *p) { t_hook_job *j = (t_hook_job *)p; j->fn(j->arg, j->i); return NULL; }
#endif
static void t_hook_run(void *user, lfm2_task_fn fn, void *arg, int32_t n) {
    t_hook *h = (t_hook *)user;
    int32_t i;
    h->steps++;
    h->tasks += n;
#if defined(LFM2__PTHREADS)
    if (h->threaded && n <= 8) {
        pthread_t th[8];
        t_hook_job jobs[8];
        for (i = 0; i < n; i++) { jobs[i].fn = fn; jobs[i].arg = arg; jobs[i].i = i; pthread_create(&th[i], NULL, t_hook_thread, &jobs[i]); }
        for (i = 0; i < n; i++) pthread_join(th[i], NULL);
        return;
    }
#endif
    for (i = n - 1; i >= 0; i--) fn(arg, i);
}

/* logits bit-identical for 1, 2 and 3 threads on every backend (OpenMP where compiled in, the
   built-in pool, a caller's job system run in reverse order or on threads of its own), and for
   whole vs chunked prompts, for bf16 (interleaved and row-major), Q8 and Q4 */
static void test_threads_identical(void) {
    static const int32_t types[4] = {LFM2_WEIGHTS_AS_STORED, LFM2_WEIGHTS_AS_STORED, LFM2_WEIGHTS_Q8, LFM2_WEIGHTS_Q4};
    static const char *names[4] = {"bf16", "bf16 keep_layout", "q8", "q4"};
    static const char *bnames[4] = {"auto", "pool", "hook (reverse order)", "hook (threads)"};
    int ti, n_runs = 0;
    for (ti = 0; ti < 4; ti++) {
        char path[1024];
        lfm2_model_params p;
        lfm2_model *m = NULL;
        lfm2_context_params cp;
        lfm2_context *c1, *c3;
        lfm2_token ids[20];
        float *a, *b, *cc;
        int32_t V, i, be, nt;
        int same_chunks, all_same = 1;
        t_hook hook;
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
        a = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        b = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        cc = (float *)malloc(sizeof(float) * 20 * (size_t)V);
        lfm2_context_decode_all(c1, ids, 20, a);
        for (i = 0; i < 20; i += 3) lfm2_context_decode_all(c3, ids + i, 20 - i < 3 ? 20 - i : 3, cc + (size_t)i * V);
        same_chunks = memcmp(a, cc, sizeof(float) * 20 * (size_t)V) == 0;
        CHECK(same_chunks, "%s: whole and chunks of 3 differ", names[ti]);
        for (be = 0; be < 4; be++)
            for (nt = 1; nt <= 3; nt++) {
                lfm2_context *c2 = NULL;
                lfm2_error e;
                int same;
                memset(&cp, 0, sizeof cp);
                memset(&hook, 0, sizeof hook);
                cp.error = &e;
                cp.n_threads = nt;
                cp.threading = be == 1 ? LFM2_THREADS_POOL : LFM2_THREADS_AUTO;
                if (be >= 2) { hook.threaded = be == 3; cp.parallel.run = t_hook_run; cp.parallel.user = &hook; }
                CHECK(lfm2_context_create(m, &cp, &c2) == LFM2_OK, "%s %s %d threads: %s", names[ti], bnames[be], nt, e.message);
                if (!c2) continue;
                CHECK(lfm2_context_threads(c2) == nt, "%s: %d threads asked, %d given", bnames[be], nt, lfm2_context_threads(c2));
                lfm2_context_decode_all(c2, ids, 20, b);
                same = memcmp(a, b, sizeof(float) * 20 * (size_t)V) == 0;
                CHECK(same, "%s: %s with %d threads differs from 1 thread", names[ti], bnames[be], nt);
                if (be >= 2 && nt > 1) CHECK(hook.steps > 0 && hook.tasks > hook.steps, "%s: the job system ran %ld steps, %ld tasks", bnames[be], hook.steps, hook.tasks);
                all_same &= same;
                n_runs++;
                lfm2_context_free(c2);
            }
        NOTE("%s (%s): every backend x 1/2/3 threads %s, whole vs chunks of 3 %s", names[ti],
             LFM2__IS_FX(m->layers[0].w1.dtype) || m->layers[0].w1.dtype >= LFM2__DT_Q8X ? "interleaved" : "row-major",
             all_same ? "bit-identical" : "DIFFERENT", same_chunks ? "bit-identical" : "DIFFERENT");
        free(a); free(b); free(cc);
        lfm2_context_free(c1);
        lfm2_context_free(c3);
        lfm2_model_free(m);
    }
#ifdef LFM2__OPENMP
    NOTE("%d runs: backends auto (OpenMP), pool, and a caller's job system", n_runs);
#else
    NOTE("%d runs: backends auto (the pool), pool, and a caller's job system", n_runs);
#endif
}

/* The built-in pool's threads sleep between calls: a context with 2 pool threads that has just
   decoded uses (almost) no CPU while the caller waits. set_threads starts and stops threads, and
   absurd thread counts are refused with a message. */
static void test_threads_pool(void) {
    lfm2_model *m = t_load("tiny-bf16");
    lfm2_context_params cp;
    lfm2_context *c = NULL;
    lfm2_error e;
    lfm2_token ids[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(m != NULL, "load");
    if (!m) return;
    memset(&cp, 0, sizeof cp);
    cp.error = &e;
    cp.n_threads = 100000;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_ERR_INVALID_ARG && !c, "n_threads 100000 accepted");
    NOTE("%s", e.message);
    cp.n_threads = -1;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_ERR_INVALID_ARG && !c, "n_threads -1 accepted");
    cp.n_threads = 2;
    cp.threading = 7;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_ERR_INVALID_ARG && !c, "threading 7 accepted");
#ifndef LFM2__OPENMP
    cp.threading = LFM2_THREADS_OPENMP;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_ERR_UNSUPPORTED && !c, "OpenMP asked for in a build without it");
#endif
    cp.threading = LFM2_THREADS_POOL;
    CHECK(lfm2_context_create(m, &cp, &c) == LFM2_OK, "create: %s", e.message);
    if (c) {
        const float *lg;
        int k;
        CHECK(lfm2_context_decode(c, ids, 8, &lg) == LFM2_OK, "decode");
        CHECK(lfm2_context_set_threads(c, 3) == LFM2_OK && lfm2_context_threads(c) == 3, "set_threads 3");
        CHECK(lfm2_context_decode(c, ids, 4, &lg) == LFM2_OK, "decode after set_threads");
        CHECK(lfm2_context_set_threads(c, 1 << 20) == LFM2_ERR_INVALID_ARG && lfm2_context_threads(c) == 3, "set_threads 2^20 must fail and keep 3");
        CHECK(lfm2_context_set_threads(c, 2) == LFM2_OK && lfm2_context_threads(c) == 2, "set_threads 2");
#if defined(LFM2__PTHREADS) && defined(CLOCK_PROCESS_CPUTIME_ID)
        {   /* idle: after the spin window (~1 ms) the workers sleep */
            struct timespec t0, t1, w0, w1, nap = {0, 200000000};
            double cpu, wall;
            lfm2_context_reset(c);
            CHECK(lfm2_context_decode(c, ids, 8, &lg) == LFM2_OK, "decode");
            nanosleep(&nap, NULL); /* (let the workers fall asleep) */
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
            clock_gettime(CLOCK_MONOTONIC, &w0);
            nanosleep(&nap, NULL);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
            clock_gettime(CLOCK_MONOTONIC, &w1);
            cpu = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            wall = (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec);
            CHECK(cpu < 0.25 * wall, "idle pool: %.3f s of CPU in %.3f s of waiting", cpu, wall);
            NOTE("idle context with 2 pool threads: %.4f s of CPU over %.3f s of waiting (%.1f%% of one core)", cpu, wall, 100 * cpu / wall);
        }
#endif
        for (k = 0; k < 3; k++) CHECK(lfm2_context_decode(c, ids + k, 1, &lg) == LFM2_OK, "decode after idle");
        lfm2_context_free(c);
    }
    lfm2_model_free(m);
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
    wrote = 0;
    CHECK(lfm2_context_state_save(a, NULL, 0, &wrote) == LFM2_OK && wrote == need, "size query: LFM2_OK with the size");
    buf = malloc(need);
    wrote = 0;
    CHECK(lfm2_context_state_save(a, buf, need - 1, &wrote) == LFM2_ERR_BUFFER_TOO_SMALL && wrote == need, "short buffer: the size needed");
    CHECK(lfm2_context_state_save(a, NULL, 5, &wrote) == LFM2_ERR_INVALID_ARG, "NULL buffer with cap > 0");
    CHECK(lfm2_context_state_save(a, NULL, 0, NULL) == LFM2_ERR_INVALID_ARG, "size query without n_written");
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

/* ---- a state loads only into the same model: same shapes but other weights, dtypes or load-time
   quantization are refused; the same tensors loaded another way are accepted ---------------- */
/* loads tiny-bf16 from memory with its model.safetensors bytes edited by fn (NULL = as is) */
static lfm2_model *tf_load_edited(char *st, size_t st_n, const char *cfg, size_t cfg_n, int32_t weights) {
    lfm2_model *m = NULL;
    lfm2_error e;
    if (t_load_one(cfg, cfg_n, st, st_n, weights, &e, &m) != LFM2_OK) NOTE("load: %s", e.message);
    return m;
}
static int tf_state_moves(lfm2_model *from, lfm2_model *to, char *msg, size_t msg_n) {
    lfm2_context *a = NULL, *b = NULL;
    lfm2_token ids[5] = {1, 5, 9, 100, 200};
    const float *lg;
    void *buf;
    size_t need = 0;
    int ok;
    lfm2_context_create(from, NULL, &a);
    lfm2_context_create(to, NULL, &b);
    lfm2_context_decode(a, ids, 5, &lg);
    lfm2_context_state_save(a, NULL, 0, &need);
    buf = malloc(need);
    lfm2_context_state_save(a, buf, need, &need);
    lfm2_context_decode(b, ids, 2, &lg);
    ok = lfm2_context_state_load(b, buf, need) == LFM2_OK;
    snprintf(msg, msg_n, "%s", lfm2_context_error(b));
    if (!ok) CHECK(lfm2_context_pos(b) == 2, "a refused state changed the context");
    free(buf);
    lfm2_context_free(a);
    lfm2_context_free(b);
    return ok;
}
static void test_state_fingerprint(void) {
    char path[512], msg[512];
    char *cfg, *st, *st2;
    size_t cfg_n = 0, st_n = 0, off = 0, nb = 0, i;
    lfm2_model *base, *other;
    lfm2_model_params mp;
    lfm2_tensor_info ti;
    int32_t k;
    snprintf(path, sizeof path, "%s/tiny-bf16/config.json", t_data_dir());
    cfg = t_read_file(path, &cfg_n);
    snprintf(path, sizeof path, "%s/tiny-bf16/model.safetensors", t_data_dir());
    st = t_read_file(path, &st_n);
    CHECK(cfg && st, "tiny-bf16 files");
    if (!cfg || !st) { free(cfg); free(st); return; }
    st2 = (char *)malloc(st_n);
    base = t_load("tiny-bf16");
    CHECK(base != NULL, "load tiny-bf16");
    if (!base) goto done;
    /* accepted: the same tensors loaded from memory, and from the folder with keep_layout / no_mmap */
    other = tf_load_edited(st, st_n, cfg, cfg_n, 0);
    CHECK(other && tf_state_moves(base, other, msg, sizeof msg), "same model from memory refused: %s", msg);
    lfm2_model_free(other);
    memset(&mp, 0, sizeof mp);
    mp.keep_layout = 1;
    mp.no_mmap = 1;
    snprintf(path, sizeof path, "%s/tiny-bf16", t_data_dir());
    other = NULL;
    lfm2_model_load_dir(path, &mp, &other);
    CHECK(other && tf_state_moves(base, other, msg, sizeof msg), "same model with keep_layout/no_mmap refused: %s", msg);
    lfm2_model_free(other);
    other = t_load("tiny-bf16-released-style"); /* the same weights, the other config.json key style */
    CHECK(other && tf_state_moves(base, other, msg, sizeof msg), "same weights, released-style config refused: %s", msg);
    lfm2_model_free(other);
    /* refused: quantized at load */
    other = tf_load_edited(st, st_n, cfg, cfg_n, LFM2_WEIGHTS_Q8);
    CHECK(other && !tf_state_moves(base, other, msg, sizeof msg), "state of bf16 weights loaded into the Q8 model");
    NOTE("TABLE\tlfm2_context_state_load of tiny-bf16's state into tiny-bf16 quantized to Q8 at load\t%s\t%s", lfm2_result_string(LFM2_ERR_INVALID_ARG), msg);
    lfm2_model_free(other);
    /* refused: "fine-tuned" (every value of one matrix moved by one bf16 ulp, the rest equal), and
       one value of one norm changed */
    for (k = 0; k < 2; k++) {
        const char *name = k == 0 ? "model.layers.3.feed_forward.w2.weight" : "model.layers.1.ffn_norm.weight";
        int32_t j;
        for (j = 0; j < lfm2_model_tensor_count(base); j++)
            if (lfm2_model_tensor_info(base, j, &ti) == LFM2_OK && strcmp(ti.name, name) == 0) { off = (size_t)ti.file_offset; nb = (size_t)ti.n_bytes; }
        CHECK(nb > 0 && off + nb <= st_n, "%s found", name);
        memcpy(st2, st, st_n);
        if (k == 0) for (i = 0; i + 1 < nb; i += 2) st2[off + i] ^= 1; /* low bit of every bf16 value (little-endian) */
        else st2[off + 5] ^= 0x10;
        other = tf_load_edited(st2, st_n, cfg, cfg_n, 0);
        CHECK(other && !tf_state_moves(base, other, msg, sizeof msg), "state loaded into a model with %s changed", name);
        CHECK(strstr(msg, "another model") != NULL, "message: %s", msg);
        NOTE("TABLE\tlfm2_context_state_load into tiny-bf16 with %s (%zu bytes) %s\t%s\t%s", name, nb,
             k == 0 ? "all values changed by one ulp" : "one value changed", lfm2_result_string(LFM2_ERR_INVALID_ARG), msg);
        lfm2_model_free(other);
    }
    /* refused: another model with other shapes (the header's shape fields) */
    other = t_load("tiny-f32-untied-bias");
    CHECK(other && !tf_state_moves(base, other, msg, sizeof msg), "state of tiny-bf16 loaded into tiny-f32-untied-bias");
    NOTE("TABLE\tlfm2_context_state_load of tiny-bf16's state into tiny-f32-untied-bias\t%s\t%s", lfm2_result_string(LFM2_ERR_INVALID_ARG), msg);
    lfm2_model_free(other);
done:
    lfm2_model_free(base);
    free(cfg); free(st); free(st2);
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
    CHECK(lfm2_context_error(c)[0] == 0, "the message of the failed decode survives a successful one: '%s'", lfm2_context_error(c));
    {   /* the same for state_load: a refused state, then a good one */
        size_t need = 0;
        void *sv;
        lfm2_context_state_save(c, NULL, 0, &need);
        sv = malloc(need);
        lfm2_context_state_save(c, sv, need, &need);
        CHECK(lfm2_context_state_load(c, sv, need - 1) == LFM2_ERR_INVALID_ARG && lfm2_context_error(c)[0] != 0, "short state");
        CHECK(lfm2_context_state_load(c, sv, need) == LFM2_OK && lfm2_context_error(c)[0] == 0, "message after a good state_load: '%s'", lfm2_context_error(c));
        free(sv);
    }
    CHECK(lfm2_context_decode(c, ids, 1, &lg) == LFM2_ERR_CONTEXT_FULL, "9th token");
    lfm2_context_reset(c);
    CHECK(lfm2_context_decode(c, &bad, 1, &lg) == LFM2_ERR_INVALID_ARG, "id = vocab_size");
    NOTE("%s", lfm2_context_error(c));
    CHECK(lfm2_context_decode(c, &neg, 1, &lg) == LFM2_ERR_INVALID_ARG, "negative id");
    CHECK(lfm2_context_decode(c, ids, 0, &lg) == LFM2_ERR_INVALID_ARG, "n = 0");
    lfm2_context_free(c);
    lfm2_model_free(m);
}

/* ---- abort during a long prefill ----------------------------------------------------------
   The abort callback is polled before every layer of every chunk; an abort in the middle of a
   chunk leaves the context at the last chunk boundary, usable: continuing from there gives the
   logits of an uninterrupted decode bit for bit. */
typedef struct tf_abort { int calls, stop_at; } tf_abort;
static int tf_abort_fn(void *user) {
    tf_abort *a = (tf_abort *)user;
    a->calls++;
    return a->stop_at > 0 && a->calls >= a->stop_at;
}
static void test_abort_prefill(void) {
    lfm2_model *m = t_load("tiny-bf16");
    lfm2_context_params cp;
    lfm2_context *c, *ref;
    lfm2_token ids[21];
    tf_abort a;
    float *whole, *part;
    const float *lg;
    int32_t V, L, i, nb = 4, N = 21, n_chunks = 6;
    lfm2_result rc;
    CHECK(m != NULL, "load");
    if (!m) return;
    V = lfm2_model_config(m)->vocab_size;
    L = lfm2_model_config(m)->num_hidden_layers;
    for (i = 0; i < N; i++) ids[i] = (i * 37 + 11) % V;
    memset(&cp, 0, sizeof cp);
    cp.n_batch = nb;
    lfm2_context_create(m, &cp, &c);
    lfm2_context_create(m, &cp, &ref);
    whole = (float *)malloc(sizeof(float) * (size_t)N * V);
    part = (float *)malloc(sizeof(float) * (size_t)N * V);
    CHECK(lfm2_context_decode_all(ref, ids, N, whole) == LFM2_OK, "uninterrupted decode");
    /* 1. the number of polls of a whole prefill: at least one per layer of every chunk */
    memset(&a, 0, sizeof a);
    lfm2_context_set_abort(c, tf_abort_fn, &a);
    CHECK(lfm2_context_decode(c, ids, N, &lg) == LFM2_OK, "decode with a callback that never aborts");
    CHECK(a.calls >= L * n_chunks, "%d polls for %d chunks of %d layers", a.calls, n_chunks, L);
    NOTE("prefill of %d tokens in chunks of %d (%d chunks, %d layers): %d polls of the abort callback", N, nb, n_chunks, L, a.calls);
    CHECK(memcmp(lg, whole + (size_t)(N - 1) * V, sizeof(float) * (size_t)V) == 0, "a callback changes nothing");
    /* 2. aborted in the middle of the third chunk (layer L/2): position 8, no logits */
    lfm2_context_reset(c);
    memset(&a, 0, sizeof a);
    a.stop_at = 2 * L + L / 2 + 1;
    rc = lfm2_context_decode(c, ids, N, &lg);
    CHECK(rc == LFM2_ERR_ABORTED, "aborted decode returns %s", lfm2_result_string(rc));
    CHECK(lfm2_context_pos(c) == 2 * nb, "position after the abort: %d, expected %d", (int)lfm2_context_pos(c), 2 * nb);
    CHECK(lg == NULL && lfm2_context_logits(c) == NULL, "no logits after an abort");
    NOTE("abort at poll %d: %s; %s", a.stop_at, lfm2_result_string(rc), lfm2_context_error(c));
    /* 3. continuing from the chunk boundary: the logits of the uninterrupted run, bit for bit */
    lfm2_context_set_abort(c, NULL, NULL);
    CHECK(lfm2_context_decode_all(c, ids + 2 * nb, N - 2 * nb, part + (size_t)(2 * nb) * V) == LFM2_OK, "continue");
    CHECK(lfm2_context_error(c)[0] == 0, "the abort's message is cleared by the next successful call: '%s'", lfm2_context_error(c));
    CHECK(memcmp(part + (size_t)(2 * nb) * V, whole + (size_t)(2 * nb) * V, sizeof(float) * (size_t)(N - 2 * nb) * V) == 0,
          "logits after resuming differ from the uninterrupted run");
    /* 4. aborted at the first layer of the first chunk: nothing changes; one-token decodes too */
    lfm2_context_reset(c);
    CHECK(lfm2_context_decode(c, ids, 5, &lg) == LFM2_OK, "5 tokens");
    memset(&a, 0, sizeof a);
    a.stop_at = 1;
    lfm2_context_set_abort(c, tf_abort_fn, &a);
    CHECK(lfm2_context_decode(c, ids + 5, 1, &lg) == LFM2_ERR_ABORTED && lfm2_context_pos(c) == 5, "one token aborted at layer 0");
    memset(&a, 0, sizeof a);
    a.stop_at = L; /* the last layer of a one-token decode */
    CHECK(lfm2_context_decode(c, ids + 5, 1, &lg) == LFM2_ERR_ABORTED && lfm2_context_pos(c) == 5, "one token aborted at the last layer");
    lfm2_context_set_abort(c, NULL, NULL);
    CHECK(lfm2_context_decode_all(c, ids + 5, N - 5, part + (size_t)5 * V) == LFM2_OK, "continue after the one-token aborts");
    CHECK(memcmp(part + (size_t)5 * V, whole + (size_t)5 * V, sizeof(float) * (size_t)(N - 5) * V) == 0,
          "aborted one-token decodes changed the conv state");
    NOTE("resumed after aborts mid-chunk and at the last layer: logits bit-identical to the uninterrupted run");
    free(whole); free(part);
    lfm2_context_free(c);
    lfm2_context_free(ref);
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
    {"forward/golden-demo-code-8m", test_golden_demo, T_ISA | T_EMU | T_LONG},
    {"forward/chunked-prefill", test_chunked_prefill, T_ISA | T_EMU},
    {"forward/threads-identical", test_threads_identical, T_ISA | T_THREADS | T_LONG},
    {"forward/threads-pool", test_threads_pool, T_THREADS},
    {"forward/state-snapshot", test_state_snapshot, 0},
    {"forward/state-fingerprint", test_state_fingerprint, 0},
    {"forward/decode-limits", test_decode_limits, 0},
    {"forward/abort-prefill", test_abort_prefill, 0},
    {NULL, NULL, 0}
};
