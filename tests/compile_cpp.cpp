// compile matrix: the implementation in a C++ translation unit (C++11 / C++17)
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
int lfm2_compile_check_cpp();
int lfm2_compile_check_cpp() { return lfm2_version_string()[0] == '0'; }
