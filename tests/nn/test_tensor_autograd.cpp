// Tensor storage, views and dtypes; the autograd tape; modules' names, modes and weight loading.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernels/cast.h"
#include "nn/runtime/autograd.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/runtime/random.h"
#include "nn/layers/schedule.h"
#include "nn/files/serialize.h"
#include "test_util.h"

namespace hotlap {
namespace {

TEST_CASE("tensor: shape, strides, views share storage") {
  Tensor t = Tensor::from_vector({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(t.numel() == 12);
  CHECK(t.strides() == Shape{6, 2, 1});
  CHECK(t.dim(-1) == 2);
  CHECK_THROWS_AS(t.dim(3), Error);

  Tensor r = t.reshape({3, -1});
  CHECK(r.shape() == Shape{3, 4});
  r.f32()[5] = 50.0f;  // a view: the original sees it
  CHECK(t.f32()[5] == 50.0f);
  CHECK_THROWS_AS(t.reshape({5, -1}), Error);
  CHECK_THROWS_AS(t.reshape({-1, -1}), Error);

  Tensor s = t.slice(1, 2);  // the second batch element
  CHECK(s.shape() == Shape{1, 3, 2});
  CHECK(s.to_vector() == std::vector<float>{6, 7, 8, 9, 10, 11});
  CHECK_THROWS_AS(t.slice(1, 3), Error);

  Tensor c = t.clone();
  c.f32()[0] = -1.0f;
  CHECK(t.f32()[0] == 0.0f);  // a clone does not share
}

TEST_CASE("tensor: bf16 storage converts to and from f32") {
  Tensor f = Tensor::from_vector({4}, {1.0f, -2.5f, 3.14159f, 1e-3f});
  Tensor b = f.to(DType::bf16);
  CHECK(b.dtype() == DType::bf16);
  CHECK(b.nbytes() == 8);
  CHECK(b.bf16()[0].bits == 0x3F80);
  std::vector<float> back = b.to_vector();
  for (size_t i = 0; i < back.size(); ++i) CHECK(back[i] == doctest::Approx(f.to_vector()[i]).epsilon(4e-3));
  CHECK_THROWS_AS(b.f32(), Error);  // typed access checks the dtype
  CHECK_THROWS_AS(b.set_requires_grad(true), Error);
}

TEST_CASE("tensor: item, undefined tensors and factories") {
  CHECK(Tensor::scalar(2.5f).item() == 2.5f);
  CHECK_THROWS_AS(Tensor::zeros({2}).item(), Error);
  Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_AS(undefined.shape(), Error);
  CHECK_THROWS_AS(Tensor::from_vector({2, 2}, {1, 2, 3}), Error);
  CHECK_THROWS_AS(Tensor::empty({2, -1}), Error);
}

TEST_CASE("autograd: gradients accumulate across backward passes until zero_grad") {
  Tensor w = Tensor::from_vector({1, 2}, {2.0f, -1.0f}).set_requires_grad(true);
  Tensor x = Tensor::from_vector({1, 2}, {3.0f, 4.0f});
  ops::linear(x, w, Tensor()).backward();  // d(w.x)/dw = x
  CHECK(w.grad().to_vector() == std::vector<float>{3, 4});
  ops::linear(x, w, Tensor()).backward();
  CHECK(w.grad().to_vector() == std::vector<float>{6, 8});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  CHECK(Autograd::tape_size() == 0);  // backward consumed the tape
}

TEST_CASE("autograd: a tensor used twice receives both contributions, intermediates are freed") {
  Tensor a = Tensor::from_vector({1, 3}, {1, -2, 3}).set_requires_grad(true);
  Tensor h = ops::relu(a);                       // [1, 0, 3]
  Tensor y = ops::add(h, a);                     // h + a
  Tensor loss = ops::linear(y, Tensor::full({1, 3}, 1.0f), Tensor());
  loss.backward();
  CHECK(a.grad().to_vector() == std::vector<float>{2, 1, 2});  // relu' + 1
  CHECK_FALSE(h.grad().defined());  // non-leaf gradients are not kept
}

TEST_CASE("autograd: a backward through a graph an earlier backward freed is an error, not a missing gradient") {
  Autograd::clear_tape();
  Tensor a = Tensor::from_vector({1, 2}, {1.0f, -2.0f}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({1, 2}, {3.0f, 4.0f}).set_requires_grad(true);
  const Tensor ones = Tensor::full({1, 2}, 1.0f);
  // Two losses recorded, then two backward() calls: the first frees the whole tape.
  Tensor loss_a = ops::linear(ops::relu(a), ones, Tensor());  // relu(a) . 1
  Tensor loss_b = ops::linear(ops::add(b, b), ones, Tensor());  // 2b . 1
  loss_a.backward();
  CHECK(a.grad().to_vector() == std::vector<float>{1, 0});
  CHECK(Autograd::tape_size() == 0);
  CHECK_THROWS_WITH_AS(loss_b.backward(), doctest::Contains("freed by an earlier backward()"), Error);
  CHECK_FALSE(b.grad().defined());
  CHECK_THROWS_WITH_AS(loss_a.backward(), doctest::Contains("freed by an earlier backward()"), Error);
  // A loss built on an intermediate result of a graph already back-propagated.
  Tensor h = ops::relu(a);
  ops::linear(h, ones, Tensor()).backward();
  Tensor later = ops::linear(h, ones, Tensor());
  CHECK_THROWS_WITH_AS(later.backward(), doctest::Contains("whose part of the graph an earlier backward() freed"), Error);
  // Summed, the two losses back-propagate together.
  a.zero_grad();
  Tensor sum = ops::add(ops::linear(ops::relu(a), ones, Tensor()), ops::linear(ops::add(b, b), ones, Tensor()));
  sum.backward();
  CHECK(a.grad().to_vector() == std::vector<float>{1, 0});
  CHECK(b.grad().to_vector() == std::vector<float>{2, 2});
  Autograd::clear_tape();
}

TEST_CASE("autograd: leaf_final names each leaf once, as soon as no entry left can add to its gradient") {
  Autograd::clear_tape();
  // a is used first and last, b only in the middle, c on a branch that does not lead to the loss.
  Tensor a = Tensor::from_vector({1, 2}, {1.0f, -2.0f}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({1, 2}, {3.0f, 4.0f}).set_requires_grad(true);
  Tensor c = Tensor::from_vector({1, 2}, {5.0f, 6.0f}).set_requires_grad(true);
  const Tensor ones = Tensor::full({1, 2}, 1.0f);
  Tensor h = ops::relu(a);            // entry 0: a's earliest use
  Tensor unused = ops::relu(c);       // entry 1: off the loss's path
  Tensor g = ops::add(h, b);          // entry 2: b's only use
  Tensor y = ops::add(g, a);          // entry 3: a again
  Tensor loss = ops::linear(y, ones, Tensor());
  std::vector<std::string> order;
  std::vector<std::vector<float>> at_final;
  Autograd::backward(loss, [&](const Tensor& leaf) {
    order.push_back(leaf.same_as(a) ? "a" : leaf.same_as(b) ? "b" : leaf.same_as(c) ? "c" : "?");
    at_final.push_back(leaf.grad().defined() ? leaf.grad().to_vector() : std::vector<float>{});
  });
  // The walk goes newest entry first: b is final after entry 2, c after entry 1 (no gradient
  // reached it), a only after entry 0, although entry 3 gave it a gradient long before.
  CHECK(order == std::vector<std::string>{"b", "c", "a"});
  REQUIRE(at_final.size() == 3);
  CHECK(at_final[0] == b.grad().to_vector());
  CHECK(at_final[1].empty());
  CHECK_FALSE(c.grad().defined());
  CHECK(at_final[2] == a.grad().to_vector());  // both contributions were in when it was named
  CHECK(a.grad().to_vector() == std::vector<float>{2, 1});
  (void)unused;
  Autograd::clear_tape();
}

TEST_CASE("autograd: nothing is recorded under NoGradGuard or without inputs that need a gradient") {
  Tensor w = Tensor::full({2, 2}, 1.0f).set_requires_grad(true);
  Tensor x = Tensor::full({1, 2}, 1.0f);
  {
    NoGradGuard guard;
    Tensor y = ops::linear(x, w, Tensor());
    CHECK_FALSE(y.requires_grad());
    CHECK(Autograd::tape_size() == 0);
  }
  CHECK(Autograd::grad_enabled());
  Tensor y = ops::relu(x);
  CHECK_FALSE(y.requires_grad());
  CHECK(Autograd::tape_size() == 0);
  CHECK_THROWS_AS(y.backward(), Error);
  Tensor z = ops::linear(x, w, Tensor());
  CHECK_THROWS_AS(z.backward(), Error);  // two elements: not a scalar loss
  Autograd::clear_tape();
}

TEST_CASE("ops: shape errors name the op and the shapes") {
  Tensor x = Tensor::zeros({1, 4, 4, 3});
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 3, 3, 2}), Tensor(), 1, 1),
                       doctest::Contains("conv2d: input f32[1, 4, 4, 3]"), Error);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Tensor::zeros({8, 7, 7, 3}), Tensor(), 1, 0),
                       doctest::Contains("gives no output"), Error);
  CHECK_THROWS_WITH_AS(ops::add(x, Tensor::zeros({1, 4, 4, 2})), doctest::Contains("shapes differ"), Error);
  CHECK_THROWS_WITH_AS(ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}), Tensor()),
                       doctest::Contains("linear: input"), Error);
  CHECK_THROWS_AS(ops::max_pool2d(x, 3, 2, 2), Error);  // padding more than half the window
  CHECK_THROWS_AS(ops::relu(x.to(DType::bf16)), Error);
}

