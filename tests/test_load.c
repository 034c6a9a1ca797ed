/* tests/test_load.c - loading: malformed safetensors and folders, the load variants (memory,
   mmap, read, no tokenizer). */

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
    for (i = 0; i < 8; i++) out[i] = (char)(((uint64_t)nhl >> (8 * i)) & 0xff); /* (64-bit: size_t may be 32 bits) */
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
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors.index.json",
        "model-00001-of-00008.safetensors", "model-00002-of-00008.safetensors", "model-00003-of-00008.safetensors",
        "model-00004-of-00008.safetensors", "model-00005-of-00008.safetensors", "model-00006-of-00008.safetensors",
        "model-00007-of-00008.safetensors", "model-00008-of-00008.safetensors", NULL};
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error e;
    lfm2_result rc;
    const char *const *f;
    char dir[512], path[1024], src[512];
    t_tmp_path(dir, sizeof dir, "modeldir");
    memset(&p, 0, sizeof p);
    p.error = &e;
    rc = lfm2_model_load_dir("no/such/folder", &p, &m);
    CHECK(rc == LFM2_ERR_IO && m == NULL && strstr(e.message, "config.json"), "missing folder: %s", e.message);
    NOTE("missing folder -> %s: %s", lfm2_result_string(rc), e.message);
    /* a copy of tiny-f16-sharded without one shard (made with C calls: no shell, runs under Wine) */
    t_pclean(dir, files);
    CHECK(t_pfolder(dir, "tiny-f16-sharded", files), "prepare %s", dir);
    snprintf(path, sizeof path, "%s/model-00003-of-00008.safetensors", dir);
    t_premove(path);
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_IO && strstr(e.message, "model-00003-of-00008.safetensors"), "missing shard: %s", e.message);
    NOTE("index names a missing shard -> %s: %s", lfm2_result_string(rc), e.message);
    /* an index that puts a tensor in the wrong shard */
    snprintf(src, sizeof src, "%s/tiny-f16-sharded/model-00003-of-00008.safetensors", t_data_dir());
    CHECK(t_pcopy(src, path), "copy the shard back");
    {
        static const char from[] = "\"model.embedding_norm.weight\": \"model-00008-of-00008.safetensors\"";
        static const char to[] = "\"model.embedding_norm.weight\": \"model-00001-of-00008.safetensors\"";
        size_t n;
        char *idx, *at;
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        idx = t_read_file(path, &n);
        at = idx ? strstr(idx, from) : NULL;
        CHECK(at != NULL, "edit index");
        if (at) { memcpy(at, to, sizeof to - 1); CHECK(t_pwrite(path, idx, n), "write index"); }
        free(idx);
    }
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "model.embedding_norm.weight"), "index mismatch: %s", e.message);
    NOTE("index puts a tensor in the wrong shard -> %s: %s", lfm2_result_string(rc), e.message);
    /* path traversal in the index */
    {
        static const char trav[] = "{\"weight_map\":{\"model.embed_tokens.weight\":\"../../etc/passwd\"}}";
        CHECK(t_pwrite(path, trav, sizeof trav - 1), "write index");
    }
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e.message, "plain file name"), "traversal: %s", e.message);
    NOTE("index shard \"../../etc/passwd\" -> %s: %s", lfm2_result_string(rc), e.message);
    /* no weights at all */
    for (f = files + 2; *f; f++) { snprintf(path, sizeof path, "%s/%s", dir, *f); t_premove(path); }
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_IO && strstr(e.message, "model.safetensors"), "no weights: %s", e.message);
    NOTE("no weights -> %s: %s", lfm2_result_string(rc), e.message);
    t_pclean(dir, files);
}

/* The interleaved float layout (AVX-512 builds, lfm2_model_params.keep_layout = 0): every matrix
   holds the same values as the row-major file, logits agree with the row-major kernels to float
   rounding, the mapped pages were released (peak memory one copy), and buffers given to
   lfm2_model_load_memory are neither reordered nor written */
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


/* ---- pre-quantized folders in the interleaved layout (LFM2__X16_LAYOUT) -------------------- */

