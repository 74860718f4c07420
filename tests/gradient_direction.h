// Gradients of a whole network compared by direction and size, tensor by tensor, for runs whose
// elements may legitimately differ by O(1) (bf16 compute). In a small training-mode ResNet the
// last stage's batch norms see few values a channel (2 images x 2x2 pixels = 8 at 64x64), so one
// ReLU input that a bf16 rounding moves across 0 shifts a channel's sums by ~1/8, and the
// training-mode batch-norm backward (a difference of near-equal terms) amplifies every rounding on
// the way to the stem. What a step needs is the update's direction and size: the cosine between the
// two gradients of each parameter tensor must be > 0.5 and the norms within a factor 2 (checked by
// add), and the mean cosine over the tensors high (checked by the caller). A wrong or missing
// gradient gives a cosine near 0.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "nn/runtime/tensor.h"

namespace hotlap::test {

class GradientDirection {
 public:
  // The cosine between two gradients of one tensor, and the ratio of their norms (|got| / |ref|).
  static double cosine(const std::vector<float>& got, const std::vector<float>& ref, double* norm_ratio = nullptr) {
    REQUIRE(got.size() == ref.size());
    double dot = 0.0, gg = 0.0, rr = 0.0;
    for (size_t k = 0; k < got.size(); ++k) {
      dot += static_cast<double>(got[k]) * ref[k];
      gg += static_cast<double>(got[k]) * got[k];
      rr += static_cast<double>(ref[k]) * ref[k];
    }
    if (norm_ratio != nullptr) *norm_ratio = std::sqrt(gg / (rr + 1e-300));
    return dot / std::sqrt(gg * rr + 1e-300);
  }

  // One parameter tensor's gradients, got against ref: checked and counted.
  void add(const std::vector<float>& got, const std::vector<float>& ref) {
    double norm_ratio = 0.0;
    const double c = cosine(got, ref, &norm_ratio);
    CHECK(c > 0.5);
    CHECK(norm_ratio > 0.5);
    CHECK(norm_ratio < 2.0);
    if (count_ == 0 || c < worst_) {
      worst_ = c;
      worst_index_ = count_;
    }
    sum_ += c;
    ++count_;
  }
  // A parameter's gradient against the reference's, after checking that both stay fp32 (parameters
  // and their gradients do in every math mode).
  void add_parameter(const Tensor& param, const std::vector<float>& ref_grad) {
    CHECK(param.dtype() == DType::f32);
    REQUIRE(param.grad().defined());
    CHECK(param.grad().dtype() == DType::f32);
    add(param.grad().to_vector(), ref_grad);
  }
  double mean_cosine() const { return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0; }
  double worst_cosine() const { return worst_; }
  size_t worst_index() const { return worst_index_; }  // in the order of add()

 private:
  double sum_ = 0.0, worst_ = 0.0;
  size_t count_ = 0, worst_index_ = 0;
};

}  // namespace hotlap::test
