# hotlap's two front doors:
#   make test   install missing build and test dependencies, configure, build, run every test (ctest),
#               then a short run of every fuzz target (FUZZ_SMOKE=0 leaves it out)
#   make demo   the same set-up, then the main job on the embedded synthetic data
# and make fuzz: the fuzz targets for FUZZ_SECONDS each (docs/fuzzing.md).
# Everything else is plain CMake: cmake -S . -B build && cmake --build build -j.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# Fuzzing: a separate Clang build with ASan and UBSan (fuzz/sanitizers.cmake).
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_RUNS ?=
FUZZ_TARGETS ?=
FUZZ_SMOKE ?= 1

.PHONY: all deps deps-test configure build test demo bench clean fuzz-build fuzz fuzz-smoke

all: build

deps:
	@scripts/install-deps.sh

# What only the tests need on top of the build (a headless browser for the HTML report tests).
deps-test:
	@scripts/install-deps.sh --test

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) > $(BUILD_DIR).configure.log 2>&1 \
	  || (cat $(BUILD_DIR).configure.log; exit 1)
	@grep "hotlap:" $(BUILD_DIR).configure.log || true

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps-test build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	@if [ "$(FUZZ_SMOKE)" != 0 ]; then $(MAKE) --no-print-directory fuzz-smoke; fi

# The main job on generated data: a SCUT-FBP5500-shaped data set (hotlap synth), then a narrow
# ResNet-18 trained on its first fold, reporting Pearson / MAE / RMSE on the held-out images.
demo: build
	@$(BUILD_DIR)/hotlap synth --out $(BUILD_DIR)/demo-data --n 1100 --size 96 --overwrite
	@$(BUILD_DIR)/hotlap train --data $(BUILD_DIR)/demo-data --out $(BUILD_DIR)/demo-run --overwrite --fold 1 \
	  --depth 18 --width 16 --optimizer adamw --lr 2e-3 --schedule cosine --epochs 20 --batch 32 \
	  --resize 72 --size 64

bench: build
	@$(BUILD_DIR)/bench/hotlap_bench

# The fuzz targets (fuzz/), built by Clang with libFuzzer, ASan and UBSan; no CUDA, tests or benchmarks.
fuzz-build: deps-test
	@cmake -S . -B $(FUZZ_BUILD_DIR) -DHOTLAP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ > $(FUZZ_BUILD_DIR).configure.log 2>&1 \
	  || (cat $(FUZZ_BUILD_DIR).configure.log; exit 1)
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target hotlap_fuzz

# Every target (or FUZZ_TARGETS) for FUZZ_SECONDS each, going on after a finding (or for FUZZ_RUNS
# inputs, stopping at one); the corpus grows in $(FUZZ_BUILD_DIR)/corpus, findings go to
# $(FUZZ_BUILD_DIR)/findings.
fuzz: fuzz-build
	@fuzz/run.sh --build-dir $(FUZZ_BUILD_DIR) --keep-going \
	  $(if $(FUZZ_RUNS),--runs $(FUZZ_RUNS),--seconds $(FUZZ_SECONDS)) $(FUZZ_TARGETS)

# The end of make test: each target for a fixed number of inputs from the committed seeds (10-20 s
# each on two cores); a finding fails the test.
fuzz-smoke: fuzz-build
	@echo "fuzz: a short run of each fuzz target (ASan, UBSan)"
	@fuzz/run.sh --build-dir $(FUZZ_BUILD_DIR) --smoke $(FUZZ_TARGETS)

clean:
	@rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log $(FUZZ_BUILD_DIR) $(FUZZ_BUILD_DIR).configure.log
