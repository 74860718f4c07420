// The caching allocator behind GPU tensors (design rule 4: no cudaMalloc/cudaFree in a steady-state
// training step), pinned host buffers, and large CPU tensors.
//
// cudaMalloc is slow and cudaFree waits for the whole device, while a training step creates and drops
// hundreds of tensors of the same few hundred sizes, in the same order, every step. So a freed block
// is not given back to the device: it goes into a free list, and the next request of a size it fits
// takes it again. After the first step every request is met from the cache.
//
// The policy, kept simple enough to read in one sitting:
// - Sizes are rounded up to a multiple of 512 bytes (keeps float4 and cuDNN alignment, and makes
//   near-equal sizes share blocks).
// - A request takes the smallest cached block of at least its size, if that block is not more than
//   twice the size and not more than 4 MiB larger: a huge block is not wasted on a small tensor.
// - Otherwise a new block comes from the source (the device). If that fails for lack of memory,
//   every cached block is released to the device and the request tried once more; if it fails again
//   the error says how much is in use, how much is cached, and the peak.
// - Blocks are reused in stream order without any synchronisation: all GPU work runs on one compute
//   stream (kernels/cuda_memory.h), so a kernel that reads a block's new contents is queued after
//   every kernel that used its old ones.
// The source is pluggable, so the policy is tested on the CPU with a fake device.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace hotlap {

struct AllocatorStats {
  size_t in_use = 0;          // bytes handed out now (rounded sizes)
  size_t peak_in_use = 0;     // the most ever handed out at once
  size_t reserved = 0;        // bytes held from the source: in use + cached
  size_t peak_reserved = 0;
  size_t source_allocations = 0;  // blocks taken from the source (cudaMalloc calls)
  size_t source_frees = 0;        // blocks given back
  size_t requests = 0;            // allocate() calls
};

class CachingAllocator {
 public:
  // source_allocate(bytes) returns a block or throws hotlap::Error; it must report lack of memory
  // by returning nullptr instead, so that the cache can be flushed and the request retried.
  using SourceAllocate = std::function<void*(size_t bytes)>;
  using SourceFree = std::function<void(void* ptr)>;

  CachingAllocator(std::string name, SourceAllocate source_allocate, SourceFree source_free);
  ~CachingAllocator();  // gives every block back to the source
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (0 gives nullptr). Throws hotlap::Error when the source has no
  // memory left even after the cache was flushed.
  void* allocate(size_t bytes);
  // Returns a block from allocate() to the cache. Null is a no-op; an unknown pointer throws.
  void release(void* ptr);
  // Gives every cached (not in use) block back to the source.
  void empty_cache();

  AllocatorStats stats() const;
  void reset_peaks();  // peak_in_use = in_use, peak_reserved = reserved
  static size_t rounded_size(size_t bytes);

 private:
  void* take_from_cache(size_t size);
  std::string name_;
  SourceAllocate source_allocate_;
  SourceFree source_free_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cached_;  // size -> block, free
  std::map<void*, size_t> in_use_;       // block -> size
  AllocatorStats stats_;
};

// The process's allocator for CUDA memory (kernels/cuda_memory.h's device_allocate/device_free),
// created on first use. Throws hotlap::Error in a build without CUDA.
CachingAllocator& cuda_allocator();

// The process's allocator for large CPU tensors (at least kHostCacheMinBytes; smaller ones come
// from the C library's heap directly). The same policy serves the CPU for another reason than
// cudaMalloc's cost: the C library maps each large block fresh from the kernel and unmaps it when
// freed, so every new activation is page-faulted in and zeroed page by page on first touch (~20k
// faults per batch-8 ResNet-50 forward pass, 5-10% of it on a 2-core machine: bench/NOTES.md).
// The threshold is glibc's own for mapping a block (128 KiB): below it the heap keeps freed memory;
// with 1 MiB, the 0.2-0.8 MiB activations of a batch-1 pass still cost ~700 faults (3%) a pass.
// Cached blocks are 64-byte aligned, like every CPU tensor.
constexpr size_t kHostCacheMinBytes = size_t{128} << 10;
CachingAllocator& host_allocator();

// The process's allocator for pinned host memory (kernels/cuda_memory.h's host_allocate_pinned),
// for Tensor::empty_pinned. Throws hotlap::Error in a build without CUDA.
CachingAllocator& pinned_host_allocator();

}  // namespace hotlap
