#include "nn/runtime/collective.h"

#include <algorithm>
#include <cstring>

#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"

namespace hotlap {

namespace {

// Runs `reduce(bucket, floats)` on the tensors packed into buckets of at most `bucket_bytes` (a
// tensor larger than that is a bucket of its own), then unpacks each bucket back into its tensors.
template <typename Reduce>
void in_buckets(const std::vector<Tensor>& tensors, size_t bucket_bytes, const char* what, Reduce reduce) {
  std::vector<Tensor> defined;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    HOTLAP_CHECK(t.dtype() == DType::f32, what, ": f32 tensors only, not ", dtype_name(t.dtype()));
    defined.push_back(t);
  }
  const size_t bucket_floats = std::max<size_t>(bucket_bytes / sizeof(float), 1);
  std::vector<float> bucket;
  for (size_t first = 0; first < defined.size();) {
    // The tensors of this bucket: [first, last).
    size_t last = first, floats = 0;
    while (last < defined.size() && (last == first || floats + static_cast<size_t>(defined[last].numel()) <= bucket_floats))
      floats += static_cast<size_t>(defined[last++].numel());
    bucket.resize(floats);
    size_t at = 0;
    std::vector<Tensor> hosts(last - first);
    for (size_t i = first; i < last; ++i) {
      hosts[i - first] = defined[i].device() == Device::cpu ? defined[i] : defined[i].to(Device::cpu);
      const size_t n = static_cast<size_t>(defined[i].numel());
      std::memcpy(bucket.data() + at, hosts[i - first].f32(), n * sizeof(float));
      at += n;
    }
    reduce(bucket.data(), static_cast<int64_t>(floats));
    at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(defined[i].numel());
      Tensor& host = hosts[i - first];
      std::memcpy(host.f32(), bucket.data() + at, n * sizeof(float));
      if (defined[i].device() != Device::cpu) defined[i].copy_from(host);
      at += n;
    }
    first = last;
  }
}

// The GPU path (NCCL, when compiled in): each bucket is packed into device memory, summed there and
// unpacked, all queued on the compute stream behind the backward pass. Not yet run on a GPU.
void allreduce_mean_on_device(const std::vector<Tensor>& defined, size_t bucket_bytes, float scale) {
  const size_t bucket_floats = std::max<size_t>(bucket_bytes / sizeof(float), 1);
  for (size_t first = 0; first < defined.size();) {
    size_t last = first, floats = 0;
    while (last < defined.size() && (last == first || floats + static_cast<size_t>(defined[last].numel()) <= bucket_floats))
      floats += static_cast<size_t>(defined[last++].numel());
    Tensor bucket = Tensor::empty({static_cast<int64_t>(floats)}, DType::f32, Device::cuda);
    size_t at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(defined[i].numel());
      kernels::cuda::copy_device_to_device_async(bucket.f32() + at, defined[i].f32(), n * sizeof(float));
      at += n;
    }
    kernels::comm::allreduce_sum_device(bucket.f32(), static_cast<int64_t>(floats), "the gradients' all-reduce");
    kernels::cuda::scale(static_cast<int64_t>(floats), scale, bucket.f32(), bucket.f32());
    at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(defined[i].numel());
      kernels::cuda::copy_device_to_device_async(defined[i].f32(), bucket.f32() + at, n * sizeof(float));
      at += n;
    }
    first = last;
  }
}

}  // namespace

void allreduce_mean(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  const int size = kernels::comm::world().size;
  if (size == 1) return;
  const float scale = 1.0f / static_cast<float>(size);
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : tensors)
    if (t.defined() && t.device() == Device::cuda) on_gpu.push_back(t);
  if (!on_gpu.empty() && kernels::comm::nccl_compiled()) {
    for (const Tensor& t : tensors)
      HOTLAP_CHECK(!t.defined() || (t.device() == Device::cuda && t.dtype() == DType::f32),
                   "allreduce_mean: f32 tensors on one device, not ", t.describe());
    allreduce_mean_on_device(on_gpu, bucket_bytes, scale);
    return;
  }
  in_buckets(tensors, bucket_bytes, "allreduce_mean", [&](float* data, int64_t n) {
    kernels::comm::allreduce_sum(data, n, "the gradients' all-reduce");
    for (int64_t i = 0; i < n; ++i) data[i] *= scale;
  });
}

void broadcast_from_root(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  if (kernels::comm::world().size == 1) return;
  in_buckets(tensors, bucket_bytes, "broadcast_from_root", [](float* data, int64_t n) {
    kernels::comm::broadcast(data, n * static_cast<int64_t>(sizeof(float)), 0, "the parameters' broadcast");
  });
}

}  // namespace hotlap
