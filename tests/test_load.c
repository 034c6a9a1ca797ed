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


/* ---- kernels: SIMD against the scalar reference, every weight format ---------------------- */


static const t_case load_tests[] = {
    {"load/weights-errors", test_weights_errors, 0},
    {"load/dir-errors", test_dir_errors, T_EMU},
    {"load/variants", test_load_variants, T_EMU},
    {NULL, NULL, 0}
};
