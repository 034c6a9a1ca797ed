/* tests/test_platform.c - the file layer on every platform (issue 15 items 1, 4, 5; issue 11 items
   5 and 7): what is not a regular file is refused before reading, unreadable is not missing, a
   model folder with a non-ASCII name, files above 4 GiB (mapped, 64-bit offsets; a clear error
   where the address space is smaller), byte order. The fixtures are made with C calls only (the
   Windows build runs them under Wine, with no POSIX shell): t_p* helpers below, with UTF-8 paths
   through the wide API on Windows. Folders are made in the run's scratch folder (t_tmp_path of
   tests/t_files.h: build/tmp-<pid>/ or $LFM2_TEST_TMP; the make stages run from the repository
   root). */
#if !defined(__wasi__) /* (WASI has no FIFOs, permissions, sparse 4.5 GiB files or 64-bit size_t: the file
   layer's WASI path is the one of lfm2_model_load_memory and the read path, tested by the rest) */
/* logits of 5 tokens on model m (copied to out[256]); 1 on success */
static int t_plogits(lfm2_model *m, float *out) {
    lfm2_context *c = NULL;
    lfm2_token ids[5] = {1, 2, 3, 4, 5};
    const float *l = NULL;
    int ok = lfm2_context_create(m, NULL, &c) == LFM2_OK && lfm2_context_decode(c, ids, 5, &l) == LFM2_OK;
    if (ok) memcpy(out, l, sizeof(float) * 256);
    lfm2_context_free(c);
    return ok;
}

#if defined(_WIN32)
#define T_PAPI "CreateFileW / CreateFileMapping (UTF-16 path)"
#else
#define T_PAPI "open / mmap"
#endif
#if defined(LFM2__BIG_ENDIAN)
#define T_MAPPED 0 /* big-endian hosts read the files (the tensors are byte-swapped in place) */
#else
#define T_MAPPED 1
#endif
static const char *const t_tiny_files[] = {"config.json", "generation_config.json", "model.safetensors", NULL};

/* The fixture of the tests that load a copy of tiny-bf16 made in the scratch folder and compare it
   with the original: a = tests/data/tiny-bf16 (checked loaded), b = the copy (loaded by the test),
   dir = the copy's folder, p = default params reporting to e */
typedef struct t_pfix {
    lfm2_model *a, *b;
    lfm2_model_params p;
    lfm2_error e;
    char dir[512];
} t_pfix;
static void t_pfix_open(t_pfix *x, const char *name) {
    memset(x, 0, sizeof *x);
    x->p.error = &x->e;
    t_tmp_path(x->dir, sizeof x->dir, name);
    x->a = t_load("tiny-bf16");
    CHECK(x->a != NULL, "load tiny-bf16");
}
/* 1 if the logits of 5 tokens of the copy are bit-identical to the original's */
static int t_pfix_same_logits(t_pfix *x) {
    static float la[256], lb[256];
    return t_plogits(x->a, la) && t_plogits(x->b, lb) && memcmp(la, lb, sizeof la) == 0;
}
/* frees both models and removes dir/files and dir */
static void t_pfix_close(t_pfix *x, const char *const *files) {
    lfm2_model_free(x->a);
    lfm2_model_free(x->b);
    t_pclean(x->dir, files);
}

/* A folder named 模型 (UTF-8; the wide API on Windows) loads, mapped, with the logits of the
   original folder */
static void test_utf8_path(void) {
    t_pfix x;
    t_pfix_open(&x, "\xe6\xa8\xa1\xe5\x9e\x8b"); /* 模型 */
    CHECK(t_pfolder(x.dir, "tiny-bf16", t_tiny_files), "make %s", x.dir);
    CHECK(lfm2_model_load_dir(x.dir, &x.p, &x.b) == LFM2_OK, "load %s: %s", x.dir, x.e.message);
    if (x.a && x.b) {
        CHECK(x.b->n_blobs == 1 && x.b->blobs[0].mapped == T_MAPPED, "the weights of %s are %s (mapped = %d)", x.dir, T_MAPPED ? "mapped" : "read",
              x.b->n_blobs ? x.b->blobs[0].mapped : -1);
        CHECK(t_pfix_same_logits(&x), "logits differ");
        NOTE("%s: loaded through %s, mapped, logits bit-identical to tests/data/tiny-bf16", x.dir, T_PAPI);
    }
    t_pfix_close(&x, t_tiny_files);
}

/* Writes dir/model.safetensors: tiny-bf16's, with every tensor moved GAP bytes further (a sparse
   hole: the file is above 4 GiB but takes ~1 MB of disk). 1 on success. */
