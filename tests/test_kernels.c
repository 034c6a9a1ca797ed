/* tests/test_kernels.c - the weight formats and their kernels: every SIMD kernel against the
   scalar reference, the interleaved layouts, quantization (round trip, int8 activations,
   perplexity), bf16 activations. */

/* the level the tests run at: what a model loaded now gets (the CPU's best, capped by LFM2_ISA) */
static int32_t t_level(void) {
    int32_t l = LFM2_ISA_SCALAR;
    lfm2__model_level(NULL, NULL, &l);
    return l;
}
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
            {   /* F16X / BF16X from AVX2 on, F32X from AVX-512 on; all three at aarch64's NEON levels */
                int32_t lv = lfm2_model_isa(a);
                int want = lb[i]->rows % 16 == 0 && lb[i]->cols % 2 == 0 && lfm2__fx_level(lv, lb[i]->dtype);
                CHECK(LFM2__IS_FX(la[i]->dtype) == want, "%s: matrix %d (%d x %d) layout %d", names[ni], i, la[i]->rows, la[i]->cols, la[i]->dtype);
            }
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
    NOTE("level %s: %d of %d matrices interleaved, values identical to the file, logits vs row-major kernels: worst rel err %.2g",
         lfm2_isa_name((lfm2_isa)t_level()), n_fx, n_mats, worst);
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

/* the calling thread alone, for the kernel tests that need no threads */
static const lfm2__workers t_serial = {1, LFM2__RUN_SERIAL, {NULL, NULL}
#ifdef LFM2__HAVE_POOL
                                       , NULL
#endif
};
static uint32_t t_rng = 12345u;
static float t_randf(void) { t_rng = t_rng * 1664525u + 1013904223u; return (float)((t_rng >> 8) & 0xffff) / 32768.0f - 1.0f; }

/* a model struct that only carries a level, for the converters (lfm2__quantize_mat) */
static lfm2_model t_model_at(int32_t isa) {
    lfm2_model m;
    memset(&m, 0, sizeof m);
    m.isa = isa;
    return m;
}
/* The matrix of format dt holding the f32 weights wf [N, K] as the load path makes it (rounded to
   f16 / bf16, interleaved, quantized); *mem receives what to free. 0 if dt does not take [N, K]. */
static int t_make_mat(lfm2__mat *w, int32_t dt, const float *wf, int32_t N, int32_t K, unsigned char **mem) {
    lfm2__workers serial;
    int32_t base = dt == LFM2__DT_F32X ? LFM2__DT_F32 : dt == LFM2__DT_F16X ? LFM2__DT_F16 : dt == LFM2__DT_BF16X ? LFM2__DT_BF16 : dt;
    size_t i, n = (size_t)N * K;
    memset(w, 0, sizeof *w);
    memset(&serial, 0, sizeof serial);
    serial.n = 1;
    *mem = NULL;
    w->rows = N;
    w->cols = K;
    if (LFM2__IS_FX(dt) && (N % 16 != 0 || K % 2 != 0)) return 0;
    if (LFM2__IS_Q(dt)) {
        int x16 = dt == LFM2__DT_Q8X || dt == LFM2__DT_Q4X, type = LFM2__IS_Q4(dt) ? LFM2_WEIGHTS_Q4 : LFM2_WEIGHTS_Q8;
        lfm2_model tm = t_model_at(x16 ? LFM2_ISA_AVX512_VNNI : LFM2_ISA_SCALAR);
        if (K % 32 != 0 || (x16 && (N % 16 != 0 || K % 64 != 0))) return 0;
        w->dtype = LFM2__DT_F32;
        w->data = wf;
        *mem = (unsigned char *)malloc(lfm2__quant_bytes(w, type));
        lfm2__quantize_mat(&tm, &serial, w, type, *mem);
        return w->dtype == dt;
    }
    if (base == LFM2__DT_F32) {
        *mem = (unsigned char *)malloc(n * 4);
        memcpy(*mem, wf, n * 4);
    } else {
        uint16_t *h = (uint16_t *)malloc(n * 2);
        for (i = 0; i < n; i++) h[i] = base == LFM2__DT_BF16 ? lfm2__f32_to_bf16(wf[i]) : lfm2__f32_to_f16(wf[i]);
        *mem = (unsigned char *)h;
    }
    w->dtype = base;
    w->data = *mem;
    if (LFM2__IS_FX(dt)) { /* the load path's interleaving, in place */
        size_t es = base == LFM2__DT_F32 ? 4 : 2, gb = 16 * (size_t)K * es;
        unsigned char *tmp = (unsigned char *)malloc(gb);
        int32_t g;
        for (g = 0; g < N / 16; g++) lfm2__interleave_group(*mem + g * gb, *mem + g * gb, tmp, K, base);
        free(tmp);
        w->dtype = dt;
    }
    return 1;
}
/* worst |o - exact| / sum|terms| of o[B x N] against the double sum of the bf16-rounded products
   (w16: the bf16 weights, row-major) */
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

