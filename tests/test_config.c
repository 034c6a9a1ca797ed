/* tests/test_config.c - config.json: the released and transformers-5 key styles, the derived
   values (FFN width, layer kinds, head size), parameter counts, malformed configs. */

static void test_config_real(void) {
    static const struct { const char *file; int32_t F, D, H, Hkv; uint64_t params; } cases[] = {
        {"reference/lfm2-350m/config.json", 4608, 1024, 16, 8, 354483968ULL},
        {"reference/lfm2-700m/config.RECONSTRUCTED.json", 6912, 1536, 24, 8, 742489344ULL},
        {"reference/lfm2-1.2b/config.json", 8192, 2048, 32, 8, 1170340608ULL},
    };
    static const int attn[6] = {2, 5, 8, 10, 12, 14};
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        size_t n;
        char *txt;
        lfm2_config c;
        lfm2_error e;
        int k, attn_ok = 1;
        snprintf(path, sizeof path, "%s/%s", t_data_dir(), cases[i].file);
        txt = t_read_file(path, &n);
        CHECK(txt != NULL, "cannot read %s", path);
        if (!txt) continue;
        CHECK(lfm2_config_parse(txt, n, &c, &e) == LFM2_OK, "%s: %s", cases[i].file, e.message);
        CHECK(c.ff_dim == cases[i].F, "%s: ff_dim %d, expected %d", cases[i].file, c.ff_dim, cases[i].F);
        CHECK(c.hidden_size == cases[i].D && c.num_attention_heads == cases[i].H && c.num_key_value_heads == cases[i].Hkv && c.head_dim == 64,
              "%s: dims", cases[i].file);
        CHECK(c.n_eos >= 1 && c.eos_token_ids[0] == 7, "%s: eos %d", cases[i].file, c.eos_token_ids[0]);
        CHECK(c.rope_theta == 1e6 && c.norm_eps == (float)1e-5f && /* (the cast: x87 evaluates a float constant in long double) */ c.conv_L_cache == 3 && c.tie_word_embeddings, "%s: theta/eps/L/tie", cases[i].file);
        for (k = 0; k < 16; k++) {
            int want = (k == 2 || k == 5 || k == 8 || k == 10 || k == 12 || k == 14);
            if (c.layer_is_attention[k] != want) attn_ok = 0;
        }
        (void)attn;
        CHECK(attn_ok && c.n_attention_layers == 6 && c.num_hidden_layers == 16, "%s: attention layers", cases[i].file);
        CHECK(lfm2_config_param_count(&c) == cases[i].params, "%s: %llu parameters, expected %llu", cases[i].file,
              (unsigned long long)lfm2_config_param_count(&c), (unsigned long long)cases[i].params);
        NOTE("%s: F=%d, attention layers 2,5,8,10,12,14, eos 7, %llu parameters", cases[i].file, c.ff_dim, (unsigned long long)lfm2_config_param_count(&c));
        free(txt);
    }
}

/* the two key styles of tiny-bf16 resolve to the same model */
static void test_config_styles(void) {
    char p1[512], p2[512];
    char *a, *b;
    size_t na, nb;
    lfm2_config ca, cb;
    snprintf(p1, sizeof p1, "%s/tiny-bf16/config.json", t_data_dir());
    snprintf(p2, sizeof p2, "%s/tiny-bf16-released-style/config.json", t_data_dir());
    a = t_read_file(p1, &na);
    b = t_read_file(p2, &nb);
    CHECK(a && b, "cannot read the configs");
    if (!a || !b) { free(a); free(b); return; }
    CHECK(lfm2_config_parse(a, na, &ca, NULL) == LFM2_OK && lfm2_config_parse(b, nb, &cb, NULL) == LFM2_OK, "parse");
    CHECK(memcmp(&ca, &cb, sizeof ca) == 0, "transformers-5 style and released style differ");
    CHECK(ca.ff_dim == 192, "ff_dim %d, expected 192 (256 -> int(2*256/3)=170 -> multiple of 32)", ca.ff_dim);
    NOTE("both styles: F=%d, attention layers %d, theta %g", ca.ff_dim, ca.n_attention_layers, ca.rope_theta);
    free(a);
    free(b);
}

