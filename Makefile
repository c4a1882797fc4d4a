# moatless developer entry points. Everything installs what it needs first (scripts/install-deps).
#   make demo          build and run `moatless serve` on ./.moatless
#   make test          everything CI runs: build (-Werror), ASan+UBSan unit tests, a short fuzz
#                      run, then every test through ctest (its summary is the last thing printed)
#   make check         quick loop: build and run all tests of the main build only
#   make bench         micro-benchmarks and the HTTP benchmark against nginx
#   make fuzz          a long fuzzing run of every fuzzer (HTTP request parser, policy parser),
#                      FUZZ_SECONDS=600 each
#   make format-check  clang-format conformance;  make format  rewrites in place
SHELL := /bin/bash
MAKEFLAGS += --no-print-directory
.SHELLFLAGS := -eo pipefail -c
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 600
CI_FUZZ_SECONDS ?= 20
FUZZERS := http_request policy_parser gateway_input
MOATLESS := $(BUILD)/src/cli/moatless
# Tracked and new (untracked, not ignored) sources alike, so that new files are formatted too.
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null || find src tests bench -name '*.cc' -o -name '*.h')

.PHONY: deps configure build check test test-asan fuzz-ci fuzz demo bench format-check format clean

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -DMOATLESS_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMOATLESS_WERROR=ON \
	  -DMOATLESS_SANITIZE=address,undefined >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && echo "ASan+UBSan unit tests:" && \
	  { ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest -L unit -j$(JOBS) --output-on-failure >ctest.log 2>&1 || { cat ctest.log; exit 1; }; } && \
	  grep -E "tests passed|tests failed" ctest.log

build-fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMOATLESS_FUZZ=ON -DMOATLESS_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(addsuffix _fuzzer,$(FUZZERS))

# CI_FUZZ_SECONDS per fuzzer: about 60 s of fuzzing in total.
fuzz-ci: build-fuzz
	@for f in $(FUZZERS); do scripts/run-fuzz $$f $(CI_FUZZ_SECONDS); done

fuzz: build-fuzz
	@for f in $(FUZZERS); do scripts/run-fuzz $$f $(FUZZ_SECONDS); done

test: build test-asan fuzz-ci
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

demo: configure
	@cmake --build $(BUILD) -j$(JOBS) --target moatless
	@scripts/demo $(MOATLESS)

bench: deps
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMOATLESS_BUILD_BENCH=ON \
	  -DMOATLESS_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-bench -j$(JOBS)
	@bench/run build-bench

format-check: deps
	@clang-format --dry-run -Werror $(SOURCES) && echo "format-check: ok"

format:
	@clang-format -i $(SOURCES)

clean:
	rm -rf build build-asan build-fuzz build-bench
