// hotlap training checkpoints (nn/files/checkpoint.h) and optimizer state restore (Optimizer::load_state):
// resuming is bit-exact for SGD with momentum and for AdamW; every bad file is an Error naming it and
// leaves model and optimizer unchanged; a failed save leaves the previous checkpoint untouched.
#include <doctest/doctest.h>

#include "test_util.h"
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "nn/files/checkpoint.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"

namespace fs = std::filesystem;
namespace st = hotlap::safetensors;

namespace hotlap {
namespace {

using hotlap::test::TempDir;
using hotlap::test::read_bytes;

// conv(3->c, 3x3, bias) - bn - relu - avgpool - linear(c->2).
std::shared_ptr<Sequential> small_net(int64_t channels = 4) {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(3, channels, 3, 1, 1, true));
  net->add(std::make_shared<BatchNorm2d>(channels));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<GlobalAvgPool>());
  net->add(std::make_shared<Linear>(channels, 2));
  return net;
}

using Snapshot = std::map<std::string, std::vector<uint8_t>>;

Snapshot snapshot(const NamedTensors& tensors) {
  Snapshot out;
  for (auto& [name, t] : tensors) {
    auto* p = static_cast<const uint8_t*>(t.raw());
    out[name] = std::vector<uint8_t>(p, p + t.nbytes());
  }
  return out;
}

// Steps [first, first + count): each step's batch and learning rate depend only on the step number,
// as a data loader with a fixed order and a schedule would give them.
void train(Module& net, Optimizer& opt, int64_t first, int64_t count, double base_lr) {
  for (int64_t s = first; s < first + count; ++s) {
    Rng rng(1000 + static_cast<uint64_t>(s));
    Tensor x = Tensor::empty({4, 6, 6, 3});
    Tensor y = Tensor::empty({4, 2});
    fill_uniform(x, -1.0, 1.0, rng);
    fill_uniform(y, -1.0, 1.0, rng);
    opt.set_lr(base_lr / (1.0 + 0.25 * static_cast<double>(s)));
    opt.zero_grad();
    Tensor loss = ops::mse_loss(net.forward(x), y);
    loss.backward();
    opt.step();
  }
}

std::unique_ptr<Optimizer> make_sgd(const Module& net) {
  SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  return std::make_unique<SGD>(net.named_parameters(), o);
}

std::unique_ptr<Optimizer> make_adamw(const Module& net) {
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.05;
  return std::make_unique<AdamW>(net.named_parameters(), o);
}

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(const Module&)>;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void check_exact_resume(const MakeOptimizer& make_opt, double lr, const std::string& kind) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const int64_t N = 3, M = 4;

  manual_seed(11);
  auto ref = small_net();
  auto ref_opt = make_opt(*ref);
  train(*ref, *ref_opt, 0, N + M, lr);

  manual_seed(11);
  auto first = small_net();
  auto first_opt = make_opt(*first);
  train(*first, *first_opt, 0, N, lr);
  CheckpointInfo info;
  info.step = N;
  info.epoch = 2;
  info.arch = "small-cnn";
  std::copy(std::begin(global_rng().state), std::end(global_rng().state), info.rng_state.begin());
  info.extra = {{"fold", "3"}, {"note", "resume test"}};
  save_checkpoint(path, *first, first_opt.get(), info);
  const Snapshot at_save = snapshot(first->state());

  manual_seed(99);  // a different initialisation, and fresh optimizer state
  auto resumed = small_net();
  auto resumed_opt = make_opt(*resumed);
  resumed_opt->set_lr(123.0);
  const CheckpointInfo got = load_checkpoint(path, *resumed, resumed_opt.get());
  CHECK(got.step == N);
  CHECK(got.epoch == 2);
  CHECK(got.arch == "small-cnn");
  CHECK(got.optimizer == kind);
  CHECK(got.rng_state == info.rng_state);
  CHECK(got.extra == info.extra);
  CHECK(resumed_opt->steps_taken() == N);
  CHECK(resumed_opt->lr() == first_opt->lr());
  CHECK(snapshot(resumed->state()) == at_save);
  CHECK(snapshot(resumed_opt->state()) == snapshot(first_opt->state()));

  train(*resumed, *resumed_opt, N, M, lr);
  CHECK(snapshot(resumed->state()) == snapshot(ref->state()));
  CHECK(snapshot(resumed_opt->state()) == snapshot(ref_opt->state()));
  CHECK(snapshot(resumed->state()) != at_save);

  // The test can tell: resuming with fresh optimizer state does not give the same weights.
  auto model_only = small_net();
  auto fresh_opt = make_opt(*model_only);
  load_checkpoint(path, *model_only, nullptr);
  CHECK(snapshot(model_only->state()) == at_save);
  train(*model_only, *fresh_opt, N, M, lr);
  CHECK(snapshot(model_only->state()) != snapshot(ref->state()));
}

TEST_CASE("checkpoint: resuming SGD with momentum is bit-exact") {
  check_exact_resume(make_sgd, 0.05, "sgd");
}

