// Every row of the op table (nn/layers/op_table.h), at every case and dtype, on every device and backend
// present (the CPU; a GPU's native and cuDNN backends when there is one):
//   forward   the op's output against its float64 reference, within the row's tolerance of the
//             largest reference value
//   backward  the gradient backward() gives, of L = sum(y * R) with fixed random R, against central
//             differences of L computed by the float64 reference: element by element on the small
//             cases, along one random direction of every input at once on the large ones (two
//             reference evaluations instead of two per element)
//   support   an op dispatch::supports says has no kernel there must throw hotlap::Error, not run
// The CPU runs twice: with the kernels chosen for speed, and with HOTLAP_REFERENCE's readable ones.
// A bf16 run (MathMode::bf16) hands the op bf16 activations, and its reference takes every input the
// op rounds (row.bf16_rounded) rounded the same way: what is left is the op's own rounding.
//
// The references are in double and the finite differences too (step 1e-6, on inputs the row keeps
// at least 0.02 from any kink): truncation ~1e-13, cancellation ~1e-10 of |L|. So the tolerances
// measure the kernels' fp32 and bf16 arithmetic alone, the same under every ISA level, thread count
// and BLAS (the binary runs again under each, tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cast.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/dispatch.h"
#include "nn/layers/op_table.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"
#include "test_util.h"

