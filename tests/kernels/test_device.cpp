// Device detection: with no GPU (or no driver) the CUDA runtime reports an error, which must read as
// "no device", never a crash. With a GPU, the summary names it and its compute capability.
#include <doctest/doctest.h>

#include <string>

#include "kernels/device.h"

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
