#include "nn/runtime/collective.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/error.h"
#include "nn/runtime/autograd.h"

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

// Calls bucket(first, last) for consecutive runs [first, last) of `sizes` (floats each) holding at
// most `bucket_bytes` (one larger than that is a bucket of its own).
template <typename Bucket>
void for_each_bucket(const std::vector<int64_t>& sizes, size_t bucket_bytes, Bucket bucket) {
  const size_t most = std::max<size_t>(bucket_bytes / sizeof(float), 1);
  for (size_t first = 0; first < sizes.size();) {
    size_t last = first, floats = 0;
    while (last < sizes.size() && (last == first || floats + static_cast<size_t>(sizes[last]) <= most))
      floats += static_cast<size_t>(sizes[last++]);
    bucket(first, last);
    first = last;
  }
}

// A bucket's pieces of memory: host or device pointers, `n` floats each.
struct Piece {
  float* data;
  int64_t n;
};

int64_t total_floats(const std::vector<Piece>& pieces) {
  int64_t n = 0;
  for (const Piece& p : pieces) n += p.n;
  return n;
}

// reduce(data, n) on a bucket of host memory: packed into `packed` (reused from bucket to bucket),
// then unpacked back into its pieces.
template <typename Reduce>
void in_host_bucket(const std::vector<Piece>& pieces, std::vector<float>& packed, Reduce reduce) {
  const int64_t n = total_floats(pieces);
  packed.resize(static_cast<size_t>(n));
  int64_t at = 0;
  for (const Piece& p : pieces) {
    std::memcpy(packed.data() + at, p.data, static_cast<size_t>(p.n) * sizeof(float));
    at += p.n;
  }
  reduce(packed.data(), n);
  at = 0;
  for (const Piece& p : pieces) {
    std::memcpy(p.data, packed.data() + at, static_cast<size_t>(p.n) * sizeof(float));
    at += p.n;
  }
}

// The mean over the ranks of host memory, in place: hotlap's own sum (the same bits on every rank),
// then the scale.
void host_bucket_mean(const std::vector<Piece>& pieces, std::vector<float>& packed, kernels::comm::Channel channel) {
  in_host_bucket(pieces, packed, [channel](float* data, int64_t n) {
    kernels::comm::allreduce_sum(data, n, "the gradients' all-reduce", channel);
    const float scale = 1.0f / static_cast<float>(kernels::comm::world().size);
    for (int64_t i = 0; i < n; ++i) data[i] *= scale;
  });
}

// The mean over the ranks of GPU memory, in place, queued on `stream`: packed into `packed` (n
// floats of device memory the caller keeps until the stream is past it), averaged by NCCL, unpacked.
void device_bucket_mean(const std::vector<Piece>& pieces, float* packed, kernels::cuda::Stream stream) {
  int64_t at = 0;
  for (const Piece& p : pieces) {
    kernels::cuda::copy_device_to_device_on(stream, packed + at, p.data, static_cast<size_t>(p.n) * sizeof(float));
    at += p.n;
  }
  kernels::comm::allreduce_mean_device(packed, at, stream, "the gradients' all-reduce");
  at = 0;
  for (const Piece& p : pieces) {
    kernels::cuda::copy_device_to_device_on(stream, p.data, packed + at, static_cast<size_t>(p.n) * sizeof(float));
    at += p.n;
  }
}

std::vector<int64_t> sizes_of(const std::vector<Tensor>& tensors) {
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) sizes.push_back(t.numel());
  return sizes;
}

std::vector<Piece> pieces_of(const std::vector<Tensor>& tensors, size_t first, size_t last) {
  std::vector<Piece> pieces;
  for (size_t i = first; i < last; ++i) pieces.push_back({tensors[i].f32(), tensors[i].numel()});
  return pieces;
}

