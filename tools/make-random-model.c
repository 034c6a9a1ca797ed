/* make-random-model.c - write a Hugging Face folder with the exact LFM2 tensor layout and random
   weights, for benchmarking lfm2.h (speed does not depend on the weight values).

     cc -O2 -march=native -Wall -Wextra -Werror -std=c99 -pedantic -o build/make-random-model tools/make-random-model.c
     build/make-random-model --shape 350m --dtype bf16 -o /tmp/lfm2-350m-random
     build/make-random-model --shape 24b-a2b --dtype q4 -o /tmp/lfm2-24b-a2b-q4   (13.5 GB, no bf16 copy)

   Shapes: LFM2-350M, LFM2-1.2B, and the MoE LFM2-8B-A1B (D 2048, 24 layers, attention at 2 6 10
   14 18 21, 32 experts top-4 of width 1792, 2 dense layers of 7168) and LFM2-24B-A2B (40 layers:
   30 conv + 10 attention, 64 experts top-4 of width 1536, 2 dense layers; the dense width 7168
   and the attention positions are assumed). MoE folders have the released LFM2-8B-A1B config.json
   style, experts as separate tensors, an F32 expert_bias (~N(0, std^2)) and a router ~N(0, std^2).
   --dtype q8 / q4 writes the matrices pre-quantized (NAME I8 / U8 + NAME_scale F16, the format of
   tools/lfm2-quantize, the embedding q8 with q4), the router, norms and conv taps bf16.
   Writes DIR/config.json (the released LFM2-350M / LFM2-1.2B config.json, torch_dtype adapted) and
   DIR/model.safetensors: every tensor of the checkpoint at its exact shape, tied embeddings (no
   lm_head), tensors in name order, contiguous, each 64-byte aligned in the file.
   No tokenizer files: load with lfm2_model_params.no_tokenizer or without them.

   Values: matrices ~ N(0, std^2) (std 0.02 by default, an Irwin-Hall approximation of a normal),
   RMSNorm weights 1.0, depthwise conv taps ~ N(0, 0.3^2) (as /work/shared/peer/make_lfm2_gguf.py),
   from a fixed-seed PRNG seeded per tensor name (same file for the same --seed, any order).
   The file is streamed through a small buffer: memory use is a few MiB whatever the size. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#if defined(_WIN32)
#include <direct.h>
#define MRM_MKDIR(p) _mkdir(p)
#else
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

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000u, mant;
    int32_t exp;
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (u >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);       /* overflow (>= 65520) -> inf */
    exp = (int32_t)(u >> 23) - 127 + 15;
    mant = u & 0x7fffffu;
    if (exp <= 0) {                                                 /* subnormal or zero */
        uint32_t m, shift, r, half;
        if (exp < -10) return (uint16_t)sign;
        m = mant | 0x800000u;
        shift = (uint32_t)(14 - exp);
        r = m >> shift;
        half = 1u << (shift - 1);
        if ((m & ((1u << shift) - 1)) > half || ((m & ((1u << shift) - 1)) == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    } else {
        uint32_t r = ((uint32_t)exp << 10) | (mant >> 13), low = mant & 0x1fffu;
        if (low > 0x1000u || (low == 0x1000u && (r & 1u))) r++;     /* may carry into the exponent: fine */
        return (uint16_t)(sign | r);
    }
}

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

typedef struct tensor {
    char name[96];
    int ndim;
    int64_t shape[3];
    int init;
    int dt;             /* DT_*: its dtype in the file */
    int scale_of;       /* >= 0: the F16 scales of that quantized tensor (index before sorting: see qbase) */
    char base[96];      /* of a _scale tensor: the quantized tensor's name */
    uint64_t nbytes, off;
} tensor;

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

static int g_dt; /* the --dtype */
/* adds a tensor; a weight matrix (INIT_NORMAL, 2-D) of a pre-quantized folder becomes NAME (I8 /
   U8) + NAME_scale (F16); with q4 the embedding stays q8 (as lfm2-quantize writes it) */
static int add(tensor *t, int n, const char *name, int init, int ndim, int64_t a, int64_t b, int64_t c) {
    tensor *x = &t[n];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->init = init;
    x->ndim = ndim;
    x->shape[0] = a; x->shape[1] = b; x->shape[2] = c;
    x->scale_of = -1;
    x->dt = g_dt > DT_F32 ? DT_BF16 : g_dt;
    if (init == INIT_BIAS) x->dt = DT_F32; /* expert_bias is F32 in the checkpoints */
    if (g_dt > DT_F32 && init == INIT_NORMAL && ndim == 2) {
        int q8 = g_dt == DT_Q8 || !strcmp(name, "model.embed_tokens.weight");
        x->dt = q8 ? DT_Q8 : DT_Q4;
        if (!q8) x->shape[1] = b / 2;
        x = &t[n + 1];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s_scale", name);
        snprintf(x->base, sizeof x->base, "%s", name);
        x->init = INIT_NORMAL;
        x->ndim = 2;
        x->shape[0] = a; x->shape[1] = b / 32;
        x->dt = DT_F16;
        x->scale_of = 1;
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
    fprintf(f,
            "{\n"
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

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: make-random-model [--shape 350m|1.2b|8b-a1b|24b-a2b] [--dtype bf16|f16|f32|q8|q4] [--seed N] [--std X] [--fast 1] -o DIR\n"
            "  writes DIR/config.json and DIR/model.safetensors (random weights, exact LFM2 / LFM2-MoE shapes;\n"
            "  q8 / q4: a pre-quantized folder as tools/lfm2-quantize writes it, without a bf16 copy;\n"
            "  --fast 1: their quantized bytes from a 64 MiB random pool, for speed runs of big shapes)\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define MAX_TENSORS 16384
#define FAST_POOL (64u << 20)
static int g_fast; /* --fast */
#define BUF_ELEMS (1u << 20)

int main(int argc, char **argv) {
    const shape_def *s = &SHAPES[0];
    const char *out = NULL;
    int dt = DT_BF16, i, n;
    uint64_t seed = 42, data_size = 0, params = 0;
    float stdev = 0.02f;
    static tensor t[MAX_TENSORS];
    char path[4096], *hdr;
    size_t hcap, hlen, hpad;
    FILE *f;
    unsigned char *buf;
    double t0 = now_s();

    for (i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--shape")) {
            size_t k, found = 0;
            for (k = 0; k < sizeof SHAPES / sizeof SHAPES[0]; k++)
                if (!strcmp(v, SHAPES[k].name)) { s = &SHAPES[k]; found = 1; }
            if (!found) { fprintf(stderr, "unknown --shape %s (350m, 1.2b, 8b-a1b, 24b-a2b)\n", v); return 2; }
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
            seed = strtoull(v, NULL, 0);
        } else if (!strcmp(a, "--std")) {
            stdev = (float)atof(v);
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
        if (t[i].scale_of < 0 && strstr(t[i].name, "expert_bias") == NULL) params += t[i].dt == DT_Q4 ? 2 * numel : numel;
        t[i].nbytes = numel * (uint64_t)(t[i].dt == DT_F16 ? 2 : DT_SIZE[t[i].dt]);
        t[i].off = data_size;
        data_size += t[i].nbytes;
        /* keep every tensor 64-byte aligned; all LFM2 tensors are multiples of 64 bytes, so the
           layout stays contiguous (as the safetensors spec requires) */
        if (t[i].nbytes % 64) { fprintf(stderr, "internal: %s is not a multiple of 64 bytes\n", t[i].name); return 1; }
    }

    /* header JSON, padded with spaces so that the data starts at a multiple of 64 */
    hcap = (size_t)n * 256 + 256;
    hdr = (char *)malloc(hcap);
    if (!hdr) { fprintf(stderr, "out of memory\n"); return 1; }
    hlen = (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (i = 0; i < n; i++) {
        int d;
        hlen += (size_t)snprintf(hdr + hlen, hcap - hlen, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dt == DT_F16 && dt > DT_F32 ? "F16" : DT_NAME[t[i].dt]);
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

    { /* mkdir -p */
        size_t k, len = strlen(out);
        if (len >= sizeof path) { fprintf(stderr, "path too long: %s\n", out); return 1; }
        memcpy(path, out, len + 1);
        for (k = 1; k <= len; k++) {
            if (path[k] != '/' && path[k] != 0) continue;
            path[k] = 0;
            if (MRM_MKDIR(path) != 0 && errno != EEXIST) { fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno)); return 1; }
            if (k < len) path[k] = '/';
        }
    }
    snprintf(path, sizeof path, "%s/config.json", out);
    if (write_config(path, s, dt) != 0) { fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno)); return 1; }

    snprintf(path, sizeof path, "%s/model.safetensors", out);
    f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno)); return 1; }
    {
        unsigned char le[8];
        uint64_t h = (uint64_t)hlen;
        int k;
        for (k = 0; k < 8; k++) le[k] = (unsigned char)(h >> (8 * k));
        if (fwrite(le, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen) goto io_fail;
    }
    buf = (unsigned char *)malloc((size_t)BUF_ELEMS * 4);
    if (!buf) { fprintf(stderr, "out of memory\n"); return 1; }
    for (i = 0; i < n; i++) {
        int tdt = t[i].dt, quant = tdt == DT_Q8 || tdt == DT_Q4, scales = t[i].scale_of >= 0;
        /* values: quantized tensors and their scales come from the same stream (the base name's) */
        uint64_t numel = (quant || scales) ? (uint64_t)t[i].shape[0] * (uint64_t)(scales ? t[i].shape[1] * 32 : tdt == DT_Q4 ? 2 * t[i].shape[1] : t[i].shape[1])
                                           : t[i].nbytes / (uint64_t)(tdt == DT_F16 ? 2 : DT_SIZE[tdt]);
        uint64_t done = 0;
        rng r;
        float sd = t[i].init == INIT_CONV ? 0.3f : stdev;
        int q4 = 0;
        if (scales) { /* the quantized tensor's kind */
            int b;
            for (b = 0; b < n; b++) if (!strcmp(t[b].name, t[i].base)) q4 = t[b].dt == DT_Q4;
        }
        rng_seed(&r, seed, scales ? t[i].base : t[i].name);
        if (g_fast && (quant || scales)) { /* --fast: the bytes of a random pool (speed does not depend on the values) */
            uint64_t nb = t[i].nbytes, w0 = 0;
            static unsigned char *pool;
            if (!pool) {
                rng pr;
                size_t k;
                pool = (unsigned char *)malloc((size_t)FAST_POOL + 8);
                if (!pool) { fprintf(stderr, "out of memory\n"); return 1; }
                rng_seed(&pr, seed, "--fast pool");
                for (k = 0; k < (size_t)FAST_POOL; k += 8) { uint64_t x = rng_next(&pr); memcpy(pool + k, &x, 8); }
            }
            if (scales) { /* valid f16 scales: std / 40 (q8) or 3 std / 8 (q4), +-12% */
                uint64_t k;
                for (k = 0; k < nb / 2; k++) {
                    uint16_t h = f32_to_f16((q4 ? 0.375f : 0.025f) * stdev * (0.88f + 0.24f * (float)pool[k % FAST_POOL] / 255.0f));
                    buf[2 * (k % BUF_ELEMS)] = (unsigned char)(h & 0xff);
                    buf[2 * (k % BUF_ELEMS) + 1] = (unsigned char)(h >> 8);
                    if ((k + 1) % BUF_ELEMS == 0 || k + 1 == nb / 2) {
                        size_t cnt = (size_t)(k % BUF_ELEMS) + 1;
                        if (fwrite(buf, 2, cnt, f) != cnt) goto io_fail;
                    }
                }
                continue;
            }
            while (w0 < nb) {
                size_t off = (size_t)((rng_next(&r) % (FAST_POOL / 2)) & ~(uint64_t)63), m = nb - w0 > FAST_POOL / 2 ? FAST_POOL / 2 : (size_t)(nb - w0);
                if (fwrite(pool + off, 1, m, f) != m) goto io_fail;
                w0 += m;
            }
            continue;
        }
        while (done < numel) {
            size_t m = numel - done > BUF_ELEMS ? BUF_ELEMS : (size_t)(numel - done), k, out = 0;
            if (quant || scales) {
                size_t blk;
                for (blk = 0; blk < m; blk += 32) { /* block of 32: scale d = amax/127 (q8), or extreme / -8 (q4) */
                    float v[32], amax = 0, mx = 0, d, id;
                    uint16_t h;
                    for (k = 0; k < 32; k++) {
                        v[k] = sd * rng_normalish(&r);
                        if (fabsf(v[k]) > amax) { amax = fabsf(v[k]); mx = v[k]; }
                    }
                    h = f32_to_f16((tdt == DT_Q8 || (scales && !q4)) ? amax / 127.0f : mx / -8.0f);
                    {   /* back to f32 (normal f16 values here) */
                        uint32_t e = (h >> 10) & 0x1f, man = h & 0x3ff, u = ((uint32_t)(h & 0x8000) << 16) | ((e + 112) << 23) | (man << 13);
                        if (e == 0) u = (uint32_t)(h & 0x8000) << 16;
                        memcpy(&d, &u, 4);
                    }
                    id = d != 0 ? 1.0f / d : 0.0f;
                    if (scales) { buf[out++] = (unsigned char)(h & 0xff); buf[out++] = (unsigned char)(h >> 8); continue; }
                    if (tdt == DT_Q8) {
                        for (k = 0; k < 32; k++) {
                            float x = v[k] * id;
                            int qv = (int)lrintf(x < -127 ? -127 : x > 127 ? 127 : x);
                            buf[out++] = (unsigned char)(int8_t)qv;
                        }
                    } else {
                        int qv[32];
                        for (k = 0; k < 32; k++) {
                            float x = v[k] * id + 8.0f;
                            qv[k] = (int)lrintf(x < 0 ? 0 : x > 15 ? 15 : x);
                        }
                        for (k = 0; k < 16; k++) buf[out++] = (unsigned char)(qv[k] | (qv[k + 16] << 4));
                    }
                }
                if (fwrite(buf, 1, out, f) != out) goto io_fail;
                done += m;
                continue;
            }
            for (k = 0; k < m; k++) {
                float v = t[i].init == INIT_ONES ? 1.0f : sd * rng_normalish(&r);
                if (tdt == DT_F32) memcpy(buf + 4 * k, &v, 4);
                else {
                    uint16_t h = tdt == DT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
                    buf[2 * k] = (unsigned char)(h & 0xff);
                    buf[2 * k + 1] = (unsigned char)(h >> 8);
                }
            }
            if (fwrite(buf, (size_t)(tdt == DT_F32 ? 4 : 2), m, f) != m) goto io_fail;
            done += m;
        }
    }
    if (fclose(f) != 0) { f = NULL; goto io_fail; }
    free(buf);
    free(hdr);
    fprintf(stderr, "wrote %s: %s shapes, %s, %d tensors, %llu params, %.1f MiB in %.1f s\n", out, s->label, DT_NAME[dt], n,
            (unsigned long long)params, (double)(8 + hlen + data_size) / 1048576.0, now_s() - t0);
    return 0;
io_fail:
    fprintf(stderr, "write to %s failed: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return 1;
}