/* Every entry of the kernel table that this machine (at the level of this run) can execute,
   against the scalar reference of its format on the same matrix (bf16-activation kernels: against
   the double sum of their bf16 products), for shapes with odd token counts and K tails, on 2
   threads of the built-in pool; the interleaved quantized kernels also token by token (the
   one-token path must give the tile's bits: chunking and decode depend on it); and the table's
   rules: every format has a scalar entry, and the kernel chosen for a matrix is the best entry
   of the level. */
static void test_kernel_table(void) {
    static const int32_t shapes[][3] = {{1, 1, 1}, {3, 17, 1}, {5, 64, 4}, {7, 96, 5}, {13, 48, 9}, {64, 256, 1}, {33, 320, 7}, {4, 1024, 16},
                                        {16, 64, 1}, {32, 128, 9}, {48, 192, 16}, {16, 1088, 11}, {16, 2, 3}, {32, 34, 17}, {16, 96, 8},
                                        {32, 64, 33}, {64, 1024, 16}};
    static const int32_t fmts[10] = {LFM2__DT_F32, LFM2__DT_F16, LFM2__DT_BF16, LFM2__DT_F32X, LFM2__DT_F16X, LFM2__DT_BF16X,
                                     LFM2__DT_Q8, LFM2__DT_Q4, LFM2__DT_Q8X, LFM2__DT_Q4X};
    int32_t level = t_level(), e, fi, n_run = 0, n_entries = 0, n_exact = 0, n_alone = 0;
    double worst[LFM2__N_KERNELS];
    lfm2__workers W;
    lfm2_allocator al;
    lfm2_error err;
    memset(&al, 0, sizeof al);
    CHECK(lfm2__workers_init(&W, 2, LFM2_THREADS_POOL, NULL, &al, &err) == LFM2_OK, "pool: %s", err.message);
    for (fi = 0; fi < 10; fi++) { /* the rules */
        lfm2__mat w;
        int32_t lv;
        memset(&w, 0, sizeof w);
        w.dtype = fmts[fi];
        w.rows = 16;
        w.cols = 64;
        CHECK(lfm2__kernel_find(fmts[fi], LFM2__IS_Q(fmts[fi]) ? LFM2__ACT_Q8 : LFM2__ACT_F32, LFM2_ISA_SCALAR, 64) != NULL, "format %d has no scalar kernel", fmts[fi]);
        for (lv = LFM2_ISA_SCALAR; lv < LFM2_ISA_COUNT; lv++) {
            const lfm2__kernel *k = lfm2__kernel_for(&w, 0, lv), *kb = lfm2__kernel_for(&w, 1, lv);
            CHECK(k && kb && lfm2__isa_has(lv, k->isa) && lfm2__isa_has(lv, kb->isa), "format %d level %d: no kernel", fmts[fi], lv);
            for (e = 0; k && e < LFM2__N_KERNELS; e++) {
                const lfm2__kernel *q = &lfm2__kernel_table[e];
                if (q->dtype == k->dtype && q->act == k->act && lfm2__isa_has(lv, q->isa) && 64 % q->kmul == 0)
                    CHECK(q->isa <= k->isa, "format %d level %d: %s chosen over %s", fmts[fi], lv, k->name, q->name);
            }
        }
        NOTE("level %s, format %d (16 x 64): %s; with bf16 activations: %s", lfm2_isa_name((lfm2_isa)level), fmts[fi],
             lfm2__kernel_for(&w, 0, level)->name, lfm2__kernel_for(&w, 1, level)->name);
    }
    for (e = 0; e < LFM2__N_KERNELS; e++) {
        const lfm2__kernel *k = &lfm2__kernel_table[e];
        size_t si;
        worst[e] = -1;
        if (!lfm2__isa_has(level, k->isa)) continue;
        n_entries++;
        for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int32_t N = shapes[si][0], K = shapes[si][1], B = shapes[si][2];
            float *wf = (float *)malloc(sizeof(float) * (size_t)N * K), *x = (float *)malloc(sizeof(float) * (size_t)B * K);
            float *o1 = (float *)malloc(sizeof(float) * (size_t)B * N), *o2 = (float *)malloc(sizeof(float) * (size_t)B * N);
            size_t qsz = (LFM2__QROW_BYTES(K) + 64) * (size_t)B;
            unsigned char *qa = (unsigned char *)malloc(qsz), *mem = NULL;
            lfm2__mat w;
            size_t i;
            for (i = 0; i < (size_t)N * K; i++) wf[i] = t_randf();
            for (i = 0; i < (size_t)B * K; i++) x[i] = t_randf();
            if (K % k->kmul == 0 && t_make_mat(&w, k->dtype, wf, N, K, &mem)) {
                lfm2__mmjob j;
                double md = 0, mo = 0, rel;
                j.out = o2; j.x = x; j.w = &w; j.B = B; j.k = k;
                lfm2__mm_step(&W, &j, 1, 0, qa, qsz);
                /* exact int32 sums and the same float steps: the same bits as a twin kernel (NEON_I8MM as
                   the sdot kernel; AVX2's Q8X / Q4X as VNNI's, where this CPU has both) */
                if (k->isa == LFM2_ISA_NEON_I8MM ||
                    (k->isa == LFM2_ISA_AVX2 && (k->dtype == LFM2__DT_Q8X || k->dtype == LFM2__DT_Q4X) && lfm2__isa_has(level, LFM2_ISA_AVX512_VNNI))) {
                    int32_t twin = k->isa == LFM2_ISA_NEON_I8MM ? LFM2_ISA_NEON_DOTPROD : LFM2_ISA_AVX512_VNNI;
                    const lfm2__kernel *kd = lfm2__kernel_find(k->dtype, k->act, twin, K);
                    CHECK(kd && kd->isa == twin, "%s: no %s kernel beside it", k->name, lfm2_isa_name((lfm2_isa)twin));
                    if (kd) {
                        j.out = o1; j.k = kd;
                        lfm2__mm_step(&W, &j, 1, 0, qa, qsz);
                        CHECK(memcmp(o1, o2, sizeof(float) * (size_t)B * N) == 0, "%s N=%d K=%d B=%d: not bit-identical to %s", k->name, N, K, B, kd->name);
                        j.out = o2; j.k = k;
                        n_exact++;
                    }
                }
                if ((k->dtype == LFM2__DT_Q8X || k->dtype == LFM2__DT_Q4X) && B > 1) { /* each token alone (the one-token path) = the tile's bits */
                    int32_t t;
                    for (t = 0; t < B; t++) {
                        j.out = o1; j.x = x + (size_t)t * K; j.B = 1;
                        lfm2__mm_step(&W, &j, 1, 0, qa, qsz);
                        CHECK(memcmp(o1, o2 + (size_t)t * N, sizeof(float) * (size_t)N) == 0, "%s N=%d K=%d B=%d: token %d alone differs from the tile", k->name, N, K, B, t);
                    }
                    j.out = o2; j.x = x; j.B = B;
                    n_alone++;
                }
                if (k->act == LFM2__ACT_BF16) {
                    uint16_t *w16 = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)N * K);
                    for (i = 0; i < (size_t)N * K; i++) w16[i] = lfm2__f32_to_bf16(wf[i]);
                    rel = t_bf16dot_err(w16, x, o2, N, K, B);
                    free(w16);
                    CHECK(rel < 1e-6, "%s N=%d K=%d B=%d: vs the double sum of the bf16 products %.3g of sum|terms|", k->name, N, K, B, rel);
                } else {
                    lfm2__matmul_ref(o1, x, B, &w, qa, qsz);
                    for (i = 0; i < (size_t)B * N; i++) {
                        double d = fabs((double)o1[i] - o2[i]);
                        if (d > md || d != d) md = d != d ? 1e30 : d;
                        if (fabs(o1[i]) > mo) mo = fabs(o1[i]);
                    }
                    rel = md / (mo > 0 ? mo : 1);
                    CHECK(rel < 1e-5, "%s N=%d K=%d B=%d: vs the scalar reference rel err %.3g", k->name, N, K, B, rel);
                }
                if (rel > worst[e]) worst[e] = rel;
                n_run++;
            }
            free(mem); free(wf); free(x); free(o1); free(o2); free(qa);
        }
    }
    for (e = 0; e < LFM2__N_KERNELS; e++)
        if (worst[e] >= 0) NOTE("%-26s (%s, act %d): worst %s %.2g", lfm2__kernel_table[e].name, lfm2_isa_name((lfm2_isa)lfm2__kernel_table[e].isa),
                                lfm2__kernel_table[e].act, lfm2__kernel_table[e].act == LFM2__ACT_BF16 ? "err / sum|terms| vs double" : "rel err vs scalar", worst[e]);
    NOTE("level %s: %d of %d table entries run here, %d products checked (%d of them bit-identical to a twin kernel: NEON_I8MM to NEON_DOTPROD, AVX2 Q8X / Q4X to VNNI; %d Q8X / Q4X ones token by token to the tile)",
         lfm2_isa_name((lfm2_isa)level), n_entries, LFM2__N_KERNELS, n_run, n_exact, n_alone);
    lfm2__workers_free(&W);
}

