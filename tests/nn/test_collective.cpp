// The collectives between ranks (kernels/comm.h, nn/runtime/collective.h). The "mpi:" cases check
// something only in a job of several ranks: ctest runs them through mpirun with two ranks ("mpi: 2
// ranks", tests/CMakeLists.txt); run alone they say so and ctest reports them as skipped. The
// "collective:" cases run in every process.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "kernels/comm.h"
#include "nn/layers/module.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/collective.h"
#include "nn/runtime/random.h"
#include "data_parallel.h"
#include "golden_small_cnn.h"
#include "test_util.h"

using namespace hotlap;
namespace comm = hotlap::kernels::comm;

namespace {

// What rank r contributes at element i: different on every rank, and not exactly summable in float.
float contribution(int rank, int64_t i) {
  return 0.1f * static_cast<float>(i % 97) + 1.0f / static_cast<float>(3 + rank) + 1e-3f * static_cast<float>(rank);
}

// A small network without batch norm (whose statistics are each rank's own: SyncBatchNorm's job).
std::shared_ptr<Sequential> small_net() {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(3, 6, 3, 1, 1, true));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<Conv2d>(6, 8, 3, 2, 1, true));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<GlobalAvgPool>());
  net->add(std::make_shared<Linear>(8, 2));
  return net;
}

// The same with batch norm (and its ReLU) after each convolution.
std::shared_ptr<Sequential> small_net_with_batch_norm() {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(3, 6, 3, 1, 1));
  net->add(std::make_shared<BatchNorm2d>(6));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<Conv2d>(6, 8, 3, 2, 1));
  net->add(std::make_shared<BatchNorm2d>(8));
  net->add(std::make_shared<GlobalAvgPool>());
  net->add(std::make_shared<Linear>(8, 2));
  return net;
}

}  // namespace

TEST_CASE("collective: a world of one leaves every tensor as it is") {
  if (comm::world().size != 1) return;
  Tensor a = Tensor::from_vector({3}, {1.0f, 2.0f, 3.0f});
  allreduce_mean({a, Tensor()});
  broadcast_from_root({a});
  CHECK(a.to_vector() == std::vector<float>{1.0f, 2.0f, 3.0f});
  CHECK(comm::world().rank == 0);
  CHECK(comm::is_root());
}

TEST_CASE("mpi: the sum over the ranks is the same bits on every rank, summed in rank order") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const comm::World& w = comm::world();
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{100003}}) {
    CAPTURE(n);
    std::vector<float> data(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) data[static_cast<size_t>(i)] = contribution(w.rank, i);
    comm::allreduce_sum(data.data(), n, "test");
    bool all_equal = true;
    for (int64_t i = 0; i < n; ++i) {
      float want = contribution(0, i);
      for (int r = 1; r < w.size; ++r) want += contribution(r, i);
      all_equal = all_equal && std::memcmp(&want, &data[static_cast<size_t>(i)], sizeof(float)) == 0;
    }
    CHECK(all_equal);
    // Every rank holds rank 0's bits.
    std::vector<float> root = data;
    comm::broadcast(root.data(), n * static_cast<int64_t>(sizeof(float)), 0, "test");
    CHECK(test::same_float_values(root, data));
  }
  std::vector<double> d = {1.0 + w.rank, 0.5};
  comm::allreduce_sum(d.data(), 2, "test");
  CHECK(d[0] == doctest::Approx(w.size * (w.size + 1) / 2.0));
  CHECK(d[1] == doctest::Approx(0.5 * w.size));
}

TEST_CASE("mpi: allgather concatenates every rank's values in rank order, empty ones included") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const comm::World& w = comm::world();
  std::vector<float> mine(static_cast<size_t>(w.rank));  // rank 0 sends nothing
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = static_cast<float>(100 * w.rank + static_cast<int>(i));
  const std::vector<float> all = comm::allgather(mine, "test");
  std::vector<float> want;
  for (int r = 0; r < w.size; ++r)
    for (int i = 0; i < r; ++i) want.push_back(static_cast<float>(100 * r + i));
  CHECK(all == want);
}

