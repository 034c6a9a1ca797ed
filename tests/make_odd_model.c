/* tests/make_odd_model.c IN_DIR OUT_DIR - a copy of a single-file model folder whose
   model.safetensors also holds tensors that a writer of safetensors must handle with care:
     a name of 220 bytes, a name that needs JSON escaping (quote, backslash, tab, newline, a
     control character, non-ASCII UTF-8), and a 4-dimensional BF16 tensor [2, 3, 4, 5].
   The loader ignores tensors it does not use; tests/quantize_test.sh checks that lfm2-quantize
   carries them into its output unchanged. Uses lfm2.h's own safetensors parser for the input. */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct odd_t { char name[512]; const char *dtype; int ndim; int64_t shape[8]; const unsigned char *data; uint64_t n; } odd_t;

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long sz;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = (char *)malloc((size_t)sz + 1)) &&
        fread(b, 1, (size_t)sz, f) == (size_t)sz) *n = (size_t)sz;
    else { free(b); b = NULL; }
    fclose(f);
    return b;
}
/* appends s as a JSON string */
static size_t put_json_str(char *o, const char *s) {
    size_t k = 0;
    o[k++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { o[k++] = '\\'; o[k++] = (char)c; }
        else if (c == '\n') { o[k++] = '\\'; o[k++] = 'n'; }
        else if (c == '\t') { o[k++] = '\\'; o[k++] = 't'; }
        else if (c < 0x20) k += (size_t)sprintf(o + k, "\\u%04x", c);
        else o[k++] = (char)c;
    }
    o[k++] = '"';
    return k;
}
int main(int argc, char **argv) {
    char path[4096], *st, *cfg, *hdr;
    size_t st_n = 0, cfg_n = 0, hn = 0, i;
    lfm2__stfile f;
    lfm2_error e;
    odd_t *t;
    int32_t n, k;
    uint64_t off = 0;
    static unsigned char extra[2 * 3 * 4 * 5 * 2 + 64];
    FILE *o;
    if (argc != 3) { fprintf(stderr, "usage: make_odd_model IN_DIR OUT_DIR\n"); return 2; }
    snprintf(path, sizeof path, "%s/model.safetensors", argv[1]);
    if (!(st = read_all(path, &st_n))) { fprintf(stderr, "cannot read %s\n", path); return 1; }
    snprintf(path, sizeof path, "%s/config.json", argv[1]);
    if (!(cfg = read_all(path, &cfg_n))) { fprintf(stderr, "cannot read %s\n", path); return 1; }
    if (lfm2__st_parse(st, st_n, "model.safetensors", 0, NULL, &e, &f) != LFM2_OK) { fprintf(stderr, "%s\n", e.message); return 1; }
    t = (odd_t *)calloc((size_t)f.n + 3, sizeof *t);
    hdr = (char *)malloc((size_t)(f.n + 3) * 1024 + 64);
    if (!t || !hdr) return 1;
    for (k = 0; k < f.n; k++) {
        snprintf(t[k].name, sizeof t[k].name, "%s", f.t[k].name);
        t[k].dtype = lfm2__dtype_name[f.t[k].dtype];
        t[k].ndim = f.t[k].ndim;
        memcpy(t[k].shape, f.t[k].shape, sizeof t[k].shape);
        t[k].data = f.t[k].data;
        t[k].n = f.t[k].nbytes;
    }
    for (i = 0; i < sizeof extra; i++) extra[i] = (unsigned char)(i * 37 + 11);
    n = f.n;
    strcpy(t[n].name, "model.extra.");
    for (i = strlen(t[n].name); i < 212; i++) t[n].name[i] = (char)('a' + i % 26);
    strcpy(t[n].name + 212, ".weight");               /* 219 bytes */
    t[n].dtype = "F32"; t[n].ndim = 1; t[n].shape[0] = 3; t[n].data = extra; t[n].n = 12; n++;
    strcpy(t[n].name, "model.extra.\"quoted\" back\\slash\ttab\nnewline\001ctl caf\xc3\xa9.weight");
    t[n].dtype = "F16"; t[n].ndim = 1; t[n].shape[0] = 4; t[n].data = extra + 16; t[n].n = 8; n++;
    strcpy(t[n].name, "model.extra.conv4d.weight");
    t[n].dtype = "BF16"; t[n].ndim = 4; t[n].shape[0] = 2; t[n].shape[1] = 3; t[n].shape[2] = 4; t[n].shape[3] = 5;
    t[n].data = extra; t[n].n = 2 * 3 * 4 * 5 * 2; n++;
    hn += (size_t)sprintf(hdr + hn, "{");
    for (k = 0; k < n; k++) {
        int d;
        if (k) hdr[hn++] = ',';
        hn += put_json_str(hdr + hn, t[k].name);
        hn += (size_t)sprintf(hdr + hn, ":{\"dtype\":\"%s\",\"shape\":[", t[k].dtype);
        for (d = 0; d < t[k].ndim; d++) hn += (size_t)sprintf(hdr + hn, d ? ",%lld" : "%lld", (long long)t[k].shape[d]);
        hn += (size_t)sprintf(hdr + hn, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + t[k].n));
        off += t[k].n;
        off = (off + 7) & ~(uint64_t)7;
    }
    hdr[hn++] = '}';
    while ((8 + hn) % 8) hdr[hn++] = ' ';
    snprintf(path, sizeof path, "%s/config.json", argv[2]);
    if (!(o = fopen(path, "wb")) || fwrite(cfg, 1, cfg_n, o) != cfg_n || fclose(o) != 0) { fprintf(stderr, "cannot write %s\n", path); return 1; }
    snprintf(path, sizeof path, "%s/model.safetensors", argv[2]);
    if (!(o = fopen(path, "wb"))) { fprintf(stderr, "cannot write %s\n", path); return 1; }
    {
        unsigned char le[8];
        static const unsigned char zero[8] = {0};
        for (k = 0; k < 8; k++) le[k] = (unsigned char)((uint64_t)hn >> (8 * k));
        fwrite(le, 1, 8, o);
        fwrite(hdr, 1, hn, o);
        for (k = 0, off = 0; k < n; k++) {
            fwrite(t[k].data, 1, (size_t)t[k].n, o);
            off += t[k].n;
            fwrite(zero, 1, (size_t)(((off + 7) & ~(uint64_t)7) - off), o);
            off = (off + 7) & ~(uint64_t)7;
        }
    }
    if (fclose(o) != 0) { fprintf(stderr, "write error on %s\n", path); return 1; }
    printf("%s: %d tensors (3 odd ones)\n", argv[2], (int)n);
    lfm2__st_free(&f, NULL);
    free(t); free(hdr); free(st); free(cfg);
    return 0;
}