/* every rule of config resolution, on small texts */
static void test_config_rules(void) {
    lfm2_config c;
    lfm2_error e;
    const char *base = "{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":2,";
    char buf[1024];
    /* all-attention fallback */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK, "%s", e.message);
    CHECK(c.n_attention_layers == 3 && c.n_conv_layers == 0, "no layer_types/full_attn_idxs must mean all attention");
    CHECK(c.ff_dim == 256, "default multiple_of 256: 256 -> 170 -> 256, got %d", c.ff_dim);
    /* null multiplier: no rounding (HF) */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":8192,\"block_ffn_dim_multiplier\":null}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 5461, "null multiplier: F %d, expected 5461", c.ff_dim);
    /* auto-adjust off */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":10752,\"block_auto_adjust_ff_dim\":false}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 10752, "auto-adjust off: F %d", c.ff_dim);
    /* block_ff_dim overrides intermediate_size */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":8192,\"block_ff_dim\":12288}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.ff_dim == 8192, "block_ff_dim override: F %d", c.ff_dim);
    /* theta aliases */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"theta\":5000}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.rope_theta == 5000, "theta alias: %g", c.rope_theta);
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"rope_parameters\":{\"rope_theta\":20000.0,\"rope_type\":\"default\"}}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.rope_theta == 20000, "rope_parameters: %g", c.rope_theta);
    /* tie_embedding takes precedence */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"tie_word_embeddings\":true,\"tie_embedding\":false}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.tie_word_embeddings == 0, "tie_embedding precedence");
    /* eos list */
    snprintf(buf, sizeof buf, "%s\"intermediate_size\":256,\"eos_token_id\":[7,2]}", base);
    CHECK(lfm2_config_parse(buf, strlen(buf), &c, &e) == LFM2_OK && c.n_eos == 2 && c.eos_token_ids[1] == 2, "eos list");
}

