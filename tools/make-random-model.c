/* make-random-model.c - write a Hugging Face folder with the exact LFM2 tensor layout and random
   weights, for benchmarking lfm2.h (speed does not depend on the weight values).

     make build/make-random-model   (or: cc -O2 -march=native -fopenmp -Wall -Wextra -Werror -std=c99 -pedantic
                                     -o build/make-random-model tools/make-random-model.c -lm)
     build/make-random-model --shape 350m --dtype bf16 -o /tmp/lfm2-350m-random
     build/make-random-model --shape 24b-a2b --dtype q4 -o /tmp/lfm2-24b-a2b-q4   (13.5 GB, no bf16 copy)

   Shapes: LFM2-350M, LFM2-1.2B, and the MoE LFM2-8B-A1B (D 2048, 24 layers, attention at 2 6 10
   14 18 21, 32 experts top-4 of width 1792, 2 dense layers of 7168) and LFM2-24B-A2B (40 layers:
   30 conv + 10 attention, 64 experts top-4 of width 1536, 2 dense layers; the dense width 7168
   and the attention positions are assumed). MoE folders have the released LFM2-8B-A1B config.json
   style, experts as separate tensors, an F32 expert_bias (~N(0, std^2)) and a router ~N(0, std^2).
   Test shapes: small (dense, 4 layers), moe-small, and odd-small (an MoE whose widths do not all
   fit the 16 x 64 records: the embedding, the dense w1 / w3 and the experts' w2 stay row-major,
   the dense w2 (cols % 32 != 0) stays bf16 in a pre-quantized folder).
   --dtype q8 / q4 writes a pre-quantized folder exactly as tools/lfm2-quantize writes it from the
   --dtype bf16 folder of the same --seed (the same tensors, dtypes, shapes and bytes: each value
   is rounded to bf16, then quantized with lfm2.h's own quantizer): every weight matrix with
   cols % 32 == 0 (embed_tokens, in_proj / out_proj, q / k / v / out_proj, w1 / w2 / w3, the
   experts) quantized, with q4 the embedding at q8; those with rows % 16 == 0 and cols % 64 == 0
   as the interleaved records of lfm2.h's fast kernels (NAME U8 [rows/16, cols/64, 1088 | 576],
   "lfm2.h.interleave": LFM2__X16_LAYOUT in the __metadata__, packed by lfm2.h's
   lfm2__interleave_groups), which lfm2.h maps in place; the others, and all of them with
   --row-major (the older layout, repacked at load), as NAME I8 / U8 + NAME_scale F16. The router,
   norms, conv taps and expert_bias are stored as in the bf16 folder. So a q8 / q4 folder loads to
   the same weights, and the same logits, as the bf16 folder with LFM2_WEIGHTS_Q8 / Q4.
   Writes DIR/config.json (the released LFM2-350M / LFM2-1.2B config.json, torch_dtype adapted) and
   DIR/model.safetensors: every tensor of the checkpoint at its exact shape, tied embeddings (no
   lm_head), tensors in name order, each 64-byte aligned in the file (zero padding after a tensor
   whose size is not a multiple of 64: only in the odd-small shape).
   No tokenizer files: load with lfm2_model_params.no_tokenizer or without them.

   Values: matrices ~ N(0, std^2) (std 0.02 by default, an Irwin-Hall approximation of a normal),
   RMSNorm weights 1.0, depthwise conv taps ~ N(0, 0.3^2) (as /work/shared/peer/make_lfm2_gguf.py),
   from a fixed-seed PRNG seeded per tensor name (same file for the same --seed, any order).
   The file is streamed through small buffers (one row, or one group of 16 rows, at a time):
   memory use is a few MiB whatever the size. It is written in a hidden sibling of DIR
   (.NAME.make-random-model-XXXXXX) and put in place only when complete: renamed to DIR when DIR
   did not exist; else DIR's config.json (and any *.safetensors.index.json) is deleted first, the
   new model.safetensors renamed over the old one, then the new config.json: a folder that is
   interrupted between the steps has no config.json and does not load. A failure (full disk,
   Ctrl-C) removes the sibling; the exit status is then 1. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#if defined(_WIN32)
#include <direct.h>
#include <process.h>
#define MRM_MKDIR(p) _mkdir(p)
#else
#include <dirent.h>
#include <unistd.h>
#define MRM_MKDIR(p) mkdir(p, 0755)
#endif

/* ---- shapes ------------------------------------------------------------------------------ */

typedef struct shape_def {
    const char *name;   /* --shape */
    const char *label;  /* for messages */
    int D, H, HKV, FF, block_ff_dim, L, V, LCACHE;
    const int *attn; int n_attn;    /* attention layers */
    int moe, E, K, I, dense;        /* LFM2-MoE: experts, top-k, expert width, leading dense layers */
} shape_def;

