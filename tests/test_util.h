// Shared helpers for the tests: seeded random data and error measures against float64 references.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cast.h"
#include "kernels/comm.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace hotlap::test {

// Uniform values in [lo, hi), reproducible from the seed.
inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Largest absolute difference divided by the largest absolute reference value: a relative error for
// the tensor as a whole, which does not blow up on the reference's near-zero elements.
template <typename A, typename B>
double max_rel_error(const std::vector<A>& got, const std::vector<B>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (std::isnan(g) != std::isnan(r)) return INFINITY;
    diff = std::max(diff, std::abs(g - r));
    scale = std::max(scale, std::abs(r));
  }
  return diff / std::max(scale, 1e-30);
}

// max_rel_error with the scale taken as the larger of max |ref| and `scale`: for results that are a
// small difference of much larger terms, where correct evaluations differ by rounding of the terms.
template <typename A, typename B>
double max_rel_error_at_scale(const std::vector<A>& got, const std::vector<B>& ref, double scale) {
  double ref_max = 0.0;
  for (const B& r : ref) ref_max = std::max(ref_max, std::abs(static_cast<double>(r)));
  return max_rel_error(got, ref) * ref_max / std::max({ref_max, scale, 1e-30});
}

// The size of the terms a training-mode batch-norm dx is made of: dx = k * (dy - a - xc * b) with
// k = gamma * invstd, each term about k * |dy|, whatever they cancel to. With two rows per channel
// they cancel almost completely (xhat = +-sqrt(var / (var + eps)), so dx ~ k * dy * eps / var,
// ~1e-5 of its terms): two correct fp32 evaluations (fp32 partial sums on the GPU, or cuDNN's own
// arithmetic, against double sums on the CPU) then differ by the terms' rounding, ~1e-3 of
// max |dx|. Measure dx against the larger of this and max |dx|: the same wherever dx does not
// cancel, and a wrong element is still off by about a whole term.
inline double batch_norm_dx_term_scale(const std::vector<float>& gamma, const std::vector<float>& invstd,
                                      const std::vector<float>& dy) {
  double k = 0.0, g = 0.0;
  for (size_t j = 0; j < gamma.size() && j < invstd.size(); ++j)
    k = std::max(k, std::abs(static_cast<double>(gamma[j]) * invstd[j]));
  for (float v : dy) g = std::max(g, std::abs(static_cast<double>(v)));
  return k * g;
}

// Values as a kernel of element type T takes them (float as they are; bfloat16: bf16 bits, rounded
// to nearest even), and a kernel's results widened back to fp32.
template <class T>
std::vector<T> as_elements(const std::vector<float>& v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    std::vector<T> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = kernels::float_to_bf16(v[i]);
    return out;
  }
}
template <class T>
std::vector<float> as_floats(const std::vector<T>& v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = kernels::bf16_to_float(v[i]);
    return out;
  }
}

// ---- bf16 results ----------------------------------------------------------------------------

// The spacing of bf16 values at |v| (8 significant bits): 2^(e-8) for |v| in [2^(e-1), 2^e); the
// subnormal spacing below the smallest normal.
inline double bf16_ulp(double v) {
  v = std::abs(v);
  if (v < 0x1p-126) return 0x1p-133;
  int e = 0;
  std::frexp(v, &e);
  return std::ldexp(1.0, e - 8);
}

// How far bf16 results are from a reference in bf16 steps: the largest, element by element, of
// |got - ref| / (bf16_ulp(ref) + slack * max |ref|). Two kernels that do the same fp32 arithmetic
// and round each result once to nearest land on the same or adjacent bf16 values, at most one step
// (bf16_ulp(ref)) apart, so this is <= 1. `slack` allows for fp32 arithmetic that differs before
// the rounding (another summation order, a statistic off by a few fp32 ulps): relative to the
// largest reference value, it only matters for elements near zero, where a cancellation leaves a
// value far smaller than its operands. A wrong or unwritten element gives many steps (or INFINITY:
// NaN against a number).
inline double bf16_ulp_error(const std::vector<bfloat16>& got, const std::vector<bfloat16>& ref, double slack) {
  if (got.size() != ref.size()) return INFINITY;
  double scale = 0.0;
  for (bfloat16 r : ref) scale = std::max(scale, std::abs(static_cast<double>(kernels::bf16_to_float(r))));
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = kernels::bf16_to_float(got[i]), r = kernels::bf16_to_float(ref[i]);
    if (std::isnan(g) || std::isnan(r)) {
      if (std::isnan(g) != std::isnan(r)) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::abs(g - r) / (bf16_ulp(r) + slack * scale));
  }
  return worst;
}

