/* tools/lfm2_digest.h - digests of a loaded model's weights, shared by lfm2-inspect --digest and
   lfm2-quantize's check of the folder it wrote. Include after lfm2.h with LFM2_IMPLEMENTATION
   (it reads the model's internals).

   A matrix digest is FNV-1a 64 of the matrix's values as f32 bytes in row-major order, whatever
   the layout in memory (row-major, interleaved, quantized): a pre-quantized folder and load-time
   quantization of the same model give the same digests. `all` runs over every matrix in order;
   `vectors` over the f32 values of every norm, conv tap and bias vector. */
#ifndef LFM2_TOOLS_DIGEST_H
#define LFM2_TOOLS_DIGEST_H
#include <stdlib.h>
#include <string.h>

#define LFM2_DIGEST_FNV0 1469598103934665603ull
#define LFM2_DIGEST_MAX_MATS (2 + 7 * LFM2_CONFIG_LAYERS + 3 * 64 * LFM2_CONFIG_LAYERS) /* MoE: up to 64 experts a layer */

typedef struct lfm2_digests {
    int32_t n_mats;
    int32_t rows[LFM2_DIGEST_MAX_MATS], cols[LFM2_DIGEST_MAX_MATS];
    uint64_t mat[LFM2_DIGEST_MAX_MATS];
    uint64_t all;      /* every matrix value in order */
    uint64_t vectors;  /* every norm / conv / bias value in order */
} lfm2_digests;

static uint64_t lfm2_digest_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
static uint64_t lfm2_digest_f32s(uint64_t h, const float *v, int64_t n) {
    int64_t i;
    for (i = 0; v && i < n; i++) h = lfm2_digest_bytes(h, &v[i], 4);
    return h;
}

/* Fills *d (malloc it: it is ~800 KiB). Returns 0 if the model has more matrices than it holds
   (or no memory for their list). */
static int lfm2_digest_model(lfm2_model *m, lfm2_digests *d) {
    lfm2__mat **list;
    const lfm2_config *c = &m->cfg;
    int64_t D = c->hidden_size, L = c->conv_L_cache, hd = c->head_dim;
    int32_t i, r, k, l, n = 0;
    if (c->num_hidden_layers > LFM2_CONFIG_LAYERS) return 0;
    memset(d, 0, sizeof *d);
    d->all = LFM2_DIGEST_FNV0;
    list = lfm2__model_mats_alloc(m, &n);
    if (!list) return 0;
    if (n > LFM2_DIGEST_MAX_MATS) { lfm2__free(&m->alloc, list); return 0; }
    d->n_mats = n;
    for (i = 0; i < d->n_mats; i++) {
        uint64_t h = LFM2_DIGEST_FNV0;
        for (r = 0; r < list[i]->rows; r++)
            for (k = 0; k < list[i]->cols; k++) {
                float v = lfm2__wget(list[i], r, k);
                h = lfm2_digest_bytes(h, &v, 4);
                d->all = lfm2_digest_bytes(d->all, &v, 4);
            }
        d->mat[i] = h;
        d->rows[i] = list[i]->rows;
        d->cols[i] = list[i]->cols;
    }
    lfm2__free(&m->alloc, list);
    d->vectors = lfm2_digest_f32s(LFM2_DIGEST_FNV0, m->final_norm, D);
    for (l = 0; l < c->num_hidden_layers; l++) {
        const lfm2__layer *ly = &m->layers[l];
        d->vectors = lfm2_digest_f32s(d->vectors, ly->operator_norm, D);
        d->vectors = lfm2_digest_f32s(d->vectors, ly->ffn_norm, D);
        if (ly->is_attention) {
            d->vectors = lfm2_digest_f32s(d->vectors, ly->q_norm, hd);
            d->vectors = lfm2_digest_f32s(d->vectors, ly->k_norm, hd);
        } else {
            d->vectors = lfm2_digest_f32s(d->vectors, ly->conv_w, D * L);
            d->vectors = lfm2_digest_f32s(d->vectors, ly->in_bias, 3 * D);
            d->vectors = lfm2_digest_f32s(d->vectors, ly->conv_b, D);
            d->vectors = lfm2_digest_f32s(d->vectors, ly->out_bias, D);
        }
        if (ly->is_moe) d->vectors = lfm2_digest_f32s(d->vectors, ly->expert_bias, c->num_experts);
    }
    return 1;
}
#endif