static const int ATTN_IDXS[] = {2, 5, 8, 10, 12, 14};
static const int ATTN_8B[] = {2, 6, 10, 14, 18, 21};                 /* LFM2-8B-A1B (published) */
static const int ATTN_SMALL[] = {1};
static const int ATTN_24B[] = {2, 6, 10, 14, 18, 22, 26, 30, 34, 38}; /* LFM2-24B-A2B: 10 of 40 (positions assumed) */

static const shape_def SHAPES[] = {
    /* F = effective FFN width (block_ff_dim auto-adjusted: 2/3, round up to 256) */
    {"350m", "LFM2-350M", 1024, 16, 8, 4608, 6656, 16, 65536, 3, ATTN_IDXS, 6, 0, 0, 0, 0, 0},
    {"1.2b", "LFM2-1.2B", 2048, 32, 8, 8192, 12288, 16, 65536, 3, ATTN_IDXS, 6, 0, 0, 0, 0, 0},
    /* MoE: FF = the dense layers' intermediate_size as given (no auto-adjust) */
    {"8b-a1b", "LFM2-8B-A1B", 2048, 32, 8, 7168, 7168, 24, 65536, 3, ATTN_8B, 6, 1, 32, 4, 1792, 2},
    {"24b-a2b", "LFM2-24B-A2B", 2048, 32, 8, 7168, 7168, 40, 65536, 3, ATTN_24B, 10, 1, 64, 4, 1536, 2},
    {"moe-small", "a small LFM2-MoE (tests)", 256, 4, 2, 512, 512, 4, 1024, 3, ATTN_SMALL, 1, 1, 16, 2, 128, 1},
    /* tests: a small dense LFM2 (F 512), and an MoE whose widths do not fit the 16 x 64 records
       (vocab 1000: rows % 16 == 8; dense width 520: cols % 32 == 8; expert width 96: cols % 64 == 32) */
    {"small", "a small LFM2 (tests)", 256, 4, 2, 512, 768, 4, 1024, 3, ATTN_SMALL, 1, 0, 0, 0, 0, 0},
    {"odd-small", "a small LFM2-MoE of odd widths (tests)", 256, 4, 2, 520, 520, 3, 1000, 3, ATTN_SMALL, 1, 1, 4, 2, 96, 1},
};

static const shape_def *g_shape;
static int is_attn(int layer) {
    int k;
    for (k = 0; k < g_shape->n_attn; k++) if (g_shape->attn[k] == layer) return 1;
    return 0;
}

/* ---- dtypes ------------------------------------------------------------------------------ */

enum { DT_BF16, DT_F16, DT_F32, DT_Q8, DT_Q4 }; /* Q8 / Q4: a pre-quantized folder (tools/lfm2-quantize's format) */
static const char *const DT_NAME[] = {"BF16", "F16", "F32", "I8", "U8"};
static const char *const DT_TORCH[] = {"bfloat16", "float16", "float32", "bfloat16", "bfloat16"};
static const int DT_SIZE[] = {2, 2, 4, 1, 1};

/* bf16 / f16 values: lfm2.h's lfm2__f32_to_bf16 / lfm2__f32_to_f16 (round to nearest even) */

/* ---- PRNG: splitmix64 seeding, xoshiro256+ stream ------------------------------------------ */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the tensor name, mixed with the seed */
    int k;
    while (*name) { h ^= (unsigned char)*name++; h *= 1099511628211ull; }
    h ^= seed * 0x9e3779b97f4a7c15ull;
    for (k = 0; k < 4; k++) r->s[k] = splitmix64(&h);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, res = s[0] + s[3], t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

/* Approximately N(0,1): sum of four 16-bit uniforms (Irwin-Hall, n=4), centred and scaled.
   One PRNG call per value; range is +-3.46 sigma, which is all a benchmark model needs. */
static float rng_normalish(rng *r) {
    uint64_t x = rng_next(r);
    uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)((x >> 16) & 0xffff) + (uint32_t)((x >> 32) & 0xffff) + (uint32_t)(x >> 48);
    /* mean 4*32767.5, variance 4*(65536^2-1)/12 */
    return ((float)s - 131070.0f) * (1.0f / 37837.23f);
}

/* ---- tensor list ------------------------------------------------------------------------- */

enum { INIT_NORMAL, INIT_ONES, INIT_CONV, INIT_ROUTER, INIT_BIAS };

/* fmt: how a tensor is stored */
enum { FMT_FLOAT, /* dt: BF16 / F16 / F32 (the weight matrices of a pre-quantized folder that cannot be quantized: BF16) */
       FMT_Q,     /* row-major quants: I8 [rows, cols] (q8) or U8 [rows, cols / 2] (q4) */
       FMT_SCALE, /* the F16 [rows, cols / 32] scales of the FMT_Q tensor `base` */
       FMT_X };   /* interleaved records: U8 [rows / 16, cols / 64, 1088 (q8) | 576 (q4)] */