// Equal bits, except that any NaN matches any NaN. x86 arithmetic passes an input NaN's payload on;
// a GPU's returns its one canonical NaN (0x7FFFFFFF), so a NaN that went through an add or a
// multiply has other bits on each (and the GPU's rounding to bf16 and the CPU's keep a NaN a NaN,
// not necessarily with the same payload).
inline bool same_bits_or_both_nan(float a, float b) {
  return std::memcmp(&a, &b, sizeof(float)) == 0 || (std::isnan(a) && std::isnan(b));
}

inline bool same_float_values(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_bits_or_both_nan(a[i], b[i])) return false;
  return true;
}

// The same for bf16 bits: widening to fp32 is exact (the bits shifted up), so equal bf16 bits are
// equal fp32 bits and a bf16 NaN is an fp32 NaN.
inline bool same_bf16_values(const std::vector<bfloat16>& a, const std::vector<bfloat16>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_bits_or_both_nan(kernels::bf16_to_float(a[i]), kernels::bf16_to_float(b[i]))) return false;
  return true;
}

// Either of the two above, by the element type: for tests templated on the storage type.
inline bool same_values(const std::vector<float>& a, const std::vector<float>& b) { return same_float_values(a, b); }
inline bool same_values(const std::vector<bfloat16>& a, const std::vector<bfloat16>& b) { return same_bf16_values(a, b); }


// max_rel_error without the largest 2% of the element errors, for whole networks' tensors in bf16:
// at a ReLU, a value within bf16 rounding of 0 may land on the other side of the kink in one run and
// not the other, which changes that element's gradient by O(1). Such flips are a handful of
// elements; a real bug (a wrong index, a missed cast) moves most of them.
inline double bf16_error(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double scale = 0.0;
  for (float r : ref) scale = std::max(scale, std::abs(static_cast<double>(r)));
  std::vector<double> diff(got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) != std::isnan(ref[i])) return INFINITY;
    diff[i] = std::isnan(got[i]) ? 0.0 : std::abs(static_cast<double>(got[i]) - ref[i]);
  }
  std::sort(diff.begin(), diff.end());
  const size_t keep = diff.size() - diff.size() / 50;
  return keep == 0 ? 0.0 : diff[keep - 1] / std::max(scale, 1e-30);
}

// A fresh directory under the system temp directory, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("hotlap_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> listing() const {  // file names, sorted
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string read_text(const std::string& path) {
  const auto bytes = read_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

// A training run's metrics.csv without its last column (the measured images/s, which differs from run
// to run): what a resumed run must reproduce.
inline std::string metrics_without_speed(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::string out, line;
  for (char ch : std::string(bytes.begin(), bytes.end())) {
    if (ch != '\n') {
      line += ch;
      continue;
    }
    out += line.substr(0, line.rfind(',')) + "\n";
    line.clear();
  }
  return out;
}

// The message of the hotlap::Error that f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Whether this machine has a CUDA device (asked once).
inline bool have_cuda_device() {
  static const bool have = kernels::cuda_device_count() > 0;
  return have;
}

}  // namespace hotlap::test

// In a test case that needs a GPU: without one, says why and returns. ctest reports the case as
// skipped, not passed ("CUDA test skipped:" in the output; see tests/CMakeLists.txt).
#define HOTLAP_SKIP_WITHOUT_CUDA_DEVICE()                                                    \
  do {                                                                                       \
    if (!::hotlap::test::have_cuda_device()) {                                               \
      MESSAGE("CUDA test skipped: " << ::hotlap::kernels::cuda_device_summary());            \
      return;                                                                                \
    }                                                                                        \
  } while (0)

// In a test case that needs a job of several ranks (the "mpi:" cases, which ctest runs through
// mpirun -np 2): run alone, says so and returns, and ctest reports the case as skipped.
#define HOTLAP_SKIP_WITHOUT_RANKS()                                                          \
  do {                                                                                       \
    if (::hotlap::kernels::comm::world().size < 2) {                                         \
      MESSAGE("MPI test skipped: one process (ctest runs it through mpirun -np 2)");        \
      return;                                                                                \
    }                                                                                        \
  } while (0)
