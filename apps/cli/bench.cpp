#include "apps/cli/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include <omp.h>

#include "apps/common/compute_threads.h"
#include "kernels/choice.h"
#include "kernels/comm.h"
#include "kernels/cuda_memory.h"
#include "kernels/gemm.h"
#include "kernels/math_mode.h"
#include "kernels/profile.h"
#include "nn/runtime/autograd.h"
#include "nn/runtime/caching_allocator.h"
#include "nn/runtime/collective.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"

namespace hotlap {

namespace {

using kernels::ProfileScope;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Resident set size now (not the peak), from /proc/self/statm; 0 where that file does not exist.
double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident)) return 0.0;
  return double(pages_resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

rusage self_usage() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u;
}

Tensor random_tensor(const Shape& shape, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  fill_normal(t, 0.0, 1.0, rng);
  return t;
}

// The profile's self times grouped by the kind of work, per iteration, with GEMM's achieved rate.
std::string profile_summary(int iters) {
  struct Group {
    const char* label;
    double ms = 0, flops = 0, faults = 0;
  };
  std::vector<Group> groups = {{"GEMM (conv)"},         {"im2col"},       {"col2im"},
                               {"batch norm"},          {"relu, add+relu"}, {"pooling"},
                               {"linear + loss"},       {"optimizer step"}, {"conv: rest (alloc, grad sums, bias)"},
                               {"framework (autograd, modules, allocation outside ops)"}};
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  for (const kernels::ProfileEntry& e : kernels::profile_entries()) {
    size_t g;
    if (has(e.name, ".gemm")) g = 0;
    else if (has(e.name, ".im2col")) g = 1;
    else if (has(e.name, ".col2im")) g = 2;
    else if (has(e.name, "batch_norm")) g = 3;
    else if (has(e.name, "relu") || e.name.rfind("add", 0) == 0) g = 4;
    else if (has(e.name, "pool")) g = 5;
    else if (has(e.name, "linear") || has(e.name, "loss")) g = 6;
    else if (e.name.rfind("optim.", 0) == 0 || e.name == "step.zero_grad") g = 7;
    else if (e.name.rfind("conv2d.", 0) == 0 || e.name.rfind("conv ", 0) == 0) g = 8;
    else g = 9;
    groups[g].ms += e.self_ms;
    if (e.name.rfind("conv ", 0) != 0) groups[g].flops += e.flops;  // a family's FLOPs are its kernels'
    groups[g].faults += double(e.self_faults);
  }
  const double total = kernels::profile_total_ms();
  std::string out = "summary by kind of work (self time per iteration):\n";
  char line[200];
  for (const Group& g : groups) {
    if (g.ms <= 0) continue;
    std::snprintf(line, sizeof line, "  %-56s %9.2f ms %6.1f%% %8.0f faults", g.label, g.ms / iters,
                  total > 0 ? 100.0 * g.ms / total : 0.0, g.faults / iters);
    out += line;
    if (g.flops > 0) {
      std::snprintf(line, sizeof line, "   %.1f GFLOP/it at %.1f GFLOP/s", g.flops / iters * 1e-9,
                    g.flops / (g.ms * 1e6));
      out += line;
    }
    out += "\n";
  }
  // The forward convolutions by layer family (ops::conv2d's scopes, kernels::conv_family), inclusive.
  std::string families;
  for (const kernels::ProfileEntry& e : kernels::profile_entries()) {
    if (e.name.rfind("conv ", 0) != 0) continue;
    std::snprintf(line, sizeof line, "  %-24s %4lld calls %9.2f ms %6.1f%%   %.2f GFLOP/it at %.1f GFLOP/s\n",
                  e.name.c_str(), static_cast<long long>(e.calls / iters), e.total_ms / iters,
                  total > 0 ? 100.0 * e.total_ms / total : 0.0, e.flops / iters * 1e-9,
                  e.total_ms > 0 ? e.flops / (e.total_ms * 1e6) : 0.0);
    families += line;
  }
  if (!families.empty())
    out += "forward convolutions by layer family (inclusive time per iteration; FLOPs as a direct "
           "convolution counts them):\n" + families;
  return out;
}

}  // namespace