/* the vector operations of the level (attention head, SiLU gate) against the scalar ones and
   against double libm */
static void test_vops(void) {
    const lfm2__vops *v = lfm2__vops_for(t_level());
    double ea = 0, eg = 0, es = 0;
    int i, n_keys, hd;
    for (hd = 8; hd <= 80; hd += 36)
        for (n_keys = 1; n_keys <= 301; n_keys += 50) {
            size_t kvs = (size_t)hd * 2 + 3; /* rows of the cache further apart than one head */
            float *kc = (float *)malloc(sizeof(float) * kvs * n_keys), *vc = (float *)malloc(sizeof(float) * kvs * n_keys);
            float q[80], o1[80], o2[80], s[301];
            double sum = 0, mx = -1e30, d;
            int j;
            for (i = 0; i < (int)(kvs * n_keys); i++) { kc[i] = t_randf() * 2; vc[i] = t_randf(); }
            for (i = 0; i < hd; i++) q[i] = t_randf() * 2;
            lfm2__attend_ref(o1, q, kc, vc, kvs, n_keys, hd, 0.125f, s);
            v->attend(o2, q, kc, vc, kvs, n_keys, hd, 0.125f, s);
            for (i = 0; i < hd; i++) if (fabs(o1[i] - o2[i]) > ea) ea = fabs(o1[i] - o2[i]);
            /* the probabilities against double libm */
            for (j = 0; j < n_keys; j++) {
                double dd = 0;
                for (i = 0; i < hd; i++) dd += (double)q[i] * kc[(size_t)j * kvs + i];
                if (dd * 0.125 > mx) mx = dd * 0.125;
            }
            for (j = 0; j < n_keys; j++) {
                double dd = 0;
                for (i = 0; i < hd; i++) dd += (double)q[i] * kc[(size_t)j * kvs + i];
                sum += exp(dd * 0.125 - mx);
            }
            for (j = 0; j < n_keys; j++) {
                double dd = 0;
                for (i = 0; i < hd; i++) dd += (double)q[i] * kc[(size_t)j * kvs + i];
                d = fabs(s[j] - exp(dd * 0.125 - mx) / sum) / (exp(dd * 0.125 - mx) / sum);
                if (d > es) es = d;
            }
            free(kc); free(vc);
        }
    {
        float g[301], u[301], g2[301];
        for (i = 0; i < 301; i++) { g[i] = t_randf() * 40.0f; u[i] = t_randf(); }
        g[0] = -100.0f; g[1] = 100.0f; g[2] = 0.0f;
        memcpy(g2, g, sizeof g);
        v->silu_mul(g2, u, 301);
        for (i = 0; i < 301; i++) {
            double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            double d = fabs(g2[i] - want) / (fabs(want) + 1e-30);
            if (fabs(want) > 1e-30 && d > eg) eg = d;
        }
    }
    CHECK(ea < 1e-5, "attend vs scalar: max abs err %.3g", ea);
    CHECK(es < 2e-6, "softmax probabilities rel err %.3g", es);
    CHECK(eg < 2e-6, "silu_mul rel err %.3g", eg);
    NOTE("level %s: attention head vs scalar max abs err %.2g; softmax vs double libm rel err %.2g; silu*u rel err %.2g",
         lfm2_isa_name((lfm2_isa)t_level()), ea, es, eg);
}

