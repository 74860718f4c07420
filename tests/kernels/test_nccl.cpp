// The GPUs' all-reduce (kernels/comm.h: allreduce_sum_device, on NCCL). One process is a world of
// one rank, and NCCL's communicator of one rank leaves the data as it is: the path from the id
// through ncclCommInitRank to ncclAllReduce on the compute stream runs on one GPU. Skipped without a
// GPU, or in a build without NCCL; the sums over several ranks are the "mpi:" tests' (host memory).
#include <doctest/doctest.h>

#include <vector>

#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/device_buffers.h"
#include "test_util.h"

TEST_CASE("nccl: a one-rank all-reduce of GPU memory leaves it as it is") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  namespace comm = hotlap::kernels::comm;
  if (!comm::nccl_compiled()) {
    MESSAGE("CUDA test skipped: built without NCCL");
    return;
  }
  REQUIRE(comm::world().size == 1);
  const std::vector<float> values = hotlap::test::random_floats(100003, 12);
  hotlap::test::DeviceArray<float> data(values.size());
  data.upload(values);
  comm::allreduce_sum_device(data.get(), static_cast<int64_t>(values.size()), "test");
  hotlap::kernels::cuda::synchronize("nccl test");
  CHECK(hotlap::test::same_float_values(data.download(), values));
}
