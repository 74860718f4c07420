// Device detection: with no GPU (or no driver) the CUDA runtime reports an error, which must read as
// "no device", never a crash. With a GPU, the summary names it and its compute capability.
#include <doctest/doctest.h>

#include <string>

#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"

TEST_CASE("device: detection never fails and describes what it found") {
  namespace k = hotlap::kernels;
  const int count = k::cuda_device_count();
  const std::string summary = k::cuda_device_summary();
  CHECK(count >= 0);
  if (count == 0) {
    MESSAGE("no CUDA device, CUDA tests skip: " << summary);
    CHECK(summary.rfind("no CUDA device", 0) == 0);
  } else {
    CHECK(k::cuda_compiled());
    CHECK(summary.find("sm_") != std::string::npos);
  }
  if (!k::cuda_compiled()) CHECK(count == 0);
}

// Without a GPU (or without CUDA) recording an event is a clear Error; a null event, one that was
// never recorded, needs no runtime at all: waiting for it and destroying it do nothing.
TEST_CASE("device: events without a GPU: recording throws, a null event is a no-op") {
  namespace cuda = hotlap::kernels::cuda;
  if (hotlap::kernels::cuda_device_count() > 0) return;  // tests/kernels/test_cuda_kernels.cpp
  cuda::Event event = nullptr;
  CHECK_THROWS_AS(cuda::record_event(event, "device test"), hotlap::Error);
  CHECK(event == nullptr);
  CHECK_NOTHROW(cuda::wait_event(nullptr, "device test"));
  cuda::destroy_event(nullptr);
}