// A thread that runs the CPU buckets' all-reduce one after another, in the order given, while the
// training thread goes on with backward. Errors are kept for finish() to throw.
class BucketThread {
 public:
  BucketThread() : thread_([this] { run(); }) {}
  ~BucketThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void submit(std::vector<Piece> pieces) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(pieces));
    }
    wake_.notify_all();
  }
  // Waits until every bucket submitted is done; throws the first error one of them raised.
  void finish() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return queue_.empty() && !busy_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void run() {
    std::vector<float> packed;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing
      std::vector<Piece> pieces = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      try {
        if (!error_) host_bucket_mean(pieces, packed, kernels::comm::Channel::gradients);
      } catch (...) {
        error_ = std::current_exception();  // read by finish() only once busy_ is false
      }
      lock.lock();
      busy_ = false;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<std::vector<Piece>> queue_;
  bool busy_ = false, closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

namespace {

// reduce(pieces, packed) on the defined tensors' host memory, bucket by bucket; GPU tensors go
// through host copies, copied back afterwards.
template <typename Reduce>
void host_buckets(const std::vector<Tensor>& defined, size_t bucket_bytes, Reduce reduce) {
  std::vector<Tensor> hosts;
  for (const Tensor& t : defined) hosts.push_back(t.device() == Device::cpu ? t : t.to(Device::cpu));
  std::vector<float> packed;
  for_each_bucket(sizes_of(hosts), bucket_bytes,
                  [&](size_t first, size_t last) { reduce(pieces_of(hosts, first, last), packed); });
  for (size_t i = 0; i < defined.size(); ++i)
    if (defined[i].device() != Device::cpu) {
      Tensor target = defined[i];  // a handle on the same storage
      target.copy_from(hosts[i]);
    }
}

}  // namespace

void allreduce_mean(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  if (kernels::comm::world().size == 1) return;
  const std::vector<Tensor> defined = defined_f32(tensors, "allreduce_mean");
  const bool on_gpu = std::any_of(defined.begin(), defined.end(), [](const Tensor& t) { return t.device() == Device::cuda; });
  if (on_gpu && kernels::comm::nccl_compiled()) {
    for (const Tensor& t : defined)
      HOTLAP_CHECK(t.device() == Device::cuda, "allreduce_mean: tensors on one device, not ", t.describe());
    for_each_bucket(sizes_of(defined), bucket_bytes, [&](size_t first, size_t last) {
      const std::vector<Piece> pieces = pieces_of(defined, first, last);
      Tensor packed = Tensor::empty({total_floats(pieces)}, DType::f32, Device::cuda);
      device_bucket_mean(pieces, packed.f32(), kernels::cuda::compute_stream());
    });
    return;
  }
  host_buckets(defined, bucket_bytes, [](const std::vector<Piece>& pieces, std::vector<float>& packed) {
    host_bucket_mean(pieces, packed, kernels::comm::Channel::main);
  });
}

void broadcast_from_root(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  if (kernels::comm::world().size == 1) return;
  host_buckets(defined_f32(tensors, "broadcast_from_root"), bucket_bytes,
               [](const std::vector<Piece>& pieces, std::vector<float>& packed) {
                 in_host_bucket(pieces, packed, [](float* data, int64_t n) {
                   kernels::comm::broadcast(data, n * static_cast<int64_t>(sizeof(float)), 0, "the parameters' broadcast");
                 });
               });
}

// ---- GradientReducer ------------------------------------------------------------------------------

struct GradientReducer::State {
  enum class Path { alone, device, host_thread, host_inline, after };
  std::vector<Tensor> parameters;               // last parameter first: the buckets' order
  std::vector<std::pair<size_t, size_t>> buckets;  // [first, last) of `parameters`
  std::unordered_map<const void*, size_t> bucket_of;  // a parameter's TensorImpl -> its bucket
  size_t bucket_bytes;
  Path path = Path::alone;
  // Per backward():
  std::vector<size_t> waiting;  // gradients each bucket still waits for
  size_t next = 0;              // the first bucket not started
  std::vector<Tensor> packed;   // the GPU buckets' packed memory, kept until the compute stream waits
  std::vector<float> host_packed;  // the inline CPU buckets', reused
  std::unique_ptr<BucketThread> thread;
  kernels::cuda::Event backward_point = nullptr, reduced_point = nullptr;
  Report report;

  ~State() {
    kernels::cuda::destroy_event(backward_point);
    kernels::cuda::destroy_event(reduced_point);
  }

  // The defined gradients of bucket b, checked (every rank skips the same undefined ones).
  std::vector<Piece> gradients_of(size_t b) const {
    std::vector<Piece> pieces;
    for (size_t i = buckets[b].first; i < buckets[b].second; ++i) {
      const Tensor g = parameters[i].grad();
      if (!g.defined()) continue;
      HOTLAP_CHECK(g.dtype() == DType::f32 && g.device() == parameters[i].device(),
                   "the gradients' all-reduce: an f32 gradient on the parameter's device, not ", g.describe());
      pieces.push_back({g.f32(), g.numel()});
    }
    return pieces;
  }

  void start(size_t b) {
    std::vector<Piece> pieces = gradients_of(b);
    if (pieces.empty()) return;
    switch (path) {
      case Path::device: {
        Tensor buffer = Tensor::empty({total_floats(pieces)}, DType::f32, Device::cuda);
        // Everything queued on the compute stream so far, the kernels that wrote these gradients
        // among it, comes before the bucket on the comm stream.
        kernels::cuda::stream_wait(kernels::cuda::comm_stream(), kernels::cuda::compute_stream(), backward_point,
                                   "the gradients' all-reduce");
        device_bucket_mean(pieces, buffer.f32(), kernels::cuda::comm_stream());
        packed.push_back(buffer);
        break;
      }
      case Path::host_thread:
        thread->submit(std::move(pieces));
        break;
      case Path::host_inline:
        host_bucket_mean(pieces, host_packed, kernels::comm::Channel::main);
        break;
      case Path::alone:
      case Path::after:
        break;
    }
  }

  // Called for each leaf whose gradient is final: starts the buckets that are ready, in order.
  void leaf_final(const Tensor& leaf) {
    const auto it = bucket_of.find(leaf.identity());
    if (it == bucket_of.end()) return;  // an input, or a parameter of another optimizer
    --waiting[it->second];
    while (next < buckets.size() && waiting[next] == 0) {
      start(next++);
      ++report.started_in_backward;
    }
  }
};

GradientReducer::GradientReducer(std::vector<Tensor> parameters, size_t bucket_bytes, bool one_rank_too)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.bucket_bytes = bucket_bytes;
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    HOTLAP_CHECK(it->defined() && it->dtype() == DType::f32, "GradientReducer: f32 parameters, not ",
                 it->describe());
    s.parameters.push_back(*it);
  }
  for_each_bucket(sizes_of(s.parameters), bucket_bytes, [&](size_t first, size_t last) {
    for (size_t i = first; i < last; ++i) s.bucket_of[s.parameters[i].identity()] = s.buckets.size();
    s.buckets.emplace_back(first, last);
  });
  s.report.buckets = static_cast<int>(s.buckets.size());
  if (kernels::comm::world().size == 1 && !one_rank_too) return;  // Path::alone
  const bool on_gpu = std::any_of(s.parameters.begin(), s.parameters.end(),
                                  [](const Tensor& t) { return t.device() == Device::cuda; });
  if (on_gpu) {
    for (const Tensor& t : s.parameters)
      HOTLAP_CHECK(t.device() == Device::cuda, "GradientReducer: parameters on one device, not ", t.describe());
    s.path = kernels::comm::nccl_compiled() ? State::Path::device : State::Path::after;
  } else {
    s.path = kernels::comm::concurrent_channels() ? State::Path::host_thread : State::Path::host_inline;
  }
}

