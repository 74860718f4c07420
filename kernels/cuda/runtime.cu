// The CUDA runtime behind kernels/cuda_memory.h: memory, copies, the compute stream, events, error
// reports.
// Every status is checked (design rule 5); nothing here launches a kernel.
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"

namespace hotlap::kernels::cuda {

namespace {

// Errors after which the CUDA context is unusable: every later call fails the same way.
bool is_sticky(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const std::string& what) {
  std::ostringstream os;
  os << what << ": CUDA error " << static_cast<int>(status) << " (" << cudaGetErrorName(status)
     << ": " << cudaGetErrorString(status) << ") in " << call;
  if (status == cudaErrorMemoryAllocation) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      os << "; out of GPU memory: " << free_bytes / kMiB << " MiB free of " << total_bytes / kMiB
         << " MiB";
    os << "; hint: use a smaller batch or image size";
  } else if (status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice) {
    os << "; hint: no usable CUDA device on this machine (`hotlap info` says what was found)";
  } else if (is_sticky(status)) {
    os << "; the CUDA context is now unusable, the process must restart (a kernel fault: run "
          "the CUDA tests, or compute-sanitizer, to find it)";
  }
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw Error(os.str());
}

void* device_allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw_error("device_allocate: out of GPU memory: asked for ", bytes / kMiB, " MiB, ",
                free_bytes / kMiB, " MiB free of ", total_bytes / kMiB,
                " MiB; hint: use a smaller batch or image size");
  }
  if (status != cudaSuccess)
    throw_cuda_error(status, "cudaMalloc", describe("device_allocate of ", bytes, " bytes"));
  return ptr;
}

void device_free(void* ptr) {
  if (ptr == nullptr) return;
  HOTLAP_CUDA_CHECK(cudaFree(ptr), "device_free");
}

void* host_allocate_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  HOTLAP_CUDA_CHECK(cudaHostAlloc(&ptr, bytes, cudaHostAllocDefault), "host_allocate_pinned of ", bytes, " bytes");
  return ptr;
}

void host_free_pinned(void* ptr) {
  if (ptr == nullptr) return;
  HOTLAP_CUDA_CHECK(cudaFreeHost(ptr), "host_free_pinned");
}

DeviceMemoryInfo device_memory_info() {
  DeviceMemoryInfo info;
  HOTLAP_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes), "device_memory_info");
  return info;
}

namespace {

// A non-blocking stream (it does not wait for the legacy default stream).
cudaStream_t new_stream(const char* what) {
  cudaStream_t s = nullptr;
  HOTLAP_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), what);
  return s;
}

}  // namespace

// Function-local statics: each created once, thread-safely, on first use; if creation throws (no
// device), the next call tries again.
Stream compute_stream() {
  static const cudaStream_t stream = new_stream("compute_stream");
  return stream;
}

Stream comm_stream() {
  static const cudaStream_t stream = new_stream("comm_stream");
  return stream;
}

void stream_wait(Stream waiter, Stream producer, Event& event, const char* what) {
  if (event == nullptr)
    HOTLAP_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), what,
                      ": creating an event");
  HOTLAP_CUDA_CHECK(cudaEventRecord(event, producer), what, ": recording an event");
  HOTLAP_CUDA_CHECK(cudaStreamWaitEvent(waiter, event, 0), what, ": waiting for an event");
}

void copy_host_to_device(void* dst_device, const void* src_host, size_t bytes) {
  copy_host_to_device_async(dst_device, src_host, bytes);
  synchronize("copy_host_to_device");
}

void copy_device_to_host(void* dst_host, const void* src_device, size_t bytes) {
  copy_device_to_host_async(dst_host, src_device, bytes);
  synchronize("copy_device_to_host");
}

void copy_host_to_device_async(void* dst_device, const void* src_host, size_t bytes) {
  if (bytes == 0) return;
  HOTLAP_CUDA_CHECK(
      cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, compute_stream()),
      "copy_host_to_device of ", bytes, " bytes");
}

void copy_device_to_host_async(void* dst_host, const void* src_device, size_t bytes) {
  if (bytes == 0) return;
  HOTLAP_CUDA_CHECK(
      cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, compute_stream()),
      "copy_device_to_host of ", bytes, " bytes");
}

void copy_device_to_device_async(void* dst_device, const void* src_device, size_t bytes) {
  copy_device_to_device_on(compute_stream(), dst_device, src_device, bytes);
}

void copy_device_to_device_on(Stream stream, void* dst_device, const void* src_device, size_t bytes) {
  if (bytes == 0) return;
  HOTLAP_CUDA_CHECK(cudaMemcpyAsync(dst_device, src_device, bytes, cudaMemcpyDeviceToDevice, stream),
                    "copy_device_to_device of ", bytes, " bytes");
}

void fill_bytes_async(void* dst_device, int byte_value, size_t bytes) {
  if (bytes == 0) return;
  HOTLAP_CUDA_CHECK(cudaMemsetAsync(dst_device, byte_value, bytes, compute_stream()),
                    "fill_bytes of ", bytes, " bytes");
}

void synchronize(const char* what) {
  HOTLAP_CUDA_CHECK(cudaStreamSynchronize(compute_stream()), what);
}

void record_event(Event& event, const char* what) {
  if (event == nullptr)
    HOTLAP_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), what,
                      ": creating an event");
  HOTLAP_CUDA_CHECK(cudaEventRecord(event, compute_stream()), what, ": recording an event");
}

void wait_event(Event event, const char* what) {
  if (event == nullptr) return;
  HOTLAP_CUDA_CHECK(cudaEventSynchronize(event), what);
}

void destroy_event(Event event) noexcept {
  // A failure here (the runtime already torn down at exit, say) leaves nothing to clean up.
  if (event != nullptr && cudaEventDestroy(event) != cudaSuccess) cudaGetLastError();
}

}  // namespace hotlap::kernels::cuda
