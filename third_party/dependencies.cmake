# Finds the system libraries hotlap builds against (installed by scripts/install-deps.sh).
# Nothing is vendored: every library here has a Debian package.

find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)

# stb_image is header-only (libstb-dev puts it in /usr/include/stb).
find_path(HOTLAP_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
add_library(hotlap::stb INTERFACE IMPORTED)
target_include_directories(hotlap::stb INTERFACE ${HOTLAP_STB_INCLUDE_DIR})

if(HOTLAP_BLAS)
  # Debian's OpenBLAS ships no CMake config; find the library and its cblas.h directly. Prefer the
  # OpenMP build: hotlap's kernels use OpenMP, and the pthread build's threads and OpenMP's both spin
  # for the same cores between parallel regions (3-6x slower convolutions on 2 cores). All variants
  # share the soname libopenblas.so.0, so the build RPATH (CMake adds the variant's directory, which
  # is not a system one) is what makes the binaries load the variant they were linked against.
  set(_hotlap_openblas_omp_lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
  set(_hotlap_openblas_omp_inc /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
  find_library(HOTLAP_OPENBLAS_LIBRARY NAMES openblas PATHS ${_hotlap_openblas_omp_lib} NO_DEFAULT_PATH)
  if(HOTLAP_OPENBLAS_LIBRARY)
    find_path(HOTLAP_CBLAS_INCLUDE_DIR cblas.h PATHS ${_hotlap_openblas_omp_inc} NO_DEFAULT_PATH REQUIRED)
  else()
    message(WARNING "hotlap: the OpenMP build of OpenBLAS (libopenblas-openmp-dev) was not found; "
                    "using another build, whose threads compete with OpenMP's")
    find_library(HOTLAP_OPENBLAS_LIBRARY NAMES openblas REQUIRED)
    find_path(HOTLAP_CBLAS_INCLUDE_DIR cblas.h
              PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread /usr/include/openblas
              PATH_SUFFIXES openblas REQUIRED)
  endif()
  add_library(hotlap::openblas INTERFACE IMPORTED)
  target_link_libraries(hotlap::openblas INTERFACE ${HOTLAP_OPENBLAS_LIBRARY})
  target_include_directories(hotlap::openblas INTERFACE ${HOTLAP_CBLAS_INCLUDE_DIR})
endif()

if(HOTLAP_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()
if(HOTLAP_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# ---- MPI: AUTO turns it on when an MPI library is found (kernels/comm.h) -----------------------------
set(HOTLAP_MPI_ENABLED OFF)
if(NOT HOTLAP_MPI STREQUAL "OFF")
  # MPI's C API, called from C++: no MPI C++ bindings (removed from the standard).
  set(MPI_CXX_SKIP_MPICXX ON)
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(HOTLAP_MPI_ENABLED ON)
  elseif(HOTLAP_MPI STREQUAL "ON")
    message(FATAL_ERROR "HOTLAP_MPI=ON but no MPI was found (scripts/install-deps.sh installs Open MPI)")
  else()
    message(STATUS "hotlap: MPI not found, building for one process (scripts/install-deps.sh installs it)")
  endif()
endif()

# ---- CUDA: AUTO turns it on when nvcc is found ---------------------------------------------------
set(HOTLAP_CUDA_ENABLED OFF)
set(HOTLAP_CUDNN_ENABLED OFF)
if(NOT HOTLAP_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # CMake 3.25 does not know how to ask nvcc 13 for C++20; the .cu files need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(HOTLAP_CUDA_ENABLED ON)
  elseif(HOTLAP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HOTLAP_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  else()
    message(STATUS "hotlap: nvcc not found, building without CUDA")
  endif()
endif()

if(HOTLAP_CUDA_ENABLED AND HOTLAP_CUDNN)
  find_path(HOTLAP_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(HOTLAP_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(HOTLAP_CUDNN_INCLUDE_DIR AND HOTLAP_CUDNN_LIBRARY)
    add_library(hotlap::cudnn INTERFACE IMPORTED)
    target_include_directories(hotlap::cudnn INTERFACE ${HOTLAP_CUDNN_INCLUDE_DIR})
    target_link_libraries(hotlap::cudnn INTERFACE ${HOTLAP_CUDNN_LIBRARY})
    set(HOTLAP_CUDNN_ENABLED ON)
  else()
    message(STATUS "hotlap: cuDNN not found, building without the cuDNN backend")
  endif()
endif()

# ---- NCCL: the GPUs' all-reduce, in the CUDA toolkit; with CUDA (kernels/comm.h) ---------------------
# Without MPI it runs as a world of one rank (the GPU check's case); the ranks of a job need MPI.
set(HOTLAP_NCCL_ENABLED OFF)
if(HOTLAP_CUDA_ENABLED)
  find_path(HOTLAP_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(HOTLAP_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(HOTLAP_NCCL_INCLUDE_DIR AND HOTLAP_NCCL_LIBRARY)
    add_library(hotlap::nccl INTERFACE IMPORTED)
    target_include_directories(hotlap::nccl INTERFACE ${HOTLAP_NCCL_INCLUDE_DIR})
    target_link_libraries(hotlap::nccl INTERFACE ${HOTLAP_NCCL_LIBRARY})
    set(HOTLAP_NCCL_ENABLED ON)
  else()
    message(STATUS "hotlap: NCCL not found, GPU gradients are summed through host memory")
  endif()
endif()