typedef struct tensor {
    char name[96];
    int ndim;
    int64_t shape[3];   /* as stored */
    int64_t rows, cols; /* of a weight matrix (its values' shape) */
    int init;
    int fmt;            /* FMT_* */
    int dt;             /* FMT_FLOAT: DT_BF16 / F16 / F32 */
    int q4;             /* FMT_Q / FMT_SCALE / FMT_X: 4-bit (else 8-bit) */
    char base[96];      /* of a FMT_SCALE tensor: the quantized tensor's name (its values' stream) */
    uint64_t nbytes, off;
} tensor;

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

static int g_dt;        /* the --dtype */
static int g_row_major; /* --row-major */
/* adds a tensor. A weight matrix (INIT_NORMAL, 2-D: the matrices lfm2.h quantizes at load) of a
   pre-quantized folder is stored as lfm2-quantize stores it: quantized when lfm2.h quantizes it
   (lfm2__quant_bytes: cols % 32 == 0), at q8 for the embedding with q4 (as lfm2__quantize_weights),
   as interleaved records when rows % 16 == 0 and cols % 64 == 0 (unless --row-major), else as
   NAME + NAME_scale; one that is not quantized stays BF16 */
static int add(tensor *t, int n, const char *name, int init, int ndim, int64_t a, int64_t b, int64_t c) {
    tensor *x = &t[n];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->init = init;
    x->ndim = ndim;
    x->shape[0] = a; x->shape[1] = b; x->shape[2] = c;
    x->rows = a; x->cols = b;
    x->fmt = FMT_FLOAT;
    x->dt = g_dt > DT_F32 ? DT_BF16 : g_dt;
    if (init == INIT_BIAS) x->dt = DT_F32; /* expert_bias is F32 in the checkpoints */
    if (g_dt > DT_F32 && init == INIT_NORMAL && ndim == 2) {
        int q8 = g_dt == DT_Q8 || !strcmp(name, "model.embed_tokens.weight");
        lfm2__mat w;
        memset(&w, 0, sizeof w);
        w.rows = (int32_t)a;
        w.cols = (int32_t)b;
        w.dtype = LFM2__DT_BF16;
        if (lfm2__quant_bytes(&w, q8 ? LFM2_WEIGHTS_Q8 : LFM2_WEIGHTS_Q4) == 0) return n + 1; /* stays BF16 */
        x->q4 = !q8;
        if (!g_row_major && a % 16 == 0 && b % 64 == 0) {
            x->fmt = FMT_X;
            x->ndim = 3;
            x->shape[0] = a / 16; x->shape[1] = b / 64; x->shape[2] = (int64_t)LFM2__X16_REC(x->q4);
            return n + 1;
        }
        x->fmt = FMT_Q;
        if (!q8) x->shape[1] = b / 2;
        x = &t[n + 1];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s_scale", name);
        snprintf(x->base, sizeof x->base, "%s", name);
        x->init = INIT_NORMAL;
        x->ndim = 2;
        x->shape[0] = a; x->shape[1] = b / 32;
        x->rows = a; x->cols = b;
        x->fmt = FMT_SCALE;
        x->q4 = !q8;
        return n + 2;
    }
    return n + 1;
}

