/* tests/test_kernels.c - the weight formats and their kernels: every SIMD kernel against the
   scalar reference, the interleaved layouts, quantization (round trip, int8 activations,
   perplexity), bf16 activations. */

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
            lfm2__matmul_raw(o2, x, B, &w, 2, qa, 0);
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
                lfm2__matmul_raw(o2, x, B, &wx, 2, qa, 0);
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
        lfm2__matmul_raw(o, x, B, &w, 2, qa, 1);
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
            lfm2__matmul_raw(ox, x, B, &wx, 2, qa, 1);
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


static const t_case kernels_tests[] = {
    {"kernels/interleaved-layout", test_interleaved_layout, T_ISA},
    {"kernels/vs-scalar", test_kernels_vs_scalar, T_ISA | T_EMU},
    {"kernels/bf16-activations", test_bf16_activations, T_ISA | T_EMU},
    {"quant/roundtrip", test_quant_roundtrip, T_ISA | T_EMU},
    {"quant/act", test_quant_act, T_ISA | T_EMU},
    {"quant/perplexity", test_quant_perplexity, T_ISA | T_SLOW},
    {NULL, NULL, 0}
};
