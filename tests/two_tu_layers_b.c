/* compile matrix: the caller's translation unit of tests/two_tu_layers_a.c, built with another
   LFM2_MAX_LAYERS than the implementation. It parses configs into its own lfm2_config (on the
   stack, where ASan sees any write past it) and loads a model. */
#include "../lfm2.h"
#include <stdio.h>
#include <string.h>
size_t two_tu_impl_config_size(void);
int two_tu_impl_max_layers(void);
static int parse_layers(int n, lfm2_config *c, lfm2_error *e) {
    char json[512];
    snprintf(json, sizeof json, "{\"vocab_size\":512,\"hidden_size\":64,\"num_hidden_layers\":%d,\"num_attention_heads\":4,"
             "\"num_key_value_heads\":2,\"intermediate_size\":256}", n);
    return lfm2_config_parse(json, strlen(json), c, e) == LFM2_OK;
}
int main(void) {
    lfm2_config c;
    lfm2_error e;
    lfm2_model *m = NULL;
    int cap = two_tu_impl_max_layers();
    if (sizeof c != two_tu_impl_config_size()) {
        printf("two TUs, LFM2_MAX_LAYERS %d and %d: sizeof(lfm2_config) %zu vs %zu\n", LFM2_MAX_LAYERS, cap, sizeof c, two_tu_impl_config_size());
        return 1;
    }
    if (!parse_layers(cap, &c, &e) || c.num_hidden_layers != cap) { printf("a config of %d layers refused: %s\n", cap, e.message); return 1; }
    if (parse_layers(cap + 1, &c, &e)) { printf("a config of %d layers accepted by an implementation capped at %d\n", cap + 1, cap); return 1; }
    if (lfm2_model_load_dir("tests/data/tiny-bf16", NULL, &m) != LFM2_OK || lfm2_model_config(m)->num_hidden_layers != 6) return 1;
    printf("two translation units with LFM2_MAX_LAYERS %d (implementation) and %d: one lfm2_config layout (%zu bytes); "
           "%d layers accepted, %d refused (%s)\n", cap, LFM2_MAX_LAYERS, sizeof c, cap, cap + 1, e.message);
    lfm2_model_free(m);
    return 0;
}
