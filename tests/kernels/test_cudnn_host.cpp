// The cuDNN/cuBLAS backend's host-side parts, which need no GPU: the row-major -> column-major GEMM
// mapping (run through a plain column-major GEMM, as cuBLAS defines it, against the CPU gemm), the
// algorithm cache's key, how batch-norm rows become cuDNN's N x H x W, the error text of
// HOTLAP_CUDNN_CHECK / HOTLAP_CUBLAS_CHECK and which statuses are refusals of a configuration, the
// version report, shape checks before any GPU work, and a clear Error (not a crash) from every
// entry point on a machine without a GPU.
#include <doctest/doctest.h>

#include <climits>
#include <string>
#include <unordered_set>
#include <vector>

#include "kernels/cudnn.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "test_util.h"

#ifdef HOTLAP_HAVE_CUDNN
#include "kernels/cudnn/check.h"
#endif

namespace k = hotlap::kernels;
using hotlap::kernels::bfloat16;
namespace dnn = hotlap::kernels::cudnn;
using hotlap::test::max_rel_error;
using hotlap::test::random_floats;

namespace {

// Column-major C[m,n] = alpha op(A) op(B) + beta C exactly as cuBLAS's sgemm defines it, in double.
void column_major_sgemm(const dnn::ColumnMajorGemm& g) {
  auto at = [](const float* x, int64_t ld, bool trans, int64_t i, int64_t j) {
    return trans ? x[j + i * ld] : x[i + j * ld];  // element (i, j) of op(X), column-major storage
  };
  for (int64_t j = 0; j < g.n; ++j)
    for (int64_t i = 0; i < g.m; ++i) {
      double acc = 0.0;
      for (int64_t p = 0; p < g.k; ++p)
        acc += static_cast<double>(at(g.first, g.ld_first, g.trans_first, i, p)) *
               at(g.second, g.ld_second, g.trans_second, p, j);
      float& c = g.c[i + j * g.ldc];
      c = static_cast<float>(g.alpha * acc + (g.beta == 0.0f ? 0.0 : g.beta * static_cast<double>(c)));
    }
}

}  // namespace

TEST_CASE("cudnn host: the row-major GEMM maps onto column-major cuBLAS arguments") {
  struct Size {
    int64_t m, n, k, pad;
  };
  const Size sizes[] = {{1, 1, 1, 0}, {7, 5, 3, 0}, {13, 17, 9, 3}, {32, 1, 40, 1}, {1, 31, 6, 2}};
  uint64_t seed = 1;
  for (const Size& z : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        CAPTURE(z.m);
        CAPTURE(z.n);
        CAPTURE(z.k);
        CAPTURE(ta);
        CAPTURE(tb);
        k::GemmArgs g;
        g.trans_a = ta;
        g.trans_b = tb;
        g.m = z.m;
        g.n = z.n;
        g.k = z.k;
        g.alpha = 0.75f;
        g.beta = 0.5f;
        const int64_t a_rows = ta ? z.k : z.m, a_cols = ta ? z.m : z.k;
        const int64_t b_rows = tb ? z.n : z.k, b_cols = tb ? z.k : z.n;
        g.lda = a_cols + z.pad;
        g.ldb = b_cols + z.pad;
        g.ldc = z.n + z.pad;
        const auto a = random_floats(static_cast<size_t>(a_rows * g.lda), seed++);
        const auto b = random_floats(static_cast<size_t>(b_rows * g.ldb), seed++);
        const auto c0 = random_floats(static_cast<size_t>(z.m * g.ldc), seed++);
        std::vector<float> want = c0, got = c0;
        g.a = a.data();
        g.b = b.data();
        g.c = want.data();
        k::cpu::gemm_blocked(g);
        g.c = got.data();
        const dnn::ColumnMajorGemm cm = dnn::column_major_gemm(g);
        CHECK(cm.m == z.n);
        CHECK(cm.n == z.m);
        CHECK(cm.first == b.data());
        CHECK(cm.second == a.data());
        CHECK(cm.trans_first == static_cast<bool>(tb));
        CHECK(cm.trans_second == static_cast<bool>(ta));
        column_major_sgemm(cm);
        CHECK(max_rel_error(got, want) < 1e-5);
      }
}