/* lfm2_context_params.bf16_activations: the vdpbf16ps kernel against a double-precision sum of
   the same bf16-rounded products; then a whole model against the exact f32 path, 1 vs 2
   threads and whole vs chunked identical */
static void test_bf16_activations(void) {
    if (lfm2__kernel_find(LFM2__DT_BF16, LFM2__ACT_BF16, t_level(), 32)) {
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
        {
            lfm2__mmjob j;
            j.out = o; j.x = x; j.w = &w; j.B = B; j.k = lfm2__kernel_for(&w, 1, t_level());
            lfm2__mm_step(&t_serial, &j, 1, 1, qa, LFM2__QROW_BYTES(K) * (size_t)B);
        }
        md = t_bf16dot_err(w16, x, o, N, K, B);
        (void)mo;
        CHECK(md < 1e-6, "N=%d K=%d B=%d: bf16 dot vs double sum of the bf16 products: %.3g of sum|terms|", N, K, B, md);
        if (md > worst) worst = md;
        if (N % 16 == 0) { /* the interleaved layout's kernel */
            unsigned char *xm = (unsigned char *)malloc((size_t)N * K * 2), *tmp = (unsigned char *)malloc(32 * (size_t)K);
            float *ox = (float *)malloc(sizeof(float) * (size_t)B * N);
            lfm2__mat wx = w;
            int32_t g;
            for (g = 0; g < N / 16; g++) lfm2__interleave_group(xm + (size_t)g * 32 * K, (const unsigned char *)w16 + (size_t)g * 32 * K, tmp, K, LFM2__DT_BF16);
            wx.data = xm;
            wx.dtype = LFM2__DT_BF16X;
            {
                lfm2__mmjob j;
                j.out = ox; j.x = x; j.w = &wx; j.B = B; j.k = lfm2__kernel_for(&wx, 1, t_level());
                lfm2__mm_step(&t_serial, &j, 1, 1, qa, LFM2__QROW_BYTES(K) * (size_t)B);
            }
            md = t_bf16dot_err(w16, x, ox, N, K, B);
            CHECK(md < 1e-6, "N=%d K=%d B=%d interleaved: bf16 dot vs double sum: %.3g of sum|terms|", N, K, B, md);
            if (md > worst_x) worst_x = md;
            free(xm); free(tmp); free(ox);
        }
        free(w16); free(x); free(o); free(qa);
    }
    NOTE("level %s: bf16 dot kernel vs double sum of the same bf16 products: worst %.2g of sum|terms| (interleaved layout: %.2g)",
         lfm2_isa_name((lfm2_isa)t_level()), worst, worst_x);
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
    } else T_SKIP("level %s has no bf16 dot product (AVX512_BF16, NEON +bf16): bf16_activations is ignored", lfm2_isa_name((lfm2_isa)t_level()));
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
            {
                lfm2_model tm = t_model_at(t_level());
                lfm2__quantize_mat(&tm, &t_serial, &w, t ? LFM2_WEIGHTS_Q4 : LFM2_WEIGHTS_Q8, mem);
            }
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