/* the matrix of a dense model stored under tensor `name`, or NULL */
static const lfm2__mat *t_x16_mat(const lfm2_model *m, const char *name) {
    static const char *const nm[9] = {"feed_forward.w1.weight", "feed_forward.w3.weight", "feed_forward.w2.weight", "self_attn.q_proj.weight",
                                      "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.out_proj.weight", "conv.in_proj.weight",
                                      "conv.out_proj.weight"};
    char buf[160];
    int32_t l, k;
    if (!strcmp(name, "model.embed_tokens.weight")) return &m->embed;
    if (!strcmp(name, "lm_head.weight")) return &m->head;
    for (l = 0; l < m->cfg.num_hidden_layers; l++) {
        const lfm2__layer *ly = &m->layers[l];
        const lfm2__mat *mats[9];
        mats[0] = &ly->w1; mats[1] = &ly->w3; mats[2] = &ly->w2; mats[3] = &ly->wq; mats[4] = &ly->wk;
        mats[5] = &ly->wv; mats[6] = &ly->wo; mats[7] = &ly->in_proj; mats[8] = &ly->out_proj;
        for (k = 0; k < 9; k++) {
            snprintf(buf, sizeof buf, "model.layers.%d.%s", l, nm[k]);
            if (!strcmp(buf, name)) return mats[k];
        }
    }
    return NULL;
}
/* The safetensors file lfm2-quantize writes from m (a dense model quantized at load in the
   row-major layout, the scalar level): its matrices as interleaved records (U8 [r/16, c/64, rec],
   lfm2__interleave_groups) with "lfm2.h.interleave" = layout in the __metadata__, every other
   tensor copied. 64-byte aligned data; malloc'd, *n its size. */
static char *t_x16_file(const lfm2_model *m, const char *layout, size_t *n) {
    size_t hcap = 1 << 16, hl, off = 0, total = 0, pos = 0;
    char *h = (char *)malloc(hcap), *out = NULL;
    int32_t i, k, pass;
    unsigned char *recs[512];
    int32_t nrec = 0;
    if (!h) return NULL;
    memset(recs, 0, sizeof recs);
    hl = (size_t)snprintf(h, hcap, "{\"__metadata__\":{\"format\":\"lfm2.h-test\",\"lfm2.h.interleave\":\"%s\"}", layout);
    for (pass = 0; pass < 2; pass++) {       /* 0: the header, 1: the data */
        off = 0;
        nrec = 0;
        for (i = 0; i < m->n_tensors; i++) {
            const lfm2__tensor *t = m->by_name[i];
            const lfm2__mat *w = t_x16_mat(m, t->name);
            const void *d = t->data;
            size_t nb = (size_t)t->nbytes;
            char sh[96];
            const char *dt = lfm2__dtype_name[t->dtype];
            if (w && (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4) && w->rows % 16 == 0 && w->cols % 64 == 0) {
                int q4 = w->dtype == LFM2__DT_Q4;
                size_t rec = LFM2__X16_REC(q4);
                nb = (size_t)(w->rows / 16) * (size_t)(w->cols / 64) * rec;
                if (pass == 1) {
                    lfm2__ilv v;
                    memset(&v, 0, sizeof v);
                    recs[nrec] = (unsigned char *)malloc(nb);
                    v.dst = recs[nrec];
                    v.src = (const unsigned char *)w->data;
                    v.sc = w->scales;
                    v.cols = w->cols;
                    v.dtype = w->dtype;
                    lfm2__interleave_groups(&v, 0, w->rows / 16, 0);
                    d = recs[nrec++];
                }
                dt = "U8";
                snprintf(sh, sizeof sh, "%d,%d,%d", (int)(w->rows / 16), (int)(w->cols / 64), (int)rec);
            } else if (w) {
                free(h); /* (row-major matrices: not needed by the tests) */
                free(out);
                for (k = 0; k < nrec; k++) free(recs[k]);
                return NULL;
            } else {
                size_t q = 0;
                sh[0] = 0;
                for (k = 0; k < t->ndim; k++) q += (size_t)snprintf(sh + q, sizeof sh - q, k ? ",%lld" : "%lld", (long long)t->shape[k]);
            }
            off = (off + 63) & ~(size_t)63;
            if (pass == 0) {
                if (hl + 512 > hcap) { hcap *= 2; h = (char *)realloc(h, hcap); }
                hl += (size_t)snprintf(h + hl, hcap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}", t->name, dt, sh, off, off + nb);
            } else {
                memcpy(out + pos + off, d, nb);
            }
            off += nb;
        }
        if (pass == 0) {
            h[hl++] = '}';
            while ((8 + hl) % 64 != 0) h[hl++] = ' ';
            total = 8 + hl + off;
            out = (char *)calloc(1, total);
            for (k = 0; k < 8; k++) out[k] = (char)(((uint64_t)hl >> (8 * k)) & 0xff);
            memcpy(out + 8, h, hl);
            pos = 8 + hl;
        }
    }
    for (i = 0; i < nrec; i++) free(recs[i]);
    free(h);
    *n = total;
    return out;
}
/* logits of ids 1..6 (the last token) of m */
static int t_x16_logits(lfm2_model *m, float *out, int32_t V) {
    lfm2_context *c = NULL;
    lfm2_token ids[6] = {1, 7, 30, 100, 5, 2};
    const float *lg = NULL;
    int ok = m && lfm2_context_create(m, NULL, &c) == LFM2_OK && lfm2_context_decode(c, ids, 6, &lg) == LFM2_OK;
    if (ok) memcpy(out, lg, sizeof(float) * (size_t)V);
    lfm2_context_free(c);
    return ok;
}
/* A pre-quantized file in the interleaved layout gives the logits of quantizing the original at
   load, bit for bit, at the default level (mapped in place where the level has the interleaved
   kernels: no copy) and at the lower levels (unpacked at load), from memory and from a mapped
   folder; malformed records and metadata are refused with a message. */