static int build_list(const shape_def *s, tensor *t) {
    int n = 0, i, HD = s->D / s->H;
    char nm[96];
    n = add(t, n, "model.embed_tokens.weight", INIT_NORMAL, 2, s->V, s->D, 0);
    n = add(t, n, "model.embedding_norm.weight", INIT_ONES, 1, s->D, 0, 0);
    for (i = 0; i < s->L; i++) {
#define P(suffix) (snprintf(nm, sizeof nm, "model.layers.%d.%s", i, suffix), nm)
        n = add(t, n, P("operator_norm.weight"), INIT_ONES, 1, s->D, 0, 0);
        n = add(t, n, P("ffn_norm.weight"), INIT_ONES, 1, s->D, 0, 0);
        if (s->moe && i >= s->dense) {
            int e;
            char en[48];
            n = add(t, n, P("feed_forward.gate.weight"), INIT_ROUTER, 2, s->E, s->D, 0);
            n = add(t, n, P("feed_forward.expert_bias"), INIT_BIAS, 1, s->E, 0, 0);
            for (e = 0; e < s->E; e++) {
                snprintf(en, sizeof en, "feed_forward.experts.%d.w1.weight", e);
                n = add(t, n, P(en), INIT_NORMAL, 2, s->I, s->D, 0);
                snprintf(en, sizeof en, "feed_forward.experts.%d.w3.weight", e);
                n = add(t, n, P(en), INIT_NORMAL, 2, s->I, s->D, 0);
                snprintf(en, sizeof en, "feed_forward.experts.%d.w2.weight", e);
                n = add(t, n, P(en), INIT_NORMAL, 2, s->D, s->I, 0);
            }
        } else {
            n = add(t, n, P("feed_forward.w1.weight"), INIT_NORMAL, 2, s->FF, s->D, 0);
            n = add(t, n, P("feed_forward.w3.weight"), INIT_NORMAL, 2, s->FF, s->D, 0);
            n = add(t, n, P("feed_forward.w2.weight"), INIT_NORMAL, 2, s->D, s->FF, 0);
        }
        if (is_attn(i)) {
            n = add(t, n, P("self_attn.q_proj.weight"), INIT_NORMAL, 2, (int64_t)s->H * HD, s->D, 0);
            n = add(t, n, P("self_attn.k_proj.weight"), INIT_NORMAL, 2, (int64_t)s->HKV * HD, s->D, 0);
            n = add(t, n, P("self_attn.v_proj.weight"), INIT_NORMAL, 2, (int64_t)s->HKV * HD, s->D, 0);
            n = add(t, n, P("self_attn.out_proj.weight"), INIT_NORMAL, 2, s->D, (int64_t)s->H * HD, 0);
            n = add(t, n, P("self_attn.q_layernorm.weight"), INIT_ONES, 1, HD, 0, 0);
            n = add(t, n, P("self_attn.k_layernorm.weight"), INIT_ONES, 1, HD, 0, 0);
        } else {
            n = add(t, n, P("conv.in_proj.weight"), INIT_NORMAL, 2, 3 * (int64_t)s->D, s->D, 0);
            n = add(t, n, P("conv.conv.weight"), INIT_CONV, 3, s->D, 1, s->LCACHE);
            n = add(t, n, P("conv.out_proj.weight"), INIT_NORMAL, 2, s->D, s->D, 0);
        }
#undef P
    }
    return n;
}

/* ---- config.json ------------------------------------------------------------------------- */

/* the released LFM2-8B-A1B config.json style (layer_types, tie_embedding) */
static int write_config_moe(FILE *f, const shape_def *s, int dt) {
    int l;
    fprintf(f, "{\n");
    if (dt > DT_F32) fprintf(f, "  \"quantization_config\": {\"quant_method\": \"lfm2.h\", \"bits\": %d, \"group_size\": 32},\n", dt == DT_Q8 ? 8 : 4);
    fprintf(f,
            "  \"architectures\": [\n    \"Lfm2MoeForCausalLM\"\n  ],\n"
            "  \"bos_token_id\": 1,\n  \"conv_L_cache\": %d,\n  \"conv_bias\": false,\n  \"dtype\": \"%s\",\n  \"eos_token_id\": 7,\n"
            "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"layer_types\": [\n",
            s->LCACHE, DT_TORCH[dt], s->D, s->FF);
    for (l = 0; l < s->L; l++) fprintf(f, "    \"%s\"%s\n", is_attn(l) ? "full_attention" : "conv", l + 1 < s->L ? "," : "");
    fprintf(f,
            "  ],\n  \"max_position_embeddings\": 128000,\n  \"model_type\": \"lfm2_moe\",\n  \"moe_intermediate_size\": %d,\n"
            "  \"norm_eps\": 1e-05,\n  \"norm_topk_prob\": true,\n  \"num_attention_heads\": %d,\n  \"num_dense_layers\": %d,\n"
            "  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_key_value_heads\": %d,\n"
            "  \"pad_token_id\": 0,\n  \"rope_theta\": 1000000.0,\n  \"routed_scaling_factor\": 1.0,\n  \"tie_embedding\": true,\n"
            "  \"transformers_version\": \"4.57.0\",\n  \"use_cache\": true,\n  \"use_expert_bias\": true,\n  \"vocab_size\": %d\n}\n",
            s->I, s->H, s->dense, s->E, s->K, s->L, s->HKV, s->V);
    return fclose(f) == 0 ? 0 : -1;
}