TEST_CASE("checkpoint: resuming AdamW (moments and per-parameter step counts) is bit-exact") {
  check_exact_resume(make_adamw, 0.01, "adamw");
}

TEST_CASE("checkpoint: the file layout") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  auto net = small_net();
  auto opt = make_adamw(*net);
  train(*net, *opt, 0, 2, 0.01);
  CheckpointInfo info;
  info.step = 2;
  info.arch = "small-cnn";
  info.rng_state = {1, 0xffffffffffffffffULL, 0x0123456789abcdefULL, 0};
  info.extra["fold"] = "1";
  save_checkpoint(path, *net, opt.get(), info);
  const st::File f = st::read_file(path);
  CHECK(f.metadata.at("hotlap.format") == "checkpoint-v1");
  CHECK(f.metadata.at("step") == "2");
  CHECK(f.metadata.at("optimizer") == "adamw");
  CHECK(f.metadata.at("rng_state") == "0000000000000001,ffffffffffffffff,0123456789abcdef,0000000000000000");
  CHECK(f.metadata.at("extra.fold") == "1");
  CHECK(f.at("model.0.weight").shape == std::vector<int64_t>{4, 3, 3, 3});  // OHWI, as in memory
  CHECK(f.find("model.1.running_var") != nullptr);
  CHECK(f.find("optim.0.weight.exp_avg") != nullptr);
  CHECK(f.find("optim.0.weight.exp_avg_sq") != nullptr);
  const st::Record& step = f.at("optim.4.bias.step");
  CHECK(st::to_f32(step) == std::vector<float>{2.0f});
}

TEST_CASE("checkpoint: a truncated file is an Error naming it, and nothing is loaded") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  auto net = small_net();
  auto opt = make_sgd(*net);
  train(*net, *opt, 0, 1, 0.05);
  save_checkpoint(path, *net, opt.get(), {});

  auto other = small_net();
  auto other_opt = make_sgd(*other);
  const Snapshot before = snapshot(other->state());
  for (uintmax_t cut : {fs::file_size(path) - 1, fs::file_size(path) / 2, uintmax_t{12}, uintmax_t{3}}) {
    CAPTURE(cut);
    const std::string copy = dir.file("cut_" + std::to_string(cut) + ".safetensors");
    fs::copy_file(path, copy);
    fs::resize_file(copy, cut);
    const std::string msg = error_of([&] { load_checkpoint(copy, *other, other_opt.get()); });
    INFO(msg);
    CHECK(msg.find(copy) != std::string::npos);
    CHECK(snapshot(other->state()) == before);
    CHECK(other_opt->state().empty());
  }
}

TEST_CASE("checkpoint: a PyTorch-format file is not a checkpoint, and the message says what to do") {
  TempDir dir;
  const std::string path = dir.file("torchvision.safetensors");
  auto net = small_net();
  export_torch_state(*net, path);
  const std::string msg = error_of([&] { load_checkpoint(path, *net, nullptr); });
  INFO(msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("not a hotlap checkpoint") != std::string::npos);
  CHECK(msg.find("import_torch_state") != std::string::npos);

  // A later format version is refused by name, and bad metadata names its key.
  const std::string ckpt = dir.file("ckpt.safetensors");
  save_checkpoint(ckpt, *net, nullptr, {});
  st::File f = st::read_file(ckpt);
  f.metadata["hotlap.format"] = "checkpoint-v9";
  st::write_file(ckpt, f);
  CHECK(error_of([&] { load_checkpoint(ckpt, *net, nullptr); }).find("checkpoint-v9") != std::string::npos);
  f.metadata["hotlap.format"] = "checkpoint-v1";
  f.metadata["step"] = "12x";
  st::write_file(ckpt, f);
  const std::string bad_step = error_of([&] { load_checkpoint(ckpt, *net, nullptr); });
  CHECK(bad_step.find(ckpt) != std::string::npos);
  CHECK(bad_step.find("\"step\" is \"12x\"") != std::string::npos);
}

