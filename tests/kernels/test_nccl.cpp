// The GPUs' all-reduce (kernels/comm.h: allreduce_mean_device, on NCCL). One process is a world of
// one rank, and NCCL's communicator of one rank leaves the data as it is: the path from the id
// through ncclCommInitRank to ncclAllReduce on the comm stream, after the compute stream's work and
// before the compute stream's next, runs on one GPU. Skipped without a GPU, or in a build without
// NCCL; the sums over several ranks are the "mpi:" tests' (host memory).
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
  namespace cuda = hotlap::kernels::cuda;
  cuda::Event uploaded = nullptr, reduced = nullptr;
  cuda::stream_wait(cuda::comm_stream(), cuda::compute_stream(), uploaded, "nccl test");
  comm::allreduce_mean_device(data.get(), static_cast<int64_t>(values.size()), cuda::comm_stream(), "test");
  cuda::stream_wait(cuda::compute_stream(), cuda::comm_stream(), reduced, "nccl test");
  CHECK(hotlap::test::same_float_values(data.download(), values));  // download: on the compute stream
  cuda::destroy_event(uploaded);
  cuda::destroy_event(reduced);
}
