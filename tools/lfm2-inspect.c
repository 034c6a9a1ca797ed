/* lfm2-inspect - look inside an LFM2 model folder, for people comparing implementations.

     lfm2-inspect DIR                              resolved config + tensor table
     lfm2-inspect DIR --ids 1,2,3 --logits OUT.bin logits of every position (ids fed from position 0)
                                                   as little-endian float32 [n_ids, vocab]
     lfm2-inspect DIR --tokenize [--special] [--bos]   UTF-8 text on stdin -> ids on one line
     lfm2-inspect DIR --detokenize                 ids on stdin (space/comma separated) -> exact bytes
     lfm2-inspect DIR --chat CONV.json [--template lfm2|lfm2-tools|lfm2.5] [--ids-out]
                                                   the prompt bytes of a conversation (the shape of a
                                                   chat_golden.json render entry) with the folder's
                                                   template (or the one named; DIR may then be
                                                   omitted); --ids-out: the ids of lfm2_chat_tokenize
                                                   instead. Non-zero exit with the template's error.
     lfm2-inspect --parse-tool-calls               a tool-call text on stdin -> one JSON array
                                                   [{"name": ..., "arguments": {...}}], or an error
   Options: -t N threads; --weights q8|q4 quantizes the weights at load time.
   Build: make build/lfm2-inspect  (or: cc -O2 -march=native -fopenmp -o lfm2-inspect tools/lfm2-inspect.c -lm;
   -march=native selects the SIMD kernels at compile time, -fopenmp the threads)
*/
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include "lfm2_digest.h"
#include "lfm2_chat_json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <fcntl.h>
#include <io.h> /* _setmode: ids and text pass through unchanged (no \r\n) */
#endif

static int usage(void) {
    fprintf(stderr,
            "usage: lfm2-inspect DIR [--ids 1,2,3 --logits OUT.bin] [--tokenize [--special] [--bos]] [--detokenize] [-t N] [--weights q8|q4] [--digest]\n"
            "       lfm2-inspect [DIR] --chat CONV.json [--template lfm2|lfm2-tools|lfm2.5] [--ids-out]\n"
            "       lfm2-inspect --parse-tool-calls < TEXT\n");
    return 2;
}