TEST_CASE("cudnn host: the algorithm cache key tells every field apart") {
  k::ConvShape base{2, 56, 56, 64, 64, 3, 3, 1, 1, 1, 1};
  const dnn::ConvAlgoKey key{base, dnn::ConvPass::forward, k::MathMode::fp32, false};
  std::vector<dnn::ConvAlgoKey> variants;
  for (int field = 0; field < 11; ++field) {
    dnn::ConvAlgoKey v = key;
    int64_t* fields[] = {&v.shape.n, &v.shape.h,        &v.shape.w,        &v.shape.c,
                         &v.shape.k, &v.shape.r,        &v.shape.s,        &v.shape.stride_h,
                         &v.shape.stride_w, &v.shape.pad_h, &v.shape.pad_w};
    *fields[field] += 1;
    variants.push_back(v);
  }
  for (dnn::ConvPass pass : {dnn::ConvPass::backward_data, dnn::ConvPass::backward_filter}) {
    dnn::ConvAlgoKey v = key;
    v.pass = pass;
    variants.push_back(v);
  }
  dnn::ConvAlgoKey tf32 = key;
  tf32.math = k::MathMode::tf32;
  variants.push_back(tf32);
  dnn::ConvAlgoKey det = key;
  det.deterministic = true;
  variants.push_back(det);

  const dnn::ConvAlgoKeyHash hash;
  std::unordered_set<size_t> hashes{hash(key)};
  const dnn::ConvAlgoKey same = key;
  CHECK(same == key);
  CHECK(hash(same) == hash(key));
  for (const auto& v : variants) {
    CHECK_FALSE(v == key);
    hashes.insert(hash(v));
  }
  CHECK(hashes.size() == variants.size() + 1);  // no collisions among these neighbours
  CHECK(std::string(dnn::conv_pass_name(dnn::ConvPass::backward_filter)) == "backward_filter");
}

// Every split must describe the same rows (n * h * w == rows), keep N within what cuDNN's legacy
// batch norm takes (it refuses N > 65535 in inference), and keep every dimension within its int.
TEST_CASE("cudnn host: batch-norm rows become 1 x H x W for cuDNN, within its limits") {
  const auto check_split = [](int64_t rows) {
    CAPTURE(rows);
    const dnn::CudnnBatchNormDims d = dnn::cudnn_batch_norm_dims(rows);
    CHECK(d.n * d.h * d.w == rows);
    CHECK(d.n == 1);
    CHECK(d.w >= 1);
    CHECK(d.h >= (rows > 0 ? 1 : 0));
    CHECK(d.h <= INT_MAX);
    CHECK(d.w <= INT_MAX);
    return d;
  };
  // ResNet-50's batch norms at batch 64 and 256: the stem at 112x112, then 56, 28, 14, 7. Every
  // one splits with H and W both within 65535.
  for (int64_t batch : {1, 2, 64, 256})
    for (int64_t side : {112, 56, 28, 14, 7}) {
      const dnn::CudnnBatchNormDims d = check_split(batch * side * side);
      CHECK(d.h <= dnn::kCudnnBatchNormMaxSpatial);
      CHECK(d.w <= dnn::kCudnnBatchNormMaxSpatial);
    }
  CHECK(dnn::cudnn_batch_norm_dims(64 * 56 * 56).h == 50176);  // 200704 = 50176 x 4
  CHECK(dnn::cudnn_batch_norm_dims(64 * 56 * 56).w == 4);
  // Up to the limit the rows are H alone; empty and single rows too.
  CHECK(dnn::cudnn_batch_norm_dims(0).h == 0);
  CHECK(dnn::cudnn_batch_norm_dims(1).h == 1);
  CHECK(dnn::cudnn_batch_norm_dims(65535).h == 65535);
  CHECK(dnn::cudnn_batch_norm_dims(65535).w == 1);
  // Just past it: 65536 = 32768 x 2. 2 x 65537 (a prime) has no factor pair within the limit, nor
  // has 7 x 99991 (a prime): H takes every row then, and so for primes.
  CHECK(dnn::cudnn_batch_norm_dims(65536).h == 32768);
  CHECK(dnn::cudnn_batch_norm_dims(65536).w == 2);
  for (int64_t rows : {int64_t{65537}, int64_t{2} * 65537, int64_t{7} * 99991, int64_t{131071},
                       int64_t{2147483647}}) {
    const dnn::CudnnBatchNormDims d = check_split(rows);
    CHECK(d.h == rows);
    CHECK(d.w == 1);
  }
  // Odd row counts with a split: 255255 = 3 x 5 x 7 x 11 x 13 x 17, whose smallest divisor at or
  // above 255255 / 65535 (3.9) is 5; 65535^2 / 3 = 65535 x 21845; 2^30 = 2^15 x 2^15.
  const auto odd = [&](int64_t rows, int64_t h, int64_t w) {
    const dnn::CudnnBatchNormDims d = check_split(rows);
    CHECK(d.h == h);
    CHECK(d.w == w);
  };
  odd(255255, 51051, 5);
  odd(int64_t{65535} * 65535 / 3, 65535, 21845);
  odd(int64_t{1} << 30, 32768, 32768);
}

