/* fuzz target: config.json -> lfm2_config_parse (+ generation_config.json reader, param count);
   the same text as generation_config.json's sampling recipe
   (lfm2_sampler_params_from_generation_config).
   Invariants on success: every derived value is inside the documented caps; a recipe that is
   read makes a sampler, one that is refused says why. */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lfm2_config c;
    lfm2_error e;
    lfm2_result rc;
    memset(&e, 0, sizeof e);
    rc = lfm2_config_parse((const char *)data, size, &c, &e);
    FUZZ_LOG(rc, e.message);
    if (rc == LFM2_OK) {
        int32_t k, na = 0;
        FUZZ_ASSERT(c.vocab_size >= 1 && c.vocab_size <= LFM2_MAX_VOCAB);
        FUZZ_ASSERT(c.hidden_size >= 1 && c.hidden_size <= LFM2_MAX_DIM);
        FUZZ_ASSERT(c.num_hidden_layers >= 1 && c.num_hidden_layers <= LFM2_MAX_LAYERS);
        FUZZ_ASSERT(c.num_attention_heads >= 1 && c.num_key_value_heads >= 1);
        FUZZ_ASSERT(c.num_attention_heads % c.num_key_value_heads == 0);
        FUZZ_ASSERT(c.head_dim >= 2 && c.head_dim % 2 == 0);
        FUZZ_ASSERT((int64_t)c.head_dim * c.num_attention_heads <= LFM2_MAX_DIM);
        FUZZ_ASSERT(c.ff_dim >= 1 && c.ff_dim <= LFM2_MAX_DIM);
        FUZZ_ASSERT(c.conv_L_cache >= 1 && c.conv_L_cache <= 64);
        FUZZ_ASSERT(c.norm_eps > 0 && c.rope_theta >= 1.0 && c.rope_theta <= 1e12);
        FUZZ_ASSERT(c.n_eos >= 0 && c.n_eos <= 8);
        for (k = 0; k < c.num_hidden_layers; k++) na += c.layer_is_attention[k] ? 1 : 0;
        FUZZ_ASSERT(na == c.n_attention_layers && c.n_conv_layers == c.num_hidden_layers - na);
        (void)lfm2_config_param_count(&c);
        /* the same text as generation_config.json */
        (void)lfm2__read_generation_config(&c, (const char *)data, size, NULL, &e);
        FUZZ_ASSERT(c.n_eos <= 8);
    } else {
        FUZZ_ASSERT(e.code == rc && memchr(e.message, 0, sizeof e.message) != NULL && e.message[0] != 0);
    }
    {
        lfm2_sampler_params sp;
        lfm2_sampler *s = NULL;
        int found = -1;
        memset(&e, 0, sizeof e);
        rc = lfm2_sampler_params_from_generation_config((const char *)data, size, &sp, &found, &e);
        if (rc == LFM2_OK) {
            FUZZ_ASSERT(found == 0 || found == 1);
            FUZZ_ASSERT(lfm2_sampler_create(&sp, 16, NULL, &s) == LFM2_OK);
            lfm2_sampler_free(s);
        } else FUZZ_ASSERT(rc == LFM2_ERR_BAD_CONFIG && found == 0 && e.message[0] != 0);
    }
    return 0;
}
