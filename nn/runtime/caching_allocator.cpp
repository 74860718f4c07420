// The caching allocator: see caching_allocator.h.
#include "nn/runtime/caching_allocator.h"

#include <sstream>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace hotlap {

namespace {

constexpr size_t kAlignment = 512;
constexpr size_t kMaxSlack = size_t{4} << 20;  // a cached block may be at most this much larger

std::string mib(size_t bytes) {
  char buf[40];
  if (bytes < (size_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

size_t CachingAllocator::rounded_size(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

CachingAllocator::CachingAllocator(std::string name, SourceAllocate source_allocate, SourceFree source_free)
    : name_(std::move(name)), source_allocate_(std::move(source_allocate)), source_free_(std::move(source_free)) {}

CachingAllocator::~CachingAllocator() {
  for (auto& [size, ptr] : cached_) source_free_(ptr);
  // Blocks still in use at exit belong to tensors that outlive the allocator (static objects); the
  // process is ending, so they are left to the driver.
}

void* CachingAllocator::take_from_cache(size_t size) {
  auto it = cached_.lower_bound(size);
  if (it == cached_.end()) return nullptr;
  if (it->first - size > std::min(size, kMaxSlack)) return nullptr;  // too big to waste on it
  void* ptr = it->second;
  in_use_[ptr] = it->first;
  stats_.in_use += it->first;
  cached_.erase(it);
  return ptr;
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = rounded_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.requests;
  void* ptr = take_from_cache(size);
  if (!ptr) {
    ptr = source_allocate_(size);
    if (!ptr && !cached_.empty()) {  // out of memory: give the cache back and try once more
      for (auto& [s, p] : cached_) {
        source_free_(p);
        stats_.reserved -= s;
        ++stats_.source_frees;
      }
      cached_.clear();
      ptr = source_allocate_(size);
    }
    if (!ptr) {
      std::ostringstream os;
      os << name_ << ": out of memory allocating " << mib(size) << " (" << mib(stats_.in_use)
         << " in use by tensors, peak " << mib(stats_.peak_in_use) << "; the cache was emptied and the request "
         << "retried)";
      throw OutOfMemory(os.str());
    }
    ++stats_.source_allocations;
    stats_.reserved += size;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
    in_use_[ptr] = size;
    stats_.in_use += size;
  }
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  return ptr;
}

void CachingAllocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  HOTLAP_CHECK(it != in_use_.end(), name_, ": release of a pointer it did not hand out");
  stats_.in_use -= it->second;
  cached_.emplace(it->second, ptr);
  in_use_.erase(it);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, ptr] : cached_) {
    source_free_(ptr);
    stats_.reserved -= size;
    ++stats_.source_frees;
  }
  cached_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

CachingAllocator& cuda_allocator() {
  HOTLAP_CHECK(kernels::cuda_compiled(), "cuda tensors: hotlap was built without CUDA");
  // Leaked on purpose: tensors in static objects may be freed after it would be destroyed.
  static CachingAllocator* allocator = new CachingAllocator(
      "cuda allocator",
      [](size_t bytes) -> void* {
        // device_allocate throws on any error; lack of memory is reported as nullptr so the cache
        // can be flushed first. Any other error propagates.
        const kernels::cuda::DeviceMemoryInfo info = kernels::cuda::device_memory_info();
        if (bytes > info.free_bytes) return nullptr;
        try {
          return kernels::cuda::device_allocate(bytes);
        } catch (const Error&) {
          if (kernels::cuda::device_memory_info().free_bytes < bytes) return nullptr;
          throw;
        }
      },
      [](void* ptr) { kernels::cuda::device_free(ptr); });
  return *allocator;
}

CachingAllocator& host_allocator() {
  static CachingAllocator* allocator = new CachingAllocator(  // leaked on purpose, as above
      "host allocator",
      // Sizes are multiples of 512, as aligned_alloc wants; it returns nullptr when out of memory.
      [](size_t bytes) { return std::aligned_alloc(64, bytes); }, [](void* ptr) { std::free(ptr); });
  return *allocator;
}

CachingAllocator& pinned_host_allocator() {
  HOTLAP_CHECK(kernels::cuda_compiled(), "pinned host memory: hotlap was built without CUDA");
  static CachingAllocator* allocator = new CachingAllocator(  // leaked on purpose, as above
      "pinned host allocator", [](size_t bytes) { return kernels::cuda::host_allocate_pinned(bytes); },
      [](void* ptr) { kernels::cuda::host_free_pinned(ptr); });
  return *allocator;
}

}  // namespace hotlap
