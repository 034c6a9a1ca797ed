/* compile matrix: two translation units built with different LFM2_MAX_LAYERS (Makefile: this one
   with -DLFM2_MAX_LAYERS=8 and the implementation, tests/two_tu_layers_b.c with 2), run under
   ASan. The public structs must not depend on the macro: only the implementation's cap counts. */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
size_t two_tu_impl_config_size(void) { return sizeof(lfm2_config); }
int two_tu_impl_max_layers(void) { return LFM2_MAX_LAYERS; }