#define T_BIG_GAP ((uint64_t)4608 << 20) /* 4.5 GiB */
static int t_write_big(const char *dir) {
    char src[512], dst[1024], *in, *hdr, *o;
    size_t n, hl, k, ol = 0;
    unsigned char len8[8];
    uint64_t h;
    FILE *f;
    int ok, i;
    snprintf(src, sizeof src, "%s/tiny-bf16/model.safetensors", t_data_dir());
    in = t_read_file(src, &n);
    if (!in || n < 8) { free(in); return 0; }
    for (h = 0, i = 7; i >= 0; i--) h = (h << 8) | (unsigned char)in[i];
    hl = (size_t)h;
    hdr = in + 8;
    o = (char *)malloc(hl * 2 + 64);
    for (k = 0; k < hl; ) { /* every "data_offsets":[a,b] gets GAP added */
        static const char key[] = "\"data_offsets\":[";
        if (k + sizeof key - 1 < hl && memcmp(hdr + k, key, sizeof key - 1) == 0) {
            char *end;
            unsigned long long x0, x1;
            memcpy(o + ol, key, sizeof key - 1);
            ol += sizeof key - 1;
            k += sizeof key - 1;
            x0 = strtoull(hdr + k, &end, 10);
            x1 = strtoull(end + 1, &end, 10);
            ol += (size_t)sprintf(o + ol, "%llu,%llu", x0 + (unsigned long long)T_BIG_GAP, x1 + (unsigned long long)T_BIG_GAP);
            k = (size_t)(end - hdr);
        } else o[ol++] = hdr[k++];
    }
    while (ol % 8) o[ol++] = ' '; /* the data stays 8-byte aligned */
    for (i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)ol >> (8 * i));
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    f = t_pfopen(dst, "wb");
    ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(o, 1, ol, f) == ol;
#if defined(_WIN32)
    ok = ok && _fseeki64(f, (long long)(8 + ol + T_BIG_GAP), SEEK_SET) == 0;
    ok = ok && fwrite(in + 8 + hl, 1, n - 8 - hl, f) == n - 8 - hl;
    if (f && fclose(f) != 0) ok = 0;
#else
    if (f && fclose(f) != 0) ok = 0;
    if (ok) { /* the hole and the tensors: lseek past the end (64-bit off_t: -D_FILE_OFFSET_BITS=64 on 32-bit hosts) */
        int fd = open(dst, O_WRONLY);
        ok = fd >= 0 && sizeof(off_t) >= 8 && lseek(fd, (off_t)(8 + ol + T_BIG_GAP), SEEK_SET) == (off_t)(8 + ol + T_BIG_GAP) &&
             write(fd, in + 8 + hl, n - 8 - hl) == (ssize_t)(n - 8 - hl);
        if (fd >= 0 && close(fd) != 0) ok = 0;
    }
#endif
    free(o);
    free(in);
    return ok;
}
/* A model.safetensors above 4 GiB whose tensors all lie beyond 4.5 GiB: mapped on 64-bit hosts
   (the logits of the original), a clear error on 32-bit ones (never a wrapped size) */
static void test_big_file(void) {
    static const char *const files[] = {"config.json", "model.safetensors", NULL};
    static const char *const cfg_only[] = {"config.json", NULL};
    t_pfix x;
    lfm2_result rc;
    t_pfix_open(&x, "bigmodel");
#if defined(LFM2__BIG_ENDIAN)
    lfm2_model_free(x.a);
    x.a = NULL;
    if (sizeof(void *) >= 8) T_SKIP("big-endian host: files are read, not mapped (byte swap): a 4.5 GiB read is not run here");
#endif
    CHECK(t_pfolder(x.dir, "tiny-bf16", cfg_only) && t_write_big(x.dir), "make %s (a sparse 4.5 GiB file)", x.dir);
    rc = lfm2_model_load_dir(x.dir, &x.p, &x.b);
    if (sizeof(void *) >= 8) {
        lfm2_tensor_info ti;
        CHECK(rc == LFM2_OK, "load %s: %s", x.dir, x.e.message);
        if (rc == LFM2_OK && x.a) {
            CHECK(x.b->blobs[0].mapped == 1 && x.b->blobs[0].size > T_BIG_GAP, "mapped (%d), %zu bytes", x.b->blobs[0].mapped, x.b->blobs[0].size);
            CHECK(lfm2_model_tensor_info(x.b, 0, &ti) == LFM2_OK && ti.file_offset > T_BIG_GAP, "tensor 0 at file offset %llu",
                  (unsigned long long)ti.file_offset);
            CHECK(t_pfix_same_logits(&x), "logits differ");
            NOTE("%s/model.safetensors: %.2f GiB, tensors from file offset %llu, mapped, logits bit-identical to tiny-bf16", x.dir,
                 (double)x.b->blobs[0].size / (1 << 30), (unsigned long long)ti.file_offset);
        }
    } else {
        CHECK(rc == LFM2_ERR_OUT_OF_MEMORY && strstr(x.e.message, "model.safetensors") && strstr(x.e.message, "larger than this 32-bit process can address"),
              "32-bit: %s: %s", lfm2_result_string(rc), x.e.message);
        NOTE("32-bit build, a 4.5 GiB file -> %s: %s", lfm2_result_string(rc), x.e.message);
    }
    t_pfix_close(&x, files);
}

