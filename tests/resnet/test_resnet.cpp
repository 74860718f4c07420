// The ResNet family: torchvision's sizes and names, the input sizes it accepts, and batch-norm
// folding for inference checked against the unfused network.
#include <doctest/doctest.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "nn/layers/ops.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap::resnet {
namespace {

TEST_CASE("resnet: parameter counts equal torchvision's") {
  // torchvision.models.resnetXX() with the 1000-class head.
  const std::pair<int, int64_t> expected[] = {{18, 11689512}, {34, 21797672}, {50, 25557032}, {101, 44549160}};
  for (auto [depth, count] : expected) {
    CAPTURE(depth);
    CHECK(make_resnet({depth, 1000, 64})->parameter_count() == count);
  }
}

TEST_CASE("resnet: built under SkipParameterInit, every parameter is zero and the random stream untouched") {
  // For networks whose parameters are loaded next (score, predict): drawing them is wasted time.
  manual_seed(7);
  const Rng before = global_rng();
  {
    const SkipParameterInit outer;
    {
      const SkipParameterInit inner;  // nests
    }
    CHECK(SkipParameterInit::active());
    const auto net = make_resnet({18, 3, 4});
    for (const auto& [name, t] : net->named_parameters()) {
      INFO(name);
      for (float v : t.to_vector())
        if (name.find("bn") == std::string::npos && name.find("downsample.1") == std::string::npos) REQUIRE(v == 0.0f);
    }
    Linear head(5, 2);
    for (float v : head.weight.to_vector()) CHECK(v == 0.0f);
  }
  CHECK(!SkipParameterInit::active());
  CHECK(std::equal(std::begin(before.state), std::end(before.state), std::begin(global_rng().state)));
  // Outside the guard the same seed draws the same weights as ever.
  const auto drawn = make_resnet({18, 3, 4});
  manual_seed(7);
  const auto again = make_resnet({18, 3, 4});
  const auto a = drawn->named_parameters(), b = again->named_parameters();
  REQUIRE(a.size() == b.size());
  bool any_nonzero = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto va = a[i].second.to_vector();
    CHECK(va == b[i].second.to_vector());
    for (float v : va) any_nonzero = any_nonzero || v != 0.0f;
  }
  CHECK(any_nonzero);
}

TEST_CASE("resnet: torchvision names, OHWI shapes, and the regression head") {
  auto r50 = make_resnet({50, 1, 64});
  std::map<std::string, Shape> shapes;
  for (auto& [name, t] : r50->state()) shapes[name] = t.shape();
  CHECK(shapes.at("conv1.weight") == Shape{64, 7, 7, 3});
  CHECK(shapes.at("layer1.0.conv2.weight") == Shape{64, 3, 3, 64});
  CHECK(shapes.at("layer1.0.downsample.0.weight") == Shape{256, 1, 1, 64});
  CHECK(shapes.at("layer3.4.bn2.running_var") == Shape{256});
  CHECK(shapes.at("layer4.2.conv3.weight") == Shape{2048, 1, 1, 512});
  CHECK(shapes.at("fc.weight") == Shape{1, 2048});
  CHECK(shapes.at("fc.bias") == Shape{1});
  CHECK(shapes.size() == 53 * 1 + 53 * 4 + 2);  // 53 convs, 53 batch norms (4 tensors each), fc

  auto r18 = make_resnet({18, 1, 64});
  std::set<std::string> names;
  for (auto& [name, t] : r18->state()) names.insert(name);
  CHECK(names.count("layer1.0.downsample.0.weight") == 0);  // same shape: identity shortcut
  CHECK(names.count("layer2.0.downsample.0.weight") == 1);
  CHECK(names.count("layer1.0.conv3.weight") == 0);         // basic blocks have two convs
  CHECK_THROWS_WITH_AS(make_resnet({42, 1, 64}), doctest::Contains("depth 42"), Error);
}

