/* compile matrix: two translation units; this one only includes the declarations (twice) */
#include "../lfm2.h"
#include "../lfm2.h"
#include <stdio.h>
int main(void) {
    lfm2_model *m = NULL;
    lfm2_context *c = NULL;
    const float *logits;
    lfm2_token ids[3] = {1, 2, 3};
    if (lfm2_model_load_dir("tests/data/tiny-bf16", NULL, &m) != LFM2_OK) return 1;
    if (lfm2_context_create(m, NULL, &c) != LFM2_OK) return 1;
    if (lfm2_context_decode(c, ids, 3, &logits) != LFM2_OK) return 1;
    printf("two translation units: ok, argmax %d\n", (int)lfm2_argmax(logits, lfm2_model_config(m)->vocab_size));
    lfm2_context_free(c);
    lfm2_model_free(m);
    return 0;
}