TEST_CASE("mpi: a data-parallel step equals one process's step on the whole batch") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const int64_t batch = 4 * comm::world().size;
  // The same global batch on every rank (a seeded draw), the same initial weights.
  const Tensor images = Tensor::from_vector({batch, 10, 10, 3}, test::random_floats(static_cast<size_t>(batch * 300), 5));
  const Tensor targets = Tensor::from_vector({batch, 2}, test::random_floats(static_cast<size_t>(batch * 2), 6));
  manual_seed(7);
  auto parallel = small_net();
  manual_seed(7);
  auto whole = small_net();
  broadcast_from_root(parallel->parameters());  // rank 0's weights everywhere, as training starts
  test::sgd_steps(*parallel, images, targets, true, 3, 0.05);
  test::sgd_steps(*whole, images, targets, false, 3, 0.05);
  const std::vector<float> got = test::flat_state(*parallel), want = test::flat_state(*whole);
  CHECK(test::max_rel_error(got, want) < 1e-5);
  // And the ranks agree to the bit.
  std::vector<float> root = got;
  comm::broadcast(root.data(), static_cast<int64_t>(root.size() * sizeof(float)), 0, "test");
  CHECK(test::same_float_values(root, got));
}

TEST_CASE("mpi: with synchronised batch norm, a data-parallel step equals one process's (weights and running statistics)") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const int64_t batch = 4 * comm::world().size;
  // Inputs far from zero mean: the statistics' sums must not lose them.
  std::vector<float> values = test::random_floats(static_cast<size_t>(batch * 300), 8);
  for (float& v : values) v = 3.0f + 2.0f * v;
  const Tensor images = Tensor::from_vector({batch, 10, 10, 3}, values);
  const Tensor targets = Tensor::from_vector({batch, 2}, test::random_floats(static_cast<size_t>(batch * 2), 9));
  manual_seed(11);
  auto parallel = small_net_with_batch_norm();
  manual_seed(11);
  auto whole = small_net_with_batch_norm();
  set_sync_batch_norm(*parallel, true);
  test::sgd_steps(*parallel, images, targets, true, 3, 0.05);
  test::sgd_steps(*whole, images, targets, false, 3, 0.05);
  const std::vector<float> want = test::flat_state(*whole);
  CHECK(test::max_rel_error(test::flat_state(*parallel), want) < 1e-5);
  // Without the synchronisation each rank's statistics are its own: the runs part.
  manual_seed(11);
  auto local = small_net_with_batch_norm();
  test::sgd_steps(*local, images, targets, true, 3, 0.05);
  CHECK(test::max_rel_error(test::flat_state(*local), want) > 1e-3);
}

// tests/data/golden_ddp_small_cnn.safetensors (tools/make_ddp_golden.py): PyTorch's
// DistributedDataParallel on two gloo processes, float64, batch norm with each process's own
// statistics, three SGD steps on four images each. hotlap in float32: the golden tests' 1e-4.
TEST_CASE("mpi: two ranks match PyTorch DistributedDataParallel on two processes (weights, each rank's statistics)") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const comm::World& w = comm::world();
  if (w.size != 2) {
    MESSAGE("MPI test skipped: the golden is for two ranks");
    return;
  }
  const test::Golden g(HOTLAP_TEST_DATA_DIR "/golden_ddp_small_cnn.safetensors");
  test::GoldenNet model;
  model.load_state(g.state("init."));
  // Four images a rank, rank 0's running statistics before each step (DDP's broadcast_buffers).
  const std::vector<float> losses = test::sgd_steps(model, g["input"], g["target"], true, 3, 0.05, true);
  const std::string rank = "rank" + std::to_string(w.rank);
  CHECK(test::max_rel_error(losses, g[rank + ".loss"].to_vector()) < 1e-4);
  for (const auto& [name, tensor] : model.state()) {
    CAPTURE(name);
    CHECK(test::max_rel_error(tensor.to_vector(), g[rank + ".final." + name].to_vector()) < 1e-4);
  }
}

namespace {

// Each parameter's gradient, flattened in parameter order (empty where backward reached none).
std::vector<float> flat_gradients(const Module& net) {
  std::vector<float> all;
  for (const auto& [name, p] : net.named_parameters())
    if (p.grad().defined()) {
      const std::vector<float> g = p.grad().to_vector();
      all.insert(all.end(), g.begin(), g.end());
    }
  return all;
}

// One backward of `net` on this rank's slice of a seeded batch: through the reducer (buckets of
// `bucket_bytes` sent during backward) or as backward() then allreduce_mean.
std::vector<float> reduced_gradients(Module& net, bool overlapped, size_t bucket_bytes, GradientReducer::Report* report) {
  const comm::World& w = comm::world();
  const int64_t batch = 4 * w.size;
  const Tensor images = Tensor::from_vector({batch, 10, 10, 3}, test::random_floats(static_cast<size_t>(batch * 300), 21));
  const Tensor targets = Tensor::from_vector({batch, 2}, test::random_floats(static_cast<size_t>(batch * 2), 22));
  const int64_t first = w.rank * 4;
  Tensor loss = ops::mse_loss(net.forward(images.slice(first, first + 4)), targets.slice(first, first + 4));
  std::vector<Tensor> parameters;
  for (const auto& [name, p] : net.named_parameters()) parameters.push_back(p);
  if (overlapped) {
    GradientReducer ranks(parameters, bucket_bytes, /*one_rank_too=*/true);
    ranks.backward(loss);
    if (report) *report = ranks.report();
  } else {
    loss.backward();
    std::vector<Tensor> gradients;
    for (const Tensor& p : parameters) gradients.push_back(p.grad());
    allreduce_mean(gradients, bucket_bytes);
  }
  return flat_gradients(net);
}

}  // namespace