TEST_CASE("resnet: any input from 32x32 up, smaller is a clear error") {
  manual_seed(1);
  auto net = make_resnet({18, 3, 8});
  net->eval();
  NoGradGuard no_grad;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{32, 32}, {33, 47}, {64, 64}, {97, 70}}) {
    CAPTURE(h);
    CAPTURE(w);
    Tensor x = Tensor::from_vector({2, h, w, 3}, test::random_floats(static_cast<size_t>(2 * h * w * 3), 2));
    CHECK(net->forward(x).shape() == Shape{2, 3});
  }
  CHECK_THROWS_WITH_AS(net->forward(Tensor::zeros({1, 31, 64, 3})), doctest::Contains("smaller than 32x32"), Error);
  CHECK_THROWS_WITH_AS(net->forward(Tensor::zeros({1, 64, 64, 4})), doctest::Contains("NHWC"), Error);
}

// What the tour (docs/tour.md) counts: a training step records one tape entry per convolution, one
// per batch norm (its ReLU and the residual add inside it), the two pools, the linear head and the loss.
TEST_CASE("resnet: a training step records one tape entry per conv and per batch norm, plus pools, head and loss") {
  for (auto [depth, convs] : {std::pair<int, size_t>{18, 20}, {50, 53}}) {
    CAPTURE(depth);
    manual_seed(3);
    auto net = make_resnet({depth, 1, 8});
    net->train();
    Autograd::clear_tape();
    Tensor x = Tensor::from_vector({2, 32, 32, 3}, test::random_floats(2 * 32 * 32 * 3, 4));
    Tensor loss = ops::mse_loss(net->forward(x), Tensor::zeros({2, 1}));
    CHECK(Autograd::tape_size() == 2 * convs + 4);
    loss.backward();
    CHECK(Autograd::tape_size() == 0);
  }
}

TEST_CASE("resnet: fuse_batch_norm computes the eval-mode network") {
  for (int depth : {18, 50}) {
    CAPTURE(depth);
    manual_seed(7);
    auto net = make_resnet({depth, 2, 8});
    // Non-trivial statistics and affine parameters, so folding has something to fold.
    Rng rng(3);
    for (auto& [name, t] : net->state()) {
      Tensor v = t;
      if (name.ends_with("running_mean")) fill_uniform(v, -0.2, 0.2, rng);
      if (name.ends_with("running_var")) fill_uniform(v, 0.5, 1.5, rng);
      if (name.ends_with("bn1.weight") || name.ends_with("bn2.weight")) fill_uniform(v, 0.5, 1.5, rng);
      if (name.ends_with("bn1.bias") || name.ends_with("bn3.bias")) fill_uniform(v, -0.2, 0.2, rng);
    }
    net->eval();
    auto fused = net->fuse_batch_norm();
    for (auto& [name, t] : fused->state()) CHECK_MESSAGE(name.find("bn") == std::string::npos, name);
    CHECK(fused->state().size() < net->state().size());
    NoGradGuard no_grad;
    Tensor x = Tensor::from_vector({2, 40, 40, 3}, test::random_floats(2 * 40 * 40 * 3, 5));
    const std::vector<float> want = net->forward(x).to_vector();
    const std::vector<float> got = fused->forward(x).to_vector();
    // fp32: folding reorders a multiply per weight; differences stay at rounding level.
    CHECK(test::max_rel_error(got, want) < 1e-4);
    // The original is untouched.
    CHECK(net->forward(x).to_vector() == want);
    // Folding in place gives the copy's network; a second fold changes nothing.
    net->fold_batch_norm();
    CHECK(net->batch_norm_folded());
    CHECK(net->forward(x).to_vector() == got);
    net->fold_batch_norm();
    CHECK(net->forward(x).to_vector() == got);
  }
  // Training mode: the running statistics are still moving, so there is nothing to fold yet.
  auto training = make_resnet({18, 1, 8});
  training->train();
  CHECK_THROWS_WITH_AS(training->fold_batch_norm(), doctest::Contains("eval mode"), Error);
  CHECK_FALSE(training->batch_norm_folded());
}

}  // namespace
}  // namespace hotlap::resnet