class Block : public Module {
 public:
  Block()
      : conv1(register_module("conv1", std::make_shared<Conv2d>(3, 4, 3, 1, 1))),
        bn1(register_module("bn1", std::make_shared<BatchNorm2d>(4))) {}
  Tensor forward(const Tensor& x) override { return ops::relu(bn1->forward(conv1->forward(x))); }
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
};

TEST_CASE("module: torchvision-style names, modes, parameter counts") {
  Sequential net;
  net.add(std::make_shared<Block>(), "layer1");
  net.add(std::make_shared<GlobalAvgPool>());
  net.add(std::make_shared<Linear>(4, 1), "fc");
  std::vector<std::string> names;
  for (auto& [name, t] : net.state()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"layer1.conv1.weight", "layer1.bn1.weight", "layer1.bn1.bias",
                                          "layer1.bn1.running_mean", "layer1.bn1.running_var",
                                          "fc.weight", "fc.bias"});
  CHECK(net.named_parameters().size() == 5);
  CHECK(net.parameter_count() == 4 * 3 * 3 * 3 + 4 + 4 + 4 + 1);
  for (auto& [name, t] : net.named_buffers()) CHECK_FALSE(t.requires_grad());
  net.eval();
  CHECK_FALSE(net.is_training());
}

TEST_CASE("module: batch norm updates running statistics only in training mode") {
  BatchNorm2d bn(2);
  Tensor x = Tensor::from_vector({2, 1, 1, 2}, {1, 10, 3, 30});
  bn.forward(x);
  // mean (2, 20); unbiased var (2, 200); running = 0.9 * init + 0.1 * batch
  CHECK(bn.running_mean.to_vector()[0] == doctest::Approx(0.2));
  CHECK(bn.running_mean.to_vector()[1] == doctest::Approx(2.0));
  CHECK(bn.running_var.to_vector()[0] == doctest::Approx(0.9 + 0.2));
  CHECK(bn.running_var.to_vector()[1] == doctest::Approx(0.9 + 20.0));
  bn.eval();
  Autograd::clear_tape();
  std::vector<float> before = bn.running_mean.to_vector();
  Tensor y = bn.forward(x);
  CHECK(bn.running_mean.to_vector() == before);
  CHECK(y.to_vector()[0] == doctest::Approx((1 - 0.2) / std::sqrt(1.1 + 1e-5)));
  Autograd::clear_tape();
}

