// hotlap against PyTorch on a small conv-bn-relu-pool-conv-bn-relu-avgpool-linear network.
//
// tests/data/golden_small_cnn.safetensors is written by tools/make_goldens.py (see tools/README.md):
// PyTorch computed everything in float64 from float32 initial values, so the reference is exact for
// those inputs. hotlap computes in float32; the tolerance, 1e-4 relative to the largest magnitude of
// each tensor, leaves room for float32 rounding accumulated over a few hundred terms per output and
// three optimizer steps (observed errors are ~1e-6), while any wrong formula shows up at 1e-2 or more.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "nn/runtime/autograd.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/files/serialize.h"
#include "golden_small_cnn.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::Golden;
using test::GoldenNet;

constexpr double kTolerance = 1e-4;

void check_close(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  const double err = test::max_rel_error(got.to_vector(), want.to_vector());
  CHECK(err < kTolerance);
}

void run_optimizer(const Golden& g, const std::string& run, Optimizer& opt, Module& model) {
  std::vector<float> losses;
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    Tensor loss = ops::mse_loss(model.forward(g["input"]), g["target"]);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  CHECK(test::max_rel_error(losses, g[run + ".loss"].to_vector()) < kTolerance);
  for (auto& [name, tensor] : model.state()) check_close(tensor, g[run + ".final." + name], run + " " + name);
}

TEST_CASE("golden: eval-mode forward matches PyTorch") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_small_cnn.safetensors");
  GoldenNet model;
  model.load_state(g.state("init."));
  model.eval();
  NoGradGuard no_grad;
  check_close(model.forward(g["input"]), g["eval.output"], "eval.output");
}

TEST_CASE("golden: training forward, loss, every gradient and the running statistics match PyTorch") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_small_cnn.safetensors");
  GoldenNet model;
  model.load_state(g.state("init."));
  model.train();
  Tensor input = g["input"].clone();
  input.set_requires_grad(true);
  Tensor out = model.forward(input);
  check_close(out, g["train.output"], "train.output");
  Tensor loss = ops::mse_loss(out, g["target"]);
  check_close(loss, g["train.loss"], "train.loss");
  loss.backward();
  for (auto& [name, p] : model.named_parameters()) {
    REQUIRE_MESSAGE(p.grad().defined(), name);
    check_close(p.grad(), g["train.grad." + name], "grad " + name);
  }
  check_close(input.grad(), g["train.grad.input"], "grad input");
  for (auto& [name, b] : model.named_buffers()) check_close(b, g["train.after." + name], name);
}

TEST_CASE("golden: three SGD-momentum steps match PyTorch") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_small_cnn.safetensors");
  GoldenNet model;
  model.load_state(g.state("init."));
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  SGD opt(model.named_parameters(), o);
  run_optimizer(g, "sgd", opt, model);
}

TEST_CASE("golden: three Nesterov SGD steps match PyTorch") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_small_cnn.safetensors");
  GoldenNet model;
  model.load_state(g.state("init."));
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 1e-3;
  SGD opt(model.named_parameters(), o);
  run_optimizer(g, "sgd_nesterov", opt, model);
}

TEST_CASE("golden: three AdamW steps match PyTorch") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_small_cnn.safetensors");
  GoldenNet model;
  model.load_state(g.state("init."));
  AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 1e-2;
  AdamW opt(model.named_parameters(), o);
  run_optimizer(g, "adamw", opt, model);
}

// tests/data/golden_cross_entropy.safetensors (tools/make_cross_entropy_golden.py): PyTorch's
// F.cross_entropy, with and without label smoothing, in float64 from float32 logits. hotlap sums in
// double and rounds once to float32, so the loss and each gradient are within a few fp32 roundings.
TEST_CASE("golden: cross_entropy's loss and gradient match PyTorch's F.cross_entropy") {
  Golden g(HOTLAP_TEST_DATA_DIR "/golden_cross_entropy.safetensors");
  for (const std::string name : {"small", "smoothed", "far_apart", "imagenet"}) {
    INFO(name);
    Tensor logits = g[name + ".logits"].clone();
    logits.set_requires_grad();
    const float smoothing = g[name + ".smoothing"].item();
    Tensor loss = ops::cross_entropy(logits, g[name + ".labels"], smoothing);
    CHECK(test::max_rel_error(loss.to_vector(), g[name + ".loss"].to_vector()) < 1e-6);
    loss.backward();
    CHECK(test::max_rel_error(logits.grad().to_vector(), g[name + ".grad"].to_vector()) < 1e-6);
  }
}

}  // namespace
}  // namespace hotlap
