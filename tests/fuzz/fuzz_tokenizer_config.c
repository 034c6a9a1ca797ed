/* fuzz target: tokenizer_config.json -> the tokenizer loader (see fuzz_tokenizer_json.c) */
#define FUZZ_TOKENIZER_CONFIG 1
#include "fuzz_tokenizer_json.c"