GradientReducer::~GradientReducer() = default;

const GradientReducer::Report& GradientReducer::report() const { return state_->report; }

void GradientReducer::backward(const Tensor& loss) {
  State& s = *state_;
  s.report.started_in_backward = 0;
  s.report.tail_ms = 0.0;
  if (s.path == State::Path::alone) {
    loss.backward();
    return;
  }
  if (s.path == State::Path::after) {  // GPU tensors without NCCL: through the host, after backward
    loss.backward();
    const auto start = std::chrono::steady_clock::now();
    std::vector<Tensor> gradients;
    for (const Tensor& p : s.parameters) gradients.push_back(p.grad());
    allreduce_mean(gradients, s.bucket_bytes);
    s.report.tail_ms = ms_since(start);
    return;
  }
  s.waiting.clear();
  for (const auto& [first, last] : s.buckets) s.waiting.push_back(last - first);
  s.next = 0;
  if (s.path == State::Path::host_thread && !s.thread) s.thread = std::make_unique<BucketThread>();
  try {
    Autograd::backward(loss, [&s](const Tensor& leaf) { s.leaf_final(leaf); });
  } catch (...) {
    // Let the buckets already started finish (the other ranks wait for them), then report.
    if (s.thread) {
      try {
        s.thread->finish();
      } catch (...) {
      }
    }
    throw;
  }
  const auto start = std::chrono::steady_clock::now();
  while (s.next < s.buckets.size()) s.start(s.next++);  // parameters backward never reached
  if (s.thread) s.thread->finish();
  if (s.path == State::Path::device) {
    // The optimizer's kernels, on the compute stream, come after every bucket.
    kernels::cuda::stream_wait(kernels::cuda::compute_stream(), kernels::cuda::comm_stream(), s.reduced_point,
                               "the gradients' all-reduce");
    s.packed.clear();  // freed in the compute stream's order, which is now past the comm stream's use
  }
  s.report.tail_ms = ms_since(start);
}

}  // namespace hotlap
