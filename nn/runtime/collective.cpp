#include "nn/runtime/collective.h"

#include <algorithm>
#include <cstring>

#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/elementwise.h"
#include "kernels/error.h"

namespace hotlap {

namespace {

// The defined tensors of the list (the ranks run the same network, so every rank skips the same
// ones), checked to be f32.
std::vector<Tensor> defined_f32(const std::vector<Tensor>& tensors, const char* what) {
  std::vector<Tensor> defined;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    HOTLAP_CHECK(t.dtype() == DType::f32, what, ": f32 tensors only, not ", t.describe());
    defined.push_back(t);
  }
  return defined;
}

// Calls bucket(first, last, floats) for consecutive runs [first, last) of `tensors` holding at most
// `bucket_bytes` (a tensor larger than that is a bucket of its own).
template <typename Bucket>
void for_each_bucket(const std::vector<Tensor>& tensors, size_t bucket_bytes, Bucket bucket) {
  const size_t most = std::max<size_t>(bucket_bytes / sizeof(float), 1);
  for (size_t first = 0; first < tensors.size();) {
    size_t last = first, floats = 0;
    while (last < tensors.size() && (last == first || floats + static_cast<size_t>(tensors[last].numel()) <= most))
      floats += static_cast<size_t>(tensors[last++].numel());
    bucket(first, last, floats);
    first = last;
  }
}

// Runs reduce(bucket, floats) on the tensors packed into host buckets, then unpacks each bucket back
// into its tensors (GPU ones through a host copy).
template <typename Reduce>
void in_host_buckets(const std::vector<Tensor>& tensors, size_t bucket_bytes, Reduce reduce) {
  std::vector<float> bucket;
  for_each_bucket(tensors, bucket_bytes, [&](size_t first, size_t last, size_t floats) {
    bucket.resize(floats);
    std::vector<Tensor> hosts(last - first);
    size_t at = 0;
    for (size_t i = first; i < last; ++i) {
      hosts[i - first] = tensors[i].device() == Device::cpu ? tensors[i] : tensors[i].to(Device::cpu);
      const size_t n = static_cast<size_t>(tensors[i].numel());
      std::memcpy(bucket.data() + at, hosts[i - first].f32(), n * sizeof(float));
      at += n;
    }
    reduce(bucket.data(), static_cast<int64_t>(floats));
    at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(tensors[i].numel());
      std::memcpy(hosts[i - first].f32(), bucket.data() + at, n * sizeof(float));
      if (tensors[i].device() != Device::cpu) {
        Tensor target = tensors[i];  // a handle on the same storage
        target.copy_from(hosts[i - first]);
      }
      at += n;
    }
  });
}

// The GPU path (NCCL, when compiled in): each bucket is packed into device memory, summed there and
// unpacked, all queued on the compute stream behind the backward pass. Not yet run on a GPU.
void allreduce_mean_on_device(const std::vector<Tensor>& tensors, size_t bucket_bytes, float scale) {
  for_each_bucket(tensors, bucket_bytes, [&](size_t first, size_t last, size_t floats) {
    Tensor bucket = Tensor::empty({static_cast<int64_t>(floats)}, DType::f32, Device::cuda);
    size_t at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(tensors[i].numel());
      kernels::cuda::copy_device_to_device_async(bucket.f32() + at, tensors[i].f32(), n * sizeof(float));
      at += n;
    }
    kernels::comm::allreduce_sum_device(bucket.f32(), static_cast<int64_t>(floats), "the gradients' all-reduce");
    kernels::cuda::scale(static_cast<int64_t>(floats), scale, bucket.f32(), bucket.f32());
    at = 0;
    for (size_t i = first; i < last; ++i) {
      const size_t n = static_cast<size_t>(tensors[i].numel());
      kernels::cuda::copy_device_to_device_async(tensors[i].f32(), bucket.f32() + at, n * sizeof(float));
      at += n;
    }
  });
}

}  // namespace

void allreduce_mean(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  const int size = kernels::comm::world().size;
  if (size == 1) return;
  const float scale = 1.0f / static_cast<float>(size);
  const std::vector<Tensor> defined = defined_f32(tensors, "allreduce_mean");
  const bool on_gpu = std::any_of(defined.begin(), defined.end(), [](const Tensor& t) { return t.device() == Device::cuda; });
  if (on_gpu && kernels::comm::nccl_compiled()) {
    for (const Tensor& t : defined)
      HOTLAP_CHECK(t.device() == Device::cuda, "allreduce_mean: tensors on one device, not ", t.describe());
    allreduce_mean_on_device(defined, bucket_bytes, scale);
    return;
  }
  in_host_buckets(defined, bucket_bytes, [&](float* data, int64_t n) {
    kernels::comm::allreduce_sum(data, n, "the gradients' all-reduce");
    for (int64_t i = 0; i < n; ++i) data[i] *= scale;
  });
}

void broadcast_from_root(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  if (kernels::comm::world().size == 1) return;
  in_host_buckets(defined_f32(tensors, "broadcast_from_root"), bucket_bytes, [](float* data, int64_t n) {
    kernels::comm::broadcast(data, n * static_cast<int64_t>(sizeof(float)), 0, "the parameters' broadcast");
  });
}

}  // namespace hotlap