/* malformed configs: each a specific error naming the key */
static void test_config_errors(void) {
    static const struct { const char *json; lfm2_result rc; const char *needle; } cases[] = {
        {"", LFM2_ERR_BAD_CONFIG, "empty"},
        {"{\"vocab_size\":100", LFM2_ERR_BAD_CONFIG, "byte"},
        {"[1,2]", LFM2_ERR_BAD_CONFIG, "object"},
        {"{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "vocab_size"},
        {"{\"vocab_size\":\"100\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "vocab_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64.5,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "hidden_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":100000,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "num_hidden_layers"},
        {"{\"vocab_size\":100,\"hidden_size\":1e300,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "hidden_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":3,\"intermediate_size\":64}", LFM2_ERR_BAD_CONFIG, "num_key_value_heads"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2}", LFM2_ERR_BAD_CONFIG, "intermediate_size"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"layer_types\":[\"conv\",\"sliding_attention\"]}", LFM2_ERR_UNSUPPORTED, "sliding_attention"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"layer_types\":[\"conv\"]}", LFM2_ERR_BAD_CONFIG, "layer_types"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"full_attn_idxs\":[5]}", LFM2_ERR_BAD_CONFIG, "full_attn_idxs"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"norm_eps\":-1}", LFM2_ERR_BAD_CONFIG, "norm_eps"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_theta\":NaN}", LFM2_ERR_BAD_CONFIG, "byte"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_theta\":1e999}", LFM2_ERR_BAD_CONFIG, "rope_theta"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"conv_bias\":\"yes\"}", LFM2_ERR_BAD_CONFIG, "conv_bias"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"model_type\":\"llama\"}", LFM2_ERR_UNSUPPORTED, "llama"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"rope_parameters\":{\"rope_type\":\"yarn\"}}", LFM2_ERR_UNSUPPORTED, "yarn"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"block_dim\":32}", LFM2_ERR_BAD_CONFIG, "block_dim"},
        {"{\"vocab_size\":100,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":64,\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", LFM2_ERR_BAD_CONFIG, "deep"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lfm2_config c;
        lfm2_error e;
        lfm2_result rc;
        memset(&e, 0, sizeof e);
        rc = lfm2_config_parse(cases[i].json, strlen(cases[i].json), &c, &e);
        CHECK(rc == cases[i].rc, "case %d: got %s, expected %s (%s)", (int)i, lfm2_result_string(rc), lfm2_result_string(cases[i].rc), e.message);
        CHECK(strstr(e.message, cases[i].needle) != NULL, "case %d: message \"%s\" does not name \"%s\"", (int)i, e.message, cases[i].needle);
        NOTE("config case %2d -> %s: %s", (int)i, lfm2_result_string(rc), e.message);
    }
}

/* ---- more end-of-sequence ids than lfm2_config holds are refused, never cut (issue 11 item 12) */
static char *tc_eos_list(char *buf, size_t cap, const char *pre, int first, int n, const char *post) {
    size_t o = (size_t)snprintf(buf, cap, "%s[", pre);
    int k;
    for (k = 0; k < n && o + 16 < cap; k++) o += (size_t)snprintf(buf + o, cap - o, "%s%d", k ? "," : "", first + k);
    snprintf(buf + o, cap - o, "]%s", post);
    return buf;
}
static void test_config_eos_ids(void) {
    static const char *base = "{\"vocab_size\":512,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                              "\"num_key_value_heads\":2,\"intermediate_size\":256,\"eos_token_id\":";
    char buf[2048], gen[1024];
    lfm2_config c;
    lfm2_error e;
    lfm2_result rc;
    int k, all;
    /* config.json: 12 ids all kept; LFM2_CONFIG_EOS (32) distinct ids with repeats fine; 33 refused */
    memset(&e, 0, sizeof e);
    tc_eos_list(buf, sizeof buf, base, 100, 12, "}");
    rc = lfm2_config_parse(buf, strlen(buf), &c, &e);
    for (all = rc == LFM2_OK && c.n_eos == 12, k = 0; all && k < 12; k++) all = c.eos_token_ids[k] == 100 + k;
    CHECK(all, "12 eos ids: %s, n_eos %d", lfm2_result_string(rc), c.n_eos);
    tc_eos_list(buf, sizeof buf, base, 100, LFM2_CONFIG_EOS, "");
    buf[strlen(buf) - 1] = 0;         /* drop the ']' */
    strcat(buf, ",100,101,131]}");    /* repeats do not count */
    rc = lfm2_config_parse(buf, strlen(buf), &c, &e);
    CHECK(rc == LFM2_OK && c.n_eos == LFM2_CONFIG_EOS && c.eos_token_ids[LFM2_CONFIG_EOS - 1] == 100 + LFM2_CONFIG_EOS - 1,
          "%d distinct ids with repeats: %s, n_eos %d (%s)", LFM2_CONFIG_EOS, lfm2_result_string(rc), c.n_eos, e.message);
    tc_eos_list(buf, sizeof buf, base, 100, LFM2_CONFIG_EOS + 1, "}");
    rc = lfm2_config_parse(buf, strlen(buf), &c, &e);
    CHECK(rc == LFM2_ERR_BAD_CONFIG && strstr(e.message, "eos_token_id"), "%d eos ids: %s (%s)", LFM2_CONFIG_EOS + 1, lfm2_result_string(rc), e.message);
    NOTE("TABLE\tconfig.json eos_token_id with %d distinct ids\t%s\t%s", LFM2_CONFIG_EOS + 1, lfm2_result_string(rc), e.message);
    /* generation_config.json adds to config.json's (tiny-bf16: eos 2): 31 more fit, 32 more do not */
    {
        for (k = 0; k < 2; k++) {
            lfm2_model *m = NULL;
            tc_eos_list(gen, sizeof gen, "{\"eos_token_id\":", 300, LFM2_CONFIG_EOS - 1 + k, "}");
            rc = t_load_tiny_gen(gen, &m, &e);
            if (k == 0) {
                CHECK(rc == LFM2_OK && lfm2_model_config(m)->n_eos == LFM2_CONFIG_EOS && lfm2_token_is_eog(m, 2) &&
                      lfm2_token_is_eog(m, 300 + LFM2_CONFIG_EOS - 2) && !lfm2_token_is_eog(m, 300 + LFM2_CONFIG_EOS - 1),
                      "config.json 1 + generation_config.json %d eos ids: %s (%s)", LFM2_CONFIG_EOS - 1, lfm2_result_string(rc), e.message);
            } else {
                CHECK(rc == LFM2_ERR_BAD_CONFIG && m == NULL && strstr(e.message, "generation_config.json"),
                      "config.json 1 + generation_config.json %d eos ids: %s (%s)", LFM2_CONFIG_EOS, lfm2_result_string(rc), e.message);
                NOTE("TABLE\tgeneration_config.json eos_token_id adding %d ids to config.json's 1\t%s\t%s", LFM2_CONFIG_EOS, lfm2_result_string(rc), e.message);
            }
            lfm2_model_free(m);
        }
    }
}

/* ---- forward pass against the goldens ----------------------------------------------------- */


static const t_case config_tests[] = {
    {"config/real", test_config_real, 0},
    {"config/styles", test_config_styles, 0},
    {"config/rules", test_config_rules, 0},
    {"config/errors", test_config_errors, 0},
    {"config/eos-ids", test_config_eos_ids, 0},
    {NULL, NULL, 0}
};
