# lfm2.h - build and test.   make | make test | make run | make sanitize | make matrix | make clean
CC      ?= cc
CXX     ?= c++
OPT     ?= -O2
NATIVE  ?= -O2 -march=native
WARN    := -Wall -Wextra -Werror
OMP     ?= -fopenmp
CFLAGS  := $(OPT) $(WARN) -std=c99 -pedantic $(OMP)
LDLIBS  := -lm
B       := build

HDR := lfm2.h
TEST_SRC := tests/run_tests.c tests/test.h tests/t_files.h tests/load_one.h $(wildcard tests/test_*.c) tools/lfm2_chat_json.h

.PHONY: all test unit matrix sanitize run clean cli-test simd-variants isa-levels neon platforms

all: $(B)/run_tests $(B)/lfm2 tools

$(B):
	@mkdir -p $(B)

$(B)/run_tests: $(TEST_SRC) $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tests/run_tests.c $(LDLIBS) -lpthread

$(B)/lfm2: examples/lfm2.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ examples/lfm2.c $(LDLIBS)

$(B)/lfm2-inspect: tools/lfm2-inspect.c tools/lfm2_digest.h $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tools/lfm2-inspect.c $(LDLIBS)

# --- the test command of the README and of CI ------------------------------------------------
# The stages are independent (each test run makes its own scratch folder). Valgrind, the longest
# (one thread), starts first, in the background; the other stages run TEST_JOBS at a time beside
# it, each stage's output printed whole when it ends (--output-sync), Valgrind's at the end; the
# total time is printed. Valgrind, the emulators and the compiles are single-threaded, so running
# stages side by side is what keeps CI well inside its time. `make -j1 test-stages` runs every
# stage one after another.
TEST_JOBS ?= 2
STAGES := neon fuzz platforms wasm unit matrix sanitize cli-test simd-variants fuzz-replay tsan
test: | $(B)
	@start=$$(date +%s); \
	  $(MAKE) --no-print-directory valgrind > $(B)/valgrind-stage.log 2>&1 & vg=$$!; \
	  $(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target $(STAGES); rc=$$?; \
	  wait $$vg; vrc=$$?; echo "== valgrind (run beside the other stages)"; cat $(B)/valgrind-stage.log; \
	  [ $$rc = 0 ] || { echo "make test: a stage FAILED"; exit 1; }; \
	  [ $$vrc = 0 ] || { echo "make test: valgrind FAILED"; exit 1; }; \
	  echo "make test: all stages passed in $$(( $$(date +%s) - start )) s"
.PHONY: test-stages
test-stages: valgrind $(STAGES)

unit: $(B)/run_tests
	./$(B)/run_tests

cli-test: $(B)/lfm2 $(B)/lfm2-inspect $(B)/lfm2-quantize $(B)/make_odd_model $(B)/make-random-model
	sh tests/cli_test.sh $(B)

# a model folder with tensors that are hard to write back (tests/quantize_test.sh)
$(B)/make_odd_model: tests/make_odd_model.c $(HDR) | $(B)
	$(CC) -O1 $(WARN) -std=c99 -pedantic -o $@ tests/make_odd_model.c $(LDLIBS)

# compile matrix: C99 pedantic, C++11, C++17, LFM2_STATIC, two translation units (also with
# different LFM2_MAX_LAYERS, under ASan), with and without OpenMP, scalar only
matrix: | $(B)
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic          -c tests/compile_c.c   -o $(B)/m_c99.o
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic -fopenmp -c tests/compile_c.c   -o $(B)/m_c99_omp.o
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic -DLFM2_NO_SIMD -c tests/compile_c.c -o $(B)/m_c99_scalar.o
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic -DLFM2_NO_STDIO -c tests/compile_c.c -o $(B)/m_c99_nostdio.o
	$(CXX) $(OPT) $(WARN) -std=c++11 -pedantic        -c tests/compile_cpp.cpp -o $(B)/m_cpp11.o
	$(CXX) $(OPT) $(WARN) -std=c++17 -pedantic -fopenmp -c tests/compile_cpp.cpp -o $(B)/m_cpp17_omp.o
	$(CXX) $(OPT) $(WARN) -std=c++17 -pedantic        -c tests/compile_cpp.cpp -o $(B)/m_cpp17.o
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic -o $(B)/m_static tests/compile_static.c $(LDLIBS) && ./$(B)/m_static
	$(CC)  $(OPT) $(WARN) -std=c99 -pedantic -o $(B)/m_two_tu tests/two_tu_a.c tests/two_tu_b.c $(LDLIBS) && ./$(B)/m_two_tu
	$(CXX) $(OPT) $(WARN) -std=c++11 -o $(B)/m_two_tu_cpp -x c++ tests/two_tu_a.c -x c++ tests/two_tu_b.c $(LDLIBS) && ./$(B)/m_two_tu_cpp
	$(CC)  -O1 -g $(WARN) -std=c99 -pedantic -fsanitize=address,undefined -DLFM2_MAX_LAYERS=8 -c tests/two_tu_layers_a.c -o $(B)/m_tu_layers_a.o
	$(CC)  -O1 -g $(WARN) -std=c99 -pedantic -fsanitize=address,undefined -DLFM2_MAX_LAYERS=2 -c tests/two_tu_layers_b.c -o $(B)/m_tu_layers_b.o
	$(CC)  -fsanitize=address,undefined -o $(B)/m_two_tu_layers $(B)/m_tu_layers_a.o $(B)/m_tu_layers_b.o $(LDLIBS) && ./$(B)/m_two_tu_layers
	clang $(WARN) -O1 -std=c99 -pedantic -c tests/compile_c.c -o $(B)/m_clang.o
	@echo "compile matrix: ok"

# the unit suite under AddressSanitizer + UndefinedBehaviorSanitizer
sanitize: | $(B)
	$(CC) -O1 -g $(WARN) -std=c99 -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
	    -o $(B)/run_tests_asan tests/run_tests.c $(LDLIBS) -lpthread
	ASAN_OPTIONS=detect_leaks=1 ./$(B)/run_tests_asan

# One baseline binary (no -march: the kernels of every instruction set are compiled in and chosen
# at run time) runs the tests tagged T_ISA (goldens, every kernel against the scalar reference,
# threads, chunking, quantization) once per instruction-set level this CPU has, forced with
# LFM2_ISA (the statistical tests are left out at the scalar level: minutes); then the same tests
# built with -march=native, and the threading and emulation subsets built without OpenMP (the
# built-in pool, a caller's job system).
isa-levels: $(B)/run_tests | $(B)
	@for l in $$(./$(B)/run_tests --levels); do \
	  skip=""; [ "$$l" = SCALAR ] && skip="-@slow"; \
	  echo "== LFM2_ISA=$$l run_tests @isa $$skip"; \
	  LFM2_ISA=$$l ./$(B)/run_tests @isa $$skip > $(B)/isa-$$l.log 2>&1 || { tail -n 40 $(B)/isa-$$l.log; echo "level $$l: FAILED"; exit 1; }; \
	  tail -n 1 $(B)/isa-$$l.log; \
	done
simd-variants: isa-levels | $(B)
	$(CC) $(NATIVE) $(WARN) -std=c99 -pedantic $(OMP) -o $(B)/run_tests_native tests/run_tests.c $(LDLIBS) -lpthread
	./$(B)/run_tests_native @isa
	$(CC) $(OPT) $(WARN) -std=c99 -pedantic -o $(B)/run_tests_nomp tests/run_tests.c $(LDLIBS) -lpthread
	./$(B)/run_tests_nomp @threads @emu

# --- ARM and WebAssembly (helper "arm"; README "ARM and WebAssembly") ---------------------------
# NEON: one baseline aarch64 binary (no -march: the dot-product, bf16 and i8mm kernels are compiled
# in with target attributes and chosen from HWCAP at run time) under qemu-user as three CPUs:
# cortex-a72 (plain NEON: the sdot emulation), cortex-a76 (+dotprod), max (+dotprod +bf16 +i8mm:
# NEON_I8MM, whose usmmla Q8X / Q4X kernels the table test also requires bit-identical to the
# sdot ones). Each runs the emulation subset (@emu: goldens, every kernel-table entry of its level
# against the scalar reference, chunking, quantization, tokenizer); the level the CPU gets is
# checked (--levels); on max the override is checked too (LFM2_ISA=NEON_BF16, NEON_DOTPROD and
# NEON: the table at the lower levels); then a -march=armv8.6-a+bf16+dotprod+i8mm build (the
# features at compile time) runs the kernel tests. Packages gcc-aarch64-linux-gnu and qemu-user; skipped with a message when missing.
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_A64   := qemu-aarch64 -L /usr/aarch64-linux-gnu
neon: | $(B)
	@if command -v $(AARCH64_CC) >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; then \
	  set -e; \
	  $(AARCH64_CC) -O2 $(WARN) -std=c99 -pedantic -o $(B)/run_tests_neon tests/run_tests.c $(LDLIBS) -lpthread; \
	  for cl in cortex-a72:NEON cortex-a76:NEON_DOTPROD max:NEON_I8MM; do \
	    cpu=$${cl%%:*}; want=$${cl#*:}; \
	    got=$$($(QEMU_A64) -cpu $$cpu ./$(B)/run_tests_neon --levels | tail -n 1); \
	    [ "$$got" = "$$want" ] || { echo "neon: -cpu $$cpu detected $$got, want $$want"; exit 1; }; \
	    echo "== qemu-aarch64 -cpu $$cpu ($$got) run_tests_neon @emu"; \
	    $(QEMU_A64) -cpu $$cpu ./$(B)/run_tests_neon @emu > $(B)/neon-$$cpu.log 2>&1 || { tail -n 40 $(B)/neon-$$cpu.log; echo "neon -cpu $$cpu: FAILED"; exit 1; }; \
	    tail -n 1 $(B)/neon-$$cpu.log; \
	  done; \
	  for l in NEON_BF16 NEON_DOTPROD NEON; do \
	    echo "== qemu-aarch64 -cpu max LFM2_ISA=$$l run_tests_neon kernels/"; \
	    LFM2_ISA=$$l $(QEMU_A64) -cpu max ./$(B)/run_tests_neon kernels/ > $(B)/neon-max-$$l.log 2>&1 || { tail -n 40 $(B)/neon-max-$$l.log; exit 1; }; \
	    grep -q "level $$l: " $(B)/neon-max-$$l.log || { echo "LFM2_ISA=$$l: not the level run"; exit 1; }; \
	    tail -n 1 $(B)/neon-max-$$l.log; \
	  done; \
	  $(AARCH64_CC) -O2 -march=armv8.6-a+bf16+dotprod+i8mm $(WARN) -std=c99 -pedantic -o $(B)/run_tests_neon_bf16 tests/run_tests.c $(LDLIBS) -lpthread; \
	  echo "== qemu-aarch64 -cpu max run_tests_neon_bf16 (-march=armv8.6-a+bf16+i8mm) kernels/ golden"; \
	  $(QEMU_A64) -cpu max ./$(B)/run_tests_neon_bf16 kernels/ golden > $(B)/neon-bf16-march.log 2>&1 || { tail -n 40 $(B)/neon-bf16-march.log; exit 1; }; \
	  tail -n 1 $(B)/neon-bf16-march.log; \
	else echo "neon: SKIPPED ($(AARCH64_CC) or qemu-aarch64 missing: apt-get install gcc-aarch64-linux-gnu qemu-user)"; fi

# WebAssembly: the unit suite and the CLI for wasm32-wasi with Debian's clang, lld (wasm-ld),
# wasi-libc and libclang-rt-14-dev-wasm32, scalar and SIMD128 (-msimd128), run under Node's WASI
# (tests/wasi_run.mjs): the emulation subset (@emu), and the CLI on the demo model. The .wasm
# size is printed. Skipped with a message when a part is missing.
WASM_CC    ?= clang
WASM_FLAGS := --target=wasm32-wasi -O2 $(WARN) -std=c99 -pedantic -D_WASI_EMULATED_PROCESS_CLOCKS
WASM_LIBS  := -lm -lwasi-emulated-process-clocks
NODE       ?= node
WASM_OK := $(shell command -v $(WASM_CC) >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1 && [ -f /usr/lib/wasm32-wasi/libc.a ] && command -v $(NODE) >/dev/null 2>&1 && echo yes)
WASM_FLAGS_scalar  :=
WASM_FLAGS_simd128 := -msimd128
.PHONY: wasm wasm-scalar wasm-simd128
ifeq ($(WASM_OK),yes)
wasm: wasm-scalar wasm-simd128
	@cmp -s $(B)/wasm-cli-scalar.txt $(B)/wasm-cli-simd128.txt || echo "wasm: note: the scalar and SIMD128 CLI runs printed different text (float sums differ in the last bits)"
	@echo "wasm: CLI ok ($$(wc -c < $(B)/wasm-cli-simd128.txt) bytes of output)"
# one variant: the suite and the CLI built, the suite's @emu subset and the demo CLI run under Node
wasm-scalar wasm-simd128: wasm-%: | $(B)
	@set -e; n=$*; \
	$(WASM_CC) $(WASM_FLAGS) $(WASM_FLAGS_$*) -o $(B)/run_tests_$$n.wasm tests/run_tests.c $(WASM_LIBS); \
	$(WASM_CC) $(WASM_FLAGS) $(WASM_FLAGS_$*) -o $(B)/lfm2_$$n.wasm examples/lfm2.c $(WASM_LIBS); \
	echo "== node run_tests_$$n.wasm @emu ($$(wc -c < $(B)/run_tests_$$n.wasm) bytes; CLI lfm2_$$n.wasm $$(wc -c < $(B)/lfm2_$$n.wasm) bytes)"; \
	rc=0; $(NODE) --no-warnings tests/wasi_run.mjs $(B)/run_tests_$$n.wasm @emu > $(B)/wasm-$$n.log 2>&1 || rc=$$?; \
	if [ $$rc != 0 ] && { grep -q '^wasi_run: exit 0$$' $(B)/wasm-$$n.log || { [ $$rc = 139 ] && tail -n 3 $(B)/wasm-$$n.log | grep -Eq '^[0-9]+ passed, 0 failed'; }; }; then \
	  echo "wasm $$n: note: node exited with $$rc after the suite had finished with 0 failed (Node 20 crashes as the WASI program exits after long runs)"; rc=0; fi; \
	[ $$rc = 0 ] || { tail -n 40 $(B)/wasm-$$n.log; echo "wasm $$n: FAILED"; exit 1; }; \
	grep -q "kernels SCALAR" $(B)/wasm-$$n.log; tail -n 1 $(B)/wasm-$$n.log; \
	$(NODE) --no-warnings tests/wasi_run.mjs $(B)/lfm2_$$n.wasm -m models/demo-code-8m --raw -n 24 -s 3 -p "def fibonacci(n):" > $(B)/wasm-cli-$$n.txt 2>&1 || { cat $(B)/wasm-cli-$$n.txt; echo "wasm CLI $$n: FAILED"; exit 1; }
else
wasm wasm-scalar wasm-simd128:
	@echo "$@: SKIPPED (needs clang, lld, wasi-libc, libclang-rt-14-dev-wasm32, node)"
endif

# --- hardening: libFuzzer targets, regression replay, Valgrind, ThreadSanitizer ----------------
# (tests/fuzz/README.md: targets, seeds, what was run)
FUZZ_TARGETS := config safetensors safetensors_sharded safetensors_quant tokenizer_json tokenizer_config \
                tokenize detokenize chat decode
# --- chat (>>chat): the template renderer, the tool-call parser, the splitter ---------------------
FUZZ_TARGETS += chat_render tool_calls splitter
# the tool-loop example, and the chat part of the CLI test (tests/chat_cli_test.sh: the 42 golden
# renders through lfm2-inspect --chat, --parse-tool-calls, lfm2 --tools / --template / --reasoning)
$(B)/tool_loop: examples/tool_loop.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ examples/tool_loop.c $(LDLIBS) -lpthread
.PHONY: chat-cli-test
chat-cli-test: $(B)/lfm2 $(B)/lfm2-inspect $(B)/tool_loop
	sh tests/chat_cli_test.sh $(B)
cli-test: chat-cli-test
all: $(B)/tool_loop
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 60   # per input (s): a first input that loads a model runs beside other stages
FUZZ_JOBS ?= 2       # targets fuzzed at once (libFuzzer runs one thread each)
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -std=c99 -D_DEFAULT_SOURCE $(WARN)
FUZZ_DEPS    := tests/fuzz/fuzz_common.h tests/fuzz/fuzz_micro.h tests/load_one.h tests/fuzz/coverage_ignore.txt $(HDR)
REPLAY_SAN   := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
TEST_MAIN    ?= tests/run_tests.c
VG_ARCH      ?=

.PHONY: fuzz fuzz-build fuzz-replay valgrind tsan

$(B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) | $(B)
	$(FUZZ_CC) $(FUZZ_FLAGS) -march=native -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -fsanitize-coverage-ignorelist=tests/fuzz/coverage_ignore.txt $(FUZZ_COV_EXTRA) -o $@ $< $(LDLIBS)
$(B)/replay_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) | $(B)
	$(CC) $(FUZZ_FLAGS) -DFUZZ_REPLAY $(REPLAY_SAN) -o $@ $< $(LDLIBS)
$(B)/fuzz_tokenizer_config $(B)/replay_tokenizer_config: tests/fuzz/fuzz_tokenizer_json.c
$(B)/fuzz_tokenizer_config: tests/fuzz/coverage_ignore_tokenizer_config.txt
$(B)/fuzz_tokenizer_config: FUZZ_COV_EXTRA = -fsanitize-coverage-ignorelist=tests/fuzz/coverage_ignore_tokenizer_config.txt

fuzz-build: $(addprefix $(B)/fuzz_,$(FUZZ_TARGETS))

# every target for FUZZ_SECONDS; a finding stops with the input's path
fuzz: fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
	  t={}; mkdir -p $(B)/fuzz-corpus/$$t $(B)/fuzz-artifacts/$$t; \
	  $(B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 \
	      -artifact_prefix=$(B)/fuzz-artifacts/$$t/ $(B)/fuzz-corpus/$$t tests/fuzz/corpus/$$t > $(B)/fuzz-$$t.log 2>&1 \
	    || { tail -n 60 $(B)/fuzz-$$t.log; echo "fuzz_$$t: FINDING, input in $(B)/fuzz-artifacts/$$t/"; exit 255; }; \
	  echo "fuzz_$$t: $$(grep -h stat::number_of_executed_units $(B)/fuzz-$$t.log | sed "s/.*: *//") runs in $(FUZZ_SECONDS) s, no finding"'

# the regression inputs and the seed corpora, replayed under ASan + UBSan without libFuzzer
fuzz-replay: $(addprefix $(B)/replay_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  dirs=""; for d in tests/fuzz/regressions/$$t tests/fuzz/corpus/$$t; do [ -d $$d ] && dirs="$$dirs $$d"; done; \
	  [ -z "$$dirs" ] || $(B)/replay_$$t $$dirs > $(B)/replay-$$t.log 2>&1 \
	    || { tail -n 30 $(B)/replay-$$t.log; echo "replay_$$t: FAILED"; exit 1; }; \
	  echo "replay_$$t: $$(tail -n 1 $(B)/replay-$$t.log)"; \
	done

# the unit suite under Valgrind memcheck (no OpenMP, no AVX-512: Valgrind 3.19 cannot run it)
$(B)/run_tests_vg: $(TEST_SRC) $(HDR) | $(B)
	$(CC) -O1 -g $(VG_ARCH) $(WARN) -std=c99 -pedantic -o $@ $(TEST_MAIN) $(LDLIBS) -lpthread
# everything but the tests tagged T_SLOW (statistical) and T_LONG (many whole-model runs, which
# ASan and TSan run in full): each takes minutes under Valgrind
VG_TESTS ?= -@slow -@long
valgrind: $(B)/run_tests_vg
	valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect $(B)/run_tests_vg $(VG_TESTS)

# the threading tests under ThreadSanitizer (pthreads; libgomp is not instrumented)
$(B)/run_tests_tsan: $(TEST_SRC) $(HDR) | $(B)
	clang -O1 -g $(WARN) -std=c99 -pedantic -fsanitize=thread -o $@ $(TEST_MAIN) $(LDLIBS) -lpthread
tsan: $(B)/run_tests_tsan
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 $(B)/run_tests_tsan @threads

run: $(B)/lfm2
	./$(B)/lfm2 -m models/demo-code-8m --raw -n 160 -s 3 -p "def fibonacci(n):"

clean:
	rm -rf $(B)

$(B)/lfm2-quantize: tools/lfm2-quantize.c tools/lfm2_digest.h $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tools/lfm2-quantize.c $(LDLIBS)

# --- speed (tools/BENCH_NOTES.md) -------------------------------------------------------------
BENCH_MODEL ?= $(B)/bench/lfm2-350m-bf16
BENCH_ARGS  ?= -p 512 -n 128 -t 1,2 -r 3
.PHONY: bench tools
tools: $(B)/lfm2-bench $(B)/lfm2-bench-prof $(B)/make-random-model $(B)/lfm2-inspect $(B)/lfm2-quantize $(B)/lfm2-peak
$(B)/lfm2-peak: tools/lfm2-peak.c | $(B)
	$(CC) $(OPT) $(WARN) -std=c99 -pedantic -o $@ tools/lfm2-peak.c
$(B)/lfm2-bench: tools/lfm2-bench.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tools/lfm2-bench.c $(LDLIBS) -lpthread
$(B)/lfm2-bench-prof: tools/lfm2-bench.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -DLFM2_PROFILE -o $@ tools/lfm2-bench.c $(LDLIBS) -lpthread
$(B)/make-random-model: tools/make-random-model.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tools/make-random-model.c $(LDLIBS)
$(BENCH_MODEL)/model.safetensors: | $(B)/make-random-model
	./$(B)/make-random-model --shape 350m --dtype bf16 -o $(BENCH_MODEL)
bench: $(B)/lfm2-bench $(BENCH_MODEL)/model.safetensors
	./$(B)/lfm2-bench -m $(BENCH_MODEL) $(BENCH_ARGS)

# --- other platforms (issue 15, README "Platforms") ---------------------------------------------
# wine   Windows x86-64: the unit suite, the CLI and the tools built with MinGW-w64 (static), the
#        whole unit suite run under Wine (mapped loading, a 4.5 GiB file, a folder named 模型), then
#        the CLI tests (tests/cli_test.sh with RUN=wine; the POSIX-only checks say they are skipped;
#        lfm2-quantize through tests/quantize_wine_test.sh), then a short lfm2-bench on demo-code-8m
# i386   32-bit x86 (-msse2 -mfpmath=sse: the SSE2 floats of every i686 ABI in use), static, run
#        natively: the whole unit suite; then the file tests once more built with x87 floats
# armv7  32-bit ARM hard-float under qemu-arm: the tests tagged T_EMU plus config/ and tokenizer/
# s390x  big-endian under qemu-s390x (the tensors are byte-swapped at load): the file tests, the
#        loaders, the tiny goldens, the kernel table, quantization and the tokenizer goldens
# Each is skipped with a message when its compiler or runner is missing (.ci/run installs them).
MINGW_CC ?= x86_64-w64-mingw32-gcc
MINGW_CXX ?= x86_64-w64-mingw32-g++
I386_CC  ?= i686-linux-gnu-gcc
ARMV7_CC ?= arm-linux-gnueabihf-gcc
S390X_CC ?= s390x-linux-gnu-gcc
WB       := $(B)/win
WINE_RUN := env WINEPREFIX=$(abspath $(B))/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES=mscoree,mshtml= wine
EMU_SUBSET := @emu config/ tokenizer/golden
S390X_SUBSET := plat/ load/ config/ forward/golden-tiny kernels/table quant/roundtrip tokenizer/golden30
XFLAGS := -O2 $(WARN) -std=c99 -pedantic -D_FILE_OFFSET_BITS=64 -static
.PHONY: platforms wine i386 armv7 s390x
platforms: wine i386 armv7 s390x

wine: | $(B)
	@if command -v $(MINGW_CC) >/dev/null 2>&1 && command -v wine >/dev/null 2>&1; then \
	  mkdir -p $(WB) && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/run_tests.exe tests/run_tests.c $(LDLIBS) -lpthread && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/lfm2.exe examples/lfm2.c $(LDLIBS) -lshell32 && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/lfm2-inspect.exe tools/lfm2-inspect.c $(LDLIBS) && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/make-random-model.exe tools/make-random-model.c $(LDLIBS) -lpthread && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/make_odd_model.exe tests/make_odd_model.c $(LDLIBS) && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/lfm2-peak.exe tools/lfm2-peak.c && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/lfm2-quantize.exe tools/lfm2-quantize.c $(LDLIBS) && \
	  $(MINGW_CC) $(OPT) $(WARN) -std=c99 -pedantic -static -o $(WB)/lfm2-bench.exe tools/lfm2-bench.c $(LDLIBS) -lpthread -lpsapi && \
	  for d in -DLFM2_NO_MMAP -DLFM2_NO_THREADS -DLFM2_NO_STDIO -DLFM2_NO_SIMD -fopenmp; do \
	    $(MINGW_CC) -O1 $(WARN) -std=c99 -pedantic $$d -c tests/compile_c.c -o $(WB)/m.o || exit 1; done && \
	  if command -v $(MINGW_CXX) >/dev/null 2>&1; then $(MINGW_CXX) -O1 $(WARN) -std=c++11 -pedantic -c tests/compile_cpp.cpp -o $(WB)/m.o || exit 1; fi && \
	  echo "== wine: built run_tests, lfm2, lfm2-inspect, make-random-model, make_odd_model, lfm2-peak, lfm2-quantize, lfm2-bench (.exe); compile matrix ok" && \
	  echo "== wine run_tests.exe" && \
	  { $(WINE_RUN) $(WB)/run_tests.exe > $(WB)/unit.log 2>&1; rc=$$?; tail -n 1 $(WB)/unit.log; \
	    [ $$rc -eq 0 ] || { grep -B 12 FAILED $(WB)/unit.log | tail -n 60; $(WINE_RUN)server -k; echo "wine: unit suite FAILED"; exit 1; }; } && \
	  echo "== wine cli tests (lfm2-quantize: tests/quantize_wine_test.sh)" && \
	  { RUN="$(WINE_RUN)" EXE=.exe sh tests/cli_test.sh $(WB); rc=$$?; [ $$rc -eq 0 ] || { $(WINE_RUN)server -k; exit 1; }; } && \
	  echo "== wine lfm2-bench.exe -m models/demo-code-8m -p 8 -n 4 -r 1 -t 1,2 --bw-mib 64" && \
	  { $(WINE_RUN) $(WB)/lfm2-bench.exe -m models/demo-code-8m -p 8 -n 4 -r 1 -t 1,2 --bw-mib 64 --bw-passes 2 > $(WB)/bench.log 2>&1; rc=$$?; \
	    $(WINE_RUN)server -k; grep '^| demo-code-8m' $(WB)/bench.log; \
	    [ $$rc -eq 0 ] && [ "$$(grep -c '^| demo-code-8m | BF16 |' $(WB)/bench.log)" -eq 2 ] || { cat $(WB)/bench.log; echo "wine: lfm2-bench FAILED"; exit 1; }; }; \
	else echo "wine: SKIPPED ($(MINGW_CC) or wine missing: apt-get install gcc-mingw-w64-x86-64 wine wine64)"; fi

# $(call cross_stage,NAME,COMPILER,RUNNER,FLAGS,TESTS,PACKAGES): build the unit suite with COMPILER
# (static, XFLAGS + FLAGS), run TESTS with RUNNER (empty: natively), log in $(B)/NAME.log
define cross_stage
	@if command -v $(2) >/dev/null 2>&1 $(if $(3),&& command -v $(3) >/dev/null 2>&1); then \
	  $(2) $(XFLAGS) $(4) -o $(B)/run_tests_$(1) tests/run_tests.c $(LDLIBS) -lpthread && \
	  echo "== $(1): $(if $(3),$(3) )run_tests $(5)" && $(3) ./$(B)/run_tests_$(1) $(5) > $(B)/$(1).log 2>&1 \
	    || { grep -B 12 FAILED $(B)/$(1).log | tail -n 60; echo "$(1): FAILED"; exit 1; }; \
	  tail -n 1 $(B)/$(1).log; \
	else echo "$(1): SKIPPED ($(2)$(if $(3), or $(3)) missing: apt-get install $(6))"; fi
endef
.PHONY: i386-x87
i386: i386-x87 | $(B)
	$(call cross_stage,i386,$(I386_CC),,-msse2 -mfpmath=sse,-@slow,gcc-i686-linux-gnu)
i386-x87: | $(B)
	$(call cross_stage,i386_x87,$(I386_CC),,-mfpmath=387,$(EMU_SUBSET),gcc-i686-linux-gnu)
armv7: | $(B)
	$(call cross_stage,armv7,$(ARMV7_CC),qemu-arm,,$(EMU_SUBSET),gcc-arm-linux-gnueabihf qemu-user)
s390x: | $(B)
	$(call cross_stage,s390x,$(S390X_CC),qemu-s390x,,$(S390X_SUBSET),gcc-s390x-linux-gnu qemu-user)