namespace hotlap {
namespace {

using op_table::Case;
using op_table::Row;
using op_table::Values;

using op_table::Target;

bool contains(const std::vector<int>& v, size_t i) { return std::find(v.begin(), v.end(), static_cast<int>(i)) != v.end(); }

// What the reference sees of input i in a run of `dtype`: its values, rounded to bf16 where the op
// rounds them.
Values reference_input(const Row& row, size_t i, const Tensor& t, DType dtype) {
  Values v = op_table::values(t);
  if (dtype == DType::bf16 && contains(row.bf16_rounded, i))
    for (double& x : v) x = kernels::bf16_to_float(kernels::float_to_bf16(static_cast<float>(x)));
  return v;
}

// max |got - ref| / max |ref| (0 when both are empty or all zero and equal); a NaN anywhere: infinity.
double relative_error(const Values& got, const Values& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return INFINITY;
    diff = std::max(diff, std::abs(got[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff == 0.0 ? 0.0 : diff / std::max(scale, 1e-30);
}

// The op's inputs for a run, on the target's device: the leaves, and the args the op is handed.
struct Inputs {
  std::vector<Tensor> leaves, args;
};
Inputs inputs_for(const Row& row, const std::vector<Tensor>& host, const Target& target, DType dtype,
                  bool with_grad) {
  Inputs in;
  in.leaves = op_table::leaves(row, host, target.device, with_grad);
  in.args = op_table::args(row, in.leaves, dtype);
  return in;
}

double dot(const Values& a, const Values& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// HOTLAP_OP_TABLE_ERRORS=1: print every check's measured error (how the tolerances were set).
void report(const char* what, const Row& row, const Case& c, const std::string& dtype, const std::string& target,
            double error) {
  static const bool on = std::getenv("HOTLAP_OP_TABLE_ERRORS") != nullptr;
  if (on) std::printf("%-16s %-5s %-12s %-27s %.3g  (%s)\n", row.op.c_str(), dtype.c_str(), target.c_str(), what, error, c.label.c_str());
}

constexpr double kStep = 1e-6;
// Cases whose inputs have more elements than this check the gradient along a random direction.
constexpr size_t kElementwiseGradLimit = 4096;

// What one run of a row's case gives on a target: the output with nothing recorded (the inference
// path, where some ops fuse), the output when recorded, and the gradient of L = sum(y * weights)
// for each input that takes one.
struct Outcome {
  Values inference, recorded;
  std::vector<Values> grads;
};

Outcome run_once(const Row& row, const Case& c, const std::vector<Tensor>& host, const Target& target, DType dtype,
                 const Tensor& weights) {
  const op_table::RunScope settings(target, dtype);
  Outcome out;
  {
    NoGradGuard no_grad;
    const Tensor y = row.run(inputs_for(row, host, target, dtype, false).args, c);
    CHECK(y.device() == target.device);
    out.inference = op_table::values(y);
  }
  out.grads.resize(host.size());
  if (!weights.defined()) return out;
  const Inputs in = inputs_for(row, host, target, dtype, true);
  const Tensor y = row.run(in.args, c);
  out.recorded = op_table::values(y);
  ops::linear(y.reshape({1, y.numel()}), weights.to(target.device), Tensor()).backward();
  for (int i : row.differentiable) {
    const Tensor& leaf = in.leaves[static_cast<size_t>(i)];
    if (!leaf.defined()) continue;
    CAPTURE(i);
    REQUIRE(leaf.grad().defined());
    out.grads[static_cast<size_t>(i)] = op_table::values(leaf.grad());
  }
  return out;
}

void check_case(const Row& row, const Case& c, DType dtype, const Target& target, uint64_t seed) {
  CAPTURE(row.op);
  CAPTURE(c.label);
  const std::string dtype_text = dtype_name(dtype), target_text = target.name();
  CAPTURE(dtype_text);
  CAPTURE(target_text);
  const std::vector<Tensor> host = row.inputs(c, seed);
  if (dispatch::supports(row.op, target.device, target.backend, dtype) == dispatch::Support::none) {
    const op_table::RunScope settings(target, dtype);
    CHECK_THROWS_AS(row.run(inputs_for(row, host, target, dtype, false).args, c), Error);
    return;
  }
  std::vector<Values> ref_in;
  for (size_t i = 0; i < host.size(); ++i) ref_in.push_back(reference_input(row, i, host[i], dtype));
  const Values want = row.reference(ref_in, c);

  const bool bf16 = dtype == DType::bf16;
  const bool with_grad = !row.differentiable.empty() && !want.empty();
  Rng rng(seed + 1);
  Tensor weights;
  if (with_grad) {
    weights = Tensor::empty({1, static_cast<int64_t>(want.size())});
    fill_uniform(weights, 0.5, 1.5, rng);
  }
  const Outcome got = run_once(row, c, host, target, dtype, weights);
  const double tolerance_out = bf16 ? row.tolerance_bf16 : row.tolerance_f32;
  const double error = relative_error(got.inference, want);
  CHECK_MESSAGE(error <= tolerance_out, "forward error ", error);
  report("forward", row, c, dtype_text, target_text, error);
  if (with_grad) {
    const double recorded_error = relative_error(got.recorded, want);
    CHECK_MESSAGE(recorded_error <= tolerance_out, "forward error when recorded ", recorded_error);
  }
  // Another device: also against the CPU's own result, where the row promises agreement.
  if (target.device != Device::cpu && row.cpu_agreement >= 0) {
    const Outcome cpu = run_once(row, c, host, Target{}, dtype, weights);
    CHECK(relative_error(got.inference, cpu.inference) <= row.cpu_agreement);
    for (size_t i = 0; i < got.grads.size(); ++i) {
      CAPTURE(i);
      CHECK(relative_error(got.grads[i], cpu.grads[i]) <= row.cpu_agreement);
    }
  }
  if (!with_grad) return;

  // L = sum(y * weights): its gradient through backward() (above), and in double through the reference.
  const Values weight_values = op_table::values(weights);
  const std::vector<Values>& grads = got.grads;
  size_t elements = 0;
  for (size_t i = 0; i < grads.size(); ++i) elements += grads[i].size();
  auto loss_at = [&](std::vector<Values>& inputs) { return dot(row.reference(inputs, c), weight_values); };
  const double tolerance = bf16 ? row.grad_tolerance_bf16 : row.grad_tolerance_f32;
  for (size_t i = 0; i < grads.size(); ++i) REQUIRE((grads[i].empty() || grads[i].size() == ref_in[i].size()));
  if (elements <= kElementwiseGradLimit) {
    for (size_t i = 0; i < ref_in.size(); ++i) {
      if (grads[i].empty()) continue;
      CAPTURE(i);
      Values& x = ref_in[i];
      Values numeric(x.size());
      for (size_t e = 0; e < x.size(); ++e) {
        const double saved = x[e];
        x[e] = saved + kStep;
        const double plus = loss_at(ref_in);
        x[e] = saved - kStep;
        const double minus = loss_at(ref_in);
        x[e] = saved;
        numeric[e] = (plus - minus) / (2 * kStep);
      }
      const double grad_error = relative_error(grads[i], numeric);
      CHECK_MESSAGE(grad_error <= tolerance, "gradient error ", grad_error);
      report(("gradient of input " + std::to_string(i)).c_str(), row, c, dtype_text, target_text, grad_error);
    }
    return;
  }
  // Every input that takes a gradient moved at once along one random direction v: the numeric
  // derivative of L along v against sum over inputs of grad . v.
  const std::vector<Values> saved = ref_in;
  std::vector<Values> v(ref_in.size());
  double analytic = 0.0, scale = 0.0;  // scale: the size of the terms the directional derivative sums
  for (size_t i = 0; i < ref_in.size(); ++i) {
    if (grads[i].empty()) continue;
    v[i].resize(grads[i].size());
    for (size_t e = 0; e < v[i].size(); ++e) {
      // Along the analytic gradient's signs, so that an error proportional to the gradient adds up
      // over the elements instead of cancelling.
      v[i][e] = (grads[i][e] < 0 ? -1.0 : 1.0) * rng.uniform(0.5, 1.5);
      analytic += grads[i][e] * v[i][e];
      scale += std::abs(grads[i][e] * v[i][e]);
    }
  }
  auto moved = [&](double step) {
    for (size_t i = 0; i < ref_in.size(); ++i)
      for (size_t e = 0; e < v[i].size(); ++e) ref_in[i][e] = saved[i][e] + step * v[i][e];
    return loss_at(ref_in);
  };
  const double numeric = (moved(kStep) - moved(-kStep)) / (2 * kStep);
  const double grad_error = std::abs(analytic - numeric) / std::max(scale, 1e-30);
  CHECK_MESSAGE(grad_error <= tolerance, "directional gradient error ", grad_error);
  report("gradient along a direction", row, c, dtype_text, target_text, grad_error);
}

// Every row's cases of one kind (small or ResNet-50's) on every target of `device`.
void check_rows(bool resnet50, Device device) {
  uint64_t seed = resnet50 ? 5000 : 1000;
  for (const Row& row : op_table::rows())
    for (const Case& c : row.cases) {
      ++seed;
      if (c.resnet50 != resnet50) continue;
      for (const Target& target : op_table::targets(true)) {
        if (target.device != device) continue;
        // The CPU's readable kernels take the small cases only: at ResNet-50's sizes the direct
        // convolution (about 10 GFLOP/s) would triple this test's time, and it takes every shape
        // through the same loops.
        if (resnet50 && target.reference && target.device == Device::cpu) continue;
        for (DType dtype : {DType::f32, DType::bf16}) {
          // A dtype the row does not take is still asked of dispatch: it must say none and throw.
          const bool listed = std::find(row.dtypes.begin(), row.dtypes.end(), dtype) != row.dtypes.end();
          if (!listed && dispatch::supports(row.op, target.device, target.backend, dtype) != dispatch::Support::none)
            FAIL_CHECK(row.op, " is supported in ", dtype_name(dtype), " but its row does not check that dtype");
          check_case(row, c, dtype, target, seed);
        }
      }
    }
}

}  // namespace

TEST_CASE("op table: every op dispatch routes has a row, and every row an op dispatch routes") {
  std::vector<std::string> rows;
  for (const Row& r : op_table::rows()) rows.push_back(r.op);
  CHECK(rows == dispatch::supported_ops());
  CHECK_THROWS_AS(dispatch::supports("no_such_op", Device::cpu, dispatch::Backend::native, DType::f32), Error);
  CHECK_THROWS_AS(op_table::row("no_such_op"), Error);
  for (const Row& r : op_table::rows()) {
    CAPTURE(r.op);
    CHECK(!r.cases.empty());
    for (const Case& c : r.cases) CHECK(c.shapes.size() == r.inputs(c, 1).size());
  }
}

TEST_CASE("op table: forward and backward of every row match the float64 reference, small shapes") {
  check_rows(false, Device::cpu);
}

TEST_CASE("op table: forward and backward of every row match the float64 reference, ResNet-50 shapes") {
  check_rows(true, Device::cpu);
}

// The GPU's rows in cases of their own: on a machine without a GPU they say so and ctest counts them as
// skipped (the CPU's above still pass), and tools/gpu_check.sh finds them among the GPU's cases.
TEST_CASE("op table: on the GPU, every row's forward and backward match the float64 reference, small shapes") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  check_rows(false, Device::cuda);
}

TEST_CASE("op table: on the GPU, every row's forward and backward match the float64 reference, ResNet-50 shapes") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  check_rows(true, Device::cuda);
}

}  // namespace hotlap
