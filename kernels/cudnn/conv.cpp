// Convolution on cuDNN: cudnnConvolutionForward, cudnnConvolutionBackwardData and
// cudnnConvolutionBackwardFilter on NHWC activations and OHWI (CUDNN_TENSOR_NHWC) filters, bias by
// cudnnAddTensor and its gradient by cudnnConvolutionBackwardBias. This is the yardstick for the
// hand-written CUDA convolutions: the same FLOPs (2 * N*P*Q * K * R*S*C a pass; 231 MFLOP for a
// ResNet-50 layer3 3x3 at batch 2), with NVIDIA's best kernels for each shape.
//
// Algorithm choice: once per (shape, pass, math mode, determinism). By default from cuDNN's timed
// search (cudnnFindConvolution*Algorithm, what PyTorch's cudnn.benchmark does): cuDNN runs every
// algorithm it has for the shape once, on buffers it allocates itself, and ranks them by the time
// measured. The first ranked one that (a) ran, (b) runs under the math type the mode allows (see
// below), and (c) needs at most kConvWorkspaceCap of workspace, is taken. The search costs a few
// hundred milliseconds per shape at the first call (a training run sees a few dozen shapes), and
// its choice can differ from run to run, as timings do. So under deterministic() the choice comes
// from the heuristics of cudnnGetConvolution*Algorithm_v7 instead, which rank the algorithms for
// this GPU without running or allocating anything: the first ranked one that passes (a) to (c) and
// is deterministic. They are also the fallback when the search finds nothing to take (no memory
// for its buffers, say). Measured on an H200, the heuristics' first choices made the bf16 passes
// 40 times slower than the search's (bench/NOTES.md).
//
// Math type: MathMode::fp32 runs every algorithm under CUDNN_FMA_MATH (FMA units only, no TF32);
// MathMode::tf32 runs each under the math type its heuristic entry names (CUDNN_DEFAULT_MATH or
// CUDNN_TENSOR_OP_MATH, both of which allow TF32 tensor cores for fp32 data), never
// CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (that would convert fp32 data to fp16).
//
// The cache holds, per key, the descriptors the calls need and the choice, for the life of the
// process: a training run sees a few dozen shapes.
//
// bf16 (the *_bf16 entry points, any math mode): CUDNN_DATA_BFLOAT16 tensors and filters with a
// CUDNN_DATA_FLOAT compute type (cuDNN's BFLOAT16 configuration: fp32 sums), under the math type
// the heuristic entry names (tensor cores), never ALLOW_CONVERSION; a separate cache entry (the key
// holds the data type). The bf16 filter gradient goes to a scratch at the front of the workspace,
// then is widened and added into the fp32 dw (elementwise.cu), so dw accumulates in fp32 across
// calls; half the activation bytes of the fp32 passes, the same FLOPs.
#include <algorithm>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cudnn.h"
#include "kernels/cudnn/check.h"
#include "kernels/cudnn/descriptors.h"
#include "kernels/cudnn/elementwise.h"
#include "kernels/error.h"

namespace hotlap::kernels::cudnn {

namespace {

void check_shape(const ConvShape& s, const char* op) {
  const bool positive = s.n > 0 && s.h > 0 && s.w > 0 && s.c > 0 && s.k > 0 && s.r > 0 && s.s > 0 &&
                        s.stride_h > 0 && s.stride_w > 0 && s.pad_h >= 0 && s.pad_w >= 0;
  const bool fits = s.h + 2 * s.pad_h >= s.r && s.w + 2 * s.pad_w >= s.s;
  HOTLAP_CHECK(positive && fits, op, ": bad shape ", describe_shape(s),
               " (every size positive, padding >= 0, the padded input at least the filter)");
}

// Everything a call needs for one key: descriptors and the chosen algorithm.
struct ConvPlan {
  TensorDesc x, y, bias;  // y is dy for the backward passes; bias is 1 x K x 1 x 1
  FilterDesc w;
  ConvDesc conv;
  ConvAlgoChoice choice;
};

const char* op_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward:
      return "cudnn::conv2d_forward";
    case ConvPass::backward_data:
      return "cudnn::conv2d_backward_data";
    case ConvPass::backward_filter:
      return "cudnn::conv2d_backward_filter";
  }
  return "cudnn::conv2d";
}

// One entry of cuDNN's ranking (heuristic or timed), whichever pass it came from.
struct Candidate {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math_type;
  float time_ms;  // the time measured by the search; -1 from the heuristics
};