ResNetBenchResult run_resnet_bench(const ResNetBenchConfig& cfg) {
  const bool train = cfg.mode == "train";
  HOTLAP_CHECK(train || cfg.mode == "infer", "bench: --mode must be infer or train, got ", cfg.mode);
  HOTLAP_CHECK(cfg.batch >= 1, "bench: --batch must be at least 1, got ", cfg.batch);
  HOTLAP_CHECK(!train || cfg.batch >= 2, "bench: --mode train needs --batch 2 or more (batch norm's statistics "
               "need two samples), got ", cfg.batch);
  HOTLAP_CHECK(cfg.size >= 32, "bench: --size must be at least 32, got ", cfg.size);
  HOTLAP_CHECK(cfg.warmup >= 0 && cfg.iters >= 1, "bench: --warmup must be >= 0 and --iters >= 1");

  // Which kernel each convolution layer runs on, for run_bench_command's list (kernels/choice.h).
  kernels::clear_choice_notes();
  kernels::set_choice_notes(true);
  manual_seed(cfg.seed);
  std::shared_ptr<resnet::ResNet> model = resnet::make_resnet({cfg.depth, cfg.num_outputs});
  const bool fold = cfg.fuse_bn && !train;  // training needs its batch norms
  if (fold) {
    model->eval();
    model->fold_batch_norm();
  }
  select_rank_device(kernels::comm::init(), cfg.compute);
  const Device device = apply_compute_options(cfg.compute);
  model->to(device);
  Rng rng(cfg.seed + 1);
  // Several ranks (mpirun -np N hotlap bench --mode train): --batch is the global batch, each rank
  // steps on its share, and the gradients' all-reduce is a phase of the step.
  const int ranks = kernels::comm::init().size;
  HOTLAP_CHECK(cfg.batch % ranks == 0, "bench: --batch ", cfg.batch, " is the global batch: give a multiple of the ",
               ranks, " ranks");
  const int64_t local_batch = cfg.batch / ranks;
  const Tensor x = random_tensor({local_batch, cfg.size, cfg.size, 3}, rng).to(device);
  const Tensor target = random_tensor({local_batch, cfg.num_outputs}, rng).to(device);
  // GPU work is queued asynchronously: wait for it at the end of each timed phase.
  const auto finish = [device] {
    if (device == Device::cuda) kernels::cuda::synchronize("hotlap bench");
  };

  std::unique_ptr<SGD> optimizer;
  std::unique_ptr<GradientReducer> reducer;  // data-parallel: the gradients' mean over the ranks
  if (train) {
    SgdOptions opt;
    opt.lr = 1e-3;
    opt.momentum = 0.9;
    opt.weight_decay = 1e-4;
    optimizer = std::make_unique<SGD>(model->named_parameters(), opt);
    reducer = std::make_unique<GradientReducer>(optimizer->parameters(), size_t(cfg.bucket_mb) << 20);
    model->train();
  } else {
    model->eval();
  }

  ResNetBenchResult r;
  r.compute = compute_description(device);
  r.threads = omp_get_max_threads();
  r.parameters = model->parameter_count();
  r.rss_after_build_mb = current_rss_mb();

  std::vector<double> total_ms, fwd_ms, bwd_ms, opt_ms, reduce_ms;
  const bool profiling = kernels::profile_enabled();
  rusage faults_before{};
  for (int it = 0; it < cfg.warmup + cfg.iters; ++it) {
    adapt_compute_threads();  // as training does: fewer threads while the machine is busy
    const bool timed = it >= cfg.warmup;
    if (it == cfg.warmup) {
      if (profiling) kernels::profile_reset();
      faults_before = self_usage();
    }
    const double t0 = now_ms();
    if (!train) {
      NoGradGuard no_grad;
      ProfileScope scope("step.forward");
      Tensor y = model->forward(x);
      finish();
    } else {
      {
        ProfileScope scope("step.zero_grad");
        optimizer->zero_grad();
      }
      Tensor loss;
      {
        ProfileScope scope("step.forward");
        loss = ops::mse_loss(model->forward(x), target);
        finish();
      }
      const double t1 = now_ms();
      if (timed && it + 1 == cfg.warmup + cfg.iters) r.rss_after_forward_mb = current_rss_mb();
      const double t1b = now_ms();  // the RSS read is not part of the step
      double tail_ms = 0.0;
      {
        ProfileScope scope("step.backward");
        reducer->backward(loss);  // with the gradients' all-reduce, bucket by bucket (nothing for one rank)
        finish();
        tail_ms = reducer->report().tail_ms;
      }
      const double t2 = now_ms(), t2a = t2 - tail_ms;  // backward's end: where the all-reduce's tail began
      {
        ProfileScope scope("step.optimizer");
        optimizer->step();
        finish();
      }
      const double t3 = now_ms();
      if (timed) {
        fwd_ms.push_back(t1 - t0);
        bwd_ms.push_back(t2a - t1b);
        reduce_ms.push_back(t2 - t2a);
        opt_ms.push_back(t3 - t2);
        total_ms.push_back((t1 - t0) + (t3 - t1b));
      }
      continue;
    }
    if (timed) total_ms.push_back(now_ms() - t0);
  }
  const rusage after = self_usage();
  r.minor_faults_per_iter = double(after.ru_minflt - faults_before.ru_minflt) / cfg.iters;
  r.peak_rss_mb = double(after.ru_maxrss) / 1024.0;  // Linux reports KiB
  r.ms_median = median(total_ms);
  r.ms_min = *std::min_element(total_ms.begin(), total_ms.end());
  double sum = 0;
  for (double v : total_ms) sum += v;
  r.ms_mean = sum / double(total_ms.size());
  r.forward_ms = median(fwd_ms);
  r.backward_ms = median(bwd_ms);
  r.optimizer_ms = median(opt_ms);
  r.allreduce_ms = train ? median(reduce_ms) : 0.0;
  if (reducer) {
    r.buckets = reducer->report().buckets;
    r.buckets_in_backward = reducer->report().started_in_backward;
  }
  r.ranks = ranks;
  r.images_per_s = r.ms_median > 0 ? double(cfg.batch) * 1000.0 / r.ms_median : 0.0;
  if (device == Device::cuda) {
    const AllocatorStats g = cuda_allocator().stats();
    r.gpu_peak_mb = double(g.peak_in_use) / (1024.0 * 1024.0);
    r.gpu_reserved_mb = double(g.reserved) / (1024.0 * 1024.0);
  }
  return r;
}

