#include "apps/train/toy_task.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "nn/runtime/autograd.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "nn/layers/schedule.h"

namespace hotlap {

ToyDataset make_toy_dataset(int64_t count, int64_t size, uint64_t seed) {
  HOTLAP_CHECK(count > 0 && size >= 8, "toy task: need count > 0 and image size >= 8");
  Rng rng(seed);
  ToyDataset d{Tensor::empty({count, size, size, 3}), Tensor::empty({count, 1})};
  float* img = d.images.f32();
  for (int64_t n = 0; n < count; ++n) {
    const double size_factor = rng.uniform(), elongation = rng.uniform();
    const double brightness = rng.uniform(0.4, 1.0);  // a nuisance: the target ignores it
    // An ellipse of fixed area for its size: elongation changes the shape, not the mean intensity.
    const double radius = size * (0.12 + 0.12 * size_factor);
    const double stretch = 1.0 + 1.2 * elongation;
    const double a = radius * stretch, b = radius / stretch, angle = rng.uniform(0.0, M_PI);
    const double ca = std::cos(angle), sa = std::sin(angle);
    const double margin = std::min(a, size / 2.0 - 1.0);
    const double cy = rng.uniform(margin, size - margin), cx = rng.uniform(margin, size - margin);
    const double hue[3] = {rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)};
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const double dy = y + 0.5 - cy, dx = x + 0.5 - cx;
        const double u = (dx * ca + dy * sa) / a, v = (-dx * sa + dy * ca) / b;
        const double r = std::sqrt(u * u + v * v);  // 1 on the ellipse's edge
        const double shape = 1.0 / (1.0 + std::exp((r - 1.0) * 6.0));  // soft edge
        for (int64_t c = 0; c < 3; ++c) {
          const double value = shape * brightness * hue[c] + 0.05 * rng.normal();
          img[((n * size + y) * size + x) * 3 + c] = static_cast<float>(value);
        }
      }
    d.targets.f32()[n] = static_cast<float>(1.0 + 3.0 * size_factor + 1.0 * elongation);
  }
  return d;
}

namespace {

class SmallCnn : public Module {
 public:
  explicit SmallCnn(int64_t w)
      : conv1(register_module("conv1", std::make_shared<Conv2d>(3, w, 3, 1, 1))),
        bn1(register_module("bn1", std::make_shared<BatchNorm2d>(w))),
        conv2(register_module("conv2", std::make_shared<Conv2d>(w, 2 * w, 3, 2, 1))),
        bn2(register_module("bn2", std::make_shared<BatchNorm2d>(2 * w))),
        fc(register_module("fc", std::make_shared<Linear>(2 * w, 1))) {}

  Tensor forward(const Tensor& x) override {
    Tensor y = ops::relu(bn1->forward(conv1->forward(x)));
    y = ops::max_pool2d(y, 3, 2, 1);
    y = ops::relu(bn2->forward(conv2->forward(y)));
    return fc->forward(ops::global_avg_pool(y));
  }

 private:
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Linear> fc;
};

// Rows `order[begin, end)` of `src` gathered into a new batch tensor.
Tensor gather_rows(const Tensor& src, const std::vector<int64_t>& order, int64_t begin, int64_t end) {
  Shape shape = src.shape();
  shape[0] = end - begin;
  Tensor out = Tensor::empty(shape);
  const int64_t row = src.numel() / src.dim(0);
  for (int64_t i = begin; i < end; ++i)
    std::copy_n(src.f32() + order[i] * row, row, out.f32() + (i - begin) * row);
  return out;
}

}  // namespace

std::shared_ptr<Module> make_small_cnn(int64_t width) { return std::make_shared<SmallCnn>(width); }

EpochReport train_toy_task(const ToyTrainConfig& cfg, const std::function<void(const EpochReport&)>& on_epoch) {
  manual_seed(cfg.seed);
  ToyDataset train = make_toy_dataset(cfg.train_count, cfg.image_size, cfg.seed * 2 + 1);
  ToyDataset test = make_toy_dataset(cfg.test_count, cfg.image_size, cfg.seed * 2 + 2);
  auto model = make_small_cnn();
  model->to(cfg.device);
  // Start the output at the mean target, so the first epochs learn the shape, not the offset.
  {
    const std::vector<float> t = train.targets.to_vector();
    double mean = 0;
    for (float v : t) mean += v;
    for (auto& [name, p] : model->named_parameters())
      if (name == "fc.bias") p.fill_(static_cast<float>(mean / static_cast<double>(t.size())));
  }
  AdamWOptions opt;
  opt.lr = cfg.lr;
  opt.weight_decay = cfg.weight_decay;
  AdamW optimizer(model->named_parameters(), opt);
  const int64_t steps_per_epoch = (cfg.train_count + cfg.batch_size - 1) / cfg.batch_size;
  // One epoch of warm-up (none for a one-epoch run), then a cosine decay to zero.
  CosineLr schedule(cfg.lr, cfg.epochs > 1 ? steps_per_epoch : 0, cfg.epochs * steps_per_epoch);

  Rng shuffle_rng(cfg.seed);
  std::vector<int64_t> order(static_cast<size_t>(cfg.train_count));
  std::iota(order.begin(), order.end(), 0);
  EpochReport report;
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= cfg.epochs; ++epoch) {
    for (int64_t i = cfg.train_count - 1; i > 0; --i) std::swap(order[i], order[shuffle_rng.below(i + 1)]);
    const auto start = std::chrono::steady_clock::now();
    model->train();
    double loss_sum = 0;
    int64_t batches = 0;
    for (int64_t b = 0; b < cfg.train_count; b += cfg.batch_size) {
      const int64_t e = std::min(b + cfg.batch_size, cfg.train_count);
      if (e - b < 2) continue;  // batch norm needs two samples
      Tensor x = gather_rows(train.images, order, b, e).to(cfg.device);
      Tensor t = gather_rows(train.targets, order, b, e).to(cfg.device);
      optimizer.set_lr(schedule.lr_at(step++));
      optimizer.zero_grad();
      Tensor loss = ops::mse_loss(model->forward(x), t);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item();
      ++batches;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    model->eval();
    NoGradGuard no_grad;
    std::vector<float> pred = model->forward(test.images.to(cfg.device)).to_vector();
    report.epoch = epoch;
    report.train_loss = loss_sum / std::max<int64_t>(batches, 1);
    report.test = regression_metrics(pred, test.targets.to_vector());
    report.images_per_second = static_cast<double>(cfg.train_count) / std::max(seconds, 1e-9);
    if (on_epoch) on_epoch(report);
  }
  return report;
}

}  // namespace hotlap