template <typename Perf>
std::vector<Candidate> to_candidates(const std::vector<Perf>& perf, int returned, bool timed) {
  std::vector<Candidate> out;
  for (int i = 0; i < returned; ++i)
    out.push_back({static_cast<int>(perf[i].algo), perf[i].status, perf[i].determinism,
                   perf[i].mathType, timed ? perf[i].time : -1.0f});
  return out;
}

// One pass's ranking, heuristic or timed (`timed`): the count from max_count(h, &count), then the
// entries from query(count, &returned, perf). Returns the status of the call that failed, if one did.
template <typename Perf, typename MaxCount, typename Query>
cudnnStatus_t ranking(cudnnHandle_t h, MaxCount max_count, Query query, bool timed, std::vector<Candidate>& out) {
  int count = 0, returned = 0;
  cudnnStatus_t st = max_count(h, &count);
  if (st != CUDNN_STATUS_SUCCESS) return st;
  std::vector<Perf> perf(static_cast<size_t>(std::max(count, 0)));
  st = query(count, &returned, perf.data());
  if (st == CUDNN_STATUS_SUCCESS) out = to_candidates(perf, returned, timed);
  return st;
}

// The plan's pass ranked by cuDNN, under the math type set on the convolution descriptor: by its
// heuristics (`timed` false), or by its timed search, fastest first, which runs every algorithm
// once on buffers it allocates itself.
cudnnStatus_t rank_algorithms(cudnnHandle_t h, ConvPlan& p, ConvPass pass, bool timed, std::vector<Candidate>& out) {
  switch (pass) {
    case ConvPass::forward:
      return ranking<cudnnConvolutionFwdAlgoPerf_t>(
          h, cudnnGetConvolutionForwardAlgorithmMaxCount,
          [&](int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
            return timed ? cudnnFindConvolutionForwardAlgorithm(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(), n,
                                                                returned, perf)
                         : cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(), n,
                                                                  returned, perf);
          },
          timed, out);
    case ConvPass::backward_data:
      return ranking<cudnnConvolutionBwdDataAlgoPerf_t>(
          h, cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
          [&](int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
            return timed ? cudnnFindConvolutionBackwardDataAlgorithm(h, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
                                                                     n, returned, perf)
                         : cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.get(), p.y.get(), p.conv.get(),
                                                                       p.x.get(), n, returned, perf);
          },
          timed, out);
    case ConvPass::backward_filter:
      return ranking<cudnnConvolutionBwdFilterAlgoPerf_t>(
          h, cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
          [&](int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
            return timed ? cudnnFindConvolutionBackwardFilterAlgorithm(h, p.x.get(), p.y.get(), p.conv.get(),
                                                                       p.w.get(), n, returned, perf)
                         : cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x.get(), p.y.get(), p.conv.get(),
                                                                         p.w.get(), n, returned, perf);
          },
          timed, out);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

// The workspace `algo` needs under the math type now set on the descriptor; false when cuDNN says
// it cannot run this shape that way.
bool workspace_for(cudnnHandle_t h, const ConvPlan& p, ConvPass pass, int algo, size_t* bytes) {
  cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
  switch (pass) {
    case ConvPass::forward:
      st = cudnnGetConvolutionForwardWorkspaceSize(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                   bytes);
      break;
    case ConvPass::backward_data:
      st = cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
          static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
      break;
    case ConvPass::backward_filter:
      st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
          static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), bytes);
      break;
  }
  if (st != CUDNN_STATUS_SUCCESS) {
    char discard[256];
    cudnnGetLastErrorString(discard, sizeof(discard));  // a rejected candidate is not an error
    return false;
  }
  return true;
}

