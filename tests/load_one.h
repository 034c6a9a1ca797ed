/* tests/load_one.h - one safetensors buffer and a config.json loaded from memory, shared by the
   unit tests (tests/test.h) and the fuzz harnesses (tests/fuzz/fuzz_micro.h). Include lfm2.h first. */
#ifndef LFM2_TEST_LOAD_ONE_H
#define LFM2_TEST_LOAD_ONE_H
#include <string.h>
/* lfm2_model_load_memory with default params but `weights`, the message in *e; *m = the model or NULL */
LFM2__MAYBE_UNUSED static lfm2_result t_load_one(const char *cfg, size_t cfg_n, const void *st, size_t st_n, int32_t weights,
                                                 lfm2_error *e, lfm2_model **m) {
    lfm2_model_sources s;
    lfm2_buffer b;
    lfm2_model_params p;
    memset(&s, 0, sizeof s);
    memset(&p, 0, sizeof p);
    memset(e, 0, sizeof *e);
    b.data = st;
    b.size = st_n;
    b.name = "model.safetensors";
    s.config_json = cfg;
    s.config_json_size = cfg_n;
    s.safetensors = &b;
    s.n_safetensors = 1;
    p.error = e;
    p.weights = weights;
    *m = NULL;
    return lfm2_model_load_memory(&s, &p, m);
}
#endif