/* loads dir and expects LFM2_ERR_IO naming `name` and containing `why` */
static void t_pexpect(const char *dir, const char *name, const char *why, const char *what) {
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error e;
    lfm2_result rc;
    memset(&p, 0, sizeof p);
    p.error = &e;
    e.message[0] = 0;
    rc = lfm2_model_load_dir(dir, &p, &m);
    CHECK(rc == LFM2_ERR_IO && m == NULL && strstr(e.message, name) && strstr(e.message, why), "%s: %s: %s", what, lfm2_result_string(rc), e.message);
    NOTE("%s -> %s: %s", what, lfm2_result_string(rc), e.message);
    lfm2_model_free(m);
}

/* Issue 11 item 5: a directory, FIFO or device where a file is expected is refused before
   anything is read (a FIFO used to hang the load, a directory to ask for 2^63 bytes) */
static void test_not_a_file(void) {
    char dir[512];
    static const char *const names[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors", "model.safetensors.index.json", NULL};
    static const char *const cfg[] = {"config.json", NULL};
    static const char *const all[] = {"config.json", "generation_config.json", "model.safetensors", NULL};
    char path[1024];
    t_tmp_path(dir, sizeof dir, "notafile");
    t_pclean(dir, names);
    /* config.json is a directory */
    CHECK(t_pmkdir(dir), "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(t_pmkdir(path), "mkdir %s", path);
    t_pexpect(dir, "config.json", "not a regular file", "config.json is a directory");
    t_prmdir(path);
    /* the weights, the tokenizer and generation_config.json as directories */
    CHECK(t_pfolder(dir, "tiny-bf16", cfg), "copy config.json");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(t_pmkdir(path), "mkdir %s", path);
    t_pexpect(dir, "model.safetensors", "not a regular file", "model.safetensors is a directory");
    t_prmdir(path);
    CHECK(t_pfolder(dir, "tiny-bf16", all), "copy the model");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(t_pmkdir(path), "mkdir %s", path);
    t_pexpect(dir, "tokenizer.json", "not a regular file", "tokenizer.json is a directory");
    t_prmdir(path);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(t_pmkdir(path), "mkdir %s", path);
    t_pexpect(dir, "model.safetensors.index.json", "not a regular file", "model.safetensors.index.json is a directory");
    t_prmdir(path);
#if defined(_WIN32)
    NOTE("FIFOs and device files: no such files in a Windows folder (GetFileType != FILE_TYPE_DISK is refused too)");
#else
    {
        static const char *const fifo[] = {"tokenizer_config.json", "tokenizer.json", "generation_config.json", "model.safetensors.index.json", NULL};
        const char *const *f;
        char what[128];
        for (f = fifo; *f; f++) {
            snprintf(path, sizeof path, "%s/%s", dir, *f);
            remove(path);
            CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
            snprintf(what, sizeof what, "%s is a FIFO (no writer: reading would wait forever)", *f);
            t_pexpect(dir, *f, "a FIFO", what);
            remove(path);
        }
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        remove(path);
        if (symlink("/dev/zero", path) == 0) {
            t_pexpect(dir, "generation_config.json", "a character device", "generation_config.json -> /dev/zero (endless)");
            remove(path);
        } else NOTE("symlink to /dev/zero not possible here: device case not run");
    }
#endif
    t_pclean(dir, names);
}

/* Issue 11 item 7: a file that exists but cannot be read is an error naming it and the reason,
   never "missing" (an unreadable tokenizer.json used to load as "no tokenizer", an unreadable
   config.json to be "not found") */
static void test_unreadable(void) {
    char dir[512];
    static const char *const names[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", NULL};
    char path[1024], sub[1100];
    t_tmp_path(dir, sizeof dir, "unreadable");
    t_pclean(dir, names);
    CHECK(t_pfolder(dir, "tiny-bf16", t_tiny_files), "copy the model");
    /* the folder is a file: config.json is not "missing", a part of the path is not a folder */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(sub, sizeof sub, "%s", path);
#if defined(_WIN32)
    t_pexpect(sub, "config.json", "", "the folder given is a file (model.safetensors)");
    {   /* tokenizer.json held open without sharing by this process: a sharing violation */
        wchar_t wp[1024];
        HANDLE h;
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        CHECK(t_pwrite(path, "{}", 2), "write %s", path);
        t_pw(path, wp, 1024);
        h = CreateFileW(wp, GENERIC_READ, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        CHECK(h != INVALID_HANDLE_VALUE, "open %s exclusively", path);
        t_pexpect(dir, "tokenizer.json", "sharing violation", "tokenizer.json open elsewhere without sharing");
        if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
        snprintf(path, sizeof path, "%s/config.json", dir);
        t_pw(path, wp, 1024);
        h = CreateFileW(wp, GENERIC_READ, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        CHECK(h != INVALID_HANDLE_VALUE, "open %s exclusively", path);
        t_pexpect(dir, "config.json", "sharing violation", "config.json open elsewhere without sharing");
        if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
    }
#else
    t_pexpect(sub, "config.json", "not a folder", "the folder given is a file (model.safetensors)");
    {
        FILE *f;
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        CHECK(t_pwrite(path, "{}", 2), "write %s", path);
        CHECK(chmod(path, 0) == 0, "chmod 000 %s", path);
        f = fopen(path, "rb");
        if (f) { /* root (or a capability) reads anything: permission bits deny nothing here */
            fclose(f);
            NOTE("running as uid %d: chmod 000 does not deny reading, so the permission-denied case is not run "
                 "(the symbolic-link loop below is an unreadable file for root too)", (int)geteuid());
        } else {
            t_pexpect(dir, "tokenizer.json", "permission denied", "tokenizer.json chmod 000");
            snprintf(path, sizeof path, "%s/config.json", dir);
            CHECK(chmod(path, 0) == 0, "chmod 000 %s", path);
            t_pexpect(dir, "config.json", "permission denied", "config.json chmod 000");
            chmod(path, 0644);
        }
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        chmod(path, 0644);
        remove(path);
        /* a symbolic link to itself: ELOOP, unreadable for every user */
        CHECK(symlink("tokenizer.json", path) == 0, "symlink loop %s", path);
        t_pexpect(dir, "tokenizer.json", "symbolic links", "tokenizer.json a symbolic-link loop");
        remove(path);
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        remove(path);
        CHECK(symlink("generation_config.json", path) == 0, "symlink loop %s", path);
        t_pexpect(dir, "generation_config.json", "symbolic links", "generation_config.json a symbolic-link loop");
        remove(path);
    }
#endif
    t_pclean(dir, names);
}

/* The byte order: safetensors is little-endian; a big-endian host byte-swaps every tensor at load
   (the tests of the forward pass then check the values against the goldens) */
static void test_byte_order(void) {
    uint16_t one = 1;
    unsigned char b0;
    lfm2_model *m = t_load("tiny-bf16");
    memcpy(&b0, &one, 1);
    CHECK(m != NULL, "load");
#if defined(LFM2__BIG_ENDIAN)
    CHECK(b0 == 0, "LFM2__BIG_ENDIAN set on a little-endian host");
    if (m) CHECK(m->blobs && m->blobs[0].mapped == 0, "big-endian: the weights are read (owned, swapped), not mapped");
    NOTE("big-endian host: tensors byte-swapped at load");
#else
    CHECK(b0 == 1, "big-endian host without LFM2__BIG_ENDIAN");
    NOTE("little-endian host: tensors used as stored");
#endif
    if (m) {
        /* model.embedding_norm.weight of tiny-bf16 read through the model equals the file's bytes decoded little-endian */
        const lfm2__tensor *t = lfm2__model_find(m, "model.embedding_norm.weight");
        char path[512];
        size_t n;
        char *raw;
        snprintf(path, sizeof path, "%s/tiny-bf16/model.safetensors", t_data_dir());
        raw = t_read_file(path, &n);
        CHECK(t && raw && t->dtype == LFM2__DT_BF16 && t->offset + t->nbytes <= n, "tensor");
        if (t && raw && t->offset + t->nbytes <= n) {
            uint64_t k, bad = 0;
            for (k = 0; k < t->numel; k++) {
                uint16_t v;
                const unsigned char *q = (const unsigned char *)raw + t->offset + 2 * k;
                memcpy(&v, t->data + 2 * k, 2);
                if (v != (uint16_t)(q[0] | (q[1] << 8))) bad++;
            }
            CHECK(bad == 0, "%llu values differ from the file decoded little-endian", (unsigned long long)bad);
            NOTE("model.embedding_norm.weight: %llu values equal the file's little-endian values", (unsigned long long)t->numel);
        }
        free(raw);
    }
    lfm2_model_free(m);
}

static const t_case platform_tests[] = {
    {"plat/utf8-path", test_utf8_path, T_EMU},
    {"plat/big-file", test_big_file, T_EMU},
    {"plat/not-a-file", test_not_a_file, T_EMU},
    {"plat/unreadable", test_unreadable, T_EMU},
    {"plat/byte-order", test_byte_order, T_EMU},
    {NULL, NULL, 0}
};
#else
static const t_case platform_tests[] = {{NULL, NULL, 0}};
#endif