TEST_CASE("collective: GradientReducer starts every bucket during backward, last layers first, and leaves one rank's gradients as they are") {
  if (comm::world().size != 1) return;
  manual_seed(3);
  auto a = small_net();
  manual_seed(3);
  auto b = small_net();
  GradientReducer::Report report;
  // 64-byte buckets: every parameter tensor is a bucket of its own, 6 in all.
  const std::vector<float> got = reduced_gradients(*a, true, 64, &report);
  const std::vector<float> want = reduced_gradients(*b, false, 64, nullptr);
  CHECK(test::same_float_values(got, want));
  CHECK(report.buckets == 6);
  CHECK(report.started_in_backward == report.buckets);  // each as soon as its gradient was final
  // A parameter the loss never reaches: its bucket starts after backward, and is skipped alike.
  manual_seed(3);
  auto net = small_net();
  Tensor spare = Tensor::full({4}, 1.0f).set_requires_grad(true);
  std::vector<Tensor> parameters = net->parameters();
  parameters.insert(parameters.begin(), spare);  // the first parameter: the last bucket
  GradientReducer ranks(parameters, 64, true);
  const Tensor images = Tensor::from_vector({2, 10, 10, 3}, test::random_floats(600, 4));
  ranks.backward(ops::mse_loss(net->forward(images), Tensor::full({2, 2}, 0.5f)));
  CHECK(ranks.report().buckets == 7);
  CHECK(ranks.report().started_in_backward == 6);
  CHECK_FALSE(spare.grad().defined());
}

TEST_CASE("mpi: the gradients' mean sent bucket by bucket during backward is allreduce_mean's after it, to the bit") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  MESSAGE("the gradients' all-reduce runs on ", comm::concurrent_channels() ? "a thread of its own" : "the training thread");
  for (bool batch_norm : {false, true}) {
    CAPTURE(batch_norm);
    for (size_t bucket_bytes : {size_t{64}, size_t{1} << 10, kGradientBucketBytes}) {
      CAPTURE(bucket_bytes);
      manual_seed(13);
      auto a = batch_norm ? small_net_with_batch_norm() : small_net();
      manual_seed(13);
      auto b = batch_norm ? small_net_with_batch_norm() : small_net();
      // With batch norm, synchronised: its statistics' all-reduces run on the training thread while
      // the buckets' run on theirs.
      set_sync_batch_norm(*a, batch_norm);
      set_sync_batch_norm(*b, batch_norm);
      GradientReducer::Report report;
      const std::vector<float> got = reduced_gradients(*a, true, bucket_bytes, &report);
      const std::vector<float> want = reduced_gradients(*b, false, bucket_bytes, nullptr);
      CHECK(test::same_float_values(got, want));
      CHECK(report.started_in_backward == report.buckets);
    }
  }
}

TEST_CASE("cuda collective: GradientReducer on one GPU runs each bucket through NCCL on the comm stream, beside backward") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  if (!comm::nccl_compiled()) {
    MESSAGE("CUDA test skipped: built without NCCL");
    return;
  }
  if (comm::world().size != 1) return;
  const Tensor images = Tensor::from_vector({8, 10, 10, 3}, test::random_floats(2400, 31)).to(Device::cuda);
  const Tensor targets = Tensor::from_vector({8, 2}, test::random_floats(16, 32)).to(Device::cuda);
  auto gradients_on_gpu = [&](bool overlapped, size_t bucket_bytes, GradientReducer::Report* report) {
    manual_seed(5);
    auto net = small_net_with_batch_norm();
    net->to(Device::cuda);
    Tensor loss = ops::mse_loss(net->forward(images), targets);
    if (overlapped) {
      // A world of one runs the GPU path too when asked: packed on the comm stream after an event
      // on the compute stream, averaged by a one-rank NCCL communicator (which leaves the values),
      // unpacked, and the compute stream waits for it all before anything reads the gradients.
      GradientReducer ranks(net->parameters(), bucket_bytes, /*one_rank_too=*/true);
      ranks.backward(loss);
      *report = ranks.report();
    } else {
      loss.backward();
    }
    return flat_gradients(*net);
  };
  const std::vector<float> want = gradients_on_gpu(false, 0, nullptr);
  for (size_t bucket_bytes : {size_t{64}, kGradientBucketBytes}) {
    CAPTURE(bucket_bytes);
    GradientReducer::Report report;
    const std::vector<float> got = gradients_on_gpu(true, bucket_bytes, &report);
    CHECK(test::same_float_values(got, want));
    CHECK(report.started_in_backward == report.buckets);
  }
}

