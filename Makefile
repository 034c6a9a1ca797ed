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
TEST_SRC := tests/run_tests.c tests/test.h tests/load_one.h $(wildcard tests/test_*.c) tools/lfm2_chat_json.h

.PHONY: all test unit matrix sanitize run clean cli-test simd-variants isa-levels neon

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
test: unit matrix sanitize cli-test simd-variants neon fuzz-replay tsan valgrind fuzz
	@echo "make test: all stages passed"

unit: $(B)/run_tests
	./$(B)/run_tests

cli-test: $(B)/lfm2 $(B)/lfm2-inspect $(B)/lfm2-quantize $(B)/make_odd_model
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

# NEON: cross-compiled for aarch64 and run under qemu-user (packages gcc-aarch64-linux-gnu and
# qemu-user; skipped with a message when they are missing)
AARCH64_CC ?= aarch64-linux-gnu-gcc
neon: | $(B)
	@if command -v $(AARCH64_CC) >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; then \
	  $(AARCH64_CC) -O2 $(WARN) -std=c99 -pedantic -o $(B)/run_tests_neon tests/run_tests.c $(LDLIBS) -lpthread && \
	  qemu-aarch64 -L /usr/aarch64-linux-gnu ./$(B)/run_tests_neon @emu && \
	  $(AARCH64_CC) -O2 -march=armv8.2-a+dotprod $(WARN) -std=c99 -pedantic -o $(B)/run_tests_neon_dot tests/run_tests.c $(LDLIBS) -lpthread && \
	  qemu-aarch64 -L /usr/aarch64-linux-gnu ./$(B)/run_tests_neon_dot @emu && \
	  $(AARCH64_CC) -O2 -march=armv8.6-a+bf16+dotprod $(WARN) -std=c99 -pedantic -o $(B)/run_tests_neon_bf16 tests/run_tests.c $(LDLIBS) -lpthread && \
	  qemu-aarch64 -L /usr/aarch64-linux-gnu ./$(B)/run_tests_neon_bf16 @emu; \
	else echo "neon: SKIPPED ($(AARCH64_CC) or qemu-aarch64 missing: apt-get install gcc-aarch64-linux-gnu qemu-user)"; fi

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
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(B)/fuzz-corpus/$$t $(B)/fuzz-artifacts/$$t; \
	  $(B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	      -artifact_prefix=$(B)/fuzz-artifacts/$$t/ $(B)/fuzz-corpus/$$t tests/fuzz/corpus/$$t > $(B)/fuzz-$$t.log 2>&1 \
	    || { tail -n 60 $(B)/fuzz-$$t.log; echo "fuzz_$$t: FINDING, input in $(B)/fuzz-artifacts/$$t/"; exit 1; }; \
	  echo "fuzz_$$t: $$(grep -h 'stat::number_of_executed_units' $(B)/fuzz-$$t.log | sed 's/.*: *//') runs in $(FUZZ_SECONDS) s, no finding"; \
	done

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
# everything but the tests tagged T_SLOW (statistical: minutes under valgrind)
VG_TESTS ?= -@slow
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
tools: $(B)/lfm2-bench $(B)/make-random-model $(B)/lfm2-inspect $(B)/lfm2-quantize $(B)/lfm2-peak
$(B)/lfm2-peak: tools/lfm2-peak.c | $(B)
	$(CC) $(OPT) $(WARN) -std=c99 -pedantic -o $@ tools/lfm2-peak.c
$(B)/lfm2-bench: tools/lfm2-bench.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ tools/lfm2-bench.c $(LDLIBS) -lpthread
$(B)/make-random-model: tools/make-random-model.c | $(B)
	$(CC) $(CFLAGS) -o $@ tools/make-random-model.c $(LDLIBS)
$(BENCH_MODEL)/model.safetensors: | $(B)/make-random-model
	./$(B)/make-random-model --shape 350m --dtype bf16 -o $(BENCH_MODEL)
bench: $(B)/lfm2-bench $(BENCH_MODEL)/model.safetensors
	./$(B)/lfm2-bench -m $(BENCH_MODEL) $(BENCH_ARGS)
