// The ImageNet recipes' weight decay: on the weights of convolutions and linear layers, not on the
// parameters of one dimension (biases, batch norm's scales and shifts). With decay_vectors = false, a
// step moves every matrix as a step with the decay does, and every vector as a step without it.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/random.h"

namespace hotlap {
namespace {

// A linear layer after one step of `make`'s optimizer on a fixed batch, from fixed weights.
template <typename MakeOptimizer>
std::map<std::string, std::vector<float>> after_one_step(MakeOptimizer make) {
  Linear layer(3, 2);
  Rng rng(11);
  fill_uniform(layer.weight, -1, 1, rng);
  fill_uniform(layer.bias, -1, 1, rng);
  Tensor x = Tensor::empty({4, 3});
  fill_uniform(x, -1, 1, rng);
  Tensor target = Tensor::empty({4, 2});
  fill_uniform(target, -1, 1, rng);
  std::unique_ptr<Optimizer> optimizer = make(layer.named_parameters());
  optimizer->zero_grad();
  ops::mse_loss(layer.forward(x), target).backward();
  optimizer->step();
  return {{"weight", layer.weight.to_vector()}, {"bias", layer.bias.to_vector()}};
}

TEST_CASE("optimizers: decay_vectors = false spares biases from weight decay, and only them") {
  for (const std::string kind : {"sgd", "adamw"}) {
    INFO(kind);
    const auto run = [&](double decay, bool decay_vectors) {
      return after_one_step([&](NamedTensors params) -> std::unique_ptr<Optimizer> {
        if (kind == "sgd") {
          SgdOptions o;
          o.lr = 0.1;
          o.momentum = 0.9;
          o.weight_decay = decay;
          o.decay_vectors = decay_vectors;
          return std::make_unique<SGD>(params, o);
        }
        AdamWOptions o;
        o.lr = 0.1;
        o.weight_decay = decay;
        o.decay_vectors = decay_vectors;
        return std::make_unique<AdamW>(params, o);
      });
    };
    const auto spared = run(0.5, false), decayed = run(0.5, true), plain = run(0.0, true);
    CHECK(spared.at("weight") == decayed.at("weight"));
    CHECK(spared.at("weight") != plain.at("weight"));
    CHECK(spared.at("bias") == plain.at("bias"));
    CHECK(spared.at("bias") != decayed.at("bias"));
  }
}

}  // namespace
}  // namespace hotlap
