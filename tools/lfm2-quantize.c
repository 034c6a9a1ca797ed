/* lfm2-quantize - write a pre-quantized LFM2 model folder that lfm2.h loads memory-mapped with
   no conversion.

     lfm2-quantize IN_DIR OUT_DIR q8|q4

   OUT_DIR gets config.json (with a "quantization_config" entry added), the tokenizer and
   generation files copied as they are, and one model.safetensors in which every weight matrix
   NAME (embed_tokens, lm_head, in_proj/out_proj, q/k/v/out_proj, w1/w2/w3) is stored as
     NAME        I8 [rows, cols]     (q8)   or   U8 [rows, cols/2]   (q4: two 4-bit values a byte)
     NAME_scale  F16 [rows, cols/32] one scale per block of 32 columns
   and every other tensor (norms, conv taps, biases) is copied unchanged. With q4 the embedding
   and the head are stored as q8 (see lfm2.h >>quant). The formats are described in lfm2.h
   under >>kernels. Tensor data is 64-byte aligned. */
/* the file format is row-major: keep load-time quantization out of the interleaved layout that
   VNNI builds use in memory */
#define LFM2__ROW_MAJOR_QUANT 1
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>

typedef struct qt_entry {
    char name[160];
    const char *dtype;
    int64_t shape[2];
    int ndim;
    const void *data;
    uint64_t bytes;
} qt_entry;

static int copy_file(const char *in_dir, const char *out_dir, const char *name, int required) {
    char a[4096], b[4096], buf[1 << 16];
    FILE *fi, *fo;
    size_t n;
    snprintf(a, sizeof a, "%s/%s", in_dir, name);
    snprintf(b, sizeof b, "%s/%s", out_dir, name);
    fi = fopen(a, "rb");
    if (!fi) return required ? -1 : 0;
    fo = fopen(b, "wb");
    if (!fo) { fclose(fi); return -1; }
    while ((n = fread(buf, 1, sizeof buf, fi)) > 0) fwrite(buf, 1, n, fo);
    fclose(fi);
    return fclose(fo) == 0 ? 0 : -1;
}

/* config.json with "quantization_config" added as the first key */
static int write_config(const char *in_dir, const char *out_dir, int bits) {
    char a[4096], b[4096];
    FILE *fi, *fo;
    long n;
    char *txt, *brace;
    snprintf(a, sizeof a, "%s/config.json", in_dir);
    snprintf(b, sizeof b, "%s/config.json", out_dir);
    if (!(fi = fopen(a, "rb"))) return -1;
    fseek(fi, 0, SEEK_END);
    n = ftell(fi);
    fseek(fi, 0, SEEK_SET);
    txt = (char *)malloc((size_t)n + 1);
    if (!txt || fread(txt, 1, (size_t)n, fi) != (size_t)n) { fclose(fi); free(txt); return -1; }
    fclose(fi);
    txt[n] = 0;
    brace = strchr(txt, '{');
    if (!brace || !(fo = fopen(b, "wb"))) { free(txt); return -1; }
    fwrite(txt, 1, (size_t)(brace - txt) + 1, fo);
    fprintf(fo, "\n  \"quantization_config\": {\"quant_method\": \"lfm2.h\", \"bits\": %d, \"group_size\": 32},", bits);
    fputs(brace + 1, fo);
    free(txt);
    return fclose(fo) == 0 ? 0 : -1;
}