TEST_CASE("ops: eval batch norm overwrites a moved-in input only when nothing else can see it") {
  Rng rng(7);
  Tensor x = Tensor::empty({2, 3, 3, 4});
  fill_normal(x, 0.5, 2.0, rng);
  Tensor gamma = Tensor::from_vector({4}, {1.0f, 0.5f, 2.0f, -1.0f});
  Tensor beta = Tensor::from_vector({4}, {0.0f, 1.0f, -1.0f, 0.25f});
  Tensor mean = Tensor::from_vector({4}, {0.1f, 0.2f, 0.3f, 0.4f});
  Tensor var = Tensor::from_vector({4}, {1.0f, 2.0f, 0.5f, 4.0f});
  const std::vector<float> input = x.to_vector();
  NoGradGuard no_grad;
  // A copy handed in: out of place, x untouched.
  const Tensor expected = ops::batch_norm(x, gamma, beta, mean, var, {.training = false, .relu = true});
  CHECK(x.to_vector() == input);
  CHECK(expected.raw() != x.raw());

  // The only handle moved in: the result reuses x's memory and has the same values.
  Tensor sole = x.clone();
  const void* sole_data = sole.raw();
  const Tensor y = ops::batch_norm(std::move(sole), gamma, beta, mean, var, {.training = false, .relu = true});
  CHECK(y.raw() == sole_data);
  CHECK(y.to_vector() == expected.to_vector());

  // A view elsewhere, training mode, or a backward to record: never in place.
  Tensor viewed = x.clone();
  const Tensor view = viewed.reshape({-1});
  CHECK(ops::batch_norm(std::move(viewed), gamma, beta, mean, var, {.training = false}).raw() != view.raw());
  CHECK(view.to_vector() == input);
  Tensor training = x.clone();
  const void* training_data = training.raw();
  CHECK(ops::batch_norm(std::move(training), gamma, beta, mean.clone(), var.clone(), {.training = true}).raw() !=
        training_data);
  {
    Autograd::set_grad_enabled(true);
    Tensor g = gamma.clone();
    g.set_requires_grad();
    Tensor recorded = x.clone();
    const void* recorded_data = recorded.raw();
    CHECK(ops::batch_norm(std::move(recorded), g, beta, mean, var, {.training = false}).raw() != recorded_data);
    Autograd::clear_tape();
    Autograd::set_grad_enabled(false);
  }
}

