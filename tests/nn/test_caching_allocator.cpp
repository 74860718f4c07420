// The caching allocator's policy, on the CPU with a fake device that counts what it is asked for
// and can be made to run out of memory.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "kernels/device.h"
#include "kernels/error.h"
#include "nn/runtime/caching_allocator.h"
#include "nn/runtime/tensor.h"

namespace {

using hotlap::CachingAllocator;

// Host memory standing in for a device of `capacity` bytes.
struct FakeDevice {
  size_t capacity = 1 << 20;
  size_t used = 0;
  std::map<void*, size_t> live;

  CachingAllocator make() {
    return CachingAllocator(
        "fake allocator",
        [this](size_t bytes) -> void* {
          if (used + bytes > capacity) return nullptr;  // how the source reports lack of memory
          void* p = std::malloc(bytes);
          used += bytes;
          live[p] = bytes;
          return p;
        },
        [this](void* p) {
          REQUIRE(live.count(p) == 1);
          used -= live[p];
          live.erase(p);
          std::free(p);
        });
  }
};

}  // namespace

TEST_CASE("caching allocator: a steady-state loop takes nothing from the device after the first pass") {
  FakeDevice dev;
  dev.capacity = 64 << 20;
  CachingAllocator a = dev.make();
  const std::vector<size_t> step = {4096, 100, 1 << 20, 3000, 4096, 77, 1 << 20};
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<void*> held;
    for (size_t bytes : step) held.push_back(a.allocate(bytes));
    for (void* p : held) a.release(p);
    if (pass == 0) {
      CHECK(a.stats().source_allocations == step.size());
    }
  }
  const hotlap::AllocatorStats s = a.stats();
  CHECK(s.source_allocations == step.size());  // every later pass was served from the cache
  CHECK(s.requests == 5 * step.size());
  CHECK(s.in_use == 0);
  CHECK(s.peak_in_use == s.reserved);
  size_t expected = 0;
  for (size_t bytes : step) expected += CachingAllocator::rounded_size(bytes);
  CHECK(s.reserved == expected);
}

TEST_CASE("caching allocator: sizes, reuse and the waste limit") {
  CHECK(CachingAllocator::rounded_size(1) == 512);
  CHECK(CachingAllocator::rounded_size(512) == 512);
  CHECK(CachingAllocator::rounded_size(513) == 1024);
  FakeDevice dev;
  CachingAllocator a = dev.make();
  CHECK(a.allocate(0) == nullptr);
  void* big = a.allocate(8192);
  a.release(big);
  // A 1 KiB request does not take the cached 8 KiB block (more than twice its size)...
  void* small = a.allocate(1000);
  CHECK(small != big);
  CHECK(a.stats().source_allocations == 2);
  // ...but a 5 KiB one does.
  void* mid = a.allocate(5000);
  CHECK(mid == big);
  CHECK(a.stats().in_use == 8192 + 1024);
  a.release(small);
  a.release(mid);
  CHECK(a.stats().in_use == 0);
  a.release(nullptr);  // no-op
  int on_stack = 0;
  CHECK_THROWS_WITH_AS(a.release(&on_stack), doctest::Contains("did not hand out"), hotlap::Error);
}

TEST_CASE("caching allocator: out of memory flushes the cache and retries, then says what is in use") {
  FakeDevice dev;
  dev.capacity = 4096 + 6144;
  CachingAllocator a = dev.make();
  void* p = a.allocate(4096);
  void* q = a.allocate(4096);
  a.release(p);  // cached, still held from the device
  // 6000 bytes (6144 rounded): the cached block is too small and the device has only 2048 left;
  // the cache is given back (p's 4096 bytes) and the retry fits exactly.
  void* r = a.allocate(6000);
  CHECK(r != nullptr);
  CHECK(a.stats().source_frees == 1);
  CHECK(dev.used == 4096 + 6144);
  a.release(q);
  a.release(r);

  // Nothing fits: a clear error with the numbers, and nothing is lost.
  FakeDevice tiny;
  tiny.capacity = 1024;
  CachingAllocator b = tiny.make();
  void* x = b.allocate(1000);
  CHECK_THROWS_WITH_AS(b.allocate(4000), doctest::Contains("out of memory allocating 4096 bytes"), hotlap::Error);
  CHECK_THROWS_AS(b.allocate(4000), hotlap::OutOfMemory);  // its own type: callers say what it was for
  b.release(x);
  CHECK(b.stats().in_use == 0);
  b.empty_cache();
  CHECK(b.stats().reserved == 0);
  CHECK(tiny.live.empty());
}

TEST_CASE("caching allocator: cuda tensors without a GPU are one clear error") {
  if (hotlap::kernels::cuda_device_count() > 0) return;  // a GPU machine tests real cuda tensors
  CHECK_THROWS_AS(hotlap::Tensor::empty({4}, hotlap::DType::f32, hotlap::Device::cuda), hotlap::Error);
}

TEST_CASE("caching allocator: large CPU tensors reuse their blocks, small ones use the heap") {
  hotlap::CachingAllocator& host = hotlap::host_allocator();
  const size_t floats = hotlap::kHostCacheMinBytes / sizeof(float) * 3;  // 3 MiB
  const void* first = nullptr;
  const hotlap::AllocatorStats before = host.stats();
  {
    hotlap::Tensor t = hotlap::Tensor::zeros({static_cast<int64_t>(floats)});
    first = t.raw();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
    CHECK(host.stats().in_use == before.in_use + floats * sizeof(float));
  }
  CHECK(host.stats().in_use == before.in_use);
  // The same size again takes the block just freed: no new memory from the C library.
  const size_t sources = host.stats().source_allocations;
  hotlap::Tensor again = hotlap::Tensor::empty({static_cast<int64_t>(floats)});
  CHECK(again.raw() == first);
  CHECK(host.stats().source_allocations == sources);
  // Below the threshold the cache is not involved.
  const size_t requests = host.stats().requests;
  hotlap::Tensor small = hotlap::Tensor::zeros({1000});
  CHECK(reinterpret_cast<uintptr_t>(small.raw()) % 64 == 0);
  CHECK(host.stats().requests == requests);
}
