/* lfm2.h - v0.1.0 - Liquid AI LFM2 inference in one C header - MIT license (see end of file)

   Runs LFM2 language models (LFM2-350M / 700M / 1.2B / 2.6B, LFM2.5 dense) straight from a
   Hugging Face model folder (config.json, model*.safetensors, tokenizer.json), on the CPU, with
   no dependencies beyond libc and libm (threads: pthreads / Win32, or OpenMP).

   DO THIS in exactly one C or C++ file:

       #define LFM2_IMPLEMENTATION
       #include "lfm2.h"

   and plain `#include "lfm2.h"` everywhere else. Build with

       cc -O2 app.c -lm -lpthread          (or with -fopenmp to use OpenMP's threads)

   No -march flag is needed: on x86-64 the kernels of every instruction set the compiler can
   target (AVX2+FMA+F16C, AVX-512, VNNI, AVX512_BF16) are compiled in, each with its own target
   attribute, and the best one this CPU runs is chosen at load (lfm2_build_info() names what is
   compiled in and what the CPU has, lfm2_model_isa() what a model runs; LFM2_ISA=AVX2 in the
   environment or lfm2_model_params.max_isa caps it). On aarch64 NEON is the baseline; with GCC
   11+ its dot-product and bf16 kernels are compiled in with target attributes and chosen from the
   hardware capabilities (with Clang they need -march=armv8.2-a+dotprod / armv8.6-a+bf16). armv7
   gets NEON kernels with -mfpu=neon(-vfpv4), WebAssembly SIMD128 ones with -msimd128. Threads come
   from a built-in pool (pthreads, Win32 threads), from OpenMP when compiled with -fopenmp, or
   from the caller's job system (lfm2_context_params.parallel).

   QUICK START (greedy completion; see examples/lfm2.c for chat and sampling)
       lfm2_error err;  lfm2_model *m;  lfm2_context *c;  const float *logits;
       lfm2_model_params mp = {0};  mp.error = &err;
       if (lfm2_model_load_dir("LFM2-350M", &mp, &m) != LFM2_OK) { puts(err.message); return 1; }
       lfm2_context_create(m, NULL, &c);                 // NULL params = defaults (n_ctx 4096)
       lfm2_token ids[512]; int32_t n;
       lfm2_tokenize(m, "Hello", 5, LFM2_TOKENIZE_ADD_BOS, ids, 512, &n);
       lfm2_context_decode(c, ids, n, &logits);          // prefill: logits of the last token
       for (int i = 0; i < 32; i++) {
           lfm2_token t = lfm2_argmax(logits, lfm2_model_config(m)->vocab_size);
           if (lfm2_token_is_eog(m, t)) break;
           char piece[256]; size_t len;
           lfm2_token_to_piece(m, t, piece, sizeof piece, &len); fwrite(piece, 1, len, stdout);
           lfm2_context_decode(c, &t, 1, &logits);       // one token with the conv + KV cache
       }
       lfm2_context_free(c);  lfm2_model_free(m);

   API OVERVIEW (each declaration below carries its contract: ownership, threads, errors)
       config      lfm2_config_parse, lfm2_config_param_count, lfm2_config_active_param_count
       model       lfm2_model_load_dir, lfm2_model_load_memory, lfm2_model_free, lfm2_model_config,
                   lfm2_model_tensor_count, lfm2_model_tensor_info
                   (lfm2_model_params.weights = LFM2_WEIGHTS_Q8 / _Q4 quantizes at load time;
                   lfm2_context_params.bf16_activations = 1 is the fast, inexact bf16 path)
       context     lfm2_context_create, lfm2_context_decode, lfm2_context_decode_all,
                   lfm2_context_logits, lfm2_context_reset, lfm2_context_pos, lfm2_context_n_ctx,
                   lfm2_context_set_threads, lfm2_context_threads, lfm2_context_set_abort,
                   lfm2_context_error, lfm2_context_model, lfm2_context_free
                   (lfm2_context_params.n_threads / threading / parallel: threads, see THREADS)
       state       lfm2_context_state_size, lfm2_context_state_save, lfm2_context_state_load
       tokenizer   lfm2_tokenize, lfm2_tokenize_bound, lfm2_token_to_piece, lfm2_detokenize,
                   lfm2_detok_stream_push, lfm2_detok_stream_flush, lfm2_tokenizer_size,
                   lfm2_token_bos, lfm2_token_is_eog, lfm2_token_is_special, lfm2_token_lookup,
                   lfm2_token_text
       chat        lfm2_chat_render, lfm2_chat_tokenize (the safe way to feed a conversation),
                   lfm2_chat_template_detect, lfm2_chat_template_load_dir, lfm2_chat_template_name,
                   lfm2_chat_template_from_name, lfm2_tool_calls_parse, lfm2_chat_splitter_init,
                   lfm2_chat_splitter_push, lfm2_chat_splitter_flush,
                   lfm2_sampler_params_from_generation_config, lfm2_chat_format (older, text only)
       sampler     lfm2_sampler_default_params, lfm2_sampler_create, lfm2_sampler_set_params,
                   lfm2_sampler_seed, lfm2_sampler_accept, lfm2_sampler_reset,
                   lfm2_sampler_history_size, lfm2_sampler_process, lfm2_sampler_sample,
                   lfm2_sampler_free
       generate    lfm2_generate
       misc        lfm2_result_string, lfm2_version_string, lfm2_build_info, lfm2_isa_name,
                   lfm2_cpu_isa, lfm2_model_isa, lfm2_argmax

   CONFIGURATION MACROS (define before the #include that has LFM2_IMPLEMENTATION)
       LFM2_STATIC          all API functions become static (private copy per translation unit)
       LFM2_API             override the linkage/visibility of the API functions
       LFM2_NO_STDIO        remove lfm2_model_load_dir (no file system access at all)
       LFM2_NO_MMAP         read files into memory instead of memory-mapping them
       LFM2_NO_SIMD         compile the scalar kernels only
       LFM2_NO_AVX512 / LFM2_NO_AVX2 / LFM2_NO_NEON / LFM2_NO_WASM_SIMD   leave one instruction set's kernels out
                            (the choice among the compiled ones is made at load: see lfm2_isa)
       LFM2_NO_OPENMP       ignore OpenMP even when compiled with -fopenmp
       LFM2_NO_THREADS      no built-in pool (one thread unless OpenMP or a caller's job system)
       LFM2_NO_GETENV       do not read the LFM2_ISA environment variable
       LFM2_PROFILE         time each part of the forward pass into the context (lfm2-bench --profile)
       LFM2_MAX_LAYERS      largest num_hidden_layers accepted (default and most: 256,
                            LFM2_CONFIG_LAYERS; only the implementation's value counts, the
                            public structs do not depend on it)
       LFM2_MAX_DIM         largest hidden/FFN width accepted (default 65536)
       LFM2_MAX_VOCAB       largest vocab_size accepted (default 1048576)
       LFM2_MAX_EXPERTS     largest num_experts of an MoE config accepted (default 1024)

   THREAD SAFETY
       A loaded lfm2_model is immutable: any number of threads may use it at once, each with its
       own lfm2_context. A context is used by one thread at a time. There are no globals.

   THREADS
       A context runs each parallel step of a forward pass (a matrix product, or several that share
       their input; the heads of an attention layer) as n_threads tasks: on the built-in pool
       (default without OpenMP; LFM2_THREADS_POOL), on OpenMP (default with -fopenmp), or on the
       caller's job system (lfm2_context_params.parallel: an engine's workers). The pool's threads
       belong to the context, spin for about a millisecond after a step, then sleep: an idle
       context takes no CPU. Loading runs its conversions (interleaving, quantization) the same way
       (lfm2_model_params.n_threads / threading / parallel). A thread that cannot be started is an
       error result; n_threads above 4 per CPU is refused.

   MEMORY
       Loading allocates the model struct and tables once; the weights stay in their stored dtype
       (BF16/F16/F32), never copied to f32. Caller-provided buffers (lfm2_model_load_memory) and,
       with lfm2_model_params.keep_layout = 1, memory-mapped files are used in place. By default,
       at the AVX2 level and above, the mapped weight matrices are copied once into a faster
       layout (16 rows interleaved, the same values; f32 from AVX-512 on; the row-major Q8 / Q4
       matrices of older pre-quantized folders from AVX512_VNNI on), releasing the mapped pages
       as they go, so resident memory stays one copy of the weights; LFM2_WEIGHTS_Q8 / _Q4
       allocate the quantized copy. The interleaved records that tools/lfm2-quantize writes
       (see LFM2__X16_LAYOUT) are used in place, mapped, at AVX512_VNNI and aarch64 NEON, and
       unpacked into a row-major copy at the other levels.
       lfm2_context_create allocates one block for caches and scratch; lfm2_context_decode
       allocates nothing.

   ERRORS
       Every fallible function returns an lfm2_result. Load and create functions take an optional
       lfm2_error* in their params that receives a message naming the culprit (config key, tensor
       name, byte offset). A context keeps the message of its last failed call
       (lfm2_context_error); every decode, decode_all and state_load clears it first, so after a
       successful call it is "". The library never prints, never calls exit or abort.

   SIZE QUERIES (every function that fills a caller buffer and reports a size in *n_out:
   lfm2_token_to_piece, lfm2_detokenize, lfm2_detok_stream_push / _flush,
   lfm2_context_state_save, lfm2_tokenize, lfm2_chat_format, lfm2_chat_render, lfm2_chat_tokenize,
   lfm2_tool_calls_parse)
       buf == NULL and cap == 0 is a size query: LFM2_OK with *n_out = the size needed, nothing
       written and no state changed. A real buffer that is too small gives
       LFM2_ERR_BUFFER_TOO_SMALL with *n_out = the size needed (lfm2_tokenize: an upper bound)
       and the buffer's contents unspecified. buf == NULL with cap > 0 is LFM2_ERR_INVALID_ARG.

   SECURITY
       Files are untrusted input: every size, offset, shape and JSON value is checked at load time
       and all size arithmetic is overflow-checked. A bad file gives an error, not a crash.

   DETERMINISM
       Work is split over threads by output rows, and each output is summed in a fixed order
       whichever task computes it, so logits are bit-identical for any thread count, any thread
       backend and any chunking of a prompt, for one build at one instruction-set level (the
       levels differ in the last bits). The sampler's random stream (xoshiro256**) is the same on
       every platform.

   lfm2.h DOES NOT
       run on GPUs; read GGUF; implement the VL vision tower or audio models; run Jinja (the LFM2
       and LFM2.5 chat templates are implemented natively); download anything.

   SECTIONS (grep for the tag), in file order
       the public part (this is all a user needs):
         >>types          results, errors, allocator, lfm2_config, the parameter structs
         >>api            models, contexts, decode, state, instruction sets, threads
         >>api-tokenizer  text <-> ids            >>api-sampler   sampling as transformers
         >>api-generate   the generation loop     >>api-chat      templates, tool calls, splitter
       the implementation (after #define LFM2_IMPLEMENTATION):
         >>config         configuration macros, includes, limits
         >>util           allocation, errors, small helpers
         >>json           the bounded JSON reader   >>configjson   config.json -> lfm2_config
         >>safetensors    the file format and dtypes (>>model-access: what the tokenizer and
                          sampler sections see of a model)
         >>tokenizer      tokenizer.json, the split patterns, BPE (and >>unicode-table)
         >>chat           the native chat templates, tool-call parser (and >>ident-table),
                          output splitter
         >>sampler        logits processors, sampling    >>generate   lfm2_generate
         >>threads        serial / OpenMP / built-in pool / caller's job system, one fixed split
         >>structs        model, matrix, layer and context structs
         >>formats        every weight format with its kernels per instruction set, the kernel
                          table and its lookup, CPU detection, the matmul step
         >>blocks         short convolution, attention, dense and MoE feed-forward
         >>forward        the forward pass, top to bottom
         >>quant          load-time quantization and the interleaved layouts
         >>model          binding tensors to layers, loading from buffers
         >>files          reading and mapping files (POSIX, Win32)
         >>context        contexts, decode, caches    >>state  snapshots    >>public  the rest
       reading order for a newcomer: >>api, then >>forward -> >>blocks -> >>formats -> >>quant
       -> >>model -> >>files (how a token is computed, then how the weights get there).
*/
#ifndef LFM2_H_INCLUDED
#define LFM2_H_INCLUDED

#define LFM2_VERSION_MAJOR 0
#define LFM2_VERSION_MINOR 1
#define LFM2_VERSION_PATCH 0
#define LFM2_VERSION_STRING "0.1.0"

#include <stddef.h>
#include <stdint.h>

#ifndef LFM2_API
#ifdef LFM2_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define LFM2_API static __attribute__((unused))
#else
#define LFM2_API static
#endif
#else
#define LFM2_API extern
#endif
#endif

/* Array sizes of lfm2_config. They are fixed (not configuration macros), so that every
   translation unit sees the same struct layout whatever it defines. */
#define LFM2_CONFIG_LAYERS 256  /* layer_is_attention[]: the most layers any build accepts */
#define LFM2_CONFIG_EOS 32      /* eos_token_ids[]: more distinct eos ids are refused at load */

#ifdef __cplusplus
extern "C" {
#endif

/* >>types ---------------------------------------------------------------------------------- */

typedef enum lfm2_result {
    LFM2_OK = 0,
    LFM2_ERR_INVALID_ARG,      /* a NULL pointer, a token id outside the vocabulary, ...          */
    LFM2_ERR_OUT_OF_MEMORY,
    LFM2_ERR_IO,               /* a file could not be opened or read                              */
    LFM2_ERR_BAD_CONFIG,       /* config.json missing keys, wrong types, absurd or inconsistent   */
    LFM2_ERR_BAD_WEIGHTS,      /* safetensors malformed, tensor missing, wrong dtype or shape     */
    LFM2_ERR_BAD_TOKENIZER,    /* tokenizer.json / tokenizer_config.json malformed                */
    LFM2_ERR_UNSUPPORTED,      /* a valid file using something lfm2.h does not implement          */
    LFM2_ERR_CONTEXT_FULL,     /* more tokens than n_ctx                                          */
    LFM2_ERR_BUFFER_TOO_SMALL, /* the caller's output buffer is too small (size needed reported)  */
    LFM2_ERR_ABORTED,          /* a user callback asked to stop                                   */
    LFM2_ERR_BAD_LOGITS        /* nothing can be sampled: a NaN logit, every score -inf, or +inf
                                  when sampling (see lfm2_sampler_sample)                         */
} lfm2_result;

typedef int32_t lfm2_token;

/* Optional error detail. Pass a pointer in the params of a load/create call; on failure it holds
   the result code and a NUL-terminated message naming the culprit. */
typedef struct lfm2_error {
    lfm2_result code;
    char message[320];
} lfm2_error;

/* Optional allocator: both functions set, or both NULL (= malloc/free). */
typedef struct lfm2_allocator {
    void *(*alloc)(void *user, size_t size);
    void (*free)(void *user, void *ptr);
    void *user;
} lfm2_allocator;

/* Hyperparameters as resolved from config.json (both the released-checkpoint key style and the
   transformers-5 style). Read-only for users. */
typedef struct lfm2_config {
    int32_t vocab_size;
    int32_t hidden_size;              /* D */
    int32_t num_hidden_layers;
    int32_t num_attention_heads;      /* H */
    int32_t num_key_value_heads;      /* Hkv */
    int32_t head_dim;                 /* hd = D / H unless config.json says otherwise */
    int32_t intermediate_size;        /* as read; block_ff_dim overrides intermediate_size */
    int32_t ff_dim;                   /* effective FFN width F (auto-adjust rule applied) */
    int32_t block_multiple_of;
    double  block_ffn_dim_multiplier; /* 0 when null */
    int32_t block_auto_adjust_ff_dim;
    int32_t conv_L_cache;             /* L, the conv kernel width */
    int32_t conv_bias;
    int32_t tie_word_embeddings;
    int32_t max_position_embeddings;
    float   norm_eps;
    double  rope_theta;
    int32_t bos_token_id, pad_token_id;
    int32_t n_eos;                    /* the distinct eos ids of config.json's eos_token_id (a number
                                         or a list) and generation_config.json's, at most
                                         LFM2_CONFIG_EOS (more: LFM2_ERR_BAD_CONFIG) */
    int32_t eos_token_ids[LFM2_CONFIG_EOS];
    int32_t n_attention_layers, n_conv_layers;
    /* LFM2-MoE (model_type "lfm2_moe"; for "lfm2": num_dense_layers = num_hidden_layers, the
       rest 0): layers l < num_dense_layers have the
       dense SwiGLU of width ff_dim (= intermediate_size as given), every later layer a sparse
       block of num_experts SwiGLU experts of width moe_intermediate_size, num_experts_per_tok
       of them chosen per token by a sigmoid router (see >>blocks, lfm2__moe) */
    int32_t is_moe;
    int32_t num_dense_layers;
    int32_t num_experts;              /* E */
    int32_t num_experts_per_tok;      /* k */
    int32_t moe_intermediate_size;    /* I */
    int32_t use_expert_bias;          /* choose by sigmoid + expert_bias (mix with the sigmoid alone) */
    int32_t norm_topk_prob;           /* mixing weights / (their sum + 1e-6) */
    double  routed_scaling_factor;    /* mixing weights times this */
    int32_t n_moe_layers;             /* num_hidden_layers - num_dense_layers */
    uint8_t layer_is_attention[LFM2_CONFIG_LAYERS]; /* [num_hidden_layers] used */
} lfm2_config;

typedef struct lfm2_model lfm2_model;     /* immutable after load; shareable between threads */
typedef struct lfm2_context lfm2_context; /* one sequence: conv state, KV cache, scratch       */

/* Instruction sets of the kernels (lfm2_model_params.max_isa, lfm2_model_isa). Every build
   compiles the kernels of every set its compiler can target and chooses, at load, the best one
   the CPU (and the OS) supports; a caller may cap it. The x86-64 sets and the aarch64 sets are
   each ordered: a level includes the ones before it. */
typedef enum lfm2_isa {
    LFM2_ISA_AUTO = 0,        /* the best the CPU supports (capped by the LFM2_ISA environment variable) */
    LFM2_ISA_SCALAR,          /* the portable reference kernels (always compiled) */
    LFM2_ISA_AVX2,            /* x86-64: AVX2 + FMA + F16C */
    LFM2_ISA_AVX512,          /* + AVX-512 F/BW/VL/DQ */
    LFM2_ISA_AVX512_VNNI,     /* + AVX512_VNNI (int8 dot products: Q8 / Q4 weights) */
    LFM2_ISA_AVX512_BF16,     /* + AVX512_BF16 (bf16 dot products: bf16_activations) */
    LFM2_ISA_NEON,            /* aarch64 (and armv7 built with -mfpu=neon...) */
    LFM2_ISA_NEON_DOTPROD,    /* + the dot-product extension (sdot) */
    LFM2_ISA_NEON_BF16,       /* + the bf16 extension (bfdot) */
    LFM2_ISA_WASM_SIMD128,    /* WebAssembly with the 128-bit SIMD extension (-msimd128) */
    LFM2_ISA_NEON_I8MM,       /* aarch64 NEON_BF16 + the int8 matrix multiplies (usmmla: Q8 / Q4 prefill) */
    LFM2_ISA_COUNT
} lfm2_isa;

/* Threads. One parallel step of the library (a matrix product, the heads of an attention
   layer, a load-time conversion) is split into n_threads tasks that never wait for each other;
   the split depends only on n_threads, and the arithmetic of every output value is the same in
   every task, so results are bit-identical for any thread count and any backend. Backends:
   OpenMP (builds with -fopenmp), the built-in pool (pthreads / Win32 threads: worker threads
   that spin briefly after a step, then sleep until the next one), or the caller's job system. */
enum { LFM2_THREADS_AUTO = 0,   /* OpenMP where compiled in, else the built-in pool */
       LFM2_THREADS_POOL = 1,   /* the built-in pool, even in OpenMP builds */
       LFM2_THREADS_OPENMP = 2  /* OpenMP (LFM2_ERR_UNSUPPORTED without it) */ };
/* A job system of the caller's (an engine's workers) to run the parallel steps on: run() must
   call task(task_arg, i) once for every i in [0, n), on any of its threads, in any order, all at
   once or one after another (tasks never wait for each other), and return when all have
   finished. run() is called from the thread that called into lfm2.h; n <= the n_threads given. */
typedef void (*lfm2_task_fn)(void *task_arg, int32_t i);
typedef struct lfm2_parallel {
    void (*run)(void *user, lfm2_task_fn task, void *task_arg, int32_t n);
    void *user;
} lfm2_parallel;

typedef struct lfm2_model_params {
    lfm2_allocator allocator;  /* zero = malloc/free */
    lfm2_error *error;         /* optional: receives the message of a failure */
    int32_t no_mmap;           /* 1 = read files into memory even where mmap exists */
    int32_t no_tokenizer;      /* 1 = do not load tokenizer.json even when present */
    int32_t weights;           /* LFM2_WEIGHTS_*: convert the weight matrices at load time */
    int32_t keep_layout;       /* 1 = multiply f32/f16/bf16 matrices in the file's row-major layout,
                                  used in place from the mapping. By default, AVX-512 builds (AVX2:
                                  f16/bf16 only) copy them at load into a layout of 16 interleaved
                                  rows (the same values; faster prefill and decode), releasing the
                                  mapped pages as they go: resident memory stays one copy of the
                                  weights. Buffers given to lfm2_model_load_memory are used as
                                  they are. */
    int32_t max_isa;           /* lfm2_isa: the best instruction set to use; 0 = the best the CPU has */
    int32_t n_threads;         /* threads of the load-time conversions (layouts, quantization);
                                  0 = the CPUs this process can use */
    int32_t threading;         /* LFM2_THREADS_* for those conversions */
    lfm2_parallel parallel;    /* optional: run them on the caller's job system instead */
    int32_t huge_pages;        /* 1 = ask for transparent huge pages (Linux, madvise mode) for the
                                  weights converted at load (the interleaved / quantized layouts):
                                  fewer TLB misses while decode streams them. Measured on this
                                  project's VM: decode +3% (bf16) to +9% (int4), but loading 350M
                                  bf16 took 1.7 s instead of 0.6 s (fresh 2 MB pages are zeroed
                                  as they are first written). 0 = ordinary pages. */
} lfm2_model_params;

/* lfm2_model_params.weights. The quantized formats use blocks of 32 columns with one f16 scale:
   Q8 = int8 (8.5 bits per weight), Q4 = 4-bit (4.5 bits per weight). Matrices whose width is not
   a multiple of 32 stay as stored. A pre-quantized folder (tools/lfm2-quantize) loads as it is.
   Quantized matrices multiply activations quantized to int8 per block of 32 (as llama.cpp's
   q8_0 / q4_0 do): integer dot products (AVX-512 VNNI, AVX2, NEON sdot), f32 scales. In builds
   with AVX-512 VNNI, load-time quantization stores 16 rows interleaved for that kernel. */
enum { LFM2_WEIGHTS_AS_STORED = 0, LFM2_WEIGHTS_Q8 = 1, LFM2_WEIGHTS_Q4 = 2 };

/* One memory buffer (a safetensors file, for example). `name` is only used in messages. */
typedef struct lfm2_buffer {
    const void *data;
    size_t size;
    const char *name;
} lfm2_buffer;

/* Everything a model is made of, as caller-owned memory (firmware, engines with their own VFS).
   The buffers are borrowed: they must stay alive and unchanged until lfm2_model_free. Only
   config_json and at least one safetensors buffer are required. */
typedef struct lfm2_model_sources {
    const char *config_json;                 size_t config_json_size;
    const lfm2_buffer *safetensors;          int32_t n_safetensors; /* shards in any order */
    const char *tokenizer_json;              size_t tokenizer_json_size;        /* optional */
    const char *tokenizer_config_json;       size_t tokenizer_config_json_size; /* optional */
    const char *generation_config_json;      size_t generation_config_json_size;/* optional */
} lfm2_model_sources;

typedef struct lfm2_context_params {
    int32_t n_ctx;       /* maximum sequence length; 0 = min(4096, max_position_embeddings) */
    int32_t n_batch;     /* tokens processed per forward chunk (scratch size); 0 = 64 */
    int32_t n_threads;   /* tasks (threads) per parallel step; 0 = the CPUs this process can use.
                            At most 4 x those CPUs (more only slows down) and at most 512 */
    int32_t threading;   /* LFM2_THREADS_*: OpenMP, the built-in pool, AUTO (OpenMP if compiled in) */
    lfm2_parallel parallel; /* optional: run the parallel steps on the caller's job system
                            (parallel.run set; n_threads = the tasks per step, 0 = the CPUs) */
    int32_t bf16_activations; /* 1: with bf16 weights, round the activations to bf16 too and use the
                           CPU's bf16 dot product (AVX512_BF16 or NEON +bf16 builds; elsewhere
                           ignored), as
                           llama.cpp does for bf16: about twice the prefill speed, but the logits
                           move away from the reference by ~1e-2 relative. 0 (default): f32. */
    lfm2_allocator allocator;
    lfm2_error *error;
} lfm2_context_params;

/* Description of one weight tensor, for tools. */
typedef struct lfm2_tensor_info {
    const char *name;      /* valid while the model lives */
    const char *dtype;     /* "BF16", "F16", "F32", ... */
    int32_t n_dims;
    int64_t shape[4];
    uint64_t n_bytes;
    const char *file;      /* shard name */
    uint64_t file_offset;  /* byte offset of the data in that file */
} lfm2_tensor_info;

/* >>api ------------------------------------------------------------------------------------ */

/* Parses config.json text (not NUL-terminated necessarily) into *out and derives F, the layer
   kinds and the head size. Returns LFM2_ERR_BAD_CONFIG with the key named in err->message. */
LFM2_API lfm2_result lfm2_config_parse(const char *json, size_t len, lfm2_config *out, lfm2_error *err);
/* Number of parameters implied by the config (lm_head counted only when untied). */
LFM2_API uint64_t lfm2_config_param_count(const lfm2_config *c);
/* The parameters one token uses: the total minus the experts it does not choose (MoE: the
   router and num_experts_per_tok experts of every sparse layer); = the total for dense models.
   (expert_bias is a buffer in transformers, not a parameter: neither count has it.) */
LFM2_API uint64_t lfm2_config_active_param_count(const lfm2_config *c);

#ifndef LFM2_NO_STDIO
/* Loads a Hugging Face folder: config.json, model.safetensors or model.safetensors.index.json +
   shards, and when present tokenizer.json, tokenizer_config.json, generation_config.json.
   Files are memory-mapped where the platform allows (POSIX), read otherwise. */
LFM2_API lfm2_result lfm2_model_load_dir(const char *dir, const lfm2_model_params *p, lfm2_model **out);
#endif
/* Loads from caller memory (borrowed, see lfm2_model_sources). */
LFM2_API lfm2_result lfm2_model_load_memory(const lfm2_model_sources *s, const lfm2_model_params *p, lfm2_model **out);
LFM2_API void lfm2_model_free(lfm2_model *m);
LFM2_API const lfm2_config *lfm2_model_config(const lfm2_model *m);
LFM2_API int32_t lfm2_model_tensor_count(const lfm2_model *m);
LFM2_API lfm2_result lfm2_model_tensor_info(const lfm2_model *m, int32_t i, lfm2_tensor_info *out);

/* Creates a context (one sequence). NULL params = defaults. Allocates once. */
LFM2_API lfm2_result lfm2_context_create(const lfm2_model *m, const lfm2_context_params *p, lfm2_context **out);
LFM2_API void lfm2_context_free(lfm2_context *c);
/* Feeds n >= 1 tokens at the current position (a whole prompt, a chunk, or one token) and
   advances the position by n. *logits (optional) receives the last token's logits [vocab_size],
   valid until the next decode/reset/free. Errors found before any work (bad ids, context full)
   leave the context as it was. LFM2_ERR_ABORTED (the callback of lfm2_context_set_abort) leaves
   it usable, holding the chunks of n_batch tokens completed before the abort: the position has
   advanced by a multiple of n_batch (see lfm2_context_pos), the aborted chunk is undone, and
   decoding the remaining tokens from there gives the same logits, bit for bit, as one
   uninterrupted decode; no reset is needed. lfm2_context_logits is NULL until the next decode. */
LFM2_API lfm2_result lfm2_context_decode(lfm2_context *c, const lfm2_token *tokens, int32_t n, const float **logits);
/* Like lfm2_context_decode, but writes the logits of every one of the n positions into
   out[n * vocab_size] (caller-owned), for perplexity and scoring. */
LFM2_API lfm2_result lfm2_context_decode_all(lfm2_context *c, const lfm2_token *tokens, int32_t n, float *out);
LFM2_API void lfm2_context_reset(lfm2_context *c);              /* back to position 0 */
LFM2_API int32_t lfm2_context_pos(const lfm2_context *c);       /* tokens in the cache */
LFM2_API int32_t lfm2_context_n_ctx(const lfm2_context *c);
/* Changes the thread count (0 = the CPUs this process can use) of the context's backend; with the
   built-in pool this starts or stops threads: LFM2_ERR_OUT_OF_MEMORY / LFM2_ERR_INVALID_ARG leave
   the old count. */
LFM2_API lfm2_result lfm2_context_set_threads(lfm2_context *c, int32_t n_threads);
LFM2_API int32_t lfm2_context_threads(const lfm2_context *c);
LFM2_API const char *lfm2_context_error(const lfm2_context *c); /* message of the last failed call ("" after a
                                                                  successful decode / state_load; see ERRORS) */
LFM2_API const lfm2_model *lfm2_context_model(const lfm2_context *c);
/* Logits of the last decoded position, or NULL when none (after a reset, an abort, or a state
   saved without them). */
LFM2_API const float *lfm2_context_logits(const lfm2_context *c);
/* Optional callback polled by every decode before each layer of each chunk (so at least
   num_hidden_layers times per chunk of n_batch tokens); returning non-zero stops the decode with
   LFM2_ERR_ABORTED, the context usable as described at lfm2_context_decode. It runs on the
   decoding thread; NULL removes it. */
LFM2_API void lfm2_context_set_abort(lfm2_context *c, int (*abort_fn)(void *user), void *user);

/* State snapshots: position, conv states, the KV cache up to the position and the last logits,
   as bytes (native endianness: for the same model on the same kind of machine). Use them to
   branch a dialogue, rewind, or keep a save file. state_size reports the bytes save needs now;
   save follows the size-query convention (top of this file; *n_written may be NULL with a real
   buffer). A state can be loaded into any context of the same model (fork), also after the
   model was loaded again, from other shards or with another layout (keep_layout). load refuses,
   with LFM2_ERR_INVALID_ARG and a message (lfm2_context_error), a state of another model: the
   header holds the shapes and a fingerprint that the model computes once at load from its
   config, the names, dtypes and shapes of its tensors, samples of their bytes (every byte of
   the small ones) and the load-time quantization, so a re-quantized or fine-tuned model of the
   same shapes is refused (an edit of only a few rows of a large matrix can go unseen; see
   lfm2__model_fingerprint). A state longer than this context's n_ctx gives
   LFM2_ERR_CONTEXT_FULL. On any error the context is unchanged. */
LFM2_API size_t lfm2_context_state_size(const lfm2_context *c);
LFM2_API lfm2_result lfm2_context_state_save(const lfm2_context *c, void *buf, size_t cap, size_t *n_written);
LFM2_API lfm2_result lfm2_context_state_load(lfm2_context *c, const void *buf, size_t size);

LFM2_API const char *lfm2_result_string(lfm2_result r);
LFM2_API const char *lfm2_version_string(void);
/* What this build and CPU run: the kernels compiled in, the best level of this CPU, the thread
   backends, e.g. "kernels SCALAR AVX2 AVX512 AVX512_VNNI AVX512_BF16; cpu AVX512_BF16; threads POOL OPENMP" */
LFM2_API const char *lfm2_build_info(void);
LFM2_API const char *lfm2_isa_name(lfm2_isa isa);        /* "AVX2", ...; "?" for other values */
LFM2_API lfm2_isa lfm2_cpu_isa(void);                   /* the best level compiled in that this CPU runs */
LFM2_API lfm2_isa lfm2_model_isa(const lfm2_model *m);  /* the level a model's kernels use */
LFM2_API lfm2_token lfm2_argmax(const float *logits, int32_t n); /* first maximum; -1 if n < 1 */

/* >>api-tokenizer --------------------------------------------------------------------------- */
/* Text <-> token ids with the exact behaviour of the Hugging Face `tokenizers` pipeline that the
   LFM2 tokenizer.json describes: added tokens matched first (longest match), the LFM2 split regex
   (implemented natively; LFM2.5-8B-A1B's and cl100k's patterns are accepted too, they cut every
   text the same way), GPT-2 byte-level mapping, rank-ordered BPE, the TemplateProcessing
   post-processor (BOS) and the ByteLevel decoder. The tokenizer is part of the model (loaded from
   tokenizer.json + tokenizer_config.json) and is immutable: any number of threads may use it.
   None of these functions allocates; all outputs go to caller buffers. Functions taking a model
   return LFM2_ERR_UNSUPPORTED when the model was loaded without a tokenizer, and
   LFM2_ERR_INVALID_ARG for NULL pointers. Text buffers are byte spans, never NUL-terminated. */

/* lfm2_tokenize flags */
#define LFM2_TOKENIZE_ADD_BOS 1       /* add the special tokens of the post-processor (BOS for LFM2);
                                         without a post-processor, add_bos_token/add_eos_token of
                                         tokenizer_config.json */
#define LFM2_TOKENIZE_PARSE_SPECIAL 2 /* match special-token text ("<|im_start|>") as the special
                                         token. Off: such text is ordinary text (user input cannot
                                         inject control tokens). Non-special added tokens always match. */
/* lfm2_detokenize / lfm2_detok_stream_push flags */
#define LFM2_DETOKENIZE_SKIP_SPECIAL 1 /* drop special tokens (BOS, <|im_end|>, ...) from the text */

/* Encodes text[0..len) (any bytes: invalid UTF-8 is kept byte for byte) into out[0..*n_out).
   Capacity: the number of ids always suffices, with one exception: a pre-token (a run of
   letters, of symbols or of whitespace) longer than 512 bytes that cannot be merged in windows of
   512 bytes (a run of tokens of 256 bytes or more, or merges that depend on bytes about 256 bytes
   away: crafted merge lists or texts) is merged in the unused part of out and needs room for its
   bytes there. lfm2_tokenize_bound (len + 2 for LFM2: BPE gives at most one id per byte, plus
   BOS) always suffices.
   The size needed is the number of ids, with each pre-token of the exception counted as its
   length in bytes; a capacity of that size always succeeds. out NULL and cap 0 is a size query:
   LFM2_OK with *n_out = the size needed. A buffer that is too small: LFM2_ERR_BUFFER_TOO_SMALL
   with *n_out = the size needed (out's contents then unspecified). Both cost a whole encode. */
LFM2_API lfm2_result lfm2_tokenize(const lfm2_model *m, const char *text, size_t len, int flags,
                                   lfm2_token *out, int32_t cap, int32_t *n_out);
/* An output capacity that always suffices for lfm2_tokenize(text of len bytes, flags);
   -1 without a tokenizer or when it does not fit an int32_t. */
LFM2_API int32_t lfm2_tokenize_bound(const lfm2_model *m, size_t len, int flags);

/* The exact bytes that token t stands for (UTF-8 fragments included: a token may hold part of a
   character) into buf[0..*n_out). Ids that exist in the model but have no string in the tokenizer
   give 0 bytes. LFM2_ERR_INVALID_ARG for ids outside [0, vocab); sizes as in SIZE QUERIES. */
LFM2_API lfm2_result lfm2_token_to_piece(const lfm2_model *m, lfm2_token t, char *buf, size_t cap, size_t *n_out);

/* Concatenated bytes of ids[0..n) (flags: LFM2_DETOKENIZE_SKIP_SPECIAL) into buf[0..*n_out).
   decode(encode(s)) == s for every byte string s. LFM2_ERR_INVALID_ARG for an id outside
   [0, vocab); sizes as in SIZE QUERIES (a short buffer holds nothing useful). */
LFM2_API lfm2_result lfm2_detokenize(const lfm2_model *m, const lfm2_token *ids, int32_t n, int flags,
                                     char *buf, size_t cap, size_t *n_out);

/* Streaming detokenizer for printing tokens as they are generated: it holds back the bytes of an
   unfinished UTF-8 character until the next token completes it, so every chunk it returns is
   whole characters. Bytes that can no longer form a valid character are passed through unchanged
   (the output is always exactly the concatenated token bytes). Caller-owned; zero-initialise (or
   memset 0) to start; one per sequence. */
typedef struct lfm2_detok_stream {
    unsigned char pending[4]; /* the held-back start of a character (at most 3 bytes) */
    int32_t n_pending;
} lfm2_detok_stream;
/* Appends token t and writes the bytes that are now complete into buf[0..*n_out). A buffer of
   lfm2_token_to_piece's length + 3 always suffices. Sizes as in SIZE QUERIES; a size query and
   LFM2_ERR_BUFFER_TOO_SMALL leave the stream unchanged. */
LFM2_API lfm2_result lfm2_detok_stream_push(const lfm2_model *m, lfm2_detok_stream *s, lfm2_token t, int flags,
                                            char *buf, size_t cap, size_t *n_out);
/* Writes the held-back bytes (an incomplete character at the end of the text, as they are) into
   buf (cap >= 3 always suffices) and resets the stream. Sizes as in SIZE QUERIES; a size query
   and LFM2_ERR_BUFFER_TOO_SMALL leave the stream unchanged. */
LFM2_API lfm2_result lfm2_detok_stream_flush(lfm2_detok_stream *s, char *buf, size_t cap, size_t *n_out);

/* Number of ids the tokenizer knows (max id + 1 over the vocabulary and added tokens; 64400 for
   LFM2, smaller than the model's vocab_size of 65536). 0 without a tokenizer. */
LFM2_API int32_t lfm2_tokenizer_size(const lfm2_model *m);
/* Beginning-of-sequence id (tokenizer_config.json bos_token, else config.json bos_token_id);
   -1 if none. */
LFM2_API lfm2_token lfm2_token_bos(const lfm2_model *m);
/* 1 if t ends generation: an eos id of config.json / generation_config.json, the eos_token of
   tokenizer_config.json, <|im_end|> or <|endoftext|>. Works without a tokenizer (config ids). */
LFM2_API int lfm2_token_is_eog(const lfm2_model *m, lfm2_token t);
/* 1 if t is an added token marked special (skipped by LFM2_DETOKENIZE_SKIP_SPECIAL). */
LFM2_API int lfm2_token_is_special(const lfm2_model *m, lfm2_token t);
/* Id of the token whose string is piece[0..n): an added token's content ("<|im_end|>") or a
   vocabulary entry as spelled in tokenizer.json (byte-level form, e.g. "\xC4\xA0world" for
   " world"). -1 if there is none (or no tokenizer). */
LFM2_API int32_t lfm2_token_lookup(const lfm2_model *m, const char *piece, size_t n);

/* The string of token t as tokenizer.json spells it (byte-level form: "\xC4\xA0world" for " world";
   added tokens as their content), *len bytes, not NUL-terminated, valid while the model lives.
   NULL (and *len = 0) for ids without a string or without a tokenizer. For inspection tools. */
LFM2_API const char *lfm2_token_text(const lfm2_model *m, lfm2_token t, size_t *len);

/* >>api-sampler ----------------------------------------------------------------------------- */
/* Token sampling with the exact semantics of Hugging Face transformers' generate():
       repetition penalty -> temperature -> top-k -> top-p -> min-p -> softmax -> multinomial
   A sampler is a small object of its own (it never touches a context): it owns scratch memory
   sized by the vocabulary, allocated once at create, a seeded random generator (xoshiro256**,
   the same stream on every platform) and the repetition-penalty history: the SET of every token
   id of the sequence (prompt included), fed with lfm2_sampler_accept. One sampler serves one
   sequence (one context) and is used by one thread at a time; separate samplers are
   independent. Sampling never allocates. */

/* transformers' generate() applies top_k = 50 when the caller gives none; the model-card
   recipe below keeps it. Set top_k = 0 for no top-k at all. */
#define LFM2_SAMPLER_DEFAULT_TOP_K 50

typedef struct lfm2_sampler lfm2_sampler;

/* All-zero params = greedy decoding (argmax), no penalty. */
typedef struct lfm2_sampler_params {
    float temperature;        /* >= 0. 0: greedy (argmax after the repetition penalty; top-k/p
                                 and min-p are then not applied). 1 = logits unscaled. */
    int32_t top_k;            /* keep the k highest scores (ties at the k-th kept); 0 = off */
    float top_p;              /* nucleus: keep the smallest top set whose probability > top_p
                                 (transformers' rule); 0 or 1 = off, else in (0, 1) */
    float min_p;              /* drop ids with p < min_p * p_max (after temperature); 0 = off,
                                 at most 1 */
    float repetition_penalty; /* > 0; 0 or 1 = off. Applied once per distinct id of the history:
                                 negative scores multiplied by it, others divided by it */
    uint64_t seed;            /* seed of the random generator (any value, 0 included) */
} lfm2_sampler_params;

/* The LFM2 model-card recipe as transformers' generate() runs it: temperature 0.3, min_p 0.15,
   repetition_penalty 1.05, top_k 50 (generate()'s default), top_p off, seed 0. */
LFM2_API lfm2_sampler_params lfm2_sampler_default_params(void);

/* Creates a sampler for a vocabulary of vocab_size ids (lfm2_model_config(m)->vocab_size).
   params NULL = greedy; allocator NULL = malloc/free (copied: it must outlive the sampler).
   Returns LFM2_ERR_INVALID_ARG for out-of-range params or vocab_size < 1, and
   LFM2_ERR_OUT_OF_MEMORY; *out is NULL on failure. Allocates about 17 bytes per vocab id. */
LFM2_API lfm2_result lfm2_sampler_create(const lfm2_sampler_params *params, int32_t vocab_size,
                                         const lfm2_allocator *allocator, lfm2_sampler **out);
/* Frees the sampler (NULL is fine). */
LFM2_API void lfm2_sampler_free(lfm2_sampler *s);
/* Changes the parameters (and re-seeds the generator with params->seed); the history is kept,
   so a conversation can change its temperature between turns. LFM2_ERR_INVALID_ARG leaves the
   sampler unchanged. */
LFM2_API lfm2_result lfm2_sampler_set_params(lfm2_sampler *s, const lfm2_sampler_params *params);
/* Re-seeds the random generator only. */
LFM2_API void lfm2_sampler_seed(lfm2_sampler *s, uint64_t seed);
/* Adds n token ids to the penalty history: call it for every token that enters the sequence
   (the prompt, chat-template tokens of later turns, and each generated token; lfm2_generate
   does this itself). Ids already present are ignored (it is a set). All ids are checked first:
   one outside [0, vocab_size) gives LFM2_ERR_INVALID_ARG and adds nothing. */
LFM2_API lfm2_result lfm2_sampler_accept(lfm2_sampler *s, const lfm2_token *ids, int32_t n);
/* Empties the penalty history (a new sequence: call it with lfm2_context_reset). */
LFM2_API void lfm2_sampler_reset(lfm2_sampler *s);
/* Number of distinct ids in the history. */
LFM2_API int32_t lfm2_sampler_history_size(const lfm2_sampler *s);
/* The processing step alone: reads logits[vocab_size] (never written) and writes the scores
   the multinomial draw would use into out[vocab_size] (caller-owned, may not alias logits):
   penalised, divided by the temperature, and -INFINITY for every id removed by top-k, top-p or
   min-p. In greedy mode (temperature 0) only the penalty is applied, as transformers does
   with do_sample=False. Does not touch the random generator. */
LFM2_API lfm2_result lfm2_sampler_process(lfm2_sampler *s, const float *logits, float *out);
/* Picks the next token from logits[vocab_size] (never written): processes them into the
   sampler's scratch, then draws from softmax of the survivors with the sampler's generator
   (greedy: the first maximum, no random number used). Does NOT add the token to the history:
   call lfm2_sampler_accept with it.
   Logits that cannot be sampled give LFM2_ERR_BAD_LOGITS and *out = -1, never a made-up token:
   a NaN anywhere in logits (the model computed garbage: NaN weights or an overflow), every
   processed score -inf (nothing survives), and when sampling (temperature > 0) a +inf score
   (softmax is undefined). This is where transformers' generate() raises (torch.multinomial:
   "probability tensor contains either inf, nan or element < 0"); its greedy argmax does not check
   and returns the first NaN's id, or 0 when all are -inf, which lfm2.h refuses as well. Greedy
   mode accepts +inf scores (the first one wins, as in argmax). */
LFM2_API lfm2_result lfm2_sampler_sample(lfm2_sampler *s, const float *logits, lfm2_token *out);

/* >>api-generate ---------------------------------------------------------------------------- */
/* Why lfm2_generate returned LFM2_OK. */
typedef enum lfm2_stop_reason {
    LFM2_STOP_NONE = 0,     /* not stopped (only seen on an error return) */
    LFM2_STOP_EOG,          /* an end-of-generation token was sampled (lfm2_token_is_eog) */
    LFM2_STOP_MAX_TOKENS,   /* max_tokens were generated */
    LFM2_STOP_CALLBACK      /* on_token returned nonzero */
} lfm2_stop_reason;

typedef struct lfm2_generate_params {
    int32_t max_tokens;     /* most tokens to generate; 0 = until end of generation or context full */
    /* Optional: called once per generated token (the end-of-generation token excluded) with the
       text it completes: whole UTF-8 characters only, so a character split over tokens arrives
       with its last token (len may be 0); special tokens other than the end-of-generation one
       appear as their text ("<|im_start|>"). text is valid during the call. Return nonzero to
       stop after this token (LFM2_STOP_CALLBACK). If the answer ends inside a character, one
       last call with token -1 passes those bytes as they are. */
    int (*on_token)(void *user, lfm2_token token, const char *text, size_t len);
    /* Optional: polled before the prefill, before every layer of every prompt chunk (as
       lfm2_context_set_abort's callback, which is polled there too) and after every generated
       token; nonzero stops with LFM2_ERR_ABORTED (for Ctrl-C). The context stays usable: it holds
       every token emitted so far, and of the prompt the chunks completed before the abort
       (res->n_prompt tokens). */
    int (*should_abort)(void *user);
    void *user;             /* passed to both callbacks */
    lfm2_error *error;      /* optional: receives a message on failure */
} lfm2_generate_params;

typedef struct lfm2_generate_result {
    int32_t n_prompt;       /* prompt tokens decoded */
    int32_t n_generated;    /* tokens generated and passed to on_token (all are in the context) */
    lfm2_token stop_token;  /* the end-of-generation token that ended it (NOT decoded into the
                               context), or -1 */
    lfm2_stop_reason stop_reason;
} lfm2_generate_result;

/* Feeds n_prompt >= 1 new tokens at the context's current position, then samples and decodes
   one token at a time until an end-of-generation token, max_tokens, a callback stop, or an
   abort. Every prompt and generated token is added to the sampler's history. Each generated
   token is decoded into the context before the function returns, so the context then holds the
   prompt and the whole answer; the end-of-generation token is not decoded. For multi-turn chat
   keep the context and the sampler, and start the next call's tokens with the text the chat
   template puts after an answer ("<|im_end|>\n<|im_start|>user\n...").
   Errors: LFM2_ERR_INVALID_ARG (NULL c/s/prompt, n_prompt < 1, the sampler's vocabulary differs
   from the model's), LFM2_ERR_CONTEXT_FULL (the prompt does not fit: nothing is decoded; or the
   context filled up while generating: every emitted token is in it), LFM2_ERR_ABORTED (during
   the prefill: res->n_prompt prompt tokens, whole chunks, are in the context and the history;
   feed the rest in a later call), LFM2_ERR_BAD_LOGITS (logits that cannot be sampled, see
   lfm2_sampler_sample: nothing is emitted for that position; the message counts the NaN and
   infinite logits), and any error of lfm2_context_decode. A model loaded without a tokenizer still generates (end of
   generation from config.json's eos ids) but on_token then gets no text (len 0). res (optional) is filled in every case. Allocates nothing, with
   one exception: a token whose text is longer than 1 KiB (and than any such token before) grows
   a buffer kept in the sampler and freed with it (the LFM2 vocabularies have no such token). */
LFM2_API lfm2_result lfm2_generate(lfm2_context *c, lfm2_sampler *s, const lfm2_token *prompt,
                                   int32_t n_prompt, const lfm2_generate_params *params,
                                   lfm2_generate_result *res);

/* >>api-chat ------------------------------------------------------------------------------- */
/* Conversations in and out: the three LFM2 chat templates rendered natively (byte-identical to
   transformers' apply_chat_template), injection-safe chat tokenization, the tool-call parser
   and a streaming splitter of generated text into content / reasoning / tool calls. Nothing
   here allocates (lfm2_chat_template_load_dir and lfm2_sampler_params_from_generation_config
   read files and may); outputs go to caller buffers (sizes as in SIZE QUERIES). All strings are
   NUL-terminated UTF-8 unless a length is given. */

/* The chat templates lfm2.h knows, recognised from the model folder's template text. */
typedef enum lfm2_chat_template {
    LFM2_CHAT_TEMPLATE_UNKNOWN = 0,
    LFM2_CHAT_TEMPLATE_LFM2 = 1,       /* "lfm2": LFM2-350M / 700M / 1.2B / 2.6B as first released */
    LFM2_CHAT_TEMPLATE_LFM2_TOOLS = 2, /* "lfm2-tools": the LFM2 template with tools: tool-list and
                                          tool-response markers */
    LFM2_CHAT_TEMPLATE_LFM25 = 3       /* "lfm2.5": LFM2.5 (1.2B Instruct / Thinking / JP, 8B-A1B,
                                          VL): "Today's date" + "List of tools: [json]" in the
                                          system turn, pythonic tool_calls, <think> history */
} lfm2_chat_template;

/* One part of a list content ([{"type": "image"}, {"type": "text", "text": "..."}]). */
#define LFM2_CHAT_PART_TEXT 1   /* text (required) */
#define LFM2_CHAT_PART_IMAGE 2  /* an image placeholder (LFM2.5: "<image>") */
#define LFM2_CHAT_PART_OTHER 3  /* any other part: json (required) is its JSON object */
typedef struct lfm2_chat_part {
    int32_t type;         /* LFM2_CHAT_PART_* */
    const char *text;     /* TEXT: the text */
    const char *json;     /* optional: the part's JSON object as given (where a template prints
                             the part as JSON: lfm2-tools); NULL = {"type": "image"} /
                             {"type": "text", "text": TEXT} */
} lfm2_chat_part;

/* One call in an assistant message (the OpenAI shape {"function": {"name", "arguments"}}). */
typedef struct lfm2_chat_tool_call {
    const char *name;      /* function name (dotted names allowed) */
    const char *arguments; /* its arguments: the text of one JSON object, {"city": "Paris"} */
} lfm2_chat_tool_call;

/* One chat message. The first two fields are those of lfm2.h 0.1's lfm2_chat_message, so
   {"user", "hi"} still initialises one; zero fields are absent. */
typedef struct lfm2_chat_message {
    const char *role;                    /* "system", "user", "assistant", "tool", ... (required) */
    const char *content;                 /* text content; NULL and parts NULL: no content at all
                                            (lfm2_chat_format: NULL = "") */
    const lfm2_chat_part *parts;         /* list content (content NULL): parts[n_parts]; non-NULL
                                            with n_parts 0 = an empty list */
    int32_t n_parts;
    const lfm2_chat_tool_call *tool_calls; /* assistant: calls it made; non-NULL with
                                            n_tool_calls 0 = an empty list */
    int32_t n_tool_calls;
    const char *thinking;                /* assistant: its reasoning (LFM2.5 renders it as
                                            <think>...</think>); NULL = none */
    int32_t trusted;                     /* lfm2_chat_tokenize: 1 = this message's text is the
                                            model's own output (an earlier answer kept as it was
                                            generated, markers included), so its special-token
                                            text stays special. Never for text from users, tools
                                            or files: 0 makes every byte ordinary text */
} lfm2_chat_message;

/* A conversation to render. Zero-initialise, then set template_kind and the messages. */
typedef struct lfm2_chat {
    int32_t template_kind;               /* lfm2_chat_template (UNKNOWN: LFM2_ERR_INVALID_ARG) */
    const lfm2_chat_message *messages;
    int32_t n_messages;
    const char *const *tools;            /* tools[n_tools]: each tool's JSON (a schema object,
                                            {"type": "function", "function": {...}}), printed
                                            the way Python's json.dumps prints it */
    int32_t n_tools;
    int32_t add_generation_prompt;       /* 1: end with "<|im_start|>assistant\n" */
    int32_t keep_past_thinking;          /* LFM2.5: keep the reasoning of earlier assistant turns */
    const char *date;                    /* "YYYY-MM-DD" for LFM2.5's "Today's date" (needed with
                                            tools; the caller's today: the library has no clock) */
} lfm2_chat;

/* The template a chat_template.jinja text (or tokenizer_config.json's chat_template string)
   is: one of the three known LFM2 templates, byte for byte (leading / trailing whitespace
   ignored), else LFM2_CHAT_TEMPLATE_UNKNOWN. */
LFM2_API lfm2_chat_template lfm2_chat_template_detect(const char *text, size_t len);
/* "lfm2", "lfm2-tools", "lfm2.5" (NULL for others); and back (UNKNOWN for other names). */
LFM2_API const char *lfm2_chat_template_name(lfm2_chat_template t);
LFM2_API lfm2_chat_template lfm2_chat_template_from_name(const char *name);
#ifndef LFM2_NO_STDIO
/* The template of a model folder: chat_template.jinja, else tokenizer_config.json's
   "chat_template" (a string, or the "default" entry of a list of {"name", "template"}).
   LFM2_ERR_UNSUPPORTED naming the file when it is none of the known templates (callers may
   then choose one explicitly); LFM2_ERR_IO when the folder has no template at all. */
LFM2_API lfm2_result lfm2_chat_template_load_dir(const char *dir, lfm2_chat_template *out, lfm2_error *err);
#endif

/* Renders the conversation exactly as transformers' apply_chat_template renders it with that
   template (tojson = json.dumps(ensure_ascii=False); argument values as the LFM2.5 template
   prints them, Python's str() included) into buf[0..*n_out) (no terminator). Conversations the
   template itself cannot render (a message without content for "lfm2", list content for "lfm2",
   no messages for "lfm2-tools" / "lfm2.5", ...) give LFM2_ERR_INVALID_ARG with the reason in
   err (optional), never a guess. Malformed JSON (a tool, arguments) likewise, naming the byte.
   Sizes as in SIZE QUERIES. The text is for display and tests: to feed a model use
   lfm2_chat_tokenize, which does not let message text become control tokens. */
LFM2_API lfm2_result lfm2_chat_render(const lfm2_chat *chat, char *buf, size_t cap, size_t *n_out, lfm2_error *err);

/* The safe way to turn a conversation into a model's input: renders it (as lfm2_chat_render)
   and tokenizes it so that the template's own markers (<|startoftext|>, <|im_start|>,
   <|im_end|>, <|tool_call_start|>, <think>, ...) become their special tokens while every piece
   of caller text (roles, contents, tools, arguments, thinking, the date) is tokenized as
   ordinary text: a user who types "<|im_end|><|im_start|>system" gets those characters, not
   control tokens. Without such text the ids equal lfm2_tokenize(render, PARSE_SPECIAL) (text
   between two markers is tokenized as one piece, as transformers does). BOS comes from the
   template: do not add another. out[cap] doubles as the scratch of the rendered text, so the
   size needed is the number of ids + a quarter of the text's bytes: a size query (out NULL,
   cap 0) gives a size that always suffices (rendered bytes x 1.25 + 1); a short buffer gives
   LFM2_ERR_BUFFER_TOO_SMALL with *n_out = a size that suffices. Errors of lfm2_chat_render, and
   LFM2_ERR_UNSUPPORTED without a tokenizer. Allocates nothing. */
LFM2_API lfm2_result lfm2_chat_tokenize(const lfm2_model *m, const lfm2_chat *chat, lfm2_token *out, int32_t cap,
                                        int32_t *n_out, lfm2_error *err);

/* Renders a conversation with the LFM2 chat template into buf[0..*n_out) (no terminator):
       <|startoftext|>{<|im_start|>ROLE\nCONTENT<|im_end|>\n}...[<|im_start|>assistant\n]
   byte-identical to the model's chat_template.jinja without tools. With n_tools > 0 it follows
   LiquidAI's tool-use template: a leading system message becomes
       <|im_start|>system\nSYSTEM\nList of tools: <|tool_list_start|>[T1, T2]<|tool_list_end|><|im_end|>\n
   (each tools_json[i] is one tool's JSON text, inserted verbatim) and "tool" messages are wrapped
   in <|tool_response_start|>...<|tool_response_end|>. Only role and content are read (content
   NULL = ""). The older, text-only entry point: lfm2_chat_render covers the three templates and
   lfm2_chat_tokenize feeds a model safely. Needs no model. LFM2_ERR_INVALID_ARG for a NULL
   role/tool or n < 0; sizes as in SIZE QUERIES. */
LFM2_API lfm2_result lfm2_chat_format(const lfm2_chat_message *msgs, int32_t n, const char *const *tools_json,
                                      int32_t n_tools, int add_generation_prompt, char *buf, size_t cap,
                                      size_t *n_out);

/* One parsed tool call: name and arguments (a JSON object, printed as Python's json.dumps
   prints it: {"city": "Paris", "n": 5}) point into the caller's buffer, NUL-terminated. */
typedef struct lfm2_tool_call {
    const char *name;
    size_t name_len;
    const char *arguments;
    size_t arguments_len;
} lfm2_tool_call;

/* Parses the text LFM2 writes between <|tool_call_start|> and <|tool_call_end|>: a Python list
   of keyword calls, [name(arg=value, ...), ...], with the meaning Python's ast.literal_eval
   gives each value: strings in either quote style with Python's escapes (\n \t \\ \' \" \xNN
   \uNNNN \UNNNNNNNN \N is refused, octal), integers and floats (exponents, signs, underscores),
   True / False / None, lists, tuples (as lists), dicts with string keys, nested, any Unicode.
   Names are identifiers, dotted ("ns.tool"). Refused, with the byte offset in *err_offset
   (optional) and err's message: positional arguments, a repeated argument name, any expression
   (names, operators, calls inside values, comprehensions), unterminated strings, prefixes
   (b'', r'', f''), sets, non-finite numbers, duplicate dict keys, and anything before or after
   the list: LFM2_ERR_INVALID_ARG. Dict keys are compared as the strings they decode to, not as
   written ({'a': 1, "a": 2}, {'a': 1, '\x61': 2} and {'ab': 1, 'a' 'b': 2} repeat a key; the
   offset is the second one's). Python's dict would keep the last value; a call whose arguments
   say two things is refused instead, like a repeated argument name (which Python refuses too).
   Names (the call's, each part of a dotted one, the arguments') are compared and printed as
   written, and that is exact to Python, which NFKC-normalizes identifiers: a non-ASCII
   character is accepted only where Python accepts it (XID_Start first, XID_Continue after;
   Unicode 14.0, Python 3.11's) and if it keeps the name NFKC-stable (NFKC(c) == c, combining
   class 0, not composing with the character before it; >>ident-table). The other non-ASCII
   characters in a name are refused, at their offset: the ones Python refuses (f(a\u20ac=1)),
   the ones it would normalize to another name (f(\ufb01=1) is f(fi=1) there, f(e\u0301=1) is
   f(\u00e9=1)) and, stricter than Python, any of nonzero combining class (the virama U+094D).
   On success calls[0..*n_calls) (*n_calls may exceed max_calls only with
   LFM2_ERR_BUFFER_TOO_SMALL) and buf[0..*n_out) holds the names and arguments. buf NULL, cap 0,
   calls NULL, max_calls 0 is a size query; otherwise a short buf or calls gives
   LFM2_ERR_BUFFER_TOO_SMALL with *n_out and *n_calls the sizes needed.
   Allocates nothing. */
LFM2_API lfm2_result lfm2_tool_calls_parse(const char *text, size_t len, lfm2_tool_call *calls, int32_t max_calls,
                                           int32_t *n_calls, char *buf, size_t cap, size_t *n_out,
                                           size_t *err_offset, lfm2_error *err);

/* Streaming splitter of generated text. Fed the pieces of an answer as they arrive (token
   texts, any cut), it passes every byte on exactly once, in order, tagged with its channel:
   content, reasoning (between <think> and </think>), tool-call text (between
   <|tool_call_start|> and <|tool_call_end|>; parse it with lfm2_tool_calls_parse once the end
   marker arrives) and the markers themselves. A piece that ends with the start of a marker is
   held back (at most 18 bytes) until the next piece decides. The concatenation of everything
   emitted is the concatenation of everything pushed. Caller-owned, no allocation. */
enum { LFM2_CHAT_CONTENT = 0, LFM2_CHAT_REASONING = 1, LFM2_CHAT_TOOL_CALL = 2, LFM2_CHAT_MARKER = 3 };
typedef struct lfm2_chat_splitter {
    int32_t channel;  /* where the next text goes: CONTENT, REASONING or TOOL_CALL */
    int32_t n_held;
    char held[24];    /* a held-back marker start */
} lfm2_chat_splitter;
/* channel: LFM2_CHAT_MARKER for a marker ("<think>", "</think>", "<|tool_call_start|>",
   "<|tool_call_end|>"), else where text goes. text is valid during the call; len > 0. */
typedef void (*lfm2_chat_emit_fn)(void *user, int channel, const char *text, size_t len);
/* Starts an answer. in_reasoning = 1 when the prompt already opened <think> (the answer starts
   inside the reasoning). */
LFM2_API void lfm2_chat_splitter_init(lfm2_chat_splitter *s, int in_reasoning);
/* Feeds piece[0..len) and emits what is decided. LFM2_ERR_INVALID_ARG for NULL s / emit, or a
   NULL piece with len > 0. */
LFM2_API lfm2_result lfm2_chat_splitter_push(lfm2_chat_splitter *s, const char *piece, size_t len, lfm2_chat_emit_fn emit,
                                             void *user);
/* End of the answer: emits the held-back bytes (on the current channel) and starts over in
   content. */
LFM2_API lfm2_result lfm2_chat_splitter_flush(lfm2_chat_splitter *s, lfm2_chat_emit_fn emit, void *user);

/* The sampling recipe of a model's generation_config.json text, as transformers' generate()
   would use it: when the file sets any of do_sample, temperature, top_k, top_p, min_p,
   repetition_penalty, *out is transformers' defaults (temperature 1, top_k 50, top_p 1, no
   min_p or penalty) overridden by the file, and greedy (temperature 0) unless do_sample is
   true; *found = 1. Otherwise (LFM2's files carry no recipe) *out = the model-card recipe
   (lfm2_sampler_default_params) and *found = 0. Seed 0. Read as json.loads reads the file:
   keys compared decoded ("top\u005fk" is top_k), a key given twice counts with its last value,
   null is absent; other keys are ignored. LFM2_ERR_BAD_CONFIG (message naming the key) for
   malformed JSON (text after the object included), a value of the wrong type (do_sample not a
   boolean, the others not numbers) or out of range: temperature in [0, FLT_MAX], top_k an
   integer in [0, 2^31), top_p and min_p in [0, 1], repetition_penalty in (0, FLT_MAX].
   json NULL (len 0): the fallback. */
LFM2_API lfm2_result lfm2_sampler_params_from_generation_config(const char *json, size_t len, lfm2_sampler_params *out,
                                                                int *found, lfm2_error *err);

#ifdef __cplusplus
}
#endif
#endif /* LFM2_H_INCLUDED */

/* ========================================================================================== */
/*                                      IMPLEMENTATION                                        */
/* ========================================================================================== */
#if defined(LFM2_IMPLEMENTATION) && !defined(LFM2__IMPLEMENTATION_DONE)
#define LFM2__IMPLEMENTATION_DONE

/* >>config --------------------------------------------------------------------------------- */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <stdarg.h>
#include <math.h>
#include <float.h>

/* the file layer of lfm2_model_load_dir (>>files): POSIX open / fstat / read / mmap, Win32
   CreateFileW / ReadFile / CreateFileMapping (UTF-8 paths through the wide API), or plain stdio */
#include <errno.h>
#if !defined(LFM2_NO_STDIO) && (defined(__unix__) || defined(__APPLE__)) && !defined(__wasi__)
#define LFM2__POSIX_FILES 1
#include <sys/types.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#if !defined(LFM2_NO_MMAP)
#define LFM2__HAVE_MMAP 1
#define LFM2__POSIX_MMAP 1
#include <sys/mman.h>
#endif
#elif !defined(LFM2_NO_STDIO) && defined(_WIN32)
#define LFM2__WIN32_FILES 1
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#if !defined(LFM2_NO_MMAP)
#define LFM2__HAVE_MMAP 1
#define LFM2__WIN32_MMAP 1
#endif
#endif
/* Multi-byte values are stored little-endian (safetensors, the quantized formats): a big-endian
   host byte-swaps the tensors at load (>>files). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LFM2__BIG_ENDIAN 1
#endif

/* Instruction sets (see >>formats): every kernel the compiler can target is compiled in every build
   and the best one the CPU supports is chosen at load. On x86-64 GCC and Clang compile each
   kernel with its own target attribute (no -m flags needed), MSVC compiles the intrinsics as
   they are; NEON is the aarch64 baseline, its dot-product and bf16 kernels need the compiler to
   target them (-march=armv8.2-a+dotprod, armv8.6-a+bf16). */
#if !defined(LFM2_NO_SIMD) && (defined(__x86_64__) || defined(_M_X64)) && !defined(_M_ARM64EC)
#if defined(__GNUC__) || defined(__clang__)
#define LFM2__TGT(s) __attribute__((target(s)))
#if defined(__clang__) ? (__clang_major__ >= 9) : (__GNUC__ >= 10)
#define LFM2__X86_TARGETS 1  /* the compiler knows every target below (avx512bf16: GCC 10, Clang 9) */
#endif
#elif defined(_MSC_VER) && _MSC_VER >= 1920
#define LFM2__TGT(s)
#define LFM2__X86_TARGETS 1
#endif
#endif
#ifdef LFM2__X86_TARGETS
#include <immintrin.h>
#if !defined(LFM2_NO_AVX2)
#define LFM2__HAVE_AVX2 1
#define LFM2__TGT_AVX2 LFM2__TGT("avx2,fma,f16c")
#endif
#if !defined(LFM2_NO_AVX512) && !defined(LFM2_NO_AVX2)
#define LFM2__HAVE_AVX512 1
#define LFM2__TGT_AVX512 LFM2__TGT("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#define LFM2__TGT_VNNI LFM2__TGT("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#define LFM2__TGT_BF16 LFM2__TGT("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma,f16c")
#endif
#endif
/* aarch64: NEON is the baseline. The dot-product (sdot) and bf16 (bfdot) kernels are compiled in
   when the compiler targets them (-march=armv8.2-a+dotprod, armv8.6-a+bf16; the int8 matrix
   multiplies (usmmla) with armv8.6-a or +i8mm), or, with GCC 11 and
   later, always, each with its own target attribute, and chosen at load from the hardware
   capabilities (Linux getauxval, Apple sysctl, Windows IsProcessorFeaturePresent). Clang's
   arm_neon.h before Clang 16 declares those intrinsics only for a -march that has them, so with
   Clang they need the -march flag. */
#if !defined(LFM2_NO_SIMD) && !defined(LFM2_NO_NEON) && (defined(__aarch64__) || defined(_M_ARM64))
#define LFM2__HAVE_NEON 1
#define LFM2__TGT_NEON
#include <arm_neon.h>
#if defined(__ARM_FEATURE_DOTPROD)
#define LFM2__HAVE_NEON_DOT 1
#define LFM2__TGT_NDOT
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define LFM2__HAVE_NEON_DOT 1
#define LFM2__TGT_NDOT __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#define LFM2__HAVE_NEON_BF16 1
#define LFM2__TGT_NBF16
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define LFM2__HAVE_NEON_BF16 1
#define LFM2__TGT_NBF16 __attribute__((target("arch=armv8.2-a+bf16")))
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8) && defined(__ARM_FEATURE_DOTPROD)
#define LFM2__HAVE_NEON_I8MM 1
#define LFM2__TGT_NI8MM
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define LFM2__HAVE_NEON_I8MM 1
#define LFM2__TGT_NI8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#endif
#if defined(__linux__) && !defined(__ANDROID_API__) || defined(__ANDROID_API__) && __ANDROID_API__ >= 18
#include <sys/auxv.h>
#define LFM2__ARM_AUXV 1
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#define LFM2__ARM_SYSCTL 1
#endif
#endif

/* 32-bit ARM (armv7-a, e.g. Android armeabi-v7a) with NEON (-mfpu=neon or neon-vfpv4, hard or
   softfp float ABI): row-major f32 / bf16 and Q8 / Q4 kernels at the NEON level (fused
   multiply-adds where the FPU has them: VFPv4) */
#if !defined(LFM2_NO_SIMD) && !defined(LFM2_NO_NEON) && defined(__arm__) && defined(__ARM_NEON) && !defined(__aarch64__)
#define LFM2__HAVE_NEON32 1
#include <arm_neon.h>
#endif
/* WebAssembly: the SIMD128 kernels when the module is built with -msimd128 (an engine without
   SIMD refuses such a module, so the level is fixed at compile time) */
#if !defined(LFM2_NO_SIMD) && !defined(LFM2_NO_WASM_SIMD) && defined(__wasm_simd128__)
#define LFM2__HAVE_WASM 1
#include <wasm_simd128.h>
#endif

/* GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
   operands) wherever they are inlined: GCC bug 105593, fixed in GCC 13. Silenced for the
   implementation on the affected compilers only. */
#if defined(LFM2__HAVE_AVX512) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define LFM2__GCC_PR105593 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized" /* (the same, as g++ 12 -O1 reports it: MinGW-w64) */
#endif

#if defined(_OPENMP) && !defined(LFM2_NO_OPENMP)
#define LFM2__OPENMP 1
#include <omp.h>
#endif

#ifndef LFM2_MAX_LAYERS
#define LFM2_MAX_LAYERS LFM2_CONFIG_LAYERS
#endif
#if LFM2_MAX_LAYERS < 1 || LFM2_MAX_LAYERS > LFM2_CONFIG_LAYERS
#error "LFM2_MAX_LAYERS must be in [1, 256] (LFM2_CONFIG_LAYERS, the size of lfm2_config.layer_is_attention)"
#endif
/* threads of the built-in pool (>>threads) */
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#if !defined(LFM2_NO_THREADS)
#define LFM2__WIN32_THREADS 1
#endif
#elif !defined(LFM2_NO_THREADS) && (defined(__unix__) || defined(__APPLE__)) && !defined(__wasi__)
#define LFM2__PTHREADS 1
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#endif

#ifndef LFM2_MAX_DIM
#define LFM2_MAX_DIM 65536
#endif
#ifndef LFM2_MAX_VOCAB
#define LFM2_MAX_VOCAB 1048576
#endif
#ifndef LFM2_MAX_EXPERTS
#define LFM2_MAX_EXPERTS 1024
#endif
#define LFM2__MAX_JSON_DEPTH 64
#define LFM2__DEFAULT_CTX 4096
#define LFM2__DEFAULT_BATCH 64

#if defined(__GNUC__) || defined(__clang__)
#define LFM2__MAYBE_UNUSED __attribute__((unused))
#define LFM2__INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define LFM2__MAYBE_UNUSED
#define LFM2__INLINE __forceinline
#else
#define LFM2__MAYBE_UNUSED
#define LFM2__INLINE inline
#endif

#ifdef __cplusplus
#define LFM2__CAST(T, x) (static_cast<T>(x))
#define LFM2__PTRINT(p) (reinterpret_cast<uintptr_t>(p))
#else
#define LFM2__CAST(T, x) ((T)(x))
#define LFM2__PTRINT(p) ((uintptr_t)(p))
#endif

/* >>util ----------------------------------------------------------------------------------- */

static void *lfm2__malloc(const lfm2_allocator *a, size_t n) {
    if (n == 0) n = 1;
    if (a && a->alloc) return a->alloc(a->user, n);
    return malloc(n);
}
static void lfm2__free(const lfm2_allocator *a, void *p) {
    if (!p) return;
    if (a && a->free) a->free(a->user, p);
    else free(p);
}
static void *lfm2__calloc(const lfm2_allocator *a, size_t n) {
    void *p = lfm2__malloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

/* Big buffers of weights (the converted layouts). huge: lfm2_model_params.huge_pages, where the
   kernel has transparent huge pages on request (Linux madvise mode): ~500x fewer page faults
   while the buffer is first written, fewer TLB misses while decode streams it. */
static void *lfm2__malloc_big(const lfm2_allocator *a, size_t n, int huge) {
    void *p = lfm2__malloc(a, n);
#if defined(LFM2__HAVE_MMAP) && defined(MADV_HUGEPAGE)
    if (p && huge && !(a && a->alloc) && n >= (4u << 20)) {
        size_t hp = LFM2__CAST(size_t, 2) << 20;
        size_t skip = (hp - (LFM2__PTRINT(p) & (hp - 1))) & (hp - 1); /* to the first 2 MB boundary */
        if (n > skip + hp) madvise(LFM2__CAST(char *, p) + skip, (n - skip) & ~(hp - 1), MADV_HUGEPAGE); /* (advice: failure is fine) */
    }
#else
    (void)huge;
#endif
    return p;
}
/* Writes "message" into err (if any) and returns code. */
static lfm2_result lfm2__fail(lfm2_error *err, lfm2_result code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* overflow-checked size arithmetic: return 0 on overflow */
static int lfm2__mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static int lfm2__add_ok(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

static float lfm2__bf16_to_f32(uint16_t h) {
    uint32_t u = LFM2__CAST(uint32_t, h) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float lfm2__f16_to_f32(uint16_t h) {
    uint32_t sign = LFM2__CAST(uint32_t, h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    float f;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: value = man * 2^-24 */
            f = LFM2__CAST(float, man) * 5.9604644775390625e-08f;
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    memcpy(&f, &u, 4);
    return f;
}
LFM2__MAYBE_UNUSED static uint16_t lfm2__f32_to_f16(float f) { /* round to nearest even */
    uint32_t u, sign, mant;
    int32_t e;
    memcpy(&u, &f, 4);
    sign = (u >> 16) & 0x8000u;
    e = LFM2__CAST(int32_t, (u >> 23) & 0xffu);
    mant = u & 0x7fffffu;
    if (e == 255) return LFM2__CAST(uint16_t, sign | 0x7c00u | (mant ? 0x200u : 0u));
    e -= 127 - 15;
    if (e >= 31) return LFM2__CAST(uint16_t, sign | 0x7c00u);
    if (e <= 0) {
        uint32_t shift, r, half;
        if (e < -10) return LFM2__CAST(uint16_t, sign);
        mant |= 0x800000u;
        shift = LFM2__CAST(uint32_t, 14 - e);
        r = mant >> shift;
        half = 1u << (shift - 1);
        if ((mant & ((half << 1) - 1)) > half || ((mant & ((half << 1) - 1)) == half && (r & 1u))) r++;
        return LFM2__CAST(uint16_t, sign | r);
    }
    {
        uint32_t r = (LFM2__CAST(uint32_t, e) << 10) | (mant >> 13);
        uint32_t rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) r++;
        return LFM2__CAST(uint16_t, sign | r);
    }
}
LFM2__MAYBE_UNUSED static uint16_t lfm2__f32_to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return LFM2__CAST(uint16_t, (u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return LFM2__CAST(uint16_t, u >> 16);
}

static uint64_t lfm2__rd_u64le(const unsigned char *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* >>json ----------------------------------------------------------------------------------- */
/* A bounded, non-recursive-descent-free JSON reader: one validating pass that counts tokens, one
   pass that fills a flat token array. Each token records its byte span and the index just past
   its subtree (`skip`), so siblings are walked in O(1). Strings stay escaped in the source;
   lfm2__json_str unescapes on demand. Depth is limited to LFM2__MAX_JSON_DEPTH. */

enum { LFM2__J_OBJ = 1, LFM2__J_ARR, LFM2__J_STR, LFM2__J_NUM, LFM2__J_TRUE, LFM2__J_FALSE, LFM2__J_NULL };

typedef struct lfm2__jtok {
    uint8_t type;
    uint32_t start, end;   /* byte span in the source (strings: inside the quotes) */
    int32_t n;             /* OBJ: number of key/value pairs; ARR: number of elements */
    int32_t skip;          /* index of the first token after this subtree */
} lfm2__jtok;

typedef struct lfm2__json {
    const char *src;
    size_t len;
    lfm2__jtok *tok;
    int32_t n_tok;
} lfm2__json;

static int lfm2__json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Records scalar token nt (tok may be NULL during the counting pass). */
static void lfm2__jtok_scalar(lfm2__jtok *tok, int64_t nt, uint8_t type, size_t start, size_t end) {
    if (!tok) return;
    tok[nt].type = type;
    tok[nt].start = LFM2__CAST(uint32_t, start);
    tok[nt].end = LFM2__CAST(uint32_t, end);
    tok[nt].n = 0;
    tok[nt].skip = LFM2__CAST(int32_t, nt + 1);
}

/* One pass. With tok == NULL it only validates and counts. Returns token count or -1 (with
   *err_off set to the offending byte). */
static int64_t lfm2__json_pass(const char *s, size_t len, lfm2__jtok *tok, size_t *err_off, const char **why) {
    size_t i = 0;
    int64_t nt = 0;
    int32_t stack[LFM2__MAX_JSON_DEPTH];   /* token index of open containers */
    int64_t stack_cnt[LFM2__MAX_JSON_DEPTH];
    int depth = 0;
    int expect_value = 1;  /* 1 value, 2 key (or '}'), 3 ':' , 4 ',' or close */
    int root_done = 0;
#define LFM2__JERR(msg) do { *err_off = i; *why = (msg); return -1; } while (0)
    for (;;) {
        char c;
        while (i < len && lfm2__json_ws(s[i])) i++;
        if (i >= len) break;
        c = s[i];
        if (root_done) LFM2__JERR("trailing characters after the JSON value");
        if (expect_value == 3) {
            if (c != ':') LFM2__JERR("expected ':'");
            i++;
            expect_value = 1;
            continue;
        }
        if (expect_value == 4) {
            if (c == ',') {
                i++;
                expect_value = (stack_cnt[depth - 1] < 0) ? 2 : 1;
                /* stack_cnt < 0 marks objects */
                continue;
            }
            if (c == '}' || c == ']') goto close_container;
            LFM2__JERR("expected ',' or a closing bracket");
        }
        if (c == '}' || c == ']') {
            /* empty container close, or close right after '{' / '[' */
            if (depth == 0) LFM2__JERR("unbalanced closing bracket");
            if (expect_value == 1 && !(c == ']' && stack_cnt[depth - 1] == 0)) LFM2__JERR("expected a value");
            if (expect_value == 2 && stack_cnt[depth - 1] != -1) LFM2__JERR("expected a key");
            goto close_container;
        }
        if (expect_value == 2 && c != '"') LFM2__JERR("expected a string key");
        /* a value (or key) starts here */
        if (c == '{' || c == '[') {
            if (depth >= LFM2__MAX_JSON_DEPTH) LFM2__JERR("nesting too deep");
            if (nt >= INT32_MAX - 1) LFM2__JERR("too many JSON tokens");
            if (depth > 0) { if (stack_cnt[depth - 1] < 0) stack_cnt[depth - 1]--; else stack_cnt[depth - 1]++; }
            if (tok) {
                tok[nt].type = LFM2__CAST(uint8_t, c == '{' ? LFM2__J_OBJ : LFM2__J_ARR);
                tok[nt].start = LFM2__CAST(uint32_t, i);
                tok[nt].n = 0;
            }
            stack[depth] = LFM2__CAST(int32_t, nt);
            stack_cnt[depth] = (c == '{') ? -1 : 0;  /* objects count down from -1 */
            depth++;
            nt++;
            i++;
            expect_value = (c == '{') ? 2 : 1;
            continue;
        }
        if (nt >= INT32_MAX - 1) LFM2__JERR("too many JSON tokens");
        if (c == '"') {
            size_t st = ++i;
            int is_key = (expect_value == 2);
            while (i < len && s[i] != '"') {
                unsigned char ch = LFM2__CAST(unsigned char, s[i]);
                if (ch < 0x20) LFM2__JERR("control character in string");
                if (ch == '\\') {
                    i++;
                    if (i >= len) break;
                    ch = LFM2__CAST(unsigned char, s[i]);
                    if (ch == 'u') {
                        int k;
                        for (k = 1; k <= 4; k++) {
                            char h = (i + LFM2__CAST(size_t, k) < len) ? s[i + LFM2__CAST(size_t, k)] : 0;
                            if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) {
                                i += LFM2__CAST(size_t, k);
                                LFM2__JERR("bad \\u escape");
                            }
                        }
                        i += 4;
                    } else if (!(ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f' || ch == 'n' || ch == 'r' || ch == 't')) {
                        LFM2__JERR("bad escape in string");
                    }
                }
                i++;
            }
            if (i >= len) LFM2__JERR("unterminated string");
            if (st > 0xffffffffu || i > 0xffffffffu) LFM2__JERR("JSON text larger than 4 GiB");
            lfm2__jtok_scalar(tok, nt, LFM2__J_STR, st, i);
            i++;
            nt++;
            if (is_key) { expect_value = 3; continue; }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t st = i;
            if (s[i] == '-') i++;
            if (i >= len || !(s[i] >= '0' && s[i] <= '9')) LFM2__JERR("bad number");
            if (s[i] == '0') i++;
            else while (i < len && s[i] >= '0' && s[i] <= '9') i++;
            if (i < len && s[i] == '.') {
                i++;
                if (i >= len || !(s[i] >= '0' && s[i] <= '9')) LFM2__JERR("bad number");
                while (i < len && s[i] >= '0' && s[i] <= '9') i++;
            }
            if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < len && (s[i] == '+' || s[i] == '-')) i++;
                if (i >= len || !(s[i] >= '0' && s[i] <= '9')) LFM2__JERR("bad number");
                while (i < len && s[i] >= '0' && s[i] <= '9') i++;
            }
            if (i > 0xffffffffu) LFM2__JERR("JSON text larger than 4 GiB");
            lfm2__jtok_scalar(tok, nt, LFM2__J_NUM, st, i);
            nt++;
        } else {
            const char *word;
            uint8_t ty;
            size_t wl;
            if (c == 't') { word = "true"; ty = LFM2__J_TRUE; }
            else if (c == 'f') { word = "false"; ty = LFM2__J_FALSE; }
            else if (c == 'n') { word = "null"; ty = LFM2__J_NULL; }
            else LFM2__JERR("unexpected character");
            wl = strlen(word);
            if (len - i < wl || memcmp(s + i, word, wl) != 0) LFM2__JERR("bad literal");
            if (i + wl > 0xffffffffu) LFM2__JERR("JSON text larger than 4 GiB");
            lfm2__jtok_scalar(tok, nt, ty, i, i + wl);
            i += wl;
            nt++;
        }
        /* a scalar value completed */
        if (depth == 0) root_done = 1;
        else {
            if (stack_cnt[depth - 1] < 0) stack_cnt[depth - 1]--; /* objects count values downwards */
            else stack_cnt[depth - 1]++;
            expect_value = 4;
        }
        continue;
    close_container:
        {
            int32_t open = stack[depth - 1];
            int is_obj = stack_cnt[depth - 1] < 0;
            if ((c == '}') != is_obj) LFM2__JERR("mismatched bracket");
            if (tok) {
                int64_t cnt = is_obj ? (-stack_cnt[depth - 1] - 1) : stack_cnt[depth - 1];
                tok[open].n = LFM2__CAST(int32_t, cnt);
                tok[open].end = LFM2__CAST(uint32_t, i + 1);
                tok[open].skip = LFM2__CAST(int32_t, nt);
            }
            depth--;
            i++;
            if (depth == 0) root_done = 1;
            else expect_value = 4;
        }
    }
    if (!root_done) { *err_off = i; *why = depth ? "unexpected end of JSON text" : "empty JSON text"; return -1; }
#undef LFM2__JERR
    return nt;
}

/* Parses src into j (allocating the token array). what = file name for messages. */
static lfm2_result lfm2__json_parse(lfm2__json *j, const char *src, size_t len, const lfm2_allocator *a,
                                    lfm2_error *err, lfm2_result code, const char *what) {
    size_t off = 0, bytes;
    const char *why = "";
    int64_t n;
    memset(j, 0, sizeof *j);
    if (!src) return lfm2__fail(err, code, "%s: no data", what);
    if (len >= 0xffffffffu) return lfm2__fail(err, code, "%s: larger than 4 GiB", what);
    n = lfm2__json_pass(src, len, NULL, &off, &why);
    if (n < 0) return lfm2__fail(err, code, "%s: invalid JSON at byte %zu: %s", what, off, why);
    if (!lfm2__mul_ok(LFM2__CAST(size_t, n), sizeof(lfm2__jtok), &bytes))
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "%s: too many tokens", what);
    j->tok = LFM2__CAST(lfm2__jtok *, lfm2__malloc(a, bytes));
    if (!j->tok) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu JSON tokens", what, (size_t)n);
    lfm2__json_pass(src, len, j->tok, &off, &why);
    j->src = src;
    j->len = len;
    j->n_tok = LFM2__CAST(int32_t, n);
    return LFM2_OK;
}
static void lfm2__json_free(lfm2__json *j, const lfm2_allocator *a) {
    lfm2__free(a, j->tok);
    j->tok = NULL;
}

/* Compares the (escaped) string token i with a plain ASCII key without escapes. */
static int lfm2__json_str_is(const lfm2__json *j, int32_t i, const char *key) {
    size_t kl = strlen(key);
    const lfm2__jtok *t;
    if (i < 0 || i >= j->n_tok) return 0;
    t = &j->tok[i];
    if (t->type != LFM2__J_STR) return 0;
    if (t->end - t->start != kl) return 0;
    return memcmp(j->src + t->start, key, kl) == 0;
}
/* Value index of `key` in object `obj` (its last occurrence), or -1. */
static int32_t lfm2__json_get(const lfm2__json *j, int32_t obj, const char *key) {
    int32_t k, c;
    if (obj < 0 || j->tok[obj].type != LFM2__J_OBJ) return -1;
    c = obj + 1;
    int32_t found = -1;
    for (k = 0; k < j->tok[obj].n; k++) {
        int32_t v = c + 1;
        if (lfm2__json_str_is(j, c, key)) found = v; /* a key given twice: the last value (as Python's json) */
        c = j->tok[v].skip;
    }
    return found;
}
/* Element `idx` of array `arr`, or -1. */
LFM2__MAYBE_UNUSED static int32_t lfm2__json_at(const lfm2__json *j, int32_t arr, int32_t idx) {
    int32_t k, c;
    if (arr < 0 || j->tok[arr].type != LFM2__J_ARR || idx < 0 || idx >= j->tok[arr].n) return -1;
    c = arr + 1;
    for (k = 0; k < idx; k++) c = j->tok[c].skip;
    return c;
}
/* Strict JSON number -> double without locale dependence. Returns 0 if not a number token. */
static int lfm2__json_num(const lfm2__json *j, int32_t i, double *out) {
    const char *s, *e;
    int neg = 0, ex = 0, exneg = 0, nd = 0;
    uint64_t mant = 0;
    double v;
    if (i < 0 || j->tok[i].type != LFM2__J_NUM) return 0;
    s = j->src + j->tok[i].start;
    e = j->src + j->tok[i].end;
    if (*s == '-') { neg = 1; s++; }
    for (; s < e && *s >= '0' && *s <= '9'; s++) {
        if (nd < 19) { mant = mant * 10u + LFM2__CAST(uint64_t, *s - '0'); if (mant) nd++; }
        else ex++;
    }
    if (s < e && *s == '.') {
        for (s++; s < e && *s >= '0' && *s <= '9'; s++) {
            if (nd < 19) { mant = mant * 10u + LFM2__CAST(uint64_t, *s - '0'); if (mant) nd++; ex--; }
        }
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        int x = 0;
        s++;
        if (*s == '-') { exneg = 1; s++; } else if (*s == '+') s++;
        for (; s < e && *s >= '0' && *s <= '9'; s++) if (x < 100000) x = x * 10 + (*s - '0');
        ex += exneg ? -x : x;
    }
    v = LFM2__CAST(double, mant);
    if (mant != 0) {
        /* scale by 10^ex using exact powers where possible */
        static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        while (ex > 0) { int k = ex > 22 ? 22 : ex; v *= p10[k]; ex -= k; if (v > DBL_MAX) break; }
        while (ex < 0) { int k = -ex > 22 ? 22 : -ex; v /= p10[k]; ex += k; if (v == 0) break; }
    }
    *out = neg ? -v : v;
    return 1;
}
/* Integer value of token i if it is a number holding an integer in [lo, hi]. */
static int lfm2__json_int(const lfm2__json *j, int32_t i, int64_t lo, int64_t hi, int64_t *out) {
    double v;
    if (!lfm2__json_num(j, i, &v)) return 0;
    /* (double)INT64_MAX rounds up to 2^63, which does not fit: compare against 2^63 itself */
    if (!(v >= LFM2__CAST(double, lo) && v < 9223372036854775808.0) || v != floor(v)) return 0;
    if (LFM2__CAST(int64_t, v) > hi) return 0;
    *out = LFM2__CAST(int64_t, v);
    return 1;
}

static void lfm2__utf8_put(uint32_t cp, char *out, size_t *n) {
    if (cp < 0x80) out[(*n)++] = LFM2__CAST(char, cp);
    else if (cp < 0x800) {
        out[(*n)++] = LFM2__CAST(char, 0xc0 | (cp >> 6));
        out[(*n)++] = LFM2__CAST(char, 0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = LFM2__CAST(char, 0xe0 | (cp >> 12));
        out[(*n)++] = LFM2__CAST(char, 0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = LFM2__CAST(char, 0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = LFM2__CAST(char, 0xf0 | (cp >> 18));
        out[(*n)++] = LFM2__CAST(char, 0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = LFM2__CAST(char, 0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = LFM2__CAST(char, 0x80 | (cp & 0x3f));
    }
}
static uint32_t lfm2__hex4(const char *p) {
    uint32_t v = 0;
    int k;
    for (k = 0; k < 4; k++) {
        char h = p[k];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= LFM2__CAST(uint32_t, h - '0');
        else if (h >= 'a' && h <= 'f') v |= LFM2__CAST(uint32_t, h - 'a' + 10);
        else v |= LFM2__CAST(uint32_t, h - 'A' + 10);
    }
    return v;
}
/* Decodes the next character of an escaped JSON string span [*s, e) into out (1-4 bytes) and
   advances *s. Lone surrogates become U+FFFD. The span was validated by lfm2__json_pass. */
static size_t lfm2__json_char(const char **sp, const char *e, char *out) {
    const char *s = *sp;
    size_t w = 0;
    if (*s != '\\') { out[0] = *s; *sp = s + 1; return 1; }
    if (s[1] != 'u') {
        switch (s[1]) {
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        default: out[0] = s[1]; break;   /* \" \\ \/ */
        }
        *sp = s + 2;
        return 1;
    }
    {
        uint32_t cp = lfm2__hex4(s + 2);
        s += 6;
        if (cp >= 0xd800 && cp < 0xdc00) {
            uint32_t lo = (e - s >= 6 && s[0] == '\\' && s[1] == 'u') ? lfm2__hex4(s + 2) : 0;
            if (lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000u + ((cp - 0xd800u) << 10) + (lo - 0xdc00u);
                s += 6;
            } else cp = 0xfffd;
        } else if (cp >= 0xdc00 && cp < 0xe000) cp = 0xfffd;
        lfm2__utf8_put(cp, out, &w);
        *sp = s;
        return w;
    }
}
/* Unescapes string token i into out (which needs at most (end-start) bytes: unescaping never
   grows a string). Returns the byte length, or -1 if not a string. out may be NULL to measure. */
static int64_t lfm2__json_str(const lfm2__json *j, int32_t i, char *out) {
    const char *s, *e;
    size_t n = 0;
    char one[4];
    if (i < 0 || j->tok[i].type != LFM2__J_STR) return -1;
    s = j->src + j->tok[i].start;
    e = j->src + j->tok[i].end;
    while (s < e) {
        size_t w = lfm2__json_char(&s, e, one);
        if (out) memcpy(out + n, one, w);
        n += w;
    }
    return LFM2__CAST(int64_t, n);
}
/* Compares unescaped string token i with bytes (p, n). */
static int lfm2__json_str_eq(const lfm2__json *j, int32_t i, const char *p, size_t n) {
    const char *s, *e;
    size_t pos = 0;
    char one[4];
    if (i < 0 || j->tok[i].type != LFM2__J_STR) return 0;
    s = j->src + j->tok[i].start;
    e = j->src + j->tok[i].end;
    while (s < e) {
        size_t w = lfm2__json_char(&s, e, one);
        if (pos + w > n || memcmp(p + pos, one, w) != 0) return 0;
        pos += w;
    }
    return pos == n;
}

/* >>configjson ----------------------------------------------------------------------------- */
/* config.json -> lfm2_config. Both key styles are read:
     released checkpoints: block_ff_dim (overrides intermediate_size), full_attn_idxs, rope_theta or
                           theta, tie_embedding, block_dim / conv_dim (checked == hidden_size)
     transformers 5:       intermediate_size, layer_types, rope_parameters, tie_word_embeddings
   then lfm2__config_finalize derives F (the FFN width), the layer kinds and checks the caps. */

typedef struct lfm2__cfgread {
    const lfm2__json *j;
    lfm2_error *err;
    lfm2_result rc;
} lfm2__cfgread;

/* Reads an integer key. Absent -> *out = def (or error if required). */
static int lfm2__cfg_int(lfm2__cfgread *r, const char *key, int required, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
    int32_t v = lfm2__json_get(r->j, 0, key);
    if (r->rc != LFM2_OK) return 0;
    if (v < 0 || r->j->tok[v].type == LFM2__J_NULL) {
        if (required) { r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: missing required key \"%s\"", key); return 0; }
        *out = def;
        return 1;
    }
    if (r->j->tok[v].type != LFM2__J_NUM) {
        r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" must be an integer", key);
        return 0;
    }
    if (!lfm2__json_int(r->j, v, lo, hi, out)) {
        r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" = %.*s is not an integer in [%lld, %lld]", key,
                           LFM2__CAST(int, r->j->tok[v].end - r->j->tok[v].start), r->j->src + r->j->tok[v].start,
                           LFM2__CAST(long long, lo), LFM2__CAST(long long, hi));
        return 0;
    }
    return 1;
}
static int lfm2__cfg_num_at(lfm2__cfgread *r, int32_t v, const char *key, double lo, double hi, double *out) {
    if (r->j->tok[v].type != LFM2__J_NUM || !lfm2__json_num(r->j, v, out)) {
        r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" must be a number", key);
        return 0;
    }
    if (!(*out >= lo && *out <= hi)) { /* also rejects NaN */
        r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" = %g is outside [%g, %g]", key, *out, lo, hi);
        return 0;
    }
    return 1;
}
static int lfm2__cfg_num(lfm2__cfgread *r, const char *key, double def, double lo, double hi, double *out) {
    int32_t v = lfm2__json_get(r->j, 0, key);
    if (r->rc != LFM2_OK) return 0;
    if (v < 0 || r->j->tok[v].type == LFM2__J_NULL) { *out = def; return 1; }
    return lfm2__cfg_num_at(r, v, key, lo, hi, out);
}
static int lfm2__cfg_bool(lfm2__cfgread *r, const char *key, int def, int *out) {
    int32_t v = lfm2__json_get(r->j, 0, key);
    if (r->rc != LFM2_OK) return 0;
    if (v < 0 || r->j->tok[v].type == LFM2__J_NULL) { *out = def; return 1; }
    if (r->j->tok[v].type == LFM2__J_TRUE) { *out = 1; return 1; }
    if (r->j->tok[v].type == LFM2__J_FALSE) { *out = 0; return 1; }
    r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" must be true or false", key);
    return 0;
}

/* Reads eos_token_id (a number or a list of numbers) into ids[*n..]. */
static int lfm2__cfg_eos(lfm2__cfgread *r, int32_t v, const char *what, int32_t *ids, int32_t *n) {
    int32_t k, cnt = 1, e = v;
    if (r->j->tok[v].type == LFM2__J_NULL) return 1;
    if (r->j->tok[v].type == LFM2__J_ARR) { cnt = r->j->tok[v].n; e = v + 1; }
    for (k = 0; k < cnt; k++, e = r->j->tok[e].skip) {
        int64_t id;
        int32_t q, dup = 0;
        if (!lfm2__json_int(r->j, e, 0, INT32_MAX, &id)) {
            r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "%s: eos_token_id must be a non-negative integer or a list of them", what);
            return 0;
        }
        for (q = 0; q < *n; q++) if (ids[q] == id) dup = 1;
        if (dup) continue;
        if (*n >= LFM2_CONFIG_EOS) {
            r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "%s: eos_token_id: more than %d distinct end-of-sequence ids%s; lfm2.h keeps at most %d (LFM2_CONFIG_EOS)",
                               what, LFM2_CONFIG_EOS, strcmp(what, "config.json") ? " together with config.json's" : "", LFM2_CONFIG_EOS);
            return 0;
        }
        ids[(*n)++] = LFM2__CAST(int32_t, id);
    }
    return 1;
}

static lfm2_result lfm2__config_finalize(lfm2_config *c, lfm2_error *err);

/* Keys that would change the model lfm2.h would run, refused rather than ignored: another
   architecture, a RoPE scaling, sliding-window attention, a multimodal wrapper, the MoE keys on a
   dense config and the dense FFN-width keys (block_ff_dim, an auto-adjust) on an MoE one. (A key
   given as null is absent.) */
static lfm2_result lfm2__config_refuse(lfm2__cfgread *r, int is_moe) {
    static const char *const never[4] = {"rope_scaling", "sliding_window", "text_config", "vision_config"};
    static const char *const moe_only[7] = {"num_experts", "num_experts_per_tok", "moe_intermediate_size", "num_dense_layers",
                                            "use_expert_bias", "norm_topk_prob", "routed_scaling_factor"};
    static const char *const dense_only[1] = {"block_ff_dim"};
    const lfm2__json *j = r->j;
    const char *arch = is_moe ? "Lfm2MoeForCausalLM" : "Lfm2ForCausalLM";
    int32_t a = lfm2__json_get(j, 0, "architectures"), k, e;
    if (a >= 0 && j->tok[a].type != LFM2__J_NULL) {
        if (j->tok[a].type != LFM2__J_ARR)
            return r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"architectures\" must be a list of strings");
        for (k = 0, e = a + 1; k < j->tok[a].n; k++, e = j->tok[e].skip)
            if (!lfm2__json_str_is(j, e, arch))
                return r->rc = lfm2__fail(r->err, LFM2_ERR_UNSUPPORTED, "config.json: key \"architectures\": %.*s is not %s (the only architecture of model_type \"%s\" lfm2.h runs)",
                                          LFM2__CAST(int, j->tok[e].end - j->tok[e].start > 80 ? 80 : j->tok[e].end - j->tok[e].start), j->src + j->tok[e].start,
                                          arch, is_moe ? "lfm2_moe" : "lfm2");
    }
    for (k = 0; k < 4; k++) {
        e = lfm2__json_get(j, 0, never[k]);
        if (e >= 0 && j->tok[e].type != LFM2__J_NULL)
            return r->rc = lfm2__fail(r->err, LFM2_ERR_UNSUPPORTED, "config.json: key \"%s\" is not supported (it would change the model; only null is accepted)", never[k]);
    }
    if (is_moe) { /* Lfm2MoeConfig has no FFN auto-adjust: true would be ignored by transformers too */
        e = lfm2__json_get(j, 0, "block_auto_adjust_ff_dim");
        if (e >= 0 && j->tok[e].type == LFM2__J_TRUE)
            return r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"block_auto_adjust_ff_dim\" = true: model_type \"lfm2_moe\" uses intermediate_size as given");
    }
    for (k = 0; k < (is_moe ? 1 : 7); k++) {
        const char *key = is_moe ? dense_only[k] : moe_only[k];
        e = lfm2__json_get(j, 0, key);
        if (e >= 0 && j->tok[e].type != LFM2__J_NULL)
            return r->rc = lfm2__fail(r->err, LFM2_ERR_BAD_CONFIG, "config.json: key \"%s\" belongs to model_type \"%s\", not \"%s\" (this config is \"%s\")", key,
                                      is_moe ? "lfm2" : "lfm2_moe", is_moe ? "lfm2_moe" : "lfm2", is_moe ? "lfm2_moe" : "lfm2");
    }
    return LFM2_OK;
}

static lfm2_result lfm2__config_parse(const char *json, size_t len, lfm2_config *out, const lfm2_allocator *a, lfm2_error *err);
LFM2_API lfm2_result lfm2_config_parse(const char *json, size_t len, lfm2_config *out, lfm2_error *err) {
    return lfm2__config_parse(json, len, out, NULL, err);
}
static lfm2_result lfm2__config_parse(const char *json, size_t len, lfm2_config *out, const lfm2_allocator *a, lfm2_error *err) {
    lfm2__json j;
    lfm2__cfgread r;
    lfm2_result rc;
    int64_t v;
    double d;
    int b;
    int32_t t, lt, fa;
    if (!json || !out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_config_parse: NULL argument");
    memset(out, 0, sizeof *out);
    rc = lfm2__json_parse(&j, json, len, a, err, LFM2_ERR_BAD_CONFIG, "config.json");
    if (rc != LFM2_OK) return rc;
    r.j = &j;
    r.err = err;
    r.rc = LFM2_OK;
    if (j.tok[0].type != LFM2__J_OBJ) { r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: the top level must be an object"); goto done; }
    t = lfm2__json_get(&j, 0, "model_type");
    if (t >= 0 && lfm2__json_str_is(&j, t, "lfm2_moe")) out->is_moe = 1;
    else if (t >= 0 && !lfm2__json_str_is(&j, t, "lfm2")) {
        r.rc = lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "config.json: model_type \"%.*s\" is not \"lfm2\" or \"lfm2_moe\"",
                          LFM2__CAST(int, j.tok[t].end - j.tok[t].start), j.src + j.tok[t].start);
        goto done;
    }
    if (lfm2__config_refuse(&r, out->is_moe) != LFM2_OK) goto done;
    if (lfm2__cfg_int(&r, "vocab_size", 1, 0, 1, LFM2_MAX_VOCAB, &v)) out->vocab_size = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "hidden_size", 1, 0, 1, LFM2_MAX_DIM, &v)) out->hidden_size = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "num_hidden_layers", 1, 0, 1, LFM2_MAX_LAYERS, &v)) out->num_hidden_layers = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "num_attention_heads", 1, 0, 1, LFM2_MAX_DIM, &v)) out->num_attention_heads = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "num_key_value_heads", 1, 0, 1, LFM2_MAX_DIM, &v)) out->num_key_value_heads = LFM2__CAST(int32_t, v);
    /* block_ff_dim overrides intermediate_size (HF: kwargs.get("block_ff_dim", intermediate_size));
       lfm2_moe has no block_* keys (lfm2__config_refuse) */
    if (lfm2__json_get(&j, 0, "block_ff_dim") >= 0 && j.tok[lfm2__json_get(&j, 0, "block_ff_dim")].type != LFM2__J_NULL) {
        if (lfm2__cfg_int(&r, "block_ff_dim", 1, 0, 1, 4LL * LFM2_MAX_DIM, &v)) out->intermediate_size = LFM2__CAST(int32_t, v);
    } else if (lfm2__cfg_int(&r, "intermediate_size", 1, 0, 1, 4LL * LFM2_MAX_DIM, &v)) out->intermediate_size = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "head_dim", 0, 0, 1, 4096, &v)) out->head_dim = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "block_multiple_of", 0, 256, 1, LFM2_MAX_DIM, &v)) out->block_multiple_of = LFM2__CAST(int32_t, v);
    /* block_ffn_dim_multiplier: absent = 1.0 (the class default), null = None (no rounding) */
    t = lfm2__json_get(&j, 0, "block_ffn_dim_multiplier");
    if (t >= 0 && j.tok[t].type == LFM2__J_NULL) out->block_ffn_dim_multiplier = 0.0;
    else if (lfm2__cfg_num(&r, "block_ffn_dim_multiplier", 1.0, 1e-6, 64.0, &d)) out->block_ffn_dim_multiplier = d;
    if (lfm2__cfg_bool(&r, "block_auto_adjust_ff_dim", 1, &b)) out->block_auto_adjust_ff_dim = b;
    if (lfm2__cfg_int(&r, "conv_L_cache", 0, 3, 1, 64, &v)) out->conv_L_cache = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_bool(&r, "conv_bias", 0, &b)) out->conv_bias = b;
    /* tie_embedding (released checkpoints) takes precedence over tie_word_embeddings */
    if (lfm2__cfg_bool(&r, "tie_word_embeddings", 1, &b)) out->tie_word_embeddings = b;
    if (lfm2__json_get(&j, 0, "tie_embedding") >= 0 && lfm2__cfg_bool(&r, "tie_embedding", 1, &b)) out->tie_word_embeddings = b;
    if (lfm2__cfg_int(&r, "max_position_embeddings", 0, 128000, 1, INT32_MAX, &v)) out->max_position_embeddings = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_num(&r, "norm_eps", 1e-5, 1e-30, 1.0, &d)) out->norm_eps = LFM2__CAST(float, d);
    /* RoPE theta: theta > rope_theta > rope_parameters.rope_theta (or per layer type) > 1e6 */
    out->rope_theta = 1000000.0;
    if (r.rc == LFM2_OK) {
        int32_t rp = lfm2__json_get(&j, 0, "rope_parameters");
        if (rp >= 0 && j.tok[rp].type == LFM2__J_OBJ) {
            int32_t fa2 = lfm2__json_get(&j, rp, "full_attention");
            int32_t th, ty;
            if (fa2 >= 0 && j.tok[fa2].type == LFM2__J_OBJ) rp = fa2;
            th = lfm2__json_get(&j, rp, "rope_theta");
            ty = lfm2__json_get(&j, rp, "rope_type");
            if (ty >= 0 && !lfm2__json_str_is(&j, ty, "default")) {
                r.rc = lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "config.json: rope_parameters.rope_type \"%.*s\" is not supported (only \"default\")",
                                  LFM2__CAST(int, j.tok[ty].end - j.tok[ty].start), j.src + j.tok[ty].start);
            } else if (th >= 0 && lfm2__cfg_num_at(&r, th, "rope_parameters.rope_theta", 1.0, 1e12, &d)) out->rope_theta = d;
        } else if (rp >= 0 && j.tok[rp].type != LFM2__J_NULL) {
            r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: key \"rope_parameters\" must be an object");
        }
    }
    if (lfm2__json_get(&j, 0, "rope_theta") >= 0 && lfm2__cfg_num(&r, "rope_theta", out->rope_theta, 1.0, 1e12, &d)) out->rope_theta = d;
    if (lfm2__json_get(&j, 0, "theta") >= 0 && lfm2__cfg_num(&r, "theta", out->rope_theta, 1.0, 1e12, &d)) out->rope_theta = d;
    if (lfm2__cfg_int(&r, "bos_token_id", 0, 1, 0, INT32_MAX, &v)) out->bos_token_id = LFM2__CAST(int32_t, v);
    if (lfm2__cfg_int(&r, "pad_token_id", 0, 0, 0, INT32_MAX, &v)) out->pad_token_id = LFM2__CAST(int32_t, v);
    if (r.rc == LFM2_OK) {
        int32_t e = lfm2__json_get(&j, 0, "eos_token_id");
        if (e >= 0) lfm2__cfg_eos(&r, e, "config.json", out->eos_token_ids, &out->n_eos);
        else { out->eos_token_ids[0] = 2; out->n_eos = 1; }
    }
    /* the hidden-size aliases of the released configs must agree */
    {
        static const char *const alias[3] = {"block_dim", "conv_dim", "conv_dim_out"};
        int k;
        for (k = 0; k < 3 && r.rc == LFM2_OK; k++) {
            if (lfm2__cfg_int(&r, alias[k], 0, out->hidden_size, 1, LFM2_MAX_DIM, &v) && v != out->hidden_size)
                r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: \"%s\" = %lld differs from hidden_size %d", alias[k],
                                  LFM2__CAST(long long, v), out->hidden_size);
        }
    }
    if (out->is_moe) { /* Lfm2MoeConfig's keys and defaults */
        out->block_auto_adjust_ff_dim = 0; /* the dense layers' width is intermediate_size as given */
        if (lfm2__cfg_int(&r, "num_dense_layers", 0, 2, 0, out->num_hidden_layers, &v)) out->num_dense_layers = LFM2__CAST(int32_t, v);
        if (lfm2__cfg_int(&r, "num_experts", 0, 32, 1, LFM2_MAX_EXPERTS, &v)) out->num_experts = LFM2__CAST(int32_t, v);
        if (lfm2__cfg_int(&r, "num_experts_per_tok", 0, 4, 1, LFM2_MAX_EXPERTS, &v)) out->num_experts_per_tok = LFM2__CAST(int32_t, v);
        if (lfm2__cfg_int(&r, "moe_intermediate_size", 0, 1792, 1, LFM2_MAX_DIM, &v)) out->moe_intermediate_size = LFM2__CAST(int32_t, v);
        if (lfm2__cfg_bool(&r, "use_expert_bias", 1, &b)) out->use_expert_bias = b;
        if (lfm2__cfg_bool(&r, "norm_topk_prob", 1, &b)) out->norm_topk_prob = b;
        if (lfm2__cfg_num(&r, "routed_scaling_factor", 1.0, -1e6, 1e6, &d)) out->routed_scaling_factor = d;
        if (r.rc == LFM2_OK && out->num_experts_per_tok > out->num_experts)
            r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: num_experts_per_tok %d exceeds num_experts %d", out->num_experts_per_tok, out->num_experts);
        out->n_moe_layers = out->num_hidden_layers - out->num_dense_layers;
    }
    if (r.rc != LFM2_OK) goto done;
    /* layer kinds: layer_types, else full_attn_idxs, else every layer is attention */
    lt = lfm2__json_get(&j, 0, "layer_types");
    fa = lfm2__json_get(&j, 0, "full_attn_idxs");
    if (lt >= 0 && j.tok[lt].type != LFM2__J_NULL) {
        int32_t k, e;
        if (j.tok[lt].type != LFM2__J_ARR) { r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: \"layer_types\" must be a list"); goto done; }
        if (j.tok[lt].n != out->num_hidden_layers) {
            r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: \"layer_types\" has %d entries, num_hidden_layers is %d", j.tok[lt].n, out->num_hidden_layers);
            goto done;
        }
        for (k = 0, e = lt + 1; k < j.tok[lt].n; k++, e = j.tok[e].skip) {
            if (lfm2__json_str_is(&j, e, "conv")) out->layer_is_attention[k] = 0;
            else if (lfm2__json_str_is(&j, e, "full_attention") || lfm2__json_str_is(&j, e, "attention")) out->layer_is_attention[k] = 1;
            else if (j.tok[e].type == LFM2__J_STR) {
                r.rc = lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "config.json: layer_types[%d] = \"%.*s\" is not a supported layer kind (conv, full_attention)", k,
                                  LFM2__CAST(int, j.tok[e].end - j.tok[e].start), j.src + j.tok[e].start);
                goto done;
            } else { r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: layer_types[%d] must be a string", k); goto done; }
        }
    } else if (fa >= 0 && j.tok[fa].type != LFM2__J_NULL) {
        int32_t k, e;
        if (j.tok[fa].type != LFM2__J_ARR) { r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: \"full_attn_idxs\" must be a list"); goto done; }
        for (k = 0, e = fa + 1; k < j.tok[fa].n; k++, e = j.tok[e].skip) {
            if (!lfm2__json_int(&j, e, 0, out->num_hidden_layers - 1, &v)) {
                r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: full_attn_idxs[%d] is not a layer index in [0, %d)", k, out->num_hidden_layers);
                goto done;
            }
            out->layer_is_attention[v] = 1;
        }
    } else {
        int32_t k;
        for (k = 0; k < out->num_hidden_layers; k++) out->layer_is_attention[k] = 1;
    }
    r.rc = lfm2__config_finalize(out, err);
done:
    lfm2__json_free(&j, a);
    return r.rc;
}

/* Derived values and consistency checks, shared by every way a config is made. */
static lfm2_result lfm2__config_finalize(lfm2_config *c, lfm2_error *err) {
    int32_t k;
    int64_t F;
    if (c->num_hidden_layers < 1 || c->num_hidden_layers > LFM2_MAX_LAYERS)
        return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: num_hidden_layers %d outside [1, %d]", c->num_hidden_layers, LFM2_MAX_LAYERS);
    if (c->num_attention_heads < 1 || c->num_key_value_heads < 1 || c->num_attention_heads % c->num_key_value_heads != 0)
        return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                          c->num_attention_heads, c->num_key_value_heads);
    if (c->head_dim == 0) {
        if (c->hidden_size % c->num_attention_heads != 0)
            return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: hidden_size %d is not divisible by num_attention_heads %d",
                              c->hidden_size, c->num_attention_heads);
        c->head_dim = c->hidden_size / c->num_attention_heads;
    }
    if (c->head_dim % 2 != 0) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: head_dim %d must be even (RoPE)", c->head_dim);
    if (LFM2__CAST(int64_t, c->head_dim) * c->num_attention_heads > LFM2_MAX_DIM)
        return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: head_dim x num_attention_heads = %lld exceeds %d",
                          LFM2__CAST(long long, c->head_dim) * c->num_attention_heads, LFM2_MAX_DIM);
    /* FFN width, as transformers' Lfm2MLP derives it: with block_auto_adjust_ff_dim, int(2F/3),
       then (only with a multiplier) times block_ffn_dim_multiplier, rounded up to block_multiple_of */
    F = c->intermediate_size;
    if (c->block_auto_adjust_ff_dim) {
        F = LFM2__CAST(int64_t, 2 * F / 3);    /* int(2*F/3): exact for these magnitudes */
        if (c->block_ffn_dim_multiplier > 0) {
            F = LFM2__CAST(int64_t, c->block_ffn_dim_multiplier * LFM2__CAST(double, F));
            F = c->block_multiple_of * ((F + c->block_multiple_of - 1) / c->block_multiple_of);
        }
    }
    if (c->is_moe) F = c->intermediate_size; /* Lfm2Moe: as given */
    if (F < 1 || F > LFM2_MAX_DIM) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: derived FFN width %lld outside [1, %d]", LFM2__CAST(long long, F), LFM2_MAX_DIM);
    c->ff_dim = LFM2__CAST(int32_t, F);
    if (c->is_moe) {
        if (c->num_experts < 1 || c->num_experts > LFM2_MAX_EXPERTS || c->num_experts_per_tok < 1 || c->num_experts_per_tok > c->num_experts)
            return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: num_experts %d / num_experts_per_tok %d: need 1 <= num_experts_per_tok <= num_experts <= %d",
                              c->num_experts, c->num_experts_per_tok, LFM2_MAX_EXPERTS);
        if (c->moe_intermediate_size < 1 || c->moe_intermediate_size > LFM2_MAX_DIM)
            return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: moe_intermediate_size %d outside [1, %d]", c->moe_intermediate_size, LFM2_MAX_DIM);
        if (c->num_dense_layers < 0 || c->num_dense_layers > c->num_hidden_layers)
            return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: num_dense_layers %d outside [0, num_hidden_layers %d]", c->num_dense_layers, c->num_hidden_layers);
        c->n_moe_layers = c->num_hidden_layers - c->num_dense_layers;
    } else {
        c->num_dense_layers = c->num_hidden_layers;
        c->num_experts = c->num_experts_per_tok = c->moe_intermediate_size = c->n_moe_layers = 0;
    }
    c->n_attention_layers = c->n_conv_layers = 0;
    for (k = 0; k < c->num_hidden_layers; k++) {
        if (c->layer_is_attention[k]) c->n_attention_layers++;
        else c->n_conv_layers++;
    }
    if (c->n_conv_layers > 0 && c->conv_L_cache < 1) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: conv_L_cache must be >= 1");
    return LFM2_OK;
}

static uint64_t lfm2__param_count(const lfm2_config *c, int active);
LFM2_API uint64_t lfm2_config_param_count(const lfm2_config *c) { return lfm2__param_count(c, 0); }
LFM2_API uint64_t lfm2_config_active_param_count(const lfm2_config *c) { return lfm2__param_count(c, 1); }
static uint64_t lfm2__param_count(const lfm2_config *c, int active) {
    uint64_t D, V, F, L, n, q, kv;
    int32_t i;
    if (!c) return 0;
    D = LFM2__CAST(uint64_t, c->hidden_size);
    V = LFM2__CAST(uint64_t, c->vocab_size);
    F = LFM2__CAST(uint64_t, c->ff_dim);
    L = LFM2__CAST(uint64_t, c->conv_L_cache);
    q = LFM2__CAST(uint64_t, c->num_attention_heads) * LFM2__CAST(uint64_t, c->head_dim);
    kv = LFM2__CAST(uint64_t, c->num_key_value_heads) * LFM2__CAST(uint64_t, c->head_dim);
    n = V * D + D;                                         /* embed_tokens, embedding_norm */
    if (!c->tie_word_embeddings) n += V * D;               /* lm_head */
    for (i = 0; i < c->num_hidden_layers; i++) {
        if (c->is_moe && i >= c->num_dense_layers) {       /* norms, router, experts (w1 w3 w2 each) */
            uint64_t E = LFM2__CAST(uint64_t, c->num_experts), I = LFM2__CAST(uint64_t, c->moe_intermediate_size);
            n += 2 * D + E * D + (active ? LFM2__CAST(uint64_t, c->num_experts_per_tok) : E) * 3 * D * I;
        } else n += 2 * D + 3 * D * F;                     /* norms, w1 w3 w2 */
        if (c->layer_is_attention[i]) n += q * D + 2 * kv * D + D * q + 2 * LFM2__CAST(uint64_t, c->head_dim);
        else n += 3 * D * D + D * L + D * D + (c->conv_bias ? 3 * D + D + D : 0);
    }
    return n;
}

/* >>safetensors ---------------------------------------------------------------------------- */
/* A safetensors file: u64 little-endian header length N, N bytes of JSON
   {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
   then the data region. Everything is validated before any tensor is used. */

enum { LFM2__DT_F32 = 0, LFM2__DT_F16, LFM2__DT_BF16, LFM2__DT_F64, LFM2__DT_I8, LFM2__DT_U8, LFM2__DT_I16,
       LFM2__DT_I32, LFM2__DT_I64, LFM2__DT_BOOL, LFM2__DT_COUNT,
       LFM2__DT_Q8 = 100, LFM2__DT_Q4 = 101, /* weight formats of lfm2.h, not safetensors dtypes */
       LFM2__DT_Q8X = 102, LFM2__DT_Q4X = 103, /* the same, 16 rows interleaved (see >>formats) */
       LFM2__DT_F32X = 104, LFM2__DT_F16X = 105, LFM2__DT_BF16X = 106 /* float, 16 rows interleaved */ };
#define LFM2__IS_Q(dt) ((dt) == LFM2__DT_Q8 || (dt) == LFM2__DT_Q4 || (dt) == LFM2__DT_Q8X || (dt) == LFM2__DT_Q4X)
#define LFM2__IS_FX(dt) ((dt) >= LFM2__DT_F32X && (dt) <= LFM2__DT_BF16X)
#define LFM2__IS_Q4(dt) ((dt) == LFM2__DT_Q4 || (dt) == LFM2__DT_Q4X)
static const char *const lfm2__dtype_name[LFM2__DT_COUNT] = {"F32", "F16", "BF16", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL"};
static const uint8_t lfm2__dtype_size[LFM2__DT_COUNT] = {4, 2, 2, 8, 1, 1, 2, 4, 8, 1};

#define LFM2__MAX_NDIM 8
typedef struct lfm2__tensor {
    const char *name;                   /* NUL-terminated, in the file's name arena */
    int32_t dtype, ndim;
    int64_t shape[LFM2__MAX_NDIM];
    uint64_t numel;
    const unsigned char *data;          /* inside the file buffer */
    uint64_t nbytes, offset;            /* offset = from the start of the file */
    int32_t file;                       /* index of the shard */
} lfm2__tensor;

typedef struct lfm2__stfile {
    const char *what;                   /* file name for messages */
    lfm2__tensor *t;
    int32_t n;
    char *names;                        /* arena of tensor names */
    int32_t x16;                        /* __metadata__ "lfm2.h.interleave": 0 absent, 1 = LFM2__X16_LAYOUT, -1 another value */
} lfm2__stfile;

/* The on-disk form of the interleaved block formats Q8X / Q4X (written by tools/lfm2-quantize;
   the records are described at lfm2__x16_rec in >>formats): a matrix NAME [rows, cols] is one
   tensor NAME, dtype U8, shape [rows/16, cols/64, 1088] (Q8X) or [rows/16, cols/64, 576] (Q4X),
   its records in memory order (group-major, then 64-column record), scales inside, no
   NAME_scale; the file's __metadata__ holds "lfm2.h.interleave": LFM2__X16_LAYOUT, the
   parameters of the layout, which a loader compares byte for byte before it uses such a tensor
   (a file without it, or with another value, is refused with a message). Such matrices are used
   in place (memory-mapped, no copy) at the levels with the interleaved kernels (AVX512_VNNI and
   up, aarch64 NEON); at the others they are unpacked at load into the row-major Q8 / Q4 of
   load-time quantization (lfm2__x16_unpack), so the logits always equal those of quantizing the
   original weights at load, at every level. */
#define LFM2__X16_LAYOUT "x16 v1: rows=16 cols=64 q8_record=1088 q4_record=576"

static void lfm2__st_free(lfm2__stfile *f, const lfm2_allocator *a) {
    lfm2__free(a, f->t);
    lfm2__free(a, f->names);
    f->t = NULL;
    f->names = NULL;
    f->n = 0;
}

static int lfm2__cmp_u64pair(const void *a, const void *b) {
    const uint64_t *x = LFM2__CAST(const uint64_t *, a), *y = LFM2__CAST(const uint64_t *, b);
    return (x[0] < y[0]) ? -1 : (x[0] > y[0]) ? 1 : (x[1] < y[1]) ? -1 : (x[1] > y[1]) ? 1 : 0;
}

static lfm2_result lfm2__st_parse(const void *buf, size_t size, const char *what, int32_t file_index,
                                  const lfm2_allocator *a, lfm2_error *err, lfm2__stfile *out) {
    const unsigned char *p = LFM2__CAST(const unsigned char *, buf);
    uint64_t hlen, data_size;
    lfm2__json j;
    lfm2_result rc;
    int32_t c, k, n = 0;
    size_t names_bytes = 0, pos = 0;
    uint64_t *spans = NULL;
    memset(out, 0, sizeof *out);
    out->what = what;
    if (!p || size < 8) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: file is %zu bytes, too short for a safetensors header", what, size);
    hlen = lfm2__rd_u64le(p);
    if (hlen > size - 8) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: header length %llu runs past the end of the file (%zu bytes)", what,
                                           LFM2__CAST(unsigned long long, hlen), size);
    if (hlen < 2) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: header length %llu is too small", what, LFM2__CAST(unsigned long long, hlen));
    data_size = size - 8 - hlen;
    {   /* the header may be padded with trailing spaces */
        size_t hl = LFM2__CAST(size_t, hlen);
        rc = lfm2__json_parse(&j, LFM2__CAST(const char *, LFM2__CAST(const void *, p + 8)), hl, a, err, LFM2_ERR_BAD_WEIGHTS, what);
        if (rc != LFM2_OK) return rc;
    }
    if (j.tok[0].type != LFM2__J_OBJ) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: header is not a JSON object", what); goto fail; }
    /* count tensors and name bytes */
    for (k = 0, c = 1; k < j.tok[0].n; k++, c = j.tok[c + 1].skip) {
        if (lfm2__json_str_is(&j, c, "__metadata__")) continue;
        n++;
        names_bytes += (j.tok[c].end - j.tok[c].start) + 1;
    }
    out->t = LFM2__CAST(lfm2__tensor *, lfm2__calloc(a, sizeof(lfm2__tensor) * LFM2__CAST(size_t, n)));
    out->names = LFM2__CAST(char *, lfm2__malloc(a, names_bytes));
    spans = LFM2__CAST(uint64_t *, lfm2__malloc(a, sizeof(uint64_t) * 3 * LFM2__CAST(size_t, n)));
    if (!out->t || !out->names || !spans) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "%s: out of memory for %d tensors", what, n); goto fail; }
    for (k = 0, c = 1; k < j.tok[0].n; k++, c = j.tok[c + 1].skip) {
        int32_t v = c + 1, dt, sh, off, e, q;
        lfm2__tensor *t;
        int64_t lenv;
        uint64_t b0, b1, numel = 1, nbytes;
        char *nm;
        if (lfm2__json_str_is(&j, c, "__metadata__")) {
            if (j.tok[v].type != LFM2__J_OBJ) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: __metadata__ is not an object", what); goto fail; }
            {   /* the layout of interleaved tensors (LFM2__X16_LAYOUT), checked where one is bound */
                int32_t lv = lfm2__json_get(&j, v, "lfm2.h.interleave");
                if (lv >= 0) out->x16 = lfm2__json_str_is(&j, lv, LFM2__X16_LAYOUT) ? 1 : -1;
            }
            continue;
        }
        t = &out->t[out->n];
        nm = out->names + pos;
        lenv = lfm2__json_str(&j, c, nm);
        nm[lenv] = 0;
        pos += LFM2__CAST(size_t, lenv) + 1;
        t->name = nm;
        t->file = file_index;
        if (strlen(nm) != LFM2__CAST(size_t, lenv)) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: a tensor name contains a NUL character", what); goto fail; }
        if (j.tok[v].type != LFM2__J_OBJ) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": entry is not an object", what, nm); goto fail; }
        dt = lfm2__json_get(&j, v, "dtype");
        sh = lfm2__json_get(&j, v, "shape");
        off = lfm2__json_get(&j, v, "data_offsets");
        if (dt < 0 || j.tok[dt].type != LFM2__J_STR) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": missing or non-string \"dtype\"", what, nm); goto fail; }
        t->dtype = -1;
        for (q = 0; q < LFM2__DT_COUNT; q++) if (lfm2__json_str_is(&j, dt, lfm2__dtype_name[q])) t->dtype = q;
        if (t->dtype < 0) {
            rc = lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "%s: tensor \"%s\": dtype \"%.*s\" is not supported", what, nm,
                            LFM2__CAST(int, j.tok[dt].end - j.tok[dt].start > 32 ? 32 : j.tok[dt].end - j.tok[dt].start), j.src + j.tok[dt].start);
            goto fail;
        }
        if (sh < 0 || j.tok[sh].type != LFM2__J_ARR || j.tok[sh].n > LFM2__MAX_NDIM) {
            rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": \"shape\" must be a list of at most %d integers", what, nm, LFM2__MAX_NDIM);
            goto fail;
        }
        t->ndim = j.tok[sh].n;
        for (q = 0, e = sh + 1; q < t->ndim; q++, e = j.tok[e].skip) {
            int64_t dim;
            size_t tmp;
            if (!lfm2__json_int(&j, e, 0, INT64_C(1) << 40, &dim)) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": shape[%d] is not a non-negative integer", what, nm, q);
                goto fail;
            }
            t->shape[q] = dim;
            if (!lfm2__mul_ok(LFM2__CAST(size_t, numel), LFM2__CAST(size_t, dim), &tmp)) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": element count overflows", what, nm);
                goto fail;
            }
            numel = tmp;
        }
        if (off < 0 || j.tok[off].type != LFM2__J_ARR || j.tok[off].n != 2) {
            rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end]", what, nm);
            goto fail;
        }
        {
            int64_t x0, x1;
            if (!lfm2__json_int(&j, off + 1, 0, INT64_MAX, &x0) || !lfm2__json_int(&j, off + 2, 0, INT64_MAX, &x1)) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": data_offsets are not non-negative integers", what, nm);
                goto fail;
            }
            b0 = LFM2__CAST(uint64_t, x0);
            b1 = LFM2__CAST(uint64_t, x1);
        }
        if (b0 > b1 || b1 > data_size) {
            rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the data region of %llu bytes", what, nm,
                            LFM2__CAST(unsigned long long, b0), LFM2__CAST(unsigned long long, b1), LFM2__CAST(unsigned long long, data_size));
            goto fail;
        }
        {
            size_t tmp;
            if (!lfm2__mul_ok(LFM2__CAST(size_t, numel), lfm2__dtype_size[t->dtype], &tmp)) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": byte size overflows", what, nm);
                goto fail;
            }
            nbytes = tmp;
        }
        if (nbytes != b1 - b0) {
            rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensor \"%s\": %llu bytes of data, but shape x %s needs %llu", what, nm,
                            LFM2__CAST(unsigned long long, b1 - b0), lfm2__dtype_name[t->dtype], LFM2__CAST(unsigned long long, nbytes));
            goto fail;
        }
        t->numel = numel;
        t->nbytes = nbytes;
        t->offset = 8 + hlen + b0;
        t->data = p + 8 + hlen + b0;
        spans[3 * out->n] = b0;
        spans[3 * out->n + 1] = b1;
        spans[3 * out->n + 2] = LFM2__CAST(uint64_t, out->n);
        out->n++;
    }
    /* no two tensors may share bytes (empty tensors share nothing) */
    qsort(spans, LFM2__CAST(size_t, out->n), 3 * sizeof(uint64_t), lfm2__cmp_u64pair);
    {
        uint64_t max_end = 0, max_who = 0;
        for (k = 0; k < out->n; k++) {
            uint64_t b0 = spans[3 * k], b1 = spans[3 * k + 1];
            if (b0 == b1) continue;
            if (b0 < max_end) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "%s: tensors \"%s\" and \"%s\" overlap (data_offsets %llu < %llu)", what,
                                out->t[max_who].name, out->t[spans[3 * k + 2]].name,
                                LFM2__CAST(unsigned long long, b0), LFM2__CAST(unsigned long long, max_end));
                goto fail;
            }
            max_end = b1;
            max_who = spans[3 * k + 2];
        }
    }
    lfm2__free(a, spans);
    lfm2__json_free(&j, a);
    return LFM2_OK;
fail:
    lfm2__free(a, spans);
    lfm2__json_free(&j, a);
    lfm2__st_free(out, a);
    return rc;
}

LFM2__MAYBE_UNUSED static const lfm2__tensor *lfm2__st_find(const lfm2__stfile *f, const char *name) {
    int32_t i;
    for (i = 0; i < f->n; i++) if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}


/* >>model-access (the tokenizer and sampler sections reach the model through these) -------- */
struct lfm2__tokenizer;
static const struct lfm2__tokenizer *lfm2__model_tokenizer(const lfm2_model *m);
static const lfm2_config *lfm2__model_cfg(const lfm2_model *m);
static lfm2_result lfm2__generate_decode(lfm2_context *c, const lfm2_token *tokens, int32_t n, int prompt,
                                         int (*should_abort)(void *user), void *user, const float **logits);

/* >>tokenizer ------------------------------------------------------------------------------- */
/* The tokenizer of tokenizer.json, reproducing Hugging Face `tokenizers` for the LFM2 pipeline:

     text --added tokens (longest match)--> segments --LFM2 split regex--> pre-tokens
          --GPT-2 byte->unicode map--> BPE by merge rank --> ids (+ BOS of the post-processor)

   Everything is built once at load into flat arrays and hash tables and never changes after, so
   one tokenizer serves any number of threads. Encoding allocates nothing; everything is on the
   stack (about 24 KB at most): pre-tokens of up to LFM2__BPE_SMALL bytes (most words) are merged
   with a linear scan of the pair ranks, up to LFM2__BPE_WIN bytes with a min-heap of candidate
   pairs (O(n log n)), longer ones (rare: runs of letters, spaces or symbols) in overlapping
   windows joined where they provably agree (lfm2__bpe_windows; O(n log n) too). Unicode classes
   come from the generated table below; invalid UTF-8 bytes are code points of class "other", so
   they travel through the byte map like any byte and decode back unchanged. */

/* >>unicode-table: generated by tools/gen_unicode.py from the Unicode 15.0.0 UCD. */
/* class of each ASCII code point: 0 other, 1 letter, 2 number, 3 whitespace */
static const unsigned char lfm2__uni_ascii[128] = {
    0,0,0,0,0,0,0,0,0,3,3,3,3,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,2,2,2,2,2,2,2,2,0,0,0,0,0,0,
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
};
/* 801 ranges {first << 2 | class, last} of the non-ASCII code points in L (1), N (2), White_Space (3) */
static const uint32_t lfm2__uni_ranges[801][2] = {
    {0x217,0x85}, {0x283,0xA0}, {0x2A9,0xAA}, {0x2CA,0xB3}, {0x2D5,0xB5}, {0x2E6,0xB9}, {0x2E9,0xBA},
    {0x2F2,0xBE}, {0x301,0xD6}, {0x361,0xF6}, {0x3E1,0x2C1}, {0xB19,0x2D1}, {0xB81,0x2E4},
    {0xBB1,0x2EC}, {0xBB9,0x2EE}, {0xDC1,0x374}, {0xDD9,0x377}, {0xDE9,0x37D}, {0xDFD,0x37F},
    {0xE19,0x386}, {0xE21,0x38A}, {0xE31,0x38C}, {0xE39,0x3A1}, {0xE8D,0x3F5}, {0xFDD,0x481},
    {0x1229,0x52F}, {0x14C5,0x556}, {0x1565,0x559}, {0x1581,0x588}, {0x1741,0x5EA}, {0x17BD,0x5F2},
    {0x1881,0x64A}, {0x1982,0x669}, {0x19B9,0x66F}, {0x19C5,0x6D3}, {0x1B55,0x6D5}, {0x1B95,0x6E6},
    {0x1BB9,0x6EF}, {0x1BC2,0x6F9}, {0x1BE9,0x6FC}, {0x1BFD,0x6FF}, {0x1C41,0x710}, {0x1C49,0x72F},
    {0x1D35,0x7A5}, {0x1EC5,0x7B1}, {0x1F02,0x7C9}, {0x1F29,0x7EA}, {0x1FD1,0x7F5}, {0x1FE9,0x7FA},
    {0x2001,0x815}, {0x2069,0x81A}, {0x2091,0x824}, {0x20A1,0x828}, {0x2101,0x858}, {0x2181,0x86A},
    {0x21C1,0x887}, {0x2225,0x88E}, {0x2281,0x8C9}, {0x2411,0x939}, {0x24F5,0x93D}, {0x2541,0x950},
    {0x2561,0x961}, {0x259A,0x96F}, {0x25C5,0x980}, {0x2615,0x98C}, {0x263D,0x990}, {0x264D,0x9A8},
    {0x26A9,0x9B0}, {0x26C9,0x9B2}, {0x26D9,0x9B9}, {0x26F5,0x9BD}, {0x2739,0x9CE}, {0x2771,0x9DD},
    {0x277D,0x9E1}, {0x279A,0x9EF}, {0x27C1,0x9F1}, {0x27D2,0x9F9}, {0x27F1,0x9FC}, {0x2815,0xA0A},
    {0x283D,0xA10}, {0x284D,0xA28}, {0x28A9,0xA30}, {0x28C9,0xA33}, {0x28D5,0xA36}, {0x28E1,0xA39},
    {0x2965,0xA5C}, {0x2979,0xA5E}, {0x299A,0xA6F}, {0x29C9,0xA74}, {0x2A15,0xA8D}, {0x2A3D,0xA91},
    {0x2A4D,0xAA8}, {0x2AA9,0xAB0}, {0x2AC9,0xAB3}, {0x2AD5,0xAB9}, {0x2AF5,0xABD}, {0x2B41,0xAD0},
    {0x2B81,0xAE1}, {0x2B9A,0xAEF}, {0x2BE5,0xAF9}, {0x2C15,0xB0C}, {0x2C3D,0xB10}, {0x2C4D,0xB28},
    {0x2CA9,0xB30}, {0x2CC9,0xB33}, {0x2CD5,0xB39}, {0x2CF5,0xB3D}, {0x2D71,0xB5D}, {0x2D7D,0xB61},
    {0x2D9A,0xB6F}, {0x2DC5,0xB71}, {0x2DCA,0xB77}, {0x2E0D,0xB83}, {0x2E15,0xB8A}, {0x2E39,0xB90},
    {0x2E49,0xB95}, {0x2E65,0xB9A}, {0x2E71,0xB9C}, {0x2E79,0xB9F}, {0x2E8D,0xBA4}, {0x2EA1,0xBAA},
    {0x2EB9,0xBB9}, {0x2F41,0xBD0}, {0x2F9A,0xBF2}, {0x3015,0xC0C}, {0x3039,0xC10}, {0x3049,0xC28},
    {0x30A9,0xC39}, {0x30F5,0xC3D}, {0x3161,0xC5A}, {0x3175,0xC5D}, {0x3181,0xC61}, {0x319A,0xC6F},
    {0x31E2,0xC7E}, {0x3201,0xC80}, {0x3215,0xC8C}, {0x3239,0xC90}, {0x3249,0xCA8}, {0x32A9,0xCB3},
    {0x32D5,0xCB9}, {0x32F5,0xCBD}, {0x3375,0xCDE}, {0x3381,0xCE1}, {0x339A,0xCEF}, {0x33C5,0xCF2},
    {0x3411,0xD0C}, {0x3439,0xD10}, {0x3449,0xD3A}, {0x34F5,0xD3D}, {0x3539,0xD4E}, {0x3551,0xD56},
    {0x3562,0xD5E}, {0x357D,0xD61}, {0x359A,0xD78}, {0x35E9,0xD7F}, {0x3615,0xD96}, {0x3669,0xDB1},
    {0x36CD,0xDBB}, {0x36F5,0xDBD}, {0x3701,0xDC6}, {0x379A,0xDEF}, {0x3805,0xE30}, {0x38C9,0xE33},
    {0x3901,0xE46}, {0x3942,0xE59}, {0x3A05,0xE82}, {0x3A11,0xE84}, {0x3A19,0xE8A}, {0x3A31,0xEA3},
    {0x3A95,0xEA5}, {0x3A9D,0xEB0}, {0x3AC9,0xEB3}, {0x3AF5,0xEBD}, {0x3B01,0xEC4}, {0x3B19,0xEC6},
    {0x3B42,0xED9}, {0x3B71,0xEDF}, {0x3C01,0xF00}, {0x3C82,0xF33}, {0x3D01,0xF47}, {0x3D25,0xF6C},
    {0x3E21,0xF8C}, {0x4001,0x102A}, {0x40FD,0x103F}, {0x4102,0x1049}, {0x4141,0x1055},
    {0x4169,0x105D}, {0x4185,0x1061}, {0x4195,0x1066}, {0x41B9,0x1070}, {0x41D5,0x1081},
    {0x4239,0x108E}, {0x4242,0x1099}, {0x4281,0x10C5}, {0x431D,0x10C7}, {0x4335,0x10CD},
    {0x4341,0x10FA}, {0x43F1,0x1248}, {0x4929,0x124D}, {0x4941,0x1256}, {0x4961,0x1258},
    {0x4969,0x125D}, {0x4981,0x1288}, {0x4A29,0x128D}, {0x4A41,0x12B0}, {0x4AC9,0x12B5},
    {0x4AE1,0x12BE}, {0x4B01,0x12C0}, {0x4B09,0x12C5}, {0x4B21,0x12D6}, {0x4B61,0x1310},
    {0x4C49,0x1315}, {0x4C61,0x135A}, {0x4DA6,0x137C}, {0x4E01,0x138F}, {0x4E81,0x13F5},
    {0x4FE1,0x13FD}, {0x5005,0x166C}, {0x59BD,0x167F}, {0x5A03,0x1680}, {0x5A05,0x169A},
    {0x5A81,0x16EA}, {0x5BBA,0x16F0}, {0x5BC5,0x16F8}, {0x5C01,0x1711}, {0x5C7D,0x1731},
    {0x5D01,0x1751}, {0x5D81,0x176C}, {0x5DB9,0x1770}, {0x5E01,0x17B3}, {0x5F5D,0x17D7},
    {0x5F71,0x17DC}, {0x5F82,0x17E9}, {0x5FC2,0x17F9}, {0x6042,0x1819}, {0x6081,0x1878},
    {0x6201,0x1884}, {0x621D,0x18A8}, {0x62A9,0x18AA}, {0x62C1,0x18F5}, {0x6401,0x191E},
    {0x651A,0x194F}, {0x6541,0x196D}, {0x65C1,0x1974}, {0x6601,0x19AB}, {0x66C1,0x19C9},
    {0x6742,0x19DA}, {0x6801,0x1A16}, {0x6881,0x1A54}, {0x6A02,0x1A89}, {0x6A42,0x1A99},
    {0x6A9D,0x1AA7}, {0x6C15,0x1B33}, {0x6D15,0x1B4C}, {0x6D42,0x1B59}, {0x6E0D,0x1BA0},
    {0x6EB9,0x1BAF}, {0x6EC2,0x1BB9}, {0x6EE9,0x1BE5}, {0x7001,0x1C23}, {0x7102,0x1C49},
    {0x7135,0x1C4F}, {0x7142,0x1C59}, {0x7169,0x1C7D}, {0x7201,0x1C88}, {0x7241,0x1CBA},
    {0x72F5,0x1CBF}, {0x73A5,0x1CEC}, {0x73B9,0x1CF3}, {0x73D5,0x1CF6}, {0x73E9,0x1CFA},
    {0x7401,0x1DBF}, {0x7801,0x1F15}, {0x7C61,0x1F1D}, {0x7C81,0x1F45}, {0x7D21,0x1F4D},
    {0x7D41,0x1F57}, {0x7D65,0x1F59}, {0x7D6D,0x1F5B}, {0x7D75,0x1F5D}, {0x7D7D,0x1F7D},
    {0x7E01,0x1FB4}, {0x7ED9,0x1FBC}, {0x7EF9,0x1FBE}, {0x7F09,0x1FC4}, {0x7F19,0x1FCC},
    {0x7F41,0x1FD3}, {0x7F59,0x1FDB}, {0x7F81,0x1FEC}, {0x7FC9,0x1FF4}, {0x7FD9,0x1FFC},
    {0x8003,0x200A}, {0x80A3,0x2029}, {0x80BF,0x202F}, {0x817F,0x205F}, {0x81C2,0x2070},
    {0x81C5,0x2071}, {0x81D2,0x2079}, {0x81FD,0x207F}, {0x8202,0x2089}, {0x8241,0x209C},
    {0x8409,0x2102}, {0x841D,0x2107}, {0x8429,0x2113}, {0x8455,0x2115}, {0x8465,0x211D},
    {0x8491,0x2124}, {0x8499,0x2126}, {0x84A1,0x2128}, {0x84A9,0x212D}, {0x84BD,0x2139},
    {0x84F1,0x213F}, {0x8515,0x2149}, {0x8539,0x214E}, {0x8542,0x2182}, {0x860D,0x2184},
    {0x8616,0x2189}, {0x9182,0x249B}, {0x93AA,0x24FF}, {0x9DDA,0x2793}, {0xB001,0x2CE4},
    {0xB3AD,0x2CEE}, {0xB3C9,0x2CF3}, {0xB3F6,0x2CFD}, {0xB401,0x2D25}, {0xB49D,0x2D27},
    {0xB4B5,0x2D2D}, {0xB4C1,0x2D67}, {0xB5BD,0x2D6F}, {0xB601,0x2D96}, {0xB681,0x2DA6},
    {0xB6A1,0x2DAE}, {0xB6C1,0x2DB6}, {0xB6E1,0x2DBE}, {0xB701,0x2DC6}, {0xB721,0x2DCE},
    {0xB741,0x2DD6}, {0xB761,0x2DDE}, {0xB8BD,0x2E2F}, {0xC003,0x3000}, {0xC015,0x3006},
    {0xC01E,0x3007}, {0xC086,0x3029}, {0xC0C5,0x3035}, {0xC0E2,0x303A}, {0xC0ED,0x303C},
    {0xC105,0x3096}, {0xC275,0x309F}, {0xC285,0x30FA}, {0xC3F1,0x30FF}, {0xC415,0x312F},
    {0xC4C5,0x318E}, {0xC64A,0x3195}, {0xC681,0x31BF}, {0xC7C1,0x31FF}, {0xC882,0x3229},
    {0xC922,0x324F}, {0xC946,0x325F}, {0xCA02,0x3289}, {0xCAC6,0x32BF}, {0xD001,0x4DBF},
    {0x13801,0xA48C}, {0x29341,0xA4FD}, {0x29401,0xA60C}, {0x29841,0xA61F}, {0x29882,0xA629},
    {0x298A9,0xA62B}, {0x29901,0xA66E}, {0x299FD,0xA69D}, {0x29A81,0xA6E5}, {0x29B9A,0xA6EF},
    {0x29C5D,0xA71F}, {0x29C89,0xA788}, {0x29E2D,0xA7CA}, {0x29F41,0xA7D1}, {0x29F4D,0xA7D3},
    {0x29F55,0xA7D9}, {0x29FC9,0xA801}, {0x2A00D,0xA805}, {0x2A01D,0xA80A}, {0x2A031,0xA822},
    {0x2A0C2,0xA835}, {0x2A101,0xA873}, {0x2A209,0xA8B3}, {0x2A342,0xA8D9}, {0x2A3C9,0xA8F7},
    {0x2A3ED,0xA8FB}, {0x2A3F5,0xA8FE}, {0x2A402,0xA909}, {0x2A429,0xA925}, {0x2A4C1,0xA946},
    {0x2A581,0xA97C}, {0x2A611,0xA9B2}, {0x2A73D,0xA9CF}, {0x2A742,0xA9D9}, {0x2A781,0xA9E4},
    {0x2A799,0xA9EF}, {0x2A7C2,0xA9F9}, {0x2A7E9,0xA9FE}, {0x2A801,0xAA28}, {0x2A901,0xAA42},
    {0x2A911,0xAA4B}, {0x2A942,0xAA59}, {0x2A981,0xAA76}, {0x2A9E9,0xAA7A}, {0x2A9F9,0xAAAF},
    {0x2AAC5,0xAAB1}, {0x2AAD5,0xAAB6}, {0x2AAE5,0xAABD}, {0x2AB01,0xAAC0}, {0x2AB09,0xAAC2},
    {0x2AB6D,0xAADD}, {0x2AB81,0xAAEA}, {0x2ABC9,0xAAF4}, {0x2AC05,0xAB06}, {0x2AC25,0xAB0E},
    {0x2AC45,0xAB16}, {0x2AC81,0xAB26}, {0x2ACA1,0xAB2E}, {0x2ACC1,0xAB5A}, {0x2AD71,0xAB69},
    {0x2ADC1,0xABE2}, {0x2AFC2,0xABF9}, {0x2B001,0xD7A3}, {0x35EC1,0xD7C6}, {0x35F2D,0xD7FB},
    {0x3E401,0xFA6D}, {0x3E9C1,0xFAD9}, {0x3EC01,0xFB06}, {0x3EC4D,0xFB17}, {0x3EC75,0xFB1D},
    {0x3EC7D,0xFB28}, {0x3ECA9,0xFB36}, {0x3ECE1,0xFB3C}, {0x3ECF9,0xFB3E}, {0x3ED01,0xFB41},
    {0x3ED0D,0xFB44}, {0x3ED19,0xFBB1}, {0x3EF4D,0xFD3D}, {0x3F541,0xFD8F}, {0x3F649,0xFDC7},
    {0x3F7C1,0xFDFB}, {0x3F9C1,0xFE74}, {0x3F9D9,0xFEFC}, {0x3FC42,0xFF19}, {0x3FC85,0xFF3A},
    {0x3FD05,0xFF5A}, {0x3FD99,0xFFBE}, {0x3FF09,0xFFC7}, {0x3FF29,0xFFCF}, {0x3FF49,0xFFD7},
    {0x3FF69,0xFFDC}, {0x40001,0x1000B}, {0x40035,0x10026}, {0x400A1,0x1003A}, {0x400F1,0x1003D},
    {0x400FD,0x1004D}, {0x40141,0x1005D}, {0x40201,0x100FA}, {0x4041E,0x10133}, {0x40502,0x10178},
    {0x4062A,0x1018B}, {0x40A01,0x1029C}, {0x40A81,0x102D0}, {0x40B86,0x102FB}, {0x40C01,0x1031F},
    {0x40C82,0x10323}, {0x40CB5,0x10340}, {0x40D06,0x10341}, {0x40D09,0x10349}, {0x40D2A,0x1034A},
    {0x40D41,0x10375}, {0x40E01,0x1039D}, {0x40E81,0x103C3}, {0x40F21,0x103CF}, {0x40F46,0x103D5},
    {0x41001,0x1049D}, {0x41282,0x104A9}, {0x412C1,0x104D3}, {0x41361,0x104FB}, {0x41401,0x10527},
    {0x414C1,0x10563}, {0x415C1,0x1057A}, {0x415F1,0x1058A}, {0x41631,0x10592}, {0x41651,0x10595},
    {0x4165D,0x105A1}, {0x4168D,0x105B1}, {0x416CD,0x105B9}, {0x416ED,0x105BC}, {0x41801,0x10736},
    {0x41D01,0x10755}, {0x41D81,0x10767}, {0x41E01,0x10785}, {0x41E1D,0x107B0}, {0x41EC9,0x107BA},
    {0x42001,0x10805}, {0x42021,0x10808}, {0x42029,0x10835}, {0x420DD,0x10838}, {0x420F1,0x1083C},
    {0x420FD,0x10855}, {0x42162,0x1085F}, {0x42181,0x10876}, {0x421E6,0x1087F}, {0x42201,0x1089E},
    {0x4229E,0x108AF}, {0x42381,0x108F2}, {0x423D1,0x108F5}, {0x423EE,0x108FF}, {0x42401,0x10915},
    {0x4245A,0x1091B}, {0x42481,0x10939}, {0x42601,0x109B7}, {0x426F2,0x109BD}, {0x426F9,0x109BF},
    {0x42702,0x109CF}, {0x4274A,0x109FF}, {0x42801,0x10A00}, {0x42841,0x10A13}, {0x42855,0x10A17},
    {0x42865,0x10A35}, {0x42902,0x10A48}, {0x42981,0x10A7C}, {0x429F6,0x10A7E}, {0x42A01,0x10A9C},
    {0x42A76,0x10A9F}, {0x42B01,0x10AC7}, {0x42B25,0x10AE4}, {0x42BAE,0x10AEF}, {0x42C01,0x10B35},
    {0x42D01,0x10B55}, {0x42D62,0x10B5F}, {0x42D81,0x10B72}, {0x42DE2,0x10B7F}, {0x42E01,0x10B91},
    {0x42EA6,0x10BAF}, {0x43001,0x10C48}, {0x43201,0x10CB2}, {0x43301,0x10CF2}, {0x433EA,0x10CFF},
    {0x43401,0x10D23}, {0x434C2,0x10D39}, {0x43982,0x10E7E}, {0x43A01,0x10EA9}, {0x43AC1,0x10EB1},
    {0x43C01,0x10F1C}, {0x43C76,0x10F26}, {0x43C9D,0x10F27}, {0x43CC1,0x10F45}, {0x43D46,0x10F54},
    {0x43DC1,0x10F81}, {0x43EC1,0x10FC4}, {0x43F16,0x10FCB}, {0x43F81,0x10FF6}, {0x4400D,0x11037},
    {0x4414A,0x1106F}, {0x441C5,0x11072}, {0x441D5,0x11075}, {0x4420D,0x110AF}, {0x44341,0x110E8},
    {0x443C2,0x110F9}, {0x4440D,0x11126}, {0x444DA,0x1113F}, {0x44511,0x11144}, {0x4451D,0x11147},
    {0x44541,0x11172}, {0x445D9,0x11176}, {0x4460D,0x111B2}, {0x44705,0x111C4}, {0x44742,0x111D9},
    {0x44769,0x111DA}, {0x44771,0x111DC}, {0x44786,0x111F4}, {0x44801,0x11211}, {0x4484D,0x1122B},
    {0x448FD,0x11240}, {0x44A01,0x11286}, {0x44A21,0x11288}, {0x44A29,0x1128D}, {0x44A3D,0x1129D},
    {0x44A7D,0x112A8}, {0x44AC1,0x112DE}, {0x44BC2,0x112F9}, {0x44C15,0x1130C}, {0x44C3D,0x11310},
    {0x44C4D,0x11328}, {0x44CA9,0x11330}, {0x44CC9,0x11333}, {0x44CD5,0x11339}, {0x44CF5,0x1133D},
    {0x44D41,0x11350}, {0x44D75,0x11361}, {0x45001,0x11434}, {0x4511D,0x1144A}, {0x45142,0x11459},
    {0x4517D,0x11461}, {0x45201,0x114AF}, {0x45311,0x114C5}, {0x4531D,0x114C7}, {0x45342,0x114D9},
    {0x45601,0x115AE}, {0x45761,0x115DB}, {0x45801,0x1162F}, {0x45911,0x11644}, {0x45942,0x11659},
    {0x45A01,0x116AA}, {0x45AE1,0x116B8}, {0x45B02,0x116C9}, {0x45C01,0x1171A}, {0x45CC2,0x1173B},
    {0x45D01,0x11746}, {0x46001,0x1182B}, {0x46281,0x118DF}, {0x46382,0x118F2}, {0x463FD,0x11906},
    {0x46425,0x11909}, {0x46431,0x11913}, {0x46455,0x11916}, {0x46461,0x1192F}, {0x464FD,0x1193F},
    {0x46505,0x11941}, {0x46542,0x11959}, {0x46681,0x119A7}, {0x466A9,0x119D0}, {0x46785,0x119E1},
    {0x4678D,0x119E3}, {0x46801,0x11A00}, {0x4682D,0x11A32}, {0x468E9,0x11A3A}, {0x46941,0x11A50},
    {0x46971,0x11A89}, {0x46A75,0x11A9D}, {0x46AC1,0x11AF8}, {0x47001,0x11C08}, {0x47029,0x11C2E},
    {0x47101,0x11C40}, {0x47142,0x11C6C}, {0x471C9,0x11C8F}, {0x47401,0x11D06}, {0x47421,0x11D09},
    {0x4742D,0x11D30}, {0x47519,0x11D46}, {0x47542,0x11D59}, {0x47581,0x11D65}, {0x4759D,0x11D68},
    {0x475A9,0x11D89}, {0x47661,0x11D98}, {0x47682,0x11DA9}, {0x47B81,0x11EF2}, {0x47C09,0x11F02},
    {0x47C11,0x11F10}, {0x47C49,0x11F33}, {0x47D42,0x11F59}, {0x47EC1,0x11FB0}, {0x47F02,0x11FD4},
    {0x48001,0x12399}, {0x49002,0x1246E}, {0x49201,0x12543}, {0x4BE41,0x12FF0}, {0x4C001,0x1342F},
    {0x4D105,0x13446}, {0x51001,0x14646}, {0x5A001,0x16A38}, {0x5A901,0x16A5E}, {0x5A982,0x16A69},
    {0x5A9C1,0x16ABE}, {0x5AB02,0x16AC9}, {0x5AB41,0x16AED}, {0x5AC01,0x16B2F}, {0x5AD01,0x16B43},
    {0x5AD42,0x16B59}, {0x5AD6E,0x16B61}, {0x5AD8D,0x16B77}, {0x5ADF5,0x16B8F}, {0x5B901,0x16E7F},
    {0x5BA02,0x16E96}, {0x5BC01,0x16F4A}, {0x5BD41,0x16F50}, {0x5BE4D,0x16F9F}, {0x5BF81,0x16FE1},
    {0x5BF8D,0x16FE3}, {0x5C001,0x187F7}, {0x62001,0x18CD5}, {0x63401,0x18D08}, {0x6BFC1,0x1AFF3},
    {0x6BFD5,0x1AFFB}, {0x6BFF5,0x1AFFE}, {0x6C001,0x1B122}, {0x6C4C9,0x1B132}, {0x6C541,0x1B152},
    {0x6C555,0x1B155}, {0x6C591,0x1B167}, {0x6C5C1,0x1B2FB}, {0x6F001,0x1BC6A}, {0x6F1C1,0x1BC7C},
    {0x6F201,0x1BC88}, {0x6F241,0x1BC99}, {0x74B02,0x1D2D3}, {0x74B82,0x1D2F3}, {0x74D82,0x1D378},
    {0x75001,0x1D454}, {0x75159,0x1D49C}, {0x75279,0x1D49F}, {0x75289,0x1D4A2}, {0x75295,0x1D4A6},
    {0x752A5,0x1D4AC}, {0x752B9,0x1D4B9}, {0x752ED,0x1D4BB}, {0x752F5,0x1D4C3}, {0x75315,0x1D505},
    {0x7541D,0x1D50A}, {0x75435,0x1D514}, {0x75459,0x1D51C}, {0x75479,0x1D539}, {0x754ED,0x1D53E},
    {0x75501,0x1D544}, {0x75519,0x1D546}, {0x75529,0x1D550}, {0x75549,0x1D6A5}, {0x75AA1,0x1D6C0},
    {0x75B09,0x1D6DA}, {0x75B71,0x1D6FA}, {0x75BF1,0x1D714}, {0x75C59,0x1D734}, {0x75CD9,0x1D74E},
    {0x75D41,0x1D76E}, {0x75DC1,0x1D788}, {0x75E29,0x1D7A8}, {0x75EA9,0x1D7C2}, {0x75F11,0x1D7CB},
    {0x75F3A,0x1D7FF}, {0x77C01,0x1DF1E}, {0x77C95,0x1DF2A}, {0x780C1,0x1E06D}, {0x78401,0x1E12C},
    {0x784DD,0x1E13D}, {0x78502,0x1E149}, {0x78539,0x1E14E}, {0x78A41,0x1E2AD}, {0x78B01,0x1E2EB},
    {0x78BC2,0x1E2F9}, {0x79341,0x1E4EB}, {0x793C2,0x1E4F9}, {0x79F81,0x1E7E6}, {0x79FA1,0x1E7EB},
    {0x79FB5,0x1E7EE}, {0x79FC1,0x1E7FE}, {0x7A001,0x1E8C4}, {0x7A31E,0x1E8CF}, {0x7A401,0x1E943},
    {0x7A52D,0x1E94B}, {0x7A542,0x1E959}, {0x7B1C6,0x1ECAB}, {0x7B2B6,0x1ECAF}, {0x7B2C6,0x1ECB4},
    {0x7B406,0x1ED2D}, {0x7B4BE,0x1ED3D}, {0x7B801,0x1EE03}, {0x7B815,0x1EE1F}, {0x7B885,0x1EE22},
    {0x7B891,0x1EE24}, {0x7B89D,0x1EE27}, {0x7B8A5,0x1EE32}, {0x7B8D1,0x1EE37}, {0x7B8E5,0x1EE39},
    {0x7B8ED,0x1EE3B}, {0x7B909,0x1EE42}, {0x7B91D,0x1EE47}, {0x7B925,0x1EE49}, {0x7B92D,0x1EE4B},
    {0x7B935,0x1EE4F}, {0x7B945,0x1EE52}, {0x7B951,0x1EE54}, {0x7B95D,0x1EE57}, {0x7B965,0x1EE59},
    {0x7B96D,0x1EE5B}, {0x7B975,0x1EE5D}, {0x7B97D,0x1EE5F}, {0x7B985,0x1EE62}, {0x7B991,0x1EE64},
    {0x7B99D,0x1EE6A}, {0x7B9B1,0x1EE72}, {0x7B9D1,0x1EE77}, {0x7B9E5,0x1EE7C}, {0x7B9F9,0x1EE7E},
    {0x7BA01,0x1EE89}, {0x7BA2D,0x1EE9B}, {0x7BA85,0x1EEA3}, {0x7BA95,0x1EEA9}, {0x7BAAD,0x1EEBB},
    {0x7C402,0x1F10C}, {0x7EFC2,0x1FBF9}, {0x80001,0x2A6DF}, {0xA9C01,0x2B739}, {0xADD01,0x2B81D},
    {0xAE081,0x2CEA1}, {0xB3AC1,0x2EBE0}, {0xBE001,0x2FA1D}, {0xC0001,0x3134A}, {0xC4D41,0x323AF},
};
/* <<unicode-table */

/* char <-> unsigned char pointers, valid C and C++ (static_cast through void) */
#define LFM2__UBYTES(p) LFM2__CAST(const unsigned char *, LFM2__CAST(const void *, (p)))
#define LFM2__CBYTES(p) LFM2__CAST(const char *, LFM2__CAST(const void *, (p)))

enum { LFM2__CP_OTHER = 0, LFM2__CP_L = 1, LFM2__CP_N = 2, LFM2__CP_S = 3 };

/* The class bits of the range holding cp in a sorted table of non-overlapping ranges
   {first << shift | class, last} (the tokenizer's Unicode classes, the tool-call names'
   >>ident-table), -1 if no range holds it: a binary search. */
static int lfm2__range_class(const uint32_t (*r)[2], size_t n, unsigned shift, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first range that starts after cp */
        size_t mid = lo + (hi - lo) / 2;
        if ((r[mid][0] >> shift) <= cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && cp <= r[lo - 1][1]) return LFM2__CAST(int, r[lo - 1][0] & ((1u << shift) - 1u));
    return -1;
}
/* Class (LFM2__CP_*) of code point cp. */
static int lfm2__uni_class(uint32_t cp) {
    int c;
    if (cp < 128) return lfm2__uni_ascii[cp];
    c = lfm2__range_class(lfm2__uni_ranges, sizeof lfm2__uni_ranges / sizeof lfm2__uni_ranges[0], 2, cp);
    return c < 0 ? LFM2__CP_OTHER : c;
}

/* The UTF-8 sequence starting at s[0] (n >= 1 bytes available): its length if s holds a complete
   valid sequence (no overlongs, surrogates or code points above U+10FFFF), 0 if the n bytes are
   a valid but unfinished start of one, -1 if s[0] cannot start a valid sequence here. */
static int lfm2__utf8_seq(const unsigned char *s, size_t n) {
    unsigned b0 = s[0], lo = 0x80, hi = 0xBF;
    int len, k;
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3;
    else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4;
    else return -1;
    if (b0 == 0xE0) lo = 0xA0;       /* overlong */
    else if (b0 == 0xED) hi = 0x9F;  /* surrogates */
    else if (b0 == 0xF0) lo = 0x90;  /* overlong */
    else if (b0 == 0xF4) hi = 0x8F;  /* > U+10FFFF */
    for (k = 1; k < len; k++) {
        unsigned b;
        if (LFM2__CAST(size_t, k) >= n) return 0;
        b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
    }
    return len;
}

/* Byte length of the code point at s[i] (i < n) and its class. An invalid byte is a code point of
   its own, of class other. */
static size_t lfm2__cp_at(const unsigned char *s, size_t i, size_t n, int *cls) {
    int len;
    uint32_t cp;
    if (s[i] < 0x80) { *cls = lfm2__uni_ascii[s[i]]; return 1; }
    len = lfm2__utf8_seq(s + i, n - i);
    if (len <= 0) { *cls = LFM2__CP_OTHER; return 1; }
    cp = s[i] & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
    for (int k = 1; k < len; k++) cp = (cp << 6) | (s[i + LFM2__CAST(size_t, k)] & 0x3Fu);
    *cls = lfm2__uni_class(cp);
    return LFM2__CAST(size_t, len);
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
   U+0100.. in byte order (so ' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ'). All targets are < 324. */
static uint32_t lfm2__byte_to_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256 + b;                 /* 0..32 -> 256..288 */
    if (b <= 160) return 256 + 33 + (b - 127);   /* 127..160 -> 289..322 */
    return 323;                                  /* 173 (soft hyphen) */
}

/* ---- the split regex ---------------------------------------------------------------------- */
/* The Split patterns lfm2.h knows (tokenizer.json's "Regex" strings, JSON escapes undone):
       LFM2 (all LFM2 / LFM2.5 dense models):
           (?i:'s|'t|'re|'ve|'m|'ll|'d)|A2|A3|A4|\s*[\r\n]+|\s+(?!\S)|\s+
       LFM2.5-8B-A1B (its 128,000-id tokenizer; the GPT-4 style pattern):
           '(?i:[sdmt]|ll|ve|re)|A2|A3|A4|\s*[\r\n]|\s+(?!\S)|\s
       cl100k_base with possessive quantifiers:
           '(?i:[sdmt]|ll|ve|re)|A2'|A3|A4'|\s*[\r\n]|\s+(?!\S)|\s+
   with A2 = [^\r\n\p{L}\p{N}]?\p{L}+, A3 = \p{N}{1,3}, A4 = ' ?[^\s\p{L}\p{N}]+[\r\n]*', and A2' / A4'
   the same with [...]?+ / [...]++. They cut every text identically, so one splitter serves all.
   Under leftmost-first alternation (Oniguruma, what `tokenizers` runs; Python's regex) the first
   alternative that matches at a position wins, with its first match; compared alternative by
   alternative, at a position where the earlier ones failed:
   - contractions: both spellings match an apostrophe followed by s, t, m, d, re, ve or ll, case
     folded the same way; the letters after the apostrophe differ between the alternatives, so at
     most one can match and both spellings match the same text.
   - A2' = A2: when the optional class takes a character c, c is not a letter, so giving c back
     (which A2 may do and A2' may not) leaves \p{L}+ to start at c and fail.
   - A4' = A4: the run is followed only by [\r\n]*, which always matches, so A4 never gives back
     any of the run.
   - \s*[\r\n]+ = \s*[\r\n]: \s* takes the whole whitespace run and gives back characters until
     the rest matches, which first happens at the run's last CR/LF; the character after that one is
     not CR/LF (CR/LF is whitespace, so it would be a later CR/LF of the run), so [\r\n]+ takes
     exactly one character, as [\r\n] does.
   - the last alternative is reached on whitespace only when \s+(?!\S) failed, i.e. on one
     whitespace character followed by a non-whitespace one: \s+ and \s both take that character.
   tests/test_tokenizer.c checks this with its own backtracking matcher of the three pattern strings
   (tokenizer/pretok_patterns). */
static const char *const lfm2__split_patterns[3] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s",
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
};

/* End of the pre-token that starts at s[i] (i < n) under the LFM2 split pattern (above), with
   leftmost-first alternation. Every code point matches some alternative, so the pieces tile the
   text ("Isolated" split). */
static size_t lfm2__split_next(const unsigned char *s, size_t i, size_t n) {
    int c0, c;
    size_t l0 = lfm2__cp_at(s, i, n, &c0), j, l;
    /* 1: contractions, ASCII case-insensitive; U+017F LONG S case-folds to 's' */
    if (s[i] == '\'' && i + 1 < n) {
        unsigned a = s[i + 1] | 0x20u, b = (i + 2 < n) ? (s[i + 2] | 0x20u) : 0u;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return i + 3;
    }
    /* 2: an optional non-letter/number (not CR/LF) then letters */
    j = i;
    if (c0 != LFM2__CP_L && c0 != LFM2__CP_N && s[i] != '\r' && s[i] != '\n' && i + l0 < n) {
        lfm2__cp_at(s, i + l0, n, &c);
        if (c == LFM2__CP_L) j = i + l0;
    }
    if (j > i || c0 == LFM2__CP_L) {
        for (; j < n; j += l) { l = lfm2__cp_at(s, j, n, &c); if (c != LFM2__CP_L) break; }
        return j;
    }
    /* 3: one to three digits */
    if (c0 == LFM2__CP_N) {
        int k;
        for (j = i + l0, k = 1; k < 3 && j < n; k++, j += l) { l = lfm2__cp_at(s, j, n, &c); if (c != LFM2__CP_N) break; }
        return j;
    }
    /* 4: an optional space, symbols/punctuation (anything not space/letter/number), then CR/LF */
    j = i;
    if (s[i] == ' ' && i + 1 < n) {
        lfm2__cp_at(s, i + 1, n, &c);
        if (c == LFM2__CP_OTHER) j = i + 1;
    }
    if (j > i || c0 == LFM2__CP_OTHER) {
        for (; j < n; j += l) { l = lfm2__cp_at(s, j, n, &c); if (c != LFM2__CP_OTHER) break; }
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* 5-7: c0 is whitespace. Find the whole run, its last CR/LF and its last code point. */
    {
        size_t last_crlf = n, last_cp = i;
        for (j = i; j < n; j += l) {
            l = lfm2__cp_at(s, j, n, &c);
            if (c != LFM2__CP_S) break;
            if (s[j] == '\r' || s[j] == '\n') last_crlf = j;
            last_cp = j;
        }
        if (last_crlf != n) return last_crlf + 1; /* \s*[\r\n]+ : backtracks to the last CR/LF */
        if (j == n || last_cp == i) return j;     /* \s+(?!\S) at the end, or \s+ of one char  */
        return last_cp;                           /* \s+(?!\S) gives back one whitespace char  */
    }
}

/* ---- the tokenizer object ----------------------------------------------------------------- */

#define LFM2__MAX_AFFIX 8        /* special tokens the post-processor may add before / after */
#define LFM2__SYM_DEAD INT32_MIN /* see lfm2__bpe_word */

enum { LFM2__TA_VOCAB = 1, LFM2__TA_ADDED = 2, LFM2__TA_SPECIAL = 4 };

typedef struct lfm2__added_tok {
    uint32_t off, len;  /* content: added_text[off .. off+len) */
    int32_t id;
    uint8_t special, lstrip, rstrip, single_word;
} lfm2__added_tok;

typedef struct lfm2__merge {
    int32_t left, right; /* key; left = -1 marks an empty slot */
    int32_t rank, merged;
} lfm2__merge;

struct lfm2__tokenizer {
    int32_t n_tok;            /* ids 0..n_tok-1 may have strings (max id + 1) */
    int32_t n_ids;            /* ids accepted by decode: max(n_tok, model embedding rows) */
    /* model.vocab: string of id i = vstr[voff[i] .. voff[i+1]) when attr[i] & LFM2__TA_VOCAB */
    char *vstr;
    uint32_t *voff;
    int32_t *vlen;            /* code points of the vocab string = bytes its BPE symbol covers */
    int32_t *vhash;           /* open addressing, vocab ids keyed by string; -1 = empty */
    uint32_t vmask;
    lfm2__merge *mhash;       /* open addressing, (left id, right id) -> rank, merged id */
    uint32_t mmask;
    int32_t byte_id[256];     /* BPE symbol of each byte (its one-character token), -1 if none */
    /* decoding: bytes of id i = dec[doff[i] .. doff[i+1]) */
    char *dec;
    uint32_t *doff;
    uint8_t *attr;            /* LFM2__TA_* */
    /* added tokens, matched in the text before everything else */
    lfm2__added_tok *added;
    char *added_text;
    int32_t n_added;
    int32_t *ahash;           /* added-token index keyed by content; -1 = empty */
    uint32_t amask;
    int32_t *added_lens;      /* distinct content lengths, longest first */
    int32_t n_added_lens;
    uint8_t added_first[256]; /* 1: a special added token starts with this byte; 2: a non-special one */
    /* post-processor (or add_bos_token/add_eos_token): ids around the sequence */
    int32_t prefix[LFM2__MAX_AFFIX], suffix[LFM2__MAX_AFFIX];
    int32_t n_prefix, n_suffix;
    int has_template;
    int ignore_merges, fuse_unk;
    int32_t unk_id, bos_id, eos_id, im_end_id, endoftext_id;
};

static uint32_t lfm2__fnv(uint32_t h, const char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ LFM2__CAST(unsigned char, p[i])) * 16777619u;
    return h;
}
#define LFM2__FNV0 2166136261u

static uint32_t lfm2__pair_hash(int32_t a, int32_t b) {
    uint32_t h = LFM2__CAST(uint32_t, a) * 0x9E3779B1u ^ (LFM2__CAST(uint32_t, b) + 0x7F4A7C15u) * 0x85EBCA77u;
    return h ^ (h >> 15);
}

/* Table size (power of two) with a load factor of at most 1/2. */
static uint32_t lfm2__hash_size(int64_t n) {
    uint32_t s = 16;
    while (LFM2__CAST(int64_t, s) < 2 * n) s <<= 1;
    return s;
}

static int32_t lfm2__vocab_find(const struct lfm2__tokenizer *t, const char *p, size_t n) {
    uint32_t h = lfm2__fnv(LFM2__FNV0, p, n) & t->vmask;
    for (;; h = (h + 1) & t->vmask) {
        int32_t id = t->vhash[h];
        if (id < 0) return -1;
        if (t->voff[id + 1] - t->voff[id] == n && memcmp(t->vstr + t->voff[id], p, n) == 0) return id;
    }
}
/* Vocab id of the concatenation a + b (the result of a merge), without building it. */
static int32_t lfm2__vocab_find2(const struct lfm2__tokenizer *t, const char *a, size_t na, const char *b, size_t nb) {
    uint32_t h = lfm2__fnv(lfm2__fnv(LFM2__FNV0, a, na), b, nb) & t->vmask;
    for (;; h = (h + 1) & t->vmask) {
        int32_t id = t->vhash[h];
        const char *s;
        if (id < 0) return -1;
        s = t->vstr + t->voff[id];
        if (t->voff[id + 1] - t->voff[id] == na + nb && memcmp(s, a, na) == 0 && memcmp(s + na, b, nb) == 0) return id;
    }
}
/* Vocab id of the byte-level spelling of the raw bytes w[0..n) (for ignore_merges). */
static int32_t lfm2__vocab_find_mapped(const struct lfm2__tokenizer *t, const unsigned char *w, size_t n) {
    uint32_t h = LFM2__FNV0;
    size_t i;
    for (i = 0; i < n; i++) {
        char u[2];
        size_t k = 0;
        lfm2__utf8_put(lfm2__byte_to_cp(w[i]), u, &k);
        h = lfm2__fnv(h, u, k);
    }
    for (h &= t->vmask;; h = (h + 1) & t->vmask) {
        int32_t id = t->vhash[h];
        const char *s;
        size_t sl, p = 0;
        if (id < 0) return -1;
        s = t->vstr + t->voff[id];
        sl = t->voff[id + 1] - t->voff[id];
        for (i = 0; i < n; i++) {
            char u[2];
            size_t k = 0;
            lfm2__utf8_put(lfm2__byte_to_cp(w[i]), u, &k);
            if (p + k > sl || memcmp(s + p, u, k) != 0) break;
            p += k;
        }
        if (i == n && p == sl) return id;
    }
}
static const lfm2__merge *lfm2__merge_find(const struct lfm2__tokenizer *t, int32_t a, int32_t b) {
    uint32_t h;
    if (a < 0 || b < 0) return NULL;
    for (h = lfm2__pair_hash(a, b) & t->mmask;; h = (h + 1) & t->mmask) {
        const lfm2__merge *m = &t->mhash[h];
        if (m->left < 0) return NULL;
        if (m->left == a && m->right == b) return m;
    }
}
static int32_t lfm2__added_find(const struct lfm2__tokenizer *t, const char *p, size_t n) {
    uint32_t h;
    if (!t->n_added) return -1;
    for (h = lfm2__fnv(LFM2__FNV0, p, n) & t->amask;; h = (h + 1) & t->amask) {
        int32_t k = t->ahash[h];
        if (k < 0) return -1;
        if (t->added[k].len == n && memcmp(t->added_text + t->added[k].off, p, n) == 0) return k;
    }
}
/* Id of a token string: an added token's content first, then a vocab entry. */
static int32_t lfm2__tok_lookup(const struct lfm2__tokenizer *t, const char *p, size_t n) {
    int32_t k = lfm2__added_find(t, p, n);
    return k >= 0 ? t->added[k].id : lfm2__vocab_find(t, p, n);
}
/* The string of id (added content or vocab spelling, as in tokenizer.json); NULL if none. */
static const char *lfm2__tok_str(const struct lfm2__tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_tok) return NULL;
    if (t->attr[id] & LFM2__TA_ADDED) { /* decoded bytes of an added token are its content */
        *len = t->doff[id + 1] - t->doff[id];
        return t->dec + t->doff[id];
    }
    if (!(t->attr[id] & LFM2__TA_VOCAB)) return NULL;
    *len = t->voff[id + 1] - t->voff[id];
    return t->vstr + t->voff[id];
}

static void lfm2__tokenizer_free(struct lfm2__tokenizer *t, const lfm2_allocator *a) {
    if (!t) return;
    lfm2__free(a, t->vstr);
    lfm2__free(a, t->voff);
    lfm2__free(a, t->vlen);
    lfm2__free(a, t->vhash);
    lfm2__free(a, t->mhash);
    lfm2__free(a, t->dec);
    lfm2__free(a, t->doff);
    lfm2__free(a, t->attr);
    lfm2__free(a, t->added);
    lfm2__free(a, t->added_text);
    lfm2__free(a, t->ahash);
    lfm2__free(a, t->added_lens);
    lfm2__free(a, t);
}

/* ---- loading -------------------------------------------------------------------------------- */

/* A printable copy of JSON string token i for messages (truncated, control bytes as '?'). */
static const char *lfm2__json_name(const lfm2__json *j, int32_t i, char *buf, size_t cap) {
    size_t n, k;
    if (i < 0 || j->tok[i].type != LFM2__J_STR) {
        static const char *const names[] = {"?", "an object", "an array", "a string", "a number", "true", "false", "null"};
        return i < 0 ? "(missing)" : names[j->tok[i].type < 8 ? j->tok[i].type : 0];
    }
    n = j->tok[i].end - j->tok[i].start;
    if (n < cap) n = LFM2__CAST(size_t, lfm2__json_str(j, i, buf));
    else {
        n = cap - 4;
        memcpy(buf, j->src + j->tok[i].start, n);
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    for (k = 0; k < n; k++) if (LFM2__CAST(unsigned char, buf[k]) < 0x20) buf[k] = '?';
    return buf;
}
/* A printable, truncated copy of the bytes a[0..na) + b[0..nb) for messages. */
static const char *lfm2__printable(char *buf, size_t cap, const char *a, size_t na, const char *b, size_t nb) {
    size_t n = 0, k;
    for (k = 0; k < na + nb && n + 1 < cap; k++) {
        char ch = k < na ? a[k] : b[k - na];
        buf[n++] = LFM2__CAST(unsigned char, ch) < 0x20 ? '?' : ch;
    }
    buf[n] = 0;
    return buf;
}
/* The "type" of a pipeline component object, printable. */
static const char *lfm2__json_type(const lfm2__json *j, int32_t obj, char *buf, size_t cap) {
    return lfm2__json_name(j, lfm2__json_get(j, obj, "type"), buf, cap);
}
/* Optional boolean: absent or null -> def; 1/0; -1 if another type. */
static int lfm2__json_bool(const lfm2__json *j, int32_t obj, const char *key, int def) {
    int32_t v = lfm2__json_get(j, obj, key);
    if (v < 0 || j->tok[v].type == LFM2__J_NULL) return def;
    if (j->tok[v].type == LFM2__J_TRUE) return 1;
    if (j->tok[v].type == LFM2__J_FALSE) return 0;
    return -1;
}

#define LFM2__TKERR(code, ...) do { rc = lfm2__fail(err, code, __VA_ARGS__); goto done; } while (0)
#define LFM2__TJ "tokenizer.json: "

/* The pipeline around the model: only what the LFM2 tokenizer uses is accepted; anything else is
   named in the error instead of being silently misread. */
static lfm2_result lfm2__tok_check_pipeline(const lfm2__json *j, lfm2_error *err) {
    lfm2_result rc = LFM2_OK;
    char nm[80];
    int32_t v, list, k, c;
    v = lfm2__json_get(j, 0, "normalizer");
    if (v >= 0 && j->tok[v].type != LFM2__J_NULL)
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "normalizer \"%s\" is not supported (only null)", lfm2__json_type(j, v, nm, sizeof nm));
    /* pre_tokenizer: Sequence[Split(LFM2 regex, Isolated), ByteLevel(no prefix space, no regex)] */
    v = lfm2__json_get(j, 0, "pre_tokenizer");
    if (v < 0 || j->tok[v].type != LFM2__J_OBJ)
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "pre_tokenizer %s is not supported (only Sequence[Split, ByteLevel])",
                    v < 0 ? "(missing)" : lfm2__json_name(j, v, nm, sizeof nm));
    if (!lfm2__json_str_is(j, lfm2__json_get(j, v, "type"), "Sequence"))
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "pre_tokenizer \"%s\" is not supported (only Sequence[Split, ByteLevel])", lfm2__json_type(j, v, nm, sizeof nm));
    list = lfm2__json_get(j, v, "pretokenizers");
    if (list < 0 || j->tok[list].type != LFM2__J_ARR || j->tok[list].n != 2)
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "pre_tokenizer.pretokenizers must be [Split, ByteLevel]");
    for (k = 0, c = list + 1; k < 2; k++, c = j->tok[c].skip) {
        if (j->tok[c].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "pre_tokenizer.pretokenizers[%d] is not an object", LFM2__CAST(int, k));
        if (k == 0) {
            int32_t pat = lfm2__json_get(j, c, "pattern"), re = lfm2__json_get(j, pat, "Regex"), q;
            if (!lfm2__json_str_is(j, lfm2__json_get(j, c, "type"), "Split"))
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "pre-tokenizer \"%s\" is not supported (expected Split)", lfm2__json_type(j, c, nm, sizeof nm));
            for (q = 0; q < 3 && !lfm2__json_str_eq(j, re, lfm2__split_patterns[q], strlen(lfm2__split_patterns[q])); q++) {}
            if (q == 3)
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "Split pattern \"%s\" is not supported (built in: the LFM2 pattern and the "
                            "equivalent ones of LFM2.5-8B-A1B and cl100k)", lfm2__json_name(j, re, nm, sizeof nm));
            if (!lfm2__json_str_is(j, lfm2__json_get(j, c, "behavior"), "Isolated") || lfm2__json_bool(j, c, "invert", 0) != 0)
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "Split behavior \"%s\" / invert not supported (only Isolated, invert false)",
                            lfm2__json_name(j, lfm2__json_get(j, c, "behavior"), nm, sizeof nm));
        } else {
            if (!lfm2__json_str_is(j, lfm2__json_get(j, c, "type"), "ByteLevel"))
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "pre-tokenizer \"%s\" is not supported (expected ByteLevel)", lfm2__json_type(j, c, nm, sizeof nm));
            if (lfm2__json_bool(j, c, "add_prefix_space", 0) != 0 || lfm2__json_bool(j, c, "use_regex", 0) != 0)
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "ByteLevel pre-tokenizer with add_prefix_space or use_regex is not supported");
        }
    }
    /* decoder: ByteLevel, possibly inside a Sequence */
    v = lfm2__json_get(j, 0, "decoder");
    if (v < 0 || j->tok[v].type != LFM2__J_OBJ)
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "decoder %s is not supported (only ByteLevel)", v < 0 ? "(missing)" : lfm2__json_name(j, v, nm, sizeof nm));
    if (lfm2__json_str_is(j, lfm2__json_get(j, v, "type"), "Sequence")) {
        list = lfm2__json_get(j, v, "decoders");
        if (list < 0 || j->tok[list].type != LFM2__J_ARR) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "decoder.decoders is not an array");
        for (k = 0, c = list + 1; k < j->tok[list].n; k++, c = j->tok[c].skip)
            if (!lfm2__json_str_is(j, lfm2__json_get(j, c, "type"), "ByteLevel"))
                LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "decoder \"%s\" is not supported (only ByteLevel)", lfm2__json_type(j, c, nm, sizeof nm));
    } else if (!lfm2__json_str_is(j, lfm2__json_get(j, v, "type"), "ByteLevel"))
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "decoder \"%s\" is not supported (only ByteLevel)", lfm2__json_type(j, v, nm, sizeof nm));
done:
    return rc;
}

/* A TemplateProcessing post-processor: the ids before and after sequence "A" of "single". */
static lfm2_result lfm2__tok_template(struct lfm2__tokenizer *t, const lfm2__json *j, int32_t pp, lfm2_error *err) {
    lfm2_result rc = LFM2_OK;
    char nm[80], name[256];
    int32_t single = lfm2__json_get(j, pp, "single"), specials = lfm2__json_get(j, pp, "special_tokens");
    int32_t k, c, seen_seq = 0;
    if (single < 0 || j->tok[single].type != LFM2__J_ARR || specials < 0 || j->tok[specials].type != LFM2__J_OBJ)
        LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "TemplateProcessing needs a \"single\" array and a \"special_tokens\" object");
    for (k = 0, c = single + 1; k < j->tok[single].n; k++, c = j->tok[c].skip) {
        int32_t st = lfm2__json_get(j, c, "SpecialToken"), nameidx, def = -1, ids, q, e;
        int64_t nl;
        if (lfm2__json_get(j, c, "Sequence") >= 0) { seen_seq = 1; continue; }
        nameidx = lfm2__json_get(j, st, "id");
        if (nameidx < 0 || j->tok[nameidx].type != LFM2__J_STR || j->tok[nameidx].end - j->tok[nameidx].start >= sizeof name)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "post_processor.single[%d] is neither {\"SpecialToken\": {\"id\": ...}} nor {\"Sequence\": ...}", LFM2__CAST(int, k));
        nl = lfm2__json_str(j, nameidx, name);
        for (q = 0, e = specials + 1; q < j->tok[specials].n; q++, e = j->tok[e + 1].skip)
            if (lfm2__json_str_eq(j, e, name, LFM2__CAST(size_t, nl))) def = e + 1;
        ids = lfm2__json_get(j, def, "ids");
        if (ids < 0 || j->tok[ids].type != LFM2__J_ARR)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "post_processor special token \"%s\" has no \"ids\" in special_tokens", lfm2__json_name(j, nameidx, nm, sizeof nm));
        for (q = 0, e = ids + 1; q < j->tok[ids].n; q++, e = j->tok[e].skip) {
            int64_t id;
            int32_t *n_aff = seen_seq ? &t->n_suffix : &t->n_prefix;
            if (!lfm2__json_int(j, e, 0, t->n_tok - 1, &id))
                LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "post_processor special token \"%s\": id out of range [0, %d)", lfm2__json_name(j, nameidx, nm, sizeof nm), LFM2__CAST(int, t->n_tok));
            if (*n_aff >= LFM2__MAX_AFFIX) LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "post_processor adds more than %d tokens", LFM2__MAX_AFFIX);
            (seen_seq ? t->suffix : t->prefix)[(*n_aff)++] = LFM2__CAST(int32_t, id);
        }
    }
    t->has_template = 1;
done:
    return rc;
}

static lfm2_result lfm2__tok_post(struct lfm2__tokenizer *t, const lfm2__json *j, lfm2_error *err) {
    lfm2_result rc = LFM2_OK;
    char nm[80];
    int32_t pp = lfm2__json_get(j, 0, "post_processor"), list = -1, n = 1, k, c;
    if (pp < 0 || j->tok[pp].type == LFM2__J_NULL) return LFM2_OK;
    if (j->tok[pp].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "post_processor is not an object");
    if (lfm2__json_str_is(j, lfm2__json_get(j, pp, "type"), "Sequence")) {
        list = lfm2__json_get(j, pp, "processors");
        if (list < 0 || j->tok[list].type != LFM2__J_ARR) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "post_processor.processors is not an array");
        n = j->tok[list].n;
    }
    for (k = 0, c = list < 0 ? pp : list + 1; k < n; k++, c = j->tok[c].skip) {
        int32_t ty = lfm2__json_get(j, c, "type");
        if (lfm2__json_str_is(j, ty, "ByteLevel")) continue; /* offsets only: no effect on ids */
        if (!lfm2__json_str_is(j, ty, "TemplateProcessing") || t->has_template)
            LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "post_processor \"%s\" is not supported (only TemplateProcessing, ByteLevel)", lfm2__json_type(j, c, nm, sizeof nm));
        rc = lfm2__tok_template(t, j, c, err);
        if (rc) goto done;
    }
done:
    return rc;
}

/* model.vocab + added_tokens -> per-id strings, decoded bytes, attributes, hash tables. */
static lfm2_result lfm2__tok_vocab(struct lfm2__tokenizer *t, const lfm2__json *j, int32_t model, int32_t model_vocab_size,
                                   const lfm2_allocator *a, lfm2_error *err) {
    lfm2_result rc = LFM2_OK;
    char nm[80], nm2[80];
    int32_t voc = lfm2__json_get(j, model, "vocab"), at = lfm2__json_get(j, 0, "added_tokens");
    int32_t *key_of = NULL, *added_of = NULL, k, c, n_vocab, n_at = 0;
    size_t vbytes = 0, abytes = 0, pos, need;
    int64_t max_id = -1, id;
    int16_t cp_byte[324]; /* inverse of lfm2__byte_to_cp, -1 where none */
    if (voc < 0 || j->tok[voc].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.vocab is missing or not an object");
    if (at >= 0 && j->tok[at].type != LFM2__J_NULL && j->tok[at].type != LFM2__J_ARR) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens is not an array");
    if (at >= 0 && j->tok[at].type == LFM2__J_ARR) n_at = j->tok[at].n;
    n_vocab = j->tok[voc].n;
    if (n_vocab < 1) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.vocab is empty");
    /* pass 1: ids in range, sizes */
    for (k = 0, c = voc + 1; k < n_vocab; k++, c = j->tok[c + 1].skip) {
        if (!lfm2__json_int(j, c + 1, 0, LFM2_MAX_VOCAB - 1, &id))
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.vocab[\"%s\"]: id is not an integer in [0, %d)", lfm2__json_name(j, c, nm, sizeof nm), LFM2_MAX_VOCAB);
        if (id > max_id) max_id = id;
        vbytes += j->tok[c].end - j->tok[c].start;
    }
    for (k = 0, c = at + 1; k < n_at; k++, c = j->tok[c].skip) {
        int32_t ct = lfm2__json_get(j, c, "content");
        if (!lfm2__json_int(j, lfm2__json_get(j, c, "id"), 0, LFM2_MAX_VOCAB - 1, &id))
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens[%d]: \"id\" is not an integer in [0, %d)", LFM2__CAST(int, k), LFM2_MAX_VOCAB);
        if (ct < 0 || j->tok[ct].type != LFM2__J_STR || j->tok[ct].end == j->tok[ct].start)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens[%d]: \"content\" is not a non-empty string", LFM2__CAST(int, k));
        if (id > max_id) max_id = id;
        abytes += j->tok[ct].end - j->tok[ct].start;
    }
    t->n_tok = LFM2__CAST(int32_t, max_id + 1);
    t->n_ids = t->n_tok;
    if (model_vocab_size > 0) {
        if (t->n_tok > model_vocab_size)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "token id %d is beyond the model's %d embedding rows", LFM2__CAST(int, max_id), LFM2__CAST(int, model_vocab_size));
        t->n_ids = model_vocab_size;
    }
    if (vbytes + abytes >= 0xffffffffu) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "token strings larger than 4 GiB");
    need = LFM2__CAST(size_t, t->n_tok) + 1;
    t->voff = LFM2__CAST(uint32_t *, lfm2__malloc(a, need * sizeof(uint32_t)));
    t->doff = LFM2__CAST(uint32_t *, lfm2__malloc(a, need * sizeof(uint32_t)));
    t->vlen = LFM2__CAST(int32_t *, lfm2__calloc(a, need * sizeof(int32_t)));
    t->attr = LFM2__CAST(uint8_t *, lfm2__calloc(a, need));
    t->vstr = LFM2__CAST(char *, lfm2__malloc(a, vbytes + 1));
    t->dec = LFM2__CAST(char *, lfm2__malloc(a, vbytes + abytes + 1));
    t->added_text = LFM2__CAST(char *, lfm2__malloc(a, abytes + 1));
    t->added = LFM2__CAST(lfm2__added_tok *, lfm2__calloc(a, LFM2__CAST(size_t, n_at) * sizeof(lfm2__added_tok)));
    t->added_lens = LFM2__CAST(int32_t *, lfm2__malloc(a, LFM2__CAST(size_t, n_at) * sizeof(int32_t)));
    t->vmask = lfm2__hash_size(n_vocab) - 1;
    t->amask = lfm2__hash_size(n_at) - 1;
    t->vhash = LFM2__CAST(int32_t *, lfm2__malloc(a, (LFM2__CAST(size_t, t->vmask) + 1) * sizeof(int32_t)));
    t->ahash = LFM2__CAST(int32_t *, lfm2__malloc(a, (LFM2__CAST(size_t, t->amask) + 1) * sizeof(int32_t)));
    key_of = LFM2__CAST(int32_t *, lfm2__malloc(a, need * sizeof(int32_t)));
    added_of = LFM2__CAST(int32_t *, lfm2__malloc(a, need * sizeof(int32_t)));
    if (!t->voff || !t->doff || !t->vlen || !t->attr || !t->vstr || !t->dec || !t->added_text || !t->added ||
        !t->added_lens || !t->vhash || !t->ahash || !key_of || !added_of)
        LFM2__TKERR(LFM2_ERR_OUT_OF_MEMORY, LFM2__TJ "out of memory for %d tokens", LFM2__CAST(int, t->n_tok));
    memset(key_of, 0xff, need * sizeof(int32_t));
    memset(added_of, 0xff, need * sizeof(int32_t));
    memset(t->vhash, 0xff, (LFM2__CAST(size_t, t->vmask) + 1) * sizeof(int32_t));
    memset(t->ahash, 0xff, (LFM2__CAST(size_t, t->amask) + 1) * sizeof(int32_t));
    /* pass 2: strings in id order, duplicates */
    for (k = 0, c = voc + 1; k < n_vocab; k++, c = j->tok[c + 1].skip) {
        lfm2__json_int(j, c + 1, 0, LFM2_MAX_VOCAB - 1, &id);
        if (key_of[id] >= 0)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.vocab: id %d is given to both \"%s\" and \"%s\"", LFM2__CAST(int, id),
                        lfm2__json_name(j, key_of[id], nm, sizeof nm), lfm2__json_name(j, c, nm2, sizeof nm2));
        key_of[id] = c;
    }
    for (id = 0, pos = 0; id < t->n_tok; id++) {
        t->voff[id] = LFM2__CAST(uint32_t, pos);
        if (key_of[id] < 0) continue;
        pos += LFM2__CAST(size_t, lfm2__json_str(j, key_of[id], t->vstr + pos));
        t->attr[id] = LFM2__TA_VOCAB;
    }
    t->voff[t->n_tok] = LFM2__CAST(uint32_t, pos);
    for (id = 0; id < t->n_tok; id++) {
        uint32_t h;
        if (!(t->attr[id] & LFM2__TA_VOCAB)) continue;
        for (h = lfm2__fnv(LFM2__FNV0, t->vstr + t->voff[id], t->voff[id + 1] - t->voff[id]) & t->vmask; t->vhash[h] >= 0; h = (h + 1) & t->vmask) {
            int32_t o = t->vhash[h];
            if (t->voff[o + 1] - t->voff[o] == t->voff[id + 1] - t->voff[id] && memcmp(t->vstr + t->voff[o], t->vstr + t->voff[id], t->voff[id + 1] - t->voff[id]) == 0)
                LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.vocab: token \"%s\" appears twice (ids %d and %d)",
                            lfm2__json_name(j, key_of[id], nm, sizeof nm), LFM2__CAST(int, o), LFM2__CAST(int, id));
        }
        t->vhash[h] = LFM2__CAST(int32_t, id);
    }
    /* added tokens */
    for (k = 0, c = at + 1, pos = 0; k < n_at; k++, c = j->tok[c].skip) {
        lfm2__added_tok *ad = &t->added[k];
        int32_t ct = lfm2__json_get(j, c, "content"), q;
        int fl[5];
        uint32_t h;
        static const char *const flag_names[5] = {"special", "lstrip", "rstrip", "single_word", "normalized"};
        lfm2__json_int(j, lfm2__json_get(j, c, "id"), 0, LFM2_MAX_VOCAB - 1, &id);
        if (added_of[id] >= 0) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens: id %d appears twice", LFM2__CAST(int, id));
        for (q = 0; q < 5; q++) {
            fl[q] = lfm2__json_bool(j, c, flag_names[q], 0);
            if (fl[q] < 0) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens[%d].%s is not a boolean", LFM2__CAST(int, k), flag_names[q]);
        }
        added_of[id] = k;
        ad->id = LFM2__CAST(int32_t, id);
        ad->off = LFM2__CAST(uint32_t, pos);
        ad->len = LFM2__CAST(uint32_t, lfm2__json_str(j, ct, t->added_text + pos));
        ad->special = LFM2__CAST(uint8_t, fl[0]);
        ad->lstrip = LFM2__CAST(uint8_t, fl[1]);
        ad->rstrip = LFM2__CAST(uint8_t, fl[2]);
        ad->single_word = LFM2__CAST(uint8_t, fl[3]);
        /* "normalized" only matters with a normalizer, and none is accepted */
        pos += ad->len;
        t->attr[id] |= LFM2__CAST(uint8_t, LFM2__TA_ADDED | (fl[0] ? LFM2__TA_SPECIAL : 0));
        t->added_first[LFM2__CAST(unsigned char, t->added_text[ad->off])] |= LFM2__CAST(uint8_t, fl[0] ? 1 : 2);
        for (h = lfm2__fnv(LFM2__FNV0, t->added_text + ad->off, ad->len) & t->amask; t->ahash[h] >= 0; h = (h + 1) & t->amask) {
            const lfm2__added_tok *o = &t->added[t->ahash[h]];
            if (o->len == ad->len && memcmp(t->added_text + o->off, t->added_text + ad->off, ad->len) == 0)
                LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "added_tokens: content \"%s\" appears twice", lfm2__json_name(j, ct, nm, sizeof nm));
        }
        t->ahash[h] = k;
        for (q = 0; q < t->n_added_lens && t->added_lens[q] != LFM2__CAST(int32_t, ad->len); q++) {}
        if (q == t->n_added_lens) { /* insert keeping the list longest first */
            for (q = t->n_added_lens++; q > 0 && t->added_lens[q - 1] < LFM2__CAST(int32_t, ad->len); q--) t->added_lens[q] = t->added_lens[q - 1];
            t->added_lens[q] = LFM2__CAST(int32_t, ad->len);
        }
        t->n_added = k + 1;
    }
    for (k = 0; k < 324; k++) cp_byte[k] = -1;
    for (k = 0; k < 256; k++) cp_byte[lfm2__byte_to_cp(LFM2__CAST(unsigned, k))] = LFM2__CAST(int16_t, k);
    /* decoded bytes per id: an added token's content; a vocab token through the inverse byte map
       (a string with a character outside the map decodes to its own UTF-8, as the ByteLevel
       decoder does); nothing for ids without a string */
    for (id = 0, pos = 0; id < t->n_tok; id++) {
        t->doff[id] = LFM2__CAST(uint32_t, pos);
        if (added_of[id] >= 0) {
            const lfm2__added_tok *ad = &t->added[added_of[id]];
            memcpy(t->dec + pos, t->added_text + ad->off, ad->len);
            pos += ad->len;
        }
        if (t->attr[id] & LFM2__TA_VOCAB) {
            const unsigned char *s = LFM2__UBYTES(t->vstr + t->voff[id]);
            size_t n = t->voff[id + 1] - t->voff[id], i = 0, out = pos;
            int mapped = 1;
            int32_t ncp = 0;
            while (i < n) {
                int len = lfm2__utf8_seq(s + i, n - i);
                uint32_t cp = 0;
                int b = -1;
                if (len == 2) cp = ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
                else if (len == 1) cp = s[i];
                if ((len == 1 || len == 2) && cp < 324) b = cp_byte[cp];
                i += len > 0 ? LFM2__CAST(size_t, len) : 1u;
                ncp++;
                if (b < 0) mapped = 0;
                else if (added_of[id] < 0) t->dec[out++] = LFM2__CAST(char, b);
            }
            t->vlen[id] = mapped ? ncp : 0; /* 0: never a BPE symbol (no byte spelling) */
            if (added_of[id] < 0) {
                if (!mapped) { memcpy(t->dec + pos, s, n); out = pos + n; }
                pos = out;
            }
        }
    }
    t->doff[t->n_tok] = LFM2__CAST(uint32_t, pos);
done:
    lfm2__free(a, key_of);
    lfm2__free(a, added_of);
    return rc;
}

/* model.merges ("a b" strings or ["a", "b"] pairs; rank = position) -> the merge hash table. */
static lfm2_result lfm2__tok_merges(struct lfm2__tokenizer *t, const lfm2__json *j, int32_t model, const lfm2_allocator *a, lfm2_error *err) {
    lfm2_result rc = LFM2_OK;
    char nm[80];
    int32_t mg = lfm2__json_get(j, model, "merges"), k, c, n;
    size_t maxspan = 0;
    char *buf = NULL;
    if (mg < 0 || j->tok[mg].type != LFM2__J_ARR) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.merges is missing or not an array");
    n = j->tok[mg].n;
    for (c = mg + 1; c < j->tok[mg].skip; c++) /* every string inside, for the unescape buffer */
        if (j->tok[c].type == LFM2__J_STR && j->tok[c].end - j->tok[c].start > maxspan) maxspan = j->tok[c].end - j->tok[c].start;
    t->mmask = lfm2__hash_size(n) - 1;
    t->mhash = LFM2__CAST(lfm2__merge *, lfm2__malloc(a, (LFM2__CAST(size_t, t->mmask) + 1) * sizeof(lfm2__merge)));
    buf = LFM2__CAST(char *, lfm2__malloc(a, 2 * maxspan + 2));
    if (!t->mhash || !buf) LFM2__TKERR(LFM2_ERR_OUT_OF_MEMORY, LFM2__TJ "out of memory for %d merges", LFM2__CAST(int, n));
    memset(t->mhash, 0xff, (LFM2__CAST(size_t, t->mmask) + 1) * sizeof(lfm2__merge));
    for (k = 0, c = mg + 1; k < n; k++, c = j->tok[c].skip) {
        const char *pa = buf, *pb;
        size_t na, nb;
        int32_t ia, ib, im;
        uint32_t h;
        if (j->tok[c].type == LFM2__J_STR) { /* "a b": exactly one space */
            size_t len = LFM2__CAST(size_t, lfm2__json_str(j, c, buf)), sp = len, q;
            for (q = 0; q < len; q++) {
                if (buf[q] != ' ') continue;
                if (sp != len) { sp = len; break; }
                sp = q;
            }
            if (sp == len) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.merges[%d] \"%s\" is not two tokens separated by one space", LFM2__CAST(int, k), lfm2__json_name(j, c, nm, sizeof nm));
            na = sp;
            pb = buf + sp + 1;
            nb = len - sp - 1;
        } else if (j->tok[c].type == LFM2__J_ARR && j->tok[c].n == 2 && j->tok[c + 1].type == LFM2__J_STR && j->tok[c + 2].type == LFM2__J_STR) {
            na = LFM2__CAST(size_t, lfm2__json_str(j, c + 1, buf));
            pb = buf + na;
            nb = LFM2__CAST(size_t, lfm2__json_str(j, c + 2, buf + na));
        } else
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", LFM2__CAST(int, k));
        ia = lfm2__vocab_find(t, pa, na);
        ib = lfm2__vocab_find(t, pb, nb);
        if (ia < 0 || ib < 0)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.merges[%d]: token \"%s\" is not in model.vocab", LFM2__CAST(int, k),
                        lfm2__printable(nm, sizeof nm, ia < 0 ? pa : pb, ia < 0 ? na : nb, "", 0));
        im = lfm2__vocab_find2(t, pa, na, pb, nb);
        if (im < 0)
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.merges[%d]: merged token \"%s\" is not in model.vocab", LFM2__CAST(int, k),
                        lfm2__printable(nm, sizeof nm, pa, na, pb, nb));
        /* a repeated pair keeps its last rank, as tokenizers' HashMap collect does */
        for (h = lfm2__pair_hash(ia, ib) & t->mmask; t->mhash[h].left >= 0; h = (h + 1) & t->mmask)
            if (t->mhash[h].left == ia && t->mhash[h].right == ib) break;
        t->mhash[h].left = ia;
        t->mhash[h].right = ib;
        t->mhash[h].rank = k;
        t->mhash[h].merged = im;
    }
done:
    lfm2__free(a, buf);
    return rc;
}

/* A special-token setting of tokenizer_config.json: "text", {"content": "text"} or null.
   Returns 0 (id in *id, -1 if unset) or -1 if malformed / not a token. */
static int lfm2__tok_cfg_token(const struct lfm2__tokenizer *t, const lfm2__json *j, const char *key, int32_t *id, char *nm, size_t nmcap) {
    int32_t v = lfm2__json_get(j, 0, key);
    char buf[256];
    int64_t n;
    *id = -1;
    if (v < 0 || j->tok[v].type == LFM2__J_NULL) return 0;
    if (j->tok[v].type == LFM2__J_OBJ) v = lfm2__json_get(j, v, "content");
    if (v < 0 || j->tok[v].type != LFM2__J_STR) { snprintf(nm, nmcap, "(not a string)"); return -1; }
    lfm2__json_name(j, v, nm, nmcap);
    if (j->tok[v].end - j->tok[v].start >= sizeof buf) return -1;
    n = lfm2__json_str(j, v, buf);
    *id = lfm2__tok_lookup(t, buf, LFM2__CAST(size_t, n));
    return *id >= 0 ? 0 : -1;
}

static lfm2_result lfm2__tok_config(struct lfm2__tokenizer *t, const char *src, size_t len, const lfm2_allocator *a, lfm2_error *err) {
    static const char *const keys[3] = {"bos_token", "eos_token", "unk_token"};
    lfm2_result rc;
    lfm2__json j;
    char nm[80];
    int32_t ids[3];
    int add_bos, add_eos, k;
    rc = lfm2__json_parse(&j, src, len, a, err, LFM2_ERR_BAD_TOKENIZER, "tokenizer_config.json");
    if (rc) return rc;
    if (j.tok[0].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, "tokenizer_config.json: not a JSON object");
    add_bos = lfm2__json_bool(&j, 0, "add_bos_token", 0);
    add_eos = lfm2__json_bool(&j, 0, "add_eos_token", 0);
    if (add_bos < 0 || add_eos < 0)
        LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, "tokenizer_config.json: %s is not a boolean", add_bos < 0 ? "add_bos_token" : "add_eos_token");
    for (k = 0; k < 3; k++)
        if (lfm2__tok_cfg_token(t, &j, keys[k], &ids[k], nm, sizeof nm))
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, "tokenizer_config.json: %s \"%s\" is not a token of tokenizer.json", keys[k], nm);
    if (ids[0] >= 0) t->bos_id = ids[0];
    if (ids[1] >= 0) t->eos_id = ids[1];
    if (ids[2] >= 0 && t->unk_id < 0) t->unk_id = ids[2];
    /* transformers' fast tokenizers follow the post-processor when there is one */
    if (!t->has_template) {
        if (add_bos && t->bos_id >= 0) t->prefix[t->n_prefix++] = t->bos_id;
        if (add_eos && t->eos_id >= 0) t->suffix[t->n_suffix++] = t->eos_id;
    }
done:
    lfm2__json_free(&j, a);
    return rc;
}

/* Loads tokenizer.json (+ optional tokenizer_config.json). model_vocab_size: rows of the
   embedding (ids at or above the tokenizer's size decode to nothing; 0 = unknown). */
static lfm2_result lfm2__tokenizer_load(const char *tokenizer_json, size_t tokenizer_json_size, const char *tokenizer_config_json,
                                        size_t tokenizer_config_json_size, int32_t model_vocab_size, const lfm2_allocator *a,
                                        lfm2_error *err, struct lfm2__tokenizer **out) {
    lfm2_result rc;
    lfm2__json j;
    struct lfm2__tokenizer *t = NULL;
    char nm[80];
    int32_t model, v, b;
    int bf, q;
    if (!out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2__tokenizer_load: out is NULL");
    *out = NULL;
    rc = lfm2__json_parse(&j, tokenizer_json, tokenizer_json_size, a, err, LFM2_ERR_BAD_TOKENIZER, "tokenizer.json");
    if (rc) return rc;
    t = LFM2__CAST(struct lfm2__tokenizer *, lfm2__calloc(a, sizeof *t));
    if (!t) LFM2__TKERR(LFM2_ERR_OUT_OF_MEMORY, LFM2__TJ "out of memory");
    t->unk_id = t->bos_id = t->eos_id = -1;
    if (j.tok[0].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "not a JSON object");
    rc = lfm2__tok_check_pipeline(&j, err);
    if (rc) goto done;
    model = lfm2__json_get(&j, 0, "model");
    if (model < 0 || j.tok[model].type != LFM2__J_OBJ) LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "\"model\" is missing or not an object");
    v = lfm2__json_get(&j, model, "type");
    if (v >= 0 && !lfm2__json_str_is(&j, v, "BPE"))
        LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "model type \"%s\" is not supported (only BPE)", lfm2__json_name(&j, v, nm, sizeof nm));
    bf = lfm2__json_bool(&j, model, "byte_fallback", 0);
    t->ignore_merges = lfm2__json_bool(&j, model, "ignore_merges", 0);
    t->fuse_unk = lfm2__json_bool(&j, model, "fuse_unk", 0);
    if (bf < 0 || t->ignore_merges < 0 || t->fuse_unk < 0)
        LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.%s is not a boolean", bf < 0 ? "byte_fallback" : t->ignore_merges < 0 ? "ignore_merges" : "fuse_unk");
    if (bf) LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "model.byte_fallback true is not supported (LFM2 uses the byte-level map)");
    v = lfm2__json_get(&j, model, "dropout");
    if (v >= 0 && j.tok[v].type != LFM2__J_NULL) LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "model.dropout is not supported (must be null)");
    for (q = 0; q < 2; q++) {
        const char *key = q ? "end_of_word_suffix" : "continuing_subword_prefix";
        v = lfm2__json_get(&j, model, key);
        if (v >= 0 && j.tok[v].type != LFM2__J_NULL && !lfm2__json_str_is(&j, v, ""))
            LFM2__TKERR(LFM2_ERR_UNSUPPORTED, LFM2__TJ "model.%s is not supported (must be null)", key);
    }
    rc = lfm2__tok_vocab(t, &j, model, model_vocab_size, a, err);
    if (rc) goto done;
    rc = lfm2__tok_merges(t, &j, model, a, err);
    if (rc) goto done;
    v = lfm2__json_get(&j, model, "unk_token");
    if (v >= 0 && j.tok[v].type != LFM2__J_NULL) {
        char buf[256];
        int64_t n;
        if (j.tok[v].type != LFM2__J_STR || j.tok[v].end - j.tok[v].start >= sizeof buf ||
            (n = lfm2__json_str(&j, v, buf), (t->unk_id = lfm2__vocab_find(t, buf, LFM2__CAST(size_t, n))) < 0))
            LFM2__TKERR(LFM2_ERR_BAD_TOKENIZER, LFM2__TJ "model.unk_token %s is not in model.vocab", lfm2__json_name(&j, v, nm, sizeof nm));
    }
    rc = lfm2__tok_post(t, &j, err);
    if (rc) goto done;
    for (b = 0; b < 256; b++) {
        char u[2];
        size_t k = 0;
        lfm2__utf8_put(lfm2__byte_to_cp(LFM2__CAST(unsigned, b)), u, &k);
        t->byte_id[b] = lfm2__vocab_find(t, u, k);
    }

    if (t->has_template && t->n_prefix > 0) t->bos_id = t->prefix[0];
    if (tokenizer_config_json) {
        rc = lfm2__tok_config(t, tokenizer_config_json, tokenizer_config_json_size, a, err);
        if (rc) goto done;
    }
    t->im_end_id = lfm2__tok_lookup(t, "<|im_end|>", 10);
    t->endoftext_id = lfm2__tok_lookup(t, "<|endoftext|>", 13);
done:
    lfm2__json_free(&j, a);
    if (rc) lfm2__tokenizer_free(t, a);
    else *out = t;
    return rc;
}

/* ---- encoding ------------------------------------------------------------------------------- */

typedef struct lfm2__enc {
    const struct lfm2__tokenizer *t;
    lfm2_token *out;
    int32_t cap;
    int32_t n;       /* ids so far; past cap they are only counted (see lfm2_tokenize) */
} lfm2__enc;

static void lfm2__emit(lfm2__enc *e, int32_t id) {
    if (e->n < e->cap) e->out[e->n] = id;
    e->n++;
}

/* BPE state of one pre-token of n bytes, kept in place in s[0..n): the symbol covering bytes
   [k, k + width) has its id (or -1 for a byte without a token) in s[k], and, when width >= 2, a
   back-pointer -(k + 2) in s[k + width - 1], so both neighbours are found in O(1): the next
   symbol starts at k + width, the previous one ends at k - 1. Slots inside a symbol hold
   back-pointers or LFM2__SYM_DEAD, never a value >= -1, so "s[k] >= -1" means "k starts a symbol". */
static int32_t lfm2__sym_width(const struct lfm2__tokenizer *t, const int32_t *s, int32_t k) {
    return s[k] >= 0 ? t->vlen[s[k]] : 1;
}
static int32_t lfm2__sym_prev(const int32_t *s, int32_t k) {
    return s[k - 1] >= -1 ? k - 1 : -s[k - 1] - 2;
}
/* Merges the symbol at a with the next one (at b) into `merged`. Returns the end of the result. */
static int32_t lfm2__sym_merge(const struct lfm2__tokenizer *t, int32_t *s, int32_t a, int32_t b, int32_t merged) {
    int32_t end = b + lfm2__sym_width(t, s, b);
    s[b] = LFM2__SYM_DEAD;
    s[a] = merged;
    s[end - 1] = -(a + 2);
    return end;
}

/* A candidate merge: the rule t->mhash[mi] for the symbols at pos and after. */
typedef struct lfm2__bpe_cand { int32_t rank, pos, mi; } lfm2__bpe_cand;

static int lfm2__cand_less(lfm2__bpe_cand x, lfm2__bpe_cand y) {
    return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos);
}
static void lfm2__heap_push(lfm2__bpe_cand *h, int32_t *nh, lfm2__bpe_cand c) {
    int32_t i = (*nh)++;
    while (i > 0 && lfm2__cand_less(c, h[(i - 1) / 2])) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = c;
}
static lfm2__bpe_cand lfm2__heap_pop(lfm2__bpe_cand *h, int32_t *nh) {
    lfm2__bpe_cand top = h[0], last = h[--(*nh)];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= *nh) break;
        if (c + 1 < *nh && lfm2__cand_less(h[c + 1], h[c])) c++;
        if (!lfm2__cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}
static void lfm2__push_pair(const struct lfm2__tokenizer *t, const int32_t *s, int32_t k, int32_t next, lfm2__bpe_cand *h, int32_t *nh) {
    const lfm2__merge *m = lfm2__merge_find(t, s[k], s[next]);
    if (m) {
        lfm2__bpe_cand c;
        c.rank = m->rank;
        c.pos = k;
        c.mi = LFM2__CAST(int32_t, m - t->mhash);
        lfm2__heap_push(h, nh, c);
    }
}

/* BPE as tokenizers does it: repeatedly merge the pair of lowest rank (leftmost on ties), with a
   min-heap of candidates; stale candidates (a side already merged elsewhere) are recognised when
   popped by comparing the ids in place with the candidate's pair. s[0..n) holds the byte
   symbols in, the in-place state out. The heap holds at most the n-1 initial pairs plus two per
   merge: heap must have room for 3n entries. */
static void lfm2__bpe_heap(const struct lfm2__tokenizer *t, int32_t *s, int32_t n, lfm2__bpe_cand *heap) {
    int32_t nh = 0, k;
    for (k = 0; k + 1 < n; k++) lfm2__push_pair(t, s, k, k + 1, heap, &nh);
    while (nh > 0) {
        lfm2__bpe_cand c = lfm2__heap_pop(heap, &nh);
        const lfm2__merge *m = &t->mhash[c.mi];
        int32_t a = c.pos, b, end;
        if (s[a] != m->left) continue; /* no longer a symbol start, or a different symbol */
        b = a + t->vlen[s[a]];
        if (b >= n || s[b] != m->right) continue;
        end = lfm2__sym_merge(t, s, a, b, m->merged);
        if (a > 0) lfm2__push_pair(t, s, lfm2__sym_prev(s, a), a, heap, &nh);
        if (end < n) lfm2__push_pair(t, s, a, end, heap, &nh);
    }
}

/* The same merges in place with no memory beyond s: each pass finds the lowest rank present and
   merges its occurrences left to right, which is the one-at-a-time order as long as no merge
   creates a pair of lower rank (a merge never creates another occurrence of the pair being
   merged). Merge lists in training order never do; when one does, tokenizers merges that pair
   next, so the pass stops there and the next pass starts from the new lowest rank. Cost O(n) per
   pass: only the fallback for pre-tokens the windows below cannot settle (see lfm2__bpe_long). */
static void lfm2__bpe_passes(const struct lfm2__tokenizer *t, int32_t *s, int32_t n) {
    for (;;) {
        const lfm2__merge *best = NULL, *m;
        int32_t k, next;
        for (k = 0; (next = k + lfm2__sym_width(t, s, k)) < n; k = next) {
            m = lfm2__merge_find(t, s[k], s[next]);
            if (m && (!best || m->rank < best->rank)) best = m;
        }
        if (!best) return;
        for (k = 0; (next = k + lfm2__sym_width(t, s, k)) < n;) {
            if (s[k] == best->left && s[next] == best->right) {
                int32_t end = lfm2__sym_merge(t, s, k, next, best->merged);
                if ((k > 0 && (m = lfm2__merge_find(t, s[lfm2__sym_prev(s, k)], s[k])) && m->rank < best->rank) ||
                    (end < n && (m = lfm2__merge_find(t, s[k], s[end])) && m->rank < best->rank))
                    break;
                k = end;
            } else k = next;
            if (k >= n) break;
        }
    }
}

/* Short pre-tokens (most words): the same merges on a compact symbol array, finding the lowest
   rank (leftmost on ties) by a linear scan of the pair ranks; a merge updates only the two
   pairs beside it. No heap: for a few symbols the scan is cheaper. sym[0..*n) in and out. */
#define LFM2__BPE_SMALL 64
static void lfm2__bpe_small(const struct lfm2__tokenizer *t, int32_t *sym, int32_t *n_io) {
    int32_t rk[LFM2__BPE_SMALL], mg[LFM2__BPE_SMALL]; /* rule of symbols k, k+1: rank (INT32_MAX: none), merged id */
    int32_t n = *n_io, k, best, lo;
    const lfm2__merge *m;
    for (k = 0; k + 1 < n; k++) {
        m = lfm2__merge_find(t, sym[k], sym[k + 1]);
        rk[k] = m ? m->rank : INT32_MAX;
        mg[k] = m ? m->merged : -1;
    }
    for (;;) {
        lo = INT32_MAX;
        for (k = 0; k + 1 < n; k++) lo = rk[k] < lo ? rk[k] : lo;
        if (lo == INT32_MAX) break;
        for (best = 0; rk[best] != lo; best++) {}
        sym[best] = mg[best]; /* symbols best and best+1 become one */
        for (k = best + 1; k + 1 < n; k++) { sym[k] = sym[k + 1]; rk[k] = rk[k + 1]; mg[k] = mg[k + 1]; }
        n--;
        if (best > 0) {
            m = lfm2__merge_find(t, sym[best - 1], sym[best]);
            rk[best - 1] = m ? m->rank : INT32_MAX;
            mg[best - 1] = m ? m->merged : -1;
        }
        if (best + 1 < n) {
            m = lfm2__merge_find(t, sym[best], sym[best + 1]);
            rk[best] = m ? m->rank : INT32_MAX;
            mg[best] = m ? m->merged : -1;
        }
    }
    *n_io = n;
}

/* Appends the id of one final symbol; a byte without a token becomes the unk token (fused if
   asked) or is dropped. */
static void lfm2__emit_sym(lfm2__enc *e, int32_t id, int32_t *prev_unk) {
    const struct lfm2__tokenizer *t = e->t;
    if (id < 0) {
        if (t->unk_id >= 0 && !(t->fuse_unk && *prev_unk)) lfm2__emit(e, t->unk_id);
        *prev_unk = 1;
        return;
    }
    *prev_unk = 0;
    lfm2__emit(e, id);
}

/* BPE of the raw bytes w[0..n) (n <= LFM2__BPE_WIN) into the in-place state s[0..n). */
static void lfm2__bpe_span(const struct lfm2__tokenizer *t, const unsigned char *w, int32_t n, int32_t *s, lfm2__bpe_cand *heap) {
    int32_t k;
    for (k = 0; k < n; k++) s[k] = t->byte_id[w[k]];
    lfm2__bpe_heap(t, s, n, heap);
}

/* A pre-token of n bytes, on the stack in windows of LFM2__BPE_WIN bytes (one if n <= WIN).
   Facts used (each follows from "merges happen in (rank, position) order"; a symbol only grows):
   (a) the ids between two token boundaries of BPE(x) are BPE of the bytes between them: no
       merge of BPE(x) ever crossed those boundaries, so the merges in between ran as on their
       own;
   (b) if BPE(u) = A + [t] and BPE(v) = [t] + B where t spells the same bytes at the end of u
       and the start of v (u = u' t, v = t v'), then BPE(u' t v') = A + [t] + B: until a merge
       of the whole crosses a boundary of t, the merges within u and within v are those of BPE(u)
       and BPE(v) in their order, and the first crossing merge would be the next merge of BPE(u)
       or of BPE(v), which never cross them.
   So with Y = BPE(w[p .. p + WIN)) and Z = BPE(w[q .. q + WIN)) for the start q of a token t of
   Y: if Z starts with t, then BPE(w[p .. q + WIN)) = (Y up to t) + Z, and by induction the ids
   of w[0 .. n) are the tokens of each Y before its join token, then the last Z, whole. A join
   that never comes (tokens longer than about half a window, or merges whose order depends on
   bytes half a window away: crafted merge lists or texts) returns 0, having emitted ids that
   the caller drops. */
#define LFM2__BPE_WIN 512
#define LFM2__BPE_TRIES 4 /* join tokens tried per window */
static int lfm2__bpe_windows(lfm2__enc *e, const unsigned char *w, int32_t n, int32_t *prev_unk) {
    const struct lfm2__tokenizer *t = e->t;
    int32_t ya[LFM2__BPE_WIN], za[LFM2__BPE_WIN], *y = ya, *z = za, *sw;
    lfm2__bpe_cand heap[3 * LFM2__BPE_WIN];
    int32_t p = 0, yn = n < LFM2__BPE_WIN ? n : LFM2__BPE_WIN, k, budget = 16 + 4 * (n / (LFM2__BPE_WIN / 2)); /* window BPEs allowed */
    lfm2__bpe_span(t, w, yn, y, heap);
    while (p + yn < n) {
        int32_t mid = 0, q, tries = 0, zn = 0, joined = 0;
        /* try the last token that ends in the first half of Y first (the end of the window is
           farthest), then the ones before it; with no such token, the second token and after */
        for (k = 0; k < yn; k += lfm2__sym_width(t, y, k))
            if (k > 0 && k + lfm2__sym_width(t, y, k) <= yn / 2) mid = k;
        q = mid ? mid : lfm2__sym_width(t, y, 0);
        while (q > 0 && q + lfm2__sym_width(t, y, q) < yn && tries < LFM2__BPE_TRIES && budget > 0) {
            tries++;
            budget--;
            zn = n - (p + q) < LFM2__BPE_WIN ? n - (p + q) : LFM2__BPE_WIN;
            lfm2__bpe_span(t, w + p + q, zn, z, heap);
            if (z[0] == y[q]) { joined = 1; break; }
            q = mid ? lfm2__sym_prev(y, q) : q + lfm2__sym_width(t, y, q);
        }
        if (!joined) return 0;
        for (k = 0; k < q; k += lfm2__sym_width(t, y, k)) lfm2__emit_sym(e, y[k], prev_unk);
        p += q;
        yn = zn;
        sw = y; y = z; z = sw;
    }
    for (k = 0; k < yn; k += lfm2__sym_width(t, y, k)) lfm2__emit_sym(e, y[k], prev_unk);
    return 1;
}

/* Pre-tokens longer than LFM2__BPE_SMALL bytes: the heap on the stack up to LFM2__BPE_WIN bytes,
   windows beyond. When the windows cannot settle a pre-token it is merged in place in the
   unused part of out (which must then hold its n bytes), else it counts as n ids: the count
   stays a capacity that suffices (lfm2_tokenize). */
static void lfm2__bpe_long(lfm2__enc *e, const unsigned char *w, int32_t n) {
    const struct lfm2__tokenizer *t = e->t;
    int32_t n0 = e->n, prev_unk = 0, k, *s;
    if (lfm2__bpe_windows(e, w, n, &prev_unk)) return; /* n <= LFM2__BPE_WIN: one window, always */
    e->n = n0;
    prev_unk = 0;
    if (e->cap - n0 < n) { e->n = n0 + n; return; }
    s = e->out + n0;
    for (k = 0; k < n; k++) s[k] = t->byte_id[w[k]];
    lfm2__bpe_passes(t, s, n);
    /* read the symbols left to right; the write position never passes the read position (it may
       land on the symbol being read: its width is taken first) */
    for (k = 0; k < n;) {
        int32_t id = s[k], wd = lfm2__sym_width(t, s, k);
        lfm2__emit_sym(e, id, &prev_unk);
        k += wd;
    }
}

/* Encodes one pre-token w[0..n) (raw bytes) and appends its ids. */
static void lfm2__bpe_word(lfm2__enc *e, const unsigned char *w, size_t n) {
    const struct lfm2__tokenizer *t = e->t;
    int32_t sym[LFM2__BPE_SMALL], k, cnt, prev_unk = 0;
    if (t->ignore_merges) { /* a pre-token that is itself a token is emitted whole */
        int32_t id = lfm2__vocab_find_mapped(t, w, n);
        if (id >= 0) { lfm2__emit(e, id); return; }
    }
    if (n > LFM2__BPE_SMALL) { lfm2__bpe_long(e, w, LFM2__CAST(int32_t, n)); return; }
    cnt = LFM2__CAST(int32_t, n);
    for (k = 0; k < cnt; k++) sym[k] = t->byte_id[w[k]];
    lfm2__bpe_small(t, sym, &cnt);
    for (k = 0; k < cnt; k++) lfm2__emit_sym(e, sym[k], &prev_unk);
}

/* Word character for single_word added tokens: letter, number or '_'. */
static int lfm2__is_word_at(const unsigned char *s, size_t i, size_t n) {
    int c;
    if (s[i] == '_') return 1;
    lfm2__cp_at(s, i, n, &c);
    return c == LFM2__CP_L || c == LFM2__CP_N;
}
/* Start of the code point that ends at s[i] (i > 0). */
static size_t lfm2__cp_before(const unsigned char *s, size_t i) {
    size_t k;
    for (k = 1; k <= 4 && k <= i; k++) {
        if ((s[i - k] & 0xC0) != 0x80) {
            int len = lfm2__utf8_seq(s + i - k, k);
            return LFM2__CAST(size_t, len) == k ? i - k : i - 1;
        }
    }
    return i - 1;
}

/* Finds the leftmost added token in s[from..n), longest first, of the kinds `mask` allows
   (1 special, 2 non-special). Returns its id and its span [*ms, *me) (lstrip/rstrip widen it over
   whitespace), or -1 with *ms = *me = n. */
static int32_t lfm2__added_next(const struct lfm2__tokenizer *t, const unsigned char *s, size_t from, size_t n, int mask, size_t *ms, size_t *me) {
    size_t i;
    *ms = *me = n;
    if (!mask) return -1;
    for (i = from; i < n; i++) {
        int32_t q;
        if (!(t->added_first[s[i]] & mask)) continue;
        for (q = 0; q < t->n_added_lens; q++) {
            size_t len = LFM2__CAST(size_t, t->added_lens[q]), a = i, b = i + len;
            int32_t k;
            const lfm2__added_tok *ad;
            int c;
            if (len > n - i) continue;
            k = lfm2__added_find(t, LFM2__CBYTES(s + i), len);
            if (k < 0) continue;
            ad = &t->added[k];
            if (!((ad->special ? 1 : 2) & mask)) continue;
            if (ad->single_word && ((a > 0 && lfm2__is_word_at(s, lfm2__cp_before(s, a), n)) || (b < n && lfm2__is_word_at(s, b, n)))) continue;
            if (ad->lstrip)
                while (a > from) {
                    size_t p = lfm2__cp_before(s, a);
                    lfm2__cp_at(s, p, n, &c);
                    if (c != LFM2__CP_S) break;
                    a = p;
                }
            if (ad->rstrip)
                while (b < n) {
                    size_t l = lfm2__cp_at(s, b, n, &c);
                    if (c != LFM2__CP_S) break;
                    b += l;
                }
            *ms = a;
            *me = b;
            return ad->id;
        }
    }
    return -1;
}

/* The internal encoder (no model needed). See lfm2_tokenize for the contract. */
static lfm2_result lfm2__tokenize_impl(const struct lfm2__tokenizer *t, const char *text, size_t len, int flags, lfm2_token *out,
                                       int32_t cap, int32_t *n_out) {
    const unsigned char *s = LFM2__UBYTES(text);
    int mask = 2 | ((flags & LFM2_TOKENIZE_PARSE_SPECIAL) ? 1 : 0);
    size_t pos = 0;
    int32_t k;
    lfm2__enc e;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (!t || (!text && len) || cap < 0 || (cap > 0 && !out) || len > LFM2__CAST(size_t, INT32_MAX - 2 * LFM2__MAX_AFFIX))
        return LFM2_ERR_INVALID_ARG;
    e.t = t;
    e.out = out;
    e.cap = cap;
    e.n = 0;
    if (flags & LFM2_TOKENIZE_ADD_BOS)
        for (k = 0; k < t->n_prefix; k++) lfm2__emit(&e, t->prefix[k]);
    while (pos < len) { /* past cap the ids are counted on: *n_out is then the size needed */
        size_t ms, me, i;
        int32_t id = lfm2__added_next(t, s, pos, len, mask, &ms, &me);
        for (i = pos; i < ms;) { /* pre-tokenize the text before the added token */
            size_t j = lfm2__split_next(s, i, ms);
            lfm2__bpe_word(&e, s + i, j - i);
            i = j;
        }
        if (id >= 0) lfm2__emit(&e, id);
        pos = me;
    }
    if (flags & LFM2_TOKENIZE_ADD_BOS)
        for (k = 0; k < t->n_suffix; k++) lfm2__emit(&e, t->suffix[k]);
    *n_out = e.n;
    if (e.n > cap && (out || cap > 0)) return LFM2_ERR_BUFFER_TOO_SMALL;
    return LFM2_OK; /* out NULL and cap 0: a size query */
}

/* ---- decoding ------------------------------------------------------------------------------- */

static lfm2_result lfm2__token_to_piece_impl(const struct lfm2__tokenizer *t, lfm2_token id, int flags, char *buf, size_t cap, size_t *n_out) {
    size_t n = 0;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (!t || (cap > 0 && !buf) || id < 0 || id >= t->n_ids) return LFM2_ERR_INVALID_ARG;
    if (id < t->n_tok && !((flags & LFM2_DETOKENIZE_SKIP_SPECIAL) && (t->attr[id] & LFM2__TA_SPECIAL))) n = t->doff[id + 1] - t->doff[id];
    *n_out = n;
    if (n > cap) return LFM2_ERR_BUFFER_TOO_SMALL;
    if (n && buf) memcpy(buf, t->dec + t->doff[id], n); /* buf is set when n <= cap and n > 0 (the test quiets gcc -O3 -Wnonnull) */
    return LFM2_OK;
}

static lfm2_result lfm2__detokenize_impl(const struct lfm2__tokenizer *t, const lfm2_token *ids, int32_t n, int flags, char *buf, size_t cap, size_t *n_out) {
    size_t total = 0, len;
    int32_t k;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (!t || n < 0 || (n > 0 && !ids) || (cap > 0 && !buf)) return LFM2_ERR_INVALID_ARG;
    for (k = 0; k < n; k++) {
        lfm2_result rc = lfm2__token_to_piece_impl(t, ids[k], flags, total < cap ? buf + total : NULL, total < cap ? cap - total : 0, &len);
        if (rc == LFM2_ERR_INVALID_ARG) return rc;
        total += len;
    }
    *n_out = total;
    return total > cap ? LFM2_ERR_BUFFER_TOO_SMALL : LFM2_OK;
}

/* Streaming: pending bytes + the token's bytes -> everything up to an unfinished UTF-8 start. */
static lfm2_result lfm2__detok_stream_impl(const struct lfm2__tokenizer *t, lfm2_detok_stream *st, lfm2_token id, int flags, char *buf, size_t cap, size_t *n_out) {
    const char *p;
    size_t plen = 0, total, i, emit, np;
    unsigned char tail[8];
    lfm2_result rc;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (!t || !st || (cap > 0 && !buf) || st->n_pending < 0 || st->n_pending > 3) return LFM2_ERR_INVALID_ARG;
    rc = lfm2__token_to_piece_impl(t, id, flags, NULL, 0, &plen);
    if (rc == LFM2_ERR_INVALID_ARG) return rc;
    p = t->dec + (id < t->n_tok ? t->doff[id] : 0);
    np = LFM2__CAST(size_t, st->n_pending);
    total = np + plen;
    /* scan the last (at most 3) bytes for the start of an unfinished character: everything
       before it is final */
    emit = total;
    for (i = total > 3 ? total - 3 : 0; i < total; i++) {
        size_t k, m = total - i;
        int r;
        for (k = 0; k < m; k++) tail[k] = i + k < np ? st->pending[i + k] : LFM2__CAST(unsigned char, p[i + k - np]);
        r = lfm2__utf8_seq(tail, m);
        if (r == 0) { emit = i; break; }
        if (r > 0) i += LFM2__CAST(size_t, r) - 1; /* skip the rest of a complete character */
    }
    *n_out = emit;
    if (emit > cap) return LFM2_ERR_BUFFER_TOO_SMALL;
    for (i = 0; i < emit; i++) buf[i] = i < np ? LFM2__CAST(char, st->pending[i]) : p[i - np];
    {
        unsigned char keep[4];
        size_t nk = total - emit;
        for (i = 0; i < nk; i++) keep[i] = emit + i < np ? st->pending[emit + i] : LFM2__CAST(unsigned char, p[emit + i - np]);
        memcpy(st->pending, keep, nk);
        st->n_pending = LFM2__CAST(int32_t, nk);
    }
    return LFM2_OK;
}

/* ---- chat template ---------------------------------------------------------------------------- */

typedef struct lfm2__sbuf { char *buf; size_t cap, n; int overflow; } lfm2__sbuf;

static void lfm2__sput(lfm2__sbuf *b, const char *p, size_t n) {
    if (!lfm2__add_ok(b->n, n, &b->n)) { b->overflow = 1; return; }
    if (n && b->n <= b->cap) memcpy(b->buf + b->n - n, p, n);
}
static void lfm2__sputs(lfm2__sbuf *b, const char *p) { lfm2__sput(b, p, p ? strlen(p) : 0); }

/* ---- public API ----------------------------------------------------------------------------- */

#define LFM2__GET_TOK(m, t) do { if (!(m)) return LFM2_ERR_INVALID_ARG; (t) = lfm2__model_tokenizer(m); if (!(t)) return LFM2_ERR_UNSUPPORTED; } while (0)

LFM2_API lfm2_result lfm2_tokenize(const lfm2_model *m, const char *text, size_t len, int flags, lfm2_token *out, int32_t cap, int32_t *n_out) {
    const struct lfm2__tokenizer *t;
    if (n_out) *n_out = 0;
    LFM2__GET_TOK(m, t);
    return lfm2__tokenize_impl(t, text, len, flags, out, cap, n_out);
}

LFM2_API int32_t lfm2_tokenize_bound(const lfm2_model *m, size_t len, int flags) {
    const struct lfm2__tokenizer *t = m ? lfm2__model_tokenizer(m) : NULL;
    if (!t || len > LFM2__CAST(size_t, INT32_MAX - 2 * LFM2__MAX_AFFIX)) return -1;
    return LFM2__CAST(int32_t, len) + ((flags & LFM2_TOKENIZE_ADD_BOS) ? t->n_prefix + t->n_suffix : 0);
}

/* The size-query convention (top of the file): buf NULL and cap 0 asks for the size only. */
#define LFM2__SIZE_QUERY(buf, cap, rc) (((buf) == NULL && (cap) == 0 && (rc) == LFM2_ERR_BUFFER_TOO_SMALL) ? LFM2_OK : (rc))

LFM2_API lfm2_result lfm2_token_to_piece(const lfm2_model *m, lfm2_token id, char *buf, size_t cap, size_t *n_out) {
    const struct lfm2__tokenizer *t;
    if (n_out) *n_out = 0;
    LFM2__GET_TOK(m, t);
    return LFM2__SIZE_QUERY(buf, cap, lfm2__token_to_piece_impl(t, id, 0, buf, cap, n_out));
}

LFM2_API lfm2_result lfm2_detokenize(const lfm2_model *m, const lfm2_token *ids, int32_t n, int flags, char *buf, size_t cap, size_t *n_out) {
    const struct lfm2__tokenizer *t;
    if (n_out) *n_out = 0;
    LFM2__GET_TOK(m, t);
    return LFM2__SIZE_QUERY(buf, cap, lfm2__detokenize_impl(t, ids, n, flags, buf, cap, n_out));
}

LFM2_API lfm2_result lfm2_detok_stream_push(const lfm2_model *m, lfm2_detok_stream *s, lfm2_token id, int flags, char *buf, size_t cap, size_t *n_out) {
    const struct lfm2__tokenizer *t;
    if (n_out) *n_out = 0;
    LFM2__GET_TOK(m, t);
    if (!buf && cap == 0 && s) { /* a size query leaves the stream as it is */
        lfm2_detok_stream q = *s;
        return LFM2__SIZE_QUERY(buf, cap, lfm2__detok_stream_impl(t, &q, id, flags, buf, cap, n_out));
    }
    return lfm2__detok_stream_impl(t, s, id, flags, buf, cap, n_out);
}

LFM2_API lfm2_result lfm2_detok_stream_flush(lfm2_detok_stream *s, char *buf, size_t cap, size_t *n_out) {
    size_t n;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (!s || s->n_pending < 0 || s->n_pending > 3 || (cap > 0 && !buf)) return LFM2_ERR_INVALID_ARG;
    n = LFM2__CAST(size_t, s->n_pending);
    *n_out = n;
    if (!buf && cap == 0) return LFM2_OK; /* size query: the stream is not reset */
    if (n > cap) return LFM2_ERR_BUFFER_TOO_SMALL;
    if (n) memcpy(buf, s->pending, n);
    s->n_pending = 0;
    return LFM2_OK;
}

LFM2_API int32_t lfm2_tokenizer_size(const lfm2_model *m) {
    const struct lfm2__tokenizer *t = m ? lfm2__model_tokenizer(m) : NULL;
    return t ? t->n_tok : 0;
}

LFM2_API lfm2_token lfm2_token_bos(const lfm2_model *m) {
    const struct lfm2__tokenizer *t;
    const lfm2_config *cfg;
    if (!m) return -1;
    t = lfm2__model_tokenizer(m);
    if (t && t->bos_id >= 0) return t->bos_id;
    cfg = lfm2__model_cfg(m);
    return (cfg && cfg->bos_token_id >= 0 && cfg->bos_token_id < cfg->vocab_size) ? cfg->bos_token_id : -1;
}

LFM2_API int lfm2_token_is_eog(const lfm2_model *m, lfm2_token id) {
    const struct lfm2__tokenizer *t;
    const lfm2_config *cfg;
    int32_t k;
    if (!m || id < 0) return 0;
    cfg = lfm2__model_cfg(m);
    if (cfg)
        for (k = 0; k < cfg->n_eos && k < LFM2_CONFIG_EOS; k++)
            if (cfg->eos_token_ids[k] == id) return 1;
    t = lfm2__model_tokenizer(m);
    return t && (id == t->eos_id || id == t->im_end_id || id == t->endoftext_id);
}

LFM2_API int lfm2_token_is_special(const lfm2_model *m, lfm2_token id) {
    const struct lfm2__tokenizer *t = m ? lfm2__model_tokenizer(m) : NULL;
    return t && id >= 0 && id < t->n_tok && (t->attr[id] & LFM2__TA_SPECIAL) != 0;
}

LFM2_API int32_t lfm2_token_lookup(const lfm2_model *m, const char *piece, size_t n) {
    const struct lfm2__tokenizer *t = m ? lfm2__model_tokenizer(m) : NULL;
    if (!t || (!piece && n)) return -1;
    return lfm2__tok_lookup(t, piece ? piece : "", n);
}

LFM2_API const char *lfm2_token_text(const lfm2_model *m, lfm2_token id, size_t *len) {
    const struct lfm2__tokenizer *t = m ? lfm2__model_tokenizer(m) : NULL;
    size_t dummy;
    const char *s;
    if (!len) len = &dummy;
    *len = 0;
    s = t ? lfm2__tok_str(t, id, len) : NULL;
    return s;
}

LFM2_API lfm2_result lfm2_chat_format(const lfm2_chat_message *msgs, int32_t n, const char *const *tools_json, int32_t n_tools,
                                      int add_generation_prompt, char *buf, size_t cap, size_t *n_out) {
    lfm2__sbuf b;
    int32_t k, first = 0;
    if (!n_out) return LFM2_ERR_INVALID_ARG;
    *n_out = 0;
    if (n < 0 || n_tools < 0 || (n > 0 && !msgs) || (n_tools > 0 && !tools_json) || (cap > 0 && !buf)) return LFM2_ERR_INVALID_ARG;
    for (k = 0; k < n; k++) if (!msgs[k].role) return LFM2_ERR_INVALID_ARG;
    for (k = 0; k < n_tools; k++) if (!tools_json[k]) return LFM2_ERR_INVALID_ARG;
    b.buf = buf;
    b.cap = cap;
    b.n = 0;
    b.overflow = 0;
    lfm2__sputs(&b, "<|startoftext|>");
    if (n_tools > 0) {
        /* tool-use template: the system prompt (a leading system message) gets the tool list */
        if (n > 0 && strcmp(msgs[0].role, "system") == 0) first = 1;
        lfm2__sputs(&b, "<|im_start|>system\n");
        if (first && msgs[0].content && msgs[0].content[0]) {
            lfm2__sputs(&b, msgs[0].content);
            lfm2__sputs(&b, "\n");
        }
        lfm2__sputs(&b, "List of tools: <|tool_list_start|>[");
        for (k = 0; k < n_tools; k++) {
            if (k) lfm2__sputs(&b, ", ");
            lfm2__sputs(&b, tools_json[k]);
        }
        lfm2__sputs(&b, "]<|tool_list_end|><|im_end|>\n");
    }
    for (k = first; k < n; k++) {
        int tool = n_tools > 0 && strcmp(msgs[k].role, "tool") == 0;
        lfm2__sputs(&b, "<|im_start|>");
        lfm2__sputs(&b, msgs[k].role);
        lfm2__sputs(&b, "\n");
        if (tool) lfm2__sputs(&b, "<|tool_response_start|>");
        lfm2__sputs(&b, msgs[k].content);
        if (tool) lfm2__sputs(&b, "<|tool_response_end|>");
        lfm2__sputs(&b, "<|im_end|>\n");
    }
    if (add_generation_prompt) lfm2__sputs(&b, "<|im_start|>assistant\n");
    if (b.overflow) return LFM2_ERR_INVALID_ARG;
    *n_out = b.n;
    return (b.n > cap && buf) ? LFM2_ERR_BUFFER_TOO_SMALL : LFM2_OK; /* buf NULL, cap 0: a size query */
}
/* >>chat ----------------------------------------------------------------------------------- */
/* The chat templates, rendered natively. One renderer per template walks the conversation the
   way the Jinja text does and writes through a sink (lfm2__cw) three kinds of pieces: markers
   (the text of one special token of the template: "<|im_start|>"), template literals ("\n",
   "system\n") and caller text (contents, roles, JSON, arguments). Rendering concatenates them;
   chat tokenization turns a marker into its special token and tokenizes everything between two
   markers as ordinary text, so caller text never becomes a control token. JSON values are
   re-printed by a bounded recursive-descent reader (no allocation) the way Python's json.dumps
   (tojson) and str() print them. */

enum { LFM2__CW_RENDER = 0, LFM2__CW_TOKENIZE = 1, LFM2__CW_ANALYZE = 2 };
#define LFM2__CHAT_MAX_DEPTH 64 /* nesting of JSON / Python values */

typedef struct lfm2__cw {
    int mode;
    char *buf; size_t cap;       /* RENDER: output (NULL while counting) */
    size_t n;                    /* bytes written (all modes: the position in the rendered text) */
    int overflow;
    lfm2_result rc;              /* first error */
    lfm2_error *err;
    /* window: only bytes of the virtual range [win_lo, win_hi) of a clipped stretch pass (the
       "</think>" split of LFM2.5 history), counted in vpos */
    int clip; size_t vpos, win_lo, win_hi;
    int trusted;                 /* caller text of a message marked trusted (kind 3) */
    /* TOKENIZE */
    const struct lfm2__tokenizer *t;
    const char *text;            /* the rendered text (pass 1) */
    lfm2_token *out; int32_t room; int32_t n_ids; int64_t need; size_t stretch; int short_buf;
    /* ANALYZE: the last "</think>" and the non-whitespace around it */
    int32_t am; size_t a_split, a_first, a_last; int a_found, a_first_set;
} lfm2__cw;

static void lfm2__cw_fail(lfm2__cw *w, lfm2_result code, const char *fmt, const char *a, size_t off) {
    if (w->rc != LFM2_OK) return;
    w->rc = code;
    if (w->err) {
        w->err->code = code;
        if (a) snprintf(w->err->message, sizeof w->err->message, fmt, a, (unsigned long long)off);
        else snprintf(w->err->message, sizeof w->err->message, fmt, (unsigned long long)off);
    }
}

/* Python's str.isspace (the whitespace of str.strip) for one code point. */
static int lfm2__py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}
/* Decodes one UTF-8 character at s[0..n) (n >= 1): its code point and length; invalid: -1. */
static int lfm2__utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    uint32_t c = s[0];
    int len, k;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; c &= 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; c &= 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; c &= 0x07; }
    else return -1;
    if (n < LFM2__CAST(size_t, len)) return -1;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return -1;
        c = (c << 6) | (s[k] & 0x3fu);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (len == 4 && (c < 0x10000 || c > 0x10ffff))) return -1;
    *cp = c;
    return len;
}

static void lfm2__cw_analyze(lfm2__cw *w, const char *p, size_t n) {
    static const char tag[] = "</think>";
    size_t i = 0;
    while (i < n) {
        uint32_t cp = LFM2__UBYTES(p)[i];
        int l = lfm2__utf8_next(LFM2__UBYTES(p) + i, n - i, &cp);
        size_t o = w->n + i;
        if (l < 1) { l = 1; cp = 0xfffd; } /* caller text is valid UTF-8 (checked); literals are ASCII */
        if (cp < 0x80) { /* "</think>": no proper prefix is also a suffix, so a miss restarts at 0 or 1 */
            if (LFM2__CAST(char, cp) == tag[w->am]) w->am++;
            else w->am = (cp == '<') ? 1 : 0;
        } else w->am = 0;
        if (w->am == 8) { w->am = 0; w->a_found = 1; w->a_split = o + 1; w->a_first_set = 0; w->a_last = o + 1; }
        else if (!lfm2__py_space(cp)) {
            if (w->a_found && o >= w->a_split && !w->a_first_set) { w->a_first_set = 1; w->a_first = o; }
            w->a_last = o + LFM2__CAST(size_t, l);
        }
        i += LFM2__CAST(size_t, l);
    }
}

/* Tokenizes the ordinary text rendered since the last marker. */
static void lfm2__cw_flush_stretch(lfm2__cw *w) {
    int32_t got = 0;
    size_t len = w->n - w->stretch;
    lfm2_result r;
    if (len == 0) return;
    if (!w->short_buf) {
        r = lfm2__tokenize_impl(w->t, w->text + w->stretch, len, 0, w->out + w->n_ids, w->room - w->n_ids, &got);
        if (r == LFM2_ERR_BUFFER_TOO_SMALL) w->short_buf = 1;
        else if (r != LFM2_OK) { lfm2__cw_fail(w, r, "chat tokenize: the tokenizer failed at byte %llu", NULL, w->stretch); return; }
        else { w->n_ids += got; w->need += got; }
    }
    if (w->short_buf) { /* count on */
        r = lfm2__tokenize_impl(w->t, w->text + w->stretch, len, 0, NULL, 0, &got);
        if (r != LFM2_OK) { lfm2__cw_fail(w, r, "chat tokenize: the tokenizer failed at byte %llu", NULL, w->stretch); return; }
        w->need += got;
    }
    w->stretch = w->n;
}

/* kind: 0 caller text, 1 template literal, 2 marker, 3 trusted text (the model's own output) */
static void lfm2__cw_put(lfm2__cw *w, int kind, const char *p, size_t n) {
    if (w->rc != LFM2_OK || n == 0) return;
    if (w->clip) { /* keep only [win_lo, win_hi) of this virtual stream */
        size_t lo = w->vpos, hi = w->vpos + n, a = lo > w->win_lo ? lo : w->win_lo, b = hi < w->win_hi ? hi : w->win_hi;
        w->vpos = hi;
        if (a >= b) return;
        p += a - lo;
        n = b - a;
    }
    if (w->mode == LFM2__CW_ANALYZE) { lfm2__cw_analyze(w, p, n); w->n += n; return; }
    if (w->mode == LFM2__CW_TOKENIZE) {
        if (kind == 3) { /* trusted text: its special-token text is special, as lfm2_tokenize(PARSE_SPECIAL) */
            size_t pos = w->n, end = w->n + n, ms, me;
            for (;;) {
                int32_t id = lfm2__added_next(w->t, LFM2__UBYTES(w->text), pos, end, 3, &ms, &me);
                if (id < 0) break;
                w->n = ms;
                lfm2__cw_flush_stretch(w);
                if (w->rc != LFM2_OK) return;
                if (!w->short_buf && w->n_ids < w->room) w->out[w->n_ids++] = id;
                else w->short_buf = 1;
                w->need++;
                w->n = w->stretch = pos = me;
            }
            w->n = end;
            return;
        }
        if (kind == 2) {
            int32_t id = lfm2__tok_lookup(w->t, p, n);
            if (id >= 0 && (w->t->attr[id] & LFM2__TA_ADDED)) {
                lfm2__cw_flush_stretch(w);
                if (w->rc != LFM2_OK) return;
                if (!w->short_buf && w->n_ids < w->room) w->out[w->n_ids++] = id;
                else w->short_buf = 1;
                w->need++;
                w->n += n;
                w->stretch = w->n;
                return;
            } /* a marker the vocabulary lacks is ordinary text */
        }
        w->n += n;
        return;
    }
    if (!lfm2__add_ok(w->n, n, &w->n)) { w->overflow = 1; lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the text is too long%s", "", 0); return; }
    if (w->buf && w->n <= w->cap) memcpy(w->buf + w->n - n, p, n);
}
static void lfm2__cw_text(lfm2__cw *w, const char *p, size_t n) { lfm2__cw_put(w, w->trusted ? 3 : 0, p, n); }
static void lfm2__cw_texts(lfm2__cw *w, const char *p) { lfm2__cw_put(w, w->trusted ? 3 : 0, p, strlen(p)); }
static void lfm2__cw_lit(lfm2__cw *w, const char *p) { lfm2__cw_put(w, 1, p, strlen(p)); }
static void lfm2__cw_mark(lfm2__cw *w, const char *p) { lfm2__cw_put(w, 2, p, strlen(p)); }

/* ---- JSON and Python values ------------------------------------------------------------------ */
/* A reader over src[0..len): values are re-printed in one of three styles as they are read. */
enum { LFM2__JV_SKIP = 0, LFM2__JV_DUMPS = 1, LFM2__JV_PYSTR = 2 };
typedef struct lfm2__jr {
    const char *s;
    size_t len, i;
    lfm2__cw *w;      /* output (NULL: read only) */
    const char *what; /* for messages: "tool 2", "tool call 1 arguments" */
    int bad;
} lfm2__jr;

static void lfm2__jr_fail(lfm2__jr *r, const char *why) {
    if (r->bad) return;
    r->bad = 1;
    if (r->w && r->w->rc == LFM2_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: malformed JSON (%s) at byte %%llu", r->what ? r->what : "JSON", why);
        lfm2__cw_fail(r->w, LFM2_ERR_INVALID_ARG, msg, NULL, r->i);
    }
}
static void lfm2__jr_ws(lfm2__jr *r) {
    while (r->i < r->len && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r')) r->i++;
}
static int lfm2__chat_hex4(const char *s, uint32_t *v) {
    int k;
    *v = 0;
    for (k = 0; k < 4; k++) {
        char c = s[k];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = (*v << 4) | LFM2__CAST(uint32_t, d);
    }
    return 1;
}
static size_t lfm2__chat_utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = LFM2__CAST(char, cp); return 1; }
    if (cp < 0x800) { o[0] = LFM2__CAST(char, 0xc0 | (cp >> 6)); o[1] = LFM2__CAST(char, 0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = LFM2__CAST(char, 0xe0 | (cp >> 12)); o[1] = LFM2__CAST(char, 0x80 | ((cp >> 6) & 0x3f));
        o[2] = LFM2__CAST(char, 0x80 | (cp & 0x3f)); return 3;
    }
    o[0] = LFM2__CAST(char, 0xf0 | (cp >> 18)); o[1] = LFM2__CAST(char, 0x80 | ((cp >> 12) & 0x3f));
    o[2] = LFM2__CAST(char, 0x80 | ((cp >> 6) & 0x3f)); o[3] = LFM2__CAST(char, 0x80 | (cp & 0x3f));
    return 4;
}
/* The next code point of the JSON string whose body starts at r->i (after the quote): 1 with
   *cp, 0 at the closing quote (consumed), -1 on an error. */
static int lfm2__jr_strchar(lfm2__jr *r, uint32_t *cp) {
    unsigned char c;
    if (r->i >= r->len) { lfm2__jr_fail(r, "unterminated string"); return -1; }
    c = LFM2__UBYTES(r->s)[r->i];
    if (c == '"') { r->i++; return 0; }
    if (c < 0x20) { lfm2__jr_fail(r, "control character in a string"); return -1; }
    if (c == '\\') {
        char e;
        if (r->i + 1 >= r->len) { lfm2__jr_fail(r, "unterminated string"); return -1; }
        e = r->s[r->i + 1];
        r->i += 2;
        switch (e) {
        case '"': *cp = '"'; return 1;
        case '\\': *cp = '\\'; return 1;
        case '/': *cp = '/'; return 1;
        case 'b': *cp = 8; return 1;
        case 'f': *cp = 12; return 1;
        case 'n': *cp = 10; return 1;
        case 'r': *cp = 13; return 1;
        case 't': *cp = 9; return 1;
        case 'u': {
            uint32_t v, lo;
            if (r->i + 4 > r->len || !lfm2__chat_hex4(r->s + r->i, &v)) { lfm2__jr_fail(r, "bad \\u escape"); return -1; }
            r->i += 4;
            if (v >= 0xd800 && v <= 0xdbff) {
                if (r->i + 6 > r->len || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u' || !lfm2__chat_hex4(r->s + r->i + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff) { lfm2__jr_fail(r, "lone surrogate"); return -1; }
                r->i += 6;
                v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            } else if (v >= 0xdc00 && v <= 0xdfff) { lfm2__jr_fail(r, "lone surrogate"); return -1; }
            *cp = v;
            return 1;
        }
        default: r->i -= 2; lfm2__jr_fail(r, "bad escape"); return -1;
        }
    }
    {
        int l = lfm2__utf8_next(LFM2__UBYTES(r->s) + r->i, r->len - r->i, cp);
        if (l < 1) { lfm2__jr_fail(r, "invalid UTF-8"); return -1; }
        r->i += LFM2__CAST(size_t, l);
        return 1;
    }
}

/* Python's str.isprintable for one code point, as far as the LFM2 texts need: the control,
   format, separator, surrogate and private-use ranges are not printable (unassigned code points
   are taken as printable: Python's answer depends on its Unicode version). */
static int lfm2__py_printable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) return 0;
    if (c < 0x600) return 1;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x890 || c == 0x891 || c == 0x8e2 ||
        c == 0x1680 || c == 0x180e || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
        (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000 || (c >= 0xd800 && c <= 0xf8ff) ||
        c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || c == 0x110bd || c == 0x110cd || (c >= 0x13430 && c <= 0x1343f) ||
        (c >= 0x1bca0 && c <= 0x1bca3) || (c >= 0x1d173 && c <= 0x1d17a) || c == 0xe0001 || (c >= 0xe0020 && c <= 0xe007f) ||
        c >= 0xf0000)
        return 0;
    return 1;
}

/* Writes a string value: DUMPS = json.dumps(ensure_ascii=False), PYSTR = Python's repr(str).
   Reads the JSON string at r->i (the opening quote). raw = 1: the decoded characters only. */
static void lfm2__jr_string(lfm2__jr *r, int style, int raw) {
    size_t start;
    int q = '\'', rc;
    uint32_t cp;
    char o[12];
    if (r->i >= r->len || r->s[r->i] != '"') { lfm2__jr_fail(r, "expected a string"); return; }
    r->i++;
    start = r->i;
    if (style == LFM2__JV_PYSTR && !raw) { /* repr's quote: ' unless the text has ' and no " */
        int sq = 0, dq = 0;
        while ((rc = lfm2__jr_strchar(r, &cp)) > 0) { if (cp == '\'') sq = 1; else if (cp == '"') dq = 1; }
        if (rc < 0) return;
        if (sq && !dq) q = '"';
        r->i = start;
    }
    if (r->w && !raw && style != LFM2__JV_SKIP) { o[0] = LFM2__CAST(char, style == LFM2__JV_DUMPS ? '"' : q); lfm2__cw_text(r->w, o, 1); }
    while ((rc = lfm2__jr_strchar(r, &cp)) > 0) {
        size_t n;
        if (!r->w || style == LFM2__JV_SKIP) continue;
        if (raw) n = lfm2__chat_utf8_put(cp, o);
        else if (style == LFM2__JV_DUMPS) {
            if (cp == '"' || cp == '\\') { o[0] = '\\'; o[1] = LFM2__CAST(char, cp); n = 2; }
            else if (cp == 10) { memcpy(o, "\\n", 2); n = 2; }
            else if (cp == 13) { memcpy(o, "\\r", 2); n = 2; }
            else if (cp == 9) { memcpy(o, "\\t", 2); n = 2; }
            else if (cp == 8) { memcpy(o, "\\b", 2); n = 2; }
            else if (cp == 12) { memcpy(o, "\\f", 2); n = 2; }
            else if (cp < 0x20) { snprintf(o, sizeof o, "\\u%04x", (unsigned)cp); n = 6; }
            else n = lfm2__chat_utf8_put(cp, o);
        } else {
            if (cp == LFM2__CAST(uint32_t, q) || cp == '\\') { o[0] = '\\'; o[1] = LFM2__CAST(char, cp); n = 2; }
            else if (cp == 10) { memcpy(o, "\\n", 2); n = 2; }
            else if (cp == 13) { memcpy(o, "\\r", 2); n = 2; }
            else if (cp == 9) { memcpy(o, "\\t", 2); n = 2; }
            else if (lfm2__py_printable(cp)) n = lfm2__chat_utf8_put(cp, o);
            else if (cp < 0x100) { snprintf(o, sizeof o, "\\x%02x", (unsigned)cp); n = 4; }
            else if (cp < 0x10000) { snprintf(o, sizeof o, "\\u%04x", (unsigned)cp); n = 6; }
            else { snprintf(o, sizeof o, "\\U%08x", (unsigned)cp); n = 10; }
        }
        lfm2__cw_text(r->w, o, n);
    }
    if (rc < 0) return;
    if (r->w && !raw && style != LFM2__JV_SKIP) { o[0] = LFM2__CAST(char, style == LFM2__JV_DUMPS ? '"' : q); lfm2__cw_text(r->w, o, 1); }
}

/* Python's repr(float) (the shortest text that reads back as x) into o; returns its length. */
static size_t lfm2__py_float(double x, char *o, size_t cap) {
    char d[40];
    int p, e, nd, k;
    size_t n = 0;
    if (x != x) { snprintf(o, cap, "nan"); return 3; }
    if (x > DBL_MAX || x < -DBL_MAX) return LFM2__CAST(size_t, snprintf(o, cap, x < 0 ? "-inf" : "inf"));
    for (p = 1; p <= 17; p++) {
        snprintf(d, sizeof d, "%.*e", p - 1, x);
        if (strtod(d, NULL) == x) break;
    }
    /* d = [-]D[.DDD]e[+-]XX: digits and exponent */
    {
        char dig[24];
        const char *s = d;
        int neg = 0;
        nd = 0;
        if (*s == '-') { neg = 1; s++; }
        while (*s && *s != 'e') { if (*s >= '0' && *s <= '9') dig[nd++] = *s; s++; }
        e = atoi(s + 1);
        while (nd > 1 && dig[nd - 1] == '0') nd--;
        if (neg) o[n++] = '-';
        if (e >= -4 && e < 16) {
            if (e < 0) {
                o[n++] = '0'; o[n++] = '.';
                for (k = 0; k < -e - 1; k++) o[n++] = '0';
                for (k = 0; k < nd; k++) o[n++] = dig[k];
            } else {
                for (k = 0; k <= e; k++) o[n++] = k < nd ? dig[k] : '0';
                o[n++] = '.';
                if (nd > e + 1) for (k = e + 1; k < nd; k++) o[n++] = dig[k];
                else o[n++] = '0';
            }
        } else {
            o[n++] = dig[0];
            if (nd > 1) { o[n++] = '.'; for (k = 1; k < nd; k++) o[n++] = dig[k]; }
            n += LFM2__CAST(size_t, snprintf(o + n, cap - n, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e));
        }
    }
    o[n] = 0;
    return n;
}

/* A JSON number at r->i: integers keep their digits (Python ints), others print as floats. */
static void lfm2__jr_number(lfm2__jr *r, int style) {
    size_t s0 = r->i, i = r->i, dstart;
    int is_float = 0, neg = 0;
    if (i < r->len && r->s[i] == '-') { neg = 1; i++; }
    dstart = i;
    if (i < r->len && r->s[i] == '0') i++;
    else if (i < r->len && r->s[i] >= '1' && r->s[i] <= '9') while (i < r->len && r->s[i] >= '0' && r->s[i] <= '9') i++;
    else { r->i = i; lfm2__jr_fail(r, "bad number"); return; }
    if (i < r->len && r->s[i] == '.') {
        is_float = 1; i++;
        if (i >= r->len || r->s[i] < '0' || r->s[i] > '9') { r->i = i; lfm2__jr_fail(r, "bad number"); return; }
        while (i < r->len && r->s[i] >= '0' && r->s[i] <= '9') i++;
    }
    if (i < r->len && (r->s[i] == 'e' || r->s[i] == 'E')) {
        is_float = 1; i++;
        if (i < r->len && (r->s[i] == '+' || r->s[i] == '-')) i++;
        if (i >= r->len || r->s[i] < '0' || r->s[i] > '9') { r->i = i; lfm2__jr_fail(r, "bad number"); return; }
        while (i < r->len && r->s[i] >= '0' && r->s[i] <= '9') i++;
    }
    r->i = i;
    if (!r->w || style == LFM2__JV_SKIP) return;
    if (!is_float) {
        if (i - dstart == 1 && r->s[dstart] == '0') lfm2__cw_text(r->w, "0", 1); /* -0 is 0 */
        else lfm2__cw_text(r->w, r->s + s0, i - s0);
    } else {
        char tmp[64], o[48];
        size_t n = i - s0;
        double x;
        if (n >= sizeof tmp) { /* long: strtod needs a NUL; the digits beyond 60 cannot change a double much, but be exact: refuse */
            r->i = s0; lfm2__jr_fail(r, "number too long"); return;
        }
        memcpy(tmp, r->s + s0, n);
        tmp[n] = 0;
        x = strtod(tmp, NULL);
        (void)neg;
        if (style == LFM2__JV_DUMPS && (x > DBL_MAX || x < -DBL_MAX)) lfm2__cw_texts(r->w, x < 0 ? "-Infinity" : "Infinity");
        else { n = lfm2__py_float(x, o, sizeof o); lfm2__cw_text(r->w, o, n); }
    }
}

static void lfm2__jr_value(lfm2__jr *r, int style, int depth);

/* 1 if the JSON strings at a and b (opening quotes) hold the same text. */
static int lfm2__jr_str_eq(const lfm2__jr *r, size_t a, size_t b) {
    lfm2__jr x = *r, y = *r;
    x.w = y.w = NULL; x.i = a + 1; y.i = b + 1; x.bad = y.bad = 0;
    for (;;) {
        uint32_t c1 = 0, c2 = 0;
        int r1 = lfm2__jr_strchar(&x, &c1), r2 = lfm2__jr_strchar(&y, &c2);
        if (r1 < 0 || r2 < 0) return 0;
        if (r1 != r2 || (r1 && c1 != c2)) return 0;
        if (!r1) return 1;
    }
}

/* An object at r->i ('{'). Keys given twice keep the first one's place and the last one's value
   (Python's dict). */
static void lfm2__jr_object(lfm2__jr *r, int style, int depth) {
    size_t open = r->i, end;
    int first = 1;
    lfm2__cw *w = r->w;
    lfm2__jr q;
    /* pass 1: validate and find the end */
    q = *r;
    q.w = NULL;
    q.i++;
    lfm2__jr_ws(&q);
    if (q.i < q.len && q.s[q.i] == '}') q.i++;
    else for (;;) {
        lfm2__jr_ws(&q);
        lfm2__jr_string(&q, LFM2__JV_SKIP, 0);
        if (q.bad) break;
        lfm2__jr_ws(&q);
        if (q.i >= q.len || q.s[q.i] != ':') { lfm2__jr_fail(&q, "expected ':'"); break; }
        q.i++;
        lfm2__jr_value(&q, LFM2__JV_SKIP, depth + 1);
        if (q.bad) break;
        lfm2__jr_ws(&q);
        if (q.i < q.len && q.s[q.i] == ',') { q.i++; continue; }
        if (q.i < q.len && q.s[q.i] == '}') { q.i++; break; }
        lfm2__jr_fail(&q, "expected ',' or '}'");
        break;
    }
    if (q.bad) { r->i = q.i; lfm2__jr_fail(r, "in an object"); return; }
    end = q.i;
    if (!w || style == LFM2__JV_SKIP) { r->i = end; return; }
    lfm2__cw_text(w, "{", 1);
    /* pass 2: each key at its first place with its last value */
    r->i = open + 1;
    lfm2__jr_ws(r);
    while (r->i < end - 1 && r->s[r->i] == '"') {
        size_t key = r->i, k2, vpos, best;
        int dup = 0;
        lfm2__jr t = *r;
        t.w = NULL;
        /* an earlier member with this key? */
        t.i = open + 1;
        for (;;) {
            lfm2__jr_ws(&t);
            if (t.i >= key) break;
            k2 = t.i;
            lfm2__jr_string(&t, LFM2__JV_SKIP, 0);
            lfm2__jr_ws(&t); t.i++;
            lfm2__jr_value(&t, LFM2__JV_SKIP, depth + 1);
            lfm2__jr_ws(&t); t.i++;
            if (lfm2__jr_str_eq(r, k2, key)) { dup = 1; break; }
        }
        /* this member's value position, and the last value of the key */
        t.i = key;
        lfm2__jr_string(&t, LFM2__JV_SKIP, 0);
        lfm2__jr_ws(&t); t.i++; lfm2__jr_ws(&t);
        vpos = best = t.i;
        lfm2__jr_value(&t, LFM2__JV_SKIP, depth + 1);
        lfm2__jr_ws(&t);
        if (t.i < end - 1) t.i++; /* ',' */
        {
            lfm2__jr u = t;
            for (;;) {
                lfm2__jr_ws(&u);
                if (u.i >= end - 1) break;
                k2 = u.i;
                lfm2__jr_string(&u, LFM2__JV_SKIP, 0);
                lfm2__jr_ws(&u); u.i++; lfm2__jr_ws(&u);
                if (lfm2__jr_str_eq(r, k2, key)) best = u.i;
                lfm2__jr_value(&u, LFM2__JV_SKIP, depth + 1);
                lfm2__jr_ws(&u); u.i++;
            }
        }
        if (!dup) {
            if (!first) lfm2__cw_text(w, ", ", 2);
            first = 0;
            r->i = key;
            lfm2__jr_string(r, style, 0);
            lfm2__cw_text(w, ": ", 2);
            r->i = best;
            lfm2__jr_value(r, style, depth + 1);
        }
        r->i = vpos;
        lfm2__jr_value(r, LFM2__JV_SKIP, depth + 1);
        lfm2__jr_ws(r);
        if (r->i < end - 1 && r->s[r->i] == ',') r->i++;
        lfm2__jr_ws(r);
    }
    r->i = end;
    lfm2__cw_text(w, "}", 1);
}

static void lfm2__jr_array(lfm2__jr *r, int style, int depth) {
    int first = 1;
    int out = r->w && style != LFM2__JV_SKIP;
    r->i++;
    if (out) lfm2__cw_text(r->w, "[", 1);
    lfm2__jr_ws(r);
    if (r->i < r->len && r->s[r->i] == ']') { r->i++; if (out) lfm2__cw_text(r->w, "]", 1); return; }
    for (;;) {
        if (!first && out) lfm2__cw_text(r->w, ", ", 2);
        first = 0;
        lfm2__jr_value(r, style, depth + 1);
        if (r->bad) return;
        lfm2__jr_ws(r);
        if (r->i < r->len && r->s[r->i] == ',') { r->i++; continue; }
        if (r->i < r->len && r->s[r->i] == ']') { r->i++; break; }
        lfm2__jr_fail(r, "expected ',' or ']'");
        return;
    }
    if (out) lfm2__cw_text(r->w, "]", 1);
}

/* One value at r->i (leading whitespace skipped), printed in style. */
static void lfm2__jr_value(lfm2__jr *r, int style, int depth) {
    char c;
    int out = r->w && style != LFM2__JV_SKIP;
    if (r->bad) return;
    lfm2__jr_ws(r);
    if (depth > LFM2__CHAT_MAX_DEPTH) { lfm2__jr_fail(r, "nested too deeply"); return; }
    if (r->i >= r->len) { lfm2__jr_fail(r, "expected a value"); return; }
    c = r->s[r->i];
    if (c == '{') lfm2__jr_object(r, style, depth);
    else if (c == '[') lfm2__jr_array(r, style, depth);
    else if (c == '"') lfm2__jr_string(r, style, 0);
    else if (c == '-' || (c >= '0' && c <= '9')) lfm2__jr_number(r, style);
    else if (r->len - r->i >= 4 && memcmp(r->s + r->i, "true", 4) == 0) { r->i += 4; if (out) lfm2__cw_texts(r->w, style == LFM2__JV_DUMPS ? "true" : "True"); }
    else if (r->len - r->i >= 5 && memcmp(r->s + r->i, "false", 5) == 0) { r->i += 5; if (out) lfm2__cw_texts(r->w, style == LFM2__JV_DUMPS ? "false" : "False"); }
    else if (r->len - r->i >= 4 && memcmp(r->s + r->i, "null", 4) == 0) { r->i += 4; if (out) lfm2__cw_texts(r->w, style == LFM2__JV_DUMPS ? "null" : "None"); }
    else lfm2__jr_fail(r, "unexpected character");
}

static void lfm2__jr_init(lfm2__jr *r, const char *s, lfm2__cw *w, const char *what) {
    r->s = s ? s : "";
    r->len = strlen(r->s);
    r->i = 0;
    r->w = w;
    r->what = what;
    r->bad = 0;
}
/* The whole text must be one value (trailing whitespace allowed). */
static int lfm2__jr_end(lfm2__jr *r) {
    lfm2__jr_ws(r);
    if (!r->bad && r->i != r->len) lfm2__jr_fail(r, "trailing characters");
    return !r->bad;
}
/* Prints the JSON text s as Python's json.dumps(json.loads(s)) prints it. */
static void lfm2__cw_tojson(lfm2__cw *w, const char *s, const char *what) {
    lfm2__jr r;
    lfm2__jr_init(&r, s, w, what);
    lfm2__jr_value(&r, LFM2__JV_DUMPS, 0);
    lfm2__jr_end(&r);
}
/* The first non-space character of a JSON text ('{', '"', ...), or 0. */
static char lfm2__json_kind(const char *s) {
    if (!s) return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s;
}

/* Python/JSON-escaped string of caller text (json.dumps of a str). */
static void lfm2__cw_jstring(lfm2__cw *w, const char *s) {
    const unsigned char *p = LFM2__UBYTES(s);
    size_t i = 0, n = strlen(s), run = 0;
    lfm2__cw_text(w, "\"", 1);
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char o[8];
        if (c == '"') esc = "\\\""; else if (c == '\\') esc = "\\\\"; else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r"; else if (c == '\t') esc = "\\t"; else if (c == 8) esc = "\\b"; else if (c == 12) esc = "\\f";
        else if (c < 0x20) { snprintf(o, sizeof o, "\\u%04x", (unsigned)c); esc = o; }
        if (esc) {
            if (i > run) lfm2__cw_text(w, s + run, i - run);
            lfm2__cw_texts(w, esc);
            run = i + 1;
        }
        i++;
    }
    if (n > run) lfm2__cw_text(w, s + run, n - run);
    lfm2__cw_text(w, "\"", 1);
}

/* ---- the templates ----------------------------------------------------------------------------- */

static int lfm2__chat_valid_utf8(const char *s) {
    const unsigned char *p = LFM2__UBYTES(s);
    size_t n = strlen(s), i = 0;
    while (i < n) {
        uint32_t cp;
        int l = lfm2__utf8_next(p + i, n - i, &cp);
        if (l < 1) return 0;
        i += LFM2__CAST(size_t, l);
    }
    return 1;
}
static int lfm2__msg_has_content(const lfm2_chat_message *m) { return m->content != NULL || m->parts != NULL; }
static int lfm2__is_role(const lfm2_chat_message *m, const char *r) { return strcmp(m->role, r) == 0; }

/* A part's JSON (tojson of the item). */
static void lfm2__chat_part_json(lfm2__cw *w, const lfm2_chat_part *p) {
    if (p->json) { lfm2__cw_tojson(w, p->json, "a content part"); return; }
    if (p->type == LFM2_CHAT_PART_IMAGE) lfm2__cw_text(w, "{\"type\": \"image\"}", 17);
    else if (p->type == LFM2_CHAT_PART_TEXT && p->text) {
        lfm2__cw_text(w, "{\"type\": \"text\", \"text\": ", 25);
        lfm2__cw_jstring(w, p->text);
        lfm2__cw_text(w, "}", 1);
    } else lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: a content part of type %s%llu needs its json", "", LFM2__CAST(size_t, p->type));
}
/* tojson of a list content. */
static void lfm2__chat_parts_json(lfm2__cw *w, const lfm2_chat_message *m) {
    int32_t k;
    lfm2__cw_text(w, "[", 1);
    for (k = 0; k < m->n_parts; k++) {
        if (k) lfm2__cw_text(w, ", ", 2);
        lfm2__chat_part_json(w, &m->parts[k]);
    }
    lfm2__cw_text(w, "]", 1);
}
/* LFM2.5's parse_content: text as it is; parts: "<image>", their text, or their JSON. */
static void lfm2__chat25_content(lfm2__cw *w, const lfm2_chat_message *m) {
    int32_t k;
    if (m->content) { lfm2__cw_texts(w, m->content); return; }
    for (k = 0; k < m->n_parts; k++) {
        const lfm2_chat_part *p = &m->parts[k];
        if (p->type == LFM2_CHAT_PART_IMAGE) lfm2__cw_mark(w, "<image>");
        else if (p->type == LFM2_CHAT_PART_TEXT) {
            if (!p->text) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: a text part without text (the template fails: undefined item.text)%s", "", 0); return; }
            lfm2__cw_texts(w, p->text);
        } else lfm2__chat_part_json(w, p);
    }
}

/* format_arg_value of the LFM2.5 template: "string" (no escaping), dicts as tojson, anything
   else as Python's str(). */
static void lfm2__chat25_args(lfm2__cw *w, const char *args, int32_t call) {
    lfm2__jr r;
    char what[48];
    int first = 1;
    snprintf(what, sizeof what, "tool call %d arguments", (int)call);
    lfm2__jr_init(&r, args, w, what);
    lfm2__jr_ws(&r);
    if (r.i >= r.len || r.s[r.i] != '{') {
        lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: %s: not a JSON object (the template calls arguments.items())", what, 0);
        return;
    }
    { /* validate first (a duplicate key keeps its first place and its last value, as dict does) */
        lfm2__jr v = r;
        v.w = NULL;
        lfm2__jr_value(&v, LFM2__JV_SKIP, 0);
        lfm2__jr_ws(&v);
        if (v.bad || v.i != v.len) { r.i = v.i; lfm2__jr_fail(&r, v.bad ? "in an object" : "trailing characters"); return; }
    }
    {
        size_t open = r.i, end = r.len;
        while (end > open && (r.s[end - 1] == ' ' || r.s[end - 1] == '\t' || r.s[end - 1] == '\n' || r.s[end - 1] == '\r')) end--;
        r.i = open + 1;
        lfm2__jr_ws(&r);
        while (r.i < end - 1 && r.s[r.i] == '"') {
            size_t key = r.i, k2, vpos, best;
            int dup = 0;
            lfm2__jr t = r;
            t.w = NULL;
            t.i = open + 1;
            for (;;) {
                lfm2__jr_ws(&t);
                if (t.i >= key) break;
                k2 = t.i;
                lfm2__jr_string(&t, LFM2__JV_SKIP, 0);
                lfm2__jr_ws(&t); t.i++;
                lfm2__jr_value(&t, LFM2__JV_SKIP, 1);
                lfm2__jr_ws(&t); t.i++;
                if (lfm2__jr_str_eq(&r, k2, key)) { dup = 1; break; }
            }
            t.i = key;
            lfm2__jr_string(&t, LFM2__JV_SKIP, 0);
            lfm2__jr_ws(&t); t.i++; lfm2__jr_ws(&t);
            vpos = best = t.i;
            lfm2__jr_value(&t, LFM2__JV_SKIP, 1);
            lfm2__jr_ws(&t);
            if (t.i < end - 1) t.i++;
            for (;;) {
                lfm2__jr_ws(&t);
                if (t.i >= end - 1) break;
                k2 = t.i;
                lfm2__jr_string(&t, LFM2__JV_SKIP, 0);
                lfm2__jr_ws(&t); t.i++; lfm2__jr_ws(&t);
                if (lfm2__jr_str_eq(&r, k2, key)) best = t.i;
                lfm2__jr_value(&t, LFM2__JV_SKIP, 1);
                lfm2__jr_ws(&t); t.i++;
            }
            if (!dup) {
                char c;
                if (!first) lfm2__cw_lit(w, ", ");
                first = 0;
                r.i = key;
                lfm2__jr_string(&r, LFM2__JV_DUMPS, 1); /* arg_name + "=" */
                lfm2__cw_lit(w, "=");
                r.i = best;
                c = r.s[r.i];
                if (c == '"') { lfm2__cw_lit(w, "\""); lfm2__jr_string(&r, LFM2__JV_DUMPS, 1); lfm2__cw_lit(w, "\""); }
                else if (c == '{') lfm2__jr_value(&r, LFM2__JV_DUMPS, 1);
                else lfm2__jr_value(&r, LFM2__JV_PYSTR, 1);
            }
            r.i = vpos;
            lfm2__jr_value(&r, LFM2__JV_SKIP, 1);
            lfm2__jr_ws(&r);
            if (r.i < end - 1 && r.s[r.i] == ',') r.i++;
            lfm2__jr_ws(&r);
        }
    }
}

static void lfm2__chat_need_str(lfm2__cw *w, const char *s, const char *what, int32_t idx) {
    if (w->rc != LFM2_OK) return;
    if (!lfm2__chat_valid_utf8(s)) lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: %s %llu is not valid UTF-8", what, LFM2__CAST(size_t, idx));
}

/* Checks what every template needs: roles, valid UTF-8 text, parts and calls that make sense. */
static void lfm2__chat_check(lfm2__cw *w, const lfm2_chat *c) {
    int32_t i, k;
    if (c->n_messages < 0 || (c->n_messages > 0 && !c->messages) || c->n_tools < 0 || (c->n_tools > 0 && !c->tools)) {
        lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: bad message or tool count%s", "", 0);
        return;
    }
    for (i = 0; i < c->n_messages && w->rc == LFM2_OK; i++) {
        const lfm2_chat_message *m = &c->messages[i];
        if (!m->role) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: message %s%llu has no role", "", LFM2__CAST(size_t, i)); return; }
        if (m->n_parts < 0 || (m->n_parts > 0 && !m->parts) || m->n_tool_calls < 0 || (m->n_tool_calls > 0 && !m->tool_calls) ||
            (m->content && m->parts)) {
            lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: message %s%llu: bad parts or tool calls (content and parts are exclusive)", "", LFM2__CAST(size_t, i));
            return;
        }
        lfm2__chat_need_str(w, m->role, "the role of message", i);
        if (m->content) lfm2__chat_need_str(w, m->content, "the content of message", i);
        if (m->thinking) lfm2__chat_need_str(w, m->thinking, "the thinking of message", i);
        for (k = 0; k < m->n_parts; k++) {
            const lfm2_chat_part *p = &m->parts[k];
            if (p->type < LFM2_CHAT_PART_TEXT || p->type > LFM2_CHAT_PART_OTHER || (p->type == LFM2_CHAT_PART_OTHER && !p->json)) {
                lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: message %s%llu: a part of unknown type or without json", "", LFM2__CAST(size_t, i));
                return;
            }
            if (p->text) lfm2__chat_need_str(w, p->text, "a part's text in message", i);
        }
        for (k = 0; k < m->n_tool_calls; k++) {
            const lfm2_chat_tool_call *tc = &m->tool_calls[k];
            if (!tc->name || !tc->arguments) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: message %s%llu: a tool call without name or arguments", "", LFM2__CAST(size_t, i)); return; }
            lfm2__chat_need_str(w, tc->name, "a tool call's name in message", i);
        }
    }
    for (k = 0; k < c->n_tools && w->rc == LFM2_OK; k++)
        if (!c->tools[k]) lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: tool %s%llu is NULL", "", LFM2__CAST(size_t, k));
    if (c->date && w->rc == LFM2_OK) lfm2__chat_need_str(w, c->date, "the date", 0);
}

static void lfm2__chat_render_lfm2(lfm2__cw *w, const lfm2_chat *c) {
    int32_t i;
    lfm2__cw_mark(w, "<|startoftext|>");
    for (i = 0; i < c->n_messages && w->rc == LFM2_OK; i++) {
        const lfm2_chat_message *m = &c->messages[i];
        if (!m->content) {
            lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, m->parts ? "chat: the lfm2 template cannot render list content (message %s%llu: "
                          "'can only concatenate str (not \"list\") to str')" : "chat: the lfm2 template needs content in message %s%llu "
                          "('dict object' has no attribute 'content')", "", LFM2__CAST(size_t, i));
            return;
        }
        lfm2__cw_mark(w, "<|im_start|>");
        lfm2__cw_texts(w, m->role);
        lfm2__cw_lit(w, "\n");
        w->trusted = m->trusted != 0;
        lfm2__cw_texts(w, m->content);
        w->trusted = 0;
        lfm2__cw_mark(w, "<|im_end|>");
        lfm2__cw_lit(w, "\n");
    }
    if (c->add_generation_prompt) { lfm2__cw_mark(w, "<|im_start|>"); lfm2__cw_lit(w, "assistant\n"); }
}

static void lfm2__chat_render_tools(lfm2__cw *w, const lfm2_chat *c) {
    int32_t i, k, i0 = 0;
    const lfm2_chat_message *sys = NULL;
    lfm2__cw_mark(w, "<|startoftext|>");
    if (c->n_messages == 0) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2-tools template needs a message (messages[0] is undefined)%s", "", 0); return; }
    if (lfm2__is_role(&c->messages[0], "system")) { sys = &c->messages[0]; i0 = 1; }
    if (sys && sys->parts && (sys->n_parts > 0 || c->n_tools > 0)) {
        lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2-tools template cannot render a system message with list content%s", "", 0);
        return;
    }
    if (c->n_tools > 0 && sys && !sys->content) {
        lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2-tools template with tools needs the system message's content%s", "", 0);
        return;
    }
    if (c->n_tools > 0 || (sys && sys->content && sys->content[0])) {
        lfm2__cw_mark(w, "<|im_start|>");
        lfm2__cw_lit(w, "system\n");
        if (sys && sys->content) lfm2__cw_texts(w, sys->content);
        if (c->n_tools > 0) {
            char what[32];
            if (sys && sys->content && sys->content[0]) lfm2__cw_lit(w, "\n");
            lfm2__cw_lit(w, "List of tools: ");
            lfm2__cw_mark(w, "<|tool_list_start|>");
            lfm2__cw_lit(w, "[");
            for (k = 0; k < c->n_tools && w->rc == LFM2_OK; k++) {
                if (k) lfm2__cw_lit(w, ", ");
                snprintf(what, sizeof what, "tool %d", (int)k);
                if (lfm2__json_kind(c->tools[k]) == '"') { /* a string tool goes in as it is */
                    lfm2__jr r;
                    lfm2__jr_init(&r, c->tools[k], w, what);
                    lfm2__jr_ws(&r);
                    lfm2__jr_string(&r, LFM2__JV_DUMPS, 1);
                    lfm2__jr_end(&r);
                } else lfm2__cw_tojson(w, c->tools[k], what);
            }
            lfm2__cw_lit(w, "]");
            lfm2__cw_mark(w, "<|tool_list_end|>");
        }
        lfm2__cw_mark(w, "<|im_end|>");
        lfm2__cw_lit(w, "\n");
    }
    for (i = i0; i < c->n_messages && w->rc == LFM2_OK; i++) {
        const lfm2_chat_message *m = &c->messages[i];
        int tool = lfm2__is_role(m, "tool");
        lfm2__cw_mark(w, "<|im_start|>");
        lfm2__cw_texts(w, m->role);
        lfm2__cw_lit(w, "\n");
        if (!lfm2__msg_has_content(m)) {
            lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2-tools template needs content in message %s%llu "
                          "('Object of type Undefined is not JSON serializable')", "", LFM2__CAST(size_t, i));
            return;
        }
        if (tool) lfm2__cw_mark(w, "<|tool_response_start|>");
        w->trusted = m->trusted != 0;
        if (m->content) lfm2__cw_texts(w, m->content);
        else lfm2__chat_parts_json(w, m);
        w->trusted = 0;
        if (tool) lfm2__cw_mark(w, "<|tool_response_end|>");
        lfm2__cw_mark(w, "<|im_end|>");
        lfm2__cw_lit(w, "\n");
    }
    if (c->add_generation_prompt) { lfm2__cw_mark(w, "<|im_start|>"); lfm2__cw_lit(w, "assistant\n"); }
}

/* The content of an earlier assistant turn of LFM2.5: what follows its last "</think>",
   stripped (Python's str.strip), or all of it when it has none. */
static void lfm2__chat25_history(lfm2__cw *w, const lfm2_chat_message *m) {
    lfm2__cw a;
    memset(&a, 0, sizeof a);
    a.mode = LFM2__CW_ANALYZE;
    lfm2__chat25_content(&a, m);
    if (a.rc != LFM2_OK || !a.a_found) { lfm2__chat25_content(w, m); return; } /* (an error repeats in w) */
    w->clip = 1;
    w->vpos = 0;
    w->win_lo = a.a_first_set ? a.a_first : a.n;
    w->win_hi = a.a_first_set ? a.a_last : a.n;
    lfm2__chat25_content(w, m);
    w->clip = 0;
}

static void lfm2__chat_render_lfm25(lfm2__cw *w, const lfm2_chat *c) {
    int32_t i, k, i0 = 0, last = -1;
    int sys_text = 0;
    const lfm2_chat_message *sys = NULL;
    lfm2__cw_mark(w, "<|startoftext|>");
    if (c->n_messages == 0) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2.5 template needs a message (messages[0] is undefined)%s", "", 0); return; }
    if (lfm2__is_role(&c->messages[0], "system")) { sys = &c->messages[0]; i0 = 1; }
    if (sys && lfm2__msg_has_content(sys)) { /* is parse_content(system) non-empty? */
        lfm2__cw a;
        memset(&a, 0, sizeof a);
        lfm2__chat25_content(&a, sys);
        sys_text = a.n > 0;
    }
    if (c->n_tools > 0 && !c->date) { lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: the lfm2.5 template with tools needs the date (lfm2_chat.date)%s", "", 0); return; }
    if (sys_text || c->n_tools > 0) {
        lfm2__cw_mark(w, "<|im_start|>");
        lfm2__cw_lit(w, "system\n");
        if (sys_text) lfm2__chat25_content(w, sys);
        if (c->n_tools > 0) {
            char what[32];
            if (sys_text) lfm2__cw_lit(w, "\n\n");
            lfm2__cw_lit(w, "Today's date: ");
            lfm2__cw_texts(w, c->date);
            lfm2__cw_lit(w, "\n\nList of tools: ");
            lfm2__cw_text(w, "[", 1);
            for (k = 0; k < c->n_tools && w->rc == LFM2_OK; k++) {
                if (k) lfm2__cw_text(w, ", ", 2);
                snprintf(what, sizeof what, "tool %d", (int)k);
                lfm2__cw_tojson(w, c->tools[k], what);
            }
            lfm2__cw_text(w, "]", 1);
        }
        lfm2__cw_mark(w, "<|im_end|>");
        lfm2__cw_lit(w, "\n");
    }
    for (i = i0; i < c->n_messages; i++) if (lfm2__is_role(&c->messages[i], "assistant")) last = i;
    for (i = i0; i < c->n_messages && w->rc == LFM2_OK; i++) {
        const lfm2_chat_message *m = &c->messages[i];
        lfm2__cw_mark(w, "<|im_start|>");
        lfm2__cw_texts(w, m->role);
        lfm2__cw_lit(w, "\n");
        w->trusted = m->trusted != 0;
        if (lfm2__is_role(m, "assistant")) {
            if (m->thinking && (c->keep_past_thinking || i == last)) {
                lfm2__cw_mark(w, "<think>");
                lfm2__cw_texts(w, m->thinking);
                lfm2__cw_mark(w, "</think>");
            }
            if (m->tool_calls) {
                lfm2__cw_mark(w, "<|tool_call_start|>");
                lfm2__cw_lit(w, "[");
                for (k = 0; k < m->n_tool_calls && w->rc == LFM2_OK; k++) {
                    if (k) lfm2__cw_lit(w, ", ");
                    lfm2__cw_texts(w, m->tool_calls[k].name);
                    lfm2__cw_lit(w, "(");
                    lfm2__chat25_args(w, m->tool_calls[k].arguments, k);
                    lfm2__cw_lit(w, ")");
                }
                lfm2__cw_lit(w, "]");
                lfm2__cw_mark(w, "<|tool_call_end|>");
            }
            if (lfm2__msg_has_content(m)) {
                if (!c->keep_past_thinking && i != last) lfm2__chat25_history(w, m);
                else lfm2__chat25_content(w, m);
                lfm2__cw_mark(w, "<|im_end|>");
                lfm2__cw_lit(w, "\n");
            }
        } else if (lfm2__msg_has_content(m)) {
            lfm2__chat25_content(w, m);
            lfm2__cw_mark(w, "<|im_end|>");
            lfm2__cw_lit(w, "\n");
        }
        w->trusted = 0;
    }
    if (c->add_generation_prompt) { lfm2__cw_mark(w, "<|im_start|>"); lfm2__cw_lit(w, "assistant\n"); }
}

static void lfm2__chat_run(lfm2__cw *w, const lfm2_chat *c) {
    lfm2__chat_check(w, c);
    if (w->rc != LFM2_OK) return;
    switch (c->template_kind) {
    case LFM2_CHAT_TEMPLATE_LFM2: lfm2__chat_render_lfm2(w, c); break;
    case LFM2_CHAT_TEMPLATE_LFM2_TOOLS: lfm2__chat_render_tools(w, c); break;
    case LFM2_CHAT_TEMPLATE_LFM25: lfm2__chat_render_lfm25(w, c); break;
    default: lfm2__cw_fail(w, LFM2_ERR_INVALID_ARG, "chat: unknown template kind %s%llu (use LFM2_CHAT_TEMPLATE_*)", "", LFM2__CAST(size_t, c->template_kind));
    }
}

/* ---- tool calls: Python literals -> JSON --------------------------------------------------------- */
typedef struct lfm2__pp {
    const char *s;
    size_t len, i;
    lfm2__cw *w;       /* output: the JSON */
    int bad;
    size_t err_at;
    const char *why;
} lfm2__pp;

static void lfm2__pp_fail(lfm2__pp *p, size_t at, const char *why) {
    if (p->bad) return;
    p->bad = 1;
    p->err_at = at;
    p->why = why;
}
static void lfm2__pp_ws(lfm2__pp *p) {
    for (;;) {
        while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r' || p->s[p->i] == '\f')) p->i++;
        if (p->i + 1 < p->len && p->s[p->i] == '\\' && p->s[p->i + 1] == '\n') { p->i += 2; continue; } /* line continuation */
        if (p->i < p->len && p->s[p->i] == '#') { lfm2__pp_fail(p, p->i, "a comment"); return; }
        return;
    }
}
static int lfm2__pp_idstart(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
static int lfm2__pp_idchar(unsigned char c) { return lfm2__pp_idstart(c) || (c >= '0' && c <= '9'); }
/* >>ident-table: generated by tools/gen_ident.py from Python 3.11's unicodedata, Unicode 14.0.0. */
/* 850 ranges {first << 1 | start, last} of the non-ASCII characters a name may hold (start 1:
   anywhere, 0: not first): XID_Continue, NFKC-stable, combining class 0 */
static const uint32_t lfm2__ident_ranges[850][2] = {
    {0x16E,0xB7}, {0x181,0xD6}, {0x1B1,0xF6}, {0x1F1,0x131}, {0x269,0x13E}, {0x283,0x148},
    {0x295,0x17E}, {0x301,0x1C3}, {0x39B,0x1F0}, {0x3E9,0x2AF}, {0x573,0x2C1}, {0x58D,0x2D1},
    {0x5D9,0x2EC}, {0x5DD,0x2EE}, {0x69E,0x34F}, {0x6E1,0x373}, {0x6ED,0x377}, {0x6F7,0x37D},
    {0x6FF,0x37F}, {0x70D,0x386}, {0x711,0x38A}, {0x719,0x38C}, {0x71D,0x3A1}, {0x747,0x3CF},
    {0x7AF,0x3EF}, {0x7E7,0x3F3}, {0x7EF,0x3F8}, {0x7F5,0x481}, {0x915,0x52F}, {0xA63,0x556},
    {0xAB3,0x559}, {0xAC1,0x586}, {0xB11,0x588}, {0xBA1,0x5EA}, {0xBDF,0x5F2}, {0xC41,0x64A},
    {0xCC0,0x669}, {0xCDD,0x66F}, {0xCE3,0x674}, {0xCF3,0x6D3}, {0xDAB,0x6D5}, {0xDCB,0x6E6},
    {0xDDD,0x6EF}, {0xDE0,0x6F9}, {0xDF5,0x6FC}, {0xDFF,0x6FF}, {0xE21,0x710}, {0xE25,0x72F},
    {0xE9B,0x7A5}, {0xF4C,0x7B0}, {0xF63,0x7B1}, {0xF80,0x7C9}, {0xF95,0x7EA}, {0xFE9,0x7F5},
    {0xFF5,0x7FA}, {0x1001,0x815}, {0x1035,0x81A}, {0x1049,0x824}, {0x1051,0x828}, {0x1081,0x858},
    {0x10C1,0x86A}, {0x10E1,0x887}, {0x1113,0x88E}, {0x1141,0x8C9}, {0x1200,0x903}, {0x1209,0x939},
    {0x1274,0x93B}, {0x127B,0x93D}, {0x127C,0x94C}, {0x129C,0x94F}, {0x12A1,0x950}, {0x12AA,0x957},
    {0x12C1,0x961}, {0x12C4,0x963}, {0x12CC,0x96F}, {0x12E3,0x980}, {0x1302,0x983}, {0x130B,0x98C},
    {0x131F,0x990}, {0x1327,0x9A8}, {0x1355,0x9B0}, {0x1365,0x9B2}, {0x136D,0x9B9}, {0x137B,0x9BD},
    {0x137C,0x9C4}, {0x138E,0x9C8}, {0x1396,0x9CC}, {0x139D,0x9CE}, {0x13AE,0x9D7}, {0x13C1,0x9E1},
    {0x13C4,0x9E3}, {0x13CC,0x9EF}, {0x13E1,0x9F1}, {0x13F9,0x9FC}, {0x1402,0xA03}, {0x140B,0xA0A},
    {0x141F,0xA10}, {0x1427,0xA28}, {0x1455,0xA30}, {0x1465,0xA32}, {0x146B,0xA35}, {0x1471,0xA39},
    {0x147C,0xA42}, {0x148E,0xA48}, {0x1496,0xA4C}, {0x14A2,0xA51}, {0x14B9,0xA5C}, {0x14CC,0xA71},
    {0x14E5,0xA74}, {0x14EA,0xA75}, {0x1502,0xA83}, {0x150B,0xA8D}, {0x151F,0xA91}, {0x1527,0xAA8},
    {0x1555,0xAB0}, {0x1565,0xAB3}, {0x156B,0xAB9}, {0x157B,0xABD}, {0x157C,0xAC5}, {0x158E,0xAC9},
    {0x1596,0xACC}, {0x15A1,0xAD0}, {0x15C1,0xAE1}, {0x15C4,0xAE3}, {0x15CC,0xAEF}, {0x15F3,0xAF9},
    {0x15F4,0xAFF}, {0x1602,0xB03}, {0x160B,0xB0C}, {0x161F,0xB10}, {0x1627,0xB28}, {0x1655,0xB30},
    {0x1665,0xB33}, {0x166B,0xB39}, {0x167B,0xB3D}, {0x167C,0xB44}, {0x168E,0xB48}, {0x1696,0xB4C},
    {0x16AA,0xB57}, {0x16BF,0xB61}, {0x16C4,0xB63}, {0x16CC,0xB6F}, {0x16E3,0xB71}, {0x1704,0xB82},
    {0x1707,0xB83}, {0x170B,0xB8A}, {0x171D,0xB90}, {0x1725,0xB95}, {0x1733,0xB9A}, {0x1739,0xB9C},
    {0x173D,0xB9F}, {0x1747,0xBA4}, {0x1751,0xBAA}, {0x175D,0xBB9}, {0x177C,0xBC2}, {0x178C,0xBC8},
    {0x1794,0xBCC}, {0x17A1,0xBD0}, {0x17AE,0xBD7}, {0x17CC,0xBEF}, {0x1800,0xC04}, {0x180B,0xC0C},
    {0x181D,0xC10}, {0x1825,0xC28}, {0x1855,0xC39}, {0x187B,0xC3D}, {0x187C,0xC44}, {0x188C,0xC48},
    {0x1894,0xC4C}, {0x18B1,0xC5A}, {0x18BB,0xC5D}, {0x18C1,0xC61}, {0x18C4,0xC63}, {0x18CC,0xC6F},
    {0x1901,0xC80}, {0x1902,0xC83}, {0x190B,0xC8C}, {0x191D,0xC90}, {0x1925,0xCA8}, {0x1955,0xCB3},
    {0x196B,0xCB9}, {0x197B,0xCBD}, {0x197C,0xCC4}, {0x198C,0xCC8}, {0x1994,0xCCC}, {0x19AA,0xCD6},
    {0x19BB,0xCDE}, {0x19C1,0xCE1}, {0x19C4,0xCE3}, {0x19CC,0xCEF}, {0x19E3,0xCF2}, {0x1A00,0xD03},
    {0x1A09,0xD0C}, {0x1A1D,0xD10}, {0x1A25,0xD3A}, {0x1A7B,0xD3D}, {0x1A7C,0xD44}, {0x1A8C,0xD48},
    {0x1A94,0xD4C}, {0x1A9D,0xD4E}, {0x1AA9,0xD56}, {0x1AAE,0xD57}, {0x1ABF,0xD61}, {0x1AC4,0xD63},
    {0x1ACC,0xD6F}, {0x1AF5,0xD7F}, {0x1B02,0xD83}, {0x1B0B,0xD96}, {0x1B35,0xDB1}, {0x1B67,0xDBB},
    {0x1B7B,0xDBD}, {0x1B81,0xDC6}, {0x1B9E,0xDD4}, {0x1BAC,0xDD6}, {0x1BB0,0xDDF}, {0x1BCC,0xDEF},
    {0x1BE4,0xDF3}, {0x1C03,0xE30}, {0x1C62,0xE31}, {0x1C65,0xE32}, {0x1C68,0xE37}, {0x1C81,0xE46},
    {0x1C8E,0xE47}, {0x1C98,0xE4E}, {0x1CA0,0xE59}, {0x1D03,0xE82}, {0x1D09,0xE84}, {0x1D0D,0xE8A},
    {0x1D19,0xEA3}, {0x1D4B,0xEA5}, {0x1D4F,0xEB0}, {0x1D62,0xEB1}, {0x1D65,0xEB2}, {0x1D68,0xEB7},
    {0x1D76,0xEBC}, {0x1D7B,0xEBD}, {0x1D81,0xEC4}, {0x1D8D,0xEC6}, {0x1D98,0xECD}, {0x1DA0,0xED9},
    {0x1DBD,0xEDF}, {0x1E01,0xF00}, {0x1E40,0xF29}, {0x1E7C,0xF3F}, {0x1E81,0xF42}, {0x1E89,0xF47},
    {0x1E93,0xF4C}, {0x1E9D,0xF51}, {0x1EA7,0xF56}, {0x1EB1,0xF5B}, {0x1EBB,0xF68}, {0x1ED5,0xF6C},
    {0x1EFC,0xF7F}, {0x1F11,0xF8C}, {0x1F1A,0xF92}, {0x1F28,0xF97}, {0x1F32,0xF9C}, {0x1F3C,0xFA1},
    {0x1F46,0xFA6}, {0x1F50,0xFAB}, {0x1F5A,0xFB8}, {0x1F74,0xFBC}, {0x2001,0x102A}, {0x2056,0x1036},
    {0x2070,0x1038}, {0x2076,0x103E}, {0x207F,0x103F}, {0x2080,0x1049}, {0x20A1,0x1055},
    {0x20AC,0x1059}, {0x20B5,0x105D}, {0x20BC,0x1060}, {0x20C3,0x1061}, {0x20C4,0x1064},
    {0x20CB,0x1066}, {0x20CE,0x106D}, {0x20DD,0x1070}, {0x20E2,0x1074}, {0x20EB,0x1081},
    {0x2104,0x108C}, {0x211D,0x108E}, {0x211E,0x109D}, {0x2141,0x10C5}, {0x218F,0x10C7},
    {0x219B,0x10CD}, {0x21A1,0x10FA}, {0x21FB,0x1248}, {0x2495,0x124D}, {0x24A1,0x1256},
    {0x24B1,0x1258}, {0x24B5,0x125D}, {0x24C1,0x1288}, {0x2515,0x128D}, {0x2521,0x12B0},
    {0x2565,0x12B5}, {0x2571,0x12BE}, {0x2581,0x12C0}, {0x2585,0x12C5}, {0x2591,0x12D6},
    {0x25B1,0x1310}, {0x2625,0x1315}, {0x2631,0x135A}, {0x26D2,0x1371}, {0x2701,0x138F},
    {0x2741,0x13F5}, {0x27F1,0x13FD}, {0x2803,0x166C}, {0x2CDF,0x167F}, {0x2D03,0x169A},
    {0x2D41,0x16EA}, {0x2DDD,0x16F8}, {0x2E01,0x1711}, {0x2E24,0x1713}, {0x2E3F,0x1731},
    {0x2E64,0x1733}, {0x2E81,0x1751}, {0x2EA4,0x1753}, {0x2EC1,0x176C}, {0x2EDD,0x1770},
    {0x2EE4,0x1773}, {0x2F01,0x17B3}, {0x2F68,0x17D1}, {0x2FA6,0x17D3}, {0x2FAF,0x17D7},
    {0x2FB9,0x17DC}, {0x2FC0,0x17E9}, {0x3016,0x180D}, {0x301E,0x1819}, {0x3041,0x1878},
    {0x3101,0x18A8}, {0x3155,0x18AA}, {0x3161,0x18F5}, {0x3201,0x191E}, {0x3240,0x192B},
    {0x3260,0x1938}, {0x328C,0x194F}, {0x32A1,0x196D}, {0x32E1,0x1974}, {0x3301,0x19AB},
    {0x3361,0x19C9}, {0x33A0,0x19DA}, {0x3401,0x1A16}, {0x3432,0x1A1B}, {0x3441,0x1A54},
    {0x34AA,0x1A5E}, {0x34C2,0x1A74}, {0x3500,0x1A89}, {0x3520,0x1A99}, {0x354F,0x1AA7},
    {0x3600,0x1B04}, {0x360B,0x1B33}, {0x366A,0x1B43}, {0x368B,0x1B4C}, {0x36A0,0x1B59},
    {0x3700,0x1B82}, {0x3707,0x1BA0}, {0x3742,0x1BA9}, {0x3758,0x1BAD}, {0x375D,0x1BAF},
    {0x3760,0x1BB9}, {0x3775,0x1BE5}, {0x37CE,0x1BF1}, {0x3801,0x1C23}, {0x3848,0x1C36},
    {0x3880,0x1C49}, {0x389B,0x1C4F}, {0x38A0,0x1C59}, {0x38B5,0x1C7D}, {0x3901,0x1C88},
    {0x3921,0x1CBA}, {0x397B,0x1CBF}, {0x39C2,0x1CE1}, {0x39D3,0x1CEC}, {0x39DD,0x1CF3},
    {0x39EB,0x1CF6}, {0x39EE,0x1CF7}, {0x39F5,0x1CFA}, {0x3A01,0x1D2B}, {0x3A5F,0x1D2F},
    {0x3A77,0x1D3B}, {0x3A9D,0x1D4E}, {0x3AD7,0x1D77}, {0x3AF3,0x1D9A}, {0x3C01,0x1E99},
    {0x3D39,0x1F15}, {0x3E31,0x1F1D}, {0x3E41,0x1F45}, {0x3E91,0x1F4D}, {0x3EA1,0x1F57},
    {0x3EB3,0x1F59}, {0x3EB7,0x1F5B}, {0x3EBB,0x1F5D}, {0x3EBF,0x1F70}, {0x3EE5,0x1F72},
    {0x3EE9,0x1F74}, {0x3EED,0x1F76}, {0x3EF1,0x1F78}, {0x3EF5,0x1F7A}, {0x3EF9,0x1F7C},
    {0x3F01,0x1FB4}, {0x3F6D,0x1FBA}, {0x3F79,0x1FBC}, {0x3F85,0x1FC4}, {0x3F8D,0x1FC8},
    {0x3F95,0x1FCA}, {0x3F99,0x1FCC}, {0x3FA1,0x1FD2}, {0x3FAD,0x1FDA}, {0x3FC1,0x1FE2},
    {0x3FC9,0x1FEA}, {0x3FD9,0x1FEC}, {0x3FE5,0x1FF4}, {0x3FED,0x1FF8}, {0x3FF5,0x1FFA},
    {0x3FF9,0x1FFC}, {0x407E,0x2040}, {0x40A8,0x2054}, {0x4231,0x2118}, {0x425D,0x212E},
    {0x4265,0x2132}, {0x429D,0x214E}, {0x4301,0x2188}, {0x5801,0x2C7B}, {0x58FD,0x2CE4},
    {0x59D7,0x2CEE}, {0x59E5,0x2CF3}, {0x5A01,0x2D25}, {0x5A4F,0x2D27}, {0x5A5B,0x2D2D},
    {0x5A61,0x2D67}, {0x5B01,0x2D96}, {0x5B41,0x2DA6}, {0x5B51,0x2DAE}, {0x5B61,0x2DB6},
    {0x5B71,0x2DBE}, {0x5B81,0x2DC6}, {0x5B91,0x2DCE}, {0x5BA1,0x2DD6}, {0x5BB1,0x2DDE},
    {0x600B,0x3007}, {0x6043,0x3029}, {0x6063,0x3035}, {0x6077,0x303C}, {0x6083,0x3096},
    {0x613B,0x309E}, {0x6143,0x30FA}, {0x61F9,0x30FE}, {0x620B,0x312F}, {0x6341,0x31BF},
    {0x63E1,0x31FF}, {0x6801,0x4DBF}, {0x9C01,0xA48C}, {0x149A1,0xA4FD}, {0x14A01,0xA60C},
    {0x14C21,0xA61F}, {0x14C40,0xA629}, {0x14C55,0xA62B}, {0x14C81,0xA66E}, {0x14CFF,0xA69B},
    {0x14D41,0xA6EF}, {0x14E2F,0xA71F}, {0x14E45,0xA76F}, {0x14EE3,0xA788}, {0x14F17,0xA7CA},
    {0x14FA1,0xA7D1}, {0x14FA7,0xA7D3}, {0x14FAB,0xA7D9}, {0x14FEB,0xA7F7}, {0x14FF5,0xA801},
    {0x15004,0xA802}, {0x15007,0xA805}, {0x1500F,0xA80A}, {0x15016,0xA80B}, {0x15019,0xA822},
    {0x15046,0xA827}, {0x15081,0xA873}, {0x15100,0xA881}, {0x15105,0xA8B3}, {0x15168,0xA8C3},
    {0x1518A,0xA8C5}, {0x151A0,0xA8D9}, {0x151E5,0xA8F7}, {0x151F7,0xA8FB}, {0x151FB,0xA8FE},
    {0x151FE,0xA909}, {0x15215,0xA925}, {0x1524C,0xA92A}, {0x15261,0xA946}, {0x1528E,0xA952},
    {0x152C1,0xA97C}, {0x15300,0xA983}, {0x15309,0xA9B2}, {0x15368,0xA9BF}, {0x1539F,0xA9CF},
    {0x153A0,0xA9D9}, {0x153C1,0xA9E4}, {0x153CA,0xA9E5}, {0x153CD,0xA9EF}, {0x153E0,0xA9F9},
    {0x153F5,0xA9FE}, {0x15401,0xAA28}, {0x15452,0xAA36}, {0x15481,0xAA42}, {0x15486,0xAA43},
    {0x15489,0xAA4B}, {0x15498,0xAA4D}, {0x154A0,0xAA59}, {0x154C1,0xAA76}, {0x154F5,0xAA7A},
    {0x154F6,0xAA7D}, {0x154FD,0xAAAF}, {0x15563,0xAAB1}, {0x1556B,0xAAB6}, {0x15573,0xAABD},
    {0x15581,0xAAC0}, {0x15585,0xAAC2}, {0x155B7,0xAADD}, {0x155C1,0xAAEA}, {0x155D6,0xAAEF},
    {0x155E5,0xAAF4}, {0x155EA,0xAAF5}, {0x15603,0xAB06}, {0x15613,0xAB0E}, {0x15623,0xAB16},
    {0x15641,0xAB26}, {0x15651,0xAB2E}, {0x15661,0xAB5A}, {0x156C1,0xAB68}, {0x156E1,0xABE2},
    {0x157C6,0xABEA}, {0x157D8,0xABEC}, {0x157E0,0xABF9}, {0x15801,0xD7A3}, {0x1AF61,0xD7C6},
    {0x1AF97,0xD7FB}, {0x1F41D,0xFA0F}, {0x1F423,0xFA11}, {0x1F427,0xFA14}, {0x1F43F,0xFA1F},
    {0x1F443,0xFA21}, {0x1F447,0xFA24}, {0x1F44F,0xFA29}, {0x1FC00,0xFE0F}, {0x1FCE7,0xFE73},
    {0x20001,0x1000B}, {0x2001B,0x10026}, {0x20051,0x1003A}, {0x20079,0x1003D}, {0x2007F,0x1004D},
    {0x200A1,0x1005D}, {0x20101,0x100FA}, {0x20281,0x10174}, {0x20501,0x1029C}, {0x20541,0x102D0},
    {0x20601,0x1031F}, {0x2065B,0x1034A}, {0x206A1,0x10375}, {0x20701,0x1039D}, {0x20741,0x103C3},
    {0x20791,0x103CF}, {0x207A3,0x103D5}, {0x20801,0x1049D}, {0x20940,0x104A9}, {0x20961,0x104D3},
    {0x209B1,0x104FB}, {0x20A01,0x10527}, {0x20A61,0x10563}, {0x20AE1,0x1057A}, {0x20AF9,0x1058A},
    {0x20B19,0x10592}, {0x20B29,0x10595}, {0x20B2F,0x105A1}, {0x20B47,0x105B1}, {0x20B67,0x105B9},
    {0x20B77,0x105BC}, {0x20C01,0x10736}, {0x20E81,0x10755}, {0x20EC1,0x10767}, {0x20F01,0x10780},
    {0x21001,0x10805}, {0x21011,0x10808}, {0x21015,0x10835}, {0x2106F,0x10838}, {0x21079,0x1083C},
    {0x2107F,0x10855}, {0x210C1,0x10876}, {0x21101,0x1089E}, {0x211C1,0x108F2}, {0x211E9,0x108F5},
    {0x21201,0x10915}, {0x21241,0x10939}, {0x21301,0x109B7}, {0x2137D,0x109BF}, {0x21401,0x10A00},
    {0x21402,0x10A03}, {0x2140A,0x10A06}, {0x21418,0x10A0C}, {0x2141C,0x10A0E}, {0x21421,0x10A13},
    {0x2142B,0x10A17}, {0x21433,0x10A35}, {0x214C1,0x10A7C}, {0x21501,0x10A9C}, {0x21581,0x10AC7},
    {0x21593,0x10AE4}, {0x21601,0x10B35}, {0x21681,0x10B55}, {0x216C1,0x10B72}, {0x21701,0x10B91},
    {0x21801,0x10C48}, {0x21901,0x10CB2}, {0x21981,0x10CF2}, {0x21A01,0x10D23}, {0x21A60,0x10D39},
    {0x21D01,0x10EA9}, {0x21D61,0x10EB1}, {0x21E01,0x10F1C}, {0x21E4F,0x10F27}, {0x21E61,0x10F45},
    {0x21EE1,0x10F81}, {0x21F61,0x10FC4}, {0x21FC1,0x10FF6}, {0x22000,0x11002}, {0x22007,0x11037},
    {0x22070,0x11045}, {0x220CC,0x1106F}, {0x220E3,0x11072}, {0x220E6,0x11074}, {0x220EB,0x11075},
    {0x22100,0x11082}, {0x22107,0x110AF}, {0x22160,0x110B8}, {0x22184,0x110C2}, {0x221A1,0x110E8},
    {0x221E0,0x110F9}, {0x22207,0x11126}, {0x2224E,0x11132}, {0x2226C,0x1113F}, {0x22289,0x11144},
    {0x2228A,0x11146}, {0x2228F,0x11147}, {0x222A1,0x11172}, {0x222ED,0x11176}, {0x22300,0x11182},
    {0x22307,0x111B2}, {0x22366,0x111BF}, {0x22383,0x111C4}, {0x22392,0x111C9}, {0x22396,0x111CC},
    {0x2239C,0x111D9}, {0x223B5,0x111DA}, {0x223B9,0x111DC}, {0x22401,0x11211}, {0x22427,0x1122B},
    {0x22458,0x11234}, {0x2246E,0x11237}, {0x2247C,0x1123E}, {0x22501,0x11286}, {0x22511,0x11288},
    {0x22515,0x1128D}, {0x2251F,0x1129D}, {0x2253F,0x112A8}, {0x22561,0x112DE}, {0x225BE,0x112E8},
    {0x225E0,0x112F9}, {0x22600,0x11303}, {0x2260B,0x1130C}, {0x2261F,0x11310}, {0x22627,0x11328},
    {0x22655,0x11330}, {0x22665,0x11333}, {0x2266B,0x11339}, {0x2267B,0x1133D}, {0x2267C,0x11344},
    {0x2268E,0x11348}, {0x22696,0x1134C}, {0x226A1,0x11350}, {0x226AE,0x11357}, {0x226BB,0x11361},
    {0x226C4,0x11363}, {0x22801,0x11434}, {0x2286A,0x11441}, {0x22886,0x11445}, {0x2288F,0x1144A},
    {0x228A0,0x11459}, {0x228BF,0x11461}, {0x22901,0x114AF}, {0x22960,0x114C1}, {0x22989,0x114C5},
    {0x2298F,0x114C7}, {0x229A0,0x114D9}, {0x22B01,0x115AE}, {0x22B5E,0x115B5}, {0x22B70,0x115BE},
    {0x22BB1,0x115DB}, {0x22BB8,0x115DD}, {0x22C01,0x1162F}, {0x22C60,0x1163E}, {0x22C80,0x11640},
    {0x22C89,0x11644}, {0x22CA0,0x11659}, {0x22D01,0x116AA}, {0x22D56,0x116B5}, {0x22D71,0x116B8},
    {0x22D80,0x116C9}, {0x22E01,0x1171A}, {0x22E3A,0x1172A}, {0x22E60,0x11739}, {0x22E81,0x11746},
    {0x23001,0x1182B}, {0x23058,0x11838}, {0x23141,0x118DF}, {0x231C0,0x118E9}, {0x231FF,0x11906},
    {0x23213,0x11909}, {0x23219,0x11913}, {0x2322B,0x11916}, {0x23231,0x1192F}, {0x23260,0x11935},
    {0x2326E,0x11938}, {0x23276,0x1193C}, {0x2327F,0x1193F}, {0x23280,0x11940}, {0x23283,0x11941},
    {0x23284,0x11942}, {0x232A0,0x11959}, {0x23341,0x119A7}, {0x23355,0x119D0}, {0x233A2,0x119D7},
    {0x233B4,0x119DF}, {0x233C3,0x119E1}, {0x233C7,0x119E3}, {0x233C8,0x119E4}, {0x23401,0x11A00},
    {0x23402,0x11A0A}, {0x23417,0x11A32}, {0x23466,0x11A33}, {0x2346A,0x11A39}, {0x23475,0x11A3A},
    {0x23476,0x11A3E}, {0x234A1,0x11A50}, {0x234A2,0x11A5B}, {0x234B9,0x11A89}, {0x23514,0x11A98},
    {0x2353B,0x11A9D}, {0x23561,0x11AF8}, {0x23801,0x11C08}, {0x23815,0x11C2E}, {0x2385E,0x11C36},
    {0x23870,0x11C3E}, {0x23881,0x11C40}, {0x238A0,0x11C59}, {0x238E5,0x11C8F}, {0x23924,0x11CA7},
    {0x23952,0x11CB6}, {0x23A01,0x11D06}, {0x23A11,0x11D09}, {0x23A17,0x11D30}, {0x23A62,0x11D36},
    {0x23A74,0x11D3A}, {0x23A78,0x11D3D}, {0x23A7E,0x11D41}, {0x23A86,0x11D43}, {0x23A8D,0x11D46},
    {0x23A8E,0x11D47}, {0x23AA0,0x11D59}, {0x23AC1,0x11D65}, {0x23ACF,0x11D68}, {0x23AD5,0x11D89},
    {0x23B14,0x11D8E}, {0x23B20,0x11D91}, {0x23B26,0x11D96}, {0x23B31,0x11D98}, {0x23B40,0x11DA9},
    {0x23DC1,0x11EF2}, {0x23DE6,0x11EF6}, {0x23F61,0x11FB0}, {0x24001,0x12399}, {0x24801,0x1246E},
    {0x24901,0x12543}, {0x25F21,0x12FF0}, {0x26001,0x1342E}, {0x28801,0x14646}, {0x2D001,0x16A38},
    {0x2D481,0x16A5E}, {0x2D4C0,0x16A69}, {0x2D4E1,0x16ABE}, {0x2D580,0x16AC9}, {0x2D5A1,0x16AED},
    {0x2D601,0x16B2F}, {0x2D681,0x16B43}, {0x2D6A0,0x16B59}, {0x2D6C7,0x16B77}, {0x2D6FB,0x16B8F},
    {0x2DC81,0x16E7F}, {0x2DE01,0x16F4A}, {0x2DE9E,0x16F4F}, {0x2DEA1,0x16F50}, {0x2DEA2,0x16F87},
    {0x2DF1E,0x16F92}, {0x2DF27,0x16F9F}, {0x2DFC1,0x16FE1}, {0x2DFC7,0x16FE3}, {0x2DFC8,0x16FE4},
    {0x2E001,0x187F7}, {0x31001,0x18CD5}, {0x31A01,0x18D08}, {0x35FE1,0x1AFF3}, {0x35FEB,0x1AFFB},
    {0x35FFB,0x1AFFE}, {0x36001,0x1B122}, {0x362A1,0x1B152}, {0x362C9,0x1B167}, {0x362E1,0x1B2FB},
    {0x37801,0x1BC6A}, {0x378E1,0x1BC7C}, {0x37901,0x1BC88}, {0x37921,0x1BC99}, {0x3793A,0x1BC9D},
    {0x39E00,0x1CF2D}, {0x39E60,0x1CF46}, {0x3B400,0x1DA36}, {0x3B476,0x1DA6C}, {0x3B4EA,0x1DA75},
    {0x3B508,0x1DA84}, {0x3B536,0x1DA9F}, {0x3B542,0x1DAAF}, {0x3BE01,0x1DF1E}, {0x3C201,0x1E12C},
    {0x3C26F,0x1E13D}, {0x3C280,0x1E149}, {0x3C29D,0x1E14E}, {0x3C521,0x1E2AD}, {0x3C581,0x1E2EB},
    {0x3C5E0,0x1E2F9}, {0x3CFC1,0x1E7E6}, {0x3CFD1,0x1E7EB}, {0x3CFDB,0x1E7EE}, {0x3CFE1,0x1E7FE},
    {0x3D001,0x1E8C4}, {0x3D201,0x1E943}, {0x3D297,0x1E94B}, {0x3D2A0,0x1E959}, {0x40001,0x2A6DF},
    {0x54E01,0x2B738}, {0x56E81,0x2B81D}, {0x57041,0x2CEA1}, {0x59D61,0x2EBE0}, {0x60001,0x3134A},
    {0x1C0200,0xE01EF},
};
/* 41 neighbours {first, second} that compose (NFKC), Hangul aside */
static const uint32_t lfm2__ident_pairs[41][2] = {
    {0x9C7,0x9BE}, {0x9C7,0x9D7}, {0xB47,0xB3E}, {0xB47,0xB56}, {0xB47,0xB57}, {0xB92,0xBD7},
    {0xBC6,0xBBE}, {0xBC6,0xBD7}, {0xBC7,0xBBE}, {0xCBF,0xCD5}, {0xCC6,0xCC2}, {0xCC6,0xCD5},
    {0xCC6,0xCD6}, {0xCCA,0xCD5}, {0xD46,0xD3E}, {0xD46,0xD57}, {0xD47,0xD3E}, {0xDD9,0xDCF},
    {0xDD9,0xDDF}, {0x1025,0x102E}, {0x1B05,0x1B35}, {0x1B07,0x1B35}, {0x1B09,0x1B35},
    {0x1B0B,0x1B35}, {0x1B0D,0x1B35}, {0x1B11,0x1B35}, {0x1B3A,0x1B35}, {0x1B3C,0x1B35},
    {0x1B3E,0x1B35}, {0x1B3F,0x1B35}, {0x1B42,0x1B35}, {0x11131,0x11127}, {0x11132,0x11127},
    {0x11347,0x1133E}, {0x11347,0x11357}, {0x114B9,0x114B0}, {0x114B9,0x114BA}, {0x114B9,0x114BD},
    {0x115B8,0x115AF}, {0x115B9,0x115AF}, {0x11935,0x11930},
};
/* <<ident-table */
/* Non-ASCII characters of names: 2 = XID_Start (allowed first), 1 = XID_Continue only, 0 = refused
   (not an identifier character, or one Python would NFKC-normalize; tools/gen_ident.py). */
static int lfm2__ident_class(uint32_t cp) {
    return 1 + lfm2__range_class(lfm2__ident_ranges, sizeof lfm2__ident_ranges / sizeof lfm2__ident_ranges[0], 1, cp);
}
/* 1 when b after a composes (NFKC of the pair is one character): Hangul L + V, LV + T, the table. */
static int lfm2__ident_composes(uint32_t a, uint32_t b) {
    size_t k;
    if (a >= 0x1100 && a <= 0x1112 && b >= 0x1161 && b <= 0x1175) return 1;
    if (a >= 0xAC00 && a <= 0xD7A3 && (a - 0xAC00) % 28 == 0 && b >= 0x11A8 && b <= 0x11C2) return 1;
    for (k = 0; k < sizeof lfm2__ident_pairs / sizeof lfm2__ident_pairs[0]; k++)
        if (lfm2__ident_pairs[k][0] == a && lfm2__ident_pairs[k][1] == b) return 1;
    return 0;
}
/* An identifier at p->i: its length (0 if none). As Python's tokenizer does, every non-ASCII byte
   belongs to the name; each character must be valid UTF-8 and keep the name NFKC-stable and valid
   (lfm2__ident_class, lfm2__ident_composes), else the name is refused there (p->bad, 0). */
static size_t lfm2__pp_ident(lfm2__pp *p) {
    size_t i = p->i;
    uint32_t prev = 0;
    const unsigned char *s = LFM2__UBYTES(p->s);
    if (i >= p->len || !lfm2__pp_idstart(s[i])) return 0;
    while (i < p->len && lfm2__pp_idchar(s[i])) {
        if (s[i] >= 0x80) {
            uint32_t cp;
            int l = lfm2__utf8_next(s + i, p->len - i, &cp), c;
            if (l < 1) { lfm2__pp_fail(p, i, "invalid UTF-8 in a name"); return 0; }
            c = lfm2__ident_class(cp);
            if (c == 0) { lfm2__pp_fail(p, i, "a non-ASCII character in a name that Python would normalize (NFKC) or refuse"); return 0; }
            if (c == 1 && i == p->i) { lfm2__pp_fail(p, i, "a name starting with a non-ASCII character that Python refuses there (not XID_Start)"); return 0; }
            if (i > p->i && lfm2__ident_composes(prev, cp)) {
                lfm2__pp_fail(p, i, "a non-ASCII character in a name that composes with the one before it (Python would normalize the name, NFKC)");
                return 0;
            }
            prev = cp;
            i += LFM2__CAST(size_t, l);
        } else prev = s[i++];
    }
    return i - p->i;
}
static int lfm2__pp_keyword(const char *s, size_t n) {
    static const char *const kw[] = { "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield" };
    size_t k;
    for (k = 0; k < sizeof kw / sizeof kw[0]; k++) if (strlen(kw[k]) == n && memcmp(kw[k], s, n) == 0) return 1;
    return 0;
}

static void lfm2__pp_put_cp(lfm2__pp *p, uint32_t cp) {
    char o[8];
    size_t n;
    if (cp == '"' || cp == '\\') { o[0] = '\\'; o[1] = LFM2__CAST(char, cp); n = 2; }
    else if (cp == 10) { memcpy(o, "\\n", 2); n = 2; }
    else if (cp == 13) { memcpy(o, "\\r", 2); n = 2; }
    else if (cp == 9) { memcpy(o, "\\t", 2); n = 2; }
    else if (cp == 8) { memcpy(o, "\\b", 2); n = 2; }
    else if (cp == 12) { memcpy(o, "\\f", 2); n = 2; }
    else if (cp < 0x20) { snprintf(o, sizeof o, "\\u%04x", (unsigned)cp); n = 6; }
    else n = lfm2__chat_utf8_put(cp, o);
    lfm2__cw_text(p->w, o, n);
}

/* One string literal (prefix u allowed, triple quotes) at p->i; its characters go out JSON-escaped. */
static void lfm2__pp_string_lit(lfm2__pp *p) {
    const unsigned char *s = LFM2__UBYTES(p->s);
    size_t start = p->i;
    char q;
    int triple = 0;
    if (p->i < p->len && (s[p->i] == 'u' || s[p->i] == 'U')) p->i++;
    q = p->s[p->i];
    if (p->i + 2 < p->len && p->s[p->i + 1] == q && p->s[p->i + 2] == q) { triple = 1; p->i += 3; }
    else p->i++;
    for (;;) {
        unsigned char c;
        uint32_t cp;
        if (p->i >= p->len) { lfm2__pp_fail(p, start, "an unterminated string"); return; }
        c = s[p->i];
        if (c == LFM2__CAST(unsigned char, q)) {
            if (!triple) { p->i++; return; }
            if (p->i + 2 < p->len && p->s[p->i + 1] == q && p->s[p->i + 2] == q) { p->i += 3; return; }
            p->i++;
            lfm2__pp_put_cp(p, c);
            continue;
        }
        if ((c == '\n' || c == '\r') && !triple) { lfm2__pp_fail(p, start, "an unterminated string"); return; }
        if (c == '\\') {
            size_t at = p->i;
            unsigned char e;
            if (p->i + 1 >= p->len) { lfm2__pp_fail(p, start, "an unterminated string"); return; }
            e = s[p->i + 1];
            p->i += 2;
            switch (e) {
            case '\n': continue;
            case '\\': cp = '\\'; break;
            case '\'': cp = '\''; break;
            case '"': cp = '"'; break;
            case 'a': cp = 7; break;
            case 'b': cp = 8; break;
            case 'f': cp = 12; break;
            case 'n': cp = 10; break;
            case 'r': cp = 13; break;
            case 't': cp = 9; break;
            case 'v': cp = 11; break;
            case 'x': case 'u': case 'U': {
                int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8, k;
                cp = 0;
                for (k = 0; k < nd; k++) {
                    char h = p->i < p->len ? p->s[p->i] : 0;
                    int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                    if (d < 0) { lfm2__pp_fail(p, at, "a truncated \\x, \\u or \\U escape"); return; }
                    cp = (cp << 4) | LFM2__CAST(uint32_t, d);
                    p->i++;
                }
                if (cp > 0x10ffff) { lfm2__pp_fail(p, at, "an escape beyond U+10FFFF"); return; }
                if (cp >= 0xd800 && cp <= 0xdfff) { lfm2__pp_fail(p, at, "a surrogate escape (not valid in JSON text)"); return; }
                break;
            }
            case 'N': lfm2__pp_fail(p, at, "a \\N{...} escape (unsupported)"); return;
            default:
                if (e >= '0' && e <= '7') {
                    int k;
                    cp = LFM2__CAST(uint32_t, e - '0');
                    for (k = 0; k < 2 && p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '7'; k++) cp = cp * 8 + LFM2__CAST(uint32_t, p->s[p->i++] - '0');
                } else { /* an unknown escape keeps its backslash (Python warns, but keeps it) */
                    lfm2__pp_put_cp(p, '\\');
                    p->i--;
                    continue;
                }
            }
            lfm2__pp_put_cp(p, cp);
            continue;
        }
        {
            int l = lfm2__utf8_next(s + p->i, p->len - p->i, &cp);
            if (l < 1) { lfm2__pp_fail(p, p->i, "invalid UTF-8"); return; }
            p->i += LFM2__CAST(size_t, l);
            lfm2__pp_put_cp(p, cp);
        }
    }
}
static int lfm2__pp_at_string(const lfm2__pp *p) {
    size_t i = p->i;
    if (i < p->len && (p->s[i] == 'u' || p->s[i] == 'U')) i++;
    return i < p->len && (p->s[i] == '"' || p->s[i] == '\'');
}
/* A string: one literal or several side by side ('a' "b" is "ab"). */
static void lfm2__pp_string(lfm2__pp *p) {
    lfm2__cw_text(p->w, "\"", 1);
    for (;;) {
        lfm2__pp_string_lit(p);
        if (p->bad) return;
        { size_t save = p->i; lfm2__pp_ws(p); if (p->bad || !lfm2__pp_at_string(p)) { p->i = save; p->bad = 0; break; } }
    }
    lfm2__cw_text(p->w, "\"", 1);
}

/* A number (after an optional sign at *neg): Python int or float literal -> JSON. */
static void lfm2__pp_number(lfm2__pp *p, int neg, size_t at) {
    const char *s = p->s;
    size_t i = p->i, n = 0, k;
    char tmp[400];
    int is_float = 0, digits = 0;
    if (i + 1 < p->len && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'o' || s[i + 1] == 'O' || s[i + 1] == 'b' || s[i + 1] == 'B')) {
        int base = (s[i + 1] == 'x' || s[i + 1] == 'X') ? 16 : (s[i + 1] == 'o' || s[i + 1] == 'O') ? 8 : 2;
        uint64_t v = 0;
        char o[32];
        i += 2;
        for (;;) {
            int d;
            char c = i < p->len ? s[i] : 0;
            if (c == '_' && i + 1 < p->len && digits) { i++; c = s[i]; }
            d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
            if (d >= base) break;
            if (v > (UINT64_MAX - LFM2__CAST(uint64_t, d)) / LFM2__CAST(uint64_t, base)) { lfm2__pp_fail(p, at, "an integer too large"); return; }
            v = v * LFM2__CAST(uint64_t, base) + LFM2__CAST(uint64_t, d);
            digits++;
            i++;
        }
        if (!digits || (i < p->len && lfm2__pp_idchar(LFM2__UBYTES(s)[i]))) { lfm2__pp_fail(p, at, "a malformed number"); return; }
        p->i = i;
        snprintf(o, sizeof o, "%s%llu", neg && v ? "-" : "", (unsigned long long)v);
        lfm2__cw_texts(p->w, o);
        return;
    }
    if (neg) tmp[n++] = '-';
    /* digitpart [. digitpart] [e [+-] digitpart], '_' only between digits */
#define LFM2__PP_DIGITS() do { int first_ = 1; while (i < p->len && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '_' && !first_ && i + 1 < p->len && s[i + 1] >= '0' && s[i + 1] <= '9'))) { \
        if (s[i] != '_') { if (n + 2 >= sizeof tmp) { lfm2__pp_fail(p, at, "a number too long"); return; } tmp[n++] = s[i]; digits++; } first_ = 0; i++; } } while (0)
    LFM2__PP_DIGITS();
    if (i < p->len && s[i] == '.') { is_float = 1; tmp[n++] = '.'; i++; LFM2__PP_DIGITS(); }
    if (!digits) { lfm2__pp_fail(p, at, "a malformed number"); return; }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        int ed;
        is_float = 1;
        tmp[n++] = 'e';
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) tmp[n++] = s[i++];
        ed = digits;
        LFM2__PP_DIGITS();
        if (digits == ed) { lfm2__pp_fail(p, at, "a malformed exponent"); return; }
    }
#undef LFM2__PP_DIGITS
    if (i < p->len && (s[i] == 'j' || s[i] == 'J')) { lfm2__pp_fail(p, at, "a complex number"); return; }
    if (i < p->len && (lfm2__pp_idchar(LFM2__UBYTES(s)[i]) || s[i] == '.')) { lfm2__pp_fail(p, at, "a malformed number"); return; }
    tmp[n] = 0;
    p->i = i;
    if (is_float) {
        char o[48];
        double x = strtod(tmp, NULL);
        if (x > DBL_MAX || x < -DBL_MAX) { lfm2__pp_fail(p, at, "a number that is not finite"); return; }
        lfm2__cw_text(p->w, o, lfm2__py_float(x, o, sizeof o));
    } else { /* an int: its digits without leading zeros ("007" is a syntax error, "00" is 0) */
        size_t d0 = neg ? 1 : 0, z = d0;
        while (z + 1 < n && tmp[z] == '0') z++;
        if (tmp[d0] == '0' && z < n && tmp[z] != '0' && z > d0) { lfm2__pp_fail(p, at, "leading zeros in an integer"); return; }
        if (z + 1 == n && tmp[z] == '0') { lfm2__cw_text(p->w, "0", 1); return; }
        if (neg) lfm2__cw_text(p->w, "-", 1);
        lfm2__cw_text(p->w, tmp + z, n - z);
    }
    (void)k;
}

/* Inserts byte c at position at of the output (the text after it moves up). */
static void lfm2__cw_insert1(lfm2__cw *w, size_t at, char c) {
    size_t old = w->n;
    lfm2__cw_text(w, &c, 1);
    if (w->rc != LFM2_OK || !w->buf || at >= w->cap) return;
    {
        size_t hi = old < w->cap ? old : w->cap - 1; /* bytes [at, hi) were stored */
        if (hi > at) memmove(w->buf + at + 1, w->buf + at, hi - at);
        w->buf[at] = c;
    }
}
/* Skips one value that was already parsed (strings and brackets only): to the ',' or the
   closing bracket that ends it. */
static void lfm2__pp_skip(lfm2__pp *p) {
    int depth = 0;
    while (p->i < p->len) {
        char c = p->s[p->i];
        if (c == '"' || c == '\'') {
            lfm2__cw skip;
            memset(&skip, 0, sizeof skip);
            { lfm2__cw *w = p->w; p->w = &skip; lfm2__pp_string_lit(p); p->w = w; }
            if (p->bad) return;
            continue;
        }
        if (c == '[' || c == '(' || c == '{') depth++;
        else if (c == ']' || c == ')' || c == '}') { if (depth == 0) return; depth--; }
        else if (c == ',' && depth == 0) return;
        p->i++;
    }
}
static void lfm2__pp_value(lfm2__pp *p, int depth);

/* Bytes [lo, lo + 64) of the JSON spelling of the (valid) string at a into out: how many. */
static size_t lfm2__pp_key_window(const lfm2__pp *p, size_t a, size_t lo, char *out) {
    lfm2__pp q = *p;
    lfm2__cw w;
    memset(&w, 0, sizeof w);
    w.buf = out;
    w.cap = 64;
    w.clip = 1;
    w.win_lo = lo;
    w.win_hi = lo + 64;
    q.w = &w;
    q.i = a;
    q.bad = 0;
    lfm2__pp_string(&q);
    return w.n;
}
/* 1 when the valid strings at a and b, both with JSON spellings of n bytes, decode to the same
   text (compared 64 bytes at a time: no buffer for the whole key). */
static int lfm2__pp_same_key(const lfm2__pp *p, size_t a, size_t b, size_t n) {
    char x[64], y[64];
    size_t lo;
    for (lo = 0; lo < n; lo += 64) {
        size_t nx = lfm2__pp_key_window(p, a, lo, x), ny = lfm2__pp_key_window(p, b, lo, y);
        if (nx != ny || memcmp(x, y, nx) != 0) return 0;
    }
    return 1;
}

/* Elements up to close (after the opening bracket), as a JSON array. */
static void lfm2__pp_seq(lfm2__pp *p, char close, int depth) {
    int first = 1;
    lfm2__cw_text(p->w, "[", 1);
    for (;;) {
        lfm2__pp_ws(p);
        if (p->bad) return;
        if (p->i < p->len && p->s[p->i] == close) { p->i++; break; }
        if (!first) {
            if (p->i >= p->len) { lfm2__pp_fail(p, p->i, "an unclosed bracket"); return; }
            if (p->s[p->i] != ',') { lfm2__pp_fail(p, p->i, "an expression (expected ',' or a closing bracket)"); return; }
            p->i++;
            lfm2__pp_ws(p);
            if (p->i < p->len && p->s[p->i] == close) { p->i++; break; }
            lfm2__cw_text(p->w, ", ", 2);
        }
        first = 0;
        lfm2__pp_value(p, depth + 1);
        if (p->bad) return;
    }
    lfm2__cw_text(p->w, "]", 1);
}

static void lfm2__pp_value(lfm2__pp *p, int depth) {
    unsigned char c;
    size_t at;
    lfm2__pp_ws(p);
    if (p->bad) return;
    at = p->i;
    if (depth > LFM2__CHAT_MAX_DEPTH) { lfm2__pp_fail(p, at, "values nested too deeply"); return; }
    if (p->i >= p->len) { lfm2__pp_fail(p, at, "a missing value"); return; }
    c = LFM2__UBYTES(p->s)[p->i];
    if (lfm2__pp_at_string(p)) { lfm2__pp_string(p); return; }
    if (c == '-' || c == '+') {
        p->i++;
        lfm2__pp_ws(p);
        if (p->i < p->len && ((p->s[p->i] >= '0' && p->s[p->i] <= '9') || (p->s[p->i] == '.' && p->i + 1 < p->len && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')))
            lfm2__pp_number(p, c == '-', at);
        else lfm2__pp_fail(p, at, "an expression (a sign before something that is not a number)");
        return;
    }
    if ((c >= '0' && c <= '9') || (c == '.' && p->i + 1 < p->len && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')) { lfm2__pp_number(p, 0, at); return; }
    if (c == '[') { p->i++; lfm2__pp_seq(p, ']', depth); return; }
    if (c == '(') { /* a tuple, or a value in parentheses: decided after the first element */
        size_t o0 = p->w->n;
        p->i++;
        lfm2__pp_ws(p);
        if (p->bad) return;
        if (p->i < p->len && p->s[p->i] == ')') { p->i++; lfm2__cw_text(p->w, "[]", 2); return; }
        lfm2__pp_value(p, depth + 1);
        lfm2__pp_ws(p);
        if (p->bad) return;
        if (p->i < p->len && p->s[p->i] == ')') { p->i++; return; } /* (x) is x */
        if (p->i >= p->len || p->s[p->i] != ',') { lfm2__pp_fail(p, p->i, p->i >= p->len ? "an unclosed bracket" : "an expression (expected ',' or ')')"); return; }
        lfm2__cw_insert1(p->w, o0, '[');
        for (;;) { /* the rest of the tuple */
            p->i++; /* ',' */
            lfm2__pp_ws(p);
            if (p->bad) return;
            if (p->i < p->len && p->s[p->i] == ')') { p->i++; break; }
            lfm2__cw_text(p->w, ", ", 2);
            lfm2__pp_value(p, depth + 1);
            lfm2__pp_ws(p);
            if (p->bad) return;
            if (p->i < p->len && p->s[p->i] == ')') { p->i++; break; }
            if (p->i >= p->len || p->s[p->i] != ',') { lfm2__pp_fail(p, p->i, p->i >= p->len ? "an unclosed bracket" : "an expression (expected ',' or ')')"); return; }
        }
        lfm2__cw_text(p->w, "]", 1);
        return;
    }
    if (c == '{') {
        int first = 1;
        size_t keys0 = p->i + 1;
        p->i++;
        lfm2__cw_text(p->w, "{", 1);
        for (;;) {
            size_t kat, klen;
            lfm2__pp_ws(p);
            if (p->bad) return;
            if (p->i < p->len && p->s[p->i] == '}') { p->i++; break; }
            if (!first) {
                if (p->i >= p->len) { lfm2__pp_fail(p, p->i, "an unclosed bracket"); return; }
                if (p->s[p->i] != ',') { lfm2__pp_fail(p, p->i, "an expression (expected ',' or '}')"); return; }
                p->i++;
                lfm2__pp_ws(p);
                if (p->i < p->len && p->s[p->i] == '}') { p->i++; break; }
                lfm2__cw_text(p->w, ", ", 2);
            }
            kat = p->i;
            if (!lfm2__pp_at_string(p)) {
                lfm2__pp_fail(p, kat, first ? "a dict key that is not a string (or a set)" : "a dict key that is not a string");
                return;
            }
            klen = p->w->n;
            lfm2__pp_string(p);
            if (p->bad) return;
            klen = p->w->n - klen; /* the key's JSON spelling: "..." */
            { /* the same key earlier in this dict? Compared as the decoded strings (their JSON
                 spellings), not as written: 'a', "a", u'a', '\x61' and 'a' '' are one key */
                lfm2__pp q = *p;
                lfm2__cw skip;
                memset(&skip, 0, sizeof skip);
                q.w = &skip;
                q.i = keys0;
                for (;;) {
                    size_t k0, n0;
                    lfm2__pp_ws(&q);
                    if (q.i < kat && q.s[q.i] == ',') { q.i++; lfm2__pp_ws(&q); }
                    if (q.bad || q.i >= kat) break;
                    k0 = q.i;
                    n0 = skip.n;
                    lfm2__pp_string(&q);
                    if (q.bad) break;
                    if (skip.n - n0 == klen && lfm2__pp_same_key(p, k0, kat, klen)) { lfm2__pp_fail(p, kat, "a duplicate dict key"); return; }
                    lfm2__pp_ws(&q);
                    q.i++; /* ':' */
                    lfm2__pp_skip(&q); /* (already checked: skipped without parsing again) */
                    if (q.bad) break;
                }
            }
            lfm2__pp_ws(p);
            if (p->i >= p->len || p->s[p->i] != ':') { lfm2__pp_fail(p, p->i, first ? "a set, or a dict without ':'" : "a dict entry without ':'"); return; }
            p->i++;
            lfm2__cw_text(p->w, ": ", 2);
            lfm2__pp_value(p, depth + 1);
            if (p->bad) return;
            first = 0;
        }
        lfm2__cw_text(p->w, "}", 1);
        return;
    }
    if (lfm2__pp_idstart(c)) {
        size_t n = lfm2__pp_ident(p);
        const char *id = p->s + p->i;
        size_t after = p->i + n;
        lfm2__pp q = *p;
        q.i = after;
        lfm2__pp_ws(&q);
        if (!q.bad && q.i < q.len && q.s[q.i] == '(') { lfm2__pp_fail(p, at, "a call inside a value"); return; }
        if (n == 4 && memcmp(id, "True", 4) == 0) { p->i = after; lfm2__cw_text(p->w, "true", 4); return; }
        if (n == 5 && memcmp(id, "False", 5) == 0) { p->i = after; lfm2__cw_text(p->w, "false", 5); return; }
        if (n == 4 && memcmp(id, "None", 4) == 0) { p->i = after; lfm2__cw_text(p->w, "null", 4); return; }
        if (n > 0 && n <= 2 && after < p->len && (p->s[after] == '"' || p->s[after] == '\'')) { lfm2__pp_fail(p, at, "a string prefix other than u (b'', r'', f'')"); return; }
        lfm2__pp_fail(p, at, "a name (not a literal)");
        return;
    }
    lfm2__pp_fail(p, at, "an expression (not a literal)");
}

#define LFM2__PP_MAX_ARGS 128
static lfm2_result lfm2__tool_calls_impl(const char *text, size_t len, lfm2_tool_call *calls, int32_t max_calls, int32_t *n_calls,
                                         lfm2__cw *w, size_t *err_offset, lfm2_error *err) {
    lfm2__pp p;
    int32_t nc = 0;
    size_t args_at[LFM2__PP_MAX_ARGS], args_len[LFM2__PP_MAX_ARGS];
    memset(&p, 0, sizeof p);
    p.s = text;
    p.len = len;
    p.w = w;
    lfm2__pp_ws(&p);
    if (!p.bad && (p.i >= len || text[p.i] != '[')) lfm2__pp_fail(&p, p.i, p.i >= len ? "no text (expected '[')" : "no list (expected '[')");
    if (!p.bad) p.i++;
    while (!p.bad) {
        size_t at, n, name_off;
        int32_t na = 0;
        lfm2__pp_ws(&p);
        if (p.bad) break;
        if (p.i < len && text[p.i] == ']') { p.i++; break; }
        if (nc > 0) {
            if (p.i >= len) { lfm2__pp_fail(&p, p.i, "an unclosed list"); break; }
            if (text[p.i] != ',') { lfm2__pp_fail(&p, p.i, "an expression (expected ',' or ']')"); break; }
            p.i++;
            lfm2__pp_ws(&p);
            if (p.i < len && text[p.i] == ']') { p.i++; break; }
        }
        /* name(.name)* */
        at = p.i;
        name_off = w->n;
        for (;;) {
            n = lfm2__pp_ident(&p);
            if (!n) { lfm2__pp_fail(&p, p.i, p.i >= len ? "an unclosed list" : "an element that is not a call"); break; }
            if (lfm2__pp_keyword(text + p.i, n)) { lfm2__pp_fail(&p, p.i, "a keyword as a name"); break; }
            lfm2__cw_text(w, text + p.i, n);
            p.i += n;
            if (p.i < len && text[p.i] == '.') { lfm2__cw_text(w, ".", 1); p.i++; continue; }
            break;
        }
        if (p.bad) break;
        lfm2__pp_ws(&p);
        if (p.i >= len || text[p.i] != '(') { lfm2__pp_fail(&p, at, "an element that is not a call"); break; }
        p.i++;
        if (nc < max_calls && calls) { calls[nc].name_len = w->n - name_off; calls[nc].name = NULL; }
        lfm2__cw_text(w, "", 1); /* the name's NUL */
        if (nc < max_calls && calls) calls[nc].arguments_len = w->n; /* (the arguments' offset, for now) */
        {
            size_t a0 = w->n;
            lfm2__cw_text(w, "{", 1);
            for (;;) {
                size_t kat;
                int32_t k;
                lfm2__pp_ws(&p);
                if (p.bad) break;
                if (p.i < len && text[p.i] == ')') { p.i++; break; }
                if (na > 0) {
                    if (p.i >= len) { lfm2__pp_fail(&p, p.i, "an unclosed call"); break; }
                    if (text[p.i] != ',') { lfm2__pp_fail(&p, p.i, "an expression (expected ',' or ')')"); break; }
                    p.i++;
                    lfm2__pp_ws(&p);
                    if (p.i < len && text[p.i] == ')') { p.i++; break; }
                    lfm2__cw_text(w, ", ", 2);
                }
                kat = p.i;
                n = lfm2__pp_ident(&p);
                {
                    lfm2__pp q = p;
                    q.i += n;
                    lfm2__pp_ws(&q);
                    if (!n || q.bad || q.i >= len || text[q.i] != '=' || (q.i + 1 < len && text[q.i + 1] == '=')) {
                        lfm2__pp_fail(&p, kat, p.i >= len ? "an unclosed call" : "a positional argument (only name=value arguments)");
                        break;
                    }
                    if (lfm2__pp_keyword(text + kat, n)) { lfm2__pp_fail(&p, kat, "a keyword as an argument name"); break; }
                    for (k = 0; k < na; k++)
                        if (args_len[k] == n && memcmp(text + args_at[k], text + kat, n) == 0) { lfm2__pp_fail(&p, kat, "a repeated argument name"); break; }
                    if (p.bad) break;
                    if (na >= LFM2__PP_MAX_ARGS) { lfm2__pp_fail(&p, kat, "more than 128 arguments in one call"); break; }
                    args_at[na] = kat;
                    args_len[na] = n;
                    na++;
                    p.i = q.i + 1;
                }
                lfm2__cw_text(w, "\"", 1);
                { /* the name as a JSON string (identifiers need no escaping) */
                    lfm2__cw_text(w, text + kat, n);
                }
                lfm2__cw_text(w, "\": ", 3);
                lfm2__pp_value(&p, 1);
                if (p.bad) break;
            }
            if (p.bad) break;
            lfm2__cw_text(w, "}", 1);
            if (nc < max_calls && calls) calls[nc].arguments_len = w->n - a0;
            lfm2__cw_text(w, "", 1);
        }
        nc++;
    }
    if (!p.bad) {
        lfm2__pp_ws(&p);
        if (!p.bad && p.i != len) lfm2__pp_fail(&p, p.i, "trailing characters after the list");
    }
    if (!p.bad && w->overflow) lfm2__pp_fail(&p, 0, "output too large");
    if (p.bad) {
        if (err_offset) *err_offset = p.err_at;
        *n_calls = 0;
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "tool calls: byte %llu: %s", (unsigned long long)p.err_at, p.why);
    }
    *n_calls = nc;
    return LFM2_OK;
}

/* ---- the streaming splitter -------------------------------------------------------------------- */
static const char *const lfm2__split_marks[3][2] = {
    { "<think>", "<|tool_call_start|>" }, /* in content */
    { "</think>", NULL },                 /* in reasoning */
    { "<|tool_call_end|>", NULL }         /* in a tool call */
};
/* 2: held[0..n) is a whole marker (*which), 1: the start of one, 0: neither. */
static int lfm2__split_match(const lfm2_chat_splitter *s, int *which) {
    int k, r = 0;
    size_t n = LFM2__CAST(size_t, s->n_held);
    for (k = 0; k < 2; k++) {
        const char *m = lfm2__split_marks[s->channel][k];
        size_t ml;
        if (!m) continue;
        ml = strlen(m);
        if (n <= ml && memcmp(s->held, m, n) == 0) {
            if (n == ml) { *which = k; return 2; }
            r = 1;
        }
    }
    return r;
}

static void lfm2__split_emit_held(lfm2_chat_splitter *s, lfm2_chat_emit_fn emit, void *user) {
    if (s->n_held > 0) emit(user, s->channel, s->held, LFM2__CAST(size_t, s->n_held));
    s->n_held = 0;
}

/* ---- public API: chat ---------------------------------------------------------------------------- */

LFM2_API lfm2_chat_template lfm2_chat_template_detect(const char *text, size_t len) {
    static const struct { uint64_t h; size_t n; lfm2_chat_template t; } known[3] = {
        { 0x89bcbd75ce6a3d28ull, 209, LFM2_CHAT_TEMPLATE_LFM2 },
        { 0x1d4b9483c86d4349ull, 1296, LFM2_CHAT_TEMPLATE_LFM2_TOOLS },
        { 0x6ebe17e9a93f4638ull, 3836, LFM2_CHAT_TEMPLATE_LFM25 } };
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i, k;
    if (!text) return LFM2_CHAT_TEMPLATE_UNKNOWN;
    while (len > 0 && (text[0] == ' ' || text[0] == '\t' || text[0] == '\r' || text[0] == '\n')) { text++; len--; }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\r' || text[len - 1] == '\n')) len--;
    for (i = 0; i < len; i++) { h ^= LFM2__UBYTES(text)[i]; h *= 0x100000001b3ull; }
    for (k = 0; k < 3; k++) if (known[k].n == len && known[k].h == h) return known[k].t;
    return LFM2_CHAT_TEMPLATE_UNKNOWN;
}

LFM2_API const char *lfm2_chat_template_name(lfm2_chat_template t) {
    switch (t) {
    case LFM2_CHAT_TEMPLATE_LFM2: return "lfm2";
    case LFM2_CHAT_TEMPLATE_LFM2_TOOLS: return "lfm2-tools";
    case LFM2_CHAT_TEMPLATE_LFM25: return "lfm2.5";
    default: return NULL;
    }
}
LFM2_API lfm2_chat_template lfm2_chat_template_from_name(const char *name) {
    if (!name) return LFM2_CHAT_TEMPLATE_UNKNOWN;
    if (strcmp(name, "lfm2") == 0) return LFM2_CHAT_TEMPLATE_LFM2;
    if (strcmp(name, "lfm2-tools") == 0) return LFM2_CHAT_TEMPLATE_LFM2_TOOLS;
    if (strcmp(name, "lfm2.5") == 0) return LFM2_CHAT_TEMPLATE_LFM25;
    return LFM2_CHAT_TEMPLATE_UNKNOWN;
}

#ifndef LFM2_NO_STDIO
#include <errno.h>
/* Reads a small text file (at most 16 MB) into a malloc'd, NUL-terminated buffer. 0: absent,
   1: read, -1: an error (err set). */
static int lfm2__chat_read(const char *dir, const char *name, char **out, size_t *n, lfm2_error *err) {
    char path[4096];
    FILE *f;
    long sz;
    *out = NULL;
    *n = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= LFM2__CAST(int, sizeof path)) {
        lfm2__fail(err, LFM2_ERR_INVALID_ARG, "%s: path too long", name);
        return -1;
    }
    f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        lfm2__fail(err, LFM2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || sz > (16L << 20) || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        lfm2__fail(err, LFM2_ERR_IO, "%s: cannot read (or larger than 16 MB)", path);
        return -1;
    }
    *out = LFM2__CAST(char *, malloc(LFM2__CAST(size_t, sz) + 1));
    if (!*out) { fclose(f); lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "%s: out of memory", path); return -1; }
    if (fread(*out, 1, LFM2__CAST(size_t, sz), f) != LFM2__CAST(size_t, sz)) {
        fclose(f); free(*out); *out = NULL;
        lfm2__fail(err, LFM2_ERR_IO, "%s: read error", path);
        return -1;
    }
    fclose(f);
    (*out)[sz] = 0;
    *n = LFM2__CAST(size_t, sz);
    return 1;
}

/* The chat_template string of tokenizer_config.json (decoded into a malloc'd buffer), or NULL. */
static char *lfm2__chat_template_from_config(const char *json, size_t len) {
    lfm2__jr r;
    lfm2__cw w;
    size_t tpl = 0;
    int found = 0;
    memset(&w, 0, sizeof w);
    r.s = json; r.len = len; r.i = 0; r.w = NULL; r.what = NULL; r.bad = 0;
    lfm2__jr_ws(&r);
    if (r.i >= len || json[r.i] != '{') return NULL;
    r.i++;
    for (;;) { /* top-level keys */
        size_t k0, k1;
        lfm2__jr_ws(&r);
        if (r.bad || r.i >= len || json[r.i] != '"') break;
        k0 = r.i;
        lfm2__jr_string(&r, LFM2__JV_SKIP, 0);
        k1 = r.i;
        lfm2__jr_ws(&r);
        if (r.bad || r.i >= len || json[r.i] != ':') break;
        r.i++;
        lfm2__jr_ws(&r);
        if (k1 - k0 == 15 && memcmp(json + k0, "\"chat_template\"", 15) == 0) {
            if (json[r.i] == '"') { tpl = r.i; found = 1; }
            else if (json[r.i] == '[') { /* [{"name": "default", "template": "..."}, ...] */
                lfm2__jr a = r;
                a.i++;
                for (;;) {
                    size_t name_v = 0, tpl_v = 0;
                    lfm2__jr_ws(&a);
                    if (a.bad || a.i >= len || json[a.i] != '{') break;
                    a.i++;
                    for (;;) {
                        size_t kk, kl;
                        lfm2__jr_ws(&a);
                        if (a.bad || a.i >= len || json[a.i] != '"') break;
                        kk = a.i;
                        lfm2__jr_string(&a, LFM2__JV_SKIP, 0);
                        kl = a.i - kk;
                        lfm2__jr_ws(&a); a.i++; lfm2__jr_ws(&a);
                        if (kl == 6 && memcmp(json + kk, "\"name\"", 6) == 0) name_v = a.i;
                        if (kl == 10 && memcmp(json + kk, "\"template\"", 10) == 0 && a.i < len && json[a.i] == '"') tpl_v = a.i;
                        lfm2__jr_value(&a, LFM2__JV_SKIP, 1);
                        lfm2__jr_ws(&a);
                        if (a.i < len && json[a.i] == ',') a.i++;
                    }
                    if (a.bad || a.i >= len || json[a.i] != '}') break;
                    a.i++;
                    if (name_v && tpl_v && len - name_v >= 9 && memcmp(json + name_v, "\"default\"", 9) == 0) { tpl = tpl_v; found = 1; }
                    lfm2__jr_ws(&a);
                    if (a.i < len && json[a.i] == ',') a.i++;
                }
            }
        }
        lfm2__jr_value(&r, LFM2__JV_SKIP, 0);
        lfm2__jr_ws(&r);
        if (r.i < len && json[r.i] == ',') r.i++;
    }
    if (!found) return NULL;
    { /* decode the string twice: its size, then its bytes */
        char *out;
        r.bad = 0;
        r.i = tpl;
        r.w = &w;
        lfm2__jr_string(&r, LFM2__JV_DUMPS, 1);
        if (r.bad || w.rc != LFM2_OK) return NULL;
        out = LFM2__CAST(char *, malloc(w.n + 1));
        if (!out) return NULL;
        w.buf = out; w.cap = w.n; w.n = 0;
        r.i = tpl;
        lfm2__jr_string(&r, LFM2__JV_DUMPS, 1);
        out[w.n] = 0;
        return out;
    }
}

LFM2_API lfm2_result lfm2_chat_template_load_dir(const char *dir, lfm2_chat_template *out, lfm2_error *err) {
    char *text = NULL, *tpl;
    size_t n = 0;
    int r;
    if (!out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_template_load_dir: out is NULL");
    *out = LFM2_CHAT_TEMPLATE_UNKNOWN;
    if (!dir) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_template_load_dir: dir is NULL");
    r = lfm2__chat_read(dir, "chat_template.jinja", &text, &n, err);
    if (r < 0) return err ? err->code : LFM2_ERR_IO;
    if (r > 0) {
        *out = lfm2_chat_template_detect(text, n);
        free(text);
        if (*out == LFM2_CHAT_TEMPLATE_UNKNOWN)
            return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "%s/chat_template.jinja: not one of the LFM2 chat templates lfm2.h knows "
                              "(lfm2, lfm2-tools, lfm2.5): choose one explicitly", dir);
        return LFM2_OK;
    }
    r = lfm2__chat_read(dir, "tokenizer_config.json", &text, &n, err);
    if (r < 0) return err ? err->code : LFM2_ERR_IO;
    if (r == 0) return lfm2__fail(err, LFM2_ERR_IO, "%s: no chat template (neither chat_template.jinja nor tokenizer_config.json)", dir);
    tpl = lfm2__chat_template_from_config(text, n);
    free(text);
    if (!tpl) return lfm2__fail(err, LFM2_ERR_IO, "%s/tokenizer_config.json: no chat_template (and no chat_template.jinja)", dir);
    *out = lfm2_chat_template_detect(tpl, strlen(tpl));
    free(tpl);
    if (*out == LFM2_CHAT_TEMPLATE_UNKNOWN)
        return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "%s/tokenizer_config.json: its chat_template is not one of the LFM2 chat "
                          "templates lfm2.h knows (lfm2, lfm2-tools, lfm2.5): choose one explicitly", dir);
    return LFM2_OK;
}
#endif

LFM2_API lfm2_result lfm2_chat_render(const lfm2_chat *chat, char *buf, size_t cap, size_t *n_out, lfm2_error *err) {
    lfm2__cw w;
    if (!n_out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_render: n_out is NULL");
    *n_out = 0;
    if (!chat || (cap > 0 && !buf)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_render: chat NULL, or buf NULL with cap > 0");
    memset(&w, 0, sizeof w);
    w.mode = LFM2__CW_RENDER;
    w.buf = buf;
    w.cap = cap;
    w.err = err;
    lfm2__chat_run(&w, chat);
    if (w.rc != LFM2_OK) return w.rc;
    *n_out = w.n;
    if (w.n > cap && buf) return lfm2__fail(err, LFM2_ERR_BUFFER_TOO_SMALL, "lfm2_chat_render: %llu bytes needed", (unsigned long long)w.n);
    return LFM2_OK;
}

LFM2_API lfm2_result lfm2_chat_tokenize(const lfm2_model *m, const lfm2_chat *chat, lfm2_token *out, int32_t cap, int32_t *n_out,
                                        lfm2_error *err) {
    lfm2__cw w;
    const struct lfm2__tokenizer *t;
    size_t len, tail;
    int64_t bound;
    if (!n_out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_tokenize: n_out is NULL");
    *n_out = 0;
    if (!m || !chat || cap < 0 || (cap > 0 && !out)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_tokenize: bad arguments");
    t = lfm2__model_tokenizer(m);
    if (!t) return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "lfm2_chat_tokenize: the model was loaded without a tokenizer");
    /* pass 0: the text's size */
    memset(&w, 0, sizeof w);
    w.err = err;
    lfm2__chat_run(&w, chat);
    if (w.rc != LFM2_OK) return w.rc;
    len = w.n;
    tail = (len + sizeof(lfm2_token) - 1) / sizeof(lfm2_token);
    bound = LFM2__CAST(int64_t, len) + LFM2__CAST(int64_t, tail) + 1;
    if (bound > INT32_MAX) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_chat_tokenize: the conversation is too long (%llu bytes)", (unsigned long long)len);
    if (!out && cap == 0) { *n_out = LFM2__CAST(int32_t, bound); return LFM2_OK; }
    if (LFM2__CAST(size_t, cap) < tail + 1) {
        *n_out = LFM2__CAST(int32_t, bound);
        return lfm2__fail(err, LFM2_ERR_BUFFER_TOO_SMALL, "lfm2_chat_tokenize: %d ids of room needed", (int)bound);
    }
    /* pass 1: the text into the end of out */
    {
        char *text = LFM2__CAST(char *, LFM2__CAST(void *, out + (LFM2__CAST(size_t, cap) - tail)));
        memset(&w, 0, sizeof w);
        w.err = err;
        w.buf = text;
        w.cap = len;
        lfm2__chat_run(&w, chat);
        if (w.rc != LFM2_OK || w.n != len) return w.rc != LFM2_OK ? w.rc : LFM2_ERR_INVALID_ARG;
        /* pass 2: markers -> their ids, the text between them tokenized as ordinary text */
        memset(&w, 0, sizeof w);
        w.mode = LFM2__CW_TOKENIZE;
        w.err = err;
        w.t = t;
        w.text = text;
        w.out = out;
        w.room = LFM2__CAST(int32_t, LFM2__CAST(size_t, cap) - tail);
        lfm2__chat_run(&w, chat);
        if (w.rc == LFM2_OK) lfm2__cw_flush_stretch(&w);
        if (w.rc != LFM2_OK) return w.rc;
    }
    if (w.short_buf) {
        int64_t need = w.need + LFM2__CAST(int64_t, tail);
        *n_out = need > INT32_MAX ? INT32_MAX : LFM2__CAST(int32_t, need);
        return lfm2__fail(err, LFM2_ERR_BUFFER_TOO_SMALL, "lfm2_chat_tokenize: %d ids of room needed", (int)*n_out);
    }
    *n_out = w.n_ids;
    return LFM2_OK;
}

LFM2_API lfm2_result lfm2_tool_calls_parse(const char *text, size_t len, lfm2_tool_call *calls, int32_t max_calls, int32_t *n_calls,
                                           char *buf, size_t cap, size_t *n_out, size_t *err_offset, lfm2_error *err) {
    lfm2__cw w;
    lfm2_result rc;
    int32_t k, nc = 0;
    if (err_offset) *err_offset = 0;
    if (!n_calls || !n_out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_tool_calls_parse: n_calls / n_out NULL");
    *n_calls = 0;
    *n_out = 0;
    if ((!text && len) || (cap > 0 && !buf) || max_calls < 0 || (max_calls > 0 && !calls))
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_tool_calls_parse: bad arguments");
    memset(&w, 0, sizeof w);
    w.buf = buf;
    w.cap = cap;
    rc = lfm2__tool_calls_impl(text ? text : "", len, calls, max_calls, &nc, &w, err_offset, err);
    if (rc != LFM2_OK) return rc;
    *n_calls = nc;
    *n_out = w.n;
    if ((buf && w.n > cap) || (calls && nc > max_calls) || (!buf && cap == 0 && nc > 0 && calls)) {
        return lfm2__fail(err, LFM2_ERR_BUFFER_TOO_SMALL, "lfm2_tool_calls_parse: %d calls and %llu bytes needed", (int)nc, (unsigned long long)w.n);
    }
    if (!buf || (calls == NULL && nc > 0 && max_calls == 0 && buf == NULL)) return LFM2_OK; /* size query */
    { /* offsets -> pointers: name NUL {args} NUL, one call after another */
        size_t off = 0;
        for (k = 0; k < nc && k < max_calls; k++) {
            size_t nl = calls[k].name_len, al = calls[k].arguments_len;
            calls[k].name = buf + off;
            calls[k].arguments = buf + off + nl + 1;
            off += nl + 1 + al + 1;
        }
    }
    return LFM2_OK;
}

LFM2_API void lfm2_chat_splitter_init(lfm2_chat_splitter *s, int in_reasoning) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->channel = in_reasoning ? LFM2_CHAT_REASONING : LFM2_CHAT_CONTENT;
}

LFM2_API lfm2_result lfm2_chat_splitter_push(lfm2_chat_splitter *s, const char *piece, size_t len, lfm2_chat_emit_fn emit, void *user) {
    size_t i = 0;
    if (!s || !emit || (!piece && len) || s->channel < 0 || s->channel > 2 || s->n_held < 0 || s->n_held >= LFM2__CAST(int32_t, sizeof s->held))
        return LFM2_ERR_INVALID_ARG;
    while (i < len) {
        if (s->n_held > 0) { /* a marker may be starting: decide byte by byte */
            int which = 0, r;
            if (piece[i] == '<') { lfm2__split_emit_held(s, emit, user); continue; } /* markers hold '<' only first */
            s->held[s->n_held++] = piece[i++];
            r = lfm2__split_match(s, &which);
            if (r == 2) {
                const char *mk = lfm2__split_marks[s->channel][which];
                emit(user, LFM2_CHAT_MARKER, s->held, LFM2__CAST(size_t, s->n_held));
                s->n_held = 0;
                s->channel = (s->channel == LFM2_CHAT_CONTENT) ? (mk[1] == 't' ? LFM2_CHAT_REASONING : LFM2_CHAT_TOOL_CALL) : LFM2_CHAT_CONTENT;
            } else if (r == 0) lfm2__split_emit_held(s, emit, user);
        } else {
            const char *lt = LFM2__CAST(const char *, memchr(piece + i, '<', len - i));
            size_t j = lt ? LFM2__CAST(size_t, lt - piece) : len;
            if (j > i) emit(user, s->channel, piece + i, j - i);
            if (!lt) break;
            s->held[0] = '<';
            s->n_held = 1;
            i = j + 1;
        }
    }
    return LFM2_OK;
}

LFM2_API lfm2_result lfm2_chat_splitter_flush(lfm2_chat_splitter *s, lfm2_chat_emit_fn emit, void *user) {
    if (!s || !emit || s->channel < 0 || s->channel > 2 || s->n_held < 0 || s->n_held >= LFM2__CAST(int32_t, sizeof s->held))
        return LFM2_ERR_INVALID_ARG;
    lfm2__split_emit_held(s, emit, user);
    s->channel = LFM2_CHAT_CONTENT;
    return LFM2_OK;
}

/* 1 if the valid JSON string at r->s[at] (its opening quote) decodes to the ASCII text key
   ("top_k" and "top\u005fk" are one key, as json.loads reads them). */
static int lfm2__jr_key_is(const lfm2__jr *r, size_t at, const char *key) {
    lfm2__jr x = *r;
    x.w = NULL;
    x.i = at + 1;
    x.bad = 0;
    for (;;) {
        uint32_t c = 0;
        int k = lfm2__jr_strchar(&x, &c);
        if (k < 0) return 0;
        if (k == 0) return *key == 0;
        if (*key == 0 || c != LFM2__CAST(unsigned char, *key)) return 0;
        key++;
    }
}
/* The number or boolean value of a top-level key of a JSON object text (the last of keys given
   twice, as Python; keys compared decoded): 1 if present (null: absent), 0 if not; *bad = 1 on
   malformed JSON (text after the object included), 2 when the key's value is neither a number
   nor true / false (a string, a container, a number too long to read). */
static int lfm2__genc_get(const char *json, size_t len, const char *key, double *num, int *is_bool, int *bad) {
    lfm2__jr r;
    int found = 0;
    r.s = json; r.len = len; r.i = 0; r.w = NULL; r.what = NULL; r.bad = 0;
    lfm2__jr_ws(&r);
    if (r.i >= len || json[r.i] != '{') { *bad = 1; return 0; }
    r.i++;
    lfm2__jr_ws(&r);
    if (r.i < len && json[r.i] == '}') {
        r.i++;
        lfm2__jr_ws(&r);
        if (r.i != len) *bad = 1;
        return 0;
    }
    for (;;) {
        size_t k0;
        int hit;
        lfm2__jr_ws(&r);
        if (r.bad || r.i >= len || json[r.i] != '"') { *bad = 1; return 0; }
        k0 = r.i;
        lfm2__jr_string(&r, LFM2__JV_SKIP, 0);
        hit = !r.bad && lfm2__jr_key_is(&r, k0, key);
        lfm2__jr_ws(&r);
        if (r.bad || r.i >= len || json[r.i] != ':') { *bad = 1; return 0; }
        r.i++;
        lfm2__jr_ws(&r);
        if (hit) {
            if (len - r.i >= 4 && memcmp(json + r.i, "true", 4) == 0) { *num = 1; *is_bool = 1; found = 1; }
            else if (len - r.i >= 5 && memcmp(json + r.i, "false", 5) == 0) { *num = 0; *is_bool = 1; found = 1; }
            else if (len - r.i >= 4 && memcmp(json + r.i, "null", 4) == 0) found = 0;
            else if (r.i < len && (json[r.i] == '-' || (json[r.i] >= '0' && json[r.i] <= '9'))) {
                char tmp[64];
                lfm2__jr q = r;
                size_t n;
                lfm2__jr_number(&q, LFM2__JV_SKIP);
                n = q.i - r.i;
                if (q.bad || n >= sizeof tmp) { *bad = 2; return 0; }
                memcpy(tmp, json + r.i, n);
                tmp[n] = 0;
                *num = strtod(tmp, NULL);
                *is_bool = 0;
                found = 1;
            } else { *bad = 2; return 0; } /* a string or container where a number belongs */
        }
        lfm2__jr_value(&r, LFM2__JV_SKIP, 0);
        if (r.bad) { *bad = 1; return 0; }
        lfm2__jr_ws(&r);
        if (r.i < len && json[r.i] == ',') { r.i++; continue; }
        if (r.i < len && json[r.i] == '}') {
            r.i++;
            lfm2__jr_ws(&r);
            if (r.i != len) { *bad = 1; return 0; }
            return found;
        }
        *bad = 1;
        return 0;
    }
}

LFM2_API lfm2_result lfm2_sampler_params_from_generation_config(const char *json, size_t len, lfm2_sampler_params *out,
                                                                int *found, lfm2_error *err) {
    static const char *const keys[6] = { "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty" };
    double v[6];
    int has[6], isb[6], bad = 0, any = 0, k;
    lfm2_sampler_params p;
    if (found) *found = 0;
    if (!out || (!json && len)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_sampler_params_from_generation_config: bad arguments");
    *out = lfm2_sampler_default_params();
    if (!json) return LFM2_OK;
    for (k = 0; k < 6; k++) {
        v[k] = 0;
        isb[k] = 0;
        has[k] = lfm2__genc_get(json, len, keys[k], &v[k], &isb[k], &bad);
        if (bad == 2) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "generation_config.json: %s is not %s", keys[k], k == 0 ? "true or false" : "a number");
        if (bad) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "generation_config.json: malformed JSON (not one object of keys and values)");
        if (has[k] && (k == 0) != (isb[k] != 0)) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "generation_config.json: %s has the wrong type", keys[k]);
        any |= has[k];
    }
    if (!any) return LFM2_OK;
    /* ranges checked on the doubles, before any conversion (1e300 does not fit a float) */
    for (k = 1; k < 6; k++) {
        static const char *const range[6] = { "", "in [0, FLT_MAX]", "an integer in [0, 2^31)", "in [0, 1]", "in [0, 1]", "in (0, FLT_MAX]" };
        double x = v[k];
        int ok = k == 1 ? (x >= 0 && x <= FLT_MAX) : k == 2 ? (x >= 0 && x <= INT32_MAX && x == floor(x)) : k == 5 ? (x > 0 && x <= FLT_MAX) : (x >= 0 && x <= 1);
        if (has[k] && !ok) return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "generation_config.json: %s = %g is out of range (%s)", keys[k], x, range[k]);
    }
    memset(&p, 0, sizeof p);
    p.temperature = has[1] ? LFM2__CAST(float, v[1]) : 1.0f;
    p.top_k = has[2] ? LFM2__CAST(int32_t, v[2]) : LFM2_SAMPLER_DEFAULT_TOP_K;
    p.top_p = has[3] ? LFM2__CAST(float, v[3]) : 1.0f;
    p.min_p = has[4] ? LFM2__CAST(float, v[4]) : 0.0f;
    p.repetition_penalty = has[5] ? LFM2__CAST(float, v[5]) : 1.0f;
    if (p.top_p >= 1.0f) p.top_p = 0; /* 1 = off */
    if (!(has[0] && v[0] != 0)) p.temperature = 0; /* do_sample false (transformers' default): greedy */
    *out = p;
    if (found) *found = 1;
    return LFM2_OK;
}

/* >>sampler --------------------------------------------------------------------------------- */
/* The processing follows transformers' LogitsProcessor classes step by step, in float32 like
   generate() (which copies the last logits to fp32), so that the set of removed ids matches:
     RepetitionPenalty  gather/where/scatter: each distinct history id changed once
     Temperature        scores / T
     TopK               remove scores < (k-th largest score)
     TopP               sort ascending, softmax, cumsum; remove cumsum <= 1 - top_p, keep the last
     MinP               p = softmax; remove p < min_p * max(p), keep the top-1
   Top-p only looks at the ids still alive (finite), which gives the same result: removed ids have
   probability 0 and sit at the front of an ascending sort. */

/* xoshiro256** seeded through splitmix64 (both by Blackman and Vigna, public domain). Only
   64-bit integer arithmetic: the same stream on every platform and compiler. */
typedef struct lfm2__rng { uint64_t s[4]; } lfm2__rng;

static uint64_t lfm2__splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static void lfm2__rng_seed(lfm2__rng *r, uint64_t seed) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = lfm2__splitmix64(&seed);
}
static uint64_t lfm2__rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t lfm2__rng_next(lfm2__rng *r) {
    uint64_t *s = r->s;
    uint64_t result = lfm2__rotl64(s[1] * 5u, 7) * 9u;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = lfm2__rotl64(s[3], 45);
    return result;
}
/* uniform double in [0, 1) with 53 random bits */
static double lfm2__rng_uniform(lfm2__rng *r) {
    return LFM2__CAST(double, lfm2__rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct lfm2__scored { float v; int32_t id; } lfm2__scored;

struct lfm2_sampler {
    lfm2_allocator alloc;
    lfm2_sampler_params p;
    int32_t n_vocab;
    lfm2__rng rng;
    uint8_t *seen;          /* [n_vocab] 1 = id in the history */
    int32_t *hist;          /* [n_vocab] the distinct history ids, in arrival order */
    int32_t n_hist;
    float *work;            /* [n_vocab] processed scores of lfm2_sampler_sample */
    lfm2__scored *sorted;   /* [n_vocab] survivors for top-p / the top-k heap */
    char *text;             /* lfm2_generate's text buffer for tokens longer than its stack
                               buffer; grown rarely, freed with the sampler */
    size_t text_cap;
};

LFM2_API lfm2_sampler_params lfm2_sampler_default_params(void) {
    lfm2_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.3f;
    p.top_k = LFM2_SAMPLER_DEFAULT_TOP_K;
    p.top_p = 1.0f;
    p.min_p = 0.15f;
    p.repetition_penalty = 1.05f;
    p.seed = 0;
    return p;
}

static int lfm2__sampler_params_ok(const lfm2_sampler_params *p) {
    /* written so that NaN fails every test */
    if (!(p->temperature >= 0.0f && p->temperature <= FLT_MAX)) return 0;
    if (p->top_k < 0) return 0;
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f)) return 0;
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) return 0;
    if (!(p->repetition_penalty >= 0.0f && p->repetition_penalty <= FLT_MAX)) return 0;
    return 1;
}

LFM2_API lfm2_result lfm2_sampler_create(const lfm2_sampler_params *params, int32_t vocab_size,
                                         const lfm2_allocator *allocator, lfm2_sampler **out) {
    lfm2_sampler *s;
    lfm2_allocator a;
    size_t V;
    if (!out) return LFM2_ERR_INVALID_ARG;
    *out = NULL;
    if (vocab_size < 1) return LFM2_ERR_INVALID_ARG;
    if (params && !lfm2__sampler_params_ok(params)) return LFM2_ERR_INVALID_ARG;
    memset(&a, 0, sizeof a);
    if (allocator) {
        if ((allocator->alloc == NULL) != (allocator->free == NULL)) return LFM2_ERR_INVALID_ARG;
        a = *allocator;
    }
    V = LFM2__CAST(size_t, vocab_size);
    if (V > SIZE_MAX / sizeof(lfm2__scored)) return LFM2_ERR_OUT_OF_MEMORY;
    s = LFM2__CAST(lfm2_sampler *, lfm2__calloc(&a, sizeof *s));
    if (!s) return LFM2_ERR_OUT_OF_MEMORY;
    s->alloc = a;
    s->n_vocab = vocab_size;
    if (params) s->p = *params; /* else all zero: greedy */
    lfm2__rng_seed(&s->rng, s->p.seed);
    s->seen = LFM2__CAST(uint8_t *, lfm2__calloc(&a, V));
    s->hist = LFM2__CAST(int32_t *, lfm2__malloc(&a, V * sizeof(int32_t)));
    s->work = LFM2__CAST(float *, lfm2__malloc(&a, V * sizeof(float)));
    s->sorted = LFM2__CAST(lfm2__scored *, lfm2__malloc(&a, V * sizeof(lfm2__scored)));
    if (!s->seen || !s->hist || !s->work || !s->sorted) {
        lfm2_sampler_free(s);
        return LFM2_ERR_OUT_OF_MEMORY;
    }
    *out = s;
    return LFM2_OK;
}

LFM2_API void lfm2_sampler_free(lfm2_sampler *s) {
    lfm2_allocator a;
    if (!s) return;
    a = s->alloc;
    lfm2__free(&a, s->seen);
    lfm2__free(&a, s->hist);
    lfm2__free(&a, s->work);
    lfm2__free(&a, s->sorted);
    lfm2__free(&a, s->text);
    lfm2__free(&a, s);
}

LFM2_API lfm2_result lfm2_sampler_set_params(lfm2_sampler *s, const lfm2_sampler_params *params) {
    if (!s || !params || !lfm2__sampler_params_ok(params)) return LFM2_ERR_INVALID_ARG;
    s->p = *params;
    lfm2__rng_seed(&s->rng, params->seed);
    return LFM2_OK;
}

LFM2_API void lfm2_sampler_seed(lfm2_sampler *s, uint64_t seed) {
    if (!s) return;
    s->p.seed = seed;
    lfm2__rng_seed(&s->rng, seed);
}

LFM2_API lfm2_result lfm2_sampler_accept(lfm2_sampler *s, const lfm2_token *ids, int32_t n) {
    int32_t i;
    if (!s || n < 0 || (n > 0 && !ids)) return LFM2_ERR_INVALID_ARG;
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->n_vocab) return LFM2_ERR_INVALID_ARG;
    for (i = 0; i < n; i++) {
        if (s->seen[ids[i]]) continue;
        s->seen[ids[i]] = 1;
        s->hist[s->n_hist++] = ids[i];
    }
    return LFM2_OK;
}

LFM2_API void lfm2_sampler_reset(lfm2_sampler *s) {
    int32_t i;
    if (!s) return;
    for (i = 0; i < s->n_hist; i++) s->seen[s->hist[i]] = 0;
    s->n_hist = 0;
}

LFM2_API int32_t lfm2_sampler_history_size(const lfm2_sampler *s) { return s ? s->n_hist : 0; }

/* total order used by top-p: ascending score, ties by ascending id (a stable ascending sort) */
static int lfm2__scored_less(const lfm2__scored *a, const lfm2__scored *b) {
    return a->v < b->v || (a->v == b->v && a->id < b->id);
}
/* sift-down of a max-heap ordered by lfm2__scored_less */
static void lfm2__scored_sift(lfm2__scored *x, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        lfm2__scored t;
        if (c >= n) return;
        if (c + 1 < n && lfm2__scored_less(&x[c], &x[c + 1])) c++;
        if (!lfm2__scored_less(&x[i], &x[c])) return;
        t = x[i]; x[i] = x[c]; x[c] = t;
        i = c;
    }
}
/* k-th largest of z[0..n) (1 <= k <= n), with a min-heap of k entries in heap[]: O(n log k) */
static float lfm2__kth_largest(const float *z, int32_t n, int32_t k, lfm2__scored *heap) {
    int32_t i, m = 0;
    for (i = 0; i < n; i++) {
        float v = z[i];
        int32_t j;
        if (m < k) { /* push, sift up */
            j = m++;
            while (j > 0 && heap[(j - 1) / 2].v > v) { heap[j] = heap[(j - 1) / 2]; j = (j - 1) / 2; }
            heap[j].v = v;
        } else if (v > heap[0].v) { /* replace the minimum, sift down */
            j = 0;
            for (;;) {
                int32_t c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && heap[c + 1].v < heap[c].v) c++;
                if (!(heap[c].v < v)) break;
                heap[j] = heap[c];
                j = c;
            }
            heap[j].v = v;
        }
    }
    return heap[0].v;
}

static void lfm2__sampler_process(lfm2_sampler *s, const float *logits, float *z) {
    const lfm2_sampler_params *p = &s->p;
    const int32_t V = s->n_vocab;
    const float neg_inf = -HUGE_VALF;
    int32_t i;
    memcpy(z, logits, LFM2__CAST(size_t, V) * sizeof(float));

    /* RepetitionPenaltyLogitsProcessor: once per distinct id of the sequence */
    if (p->repetition_penalty > 0.0f && p->repetition_penalty != 1.0f) {
        const float rho = p->repetition_penalty;
        for (i = 0; i < s->n_hist; i++) {
            float v = z[s->hist[i]];
            z[s->hist[i]] = v < 0.0f ? v * rho : v / rho;
        }
    }
    if (p->temperature <= 0.0f) return; /* greedy: processors only, no warpers */

    /* TemperatureLogitsWarper */
    if (p->temperature != 1.0f) {
        const float t = p->temperature;
        for (i = 0; i < V; i++) z[i] = z[i] / t;
    }

    /* TopKLogitsWarper: threshold = k-th largest score, ties kept */
    if (p->top_k > 0 && p->top_k < V) {
        float kth = lfm2__kth_largest(z, V, p->top_k, s->sorted);
        for (i = 0; i < V; i++) if (z[i] < kth) z[i] = neg_inf;
    }

    /* TopPLogitsWarper. transformers sorts ascending and removes ids whose cumulative probability
       (torch accumulates cumsum in double on the CPU, then stores float) is <= 1 - top_p,
       always keeping the largest. The cumsum at an id equals total - (mass of the ids above it),
       so the ids are taken from the top of a max-heap until the cut: O(n + kept * log n)
       instead of a full sort. Order: descending score, ties by descending id (the reverse of a
       stable ascending sort). */
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        lfm2__scored *x = s->sorted;
        size_t n = 0, j, end;
        float mx, inv, thr = LFM2__CAST(float, 1.0 - LFM2__CAST(double, p->top_p));
        double sum = 0.0, total = 0.0, above = 0.0;
        for (i = 0; i < V; i++)
            if (z[i] > neg_inf) { x[n].v = z[i]; x[n].id = i; n++; }
        if (n > 1) {
            for (j = n / 2; j-- > 0;) lfm2__scored_sift(x, j, n); /* max-heap */
            mx = x[0].v;
            for (j = 0; j < n; j++) sum += LFM2__CAST(double, expf(x[j].v - mx));
            inv = LFM2__CAST(float, 1.0 / sum);
            for (j = 0; j < n; j++) total += LFM2__CAST(double, expf(x[j].v - mx) * inv);
            for (end = n; end > 0; end--) {
                if (end < n && LFM2__CAST(float, total - above) <= thr) break; /* the top one stays */
                above += LFM2__CAST(double, expf(x[0].v - mx) * inv);
                x[0] = x[end - 1];
                lfm2__scored_sift(x, 0, end - 1);
            }
            for (j = 0; j < end; j++) z[x[j].id] = neg_inf; /* everything left in the heap */
        }
    }

    /* MinPLogitsWarper: p < min_p * p_max removed; the top-1 always kept. With p_i = e_i / S and
       p_max = 1 / S the test is e_i < min_p, i.e. z_i - z_max < ln(min_p): done in the log
       domain without any exp, unless some id lies so close to the cut (1e-4, about 100 times the
       rounding of transformers' float32 softmax) that rounding could decide; then the float32
       computation itself is repeated. */
    if (p->min_p > 0.0f) {
        float mx = neg_inf, lnm = logf(p->min_p);
        const float band = 1e-4f;
        int32_t top = -1, near_cut = 0;
        for (i = 0; i < V; i++) if (z[i] > mx) { mx = z[i]; top = i; }
        if (top >= 0) {
            for (i = 0; i < V; i++) {
                float d = z[i] - mx;
                if (i != top && d >= lnm - band && d <= lnm + band) { near_cut = 1; break; }
            }
            if (!near_cut) {
                for (i = 0; i < V; i++) if (i != top && z[i] - mx < lnm) z[i] = neg_inf;
            } else {
                float inv, thr;
                double sum = 0.0;
                for (i = 0; i < V; i++) if (z[i] > neg_inf) sum += LFM2__CAST(double, expf(z[i] - mx));
                inv = LFM2__CAST(float, 1.0 / sum);
                thr = p->min_p * inv; /* min_p * max(p), max(p) = exp(0) / sum */
                for (i = 0; i < V; i++)
                    if (i != top && z[i] > neg_inf && expf(z[i] - mx) * inv < thr) z[i] = neg_inf;
            }
        }
    }
}

LFM2_API lfm2_result lfm2_sampler_process(lfm2_sampler *s, const float *logits, float *out) {
    if (!s || !logits || !out || logits == out) return LFM2_ERR_INVALID_ARG;
    lfm2__sampler_process(s, logits, out);
    return LFM2_OK;
}

LFM2_API lfm2_result lfm2_sampler_sample(lfm2_sampler *s, const float *logits, lfm2_token *out) {
    float *z, mx;
    int32_t i, V, top = 0, last = -1;
    double sum = 0.0, u, cum = 0.0;
    if (!s || !logits || !out) return LFM2_ERR_INVALID_ARG;
    *out = -1;
    z = s->work;
    V = s->n_vocab;
    for (i = 0; i < V; i++) if (logits[i] != logits[i]) return LFM2_ERR_BAD_LOGITS; /* NaN */
    lfm2__sampler_process(s, logits, z);
    mx = z[0];
    for (i = 1; i < V; i++) if (z[i] > mx) { mx = z[i]; top = i; } /* first maximum */
    if (!(mx > -HUGE_VALF)) return LFM2_ERR_BAD_LOGITS;               /* all -inf: nothing left */
    if (s->p.temperature <= 0.0f) { *out = top; return LFM2_OK; }
    if (!(mx < HUGE_VALF)) return LFM2_ERR_BAD_LOGITS;                /* +inf: softmax undefined */
    /* softmax of the survivors, then the inverse-CDF draw */
    for (i = 0; i < V; i++) {
        if (z[i] > -HUGE_VALF) { z[i] = expf(z[i] - mx); sum += LFM2__CAST(double, z[i]); }
        else z[i] = 0.0f;
    }
    if (!(sum > 0.0 && sum <= DBL_MAX)) return LFM2_ERR_BAD_LOGITS; /* cannot happen: mx gives 1 */
    u = lfm2__rng_uniform(&s->rng) * sum;
    for (i = 0; i < V; i++) {
        if (z[i] <= 0.0f) continue;
        cum += LFM2__CAST(double, z[i]);
        last = i;
        if (u < cum) break;
    }
    *out = last >= 0 ? last : top;
    return LFM2_OK;
}

/* >>generate -------------------------------------------------------------------------------- */

#define LFM2__GEN_TEXT_STACK 1024

/* Streams token t's text through the detokenizer into a stack buffer, or into the sampler's
   grow-only buffer for a piece longer than that. *text receives the bytes. */
static lfm2_result lfm2__gen_text(const lfm2_model *m, lfm2_sampler *s, lfm2_detok_stream *st, lfm2_token t,
                                  char *stack_buf, const char **text, size_t *len) {
    lfm2_result rc;
    *text = stack_buf;
    *len = 0;
    if (!lfm2__model_tokenizer(m)) return LFM2_OK; /* no tokenizer.json: ids only, no text */
    rc = lfm2_detok_stream_push(m, st, t, 0, stack_buf, LFM2__GEN_TEXT_STACK, len);
    if (rc == LFM2_ERR_BUFFER_TOO_SMALL) {
        if (*len > s->text_cap) {
            char *nb = LFM2__CAST(char *, lfm2__malloc(&s->alloc, *len));
            if (!nb) return LFM2_ERR_OUT_OF_MEMORY;
            lfm2__free(&s->alloc, s->text);
            s->text = nb;
            s->text_cap = *len;
        }
        rc = lfm2_detok_stream_push(m, st, t, 0, s->text, s->text_cap, len);
        *text = s->text;
    }
    return rc;
}

/* The message of a sampling failure: what the logits of the last position hold. */
static lfm2_result lfm2__bad_logits(lfm2_error *err, lfm2_result rc, const float *logits, int32_t V, int32_t pos) {
    int32_t i, nan = 0, pinf = 0, ninf = 0;
    if (rc != LFM2_ERR_BAD_LOGITS) return lfm2__fail(err, rc, "lfm2_generate: sampling failed");
    for (i = 0; i < V; i++) {
        if (logits[i] != logits[i]) nan++;
        else if (logits[i] == HUGE_VALF) pinf++;
        else if (logits[i] == -HUGE_VALF) ninf++;
    }
    return lfm2__fail(err, rc, "lfm2_generate: cannot sample the token at position %d: of %d logits %d are NaN, %d +inf, %d -inf%s",
                      (int)pos, (int)V, (int)nan, (int)pinf, (int)ninf,
                      nan ? " (NaN weights or an overflow in the model)" : ninf == V ? " (nothing to sample)" : " (+inf cannot be sampled)");
}

LFM2_API lfm2_result lfm2_generate(lfm2_context *c, lfm2_sampler *s, const lfm2_token *prompt,
                                   int32_t n_prompt, const lfm2_generate_params *params,
                                   lfm2_generate_result *res) {
    lfm2_generate_params gp;
    lfm2_generate_result r;
    lfm2_detok_stream st;
    const lfm2_model *m;
    const float *logits = NULL;
    char buf[LFM2__GEN_TEXT_STACK];
    int32_t pos, n_ctx;
    lfm2_result rc = LFM2_OK;

    memset(&gp, 0, sizeof gp);
    if (params) gp = *params;
    r.n_prompt = 0;
    r.n_generated = 0;
    r.stop_token = -1;
    r.stop_reason = LFM2_STOP_NONE;
    if (res) *res = r;
    memset(&st, 0, sizeof st);
    if (!c || !s) return lfm2__fail(gp.error, LFM2_ERR_INVALID_ARG, "lfm2_generate: NULL context or sampler");
    if (!prompt || n_prompt < 1)
        return lfm2__fail(gp.error, LFM2_ERR_INVALID_ARG, "lfm2_generate: the prompt needs at least one token");
    if (gp.max_tokens < 0) return lfm2__fail(gp.error, LFM2_ERR_INVALID_ARG, "lfm2_generate: max_tokens < 0");
    m = lfm2_context_model(c);
    if (!m || lfm2_model_config(m)->vocab_size != s->n_vocab)
        return lfm2__fail(gp.error, LFM2_ERR_INVALID_ARG, "lfm2_generate: the sampler was made for %d ids, the model has %d",
                          (int)s->n_vocab, m ? (int)lfm2_model_config(m)->vocab_size : 0);
    pos = lfm2_context_pos(c);
    n_ctx = lfm2_context_n_ctx(c);
    if (n_prompt > n_ctx - pos)
        return lfm2__fail(gp.error, LFM2_ERR_CONTEXT_FULL, "context full: %d new tokens do not fit (%d of %d positions used)",
                          (int)n_prompt, (int)pos, (int)n_ctx);
    if (gp.should_abort && gp.should_abort(gp.user))
        return lfm2__fail(gp.error, LFM2_ERR_ABORTED, "generation aborted");

    /* prefill: the ids are checked by the decode, so the history only gets valid ids. An abort
       keeps the chunks decoded before it: they are in the context and in the history. */
    rc = lfm2__generate_decode(c, prompt, n_prompt, 1, gp.should_abort, gp.user, &logits);
    if (rc == LFM2_ERR_ABORTED) {
        r.n_prompt = lfm2_context_pos(c) - pos;
        lfm2_sampler_accept(s, prompt, r.n_prompt);
        if (res) *res = r;
        return lfm2__fail(gp.error, rc, "%s", lfm2_context_error(c));
    }
    if (rc != LFM2_OK) return lfm2__fail(gp.error, rc, "%s", lfm2_context_error(c));
    lfm2_sampler_accept(s, prompt, n_prompt);
    r.n_prompt = n_prompt;

    for (;;) {
        lfm2_token t = -1;
        const char *text = buf;
        size_t len = 0;
        int stop;
        rc = lfm2_sampler_sample(s, logits, &t);
        if (rc != LFM2_OK) { rc = lfm2__bad_logits(gp.error, rc, logits, s->n_vocab, lfm2_context_pos(c)); break; }
        if (lfm2_token_is_eog(m, t)) { r.stop_token = t; r.stop_reason = LFM2_STOP_EOG; break; }
        if (lfm2_context_pos(c) >= n_ctx) {
            rc = lfm2__fail(gp.error, LFM2_ERR_CONTEXT_FULL, "context full: all %d positions used", (int)n_ctx);
            break;
        }
        /* the text first (lowest latency), then the token goes into the context, so that every
           token the caller saw is in the cache whatever happens next */
        rc = lfm2__gen_text(m, s, &st, t, buf, &text, &len);
        if (rc != LFM2_OK) { rc = lfm2__fail(gp.error, rc, "lfm2_generate: cannot detokenize token %d", (int)t); break; }
        stop = gp.on_token ? gp.on_token(gp.user, t, text, len) : 0;
        rc = lfm2__generate_decode(c, &t, 1, 0, NULL, NULL, &logits);
        if (rc != LFM2_OK) { rc = lfm2__fail(gp.error, rc, "%s", lfm2_context_error(c)); break; }
        lfm2_sampler_accept(s, &t, 1);
        r.n_generated++;
        if (stop) { r.stop_reason = LFM2_STOP_CALLBACK; break; }
        if (gp.max_tokens > 0 && r.n_generated >= gp.max_tokens) { r.stop_reason = LFM2_STOP_MAX_TOKENS; break; }
        if (gp.should_abort && gp.should_abort(gp.user)) {
            rc = lfm2__fail(gp.error, LFM2_ERR_ABORTED, "generation aborted");
            break;
        }
    }
    /* an unfinished UTF-8 character at the very end: hand over its bytes as they are */
    if (st.n_pending > 0) {
        size_t len = 0;
        if (lfm2_detok_stream_flush(&st, buf, sizeof buf, &len) == LFM2_OK && len > 0 && gp.on_token)
            gp.on_token(gp.user, -1, buf, len);
    }
    if (res) *res = r;
    return rc;
}

/* >>threads -------------------------------------------------------------------------------- */
/* The parallel steps of the library (see LFM2_THREADS_* at the top): lfm2__run(W, fn, arg, n)
   calls fn(arg, i) for i in [0, n) on the workers of W and returns when all are done. Backends:
   the calling thread alone, OpenMP, the built-in pool, or the caller's job system (hook). The
   tasks of a step never wait for each other, so every backend may run them in any order. */

enum { LFM2__RUN_SERIAL = 0, LFM2__RUN_OPENMP, LFM2__RUN_POOL, LFM2__RUN_HOOK };
#define LFM2__MAX_THREADS 512

/* atomics (GCC / Clang builtins, MSVC Interlocked functions), a CPU-friendly spin hint */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define LFM2__ALOAD(p) (_ReadWriteBarrier(), *(volatile long *)(p))
#define LFM2__ASTORE(p, v) (void)_InterlockedExchange(LFM2__CAST(volatile long *, p), (long)(v))
#define LFM2__AADD(p, v) (_InterlockedExchangeAdd(LFM2__CAST(volatile long *, p), (long)(v)) + (long)(v))
typedef long lfm2__aint;
#else
#define LFM2__ALOAD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define LFM2__ASTORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define LFM2__AADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)
typedef int32_t lfm2__aint;
#endif
static LFM2__INLINE void lfm2__cpu_relax(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __asm__ __volatile__("pause");
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    _mm_pause();
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__aarch64__) || defined(__arm__))
    __asm__ __volatile__("yield");
#endif
}

/* the CPUs this process can run on (1 when unknown) */
static int32_t lfm2__n_cpus(void) {
    long n = 1;
#if defined(LFM2__WIN32_THREADS)
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    n = LFM2__CAST(long, si.dwNumberOfProcessors);
#elif defined(LFM2__PTHREADS) && defined(_SC_NPROCESSORS_ONLN)
    n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    if (n < 1) n = 1;
    if (n > LFM2__MAX_THREADS) n = LFM2__MAX_THREADS;
    return LFM2__CAST(int32_t, n);
}

#if defined(LFM2__PTHREADS) || defined(LFM2__WIN32_THREADS)
#define LFM2__HAVE_POOL 1
/* The built-in pool: n_workers threads beside the caller. A step publishes fn / arg / n_tasks and
   bumps `gen`; worker w runs tasks w, w + nth, ... (the caller runs 0, nth, ...) and counts down
   `pending`. Workers spin on `gen` for a short while after a step (the next step of a forward
   pass comes within microseconds), then sleep on a condition variable; a step wakes them only
   when some are asleep. With more threads than CPUs nobody spins. */
#define LFM2__SPINS 20000   /* ~1 ms of pause instructions before a worker sleeps */
#if defined(LFM2__WIN32_THREADS)
typedef HANDLE lfm2__thread;
typedef SRWLOCK lfm2__mutex;
typedef CONDITION_VARIABLE lfm2__cond;
#else
typedef pthread_t lfm2__thread;
typedef pthread_mutex_t lfm2__mutex;
typedef pthread_cond_t lfm2__cond;
#endif
typedef struct lfm2__pool lfm2__pool;
typedef struct lfm2__pool_worker { lfm2__pool *pool; int32_t id; } lfm2__pool_worker;
struct lfm2__pool {
    int32_t n_threads;           /* the caller + the workers (fixed before any worker starts) */
    int32_t n_workers, spin;     /* workers started so far (joined at the end) */
    lfm2__thread *th;
    lfm2__pool_worker *wk;
    lfm2__mutex mu;
    lfm2__cond cv;
    lfm2__aint gen, pending, sleepers, stop;
    lfm2_task_fn fn;             /* the current step (written before gen is bumped) */
    void *arg;
    int32_t n_tasks;
    lfm2_allocator alloc;
};
#if defined(LFM2__WIN32_THREADS)
static void lfm2__mu_init(lfm2__mutex *m) { InitializeSRWLock(m); }
static void lfm2__mu_free(lfm2__mutex *m) { (void)m; }
static void lfm2__mu_lock(lfm2__mutex *m) { AcquireSRWLockExclusive(m); }
static void lfm2__mu_unlock(lfm2__mutex *m) { ReleaseSRWLockExclusive(m); }
static void lfm2__cv_init(lfm2__cond *c) { InitializeConditionVariable(c); }
static void lfm2__cv_free(lfm2__cond *c) { (void)c; }
static void lfm2__cv_wait(lfm2__cond *c, lfm2__mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void lfm2__cv_wake_all(lfm2__cond *c) { WakeAllConditionVariable(c); }
static void lfm2__yield(void) { SwitchToThread(); }
#else
static void lfm2__mu_init(lfm2__mutex *m) { pthread_mutex_init(m, NULL); }
static void lfm2__mu_free(lfm2__mutex *m) { pthread_mutex_destroy(m); }
static void lfm2__mu_lock(lfm2__mutex *m) { pthread_mutex_lock(m); }
static void lfm2__mu_unlock(lfm2__mutex *m) { pthread_mutex_unlock(m); }
static void lfm2__cv_init(lfm2__cond *c) { pthread_cond_init(c, NULL); }
static void lfm2__cv_free(lfm2__cond *c) { pthread_cond_destroy(c); }
static void lfm2__cv_wait(lfm2__cond *c, lfm2__mutex *m) { pthread_cond_wait(c, m); }
static void lfm2__cv_wake_all(lfm2__cond *c) { pthread_cond_broadcast(c); }
static void lfm2__yield(void) { sched_yield(); }
#endif

static void lfm2__pool_worker_loop(lfm2__pool_worker *me) {
    lfm2__pool *p = me->pool;
    lfm2__aint seen = 0;
    int32_t nth = p->n_threads;
    for (;;) {
        lfm2__aint g = LFM2__ALOAD(&p->gen);
        int32_t i;
        for (i = 0; g == seen && i < p->spin; i++) { lfm2__cpu_relax(); g = LFM2__ALOAD(&p->gen); }
        if (g == seen) { /* sleep until the next step (checked again under the lock: no lost wake-up) */
            LFM2__AADD(&p->sleepers, 1);
            lfm2__mu_lock(&p->mu);
            while ((g = LFM2__ALOAD(&p->gen)) == seen) lfm2__cv_wait(&p->cv, &p->mu);
            lfm2__mu_unlock(&p->mu);
            LFM2__AADD(&p->sleepers, -1);
        }
        seen = g;
        if (LFM2__ALOAD(&p->stop)) break;
        for (i = me->id; i < p->n_tasks; i += nth) p->fn(p->arg, i);
        LFM2__AADD(&p->pending, -1);
    }
}
#if defined(LFM2__WIN32_THREADS)
static DWORD WINAPI lfm2__pool_main(LPVOID a) { lfm2__pool_worker_loop(LFM2__CAST(lfm2__pool_worker *, a)); return 0; }
#else
static void *lfm2__pool_main(void *a) { lfm2__pool_worker_loop(LFM2__CAST(lfm2__pool_worker *, a)); return NULL; }
#endif

static void lfm2__pool_free(lfm2__pool *p) {
    int32_t i;
    if (!p) return;
    LFM2__ASTORE(&p->stop, 1);
    lfm2__mu_lock(&p->mu);
    LFM2__AADD(&p->gen, 1);
    lfm2__cv_wake_all(&p->cv);
    lfm2__mu_unlock(&p->mu);
    for (i = 0; i < p->n_workers; i++) {
#if defined(LFM2__WIN32_THREADS)
        WaitForSingleObject(p->th[i], INFINITE);
        CloseHandle(p->th[i]);
#else
        pthread_join(p->th[i], NULL);
#endif
    }
    lfm2__cv_free(&p->cv);
    lfm2__mu_free(&p->mu);
    lfm2__free(&p->alloc, p->th);
    lfm2__free(&p->alloc, p->wk);
    lfm2__free(&p->alloc, p);
}
/* A pool of n_threads - 1 workers. LFM2_ERR_OUT_OF_MEMORY when a thread cannot be started. */
static lfm2_result lfm2__pool_new(int32_t n_threads, const lfm2_allocator *a, lfm2_error *err, lfm2__pool **out) {
    lfm2__pool *p = LFM2__CAST(lfm2__pool *, lfm2__calloc(a, sizeof *p));
    int32_t i, nw = n_threads - 1;
    *out = NULL;
    if (!p) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the thread pool");
    p->alloc = *a;
    p->th = LFM2__CAST(lfm2__thread *, lfm2__calloc(a, sizeof(lfm2__thread) * LFM2__CAST(size_t, nw)));
    p->wk = LFM2__CAST(lfm2__pool_worker *, lfm2__calloc(a, sizeof(lfm2__pool_worker) * LFM2__CAST(size_t, nw)));
    lfm2__mu_init(&p->mu);
    lfm2__cv_init(&p->cv);
    p->spin = (n_threads <= lfm2__n_cpus()) ? LFM2__SPINS : 0;
    p->n_threads = n_threads;
    if (!p->th || !p->wk) { lfm2__pool_free(p); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the thread pool"); }
    for (i = 0; i < nw; i++) {
        int ok;
        p->wk[i].pool = p;
        p->wk[i].id = i + 1;
#if defined(LFM2__WIN32_THREADS)
        p->th[i] = CreateThread(NULL, 0, lfm2__pool_main, &p->wk[i], 0, NULL);
        ok = p->th[i] != NULL;
#else
        ok = pthread_create(&p->th[i], NULL, lfm2__pool_main, &p->wk[i]) == 0;
#endif
        if (!ok) {
            lfm2__pool_free(p); /* stops the i workers started so far */
            return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "cannot start thread %d of %d of the thread pool", i + 2, n_threads);
        }
        p->n_workers = i + 1;
    }
    *out = p;
    return LFM2_OK;
}
static void lfm2__pool_run(lfm2__pool *p, lfm2_task_fn fn, void *arg, int32_t n) {
    int32_t i, nth = p->n_threads, spins = 0;
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n;
    LFM2__ASTORE(&p->pending, p->n_workers);
    LFM2__AADD(&p->gen, 1);
    if (LFM2__ALOAD(&p->sleepers) > 0) {
        lfm2__mu_lock(&p->mu);
        lfm2__cv_wake_all(&p->cv);
        lfm2__mu_unlock(&p->mu);
    }
    for (i = 0; i < n; i += nth) fn(arg, i);
    while (LFM2__ALOAD(&p->pending) > 0) {
        if (p->spin && ++spins < (1 << 22)) lfm2__cpu_relax();
        else lfm2__yield();
    }
}
#endif /* LFM2__HAVE_POOL */

/* The workers a context (or a load) runs its steps on. */
typedef struct lfm2__workers {
    int32_t n;                   /* tasks per step (= threads) */
    int32_t backend;             /* LFM2__RUN_* */
    lfm2_parallel hook;
#ifdef LFM2__HAVE_POOL
    lfm2__pool *pool;
#endif
} lfm2__workers;

#ifdef LFM2__OPENMP
static void lfm2__omp_run(lfm2_task_fn fn, void *arg, int32_t n) {
#pragma omp parallel num_threads(n)
    {
        int32_t i = omp_get_thread_num(), k = omp_get_num_threads();
        for (; i < n; i += k) fn(arg, i); /* (OpenMP may give fewer threads than asked) */
    }
}
#endif
/* Runs fn(arg, i) for every i in [0, n), n <= W->n; n <= 1 runs on the calling thread. */
static void lfm2__run(const lfm2__workers *W, lfm2_task_fn fn, void *arg, int32_t n) {
    int32_t i;
    if (n <= 1 || W->n <= 1 || W->backend == LFM2__RUN_SERIAL) {
        for (i = 0; i < n; i++) fn(arg, i);
        return;
    }
    if (n > W->n) n = W->n;
    switch (W->backend) {
#ifdef LFM2__OPENMP
    case LFM2__RUN_OPENMP: lfm2__omp_run(fn, arg, n); return;
#endif
#ifdef LFM2__HAVE_POOL
    case LFM2__RUN_POOL: lfm2__pool_run(W->pool, fn, arg, n); return;
#endif
    case LFM2__RUN_HOOK: W->hook.run(W->hook.user, fn, arg, n); return;
    default: for (i = 0; i < n; i++) fn(arg, i); return;
    }
}
/* [*lo, *hi) = the part of [0, n) that task i of k takes (contiguous, in order) */
static void lfm2__split(int64_t n, int32_t i, int32_t k, int64_t *lo, int64_t *hi) {
    *lo = n * i / k;
    *hi = n * (i + 1) / k;
}

/* lfm2__parallel_for: fn(arg, lo, hi, task) over contiguous parts [lo, hi) of [0, n), one task
   each, on W (for the load-time conversions) */
typedef void (*lfm2__range_fn)(void *arg, int64_t lo, int64_t hi, int32_t task);
typedef struct lfm2__pfor { lfm2__range_fn fn; void *arg; int64_t n; int32_t k; } lfm2__pfor;
static void lfm2__pfor_task(void *a, int32_t i) {
    const lfm2__pfor *p = LFM2__CAST(const lfm2__pfor *, a);
    int64_t lo, hi;
    lfm2__split(p->n, i, p->k, &lo, &hi);
    if (lo < hi) p->fn(p->arg, lo, hi, i);
}
static void lfm2__parallel_for(const lfm2__workers *W, int64_t n, lfm2__range_fn fn, void *arg) {
    lfm2__pfor p;
    p.fn = fn;
    p.arg = arg;
    p.n = n;
    p.k = W->n < n ? W->n : LFM2__CAST(int32_t, n);
    if (p.k > 0) lfm2__run(W, lfm2__pfor_task, &p, p.k);
}

static void lfm2__workers_free(lfm2__workers *W) {
#ifdef LFM2__HAVE_POOL
    lfm2__pool_free(W->pool);
    W->pool = NULL;
#endif
    W->n = 1;
    W->backend = LFM2__RUN_SERIAL;
}
/* Sets up n threads (0 = the CPUs) of backend `threading` (LFM2_THREADS_*) or of the hook. */
static lfm2_result lfm2__workers_init(lfm2__workers *W, int32_t n, int32_t threading, const lfm2_parallel *hook,
                                      const lfm2_allocator *a, lfm2_error *err) {
    int32_t cpus = lfm2__n_cpus();
    memset(W, 0, sizeof *W);
    W->n = 1;
    if (n < 0) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "n_threads %d is negative", n);
    if (threading < LFM2_THREADS_AUTO || threading > LFM2_THREADS_OPENMP)
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "threading = %d is not an LFM2_THREADS_* value", threading);
    if (n == 0) n = cpus;
    if (hook && hook->run) {
        if (n > LFM2__MAX_THREADS) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "n_threads %d: at most %d tasks per step", n, LFM2__MAX_THREADS);
        W->n = n;
        W->backend = LFM2__RUN_HOOK;
        W->hook = *hook;
        return LFM2_OK;
    }
    if (n > 4 * cpus || n > LFM2__MAX_THREADS)
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "n_threads %d: this process can use %d CPUs, and more than 4 threads per CPU (at most %d) only slow it down",
                          n, cpus, LFM2__MAX_THREADS);
    if (threading == LFM2_THREADS_OPENMP) {
#ifndef LFM2__OPENMP
        return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "threading = LFM2_THREADS_OPENMP, but this build has no OpenMP");
#endif
    }
    if (n == 1) return LFM2_OK;
#ifdef LFM2__OPENMP
    if (threading != LFM2_THREADS_POOL) {
        W->n = n;
        W->backend = LFM2__RUN_OPENMP;
        return LFM2_OK;
    }
#endif
#ifdef LFM2__HAVE_POOL
    {
        lfm2_result rc = lfm2__pool_new(n, a, err, &W->pool);
        if (rc != LFM2_OK) return rc;
        W->n = n;
        W->backend = LFM2__RUN_POOL;
    }
#else
    (void)a;
#endif
    return LFM2_OK;
}

/* >>structs -------------------------------------------------------------------------------- */

/* A weight matrix [rows, cols] (row-major, HF [out, in]) used in place in its stored dtype. */
typedef struct lfm2__kernel lfm2__kernel; /* >>formats */
typedef struct lfm2__vops lfm2__vops;
typedef struct lfm2__mat {
    const void *data;
    const uint16_t *scales;      /* Q8 / Q4: f16 scale per block of 32 columns, [rows][cols/32] */
    int32_t dtype;               /* LFM2__DT_F32 / F16 / BF16 / Q8 / Q4, or an interleaved layout */
    int32_t rows, cols;
    const lfm2__kernel *kern[2]; /* its kernel (see >>formats), with f32 / bf16 activations; set at load */
} lfm2__mat;

typedef struct lfm2__layer {
    int32_t is_attention;
    int32_t slot;                /* index among the conv layers, or among the attention layers */
    const float *operator_norm;  /* model.layers.N.operator_norm.weight [D] */
    const float *ffn_norm;       /* model.layers.N.ffn_norm.weight      [D] */
    lfm2__mat w1, w3, w2;        /* feed_forward.w1 [F,D] gate, w3 [F,D] up, w2 [D,F] down (dense FFN) */
    /* sparse MoE layers (l >= num_dense_layers of an lfm2_moe model; w1/w3/w2 above unused) */
    int32_t is_moe, moe_slot;    /* moe_slot: l - num_dense_layers */
    lfm2__mat router;            /* feed_forward.gate.weight [E, D], as stored (never converted) */
    const float *expert_bias;    /* feed_forward.expert_bias [E] (f32 copy), NULL without use_expert_bias */
    lfm2__mat *experts;          /* [E][3]: feed_forward.experts.e.w1 [I,D], .w3 [I,D], .w2 [D,I] */
    /* conv layers */
    lfm2__mat in_proj;           /* conv.in_proj.weight  [3D, D]  rows: B | C | x */
    lfm2__mat out_proj;          /* conv.out_proj.weight [D, D] */
    const float *conv_w;         /* conv.conv.weight     [D, 1, L] -> [D][L] */
    const float *in_bias, *conv_b, *out_bias;  /* [3D], [D], [D] when conv_bias, else NULL */
    /* attention layers */
    lfm2__mat wq, wk, wv, wo;    /* self_attn.q_proj [H*hd,D], k_proj/v_proj [Hkv*hd,D], out_proj [D,H*hd] */
    const float *q_norm, *k_norm;/* self_attn.q_layernorm / k_layernorm [hd] */
} lfm2__layer;

typedef struct lfm2__blob {      /* a file the model owns: mapped or read */
    void *data;
    size_t size;
    int mapped;                  /* 0 read into memory, 1 mapped, 2 mapped with holes (not unmapped) */
    int fd;                      /* mapped (POSIX): the open file until the load ends (-1 once closed; Windows: -1, the view keeps the file) */
    char name[64];
} lfm2__blob;

struct lfm2_model {
    lfm2_config cfg;
    lfm2_allocator alloc;
    lfm2__stfile *files;         /* parsed safetensors shards */
    int32_t n_files;
    const lfm2__tensor **by_name;/* every tensor, sorted by name */
    int32_t n_tensors;
    lfm2__layer *layers;
    lfm2__mat *experts;          /* the experts of every sparse layer: [n_moe_layers][E][3] */
    lfm2__mat embed;             /* model.embed_tokens.weight [V, D] */
    lfm2__mat head;              /* lm_head.weight [V, D], or embed when tied */
    const float *final_norm;     /* model.embedding_norm.weight [D] (the FINAL norm) */
    float *vec;                  /* f32 copies of the small vectors (norms, conv taps, biases) */
    struct lfm2__tokenizer *tok; /* NULL when there was no tokenizer.json */
    lfm2__blob *blobs;           /* files owned by the model (lfm2_model_load_dir) */
    int32_t n_blobs;
    char **shard_names;          /* names of the shards, for lfm2_model_tensor_info */
    unsigned char *qbuf;         /* weights quantized at load (lfm2_model_params.weights) */
    unsigned char *ibuf;         /* mapped matrices put into the interleaved layout at load (lfm2__interleave_weights) */
    unsigned char *xbuf;         /* a pre-quantized folder's interleaved matrices unpacked at load (lfm2__x16_unpack) */
    int32_t isa;                 /* lfm2_isa of its kernels (lfm2_model_params.max_isa, the CPU) */
    int32_t huge_pages;          /* lfm2_model_params.huge_pages */
    const lfm2__vops *vops;      /* the vector operations of that level */
    uint64_t fingerprint;        /* identity of the model for state snapshots (lfm2__model_fingerprint) */
};

struct lfm2_context {
    const lfm2_model *m;
    lfm2_allocator alloc;
    void *block;                 /* the one allocation everything below lives in */
    int32_t n_ctx, n_batch;
    lfm2__workers W;             /* the threads of its parallel steps (see >>threads) */
    int32_t threading;           /* lfm2_context_params.threading, for lfm2_context_set_threads */
    int32_t pos;                 /* tokens in the cache */
    int32_t has_logits;
    /* scratch, per chunk of up to n_batch tokens */
    float *x;                    /* [B, D]   residual stream */
    float *xb;                   /* [B, D]   normalised input of a block */
    float *zb;                   /* [B, 3D]  conv in_proj output  B | C | x */
    float *win;                  /* [L-1+B, D] conv window: state then new Bx */
    float *qb, *kb, *vb;         /* [B, H*hd], [B, Hkv*hd], [B, Hkv*hd] */
    float *yb;                   /* [B, max(D, H*hd)] conv output y / attention output */
    float *ob;                   /* [B, D]   block output before the residual add */
    float *gb, *ub;              /* [B, max(F, k*I)]  FFN gate and up (MoE: [B*k, I], grouped by expert) */
    /* MoE scratch (k = num_experts_per_tok, E = num_experts, I = moe_intermediate_size) */
    float *moe_logits;           /* [B, E]   router logits, then sigmoids */
    float *moe_w;                /* [B, k]   mixing weights of the chosen experts */
    int32_t *moe_sel, *moe_row;  /* [B, k]   chosen experts (best first); their rows in moe_x / moe_y */
    int32_t *moe_cnt;            /* [2E + 1] first row of each expert, then its next free row */
    float *moe_x, *moe_y;        /* [B*k, D] inputs grouped by expert; the experts' outputs */
    int32_t *dbg_experts;        /* tests: [n_moe_layers][T][k] chosen experts of one chunk */
    float *dbg_expert_w;         /* tests: [n_moe_layers][T][k] their mixing weights */
    float *att;                  /* [H, n_ctx] attention scores */
    float *rope_cos, *rope_sin;  /* [B, hd/2] */
    float *inv_freq;             /* [hd/2] */
    float *logits;               /* [V] last position */
    /* state */
    float *conv_state;           /* [n_conv_layers][L-1][D]  last L-1 Bx vectors */
    float *conv_saved;           /* [n_conv_layers][L-1][D]  conv_state before the chunk (abort) */
    float *k_cache, *v_cache;    /* [n_attention_layers][n_ctx][Hkv*hd] (K after norm + RoPE) */
    unsigned char *qa;           /* [B, max(D, F, H*hd)] floats of room: int8 (Q8/Q4) or bf16 activations */
    size_t qa_size;              /* its bytes */
    int bf16_act;                /* lfm2_context_params.bf16_activations */
    float *dbg_hidden;           /* tests: [n_layers+2][T][D] hidden states of one chunk */
    int (*abort_fn)(void *user);
    void *abort_user;
    char err[320];
#ifdef LFM2_PROFILE
    double prof[16], prof_t;     /* LFM2_PROFILE: seconds per part of the forward pass (>>blocks) */
#endif
};

LFM2__MAYBE_UNUSED static const struct lfm2__tokenizer *lfm2__model_tokenizer(const lfm2_model *m) { return m ? m->tok : NULL; }
LFM2__MAYBE_UNUSED static const lfm2_config *lfm2__model_cfg(const lfm2_model *m) { return m ? &m->cfg : NULL; }

/* >>formats ------------------------------------------------------------------------------- */
/* The weight formats of lfm2__mat and their kernels. A kernel computes rows [r0, r1) of
   out[B, rows] = x[B, cols] . W^T for one format, one instruction set (lfm2_isa) and one kind of
   activations (f32, bf16, or int8 per block of 32). lfm2__kernel_table lists them all, with the
   scalar reference of every format as the fallback, and lfm2__kernel_for picks, at load, the
   entry for (format, activations, the model's instruction set) of each matrix. The formats:
     F32 / F16 / BF16     the safetensors data, used in place (row-major, HF [out, in])
     F32X / F16X / BF16X  the same values, 16 rows interleaved (made at load: lfm2__fx_index)
     Q8   blocks of 32 columns: int8 q[32] per block, one f16 scale d per block: w = d * q
     Q4   blocks of 32 columns: 16 bytes per block, byte j holds element j (low nibble) and
          element j + 16 (high nibble), unsigned 0..15 with offset 8: w = d * (nibble - 8)
     Q8X / Q4X  the same numbers, 16 rows interleaved (made at load: lfm2__x16_rec)
   Q8 / Q4 scales are a separate f16 array [rows][cols / 32]. Float weights multiply f32
   activations (or, opted in, bf16-rounded ones); the block formats multiply int8 activations with
   exact integer block sums (lfm2__quantize_act). Sums are f32. Every output element is summed in
   one fixed order whatever the tiling or the thread split, so results are bit-identical for any
   number of threads and any chunking of the tokens. Below: the readers of every layout, the
   instruction sets (detection, vector primitives), then one part per format family with its
   kernels for each instruction set, the kernel table, and the driver that runs a product on the
   context's threads. The converters that make the load-time layouts are in >>quant. */

#define LFM2__QBLK 32

/* The interleaved block formats Q8X / Q4X (made at load from any weights with rows % 16 == 0 and
   cols % 64 == 0, in builds with AVX-512 VNNI) hold the same numbers as Q8 / Q4 in the order the
   VNNI kernel reads them: groups of 16 rows, each a run of records of 64 columns (2 blocks):
       16 f16 scales of block 0, 16 of block 1, quants of block 0, quants of block 1
   (scales first: the kernel reads them first, and the memory stream stays in ascending order)
   where the quants of a block are 8 (Q8) or 4 (Q4) vectors of 64 bytes whose bytes 4l..4l+3 are
   row l's 4 columns of one "step": Q8 step c (columns 4c..4c+3) as w + 128; Q4 vector z holds
   step z in its low nibbles and step z + 4 in its high nibbles, as w + 8. A record is 1088 (Q8)
   or 576 (Q4) bytes, 17 or 9 cache lines, exactly the bytes of the row-major layout. One vpdpbusd
   with a broadcast of 4 activation bytes then sums one step for 16 rows, and the scales are
   applied once per block for 16 rows: the whole group streams from memory in one pass. */
#define LFM2__X16_REC(q4) ((q4) ? LFM2__CAST(size_t, 576) : LFM2__CAST(size_t, 1088))
static const unsigned char *lfm2__x16_rec(const lfm2__mat *w, int32_t r, int32_t k) {
    size_t np = LFM2__CAST(size_t, w->cols / 64);
    return LFM2__CAST(const unsigned char *, w->data) +
           (LFM2__CAST(size_t, r / 16) * np + LFM2__CAST(size_t, k / 64)) * LFM2__X16_REC(w->dtype == LFM2__DT_Q4X);
}
/* integer weight (r, k) of a block format: w = scale * value */
static int32_t lfm2__qval(const lfm2__mat *w, int32_t r, int32_t k) {
    size_t i = LFM2__CAST(size_t, r) * LFM2__CAST(size_t, w->cols) + LFM2__CAST(size_t, k);
    int32_t e = k % LFM2__QBLK, h = (k % 64) / LFM2__QBLK, c = e / 4, l = r % 16, j = k % 4;
    unsigned char byte;
    switch (w->dtype) {
    case LFM2__DT_Q8: return LFM2__CAST(int32_t, LFM2__CAST(const int8_t *, w->data)[i]);
    case LFM2__DT_Q4:
        byte = LFM2__CAST(const uint8_t *, w->data)[(i / LFM2__QBLK) * 16 + LFM2__CAST(size_t, e & 15)];
        return LFM2__CAST(int32_t, (e < 16) ? (byte & 15) : (byte >> 4)) - 8;
    case LFM2__DT_Q8X: return LFM2__CAST(int32_t, lfm2__x16_rec(w, r, k)[64 + h * 512 + c * 64 + l * 4 + j]) - 128;
    default: /* Q4X */
        byte = lfm2__x16_rec(w, r, k)[64 + h * 256 + (c & 3) * 64 + l * 4 + j];
        return LFM2__CAST(int32_t, (c < 4) ? (byte & 15) : (byte >> 4)) - 8;
    }
}
/* scale of block b (columns 32b..32b+31) of row r of a block format */
static float lfm2__qscale(const lfm2__mat *w, int32_t r, int32_t b) {
    const unsigned char *p;
    uint16_t h;
    if (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4)
        return lfm2__f16_to_f32(w->scales[LFM2__CAST(size_t, r) * LFM2__CAST(size_t, w->cols / LFM2__QBLK) + LFM2__CAST(size_t, b)]);
    p = lfm2__x16_rec(w, r, b * LFM2__QBLK) + (b & 1) * 32 + (r % 16) * 2;
    memcpy(&h, p, 2);
    return lfm2__f16_to_f32(h);
}

/* The interleaved float layouts F32X / F16X / BF16X (made at load from f32 / f16 / bf16
   matrices with rows % 16 == 0 and cols % 2 == 0 in AVX-512 builds, f16 / bf16 ones in AVX2
   builds; see lfm2__interleave_weights) keep each group of 16 rows where it was and reorder it by pairs of
   columns: pair p (columns 2p, 2p+1) of group g is one run of 32 elements at (g * cols/2 + p) * 32:
       F32X, F16X: the 16 rows of column 2p, then the 16 rows of column 2p+1
       BF16X:      row 0 column 2p, row 0 column 2p+1, row 1 column 2p, ...  (one 32-bit lane per row)
   so one vector load gives 16 rows of a column (or, for bf16, of a column pair: the two columns
   are the low and high halves of each lane, and a vdpbf16ps lane). The kernel multiplies them by
   broadcast activations: no horizontal sums, the group read once per 8 tokens. */
static size_t lfm2__fx_index(const lfm2__mat *w, int32_t r, int32_t k) {
    size_t run = (LFM2__CAST(size_t, r / 16) * LFM2__CAST(size_t, w->cols / 2) + LFM2__CAST(size_t, k / 2)) * 32;
    return w->dtype == LFM2__DT_BF16X ? run + LFM2__CAST(size_t, (r % 16) * 2 + k % 2) : run + LFM2__CAST(size_t, (k % 2) * 16 + r % 16);
}

/* f32 value of element (r, k) of any weight format (scalar; used for tails and references) */
static float lfm2__wget(const lfm2__mat *w, int32_t r, int32_t k) {
    size_t i = LFM2__CAST(size_t, r) * LFM2__CAST(size_t, w->cols) + LFM2__CAST(size_t, k);
    switch (w->dtype) {
    case LFM2__DT_F32: return LFM2__CAST(const float *, w->data)[i];
    case LFM2__DT_BF16: return lfm2__bf16_to_f32(LFM2__CAST(const uint16_t *, w->data)[i]);
    case LFM2__DT_F16: return lfm2__f16_to_f32(LFM2__CAST(const uint16_t *, w->data)[i]);
    case LFM2__DT_F32X: return LFM2__CAST(const float *, w->data)[lfm2__fx_index(w, r, k)];
    case LFM2__DT_BF16X: return lfm2__bf16_to_f32(LFM2__CAST(const uint16_t *, w->data)[lfm2__fx_index(w, r, k)]);
    case LFM2__DT_F16X: return lfm2__f16_to_f32(LFM2__CAST(const uint16_t *, w->data)[lfm2__fx_index(w, r, k)]);
    default: return lfm2__qscale(w, r, k / LFM2__QBLK) * LFM2__CAST(float, lfm2__qval(w, r, k));
    }
}

/* dst[0..n) = weight row r, columns [k0, k0+n), as f32 */
static void lfm2__row_to_f32(float *dst, const lfm2__mat *w, int32_t r, int32_t k0, int32_t n) {
    size_t base = LFM2__CAST(size_t, r) * LFM2__CAST(size_t, w->cols) + LFM2__CAST(size_t, k0);
    int32_t i;
    if (w->dtype == LFM2__DT_F32) {
        memcpy(dst, LFM2__CAST(const float *, w->data) + base, sizeof(float) * LFM2__CAST(size_t, n));
    } else if (w->dtype == LFM2__DT_BF16) {
        const uint16_t *s = LFM2__CAST(const uint16_t *, w->data) + base;
        for (i = 0; i < n; i++) dst[i] = lfm2__bf16_to_f32(s[i]);
    } else {
        for (i = 0; i < n; i++) dst[i] = lfm2__wget(w, r, k0 + i);
    }
}

static float lfm2__dot_ref(const float *a, const float *b, int32_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* ---- instruction sets: detection, and the vector primitives of the kernel templates --------- */
static const char *const lfm2__isa_names[LFM2_ISA_COUNT] = {"AUTO", "SCALAR", "AVX2", "AVX512", "AVX512_VNNI", "AVX512_BF16",
                                                            "NEON", "NEON_DOTPROD", "NEON_BF16", "WASM_SIMD128", "NEON_I8MM"};
/* the rank of an aarch64 level in its chain NEON < NEON_DOTPROD < NEON_BF16 < NEON_I8MM (NEON_I8MM
   came last to lfm2_isa: its value is after WASM_SIMD128), 0 for the other families */
static int lfm2__neon_rank(int32_t level) {
    if (level >= LFM2_ISA_NEON && level <= LFM2_ISA_NEON_BF16) return level - LFM2_ISA_NEON + 1;
    return level == LFM2_ISA_NEON_I8MM ? 4 : 0;
}
/* 1 if a machine at `level` runs kernels made for `need` (the scalar ones run everywhere; the
   x86-64 levels AVX2..AVX512_BF16 and the aarch64 levels NEON..NEON_I8MM each include the ones
   before them) */
static int lfm2__isa_has(int32_t level, int32_t need) {
    if (need == LFM2_ISA_SCALAR) return 1;
    if (need >= LFM2_ISA_AVX2 && need <= LFM2_ISA_AVX512_BF16) return level >= need && level <= LFM2_ISA_AVX512_BF16;
    if (lfm2__neon_rank(need)) return lfm2__neon_rank(level) >= lfm2__neon_rank(need);
    if (need == LFM2_ISA_WASM_SIMD128) return level == need;
    return 0;
}
#if defined(LFM2__X86_TARGETS) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
static void lfm2__cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (LFM2__CAST(uint32_t, __get_cpuid_max(0, NULL)) >= leaf) __cpuid_count(leaf, sub, a, b, c, d);
    r[0] = a; r[1] = b; r[2] = c; r[3] = d;
}
static uint64_t lfm2__xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); /* xgetbv */
    return (LFM2__CAST(uint64_t, hi) << 32) | lo;
}
#elif defined(LFM2__X86_TARGETS)
#include <intrin.h>
static void lfm2__cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    int v[4];
    __cpuid(v, 0);
    if (LFM2__CAST(uint32_t, v[0]) >= leaf) __cpuidex(v, LFM2__CAST(int, leaf), LFM2__CAST(int, sub));
    else v[0] = v[1] = v[2] = v[3] = 0;
    r[0] = LFM2__CAST(uint32_t, v[0]); r[1] = LFM2__CAST(uint32_t, v[1]); r[2] = LFM2__CAST(uint32_t, v[2]); r[3] = LFM2__CAST(uint32_t, v[3]);
}
static uint64_t lfm2__xgetbv0(void) { return _xgetbv(0); }
#endif
#if defined(LFM2__ARM_SYSCTL)
static int lfm2__sysctl_flag(const char *name) {
    int v = 0;
    size_t n = sizeof v;
    return sysctlbyname(name, &v, &n, NULL, 0) == 0 && v != 0;
}
#endif
/* The best level compiled into this build that the CPU and the OS support (the OS must save the
   AVX / AVX-512 registers on a context switch: XGETBV). */
static int32_t lfm2__detect_isa(void) {
    int32_t isa = LFM2_ISA_SCALAR;
#if defined(LFM2__X86_TARGETS) && defined(LFM2__HAVE_AVX2)
    uint32_t r1[4], r7[4], r71[4];
    uint64_t xcr0;
    lfm2__cpuid(1, 0, r1);
    lfm2__cpuid(7, 0, r7);
    lfm2__cpuid(7, 1, r71);
    if (!((r1[2] >> 27) & 1)) return isa;                  /* OSXSAVE */
    xcr0 = lfm2__xgetbv0();
    if ((xcr0 & 6) != 6) return isa;                       /* the OS saves XMM and YMM */
    if (!(((r1[2] >> 12) & 1) && ((r1[2] >> 28) & 1) && ((r1[2] >> 29) & 1) && ((r7[1] >> 5) & 1))) return isa; /* FMA AVX F16C AVX2 */
    isa = LFM2_ISA_AVX2;
#ifdef LFM2__HAVE_AVX512
    if ((xcr0 & 0xe0) != 0xe0) return isa;                 /* ... and the opmask and ZMM registers */
    if (!(((r7[1] >> 16) & 1) && ((r7[1] >> 17) & 1) && ((r7[1] >> 30) & 1) && ((r7[1] >> 31) & 1))) return isa; /* F DQ BW VL */
    isa = LFM2_ISA_AVX512;
    if (!((r7[2] >> 11) & 1)) return isa;                  /* AVX512_VNNI */
    isa = LFM2_ISA_AVX512_VNNI;
    if ((r71[0] >> 5) & 1) isa = LFM2_ISA_AVX512_BF16;     /* AVX512_BF16 */
#endif
    (void)r71;
#elif defined(LFM2__HAVE_NEON)
    int dot = 0, bf16 = 0, i8mm = 0;
#if defined(__ARM_FEATURE_DOTPROD)
    dot = 1; /* compiled for it: the binary needs it anyway */
#elif defined(LFM2__ARM_AUXV) && defined(LFM2__HAVE_NEON_DOT)
    dot = (getauxval(AT_HWCAP) >> 20) & 1;      /* HWCAP_ASIMDDP */
#elif defined(LFM2__ARM_SYSCTL) && defined(LFM2__HAVE_NEON_DOT)
    dot = lfm2__sysctl_flag("hw.optional.arm.FEAT_DotProd");
#elif defined(_WIN32) && defined(LFM2__HAVE_NEON_DOT)
    dot = IsProcessorFeaturePresent(43) != 0;   /* PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE */
#endif
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
    bf16 = 1;
#elif defined(LFM2__ARM_AUXV) && defined(LFM2__HAVE_NEON_BF16) && defined(AT_HWCAP2)
    bf16 = (getauxval(AT_HWCAP2) >> 14) & 1;    /* HWCAP2_BF16 */
#elif defined(LFM2__ARM_SYSCTL) && defined(LFM2__HAVE_NEON_BF16)
    bf16 = lfm2__sysctl_flag("hw.optional.arm.FEAT_BF16");
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8)
    i8mm = 1;
#elif defined(LFM2__ARM_AUXV) && defined(LFM2__HAVE_NEON_I8MM) && defined(AT_HWCAP2)
    i8mm = (getauxval(AT_HWCAP2) >> 13) & 1;    /* HWCAP2_I8MM */
#elif defined(LFM2__ARM_SYSCTL) && defined(LFM2__HAVE_NEON_I8MM)
    i8mm = lfm2__sysctl_flag("hw.optional.arm.FEAT_I8MM");
#endif
    isa = LFM2_ISA_NEON;
#if defined(LFM2__HAVE_NEON_DOT)
    if (dot) {
        isa = LFM2_ISA_NEON_DOTPROD;
#if defined(LFM2__HAVE_NEON_BF16)
        if (bf16) isa = LFM2_ISA_NEON_BF16; /* (every bf16 CPU has the dot product too) */
#if defined(LFM2__HAVE_NEON_I8MM)
        if (bf16 && i8mm) isa = LFM2_ISA_NEON_I8MM; /* (a CPU with i8mm but no bf16 stays at NEON_DOTPROD) */
#endif
#endif
    }
#endif
    (void)dot;
    (void)bf16;
    (void)i8mm;
#elif defined(LFM2__HAVE_NEON32)
    isa = LFM2_ISA_NEON; /* compiled for it (-mfpu=neon...) */
#elif defined(LFM2__HAVE_WASM)
    isa = LFM2_ISA_WASM_SIMD128; /* compiled for it: a wasm engine without SIMD refuses the module */
#endif
    return isa;
}

/* keeps a vector in a register: GCC otherwise re-loads a tile's activation vector inside each of
   its 4 multiply-adds (memory operands), which cost the 4x4 tile about 10% */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define LFM2__INREG(v) __asm__("" : "+v"(v))
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#define LFM2__INREG(v) __asm__("" : "+w"(v))
#else
#define LFM2__INREG(v) (void)0
#endif

/* The float kernels and the vector operations of the blocks are templates written once with the
   primitives LFM2__V* (LFM2__W floats per vector of type LFM2__VT, functions marked LFM2__VTGT),
   instantiated per instruction set: each set defines the primitives, instantiates the templates
   with its suffix, and undefines them. */
#define LFM2__WL_F32(wr, k) LFM2__VLOAD(LFM2__CAST(const float *, wr) + (k))
#define LFM2__WL_BF16(wr, k) LFM2__VBF16(LFM2__CAST(const uint16_t *, wr) + (k))
#define LFM2__WL_F16(wr, k) LFM2__VF16(LFM2__CAST(const uint16_t *, wr) + (k))
/* exp(x) for a vector: x = n ln2 + r, exp(r) by a degree-7 polynomial (Cephes expf), times 2^n.
   Inputs are clamped to [-87.3, 88], so the result is never 0, inf or NaN for finite input;
   relative error about 2e-7. */
#define LFM2__EXP_POLY(FMA, MUL, SET1, ADD)                                                     \
    y = FMA(SET1(1.9875691500e-4f), r, SET1(1.3981999507e-3f));                                   \
    y = FMA(y, r, SET1(8.3334519073e-3f));                                                        \
    y = FMA(y, r, SET1(4.1665795894e-2f));                                                        \
    y = FMA(y, r, SET1(1.6666665459e-1f));                                                        \
    y = FMA(y, r, SET1(5.0000001201e-1f));                                                        \
    y = FMA(y, MUL(r, r), ADD(r, SET1(1.0f)));
#ifdef LFM2__HAVE_AVX512
static LFM2__TGT_AVX512 float lfm2__hsum512(__m512 a) { /* (not _mm512_reduce_add_ps: gcc 12 warns inside it in C++) */
    __m512 s = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, 0x4e));
    __m128 t = _mm_add_ps(_mm512_castps512_ps128(s), _mm512_castps512_ps128(_mm512_shuffle_f32x4(s, s, 0xb1)));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    return _mm_cvtss_f32(t);
}
static LFM2__TGT_AVX512 __m512 lfm2__vexp512(__m512 x) {
    __m512 fx, r, y;
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.0f));
    fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    LFM2__EXP_POLY(_mm512_fmadd_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_add_ps)
    return _mm512_scalef_ps(y, fx);
}
#endif
#ifdef LFM2__HAVE_AVX2
static LFM2__TGT_AVX2 float lfm2__hsum256(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static LFM2__TGT_AVX2 __m256 lfm2__vexp256(__m256 x) {
    __m256 fx, r, y;
    __m256i e;
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
    fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    LFM2__EXP_POLY(_mm256_fmadd_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_add_ps)
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#endif
#ifdef LFM2__HAVE_NEON
static float32x4_t lfm2__vexp128(float32x4_t x) {
    float32x4_t fx, r, y;
    int32x4_t e;
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.0f));
    fx = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    r = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
#define LFM2__NEON_FMA(a, b, c) vfmaq_f32(c, a, b)
    LFM2__EXP_POLY(LFM2__NEON_FMA, vmulq_f32, vdupq_n_f32, vaddq_f32)
    e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}
#endif

/* ---- the vector operations of the blocks (per instruction set, like the kernels) ------------
   attend: one attention head over n_keys cached keys (rows of kc / vc, kvs floats apart):
   s = softmax(q . k_j * scale), o = sum_j s_j v_j (s: n_keys floats of scratch);
   silu_mul: g = silu(g) * u. */
struct lfm2__vops {
    void (*attend)(float *o, const float *q, const float *kc, const float *vc, size_t kvs, int32_t n_keys, int32_t hd, float scale, float *s);
    void (*silu_mul)(float *g, const float *u, size_t n);
};
static void lfm2__attend_ref(float *o, const float *q, const float *kc, const float *vc, size_t kvs, int32_t n_keys, int32_t hd, float scale, float *s) {
    int32_t j, i;
    float mx, sum = 0, inv;
    for (j = 0; j < n_keys; j++) s[j] = lfm2__dot_ref(q, kc + LFM2__CAST(size_t, j) * kvs, hd) * scale;
    mx = s[0];
    for (j = 1; j < n_keys; j++) if (s[j] > mx) mx = s[j];
    for (j = 0; j < n_keys; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
    inv = 1.0f / sum;
    for (j = 0; j < n_keys; j++) s[j] *= inv;
    for (i = 0; i < hd; i++) o[i] = 0;
    for (j = 0; j < n_keys; j++) {
        const float *v = vc + LFM2__CAST(size_t, j) * kvs;
        for (i = 0; i < hd; i++) o[i] += s[j] * v[i];
    }
}
static void lfm2__silu_mul_ref(float *g, const float *u, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
static const lfm2__vops lfm2__vops_ref = {lfm2__attend_ref, lfm2__silu_mul_ref};
#define LFM2__DEF_VECOPS(SFX)                                                                                         \
    static LFM2__VTGT void lfm2__silu_mul_##SFX(float *g, const float *u, size_t n) {                                 \
        size_t i = 0;                                                                                                 \
        LFM2__VT one = LFM2__VSET1(1.0f), zero = LFM2__VZERO();                                                       \
        for (; i + LFM2__W <= n; i += LFM2__W) {                                                                      \
            LFM2__VT a = LFM2__VLOAD(g + i);                                                                          \
            LFM2__VT e = LFM2__VEXP(LFM2__VFMA(a, LFM2__VSET1(-1.0f), zero));                                         \
            LFM2__VSTORE(g + i, LFM2__VMUL(LFM2__VDIV(a, LFM2__VADD(one, e)), LFM2__VLOAD(u + i)));                   \
        }                                                                                                             \
        for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];                                                 \
    }                                                                                                                 \
    static LFM2__VTGT void lfm2__attend_##SFX(float *o, const float *q, const float *kc, const float *vc, size_t kvs, \
                                              int32_t n_keys, int32_t hd, float scale, float *s) {                    \
        int32_t j, i;                                                                                                 \
        float mx, sum, inv;                                                                                           \
        LFM2__VT vs = LFM2__VZERO();                                                                                  \
        for (j = 0; j < n_keys; j++) { /* s_j = q . k_j * scale */                                                    \
            const float *k = kc + LFM2__CAST(size_t, j) * kvs;                                                       \
            LFM2__VT acc = LFM2__VZERO();                                                                             \
            float d;                                                                                                  \
            for (i = 0; i + LFM2__W <= hd; i += LFM2__W) acc = LFM2__VFMA(LFM2__VLOAD(q + i), LFM2__VLOAD(k + i), acc); \
            d = LFM2__VHSUM(acc);                                                                                     \
            for (; i < hd; i++) d += q[i] * k[i];                                                                     \
            s[j] = d * scale;                                                                                         \
        }                                                                                                             \
        mx = s[0]; /* softmax */                                                                                      \
        for (j = 1; j < n_keys; j++) if (s[j] > mx) mx = s[j];                                                        \
        for (j = 0; j + LFM2__W <= n_keys; j += LFM2__W) {                                                            \
            LFM2__VT e = LFM2__VEXP(LFM2__VADD(LFM2__VLOAD(s + j), LFM2__VSET1(-mx)));                                \
            LFM2__VSTORE(s + j, e);                                                                                   \
            vs = LFM2__VADD(vs, e);                                                                                   \
        }                                                                                                             \
        sum = LFM2__VHSUM(vs);                                                                                        \
        for (; j < n_keys; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }                                              \
        inv = 1.0f / sum;                                                                                             \
        for (j = 0; j < n_keys; j++) s[j] *= inv;                                                                     \
        for (i = 0; i < hd; i++) o[i] = 0; /* o = sum_j s_j v_j */                                                    \
        for (j = 0; j < n_keys; j++) {                                                                                \
            const float *v = vc + LFM2__CAST(size_t, j) * kvs;                                                       \
            LFM2__VT a = LFM2__VSET1(s[j]);                                                                           \
            for (i = 0; i + LFM2__W <= hd; i += LFM2__W) LFM2__VSTORE(o + i, LFM2__VFMA(a, LFM2__VLOAD(v + i), LFM2__VLOAD(o + i))); \
            for (; i < hd; i++) o[i] += s[j] * v[i];                                                                  \
        }                                                                                                             \
    }

/* ---- F32 / F16 / BF16, row-major: the scalar reference and one template for every set ------ */
/* Scalar reference of the float formats (row-major or interleaved, any width): each output is the
   sum of the row's products in column order in blocks of LFM2__KBLK (lfm2__dot_ref). */
#define LFM2__KBLK 256   /* weight columns converted at a time */
#define LFM2__BBLK 16    /* tokens sharing one converted block of a row */
static void lfm2__mm_ref(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const float *x = LFM2__CAST(const float *, xv);
    int32_t r, K = w->cols;
    for (r = r0; r < r1; r++) {
        float tmp[LFM2__KBLK];
        float acc[LFM2__BBLK];
        int32_t b0, b, k0;
        for (b0 = 0; b0 < B; b0 += LFM2__BBLK) {
            int32_t nb = (B - b0 < LFM2__BBLK) ? B - b0 : LFM2__BBLK;
            for (b = 0; b < nb; b++) acc[b] = 0;
            for (k0 = 0; k0 < K; k0 += LFM2__KBLK) {
                int32_t nk = (K - k0 < LFM2__KBLK) ? K - k0 : LFM2__KBLK;
                lfm2__row_to_f32(tmp, w, r, k0, nk);
                for (b = 0; b < nb; b++) acc[b] += lfm2__dot_ref(tmp, x + LFM2__CAST(size_t, b0 + b) * LFM2__CAST(size_t, K) + k0, nk);
            }
            for (b = 0; b < nb; b++) out[LFM2__CAST(size_t, b0 + b) * LFM2__CAST(size_t, w->rows) + LFM2__CAST(size_t, r)] = acc[b];
        }
    }
}
/* the 16 accumulators a00..a33 of a 4-row x 4-token tile (row i, token j = aij), and their sums */
#define LFM2__TILE_ZERO(V, ZERO)                                                                                      \
    V a00 = ZERO, a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,                        \
      a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00
#define LFM2__TILE_HSUM(res, HSUM)                                                                                    \
    res[0][0] = HSUM(a00); res[0][1] = HSUM(a01); res[0][2] = HSUM(a02); res[0][3] = HSUM(a03);                       \
    res[1][0] = HSUM(a10); res[1][1] = HSUM(a11); res[1][2] = HSUM(a12); res[1][3] = HSUM(a13);                       \
    res[2][0] = HSUM(a20); res[2][1] = HSUM(a21); res[2][2] = HSUM(a22); res[2][3] = HSUM(a23);                       \
    res[3][0] = HSUM(a30); res[3][1] = HSUM(a31); res[3][2] = HSUM(a32); res[3][3] = HSUM(a33)
/* The kernel of one weight format: rows [r0, r1) of out = x . W^T for all B tokens.
   Tiles: 4 rows x 4 tokens, and 1 row x 1 token for the rest (decode). Every (row, token) pair
   has its own accumulator, filled in column order, then reduced and completed with the scalar
   tail: the same arithmetic whatever the tile, so any chunking of the tokens gives identical
   results. Decode walks one row at a time on purpose: on this project's machine one
   sequential stream reads DRAM at ~20 GB/s per core, while 2, 4 or 8 interleaved row streams
   got 8-12 GB/s. ESIZE = bytes per weight. */
#define LFM2__DEF_KERNELS(SFX, WL, ESIZE)                                                                          \
    static LFM2__VTGT void lfm2__mm_##SFX(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { \
        const float *x = LFM2__CAST(const float *, xv);                                                             \
        int32_t K = w->cols, Kv = K - K % LFM2__W, rows = w->rows, r, b, k, i, j;                                   \
        size_t rb = LFM2__CAST(size_t, K) * (ESIZE);                                                                \
        const unsigned char *base = LFM2__CAST(const unsigned char *, w->data);                                     \
        for (r = r0; r < r1; r += 4) {                                                                              \
            int32_t nr = (r1 - r < 4) ? r1 - r : 4;                                                                 \
            const void *wr0 = base + LFM2__CAST(size_t, r) * rb, *wr1 = base + LFM2__CAST(size_t, r + (nr > 1)) * rb;  \
            const void *wr2 = base + LFM2__CAST(size_t, r + 2 * (nr > 2)) * rb, *wr3 = base + LFM2__CAST(size_t, r + 3 * (nr > 3)) * rb; \
            for (b = 0; b < B;) {                                                                                   \
                float res[4][4];                                                                                    \
                const float *xb0 = x + LFM2__CAST(size_t, b) * LFM2__CAST(size_t, K);                               \
                int32_t nt = (B - b >= 4 && nr == 4) ? 4 : 1;                                                       \
                if (nt == 4) {                                                                                      \
                    const float *xb1 = xb0 + K, *xb2 = xb1 + K, *xb3 = xb2 + K;                                     \
                    LFM2__TILE_ZERO(LFM2__VT, LFM2__VZERO());                                                   \
                    for (k = 0; k < Kv; k += LFM2__W) {                                                             \
                        {   /* the 4 weight vectors in registers, each activation vector loaded once */              \
                            LFM2__VT w0 = WL(wr0, k), w1 = WL(wr1, k), w2 = WL(wr2, k), w3 = WL(wr3, k), xv;         \
                            xv = LFM2__VLOAD(xb0 + k); LFM2__INREG(xv);                                                              \
                            a00 = LFM2__VFMA(w0, xv, a00); a10 = LFM2__VFMA(w1, xv, a10);                           \
                            a20 = LFM2__VFMA(w2, xv, a20); a30 = LFM2__VFMA(w3, xv, a30);                           \
                            xv = LFM2__VLOAD(xb1 + k); LFM2__INREG(xv);                                                              \
                            a01 = LFM2__VFMA(w0, xv, a01); a11 = LFM2__VFMA(w1, xv, a11);                           \
                            a21 = LFM2__VFMA(w2, xv, a21); a31 = LFM2__VFMA(w3, xv, a31);                           \
                            xv = LFM2__VLOAD(xb2 + k); LFM2__INREG(xv);                                                              \
                            a02 = LFM2__VFMA(w0, xv, a02); a12 = LFM2__VFMA(w1, xv, a12);                           \
                            a22 = LFM2__VFMA(w2, xv, a22); a32 = LFM2__VFMA(w3, xv, a32);                           \
                            xv = LFM2__VLOAD(xb3 + k); LFM2__INREG(xv);                                                              \
                            a03 = LFM2__VFMA(w0, xv, a03); a13 = LFM2__VFMA(w1, xv, a13);                           \
                            a23 = LFM2__VFMA(w2, xv, a23); a33 = LFM2__VFMA(w3, xv, a33);                           \
                        }                                                                                           \
                    }                                                                                               \
                    LFM2__TILE_HSUM(res, LFM2__VHSUM);                                                           \
                } else {                                                                                            \
                    for (i = 0; i < nr; i++) {                                                                      \
                        const void *wri = base + LFM2__CAST(size_t, r + i) * rb;                                     \
                        LFM2__VT a0 = LFM2__VZERO();                                                                 \
                        for (k = 0; k < Kv; k += LFM2__W) a0 = LFM2__VFMA(WL(wri, k), LFM2__VLOAD(xb0 + k), a0);     \
                        res[i][0] = LFM2__VHSUM(a0);                                                                \
                    }                                                                                               \
                }                                                                                                   \
                for (i = 0; i < nr; i++)                                                                            \
                    for (j = 0; j < nt; j++) {                                                                      \
                        float s = res[i][j];                                                                        \
                        const float *xr = xb0 + LFM2__CAST(size_t, j) * LFM2__CAST(size_t, K);                      \
                        for (k = Kv; k < K; k++) s += lfm2__wget(w, r + i, k) * xr[k];                              \
                        out[LFM2__CAST(size_t, b + j) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r + i)] = s;  \
                    }                                                                                               \
                b += nt;                                                                                            \
            }                                                                                                       \
        }                                                                                                           \
    }

/* The float kernels and vector operations above are written once with LFM2__W (lanes), LFM2__VT
   (the vector type), LFM2__VTGT (the target attribute) and LFM2__V* operations; each instruction
   set below defines its own LFM2__<ISA>_* set and names it in LFM2__VISA around its
   instantiations, so that no list of names is repeated per instruction set. */
#define LFM2__VCAT_(a, b) a##b
#define LFM2__VCAT(a, b) LFM2__VCAT_(a, b)
#define LFM2__W LFM2__VCAT(LFM2__VISA, W)
#define LFM2__VT LFM2__VCAT(LFM2__VISA, VT)
#define LFM2__VTGT LFM2__VCAT(LFM2__VISA, VTGT)
#define LFM2__VZERO LFM2__VCAT(LFM2__VISA, VZERO)
#define LFM2__VLOAD LFM2__VCAT(LFM2__VISA, VLOAD)
#define LFM2__VSTORE LFM2__VCAT(LFM2__VISA, VSTORE)
#define LFM2__VFMA LFM2__VCAT(LFM2__VISA, VFMA)
#define LFM2__VMUL LFM2__VCAT(LFM2__VISA, VMUL)
#define LFM2__VADD LFM2__VCAT(LFM2__VISA, VADD)
#define LFM2__VDIV LFM2__VCAT(LFM2__VISA, VDIV)
#define LFM2__VSET1 LFM2__VCAT(LFM2__VISA, VSET1)
#define LFM2__VHSUM LFM2__VCAT(LFM2__VISA, VHSUM)
#define LFM2__VEXP LFM2__VCAT(LFM2__VISA, VEXP)
#define LFM2__VBF16 LFM2__VCAT(LFM2__VISA, VBF16)
#define LFM2__VF16 LFM2__VCAT(LFM2__VISA, VF16)
#ifdef LFM2__HAVE_AVX512
#define LFM2__AVX512_W 16
#define LFM2__AVX512_VT __m512
#define LFM2__AVX512_VTGT LFM2__TGT_AVX512
#define LFM2__AVX512_VZERO() _mm512_setzero_ps()
#define LFM2__AVX512_VLOAD(p) _mm512_loadu_ps(p)
#define LFM2__AVX512_VSTORE(p, v) _mm512_storeu_ps(p, v)
#define LFM2__AVX512_VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define LFM2__AVX512_VMUL(a, b) _mm512_mul_ps(a, b)
#define LFM2__AVX512_VADD(a, b) _mm512_add_ps(a, b)
#define LFM2__AVX512_VDIV(a, b) _mm512_div_ps(a, b)
#define LFM2__AVX512_VSET1(s) _mm512_set1_ps(s)
#define LFM2__AVX512_VHSUM(a) lfm2__hsum512(a)
#define LFM2__AVX512_VEXP(a) lfm2__vexp512(a)
#define LFM2__AVX512_VBF16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, p)))), 16))
#define LFM2__AVX512_VF16(p) _mm512_cvtph_ps(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, p))))
#define LFM2__VISA LFM2__AVX512_
LFM2__DEF_KERNELS(f32_avx512, LFM2__WL_F32, 4)
LFM2__DEF_KERNELS(bf16_avx512, LFM2__WL_BF16, 2)
LFM2__DEF_KERNELS(f16_avx512, LFM2__WL_F16, 2)
LFM2__DEF_VECOPS(avx512)
static const lfm2__vops lfm2__vops_avx512 = {lfm2__attend_avx512, lfm2__silu_mul_avx512};
#undef LFM2__VISA
#endif
#ifdef LFM2__HAVE_AVX2
#define LFM2__AVX2_W 8
#define LFM2__AVX2_VT __m256
#define LFM2__AVX2_VTGT LFM2__TGT_AVX2
#define LFM2__AVX2_VZERO() _mm256_setzero_ps()
#define LFM2__AVX2_VLOAD(p) _mm256_loadu_ps(p)
#define LFM2__AVX2_VSTORE(p, v) _mm256_storeu_ps(p, v)
#define LFM2__AVX2_VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define LFM2__AVX2_VMUL(a, b) _mm256_mul_ps(a, b)
#define LFM2__AVX2_VADD(a, b) _mm256_add_ps(a, b)
#define LFM2__AVX2_VDIV(a, b) _mm256_div_ps(a, b)
#define LFM2__AVX2_VSET1(s) _mm256_set1_ps(s)
#define LFM2__AVX2_VHSUM(a) lfm2__hsum256(a)
#define LFM2__AVX2_VEXP(a) lfm2__vexp256(a)
#define LFM2__AVX2_VBF16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, p)))), 16))
#define LFM2__AVX2_VF16(p) _mm256_cvtph_ps(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, p))))
#define LFM2__VISA LFM2__AVX2_
LFM2__DEF_KERNELS(f32_avx2, LFM2__WL_F32, 4)
LFM2__DEF_KERNELS(bf16_avx2, LFM2__WL_BF16, 2)
LFM2__DEF_KERNELS(f16_avx2, LFM2__WL_F16, 2)
LFM2__DEF_VECOPS(avx2)
static const lfm2__vops lfm2__vops_avx2 = {lfm2__attend_avx2, lfm2__silu_mul_avx2};
#undef LFM2__VISA
#endif
#ifdef LFM2__HAVE_NEON
#define LFM2__NEON_W 4
#define LFM2__NEON_VT float32x4_t
#define LFM2__NEON_VTGT
#define LFM2__NEON_VZERO() vdupq_n_f32(0.0f)
#define LFM2__NEON_VLOAD(p) vld1q_f32(p)
#define LFM2__NEON_VSTORE(p, v) vst1q_f32(p, v)
#define LFM2__NEON_VFMA(a, b, c) vfmaq_f32(c, a, b)
#define LFM2__NEON_VMUL(a, b) vmulq_f32(a, b)
#define LFM2__NEON_VADD(a, b) vaddq_f32(a, b)
#define LFM2__NEON_VDIV(a, b) vdivq_f32(a, b)
#define LFM2__NEON_VSET1(s) vdupq_n_f32(s)
#define LFM2__NEON_VHSUM(a) vaddvq_f32(a)
#define LFM2__NEON_VEXP(a) lfm2__vexp128(a)
#define LFM2__NEON_VBF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define LFM2__NEON_VF16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define LFM2__VISA LFM2__NEON_
LFM2__DEF_KERNELS(f32_neon, LFM2__WL_F32, 4)
LFM2__DEF_KERNELS(bf16_neon, LFM2__WL_BF16, 2)
LFM2__DEF_KERNELS(f16_neon, LFM2__WL_F16, 2)
LFM2__DEF_VECOPS(neon)
static const lfm2__vops lfm2__vops_neon = {lfm2__attend_neon, lfm2__silu_mul_neon};
#undef LFM2__VISA
#endif

#ifdef LFM2__HAVE_WASM
/* WebAssembly SIMD128: 4 lanes, multiply then add (no fused multiply-add in SIMD128) */
static float lfm2__hsum_wasm(v128_t a) {
    return (wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1)) + (wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3));
}
static v128_t lfm2__vexp_wasm(v128_t x) {
    v128_t fx, r, y, e;
    x = wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(-87.3f)), wasm_f32x4_splat(88.0f));
    fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
    r = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
    r = wasm_f32x4_sub(r, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
#define LFM2__WASM_FMA(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
    LFM2__EXP_POLY(LFM2__WASM_FMA, wasm_f32x4_mul, wasm_f32x4_splat, wasm_f32x4_add)
    e = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(fx), wasm_i32x4_splat(127)), 23);
    return wasm_f32x4_mul(y, e);
}
/* 4 f16 -> f32, exact: the magnitude bits shifted into f32 position times 2^112 (denormals
   included), exponent 31 (inf, NaN) made 255, then the sign */
static v128_t lfm2__vf16_wasm(const uint16_t *p) {
    v128_t u = wasm_u32x4_load16x4(p), m = wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(0x7fff)), 13);
    v128_t f = wasm_f32x4_mul(m, wasm_f32x4_splat(5.192296858534828e33f)); /* 2^112 */
    v128_t special = wasm_i32x4_eq(wasm_v128_and(u, wasm_i32x4_splat(0x7c00)), wasm_i32x4_splat(0x7c00));
    f = wasm_v128_bitselect(wasm_v128_or(m, wasm_i32x4_splat(0x7f800000)), f, special);
    return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(0x8000)), 16));
}
#define LFM2__WASM_W 4
#define LFM2__WASM_VT v128_t
#define LFM2__WASM_VTGT
#define LFM2__WASM_VZERO() wasm_f32x4_splat(0.0f)
#define LFM2__WASM_VLOAD(p) wasm_v128_load(p)
#define LFM2__WASM_VSTORE(p, v) wasm_v128_store(p, v)
#define LFM2__WASM_VFMA(a, b, c) wasm_f32x4_add(wasm_f32x4_mul(a, b), c)
#define LFM2__WASM_VMUL(a, b) wasm_f32x4_mul(a, b)
#define LFM2__WASM_VADD(a, b) wasm_f32x4_add(a, b)
#define LFM2__WASM_VDIV(a, b) wasm_f32x4_div(a, b)
#define LFM2__WASM_VSET1(s) wasm_f32x4_splat(s)
#define LFM2__WASM_VHSUM(a) lfm2__hsum_wasm(a)
#define LFM2__WASM_VEXP(a) lfm2__vexp_wasm(a)
#define LFM2__WASM_VBF16(p) wasm_i32x4_shl(wasm_u32x4_load16x4(p), 16)
#define LFM2__WASM_VF16(p) lfm2__vf16_wasm(p)
#undef LFM2__INREG
#define LFM2__INREG(v) (void)0
#define LFM2__VISA LFM2__WASM_
LFM2__DEF_KERNELS(f32_wasm, LFM2__WL_F32, 4)
LFM2__DEF_KERNELS(bf16_wasm, LFM2__WL_BF16, 2)
LFM2__DEF_KERNELS(f16_wasm, LFM2__WL_F16, 2)
LFM2__DEF_VECOPS(wasm)
static const lfm2__vops lfm2__vops_wasm = {lfm2__attend_wasm, lfm2__silu_mul_wasm};
#undef LFM2__VISA
#endif

#ifdef LFM2__HAVE_NEON32
/* armv7 NEON: 4 lanes; no vector division, horizontal add or round-to-nearest instruction */
#if defined(__ARM_FEATURE_FMA)
#define LFM2__N32_FMA(a, b, c) vfmaq_f32(c, a, b)
#else
#define LFM2__N32_FMA(a, b, c) vmlaq_f32(c, a, b)
#endif
static float lfm2__hsum_n32(float32x4_t a) {
    float32x2_t s = vadd_f32(vget_low_f32(a), vget_high_f32(a));
    return vget_lane_f32(vpadd_f32(s, s), 0);
}
static float32x4_t lfm2__vdiv_n32(float32x4_t a, float32x4_t b) {
    float x[4], y[4];
    vst1q_f32(x, a);
    vst1q_f32(y, b);
    x[0] /= y[0]; x[1] /= y[1]; x[2] /= y[2]; x[3] /= y[3];
    return vld1q_f32(x);
}
static float32x4_t lfm2__vexp_n32(float32x4_t x) {
    float32x4_t fx, r, y, t;
    int32x4_t fi;
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.0f));
    t = vmulq_f32(x, vdupq_n_f32(1.44269504088896341f));
    /* round half away from zero (any rounding keeps |r| <= ln2 / 2 + a little) */
    fi = vcvtq_s32_f32(vaddq_f32(t, vbslq_f32(vcgeq_f32(t, vdupq_n_f32(0.0f)), vdupq_n_f32(0.5f), vdupq_n_f32(-0.5f))));
    fx = vcvtq_f32_s32(fi);
    r = vmlsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vmlsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
    LFM2__EXP_POLY(LFM2__N32_FMA, vmulq_f32, vdupq_n_f32, vaddq_f32)
    return vmulq_f32(y, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(fi, vdupq_n_s32(127)), 23)));
}
#define LFM2__N32_W 4
#define LFM2__N32_VT float32x4_t
#define LFM2__N32_VTGT
#define LFM2__N32_VZERO() vdupq_n_f32(0.0f)
#define LFM2__N32_VLOAD(p) vld1q_f32(p)
#define LFM2__N32_VSTORE(p, v) vst1q_f32(p, v)
#define LFM2__N32_VFMA(a, b, c) LFM2__N32_FMA(a, b, c)
#define LFM2__N32_VMUL(a, b) vmulq_f32(a, b)
#define LFM2__N32_VADD(a, b) vaddq_f32(a, b)
#define LFM2__N32_VDIV(a, b) lfm2__vdiv_n32(a, b)
#define LFM2__N32_VSET1(s) vdupq_n_f32(s)
#define LFM2__N32_VHSUM(a) lfm2__hsum_n32(a)
#define LFM2__N32_VEXP(a) lfm2__vexp_n32(a)
#define LFM2__N32_VBF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define LFM2__N32_VF16(p) LFM2__VZERO()
#define LFM2__VISA LFM2__N32_
LFM2__DEF_KERNELS(f32_n32, LFM2__WL_F32, 4)
LFM2__DEF_KERNELS(bf16_n32, LFM2__WL_BF16, 2)
LFM2__DEF_VECOPS(n32)
static const lfm2__vops lfm2__vops_n32 = {lfm2__attend_n32, lfm2__silu_mul_n32};
#undef LFM2__VISA
#endif

/* Decode streams every weight once: the kernels' one-token loops ask for the bytes
   LFM2__PF_DIST ahead of the ones they read (one prefetch per 64-byte line), which keeps more of
   the stream in flight than the hardware prefetchers alone do. 2 threads, 350M bf16 decode on
   this project's machine: 17.2 -> 24.2 tok/s at 4 KB (1 KB: 22.6, 8 KB 22.8, 16 KB 22.5); see
   tools/BENCH_NOTES.md. A prefetch never faults, past the end of a matrix included. */
#ifndef LFM2__PF_DIST
#define LFM2__PF_DIST 4096
#endif
#ifndef LFM2__PF_LOCALITY
#define LFM2__PF_LOCALITY 3
#endif
#if defined(__GNUC__) || defined(__clang__)
#define LFM2__PREFETCH(p) __builtin_prefetch(LFM2__CAST(const void *, p), 0, LFM2__PF_LOCALITY)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#define LFM2__PREFETCH(p) _mm_prefetch((const char *)(const void *)(p), LFM2__PF_LOCALITY == 3 ? _MM_HINT_T0 : LFM2__PF_LOCALITY == 2 ? _MM_HINT_T1 : _MM_HINT_T2)
#else
#define LFM2__PREFETCH(p) ((void)0)
#endif
/* the lines of [p, p + n) LFM2__PF_DIST ahead */
static LFM2__INLINE void lfm2__prefetch_ahead(const unsigned char *p, size_t n) {
    size_t k;
    for (k = 0; k < n; k += 64) LFM2__PREFETCH(p + LFM2__PF_DIST + k);
}
#define LFM2__PREFETCH_AHEAD(p, n) lfm2__prefetch_ahead(p, LFM2__CAST(size_t, n))

/* the per-token lists of the NEON and AVX2 tiles (named registers, no arrays: GCC kept arrays on
   the stack) */
#define LFM2__FOR4(M, ...) M(0, __VA_ARGS__) M(1, __VA_ARGS__) M(2, __VA_ARGS__) M(3, __VA_ARGS__)
#define LFM2__FOR1(M, ...) M(0, __VA_ARGS__)

/* ---- F32X / F16X / BF16X, the interleaved float layouts (see lfm2__fx_index) ---------------- */
#ifdef LFM2__HAVE_AVX512
/* the 16-row results a0..a7 of tokens t..t+7 of one interleaved group (og = out + 16 g) */
static LFM2__TGT_AVX512 LFM2__INLINE void lfm2__store16x8(float *og, int32_t t, int32_t rows, __m512 a0, __m512 a1, __m512 a2, __m512 a3,
                                         __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
    float *o = og + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows);
    size_t st = LFM2__CAST(size_t, rows);
    _mm512_storeu_ps(o, a0); _mm512_storeu_ps(o + st, a1); _mm512_storeu_ps(o + 2 * st, a2); _mm512_storeu_ps(o + 3 * st, a3);
    _mm512_storeu_ps(o + 4 * st, a4); _mm512_storeu_ps(o + 5 * st, a5); _mm512_storeu_ps(o + 6 * st, a6); _mm512_storeu_ps(o + 7 * st, a7);
}
/* The interleaved float layouts (F32X / F16X / BF16X, see lfm2__fx_index): 16 rows per vector.
   Per column pair, the two weight vectors we (column 2p) and wo (column 2p+1) are multiplied by
   each token's broadcast activations into two accumulators, even and odd columns, added at the
   end: 8 tokens share every weight load (18 of the 32 registers), the rest go one at a time with
   the same operations. Every product is an f32 FMA, as in the row-major kernels: only the order
   of the sum differs (column by column instead of 16 lanes and a horizontal sum). */
#define LFM2__FXL_F32X(gb, p)                                                                                       \
    const float *wf = LFM2__CAST(const float *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p);         \
    __m512 we = _mm512_loadu_ps(wf), wo = _mm512_loadu_ps(wf + 16)
#define LFM2__FXL_F16X(gb, p)                                                                                       \
    const __m256i *wh = LFM2__CAST(const __m256i *, LFM2__CAST(const void *, LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p))); \
    __m512 we = _mm512_cvtph_ps(_mm256_loadu_si256(wh)), wo = _mm512_cvtph_ps(_mm256_loadu_si256(wh + 1))
#define LFM2__FXL_BF16X(gb, p)                                                                                      \
    __m512i wv = _mm512_loadu_si512(LFM2__CAST(const void *, LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p))); \
    __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16)), wo = _mm512_castsi512_ps(_mm512_and_si512(wv, _mm512_set1_epi32(LFM2__CAST(int, 0xFFFF0000u))))
/* token u of the tile: even and odd columns of pair p */
#define LFM2__FX_TOK(u, E, O)                                                                                        \
    E = _mm512_fmadd_ps(we, _mm512_set1_ps(xp[LFM2__CAST(size_t, u) * LFM2__CAST(size_t, K)]), E);                  \
    O = _mm512_fmadd_ps(wo, _mm512_set1_ps(xp[LFM2__CAST(size_t, u) * LFM2__CAST(size_t, K) + 1]), O)
#define LFM2__DEF_FX16_KERNEL(SFX, WL, ESIZE)                                                                          \
    static LFM2__TGT_AVX512 void lfm2__mm_##SFX(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { \
        const float *x = LFM2__CAST(const float *, xv);                                                             \
        int32_t K = w->cols, rows = w->rows, np = K / 2, g, t, p;                                                   \
        for (g = r0 / 16; g < r1 / 16; g++) {                                                                       \
            const unsigned char *gb = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * 16 * LFM2__CAST(size_t, K) * (ESIZE); \
            float *og = out + LFM2__CAST(size_t, g) * 16;                                                           \
            for (t = 0; t + 8 <= B; t += 8) { /* prefill: 8 tokens */                                               \
                const float *x0 = x + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);                                \
                __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0, e4 = e0, e5 = e0, e6 = e0, e7 = e0;      \
                __m512 o0 = e0, o1 = e0, o2 = e0, o3 = e0, o4 = e0, o5 = e0, o6 = e0, o7 = e0;                      \
                for (p = 0; p < np; p++) {                                                                          \
                    const float *xp = x0 + 2 * p;                                                                   \
                    WL(gb, p);                                                                                      \
                    LFM2__FX_TOK(0, e0, o0); LFM2__FX_TOK(1, e1, o1); LFM2__FX_TOK(2, e2, o2); LFM2__FX_TOK(3, e3, o3); \
                    LFM2__FX_TOK(4, e4, o4); LFM2__FX_TOK(5, e5, o5); LFM2__FX_TOK(6, e6, o6); LFM2__FX_TOK(7, e7, o7); \
                }                                                                                                   \
                lfm2__store16x8(og, t, rows, _mm512_add_ps(e0, o0), _mm512_add_ps(e1, o1), _mm512_add_ps(e2, o2),   \
                                _mm512_add_ps(e3, o3), _mm512_add_ps(e4, o4), _mm512_add_ps(e5, o5),               \
                                _mm512_add_ps(e6, o6), _mm512_add_ps(e7, o7));                                     \
            }                                                                                                       \
            for (; t < B; t++) { /* decode and the rest: one token, the same operations */                          \
                const float *x0 = x + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);                                \
                __m512 e0 = _mm512_setzero_ps(), o0 = e0;                                                           \
                for (p = 0; p < np; p++) {                                                                          \
                    const float *xp = x0 + 2 * p;                                                                   \
                    LFM2__PREFETCH_AHEAD(gb + 32 * LFM2__CAST(size_t, p) * (ESIZE), 32 * (ESIZE)); \
                    WL(gb, p);                                                                                      \
                    LFM2__FX_TOK(0, e0, o0);                                                                        \
                }                                                                                                   \
                _mm512_storeu_ps(og + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows), _mm512_add_ps(e0, o0));     \
            }                                                                                                       \
        }                                                                                                           \
    }
LFM2__DEF_FX16_KERNEL(f32x_avx512, LFM2__FXL_F32X, 4)
LFM2__DEF_FX16_KERNEL(f16x_avx512, LFM2__FXL_F16X, 2)
LFM2__DEF_FX16_KERNEL(bf16x_avx512, LFM2__FXL_BF16X, 2)
#endif
#ifdef LFM2__HAVE_AVX2

/* F16X and BF16X with AVX2: rows 0-7 and 8-15 of a group in two registers, 4-token tiles (16
   registers: 4 weight vectors, 8 accumulators), one accumulator per (token, 8 rows) that takes
   column 2p then 2p+1. (350M on one core against the row-major kernels: bf16 prefill 99 -> 152
   tok/s, decode 24 -> 35; f16 the same; an F32X tile was slower for f32 prefill, 95 -> 81, so f32
   matrices stay row-major here.) */
#define LFM2__FXL2_F16X(gb, p)                                                                                      \
    const __m128i *wh = LFM2__CAST(const __m128i *, LFM2__CAST(const void *, LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p))); \
    __m256 we0 = _mm256_cvtph_ps(_mm_loadu_si128(wh)), we1 = _mm256_cvtph_ps(_mm_loadu_si128(wh + 1));             \
    __m256 wo0 = _mm256_cvtph_ps(_mm_loadu_si128(wh + 2)), wo1 = _mm256_cvtph_ps(_mm_loadu_si128(wh + 3))
#define LFM2__FXL2_BF16X(gb, p)                                                                                     \
    const __m256i *wb = LFM2__CAST(const __m256i *, LFM2__CAST(const void *, LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p))); \
    __m256i v0 = _mm256_loadu_si256(wb), v1 = _mm256_loadu_si256(wb + 1), mh = _mm256_set1_epi32(LFM2__CAST(int, 0xFFFF0000u)); \
    __m256 we0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), wo0 = _mm256_castsi256_ps(_mm256_and_si256(v0, mh)); \
    __m256 we1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), wo1 = _mm256_castsi256_ps(_mm256_and_si256(v1, mh))
#define LFM2__FX2_TOK(u, A0, A1)                                                                                     \
    {                                                                                                                 \
        __m256 xe = _mm256_broadcast_ss(xp + LFM2__CAST(size_t, u) * LFM2__CAST(size_t, K)), xo = _mm256_broadcast_ss(xp + LFM2__CAST(size_t, u) * LFM2__CAST(size_t, K) + 1); \
        A0 = _mm256_fmadd_ps(wo0, xo, _mm256_fmadd_ps(we0, xe, A0));                                                \
        A1 = _mm256_fmadd_ps(wo1, xo, _mm256_fmadd_ps(we1, xe, A1));                                                \
    }
#define LFM2__FX2_STORE(u, A0, A1)                                                                                   \
    _mm256_storeu_ps(og + LFM2__CAST(size_t, t + (u)) * LFM2__CAST(size_t, rows), A0);                             \
    _mm256_storeu_ps(og + LFM2__CAST(size_t, t + (u)) * LFM2__CAST(size_t, rows) + 8, A1)
#define LFM2__DEF_FX8_KERNEL(SFX, WL, ESIZE)                                                                          \
    static LFM2__TGT_AVX2 void lfm2__mm_##SFX(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { \
        const float *x = LFM2__CAST(const float *, xv);                                                             \
        int32_t K = w->cols, rows = w->rows, np = K / 2, g, t, p;                                                   \
        for (g = r0 / 16; g < r1 / 16; g++) {                                                                       \
            const unsigned char *gb = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * 16 * LFM2__CAST(size_t, K) * (ESIZE); \
            float *og = out + LFM2__CAST(size_t, g) * 16;                                                           \
            for (t = 0; t + 4 <= B; t += 4) { /* prefill: 4 tokens */                                               \
                const float *x0 = x + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);                                \
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00; \
                for (p = 0; p < np; p++) {                                                                          \
                    const float *xp = x0 + 2 * p;                                                                   \
                    WL(gb, p);                                                                                      \
                    LFM2__FX2_TOK(0, a00, a01) LFM2__FX2_TOK(1, a10, a11) LFM2__FX2_TOK(2, a20, a21) LFM2__FX2_TOK(3, a30, a31) \
                }                                                                                                   \
                LFM2__FX2_STORE(0, a00, a01); LFM2__FX2_STORE(1, a10, a11); LFM2__FX2_STORE(2, a20, a21); LFM2__FX2_STORE(3, a30, a31); \
            }                                                                                                       \
            for (; t < B; t++) { /* decode and the rest: one token, the same operations */                          \
                const float *x0 = x + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);                                \
                __m256 a00 = _mm256_setzero_ps(), a01 = a00;                                                        \
                for (p = 0; p < np; p++) {                                                                          \
                    const float *xp = x0 + 2 * p;                                                                   \
                    LFM2__PREFETCH_AHEAD(gb + 32 * LFM2__CAST(size_t, p) * (ESIZE), 32 * (ESIZE)); \
                    WL(gb, p);                                                                                      \
                    LFM2__FX2_TOK(0, a00, a01)                                                                      \
                }                                                                                                   \
                LFM2__FX2_STORE(0, a00, a01);                                                                       \
            }                                                                                                       \
        }                                                                                                           \
    }
LFM2__DEF_FX8_KERNEL(f16x_avx2, LFM2__FXL2_F16X, 2)
LFM2__DEF_FX8_KERNEL(bf16x_avx2, LFM2__FXL2_BF16X, 2)
#endif
#ifdef LFM2__HAVE_NEON
/* F32X / F16X / BF16X with NEON: the 16 rows of a group in 4 registers. Per column pair the 8
   weight vectors (rows 0-15 of column 2p, then of 2p+1) are multiplied by each token's two
   activations with by-lane multiply-adds (no broadcasts, no horizontal sums), 4 tokens at a time
   (16 accumulators); one accumulator per (token, 4 rows) takes column 2p then 2p+1, the 1-token
   path does the same operations. */
#define LFM2__FXN_F32X(gb, p)                                                                                       \
    const float *wf = LFM2__CAST(const float *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p);         \
    float32x4_t e0 = vld1q_f32(wf), e1 = vld1q_f32(wf + 4), e2 = vld1q_f32(wf + 8), e3 = vld1q_f32(wf + 12);        \
    float32x4_t o0 = vld1q_f32(wf + 16), o1 = vld1q_f32(wf + 20), o2 = vld1q_f32(wf + 24), o3 = vld1q_f32(wf + 28)
#define LFM2__FXN_F16X(gb, p)                                                                                       \
    const uint16_t *wh = LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, gb)) + 32 * LFM2__CAST(size_t, p);   \
    float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(wh)), h1 = vreinterpretq_f16_u16(vld1q_u16(wh + 8));           \
    float16x8_t h2 = vreinterpretq_f16_u16(vld1q_u16(wh + 16)), h3 = vreinterpretq_f16_u16(vld1q_u16(wh + 24));     \
    float32x4_t e0 = vcvt_f32_f16(vget_low_f16(h0)), e1 = vcvt_high_f32_f16(h0), e2 = vcvt_f32_f16(vget_low_f16(h1)), e3 = vcvt_high_f32_f16(h1); \
    float32x4_t o0 = vcvt_f32_f16(vget_low_f16(h2)), o1 = vcvt_high_f32_f16(h2), o2 = vcvt_f32_f16(vget_low_f16(h3)), o3 = vcvt_high_f32_f16(h3)
#define LFM2__FXN_BF16X(gb, p)                                                                                      \
    const uint32_t *wb = LFM2__CAST(const uint32_t *, LFM2__CAST(const void *, gb)) + 16 * LFM2__CAST(size_t, p);   \
    uint32x4_t v0 = vld1q_u32(wb), v1 = vld1q_u32(wb + 4), v2 = vld1q_u32(wb + 8), v3 = vld1q_u32(wb + 12), mh = vdupq_n_u32(0xFFFF0000u); \
    float32x4_t e0 = vreinterpretq_f32_u32(vshlq_n_u32(v0, 16)), e1 = vreinterpretq_f32_u32(vshlq_n_u32(v1, 16));   \
    float32x4_t e2 = vreinterpretq_f32_u32(vshlq_n_u32(v2, 16)), e3 = vreinterpretq_f32_u32(vshlq_n_u32(v3, 16));   \
    float32x4_t o0 = vreinterpretq_f32_u32(vandq_u32(v0, mh)), o1 = vreinterpretq_f32_u32(vandq_u32(v1, mh));       \
    float32x4_t o2 = vreinterpretq_f32_u32(vandq_u32(v2, mh)), o3 = vreinterpretq_f32_u32(vandq_u32(v3, mh))
#define LFM2__FXN_ZERO(u, _) float32x4_t a##u##0 = vdupq_n_f32(0.0f), a##u##1 = a##u##0, a##u##2 = a##u##0, a##u##3 = a##u##0;
#define LFM2__FXN_TOK(u, _)                                                                                          \
    {                                                                                                                 \
        float32x2_t xx = vld1_f32(xp + LFM2__CAST(size_t, u) * LFM2__CAST(size_t, K));                              \
        a##u##0 = vfmaq_lane_f32(vfmaq_lane_f32(a##u##0, e0, xx, 0), o0, xx, 1);                                    \
        a##u##1 = vfmaq_lane_f32(vfmaq_lane_f32(a##u##1, e1, xx, 0), o1, xx, 1);                                    \
        a##u##2 = vfmaq_lane_f32(vfmaq_lane_f32(a##u##2, e2, xx, 0), o2, xx, 1);                                    \
        a##u##3 = vfmaq_lane_f32(vfmaq_lane_f32(a##u##3, e3, xx, 0), o3, xx, 1);                                    \
    }
#define LFM2__FXN_STORE(u, _)                                                                                        \
    {                                                                                                                 \
        float *o = og + LFM2__CAST(size_t, t + (u)) * LFM2__CAST(size_t, rows);                                     \
        vst1q_f32(o, a##u##0); vst1q_f32(o + 4, a##u##1); vst1q_f32(o + 8, a##u##2); vst1q_f32(o + 12, a##u##3);   \
    }
#define LFM2__FXN_RUN(FOR, WL)                                                                                       \
    {                                                                                                                 \
        const float *x0 = x + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);                                         \
        FOR(LFM2__FXN_ZERO, 0)                                                                                        \
        for (p = 0; p < np; p++) {                                                                                    \
            const float *xp = x0 + 2 * p;                                                                             \
            WL(gb, p);                                                                                                \
            FOR(LFM2__FXN_TOK, 0)                                                                                     \
        }                                                                                                             \
        FOR(LFM2__FXN_STORE, 0)                                                                                       \
    }
#define LFM2__DEF_FXN_KERNEL(SFX, WL, ESIZE)                                                                          \
    static void lfm2__mm_##SFX(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { \
        const float *x = LFM2__CAST(const float *, xv);                                                             \
        int32_t K = w->cols, rows = w->rows, np = K / 2, g, t, p;                                                   \
        for (g = r0 / 16; g < r1 / 16; g++) {                                                                       \
            const unsigned char *gb = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * 16 * LFM2__CAST(size_t, K) * (ESIZE); \
            float *og = out + LFM2__CAST(size_t, g) * 16;                                                           \
            for (t = 0; t + 4 <= B; t += 4) LFM2__FXN_RUN(LFM2__FOR4, WL) /* prefill: 4 tokens */                   \
            for (; t < B; t++) LFM2__FXN_RUN(LFM2__FOR1, WL)           /* decode and the rest: the same operations */ \
        }                                                                                                           \
    }
LFM2__DEF_FXN_KERNEL(f32x_neon, LFM2__FXN_F32X, 4)
LFM2__DEF_FXN_KERNEL(f16x_neon, LFM2__FXN_F16X, 2)
LFM2__DEF_FXN_KERNEL(bf16x_neon, LFM2__FXN_BF16X, 2)
#endif

/* ---- int8 activations for the block formats ------------------------------------------------
   Q8 and Q4 weights multiply int8 activations, as llama.cpp's Q8_0 x Q8_0 and Q4_0 x Q8_0 dot
   products do: every token row x[0..K) is quantized in blocks of 32 (dx = max|x| / 127,
   q = round(x / dx)) and
       out[r] = sum over blocks b of  (dw[r][b] * dx[b]) * (sum over k in b of  wq[r][k] * q[k])
   with the inner sums exact in int32 (Q4: wq = nibble - 8). The scalar reference and the SIMD
   kernels differ only in the order of the float sums: the kernels keep one float per "lane" of
   4 consecutive columns, which is what vpdpbusd / sdot sum into one int32.
   A quantized row takes LFM2__QROW_BYTES(K) = 3K + K/8 bytes (K % 32 == 0):
       int8  q[K]
       int32 s[K/4]  -c * (sum of the lane's 4 q): the weights enter the products as unsigned
                     bytes (vpdpbusd multiplies unsigned by signed), Q8 as w + 128 (c = 128),
                     Q4 as the nibble = w + 8 (c = 8); s cancels the offset
       f32   d[K/4]  dx of the lane's block
       int32 sb[K/32] the block's s (the sum of its 8 lanes' s), for the interleaved formats
   A block holding a NaN or an infinity gets q = 0 and dx = NaN (its outputs become NaN, as f32
   arithmetic would make them); a block whose max|x| is below 1e-30 is zero. */
#define LFM2__QROW_BYTES(K) (LFM2__CAST(size_t, K) * 3 + LFM2__CAST(size_t, K) / 8)

static void lfm2__quantize_act_ref(unsigned char *dst, const float *x, int32_t K, int q4) {
    int32_t *s = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + K));
    float *d = LFM2__CAST(float *, LFM2__CAST(void *, dst + 2 * LFM2__CAST(size_t, K)));
    int32_t *sb = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + 3 * LFM2__CAST(size_t, K)));
    int32_t b, i;
    for (b = 0; b < K; b += LFM2__QBLK) {
        const float *xb = x + b;
        float amax = 0, id = 0, dx = 0;
        int bad = 0, qv[LFM2__QBLK];
        for (i = 0; i < LFM2__QBLK; i++) {
            float a = fabsf(xb[i]);
            bad |= !(a <= FLT_MAX);
            amax = a > amax ? a : amax;
        }
        if (bad) dx = NAN;
        else if (amax >= 1e-30f) { dx = amax / 127.0f; id = 127.0f / amax; }
        for (i = 0; i < LFM2__QBLK; i++) {
            float v = bad ? 0.0f : xb[i] * id;
            int qi = LFM2__CAST(int, v + (v >= 0.0f ? 0.5f : -0.5f));
            qv[i] = qi > 127 ? 127 : qi < -127 ? -127 : qi;
            dst[b + i] = LFM2__CAST(unsigned char, qv[i]);
        }
        sb[b / LFM2__QBLK] = 0;
        for (i = 0; i < LFM2__QBLK / 4; i++) {
            s[b / 4 + i] = (q4 ? -8 : -128) * (qv[4 * i] + qv[4 * i + 1] + qv[4 * i + 2] + qv[4 * i + 3]);
            sb[b / LFM2__QBLK] += s[b / 4 + i];
            d[b / 4 + i] = dx;
        }
    }
}
#ifdef LFM2__HAVE_AVX512
/* the same bytes as lfm2__quantize_act_ref (tested), 16 lanes at a time; blocks holding a NaN or
   an infinity, or all but zero, go through the scalar code */
static LFM2__TGT_AVX512 void lfm2__quantize_act_avx512(unsigned char *dst, const float *x, int32_t K, int q4) {
    int32_t *s = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + K));
    float *d = LFM2__CAST(float *, LFM2__CAST(void *, dst + 2 * LFM2__CAST(size_t, K)));
    int32_t *sb = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + 3 * LFM2__CAST(size_t, K)));
    int32_t b, i;
    for (b = 0; b < K; b += LFM2__QBLK) {
        const float *xb = x + b;
        float amax = 0, id = 0, dx = 0;
        int bad = 0;
        { /* the same arithmetic as the scalar code below, 16 lanes at a time */
            __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16), m;
            __m512 a0 = _mm512_abs_ps(x0), a1 = _mm512_abs_ps(x1);
            __m512 big = _mm512_set1_ps(FLT_MAX);
            if (_mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ)) bad = 1;
            else {
                __m256 h;
                __m128 t;
                m = _mm512_max_ps(a0, a1);
                h = _mm256_max_ps(_mm512_castps512_ps256(m), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)));
                t = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                t = _mm_max_ps(t, _mm_movehl_ps(t, t));
                t = _mm_max_ss(t, _mm_shuffle_ps(t, t, 1));
                amax = _mm_cvtss_f32(t);
                if (amax >= 1e-30f) {
                    __m512 idv, v0, v1, half = _mm512_set1_ps(0.5f), nhalf = _mm512_set1_ps(-0.5f), zero = _mm512_setzero_ps();
                    __m512i q0, q1, lim = _mm512_set1_epi32(127);
                    dx = amax / 127.0f;
                    id = 127.0f / amax;
                    idv = _mm512_set1_ps(id);
                    v0 = _mm512_mul_ps(x0, idv);
                    v1 = _mm512_mul_ps(x1, idv);
                    v0 = _mm512_add_ps(v0, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v0, zero, _CMP_GE_OQ), nhalf, half));
                    v1 = _mm512_add_ps(v1, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v1, zero, _CMP_GE_OQ), nhalf, half));
                    q0 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvttps_epi32(v0), lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
                    q1 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvttps_epi32(v1), lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
                    _mm_storeu_si128(LFM2__CAST(__m128i *, LFM2__CAST(void *, dst + b)), _mm512_cvtepi32_epi8(q0));
                    _mm_storeu_si128(LFM2__CAST(__m128i *, LFM2__CAST(void *, dst + b + 16)), _mm512_cvtepi32_epi8(q1));
                    { /* -c * lane sums */
                        __m512i c = _mm512_set1_epi32(q4 ? -8 : -128);
                        __m512i p = _mm512_mullo_epi32(c, _mm512_add_epi32(q0, _mm512_srli_epi64(q0, 32)));
                        __m512i r = _mm512_mullo_epi32(c, _mm512_add_epi32(q1, _mm512_srli_epi64(q1, 32)));
                        int32_t t0[16], t1[16];
                        _mm512_storeu_si512(LFM2__CAST(void *, t0), p);
                        _mm512_storeu_si512(LFM2__CAST(void *, t1), r);
                        for (i = 0; i < 4; i++) { s[b / 4 + i] = t0[4 * i] + t0[4 * i + 2]; s[b / 4 + 4 + i] = t1[4 * i] + t1[4 * i + 2]; }
                        sb[b / LFM2__QBLK] = s[b / 4] + s[b / 4 + 1] + s[b / 4 + 2] + s[b / 4 + 3] + s[b / 4 + 4] + s[b / 4 + 5] + s[b / 4 + 6] + s[b / 4 + 7];
                    }
                    _mm256_storeu_ps(d + b / 4, _mm256_set1_ps(dx));
                    continue;
                }
            }
        }
        (void)bad;
        { /* the scalar path for this block: quantize a copy of it as a row of 32 */
            unsigned char tmp[LFM2__QROW_BYTES(LFM2__QBLK)];
            lfm2__quantize_act_ref(tmp, xb, LFM2__QBLK, q4);
            memcpy(dst + b, tmp, LFM2__QBLK);
            memcpy(s + b / 4, tmp + LFM2__QBLK, 4 * (LFM2__QBLK / 4));
            memcpy(d + b / 4, tmp + 2 * LFM2__QBLK, 4 * (LFM2__QBLK / 4));
            memcpy(sb + b / LFM2__QBLK, tmp + 3 * LFM2__QBLK, 4);
        }
    }
}
#endif
#ifdef LFM2__HAVE_NEON
/* the same bytes as lfm2__quantize_act_ref (tested), 4 lanes at a time; blocks holding a NaN or
   an infinity, or all but zero, go through the scalar code */
static void lfm2__quantize_act_neon(unsigned char *dst, const float *x, int32_t K, int q4) {
    int32_t *s = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + K));
    float *d = LFM2__CAST(float *, LFM2__CAST(void *, dst + 2 * LFM2__CAST(size_t, K)));
    int32_t *sb = LFM2__CAST(int32_t *, LFM2__CAST(void *, dst + 3 * LFM2__CAST(size_t, K)));
    int32_t b, i;
    for (b = 0; b < K; b += LFM2__QBLK) {
        const float *xb = x + b;
        float32x4_t v[8], m;
        float amax;
        for (i = 0; i < 8; i++) v[i] = vld1q_f32(xb + 4 * i);
        m = vmaxq_f32(vmaxq_f32(vmaxq_f32(vabsq_f32(v[0]), vabsq_f32(v[1])), vmaxq_f32(vabsq_f32(v[2]), vabsq_f32(v[3]))),
                      vmaxq_f32(vmaxq_f32(vabsq_f32(v[4]), vabsq_f32(v[5])), vmaxq_f32(vabsq_f32(v[6]), vabsq_f32(v[7]))));
        amax = vmaxvq_f32(m); /* (FMAX: a NaN anywhere gives NaN) */
        if (amax <= FLT_MAX && amax >= 1e-30f) {
            float dx = amax / 127.0f, id = 127.0f / amax;
            int32x4_t q[8], lim = vdupq_n_s32(127), nlim = vdupq_n_s32(-127), ls;
            int16x8_t h0, h1;
            for (i = 0; i < 8; i++) {
                float32x4_t t = vmulq_n_f32(v[i], id);
                t = vaddq_f32(t, vbslq_f32(vcgeq_f32(t, vdupq_n_f32(0.0f)), vdupq_n_f32(0.5f), vdupq_n_f32(-0.5f)));
                q[i] = vmaxq_s32(vminq_s32(vcvtq_s32_f32(t), lim), nlim);
            }
            h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
            h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
            vst1q_s8(LFM2__CAST(int8_t *, LFM2__CAST(void *, dst + b)), vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
            h0 = vcombine_s16(vmovn_s32(q[4]), vmovn_s32(q[5]));
            h1 = vcombine_s16(vmovn_s32(q[6]), vmovn_s32(q[7]));
            vst1q_s8(LFM2__CAST(int8_t *, LFM2__CAST(void *, dst + b + 16)), vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
            ls = vmulq_n_s32(vpaddq_s32(vpaddq_s32(q[0], q[1]), vpaddq_s32(q[2], q[3])), q4 ? -8 : -128);
            vst1q_s32(s + b / 4, ls);
            sb[b / LFM2__QBLK] = vaddvq_s32(ls);
            ls = vmulq_n_s32(vpaddq_s32(vpaddq_s32(q[4], q[5]), vpaddq_s32(q[6], q[7])), q4 ? -8 : -128);
            vst1q_s32(s + b / 4 + 4, ls);
            sb[b / LFM2__QBLK] += vaddvq_s32(ls);
            vst1q_f32(d + b / 4, vdupq_n_f32(dx));
            vst1q_f32(d + b / 4 + 4, vdupq_n_f32(dx));
            continue;
        }
        { /* the scalar path for this block: quantize a copy of it as a row of 32 */
            unsigned char tmp[LFM2__QROW_BYTES(LFM2__QBLK)];
            lfm2__quantize_act_ref(tmp, xb, LFM2__QBLK, q4);
            memcpy(dst + b, tmp, LFM2__QBLK);
            memcpy(s + b / 4, tmp + LFM2__QBLK, 4 * (LFM2__QBLK / 4));
            memcpy(d + b / 4, tmp + 2 * LFM2__QBLK, 4 * (LFM2__QBLK / 4));
            memcpy(sb + b / LFM2__QBLK, tmp + 3 * LFM2__QBLK, 4);
        }
    }
}
#endif
/* an int8 stored as a byte (portable: no implementation-defined conversion) */
static int32_t lfm2__s8(unsigned char v) { return LFM2__CAST(int32_t, v) - LFM2__CAST(int32_t, (v & 128u) << 1); }

/* Scalar reference of the block formats: rows [r0, r1) of out for B quantized token rows. */
static void lfm2__qmm_ref(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const unsigned char *qa = LFM2__CAST(const unsigned char *, xv);
    int32_t K = w->cols, nb = K / LFM2__QBLK, r, t, b, i;
    size_t qrow = LFM2__QROW_BYTES(K);
    for (r = r0; r < r1; r++)
        for (t = 0; t < B; t++) {
            const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;
            const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));
            float acc = 0;
            for (b = 0; b < nb; b++) {
                const unsigned char *qb = q + b * LFM2__QBLK;
                int32_t isum = 0;
                for (i = 0; i < LFM2__QBLK; i++) isum += lfm2__qval(w, r, b * LFM2__QBLK + i) * lfm2__s8(qb[i]);
                acc += (lfm2__qscale(w, r, b) * d[b * 8]) * LFM2__CAST(float, isum);
            }
            out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, w->rows) + LFM2__CAST(size_t, r)] = acc;
        }
}

/* ---- Q8 / Q4 row-major and Q8X / Q4X interleaved, on int8 activations ----------------------
   One float accumulator per lane of 4 columns and per (row, token), filled in column order and
   summed at the end by one fixed reduction: the same arithmetic in every tile, so results do
   not depend on the chunking of the tokens or the thread count. */
#ifdef LFM2__HAVE_AVX512
/* AVX-512 VNNI: steps of 64 columns (2 blocks, 16 lanes); 4 rows x 4 tokens, else 1 x 1.
   A step's weights: v = the 64 weights as unsigned bytes (Q8: w + 128, Q4: the nibbles in
   column order), d = the two block scales spread over their 8 lanes each. A step's activations:
   v = q, s = the offset correction, d = dx per lane. `full` is 0 for a last step of 32 columns
   (the upper lanes are zero). */
#define LFM2__QPF_ROWS 8 /* decode prefetches the scales of the row this far ahead (+14% int4 decode) */
typedef struct { __m512i v; __m512 d; } lfm2__qw;
typedef struct { __m512i v, s; __m512 d; } lfm2__qx;
static LFM2__TGT_VNNI LFM2__INLINE void lfm2__qw_step(lfm2__qw *o, const unsigned char *wr, const uint16_t *sc, int32_t k, int full, int q4) {
    uint32_t s2 = sc[k / LFM2__QBLK];
    if (full) s2 |= LFM2__CAST(uint32_t, sc[k / LFM2__QBLK + 1]) << 16;
    o->d = _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(LFM2__CAST(int, s2)))));
    if (q4) {
        const unsigned char *p = wr + k / 2;
        __m256i v = full ? _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, p)))
                         : _mm256_zextsi128_si256(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, p))));
        __m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(15)), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15));
        __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); /* [A lo, B lo, A hi, B hi] */
        o->v = _mm512_shuffle_i64x2(z, z, 0xD8);                            /* [A lo, A hi, B lo, B hi] */
    } else {
        const unsigned char *p = wr + k;
        o->v = _mm512_xor_si512(full ? _mm512_loadu_si512(LFM2__CAST(const void *, p))
                                     : _mm512_zextsi256_si512(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, p)))),
                                _mm512_set1_epi8(-128));
    }
}
static LFM2__TGT_VNNI LFM2__INLINE void lfm2__qx_step(lfm2__qx *o, const unsigned char *q, int32_t K, int32_t k, int full) {
    const int32_t *s = LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + K)) + k / 4;
    const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K))) + k / 4;
    if (full) {
        o->v = _mm512_loadu_si512(LFM2__CAST(const void *, q + k));
        o->s = _mm512_loadu_si512(LFM2__CAST(const void *, s));
        o->d = _mm512_loadu_ps(d);
    } else {
        o->v = _mm512_zextsi256_si512(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, q + k))));
        o->s = _mm512_zextsi256_si512(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, s))));
        o->d = _mm512_zextps256_ps512(_mm256_loadu_ps(d));
    }
}
/* acc += float(lane sums of w * q) * (dw * dx) */
#define LFM2__QPAIR(acc, W, X) acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32((X).s, (W).v, (X).v)), _mm512_mul_ps((W).d, (X).d), acc)
/* one step of the 4 x 4 tile; FULL is a constant, so the tail tests fold away */
#define LFM2__QTILE_STEP(FULL)                                                                                         \
    {                                                                                                                 \
        lfm2__qw w0, w1, w2, w3;                                                                                      \
        lfm2__qx x;                                                                                                   \
        lfm2__qw_step(&w0, wr0, sc0, k, FULL, q4); lfm2__qw_step(&w1, wr1, sc1, k, FULL, q4);                         \
        lfm2__qw_step(&w2, wr2, sc2, k, FULL, q4); lfm2__qw_step(&w3, wr3, sc3, k, FULL, q4);                         \
        lfm2__qx_step(&x, q0, K, k, FULL);                                                                            \
        LFM2__QPAIR(a00, w0, x); LFM2__QPAIR(a10, w1, x); LFM2__QPAIR(a20, w2, x); LFM2__QPAIR(a30, w3, x);           \
        lfm2__qx_step(&x, q0 + qrow, K, k, FULL);                                                                     \
        LFM2__QPAIR(a01, w0, x); LFM2__QPAIR(a11, w1, x); LFM2__QPAIR(a21, w2, x); LFM2__QPAIR(a31, w3, x);           \
        lfm2__qx_step(&x, q0 + 2 * qrow, K, k, FULL);                                                                 \
        LFM2__QPAIR(a02, w0, x); LFM2__QPAIR(a12, w1, x); LFM2__QPAIR(a22, w2, x); LFM2__QPAIR(a32, w3, x);           \
        lfm2__qx_step(&x, q0 + 3 * qrow, K, k, FULL);                                                                 \
        LFM2__QPAIR(a03, w0, x); LFM2__QPAIR(a13, w1, x); LFM2__QPAIR(a23, w2, x); LFM2__QPAIR(a33, w3, x);           \
    }
static LFM2__TGT_VNNI LFM2__INLINE void lfm2__qmm_vnni(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, r, t, k, i, j;
    size_t rb = q4 ? LFM2__CAST(size_t, K) / 2 : LFM2__CAST(size_t, K), nsc = LFM2__CAST(size_t, K / LFM2__QBLK), qrow = LFM2__QROW_BYTES(K);
    const unsigned char *base = LFM2__CAST(const unsigned char *, w->data);
    for (r = r0; r < r1; r += 4) {
        int32_t nr = (r1 - r < 4) ? r1 - r : 4;
        for (t = 0; t < B;) {
            float res[4][4];
            int32_t nt = (B - t >= 4 && nr == 4) ? 4 : 1;
            const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;
            if (nt == 4) {
                const unsigned char *wr0 = base + LFM2__CAST(size_t, r) * rb, *wr1 = wr0 + rb, *wr2 = wr1 + rb, *wr3 = wr2 + rb;
                const uint16_t *sc0 = w->scales + LFM2__CAST(size_t, r) * nsc, *sc1 = sc0 + nsc, *sc2 = sc1 + nsc, *sc3 = sc2 + nsc;
                LFM2__TILE_ZERO(__m512, _mm512_setzero_ps());
                for (k = 0; k + 64 <= K; k += 64) LFM2__QTILE_STEP(1)
                if (k < K) LFM2__QTILE_STEP(0)
                LFM2__TILE_HSUM(res, lfm2__hsum512);
            } else {
                for (i = 0; i < nr; i++) { /* decode: one weight row at a time (one DRAM stream) */
                    const unsigned char *wri = base + LFM2__CAST(size_t, r + i) * rb;
                    const uint16_t *sci = w->scales + LFM2__CAST(size_t, r + i) * nsc;
                    __m512 a0 = _mm512_setzero_ps();
                    lfm2__qw w0;
                    lfm2__qx x;
                    if (r + i + LFM2__QPF_ROWS < rows) { /* the scales are a second, sparse stream: fetch them a few rows ahead */
                        const char *pf = LFM2__CAST(const char *, LFM2__CAST(const void *, sci + LFM2__QPF_ROWS * nsc));
                        size_t off;
                        for (off = 0; off < nsc * 2; off += 64) _mm_prefetch(pf + off, _MM_HINT_T0);
                    }
                    for (k = 0; k + 64 <= K; k += 64) {
                        lfm2__qw_step(&w0, wri, sci, k, 1, q4);
                        lfm2__qx_step(&x, q0, K, k, 1);
                        LFM2__QPAIR(a0, w0, x);
                    }
                    if (k < K) {
                        lfm2__qw_step(&w0, wri, sci, k, 0, q4);
                        lfm2__qx_step(&x, q0, K, k, 0);
                        LFM2__QPAIR(a0, w0, x);
                    }
                    res[i][0] = lfm2__hsum512(a0);
                }
            }
            for (i = 0; i < nr; i++)
                for (j = 0; j < nt; j++) out[LFM2__CAST(size_t, t + j) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r + i)] = res[i][j];
            t += nt;
        }
    }
}
static LFM2__TGT_VNNI void lfm2__qmm_q8_vnni(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_vnni(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static LFM2__TGT_VNNI void lfm2__qmm_q4_vnni(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_vnni(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }

/* The interleaved formats (Q8X / Q4X, see lfm2__x16_rec): two 16-row groups x 4 tokens at a
   time (a last single group: 8 tokens), the remaining tokens one at a time; per block, group and
   token: 8 vpdpbusd (16 rows x 4 columns each, the 4 activation bytes broadcast), started from
   the token's block correction sb, then one conversion and one multiply-add with (16 row scales
   * dx). Each lane is one row: no horizontal sums, and every tile and the 1-token path do the
   same operations for each (row, token). (The 2 x 4 tile uses each broadcast for two groups:
   1.15-1.26x the 8-token tile's rate on Zen 5, bit-identical; tools/BENCH_NOTES.md, session 8.) */
static LFM2__TGT_VNNI LFM2__INLINE __m512i lfm2__bc4(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return _mm512_set1_epi32(v); }
/* block h (0 or 1: 32 columns) of the record at REC into the declared WS (its 16 row scales) and
   V0..V7 (the weights of its 8 steps as unsigned bytes: Q8 w + 128, Q4 the nibbles) */
#define LFM2__X16_WL(REC, WS, V0, V1, V2, V3, V4, V5, V6, V7)                                                         \
    {                                                                                                                 \
        const unsigned char *wq = (REC) + 64 + h * (q4 ? 256 : 512);                                                  \
        WS = _mm512_cvtph_ps(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, (REC) + h * 32)))); \
        if (q4) {                                                                                                     \
            __m512i m15 = _mm512_set1_epi8(15), v;                                                                    \
            v = _mm512_loadu_si512(LFM2__CAST(const void *, wq));                                                    \
            V0 = _mm512_and_si512(v, m15); V4 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);                       \
            v = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 64));                                               \
            V1 = _mm512_and_si512(v, m15); V5 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);                       \
            v = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 128));                                              \
            V2 = _mm512_and_si512(v, m15); V6 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);                       \
            v = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 192));                                              \
            V3 = _mm512_and_si512(v, m15); V7 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);                       \
        } else {                                                                                                      \
            V0 = _mm512_loadu_si512(LFM2__CAST(const void *, wq)); V1 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 64)); \
            V2 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 128)); V3 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 192)); \
            V4 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 256)); V5 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 320)); \
            V6 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 384)); V7 = _mm512_loadu_si512(LFM2__CAST(const void *, wq + 448)); \
        }                                                                                                             \
    }
/* block h of record rec as the locals ws, w0..w7, and its first column kb */
#define LFM2__X16_WLOAD()                                                                                             \
    __m512 ws;                                                                                                        \
    __m512i w0, w1, w2, w3, w4, w5, w6, w7;                                                                           \
    int32_t kb = (2 * p + h) * LFM2__QBLK;                                                                            \
    LFM2__X16_WL(rec, ws, w0, w1, w2, w3, w4, w5, w6, w7)
/* token u of the tile: its 8 steps start from its block correction, then one conversion and one
   multiply-add with (16 row scales * dx) */
#define LFM2__X16_TOK(u, ACC)                                                                                         \
    {                                                                                                                 \
        const unsigned char *qt = q0 + LFM2__CAST(size_t, u) * qrow + kb;                                             \
        const unsigned char *qe = q0 + LFM2__CAST(size_t, u) * qrow + 2 * LFM2__CAST(size_t, K);                      \
        __m512i is = _mm512_set1_epi32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, qe + LFM2__CAST(size_t, K)))[kb / LFM2__QBLK]); \
        is = _mm512_dpbusd_epi32(is, w0, lfm2__bc4(qt)); is = _mm512_dpbusd_epi32(is, w1, lfm2__bc4(qt + 4));          \
        is = _mm512_dpbusd_epi32(is, w2, lfm2__bc4(qt + 8)); is = _mm512_dpbusd_epi32(is, w3, lfm2__bc4(qt + 12));     \
        is = _mm512_dpbusd_epi32(is, w4, lfm2__bc4(qt + 16)); is = _mm512_dpbusd_epi32(is, w5, lfm2__bc4(qt + 20));    \
        is = _mm512_dpbusd_epi32(is, w6, lfm2__bc4(qt + 24)); is = _mm512_dpbusd_epi32(is, w7, lfm2__bc4(qt + 28));    \
        ACC = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is),                                                                 \
                              _mm512_mul_ps(ws, _mm512_set1_ps(LFM2__CAST(const float *, LFM2__CAST(const void *, qe))[kb / 4])), ACC); \
    }
/* the same for the one-token loop, in 4 independent chains of vpdpbusd (a chain of 8 waits
   ~40 cycles per block, which held int4 decode below the memory stream); int32 sums are exact,
   so the result is bit-identical to LFM2__X16_TOK */
#define LFM2__X16_TOK1(ACC)                                                                                           \
    {                                                                                                                 \
        const unsigned char *qt = q0 + kb;                                                                            \
        const unsigned char *qe = q0 + 2 * LFM2__CAST(size_t, K);                                                     \
        __m512i i0 = _mm512_set1_epi32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, qe + LFM2__CAST(size_t, K)))[kb / LFM2__QBLK]); \
        __m512i i1 = _mm512_setzero_si512(), i2 = i1, i3 = i1;                                                        \
        i0 = _mm512_dpbusd_epi32(i0, w0, lfm2__bc4(qt)); i1 = _mm512_dpbusd_epi32(i1, w1, lfm2__bc4(qt + 4));          \
        i2 = _mm512_dpbusd_epi32(i2, w2, lfm2__bc4(qt + 8)); i3 = _mm512_dpbusd_epi32(i3, w3, lfm2__bc4(qt + 12));     \
        i0 = _mm512_dpbusd_epi32(i0, w4, lfm2__bc4(qt + 16)); i1 = _mm512_dpbusd_epi32(i1, w5, lfm2__bc4(qt + 20));    \
        i2 = _mm512_dpbusd_epi32(i2, w6, lfm2__bc4(qt + 24)); i3 = _mm512_dpbusd_epi32(i3, w7, lfm2__bc4(qt + 28));    \
        i0 = _mm512_add_epi32(_mm512_add_epi32(i0, i1), _mm512_add_epi32(i2, i3));                                    \
        ACC = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0),                                                                 \
                              _mm512_mul_ps(ws, _mm512_set1_ps(LFM2__CAST(const float *, LFM2__CAST(const void *, qe))[kb / 4])), ACC); \
    }
/* token u of the 2-group tile: LFM2__X16_TOK's steps for the group in w0..w7 / ws (into ACCA)
   and the next group in v0..v7 / wsb (into ACCB), each activation broadcast feeding both */
#define LFM2__X16_TOK2(u, ACCA, ACCB)                                                                                 \
    {                                                                                                                 \
        const unsigned char *qt = q0 + LFM2__CAST(size_t, u) * qrow + kb;                                             \
        const unsigned char *qe = q0 + LFM2__CAST(size_t, u) * qrow + 2 * LFM2__CAST(size_t, K);                      \
        __m512i ia = _mm512_set1_epi32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, qe + LFM2__CAST(size_t, K)))[kb / LFM2__QBLK]); \
        __m512i ib = ia, x4;                                                                                          \
        __m512 dx = _mm512_set1_ps(LFM2__CAST(const float *, LFM2__CAST(const void *, qe))[kb / 4]);                  \
        x4 = lfm2__bc4(qt); ia = _mm512_dpbusd_epi32(ia, w0, x4); ib = _mm512_dpbusd_epi32(ib, v0, x4);            \
        x4 = lfm2__bc4(qt + 4); ia = _mm512_dpbusd_epi32(ia, w1, x4); ib = _mm512_dpbusd_epi32(ib, v1, x4);        \
        x4 = lfm2__bc4(qt + 8); ia = _mm512_dpbusd_epi32(ia, w2, x4); ib = _mm512_dpbusd_epi32(ib, v2, x4);        \
        x4 = lfm2__bc4(qt + 12); ia = _mm512_dpbusd_epi32(ia, w3, x4); ib = _mm512_dpbusd_epi32(ib, v3, x4);       \
        x4 = lfm2__bc4(qt + 16); ia = _mm512_dpbusd_epi32(ia, w4, x4); ib = _mm512_dpbusd_epi32(ib, v4, x4);       \
        x4 = lfm2__bc4(qt + 20); ia = _mm512_dpbusd_epi32(ia, w5, x4); ib = _mm512_dpbusd_epi32(ib, v5, x4);       \
        x4 = lfm2__bc4(qt + 24); ia = _mm512_dpbusd_epi32(ia, w6, x4); ib = _mm512_dpbusd_epi32(ib, v6, x4);       \
        x4 = lfm2__bc4(qt + 28); ia = _mm512_dpbusd_epi32(ia, w7, x4); ib = _mm512_dpbusd_epi32(ib, v7, x4);       \
        ACCA = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(ws, dx), ACCA);                                  \
        ACCB = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib), _mm512_mul_ps(wsb, dx), ACCB);                                 \
    }
/* tokens t0..B-1 of the group at gbase (results at og), one at a time */
static LFM2__TGT_VNNI LFM2__INLINE void lfm2__qmm_x16_one(float *og, const unsigned char *gbase, const unsigned char *qa, int32_t t0, int32_t B,
                                                          int32_t K, int32_t rows, int q4) {
    int32_t np = K / 64, t, p, h;
    size_t qrow = LFM2__QROW_BYTES(K), rec_bytes = LFM2__X16_REC(q4);
    for (t = t0; t < B; t++) {
        const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;
        __m512 a0 = _mm512_setzero_ps();
        for (p = 0; p < np; p++) {
            const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;
            LFM2__PREFETCH_AHEAD(rec, rec_bytes);
            for (h = 0; h < 2; h++) {
                LFM2__X16_WLOAD()
                LFM2__X16_TOK1(a0)
            }
        }
        _mm512_storeu_ps(og + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows), a0);
    }
}
static LFM2__TGT_VNNI LFM2__INLINE void lfm2__qmm_x16(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, np = K / 64, g = r0 / 16, g1 = r1 / 16, t, p, h;
    size_t qrow = LFM2__QROW_BYTES(K), rec_bytes = LFM2__X16_REC(q4), gstride = LFM2__CAST(size_t, np) * rec_bytes;
    const unsigned char *data = LFM2__CAST(const unsigned char *, w->data);
    for (; B >= 4 && g + 2 <= g1; g += 2) { /* prefill: 2 groups x 4 tokens, every activation broadcast used twice */
        const unsigned char *ga = data + LFM2__CAST(size_t, g) * gstride, *gb = ga + gstride;
        float *og = out + LFM2__CAST(size_t, g) * 16;
        for (t = 0; t + 4 <= B; t += 4) {
            const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;
            float *o = og + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows);
            size_t st = LFM2__CAST(size_t, rows);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (p = 0; p < np; p++) {
                const unsigned char *rec = ga + LFM2__CAST(size_t, p) * rec_bytes;
                for (h = 0; h < 2; h++) {
                    LFM2__X16_WLOAD()
                    __m512 wsb;
                    __m512i v0, v1, v2, v3, v4, v5, v6, v7;
                    LFM2__X16_WL(gb + LFM2__CAST(size_t, p) * rec_bytes, wsb, v0, v1, v2, v3, v4, v5, v6, v7)
                    LFM2__X16_TOK2(0, a0, b0) LFM2__X16_TOK2(1, a1, b1) LFM2__X16_TOK2(2, a2, b2) LFM2__X16_TOK2(3, a3, b3)
                }
            }
            _mm512_storeu_ps(o, a0); _mm512_storeu_ps(o + st, a1); _mm512_storeu_ps(o + 2 * st, a2); _mm512_storeu_ps(o + 3 * st, a3);
            _mm512_storeu_ps(o + 16, b0); _mm512_storeu_ps(o + st + 16, b1); _mm512_storeu_ps(o + 2 * st + 16, b2); _mm512_storeu_ps(o + 3 * st + 16, b3);
        }
        lfm2__qmm_x16_one(og, ga, qa, t, B, K, rows, q4);
        lfm2__qmm_x16_one(og + 16, gb, qa, t, B, K, rows, q4);
    }
    for (; g < g1; g++) { /* a last single group, and decode */
        const unsigned char *gbase = data + LFM2__CAST(size_t, g) * gstride;
        float *og = out + LFM2__CAST(size_t, g) * 16;
        for (t = 0; t + 8 <= B; t += 8) { /* 8 tokens share every weight vector */
            const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (p = 0; p < np; p++) {
                const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;
                for (h = 0; h < 2; h++) {
                    LFM2__X16_WLOAD()
                    LFM2__X16_TOK(0, a0) LFM2__X16_TOK(1, a1) LFM2__X16_TOK(2, a2) LFM2__X16_TOK(3, a3)
                    LFM2__X16_TOK(4, a4) LFM2__X16_TOK(5, a5) LFM2__X16_TOK(6, a6) LFM2__X16_TOK(7, a7)
                }
            }
            lfm2__store16x8(og, t, rows, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        lfm2__qmm_x16_one(og, gbase, qa, t, B, K, rows, q4); /* decode and the rest: one token, the same operations */
    }
}
static LFM2__TGT_VNNI void lfm2__qmm_q8x_vnni(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_x16(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static LFM2__TGT_VNNI void lfm2__qmm_q4x_vnni(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_x16(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
#endif
#ifdef LFM2__HAVE_AVX2
/* AVX2 (also AVX-512 without VNNI): one block of 32 columns (8 lanes) per step, 1 row x 1 token.
   vpmaddubsw multiplies unsigned by signed bytes into saturating int16 pairs: Q8 uses |w| and
   q with w's sign (at most 2 * 128 * 127, no saturation), Q4 the nibbles 0..15 and q. */
static LFM2__TGT_AVX2 float lfm2__qhsum256(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static LFM2__TGT_AVX2 LFM2__INLINE void lfm2__qmm_avx2(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, r, t, k;
    size_t rb = q4 ? LFM2__CAST(size_t, K) / 2 : LFM2__CAST(size_t, K), nsc = LFM2__CAST(size_t, K / LFM2__QBLK), qrow = LFM2__QROW_BYTES(K);
    const __m256i ones = _mm256_set1_epi16(1), m15 = _mm256_set1_epi8(15);
    for (r = r0; r < r1; r++) {
        const unsigned char *wr = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, r) * rb;
        const uint16_t *sc = w->scales + LFM2__CAST(size_t, r) * nsc;
        for (t = 0; t < B; t++) {
            const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;
            const int32_t *s = LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + K));
            const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));
            __m256 acc = _mm256_setzero_ps();
            for (k = 0; k < K; k += LFM2__QBLK) {
                __m256i xv = _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, q + k))), iv;
                if (q4) {
                    __m128i v = _mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, wr + k / 2)));
                    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m15);
                    iv = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(nib, xv), ones),
                                          _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, s + k / 4))));
                } else {
                    __m256i wv = _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, wr + k)));
                    iv = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones);
                }
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iv), _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(sc[k / LFM2__QBLK])), _mm256_loadu_ps(d + k / 4)), acc);
            }
            out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r)] = lfm2__qhsum256(acc);
        }
    }
}
static LFM2__TGT_AVX2 void lfm2__qmm_q8_avx2(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_avx2(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static LFM2__TGT_AVX2 void lfm2__qmm_q4_avx2(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_avx2(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
/* AVX2, interleaved Q8X / Q4X (see lfm2__x16_rec): no vpdpbusd, so a step's products go through
   vpmaddubsw (unsigned x signed bytes, adjacent pairs summed in int16) and vpmaddwd with ones
   (the two pairs of a row's 4 columns summed in int32), 8 rows (one half of a step's 64 bytes,
   rows 0-7 then 8-15) per register. Q4X: the nibbles (w + 8, at most 15) times |x| <= 127 make
   pairs of at most 3810, so a block's 8 steps are summed in int16 (at most 30480: exact) before
   one vpmaddwd, started from the block correction sb. Q8X: the stored w + 128 would overflow the
   pairs, so the sign is moved onto the activations (|w| x sign(x, w), |w| <= 127: pairs of at
   most 32258) and each step goes to int32 at once, with no correction. Either way the int32 sums
   are the exact ones of the VNNI kernel, and the float steps per row and block are its own (one
   conversion, the product row scale * dx, one multiply-add, blocks in order): bit-identical to
   it. Prefill: one half group x 4 tokens; the tokens left (decode) one at a time over all 16
   rows, each record read once. */
static LFM2__TGT_AVX2 LFM2__INLINE __m256i lfm2__bc4_256(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v); }
/* steps of block h of record rec for rows [8 hf, 8 hf + 8): Q8X the signed weights W (as stored
   ^ 0x80) and |W| A, Q4X the nibbles N of step c (low) and c + 4 (high) */
#define LFM2__AX_W8(c, hf) __m256i W = _mm256_xor_si256(_mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, wq + 64 * (c) + 32 * (hf)))), m80), A = _mm256_abs_epi8(W);
/* one token's int32 (I) or int16 (S) sums: a Q8X step, a Q4X step with its activations X */
#define LFM2__AX_Q8(I, X) I = _mm256_add_epi32(I, _mm256_madd_epi16(_mm256_maddubs_epi16(A, _mm256_sign_epi8((X), W)), ones));
#define LFM2__AX_Q4(S, N, X) S = _mm256_add_epi16(S, _mm256_maddubs_epi16((N), (X)));
/* the block's float step for the 8 rows of I: acc += float(I) * (row scales * dx) */
#define LFM2__AX_F(ACC, I, WS, DX) ACC = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I), _mm256_mul_ps((WS), _mm256_set1_ps(DX)), ACC);
/* per token u of the 4-token tile: its int32 / int16 sums, its float accumulator, its row */
#define LFM2__AX_DECL(u, _) __m256 f##u = _mm256_setzero_ps(); __m256i i##u, s##u; const unsigned char *q##u = qa + LFM2__CAST(size_t, t + (u)) * qrow;
#define LFM2__AX_START(u, _) i##u = q4 ? _mm256_set1_epi32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q##u + 3 * LFM2__CAST(size_t, K)))[kb / LFM2__QBLK]) : _mm256_setzero_si256(); s##u = _mm256_setzero_si256();
#define LFM2__AX_S8(u, c) LFM2__AX_Q8(i##u, lfm2__bc4_256(q##u + kb + 4 * (c)))
#define LFM2__AX_S4(u, c) LFM2__AX_Q4(s##u, nl, lfm2__bc4_256(q##u + kb + 4 * (c))) LFM2__AX_Q4(s##u, nh, lfm2__bc4_256(q##u + kb + 16 + 4 * (c)))
#define LFM2__AX_END(u, _)                                                                                            \
    if (q4) i##u = _mm256_add_epi32(i##u, _mm256_madd_epi16(s##u, ones));                                             \
    LFM2__AX_F(f##u, i##u, ws, LFM2__CAST(const float *, LFM2__CAST(const void *, q##u + 2 * LFM2__CAST(size_t, K)))[kb / 4])
#define LFM2__AX_ST(u, _) _mm256_storeu_ps(og + LFM2__CAST(size_t, t + (u)) * LFM2__CAST(size_t, rows), f##u);
static LFM2__TGT_AVX2 LFM2__INLINE void lfm2__qmmx_avx2(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, np = K / 64, g, t, p, h, hf, c;
    size_t qrow = LFM2__QROW_BYTES(K), rec_bytes = LFM2__X16_REC(q4);
    const __m256i ones = _mm256_set1_epi16(1), m15 = _mm256_set1_epi8(15), m80 = _mm256_set1_epi8(LFM2__CAST(char, 0x80));
    for (g = r0 / 16; g < r1 / 16; g++) {
        const unsigned char *gbase = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) * rec_bytes;
        for (hf = 0; B >= 4 && hf < 2; hf++) {
            float *og = out + LFM2__CAST(size_t, g) * 16 + 8 * hf;
            for (t = 0; t + 4 <= B; t += 4) { /* prefill: 8 rows x 4 tokens */
                LFM2__FOR4(LFM2__AX_DECL, 0)
                for (p = 0; p < np; p++)
                    for (h = 0; h < 2; h++) {
                        const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes, *wq = rec + 64 + h * (q4 ? 256 : 512);
                        int32_t kb = (2 * p + h) * LFM2__QBLK;
                        __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, rec + h * 32 + 16 * hf))));
                        LFM2__FOR4(LFM2__AX_START, 0)
                        if (q4)
                            for (c = 0; c < 4; c++) {
                                __m256i v = _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, wq + 64 * c + 32 * hf)));
                                __m256i nl = _mm256_and_si256(v, m15), nh = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
                                LFM2__FOR4(LFM2__AX_S4, c)
                            }
                        else
                            for (c = 0; c < 8; c++) {
                                LFM2__AX_W8(c, hf)
                                LFM2__FOR4(LFM2__AX_S8, c)
                            }
                        LFM2__FOR4(LFM2__AX_END, 0)
                    }
                LFM2__FOR4(LFM2__AX_ST, 0)
            }
        }
        for (t = B - B % 4; t < B; t++) { /* one token, 16 rows */
            const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;
            float dxs, *o = out + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, g) * 16;
            __m256 fa = _mm256_setzero_ps(), fb = fa;
            for (p = 0; p < np; p++) {
                const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;
                LFM2__PREFETCH_AHEAD(rec, rec_bytes);
                for (h = 0; h < 2; h++) {
                    const unsigned char *wq = rec + 64 + h * (q4 ? 256 : 512);
                    int32_t kb = (2 * p + h) * LFM2__QBLK;
                    __m256i ia = q4 ? _mm256_set1_epi32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + 3 * LFM2__CAST(size_t, K)))[kb / LFM2__QBLK]) : _mm256_setzero_si256();
                    __m256i ib = ia, sa = _mm256_setzero_si256(), sb = sa;
                    dxs = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)))[kb / 4];
                    if (q4) {
                        for (c = 0; c < 4; c++) {
                            __m256i xl = lfm2__bc4_256(q + kb + 4 * c), xh = lfm2__bc4_256(q + kb + 16 + 4 * c);
                            __m256i va = _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, wq + 64 * c)));
                            __m256i vb = _mm256_loadu_si256(LFM2__CAST(const __m256i *, LFM2__CAST(const void *, wq + 64 * c + 32)));
                            LFM2__AX_Q4(sa, _mm256_and_si256(va, m15), xl) LFM2__AX_Q4(sa, _mm256_and_si256(_mm256_srli_epi16(va, 4), m15), xh)
                            LFM2__AX_Q4(sb, _mm256_and_si256(vb, m15), xl) LFM2__AX_Q4(sb, _mm256_and_si256(_mm256_srli_epi16(vb, 4), m15), xh)
                        }
                        ia = _mm256_add_epi32(ia, _mm256_madd_epi16(sa, ones));
                        ib = _mm256_add_epi32(ib, _mm256_madd_epi16(sb, ones));
                    } else {
                        for (c = 0; c < 8; c++) {
                            __m256i x4 = lfm2__bc4_256(q + kb + 4 * c);
                            {
                                LFM2__AX_W8(c, 0)
                                LFM2__AX_Q8(ia, x4)
                            }
                            {
                                LFM2__AX_W8(c, 1)
                                LFM2__AX_Q8(ib, x4)
                            }
                        }
                    }
                    LFM2__AX_F(fa, ia, _mm256_cvtph_ps(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, rec + h * 32)))), dxs)
                    LFM2__AX_F(fb, ib, _mm256_cvtph_ps(_mm_loadu_si128(LFM2__CAST(const __m128i *, LFM2__CAST(const void *, rec + h * 32 + 16)))), dxs)
                }
            }
            _mm256_storeu_ps(o, fa);
            _mm256_storeu_ps(o + 8, fb);
        }
    }
}
static LFM2__TGT_AVX2 void lfm2__qmm_q8x_avx2(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_avx2(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static LFM2__TGT_AVX2 void lfm2__qmm_q4x_avx2(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_avx2(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
#endif
#ifdef LFM2__HAVE_NEON
/* NEON, row-major Q8 / Q4: one block of 32 columns per step (two 16-byte halves, 4 lanes each),
   1 row x 1 token. SDOT is sdot with the dot-product extension, else widening multiplies and
   pairwise adds that sum the same 4 bytes per lane (pairs at most 2 * 128 * 127: no int16
   overflow); compiled once per variant. */
#define LFM2__SDOT_EMU(acc, a, b) vpadalq_s16((acc), vpaddq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)), vmull_high_s8((a), (b))))
#define LFM2__SDOT_DOT(acc, a, b) vdotq_s32((acc), (a), (b))
#define LFM2__DEF_QMM_NEON(SFX, TGT, SDOT)                                                                           \
    static TGT LFM2__INLINE void lfm2__qmm_##SFX(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) { \
        int32_t K = w->cols, rows = w->rows, r, t, k;                                                               \
        size_t rb = q4 ? LFM2__CAST(size_t, K) / 2 : LFM2__CAST(size_t, K), nsc = LFM2__CAST(size_t, K / LFM2__QBLK), qrow = LFM2__QROW_BYTES(K); \
        for (r = r0; r < r1; r++) {                                                                                 \
            const unsigned char *wr = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, r) * rb;      \
            const uint16_t *sc = w->scales + LFM2__CAST(size_t, r) * nsc;                                           \
            for (t = 0; t < B; t++) {                                                                               \
                const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;                                         \
                const int32_t *s = LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + K));                    \
                const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));  \
                float32x4_t acc = vdupq_n_f32(0.0f);                                                                \
                for (k = 0; k < K; k += LFM2__QBLK) {                                                               \
                    float dw = lfm2__f16_to_f32(sc[k / LFM2__QBLK]);                                                \
                    int32x4_t i0, i1;                                                                               \
                    if (q4) {                                                                                       \
                        uint8x16_t v = vld1q_u8(wr + k / 2);                                                        \
                        i0 = SDOT(vld1q_s32(s + k / 4), vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), vreinterpretq_s8_u8(vld1q_u8(q + k))); \
                        i1 = SDOT(vld1q_s32(s + k / 4 + 4), vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vreinterpretq_s8_u8(vld1q_u8(q + k + 16))); \
                    } else {                                                                                        \
                        i0 = SDOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vld1q_u8(wr + k)), vreinterpretq_s8_u8(vld1q_u8(q + k))); \
                        i1 = SDOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vld1q_u8(wr + k + 16)), vreinterpretq_s8_u8(vld1q_u8(q + k + 16))); \
                    }                                                                                               \
                    acc = vfmaq_f32(acc, vcvtq_f32_s32(i0), vmulq_n_f32(vld1q_f32(d + k / 4), dw));                 \
                    acc = vfmaq_f32(acc, vcvtq_f32_s32(i1), vmulq_n_f32(vld1q_f32(d + k / 4 + 4), dw));             \
                }                                                                                                   \
                out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r)] = vaddvq_f32(acc);    \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    static TGT void lfm2__qmm_q8_##SFX(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_##SFX(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); } \
    static TGT void lfm2__qmm_q4_##SFX(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_##SFX(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }

/* NEON, interleaved Q8X / Q4X (see lfm2__x16_rec): a step's 64 bytes are 4 registers of 4 rows x
   4 columns, exactly what one by-lane sdot multiplies with 4 activation bytes. One 16-row group,
   in two halves of 8 rows, 4 tokens at a time (the tokens left: lfm2__qx1_*, below): per block
   and token 16 sdot into 2 int32 accumulators (started from the block correction sb for Q4, whose nibbles w + 8 are
   non-negative bytes; Q8's bytes w + 128 get their sign bit back), then one conversion and one
   multiply-add with (8 row scales * dx). Each lane is one row: no horizontal sums, and the
   one-token kernel does the same operations per row. SDOTL(acc, w, x, lane) is one sdot by lane
   (or its emulation). */
#define LFM2__SDOTL_DOT(acc, wv, xv, l) vdotq_laneq_s32((acc), (wv), (xv), l)
#define LFM2__SDOTL_EMU(acc, wv, xv, l) LFM2__SDOT_EMU((acc), (wv), vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(xv), l)))
/* per token u of the tile: its accumulators (int32 and f32, rows 0-3 and 4-7 of the half group),
   its 16 activation bytes of the block in use, and the operations on them */
#define LFM2__QXN_DECL(u, _) float32x4_t f##u##0 = vdupq_n_f32(0.0f), f##u##1 = f##u##0; int32x4_t i##u##0, i##u##1; int8x16_t x##u;
#define LFM2__QXN_X0(u, _)                                                                                           \
    {                                                                                                                 \
        const unsigned char *qt = q0 + LFM2__CAST(size_t, u) * qrow;                                                 \
        i##u##0 = i##u##1 = vdupq_n_s32(q4 ? LFM2__CAST(const int32_t *, LFM2__CAST(const void *, qt + 3 * LFM2__CAST(size_t, K)))[kb / LFM2__QBLK] : 0); \
        x##u = vld1q_s8(LFM2__CAST(const int8_t *, LFM2__CAST(const void *, qt + kb)));                              \
    }
#define LFM2__QXN_X1(u, _) x##u = vld1q_s8(LFM2__CAST(const int8_t *, LFM2__CAST(const void *, q0 + LFM2__CAST(size_t, u) * qrow + kb + 16)));
#define LFM2__QXN_SD(u, SDOTL, L) i##u##0 = SDOTL(i##u##0, w0, x##u, L); i##u##1 = SDOTL(i##u##1, w1, x##u, L);
#define LFM2__QXN_F(u, _)                                                                                            \
    {                                                                                                                 \
        float dx = LFM2__CAST(const float *, LFM2__CAST(const void *, q0 + LFM2__CAST(size_t, u) * qrow + 2 * LFM2__CAST(size_t, K)))[kb / 4]; \
        f##u##0 = vfmaq_f32(f##u##0, vcvtq_f32_s32(i##u##0), vmulq_n_f32(ws0, dx));                                  \
        f##u##1 = vfmaq_f32(f##u##1, vcvtq_f32_s32(i##u##1), vmulq_n_f32(ws1, dx));                                  \
    }
#define LFM2__QXN_ST(u, _)                                                                                           \
    {                                                                                                                 \
        float *o = og + LFM2__CAST(size_t, t + u) * LFM2__CAST(size_t, rows);                                        \
        vst1q_f32(o, f##u##0); vst1q_f32(o + 4, f##u##1);                                                            \
    }
/* Q8X step c (the sign bits flipped back); Q4X vector c, low nibbles (step c) or high (step c + 4) */
#define LFM2__QXN_Q8(FOR, SDOTL, c, L)                                                                               \
    w0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(wq + 64 * (c)), m80));                                                \
    w1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(wq + 64 * (c) + 16), m80));                                           \
    FOR(LFM2__QXN_SD, SDOTL, L)
#define LFM2__QXN_Q4L(FOR, SDOTL, c)                                                                                 \
    w0 = vreinterpretq_s8_u8(vandq_u8(vld1q_u8(wq + 64 * (c)), m15));                                                \
    w1 = vreinterpretq_s8_u8(vandq_u8(vld1q_u8(wq + 64 * (c) + 16), m15));                                           \
    FOR(LFM2__QXN_SD, SDOTL, c)
#define LFM2__QXN_Q4H(FOR, SDOTL, c)                                                                                 \
    w0 = vreinterpretq_s8_u8(vshrq_n_u8(vld1q_u8(wq + 64 * (c)), 4));                                                \
    w1 = vreinterpretq_s8_u8(vshrq_n_u8(vld1q_u8(wq + 64 * (c) + 16), 4));                                           \
    FOR(LFM2__QXN_SD, SDOTL, c)
/* the tokens of FOR from t, one half group: every block of every record, then the 8 rows' results */
#define LFM2__QXN_RUN(FOR, SDOTL)                                                                                    \
    {                                                                                                                 \
        const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;                                                 \
        FOR(LFM2__QXN_DECL, 0)                                                                                        \
        for (p = 0; p < np; p++)                                                                                      \
            for (h = 0; h < 2; h++) {                                                                                 \
                const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;                                \
                const unsigned char *wq = rec + 64 + h * (q4 ? 256 : 512) + half * 32;                               \
                uint16x8_t sh = vld1q_u16(LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, rec + h * 32 + half * 16))); \
                float32x4_t ws0 = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(sh))), ws1 = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(sh))); \
                int32_t kb = (2 * p + h) * LFM2__QBLK;                                                               \
                int8x16_t w0, w1;                                                                                     \
                FOR(LFM2__QXN_X0, 0)                                                                                  \
                if (q4) {                                                                                             \
                    uint8x16_t m15 = vdupq_n_u8(15);                                                                  \
                    LFM2__QXN_Q4L(FOR, SDOTL, 0) LFM2__QXN_Q4L(FOR, SDOTL, 1) LFM2__QXN_Q4L(FOR, SDOTL, 2) LFM2__QXN_Q4L(FOR, SDOTL, 3) \
                    FOR(LFM2__QXN_X1, 0)                                                                              \
                    LFM2__QXN_Q4H(FOR, SDOTL, 0) LFM2__QXN_Q4H(FOR, SDOTL, 1) LFM2__QXN_Q4H(FOR, SDOTL, 2) LFM2__QXN_Q4H(FOR, SDOTL, 3) \
                } else {                                                                                              \
                    uint8x16_t m80 = vdupq_n_u8(128);                                                                 \
                    LFM2__QXN_Q8(FOR, SDOTL, 0, 0) LFM2__QXN_Q8(FOR, SDOTL, 1, 1) LFM2__QXN_Q8(FOR, SDOTL, 2, 2) LFM2__QXN_Q8(FOR, SDOTL, 3, 3) \
                    FOR(LFM2__QXN_X1, 0)                                                                              \
                    LFM2__QXN_Q8(FOR, SDOTL, 4, 0) LFM2__QXN_Q8(FOR, SDOTL, 5, 1) LFM2__QXN_Q8(FOR, SDOTL, 6, 2) LFM2__QXN_Q8(FOR, SDOTL, 7, 3) \
                }                                                                                                     \
                FOR(LFM2__QXN_F, 0)                                                                                   \
            }                                                                                                         \
        FOR(LFM2__QXN_ST, 0)                                                                                          \
    }
/* One token (decode, and the tokens a tile leaves), a whole 16-row group at once: a step's 64
   stored bytes are one 4-register load (rows 0-3, 4-7, 8-11, 12-15 x 4 columns), each register
   multiplied by the same lane of the block's activations into its own int32 accumulator: per
   block 8 (Q8) / 4 (Q4) loads of weights and 32 sdot for 16 rows, against 16 / 8 loads and the
   same sdot in two halves of the tile. Q8's bytes w + 128 get their sign bit back (Q8OP
   LFM2__QX1_FLIP), or at NEON_I8MM go into usdot unsigned as stored (LFM2__QX1_US), started
   from the block correction sb like Q4's nibbles (Q8SB 1). The int32 sums are exact, each lane
   is one row and the float steps per row and block are the tile's (one conversion, the product
   row scale * dx, one multiply-add, blocks in order): the same bits as the tile. */
/* GCC's scheduling before register allocation hoists all 8 steps' loads and sign flips of a
   block and spills them (GCC 12; qemu count at NEON_BF16: 111.5 M instructions per int8 decoded
   token with it, 84.7 M without): off here, as for the NEON_I8MM tile (not inlined: the
   attribute does not survive inlining into a function without it) */
#if defined(__GNUC__) && !defined(__clang__)
#define LFM2__MM_NOSCHED __attribute__((optimize("no-schedule-insns")))
#else
#define LFM2__MM_NOSCHED
#endif
/* the 4-register load has no offset form, only a post-increment: GCC rebuilds each step's address
   from the block's (one add per load) unless the pointer is opaque to it after each step */
#if defined(__GNUC__) || defined(__clang__)
#define LFM2__QX1_WALK(p) __asm__("" : "+r"(p))
#else
#define LFM2__QX1_WALK(p) ((void)0)
#endif
#define LFM2__QX1_FLIP(SDOTL, acc, v, xv, l) SDOTL((acc), vreinterpretq_s8_u8(veorq_u8((v), m80)), (xv), l)
#define LFM2__QX1_US(SDOTL, acc, v, xv, l) vusdotq_laneq_s32((acc), (v), (xv), l)
#define LFM2__QX1_Q8(Q8OP, SDOTL, xv, l)                                                                             \
    {                                                                                                                 \
        uint8x16x4_t v = vld1q_u8_x4(wq);                                                                             \
        wq += 64;                                                                                                     \
        LFM2__QX1_WALK(wq);                                                                                           \
        i0 = Q8OP(SDOTL, i0, v.val[0], xv, l); i1 = Q8OP(SDOTL, i1, v.val[1], xv, l);                                \
        i2 = Q8OP(SDOTL, i2, v.val[2], xv, l); i3 = Q8OP(SDOTL, i3, v.val[3], xv, l);                                \
    }
#define LFM2__QX1_Q4(SDOTL, c)                                                                                       \
    {                                                                                                                 \
        uint8x16x4_t v = vld1q_u8_x4(wq);                                                                             \
        wq += 64;                                                                                                     \
        LFM2__QX1_WALK(wq);                                                                                           \
        i0 = SDOTL(i0, vreinterpretq_s8_u8(vandq_u8(v.val[0], m15)), x0, c); i1 = SDOTL(i1, vreinterpretq_s8_u8(vandq_u8(v.val[1], m15)), x0, c); \
        i2 = SDOTL(i2, vreinterpretq_s8_u8(vandq_u8(v.val[2], m15)), x0, c); i3 = SDOTL(i3, vreinterpretq_s8_u8(vandq_u8(v.val[3], m15)), x0, c); \
        i0 = SDOTL(i0, vreinterpretq_s8_u8(vshrq_n_u8(v.val[0], 4)), x1, c); i1 = SDOTL(i1, vreinterpretq_s8_u8(vshrq_n_u8(v.val[1], 4)), x1, c); \
        i2 = SDOTL(i2, vreinterpretq_s8_u8(vshrq_n_u8(v.val[2], 4)), x1, c); i3 = SDOTL(i3, vreinterpretq_s8_u8(vshrq_n_u8(v.val[3], 4)), x1, c); \
    }
#define LFM2__QX1_F(fj, u, HI)                                                                                        \
    fj = vfmaq_f32(fj, vcvtq_f32_s32(u), vmulq_n_f32(HI ? vcvt_high_f32_f16(vreinterpretq_f16_u16(sh)) : vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(sh))), dx));
#define LFM2__DEF_QX1_NEON(SFX, TGT, SDOTL, Q8OP, Q8SB)                                                              \
    static TGT LFM2__MM_NOSCHED void lfm2__qx1_##SFX(float *o, const unsigned char *gbase, const unsigned char *q, int32_t K, int q4) { \
        const int32_t *sb = LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + 3 * LFM2__CAST(size_t, K)));    \
        const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));        \
        size_t rec_bytes = LFM2__X16_REC(q4);                                                                        \
        int32_t np = K / 64, p, h;                                                                                   \
        float32x4_t f0 = vdupq_n_f32(0.0f), f1 = f0, f2 = f0, f3 = f0;                                              \
        uint8x16_t m15 = vdupq_n_u8(15), m80 = vdupq_n_u8(128);                                                      \
        (void)m80;                                                                                                   \
        for (p = 0; p < np; p++)                                                                                     \
            for (h = 0; h < 2; h++) {                                                                                \
                const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;                               \
                const unsigned char *wq = rec + 64 + h * (q4 ? 256 : 512); /* walks the block's steps */             \
                int32_t kb = (2 * p + h) * LFM2__QBLK;                                                              \
                int8x16_t x0 = vld1q_s8(LFM2__CAST(const int8_t *, LFM2__CAST(const void *, q + kb)));              \
                int8x16_t x1 = vld1q_s8(LFM2__CAST(const int8_t *, LFM2__CAST(const void *, q + kb + 16)));         \
                int32x4_t i0 = vdupq_n_s32((q4 || (Q8SB)) ? sb[kb / LFM2__QBLK] : 0), i1 = i0, i2 = i0, i3 = i0;    \
                float dx = d[kb / 4];                                                                                \
                uint16x8_t sh;                                                                                       \
                if (q4) {                                                                                            \
                    LFM2__QX1_Q4(SDOTL, 0) LFM2__QX1_Q4(SDOTL, 1) LFM2__QX1_Q4(SDOTL, 2) LFM2__QX1_Q4(SDOTL, 3)     \
                } else {                                                                                             \
                    LFM2__QX1_Q8(Q8OP, SDOTL, x0, 0) LFM2__QX1_Q8(Q8OP, SDOTL, x0, 1)                               \
                    LFM2__QX1_Q8(Q8OP, SDOTL, x0, 2) LFM2__QX1_Q8(Q8OP, SDOTL, x0, 3)                               \
                    LFM2__QX1_Q8(Q8OP, SDOTL, x1, 0) LFM2__QX1_Q8(Q8OP, SDOTL, x1, 1)                               \
                    LFM2__QX1_Q8(Q8OP, SDOTL, x1, 2) LFM2__QX1_Q8(Q8OP, SDOTL, x1, 3)                               \
                }                                                                                                    \
                sh = vld1q_u16(LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, rec + h * 32)));               \
                LFM2__QX1_F(f0, i0, 0) LFM2__QX1_F(f1, i1, 1)                                                        \
                sh = vld1q_u16(LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, rec + h * 32 + 16)));          \
                LFM2__QX1_F(f2, i2, 0) LFM2__QX1_F(f3, i3, 1)                                                        \
            }                                                                                                        \
        vst1q_f32(o, f0); vst1q_f32(o + 4, f1); vst1q_f32(o + 8, f2); vst1q_f32(o + 12, f3);                        \
    }
#define LFM2__DEF_QX16_NEON(SFX, TGT, SDOTL)                                                                         \
    static TGT LFM2__INLINE void lfm2__qmmx_##SFX(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) { \
        int32_t K = w->cols, rows = w->rows, np = K / 64, g, t, p, h, half;                                         \
        size_t qrow = LFM2__QROW_BYTES(K), rec_bytes = LFM2__X16_REC(q4);                                           \
        for (g = r0 / 16; g < r1 / 16; g++) {                                                                       \
            const unsigned char *gbase = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) * rec_bytes; \
            for (half = 0; B >= 4 && half < 2; half++) {                                                            \
                float *og = out + LFM2__CAST(size_t, g) * 16 + 8 * half;                                            \
                for (t = 0; t + 4 <= B; t += 4) LFM2__QXN_RUN(LFM2__FOR4, SDOTL)                                    \
            }                                                                                                       \
            for (t = B - B % 4; t < B; t++)                                                                         \
                lfm2__qx1_##SFX(out + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, g) * 16, gbase, qa + LFM2__CAST(size_t, t) * qrow, K, q4); \
        }                                                                                                           \
    }                                                                                                               \
    static TGT void lfm2__qmm_q8x_##SFX(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_##SFX(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); } \
    static TGT void lfm2__qmm_q4x_##SFX(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_##SFX(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
LFM2__DEF_QMM_NEON(neon, LFM2__TGT_NEON, LFM2__SDOT_EMU)
LFM2__DEF_QX1_NEON(neon, LFM2__TGT_NEON, LFM2__SDOTL_EMU, LFM2__QX1_FLIP, 0)
LFM2__DEF_QX16_NEON(neon, LFM2__TGT_NEON, LFM2__SDOTL_EMU)
#ifdef LFM2__HAVE_NEON_DOT
LFM2__DEF_QMM_NEON(ndot, LFM2__TGT_NDOT, LFM2__SDOT_DOT)
LFM2__DEF_QX1_NEON(ndot, LFM2__TGT_NDOT, LFM2__SDOTL_DOT, LFM2__QX1_FLIP, 0)
LFM2__DEF_QX16_NEON(ndot, LFM2__TGT_NDOT, LFM2__SDOTL_DOT)
#endif
#ifdef LFM2__HAVE_NEON_I8MM
/* NEON_I8MM, interleaved Q8X / Q4X: one usmmla multiplies a 2 x 8 matrix of unsigned bytes (2 rows
   x 8 columns of weights, as stored: Q8X w + 128, Q4X's nibbles w + 8) by a 2 x 8 one of signed
   bytes (2 tokens x the same 8 columns) into 2 x 2 int32 sums, lanes (row i, token u), (i, v),
   (i + 1, u), (i + 1, v). Started from the block correction sb of each token (which cancels the
   offset for Q8 and Q4 alike: no sign flip), the int32 sums of a block are the exact numbers the
   sdot kernel makes, and the float steps after them are its own (one conversion, the product
   row scale * dx, one multiply-add per output and block, blocks in order): bit-identical to it.
   The operands come from the stored steps by zips: rows (i, i + 1) x columns of steps (c, c + 1)
   is a 32-bit zip of the two steps' 4-row vectors (per weight vector, shared by the tile's
   tokens), tokens (u, v) x 8 columns a 64-bit zip of their 16 activation bytes (shared by the
   rows). A tile is one half group (8 rows) x 3 pairs of tokens; the token pairs left go 2 at a
   time, a last single token (decode) through the one-token kernel with usdot (lfm2__qx1_i8mm). */
/* GCC's scheduling before register allocation hoists the tile's loads and spills 9 of its 12 float
   accumulators (215 instructions per block instead of 185, GCC 12): it is off for these kernels
   (LFM2__MM_NOSCHED, with the one-token kernels above). The activation operand of a pair is an 8-byte load of each token through pointers that walk
   the row (post-incremented: the lane load LD1 {v.d}[1] has no offset addressing; written out
   for GCC / Clang). LFM2__MM_LD(xp, pu, pv, IU, RV): xp = pu's 8 bytes | pv's 8 bytes, then
   pu += IU (a literal), pv += RV (a register). */
#if defined(__GNUC__) || defined(__clang__)
#define LFM2__MM_LD(xp, pu, pv, IU, RV) __asm__("ldr %d0, [%1], #" #IU "\n\tld1 {%0.d}[1], [%2], %3" : "=&w"(xp), "+r"(pu), "+r"(pv) : "r"(RV) : "memory")
#else
#define LFM2__MM_LD(xp, pu, pv, IU, RV)                                                                              \
    (xp = vreinterpretq_s8_s64(vld1q_lane_s64(LFM2__CAST(const int64_t *, LFM2__CAST(const void *, pv)), vreinterpretq_s64_s8(vcombine_s8(vld1_s8(pu), vdup_n_s8(0))), 1)), \
     pu += IU, pv += RV)
#endif
#define LFM2__MM_FOR3(M, ...) M(0, __VA_ARGS__) M(1, __VA_ARGS__) M(2, __VA_ARGS__)
/* per pair n of the tile (tokens t + 2n, t + 2n + 1): float accumulators of the row pairs 01 23 45
   67, their int32 block sums, the two tokens' walking pointers, the pair's block corrections of
   the record (sb of u and v, blocks 0 and 1); dx and sb are at distances od / osb from the
   pointers */
#define LFM2__MM_DECL(n, _)                                                                                          \
    float32x4_t f##n##a = vdupq_n_f32(0.0f), f##n##b = f##n##a, f##n##c = f##n##a, f##n##d = f##n##a;                \
    int32x4_t i##n##a, i##n##b, i##n##c, i##n##d, sb##n; int8x16_t x##n;                                               \
    const int8_t *pu##n = LFM2__CAST(const int8_t *, LFM2__CAST(const void *, q0 + LFM2__CAST(size_t, 2 * (n)) * qrow)); \
    const int8_t *pv##n = LFM2__CAST(const int8_t *, LFM2__CAST(const void *, q0 + LFM2__CAST(size_t, 2 * (n) + 1) * qrow));
/* the record's [sbu0, sbv0, sbu1, sbv1] (at the record's start: sb of block kb at 3K + kb / 8 from
   the row, kb bytes on from its start) */
#define LFM2__MM_SB(n, _)                                                                                            \
    sb##n = vzip1q_s32(vcombine_s32(vld1_s32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, pu##n + osb))), vdup_n_s32(0)), \
                       vcombine_s32(vld1_s32(LFM2__CAST(const int32_t *, LFM2__CAST(const void *, pv##n + osb))), vdup_n_s32(0)));
#define LFM2__MM_X0(n, H)                                                                                            \
    {                                                                                                                 \
        int32x4_t sbh = vreinterpretq_s32_s64(vdupq_laneq_s64(vreinterpretq_s64_s32(sb##n), H));                     \
        i##n##a = sbh; i##n##b = sbh; i##n##c = sbh; i##n##d = sbh;                                                   \
    }
/* 8 columns of the pair for the 4 row pairs (pointers on by 8) */
#define LFM2__MM_MM(n, _)                                                                                            \
    LFM2__MM_LD(x##n, pu##n, pv##n, 8, i8);                                                                           \
    i##n##a = vusmmlaq_s32(i##n##a, wa, x##n); i##n##b = vusmmlaq_s32(i##n##b, wb, x##n);                            \
    i##n##c = vusmmlaq_s32(i##n##c, wc, x##n); i##n##d = vusmmlaq_s32(i##n##d, wd, x##n);
/* the 4 row-pair operands V##a..V##d of steps (s, s + 1): 32-bit zips of the two steps' vectors
   lo (rows 0-3, at wq + 64 s) and hi (rows 4-7, 16 bytes on). Q8 uses them as they are (wa..wd);
   Q4 first (za..zd: steps (s, s + 1) in their low nibbles and (s + 4, s + 5) in their high ones),
   then one row pair's weights at a time (the 3 pairs' activations loaded first: the registers
   are all but full) */
#define LFM2__MM_ZIPS(V, s)                                                                                          \
    V##a = vreinterpretq_u8_u32(vzip1q_u32(vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s))), vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 64)))); \
    V##b = vreinterpretq_u8_u32(vzip2q_u32(vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s))), vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 64)))); \
    V##c = vreinterpretq_u8_u32(vzip1q_u32(vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 16)), vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 80)))); \
    V##d = vreinterpretq_u8_u32(vzip2q_u32(vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 16)), vreinterpretq_u32_u8(vld1q_u8(wq + 64 * (s) + 80))));
#define LFM2__MM_Q8(FOR, c) LFM2__MM_ZIPS(w, c) FOR(LFM2__MM_MM, 0)
#define LFM2__MM_X4(n, RV, IU) LFM2__MM_LD(x##n, pu##n, pv##n, IU, RV);
#define LFM2__MM_R4(n, r) i##n##r = vusmmlaq_s32(i##n##r, wr, x##n);
#define LFM2__MM_Q4(FOR, RV, IU, OP)                                                                                 \
    FOR(LFM2__MM_X4, RV, IU)                                                                                          \
    wr = OP(za); FOR(LFM2__MM_R4, a) wr = OP(zb); FOR(LFM2__MM_R4, b)                                                 \
    wr = OP(zc); FOR(LFM2__MM_R4, c) wr = OP(zd); FOR(LFM2__MM_R4, d)
#define LFM2__MM_LO(v) vandq_u8((v), vdupq_n_u8(15))
#define LFM2__MM_HI(v) vshrq_n_u8((v), 4)
#define LFM2__MM_F(n, _)                                                                                             \
    {                                                                                                                 \
        float32x4_t dxp = vzip1q_f32(vld1q_f32(LFM2__CAST(const float *, LFM2__CAST(const void *, pu##n + od))),     \
                                     vld1q_f32(LFM2__CAST(const float *, LFM2__CAST(const void *, pv##n + od))));    \
        f##n##a = vfmaq_f32(f##n##a, vcvtq_f32_s32(i##n##a), vmulq_f32(s01, dxp));                                   \
        f##n##b = vfmaq_f32(f##n##b, vcvtq_f32_s32(i##n##b), vmulq_f32(s23, dxp));                                   \
        f##n##c = vfmaq_f32(f##n##c, vcvtq_f32_s32(i##n##c), vmulq_f32(s45, dxp));                                   \
        f##n##d = vfmaq_f32(f##n##d, vcvtq_f32_s32(i##n##d), vmulq_f32(s67, dxp));                                   \
    }
#define LFM2__MM_ST(n, _)                                                                                            \
    {                                                                                                                 \
        float *o = og + LFM2__CAST(size_t, t + 2 * (n)) * LFM2__CAST(size_t, rows);                                  \
        vst1q_f32(o, vuzp1q_f32(f##n##a, f##n##b)); vst1q_f32(o + 4, vuzp1q_f32(f##n##c, f##n##d));                  \
        o += rows;                                                                                                    \
        vst1q_f32(o, vuzp2q_f32(f##n##a, f##n##b)); vst1q_f32(o + 4, vuzp2q_f32(f##n##c, f##n##d));                  \
    }
/* block H (0, 1) of the record: the 4 sub-steps of 8 columns in column order (Q4: 0, 2, 1, 3, the
   pointers of v moved by i16 / im8 / i16 / i8), then the block's scales */
#define LFM2__MM_BLK(FOR, H)                                                                                         \
    {                                                                                                                 \
        const unsigned char *wq = rec + 64 + (H) * (q4 ? 256 : 512) + half * 32;                                     \
        FOR(LFM2__MM_X0, H)                                                                                           \
        if (q4) {                                                                                                     \
            uint8x16_t za, zb, zc, zd, wr;                                                                            \
            LFM2__MM_ZIPS(z, 0)                                                                                          \
            LFM2__MM_Q4(FOR, i16, 16, LFM2__MM_LO) LFM2__MM_Q4(FOR, im8, -8, LFM2__MM_HI)                             \
            LFM2__MM_ZIPS(z, 2)                                                                                          \
            LFM2__MM_Q4(FOR, i16, 16, LFM2__MM_LO) LFM2__MM_Q4(FOR, i8, 8, LFM2__MM_HI)                               \
        } else {                                                                                                      \
            uint8x16_t wa, wb, wc, wd;                                                                                \
            LFM2__MM_Q8(FOR, 0) LFM2__MM_Q8(FOR, 2) LFM2__MM_Q8(FOR, 4) LFM2__MM_Q8(FOR, 6)                           \
        }                                                                                                             \
        {                                                                                                             \
            uint16x8_t sh = vld1q_u16(LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, rec + (H) * 32 + half * 16))); \
            float32x4_t ws0 = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(sh))), ws1 = vcvt_high_f32_f16(vreinterpretq_f16_u16(sh)); \
            float32x4_t s01 = vzip1q_f32(ws0, ws0), s23 = vzip2q_f32(ws0, ws0), s45 = vzip1q_f32(ws1, ws1), s67 = vzip2q_f32(ws1, ws1); \
            FOR(LFM2__MM_F, 0)                                                                                        \
        }                                                                                                             \
    }
#define LFM2__MM_RUN(FOR)                                                                                            \
    {                                                                                                                 \
        const unsigned char *q0 = qa + LFM2__CAST(size_t, t) * qrow;                                                 \
        ptrdiff_t od = 2 * LFM2__CAST(ptrdiff_t, K) - 32, osb = 3 * LFM2__CAST(ptrdiff_t, K);                       \
        FOR(LFM2__MM_DECL, 0)                                                                                         \
        for (p = 0; p < np; p++) {                                                                                    \
            const unsigned char *rec = gbase + LFM2__CAST(size_t, p) * rec_bytes;                                    \
            FOR(LFM2__MM_SB, 0)                                                                                       \
            LFM2__MM_BLK(FOR, 0)                                                                                      \
            LFM2__MM_BLK(FOR, 1)                                                                                      \
            osb -= 56;                                                                                                \
        }                                                                                                             \
        FOR(LFM2__MM_ST, 0)                                                                                           \
    }
LFM2__DEF_QX1_NEON(i8mm, LFM2__TGT_NI8MM, LFM2__SDOTL_DOT, LFM2__QX1_US, 1)
static LFM2__TGT_NI8MM LFM2__MM_NOSCHED LFM2__INLINE void lfm2__qmmx_i8mm(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, np = K / 64, g, t, p, half;
    size_t qrow = LFM2__QROW_BYTES(K), rec_bytes = LFM2__X16_REC(q4);
    ptrdiff_t i8 = 8, i16 = 16, im8 = -8;
    for (g = r0 / 16; B >= 2 && g < r1 / 16; g++) {
        const unsigned char *gbase = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) * rec_bytes;
        for (half = 0; half < 2; half++) {
            float *og = out + LFM2__CAST(size_t, g) * 16 + 8 * half;
            for (t = 0; t + 6 <= B; t += 6) LFM2__MM_RUN(LFM2__MM_FOR3)
            for (; t + 2 <= B; t += 2) LFM2__MM_RUN(LFM2__FOR1)
        }
    }
    if (B & 1) /* the last token (decode: the only one): one group at a time, usdot by lane */
        for (g = r0 / 16; g < r1 / 16; g++)
            lfm2__qx1_i8mm(out + LFM2__CAST(size_t, B - 1) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, g) * 16,
                           LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) * rec_bytes,
                           qa + LFM2__CAST(size_t, B - 1) * qrow, K, q4);
}
static LFM2__TGT_NI8MM LFM2__MM_NOSCHED void lfm2__qmm_q8x_i8mm(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_i8mm(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static LFM2__TGT_NI8MM LFM2__MM_NOSCHED void lfm2__qmm_q4x_i8mm(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmmx_i8mm(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
#endif
#endif

#ifdef LFM2__HAVE_NEON32
/* armv7 NEON, row-major Q8 / Q4: one block of 32 columns per step, 1 row x 1 token; widening
   multiplies and pairwise adds give the 4-byte lane sums of an sdot (pairs at most 2 * 128 * 127:
   no int16 overflow) */
static LFM2__INLINE int32x4_t lfm2__sdot_n32(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int32x4_t s0 = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b))), s1 = vpaddlq_s16(vmull_s8(vget_high_s8(a), vget_high_s8(b)));
    return vaddq_s32(acc, vcombine_s32(vpadd_s32(vget_low_s32(s0), vget_high_s32(s0)), vpadd_s32(vget_low_s32(s1), vget_high_s32(s1))));
}
static LFM2__INLINE void lfm2__qmm_n32(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, r, t, k;
    size_t rb = q4 ? LFM2__CAST(size_t, K) / 2 : LFM2__CAST(size_t, K), nsc = LFM2__CAST(size_t, K / LFM2__QBLK), qrow = LFM2__QROW_BYTES(K);
    for (r = r0; r < r1; r++) {
        const unsigned char *wr = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, r) * rb;
        const uint16_t *sc = w->scales + LFM2__CAST(size_t, r) * nsc;
        for (t = 0; t < B; t++) {
            const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;
            const int32_t *s = LFM2__CAST(const int32_t *, LFM2__CAST(const void *, q + K));
            const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (k = 0; k < K; k += LFM2__QBLK) {
                float dw = lfm2__f16_to_f32(sc[k / LFM2__QBLK]);
                int32x4_t i0, i1;
                if (q4) {
                    uint8x16_t v = vld1q_u8(wr + k / 2);
                    i0 = lfm2__sdot_n32(vld1q_s32(s + k / 4), vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), vreinterpretq_s8_u8(vld1q_u8(q + k)));
                    i1 = lfm2__sdot_n32(vld1q_s32(s + k / 4 + 4), vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vreinterpretq_s8_u8(vld1q_u8(q + k + 16)));
                } else {
                    i0 = lfm2__sdot_n32(vdupq_n_s32(0), vreinterpretq_s8_u8(vld1q_u8(wr + k)), vreinterpretq_s8_u8(vld1q_u8(q + k)));
                    i1 = lfm2__sdot_n32(vdupq_n_s32(0), vreinterpretq_s8_u8(vld1q_u8(wr + k + 16)), vreinterpretq_s8_u8(vld1q_u8(q + k + 16)));
                }
                acc = LFM2__N32_FMA(vcvtq_f32_s32(i0), vmulq_n_f32(vld1q_f32(d + k / 4), dw), acc);
                acc = LFM2__N32_FMA(vcvtq_f32_s32(i1), vmulq_n_f32(vld1q_f32(d + k / 4 + 4), dw), acc);
            }
            out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r)] = lfm2__hsum_n32(acc);
        }
    }
}
static void lfm2__qmm_q8_n32(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_n32(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static void lfm2__qmm_q4_n32(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_n32(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
#endif
#ifdef LFM2__HAVE_WASM
/* WebAssembly SIMD128, row-major Q8 / Q4: one block of 32 columns per step, 1 row x 1 token; the
   bytes widened to int16 and summed in pairs by i32x4.dot_i16x8 (exact), the block's 4 int32
   partial sums converted and multiplied by dw * dx (the same for the whole block). Q4 nibbles
   become w = nibble - 8 first. */
static LFM2__INLINE v128_t lfm2__qdot16_wasm(v128_t a, v128_t b) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b)),
                          wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b)));
}
static LFM2__INLINE void lfm2__qmm_wasm(float *out, const unsigned char *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1, int q4) {
    int32_t K = w->cols, rows = w->rows, r, t, k;
    size_t rb = q4 ? LFM2__CAST(size_t, K) / 2 : LFM2__CAST(size_t, K), nsc = LFM2__CAST(size_t, K / LFM2__QBLK), qrow = LFM2__QROW_BYTES(K);
    for (r = r0; r < r1; r++) {
        const unsigned char *wr = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, r) * rb;
        const uint16_t *sc = w->scales + LFM2__CAST(size_t, r) * nsc;
        for (t = 0; t < B; t++) {
            const unsigned char *q = qa + LFM2__CAST(size_t, t) * qrow;
            const float *d = LFM2__CAST(const float *, LFM2__CAST(const void *, q + 2 * LFM2__CAST(size_t, K)));
            v128_t acc = wasm_f32x4_splat(0.0f);
            for (k = 0; k < K; k += LFM2__QBLK) {
                v128_t w0, w1, is;
                if (q4) {
                    v128_t v = wasm_v128_load(wr + k / 2), m15 = wasm_i8x16_splat(15), eight = wasm_i8x16_splat(8);
                    w0 = wasm_i8x16_sub(wasm_v128_and(v, m15), eight);
                    w1 = wasm_i8x16_sub(wasm_u8x16_shr(v, 4), eight);
                } else {
                    w0 = wasm_v128_load(wr + k);
                    w1 = wasm_v128_load(wr + k + 16);
                }
                is = wasm_i32x4_add(lfm2__qdot16_wasm(w0, wasm_v128_load(q + k)), lfm2__qdot16_wasm(w1, wasm_v128_load(q + k + 16)));
                acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(is), wasm_f32x4_splat(lfm2__f16_to_f32(sc[k / LFM2__QBLK]) * d[k / 4])));
            }
            out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r)] = lfm2__hsum_wasm(acc);
        }
    }
}
static void lfm2__qmm_q8_wasm(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_wasm(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 0); }
static void lfm2__qmm_q4_wasm(float *out, const void *qa, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) { lfm2__qmm_wasm(out, LFM2__CAST(const unsigned char *, qa), B, w, r0, r1, 1); }
#endif

/* ---- BF16 / BF16X on bf16 activations (lfm2_context_params.bf16_activations) --------------- */
#ifdef LFM2__HAVE_AVX512

/* lfm2_context_params.bf16_activations: bf16 weights times activations rounded to bf16 (as
   llama.cpp's bf16 matrices do), with vdpbf16ps: 32 products per instruction instead of 16
   multiply-adds. Activation rows: K bf16 (K % 32 == 0). Steps of 32 columns, 4 rows x 4 tokens,
   else 1 x 1, the same operations per (row, token) in both. */
static LFM2__TGT_BF16 void lfm2__bf16_acts_avx512(unsigned char *dst, const float *x, int32_t K, int q4) {
    (void)q4;
    int32_t k;
    for (k = 0; k < K; k += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        memcpy(dst + 2 * LFM2__CAST(size_t, k), &v, 64);
    }
}
static LFM2__TGT_BF16 LFM2__INLINE __m512bh lfm2__ldbh(const void *p) { __m512bh v; memcpy(&v, p, sizeof v); return v; }
static LFM2__TGT_BF16 void lfm2__mm_bf16dot_avx512(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const unsigned char *xa = LFM2__CAST(const unsigned char *, xv);
    int32_t K = w->cols, rows = w->rows, r, t, k, i, j;
    size_t rb = 2 * LFM2__CAST(size_t, K);
    const unsigned char *base = LFM2__CAST(const unsigned char *, w->data);
    for (r = r0; r < r1; r += 4) {
        int32_t nr = (r1 - r < 4) ? r1 - r : 4;
        for (t = 0; t < B;) {
            float res[4][4];
            int32_t nt = (B - t >= 4 && nr == 4) ? 4 : 1;
            const unsigned char *x0 = xa + LFM2__CAST(size_t, t) * rb;
            if (nt == 4) {
                const unsigned char *w0 = base + LFM2__CAST(size_t, r) * rb, *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
                LFM2__TILE_ZERO(__m512, _mm512_setzero_ps());
                for (k = 0; k < 2 * K; k += 64) {
                    __m512bh b0 = lfm2__ldbh(w0 + k), b1 = lfm2__ldbh(w1 + k), b2 = lfm2__ldbh(w2 + k), b3 = lfm2__ldbh(w3 + k), xv;
                    xv = lfm2__ldbh(x0 + k);
                    a00 = _mm512_dpbf16_ps(a00, b0, xv); a10 = _mm512_dpbf16_ps(a10, b1, xv); a20 = _mm512_dpbf16_ps(a20, b2, xv); a30 = _mm512_dpbf16_ps(a30, b3, xv);
                    xv = lfm2__ldbh(x0 + rb + k);
                    a01 = _mm512_dpbf16_ps(a01, b0, xv); a11 = _mm512_dpbf16_ps(a11, b1, xv); a21 = _mm512_dpbf16_ps(a21, b2, xv); a31 = _mm512_dpbf16_ps(a31, b3, xv);
                    xv = lfm2__ldbh(x0 + 2 * rb + k);
                    a02 = _mm512_dpbf16_ps(a02, b0, xv); a12 = _mm512_dpbf16_ps(a12, b1, xv); a22 = _mm512_dpbf16_ps(a22, b2, xv); a32 = _mm512_dpbf16_ps(a32, b3, xv);
                    xv = lfm2__ldbh(x0 + 3 * rb + k);
                    a03 = _mm512_dpbf16_ps(a03, b0, xv); a13 = _mm512_dpbf16_ps(a13, b1, xv); a23 = _mm512_dpbf16_ps(a23, b2, xv); a33 = _mm512_dpbf16_ps(a33, b3, xv);
                }
                LFM2__TILE_HSUM(res, lfm2__hsum512);
            } else {
                for (i = 0; i < nr; i++) {
                    const unsigned char *wi = base + LFM2__CAST(size_t, r + i) * rb;
                    __m512 a0 = _mm512_setzero_ps();
                    for (k = 0; k < 2 * K; k += 64) a0 = _mm512_dpbf16_ps(a0, lfm2__ldbh(wi + k), lfm2__ldbh(x0 + k));
                    res[i][0] = lfm2__hsum512(a0);
                }
            }
            for (i = 0; i < nr; i++)
                for (j = 0; j < nt; j++) out[LFM2__CAST(size_t, t + j) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r + i)] = res[i][j];
            t += nt;
        }
    }
}
/* BF16X (see lfm2__fx_index): one 32-bit lane per row holds the row's two weights of a column
   pair, so one vdpbf16ps with the token's broadcast activation pair sums that pair for 16 rows.
   8 tokens share every weight load; the rest go one at a time with the same operations. */
#define LFM2__BX_TOK(u, A) A = _mm512_dpbf16_ps(A, wv, lfm2__bcbh(xp + LFM2__CAST(size_t, u) * 2 * LFM2__CAST(size_t, K)))
static LFM2__TGT_BF16 LFM2__INLINE __m512bh lfm2__bcbh(const unsigned char *p) {
    int32_t v;
    __m512i b;
    __m512bh r;
    memcpy(&v, p, 4);
    b = _mm512_set1_epi32(v);
    memcpy(&r, &b, sizeof r);
    return r;
}
static LFM2__TGT_BF16 void lfm2__mm_bf16xdot_avx512(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const unsigned char *xa = LFM2__CAST(const unsigned char *, xv);
    int32_t K = w->cols, rows = w->rows, np = K / 2, g, t, p;
    for (g = r0 / 16; g < r1 / 16; g++) {
        const unsigned char *gb = LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * 32 * LFM2__CAST(size_t, K);
        float *og = out + LFM2__CAST(size_t, g) * 16;
        for (t = 0; t + 8 <= B; t += 8) { /* prefill: 8 tokens (16 ran out of address registers) */
            const unsigned char *x0 = xa + LFM2__CAST(size_t, t) * 2 * LFM2__CAST(size_t, K);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (p = 0; p < np; p++) {
                const unsigned char *xp = x0 + 4 * LFM2__CAST(size_t, p);
                __m512bh wv;
                LFM2__PREFETCH_AHEAD(gb + 64 * LFM2__CAST(size_t, p), 64);
                wv = lfm2__ldbh(gb + 64 * LFM2__CAST(size_t, p));
                LFM2__BX_TOK(0, a0); LFM2__BX_TOK(1, a1); LFM2__BX_TOK(2, a2); LFM2__BX_TOK(3, a3);
                LFM2__BX_TOK(4, a4); LFM2__BX_TOK(5, a5); LFM2__BX_TOK(6, a6); LFM2__BX_TOK(7, a7);
            }
            lfm2__store16x8(og, t, rows, a0, a1, a2, a3, a4, a5, a6, a7);
        }
        for (; t < B; t++) { /* decode and the rest */
            const unsigned char *x0 = xa + LFM2__CAST(size_t, t) * 2 * LFM2__CAST(size_t, K);
            __m512 a0 = _mm512_setzero_ps();
            for (p = 0; p < np; p++) {
                const unsigned char *xp = x0 + 4 * LFM2__CAST(size_t, p);
                __m512bh wv;
                LFM2__PREFETCH_AHEAD(gb + 64 * LFM2__CAST(size_t, p), 64);
                wv = lfm2__ldbh(gb + 64 * LFM2__CAST(size_t, p));
                LFM2__BX_TOK(0, a0);
            }
            _mm512_storeu_ps(og + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows), a0);
        }
    }
}
#endif
#if defined(LFM2__HAVE_NEON) && defined(LFM2__HAVE_NEON_BF16)
/* the same on NEON with the bf16 extension (BFCVTN, BFDOT): 1 row x 1 token, steps of 8 */
static LFM2__TGT_NBF16 void lfm2__bf16_acts_neon(unsigned char *dst, const float *x, int32_t K, int q4) {
    (void)q4;
    int32_t k;
    for (k = 0; k < K; k += 8) {
        bfloat16x8_t v = vcvtq_high_bf16_f32(vcvtq_low_bf16_f32(vld1q_f32(x + k)), vld1q_f32(x + k + 4));
        memcpy(dst + 2 * LFM2__CAST(size_t, k), &v, 16);
    }
}
static LFM2__TGT_NBF16 void lfm2__mm_bf16dot_neon(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const unsigned char *xa = LFM2__CAST(const unsigned char *, xv);
    int32_t K = w->cols, rows = w->rows, r, t, k;
    size_t rb = 2 * LFM2__CAST(size_t, K);
    for (r = r0; r < r1; r++) {
        const bfloat16_t *wr = LFM2__CAST(const bfloat16_t *, LFM2__CAST(const void *, LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, r) * rb));
        for (t = 0; t < B; t++) {
            const bfloat16_t *xr = LFM2__CAST(const bfloat16_t *, LFM2__CAST(const void *, xa + LFM2__CAST(size_t, t) * rb));
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (k = 0; k < K; k += 8) acc = vbfdotq_f32(acc, vld1q_bf16(wr + k), vld1q_bf16(xr + k));
            out[LFM2__CAST(size_t, t) * LFM2__CAST(size_t, rows) + LFM2__CAST(size_t, r)] = vaddvq_f32(acc);
        }
    }
}
/* BF16X (see lfm2__fx_index) with BFDOT by lane: a weight register holds 4 rows' pairs of one column
   pair, one bfdot with lane j of the token's 8 activations sums that pair for 4 rows. 16 rows x 4
   tokens (16 accumulators), else 1 token, the same operations. */
#define LFM2__BXN_X(u, _) bfloat16x8_t xr##u = vld1q_bf16(LFM2__CAST(const bfloat16_t *, LFM2__CAST(const void *, xa + LFM2__CAST(size_t, t + u) * 2 * LFM2__CAST(size_t, K))) + 2 * p);
#define LFM2__BXN_TOK(u, L)                                                                                          \
    a##u##0 = vbfdotq_laneq_f32(a##u##0, w0, xr##u, L); a##u##1 = vbfdotq_laneq_f32(a##u##1, w1, xr##u, L);          \
    a##u##2 = vbfdotq_laneq_f32(a##u##2, w2, xr##u, L); a##u##3 = vbfdotq_laneq_f32(a##u##3, w3, xr##u, L);
#define LFM2__BXN_PAIR(FOR, L)                                                                                       \
    {                                                                                                                 \
        const bfloat16_t *wp = wg + 32 * LFM2__CAST(size_t, p + L);                                                  \
        bfloat16x8_t w0 = vld1q_bf16(wp), w1 = vld1q_bf16(wp + 8), w2 = vld1q_bf16(wp + 16), w3 = vld1q_bf16(wp + 24); \
        FOR(LFM2__BXN_TOK, L)                                                                                         \
    }
#define LFM2__BXN_RUN(FOR)                                                                                           \
    {                                                                                                                 \
        FOR(LFM2__FXN_ZERO, 0)                                                                                        \
        for (p = 0; p < np; p += 4) {                                                                                 \
            FOR(LFM2__BXN_X, 0)                                                                                       \
            LFM2__BXN_PAIR(FOR, 0) LFM2__BXN_PAIR(FOR, 1) LFM2__BXN_PAIR(FOR, 2) LFM2__BXN_PAIR(FOR, 3)               \
        }                                                                                                             \
        FOR(LFM2__FXN_STORE, 0)                                                                                       \
    }
static LFM2__TGT_NBF16 void lfm2__mm_bf16xdot_neon(float *out, const void *xv, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1) {
    const unsigned char *xa = LFM2__CAST(const unsigned char *, xv);
    int32_t K = w->cols, rows = w->rows, np = K / 2, g, t, p;
    for (g = r0 / 16; g < r1 / 16; g++) {
        const bfloat16_t *wg = LFM2__CAST(const bfloat16_t *, LFM2__CAST(const void *, LFM2__CAST(const unsigned char *, w->data) + LFM2__CAST(size_t, g) * 32 * LFM2__CAST(size_t, K)));
        float *og = out + LFM2__CAST(size_t, g) * 16;
        for (t = 0; t + 4 <= B; t += 4) LFM2__BXN_RUN(LFM2__FOR4)
        for (; t < B; t++) LFM2__BXN_RUN(LFM2__FOR1)
    }
}
#endif

/* ---- the kernel table ------------------------------------------------------------------------
   Every kernel, keyed by (weight format, activations, instruction set). lfm2__kernel_for gives a
   matrix the entry of the highest instruction set the model's level includes, for its format and
   activations (bf16 activations where asked for and available, else f32 for the float formats and
   int8 for the block formats); every format has a scalar entry, so there is always one. */
enum { LFM2__ACT_F32 = 0, LFM2__ACT_BF16, LFM2__ACT_Q8 };
typedef void (*lfm2__kfn)(float *out, const void *x, int32_t B, const lfm2__mat *w, int32_t r0, int32_t r1);
typedef void (*lfm2__prepfn)(unsigned char *dst, const float *x, int32_t K, int q4);
struct lfm2__kernel {
    int32_t dtype;        /* the weight format: LFM2__DT_* */
    int32_t act;          /* LFM2__ACT_*: what it multiplies the weights with */
    int32_t isa;          /* the lfm2_isa it needs */
    int32_t group;        /* rows per unit of the thread split (the interleaved layouts' 16-row groups) */
    int32_t kmul;         /* it needs cols % kmul == 0 */
    lfm2__kfn fn;
    lfm2__prepfn prep;    /* converts f32 activation rows for it (ACT_BF16, ACT_Q8), or NULL */
    const char *name;
};
#define LFM2__K(dt, act, isa, group, kmul, fn, prep) {dt, act, isa, group, kmul, fn, prep, #fn}
static const lfm2__kernel lfm2__kernel_table[] = {
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_SCALAR, 4, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_F16, LFM2__ACT_F32, LFM2_ISA_SCALAR, 4, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_SCALAR, 4, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_F32X, LFM2__ACT_F32, LFM2_ISA_SCALAR, 16, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_F16X, LFM2__ACT_F32, LFM2_ISA_SCALAR, 16, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_F32, LFM2_ISA_SCALAR, 16, 1, lfm2__mm_ref, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_SCALAR, 4, 1, lfm2__qmm_ref, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_SCALAR, 4, 1, lfm2__qmm_ref, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_SCALAR, 16, 1, lfm2__qmm_ref, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_SCALAR, 16, 1, lfm2__qmm_ref, lfm2__quantize_act_ref),
#ifdef LFM2__HAVE_AVX2
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_AVX2, 4, 1, lfm2__mm_f32_avx2, NULL),
    LFM2__K(LFM2__DT_F16, LFM2__ACT_F32, LFM2_ISA_AVX2, 4, 1, lfm2__mm_f16_avx2, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_AVX2, 4, 1, lfm2__mm_bf16_avx2, NULL),
    LFM2__K(LFM2__DT_F16X, LFM2__ACT_F32, LFM2_ISA_AVX2, 16, 1, lfm2__mm_f16x_avx2, NULL),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_F32, LFM2_ISA_AVX2, 16, 1, lfm2__mm_bf16x_avx2, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_AVX2, 4, 1, lfm2__qmm_q8_avx2, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_AVX2, 4, 1, lfm2__qmm_q4_avx2, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_AVX2, 16, 1, lfm2__qmm_q8x_avx2, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_AVX2, 16, 1, lfm2__qmm_q4x_avx2, lfm2__quantize_act_ref),
#endif
#ifdef LFM2__HAVE_AVX512
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_AVX512, 4, 1, lfm2__mm_f32_avx512, NULL),
    LFM2__K(LFM2__DT_F16, LFM2__ACT_F32, LFM2_ISA_AVX512, 4, 1, lfm2__mm_f16_avx512, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_AVX512, 4, 1, lfm2__mm_bf16_avx512, NULL),
    LFM2__K(LFM2__DT_F32X, LFM2__ACT_F32, LFM2_ISA_AVX512, 16, 1, lfm2__mm_f32x_avx512, NULL),
    LFM2__K(LFM2__DT_F16X, LFM2__ACT_F32, LFM2_ISA_AVX512, 16, 1, lfm2__mm_f16x_avx512, NULL),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_F32, LFM2_ISA_AVX512, 16, 1, lfm2__mm_bf16x_avx512, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_AVX512_VNNI, 4, 1, lfm2__qmm_q8_vnni, lfm2__quantize_act_avx512),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_AVX512_VNNI, 4, 1, lfm2__qmm_q4_vnni, lfm2__quantize_act_avx512),
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_AVX512_VNNI, 16, 1, lfm2__qmm_q8x_vnni, lfm2__quantize_act_avx512),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_AVX512_VNNI, 16, 1, lfm2__qmm_q4x_vnni, lfm2__quantize_act_avx512),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_BF16, LFM2_ISA_AVX512_BF16, 4, 32, lfm2__mm_bf16dot_avx512, lfm2__bf16_acts_avx512),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_BF16, LFM2_ISA_AVX512_BF16, 16, 32, lfm2__mm_bf16xdot_avx512, lfm2__bf16_acts_avx512),
#endif
#ifdef LFM2__HAVE_NEON
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_NEON, 4, 1, lfm2__mm_f32_neon, NULL),
    LFM2__K(LFM2__DT_F16, LFM2__ACT_F32, LFM2_ISA_NEON, 4, 1, lfm2__mm_f16_neon, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_NEON, 4, 1, lfm2__mm_bf16_neon, NULL),
    LFM2__K(LFM2__DT_F32X, LFM2__ACT_F32, LFM2_ISA_NEON, 16, 1, lfm2__mm_f32x_neon, NULL),
    LFM2__K(LFM2__DT_F16X, LFM2__ACT_F32, LFM2_ISA_NEON, 16, 1, lfm2__mm_f16x_neon, NULL),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_F32, LFM2_ISA_NEON, 16, 1, lfm2__mm_bf16x_neon, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_NEON, 4, 1, lfm2__qmm_q8_neon, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_NEON, 4, 1, lfm2__qmm_q4_neon, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_NEON, 16, 1, lfm2__qmm_q8x_neon, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_NEON, 16, 1, lfm2__qmm_q4x_neon, lfm2__quantize_act_neon),
#ifdef LFM2__HAVE_NEON_DOT
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_NEON_DOTPROD, 4, 1, lfm2__qmm_q8_ndot, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_NEON_DOTPROD, 4, 1, lfm2__qmm_q4_ndot, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_NEON_DOTPROD, 16, 1, lfm2__qmm_q8x_ndot, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_NEON_DOTPROD, 16, 1, lfm2__qmm_q4x_ndot, lfm2__quantize_act_neon),
#endif
#ifdef LFM2__HAVE_NEON_I8MM
    LFM2__K(LFM2__DT_Q8X, LFM2__ACT_Q8, LFM2_ISA_NEON_I8MM, 16, 1, lfm2__qmm_q8x_i8mm, lfm2__quantize_act_neon),
    LFM2__K(LFM2__DT_Q4X, LFM2__ACT_Q8, LFM2_ISA_NEON_I8MM, 16, 1, lfm2__qmm_q4x_i8mm, lfm2__quantize_act_neon),
#endif
#ifdef LFM2__HAVE_NEON_BF16
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_BF16, LFM2_ISA_NEON_BF16, 4, 32, lfm2__mm_bf16dot_neon, lfm2__bf16_acts_neon),
    LFM2__K(LFM2__DT_BF16X, LFM2__ACT_BF16, LFM2_ISA_NEON_BF16, 16, 32, lfm2__mm_bf16xdot_neon, lfm2__bf16_acts_neon),
#endif
#endif
#ifdef LFM2__HAVE_NEON32
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_NEON, 4, 1, lfm2__mm_f32_n32, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_NEON, 4, 1, lfm2__mm_bf16_n32, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_NEON, 4, 1, lfm2__qmm_q8_n32, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_NEON, 4, 1, lfm2__qmm_q4_n32, lfm2__quantize_act_ref),
#endif
#ifdef LFM2__HAVE_WASM
    LFM2__K(LFM2__DT_F32, LFM2__ACT_F32, LFM2_ISA_WASM_SIMD128, 4, 1, lfm2__mm_f32_wasm, NULL),
    LFM2__K(LFM2__DT_F16, LFM2__ACT_F32, LFM2_ISA_WASM_SIMD128, 4, 1, lfm2__mm_f16_wasm, NULL),
    LFM2__K(LFM2__DT_BF16, LFM2__ACT_F32, LFM2_ISA_WASM_SIMD128, 4, 1, lfm2__mm_bf16_wasm, NULL),
    LFM2__K(LFM2__DT_Q8, LFM2__ACT_Q8, LFM2_ISA_WASM_SIMD128, 4, 1, lfm2__qmm_q8_wasm, lfm2__quantize_act_ref),
    LFM2__K(LFM2__DT_Q4, LFM2__ACT_Q8, LFM2_ISA_WASM_SIMD128, 4, 1, lfm2__qmm_q4_wasm, lfm2__quantize_act_ref),
#endif
};
#define LFM2__N_KERNELS LFM2__CAST(int32_t, sizeof lfm2__kernel_table / sizeof lfm2__kernel_table[0])

/* the entry for (dtype, act) of the highest set that `isa` includes and whose width rule cols
   meets, or NULL */
static const lfm2__kernel *lfm2__kernel_find(int32_t dtype, int32_t act, int32_t isa, int32_t cols) {
    const lfm2__kernel *best = NULL;
    int32_t i;
    for (i = 0; i < LFM2__N_KERNELS; i++) {
        const lfm2__kernel *k = &lfm2__kernel_table[i];
        if (k->dtype != dtype || k->act != act || !lfm2__isa_has(isa, k->isa) || cols % k->kmul != 0) continue;
        if (!best || k->isa > best->isa) best = k;
    }
    return best;
}
/* the kernel of matrix w at level isa; bf16act: bf16 activations for BF16 / BF16X where a kernel
   exists (else the f32 one) */
static const lfm2__kernel *lfm2__kernel_for(const lfm2__mat *w, int bf16act, int32_t isa) {
    const lfm2__kernel *k = NULL;
    if (bf16act && (w->dtype == LFM2__DT_BF16 || w->dtype == LFM2__DT_BF16X)) k = lfm2__kernel_find(w->dtype, LFM2__ACT_BF16, isa, w->cols);
    if (!k) k = lfm2__kernel_find(w->dtype, LFM2__IS_Q(w->dtype) ? LFM2__ACT_Q8 : LFM2__ACT_F32, isa, w->cols);
    return k;
}
/* the vector operations of level isa */
static const lfm2__vops *lfm2__vops_for(int32_t isa) {
#ifdef LFM2__HAVE_AVX512
    if (lfm2__isa_has(isa, LFM2_ISA_AVX512)) return &lfm2__vops_avx512;
#endif
#ifdef LFM2__HAVE_AVX2
    if (lfm2__isa_has(isa, LFM2_ISA_AVX2)) return &lfm2__vops_avx2;
#endif
#ifdef LFM2__HAVE_NEON
    if (lfm2__isa_has(isa, LFM2_ISA_NEON)) return &lfm2__vops_neon;
#endif
#ifdef LFM2__HAVE_WASM
    if (lfm2__isa_has(isa, LFM2_ISA_WASM_SIMD128)) return &lfm2__vops_wasm;
#endif
#ifdef LFM2__HAVE_NEON32
    if (lfm2__isa_has(isa, LFM2_ISA_NEON)) return &lfm2__vops_n32;
#endif
    (void)isa;
    return &lfm2__vops_ref;
}

/* ---- the driver: products as parallel steps ------------------------------------------------
   lfm2__mm_step runs a list of products (jobs) as one step: the activations of every distinct x
   are converted once (int8 / bf16, into qa), then the rows of all jobs, counted in units of their
   kernel's group, are split into n_threads contiguous ranges, one task each. A task walks its rows
   once per LFM2__TOKEN_BLOCK tokens, so the activation rows stay in L2 while the weights stream
   through. */
#define LFM2__TOKEN_BLOCK 64  /* tokens per pass over a task's rows: 64 measured 10-14% faster than 16
                                 for bf16 and f32 (fewer passes over the weights; the activations stay in L2) */
#define LFM2__PAR_MIN_WORK 65536 /* multiply-adds below which a step runs on the calling thread */
#define LFM2__STEP_JOBS 64    /* jobs per step (more are run as several steps) */
#ifndef LFM2__SPLIT_CHUNKS
#define LFM2__SPLIT_CHUNKS 4  /* hand-outs per task of a step (1: one contiguous range each) */
#endif
typedef struct lfm2__mmjob {
    float *out;               /* [B, w->rows] */
    const float *x;           /* [B, w->cols] */
    const lfm2__mat *w;
    int32_t B;
    const lfm2__kernel *k;    /* NULL: the matrix's own kernel (w->kern) */
} lfm2__mmjob;
typedef struct lfm2__mmrun {
    const lfm2__mmjob *job;
    int32_t n, n_tasks;
    lfm2__aint next;                            /* the next unit to hand out (atomic) */
    int32_t chunk;                              /* units per hand-out */
    const lfm2__kernel *k[LFM2__STEP_JOBS];
    const unsigned char *xa[LFM2__STEP_JOBS];   /* the activations as the kernel takes them */
    size_t xs[LFM2__STEP_JOBS];                 /* their row stride in bytes */
    int64_t u0[LFM2__STEP_JOBS + 1];            /* the first split unit of each job */
    /* the conversions of this step */
    int32_t n_conv;
    int64_t conv_row0[LFM2__STEP_JOBS + 1];     /* first row of each conversion in the concatenation */
    const float *cx[LFM2__STEP_JOBS];
    unsigned char *cdst[LFM2__STEP_JOBS];
    lfm2__prepfn cfn[LFM2__STEP_JOBS];
    int32_t cK[LFM2__STEP_JOBS], cq4[LFM2__STEP_JOBS], cB[LFM2__STEP_JOBS];
    size_t crow[LFM2__STEP_JOBS];
} lfm2__mmrun;

static void lfm2__mm_conv_task(void *arg, int32_t i) {
    const lfm2__mmrun *R = LFM2__CAST(const lfm2__mmrun *, arg);
    int64_t lo, hi, r;
    int32_t c = 0;
    lfm2__split(R->conv_row0[R->n_conv], i, R->n_tasks, &lo, &hi);
    for (r = lo; r < hi; r++) {
        int64_t t;
        while (r >= R->conv_row0[c + 1]) c++;
        t = r - R->conv_row0[c];
        R->cfn[c](R->cdst[c] + LFM2__CAST(size_t, t) * R->crow[c], R->cx[c] + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, R->cK[c]), R->cK[c], R->cq4[c]);
    }
}
/* units [lo, hi) of the step's concatenated rows */
static void lfm2__mm_units(const lfm2__mmrun *R, int64_t lo, int64_t hi) {
    int32_t j;
    for (j = 0; j < R->n && lo < hi; j++) {
        const lfm2__mmjob *jb = &R->job[j];
        const lfm2__kernel *k = R->k[j];
        int64_t a = lo > R->u0[j] ? lo : R->u0[j], b = hi < R->u0[j + 1] ? hi : R->u0[j + 1];
        int32_t r0, r1, tb, rows = jb->w->rows;
        if (a >= b) continue;
        r0 = LFM2__CAST(int32_t, (a - R->u0[j]) * k->group);
        r1 = LFM2__CAST(int32_t, (b - R->u0[j]) * k->group);
        if (r1 > rows) r1 = rows;
        for (tb = 0; tb < jb->B; tb += LFM2__TOKEN_BLOCK)
            k->fn(jb->out + LFM2__CAST(size_t, tb) * LFM2__CAST(size_t, rows), R->xa[j] + LFM2__CAST(size_t, tb) * R->xs[j],
                  (jb->B - tb < LFM2__TOKEN_BLOCK) ? jb->B - tb : LFM2__TOKEN_BLOCK, jb->w, r0, r1);
    }
}
/* A task takes chunks of R->chunk units from a shared counter until none is left, so a thread
   that runs ahead takes more; where a row is computed does not change how (its kernel, its
   order of sums), so any split gives the same bits. */
static void lfm2__mm_task(void *arg, int32_t i) {
    lfm2__mmrun *R = LFM2__CAST(lfm2__mmrun *, arg);
    int64_t U = R->u0[R->n];
    (void)i;
    for (;;) {
        int64_t lo = LFM2__CAST(int64_t, LFM2__AADD(&R->next, R->chunk)) - R->chunk;
        if (lo >= U) break;
        lfm2__mm_units(R, lo, lo + R->chunk < U ? lo + R->chunk : U);
    }
}
/* bytes of one activation row of K columns as kernel k takes it */
static size_t lfm2__act_row_bytes(const lfm2__kernel *k, int32_t K) {
    if (k->act == LFM2__ACT_Q8) return LFM2__QROW_BYTES(K);
    if (k->act == LFM2__ACT_BF16) return 2 * LFM2__CAST(size_t, K);
    return 4 * LFM2__CAST(size_t, K);
}
/* Runs jobs[0..n) on W; qa (qa_size bytes) holds the converted activations. bf16act selects
   w->kern[1] (bf16 activations) over w->kern[0]. */
static void lfm2__mm_step(const lfm2__workers *W, const lfm2__mmjob *jobs, int32_t n, int bf16act, unsigned char *qa, size_t qa_size) {
    while (n > 0) {
        lfm2__mmrun R;
        size_t off = 0;
        int64_t work = 0, conv_work = 0;
        int32_t j;
        int parts = 0;
        R.job = jobs;
        R.n = 0;
        R.n_conv = 0;
        R.u0[0] = 0;
        R.conv_row0[0] = 0;
        for (j = 0; j < n && j < LFM2__STEP_JOBS; j++) {
            const lfm2__mmjob *jb = &jobs[j];
            const lfm2__mat *w = jb->w;
            const lfm2__kernel *k = jb->k ? jb->k : w->kern[bf16act ? 1 : 0];
            const unsigned char *xa = LFM2__CAST(const unsigned char *, LFM2__CAST(const void *, jb->x));
            size_t xs = 4 * LFM2__CAST(size_t, w->cols);
            if (!k) k = lfm2__kernel_for(w, bf16act, LFM2_ISA_SCALAR);
            if (k->prep) {
                int q4 = LFM2__IS_Q4(w->dtype);
                int32_t q;
                size_t need;
                xs = lfm2__act_row_bytes(k, w->cols);
                need = (xs * LFM2__CAST(size_t, jb->B) + 63) & ~LFM2__CAST(size_t, 63);
                xa = NULL;
                for (q = 0; q < R.n_conv; q++)
                    if (R.cx[q] == jb->x && R.cfn[q] == k->prep && R.cK[q] == w->cols && R.cq4[q] == q4 && R.cB[q] >= jb->B) xa = R.cdst[q];
                if (!xa) {
                    if (off + need > qa_size) {
                        if (j > 0) break; /* run the jobs so far, then the rest */
                        if (jb->B > 1) {  /* (not reached with the context's scratch sizes) one job in parts */
                            lfm2__mmjob part = *jb;
                            int32_t per = LFM2__CAST(int32_t, qa_size / (xs ? xs : 1)), t0;
                            if (per < 1) per = 1;
                            for (t0 = 0; t0 < jb->B; t0 += per) {
                                part.x = jb->x + LFM2__CAST(size_t, t0) * LFM2__CAST(size_t, w->cols);
                                part.out = jb->out + LFM2__CAST(size_t, t0) * LFM2__CAST(size_t, w->rows);
                                part.B = (jb->B - t0 < per) ? jb->B - t0 : per;
                                lfm2__mm_step(W, &part, 1, bf16act, qa, qa_size);
                            }
                            parts = 1;
                            break;
                        }
                    }
                    q = R.n_conv++;
                    R.cx[q] = jb->x;
                    R.cdst[q] = qa + off;
                    R.cfn[q] = k->prep;
                    R.cK[q] = w->cols;
                    R.cq4[q] = q4;
                    R.cB[q] = jb->B;
                    R.crow[q] = xs;
                    R.conv_row0[q + 1] = R.conv_row0[q] + jb->B;
                    conv_work += LFM2__CAST(int64_t, jb->B) * w->cols;
                    xa = qa + off;
                    off += need;
                }
            }
            R.k[j] = k;
            R.xa[j] = xa;
            R.xs[j] = xs;
            R.u0[j + 1] = R.u0[j] + (w->rows + k->group - 1) / k->group;
            work += LFM2__CAST(int64_t, w->rows) * w->cols * jb->B;
            R.n = j + 1;
        }
        if (parts) { jobs += 1; n -= 1; continue; } /* (done in parts above) */
        if (R.n_conv > 0) { /* the conversions: one step over their rows, when they are worth it */
            R.n_tasks = (conv_work >= LFM2__PAR_MIN_WORK / 4 && R.conv_row0[R.n_conv] > 1) ? W->n : 1;
            if (R.n_tasks > R.conv_row0[R.n_conv]) R.n_tasks = LFM2__CAST(int32_t, R.conv_row0[R.n_conv]);
            lfm2__run(W, lfm2__mm_conv_task, &R, R.n_tasks);
        }
        R.n_tasks = work >= LFM2__PAR_MIN_WORK ? W->n : 1;
        if (R.n_tasks > R.u0[R.n]) R.n_tasks = LFM2__CAST(int32_t, R.u0[R.n]);
        R.next = 0;
        R.chunk = LFM2__CAST(int32_t, (R.u0[R.n] + LFM2__SPLIT_CHUNKS * R.n_tasks - 1) / (LFM2__SPLIT_CHUNKS * R.n_tasks));
        if (R.n_tasks == 1) R.chunk = LFM2__CAST(int32_t, R.u0[R.n]);
        lfm2__run(W, lfm2__mm_task, &R, R.n_tasks);
        jobs += R.n;
        n -= R.n;
    }
}
/* Scalar reference of any format: out = x . W^T on the calling thread (qa: B rows of int8
   activations of w->cols for the block formats). For tests and tools. */
LFM2__MAYBE_UNUSED static void lfm2__matmul_ref(float *out, const float *x, int32_t B, const lfm2__mat *w, unsigned char *qa, size_t qa_size) {
    lfm2__workers serial;
    lfm2__mmjob j;
    memset(&serial, 0, sizeof serial);
    serial.n = 1;
    j.out = out;
    j.x = x;
    j.w = w;
    j.B = B;
    j.k = lfm2__kernel_for(w, 0, LFM2_ISA_SCALAR);
    lfm2__mm_step(&serial, &j, 1, 0, qa, qa_size);
}

/* o = w * x / sqrt(mean(x^2) + eps)   (HF Lfm2RMSNorm: multiply by w, not 1 + w) */
static void lfm2__rmsnorm(float *o, const float *x, const float *w, int32_t n, float eps) {
    float ss = 0, s;
    int32_t i;
    for (i = 0; i < n; i++) ss += x[i] * x[i];
    s = 1.0f / sqrtf(ss / LFM2__CAST(float, n) + eps);
    for (i = 0; i < n; i++) o[i] = w[i] * (x[i] * s);
}

/* >>blocks --------------------------------------------------------------------------------- */

/* LFM2_PROFILE (for tools: lfm2-bench --profile): the wall time of each part of the forward pass
   accumulates in c->prof[part] (seconds), on the calling thread: a parallel step counts whole,
   waiting for its slowest task included. Off by default: no timer is read. */
#ifdef LFM2_PROFILE
enum { LFM2__P_EMBED, LFM2__P_NORM, LFM2__P_CONV_IN, LFM2__P_CONV, LFM2__P_CONV_OUT, LFM2__P_QKV, LFM2__P_QK_ROPE, LFM2__P_ATTN,
       LFM2__P_WO, LFM2__P_FFN, LFM2__P_RESID, LFM2__P_HEAD, LFM2__P_N };
static const char *const lfm2__prof_names[LFM2__P_N] = {"embed", "norms", "conv in_proj", "conv mix", "conv out_proj", "attn q/k/v",
                                                        "attn q/k norm, rope", "attn heads", "attn out_proj", "ffn", "residual", "head"};
#if defined(_WIN32)
static double lfm2__prof_now(void) {
    LARGE_INTEGER t, f;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&f);
    return LFM2__CAST(double, t.QuadPart) / LFM2__CAST(double, f.QuadPart);
}
#else
#include <time.h>
static double lfm2__prof_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return LFM2__CAST(double, ts.tv_sec) + 1e-9 * LFM2__CAST(double, ts.tv_nsec);
}
#endif
#define LFM2__PROF_START(c) ((c)->prof_t = lfm2__prof_now())
#define LFM2__PROF(c, part) do { double lfm2__pt = lfm2__prof_now(); (c)->prof[part] += lfm2__pt - (c)->prof_t; (c)->prof_t = lfm2__pt; } while (0)
#else
#define LFM2__PROF_START(c) (void)0
#define LFM2__PROF(c, part) (void)0
#endif

/* The blocks multiply through their context: one job is out[B, w->rows] = x[B, w->cols] . W^T.
   lfm2__matmul_jobs runs several products as one parallel step of the forward pass (the matrices
   that share an input: q/k/v, w1/w3, the chosen experts); the activations of each distinct x are
   converted once (int8 / bf16) into c->qa. */
static void lfm2__matmul_jobs(lfm2_context *c, const lfm2__mmjob *jobs, int32_t n) {
    lfm2__mm_step(&c->W, jobs, n, c->bf16_act, c->qa, c->qa_size);
}
static void lfm2__matmul(lfm2_context *c, float *out, const float *x, int32_t B, const lfm2__mat *w) {
    lfm2__mmjob j;
    j.out = out;
    j.x = x;
    j.w = w;
    j.B = B;
    j.k = NULL;
    lfm2__matmul_jobs(c, &j, 1);
}

/* Double-gated short convolution for T tokens:
   y = out_proj( C * causal_depthwise_conv_L( B * x ) ) with [B | C | x] = in_proj(u).
   xb: [T, D] normalised input. */
static void lfm2__shortconv(lfm2_context *c, const lfm2__layer *ly, int32_t T) {
    const lfm2_config *cf = &c->m->cfg;
    int32_t D = cf->hidden_size, L = cf->conv_L_cache, t, d, k;
    size_t Dz = LFM2__CAST(size_t, D);
    float *state = c->conv_state + LFM2__CAST(size_t, ly->slot) * LFM2__CAST(size_t, L - 1) * Dz;
    /* z = in_proj(u): [T, 3D] = B | C | x */
    lfm2__matmul(c, c->zb, c->xb, T, &ly->in_proj);
    LFM2__PROF(c, LFM2__P_CONV_IN);
    if (ly->in_bias)
        for (t = 0; t < T; t++) for (d = 0; d < 3 * D; d++) c->zb[LFM2__CAST(size_t, t) * 3 * Dz + LFM2__CAST(size_t, d)] += ly->in_bias[d];
    /* window = [state (L-1 rows) ; Bx (T rows)],  Bx = B * x */
    memcpy(c->win, state, sizeof(float) * LFM2__CAST(size_t, L - 1) * Dz);
    for (t = 0; t < T; t++) {
        const float *z = c->zb + LFM2__CAST(size_t, t) * 3 * Dz;
        float *bx = c->win + LFM2__CAST(size_t, L - 1 + t) * Dz;
        for (d = 0; d < D; d++) bx[d] = z[d] * z[2 * D + d];
    }
    /* conv[t][d] = sum_k w[d][k] * window[t + k][d]   (w[d][L-1] multiplies the current token);
       y = C * conv */
    for (t = 0; t < T; t++) {
        const float *C = c->zb + LFM2__CAST(size_t, t) * 3 * Dz + Dz;
        float *y = c->yb + LFM2__CAST(size_t, t) * Dz;
        for (d = 0; d < D; d++) {
            float s = ly->conv_b ? ly->conv_b[d] : 0.0f;
            for (k = 0; k < L; k++) s += ly->conv_w[LFM2__CAST(size_t, d) * LFM2__CAST(size_t, L) + LFM2__CAST(size_t, k)] * c->win[LFM2__CAST(size_t, t + k) * Dz + LFM2__CAST(size_t, d)];
            y[d] = C[d] * s;
        }
    }
    /* new state = the last L-1 rows of the window */
    memcpy(state, c->win + LFM2__CAST(size_t, T) * Dz, sizeof(float) * LFM2__CAST(size_t, L - 1) * Dz);
    LFM2__PROF(c, LFM2__P_CONV);
    /* out = out_proj(y) */
    lfm2__matmul(c, c->ob, c->yb, T, &ly->out_proj);
    if (ly->out_bias)
        for (t = 0; t < T; t++) for (d = 0; d < D; d++) c->ob[LFM2__CAST(size_t, t) * Dz + LFM2__CAST(size_t, d)] += ly->out_bias[d];
    LFM2__PROF(c, LFM2__P_CONV_OUT);
}

/* NeoX RoPE on one head vector x[hd]: pairs (i, i + hd/2). */
static void lfm2__rope(float *x, const float *cs, const float *sn, int32_t half) {
    int32_t i;
    for (i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cs[i] - b * sn[i];
        x[i + half] = b * cs[i] + a * sn[i];
    }
}

/* One task of the attention step: heads i, i + n, ... of every token of the chunk, token t
   over the cache and the chunk's tokens 0..t (causal); scores in the head's row of c->att. */
typedef struct lfm2__attn_step {
    lfm2_context *c;
    const float *kc, *vc;  /* this layer's cache */
    int32_t T, n_tasks;
    float scale;
} lfm2__attn_step;
static void lfm2__attn_task(void *arg, int32_t i) {
    const lfm2__attn_step *a = LFM2__CAST(const lfm2__attn_step *, arg);
    lfm2_context *c = a->c;
    const lfm2_config *cf = &c->m->cfg;
    int32_t H = cf->num_attention_heads, hd = cf->head_dim, n_rep = H / cf->num_key_value_heads, h, t;
    size_t qdim = LFM2__CAST(size_t, H) * LFM2__CAST(size_t, hd), kvdim = LFM2__CAST(size_t, cf->num_key_value_heads) * LFM2__CAST(size_t, hd);
    for (h = i; h < H; h += a->n_tasks) {
        size_t kvo = LFM2__CAST(size_t, (h / n_rep) * hd);
        for (t = 0; t < a->T; t++)
            c->m->vops->attend(c->yb + LFM2__CAST(size_t, t) * qdim + LFM2__CAST(size_t, h * hd), c->qb + LFM2__CAST(size_t, t) * qdim + LFM2__CAST(size_t, h * hd),
                               a->kc + kvo, a->vc + kvo, kvdim, c->pos + t + 1, hd, a->scale, c->att + LFM2__CAST(size_t, h) * LFM2__CAST(size_t, c->n_ctx));
    }
}

/* Grouped-query attention with per-head q/k RMSNorm and RoPE for T tokens at
   positions pos .. pos+T-1. xb: [T, D]. */
static void lfm2__attention(lfm2_context *c, const lfm2__layer *ly, int32_t T) {
    const lfm2_config *cf = &c->m->cfg;
    int32_t H = cf->num_attention_heads, Hkv = cf->num_key_value_heads, hd = cf->head_dim, half = hd / 2;
    int32_t qdim = H * hd, kvdim = Hkv * hd, t, h;
    size_t cache_off = LFM2__CAST(size_t, ly->slot) * LFM2__CAST(size_t, c->n_ctx) * LFM2__CAST(size_t, kvdim);
    float *kc = c->k_cache + cache_off, *vc = c->v_cache + cache_off;
    float scale = 1.0f / sqrtf(LFM2__CAST(float, hd));
    {   /* q [T, H*hd], k and v [T, Hkv*hd] */
        lfm2__mmjob j[3];
        j[0].out = c->qb; j[0].w = &ly->wq;
        j[1].out = c->kb; j[1].w = &ly->wk;
        j[2].out = c->vb; j[2].w = &ly->wv;
        j[0].x = j[1].x = j[2].x = c->xb;
        j[0].B = j[1].B = j[2].B = T;
        j[0].k = j[1].k = j[2].k = NULL;
        lfm2__matmul_jobs(c, j, 3);
    }
    LFM2__PROF(c, LFM2__P_QKV);
    for (t = 0; t < T; t++) {
        const float *cs = c->rope_cos + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, half);
        const float *sn = c->rope_sin + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, half);
        float *q = c->qb + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, qdim);
        float *k = c->kb + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, kvdim);
        size_t p = LFM2__CAST(size_t, c->pos + t);
        for (h = 0; h < H; h++) {
            lfm2__rmsnorm(q + h * hd, q + h * hd, ly->q_norm, hd, cf->norm_eps);
            lfm2__rope(q + h * hd, cs, sn, half);
        }
        for (h = 0; h < Hkv; h++) {
            lfm2__rmsnorm(k + h * hd, k + h * hd, ly->k_norm, hd, cf->norm_eps);
            lfm2__rope(k + h * hd, cs, sn, half);
        }
        memcpy(kc + p * LFM2__CAST(size_t, kvdim), k, sizeof(float) * LFM2__CAST(size_t, kvdim));
        memcpy(vc + p * LFM2__CAST(size_t, kvdim), c->vb + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, kvdim), sizeof(float) * LFM2__CAST(size_t, kvdim));
    }
    LFM2__PROF(c, LFM2__P_QK_ROPE);
    {   /* the heads, each over every token of the chunk: one parallel step */
        lfm2__attn_step a;
        int32_t n_tasks = c->W.n < H ? c->W.n : H;
        a.c = c;
        a.kc = kc;
        a.vc = vc;
        a.T = T;
        a.scale = scale;
        if (LFM2__CAST(int64_t, c->pos + T) * T * hd * H < LFM2__PAR_MIN_WORK) n_tasks = 1;
        a.n_tasks = n_tasks;
        lfm2__run(&c->W, lfm2__attn_task, &a, n_tasks);
    }
    LFM2__PROF(c, LFM2__P_ATTN);
    lfm2__matmul(c, c->ob, c->yb, T, &ly->wo);   /* [T, D] */
    LFM2__PROF(c, LFM2__P_WO);
}

/* SwiGLU feed-forward: ob = w2( silu(w1 xb) * (w3 xb) ) */
static void lfm2__ffn(lfm2_context *c, const lfm2__layer *ly, int32_t T) {
    size_t n = LFM2__CAST(size_t, T) * LFM2__CAST(size_t, c->m->cfg.ff_dim);
    lfm2__mmjob j[2];  /* gate g = w1 xb, up u = w3 xb: [T, F] */
    j[0].out = c->gb; j[0].w = &ly->w1;
    j[1].out = c->ub; j[1].w = &ly->w3;
    j[0].x = j[1].x = c->xb;
    j[0].B = j[1].B = T;
    j[0].k = j[1].k = NULL;
    lfm2__matmul_jobs(c, j, 2);
    c->m->vops->silu_mul(c->gb, c->ub, n);
    lfm2__matmul(c, c->ob, c->gb, T, &ly->w2);
}

/* Sparse mixture-of-experts feed-forward (transformers' Lfm2MoeSparseMoeBlock) for T tokens:
   ob[t] = sum_j w_j * expert_{e_j}(xb[t]), expert(u) = w2( silu(w1 u) * (w3 u) ), where
     p = sigmoid(router . u)  [E]   (router as stored, f32 activations, f32 math)
     e_1..e_k = the k experts of largest p + expert_bias (bias when use_expert_bias; a tie goes to
                the lower index), in descending order of that score
     w_j = p[e_j]  (unbiased), / (sum_j w_j + 1e-6) when norm_topk_prob, * routed_scaling_factor.
   Only the chosen experts are read. The chunk's tokens are grouped by expert (rows of xg in
   expert order, tokens ascending within an expert) so that each chosen expert is one
   matrix-matrix product per weight over its tokens, all experts of a weight in one parallel step;
   a single token multiplies xb in place. Each row of a product does not depend on the other rows
   (>>formats), and the k results of a token are added in the order j = 1..k: the output is
   bit-identical for any chunking and any thread count. */
static void lfm2__moe(lfm2_context *c, const lfm2__layer *ly, int32_t T) {
    const lfm2_config *cf = &c->m->cfg;
    int32_t D = cf->hidden_size, E = cf->num_experts, K = cf->num_experts_per_tok, I = cf->moe_intermediate_size;
    int32_t R = T * K, t, j, e, r, nj = 0;
    size_t Dz = LFM2__CAST(size_t, D), Iz = LFM2__CAST(size_t, I);
    int32_t *sel = c->moe_sel, *cnt = c->moe_cnt, *row = c->moe_row;
    float *wt = c->moe_w, *lg = c->moe_logits;
    lfm2__mmjob jobs[2 * LFM2__STEP_JOBS];
    /* routing */
    lfm2__matmul(c, lg, c->xb, T, &ly->router);
    for (t = 0; t < T; t++) {
        float *p = lg + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, E), *w = wt + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K), sum = 0;
        int32_t *s = sel + LFM2__CAST(size_t, t) * LFM2__CAST(size_t, K);
        for (e = 0; e < E; e++) p[e] = 1.0f / (1.0f + expf(-p[e]));
        for (j = 0; j < K; j++) { /* the j-th best score among the experts not chosen yet */
            int32_t best = -1, q;
            float bs = 0;
            for (e = 0; e < E; e++) {
                float sc = ly->expert_bias ? p[e] + ly->expert_bias[e] : p[e];
                int taken = 0;
                for (q = 0; q < j; q++) taken |= s[q] == e;
                if (taken) continue;
                if (best < 0 || sc > bs || (bs != bs && sc == sc)) { best = e; bs = sc; }
            }
            s[j] = best;
            w[j] = p[best];
            sum += w[j];
        }
        for (j = 0; j < K; j++) {
            if (cf->norm_topk_prob) w[j] /= sum + 1e-6f;
            w[j] *= LFM2__CAST(float, cf->routed_scaling_factor);
        }
    }
    if (c->dbg_experts) {
        int32_t mi = ly->moe_slot;
        for (r = 0; r < R; r++) {
            c->dbg_experts[LFM2__CAST(size_t, mi) * LFM2__CAST(size_t, R) + LFM2__CAST(size_t, r)] = sel[r];
            c->dbg_expert_w[LFM2__CAST(size_t, mi) * LFM2__CAST(size_t, R) + LFM2__CAST(size_t, r)] = wt[r];
        }
    }
    /* rows of the grouped buffers: cnt[e] = first row of expert e, row[t*K + j] = the row of (t, j) */
    for (e = 0; e <= E; e++) cnt[e] = 0;
    for (r = 0; r < R; r++) cnt[sel[r] + 1]++;
    for (e = 0; e < E; e++) cnt[e + 1] += cnt[e];
    {
        int32_t *fill = cnt + E + 1; /* [E] next free row of each expert */
        for (e = 0; e < E; e++) fill[e] = cnt[e];
        for (r = 0; r < R; r++) row[r] = fill[sel[r]]++;
    }
    if (T > 1)
        for (r = 0; r < R; r++) memcpy(c->moe_x + LFM2__CAST(size_t, row[r]) * Dz, c->xb + LFM2__CAST(size_t, r / K) * Dz, sizeof(float) * Dz);
    /* gate and up of every chosen expert: one step */
    for (e = 0; e < E; e++) {
        int32_t n = cnt[e + 1] - cnt[e];
        const float *x = (T > 1) ? c->moe_x + LFM2__CAST(size_t, cnt[e]) * Dz : c->xb;
        if (n == 0) continue;
        jobs[nj].out = c->gb + LFM2__CAST(size_t, cnt[e]) * Iz; jobs[nj].w = &ly->experts[3 * e];
        jobs[nj + 1].out = c->ub + LFM2__CAST(size_t, cnt[e]) * Iz; jobs[nj + 1].w = &ly->experts[3 * e + 1];
        jobs[nj].x = jobs[nj + 1].x = x;
        jobs[nj].B = jobs[nj + 1].B = n;
        jobs[nj].k = jobs[nj + 1].k = NULL;
        nj += 2;
        if (nj == 2 * LFM2__STEP_JOBS) { lfm2__matmul_jobs(c, jobs, nj); nj = 0; }
    }
    if (nj) lfm2__matmul_jobs(c, jobs, nj);
    for (r = 0; r < R; r++) c->m->vops->silu_mul(c->gb + LFM2__CAST(size_t, r) * Iz, c->ub + LFM2__CAST(size_t, r) * Iz, Iz);
    /* down */
    nj = 0;
    for (e = 0; e < E; e++) {
        int32_t n = cnt[e + 1] - cnt[e];
        if (n == 0) continue;
        jobs[nj].out = c->moe_y + LFM2__CAST(size_t, cnt[e]) * Dz;
        jobs[nj].w = &ly->experts[3 * e + 2];
        jobs[nj].x = c->gb + LFM2__CAST(size_t, cnt[e]) * Iz;
        jobs[nj].B = n;
        jobs[nj].k = NULL;
        nj++;
        if (nj == 2 * LFM2__STEP_JOBS) { lfm2__matmul_jobs(c, jobs, nj); nj = 0; }
    }
    if (nj) lfm2__matmul_jobs(c, jobs, nj);
    /* ob[t] = sum_j w_j y(t, j), in the order j = 1..k */
    for (t = 0; t < T; t++) {
        float *o = c->ob + LFM2__CAST(size_t, t) * Dz;
        size_t d;
        for (j = 0; j < K; j++) {
            const float *y = c->moe_y + LFM2__CAST(size_t, row[t * K + j]) * Dz;
            float w = wt[t * K + j];
            if (j == 0) for (d = 0; d < Dz; d++) o[d] = w * y[d];
            else for (d = 0; d < Dz; d++) o[d] += w * y[d];
        }
    }
}

/* >>forward -------------------------------------------------------------------------------- */
/* The abort callbacks a decode polls (lfm2_context_set_abort's and lfm2_generate's should_abort
   during its prefill); NULL = none. */
typedef struct lfm2__abort {
    int (*fn[2])(void *user);
    void *user[2];
} lfm2__abort;
static int lfm2__abort_requested(const lfm2__abort *ab) {
    return ab && ((ab->fn[0] && ab->fn[0](ab->user[0])) || (ab->fn[1] && ab->fn[1](ab->user[1])));
}

/* One chunk of T <= n_batch tokens at positions pos .. pos+T-1. Writes the logits of the last
   token to c->logits, or of every token to all_logits [T, V] when that is not NULL. Polls ab
   before every layer; on an abort it puts back the conv states the chunk changed (the KV rows it
   wrote lie past pos and are never read) and returns 1 with pos unchanged. */
static int lfm2__forward(lfm2_context *c, const lfm2_token *tok, int32_t T, float *all_logits, const lfm2__abort *ab) {
    const lfm2_model *m = c->m;
    const lfm2_config *cf = &m->cfg;
    int32_t D = cf->hidden_size, half = cf->head_dim / 2, t, l, i;
    size_t Dz = LFM2__CAST(size_t, D), TD = LFM2__CAST(size_t, T) * Dz, q;
    float eps = cf->norm_eps;
    LFM2__PROF_START(c);
    /* embedding: x[t] = E[tok[t]]  (no scaling) */
    for (t = 0; t < T; t++) lfm2__row_to_f32(c->x + LFM2__CAST(size_t, t) * Dz, &m->embed, tok[t], 0, D);
    if (c->dbg_hidden) memcpy(c->dbg_hidden, c->x, sizeof(float) * TD);
    /* RoPE angles of this chunk, computed like transformers: f32 inv_freq, f32 angle */
    if (cf->n_attention_layers > 0) {
        for (t = 0; t < T; t++) {
            float fp = LFM2__CAST(float, c->pos + t);
            for (i = 0; i < half; i++) {
                float a = fp * c->inv_freq[i];
                c->rope_cos[t * half + i] = LFM2__CAST(float, cos(LFM2__CAST(double, a)));
                c->rope_sin[t * half + i] = LFM2__CAST(float, sin(LFM2__CAST(double, a)));
            }
        }
    }
    /* conv states [n_conv][L-1][D] as they were before the chunk, for an abort */
    if (ab) memcpy(c->conv_saved, c->conv_state, sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * Dz);
    LFM2__PROF(c, LFM2__P_EMBED);
    for (l = 0; l < cf->num_hidden_layers; l++) {
        const lfm2__layer *ly = &m->layers[l];
        if (lfm2__abort_requested(ab)) {
            memcpy(c->conv_state, c->conv_saved, sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * Dz);
            return 1;
        }
        /* h = h + Mixer(rms(h; operator_norm)) */
        for (t = 0; t < T; t++) lfm2__rmsnorm(c->xb + LFM2__CAST(size_t, t) * Dz, c->x + LFM2__CAST(size_t, t) * Dz, ly->operator_norm, D, eps);
        LFM2__PROF(c, LFM2__P_NORM);
        if (ly->is_attention) lfm2__attention(c, ly, T);
        else lfm2__shortconv(c, ly, T);
        for (q = 0; q < TD; q++) c->x[q] += c->ob[q];
        LFM2__PROF(c, LFM2__P_RESID);
        /* h = h + FFN(rms(h; ffn_norm)) */
        for (t = 0; t < T; t++) lfm2__rmsnorm(c->xb + LFM2__CAST(size_t, t) * Dz, c->x + LFM2__CAST(size_t, t) * Dz, ly->ffn_norm, D, eps);
        LFM2__PROF(c, LFM2__P_NORM);
        if (ly->is_moe) lfm2__moe(c, ly, T);
        else lfm2__ffn(c, ly, T);
        LFM2__PROF(c, LFM2__P_FFN);
        for (q = 0; q < TD; q++) c->x[q] += c->ob[q];
        LFM2__PROF(c, LFM2__P_RESID);
        if (c->dbg_hidden) memcpy(c->dbg_hidden + LFM2__CAST(size_t, l + 1) * TD, c->x, sizeof(float) * TD);
    }
    /* final norm (model.embedding_norm) and the head */
    if (all_logits) {
        for (t = 0; t < T; t++) lfm2__rmsnorm(c->xb + LFM2__CAST(size_t, t) * Dz, c->x + LFM2__CAST(size_t, t) * Dz, m->final_norm, D, eps);
        if (c->dbg_hidden) memcpy(c->dbg_hidden + LFM2__CAST(size_t, cf->num_hidden_layers + 1) * TD, c->xb, sizeof(float) * TD);
        lfm2__matmul(c, all_logits, c->xb, T, &m->head);
    } else {
        lfm2__rmsnorm(c->xb, c->x + LFM2__CAST(size_t, T - 1) * Dz, m->final_norm, D, eps);
        lfm2__matmul(c, c->logits, c->xb, 1, &m->head);
    }
    LFM2__PROF(c, LFM2__P_HEAD);
    c->pos += T;
    return 0;
}

/* >>quant ---------------------------------------------------------------------------------- */
/* Quantization of f32/f16/bf16 weights to Q8 / Q4 (formats described under >>formats). The
   block scale is rounded to f16 first and the integers are computed with the rounded scale. */

/* v rounded to the nearest integer (ties to even, as lrintf), clamped to [lo, hi]; NaN -> 0.
   rintf is one instruction where SSE4.1 / NEON exist; lrintf was a library call per weight. */
static int lfm2__round_clamp(float v, int lo, int hi) {
    if (v != v) return 0;
    if (v <= LFM2__CAST(float, lo)) return lo;
    if (v >= LFM2__CAST(float, hi)) return hi;
    return LFM2__CAST(int, rintf(v));
}
static void lfm2__quantize_row_q8(const float *x, int32_t K, int8_t *q, uint16_t *sc) {
    int32_t b, i;
    for (b = 0; b < K / LFM2__QBLK; b++) {
        const float *xb = x + b * LFM2__QBLK;
        float amax = 0, d, id;
        for (i = 0; i < LFM2__QBLK; i++) amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        sc[b] = lfm2__f32_to_f16(amax / 127.0f);
        d = lfm2__f16_to_f32(sc[b]);
        id = d > 0 ? 1.0f / d : 0.0f;
        for (i = 0; i < LFM2__QBLK; i++) {
            q[b * LFM2__QBLK + i] = LFM2__CAST(int8_t, lfm2__round_clamp(xb[i] * id, -127, 127));
        }
    }
}
/* Q4: the scale of each block is chosen among a few candidates (the extreme value mapped to
   -8, -7.75, ... -6, or to +7) to minimise the squared error of the block. */
static void lfm2__quantize_row_q4(const float *x, int32_t K, uint8_t *q, uint16_t *sc) {
    int32_t b, i, c;
    for (b = 0; b < K / LFM2__QBLK; b++) {
        const float *xb = x + b * LFM2__QBLK;
        float amax = 0, mx = 0, best_err = -1;
        int v[LFM2__QBLK], tv[LFM2__QBLK];
        float tvf[LFM2__QBLK], e2[LFM2__QBLK];
        for (i = 0; i < LFM2__QBLK; i++) if (fabsf(xb[i]) > amax) { amax = fabsf(xb[i]); mx = xb[i]; }
        sc[b] = 0;
        for (i = 0; i < LFM2__QBLK; i++) v[i] = 8;
        for (c = 0; c <= 9 && amax > 0; c++) {
            uint16_t h = lfm2__f32_to_f16(c < 9 ? mx / -(8.0f - 0.25f * LFM2__CAST(float, c)) : mx / 7.0f);
            float d = lfm2__f16_to_f32(h), id, err = 0;
            if (d == 0 || d != d) continue;
            id = 1.0f / d;
            /* the same values as lfm2__round_clamp(x * id + 8, 0, 15), written so that the
               compiler vectorizes it (a NaN fails "> 0" and becomes 0); the error is summed in order */
            for (i = 0; i < LFM2__QBLK; i++) {
                float v = rintf(xb[i] * id + 8.0f), e;
                v = v > 0.0f ? v : 0.0f;
                v = v < 15.0f ? v : 15.0f;
                e = xb[i] - d * (v - 8.0f);
                tvf[i] = v;
                e2[i] = e * e;
            }
            for (i = 0; i < LFM2__QBLK; i++) {
                tv[i] = LFM2__CAST(int, tvf[i]);
                err += e2[i];
            }
            if (best_err < 0 || err < best_err) {
                best_err = err;
                sc[b] = h;
                memcpy(v, tv, sizeof v);
            }
        }
        for (i = 0; i < 16; i++) q[b * 16 + i] = LFM2__CAST(uint8_t, v[i] | (v[i + 16] << 4));
    }
}

/* bytes of the quantized data of a [rows, cols] matrix (0 if it cannot be quantized) */
static size_t lfm2__quant_bytes(const lfm2__mat *w, int32_t type) {
    size_t n = LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols);
    if (w->cols % LFM2__QBLK != 0 || LFM2__IS_Q(w->dtype)) return 0;
    return (type == LFM2_WEIGHTS_Q8 ? n : n / 2) + 2 * (n / LFM2__QBLK);
}
/* whether load-time quantization of w uses the interleaved layout (Q8X / Q4X): models whose level
   has its kernel (AVX512_VNNI), 16-row groups and 64-column records (tools that write the
   row-major file format define LFM2__ROW_MAJOR_QUANT) */
#if defined(LFM2__HAVE_NEON)
#define LFM2__NEON_X 1 /* aarch64's NEON levels have the interleaved kernels (armv7's do not) */
#else
#define LFM2__NEON_X 0
#endif
/* whether the float matrices of dtype get their interleaved layout at level isa: F16X / BF16X
   from AVX2 on, F32X from AVX-512 on, all three at aarch64's NEON levels */
static int lfm2__fx_level(int32_t isa, int32_t dtype) {
    if (LFM2__NEON_X && lfm2__isa_has(isa, LFM2_ISA_NEON)) return dtype == LFM2__DT_F32 || dtype == LFM2__DT_F16 || dtype == LFM2__DT_BF16;
    if (dtype == LFM2__DT_F32) return lfm2__isa_has(isa, LFM2_ISA_AVX512);
    return (dtype == LFM2__DT_F16 || dtype == LFM2__DT_BF16) && lfm2__isa_has(isa, LFM2_ISA_AVX2);
}
/* whether level isa has the interleaved kernels (Q8X / Q4X): AVX2 and up (VNNI from AVX512_VNNI), aarch64 NEON */
static int lfm2__x16_level(int32_t isa) {
    return lfm2__isa_has(isa, LFM2_ISA_AVX2) || (LFM2__NEON_X && lfm2__isa_has(isa, LFM2_ISA_NEON));
}
static int lfm2__x16_ok(const lfm2_model *m, const lfm2__mat *w) {
#if !defined(LFM2__ROW_MAJOR_QUANT)
    return lfm2__x16_level(m->isa) && w->rows % 16 == 0 && w->cols % 64 == 0;
#else
    (void)m;
    (void)w;
    return 0;
#endif
}
/* Q8X / Q4X: quantizes each 16-row x 64-column record (rows and blocks as lfm2__quantize_row_*)
   and stores it interleaved; groups [g0, g1) */
typedef struct lfm2__qjob { const lfm2__mat *w; int32_t type; unsigned char *mem; } lfm2__qjob;
static void lfm2__quantize_x16_groups(void *arg, int64_t g0, int64_t g1, int32_t task) {
    const lfm2__qjob *q = LFM2__CAST(const lfm2__qjob *, arg);
    const lfm2__mat *w = q->w;
    int32_t np = w->cols / 64, g;
    int q4 = q->type == LFM2_WEIGHTS_Q4;
    size_t rec_bytes = LFM2__X16_REC(q4);
    (void)task;
    for (g = LFM2__CAST(int32_t, g0); g < g1; g++) {
        int32_t p, h, l, e;
        for (p = 0; p < np; p++) {
            unsigned char *rec = q->mem + (LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) + LFM2__CAST(size_t, p)) * rec_bytes;
            memset(rec, 0, rec_bytes);
            for (h = 0; h < 2; h++)
                for (l = 0; l < 16; l++) {
                    float x[LFM2__QBLK];
                    int8_t q8[LFM2__QBLK];
                    uint8_t q4b[16];
                    uint16_t sc;
                    lfm2__row_to_f32(x, w, 16 * g + l, 64 * p + 32 * h, LFM2__QBLK);
                    if (q4) lfm2__quantize_row_q4(x, LFM2__QBLK, q4b, &sc);
                    else lfm2__quantize_row_q8(x, LFM2__QBLK, q8, &sc);
                    memcpy(rec + h * 32 + l * 2, &sc, 2);
                    for (e = 0; e < LFM2__QBLK; e++) {
                        int32_t c = e / 4, j = e % 4;
                        if (q4) {
                            int v = (e < 16) ? (q4b[e] & 15) : (q4b[e - 16] >> 4); /* w + 8 */
                            rec[64 + h * 256 + (c & 3) * 64 + l * 4 + j] |= LFM2__CAST(unsigned char, (c < 4) ? v : v << 4);
                        } else {
                            rec[64 + h * 512 + c * 64 + l * 4 + j] = LFM2__CAST(unsigned char, q8[e] + 128);
                        }
                    }
                }
        }
    }
}
/* Q8 / Q4 row-major: rows [r0, r1) */
static void lfm2__quantize_rows(void *arg, int64_t r0, int64_t r1, int32_t task) {
    const lfm2__qjob *q = LFM2__CAST(const lfm2__qjob *, arg);
    const lfm2__mat *w = q->w;
    size_t n = LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols);
    size_t qb = (q->type == LFM2_WEIGHTS_Q8) ? n : n / 2, row_q = qb / LFM2__CAST(size_t, w->rows);
    uint16_t *sc = LFM2__CAST(uint16_t *, LFM2__CAST(void *, q->mem + qb));
    int32_t r, nsc = w->cols / LFM2__QBLK;
    (void)task;
    for (r = LFM2__CAST(int32_t, r0); r < r1; r++) {
        float tmp[LFM2__KBLK];
        int32_t k0;
        for (k0 = 0; k0 < w->cols; k0 += LFM2__KBLK) {
            int32_t nk = (w->cols - k0 < LFM2__KBLK) ? w->cols - k0 : LFM2__KBLK; /* KBLK is a multiple of 32 */
            lfm2__row_to_f32(tmp, w, r, k0, nk);
            if (q->type == LFM2_WEIGHTS_Q8)
                lfm2__quantize_row_q8(tmp, nk, LFM2__CAST(int8_t *, LFM2__CAST(void *, q->mem + LFM2__CAST(size_t, r) * row_q + LFM2__CAST(size_t, k0))),
                                      sc + LFM2__CAST(size_t, r) * LFM2__CAST(size_t, nsc) + LFM2__CAST(size_t, k0 / LFM2__QBLK));
            else
                lfm2__quantize_row_q4(tmp, nk, q->mem + LFM2__CAST(size_t, r) * row_q + LFM2__CAST(size_t, k0 / 2),
                                      sc + LFM2__CAST(size_t, r) * LFM2__CAST(size_t, nsc) + LFM2__CAST(size_t, k0 / LFM2__QBLK));
        }
    }
}
/* Converts *w into the quantized format at mem (which has lfm2__quant_bytes bytes), on W. */
static void lfm2__quantize_mat(const lfm2_model *m, const lfm2__workers *W, lfm2__mat *w, int32_t type, unsigned char *mem) {
    size_t n = LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols);
    size_t qb = (type == LFM2_WEIGHTS_Q8) ? n : n / 2;
    lfm2__qjob q;
    q.w = w;
    q.type = type;
    q.mem = mem;
    if (lfm2__x16_ok(m, w)) {
        lfm2__parallel_for(W, w->rows / 16, lfm2__quantize_x16_groups, &q);
        w->data = mem;
        w->scales = NULL;
        w->dtype = (type == LFM2_WEIGHTS_Q8) ? LFM2__DT_Q8X : LFM2__DT_Q4X;
        return;
    }
    lfm2__parallel_for(W, w->rows, lfm2__quantize_rows, &q);
    w->data = mem;
    w->scales = LFM2__CAST(uint16_t *, LFM2__CAST(void *, mem + qb));
    w->dtype = (type == LFM2_WEIGHTS_Q8) ? LFM2__DT_Q8 : LFM2__DT_Q4;
}

/* Every weight matrix of the model, in a fixed order (embed, head if untied, then per layer). */
static int32_t lfm2__model_mats(lfm2_model *m, lfm2__mat **list) {
    int32_t n = 0, l;
    list[n++] = &m->embed;
    if (m->head.data != m->embed.data) list[n++] = &m->head;
    for (l = 0; l < m->cfg.num_hidden_layers; l++) {
        lfm2__layer *ly = &m->layers[l];
        if (ly->is_moe) { /* the experts; the router stays as stored (routing never changes with the weights' format) */
            int32_t e;
            for (e = 0; e < 3 * m->cfg.num_experts; e++) list[n++] = &ly->experts[e];
        } else {
            list[n++] = &ly->w1; list[n++] = &ly->w3; list[n++] = &ly->w2;
        }
        if (ly->is_attention) { list[n++] = &ly->wq; list[n++] = &ly->wk; list[n++] = &ly->wv; list[n++] = &ly->wo; }
        else { list[n++] = &ly->in_proj; list[n++] = &ly->out_proj; }
    }
    return n;
}
/* the same list in an allocation of the model's allocator (NULL when out of memory) */
static lfm2__mat **lfm2__model_mats_alloc(lfm2_model *m, int32_t *n) {
    size_t cnt = 2 + 7 * LFM2__CAST(size_t, m->cfg.num_hidden_layers) + 3 * LFM2__CAST(size_t, m->cfg.num_experts) * LFM2__CAST(size_t, m->cfg.n_moe_layers);
    lfm2__mat **list = LFM2__CAST(lfm2__mat **, lfm2__malloc(&m->alloc, sizeof(lfm2__mat *) * cnt));
    if (list) *n = lfm2__model_mats(m, list);
    return list;
}

#ifdef LFM2__HAVE_MMAP
static void lfm2__blob_drop(lfm2__blob *bl, uintptr_t lo, uintptr_t hi, uintptr_t ps);
static uintptr_t lfm2__page_size(void);
/* lfm2__blob_drop of [src, src + bytes) in whichever of m's mapped files holds it (none: nothing) */
static void lfm2__model_drop(lfm2_model *m, uintptr_t src, size_t bytes, uintptr_t ps) {
    int32_t k;
    for (k = 0; k < m->n_blobs; k++)
        if (src >= LFM2__PTRINT(m->blobs[k].data) && src - LFM2__PTRINT(m->blobs[k].data) < m->blobs[k].size) lfm2__blob_drop(&m->blobs[k], src, src + bytes, ps);
}
#endif
static lfm2_result lfm2__quantize_weights(lfm2_model *m, const lfm2__workers *W, int32_t type, lfm2_error *err) {
    lfm2__mat **list;
    int32_t n = 0, i;
    size_t total = 0, off = 0;
#ifdef LFM2__HAVE_MMAP
    uintptr_t ps = lfm2__page_size(); /* 0: keep the pages */
#endif
    list = lfm2__model_mats_alloc(m, &n);
    if (!list) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for quantization");
    for (i = 0; i < n; i++) {
        size_t b = lfm2__quant_bytes(list[i], LFM2_WEIGHTS_Q8);  /* an upper bound for Q4 too */
        total += (b + 63) & ~LFM2__CAST(size_t, 63);
    }
    m->qbuf = LFM2__CAST(unsigned char *, lfm2__malloc_big(&m->alloc, total + 64, m->huge_pages));
    if (!m->qbuf) { lfm2__free(&m->alloc, list); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory: quantized weights need %zu bytes", total); }
    for (i = 0; i < n; i++) {
        size_t b = lfm2__quant_bytes(list[i], type);
        int tied_head = (list[i] == &m->embed && m->head.data == m->embed.data);
        /* with Q4, the embedding and the head stay at 8 bits (as llama.cpp keeps its output
           matrix at higher precision): they matter most for the logits and cost little time */
        int t = (type == LFM2_WEIGHTS_Q4 && (list[i] == &m->embed || list[i] == &m->head)) ? LFM2_WEIGHTS_Q8 : type;
        uintptr_t src = LFM2__PTRINT(list[i]->data);
        size_t sbytes = LFM2__CAST(size_t, list[i]->rows) * LFM2__CAST(size_t, list[i]->cols) * (list[i]->dtype == LFM2__DT_F32 ? 4u : 2u);
        b = lfm2__quant_bytes(list[i], t);
        if (b == 0) continue;
        lfm2__quantize_mat(m, W, list[i], t, m->qbuf + off);
        (void)src; (void)sbytes;
#ifdef LFM2__HAVE_MMAP
        /* the source's whole pages leave the process (resident memory: about the quantized model) */
        lfm2__model_drop(m, src, sbytes, ps);
#endif
        if (tied_head) m->head = m->embed;
        off += (b + 63) & ~LFM2__CAST(size_t, 63);
    }
    lfm2__free(&m->alloc, list);
    return LFM2_OK;
}

/* Writes one group of 16 rows (f32 / f16 / bf16, row-major at src) to dst in the interleaved
   layout of lfm2__fx_index: F32X and F16X are the transpose of the 16 x cols group, BF16X the
   transpose of its 16 x cols/2 column pairs (32-bit elements). src and dst may be the same
   (tmp: the group's bytes). */
LFM2__MAYBE_UNUSED static void lfm2__interleave_group(unsigned char *dst, const unsigned char *src, unsigned char *tmp, int32_t cols, int32_t dtype) {
    size_t c = LFM2__CAST(size_t, cols), k, l;
    if (dtype == LFM2__DT_F16) {
        uint16_t v[16];
        memcpy(tmp, src, 32 * c);
        for (k = 0; k < c; k++) {
            for (l = 0; l < 16; l++) memcpy(&v[l], tmp + 2 * (l * c + k), 2);
            memcpy(dst + 32 * k, v, 32);
        }
    } else {
        size_t n = (dtype == LFM2__DT_F32) ? c : c / 2; /* 32-bit elements per row */
        uint32_t v[16];
        memcpy(tmp, src, 64 * n);
        for (k = 0; k < n; k++) {
            for (l = 0; l < 16; l++) memcpy(&v[l], tmp + 4 * (l * n + k), 4);
            memcpy(dst + 64 * k, v, 64);
        }
    }
}
/* the file (index into m->blobs) holding w when w gets an interleaved layout at load, else -1:
   a matrix inside a file the model loaded itself (the parser checked that it lies inside), at a
   level with the layout's kernel: F16X / BF16X from AVX2 on, F32X from AVX-512 on (AVX2's F32X
   tile measured slower than its row-major kernel), both with rows % 16 == 0 and cols % 2 == 0;
   Q8X / Q4X (from a pre-quantized folder's Q8 / Q4) where lfm2__x16_ok */
static int32_t lfm2__interleave_blob(const lfm2_model *m, const lfm2__mat *w) {
    uintptr_t a = LFM2__PTRINT(w->data);
    int32_t b;
    int ok = lfm2__fx_level(m->isa, w->dtype);
    if (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4) ok = lfm2__x16_ok(m, w);
    else if (w->rows % 16 != 0 || w->cols % 2 != 0) ok = 0;
    if (!ok || w->rows == 0) return -1;
    for (b = 0; b < m->n_blobs; b++)
        if (a >= LFM2__PTRINT(m->blobs[b].data) && a - LFM2__PTRINT(m->blobs[b].data) < m->blobs[b].size) return b;
    return -1;
}
/* groups [g0, g1) of one matrix (float: lfm2__interleave_group, task i using the i-th slot of
   tmp; Q8 / Q4: the records of lfm2__x16_rec, which hold the same bytes in another order) */
typedef struct lfm2__ilv { unsigned char *dst, *tmp; const unsigned char *src; const uint16_t *sc; size_t gbytes, maxg; int32_t cols, dtype; } lfm2__ilv;
static void lfm2__interleave_groups(void *arg, int64_t g0, int64_t g1, int32_t task) {
    const lfm2__ilv *v = LFM2__CAST(const lfm2__ilv *, arg);
    int64_t g;
    if (v->dtype == LFM2__DT_Q8 || v->dtype == LFM2__DT_Q4) {
        /* step c of a record row (4 columns, 4 bytes) is 4 consecutive bytes of the row-major
           block: Q8 quants (w + 128: the sign bit flipped), or Q4 bytes, whose low nibbles are
           columns 4c..4c+3 and high nibbles 4c+16..4c+19 = step c and step c + 4 of the record */
        int q4 = v->dtype == LFM2__DT_Q4;
        int32_t np = v->cols / 64, nsc = v->cols / LFM2__QBLK, nstep = q4 ? 4 : 8, p, h, l, c;
        size_t rb = q4 ? LFM2__CAST(size_t, v->cols) / 2 : LFM2__CAST(size_t, v->cols), rec_bytes = LFM2__X16_REC(q4);
        for (g = g0; g < g1; g++)
            for (p = 0; p < np; p++) {
                unsigned char *rec = v->dst + (LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) + LFM2__CAST(size_t, p)) * rec_bytes;
                for (h = 0; h < 2; h++)
                    for (l = 0; l < 16; l++) {
                        size_t row = LFM2__CAST(size_t, g) * 16 + LFM2__CAST(size_t, l);
                        const unsigned char *q = v->src + row * rb + LFM2__CAST(size_t, (2 * p + h) * (q4 ? 16 : 32));
                        unsigned char *dq = rec + 64 + h * nstep * 64 + l * 4;
                        memcpy(rec + h * 32 + l * 2, v->sc + row * LFM2__CAST(size_t, nsc) + 2 * p + h, 2);
                        for (c = 0; c < nstep; c++) {
                            uint32_t u;
                            memcpy(&u, q + 4 * c, 4);
                            if (!q4) u ^= 0x80808080u;
                            memcpy(dq + c * 64, &u, 4);
                        }
                    }
            }
        return;
    }
    for (g = g0; g < g1; g++)
        lfm2__interleave_group(v->dst + LFM2__CAST(size_t, g) * v->gbytes, v->src + LFM2__CAST(size_t, g) * v->gbytes, v->tmp + LFM2__CAST(size_t, task) * v->maxg,
                               v->cols, v->dtype);
}
#ifdef LFM2__HAVE_MMAP
/* The page size of mappings (0 when unknown: mapped pages are then kept). */
static uintptr_t lfm2__page_size(void) {
#if defined(LFM2__WIN32_MMAP)
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return (si.dwPageSize > 0 && si.dwPageSize <= (1u << 24)) ? LFM2__CAST(uintptr_t, si.dwPageSize) : 0;
#else
    long pg = sysconf(_SC_PAGESIZE);
    return (pg > 0 && pg <= (1L << 24)) ? LFM2__CAST(uintptr_t, pg) : 0;
#endif
}
/* Gives the whole pages of [lo, hi) of the mapped file bl back. POSIX: a fresh mapping of the
   same bytes over them, so their pages leave this process (untouched, they take no memory) and
   the file's mapping stays one piece. Windows: VirtualUnlock of pages that are not locked takes
   them out of the working set (they are clean file pages: nothing is written back, and a later
   read would fault them in again). ps: the page size (0: keep the pages). */
static void lfm2__blob_drop(lfm2__blob *bl, uintptr_t lo, uintptr_t hi, uintptr_t ps) {
#if defined(LFM2__POSIX_MMAP)
    void *r;
    if (!bl->mapped || bl->fd < 0 || !ps) return;
#else
    if (bl->mapped != 1 || !ps) return;
#endif
    lo = (lo + ps - 1) / ps * ps;
    hi = hi / ps * ps;
    if (hi <= lo) return;
#if defined(LFM2__POSIX_MMAP)
    r = mmap(LFM2__CAST(unsigned char *, bl->data) + (lo - LFM2__PTRINT(bl->data)), hi - lo, PROT_READ, MAP_PRIVATE | MAP_FIXED, bl->fd,
             LFM2__CAST(off_t, lo - LFM2__PTRINT(bl->data)));
    if (r == MAP_FAILED) bl->mapped = 2; /* (out of kernel memory: the range may have been unmapped
        and reused since; lfm2__blobs_free then leaves this file's mapping alone rather than unmap
        what is there now) */
#else
    (void)VirtualUnlock(LFM2__CAST(unsigned char *, bl->data) + (lo - LFM2__PTRINT(bl->data)), hi - lo); /* (FALSE with ERROR_NOT_LOCKED: the pages are out) */
#endif
}
#endif
/* Puts the matrices of lfm2__interleave_blob into their interleaved layout: the values do not
   change. Float matrices of files read into memory are reordered in place. Mapped files stay
   read-only: each matrix is written to one buffer (m->ibuf) a chunk at a time and the chunk's
   whole pages of the mapping are released as they are consumed (lfm2__blob_drop), so the resident
   memory stays about one copy of the weights. (Writing to a private mapping instead costs a
   copy-on-write fault per page, and in a multi-threaded process each of those interrupts the
   other cores to flush their TLB: several times slower in a VM.) Buffers of
   lfm2_model_load_memory are never touched. */
static lfm2_result lfm2__interleave_weights(lfm2_model *m, const lfm2__workers *W, lfm2_error *err) {
    lfm2__mat **list;
    unsigned char *tmp;
    int32_t n = 0, i, nt = W->n;
    size_t maxg = 0, total = 0, off = 0;
#ifdef LFM2__HAVE_MMAP
    uintptr_t ps = lfm2__page_size(); /* 0: keep the pages */
#endif
    list = lfm2__model_mats_alloc(m, &n);
    if (!list) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the weight layout");
    for (i = 0; i < n; i++) {
        lfm2__mat *w = list[i];
        int32_t b = lfm2__interleave_blob(m, w);
        int q = LFM2__IS_Q(w->dtype);
        size_t es = (w->dtype == LFM2__DT_F32) ? 4 : 2;
        if (b < 0) continue;
        if (q) total += (LFM2__CAST(size_t, w->rows / 16) * LFM2__CAST(size_t, w->cols / 64) * LFM2__X16_REC(w->dtype == LFM2__DT_Q4) + 63) & ~LFM2__CAST(size_t, 63);
        else {
            if (16 * LFM2__CAST(size_t, w->cols) * es > maxg) maxg = 16 * LFM2__CAST(size_t, w->cols) * es;
            if (m->blobs[b].mapped) total += (LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols) * es + 63) & ~LFM2__CAST(size_t, 63);
        }
    }
    tmp = LFM2__CAST(unsigned char *, lfm2__malloc(&m->alloc, maxg * LFM2__CAST(size_t, nt) + 1));
    if (total) m->ibuf = LFM2__CAST(unsigned char *, lfm2__malloc_big(&m->alloc, total, m->huge_pages));
    if (!tmp || (total && !m->ibuf)) {
        lfm2__free(&m->alloc, tmp);
        lfm2__free(&m->alloc, list);
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the interleaved weights (%zu bytes)", total + maxg * LFM2__CAST(size_t, nt));
    }
    for (i = 0; i < n; i++) {
        lfm2__mat *w = list[i];
        int32_t b = lfm2__interleave_blob(m, w);
        lfm2__blob *bl;
        int tied_head = (w == &m->embed && m->head.data == m->embed.data), q = LFM2__IS_Q(w->dtype);
        size_t es = (w->dtype == LFM2__DT_F32) ? 4 : 2, gbytes = 16 * LFM2__CAST(size_t, w->cols) * es;
        size_t sgbytes = gbytes; /* bytes of a 16-row group in the source: the quants alone for Q8 / Q4 */
        const unsigned char *src = LFM2__CAST(const unsigned char *, w->data);
        unsigned char *dst;
        int32_t ng = w->rows / 16, g0, chunk;
#ifdef LFM2__HAVE_MMAP
        uintptr_t freed;
#endif
        if (b < 0) continue;
        bl = &m->blobs[b];
        if (q) {
            int q4 = w->dtype == LFM2__DT_Q4;
            gbytes = LFM2__CAST(size_t, w->cols / 64) * LFM2__X16_REC(q4);
            sgbytes = 16 * (q4 ? LFM2__CAST(size_t, w->cols) / 2 : LFM2__CAST(size_t, w->cols));
        }
        chunk = LFM2__CAST(int32_t, ((8u << 20) + gbytes - 1) / gbytes); /* ~8 MiB per chunk */
#ifdef LFM2__HAVE_MMAP
        freed = LFM2__PTRINT(src); /* (the page before may hold other tensors: it stays) */
#endif
        if (bl->mapped || q) {
            dst = m->ibuf + off;
            off += (LFM2__CAST(size_t, ng) * gbytes + 63) & ~LFM2__CAST(size_t, 63);
        } else {
            dst = LFM2__CAST(unsigned char *, bl->data) + (LFM2__PTRINT(src) - LFM2__PTRINT(bl->data));
        }
        for (g0 = 0; g0 < ng; g0 += chunk) {
            int32_t g1 = (ng - g0 < chunk) ? ng : g0 + chunk;
            lfm2__ilv v;
            v.dst = dst + LFM2__CAST(size_t, g0) * gbytes;
            v.src = src + LFM2__CAST(size_t, g0) * sgbytes;
            v.sc = q ? w->scales + LFM2__CAST(size_t, g0) * 16 * LFM2__CAST(size_t, w->cols / LFM2__QBLK) : NULL;
            v.tmp = tmp;
            v.gbytes = gbytes;
            v.maxg = maxg;
            v.cols = w->cols;
            v.dtype = w->dtype;
            lfm2__parallel_for(W, g1 - g0, lfm2__interleave_groups, &v);
#ifdef LFM2__HAVE_MMAP
            { /* release the whole pages of the source read so far */
                uintptr_t hi = LFM2__PTRINT(src) + LFM2__CAST(size_t, g1) * sgbytes;
                lfm2__blob_drop(bl, freed, hi, ps);
                if (ps) freed = hi / ps * ps;
            }
#endif
        }
#ifdef LFM2__HAVE_MMAP
        if (q) lfm2__blob_drop(bl, LFM2__PTRINT(w->scales), LFM2__PTRINT(w->scales) + 2 * LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols / LFM2__QBLK), ps);
#endif
        w->data = dst;
        if (q) {
            w->scales = NULL;
            w->dtype = (w->dtype == LFM2__DT_Q4) ? LFM2__DT_Q4X : LFM2__DT_Q8X;
        } else {
            w->dtype = (w->dtype == LFM2__DT_F32) ? LFM2__DT_F32X : (w->dtype == LFM2__DT_F16) ? LFM2__DT_F16X : LFM2__DT_BF16X;
        }
        if (tied_head) m->head = m->embed;
    }
    lfm2__free(&m->alloc, tmp);
    lfm2__free(&m->alloc, list);
    return LFM2_OK;
}

/* Q8X / Q4X records back to row-major Q8 / Q4 (the inverse of the Q8 / Q4 case of
   lfm2__interleave_groups: the same bytes in the other order): groups [g0, g1) */
typedef struct lfm2__unx { unsigned char *dst; uint16_t *sc; const unsigned char *src; int32_t cols, q4; } lfm2__unx;
static void lfm2__x16_unpack_groups(void *arg, int64_t g0, int64_t g1, int32_t task) {
    const lfm2__unx *v = LFM2__CAST(const lfm2__unx *, arg);
    int q4 = v->q4;
    int32_t np = v->cols / 64, nsc = v->cols / LFM2__QBLK, nstep = q4 ? 4 : 8, p, h, l, c;
    size_t rb = q4 ? LFM2__CAST(size_t, v->cols) / 2 : LFM2__CAST(size_t, v->cols), rec_bytes = LFM2__X16_REC(q4);
    int64_t g;
    (void)task;
    for (g = g0; g < g1; g++)
        for (p = 0; p < np; p++) {
            const unsigned char *rec = v->src + (LFM2__CAST(size_t, g) * LFM2__CAST(size_t, np) + LFM2__CAST(size_t, p)) * rec_bytes;
            for (h = 0; h < 2; h++)
                for (l = 0; l < 16; l++) {
                    size_t row = LFM2__CAST(size_t, g) * 16 + LFM2__CAST(size_t, l);
                    unsigned char *q = v->dst + row * rb + LFM2__CAST(size_t, (2 * p + h) * (q4 ? 16 : 32));
                    const unsigned char *sq = rec + 64 + h * nstep * 64 + l * 4;
                    memcpy(v->sc + row * LFM2__CAST(size_t, nsc) + 2 * p + h, rec + h * 32 + l * 2, 2);
                    for (c = 0; c < nstep; c++) {
                        uint32_t u;
                        memcpy(&u, sq + c * 64, 4);
                        if (!q4) u ^= 0x80808080u;
                        memcpy(q + 4 * c, &u, 4);
                    }
                }
        }
}
/* The interleaved matrices of a pre-quantized folder (Q8X / Q4X as bound from the file) at a
   level without their kernels: unpacked into one buffer (m->xbuf) as the row-major Q8 / Q4 that
   load-time quantization makes at that level, on W, releasing the mapped pages as they are
   consumed. At the levels with the kernels they stay where they are (no copy). */
static lfm2_result lfm2__x16_unpack(lfm2_model *m, const lfm2__workers *W, lfm2_error *err) {
    lfm2__mat **list;
    int32_t n = 0, i;
    size_t total = 0, off = 0;
#ifdef LFM2__HAVE_MMAP
    uintptr_t ps = lfm2__page_size(); /* 0: keep the pages */
#endif
    if (lfm2__x16_level(m->isa)) return LFM2_OK;
    list = lfm2__model_mats_alloc(m, &n);
    if (!list) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the weight layout");
    for (i = 0; i < n; i++)
        if (list[i]->dtype == LFM2__DT_Q8X || list[i]->dtype == LFM2__DT_Q4X)
            total += (LFM2__CAST(size_t, list[i]->rows / 16) * LFM2__CAST(size_t, list[i]->cols / 64) * LFM2__X16_REC(list[i]->dtype == LFM2__DT_Q4X) + 63) & ~LFM2__CAST(size_t, 63);
    if (total == 0) { lfm2__free(&m->alloc, list); return LFM2_OK; }
    m->xbuf = LFM2__CAST(unsigned char *, lfm2__malloc_big(&m->alloc, total, m->huge_pages));
    if (!m->xbuf) { lfm2__free(&m->alloc, list); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory: the unpacked quantized weights need %zu bytes", total); }
    for (i = 0; i < n; i++) {
        lfm2__mat *w = list[i];
        int q4 = w->dtype == LFM2__DT_Q4X, tied_head = (w == &m->embed && m->head.data == m->embed.data);
        size_t cells = LFM2__CAST(size_t, w->rows) * LFM2__CAST(size_t, w->cols), qb = q4 ? cells / 2 : cells;
        size_t bytes = LFM2__CAST(size_t, w->rows / 16) * LFM2__CAST(size_t, w->cols / 64) * LFM2__X16_REC(q4);
        lfm2__unx v;
#ifdef LFM2__HAVE_MMAP
        uintptr_t src = LFM2__PTRINT(w->data);
#endif
        if (w->dtype != LFM2__DT_Q8X && w->dtype != LFM2__DT_Q4X) continue;
        v.dst = m->xbuf + off;
        v.sc = LFM2__CAST(uint16_t *, LFM2__CAST(void *, m->xbuf + off + qb)); /* qb is even: 2-byte aligned */
        v.src = LFM2__CAST(const unsigned char *, w->data);
        v.cols = w->cols;
        v.q4 = q4;
        lfm2__parallel_for(W, w->rows / 16, lfm2__x16_unpack_groups, &v);
#ifdef LFM2__HAVE_MMAP
        lfm2__model_drop(m, src, bytes, ps);
#endif
        w->data = v.dst;
        w->scales = v.sc;
        w->dtype = q4 ? LFM2__DT_Q4 : LFM2__DT_Q8;
        if (tied_head) m->head = m->embed;
        off += (bytes + 63) & ~LFM2__CAST(size_t, 63);
    }
    lfm2__free(&m->alloc, list);
    return LFM2_OK;
}

/* Gives every matrix its kernels (>>formats) at the model's level, once the layouts are final. */
static lfm2_result lfm2__bind_kernels(lfm2_model *m, lfm2_error *err) {
    int32_t n = 0, i, a;
    lfm2__mat **list = lfm2__model_mats_alloc(m, &n);
    if (!list) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the kernel table");
    for (i = 0; i < n; i++)
        for (a = 0; a < 2; a++) list[i]->kern[a] = lfm2__kernel_for(list[i], a, m->isa);
    for (i = 0; i < m->cfg.num_hidden_layers; i++) /* routers: f32 activations always */
        if (m->layers[i].is_moe) m->layers[i].router.kern[0] = m->layers[i].router.kern[1] = lfm2__kernel_for(&m->layers[i].router, 0, m->isa);
    if (m->head.data == m->embed.data) m->head = m->embed;
    lfm2__free(&m->alloc, list);
    return LFM2_OK;
}

/* >>model ---------------------------------------------------------------------------------- */

static int lfm2__cmp_tensor_name(const void *a, const void *b) {
    const lfm2__tensor *x = *LFM2__CAST(const lfm2__tensor *const *, a), *y = *LFM2__CAST(const lfm2__tensor *const *, b);
    return strcmp(x->name, y->name);
}
static const lfm2__tensor *lfm2__model_find(const lfm2_model *m, const char *name) {
    int32_t lo = 0, hi = m->n_tensors - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int r = strcmp(m->by_name[mid]->name, name);
        if (r == 0) return m->by_name[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* Looks up a tensor and checks its shape (n dims given in `shape`, -1 = any) and dtype. */
static lfm2_result lfm2__get_tensor(const lfm2_model *m, const char *name, int32_t ndim, const int64_t *shape,
                                    lfm2_error *err, const lfm2__tensor **out) {
    const lfm2__tensor *t = lfm2__model_find(m, name);
    int32_t i;
    char want[128], got[128];
    size_t wn = 0, gn = 0;
    *out = NULL;
    if (!t) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" is missing from the safetensors files", name);
    if (t->dtype != LFM2__DT_F32 && t->dtype != LFM2__DT_F16 && t->dtype != LFM2__DT_BF16)
        return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "tensor \"%s\" has dtype %s; weights must be BF16, F16 or F32", name, lfm2__dtype_name[t->dtype]);
    if ((LFM2__PTRINT(t->data) % lfm2__dtype_size[t->dtype]) != 0)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" (file offset %llu) is not aligned to its %d-byte elements", name,
                          LFM2__CAST(unsigned long long, t->offset), lfm2__dtype_size[t->dtype]);
    for (i = 0; i < ndim && wn < 100; i++) wn += LFM2__CAST(size_t, snprintf(want + wn, sizeof want - wn, i ? ", %lld" : "%lld", LFM2__CAST(long long, shape[i])));
    for (i = 0; i < t->ndim && gn < 100; i++) gn += LFM2__CAST(size_t, snprintf(got + gn, sizeof got - gn, i ? ", %lld" : "%lld", LFM2__CAST(long long, t->shape[i])));
    want[wn] = got[gn] = 0;
    if (t->ndim != ndim) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" has shape [%s], expected [%s]", name, got, want);
    for (i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" has shape [%s], expected [%s]", name, got, want);
    *out = t;
    return LFM2_OK;
}
/* A pre-quantized matrix (tools/lfm2-quantize): NAME as I8 [rows, cols] (Q8) or U8
   [rows, cols/2] (Q4), plus NAME_scale as F16 [rows, cols/32]. Used in place. */
static lfm2_result lfm2__bind_quant(const lfm2_model *m, const lfm2__tensor *t, const char *name, int64_t rows, int64_t cols,
                                    lfm2_error *err, lfm2__mat *out) {
    char sname[160];
    const lfm2__tensor *s;
    int q8 = (t->dtype == LFM2__DT_I8);
    if (cols % LFM2__QBLK != 0)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" is quantized but its width %lld is not a multiple of 32", name, LFM2__CAST(long long, cols));
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != (q8 ? cols : cols / 2))
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "quantized tensor \"%s\" (%s) must have shape [%lld, %lld]", name, lfm2__dtype_name[t->dtype],
                          LFM2__CAST(long long, rows), LFM2__CAST(long long, q8 ? cols : cols / 2));
    snprintf(sname, sizeof sname, "%s_scale", name);
    s = lfm2__model_find(m, sname);
    if (!s) return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "quantized tensor \"%s\" has no scale tensor \"%s\"", name, sname);
    if (s->dtype != LFM2__DT_F16 || s->ndim != 2 || s->shape[0] != rows || s->shape[1] != cols / LFM2__QBLK)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "scale tensor \"%s\" must be F16 [%lld, %lld]", sname, LFM2__CAST(long long, rows),
                          LFM2__CAST(long long, cols / LFM2__QBLK));
    if ((LFM2__PTRINT(s->data) & 1) != 0)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "scale tensor \"%s\" is not 2-byte aligned in its file", sname);
    out->data = t->data;
    out->scales = LFM2__CAST(const uint16_t *, LFM2__CAST(const void *, s->data));
    out->dtype = q8 ? LFM2__DT_Q8 : LFM2__DT_Q4;
    out->rows = LFM2__CAST(int32_t, rows);
    out->cols = LFM2__CAST(int32_t, cols);
    return LFM2_OK;
}
/* A pre-quantized matrix in the interleaved layout (LFM2__X16_LAYOUT, written by
   tools/lfm2-quantize): NAME as U8 [rows/16, cols/64, 1088 (Q8X) or 576 (Q4X)] in a file whose
   __metadata__ names that layout. Bound in place; lfm2__x16_unpack converts it at the levels
   without the interleaved kernels. */
static lfm2_result lfm2__bind_x16(const lfm2_model *m, const lfm2__tensor *t, const char *name, int64_t rows, int64_t cols,
                                  lfm2_error *err, lfm2__mat *out) {
    int32_t lay = m->files[t->file].x16;
    if (lay == 0)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" is U8 with 3 dimensions (interleaved quantized records), but %s has no \"lfm2.h.interleave\" "
                          "entry in its __metadata__ to say which layout", name, m->shard_names[t->file]);
    if (lay < 0)
        return lfm2__fail(err, LFM2_ERR_UNSUPPORTED, "%s: the \"lfm2.h.interleave\" layout of its __metadata__ is not the one this lfm2.h reads (\"%s\"): "
                          "write the folder again with this version's lfm2-quantize (tensor \"%s\")", m->shard_names[t->file], LFM2__X16_LAYOUT, name);
    if (rows % 16 != 0 || cols % 64 != 0)
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" is stored interleaved, which needs rows %% 16 == 0 and cols %% 64 == 0, but config.json gives [%lld, %lld]",
                          name, LFM2__CAST(long long, rows), LFM2__CAST(long long, cols));
    if (t->shape[0] != rows / 16 || t->shape[1] != cols / 64 || (t->shape[2] != 1088 && t->shape[2] != 576))
        return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "interleaved tensor \"%s\" has shape [%lld, %lld, %lld]; [%lld, %lld, 1088] (q8) or [%lld, %lld, 576] (q4) expected",
                          name, LFM2__CAST(long long, t->shape[0]), LFM2__CAST(long long, t->shape[1]), LFM2__CAST(long long, t->shape[2]),
                          LFM2__CAST(long long, rows / 16), LFM2__CAST(long long, cols / 64), LFM2__CAST(long long, rows / 16), LFM2__CAST(long long, cols / 64));
    out->data = t->data;
    out->scales = NULL;
    out->dtype = (t->shape[2] == 1088) ? LFM2__DT_Q8X : LFM2__DT_Q4X;
    out->rows = LFM2__CAST(int32_t, rows);
    out->cols = LFM2__CAST(int32_t, cols);
    return LFM2_OK;
}
static lfm2_result lfm2__bind_mat(const lfm2_model *m, const char *name, int64_t rows, int64_t cols, lfm2_error *err, lfm2__mat *out) {
    const lfm2__tensor *t = lfm2__model_find(m, name);
    int64_t shape[2];
    lfm2_result rc;
    if (t && t->dtype == LFM2__DT_U8 && t->ndim == 3) return lfm2__bind_x16(m, t, name, rows, cols, err, out);
    if (t && (t->dtype == LFM2__DT_I8 || t->dtype == LFM2__DT_U8)) return lfm2__bind_quant(m, t, name, rows, cols, err, out);
    shape[0] = rows;
    shape[1] = cols;
    rc = lfm2__get_tensor(m, name, 2, shape, err, &t);
    if (rc != LFM2_OK) return rc;
    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = LFM2__CAST(int32_t, rows);
    out->cols = LFM2__CAST(int32_t, cols);
    return LFM2_OK;
}
/* Binds a small tensor of n elements (given shape) as an f32 copy taken from *arena. */
static lfm2_result lfm2__bind_vec(const lfm2_model *m, const char *name, int32_t ndim, const int64_t *shape,
                                  float **arena, lfm2_error *err, const float **out) {
    const lfm2__tensor *t;
    lfm2_result rc = lfm2__get_tensor(m, name, ndim, shape, err, &t);
    uint64_t i;
    float *dst = *arena;
    if (rc != LFM2_OK) return rc;
    for (i = 0; i < t->numel; i++) {
        const unsigned char *p = t->data + i * lfm2__dtype_size[t->dtype];
        uint16_t h;
        if (t->dtype == LFM2__DT_F32) memcpy(&dst[i], p, 4);
        else {
            memcpy(&h, p, 2);
            dst[i] = (t->dtype == LFM2__DT_BF16) ? lfm2__bf16_to_f32(h) : lfm2__f16_to_f32(h);
        }
    }
    *arena += t->numel;
    *out = dst;
    return LFM2_OK;
}

/* Binds every tensor of the architecture, with full shape checks. */
static lfm2_result lfm2__bind_weights(lfm2_model *m, lfm2_error *err) {
    const lfm2_config *c = &m->cfg;
    int64_t D = c->hidden_size, V = c->vocab_size, F = c->ff_dim, L = c->conv_L_cache, hd = c->head_dim;
    int64_t qd = c->num_attention_heads * hd, kvd = c->num_key_value_heads * hd, sh[3];
    size_t n_vec = LFM2__CAST(size_t, D);
    int32_t l, n_conv = 0, n_attn = 0;
    float *arena;
    char name[128];
    lfm2_result rc;
    const lfm2__tensor *w1;
#define LFM2__TRY(x) do { rc = (x); if (rc != LFM2_OK) return rc; } while (0)
    for (l = 0; l < c->num_hidden_layers; l++) {
        n_vec += 2 * LFM2__CAST(size_t, D);
        if (c->is_moe && l >= c->num_dense_layers && c->use_expert_bias) n_vec += LFM2__CAST(size_t, c->num_experts);
        if (c->layer_is_attention[l]) n_vec += 2 * LFM2__CAST(size_t, hd);
        else n_vec += LFM2__CAST(size_t, D * L) + (c->conv_bias ? LFM2__CAST(size_t, 5 * D) : 0);
    }
    {   /* every f32 value copied below comes from a distinct element (>= 2 bytes) of some tensor:
           a config that implies more than the files hold is refused before allocating for it */
        uint64_t have = 0;
        int32_t q;
        for (q = 0; q < m->n_tensors; q++) have += m->by_name[q]->nbytes;
        if (LFM2__CAST(uint64_t, n_vec) > have / 2)
            return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "config.json implies %llu norm/conv/bias values, but the safetensors files hold only %llu bytes of tensors",
                              LFM2__CAST(unsigned long long, n_vec), LFM2__CAST(unsigned long long, have));
    }
    m->vec = LFM2__CAST(float *, lfm2__malloc(&m->alloc, sizeof(float) * n_vec));
    m->layers = LFM2__CAST(lfm2__layer *, lfm2__calloc(&m->alloc, sizeof(lfm2__layer) * LFM2__CAST(size_t, c->num_hidden_layers)));
    if (c->n_moe_layers > 0) {
        size_t ne = 3 * LFM2__CAST(size_t, c->num_experts) * LFM2__CAST(size_t, c->n_moe_layers);
        if (LFM2__CAST(uint64_t, ne) > LFM2__CAST(uint64_t, m->n_tensors))
            return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "config.json implies %llu expert matrices, but the safetensors files hold only %d tensors",
                              LFM2__CAST(unsigned long long, ne), m->n_tensors);
        m->experts = LFM2__CAST(lfm2__mat *, lfm2__calloc(&m->alloc, sizeof(lfm2__mat) * ne));
        if (!m->experts) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the expert table");
    }
    if (!m->vec || !m->layers) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the model's tables");
    arena = m->vec;
    /* the FFN width of the file must agree with the config's derivation (lfm2__config_finalize) */
    w1 = lfm2__model_find(m, "model.layers.0.feed_forward.w1.weight");
    if (w1 && w1->ndim == 2 && w1->shape[0] != F)
        return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json gives an FFN width of %lld (intermediate_size/block_ff_dim %d, auto-adjust %d, multiplier %g, "
                          "multiple_of %d) but tensor \"model.layers.0.feed_forward.w1.weight\" has %lld rows",
                          LFM2__CAST(long long, F), c->intermediate_size, c->block_auto_adjust_ff_dim, c->block_ffn_dim_multiplier,
                          c->block_multiple_of, LFM2__CAST(long long, w1->shape[0]));
    LFM2__TRY(lfm2__bind_mat(m, "model.embed_tokens.weight", V, D, err, &m->embed));
    sh[0] = D;
    LFM2__TRY(lfm2__bind_vec(m, "model.embedding_norm.weight", 1, sh, &arena, err, &m->final_norm));
    if (lfm2__model_find(m, "lm_head.weight")) LFM2__TRY(lfm2__bind_mat(m, "lm_head.weight", V, D, err, &m->head));
    else if (c->tie_word_embeddings) m->head = m->embed;
    else return lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"lm_head.weight\" is missing and config.json says tie_word_embeddings = false");
    for (l = 0; l < c->num_hidden_layers; l++) {
        lfm2__layer *ly = &m->layers[l];
#define LFM2__NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        ly->is_attention = c->layer_is_attention[l];
        sh[0] = D;
        LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("operator_norm.weight"), 1, sh, &arena, err, &ly->operator_norm));
        LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("ffn_norm.weight"), 1, sh, &arena, err, &ly->ffn_norm));
        if (c->is_moe && l >= c->num_dense_layers) { /* a sparse block */
            int64_t E = c->num_experts, I = c->moe_intermediate_size;
            int32_t e;
            char en[96];
            ly->is_moe = 1;
            ly->moe_slot = l - c->num_dense_layers;
            ly->experts = m->experts + 3 * LFM2__CAST(size_t, E) * LFM2__CAST(size_t, l - c->num_dense_layers);
            if (lfm2__model_find(m, LFM2__NAME("feed_forward.w1.weight")))
                return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: layer %d is sparse (num_dense_layers %d) but tensor \"%s\" exists", l, c->num_dense_layers, name);
            {   /* the router multiplies f32 activations as stored: row-major f32 / f16 / bf16 */
                const lfm2__tensor *g;
                sh[0] = E; sh[1] = D;
                LFM2__TRY(lfm2__get_tensor(m, LFM2__NAME("feed_forward.gate.weight"), 2, sh, err, &g));
                ly->router.data = g->data;
                ly->router.dtype = g->dtype;
                ly->router.rows = LFM2__CAST(int32_t, E);
                ly->router.cols = LFM2__CAST(int32_t, D);
            }
            sh[0] = E;
            if (c->use_expert_bias) LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("feed_forward.expert_bias"), 1, sh, &arena, err, &ly->expert_bias));
            for (e = 0; e < E; e++) {
                snprintf(en, sizeof en, "feed_forward.experts.%d.w1.weight", e);
                LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME(en), I, D, err, &ly->experts[3 * e]));
                snprintf(en, sizeof en, "feed_forward.experts.%d.w3.weight", e);
                LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME(en), I, D, err, &ly->experts[3 * e + 1]));
                snprintf(en, sizeof en, "feed_forward.experts.%d.w2.weight", e);
                LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME(en), D, I, err, &ly->experts[3 * e + 2]));
            }
            snprintf(en, sizeof en, "feed_forward.experts.%d.w1.weight", c->num_experts);
            if (lfm2__model_find(m, LFM2__NAME(en)))
                return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json says num_experts = %d but tensor \"%s\" exists", c->num_experts, name);
        } else {
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("feed_forward.w1.weight"), F, D, err, &ly->w1));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("feed_forward.w3.weight"), F, D, err, &ly->w3));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("feed_forward.w2.weight"), D, F, err, &ly->w2));
            if (lfm2__model_find(m, LFM2__NAME("feed_forward.gate.weight")))
                return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json: layer %d is dense (num_dense_layers %d) but tensor \"%s\" exists", l, c->num_dense_layers, name);
        }
        if (ly->is_attention) {
            ly->slot = n_attn++;
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("self_attn.q_proj.weight"), qd, D, err, &ly->wq));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("self_attn.k_proj.weight"), kvd, D, err, &ly->wk));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("self_attn.v_proj.weight"), kvd, D, err, &ly->wv));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("self_attn.out_proj.weight"), D, qd, err, &ly->wo));
            sh[0] = hd;
            LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("self_attn.q_layernorm.weight"), 1, sh, &arena, err, &ly->q_norm));
            LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("self_attn.k_layernorm.weight"), 1, sh, &arena, err, &ly->k_norm));
            if (lfm2__model_find(m, LFM2__NAME("conv.in_proj.weight")))
                return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json says layer %d is attention but tensor \"%s\" exists", l, name);
        } else {
            ly->slot = n_conv++;
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("conv.in_proj.weight"), 3 * D, D, err, &ly->in_proj));
            LFM2__TRY(lfm2__bind_mat(m, LFM2__NAME("conv.out_proj.weight"), D, D, err, &ly->out_proj));
            sh[0] = D; sh[1] = 1; sh[2] = L;
            LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("conv.conv.weight"), 3, sh, &arena, err, &ly->conv_w));
            if (c->conv_bias) {
                sh[0] = 3 * D;
                LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("conv.in_proj.bias"), 1, sh, &arena, err, &ly->in_bias));
                sh[0] = D;
                LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("conv.conv.bias"), 1, sh, &arena, err, &ly->conv_b));
                LFM2__TRY(lfm2__bind_vec(m, LFM2__NAME("conv.out_proj.bias"), 1, sh, &arena, err, &ly->out_bias));
            }
            if (lfm2__model_find(m, LFM2__NAME("self_attn.q_proj.weight")))
                return lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "config.json says layer %d is conv but tensor \"%s\" exists", l, name);
        }
#undef LFM2__NAME
    }
    return LFM2_OK;
#undef LFM2__TRY
}

/* Releases files read or mapped by lfm2_model_load_dir, and their array. */
static void lfm2__blobs_close(lfm2__blob *blobs, int32_t n) {
#ifdef LFM2__POSIX_MMAP
    int32_t i;
    for (i = 0; i < n; i++)
        if (blobs[i].mapped && blobs[i].fd >= 0) { close(blobs[i].fd); blobs[i].fd = -1; }
#else
    (void)blobs;
    (void)n;
#endif
}
static void lfm2__blobs_free(const lfm2_allocator *a, lfm2__blob *blobs, int32_t n) {
    int32_t i;
    lfm2__blobs_close(blobs, n);
    for (i = 0; i < n; i++) {
#ifdef LFM2__HAVE_MMAP
        if (blobs[i].mapped) {
#if defined(LFM2__WIN32_MMAP)
            UnmapViewOfFile(blobs[i].data);
#else
            if (blobs[i].mapped == 1) munmap(blobs[i].data, blobs[i].size);
#endif
            continue;
        }
#endif
        lfm2__free(a, blobs[i].data);
    }
    lfm2__free(a, blobs);
}

static void lfm2__model_destroy(lfm2_model *m) {
    int32_t i;
    lfm2_allocator a;
    if (!m) return;
    a = m->alloc;
    if (m->tok) lfm2__tokenizer_free(m->tok, &a);
    for (i = 0; i < m->n_files; i++) lfm2__st_free(&m->files[i], &a);
    lfm2__free(&a, m->files);
    lfm2__free(&a, m->by_name);
    lfm2__free(&a, m->layers);
    lfm2__free(&a, m->experts);
    lfm2__free(&a, m->vec);
    lfm2__free(&a, m->qbuf);
    lfm2__free(&a, m->ibuf);
    lfm2__free(&a, m->xbuf);
    if (m->shard_names) {
        for (i = 0; i < m->n_files; i++) lfm2__free(&a, m->shard_names[i]);
        lfm2__free(&a, m->shard_names);
    }
    lfm2__blobs_free(&a, m->blobs, m->n_blobs);
    lfm2__free(&a, m);
}

/* Adds the eos ids of generation_config.json to the config's. */
static lfm2_result lfm2__read_generation_config(lfm2_config *c, const char *json, size_t len, const lfm2_allocator *a, lfm2_error *err) {
    lfm2__json j;
    lfm2__cfgread r;
    int32_t e;
    lfm2_result rc = lfm2__json_parse(&j, json, len, a, err, LFM2_ERR_BAD_CONFIG, "generation_config.json");
    if (rc != LFM2_OK) return rc;
    r.j = &j;
    r.err = err;
    r.rc = LFM2_OK;
    if (j.tok[0].type != LFM2__J_OBJ) r.rc = lfm2__fail(err, LFM2_ERR_BAD_CONFIG, "generation_config.json: the top level must be an object");
    else if ((e = lfm2__json_get(&j, 0, "eos_token_id")) >= 0) lfm2__cfg_eos(&r, e, "generation_config.json", c->eos_token_ids, &c->n_eos);
    lfm2__json_free(&j, a);
    return r.rc;
}

/* The instruction set of a model: the best the CPU supports, capped by params->max_isa, else by
   the environment variable LFM2_ISA (a name of lfm2_isa_name, case-insensitive; not read with
   LFM2_NO_GETENV). A cap of another CPU family than this one's means the scalar kernels. */
static int lfm2__name_is(const char *a, const char *b) {
    for (; *a && *b; a++, b++) if ((*a >= 'a' && *a <= 'z' ? *a - 32 : *a) != *b) return 0;
    return *a == 0 && *b == 0;
}
static lfm2_result lfm2__model_level(const lfm2_model_params *p, lfm2_error *err, int32_t *out) {
    int32_t best = lfm2__detect_isa(), cap = p ? p->max_isa : LFM2_ISA_AUTO, k;
    if (cap < LFM2_ISA_AUTO || cap >= LFM2_ISA_COUNT)
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_params.max_isa = %d is not an lfm2_isa value", cap);
#ifndef LFM2_NO_GETENV
    if (cap == LFM2_ISA_AUTO) {
        const char *e = getenv("LFM2_ISA");
        if (e && *e) {
            for (k = LFM2_ISA_SCALAR; k < LFM2_ISA_COUNT; k++) if (lfm2__name_is(e, lfm2__isa_names[k])) cap = k;
            if (cap == LFM2_ISA_AUTO)
                return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "the environment variable LFM2_ISA = \"%.40s\" is not an instruction set (SCALAR, AVX2, AVX512, AVX512_VNNI, AVX512_BF16, NEON, NEON_DOTPROD, NEON_BF16, NEON_I8MM, WASM_SIMD128)", e);
        }
    }
#endif
    (void)k;
    if (cap == LFM2_ISA_AUTO) *out = best;
    else if (lfm2__isa_has(best, cap)) *out = cap;        /* a level below (or at) the CPU's */
    else if (lfm2__isa_has(cap, best)) *out = best;       /* above it: the CPU's best */
    else *out = LFM2_ISA_SCALAR;                          /* another family */
    return LFM2_OK;
}

/* The core of both loaders. Takes ownership of `blobs` (freed with the model, or on failure). */
/* The model's identity in state snapshots (see lfm2_context_state_save), computed once at load
   from the tensors as stored, before any conversion: the architecture of the config, the
   load-time conversion (lfm2_model_params.weights), and for every tensor in name order its name,
   dtype, shape and data: all of it for tensors up to 16 KiB (norms, conv taps, biases), and for
   larger ones 4 blocks of 4 KiB spread evenly from the first byte to the last. Training,
   fine-tuning (a LoRA merge changes every element of the matrices it touches) and
   re-quantization change every block of the matrices they touch, so such models are told
   apart. Hashing every byte instead would read the whole model at every load (seconds for
   gigabytes from a cold disk, where a mapped folder loads in milliseconds otherwise); the
   samples add ~1.5 ms to loading LFM2-350M with a warm page cache (each block is a page fault;
   more blocks cost more faults without telling apart more realistic models). An edit confined
   to a few rows in the middle of a large matrix goes unseen. Of a mixture-of-experts layer's
   experts only expert 0's bytes are sampled (their names, dtypes and shapes all count): LFM2-24B-A2B
   has 7,296 expert matrices, whose 29,000 sampled pages made a cold load take 11 s and left
   1.5 GiB resident before the first token. Shards, file names and the layout in memory do not
   count: the same tensors give the same fingerprint however they are split or loaded. */
static uint64_t lfm2__fp_mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = LFM2__CAST(const unsigned char *, p);
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ (w * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}
static uint64_t lfm2__model_fingerprint(const lfm2_model *m, int32_t weights) {
    const lfm2_config *c = &m->cfg;
    int64_t a[16];
    uint64_t h = 0x4c464d32u; /* "LFM2" */
    uint32_t eps_bits;
    int32_t i, k;
    a[0] = c->vocab_size; a[1] = c->hidden_size; a[2] = c->num_hidden_layers; a[3] = c->num_attention_heads;
    a[4] = c->num_key_value_heads; a[5] = c->head_dim; a[6] = c->ff_dim; a[7] = c->conv_L_cache;
    a[8] = c->conv_bias; a[9] = c->tie_word_embeddings; a[10] = weights; a[11] = c->n_attention_layers;
    memcpy(&eps_bits, &c->norm_eps, sizeof eps_bits);
    a[12] = eps_bits;
    memcpy(&a[13], &c->rope_theta, sizeof c->rope_theta);
    a[14] = c->max_position_embeddings; a[15] = 0;
    h = lfm2__fp_mix(h, a, sizeof a);
    h = lfm2__fp_mix(h, c->layer_is_attention, LFM2__CAST(size_t, c->num_hidden_layers));
    for (i = 0; i < m->n_tensors; i++) {
        const lfm2__tensor *t = m->by_name[i];
        uint64_t d[2 + LFM2__MAX_NDIM], nb = t->nbytes;
        h = lfm2__fp_mix(h, t->name, strlen(t->name) + 1);
        d[0] = LFM2__CAST(uint64_t, t->dtype);
        d[1] = LFM2__CAST(uint64_t, t->ndim);
        for (k = 0; k < LFM2__MAX_NDIM; k++) d[2 + k] = k < t->ndim ? LFM2__CAST(uint64_t, t->shape[k]) : 0;
        h = lfm2__fp_mix(h, d, sizeof d);
        if (strstr(t->name, ".experts.") && !strstr(t->name, ".experts.0.")) continue; /* MoE: expert 0's bytes stand for its layer's */
        if (nb <= 4 * 4096) {
            h = lfm2__fp_mix(h, t->data, LFM2__CAST(size_t, nb));
        } else { /* 4 blocks of 4 KiB: the first, the last and 2 spread evenly between them */
            for (k = 0; k < 4; k++) h = lfm2__fp_mix(h, t->data + LFM2__CAST(uint64_t, k) * ((nb - 4096) / 3), 4096);
        }
    }
    return h;
}

#if defined(LFM2__BIG_ENDIAN)
/* Big-endian hosts: safetensors stores little-endian values, so every tensor of file f, whose
   bytes are the owned buffer base (read, never mapped, on these hosts), is byte-swapped in place
   to the native order before anything reads it. */
static void lfm2__st_swap(unsigned char *base, const lfm2__stfile *f) {
    int32_t i;
    for (i = 0; i < f->n; i++) {
        const lfm2__tensor *t = &f->t[i];
        size_t es = lfm2__dtype_size[t->dtype], k, j;
        unsigned char *d = base + t->offset, tmp;
        if (f->x16 == 1 && t->dtype == LFM2__DT_U8 && t->ndim == 3 && (t->shape[2] == 1088 || t->shape[2] == 576)) {
            /* an interleaved record (LFM2__X16_LAYOUT) starts with its 32 f16 scales */
            size_t rb = LFM2__CAST(size_t, t->shape[2]);
            for (k = 0; k + rb <= t->nbytes; k += rb)
                for (j = 0; j < 64; j += 2) { tmp = d[k + j]; d[k + j] = d[k + j + 1]; d[k + j + 1] = tmp; }
            continue;
        }
        if (es < 2) continue;
        for (k = 0; k + es <= t->nbytes; k += es)
            for (j = 0; j < es / 2; j++) { tmp = d[k + j]; d[k + j] = d[k + es - 1 - j]; d[k + es - 1 - j] = tmp; }
    }
}
#endif
static lfm2_result lfm2__model_build(const lfm2_model_sources *s, const lfm2_model_params *p, lfm2__blob *blobs, int32_t n_blobs,
                                     lfm2_model **out) {
    lfm2_allocator a;
    lfm2_error *err = p ? p->error : NULL;
    lfm2_model *m;
    lfm2_result rc;
    int32_t i, k, n = 0;
    memset(&a, 0, sizeof a);
    if (p) a = p->allocator;
    *out = NULL;
    m = LFM2__CAST(lfm2_model *, lfm2__calloc(&a, sizeof *m));
    if (!m) {
        lfm2__blobs_free(&a, blobs, n_blobs);
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the model");
    }
    m->alloc = a;
    m->blobs = blobs;
    m->n_blobs = n_blobs;
    rc = lfm2__config_parse(s->config_json, s->config_json_size, &m->cfg, &a, err);
    if (rc != LFM2_OK) goto fail;
    if (s->generation_config_json) {
        rc = lfm2__read_generation_config(&m->cfg, s->generation_config_json, s->generation_config_json_size, &a, err);
        if (rc != LFM2_OK) goto fail;
    }
    if (s->n_safetensors < 1 || !s->safetensors) { rc = lfm2__fail(err, LFM2_ERR_INVALID_ARG, "no safetensors buffer given"); goto fail; }
    m->files = LFM2__CAST(lfm2__stfile *, lfm2__calloc(&a, sizeof(lfm2__stfile) * LFM2__CAST(size_t, s->n_safetensors)));
    m->shard_names = LFM2__CAST(char **, lfm2__calloc(&a, sizeof(char *) * LFM2__CAST(size_t, s->n_safetensors)));
    if (!m->files || !m->shard_names) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the shard table"); goto fail; }
#if defined(LFM2__BIG_ENDIAN)
    if (!blobs) { /* the caller's buffers stay untouched: the model byte-swaps a copy of each */
        m->blobs = blobs = LFM2__CAST(lfm2__blob *, lfm2__calloc(&a, sizeof(lfm2__blob) * LFM2__CAST(size_t, s->n_safetensors)));
        if (!blobs) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the byte-swapped weights"); goto fail; }
        for (i = 0; i < s->n_safetensors; i++) {
            blobs[i].fd = -1;
            blobs[i].size = s->safetensors[i].size;
            blobs[i].data = s->safetensors[i].data ? lfm2__malloc(&a, blobs[i].size) : NULL;
            m->n_blobs = n_blobs = i + 1;
            if (s->safetensors[i].data && !blobs[i].data) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the byte-swapped weights (%zu bytes)", blobs[i].size); goto fail; }
            if (blobs[i].data) memcpy(blobs[i].data, s->safetensors[i].data, blobs[i].size);
        }
    }
#endif
    for (i = 0; i < s->n_safetensors; i++) {
        const char *nm = s->safetensors[i].name ? s->safetensors[i].name : "model.safetensors";
        size_t nl = strlen(nm);
        m->shard_names[i] = LFM2__CAST(char *, lfm2__malloc(&a, nl + 1));
        if (!m->shard_names[i]) { m->n_files = i; rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory"); goto fail; }
        memcpy(m->shard_names[i], nm, nl + 1);
        m->n_files = i + 1;
#if defined(LFM2__BIG_ENDIAN)
        rc = lfm2__st_parse(blobs[i].data, blobs[i].size, m->shard_names[i], i, &a, err, &m->files[i]);
        if (rc != LFM2_OK) goto fail;
        lfm2__st_swap(LFM2__CAST(unsigned char *, blobs[i].data), &m->files[i]);
#else
        rc = lfm2__st_parse(s->safetensors[i].data, s->safetensors[i].size, m->shard_names[i], i, &a, err, &m->files[i]);
        if (rc != LFM2_OK) goto fail;
#endif
        n += m->files[i].n;
    }
    /* one sorted table of every tensor; the same name in two places is an error */
    m->by_name = LFM2__CAST(const lfm2__tensor **, lfm2__malloc(&a, sizeof(lfm2__tensor *) * LFM2__CAST(size_t, n)));
    if (!m->by_name) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the tensor table"); goto fail; }
    for (i = 0, k = 0; i < m->n_files; i++) {
        int32_t q;
        for (q = 0; q < m->files[i].n; q++) m->by_name[k++] = &m->files[i].t[q];
    }
    m->n_tensors = n;
    qsort(LFM2__CAST(void *, m->by_name), LFM2__CAST(size_t, n), sizeof(lfm2__tensor *), lfm2__cmp_tensor_name);
    for (i = 1; i < n; i++)
        if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0) {
            rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "tensor \"%s\" appears twice (in %s and %s)", m->by_name[i]->name,
                            m->shard_names[m->by_name[i - 1]->file], m->shard_names[m->by_name[i]->file]);
            goto fail;
        }
    rc = lfm2__model_level(p, err, &m->isa);
    m->huge_pages = p ? p->huge_pages : 0;
    if (rc != LFM2_OK) goto fail;
    m->vops = lfm2__vops_for(m->isa);
    rc = lfm2__bind_weights(m, err);
    if (rc != LFM2_OK) goto fail;
    m->fingerprint = lfm2__model_fingerprint(m, p ? p->weights : 0); /* before the weights are converted */
    if (p && p->weights != LFM2_WEIGHTS_AS_STORED && p->weights != LFM2_WEIGHTS_Q8 && p->weights != LFM2_WEIGHTS_Q4) {
        rc = lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_params.weights = %d is not an LFM2_WEIGHTS_* value", p->weights);
        goto fail;
    }
    {   /* the load-time conversions run on threads of their own */
        lfm2__workers lw;
        rc = lfm2__workers_init(&lw, p ? p->n_threads : 0, p ? p->threading : 0, p ? &p->parallel : NULL, &a, err);
        if (rc != LFM2_OK) goto fail;
        rc = lfm2__x16_unpack(m, &lw, err);
        if (rc != LFM2_OK) { lfm2__workers_free(&lw); goto fail; }
        if (p && (p->weights == LFM2_WEIGHTS_Q8 || p->weights == LFM2_WEIGHTS_Q4)) rc = lfm2__quantize_weights(m, &lw, p->weights, err);
        /* then the float matrices (all of them, or those load-time quantization left as stored:
           widths that are not whole 32-column blocks) as a pre-quantized folder has them */
        if (rc == LFM2_OK && n_blobs > 0 && !(p && p->keep_layout)) rc = lfm2__interleave_weights(m, &lw, err);
        lfm2__workers_free(&lw);
        if (rc != LFM2_OK) goto fail;
    }
    rc = lfm2__bind_kernels(m, err);
    if (rc != LFM2_OK) goto fail;
    lfm2__blobs_close(m->blobs, m->n_blobs);
    if (s->tokenizer_json && !(p && p->no_tokenizer)) {
        rc = lfm2__tokenizer_load(s->tokenizer_json, s->tokenizer_json_size, s->tokenizer_config_json, s->tokenizer_config_json_size,
                                  m->cfg.vocab_size, &a, err, &m->tok);
        if (rc != LFM2_OK) goto fail;
    }
    *out = m;
    return LFM2_OK;
fail:
    lfm2__model_destroy(m);
    return rc;
}

LFM2_API lfm2_result lfm2_model_load_memory(const lfm2_model_sources *s, const lfm2_model_params *p, lfm2_model **out) {
    lfm2_error *err = p ? p->error : NULL;
    if (!out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_load_memory: out is NULL");
    *out = NULL;
    if (!s || !s->config_json) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_load_memory: no config_json given");
    if (p && (!p->allocator.alloc) != (!p->allocator.free)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "allocator: set both alloc and free, or neither");
    return lfm2__model_build(s, p, NULL, 0, out);
}

#ifndef LFM2_NO_STDIO
/* >>files ---------------------------------------------------------------------------------- */
/* Reads (or maps) dir/name, a file the folder must hold as a regular file. *missing = 1 only when
   it does not exist (POSIX ENOENT; Windows: file or path not found); any other failure, such as
   permission denied, is an error naming the file and the reason. A directory, FIFO, device or
   socket under that name is refused before anything is read (a FIFO is opened non-blocking: no
   hang). Sizes are 64-bit on every platform (32-bit Linux: build with -D_FILE_OFFSET_BITS=64 for
   files of 2 GiB and more, else they are refused by name); a file larger than the address space
   is refused, never truncated. Paths are UTF-8 everywhere (Windows: through the wide API). */
#if defined(LFM2__POSIX_FILES)
static const char *lfm2__sys_reason(int e, char *buf, size_t n) {
    switch (e) {
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case ENOTDIR: return "a part of the path is not a folder";
    case EISDIR: return "it is a directory";
    case ELOOP: return "too many levels of symbolic links";
    case ENAMETOOLONG: return "file name too long";
    case EMFILE: case ENFILE: return "too many open files";
    case ENOMEM: return "out of kernel memory";
    case EIO: return "input/output error";
    case ENXIO: case ENODEV: return "no such device";
#ifdef EOVERFLOW
    case EOVERFLOW: return "the file is 2 GiB or more and this 32-bit build has 32-bit file offsets (build with -D_FILE_OFFSET_BITS=64)";
#endif
    default: snprintf(buf, n, "error %d", e); return buf;
    }
}
#elif defined(LFM2__WIN32_FILES)
static const char *lfm2__sys_reason(DWORD e, char *buf, size_t n) {
    switch (e) {
    case ERROR_ACCESS_DENIED: return "access denied";
    case ERROR_SHARING_VIOLATION: return "sharing violation (another program holds the file open without sharing it)";
    case ERROR_LOCK_VIOLATION: return "lock violation (another program has locked the file)";
    case ERROR_INVALID_NAME: return "invalid file name";
    case ERROR_FILENAME_EXCED_RANGE: return "path too long";
    case ERROR_TOO_MANY_OPEN_FILES: return "too many open files";
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return "out of system memory";
    case ERROR_HANDLE_EOF: return "the file ended early";
    default: snprintf(buf, n, "Windows error %lu", LFM2__CAST(unsigned long, e)); return buf;
    }
}
#endif
/* the size check shared by every platform: the whole file (+1 byte for a NUL) must fit size_t */
static lfm2_result lfm2__file_size_ok(uint64_t size, const char *path, lfm2_error *err) {
    if (size >= LFM2__CAST(uint64_t, SIZE_MAX))
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "%s is %llu bytes: larger than this %d-bit process can address", path,
                          LFM2__CAST(unsigned long long, size), LFM2__CAST(int, sizeof(void *) * 8));
    return LFM2_OK;
}
static lfm2_result lfm2__load_file(const char *dir, const char *name, int allow_map, const lfm2_allocator *a, lfm2_error *err,
                                   lfm2__blob *out, int *missing) {
    char path[4096], why[48];
    uint64_t size;
    size_t dl = strlen(dir), got = 0;
    memset(out, 0, sizeof *out);
    out->fd = -1;
    *missing = 0;
    if (dl + strlen(name) + 2 > sizeof path) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    memcpy(path, dir, dl);
    path[dl] = '/';
    strcpy(path + dl + 1, name);
    strncpy(out->name, name, sizeof out->name - 1);
#if defined(LFM2__BIG_ENDIAN)
    allow_map = 0; /* the tensors are byte-swapped in place at load */
#endif
#if defined(LFM2__POSIX_FILES)
    {
        struct stat st;
        int fd, flags = O_RDONLY | O_NONBLOCK; /* O_NONBLOCK: opening a FIFO must not wait for a writer */
#ifdef O_CLOEXEC
        flags |= O_CLOEXEC;
#endif
#ifdef O_NOCTTY
        flags |= O_NOCTTY;
#endif
        fd = open(path, flags);
        if (fd < 0) {
            int e = errno;
            if (e == ENOENT) *missing = 1;
            return lfm2__fail(err, LFM2_ERR_IO, "cannot open %s: %s", path, e == ENOENT ? "no such file" : lfm2__sys_reason(e, why, sizeof why));
        }
        if (fstat(fd, &st) != 0) {
            int e = errno;
            close(fd);
            return lfm2__fail(err, LFM2_ERR_IO, "cannot stat %s: %s", path, lfm2__sys_reason(e, why, sizeof why));
        }
        if (!S_ISREG(st.st_mode)) {
            close(fd);
            return lfm2__fail(err, LFM2_ERR_IO, "%s is not a regular file (it is %s)", path,
                              S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                              : S_ISBLK(st.st_mode) ? "a block device" : "a socket or other special file");
        }
        if (st.st_size < 0) { close(fd); return lfm2__fail(err, LFM2_ERR_IO, "%s: negative file size", path); }
        size = LFM2__CAST(uint64_t, st.st_size);
        if (lfm2__file_size_ok(size, path, err) != LFM2_OK) { close(fd); return LFM2_ERR_OUT_OF_MEMORY; }
        out->size = LFM2__CAST(size_t, size);
#if defined(LFM2__POSIX_MMAP)
        if (allow_map && size > 0) {
            void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                out->fd = fd; /* kept for lfm2__interleave_weights, closed by lfm2__blobs_close */
                out->data = p;
                out->mapped = 1;
                return LFM2_OK;
            } /* (unmappable: read it) */
        }
#else
        (void)allow_map;
#endif
        out->data = lfm2__malloc(a, out->size + 1);
        if (!out->data) { close(fd); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory reading %s (%llu bytes)", path, LFM2__CAST(unsigned long long, size)); }
        while (got < out->size) {
            size_t want = out->size - got;
            ssize_t r;
            if (want > (LFM2__CAST(size_t, 1) << 30)) want = LFM2__CAST(size_t, 1) << 30;
            r = read(fd, LFM2__CAST(char *, out->data) + got, want);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = errno;
                close(fd);
                lfm2__free(a, out->data);
                out->data = NULL;
                if (r == 0) return lfm2__fail(err, LFM2_ERR_IO, "%s ended after %zu of %zu bytes (changed while being read?)", path, got, out->size);
                return lfm2__fail(err, LFM2_ERR_IO, "read error in %s: %s", path, lfm2__sys_reason(e, why, sizeof why));
            }
            got += LFM2__CAST(size_t, r);
        }
        close(fd);
    }
#elif defined(LFM2__WIN32_FILES)
    {
        wchar_t wpath[4096];
        HANDLE h;
        LARGE_INTEGER li;
        DWORD attr, e;
        if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, LFM2__CAST(int, sizeof wpath / sizeof wpath[0])) == 0)
            return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "%s: the path is not valid UTF-8 (lfm2.h takes UTF-8 paths on Windows too)", path);
        attr = GetFileAttributesW(wpath);
        if (attr == INVALID_FILE_ATTRIBUTES) {
            e = GetLastError();
            if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
                *missing = 1;
                return lfm2__fail(err, LFM2_ERR_IO, "cannot open %s: no such file", path);
            }
            return lfm2__fail(err, LFM2_ERR_IO, "cannot open %s: %s", path, lfm2__sys_reason(e, why, sizeof why));
        }
        if (attr & FILE_ATTRIBUTE_DIRECTORY) return lfm2__fail(err, LFM2_ERR_IO, "%s is not a regular file (it is a directory)", path);
        h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE) {
            e = GetLastError();
            if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) *missing = 1;
            return lfm2__fail(err, LFM2_ERR_IO, "cannot open %s: %s", path, *missing ? "no such file" : lfm2__sys_reason(e, why, sizeof why));
        }
        if (GetFileType(h) != FILE_TYPE_DISK) {
            CloseHandle(h);
            return lfm2__fail(err, LFM2_ERR_IO, "%s is not a regular file (it is a pipe or a device)", path);
        }
        if (!GetFileSizeEx(h, &li) || li.QuadPart < 0) {
            e = GetLastError();
            CloseHandle(h);
            return lfm2__fail(err, LFM2_ERR_IO, "cannot determine the size of %s: %s", path, lfm2__sys_reason(e, why, sizeof why));
        }
        size = LFM2__CAST(uint64_t, li.QuadPart);
        if (lfm2__file_size_ok(size, path, err) != LFM2_OK) { CloseHandle(h); return LFM2_ERR_OUT_OF_MEMORY; }
        out->size = LFM2__CAST(size_t, size);
#if defined(LFM2__WIN32_MMAP)
        if (allow_map && size > 0) { /* a read-only view; the view keeps the file open */
            HANDLE mh = CreateFileMappingW(h, NULL, PAGE_READONLY, 0, 0, NULL);
            void *v = mh ? MapViewOfFile(mh, FILE_MAP_READ, 0, 0, 0) : NULL;
            if (mh) CloseHandle(mh);
            if (v) {
                CloseHandle(h);
                out->data = v;
                out->mapped = 1;
                return LFM2_OK;
            } /* (unmappable: read it) */
        }
#else
        (void)allow_map;
#endif
        out->data = lfm2__malloc(a, out->size + 1);
        if (!out->data) { CloseHandle(h); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory reading %s (%llu bytes)", path, LFM2__CAST(unsigned long long, size)); }
        while (got < out->size) {
            DWORD want = (out->size - got > (LFM2__CAST(size_t, 1) << 30)) ? (1u << 30) : LFM2__CAST(DWORD, out->size - got), r = 0;
            if (!ReadFile(h, LFM2__CAST(char *, out->data) + got, want, &r, NULL) || r == 0) {
                e = GetLastError();
                CloseHandle(h);
                lfm2__free(a, out->data);
                out->data = NULL;
                if (r == 0) return lfm2__fail(err, LFM2_ERR_IO, "%s ended after %zu of %zu bytes (changed while being read?)", path, got, out->size);
                return lfm2__fail(err, LFM2_ERR_IO, "read error in %s: %s", path, lfm2__sys_reason(e, why, sizeof why));
            }
            got += r;
        }
        CloseHandle(h);
    }
#else
    {   /* plain stdio (no POSIX, no Win32: wasi, bare targets): long offsets */
        FILE *f;
        long sz;
        (void)allow_map;
        (void)why;
        errno = 0;
        f = fopen(path, "rb");
        if (!f) {
            int e = errno;
            if (e == 0 || e == ENOENT) *missing = 1;
            return lfm2__fail(err, LFM2_ERR_IO, "cannot open %s%s", path, (e == 0 || e == ENOENT) ? "" : ": not readable");
        }
        if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            fclose(f);
            return lfm2__fail(err, LFM2_ERR_IO, "cannot determine the size of %s (not a regular file, or too large for this build's stdio)", path);
        }
        size = LFM2__CAST(uint64_t, sz);
        if (lfm2__file_size_ok(size, path, err) != LFM2_OK) { fclose(f); return LFM2_ERR_OUT_OF_MEMORY; }
        out->size = LFM2__CAST(size_t, size);
        out->data = lfm2__malloc(a, out->size + 1);
        if (!out->data) { fclose(f); return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory reading %s (%llu bytes)", path, LFM2__CAST(unsigned long long, size)); }
        got = fread(out->data, 1, out->size, f);
        fclose(f);
        if (got != out->size) {
            lfm2__free(a, out->data);
            out->data = NULL;
            return lfm2__fail(err, LFM2_ERR_IO, "read error in %s", path);
        }
    }
#endif
    LFM2__CAST(char *, out->data)[out->size] = 0;
    return LFM2_OK;
}

/* Reads dir/name if it exists (out->data stays NULL when it does not). A file that exists but
   cannot be read is an error: LFM2_ERR_IO, or LFM2_ERR_OUT_OF_MEMORY. */
static lfm2_result lfm2__load_optional(const char *dir, const char *name, const lfm2_allocator *a, lfm2_error *err, lfm2__blob *out) {
    int missing;
    lfm2_error e;
    lfm2_result rc = lfm2__load_file(dir, name, 0, a, &e, out, &missing);
    if (rc == LFM2_OK || missing) return LFM2_OK;
    if (err) *err = e;
    return rc;
}

/* A shard name from an index must be a plain file name inside the folder. */
static int lfm2__safe_filename(const char *s, size_t n) {
    size_t i;
    if (n == 0 || n >= 64 || s[0] == '.') return 0;
    for (i = 0; i < n; i++) if (s[i] == '/' || s[i] == '\\' || s[i] == 0 || s[i] == ':') return 0;
    return 1;
}

LFM2_API lfm2_result lfm2_model_load_dir(const char *dir, const lfm2_model_params *p, lfm2_model **out) {
    lfm2_allocator a;
    lfm2_error *err = p ? p->error : NULL;
    int allow_map = !(p && p->no_mmap), missing;
    lfm2__blob *blobs = NULL, cfg, tok, tokcfg, gen, index;
    int32_t n_blobs = 0, i, k, n_shards = 0;
    lfm2__json ij;
    int32_t wm = -1;
    lfm2_model_sources src;
    lfm2_buffer *bufs = NULL;
    lfm2_result rc;
    memset(&a, 0, sizeof a);
    memset(&ij, 0, sizeof ij);
    memset(&cfg, 0, sizeof cfg); memset(&tok, 0, sizeof tok); memset(&tokcfg, 0, sizeof tokcfg);
    memset(&gen, 0, sizeof gen); memset(&index, 0, sizeof index);
    if (!out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_load_dir: out is NULL");
    *out = NULL;
    if (!dir) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_model_load_dir: dir is NULL");
    if (p) {
        if ((!p->allocator.alloc) != (!p->allocator.free)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "allocator: set both alloc and free, or neither");
        a = p->allocator;
    }
    rc = lfm2__load_file(dir, "config.json", 0, &a, err, &cfg, &missing);
    if (rc != LFM2_OK) {
        if (missing) lfm2__fail(err, LFM2_ERR_IO, "%s/config.json not found: is \"%s\" a Hugging Face LFM2 model folder?", dir, dir);
        return rc;
    }
    /* optional files */
    if ((rc = lfm2__load_optional(dir, "generation_config.json", &a, err, &gen)) != LFM2_OK) goto done;
    if (!(p && p->no_tokenizer)) {
        if ((rc = lfm2__load_optional(dir, "tokenizer.json", &a, err, &tok)) != LFM2_OK) goto done;
        if ((rc = lfm2__load_optional(dir, "tokenizer_config.json", &a, err, &tokcfg)) != LFM2_OK) goto done;
    }
    /* weights: a sharded set named by the index, or one model.safetensors */
    if ((rc = lfm2__load_optional(dir, "model.safetensors.index.json", &a, err, &index)) != LFM2_OK) goto done;
    if (index.data) {
        rc = lfm2__json_parse(&ij, LFM2__CAST(const char *, index.data), index.size, &a, err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json");
        if (rc != LFM2_OK) goto done;
        wm = (ij.tok[0].type == LFM2__J_OBJ) ? lfm2__json_get(&ij, 0, "weight_map") : -1;
        if (wm < 0 || ij.tok[wm].type != LFM2__J_OBJ) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json: no \"weight_map\" object"); goto done; }
        blobs = LFM2__CAST(lfm2__blob *, lfm2__calloc(&a, sizeof(lfm2__blob) * LFM2__CAST(size_t, ij.tok[wm].n + 1)));
        if (!blobs) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
        for (k = 0, i = wm + 1; k < ij.tok[wm].n; k++, i = ij.tok[i + 1].skip) {
            int32_t v = i + 1, q, seen = 0;
            char fname[64];
            int64_t fl;
            if (ij.tok[v].type != LFM2__J_STR || ij.tok[v].end - ij.tok[v].start >= sizeof fname) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json: weight_map entry %d is not a short file name", k);
                goto done;
            }
            fl = lfm2__json_str(&ij, v, fname);
            fname[fl] = 0;
            if (!lfm2__safe_filename(fname, LFM2__CAST(size_t, fl))) {
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json: shard name \"%s\" is not a plain file name", fname);
                goto done;
            }
            for (q = 0; q < n_blobs; q++) if (strcmp(blobs[q].name, fname) == 0) seen = 1;
            if (seen) continue;
            rc = lfm2__load_file(dir, fname, allow_map, &a, err, &blobs[n_blobs], &missing);
            if (rc != LFM2_OK) {
                if (missing) rc = lfm2__fail(err, LFM2_ERR_IO, "model.safetensors.index.json names shard \"%s\", which is missing from %s", fname, dir);
                goto done;
            }
            n_blobs++;
        }
        if (n_blobs == 0) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json: weight_map is empty"); goto done; }
    } else {
        blobs = LFM2__CAST(lfm2__blob *, lfm2__calloc(&a, sizeof(lfm2__blob)));
        if (!blobs) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
        rc = lfm2__load_file(dir, "model.safetensors", allow_map, &a, err, &blobs[0], &missing);
        if (rc != LFM2_OK) {
            if (missing) rc = lfm2__fail(err, LFM2_ERR_IO, "%s has neither model.safetensors nor model.safetensors.index.json", dir);
            goto done;
        }
        n_blobs = 1;
    }
    n_shards = n_blobs;
    bufs = LFM2__CAST(lfm2_buffer *, lfm2__calloc(&a, sizeof(lfm2_buffer) * LFM2__CAST(size_t, n_shards)));
    if (!bufs) { rc = lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
    for (i = 0; i < n_shards; i++) {
        bufs[i].data = blobs[i].data;
        bufs[i].size = blobs[i].size;
        bufs[i].name = blobs[i].name;
    }
    memset(&src, 0, sizeof src);
    src.config_json = LFM2__CAST(const char *, cfg.data);
    src.config_json_size = cfg.size;
    src.safetensors = bufs;
    src.n_safetensors = n_shards;
    src.tokenizer_json = LFM2__CAST(const char *, tok.data);
    src.tokenizer_json_size = tok.size;
    src.tokenizer_config_json = LFM2__CAST(const char *, tokcfg.data);
    src.tokenizer_config_json_size = tokcfg.size;
    src.generation_config_json = LFM2__CAST(const char *, gen.data);
    src.generation_config_json_size = gen.size;
    rc = lfm2__model_build(&src, p, blobs, n_blobs, out);   /* owns blobs from here on */
    blobs = NULL;
    n_blobs = 0;
    if (rc == LFM2_OK && wm >= 0) {
        /* every tensor the index names must be in the shard it names */
        for (k = 0, i = wm + 1; k < ij.tok[wm].n && rc == LFM2_OK; k++, i = ij.tok[i + 1].skip) {
            char tname[256], fname[64];
            int64_t tl, fl;
            const lfm2__tensor *t;
            if (ij.tok[i].end - ij.tok[i].start >= sizeof tname) { rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json: tensor name %d too long", k); break; }
            tl = lfm2__json_str(&ij, i, tname);
            tname[tl] = 0;
            fl = lfm2__json_str(&ij, i + 1, fname);
            fname[fl] = 0;
            t = lfm2__model_find(*out, tname);
            if (!t) rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json names tensor \"%s\" in %s, but no shard has it", tname, fname);
            else if (strcmp((*out)->shard_names[t->file], fname) != 0)
                rc = lfm2__fail(err, LFM2_ERR_BAD_WEIGHTS, "model.safetensors.index.json puts tensor \"%s\" in %s, but it is in %s", tname, fname, (*out)->shard_names[t->file]);
        }
        if (rc != LFM2_OK) { lfm2_model_free(*out); *out = NULL; }
    }
done:
    lfm2__json_free(&ij, &a);
    lfm2__free(&a, bufs);
    lfm2__blobs_free(&a, blobs, n_blobs);
    lfm2__free(&a, cfg.data);
    lfm2__free(&a, gen.data);
    lfm2__free(&a, index.data);
    /* the tokenizer copies what it needs at load */
    lfm2__free(&a, tok.data);
    lfm2__free(&a, tokcfg.data);
    return rc;
}
#endif /* LFM2_NO_STDIO */

LFM2_API void lfm2_model_free(lfm2_model *m) { lfm2__model_destroy(m); }
LFM2_API const lfm2_config *lfm2_model_config(const lfm2_model *m) { return m ? &m->cfg : NULL; }
LFM2_API int32_t lfm2_model_tensor_count(const lfm2_model *m) { return m ? m->n_tensors : 0; }
LFM2_API lfm2_result lfm2_model_tensor_info(const lfm2_model *m, int32_t i, lfm2_tensor_info *out) {
    const lfm2__tensor *t;
    int32_t d;
    if (!m || !out || i < 0 || i >= m->n_tensors) return LFM2_ERR_INVALID_ARG;
    t = m->by_name[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = lfm2__dtype_name[t->dtype];
    out->n_dims = t->ndim;
    for (d = 0; d < t->ndim && d < 4; d++) out->shape[d] = t->shape[d];
    out->n_bytes = t->nbytes;
    out->file = m->shard_names[t->file];
    out->file_offset = t->offset;
    return LFM2_OK;
}

/* >>context -------------------------------------------------------------------------------- */

typedef struct lfm2__layout {
    size_t total;
    size_t off[32];
    int n;
} lfm2__layout;

/* Appends n floats at 64-byte alignment; returns 0 on overflow. */
static int lfm2__lay(lfm2__layout *l, size_t n_floats) {
    size_t bytes, start;
    if (!lfm2__mul_ok(n_floats, sizeof(float), &bytes)) return 0;
    start = (l->total + 63) & ~LFM2__CAST(size_t, 63);
    if (start < l->total || !lfm2__add_ok(start, bytes, &l->total)) return 0;
    l->off[l->n++] = start;
    return 1;
}

/* Appends a * b * c floats (overflow-checked). */
static int lfm2__lay3(lfm2__layout *l, size_t a, size_t b, size_t c) {
    size_t ab, abc;
    return lfm2__mul_ok(a, b, &ab) && lfm2__mul_ok(ab, c, &abc) && lfm2__lay(l, abc);
}

static int lfm2__context_layout(const lfm2_config *c, int32_t n_ctx, int32_t B, lfm2__layout *l) {
    size_t D = LFM2__CAST(size_t, c->hidden_size), Bz = LFM2__CAST(size_t, B), F = LFM2__CAST(size_t, c->ff_dim);
    size_t hd = LFM2__CAST(size_t, c->head_dim), qd = LFM2__CAST(size_t, c->num_attention_heads) * hd;
    size_t kvd = LFM2__CAST(size_t, c->num_key_value_heads) * hd, L1 = LFM2__CAST(size_t, c->conv_L_cache - 1);
    size_t yd = D > qd ? D : qd, nctx = LFM2__CAST(size_t, n_ctx);
    size_t KI = LFM2__CAST(size_t, c->num_experts_per_tok) * LFM2__CAST(size_t, c->moe_intermediate_size), Fg = F > KI ? F : KI;
    size_t KD = LFM2__CAST(size_t, c->num_experts_per_tok) * D, qa = (D > Fg ? D : Fg) > qd ? (D > Fg ? D : Fg) : qd;
    size_t Ez = LFM2__CAST(size_t, c->num_experts), Kz = LFM2__CAST(size_t, c->num_experts_per_tok);
    int ok = 1;
    if (KD > qa) qa = KD;
    memset(l, 0, sizeof *l);
    l->total = 64; /* room to align the block itself */
    ok &= lfm2__lay3(l, Bz, D, 1);              /* 0 x  */
    ok &= lfm2__lay3(l, Bz, D, 1);              /* 1 xb */
    ok &= lfm2__lay3(l, Bz, D, 3);              /* 2 zb */
    ok &= lfm2__lay3(l, L1 + Bz, D, 1);         /* 3 win */
    ok &= lfm2__lay3(l, Bz, qd, 1);             /* 4 qb */
    ok &= lfm2__lay3(l, Bz, kvd, 1);            /* 5 kb */
    ok &= lfm2__lay3(l, Bz, kvd, 1);            /* 6 vb */
    ok &= lfm2__lay3(l, Bz, yd, 1);             /* 7 yb */
    ok &= lfm2__lay3(l, Bz, D, 1);              /* 8 ob */
    ok &= lfm2__lay3(l, Bz, Fg, 1);             /* 9 gb */
    ok &= lfm2__lay3(l, Bz, Fg, 1);             /* 10 ub */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->num_attention_heads), nctx, 1);          /* 11 att */
    ok &= lfm2__lay3(l, Bz, hd / 2, 1);         /* 12 rope_cos */
    ok &= lfm2__lay3(l, Bz, hd / 2, 1);         /* 13 rope_sin */
    ok &= lfm2__lay3(l, hd / 2, 1, 1);          /* 14 inv_freq */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->vocab_size), 1, 1);                      /* 15 logits */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->n_conv_layers), L1, D);                  /* 16 conv_state */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->n_attention_layers), nctx, kvd);         /* 17 k_cache */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->n_attention_layers), nctx, kvd);         /* 18 v_cache */
    ok &= lfm2__lay3(l, Bz, qa, 1);             /* 19 qa (3 bytes per column <= 1 float) */
    ok &= lfm2__lay3(l, LFM2__CAST(size_t, c->n_conv_layers), L1, D);                  /* 20 conv_saved */
    ok &= lfm2__lay3(l, Bz, Ez, 1);             /* 21 moe_logits */
    ok &= lfm2__lay3(l, Bz, Kz, 1);             /* 22 moe_w */
    ok &= lfm2__lay3(l, Bz, Kz, 1);             /* 23 moe_sel */
    ok &= lfm2__lay3(l, Bz, Kz, 1);             /* 24 moe_row */
    ok &= lfm2__lay3(l, 2 * Ez + 1, 1, 1);      /* 25 moe_cnt */
    ok &= lfm2__lay3(l, Bz, KD, 1);             /* 26 moe_x */
    ok &= lfm2__lay3(l, Bz, KD, 1);             /* 27 moe_y */
    return ok;
}

static int32_t lfm2__default_ctx(const lfm2_config *c) {
    return c->max_position_embeddings < LFM2__DEFAULT_CTX ? c->max_position_embeddings : LFM2__DEFAULT_CTX;
}

LFM2_API lfm2_result lfm2_context_create(const lfm2_model *m, const lfm2_context_params *p, lfm2_context **out) {
    lfm2_error *err = p ? p->error : NULL;
    lfm2_allocator a;
    lfm2__layout l;
    lfm2_context *c;
    int32_t n_ctx, B, i, half;
    unsigned char *base;
    if (!out) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_context_create: out is NULL");
    *out = NULL;
    if (!m) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_context_create: model is NULL");
    memset(&a, 0, sizeof a);
    if (p) {
        if ((!p->allocator.alloc) != (!p->allocator.free)) return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "allocator: set both alloc and free, or neither");
        a = p->allocator;
    }
    n_ctx = (p && p->n_ctx > 0) ? p->n_ctx : lfm2__default_ctx(&m->cfg);
    B = (p && p->n_batch > 0) ? p->n_batch : LFM2__DEFAULT_BATCH;
    if ((p && (p->n_ctx < 0 || p->n_batch < 0)) || n_ctx > (1 << 24) || B > 65536)
        return lfm2__fail(err, LFM2_ERR_INVALID_ARG, "lfm2_context_create: n_ctx must be in [0, 16777216], n_batch in [0, 65536]");
    if (B > n_ctx) B = n_ctx;
    if (!lfm2__context_layout(&m->cfg, n_ctx, B, &l))
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "context of n_ctx %d does not fit in the address space", n_ctx);
    c = LFM2__CAST(lfm2_context *, lfm2__calloc(&a, sizeof *c));
    if (!c) return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory for the context");
    c->block = lfm2__malloc(&a, l.total);
    if (!c->block) {
        lfm2__free(&a, c);
        return lfm2__fail(err, LFM2_ERR_OUT_OF_MEMORY, "out of memory: the context needs %zu bytes (n_ctx %d)", l.total, n_ctx);
    }
    base = LFM2__CAST(unsigned char *, c->block);
    base += (64 - (LFM2__PTRINT(base) & 63)) & 63;
#define LFM2__AT(k) LFM2__CAST(float *, LFM2__CAST(void *, base + l.off[k] - 64))
    c->x = LFM2__AT(0); c->xb = LFM2__AT(1); c->zb = LFM2__AT(2); c->win = LFM2__AT(3);
    c->qb = LFM2__AT(4); c->kb = LFM2__AT(5); c->vb = LFM2__AT(6); c->yb = LFM2__AT(7); c->ob = LFM2__AT(8);
    c->gb = LFM2__AT(9); c->ub = LFM2__AT(10); c->att = LFM2__AT(11); c->rope_cos = LFM2__AT(12); c->rope_sin = LFM2__AT(13);
    c->inv_freq = LFM2__AT(14); c->logits = LFM2__AT(15); c->conv_state = LFM2__AT(16); c->k_cache = LFM2__AT(17); c->v_cache = LFM2__AT(18);
    c->qa = LFM2__CAST(unsigned char *, LFM2__CAST(void *, LFM2__AT(19)));
    c->qa_size = l.off[20] - l.off[19];
    c->conv_saved = LFM2__AT(20);
    c->moe_logits = LFM2__AT(21); c->moe_w = LFM2__AT(22);
    c->moe_sel = LFM2__CAST(int32_t *, LFM2__CAST(void *, LFM2__AT(23)));
    c->moe_row = LFM2__CAST(int32_t *, LFM2__CAST(void *, LFM2__AT(24)));
    c->moe_cnt = LFM2__CAST(int32_t *, LFM2__CAST(void *, LFM2__AT(25)));
    c->moe_x = LFM2__AT(26); c->moe_y = LFM2__AT(27);
#undef LFM2__AT
    c->m = m;
    c->alloc = a;
    c->n_ctx = n_ctx;
    c->n_batch = B;
    c->bf16_act = (p && p->bf16_activations) ? 1 : 0;
    c->threading = p ? p->threading : 0;
    {
        lfm2_result rc = lfm2__workers_init(&c->W, p ? p->n_threads : 0, c->threading, p ? &p->parallel : NULL, &a, err);
        if (rc != LFM2_OK) {
            lfm2__free(&a, c->block);
            lfm2__free(&a, c);
            return rc;
        }
    }
    /* inv_freq[i] = 1 / theta^(2i/hd), rounded to f32 as transformers computes it */
    half = m->cfg.head_dim / 2;
    for (i = 0; i < half; i++) {
        float e = LFM2__CAST(float, 2 * i) / LFM2__CAST(float, m->cfg.head_dim);
        float pw = LFM2__CAST(float, pow(m->cfg.rope_theta, LFM2__CAST(double, e)));
        c->inv_freq[i] = 1.0f / pw;
    }
    lfm2_context_reset(c);
    *out = c;
    return LFM2_OK;
}

LFM2_API void lfm2_context_free(lfm2_context *c) {
    lfm2_allocator a;
    if (!c) return;
    a = c->alloc;
    lfm2__workers_free(&c->W);
    lfm2__free(&a, c->block);
    lfm2__free(&a, c);
}

LFM2_API void lfm2_context_reset(lfm2_context *c) {
    const lfm2_config *cf;
    if (!c) return;
    cf = &c->m->cfg;
    c->pos = 0;
    c->has_logits = 0;
    c->err[0] = 0;
    /* the conv state starts at zero (= zero left padding); the KV cache needs no clearing */
    memset(c->conv_state, 0, sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * LFM2__CAST(size_t, cf->hidden_size));
}

LFM2_API int32_t lfm2_context_pos(const lfm2_context *c) { return c ? c->pos : 0; }
LFM2_API int32_t lfm2_context_n_ctx(const lfm2_context *c) { return c ? c->n_ctx : 0; }
LFM2_API const char *lfm2_context_error(const lfm2_context *c) { return c ? c->err : "context is NULL"; }
LFM2_API const lfm2_model *lfm2_context_model(const lfm2_context *c) { return c ? c->m : NULL; }
static lfm2_result lfm2__context_fail(lfm2_context *c, lfm2_result rc, const char *fmt, ...);
LFM2_API lfm2_result lfm2_context_set_threads(lfm2_context *c, int32_t n_threads) {
    lfm2__workers nw;
    lfm2_error e;
    lfm2_parallel hook;
    lfm2_result rc;
    if (!c) return LFM2_ERR_INVALID_ARG;
    hook = c->W.hook;
    if (c->W.backend != LFM2__RUN_HOOK) hook.run = NULL;
    rc = lfm2__workers_init(&nw, n_threads, c->threading, &hook, &c->alloc, &e);
    if (rc != LFM2_OK) return lfm2__context_fail(c, rc, "set_threads: %s", e.message);
    lfm2__workers_free(&c->W);
    c->W = nw;
    return LFM2_OK;
}
LFM2_API int32_t lfm2_context_threads(const lfm2_context *c) { return c ? c->W.n : 0; }
LFM2_API void lfm2_context_set_abort(lfm2_context *c, int (*abort_fn)(void *user), void *user) {
    if (!c) return;
    c->abort_fn = abort_fn;
    c->abort_user = user;
}

static lfm2_result lfm2__context_fail(lfm2_context *c, lfm2_result rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Shared by decode, decode_all and lfm2_generate: checks, then chunks of n_batch tokens. Polls the
   context's abort callback and gen_abort (lfm2_generate's should_abort, may be NULL) before every
   layer of every chunk when poll is set; an aborted chunk is undone, the chunks before it stay. */
static lfm2_result lfm2__decode(lfm2_context *c, const lfm2_token *tokens, int32_t n, float *all, int poll,
                                int (*gen_abort)(void *user), void *gen_user) {
    int32_t i, V;
    lfm2__abort ab;
    if (!c) return LFM2_ERR_INVALID_ARG;
    c->err[0] = 0;
    ab.fn[0] = c->abort_fn; ab.user[0] = c->abort_user;
    ab.fn[1] = gen_abort; ab.user[1] = gen_user;
    if (!tokens || n < 1) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "decode: need at least one token (n = %d)", n);
    V = c->m->cfg.vocab_size;
    for (i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "decode: token %d at index %d is outside the vocabulary [0, %d)", tokens[i], i, V);
    if (n > c->n_ctx - c->pos)
        return lfm2__context_fail(c, LFM2_ERR_CONTEXT_FULL, "decode: %d tokens do not fit: position %d of n_ctx %d", n, c->pos, c->n_ctx);
    for (i = 0; i < n; i += c->n_batch) {
        int32_t T = (n - i < c->n_batch) ? n - i : c->n_batch;
        const lfm2__abort *abp = (poll && (ab.fn[0] || ab.fn[1])) ? &ab : NULL;
        if (lfm2__forward(c, tokens + i, T, all ? all + LFM2__CAST(size_t, i) * LFM2__CAST(size_t, V) : NULL, abp)) {
            c->has_logits = 0;
            return lfm2__context_fail(c, LFM2_ERR_ABORTED, "decode: aborted by the callback at position %d (%d of the %d tokens decoded)", c->pos, i, n);
        }
    }
    if (all) memcpy(c->logits, all + LFM2__CAST(size_t, n - 1) * LFM2__CAST(size_t, V), sizeof(float) * LFM2__CAST(size_t, V));
    c->has_logits = 1;
    return LFM2_OK;
}

LFM2_API lfm2_result lfm2_context_decode(lfm2_context *c, const lfm2_token *tokens, int32_t n, const float **logits) {
    lfm2_result rc = lfm2__decode(c, tokens, n, NULL, 1, NULL, NULL);
    if (logits) *logits = (rc == LFM2_OK) ? c->logits : NULL;
    return rc;
}
LFM2_API lfm2_result lfm2_context_decode_all(lfm2_context *c, const lfm2_token *tokens, int32_t n, float *out) {
    if (c && !out) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "decode_all: out is NULL");
    return lfm2__decode(c, tokens, n, out, 1, NULL, NULL);
}
/* lfm2_generate's decodes: the prompt polls both abort callbacks, a generated token neither (it
   has been shown to the caller already, so it must enter the context). */
static lfm2_result lfm2__generate_decode(lfm2_context *c, const lfm2_token *tokens, int32_t n, int prompt,
                                         int (*should_abort)(void *user), void *user, const float **logits) {
    lfm2_result rc = lfm2__decode(c, tokens, n, NULL, prompt, prompt ? should_abort : NULL, user);
    *logits = (rc == LFM2_OK) ? c->logits : NULL;
    return rc;
}
LFM2_API const float *lfm2_context_logits(const lfm2_context *c) { return (c && c->has_logits) ? c->logits : NULL; }

/* >>state ---------------------------------------------------------------------------------- */
/* Snapshot layout (native endianness, floats as stored):
     u32 magic 'L','F','M','2' | u32 version 2 | u32 n_layers, hidden, L, n_attn, kv_dim, vocab, pos, has_logits,
     fingerprint low, high (lfm2__model_fingerprint)
     conv states [n_conv][L-1][D] | per attention layer: K [pos][kv_dim], V [pos][kv_dim] | logits [V] if has_logits */
#define LFM2__STATE_MAGIC 0x324d464cu
#define LFM2__STATE_VERSION 2u
#define LFM2__STATE_HDR 12

static size_t lfm2__state_bytes(const lfm2_config *cf, int32_t pos, int32_t has_logits) {
    size_t kvd = LFM2__CAST(size_t, cf->num_key_value_heads) * LFM2__CAST(size_t, cf->head_dim);
    size_t n = LFM2__STATE_HDR * sizeof(uint32_t);
    n += sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * LFM2__CAST(size_t, cf->hidden_size);
    n += sizeof(float) * 2 * LFM2__CAST(size_t, cf->n_attention_layers) * LFM2__CAST(size_t, pos) * kvd;
    if (has_logits) n += sizeof(float) * LFM2__CAST(size_t, cf->vocab_size);
    return n;
}
LFM2_API size_t lfm2_context_state_size(const lfm2_context *c) {
    return c ? lfm2__state_bytes(&c->m->cfg, c->pos, c->has_logits) : 0;
}
static void lfm2__state_header(const lfm2_context *c, int32_t pos, int32_t has_logits, uint32_t *h) {
    const lfm2_config *cf = &c->m->cfg;
    h[0] = LFM2__STATE_MAGIC; h[1] = LFM2__STATE_VERSION;
    h[2] = LFM2__CAST(uint32_t, cf->num_hidden_layers); h[3] = LFM2__CAST(uint32_t, cf->hidden_size);
    h[4] = LFM2__CAST(uint32_t, cf->conv_L_cache); h[5] = LFM2__CAST(uint32_t, cf->n_attention_layers);
    h[6] = LFM2__CAST(uint32_t, cf->num_key_value_heads * cf->head_dim); h[7] = LFM2__CAST(uint32_t, cf->vocab_size);
    h[8] = LFM2__CAST(uint32_t, pos); h[9] = LFM2__CAST(uint32_t, has_logits);
    h[10] = LFM2__CAST(uint32_t, c->m->fingerprint & 0xffffffffu); h[11] = LFM2__CAST(uint32_t, c->m->fingerprint >> 32);
}
LFM2_API lfm2_result lfm2_context_state_save(const lfm2_context *c, void *buf, size_t cap, size_t *n_written) {
    const lfm2_config *cf;
    size_t need, kvd, conv, rows, o;
    unsigned char *p = LFM2__CAST(unsigned char *, buf);
    uint32_t h[LFM2__STATE_HDR];
    int32_t a;
    if (n_written) *n_written = 0;
    if (!c || (!buf && (cap > 0 || !n_written))) return LFM2_ERR_INVALID_ARG;
    cf = &c->m->cfg;
    need = lfm2__state_bytes(cf, c->pos, c->has_logits);
    if (n_written) *n_written = need;
    if (!buf) return LFM2_OK; /* size query */
    if (cap < need) return LFM2_ERR_BUFFER_TOO_SMALL;
    lfm2__state_header(c, c->pos, c->has_logits, h);
    memcpy(p, h, sizeof h);
    o = sizeof h;
    conv = sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * LFM2__CAST(size_t, cf->hidden_size);
    memcpy(p + o, c->conv_state, conv);
    o += conv;
    kvd = LFM2__CAST(size_t, cf->num_key_value_heads) * LFM2__CAST(size_t, cf->head_dim);
    rows = sizeof(float) * LFM2__CAST(size_t, c->pos) * kvd;
    for (a = 0; a < cf->n_attention_layers; a++) {
        size_t off = LFM2__CAST(size_t, a) * LFM2__CAST(size_t, c->n_ctx) * kvd;
        memcpy(p + o, c->k_cache + off, rows); o += rows;
        memcpy(p + o, c->v_cache + off, rows); o += rows;
    }
    if (c->has_logits) memcpy(p + o, c->logits, sizeof(float) * LFM2__CAST(size_t, cf->vocab_size));
    return LFM2_OK;
}
LFM2_API lfm2_result lfm2_context_state_load(lfm2_context *c, const void *buf, size_t size) {
    const lfm2_config *cf;
    const unsigned char *p = LFM2__CAST(const unsigned char *, buf);
    uint32_t h[LFM2__STATE_HDR], want[LFM2__STATE_HDR];
    size_t kvd, conv, rows, o;
    int32_t a, k, pos, has_logits;
    static const char *const field[8] = {"magic", "format version", "num_hidden_layers", "hidden_size", "conv_L_cache",
                                         "attention layers", "kv width", "vocab_size"};
    if (!c) return LFM2_ERR_INVALID_ARG;
    c->err[0] = 0;
    cf = &c->m->cfg;
    if (!buf || size < sizeof h) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "state_load: %zu bytes is too small for a state", size);
    memcpy(h, p, sizeof h);
    pos = LFM2__CAST(int32_t, h[8] & 0x7fffffffu);
    has_logits = h[9] ? 1 : 0;
    lfm2__state_header(c, pos, has_logits, want);
    if (h[0] != want[0]) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "state_load: not an lfm2.h state (magic 0x%08x)", h[0]);
    for (k = 1; k < 8; k++)
        if (h[k] != want[k]) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "state_load: the state's %s is %u, this model's is %u", field[k], h[k], want[k]);
    if (h[10] != want[10] || h[11] != want[11])
        return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "state_load: the state was saved from another model with the same shapes (fingerprint %08x%08x, this model %08x%08x: other weights, dtypes or load-time quantization)",
                                  h[11], h[10], want[11], want[10]);
    if (h[8] > LFM2__CAST(uint32_t, c->n_ctx)) return lfm2__context_fail(c, LFM2_ERR_CONTEXT_FULL, "state_load: the state holds %u tokens, n_ctx is %d", h[8], c->n_ctx);
    if (size != lfm2__state_bytes(cf, pos, has_logits)) return lfm2__context_fail(c, LFM2_ERR_INVALID_ARG, "state_load: %zu bytes, expected %zu", size, lfm2__state_bytes(cf, pos, has_logits));
    o = sizeof h;
    conv = sizeof(float) * LFM2__CAST(size_t, cf->n_conv_layers) * LFM2__CAST(size_t, cf->conv_L_cache - 1) * LFM2__CAST(size_t, cf->hidden_size);
    memcpy(c->conv_state, p + o, conv);
    o += conv;
    kvd = LFM2__CAST(size_t, cf->num_key_value_heads) * LFM2__CAST(size_t, cf->head_dim);
    rows = sizeof(float) * LFM2__CAST(size_t, pos) * kvd;
    for (a = 0; a < cf->n_attention_layers; a++) {
        size_t off = LFM2__CAST(size_t, a) * LFM2__CAST(size_t, c->n_ctx) * kvd;
        memcpy(c->k_cache + off, p + o, rows); o += rows;
        memcpy(c->v_cache + off, p + o, rows); o += rows;
    }
    if (has_logits) memcpy(c->logits, p + o, sizeof(float) * LFM2__CAST(size_t, cf->vocab_size));
    c->pos = pos;
    c->has_logits = has_logits;
    return LFM2_OK;
}

/* >>public --------------------------------------------------------------------------------- */

LFM2_API const char *lfm2_result_string(lfm2_result r) {
    switch (r) {
    case LFM2_OK: return "ok";
    case LFM2_ERR_INVALID_ARG: return "invalid argument";
    case LFM2_ERR_OUT_OF_MEMORY: return "out of memory";
    case LFM2_ERR_IO: return "file error";
    case LFM2_ERR_BAD_CONFIG: return "bad config.json";
    case LFM2_ERR_BAD_WEIGHTS: return "bad safetensors weights";
    case LFM2_ERR_BAD_TOKENIZER: return "bad tokenizer";
    case LFM2_ERR_UNSUPPORTED: return "unsupported";
    case LFM2_ERR_CONTEXT_FULL: return "context full";
    case LFM2_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case LFM2_ERR_ABORTED: return "aborted";
    case LFM2_ERR_BAD_LOGITS: return "bad logits (NaN, all -inf, or +inf when sampling)";
    }
    return "unknown error";
}
LFM2_API const char *lfm2_version_string(void) { return LFM2_VERSION_STRING; }
/* the kernels compiled in, for lfm2_build_info */
#define LFM2__KINFO_AVX2 ""
#define LFM2__KINFO_AVX512 ""
#define LFM2__KINFO_NEON ""
#ifdef LFM2__HAVE_AVX2
#undef LFM2__KINFO_AVX2
#define LFM2__KINFO_AVX2 " AVX2"
#endif
#ifdef LFM2__HAVE_AVX512
#undef LFM2__KINFO_AVX512
#define LFM2__KINFO_AVX512 " AVX512 AVX512_VNNI AVX512_BF16"
#endif
#if defined(LFM2__HAVE_NEON) && defined(LFM2__HAVE_NEON_BF16) && defined(LFM2__HAVE_NEON_DOT) && defined(LFM2__HAVE_NEON_I8MM)
#undef LFM2__KINFO_NEON
#define LFM2__KINFO_NEON " NEON NEON_DOTPROD NEON_BF16 NEON_I8MM"
#elif defined(LFM2__HAVE_NEON) && defined(LFM2__HAVE_NEON_BF16) && defined(LFM2__HAVE_NEON_DOT)
#undef LFM2__KINFO_NEON
#define LFM2__KINFO_NEON " NEON NEON_DOTPROD NEON_BF16"
#elif defined(LFM2__HAVE_NEON) && defined(LFM2__HAVE_NEON_DOT)
#undef LFM2__KINFO_NEON
#define LFM2__KINFO_NEON " NEON NEON_DOTPROD"
#elif defined(LFM2__HAVE_NEON)
#undef LFM2__KINFO_NEON
#define LFM2__KINFO_NEON " NEON"
#endif
#if defined(LFM2__HAVE_NEON32)
#undef LFM2__KINFO_NEON
#define LFM2__KINFO_NEON " NEON(armv7)"
#endif
#define LFM2__KINFO_WASM ""
#ifdef LFM2__HAVE_WASM
#undef LFM2__KINFO_WASM
#define LFM2__KINFO_WASM " WASM_SIMD128"
#endif
#if defined(LFM2__OPENMP) && defined(LFM2__HAVE_POOL)
#define LFM2__TINFO "; threads POOL OPENMP"
#elif defined(LFM2__OPENMP)
#define LFM2__TINFO "; threads OPENMP"
#elif defined(LFM2__HAVE_POOL)
#define LFM2__TINFO "; threads POOL"
#else
#define LFM2__TINFO "; threads none"
#endif
#define LFM2__KINFO "kernels SCALAR" LFM2__KINFO_AVX2 LFM2__KINFO_AVX512 LFM2__KINFO_NEON LFM2__KINFO_WASM "; cpu "
LFM2_API const char *lfm2_build_info(void) {
    static const char *const info[LFM2_ISA_COUNT] = {
        LFM2__KINFO "?" LFM2__TINFO, LFM2__KINFO "SCALAR" LFM2__TINFO, LFM2__KINFO "AVX2" LFM2__TINFO, LFM2__KINFO "AVX512" LFM2__TINFO,
        LFM2__KINFO "AVX512_VNNI" LFM2__TINFO, LFM2__KINFO "AVX512_BF16" LFM2__TINFO, LFM2__KINFO "NEON" LFM2__TINFO,
        LFM2__KINFO "NEON_DOTPROD" LFM2__TINFO, LFM2__KINFO "NEON_BF16" LFM2__TINFO, LFM2__KINFO "WASM_SIMD128" LFM2__TINFO,
        LFM2__KINFO "NEON_I8MM" LFM2__TINFO};
    return info[lfm2__detect_isa()];
}
LFM2_API const char *lfm2_isa_name(lfm2_isa isa) {
    return (isa > LFM2_ISA_AUTO && isa < LFM2_ISA_COUNT) ? lfm2__isa_names[isa] : "?";
}
LFM2_API lfm2_isa lfm2_cpu_isa(void) { return LFM2__CAST(lfm2_isa, lfm2__detect_isa()); }
LFM2_API lfm2_isa lfm2_model_isa(const lfm2_model *m) { return m ? LFM2__CAST(lfm2_isa, m->isa) : LFM2_ISA_AUTO; }
LFM2_API lfm2_token lfm2_argmax(const float *logits, int32_t n) {
    int32_t i, best = 0;
    if (!logits || n < 1) return -1;
    for (i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
}


#ifdef LFM2__GCC_PR105593
#pragma GCC diagnostic pop
#endif
#endif /* LFM2_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the lfm2.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
