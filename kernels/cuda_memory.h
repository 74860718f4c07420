// The CUDA runtime as the rest of hotlap sees it: raw device memory, copies, the compute stream and
// synchronisation. Plain C++ (no CUDA header), so code built by the host compiler can call it; in a
// build without CUDA every function throws hotlap::Error("... built without CUDA").
//
// All of hotlap's GPU work is ordered on ONE stream, the compute stream: every kernel in
// kernels/cuda is launched on it, and the copies below are ordered on it, so a copy sees the
// results of every kernel launched before it without any further synchronisation.
//
// device_allocate/device_free are the raw calls (cudaMalloc/cudaFree). They are slow, and cudaFree
// waits for the whole device, so a training step must not call them: a caching allocator above
// this layer takes big blocks from device_allocate once and hands them out again and again
// (design rule 4); the workspaces some kernels take for their partial sums come from it too
// (kernels/cuda/launch.h). device_memory_info gives it the numbers to report and to size its pool.
#pragma once

#include <cstddef>

struct CUstream_st;  // the CUDA runtime's stream object: cudaStream_t is CUstream_st*
struct CUevent_st;   // and its event object: cudaEvent_t is CUevent_st*

namespace hotlap::kernels::cuda {

using Stream = CUstream_st*;
using Event = CUevent_st*;

// ---- memory ------------------------------------------------------------------------------------
// At least 256-byte aligned (cudaMalloc's guarantee), so float4 loads are always aligned at the
// start of an allocation. 0 bytes gives nullptr. Out of memory throws an Error that says how much
// was asked for and how much the device has free.
void* device_allocate(size_t bytes);
// Frees what device_allocate returned; null is a no-op. Waits for all work on the device first.
void device_free(void* ptr);

// Page-locked ("pinned") host memory (cudaHostAlloc / cudaFreeHost): copies from it to the device
// can run asynchronously, without the runtime staging them through a pinned buffer of its own. Slow
// to allocate; a caller keeps and reuses its blocks (nn/runtime/caching_allocator.h).
void* host_allocate_pinned(size_t bytes);
void host_free_pinned(void* ptr);

struct DeviceMemoryInfo {
  size_t free_bytes = 0, total_bytes = 0;
};
DeviceMemoryInfo device_memory_info();

// ---- copies and fills, ordered on the compute stream --------------------------------------------
// Blocking: return when the copy is complete, so it has seen every kernel launched before it.
void copy_host_to_device(void* dst_device, const void* src_host, size_t bytes);
void copy_device_to_host(void* dst_host, const void* src_device, size_t bytes);
// Asynchronous: return at once. The host buffer must stay valid and untouched until synchronize()
// (with pageable host memory the runtime may still block; page-locked memory makes them truly
// asynchronous).
void copy_host_to_device_async(void* dst_device, const void* src_host, size_t bytes);
void copy_device_to_host_async(void* dst_host, const void* src_device, size_t bytes);
void copy_device_to_device_async(void* dst_device, const void* src_device, size_t bytes);
// Sets `bytes` bytes to `byte_value` (asynchronous, like a kernel).
void fill_bytes_async(void* dst_device, int byte_value, size_t bytes);

// ---- stream and synchronisation -----------------------------------------------------------------
// The compute stream of the current device, created on first use (non-blocking: it does not wait
// for the legacy default stream). Lives until the process exits.
Stream compute_stream();
// Waits until everything on the compute stream has finished. An error raised inside a kernel is
// reported here (kernels run asynchronously), as an Error naming `what` (the caller's op).
void synchronize(const char* what = "synchronize");

// ---- events: a point on the compute stream ------------------------------------------------------
// For a host buffer an asynchronous copy reads: record an event after the copy, and before the
// buffer is reused wait for that event alone, not for all the work queued since (synchronize).
//
// Records `event` on the compute stream here: it completes once everything queued before it has.
// A null `event` is created first (cudaEventDisableTiming: for ordering only, the cheap kind); a
// recorded one is recorded again, and then marks the new point.
void record_event(Event& event, const char* what);
// Blocks the host until `event` has completed (cudaEventSynchronize); null: returns at once. An
// error from the work before it is reported here, as an Error naming `what`.
void wait_event(Event event, const char* what);
// Destroys an event from record_event; null is a no-op. Never throws (destructors call it): one
// still pending is released by the runtime when it completes.
void destroy_event(Event event) noexcept;

// ---- a second stream: communication beside the compute stream ----------------------------------
// Data-parallel training sums each bucket of gradients across the GPUs as soon as backward has
// written it, while backward goes on computing the next (nn/runtime/collective.h). That sum runs on
// the comm stream, which runs alongside the compute stream: the two are ordered only where
// stream_wait says so. Created on first use, non-blocking, lives until the process exits.
Stream comm_stream();
// Makes `waiter` wait, on the GPU (the host returns at once), for everything queued on `producer`
// so far: records `event` on `producer` (creating it when null) and queues a wait for it on `waiter`.
void stream_wait(Stream waiter, Stream producer, Event& event, const char* what);
// copy_device_to_device_async, queued on `stream`.
void copy_device_to_device_on(Stream stream, void* dst_device, const void* src_device, size_t bytes);

}  // namespace hotlap::kernels::cuda
