// Grad-CAM on a tiny ResNet-18: the score it reports is the network's, the channel weights are the
// ones the head implies (fc.weight / (h * w)), the map is normalised and peaks where the channel that
// drives the score is strongest, and the network's gradients and the tape are left as they were.
// Also the split ResNet::features / ResNet::head it is built on, and the heat-map drawing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "apps/score/gradcam.h"
#include "kernels/error.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"
#include "test_util.h"

namespace hotlap {
namespace {

std::shared_ptr<resnet::ResNet> tiny_resnet(uint64_t seed) {
  manual_seed(seed);
  auto net = resnet::make_resnet({18, 1, 4});
  net->eval();
  return net;
}

Tensor random_input(int64_t h, int64_t w, uint64_t seed) {
  return Tensor::from_vector({1, h, w, 3}, test::random_floats(static_cast<size_t>(h * w * 3), seed, -2, 2));
}

Tensor parameter(const resnet::ResNet& net, const std::string& name) {
  for (auto& [n, t] : net.named_parameters())
    if (n == name) return t;
  FAIL("no parameter ", name);
  return Tensor();
}

TEST_CASE("resnet: forward is head(features(x)), features is the layer4 activation") {
  auto net = tiny_resnet(3);
  NoGradGuard no_grad;
  const Tensor x = random_input(64, 96, 4);
  const Tensor a = net->features(x);
  CHECK(a.shape() == Shape{1, 2, 3, net->feature_channels()});
  CHECK(net->feature_channels() == 32);  // width 4 * 8
  CHECK(net->head(a).to_vector() == net->forward(x).to_vector());
  CHECK_THROWS_WITH_AS(net->head(Tensor::zeros({1, 2, 2, 31})), doctest::Contains("head input"), Error);
}

TEST_CASE("grad_cam: the score is forward's, alpha is fc.weight / (h * w), the map is in [0, 1]") {
  auto net = tiny_resnet(5);
  const Tensor x = random_input(64, 64, 6);
  double expected_score;
  {
    NoGradGuard no_grad;
    expected_score = net->forward(x).item();
  }
  const GradCam cam = grad_cam(*net, x);
  CHECK(cam.score == doctest::Approx(expected_score).epsilon(1e-6));
  REQUIRE(cam.height == 2);
  REQUIRE(cam.width == 2);
  REQUIRE(cam.heat.size() == 4);

  // GAP + linear: d score / d A[i, j, c] = fc.weight[0, c] / (h * w) at every position.
  const std::vector<float> fc = parameter(*net, "fc.weight").to_vector();
  REQUIRE(cam.channel_weights.size() == fc.size());
  for (size_t c = 0; c < fc.size(); ++c) {
    CAPTURE(c);
    CHECK(cam.channel_weights[c] == doctest::Approx(fc[c] / 4.0).epsilon(1e-6));
  }

  // The map itself, recomputed from the activation: relu(sum_c alpha_c A_c), divided by its max.
  std::vector<float> a;
  {
    NoGradGuard no_grad;
    a = net->features(x).to_vector();
  }
  std::vector<double> raw(4);
  for (size_t p = 0; p < 4; ++p) {
    for (size_t c = 0; c < fc.size(); ++c) raw[p] += fc[c] / 4.0 * a[p * fc.size() + c];
    raw[p] = std::max(raw[p], 0.0);
  }
  const double peak = *std::max_element(raw.begin(), raw.end());
  for (size_t p = 0; p < 4; ++p) {
    CAPTURE(p);
    CHECK(cam.heat[p] >= 0.0f);
    CHECK(cam.heat[p] <= 1.0f);
    CHECK(cam.heat[p] == doctest::Approx(peak > 0 ? raw[p] / peak : 0.0).epsilon(1e-5));
  }
  if (peak > 0) CHECK(*std::max_element(cam.heat.begin(), cam.heat.end()) == 1.0f);
}

TEST_CASE("grad_cam: leaves the tape empty and the parameters' gradients and flags as they were") {
  auto net = tiny_resnet(7);
  const Tensor x = random_input(64, 64, 8);

  SUBCASE("no gradients before: none are created") {
    grad_cam(*net, x);
    for (auto& [name, p] : net->named_parameters()) {
      CAPTURE(name);
      CHECK_FALSE(p.grad().defined());
      CHECK(p.requires_grad());
    }
  }
  SUBCASE("gradients from a training step: unchanged") {
    net->train();
    net->forward(x).backward();
    net->eval();
    std::map<std::string, std::vector<float>> before;
    for (auto& [name, p] : net->named_parameters()) {
      REQUIRE(p.grad().defined());
      before[name] = p.grad().to_vector();
    }
    grad_cam(*net, x);
    for (auto& [name, p] : net->named_parameters()) {
      CAPTURE(name);
      REQUIRE(p.grad().defined());
      CHECK(p.grad().to_vector() == before[name]);
    }
  }
  SUBCASE("called under a NoGradGuard: still works, and the guard still holds afterwards") {
    NoGradGuard no_grad;
    const GradCam cam = grad_cam(*net, x);
    CHECK(cam.heat.size() == 4);
    CHECK_FALSE(Autograd::grad_enabled());
  }
  CHECK(Autograd::tape_size() == 0);
}

TEST_CASE("grad_cam: the map peaks where the one channel that drives the score is strongest") {
  auto net = tiny_resnet(9);
  const Tensor x = random_input(128, 128, 10);  // a 4x4 map
  std::vector<float> a;
  {
    NoGradGuard no_grad;
    a = net->features(x).to_vector();
  }
  const size_t channels = static_cast<size_t>(net->feature_channels()), positions = 16;
  // The channel with the strongest activation anywhere, and where that is.
  size_t k = 0, where = 0;
  for (size_t p = 0; p < positions; ++p)
    for (size_t c = 0; c < channels; ++c)
      if (a[p * channels + c] > a[where * channels + k]) k = c, where = p;
  REQUIRE(a[where * channels + k] > 0);

  // Only channel k counts towards the score.
  Tensor fc = parameter(*net, "fc.weight");
  std::fill(fc.f32(), fc.f32() + fc.numel(), 0.0f);
  fc.f32()[k] = 0.7f;

  const GradCam cam = grad_cam(*net, x);
  REQUIRE(cam.heat.size() == positions);
  const size_t peak =
      static_cast<size_t>(std::max_element(cam.heat.begin(), cam.heat.end()) - cam.heat.begin());
  CHECK(peak == where);
  CHECK(cam.heat[peak] == 1.0f);
  for (size_t p = 0; p < positions; ++p) {  // the map is channel k's activation over its maximum
    CAPTURE(p);
    CHECK(cam.heat[p] == doctest::Approx(a[p * channels + k] / a[where * channels + k]).epsilon(1e-5));
  }

  // A negative weight: nothing raises the score, so the map is all zero (not divided by zero).
  fc.f32()[k] = -0.7f;
  const GradCam none = grad_cam(*net, x);
  CHECK(std::all_of(none.heat.begin(), none.heat.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("grad_cam: refuses a training-mode network, a batch, and a pending backward pass") {
  auto net = tiny_resnet(11);
  const Tensor x = random_input(64, 64, 12);
  net->train();
  CHECK_THROWS_WITH_AS(grad_cam(*net, x), doctest::Contains("eval mode"), Error);
  net->eval();
  CHECK_THROWS_WITH_AS(grad_cam(*net, Tensor::zeros({2, 64, 64, 3})), doctest::Contains("one NHWC image"),
                       Error);
  const Tensor pending = net->forward(x);  // recorded: the tape is not empty
  CHECK_THROWS_WITH_AS(grad_cam(*net, x), doctest::Contains("tape"), Error);
  Autograd::clear_tape();
}

TEST_CASE("heat maps: bilinear upsampling, the colour map, the overlay") {
  const std::vector<float> constant(6, 0.25f);
  for (float v : upsample_heat(constant, 2, 3, 20, 30)) CHECK(v == doctest::Approx(0.25f));
  const std::vector<float> ramp = {0.0f, 1.0f, 0.5f, 0.25f};
  const std::vector<float> up = upsample_heat(ramp, 2, 2, 8, 8);
  REQUIRE(up.size() == 64);
  CHECK(up[0] == doctest::Approx(0.0f));       // corners keep their values (edges clamp)
  CHECK(up[7] == doctest::Approx(1.0f));
  CHECK(up[56] == doctest::Approx(0.5f));
  CHECK(up[63] == doctest::Approx(0.25f));
  CHECK(up[3] > 0.0f);                          // in between: interpolated
  CHECK(up[3] < 1.0f);
  CHECK_THROWS_AS(upsample_heat(ramp, 3, 2, 8, 8), Error);

  const auto dark = inferno(0.0f), bright = inferno(1.0f), mid = inferno(0.5f);
  CHECK(dark[0] + dark[1] + dark[2] < 0.1f);
  CHECK(bright[0] + bright[1] + bright[2] > 2.5f);
  CHECK(mid[0] > mid[2]);  // orange-red in the middle
  CHECK(inferno(-3.0f) == dark);
  CHECK(inferno(NAN) == dark);

  Image crop = make_image(16, 16, 0.5f);
  const Image same = heat_overlay(crop, ramp, 2, 2, 0.0f);
  CHECK(same.pixels == crop.pixels);
  const Image blended = heat_overlay(crop, std::vector<float>(4, 1.0f), 2, 2, 0.45f);
  for (int c = 0; c < 3; ++c) CHECK(blended.at(5, 5, c) == doctest::Approx(0.55f * 0.5f + 0.45f * bright[c]));
  CHECK_THROWS_AS(heat_overlay(Image{}, ramp, 2, 2), Error);
}

}  // namespace
}  // namespace hotlap
