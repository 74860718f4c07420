// Host-side launch arithmetic shared by the CUDA kernels, the check of a caller's workspace, and
// the macro that lets the per-thread arithmetic of a kernel live in a header both nvcc and the host
// compiler read.
//
// Nothing here includes a CUDA header: the tests (compiled by the host compiler) call these same
// functions to check the launch plans and to run the kernels' per-thread code on the CPU.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "kernels/error.h"

#include "kernels/host_device.h"

namespace hotlap::kernels::cuda {

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The y and z grid dimensions are limited to 65535 blocks; x to 2^31 - 1.
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxGridX = 2147483647;

// One-dimensional grid-stride kernels (element-wise ops, optimizer updates, casts): 256 threads a
// block, and at most kMaxElementwiseBlocks blocks, each thread looping over the rest. 256 threads x
// 4096 blocks is 1M threads, ~8x what an H100 (132 SMs x 2048 threads) holds at once, so every SM
// stays busy and the tail is short; more blocks would only add scheduling.
constexpr int kElementwiseThreads = 256;
constexpr int64_t kMaxElementwiseBlocks = 4096;

// Blocks for `work` independent items (elements, or float4 groups) at kElementwiseThreads a block.
inline int64_t elementwise_blocks(int64_t work) {
  return std::clamp<int64_t>(ceil_div(work, kElementwiseThreads), 1, kMaxElementwiseBlocks);
}

// Float4 groups an element-wise kernel may process as 16-byte vectors: n / 4 when every pointer it
// touches (null ones aside) is 16-byte aligned, else 0 (all scalar). The n % 4 tail is scalar.
// Allocations are 256-byte aligned; a view at an odd float offset is not, and takes the scalar path.
// vector4_groups: the same for 4-element vectors of any element size (8 bytes for bf16).
inline int64_t vector4_groups(int64_t n, size_t element_bytes,
                              std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % (4 * element_bytes) != 0) return 0;
  return n / 4;
}
inline int64_t float4_groups(int64_t n, std::initializer_list<const void*> pointers) {
  return vector4_groups(n, sizeof(float), pointers);
}

// ---- workspaces ----------------------------------------------------------------------------------
// A kernel whose reduction needs device memory for partial sums (batch norm, the loss) takes it from
// the caller as (void* workspace, size_t workspace_bytes): kernels/ holds no allocation policy, the
// caller owns the memory (a block from its caching allocator, say) and sizes it with the op's
// *_workspace_bytes query, which is exact and depends on the shape alone. The workspace is only
// used by the kernels of that one call, all queued on the compute stream: the caller may hand the
// same memory to the next op on the stream at once, but must not free it for other streams (or the
// host) before the call's kernels have finished.
//
// Alignment: the kernels themselves need only that of the element they store (4 bytes for batch
// norm's floats, 8 for the loss's doubles); the contract asks for 256 bytes, what device_allocate
// (cudaMalloc) and an allocator's blocks give, so a kernel may later move to vector accesses
// without changing any caller.
constexpr size_t kWorkspaceAlignment = 256;

// Throws a hotlap::Error unless `workspace` is at least `needed` bytes (by the caller's word,
// `workspace_bytes`) and kWorkspaceAlignment-aligned. needed == 0 accepts anything, null included.
// `shape...` describes the call's shape; it is formatted only on failure.
template <typename... Shape>
void check_workspace(const char* op, const char* query, size_t needed, const void* workspace,
                     size_t workspace_bytes, const Shape&... shape) {
  if (needed == 0) return;
  HOTLAP_CHECK(workspace_bytes >= needed, op, ": workspace too small for ", shape..., ": needs ",
               needed, " bytes, given ", workspace_bytes, " (size it with cuda::", query, ")");
  HOTLAP_CHECK(workspace != nullptr, op, ": no workspace (null) for ", shape..., ": needs ",
               needed, " bytes (size it with cuda::", query, ")");
  HOTLAP_CHECK(reinterpret_cast<uintptr_t>(workspace) % kWorkspaceAlignment == 0, op,
               ": workspace at ", workspace, " for ", shape..., " (", needed,
               " bytes needed, given ", workspace_bytes, ") is not ", kWorkspaceAlignment,
               "-byte aligned; device_allocate's blocks are");
}

}  // namespace hotlap::kernels::cuda
