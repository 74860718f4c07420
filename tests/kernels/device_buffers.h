// Device memory for the GPU kernel tests (the hand-written CUDA kernels, cuDNN, the convolution
// variants): arrays that free themselves, outputs poisoned before a run, and workspaces of exactly
// the queried size with a guard after them. Needs a CUDA device at run time; compiles everywhere
// (in a build without CUDA every call throws, and the tests skip before making one).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cast.h"
#include "kernels/cuda_memory.h"

namespace hotlap::test {

// A device array of n elements (fp32, bf16 bits, indices, bytes) that frees itself; `offset`
// elements before the data make a view that is not 16-byte aligned.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n, size_t offset = 0) : n_(n), offset_(offset) {
    base_ = static_cast<T*>(kernels::cuda::device_allocate((n + offset) * sizeof(T) + 16));
  }
  explicit DeviceArray(const std::vector<T>& host, size_t offset = 0) : DeviceArray(host.size(), offset) {
    upload(host);
  }
  ~DeviceArray() {
    try {
      kernels::cuda::device_free(base_);
    } catch (...) {
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return base_ + offset_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    if (n_ > 0) kernels::cuda::copy_host_to_device(get(), host.data(), n_ * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) kernels::cuda::copy_device_to_host(host.data(), get(), n_ * sizeof(T));  // waits
    return host;
  }

 private:
  T* base_ = nullptr;
  size_t n_, offset_;
};

// A workspace as a caller provides one: exactly `bytes` from device_allocate (256-byte aligned;
// null for 0 bytes), filled with 0xFF (NaN as float or double, so a partial sum read before it is
// written shows up), and followed by a guard that guard_intact() checks: a kernel writing past what
// its query asked for is caught.
class Workspace {
 public:
  explicit Workspace(size_t bytes) : bytes_(bytes), mem_(bytes + kGuard) {
    kernels::cuda::fill_bytes_async(mem_.get(), 0xFF, bytes_);
    kernels::cuda::fill_bytes_async(mem_.get() + bytes_, kGuardByte, kGuard);
  }
  void* get() const { return bytes_ > 0 ? mem_.get() : nullptr; }
  size_t bytes() const { return bytes_; }
  bool guard_intact() const {
    std::vector<unsigned char> guard(kGuard);
    kernels::cuda::copy_device_to_host(guard.data(), mem_.get() + bytes_, kGuard);  // waits
    return guard == std::vector<unsigned char>(kGuard, kGuardByte);
  }

 private:
  static constexpr size_t kGuard = 256;
  static constexpr unsigned char kGuardByte = 0xA5;
  size_t bytes_;
  DeviceArray<unsigned char> mem_;
};

// The output of a kernel under test, full of NaN, so an element the kernel never writes shows up.
inline DeviceArray<float> poisoned(size_t n, size_t offset = 0) {
  return DeviceArray<float>(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()), offset);
}
// The same for bf16 outputs: 0xFFFF is a NaN (all exponent bits set, a nonzero mantissa).
inline DeviceArray<bfloat16> poisoned_bf16(size_t n, size_t offset = 0) {
  return DeviceArray<bfloat16>(std::vector<bfloat16>(n, bfloat16{0xFFFF}), offset);
}

// Either of the two, by the element type: for tests templated on the storage type.
template <typename T>
DeviceArray<T> poisoned_as(size_t n, size_t offset = 0) {
  if constexpr (std::is_same_v<T, float>)
    return poisoned(n, offset);
  else
    return poisoned_bf16(n, offset);
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace hotlap::test