namespace {

using BatchNormOp = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const ops::BatchNormOptions&);

// batch_norm's signature takes x by value: the op under test, as a pointer of one type.
Tensor plain_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, const ops::BatchNormOptions& o) {
  return ops::batch_norm(x, gamma, beta, running_mean, running_var, o);
}

// One training-mode batch norm with a residual and a ReLU on `device`, on rows [first, first + rows)
// of a seeded [8, 5, 5, 6] batch (values far from zero mean), then backward of a weighted sum:
// y, the running statistics, and the gradients of x, gamma, beta and the residual.
std::vector<std::vector<float>> batch_norm_results(BatchNormOp op, Device device, int64_t first, int64_t count) {
  std::vector<float> values = test::random_floats(8 * 150, 41);
  for (float& v : values) v = 2.0f + 3.0f * v;
  const Tensor all = Tensor::from_vector({8, 5, 5, 6}, values);
  Tensor x = all.slice(first, first + count).to(device).set_requires_grad(true);
  Tensor residual = Tensor::from_vector({count, 5, 5, 6}, test::random_floats(static_cast<size_t>(count * 150), 42))
                        .to(device)
                        .set_requires_grad(true);
  Tensor gamma = Tensor::from_vector({6}, {0.5f, 1.0f, 1.5f, -1.0f, 2.0f, 0.8f}).to(device).set_requires_grad(true);
  Tensor beta = Tensor::from_vector({6}, {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.4f}).to(device).set_requires_grad(true);
  Tensor running_mean = Tensor::from_vector({6}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}).to(device);
  Tensor running_var = Tensor::full({6}, 1.5f).to(device);
  ops::BatchNormOptions o;
  o.residual = residual;
  o.relu = true;
  const Tensor y = op(x, gamma, beta, running_mean, running_var, o);
  const Tensor weights = Tensor::from_vector({count * 150, 1}, test::random_floats(static_cast<size_t>(count * 150), 43)).to(device);
  ops::linear(y.reshape({1, count * 150}), weights.reshape({1, count * 150}), Tensor()).backward();
  return {y.to_vector(),     running_mean.to_vector(), running_var.to_vector(), x.grad().to_vector(),
          gamma.grad().to_vector(), beta.grad().to_vector(), residual.grad().to_vector()};
}

void check_same_results(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want,
                        double tolerance) {
  const char* names[] = {"y", "running mean", "running var", "dx", "dgamma", "dbeta", "dresidual"};
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(std::string(names[i]));
    CHECK(test::max_rel_error(got[i], want[i]) < tolerance);
  }
}

}  // namespace

TEST_CASE("collective: synchronised batch norm from the kernels is batch_norm in one process (output, statistics, gradients)") {
  if (comm::world().size != 1) return;
  check_same_results(batch_norm_results(ops::sync_batch_norm_by_kernels, Device::cpu, 0, 8),
                     batch_norm_results(plain_batch_norm, Device::cpu, 0, 8), 1e-5);
}

TEST_CASE("mpi: synchronised batch norm from the kernels equals the plain loops' on every rank's slice") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  const comm::World& w = comm::world();
  if (8 % w.size != 0) return;
  const int64_t count = 8 / w.size, first = w.rank * count;
  check_same_results(batch_norm_results(ops::sync_batch_norm_by_kernels, Device::cpu, first, count),
                     batch_norm_results(ops::sync_batch_norm, Device::cpu, first, count), 1e-5);
}

TEST_CASE("cuda collective: synchronised batch norm from the GPU's kernels is batch_norm on one GPU") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  if (comm::world().size != 1) return;
  check_same_results(batch_norm_results(ops::sync_batch_norm_by_kernels, Device::cuda, 0, 8),
                     batch_norm_results(plain_batch_norm, Device::cuda, 0, 8), 1e-5);
}
