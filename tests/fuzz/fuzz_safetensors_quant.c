/* fuzz target: quantized weights. Input: byte 0 = lfm2_model_params.weights (% 3: as stored,
   Q8, Q4 quantized at load) and the config ((byte 0 / 3) % 2: 0 = micro32, hidden size and FFN
   width 32, one quantization block; 1 = micro64, width 64, the interleaved records' width), then
   one safetensors file, so that pre-quantized tensors (I8 / U8 + NAME_scale F16, and the
   interleaved U8 [r/16, c/64, 1088|576] records with their __metadata__ layout) and load-time
   quantization of arbitrary (NaN, inf, denormal) weights are reached. A model that loads is
   exercised (tensor info, decode). */
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
    uint8_t *copy;
    if (size < 1) return 0;
    /* an exact-size copy at an 8-aligned address (malloc), as a mapped file would be */
    copy = (uint8_t *)malloc(size - 1 ? size - 1 : 1);
    memcpy(copy, data + 1, size - 1);
    if ((data[0] / 3) % 2) rc = t_load_one(fuzz_micro64_config, sizeof fuzz_micro64_config - 1, copy, size - 1, data[0] % 3, &e, &m);
    else rc = t_load_one(fuzz_micro32_config, sizeof fuzz_micro32_config - 1, copy, size - 1, data[0] % 3, &e, &m);
    FUZZ_LOG(rc, e.message);
    if (rc == LFM2_OK) {
        FUZZ_ASSERT(m != NULL);
        fuzz_exercise_model(m);
        lfm2_model_free(m);
    } else {
        FUZZ_ASSERT(m == NULL && e.code == rc && e.message[0] != 0);
    }
    free(copy);
    return 0;
}
