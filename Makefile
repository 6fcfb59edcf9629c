# ember — the README's commands. `make` builds, `make test` is what CI runs, `make demo` shows the main job.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
GENERATOR := -G Ninja
SAN_CXX ?= clang++-14
FUZZ_SECONDS ?= 600
SHARED_DATA := ../shared/data
DEMO_MODEL := models/ember-tiny.gguf
DEMO_PROMPT := And it came to pass, when the king

RELEASE_DIR := build/release
DEBUG_DIR := build/debug
SANITIZE_DIR := build/sanitize
TSAN_DIR := build/tsan
FUZZ_DIR := build/fuzz

.PHONY: all build deps release debug sanitize tsan test test-release test-sanitize test-tsan demo train-tiny bench fuzz \
        fuzz-run format format-check clean

all: build

deps:
	@scripts/install-deps.sh

# Re-running cmake on an existing build dir is cheap and picks up option changes.
$(RELEASE_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(RELEASE_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release

# The debug build compiles every file on its own: the check that unity batches hide no missing
# include or name (docs/ARCHITECTURE.md, Build types).
$(DEBUG_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(DEBUG_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DEMBER_UNITY_BUILD=OFF

# The sanitizer build uses clang and builds every target but the benchmarks, so every `make test`
# also proves the tree builds warning-free with Clang 14 as well as GCC 12. Its CUDA backend runs on
# the CUDA emulator (src/cuda/emulator): the kernels, the GPU layers and `--device cuda` are tested
# on the CPU, with AddressSanitizer watching every kernel's loads and stores.
$(SANITIZE_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(SANITIZE_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=$(SAN_CXX) \
	  -DEMBER_SANITIZE=ON -DEMBER_BUILD_BENCH=OFF -DEMBER_CUDA=EMULATE

build release: $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS)

debug: $(DEBUG_DIR)/build.ninja
	cmake --build $(DEBUG_DIR) -j $(JOBS)

# ThreadSanitizer for the thread pool and the threaded CPU kernels: the races ASan cannot see.
$(TSAN_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(TSAN_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=$(SAN_CXX) \
	  -DCMAKE_CXX_FLAGS="-fsanitize=thread -DFMT_CONSTEVAL=" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" -DEMBER_BUILD_BENCH=OFF \
	  -DEMBER_CUDA=OFF -DEMBER_LINE_TABLES_ONLY=ON

sanitize: $(SANITIZE_DIR)/build.ninja
	cmake --build $(SANITIZE_DIR) -j $(JOBS)

tsan: $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS) --target core_tests cpu_tests tokenizer_tests api_tests serving_engine_tests server_tests

test: format-check test-release test-sanitize test-tsan

test-release: build
	cd $(RELEASE_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

# Unit, CLI and (emulated) CUDA tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: sanitize
	cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|cli|cuda' --timeout 900

# setarch -R: clang-14's TSan cannot map its shadow memory under some kernels' ASLR settings.
# The CPU kernels' threaded paths: split-K attention (atomic task counter, partial-state merge), the
# GEMM's 2-D task split, the backend's row ops.
TSAN_CPU_TESTS := Attention.SplitK*:Attention.MixedBatch*:Gemm.EveryIsaAndThreadCount*:CpuBackend.MatmulPaths*:CpuBackend.RowOps*
# The API across threads: cancel from another thread (C++ and C), two sessions of one model on two
# threads, hooks.
TSAN_API_TESTS := ApiSession.Cancel*:ApiSession.TwoSessions*:ApiSession.HooksSeeEveryStep:CApi.CancelFromAnotherThread*
# The serving engine's thread against its submitters, cancellation from a client's thread, draining.
TSAN_SERVE_TESTS := EngineTest.ThreadServesConcurrentSubmitters:EngineTest.StopWithCancel*:ApiServerTest.ADisconnected*:ApiServerLifecycle.*
test-tsan: tsan
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/core_tests --gtest_filter='ThreadPool*:-*Death*' --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/cpu_tests --gtest_filter='$(TSAN_CPU_TESTS)' --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/tokenizer_tests --gtest_filter='Tokenizer.Concurrent*' --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/api_tests --gtest_filter='$(TSAN_API_TESTS)' --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/serving_engine_tests --gtest_filter='$(TSAN_SERVE_TESTS)' --gtest_brief=1
	TSAN_OPTIONS=halt_on_error=1 setarch $$(uname -m) -R \
	  $(TSAN_DIR)/tests/server_tests --gtest_filter='$(TSAN_SERVE_TESTS)' --gtest_brief=1

# The demo: ember-tiny, the model trained for this repository (models/README.md), continues a fixed
# prompt — sampled with a fixed seed, so each run prints the same text — and prints the stats panel;
# then its perplexity on the held-out text. Only the `ember` binary is built, and nothing is downloaded.
demo: $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target ember
	@echo && echo "ember run -m $(DEMO_MODEL) -p '$(DEMO_PROMPT)' -n 160 --seed 7" && \
	  $(RELEASE_DIR)/bin/ember run -m $(DEMO_MODEL) -p "$(DEMO_PROMPT)" -n 160 --seed 7 && \
	  echo && echo "ember perplexity -m $(DEMO_MODEL) -f models/ember-tiny-heldout.txt" && \
	  $(RELEASE_DIR)/bin/ember perplexity -m $(DEMO_MODEL) -f models/ember-tiny-heldout.txt

# Retrains the bundled models (about 45 minutes on 2 cores with AMX; hours without: models/README.md)
# and re-measures them in PyTorch; installs PyTorch, SentencePiece and the corpus from Debian first.
TRAIN_PYTHON ?= /usr/bin/python3
TRAIN_OUT ?= models
train-tiny:
	scripts/install-deps.sh --train
	$(TRAIN_PYTHON) tools/train-tiny/train.py --model draft --out $(TRAIN_OUT)
	$(TRAIN_PYTHON) tools/train-tiny/train.py --model tiny --out $(TRAIN_OUT)

# Every microbenchmark; each kernel benchmark measures the roofline first and prints its figures as
# fractions of it. Minutes, several GiB of memory; run it on a quiet machine.
bench: build
	$(RELEASE_DIR)/bench/roofline_bench
	$(RELEASE_DIR)/bench/gemv_bench
	$(RELEASE_DIR)/bench/gemm_bench
	$(RELEASE_DIR)/bench/attention_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	$(RELEASE_DIR)/bench/ops_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
	$(RELEASE_DIR)/bench/thread_pool_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(RELEASE_DIR)/bench/tokenizer_bench $(SHARED_DATA)/vocab

$(FUZZ_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(FUZZ_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=$(SAN_CXX) \
	  -DEMBER_BUILD_FUZZ=ON -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_CUDA=OFF

fuzz: $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS)

# Seeds: small files derived from every real GGUF in ../shared/data plus the smallest real files
# whole; then FUZZ_SECONDS of libFuzzer on the GGUF reader, FUZZ_SECONDS on the tokenizers
# (seeded with the tokenizer test inputs) and FUZZ_SECONDS on the chat-template interpreter (seeded
# with the real templates, the crafted test templates and fuzz/regressions/chat_template), then the
# GBNF parser (seeded with the grammars of its tests) and the JSON Schema converter (seeded with
# tests/data/json_schemas and the JSON-Schema-Test-Suite's draft 7 schemas), the streaming tool-call
# parser (seeded with fuzz/regressions/tool_parser), the server's request parsing (seeded with
# fuzz/regressions/completion_request), and token masks against tokens checked one by
# one (seeded with fuzz/regressions/grammar_mask). Crashes land in fuzz/artifacts/.
fuzz-run: fuzz
	@mkdir -p fuzz/corpus-work fuzz/artifacts
	$(FUZZ_DIR)/fuzz/gguf_make_seeds fuzz/corpus-work $$(find $(SHARED_DATA) -name '*.gguf' | sort)
	cp $(SHARED_DATA)/models/stories260K/stories260K-Q4_0.gguf $(SHARED_DATA)/vocab/ggml-vocab-bert-bge.gguf fuzz/corpus-work/
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/gguf_reader_fuzz fuzz/corpus-work fuzz/regressions -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=1048576 -rss_limit_mb=2048 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1
	@mkdir -p fuzz/tokenizer-corpus-work
	cp $(SHARED_DATA)/vocab/*.inp fuzz/tokenizer-corpus-work/
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 EMBER_FUZZ_VOCAB_DIR=$(SHARED_DATA)/vocab \
	  $(FUZZ_DIR)/fuzz/tokenizer_fuzz fuzz/tokenizer-corpus-work -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=65536 -rss_limit_mb=2048 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1
	@mkdir -p fuzz/chat-template-corpus-work
	cp $(SHARED_DATA)/templates/*.jinja fuzz/chat-template-corpus-work/
	python3 -c 'import json; [open("fuzz/chat-template-corpus-work/feature-" + c["name"] + ".jinja", "w").write(c["template"]) for c in json.load(open("tests/data/chat_templates/features.json"))["cases"]]'
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/chat_template_fuzz fuzz/chat-template-corpus-work fuzz/regressions/chat_template \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ \
	    -print_final_stats=1
	@mkdir -p fuzz/gbnf-corpus-work fuzz/json-schema-corpus-work
	python3 -c 'import json, glob, os; [open("fuzz/json-schema-corpus-work/" + os.path.basename(f), "w").write(json.dumps(json.load(open(f))["schema"])) for f in glob.glob("tests/data/json_schemas/*.json")]'
	python3 -c 'import json, glob; [open("fuzz/json-schema-corpus-work/suite-%d-%d.json" % (i, k), "w").write(json.dumps(g["schema"])) for i, f in enumerate(sorted(glob.glob("/usr/share/json-schema-test-suite/tests/draft7/**/*.json", recursive=True))) for k, g in enumerate(json.load(open(f)))]'
	python3 -c 'import re; [open("fuzz/gbnf-corpus-work/test-%d.gbnf" % i, "w").write(g) for i, g in enumerate(re.findall(r"R\"\((.*?)\)\"", open("tests/grammar/gbnf_parser_test.cpp").read(), re.S))]'
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/gbnf_parser_fuzz fuzz/gbnf-corpus-work -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/json_schema_fuzz fuzz/json-schema-corpus-work -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1
	@mkdir -p fuzz/tool-parser-corpus-work
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/tool_parser_fuzz fuzz/tool-parser-corpus-work fuzz/regressions/tool_parser \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ \
	    -print_final_stats=1
	@mkdir -p fuzz/completion-request-corpus-work
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/completion_request_fuzz fuzz/completion-request-corpus-work fuzz/regressions/completion_request \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ \
	    -print_final_stats=1
	@mkdir -p fuzz/grammar-mask-corpus-work
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(FUZZ_DIR)/fuzz/grammar_mask_fuzz fuzz/grammar-mask-corpus-work fuzz/regressions/grammar_mask \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -rss_limit_mb=2048 -timeout=10 -artifact_prefix=fuzz/artifacts/ \
	    -print_final_stats=1

FORMAT_FILES = $(shell git ls-files '*.cpp' '*.h' '*.hpp' '*.c' '*.cu')
format: | deps
	clang-format-14 -i $(FORMAT_FILES)

format-check: | deps
	clang-format-14 --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build