std::unique_ptr<ConvPlan> make_plan(const ConvAlgoKey& key) {
  const ConvShape& s = key.shape;
  const char* op = op_name(key.pass);
  const bool bf16 = key.data == ConvData::bf16;
  const std::string what = describe(op, " ", describe_shape(s), bf16 ? " bf16" : "", " (math ",
                                    math_mode_name(key.math),
                                    key.deterministic ? ", deterministic" : "", ")");
  cudnnHandle_t h = cudnn_handle();

  const cudnnDataType_t type = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  auto p = std::make_unique<ConvPlan>();
  p->x.set_nhwc(s.n, s.c, s.h, s.w, op, type);
  p->y.set_nhwc(s.n, s.k, s.p(), s.q(), op, type);
  p->bias.set_nhwc(1, s.k, 1, 1, op);
  p->w.set_ohwi(s.k, s.c, s.r, s.s, op, type);
  HOTLAP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv.get(), to_int(s.pad_h, op, "pad_h"),
                                                     to_int(s.pad_w, op, "pad_w"),
                                                     to_int(s.stride_h, op, "stride_h"),
                                                     to_int(s.stride_w, op, "stride_w"), 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     what);
  // cuDNN must agree with ConvShape on the output size, or every call would be wrong.
  int on = 0, ok = 0, op_ = 0, oq = 0;
  HOTLAP_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv.get(), p->x.get(), p->w.get(),
                                                           &on, &ok, &op_, &oq),
                     what);
  HOTLAP_CHECK(on == s.n && ok == s.k && op_ == s.p() && oq == s.q(), what,
               ": cuDNN computes an output of N=", on, " K=", ok, " P=", op_, " Q=", oq,
               " where hotlap expects N=", s.n, " K=", s.k, " P=", s.p(), " Q=", s.q());

  // Tensor cores under the heuristic's math type: TF32 for fp32 data under MathMode::tf32, bf16
  // products for bf16 data; strict FMA math for fp32 data otherwise.
  const bool tf32 = key.math == MathMode::tf32 || bf16;
  HOTLAP_CUDNN_CHECK(
      cudnnSetConvolutionMathType(p->conv.get(), tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH), what);
  // Takes the first candidate that ran, under a math type the mode allows, within the cap (and
  // deterministic when asked); false when none does.
  int runnable = 0;
  size_t smallest_over_cap = 0;
  auto take_first = [&](const std::vector<Candidate>& ranked, bool timed) {
    for (const Candidate& c : ranked) {
      if (c.status != CUDNN_STATUS_SUCCESS) continue;
      if (c.math_type == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // would use fp16
      // A timed entry's time holds for its own math type only: strict fp32 takes FMA-math ones.
      if (timed && !tf32 && c.math_type != CUDNN_FMA_MATH) continue;
      ++runnable;
      if (key.deterministic && c.determinism != CUDNN_DETERMINISTIC) continue;
      const cudnnMathType_t math = tf32 ? c.math_type : CUDNN_FMA_MATH;
      HOTLAP_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv.get(), math), what);
      size_t bytes = 0;
      if (!workspace_for(h, *p, key.pass, c.algo, &bytes)) continue;
      if (bytes > kConvWorkspaceCap) {
        if (smallest_over_cap == 0 || bytes < smallest_over_cap) smallest_over_cap = bytes;
        continue;
      }
      p->choice.algo = c.algo;
      p->choice.math_type = static_cast<int>(math);
      p->choice.deterministic = c.determinism == CUDNN_DETERMINISTIC;
      p->choice.workspace_bytes = bytes;
      p->choice.searched = timed;
      p->choice.time_ms = c.time_ms;
      return true;  // the descriptor keeps `math` set: the calls run with it
    }
    return false;
  };
  if (!key.deterministic) {
    std::vector<Candidate> searched;
    if (rank_algorithms(h, *p, key.pass, true, searched) != CUDNN_STATUS_SUCCESS) {
      // No search (no memory for its buffers, say): the heuristics decide.
      char discard[256];
      cudnnGetLastErrorString(discard, sizeof(discard));
    }
    if (take_first(searched, true)) return p;
    runnable = 0;  // the error below counts the heuristics' candidates
    HOTLAP_CUDNN_CHECK(
        cudnnSetConvolutionMathType(p->conv.get(), tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH), what);
  }
  std::vector<Candidate> ranked;
  HOTLAP_CUDNN_CHECK(rank_algorithms(h, *p, key.pass, false, ranked), what);
  if (take_first(ranked, false)) return p;
  throw_error(what, ": no cuDNN algorithm fits: ", ranked.size(), " ranked, ", runnable,
              " runnable", key.deterministic ? ", none of them deterministic within the cap" : "",
              smallest_over_cap ? describe(", the smallest workspace over the cap needs ",
                                           smallest_over_cap >> 20, " MiB (cap ",
                                           kConvWorkspaceCap >> 20, " MiB)")
                                : std::string(),
              "; hint: use the hand-written backend (--conv native)",
              key.deterministic ? " or run without --deterministic" : "");
}

struct PlanCache {
  std::mutex mutex;
  std::unordered_map<ConvAlgoKey, std::unique_ptr<ConvPlan>, ConvAlgoKeyHash> plans;
};

PlanCache& cache() {
  static PlanCache* c = new PlanCache;  // never destroyed: see check.h on teardown at exit
  return *c;
}

