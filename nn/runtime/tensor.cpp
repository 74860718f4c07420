#include "nn/runtime/tensor.h"


#include <cstdlib>
#include <cstring>
#include <sstream>

#include "kernels/cast.h"
#include "kernels/cuda_memory.h"
#include "nn/runtime/caching_allocator.h"
#include "nn/runtime/dispatch.h"

namespace hotlap {

size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }
const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "f32" : "bf16"; }
const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape, const char* separator) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? separator : "") << shape[i];
  os << "]";
  return os.str();
}

// 64-byte alignment on the CPU: a cache line, and what AVX-512 loads like; blocks of 128 KiB and more
// come from the host caching allocator, and are kept for reuse when freed. On the GPU the caching
// allocator's blocks are 512-byte aligned.
Storage::Storage(size_t nbytes, Device dev, bool pin) : bytes(nbytes), device(dev), pinned(pin) {
  if (dev == Device::cuda) {
    data = cuda_allocator().allocate(nbytes);
    return;
  }
  if (pinned) {
    data = pinned_host_allocator().allocate(nbytes);
    return;
  }
  if (nbytes >= kHostCacheMinBytes) {
    data = host_allocator().allocate(nbytes);
    host_cached = true;
    return;
  }
  size_t rounded = (nbytes + 63) / 64 * 64;
  data = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  if (rounded != 0 && !data) throw OutOfMemory("tensor: out of memory allocating " + std::to_string(nbytes) + " bytes");
}

Storage::~Storage() {
  if (device == Device::cuda) {
    cuda_allocator().release(data);
  } else if (pinned) {
    // A copy queued from this buffer may still be reading it: wait for the last one to end before the
    // buffer can be handed out again. (An error here belongs to the GPU work queued before; the next
    // synchronisation reports it.)
    if (device_reads_done != nullptr) {
      try {
        kernels::cuda::wait_event(device_reads_done, "releasing a pinned host buffer");
      } catch (...) {
      }
      kernels::cuda::destroy_event(device_reads_done);
    }
    pinned_host_allocator().release(data);
  } else if (host_cached) {
    host_allocator().release(data);
  } else {
    std::free(data);
  }
}

static void check_shape(const Shape& shape) {
  for (int64_t d : shape) HOTLAP_CHECK(d >= 0, "tensor: negative dimension in shape ", shape_str(shape));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  check_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), Device::cpu, true);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device == Device::cuda)
    kernels::cuda::fill_bytes_async(t.raw(), 0, t.nbytes());
  else
    std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  HOTLAP_CHECK(shape_numel(shape) == static_cast<int64_t>(values.size()), "tensor: shape ",
               shape_str(shape), " needs ", shape_numel(shape), " values, got ", values.size());
  Tensor t = empty(shape);
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

TensorImpl& Tensor::impl() const {
  HOTLAP_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
  return *impl_;
}

const Shape& Tensor::shape() const { return impl().shape; }

int64_t Tensor::dim(int64_t i) const {
  int64_t n = ndim();
  HOTLAP_CHECK(i >= -n && i < n, "tensor: dimension ", i, " out of range for shape ", shape_str(shape()));
  return shape()[static_cast<size_t>(i < 0 ? i + n : i)];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }

Shape Tensor::strides() const {
  Shape s(shape().size());
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    s[i] = stride;
    stride *= shape()[i];
  }
  return s;
}

DType Tensor::dtype() const { return impl().dtype; }
Device Tensor::device() const { return impl().storage->device; }
bool Tensor::is_pinned() const { return impl().storage->pinned; }

void* Tensor::raw() const {
  return static_cast<char*>(impl().storage->data) + impl().offset_bytes;
}

float* Tensor::f32() const {
  HOTLAP_CHECK(dtype() == DType::f32, "tensor: f32 access to a ", describe(), " tensor");
  return static_cast<float*>(raw());
}

bfloat16* Tensor::bf16() const {
  HOTLAP_CHECK(dtype() == DType::bf16, "tensor: bf16 access to a ", describe(), " tensor");
  return static_cast<bfloat16*>(raw());
}

std::vector<float> Tensor::to_vector() const {
  if (device() == Device::cuda) return to(Device::cpu).to_vector();
  std::vector<float> v(static_cast<size_t>(numel()));
  if (dtype() == DType::f32)
    std::memcpy(v.data(), raw(), v.size() * sizeof(float));
  else
    dispatch::convert(Device::cpu, numel(), bf16(), v.data());
  return v;
}