std::string resnet_bench_json(const ResNetBenchConfig& cfg, const ResNetBenchResult& r) {
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "{\"framework\":\"hotlap\",\"depth\":%d,\"mode\":\"%s\",\"batch\":%lld,\"size\":%lld,"
                "\"num_outputs\":%lld,\"fuse_bn\":%s,\"threads\":%d,\"threads_fewest\":%d,\"threads_policy\":\"%s\","
                "\"gemm\":\"%s\",\"reference\":%s,\"parameters\":%lld,"
                "\"warmup\":%d,\"iters\":%d,"
                "\"ms_per_iter\":%.3f,\"ms_mean\":%.3f,\"ms_min\":%.3f,\"images_per_s\":%.3f,"
                "\"forward_ms\":%.3f,\"backward_ms\":%.3f,\"optimizer_ms\":%.3f,\"ranks\":%d,\"allreduce_ms\":%.3f,"
                "\"buckets\":%d,\"buckets_in_backward\":%d,"
                "\"rss_after_build_mb\":%.1f,\"rss_after_forward_mb\":%.1f,\"peak_rss_mb\":%.1f,"
                "\"minor_faults_per_iter\":%.0f,\"device\":\"%s\",\"precision\":\"%s\",\"compute\":\"%s\","
                "\"gpu_peak_mb\":%.1f,\"gpu_reserved_mb\":%.1f}",
                cfg.depth, cfg.mode.c_str(), static_cast<long long>(cfg.batch),
                static_cast<long long>(cfg.size), static_cast<long long>(cfg.num_outputs),
                cfg.fuse_bn && cfg.mode == "infer" ? "true" : "false", most_compute_threads(), fewest_compute_threads(),
                compute_threads_description().c_str(),
                kernels::cpu::cpu_gemm_name(kernels::cpu::cpu_gemm_impl()),
                kernels::kernel_options().reference ? "true" : "false", static_cast<long long>(r.parameters), cfg.warmup, cfg.iters, r.ms_median, r.ms_mean,
                r.ms_min, r.images_per_s, r.forward_ms, r.backward_ms, r.optimizer_ms, r.ranks, r.allreduce_ms,
                r.buckets, r.buckets_in_backward, r.rss_after_build_mb, r.rss_after_forward_mb, r.peak_rss_mb, r.minor_faults_per_iter,
                r.compute == "cpu" ? "cpu" : "cuda", kernels::math_mode_name(kernels::math_mode()), r.compute.c_str(),
                r.gpu_peak_mb, r.gpu_reserved_mb);
  return buf;
}

int run_bench_command(const ResNetBenchConfig& cfg) {
  const ResNetBenchResult r = run_resnet_bench(cfg);
  if (!kernels::comm::is_root()) return 0;  // several ranks: rank 0's figures stand for the job
  std::printf("%s\n", resnet_bench_json(cfg, r).c_str());
  std::fflush(stdout);
  if (cfg.show_kernels || kernels::profile_enabled())
    std::fprintf(stderr, "hotlap bench: the kernel each convolution ran on, per pass\n%s",
                 kernels::choice_notes_report().c_str());
  if (kernels::profile_enabled()) {
    std::fprintf(stderr, "hotlap bench: profile of %d timed iterations, per iteration (ResNet-%d %s, batch %lld, %lldx%lld)\n",
                 cfg.iters, cfg.depth, cfg.mode.c_str(), static_cast<long long>(cfg.batch),
                 static_cast<long long>(cfg.size), static_cast<long long>(cfg.size));
    std::fprintf(stderr, "%s%s", kernels::profile_report(cfg.iters).c_str(),
                 profile_summary(cfg.iters).c_str());
  }
  return 0;
}

}  // namespace hotlap
