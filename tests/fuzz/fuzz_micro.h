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

/* After a successful load: exercise the model a little (tensor info, a context, a few decodes),
   so that weights that parse but are strange (NaN, inf, denormals) run through the kernels. */
static void fuzz_exercise_model(lfm2_model *m) {
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
#endif