float Tensor::item() const {
  HOTLAP_CHECK(numel() == 1, "tensor: item() of a tensor with ", numel(), " elements ",
               shape_str(shape()));
  return to_vector()[0];
}

void Tensor::copy_from(const Tensor& src) {
  HOTLAP_CHECK(src.shape() == shape(), "tensor: copy from ", src.describe(), " into ", describe());
  namespace kcu = kernels::cuda;
  if (src.device() == Device::cuda || device() == Device::cuda) {
    if (src.dtype() != dtype() && src.device() == device()) {  // a cast on the GPU
      if (dtype() == DType::f32)
        dispatch::convert(Device::cuda, numel(), src.bf16(), f32());
      else
        dispatch::convert(Device::cuda, numel(), src.f32(), bf16());
    } else if (src.dtype() != dtype()) {  // convert on the source's device, then move the bytes
      Tensor converted = empty(shape(), dtype(), src.device());
      converted.copy_from(src);
      copy_from(converted);
    } else if (src.device() == Device::cpu && src.is_pinned()) {
      kcu::copy_host_to_device_async(raw(), src.raw(), nbytes());
      // The copy reads src after this returns: mark its end, for src's release to wait on.
      kcu::record_event(src.impl().storage->device_reads_done, "copy from a pinned host buffer");
    } else if (src.device() == Device::cpu) {
      kcu::copy_host_to_device(raw(), src.raw(), nbytes());
    } else if (device() == Device::cpu) {
      kcu::copy_device_to_host(raw(), src.raw(), nbytes());
    } else {
      kcu::copy_device_to_device_async(raw(), src.raw(), nbytes());
    }
    return;
  }
  if (src.dtype() == dtype())
    std::memcpy(raw(), src.raw(), nbytes());
  else if (dtype() == DType::f32)
    dispatch::convert(Device::cpu, numel(), src.bf16(), f32());
  else
    dispatch::convert(Device::cpu, numel(), src.f32(), bf16());
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_from(*this);
  return out;
}

void Tensor::move_to_(Device target) {
  if (target == device()) return;
  HOTLAP_CHECK(is_leaf(), "tensor: move_to_ on a computed tensor ", describe(), " (move the leaves it came from)");
  Tensor moved = to(target);
  impl().storage = moved.impl().storage;
  impl().offset_bytes = 0;
  impl().grad.reset();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return out;
}

void Tensor::fill_(float value) {
  if (device() == Device::cuda) {
    if (dtype() == DType::f32) {
      dispatch::fill(Device::cuda, numel(), value, f32());
    } else {
      Tensor host = empty(shape(), dtype());
      host.fill_(value);
      copy_from(host);
    }
    return;
  }
  if (dtype() == DType::f32) {
    dispatch::fill(Device::cpu, numel(), value, f32());
  } else {
    bfloat16 b = kernels::float_to_bf16(value);
    bfloat16* p = bf16();
    for (int64_t i = 0; i < numel(); ++i) p[i] = b;
  }
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  HOTLAP_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "tensor: slice [", begin,
               ", ", end, ") of ", describe());
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl().storage;
  view->dtype = dtype();
  view->shape = shape();
  view->shape[0] = end - begin;
  int64_t row = numel() / std::max<int64_t>(dim(0), 1);
  view->offset_bytes = impl().offset_bytes + static_cast<size_t>(begin * row) * dtype_size(dtype());
  return Tensor(std::move(view));
}

Tensor Tensor::detach() const {
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl().storage;
  view->offset_bytes = impl().offset_bytes;
  view->shape = shape();
  view->dtype = dtype();
  return Tensor(std::move(view));
}

bool Tensor::requires_grad() const { return impl().requires_grad; }
bool Tensor::is_leaf() const { return impl().is_leaf; }

Tensor& Tensor::set_requires_grad(bool on) {
  HOTLAP_CHECK(is_leaf(), "tensor: requires_grad can only be set on a leaf tensor");
  HOTLAP_CHECK(!on || dtype() == DType::f32, "tensor: gradients need an f32 tensor, not ", describe());
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  HOTLAP_CHECK(!g.defined() || g.shape() == shape(), "tensor: gradient ", g.describe(),
               " does not match ", describe());
  impl().grad = g.impl_;
}

void Tensor::zero_grad() { impl().grad.reset(); }

bool Tensor::is_sole_owner() const {
  return impl_ != nullptr && impl_.use_count() == 1 && impl_->storage.use_count() == 1;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device_name(device());
}

}  // namespace hotlap
