/* compile matrix: two translation units, the implementation in this one */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