static void test_x16_folder(void) {
    static const char *const files[] = {"config.json", "model.safetensors", NULL};
    char dir[512], mpath[1024], path[512], *cfg;
    size_t cfg_n = 0;
    int32_t q, li;
#if defined(LFM2__BIG_ENDIAN)
    T_SKIP("big-endian host: t_x16_file writes the loaded (byte-swapped) tensors back in host order");
#endif
    snprintf(path, sizeof path, "%s/tiny-bf16/config.json", t_data_dir());
    cfg = t_read_file(path, &cfg_n);
    CHECK(cfg != NULL, "config");
    if (!cfg) return;
    t_tmp_path(dir, sizeof dir, "x16_folder");
    snprintf(mpath, sizeof mpath, "%s/model.safetensors", dir);
    for (q = 0; q < 2; q++) {
        int32_t wt = q ? LFM2_WEIGHTS_Q4 : LFM2_WEIGHTS_Q8;
        lfm2_model_params p;
        lfm2_error e;
        lfm2_model *rm = NULL;
        char *file;
        size_t fn = 0;
        int32_t levels[4], nl = 0;
        memset(&p, 0, sizeof p);
        p.error = &e;
        p.weights = wt;
        p.max_isa = LFM2_ISA_SCALAR; /* row-major Q8 / Q4: the source of the records */
        snprintf(path, sizeof path, "%s/tiny-bf16", t_data_dir());
        CHECK(lfm2_model_load_dir(path, &p, &rm) == LFM2_OK, "load: %s", e.message);
        if (!rm) continue;
        file = t_x16_file(rm, LFM2__X16_LAYOUT, &fn);
        lfm2_model_free(rm);
        CHECK(file != NULL, "the interleaved file");
        if (!file) continue;
        levels[nl++] = LFM2_ISA_AUTO;
        levels[nl++] = LFM2_ISA_SCALAR;
#if defined(__x86_64__) || defined(_M_X64)
        if (lfm2_cpu_isa() >= LFM2_ISA_AVX2 && lfm2_cpu_isa() <= LFM2_ISA_AVX512_BF16) levels[nl++] = LFM2_ISA_AVX2;
        if (lfm2_cpu_isa() >= LFM2_ISA_AVX512 && lfm2_cpu_isa() <= LFM2_ISA_AVX512_BF16) levels[nl++] = LFM2_ISA_AVX512;
#endif
        for (li = 0; li < nl; li++) {
            lfm2_model *a = NULL, *b = NULL, *c = NULL;
            int32_t V = 0, inplace = 0, from_dir;
            float *la, *lb;
            memset(&p, 0, sizeof p);
            p.error = &e;
            p.weights = wt;
            p.max_isa = levels[li];
            CHECK(lfm2_model_load_dir(path, &p, &a) == LFM2_OK, "load-time %s: %s", q ? "q4" : "q8", e.message);
            p.weights = LFM2_WEIGHTS_AS_STORED;
            {
                lfm2_model_sources s;
                lfm2_buffer bf;
                memset(&s, 0, sizeof s);
                bf.data = file; bf.size = fn; bf.name = "model.safetensors";
                s.config_json = cfg; s.config_json_size = cfg_n; s.safetensors = &bf; s.n_safetensors = 1;
                CHECK(lfm2_model_load_memory(&s, &p, &b) == LFM2_OK, "interleaved file from memory: %s", e.message);
            }
            from_dir = t_pfolder(dir, "tiny-bf16", files) && t_pwrite(mpath, file, fn);
            CHECK(from_dir, "writing %s", dir);
            if (from_dir) CHECK(lfm2_model_load_dir(dir, &p, &c) == LFM2_OK, "interleaved folder: %s", e.message);
            if (a && b && c) {
                V = lfm2_model_config(a)->vocab_size;
                CHECK(lfm2_model_isa(a) == lfm2_model_isa(b) && lfm2_model_isa(a) == lfm2_model_isa(c), "levels differ");
                inplace = (const char *)b->layers[0].w1.data >= file && (const char *)b->layers[0].w1.data < file + fn;
                CHECK(inplace == lfm2__x16_level(b->isa), "level %s: in place %d", lfm2_isa_name(lfm2_model_isa(b)), inplace);
                CHECK(b->layers[0].w1.dtype == a->layers[0].w1.dtype && c->embed.dtype == a->embed.dtype, "layouts differ: %d %d", (int)b->layers[0].w1.dtype,
                      (int)a->layers[0].w1.dtype);
                la = (float *)malloc(sizeof(float) * (size_t)V * 2);
                lb = la + V;
                CHECK(t_x16_logits(a, la, V) && t_x16_logits(b, lb, V), "decode");
                CHECK(memcmp(la, lb, sizeof(float) * (size_t)V) == 0, "%s level %s: logits of the interleaved file from memory differ from load-time quantization",
                      q ? "q4" : "q8", lfm2_isa_name(lfm2_model_isa(a)));
                CHECK(t_x16_logits(c, lb, V), "decode");
                CHECK(memcmp(la, lb, sizeof(float) * (size_t)V) == 0, "%s level %s: logits of the mapped interleaved folder differ from load-time quantization",
                      q ? "q4" : "q8", lfm2_isa_name(lfm2_model_isa(a)));
                NOTE("%s, level %s: the interleaved file (%s) gives logits bit-identical to load-time %s, from memory and mapped", q ? "q4" : "q8",
                     lfm2_isa_name(lfm2_model_isa(a)), inplace ? "used in place" : "unpacked to row-major", q ? "q4" : "q8");
                free(la);
            }
            lfm2_model_free(a);
            lfm2_model_free(b);
            lfm2_model_free(c);
            t_pclean(dir, files);
        }
        if (q == 0) {   /* malformed records and metadata: refused with a message */
            static const struct { const char *from, *to; lfm2_result rc; const char *want; } bad[] = {
                {"\"lfm2.h.interleave\"", "\"lfm2.h.interleavX\"", LFM2_ERR_BAD_WEIGHTS, "no \"lfm2.h.interleave\""},
                {"x16 v1:", "x16 v9:", LFM2_ERR_UNSUPPORTED, "not the one this lfm2.h reads"},
                {"w2.weight\":{\"dtype\":\"U8\",\"shape\":[4,3,1088]", "w2.weight\":{\"dtype\":\"U8\",\"shape\":[12,1,1088]", LFM2_ERR_BAD_WEIGHTS,
                 "has shape [12, 1, 1088]; [4, 3, 1088] (q8)"},
                {"\"model.layers.0.feed_forward.w1.weight\":{\"dtype\":\"U8\"", "\"model.layers.0.feed_forward.w1.weight\":{\"dtype\":\"I8\"", LFM2_ERR_BAD_WEIGHTS, "w1.weight"},
                {",1088]", ",1087]", LFM2_ERR_BAD_WEIGHTS, "needs"},
            };
            int32_t k;
            for (k = 0; k < (int32_t)(sizeof bad / sizeof bad[0]); k++) {
                size_t en = 0;
                char *ed = t_st_edit(file, fn, bad[k].from, bad[k].to, &en);
                lfm2_error e2;
                lfm2_result rc;
                CHECK(ed != NULL, "edit %d", (int)k);
                if (!ed) continue;
                rc = t_load_mem(cfg, cfg_n, ed, en, &e2);
                CHECK(rc == bad[k].rc && strstr(e2.message, bad[k].want) != NULL, "malformed %d: %s (%s)", (int)k, lfm2_result_string(rc), e2.message);
                NOTE("refused: %s", e2.message);
                free(ed);
            }
            {
                lfm2_error e2;
                lfm2_result rc = t_load_mem(cfg, cfg_n, file, fn - 4096, &e2); /* truncated */
                CHECK(rc == LFM2_ERR_BAD_WEIGHTS && strstr(e2.message, "outside the data region") != NULL, "truncated: %s (%s)", lfm2_result_string(rc), e2.message);
                NOTE("refused (truncated): %s", e2.message);
            }
        }
        free(file);
    }
    free(cfg);
}

/* ---- kernels: SIMD against the scalar reference, every weight format ---------------------- */


static const t_case load_tests[] = {
    {"load/weights-errors", test_weights_errors, 0},
    {"load/dir-errors", test_dir_errors, T_EMU},
    {"load/variants", test_load_variants, T_EMU},
    {"load/x16-folder", test_x16_folder, T_ISA | T_EMU},
    {NULL, NULL, 0}
};
