/* tests/fuzz/fuzz_micro.h - the fixed config.json of the safetensors targets: a 2-layer LFM2
   (one conv layer with biases, one attention layer), vocab 16, hidden 8, FFN 16. The seeds in
   corpus/safetensors* are its weights (tests/fuzz/make_seeds.py; keep micro_config.json equal). */
#ifndef LFM2_FUZZ_MICRO_H
#define LFM2_FUZZ_MICRO_H
static const char fuzz_micro_config[] =
    "{\"model_type\":\"lfm2\",\"vocab_size\":16,\"hidden_size\":8,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"intermediate_size\":16,\"block_auto_adjust_ff_dim\":false,\"conv_L_cache\":3,\"conv_bias\":true,"
    "\"layer_types\":[\"conv\",\"full_attention\"],\"tie_word_embeddings\":true,\"max_position_embeddings\":64,\"norm_eps\":1e-5,"
    "\"rope_theta\":10000.0,\"bos_token_id\":1,\"eos_token_id\":2}";

/* the micro32 config of fuzz_safetensors_quant and fuzz_decode: hidden size and FFN width 32 (one
   quantization block, two AVX-512 vectors), vocab 32 */
static const char fuzz_micro32_config[] =
    "{\"model_type\":\"lfm2\",\"vocab_size\":32,\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"intermediate_size\":32,\"block_auto_adjust_ff_dim\":false,\"conv_L_cache\":3,\"conv_bias\":true,"
    "\"layer_types\":[\"conv\",\"full_attention\"],\"tie_word_embeddings\":true,\"max_position_embeddings\":64,\"norm_eps\":1e-5,"
    "\"rope_theta\":10000.0,\"bos_token_id\":1,\"eos_token_id\":2}";

/* the micro64 config of fuzz_safetensors_quant (byte 0 >= 3): hidden size and FFN width 64, so
   that every matrix can be stored in the interleaved layout (16 rows x 64 columns records) */
static const char fuzz_micro64_config[] =
    "{\"model_type\":\"lfm2\",\"vocab_size\":32,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"intermediate_size\":64,\"block_auto_adjust_ff_dim\":false,\"conv_L_cache\":3,\"conv_bias\":true,"
    "\"layer_types\":[\"conv\",\"full_attention\"],\"tie_word_embeddings\":true,\"max_position_embeddings\":64,\"norm_eps\":1e-5,"
    "\"rope_theta\":10000.0,\"bos_token_id\":1,\"eos_token_id\":2}";

/* After a successful load: exercise the model a little (tensor info, a context, a few decodes),
   so that weights that parse but are strange (NaN, inf, denormals) run through the kernels. */
LFM2__MAYBE_UNUSED static void fuzz_exercise_model(lfm2_model *m) {
    lfm2_context_params cp;
    lfm2_context *c = NULL;
    lfm2_token ids[5] = {0, 1, 15, 7, 3};
    const float *lg = NULL;
    int32_t i, n = lfm2_model_tensor_count(m);
    for (i = 0; i < n; i++) {
        lfm2_tensor_info ti;
        FUZZ_ASSERT(lfm2_model_tensor_info(m, i, &ti) == LFM2_OK);
        FUZZ_ASSERT(ti.name && ti.dtype && ti.file);
    }
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = 8;
    cp.n_batch = 2;
    cp.n_threads = 1;
    FUZZ_ASSERT(lfm2_context_create(m, &cp, &c) == LFM2_OK);
    FUZZ_ASSERT(lfm2_context_decode(c, ids, 5, &lg) == LFM2_OK && lg != NULL);
    (void)lfm2_argmax(lg, lfm2_model_config(m)->vocab_size);
    FUZZ_ASSERT(lfm2_context_decode(c, ids, 1, &lg) == LFM2_OK);
    lfm2_context_free(c);
}

#include "../load_one.h" /* t_load_one: one safetensors file + a config.json from memory */

/* the micro32 model (bf16 seed of corpus/safetensors_quant, byte 0 skipped), loaded from memory
   once; the buffer stays alive for the process (exits on failure) */
LFM2__MAYBE_UNUSED static lfm2_model *fuzz_load_micro32(void) {
    static char *data;
    char *buf;
    size_t n = 0;
    lfm2_error e;
    lfm2_model *m = NULL;
    buf = fuzz_read("tests/fuzz/corpus/safetensors_quant/micro32-bf16-w0", &n);
    if (!buf || n < 2) { fprintf(stderr, "fuzz: cannot read the micro32 seed\n"); exit(2); }
    data = (char *)malloc(n - 1); /* malloc'd: aligned like a mapped file */
    if (!data) exit(2);
    memcpy(data, buf + 1, n - 1);
    free(buf);
    if (t_load_one(fuzz_micro32_config, sizeof fuzz_micro32_config - 1, data, n - 1, LFM2_WEIGHTS_AS_STORED, &e, &m) != LFM2_OK) {
        fprintf(stderr, "fuzz: micro32: %s\n", e.message);
        exit(2);
    }
    return m;
}
#endif
