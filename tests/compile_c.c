/* compile matrix: the implementation in a C translation unit (C99 -pedantic, with and without
   OpenMP / SIMD / stdio) */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
int lfm2_compile_check_c(void);
int lfm2_compile_check_c(void) { return lfm2_version_string()[0] == '0'; }