// The plan for this shape, pass and data type under the current math mode and determinism
// setting. Plans are never removed, so the reference stays valid.
const ConvPlan& plan_for(const ConvShape& s, ConvPass pass, ConvData data = ConvData::f32) {
  const ConvAlgoKey key{s, pass, math_mode(), deterministic(), data};
  PlanCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.plans.find(key);
  if (it == c.plans.end()) it = c.plans.emplace(key, make_plan(key)).first;
  return *it->second;
}

void check_workspace(const char* op, const ConvShape& s, size_t needed, const void* workspace,
                     size_t workspace_bytes) {
  if (needed == 0) return;
  HOTLAP_CHECK(workspace_bytes >= needed && workspace != nullptr, op, ": workspace for ",
               describe_shape(s), " (math ", math_mode_name(math_mode()), ") needs ", needed,
               " bytes, given ", workspace_bytes, workspace ? "" : " at null",
               " (size it with cudnn::conv2d_workspace_bytes under the same math mode and "
               "determinism setting)");
}

const float kOne = 1.0f, kZero = 0.0f;

// The bf16 filter gradient's scratch at the front of a bf16 backward-filter workspace, rounded up
// to 256 bytes so cuDNN's own workspace after it stays aligned.
size_t bf16_dw_scratch_bytes(const ConvShape& s) {
  const size_t bytes = static_cast<size_t>(s.k * s.r * s.s * s.c) * sizeof(bfloat16);
  return (bytes + 255) / 256 * 256;
}

// y = conv(x, w) and dx = conv_transpose(dy, w) in either data type (the plan's descriptors hold it).
void forward(const char* op, ConvData data, const ConvShape& s, const void* x, const void* w, void* y,
             void* workspace, size_t workspace_bytes) {
  check_shape(s, op);
  HOTLAP_CHECK(x && w && y, op, ": null tensor pointer for ", describe_shape(s));
  const ConvPlan& p = plan_for(s, ConvPass::forward, data);
  const size_t ws = p.choice.workspace_bytes;
  check_workspace(op, s, ws, workspace, workspace_bytes);
  HOTLAP_CUDNN_CHECK(
      cudnnConvolutionForward(cudnn_handle(), &kOne, p.x.get(), x, p.w.get(), w, p.conv.get(),
                              static_cast<cudnnConvolutionFwdAlgo_t>(p.choice.algo),
                              ws ? workspace : nullptr, ws ? workspace_bytes : 0, &kZero, p.y.get(), y),
      op, " ", describe_shape(s), " algo ", p.choice.algo);
}

void backward_data(const char* op, ConvData data, const ConvShape& s, const void* dy, const void* w, void* dx,
                   void* workspace, size_t workspace_bytes) {
  check_shape(s, op);
  HOTLAP_CHECK(dy && w && dx, op, ": null tensor pointer for ", describe_shape(s));
  const ConvPlan& p = plan_for(s, ConvPass::backward_data, data);
  const size_t ws = p.choice.workspace_bytes;
  check_workspace(op, s, ws, workspace, workspace_bytes);
  HOTLAP_CUDNN_CHECK(
      cudnnConvolutionBackwardData(cudnn_handle(), &kOne, p.w.get(), w, p.y.get(), dy, p.conv.get(),
                                   static_cast<cudnnConvolutionBwdDataAlgo_t>(p.choice.algo),
                                   ws ? workspace : nullptr, ws ? workspace_bytes : 0, &kZero,
                                   p.x.get(), dx),
      op, " ", describe_shape(s), " algo ", p.choice.algo);
}

}  // namespace

size_t conv2d_workspace_bytes(const ConvShape& s, ConvPass pass) {
  check_shape(s, op_name(pass));
  return plan_for(s, pass).choice.workspace_bytes;
}

ConvAlgoChoice conv2d_algorithm(const ConvShape& s, ConvPass pass) {
  check_shape(s, op_name(pass));
  return plan_for(s, pass).choice;
}

size_t conv2d_algorithm_cache_size() {
  PlanCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.plans.size();
}

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    void* workspace, size_t workspace_bytes) {
  forward("cudnn::conv2d_forward", ConvData::f32, s, x, w, y, workspace, workspace_bytes);
  if (bias == nullptr) return;
  const ConvPlan& p = plan_for(s, ConvPass::forward);
  HOTLAP_CUDNN_CHECK(cudnnAddTensor(cudnn_handle(), &kOne, p.bias.get(), bias, &kOne, p.y.get(), y),
                     "cudnn::conv2d_forward bias ", describe_shape(s));
}