/* reads all of stdin; returns malloc'd buffer */
static char *read_stdin(size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = (char *)malloc(cap);
    size_t r;
    if (!buf) return NULL;
    while ((r = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += r;
        if (len == cap) {
            char *nb = (char *)realloc(buf, cap * 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
    }
    *n = len;
    return buf;
}

/* parses "1,2 3\n4" into ids; returns count or -1 on a bad number */
static int32_t parse_ids(const char *s, lfm2_token **out) {
    int32_t n = 0, cap = 64;
    lfm2_token *ids = (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)cap);
    while (ids && *s) {
        char *end;
        long v;
        if (*s == ',' || *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') { s++; continue; }
        v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) { free(ids); return -1; }
        if (n == cap) {
            lfm2_token *nb = (lfm2_token *)realloc(ids, sizeof(lfm2_token) * (size_t)cap * 2);
            if (!nb) { free(ids); return -1; }
            ids = nb;
            cap *= 2;
        }
        ids[n++] = (lfm2_token)v;
        s = end;
    }
    *out = ids;
    return ids ? n : -1;
}

static void print_config(const char *dir, const lfm2_model *m) {
    const lfm2_config *c = lfm2_model_config(m);
    int32_t i, nt = lfm2_model_tensor_count(m);
    uint64_t total_bytes = 0;
    printf("model folder        %s\n", dir);
    printf("vocab_size          %d (tokenizer: %d ids)\n", c->vocab_size, lfm2_tokenizer_size(m));
    printf("hidden_size         %d\n", c->hidden_size);
    printf("num_hidden_layers   %d (%d conv, %d attention)\n", c->num_hidden_layers, c->n_conv_layers, c->n_attention_layers);
    printf("layer kinds         ");
    for (i = 0; i < c->num_hidden_layers; i++) printf("%s", c->layer_is_attention[i] ? "A" : "c");
    printf("   (A = attention at");
    for (i = 0; i < c->num_hidden_layers; i++) if (c->layer_is_attention[i]) printf(" %d", i);
    printf(")\n");
    printf("attention heads     %d q / %d kv, head_dim %d\n", c->num_attention_heads, c->num_key_value_heads, c->head_dim);
    printf("ffn width           %d (intermediate_size %d, auto-adjust %d, multiplier %g, multiple_of %d)\n", c->ff_dim,
           c->intermediate_size, c->block_auto_adjust_ff_dim, c->block_ffn_dim_multiplier, c->block_multiple_of);
    if (c->is_moe) {
        printf("model_type          lfm2_moe: layers 0..%d dense (ffn width %d), %d sparse layers\n", c->num_dense_layers - 1, c->ff_dim, c->n_moe_layers);
        printf("experts             %d per layer, top %d, moe_intermediate_size %d\n", c->num_experts, c->num_experts_per_tok, c->moe_intermediate_size);
        printf("routing             sigmoid, use_expert_bias %d, norm_topk_prob %d, routed_scaling_factor %g\n", c->use_expert_bias,
               c->norm_topk_prob, c->routed_scaling_factor);
    }
    printf("conv_L_cache        %d, conv_bias %d\n", c->conv_L_cache, c->conv_bias);
    printf("norm_eps            %g\n", (double)c->norm_eps);
    printf("rope_theta          %g\n", c->rope_theta);
    printf("tie embeddings      %d\n", c->tie_word_embeddings);
    printf("max_position        %d\n", c->max_position_embeddings);
    printf("bos / pad / eos     %d / %d /", c->bos_token_id, c->pad_token_id);
    for (i = 0; i < c->n_eos; i++) printf(" %d", c->eos_token_ids[i]);
    printf("\nparameters          %llu (from the config)", (unsigned long long)lfm2_config_param_count(c));
    if (c->is_moe) printf(", %llu active per token", (unsigned long long)lfm2_config_active_param_count(c));
    printf("\n");
    printf("build               lfm2.h %s, %s\n\n", lfm2_version_string(), lfm2_build_info());
    printf("%-52s %-5s %-18s %12s  %s\n", "tensor", "dtype", "shape", "bytes", "file @ offset");
    for (i = 0; i < nt; i++) {
        lfm2_tensor_info t;
        char shape[64];
        size_t k = 0;
        int32_t d;
        lfm2_model_tensor_info(m, i, &t);
        shape[0] = 0;
        for (d = 0; d < t.n_dims && k < sizeof shape - 16; d++) k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ",%lld" : "%lld", (long long)t.shape[d]);
        printf("%-52s %-5s [%-16s] %12llu  %s @ %llu\n", t.name, t.dtype, shape, (unsigned long long)t.n_bytes, t.file, (unsigned long long)t.file_offset);
        total_bytes += t.n_bytes;
    }
    printf("%d tensors, %llu bytes\n", nt, (unsigned long long)total_bytes);
}

/* --digest: FNV-1a 64 of every weight matrix's values as f32 (row-major order, whatever the
   layout in memory), per matrix and in all, and of the norm / conv / bias vectors
   (tools/lfm2_digest.h): a pre-quantized folder and load-time quantization of the same model
   must print the same digests */
static int print_digests(lfm2_model *m) {
    lfm2_digests *d = (lfm2_digests *)malloc(sizeof *d);
    int32_t i;
    if (!d || !lfm2_digest_model(m, d)) { free(d); fprintf(stderr, "lfm2-inspect: --digest: out of memory\n"); return 1; }
    for (i = 0; i < d->n_mats; i++) printf("matrix %2d [%d, %d]: %016llx\n", i, d->rows[i], d->cols[i], (unsigned long long)d->mat[i]);
    printf("vectors %016llx\n", (unsigned long long)d->vectors);
    printf("digest %016llx\n", (unsigned long long)d->all);
    free(d);
    return 0;
}

/* --parse-tool-calls: stdin -> [{"name": ..., "arguments": {...}}] */
static int parse_tool_calls(void) {
    size_t n, need = 0, off = 0;
    char *text = read_stdin(&n), *buf = NULL;
    int32_t nc = 0, k;
    lfm2_tool_call *calls = NULL;
    lfm2_error err;
    lfm2_result r;
    if (!text) { fprintf(stderr, "lfm2-inspect: out of memory\n"); return 1; }
    memset(&err, 0, sizeof err);
    r = lfm2_tool_calls_parse(text, n, NULL, 0, &nc, NULL, 0, &need, &off, &err);
    if (r == LFM2_OK) {
        calls = (lfm2_tool_call *)malloc(sizeof *calls * (size_t)(nc + 1));
        buf = (char *)malloc(need + 1);
        r = (calls && buf) ? lfm2_tool_calls_parse(text, n, calls, nc, &nc, buf, need, &need, &off, &err) : LFM2_ERR_OUT_OF_MEMORY;
    }
    if (r != LFM2_OK) {
        fprintf(stderr, "lfm2-inspect: %s\n", err.message[0] ? err.message : lfm2_result_string(r));
        free(text); free(calls); free(buf);
        return 1;
    }
    printf("[");
    for (k = 0; k < nc; k++) {
        printf("%s{\"name\": \"", k ? ", " : "");
        fwrite(calls[k].name, 1, calls[k].name_len, stdout); /* identifiers: nothing to escape */
        printf("\", \"arguments\": ");
        fwrite(calls[k].arguments, 1, calls[k].arguments_len, stdout);
        printf("}");
    }
    printf("]\n");
    free(text); free(calls); free(buf);
    return ferror(stdout) ? 1 : 0;
}

/* --chat CONV.json: the rendered prompt (or its ids) */
static int chat_render(const char *dir, const char *conv_path, const char *tpl_name, int ids_out, const lfm2_model_params *mp) {
    size_t n = 0, need = 0;
    char *src = NULL, *out = NULL, msg[400];
    lfm2cj cj;
    lfm2_error err;
    lfm2_chat_template t = LFM2_CHAT_TEMPLATE_UNKNOWN;
    lfm2_result r;
    FILE *f = fopen(conv_path, "rb");
    int rc = 1;
    memset(&err, 0, sizeof err);
    if (!f) { fprintf(stderr, "lfm2-inspect: cannot open %s\n", conv_path); return 1; }
    {
        long sz;
        if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (src = (char *)malloc((size_t)sz + 1)) &&
            fread(src, 1, (size_t)sz, f) == (size_t)sz) n = (size_t)sz;
        else { free(src); src = NULL; }
        fclose(f);
    }
    if (!src) { fprintf(stderr, "lfm2-inspect: cannot read %s\n", conv_path); return 1; }
    if (tpl_name) {
        t = lfm2_chat_template_from_name(tpl_name);
        if (t == LFM2_CHAT_TEMPLATE_UNKNOWN) { fprintf(stderr, "lfm2-inspect: --template: '%s' is not lfm2, lfm2-tools or lfm2.5\n", tpl_name); free(src); return 2; }
    } else if (!dir) { fprintf(stderr, "lfm2-inspect: --chat needs a model folder or --template\n"); free(src); return 2; }
    else if (lfm2_chat_template_load_dir(dir, &t, &err) != LFM2_OK) { fprintf(stderr, "lfm2-inspect: %s\n", err.message); free(src); return 1; }
    if (!lfm2cj_parse(&cj, src, n, msg, sizeof msg)) { fprintf(stderr, "lfm2-inspect: %s: %s\n", conv_path, msg); free(src); return 1; }
    cj.chat.template_kind = t;
    if (!ids_out) {
        r = lfm2_chat_render(&cj.chat, NULL, 0, &need, &err);
        if (r == LFM2_OK && (out = (char *)malloc(need + 1)) != NULL) r = lfm2_chat_render(&cj.chat, out, need, &need, &err);
        if (r != LFM2_OK) fprintf(stderr, "lfm2-inspect: %s\n", err.message[0] ? err.message : lfm2_result_string(r));
        else if (fwrite(out, 1, need, stdout) == need && fflush(stdout) == 0) rc = 0;
    } else {
        lfm2_model *m = NULL;
        lfm2_model_params p = *mp;
        if (!dir) { fprintf(stderr, "lfm2-inspect: --ids-out needs the model folder (its tokenizer)\n"); }
        else if (p.error = &err, p.no_tokenizer = 0, lfm2_model_load_dir(dir, &p, &m) != LFM2_OK) fprintf(stderr, "lfm2-inspect: %s\n", err.message);
        else {
            int32_t cap = 0, got = 0, k;
            lfm2_token *ids = NULL;
            r = lfm2_chat_tokenize(m, &cj.chat, NULL, 0, &cap, &err);
            if (r == LFM2_OK && (ids = (lfm2_token *)malloc(sizeof *ids * (size_t)(cap + 1))) != NULL) r = lfm2_chat_tokenize(m, &cj.chat, ids, cap, &got, &err);
            if (r != LFM2_OK) fprintf(stderr, "lfm2-inspect: %s\n", err.message[0] ? err.message : lfm2_result_string(r));
            else {
                for (k = 0; k < got; k++) printf(k ? " %d" : "%d", ids[k]);
                printf("\n");
                rc = ferror(stdout) ? 1 : 0;
            }
            free(ids);
            lfm2_model_free(m);
        }
    }
    free(out);
    lfm2cj_free(&cj);
    free(src);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *ids_arg = NULL, *logits_path = NULL, *chat_path = NULL, *tpl_name = NULL;
    int parse_calls = 0, ids_out = 0;
    int tokenize = 0, detokenize = 0, special = 0, bos = 0, threads = 0, weights = LFM2_WEIGHTS_AS_STORED, i, rc = 0, digest = 0;
    lfm2_model *m = NULL;
    lfm2_model_params mp;
    lfm2_error err;
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stdin), _O_BINARY);
#endif
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(argv[i], "--logits") && i + 1 < argc) logits_path = argv[++i];
        else if (!strcmp(argv[i], "--tokenize")) tokenize = 1;
        else if (!strcmp(argv[i], "--detokenize")) detokenize = 1;
        else if (!strcmp(argv[i], "--special")) special = 1;
        else if (!strcmp(argv[i], "--bos")) bos = 1;
        else if (!strcmp(argv[i], "--digest")) digest = 1;
        else if (!strcmp(argv[i], "--chat") && i + 1 < argc) chat_path = argv[++i];
        else if (!strcmp(argv[i], "--template") && i + 1 < argc) tpl_name = argv[++i];
        else if (!strcmp(argv[i], "--ids-out")) ids_out = 1;
        else if (!strcmp(argv[i], "--parse-tool-calls")) parse_calls = 1;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc && !strcmp(argv[i + 1], "q8")) weights = LFM2_WEIGHTS_Q8, i++;
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc && !strcmp(argv[i + 1], "q4")) weights = LFM2_WEIGHTS_Q4, i++;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(), 0;
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else { fprintf(stderr, "lfm2-inspect: unknown or incomplete option '%s'\n", argv[i]); return usage(); }
    }
    if (parse_calls) return parse_tool_calls();
    memset(&mp, 0, sizeof mp);
    mp.weights = weights;
    if (chat_path) return chat_render(dir, chat_path, tpl_name, ids_out, &mp);
    if (!dir) return usage();
    if ((ids_arg != NULL) != (logits_path != NULL)) { fprintf(stderr, "lfm2-inspect: --ids and --logits go together\n"); return 2; }
    memset(&mp, 0, sizeof mp);
    mp.error = &err;
    mp.weights = weights;
    if (lfm2_model_load_dir(dir, &mp, &m) != LFM2_OK) { fprintf(stderr, "lfm2-inspect: %s\n", err.message); return 1; }
    if (digest) {
        rc = print_digests(m);
        lfm2_model_free(m);
        return rc;
    }
    if (tokenize) {
        size_t n;
        char *text = read_stdin(&n);
        int flags = (special ? LFM2_TOKENIZE_PARSE_SPECIAL : 0) | (bos ? LFM2_TOKENIZE_ADD_BOS : 0);
        int32_t cap = lfm2_tokenize_bound(m, n, flags), got = 0, k;
        lfm2_token *ids = (cap > 0) ? (lfm2_token *)malloc(sizeof(lfm2_token) * (size_t)cap) : NULL;
        lfm2_result r = (text && ids) ? lfm2_tokenize(m, text, n, flags, ids, cap, &got) : LFM2_ERR_OUT_OF_MEMORY;
        if (r != LFM2_OK) { fprintf(stderr, "lfm2-inspect: tokenize: %s\n", lfm2_result_string(r)); rc = 1; }
        else {
            for (k = 0; k < got; k++) printf(k ? " %d" : "%d", ids[k]);
            printf("\n");
        }
        free(ids);
        free(text);
    } else if (detokenize) {
        size_t n, need = 0;
        char *text = read_stdin(&n), *out;
        lfm2_token *ids = NULL;
        int32_t cnt;
        if (!text) { fprintf(stderr, "lfm2-inspect: out of memory\n"); lfm2_model_free(m); return 1; }
        text[n] = 0; /* read_stdin leaves room: len < cap */
        cnt = parse_ids(text, &ids);
        if (cnt < 0) { fprintf(stderr, "lfm2-inspect: --detokenize: stdin must hold non-negative integer ids\n"); rc = 1; }
        else {
            lfm2_result r = lfm2_detokenize(m, ids, cnt, 0, NULL, 0, &need);
            if (r != LFM2_OK && r != LFM2_ERR_BUFFER_TOO_SMALL) { fprintf(stderr, "lfm2-inspect: detokenize: %s\n", lfm2_result_string(r)); rc = 1; }
            else {
                out = (char *)malloc(need + 1);
                if (out && lfm2_detokenize(m, ids, cnt, 0, out, need + 1, &need) == LFM2_OK) fwrite(out, 1, need, stdout);
                else rc = 1;
                free(out);
            }
        }
        free(ids);
        free(text);
    } else if (ids_arg) {
        lfm2_token *ids = NULL;
        int32_t cnt = parse_ids(ids_arg, &ids), V = lfm2_model_config(m)->vocab_size;
        lfm2_context *c = NULL;
        lfm2_context_params cp;
        float *logits = NULL;
        FILE *f;
        memset(&cp, 0, sizeof cp);
        cp.error = &err;
        cp.n_threads = threads;
        if (cnt < 1) { fprintf(stderr, "lfm2-inspect: --ids needs a comma-separated list of token ids\n"); lfm2_model_free(m); free(ids); return 2; }
        cp.n_ctx = cnt;
        if (lfm2_context_create(m, &cp, &c) != LFM2_OK) { fprintf(stderr, "lfm2-inspect: %s\n", err.message); rc = 1; }
        else if (!(logits = (float *)malloc(sizeof(float) * (size_t)cnt * (size_t)V))) { fprintf(stderr, "lfm2-inspect: out of memory\n"); rc = 1; }
        else if (lfm2_context_decode_all(c, ids, cnt, logits) != LFM2_OK) { fprintf(stderr, "lfm2-inspect: %s\n", lfm2_context_error(c)); rc = 1; }
        else if (!(f = fopen(logits_path, "wb"))) { fprintf(stderr, "lfm2-inspect: cannot write %s\n", logits_path); rc = 1; }
        else {
            size_t k, n = (size_t)cnt * (size_t)V;
            for (k = 0; k < n; k++) { /* little-endian float32 whatever the host */
                unsigned char b[4];
                uint32_t u;
                memcpy(&u, &logits[k], 4);
                b[0] = (unsigned char)u; b[1] = (unsigned char)(u >> 8); b[2] = (unsigned char)(u >> 16); b[3] = (unsigned char)(u >> 24);
                fwrite(b, 1, 4, f);
            }
            if (fclose(f) != 0) { fprintf(stderr, "lfm2-inspect: write error on %s\n", logits_path); rc = 1; }
            else fprintf(stderr, "wrote %d x %d float32 logits to %s\n", cnt, V, logits_path);
        }
        free(logits);
        free(ids);
        lfm2_context_free(c);
    } else {
        print_config(dir, m);
    }
    lfm2_model_free(m);
    return rc;
}
