// Tensor: a shaped, typed view of reference-counted storage, plus what autograd needs.
//
// A Tensor is a handle (like torch.Tensor): copying it shares the same data and the same gradient.
// Storage is always dense; views (reshape, a slice of the batch) share it with a different shape or
// offset. CPU storage is 64-byte aligned host memory; cuda storage comes from the caching allocator
// (nn/runtime/caching_allocator.h) and is device memory. Activations are NHWC, convolution weights OHWI (design rule 1); nothing here depends on it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cast.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap {

enum class DType : uint8_t { f32, bf16 };
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
// "[2, 16, 16, 3]"; with separator "," the compact "[2,16,16,3]" of import reports.
std::string shape_str(const Shape& shape, const char* separator = ", ");

// One allocation, freed when the last Tensor using it goes away. Pinned storage is page-locked host
// memory (cpu device) that copies to the GPU read asynchronously: each such copy records
// device_reads_done on the compute stream right after itself, and releasing the storage first waits
// for that event, the last copy's end, and not for the GPU work queued since.
struct Storage {
  Storage(size_t bytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  bool pinned = false;
  bool host_cached = false;  // a large CPU block from host_allocator() (nn/runtime/caching_allocator.h)
  kernels::cuda::Event device_reads_done = nullptr;  // null: no copy has read it
};

class Tensor;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no data); defined() is false

  // Factories. Data is f32 unless a dtype is given; `empty` leaves it uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  // A cpu tensor in pinned (page-locked) host memory: its copies to the GPU are asynchronous, so the
  // host goes on while the copy runs (the data loader's batches). Needs a CUDA build.
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor scalar(float value) { return full({1}, value); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim(int64_t i) const;  // negative i counts from the end
  int64_t ndim() const { return static_cast<int64_t>(shape().size()); }
  int64_t numel() const;
  Shape strides() const;  // in elements; always the dense row-major strides of shape()
  DType dtype() const;
  Device device() const;
  bool is_pinned() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Typed access to the first element. Throws when T does not match the dtype. For a cuda tensor
  // these are device pointers: only kernels (kernels/cuda, kernels/cudnn) may dereference them.
  float* f32() const;
  bfloat16* bf16() const;
  void* raw() const;

  std::vector<float> to_vector() const;  // a copy as floats (bf16 widened)
  float item() const;                    // the single value of a one-element tensor
  Tensor to(DType dtype) const;          // a converted copy (or *this when already that dtype)
  Tensor to(Device device) const;        // a copy on `device` (or *this when already there)
  // Moves this tensor's data to `device` in place: every handle to it (a module's parameter, an
  // optimizer's list) sees the move. For leaves (parameters, buffers); drops the gradient.
  void move_to_(Device device);
  Tensor clone() const;                  // a deep copy, not attached to autograd
  void copy_from(const Tensor& src);     // same shape; converts dtype, crosses devices; not recorded
  void fill_(float value);

  // Views sharing storage. reshape accepts one -1. reshape is differentiable; slice is not.
  Tensor reshape(const Shape& shape) const;
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) of dimension 0
  Tensor detach() const;                           // same data, no gradient tracking

  // ---- autograd -------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // only on leaves (parameters, inputs)
  bool is_leaf() const;
  Tensor grad() const;       // undefined until a backward pass reached this tensor
  void set_grad(const Tensor& grad);
  void zero_grad();          // drops the gradient (the next backward starts from zero)
  void backward() const;     // d(this)/d(leaves); this must hold one element

  bool same_as(const Tensor& other) const { return impl_ == other.impl_; }
  // What same_as compares, as a key for maps: equal for every handle on this tensor, while it lives.
  const void* identity() const { return impl_.get(); }
  // No other handle or view shares this tensor's data: an op handed it by std::move may overwrite it.
  bool is_sole_owner() const;
  std::string describe() const;  // "f32[2, 3] cpu"

 private:
  friend struct Autograd;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  TensorImpl& impl() const;
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  bool is_leaf = true;      // false for results of recorded ops
  bool backward_done = false;  // a non-leaf whose tape entry a backward() has freed
  std::shared_ptr<TensorImpl> grad;
};

}  // namespace hotlap