TEST_CASE("cudnn host: math mode and determinism are process-wide settings") {
  const k::MathMode saved = k::math_mode();
  const bool saved_det = k::deterministic();
  CHECK(saved == k::MathMode::fp32);  // strict fp32 unless asked otherwise
  k::set_math_mode(k::MathMode::tf32);
  CHECK(k::math_mode() == k::MathMode::tf32);
  CHECK(std::string(k::math_mode_name(k::math_mode())) == "tf32");
  k::set_deterministic(true);
  CHECK(k::deterministic());
  k::set_math_mode(saved);
  k::set_deterministic(saved_det);
}

TEST_CASE("cudnn host: the version report names every library and never throws") {
  const std::string v = k::cuda_versions();
  MESSAGE(v);
  CHECK(v.find("CUDA") != std::string::npos);
  CHECK(v.find("cuBLAS") != std::string::npos);
  CHECK(v.find("cuDNN") != std::string::npos);
  if (k::cudnn_compiled()) {
    CHECK(v.find("cuDNN 9.") != std::string::npos);
    CHECK(v.find("built against") != std::string::npos);
  } else {
    CHECK(v.find("not compiled in") != std::string::npos);
  }
  if (k::cuda_compiled() && k::cuda_device_count() == 0) CHECK(v.find("CUDA driver") != std::string::npos);
}

#ifdef HOTLAP_HAVE_CUDNN

TEST_CASE("cudnn host: a failed cuDNN or cuBLAS status names the op, the call and the status") {
  const std::string m = dnn::cudnn_error_message(CUDNN_STATUS_NOT_SUPPORTED, "cudnnConvolutionForward(...)",
                                                 "cudnn::conv2d_forward x[N=2,H=7,W=7,C=3]");
  MESSAGE(m);
  CHECK(m.find("cudnn::conv2d_forward x[N=2,H=7,W=7,C=3]") == 0);
  CHECK(m.find("CUDNN_STATUS_NOT_SUPPORTED") != std::string::npos);
  CHECK(m.find("cudnnConvolutionForward(...)") != std::string::npos);
  CHECK(m.find("hint:") != std::string::npos);

  const std::string b = dnn::cublas_error_message(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm(...)",
                                                  "cudnn::gemm m=3 n=4 k=5");
  MESSAGE(b);
  CHECK(b.find("cudnn::gemm m=3 n=4 k=5") == 0);
  CHECK(b.find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos);
  CHECK(b.find("cublasSgemm(...)") != std::string::npos);

  // The macros throw hotlap::Error with that text, formatting the shape pieces only on failure.
  auto fail_cudnn = [] { HOTLAP_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM, "op rows=", 12, " c=", 3); };
  CHECK_THROWS_AS(fail_cudnn(), hotlap::Error);
  try {
    fail_cudnn();
  } catch (const hotlap::Error& e) {
    const std::string what = e.what();
    CHECK(what.find("op rows=12 c=3") == 0);
    CHECK(what.find("CUDNN_STATUS_BAD_PARAM") != std::string::npos);
  }
  auto fail_cublas = [] { HOTLAP_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED, "gemm m=", 1); };
  CHECK_THROWS_WITH_AS(fail_cublas(), doctest::Contains("CUBLAS_STATUS_NOT_INITIALIZED"), hotlap::Error);
  HOTLAP_CUDNN_CHECK(CUDNN_STATUS_SUCCESS, "never formatted");
  HOTLAP_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS, "never formatted");
}

// A refusal of the configuration (bf16 batch norm falls back on it, kernels/cudnn.h): every
// NOT_SUPPORTED code and the plain BAD_PARAM; BAD_PARAM's specific codes and other failures are errors.
TEST_CASE("cudnn host: which failed statuses are cuDNN refusing the configuration") {
  for (cudnnStatus_t refusal : {CUDNN_STATUS_NOT_SUPPORTED, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
                                CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT,
                                CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, CUDNN_STATUS_BAD_PARAM}) {
    CAPTURE(static_cast<int>(refusal));
    CHECK(dnn::cudnn_refuses_configuration(refusal));
  }
  for (cudnnStatus_t error : {CUDNN_STATUS_SUCCESS, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
                              CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, CUDNN_STATUS_NOT_INITIALIZED,
                              CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
                              CUDNN_STATUS_EXECUTION_FAILED}) {
    CAPTURE(static_cast<int>(error));
    CHECK_FALSE(dnn::cudnn_refuses_configuration(error));
  }
}

