/* compile matrix: LFM2_STATIC (every API function static in this translation unit) */
#define LFM2_STATIC
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include <stdio.h>
int main(void) {
    lfm2_model *m = NULL;
    lfm2_error e;
    lfm2_model_params p = {0};
    p.error = &e;
    if (lfm2_model_load_dir("tests/data/tiny-bf16", &p, &m) != LFM2_OK) { printf("static: %s\n", e.message); return 1; }
    printf("LFM2_STATIC build: loaded tiny-bf16 (%d layers)\n", lfm2_model_config(m)->num_hidden_layers);
    lfm2_model_free(m);
    return 0;
}
