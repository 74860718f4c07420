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

# One known undefined behaviour of Debian 12's stb_image (2.27) is not checked, in its translation unit
# alone: its JPEG bit reader lets its bit count go negative on corrupt entropy-coded data and then shifts
# a 32-bit unsigned by more than 31 (stb_image.h, stbi__grow_buffer_unsafe; fixed upstream in 2.28 by
# returning zeros once the bits run out). Nothing before stb can see it coming without decoding the
# JPEG itself. The shift is on an unsigned value, and GCC and Clang on x86-64 and AArch64 compile it to
# the machine's masked shift: garbage pixels for a file that is corrupt anyway, no memory access.
# A second one, in its PSD reader (stbi__psd_load, "remove weird white matte"): a pixel of a four-channel
# PSD is un-premultiplied from a white matte as (unsigned char)(p / a + 255 (1 - 1 / a)), which is below
# zero when the file's colour is darker than its alpha allows -- never in a file Photoshop wrote, easily
# in a corrupt one -- and a float out of a char's range converted to it is undefined. GCC and Clang
# compile the conversion to the machine's float-to-integer instructions, which yield some byte: garbage
# pixels again, no memory access. The input is fuzz/corpus/image/psd-matte-below-zero.psd (127 bytes).
# Every other check, there and everywhere else, stays on (docs/fuzzing.md).
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/apps/data/stb_impl.cpp PROPERTIES
                            COMPILE_OPTIONS "-fno-sanitize=shift-exponent,float-cast-overflow")