TEST_CASE("cudnn host: bad shapes and arguments throw before any GPU work") {
  k::ConvShape bad{2, 4, 4, 3, 5, 7, 7, 1, 1, 0, 0};  // 7x7 filter over an unpadded 4x4 input
  CHECK_THROWS_WITH_AS(dnn::conv2d_workspace_bytes(bad, dnn::ConvPass::forward),
                       doctest::Contains("bad shape x[N=2,H=4,W=4,C=3] w[K=5,R=7,S=7]"), hotlap::Error);
  const float* none = nullptr;  // fp32 pointers: the fp32 overloads (bf16 ones take bfloat16)
  CHECK_THROWS_AS(dnn::conv2d_forward(bad, none, none, none, nullptr, nullptr, 0), hotlap::Error);
  k::ConvShape zero{0, 4, 4, 3, 5, 3, 3, 1, 1, 1, 1};
  CHECK_THROWS_AS(dnn::conv2d_backward_filter(zero, none, none, nullptr, nullptr, nullptr, 0),
                  hotlap::Error);
  k::GemmArgs g;
  g.m = 3;
  g.n = 4;
  g.k = 5;
  g.lda = 4;  // < k
  g.ldb = 4;
  g.ldc = 4;
  CHECK_THROWS_WITH_AS(dnn::gemm(g), doctest::Contains("lda=4 < 5"), hotlap::Error);
  CHECK_THROWS_WITH_AS(dnn::batch_norm_forward_train({1, 8}, none, nullptr, nullptr, 1e-5f, 0.1f,
                                                    nullptr, nullptr, nullptr, nullptr, nullptr, {},
                                                    nullptr, 0),
                       doctest::Contains("more than one value per channel"), hotlap::Error);
  // Empty shapes are no-ops, as on the CPU, and touch no GPU.
  dnn::batch_norm_forward_eval({0, 8}, none, nullptr, nullptr, nullptr, nullptr, 1e-5f, nullptr, {},
                              nullptr, 0);
  g.lda = 5;
  g.m = 0;
  dnn::gemm(g);
  CHECK(dnn::batch_norm_backward_eval_workspace_bytes({10, 3}) == 10 * 3 * sizeof(float));
  CHECK(dnn::batch_norm_forward_train_workspace_bytes({10, 3}) == 0);
}

TEST_CASE("cudnn host: without a GPU every call that needs one throws a clear Error") {
  if (k::cuda_device_count() > 0) {
    MESSAGE("a GPU is present: the no-GPU error path is not exercised here");
    return;
  }
  k::ConvShape s{2, 8, 8, 3, 4, 3, 3, 1, 1, 1, 1};
  try {
    (void)dnn::conv2d_workspace_bytes(s, dnn::ConvPass::forward);
    FAIL("conv2d_workspace_bytes ran without a GPU");
  } catch (const hotlap::Error& e) {
    const std::string what = e.what();
    MESSAGE(what);
    CHECK(what.size() > 10);
  }
  k::GemmArgs g;
  g.m = g.n = g.k = 2;
  g.lda = g.ldb = g.ldc = 2;
  float dummy[4] = {};
  g.a = g.b = dummy;
  g.c = dummy;
  CHECK_THROWS_AS(dnn::gemm(g), hotlap::Error);
  CHECK(dnn::conv2d_algorithm_cache_size() == 0);  // a failed choice leaves nothing behind
}

#else  // !HOTLAP_HAVE_CUDNN

TEST_CASE("cudnn host: a build without cuDNN links, and every op says it is not there") {
  k::ConvShape s{2, 8, 8, 3, 4, 3, 3, 1, 1, 1, 1};
  CHECK_THROWS_WITH_AS(dnn::conv2d_workspace_bytes(s, dnn::ConvPass::forward),
                       doctest::Contains("built without the cuDNN/cuBLAS backend"), hotlap::Error);
  const float* none = nullptr;
  CHECK_THROWS_AS(dnn::conv2d_forward(s, none, none, none, nullptr, nullptr, 0), hotlap::Error);
  CHECK_THROWS_AS(dnn::gemm(k::GemmArgs{}), hotlap::Error);
  CHECK_THROWS_AS(dnn::batch_norm_backward({4, 2}, none, none, nullptr, nullptr, nullptr, nullptr,
                                          nullptr, nullptr, nullptr, 0),
                  hotlap::Error);
  CHECK(dnn::batch_norm_backward_eval_workspace_bytes({10, 3}) == 10 * 3 * sizeof(float));
  CHECK(dnn::conv2d_algorithm_cache_size() == 0);
  CHECK(dnn::library_versions().find("not compiled in") != std::string::npos);
}

#endif  // HOTLAP_HAVE_CUDNN
