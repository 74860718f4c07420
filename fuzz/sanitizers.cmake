# The fuzzing build (HOTLAP_FUZZ=ON; `make fuzz`, and the short run at the end of `make test`).
# Included from the top-level CMakeLists.txt before the libraries are defined, so every hotlap library
# is compiled with libFuzzer's coverage hooks and with ASan and UBSan: a fuzz target finds what goes
# wrong inside the library code it calls, not only in its own few lines.
#
# libFuzzer ships with Clang (Debian: clang, libclang-rt-14-dev); GCC has no equivalent.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "HOTLAP_FUZZ needs Clang (libFuzzer); configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "(the compiler is ${CMAKE_CXX_COMPILER_ID})")
endif()

# What the fuzz targets do not call, or what cannot work under the sanitizers, is left out:
#   CUDA        the targets run on the CPU, and nvcc takes no -fsanitize
#   OpenBLAS    Debian's OpenMP build of it links GCC's libgomp, and Clang's -fopenmp is LLVM's libomp:
#               two OpenMP runtimes in one process. No target multiplies matrices, and the hand-written
#               GEMM is always built.
#   tests, benchmarks   the ordinary build (build/) runs those; here they would only double the build time
set(HOTLAP_CUDA OFF)
set(HOTLAP_BLAS OFF)
set(HOTLAP_BUILD_TESTS OFF)
set(HOTLAP_BUILD_BENCH OFF)
set(HOTLAP_NATIVE_ARCH OFF)

# -O1 -g: fast enough to fuzz, quick to build, readable stack traces. assert() stays on (-UNDEBUG):
# every check the code makes is one more way for a fuzzer to find a bug. UBSan stops at the first
# report (-fno-sanitize-recover), so undefined behaviour is a finding like a crash, not a line in a log.
# At -O1 Clang does not vectorise, and says so for every `#pragma omp simd` (-Wpass-failed): noise here.
add_compile_options(-O1 -g -UNDEBUG -fno-omit-frame-pointer -Wno-pass-failed
                    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