static int write_config(const char *path, const shape_def *s, int dt) {
    FILE *f = fopen(path, "w");
    size_t k;
    if (!f) return -1;
    if (s->moe) return write_config_moe(f, s, dt);
    fprintf(f, "{\n");
    if (dt > DT_F32) fprintf(f, "  \"quantization_config\": {\"quant_method\": \"lfm2.h\", \"bits\": %d, \"group_size\": 32},\n", dt == DT_Q8 ? 8 : 4);
    fprintf(f,
            "  \"architectures\": [\n    \"Lfm2ForCausalLM\"\n  ],\n"
            "  \"block_auto_adjust_ff_dim\": true,\n"
            "  \"block_dim\": %d,\n"
            "  \"block_ff_dim\": %d,\n"
            "  \"block_ffn_dim_multiplier\": 1.0,\n"
            "  \"block_mlp_init_scale\": 1.0,\n"
            "  \"block_multiple_of\": 256,\n"
            "  \"block_norm_eps\": 1e-05,\n"
            "  \"block_out_init_scale\": 1.0,\n"
            "  \"block_use_swiglu\": true,\n"
            "  \"block_use_xavier_init\": true,\n"
            "  \"bos_token_id\": 1,\n"
            "  \"conv_L_cache\": %d,\n"
            "  \"conv_bias\": false,\n"
            "  \"conv_dim\": %d,\n"
            "  \"conv_dim_out\": %d,\n"
            "  \"conv_use_xavier_init\": true,\n"
            "  \"eos_token_id\": 7,\n"
            "  \"full_attn_idxs\": [\n",
            s->D, s->block_ff_dim, s->LCACHE, s->D, s->D);
    for (k = 0; k < (size_t)s->n_attn; k++) fprintf(f, "    %d%s\n", s->attn[k], k + 1 < (size_t)s->n_attn ? "," : "");
    fprintf(f,
            "  ],\n"
            "  \"hidden_size\": %d,\n"
            "  \"initializer_range\": 0.02,\n"
            "  \"max_position_embeddings\": 128000,\n"
            "  \"model_type\": \"lfm2\",\n"
            "  \"norm_eps\": 1e-05,\n"
            "  \"num_attention_heads\": %d,\n"
            "  \"num_heads\": %d,\n"
            "  \"num_hidden_layers\": %d,\n"
            "  \"num_key_value_heads\": %d,\n"
            "  \"pad_token_id\": 0,\n"
            "  \"rope_theta\": 1000000.0,\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"transformers_version\": \"4.54.0.dev0\",\n"
            "  \"use_cache\": true,\n"
            "  \"use_pos_enc\": true,\n"
            "  \"vocab_size\": %d\n"
            "}\n",
            s->D, s->H, s->H, s->L, s->HKV, DT_TORCH[dt], s->V);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- the tensor data --------------------------------------------------------------------- */

#define MAX_TENSORS 16384
#define FAST_POOL (64u << 20)
#define BUF_ELEMS (1u << 20)
static int g_fast; /* --fast */
static uint64_t g_seed = 42;
static float g_std = 0.02f;
static unsigned char *g_pool; /* --fast: random bytes */

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

/* the next row of a weight matrix's values, as the bf16 folder holds them (rounded to bf16) */
static void gen_row(rng *r, float *x, int64_t cols, float sd) {
    int64_t k;
    for (k = 0; k < cols; k++) {
        uint32_t u = (uint32_t)lfm2__f32_to_bf16(sd * rng_normalish(r)) << 16;
        memcpy(&x[k], &u, 4);
    }
}
/* the next row quantized by lfm2.h (q: cols or cols / 2 bytes, sc: cols / 32 scales) */
static void gen_qrow(rng *r, float *x, const tensor *t, unsigned char *q, uint16_t *sc, float sd) {
    gen_row(r, x, t->cols, sd);
    if (t->q4) lfm2__quantize_row_q4(x, (int32_t)t->cols, q, sc);
    else lfm2__quantize_row_q8(x, (int32_t)t->cols, (int8_t *)(void *)q, sc);
}
static void put_f16s(unsigned char *dst, const uint16_t *h, size_t n) {
    size_t k;
    for (k = 0; k < n; k++) { dst[2 * k] = (unsigned char)(h[k] & 0xff); dst[2 * k + 1] = (unsigned char)(h[k] >> 8); }
}
/* --fast: valid f16 scales, std / 40 (q8) or 3 std / 8 (q4), +-12%; k: the scale's index in its matrix */
static uint16_t fast_scale(int q4, uint64_t k) {
    return lfm2__f32_to_f16((q4 ? 0.375f : 0.025f) * g_std * (0.88f + 0.24f * (float)g_pool[k % FAST_POOL] / 255.0f));
}

/* writes tensor t (its values from the stream of its name, or of its base's for scales) */
static int write_tensor(FILE *f, const tensor *t, unsigned char *buf) {
    rng r;
    float sd = t->init == INIT_CONV ? 0.3f : g_std;
    int64_t rows = t->rows, cols = t->cols, row;
    size_t rb = (size_t)(t->q4 ? cols / 2 : cols), nsc = (size_t)(cols / 32);
    rng_seed(&r, g_seed, t->fmt == FMT_SCALE ? t->base : t->name);
    if (t->fmt == FMT_FLOAT) {
        uint64_t numel = t->nbytes / (uint64_t)DT_SIZE[t->dt], done = 0;
        while (done < numel) {
            size_t m = numel - done > BUF_ELEMS ? BUF_ELEMS : (size_t)(numel - done), k;
            for (k = 0; k < m; k++) {
                float v = t->init == INIT_ONES ? 1.0f : sd * rng_normalish(&r);
                if (t->dt == DT_F32) memcpy(buf + 4 * k, &v, 4);
                else {
                    uint16_t h = t->dt == DT_BF16 ? lfm2__f32_to_bf16(v) : lfm2__f32_to_f16(v);
                    buf[2 * k] = (unsigned char)(h & 0xff);
                    buf[2 * k + 1] = (unsigned char)(h >> 8);
                }
            }
            if (put(f, buf, m * (size_t)DT_SIZE[t->dt])) return -1;
            done += m;
        }
        return 0;
    }
    {
        /* one group of 16 rows: row-major quants and scales, and its records */
        size_t gq = 16 * rb, gs = 16 * nsc, grec = (size_t)(cols / 64) * LFM2__X16_REC(t->q4);
        unsigned char *q = (unsigned char *)malloc(gq + 64), *rec = (unsigned char *)malloc(grec + 64), *sb = (unsigned char *)malloc(2 * gs + 64);
        uint16_t *sc = (uint16_t *)malloc(2 * gs + 64);
        float *x = (float *)malloc(sizeof(float) * (size_t)cols + 64);
        int rc = 0;
        if (!q || !rec || !sb || !sc || !x) { fprintf(stderr, "out of memory\n"); rc = -1; goto done; }
        if (g_fast && t->fmt == FMT_Q) { /* the bytes of the random pool */
            uint64_t nb = t->nbytes, w0 = 0;
            while (w0 < nb && !rc) {
                size_t off = (size_t)((rng_next(&r) % (FAST_POOL / 2)) & ~(uint64_t)63), m = nb - w0 > FAST_POOL / 2 ? FAST_POOL / 2 : (size_t)(nb - w0);
                rc = put(f, g_pool + off, m);
                w0 += m;
            }
            goto done;
        }
        for (row = 0; row < rows && !rc; row += 16) {
            int64_t l, nl = rows - row < 16 ? rows - row : 16;
            for (l = 0; l < nl; l++) {
                if (g_fast) { /* FMT_SCALE or FMT_X */
                    size_t k;
                    for (k = 0; k < nsc; k++) sc[(size_t)l * nsc + k] = fast_scale(t->q4, (uint64_t)(row + l) * nsc + k);
                } else {
                    gen_qrow(&r, x, t, q + (size_t)l * rb, sc + (size_t)l * nsc, sd);
                }
            }
            if (t->fmt == FMT_Q) {
                rc = put(f, q, (size_t)nl * rb);
            } else if (t->fmt == FMT_SCALE) {
                put_f16s(sb, sc, (size_t)nl * nsc);
                rc = put(f, sb, 2 * (size_t)nl * nsc);
            } else { /* FMT_X: lfm2.h's packer (as tools/lfm2-quantize), one group */
                lfm2__ilv v;
                if (g_fast) memcpy(q, g_pool + (size_t)((rng_next(&r) % (FAST_POOL / 2)) & ~(uint64_t)63), gq);
                memset(&v, 0, sizeof v);
                v.dst = rec;
                v.src = q;
                v.sc = sc;
                v.cols = (int32_t)cols;
                v.dtype = t->q4 ? LFM2__DT_Q4 : LFM2__DT_Q8;
                lfm2__interleave_groups(&v, 0, 1, 0);
                rc = put(f, rec, grec);
            }
        }
    done:
        free(q); free(rec); free(sb); free(sc); free(x);
        return rc;
    }
}

/* ---- the temporary folder ---------------------------------------------------------------- */

static char g_tmp[4096], g_tmp_files[2][4200];
static volatile sig_atomic_t g_have_tmp = 0;
static void cleanup_tmp(void) {
    if (!g_have_tmp) return;
    remove(g_tmp_files[0]);
    remove(g_tmp_files[1]);
#if defined(_WIN32)
    _rmdir(g_tmp);
#else
    rmdir(g_tmp);
#endif
    g_have_tmp = 0;
}
static void on_signal(int sig) {
    cleanup_tmp();
    signal(sig, SIG_DFL);
    raise(sig);
}
/* closes f, its data on disk (POSIX: fsync); 0 on success */
static int close_synced(FILE *f) {
    int bad = fflush(f) != 0;
#if !defined(_WIN32)
    if (!bad && fsync(fileno(f)) != 0 && errno != EINVAL) bad = 1;
#endif
    if (fclose(f) != 0) bad = 1;
    return bad ? -1 : 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: make-random-model [--shape 350m|1.2b|8b-a1b|24b-a2b|small|moe-small|odd-small] [--dtype bf16|f16|f32|q8|q4]\n"
            "                         [--row-major] [--seed N] [--std X] [--fast 1] -o DIR\n"
            "  writes DIR/config.json and DIR/model.safetensors (random weights, exact LFM2 / LFM2-MoE shapes;\n"
            "  q8 / q4: a pre-quantized folder as tools/lfm2-quantize writes it from the bf16 one, without a bf16 copy,\n"
            "  the matrices as the interleaved records lfm2.h maps in place; --row-major: the older row-major layout;\n"
            "  --fast 1: their quantized bytes from a 64 MiB random pool, for speed runs of big shapes)\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const shape_def *s = &SHAPES[0];
    const char *out = NULL;
    int dt = DT_BF16, i, n, exists;
    uint64_t data_size = 0, params = 0;
    static tensor t[MAX_TENSORS];
    char path[4608], dir[4096], base[4096], *hdr;
    size_t hcap, hlen, hpad, len;
    FILE *f = NULL;
    unsigned char *buf = NULL;
    struct stat st;
    double t0 = now_s();

    for (i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!strcmp(a, "--row-major")) { g_row_major = 1; i--; continue; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--shape")) {
            size_t k, found = 0;
            for (k = 0; k < sizeof SHAPES / sizeof SHAPES[0]; k++)
                if (!strcmp(v, SHAPES[k].name)) { s = &SHAPES[k]; found = 1; }
            if (!found) { fprintf(stderr, "unknown --shape %s (350m, 1.2b, 8b-a1b, 24b-a2b, small, moe-small, odd-small)\n", v); return 2; }
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "bf16")) dt = DT_BF16;
            else if (!strcmp(v, "f16")) dt = DT_F16;
            else if (!strcmp(v, "f32")) dt = DT_F32;
            else if (!strcmp(v, "q8")) dt = DT_Q8;
            else if (!strcmp(v, "q4")) dt = DT_Q4;
            else { fprintf(stderr, "unknown --dtype %s (bf16, f16, f32, q8, q4)\n", v); return 2; }
        } else if (!strcmp(a, "--fast")) {
            g_fast = atoi(v);
        } else if (!strcmp(a, "--seed")) {
            g_seed = strtoull(v, NULL, 0);
        } else if (!strcmp(a, "--std")) {
            g_std = (float)atof(v);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            out = v;
        } else { usage(); return 2; }
    }
    if (!out) { usage(); return 2; }

    g_dt = dt;
    g_shape = s;
    n = build_list(s, t);
    qsort(t, (size_t)n, sizeof t[0], cmp_tensor);
    for (i = 0; i < n; i++) {
        uint64_t numel = 1;
        int d;
        for (d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        if (t[i].fmt == FMT_Q || t[i].fmt == FMT_X) params += (uint64_t)t[i].rows * (uint64_t)t[i].cols;
        else if (t[i].fmt == FMT_FLOAT && strstr(t[i].name, "expert_bias") == NULL) params += numel;
        t[i].nbytes = numel * (uint64_t)(t[i].fmt == FMT_FLOAT ? DT_SIZE[t[i].dt] : t[i].fmt == FMT_SCALE ? 2 : 1);
        t[i].off = data_size;
        data_size += (t[i].nbytes + 63) & ~(uint64_t)63;
    }

    /* header JSON, padded with spaces so that the data starts at a multiple of 64 */
    hcap = (size_t)n * 256 + 256;
    hdr = (char *)malloc(hcap);
    if (!hdr) { fprintf(stderr, "out of memory\n"); return 1; }
    if (dt > DT_F32)
        hlen = (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"lfm2.h-q%d\"%s%s%s}", dt == DT_Q8 ? 8 : 4,
                                g_row_major ? "" : ",\"lfm2.h.interleave\":\"", g_row_major ? "" : LFM2__X16_LAYOUT, g_row_major ? "" : "\"");
    else
        hlen = (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (i = 0; i < n; i++) {
        int d;
        const char *dn = t[i].fmt == FMT_FLOAT ? DT_NAME[t[i].dt] : t[i].fmt == FMT_SCALE ? "F16" : (t[i].fmt == FMT_Q && !t[i].q4) ? "I8" : "U8";
        hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, dn);
        for (d = 0; d < t[i].ndim; d++)
            hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t[i].off,
                                 (unsigned long long)(t[i].off + t[i].nbytes));
    }
    hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, "}");
    if (hlen + 64 >= hcap) { fprintf(stderr, "internal: header buffer too small\n"); return 1; }
    hpad = (64 - (8 + hlen) % 64) % 64;
    memset(hdr + hlen, ' ', hpad);
    hlen += hpad;

    /* DIR: its parent made (mkdir -p), DIR itself made last, by the rename */
    len = strlen(out);
    if (len == 0 || len >= sizeof dir) { fprintf(stderr, "bad output folder name: %s\n", out); return 1; }
    memcpy(dir, out, len + 1);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = 0;
    {
        size_t k;
        for (k = 1; k < len; k++) {
            if (dir[k] != '/') continue;
            dir[k] = 0;
            if (MRM_MKDIR(dir) != 0 && errno != EEXIST) { fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno)); return 1; }
            dir[k] = '/';
        }
    }
    exists = stat(dir, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode)) { fprintf(stderr, "%s exists and is not a folder\n", dir); return 1; }
    {   /* the sibling: PARENT/.NAME.make-random-model-XXXXXX */
        const char *slash = strrchr(dir, '/');
        size_t pl = slash ? (size_t)(slash - dir) + 1 : 0;
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : dir);
        if (pl + strlen(base) + 40 > sizeof g_tmp) { fprintf(stderr, "path too long: %s\n", dir); return 1; }
        memcpy(g_tmp, dir, pl);
        g_tmp[pl] = 0;
        strcat(g_tmp, ".");
        strcat(g_tmp, base);