TEST_CASE("module: load_state is strict and reports every problem") {
  Linear fc(3, 2);
  std::map<std::string, Tensor> good{{"weight", Tensor::full({2, 3}, 0.5f)}, {"bias", Tensor::full({2}, 1.0f)}};
  fc.load_state(good);
  CHECK(fc.weight.to_vector() == std::vector<float>(6, 0.5f));
  CHECK(fc.weight.requires_grad());  // loading keeps the parameter a parameter

  std::map<std::string, Tensor> bad{{"weight", Tensor::full({3, 2}, 0.5f)}, {"extra", Tensor::zeros({1})}};
  try {
    fc.load_state(bad);
    FAIL("load_state accepted bad weights");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("missing: bias") != std::string::npos);
    CHECK(msg.find("wrong shape: weight is [3, 2], the model expects [2, 3]") != std::string::npos);
    CHECK(msg.find("unexpected: extra") != std::string::npos);
  }
  CHECK(fc.weight.to_vector() == std::vector<float>(6, 0.5f));  // nothing half-loaded
}

TEST_CASE("module: state round-trips through a safetensors file, f32 and bf16") {
  manual_seed(5);
  Linear a(4, 3), b(4, 3);
  const std::string path = (std::filesystem::temp_directory_path() / "hotlap_test_state.safetensors").string();
  write_tensors(path, a.state(), {{"kind", "test"}});
  std::map<std::string, Tensor> loaded = read_tensors(path);
  b.load_state(loaded);
  CHECK(b.weight.to_vector() == a.weight.to_vector());
  CHECK(b.bias.to_vector() == a.bias.to_vector());
  // bf16 storage: written as BF16, read back as bf16, converted on load.
  write_tensors(path, {{"weight", a.weight.to(DType::bf16)}, {"bias", a.bias}});
  loaded = read_tensors(path);
  CHECK(loaded.at("weight").dtype() == DType::bf16);
  b.load_state(loaded);
  CHECK(test::max_rel_error(b.weight.to_vector(), a.weight.to_vector()) < 4e-3);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(read_tensors(path), doctest::Contains(path.c_str()), Error);
}

TEST_CASE("random: seeded streams repeat, uniform and normal have the right moments") {
  Rng a(42), b(42);
  for (int i = 0; i < 5; ++i) CHECK(a.next_u64() == b.next_u64());
  Rng r(1);
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double v = r.normal();
    sum += v;
    sq += v * v;
  }
  CHECK(std::abs(sum / n) < 0.03);
  CHECK(std::abs(sq / n - 1.0) < 0.05);
  for (int i = 0; i < 1000; ++i) {
    double u = r.uniform();
    CHECK((u >= 0.0 && u < 1.0));
    int64_t k = r.below(7);
    CHECK((k >= 0 && k < 7));
  }
}

TEST_CASE("schedules: step decay and cosine with warm-up") {
  StepLr step(1e-3, 5000, 0.1);
  CHECK(step.lr_at(0) == doctest::Approx(1e-3));
  CHECK(step.lr_at(4999) == doctest::Approx(1e-3));
  CHECK(step.lr_at(5000) == doctest::Approx(1e-4));
  CHECK(step.lr_at(19999) == doctest::Approx(1e-6));
  CosineLr cos(1.0, 10, 110, 0.1);
  CHECK(cos.lr_at(0) == doctest::Approx(1.0 / 11));
  CHECK(cos.lr_at(9) == doctest::Approx(10.0 / 11));
  CHECK(cos.lr_at(10) == doctest::Approx(1.0));
  CHECK(cos.lr_at(60) == doctest::Approx(0.55));
  CHECK(cos.lr_at(110) == doctest::Approx(0.1));
  CHECK(cos.lr_at(500) == doctest::Approx(0.1));
  for (int64_t s = 10; s < 110; ++s) CHECK(cos.lr_at(s + 1) <= cos.lr_at(s));
  CHECK_THROWS_AS(CosineLr(1.0, 10, 10), Error);
  CHECK_THROWS_AS(StepLr(1.0, 0, 0.1), Error);
}

}  // namespace
}  // namespace hotlap