void conv2d_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx,
                          void* workspace, size_t workspace_bytes) {
  backward_data("cudnn::conv2d_backward_data", ConvData::f32, s, dy, w, dx, workspace, workspace_bytes);
}

void conv2d_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw,
                            float* dbias, void* workspace, size_t workspace_bytes) {
  const char* op = "cudnn::conv2d_backward_filter";
  check_shape(s, op);
  HOTLAP_CHECK(x && dy && dw, op, ": null tensor pointer for ", describe_shape(s));
  const ConvPlan& p = plan_for(s, ConvPass::backward_filter);
  const size_t ws = p.choice.workspace_bytes;
  check_workspace(op, s, ws, workspace, workspace_bytes);
  cudnnHandle_t h = cudnn_handle();
  // beta = 1: dw += ..., as the CPU version accumulates.
  HOTLAP_CUDNN_CHECK(
      cudnnConvolutionBackwardFilter(h, &kOne, p.x.get(), x, p.y.get(), dy, p.conv.get(),
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.choice.algo),
                                     ws ? workspace : nullptr, ws ? workspace_bytes : 0, &kOne,
                                     p.w.get(), dw),
      op, " ", describe_shape(s), " algo ", p.choice.algo);
  if (dbias != nullptr)
    HOTLAP_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &kOne, p.y.get(), dy, &kOne, p.bias.get(), dbias),
                       op, " bias gradient ", describe_shape(s));
}

// ---- bf16 -----------------------------------------------------------------------------------------

size_t conv2d_workspace_bytes_bf16(const ConvShape& s, ConvPass pass) {
  check_shape(s, op_name(pass));
  const size_t algo = plan_for(s, pass, ConvData::bf16).choice.workspace_bytes;
  return pass == ConvPass::backward_filter ? bf16_dw_scratch_bytes(s) + algo : algo;
}

ConvAlgoChoice conv2d_algorithm_bf16(const ConvShape& s, ConvPass pass) {
  check_shape(s, op_name(pass));
  return plan_for(s, pass, ConvData::bf16).choice;
}

void conv2d_forward(const ConvShape& s, const bfloat16* x, const bfloat16* w, const float* bias,
                         bfloat16* y, void* workspace, size_t workspace_bytes) {
  forward("cudnn::conv2d_forward", ConvData::bf16, s, x, w, y, workspace, workspace_bytes);
  if (bias != nullptr) detail::bias_add(s.n * s.p() * s.q(), s.k, bias, y);
}

void conv2d_backward_data(const ConvShape& s, const bfloat16* dy, const bfloat16* w, bfloat16* dx,
                               void* workspace, size_t workspace_bytes) {
  backward_data("cudnn::conv2d_backward_data", ConvData::bf16, s, dy, w, dx, workspace, workspace_bytes);
}

void conv2d_backward_filter(const ConvShape& s, const bfloat16* x, const bfloat16* dy, float* dw,
                                 float* dbias, void* workspace, size_t workspace_bytes) {
  const char* op = "cudnn::conv2d_backward_filter";
  check_shape(s, op);
  HOTLAP_CHECK(x && dy && dw, op, ": null tensor pointer for ", describe_shape(s));
  const ConvPlan& p = plan_for(s, ConvPass::backward_filter, ConvData::bf16);
  const size_t scratch = bf16_dw_scratch_bytes(s);
  const size_t ws = p.choice.workspace_bytes;
  check_workspace(op, s, scratch + ws, workspace, workspace_bytes);
  auto* dw_bf16 = static_cast<bfloat16*>(workspace);
  void* algo_workspace = ws ? static_cast<char*>(workspace) + scratch : nullptr;
  // beta = 0 into the bf16 scratch, then dw += widened scratch: the accumulation stays fp32.
  HOTLAP_CUDNN_CHECK(
      cudnnConvolutionBackwardFilter(cudnn_handle(), &kOne, p.x.get(), x, p.y.get(), dy, p.conv.get(),
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.choice.algo),
                                     algo_workspace, ws, &kZero, p.w.get(), dw_bf16),
      op, " ", describe_shape(s), " algo ", p.choice.algo);
  detail::accumulate_widened(s.k * s.r * s.s * s.c, dw_bf16, dw);
  if (dbias != nullptr) detail::bias_backward(s.n * s.p() * s.q(), s.k, dy, dbias);
}

}  // namespace hotlap::kernels::cudnn
