# hotlap's two front doors:
#   make test   install missing build and test dependencies, configure, build, run every test (ctest)
#   make demo   the same set-up, then the main job on the embedded synthetic data
# Everything else is plain CMake: cmake -S . -B build && cmake --build build -j.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps deps-test configure build test demo bench clean

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

# The main job on generated data: a SCUT-FBP5500-shaped data set (hotlap synth), then a narrow
# ResNet-18 trained on its first fold, reporting Pearson / MAE / RMSE on the held-out images.
demo: build
	@$(BUILD_DIR)/hotlap synth --out $(BUILD_DIR)/demo-data --n 1100 --size 96 --overwrite
	@$(BUILD_DIR)/hotlap train --data $(BUILD_DIR)/demo-data --out $(BUILD_DIR)/demo-run --overwrite --fold 1 \
	  --depth 18 --width 16 --optimizer adamw --lr 2e-3 --schedule cosine --epochs 20 --batch 32 \
	  --resize 72 --size 64

bench: build
	@$(BUILD_DIR)/bench/hotlap_bench

clean:
	@rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log