/* int8 activations (lfm2__quantize_act_ref, and the AVX-512 one where the level has it) against a
   plain restatement of the definition: every byte equal, for ordinary, zero, tiny, huge, NaN and
   infinite blocks */
static void test_quant_act(void) {
    enum { K = 256 };
    float x[K];
    unsigned char got[3 * K + K / 8], want[3 * K + K / 8];
    int q4, i, b, cases = 0, impl;
    for (i = 0; i < K; i++) x[i] = t_randf() * (i < 64 ? 3.0f : 0.01f);
    for (i = 64; i < 96; i++) x[i] = 0;          /* a zero block */
    x[100] = 1e-35f;                              /* a block below 1e-30 */
    for (i = 97; i < 128; i++) if (i != 100) x[i] = 0;
    x[130] = NAN;                                 /* NaN and inf blocks */
    x[170] = -INFINITY;
    x[200] = 3e38f; x[201] = -3e38f;              /* huge but finite */
    x[224] = 0.5f / 127.0f;                       /* ties: 0.5 steps round away from zero */
    x[225] = 127.0f; x[226] = -1.5f; x[227] = 2.5f;
    for (impl = 0; impl < 2; impl++)
    for (q4 = 0; q4 < 2; q4++) {
        int32_t *ws = (int32_t *)(void *)(want + K);
        float *wd = (float *)(void *)(want + 2 * K);
        int32_t *wsb = (int32_t *)(void *)(want + 3 * K);
        if (impl == 0) lfm2__quantize_act_ref(got, x, K, q4);
#ifdef LFM2__HAVE_AVX512
        else if (lfm2__isa_has(t_level(), LFM2_ISA_AVX512)) lfm2__quantize_act_avx512(got, x, K, q4);
#endif
        else continue;
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
        CHECK(i == 3 * K + K / 8, "%s activations (%s quantizer): byte %d differs", q4 ? "q4" : "q8", impl ? "AVX-512" : "scalar", i);
        cases++;
    }
    NOTE("level %s: quantized activations identical to the definition for %d quantizer x layout cases x 8 blocks (zero, tiny, NaN, inf, huge, ties)",
         lfm2_isa_name((lfm2_isa)t_level()), cases);
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
        int32_t V;
        double ppl;
        memset(&p, 0, sizeof p);
        p.error = &e;
        p.weights = types[ti];
        CHECK(lfm2_model_load_dir("models/demo-code-8m", &p, &m) == LFM2_OK, "load: %s", e.message);
        if (!m) continue;
        V = lfm2_model_config(m)->vocab_size;
        memset(&cp, 0, sizeof cp);
        cp.bf16_activations = ti == 3;
        lfm2_context_create(m, &cp, &c);
        ppl = t_eval_perplexity(c, V, ids);
        CHECK(fabs(ppl / ref_ppl - 1) < limits[ti], "%s perplexity %.4f vs %.4f", names[ti], ppl, ref_ppl);
        NOTE("demo-code-8m eval perplexity with %s weights: %.4f (reference %.4f, %+.3f%%, limit %.1f%%)", names[ti], ppl, ref_ppl,
             100 * (ppl / ref_ppl - 1), 100 * limits[ti]);
        lfm2_context_free(c);
        lfm2_model_free(m);
    }
    free(ids);
    t_ref_close(&r);
}


static const t_case kernels_tests[] = {
    {"kernels/interleaved-layout", test_interleaved_layout, T_ISA},
    {"kernels/table", test_kernel_table, T_ISA | T_EMU},
    {"kernels/vops", test_vops, T_ISA | T_EMU},
    {"kernels/bf16-activations", test_bf16_activations, T_ISA | T_EMU},
    {"quant/roundtrip", test_quant_roundtrip, T_ISA | T_EMU},
    {"quant/act", test_quant_act, T_ISA | T_EMU},
    {"quant/perplexity", test_quant_perplexity, T_ISA | T_SLOW},
    {NULL, NULL, 0}
};