#if defined(_WIN32)
        snprintf(g_tmp + strlen(g_tmp), 32, ".make-random-model-%d", (int)_getpid());
        if (MRM_MKDIR(g_tmp) != 0) { fprintf(stderr, "cannot create %s: %s\n", g_tmp, strerror(errno)); return 1; }
#else
        strcat(g_tmp, ".make-random-model-XXXXXX");
        if (!mkdtemp(g_tmp)) { fprintf(stderr, "cannot create a folder beside %s: %s\n", dir, strerror(errno)); return 1; }
#endif
    }
    snprintf(g_tmp_files[0], sizeof g_tmp_files[0], "%s/model.safetensors", g_tmp);
    snprintf(g_tmp_files[1], sizeof g_tmp_files[1], "%s/config.json", g_tmp);
    g_have_tmp = 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
#if !defined(_WIN32)
    signal(SIGHUP, on_signal);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit: write fails with EFBIG */
#endif

    snprintf(path, sizeof path, "%s", g_tmp_files[1]);
    if (write_config(path, s, dt) != 0) goto io_fail;

    snprintf(path, sizeof path, "%s", g_tmp_files[0]);
    f = fopen(path, "wb");
    if (!f) goto io_fail;
    {
        unsigned char le[8];
        uint64_t h = (uint64_t)hlen;
        int k;
        for (k = 0; k < 8; k++) le[k] = (unsigned char)(h >> (8 * k));
        if (put(f, le, 8) || put(f, hdr, hlen)) goto io_fail;
    }
    buf = (unsigned char *)malloc((size_t)BUF_ELEMS * 4);
    if (!buf) { fprintf(stderr, "out of memory\n"); goto fail; }
    if (g_fast && dt > DT_F32) {
        rng pr;
        size_t k;
        g_pool = (unsigned char *)malloc((size_t)FAST_POOL + 8);
        if (!g_pool) { fprintf(stderr, "out of memory\n"); goto fail; }
        rng_seed(&pr, g_seed, "--fast pool");
        for (k = 0; k < (size_t)FAST_POOL; k += 8) { uint64_t x = rng_next(&pr); memcpy(g_pool + k, &x, 8); }
    }
    for (i = 0; i < n; i++) {
        static const unsigned char zeros[64] = {0};
        if (write_tensor(f, &t[i], buf) || put(f, zeros, (size_t)((64 - t[i].nbytes % 64) % 64))) goto io_fail;
    }
    if (close_synced(f) != 0) { f = NULL; goto io_fail; }
    f = NULL;

    /* put it in place */
    if (!exists) {
#if !defined(_WIN32)
        {   /* mkdtemp made it 0700: a folder as mkdir makes it */
            mode_t um = umask(0);
            umask(um);
            chmod(g_tmp, 0777 & ~um);
        }
#endif
        if (rename(g_tmp, dir) != 0) { snprintf(path, sizeof path, "%s", dir); goto io_fail; }
        g_have_tmp = 0;
    } else {
        /* config.json first out and last in: an interrupted replacement does not load */
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (remove(path) != 0 && errno != ENOENT) goto io_fail;
#if !defined(_WIN32)
        {   /* an index would make the loader ignore the new model.safetensors */
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                size_t ln = strlen(e->d_name);
                if (ln > 23 && !strcmp(e->d_name + ln - 23, ".safetensors.index.json")) {
                    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                    if (remove(path) != 0) { closedir(d); goto io_fail; }
                }
            }
            if (d) closedir(d);
        }
#endif
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
#if defined(_WIN32)
        remove(path);
#endif
        if (rename(g_tmp_files[0], path) != 0) goto io_fail;
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (rename(g_tmp_files[1], path) != 0) goto io_fail;
        cleanup_tmp();
    }
    free(buf);
    free(hdr);
    free(g_pool);
    fprintf(stderr, "wrote %s: %s shapes, %s%s, %d tensors, %llu params, %.1f MiB in %.1f s\n", out, s->label,
            dt == DT_Q8 ? "q8" : dt == DT_Q4 ? "q4" : DT_NAME[dt], dt > DT_F32 ? (g_row_major ? " row-major" : " interleaved") : "", n,
            (unsigned long long)params, (double)(8 + hlen + data_size) / 1048576.0, now_s() - t0);
    return 0;
io_fail:
    fprintf(stderr, "write to %s failed: %s\n", path, strerror(errno));
fail:
    if (f) fclose(f);
    cleanup_tmp();
    return 1;
}
