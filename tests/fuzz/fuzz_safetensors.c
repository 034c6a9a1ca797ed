/* fuzz target: one safetensors file (header and data) -> lfm2_model_load_memory with the fixed
   micro config (fuzz_micro.h). A load that succeeds is exercised (tensor info, decode). */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"
#include "fuzz_micro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lfm2_error e;
    lfm2_model *m = NULL;
    lfm2_result rc;
    rc = t_load_one(fuzz_micro_config, sizeof fuzz_micro_config - 1, data, size, LFM2_WEIGHTS_AS_STORED, &e, &m);
    FUZZ_LOG(rc, e.message);
    if (rc == LFM2_OK) {
        FUZZ_ASSERT(m != NULL);
        fuzz_exercise_model(m);
        lfm2_model_free(m);
    } else {
        FUZZ_ASSERT(m == NULL && e.code == rc && e.message[0] != 0);
    }
    /* the raw parser on its own, as the tests use it (reference tensors) */
    {
        lfm2__stfile f;
        if (lfm2__st_parse(data, size, "raw", 0, NULL, &e, &f) == LFM2_OK) {
            int32_t i;
            for (i = 0; i < f.n; i++) {
                const lfm2__tensor *t = &f.t[i];
                FUZZ_ASSERT(t->data >= data && t->nbytes <= size && (size_t)(t->data - data) <= size - t->nbytes);
                FUZZ_ASSERT(lfm2__st_find(&f, t->name) != NULL);
            }
            lfm2__st_free(&f, NULL);
        }
    }
    return 0;
}