TEST_CASE("checkpoint: the wrong model or optimizer is refused by name and nothing changes") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  auto net = small_net(4);
  auto opt = make_sgd(*net);
  train(*net, *opt, 0, 2, 0.05);
  CheckpointInfo info;
  info.arch = "small-cnn-4";
  save_checkpoint(path, *net, opt.get(), info);

  SUBCASE("another architecture") {
    auto wider = small_net(8);
    auto wider_opt = make_sgd(*wider);
    train(*wider, *wider_opt, 0, 1, 0.05);
    const Snapshot model_before = snapshot(wider->state()), opt_before = snapshot(wider_opt->state());
    const std::string msg = error_of([&] { load_checkpoint(path, *wider, wider_opt.get()); });
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("wrong architecture") != std::string::npos);
    CHECK(msg.find("small-cnn-4") != std::string::npos);
    CHECK(msg.find("wrong shape: model.0.weight is [4,3,3,3], the model has [8,3,3,3]") != std::string::npos);
    CHECK(snapshot(wider->state()) == model_before);
    CHECK(snapshot(wider_opt->state()) == opt_before);
  }
  SUBCASE("another optimizer") {
    auto other = small_net(4);
    auto adamw = make_adamw(*other);
    const Snapshot before = snapshot(other->state());
    const std::string msg = error_of([&] { load_checkpoint(path, *other, adamw.get()); });
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("sgd optimizer state, but the optimizer is adamw") != std::string::npos);
    CHECK(snapshot(other->state()) == before);
    CHECK(adamw->state().empty());
  }
  SUBCASE("optimizer state that does not fit (a momentum buffer for a parameter the optimizer lacks)") {
    auto other = small_net(4);
    NamedTensors some = other->named_parameters();
    some.pop_back();  // the optimizer does not own 4.bias
    SGD partial(some, SgdOptions{0.05, 0.9});
    const Snapshot before = snapshot(other->state());
    const std::string msg = error_of([&] { load_checkpoint(path, *other, &partial); });
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("4.bias.momentum_buffer: no parameter of that name") != std::string::npos);
    CHECK(snapshot(other->state()) == before);
    CHECK(partial.state().empty());
  }
  SUBCASE("a checkpoint without optimizer state restores only into no optimizer") {
    const std::string bare = dir.file("bare.safetensors");
    save_checkpoint(bare, *net, nullptr, {});
    auto other = small_net(4);
    auto other_opt = make_sgd(*other);
    CHECK(error_of([&] { load_checkpoint(bare, *other, other_opt.get()); }).find("no optimizer state") !=
          std::string::npos);
    CHECK(load_checkpoint(bare, *other, nullptr).optimizer.empty());
    CHECK(snapshot(other->state()) == snapshot(net->state()));
  }
}

TEST_CASE("checkpoint: a failed save leaves the previous checkpoint untouched") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  auto net = small_net();
  auto opt = make_sgd(*net);
  train(*net, *opt, 0, 1, 0.05);
  save_checkpoint(path, *net, opt.get(), {});
  const std::vector<uint8_t> bytes = read_bytes(path);

  train(*net, *opt, 1, 1, 0.05);
  CheckpointInfo bad;
  bad.extra["note"] = "\xff\xfe not UTF-8";  // the header cannot be written
  const std::string msg = error_of([&] { save_checkpoint(path, *net, opt.get(), bad); });
  INFO(msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(read_bytes(path) == bytes);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});

  CheckpointInfo wrong_kind;
  wrong_kind.optimizer = "adamw";
  CHECK(error_of([&] { save_checkpoint(path, *net, opt.get(), wrong_kind); }).find("adamw") != std::string::npos);
  CHECK(read_bytes(path) == bytes);

  const std::string nowhere = dir.file("missing_dir/ckpt.safetensors");
  const std::string missing = error_of([&] { save_checkpoint(nowhere, *net, opt.get(), {}); });
  INFO(missing);
  CHECK(missing.find(nowhere) != std::string::npos);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("optimizer load_state: checks names, shapes and completeness before changing anything") {
  auto net = small_net();
  SUBCASE("SGD") {
    auto opt = make_sgd(*net);
    train(*net, *opt, 0, 1, 0.05);
    const Snapshot before = snapshot(opt->state());
    std::map<std::string, Tensor> state;
    for (auto& [name, t] : opt->state()) state.emplace(name, t.clone());
    state["0.weight.momentum_buffer"] = Tensor::zeros({1, 2});
    state["0.weight.exp_avg"] = Tensor::zeros({1});
    const std::string msg = error_of([&] { opt->load_state(state); });
    INFO(msg);
    CHECK(msg.find("0.weight.momentum_buffer: shape [1, 2], the parameter is [4, 3, 3, 3]") != std::string::npos);
    CHECK(msg.find("0.weight.exp_avg: unknown entry") != std::string::npos);
    CHECK(snapshot(opt->state()) == before);

    opt->load_state({});  // back to "never stepped"
    CHECK(opt->state().empty());

    SGD plain(net->named_parameters(), SgdOptions{0.1});
    CHECK(error_of([&] { plain.load_state({{"0.bias.momentum_buffer", Tensor::zeros({4})}}); })
              .find("momentum 0") != std::string::npos);
  }
  SUBCASE("AdamW") {
    auto opt = make_adamw(*net);
    train(*net, *opt, 0, 2, 0.01);
    const Snapshot before = snapshot(opt->state());
    std::map<std::string, Tensor> state;
    for (auto& [name, t] : opt->state()) state.emplace(name, t.clone());
    state.erase("4.bias.step");
    state["4.weight.step"] = Tensor::full({1}, 2.5f);
    const std::string msg = error_of([&] { opt->load_state(state); });
    INFO(msg);
    CHECK(msg.find("4.bias: has exp_avg, exp_avg_sq and no step") != std::string::npos);
    CHECK(msg.find("4.weight.step: step count 2.5") != std::string::npos);
    CHECK(snapshot(opt->state()) == before);
  }
}

}  // namespace
}  // namespace hotlap
