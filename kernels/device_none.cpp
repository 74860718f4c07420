// Device detection and the CUDA runtime API for builds without CUDA (HOTLAP_CUDA=OFF or no nvcc):
// no device, and every runtime call throws, so callers compile and link either way.
#include "kernels/cuda_memory.h"
#include "kernels/device.h"
#include "kernels/error.h"

namespace hotlap::kernels {

bool cuda_compiled() { return false; }
bool cudnn_compiled() { return false; }
int cuda_device_count() { return 0; }
void cuda_select_device(int ordinal) { throw_error("cuda_select_device(", ordinal, "): built without CUDA"); }
std::string cuda_device_summary() { return "no CUDA device (built without CUDA)"; }
std::string cuda_versions() {
  return "CUDA: not compiled in (built without CUDA)\ncuBLAS: not compiled in\ncuDNN: not compiled in";
}

namespace cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw_error(op, ": hotlap was built without CUDA (rebuild with nvcc available and "
                  "-DHOTLAP_CUDA=ON)");
}
}  // namespace

void* device_allocate(size_t) { no_cuda("device_allocate"); }
void device_free(void* ptr) {
  if (ptr != nullptr) no_cuda("device_free");
}
DeviceMemoryInfo device_memory_info() { no_cuda("device_memory_info"); }
void* host_allocate_pinned(size_t) { no_cuda("host_allocate_pinned"); }
void host_free_pinned(void* ptr) {
  if (ptr != nullptr) no_cuda("host_free_pinned");
}
void copy_host_to_device(void*, const void*, size_t) { no_cuda("copy_host_to_device"); }
void copy_device_to_host(void*, const void*, size_t) { no_cuda("copy_device_to_host"); }
void copy_host_to_device_async(void*, const void*, size_t) { no_cuda("copy_host_to_device_async"); }
void copy_device_to_host_async(void*, const void*, size_t) { no_cuda("copy_device_to_host_async"); }
void copy_device_to_device_async(void*, const void*, size_t) {
  no_cuda("copy_device_to_device_async");
}
void fill_bytes_async(void*, int, size_t) { no_cuda("fill_bytes_async"); }
Stream compute_stream() { no_cuda("compute_stream"); }
void synchronize(const char* what) { no_cuda(what); }
void record_event(Event&, const char* what) { no_cuda(what); }
void wait_event(Event event, const char* what) {
  if (event != nullptr) no_cuda(what);
}
void destroy_event(Event) noexcept {}
Stream comm_stream() { no_cuda("comm_stream"); }
void stream_wait(Stream, Stream, Event&, const char* what) { no_cuda(what); }
void copy_device_to_device_on(Stream, void*, const void*, size_t) { no_cuda("copy_device_to_device_on"); }

}  // namespace cuda
}  // namespace hotlap::kernels
