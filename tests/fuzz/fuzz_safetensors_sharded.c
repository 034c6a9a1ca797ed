/* fuzz target: two safetensors shards -> lfm2_model_load_memory with the fixed micro config.
   Input: u32 little-endian length of shard 1 (clamped to what is there), shard 1, shard 2.
   Also tries the shards in the other order (shards may come in any order). */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"
#include "fuzz_micro.h"

static lfm2_result fuzz_load2(const lfm2_buffer *b, lfm2_model **m, lfm2_error *e) {
    lfm2_model_sources s;
    lfm2_model_params p;
    memset(&s, 0, sizeof s);
    memset(&p, 0, sizeof p);
    s.config_json = fuzz_micro_config;
    s.config_json_size = sizeof fuzz_micro_config - 1;
    s.safetensors = b;
    s.n_safetensors = 2;
    p.error = e;
    return lfm2_model_load_memory(&s, &p, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lfm2_buffer b[2], r[2];
    lfm2_error e;
    lfm2_model *m = NULL, *m2 = NULL;
    lfm2_result rc, rc2;
    uint8_t *s1, *s2;
    size_t n1, n2;
    if (size < 4) return 0;
    n1 = (size_t)data[0] | ((size_t)data[1] << 8) | ((size_t)data[2] << 16) | ((size_t)data[3] << 24);
    if (n1 > size - 4) n1 = size - 4;
    n2 = size - 4 - n1;
    /* separate exact-size copies so that ASan catches a read past either shard */
    s1 = (uint8_t *)malloc(n1 ? n1 : 1);
    s2 = (uint8_t *)malloc(n2 ? n2 : 1);
    memcpy(s1, data + 4, n1);
    memcpy(s2, data + 4 + n1, n2);
    b[0].data = s1; b[0].size = n1; b[0].name = "model-00001-of-00002.safetensors";
    b[1].data = s2; b[1].size = n2; b[1].name = "model-00002-of-00002.safetensors";
    r[0] = b[1];
    r[1] = b[0];
    memset(&e, 0, sizeof e);
    rc = fuzz_load2(b, &m, &e);
    FUZZ_LOG(rc, e.message);
    if (rc != LFM2_OK) FUZZ_ASSERT(m == NULL && e.code == rc && e.message[0] != 0);
    rc2 = fuzz_load2(r, &m2, &e);
    /* the order of the shards does not change success (the message may differ) */
    FUZZ_ASSERT((rc == LFM2_OK) == (rc2 == LFM2_OK));
    if (rc == LFM2_OK) {
        fuzz_exercise_model(m);
        lfm2_model_free(m);
        lfm2_model_free(m2);
    }
    free(s1);
    free(s2);
    return 0;
}