/* the quantized matrix stored under this tensor name, or NULL */
static const lfm2__mat *find_mat(const lfm2_model *m, const char *name) {
    char buf[160];
    int32_t l;
    if (!strcmp(name, "model.embed_tokens.weight")) return &m->embed;
    if (!strcmp(name, "lm_head.weight")) return &m->head;
    for (l = 0; l < m->cfg.num_hidden_layers; l++) {
        const lfm2__layer *ly = &m->layers[l];
        static const char *const nm[9] = {"feed_forward.w1.weight", "feed_forward.w3.weight", "feed_forward.w2.weight",
                                          "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                          "self_attn.out_proj.weight", "conv.in_proj.weight", "conv.out_proj.weight"};
        const lfm2__mat *mats[9];
        int k;
        mats[0] = &ly->w1; mats[1] = &ly->w3; mats[2] = &ly->w2;
        mats[3] = &ly->wq; mats[4] = &ly->wk; mats[5] = &ly->wv; mats[6] = &ly->wo;
        mats[7] = &ly->in_proj; mats[8] = &ly->out_proj;
        for (k = 0; k < 9; k++) {
            snprintf(buf, sizeof buf, "model.layers.%d.%s", l, nm[k]);
            if (!strcmp(name, buf)) return mats[k];
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error err;
    qt_entry *ents;
    int32_t i, n = 0, nt;
    int bits;
    char path[4096];
    FILE *f;
    uint64_t off = 0, hlen;
    char *hdr;
    size_t hcap, hn = 0;
    static const char pad[64] = {0};
    static const char *const extra[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                        "special_tokens_map.json", "chat_template.jinja"};
    if (argc != 4 || (strcmp(argv[3], "q8") && strcmp(argv[3], "q4"))) {
        fprintf(stderr, "usage: lfm2-quantize IN_DIR OUT_DIR q8|q4\n");
        return 2;
    }
    bits = argv[3][1] == '8' ? 8 : 4;
    memset(&p, 0, sizeof p);
    p.error = &err;
    p.no_tokenizer = 1;
    p.weights = bits == 8 ? LFM2_WEIGHTS_Q8 : LFM2_WEIGHTS_Q4;
    if (lfm2_model_load_dir(argv[1], &p, &m) != LFM2_OK) { fprintf(stderr, "lfm2-quantize: %s\n", err.message); return 1; }
    if (mkdir(argv[2], 0755) != 0 && errno != EEXIST) { fprintf(stderr, "lfm2-quantize: cannot create %s\n", argv[2]); return 1; }
    nt = lfm2_model_tensor_count(m);
    ents = (qt_entry *)calloc((size_t)nt * 2, sizeof *ents);
    if (!ents) return 1;
    for (i = 0; i < nt; i++) {
        const lfm2__tensor *t = m->by_name[i];
        const lfm2__mat *w = find_mat(m, t->name);
        qt_entry *e = &ents[n++];
        snprintf(e->name, sizeof e->name, "%s", t->name);
        if (w && (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4)) {
            uint64_t cells = (uint64_t)w->rows * (uint64_t)w->cols;
            e->dtype = w->dtype == LFM2__DT_Q8 ? "I8" : "U8";
            e->ndim = 2;
            e->shape[0] = w->rows;
            e->shape[1] = w->dtype == LFM2__DT_Q8 ? w->cols : w->cols / 2;
            e->data = w->data;
            e->bytes = w->dtype == LFM2__DT_Q8 ? cells : cells / 2;
            e = &ents[n++];
            snprintf(e->name, sizeof e->name, "%s_scale", t->name);
            e->dtype = "F16";
            e->ndim = 2;
            e->shape[0] = w->rows;
            e->shape[1] = w->cols / 32;
            e->data = w->scales;
            e->bytes = cells / 32 * 2;
        } else {
            e->dtype = lfm2__dtype_name[t->dtype];
            e->ndim = t->ndim;
            e->shape[0] = t->ndim > 0 ? t->shape[0] : 0;
            e->shape[1] = t->ndim > 1 ? t->shape[1] : 0;
            if (t->ndim > 2) { /* conv.conv.weight [D, 1, L]: keep it 3-D */
                e->ndim = 3;
            }
            e->data = t->data;
            e->bytes = t->nbytes;
        }
    }
    /* header JSON: offsets with every tensor 64-byte aligned */
    hcap = (size_t)n * 256 + 64;
    hdr = (char *)malloc(hcap);
    if (!hdr) return 1;
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "{\"__metadata__\":{\"format\":\"lfm2.h-q%d\"}", bits);
    for (i = 0; i < n; i++) {
        qt_entry *e = &ents[i];
        const lfm2__tensor *t = lfm2__model_find(m, e->name);
        off = (off + 63) & ~(uint64_t)63;
        if (e->ndim == 3 && t)
            hn += (size_t)snprintf(hdr + hn, hcap - hn, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld,%lld],\"data_offsets\":[%llu,%llu]}", e->name,
                                   e->dtype, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                                   (unsigned long long)off, (unsigned long long)(off + e->bytes));
        else if (e->ndim == 2)
            hn += (size_t)snprintf(hdr + hn, hcap - hn, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}", e->name,
                                   e->dtype, (long long)e->shape[0], (long long)e->shape[1], (unsigned long long)off, (unsigned long long)(off + e->bytes));
        else
            hn += (size_t)snprintf(hdr + hn, hcap - hn, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}", e->name,
                                   e->dtype, (long long)e->shape[0], (unsigned long long)off, (unsigned long long)(off + e->bytes));
        off += e->bytes;
    }
    hn += (size_t)snprintf(hdr + hn, hcap - hn, "}");
    while ((8 + hn) % 64 != 0) hdr[hn++] = ' ';   /* the data region starts 64-byte aligned */
    hlen = hn;
    snprintf(path, sizeof path, "%s/model.safetensors", argv[2]);
    if (!(f = fopen(path, "wb"))) { fprintf(stderr, "lfm2-quantize: cannot write %s\n", path); return 1; }
    {
        unsigned char le[8];
        int k;
        for (k = 0; k < 8; k++) le[k] = (unsigned char)(hlen >> (8 * k));
        fwrite(le, 1, 8, f);
    }
    fwrite(hdr, 1, hn, f);
    off = 0;
    for (i = 0; i < n; i++) {
        uint64_t aligned = (off + 63) & ~(uint64_t)63;
        fwrite(pad, 1, (size_t)(aligned - off), f);
        fwrite(ents[i].data, 1, (size_t)ents[i].bytes, f);
        off = aligned + ents[i].bytes;
    }
    if (fclose(f) != 0) { fprintf(stderr, "lfm2-quantize: write error on %s\n", path); return 1; }
    if (write_config(argv[1], argv[2], bits) != 0) { fprintf(stderr, "lfm2-quantize: cannot write %s/config.json\n", argv[2]); return 1; }
    for (i = 0; i < (int32_t)(sizeof extra / sizeof extra[0]); i++)
        if (copy_file(argv[1], argv[2], extra[i], 0) != 0) { fprintf(stderr, "lfm2-quantize: cannot copy %s\n", extra[i]); return 1; }
    fprintf(stderr, "wrote %s: %d tensors, q%d, %.1f MiB of tensor data\n", path, n, bits, (double)off / (1024.0 * 1024.0));
    free(hdr);
    free(ents);
    lfm2_model_free(m);
    return 0;
}
