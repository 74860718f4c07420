// hotlap: the command-line front end. Each subcommand catches hotlap::Error (and any other exception)
// and prints one line, exiting non-zero: bad input never crashes the program.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "apps/bench_resnet.h"
#include "apps/cli_help.h"
#include "apps/compute_threads.h"
#include "apps/convert.h"
#include "apps/op_matrix.h"
#include "apps/omp_wait_policy.h"  // OpenMP threads sleep when they wait (see there)
#include "apps/score.h"
#include "apps/synth.h"
#include "apps/train.h"
#include "apps/toy_task.h"
#include "kernels/choice.h"
#include "kernels/cpu_isa.h"
#include "kernels/device.h"
#include "kernels/error.h"
#include "kernels/gemm.h"
#include "nn/runtime/dispatch.h"

namespace {

void add_compute_options(CLI::App* command, hotlap::ComputeOptions& o) {
  command->add_option("--device", o.device, "cpu, cuda, or auto: cuda when a GPU is present")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  command->add_option("--precision", o.precision,
                      "fp32; tf32 (GPU tensor cores); or bf16 (bf16 activations, fp32 weights and sums; on the "
                      "cpu an emulation, slow)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  command->add_option("--conv", o.conv, "GPU convolution backend: native or cudnn (default: $HOTLAP_CONV or native)")
      ->check(CLI::IsMember({"native", "cudnn"}));
  command->add_option("--batchnorm", o.batchnorm,
                      "GPU batch-norm backend: native or cudnn (default: $HOTLAP_BATCHNORM or native)")
      ->check(CLI::IsMember({"native", "cudnn"}));
  command->add_option("--compute-threads", o.compute_threads,
                      "CPU compute threads, fixed (default: as many as the machine has free, fewer while other "
                      "programs keep its CPUs busy; OMP_NUM_THREADS also fixes them; results are the same "
                      "at any count)")
      ->check(CLI::Range(1, 1024))
      ->default_str("");
}

// A seed is any whole number from 0 to 2^64-1. CLI11 would read "-1" or "2^64" as 2^64-1 without a
// word; this checks the text first.
void add_seed_option(CLI::App* command, uint64_t& seed, const char* text) {
  command->add_option("--seed", seed, text)
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const bool digits = !value.empty() && value.size() <= 20 &&
                                value.find_first_not_of("0123456789") == std::string::npos;
            if (digits && (value.size() < 20 || value <= "18446744073709551615")) return {};
            return "a seed is a whole number from 0 to 18446744073709551615, not '" + value + "'";
          },
          "UINT64"));
}

// Options given that the rest of the command line makes do nothing: one note each on stderr, so that
// nobody believes a setting took effect.
void note_ignored(const CLI::App* command, std::initializer_list<const char*> options, bool ignored,
                  const std::string& because) {
  if (!ignored) return;
  for (const char* option : options)
    if (command->count(option) > 0) std::fprintf(stderr, "hotlap: note: %s does nothing %s\n", option, because.c_str());
}

// The command line that continues a stopped training: the same arguments, quoted for a POSIX
// shell where they need it, without --overwrite and with --resume.
std::string resume_command(int argc, char** argv) {
  std::string command;
  bool resume = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--overwrite") continue;
    resume = resume || arg == "--resume";
    const bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_=+./:,@%") == std::string::npos;
    std::string quoted = "'";
    for (char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    command += (i ? " " : "") + (plain ? arg : quoted + "'");
  }
  return resume ? command : command + " --resume";
}

int run_demo(hotlap::ToyTrainConfig config, const hotlap::ComputeOptions& compute) {
  config.device = hotlap::apply_compute_options(compute);
  std::printf("hotlap demo: a small CNN learns a synthetic regression task (compute: %s)\n",
              hotlap::compute_description(config.device).c_str());
  std::printf("  %lld training and %lld held-out %lldx%lld images of an ellipse;\n  its target: 1 + 3 * size "
              "+ elongation\n",
              static_cast<long long>(config.train_count), static_cast<long long>(config.test_count),
              static_cast<long long>(config.image_size), static_cast<long long>(config.image_size));
  std::printf("%6s %12s %10s %8s %8s %10s\n", "epoch", "train MSE", "Pearson", "MAE", "RMSE", "images/s");
  auto report = hotlap::train_toy_task(config, [](const hotlap::EpochReport& r) {
    std::printf("%6lld %12.4f %10.4f %8.4f %8.4f %10.0f\n", static_cast<long long>(r.epoch), r.train_loss,
                r.test.pearson, r.test.mae, r.test.rmse, r.images_per_second);
    std::fflush(stdout);
  });
  std::printf("held-out Pearson %.3f (a model predicting the mean scores 0)\n", report.test.pearson);
  return 0;
}

int run_info() {
  namespace k = hotlap::kernels;
  std::printf("hotlap\n");
  const std::string core = k::cpu::openblas_core();
  std::printf("  cpu gemm:  %s (openblas %s)\n", k::cpu::cpu_gemm_name(k::cpu::cpu_gemm_impl()),
              !k::cpu::openblas_available() ? "not compiled in"
              : core.empty()               ? "compiled in"
                                           : ("compiled in, " + core + " kernels").c_str());
  std::printf("  cpu isa:   %s (the level the CPU kernels run at)\n",
              k::cpu::cpu_isa_name(k::cpu::active_cpu_isa()));
  std::printf("  cpu best:  %s (detected on this CPU)\n", k::cpu::cpu_isa_name(k::cpu::detected_cpu_isa()));
  std::printf("  cpu cap:   HOTLAP_CPU_ISA=baseline|avx2|avx512 forces a lower level\n");
  std::printf("  kernels:   %s\n", k::kernel_options().reference
                                       ? "reference: the readable ones (HOTLAP_REFERENCE=1)"
                                       : "chosen per shape for speed (HOTLAP_REFERENCE=1: the readable ones)");
  hotlap::set_compute_threads(0);
  std::printf("  threads:   %s\n", hotlap::compute_threads_description().c_str());
  std::printf("  cuda:      %s\n", k::cuda_compiled() ? "compiled in" : "not compiled in");
  std::printf("  cudnn:     %s\n", k::cudnn_compiled() ? "compiled in" : "not compiled in");
  std::printf("  devices:   %s\n", k::cuda_device_summary().c_str());
  if (k::cuda_compiled()) {
    const hotlap::dispatch::Backends b = hotlap::dispatch::backends();
    std::printf("  gpu conv:  %s\n", hotlap::dispatch::conv_backend_description());
    std::printf("  gpu batchnorm: %s\n", hotlap::dispatch::backend_name(b.batchnorm));
    std::string versions = k::cuda_versions();
    for (size_t start = 0; start < versions.size();) {
      size_t end = versions.find('\n', start);
      if (end == std::string::npos) end = versions.size();
      std::printf("  %s\n", versions.substr(start, end - start).c_str());
      start = end + 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hotlap: train and run convolutional networks, from JPEG bytes to the weight update", "hotlap"};
  app.require_subcommand(1);
  // Before any option is added: subcommands and options copy these when they are made.
  app.formatter(std::make_shared<hotlap::HelpFormatter>(hotlap::help_width()));
  app.option_defaults()->always_capture_default();
  app.footer("Run 'hotlap COMMAND --help' for a command's options and examples. Start with 'hotlap demo'.");

  hotlap::ToyTrainConfig demo_config;
  auto* demo = app.add_subcommand("demo", "train a small CNN on generated data and show it learning");
  demo->add_option("--epochs", demo_config.epochs, "training epochs")->check(CLI::Range(1, 1000));
  demo->add_option("--train", demo_config.train_count, "training images")->check(CLI::Range(2, 1000000));
  add_seed_option(demo, demo_config.seed, "random seed");
  hotlap::ComputeOptions demo_compute;
  add_compute_options(demo, demo_compute);
  demo->footer("Examples:\n"
               "  hotlap demo\n"
               "  hotlap demo --epochs 20 --device cpu");

  auto* info = app.add_subcommand("info", "show the compiled backends and the devices found");
  info->footer("Example:\n  hotlap info");

  auto* ops = app.add_subcommand("ops", "list every op and what runs it on each device, backend and dtype");
  ops->footer("Example:\n  hotlap ops");

  hotlap::ResNetBenchConfig bench_config;
  auto* bench = app.add_subcommand("bench", "time a ResNet forward pass or training step on random data "
                                            "(one JSON line; HOTLAP_PROFILE=1 adds a profile on stderr)");
  bench->add_option("--depth", bench_config.depth, "ResNet depth")->check(CLI::IsMember({18, 34, 50, 101}));
  bench->add_option("--mode", bench_config.mode, "infer (eval, no grad) or train (forward, backward, SGD)")
      ->check(CLI::IsMember({"infer", "train"}));
  bench->add_option("--batch", bench_config.batch, "images per batch")->check(CLI::Range(1, 4096));
  bench->add_option("--size", bench_config.size, "image height and width")->check(CLI::Range(32, 4096));
  bench->add_option("--outputs", bench_config.num_outputs, "width of the final linear layer")
      ->check(CLI::Range(1, 100000));
  bench->add_option("--warmup", bench_config.warmup, "untimed iterations first")->check(CLI::Range(0, 1000));
  bench->add_option("--iters", bench_config.iters, "timed iterations")->check(CLI::Range(1, 100000));
  bench->add_flag("!--no-fuse-bn", bench_config.fuse_bn,
                  "infer: keep each batch norm as a pass of its own (by default it is folded into the "
                  "convolution before it, as score runs a model)");
  bench->add_flag("--kernels", bench_config.show_kernels,
                  "list on stderr the kernel each convolution layer ran on, per pass (also with "
                  "HOTLAP_PROFILE=1; HOTLAP_REFERENCE=1 runs the readable ones)");
  add_compute_options(bench, bench_config.compute);
  bench->footer("Examples:\n"
                "  hotlap bench --mode train --batch 8\n"
                "  hotlap bench --mode infer --batch 1 --no-fuse-bn\n"
                "  hotlap bench --mode train --kernels\n"
                "  HOTLAP_PROFILE=1 hotlap bench --depth 18 --device cpu");

  hotlap::ConvertOptions convert_options;
  auto* convert = app.add_subcommand(
      "convert", "import a torchvision/timm ResNet checkpoint into a hotlap one, or export a hotlap "
                 "checkpoint to PyTorch format (the direction follows the input); the input transform "
                 "(input.resize, input.crop, input.whole_image), step, epoch and metrics go along as "
                 "hotlap.* metadata both ways");
  convert->add_option("input", convert_options.input, "safetensors file to read")->required();
  convert->add_option("output", convert_options.output, "safetensors file to write")->required();
  convert->add_flag("--new-head", convert_options.new_head,
                    "import: replace the classifier (fc) with a fresh head of --outputs units");
  convert->add_option("--outputs", convert_options.outputs, "units of the new head (1: regression)")
      ->check(CLI::Range(1, 100000));
  convert->add_flag("!--non-strict", convert_options.strict,
                    "import: load what fits and report the rest instead of refusing");
  add_seed_option(convert, convert_options.seed, "random seed for the new head");
  convert->footer("Examples:\n"
                  "  hotlap convert resnet50-imagenet.safetensors start.safetensors --new-head\n"
                  "  hotlap convert runs/r50/fold1/best.safetensors best-pytorch.safetensors");

  hotlap::SynthOptions synth_options;
  auto* synth = app.add_subcommand(
      "synth", "write a procedural data set in SCUT-FBP5500's layout whose scores are a known function "
               "of the drawn faces");
  synth->add_option("--out", synth_options.out_dir, "directory to write (Images/, train_test_files/)")
      ->required();
  synth->add_option("--n", synth_options.count, "number of images (SCUT has 5500)")->check(CLI::Range(10, 1000000));
  synth->add_option("--size", synth_options.size, "image side in pixels (SCUT: 350)")->check(CLI::Range(32, 2048));
  add_seed_option(synth, synth_options.seed, "random seed");
  synth->add_flag("--overwrite", synth_options.overwrite,
                  "replace what --out holds (its Images/ and train_test_files/ are deleted first); without it, "
                  "a folder that is not empty is refused");
  synth->footer("Examples:\n"
                "  hotlap synth --out synth-data\n"
                "  hotlap synth --out small --n 500 --size 128 --seed 7 --overwrite");

  hotlap::TrainConfig train_config;
  std::string recipe;
  auto* train = app.add_subcommand(
      "train", "train a ResNet regressor on SCUT-FBP5500 (or a data set in its layout) and report Pearson "
               "correlation, MAE and RMSE on the test split after every epoch");
  train->add_option("--data", train_config.data_dir, "SCUT-FBP5500_v2 folder (Images/, train_test_files/)");
  train->add_option("--labels", train_config.labels_file, "NAME SCORE lines instead of the split files (80/20)");
  train->add_option("--ratings", train_config.ratings_csv,
                    "per-rater CSV (Filename,Rating), averaged per image, instead of the split files (80/20)");
  train->add_option("--images", train_config.images_dir, "folder of the images --labels/--ratings name "
                                                         "(default: DATA/Images; not searched recursively)");
  train->add_option("--out", train_config.run_dir, "run directory for checkpoints and metrics")->required();
  train->add_option("--protocol", train_config.protocol,
                    "SCUT-FBP5500's split files: five-fold cross-validation or the 60/40 split; or 80-20, a "
                    "seeded random split (--labels and --ratings always use 80-20)")
      ->check(CLI::IsMember({"5fold", "60-40", "80-20"}));
  train->add_option("--fold", train_config.fold, "train this one of the five folds of --protocol 5fold (default: all five, "
                                                  "then a table of their mean)")
      ->check(CLI::Range(1, 5));
  train->add_option("--recipe", recipe,
                    "a set of defaults: paper (the SCUT-FBP5500 paper's: SGD, lr 0.001 x0.1 every 5000 iterations, "
                    "batch 16, 20000 iterations, 256 -> 224; it fine-tunes ImageNet weights, see --init) or seed "
                    "(AdamW, lr 0.001, batch 200, 10 epochs, the whole image at 350, 80-20). Options on the "
                    "command line override it wherever they appear")
      ->check(CLI::IsMember({"paper", "seed"}));
  train->add_option("--depth", train_config.depth, "ResNet depth")->check(CLI::IsMember({18, 34, 50, 101}));
  train->add_option("--width", train_config.width, "stem channels (64 = torchvision)")->check(CLI::Range(1, 1024));
  train->add_option("--init", train_config.init,
                    "scratch (random weights); ImageNet weights as torchvision/timm safetensors (a fresh head "
                    "replaces their classifier); or a hotlap checkpoint (its weights, head included)");
  train->add_option("--optimizer", train_config.optimizer, "SGD with momentum, or AdamW")
      ->check(CLI::IsMember({"sgd", "adamw"}));
  train->add_option("--lr", train_config.lr, "learning rate");
  train->add_option("--momentum", train_config.momentum, "SGD momentum (AdamW ignores it)");
  train->add_option("--weight-decay", train_config.weight_decay, "weight decay");
  train->add_option("--schedule", train_config.schedule,
                    "learning-rate schedule: step (x0.1 every --step-size iterations), cosine (to 0, after "
                    "--warmup) or constant")
      ->check(CLI::IsMember({"step", "cosine", "constant"}));
  train->add_option("--step-size", train_config.step_size, "iterations between decays of --schedule step")
      ->check(CLI::Range(1, 100000000));
  train->add_option("--warmup", train_config.warmup, "linear warm-up iterations of --schedule cosine")
      ->check(CLI::Range(0, 100000000));
  train->add_option("--loss", train_config.loss, "mean squared error, mean absolute error or smooth L1 (Huber)")
      ->check(CLI::IsMember({"mse", "l1", "smooth_l1"}));
  train->add_option("--batch", train_config.batch_size, "batch size")->check(CLI::Range(2, 100000));
  auto* train_epochs = train->add_option("--epochs", train_config.epochs,
                                         "passes over the training split; give this or --iterations (or a --recipe)")
                            ->check(CLI::Range(1, 1000000))
                            ->default_str("");
  train->add_option("--iterations", train_config.iterations,
                    "training steps of --batch images, rounded up to whole epochs")
      ->check(CLI::Range(1, 100000000))
      ->default_str("")
      ->excludes(train_epochs);
  train->add_option("--resize", train_config.resize, "each image's shorter side is resized to this, then cropped")
      ->check(CLI::Range(32, 4096));
  train->add_option("--size", train_config.crop,
                    "network input size: a random crop in training, the centre crop in testing")
      ->check(CLI::Range(32, 4096));
  train->add_flag("--whole-image", train_config.whole_image, "resize the whole image to --size instead");
  train->add_option("--threads", train_config.threads, "image decoding threads")->check(CLI::Range(1, 256));
  add_seed_option(train, train_config.seed, "random seed");
  train->add_flag("!--no-image-check", train_config.check_images, "do not check before training that every image exists and loads");
  auto* train_resume =
      train->add_flag("--resume", train_config.resume, "continue each fold from its last.safetensors in --out");
  train->add_flag("--overwrite", train_config.overwrite,
                  "replace the run already in --out (its checkpoints and metrics); without this or --resume, "
                  "train refuses a folder that holds a run")
      ->excludes(train_resume);
  train->add_flag("--deterministic", train_config.deterministic,
                  "on the GPU, only algorithms that give the same bits on every run (cuDNN's deterministic "
                  "ones); the CPU's kernels always do, at any thread count");
  add_compute_options(train, train_config.compute);
  train->add_flag("--skip-bad-labels", train_config.skip_bad_labels,
                  "drop malformed label lines and missing images (with a report) instead of stopping");
  train->footer("Examples:\n"
                "  hotlap train --data SCUT-FBP5500_v2 --out runs/r50 --recipe paper \\\n"
                "      --init resnet50-imagenet.safetensors\n"
                "  hotlap train --data SCUT-FBP5500_v2 --out runs/quick --protocol 60-40 \\\n"
                "      --depth 18 --epochs 10 --lr 0.01\n"
                "  hotlap train --labels scores.txt --images photos --out runs/mine --epochs 20\n"
                "The run folder gets a folder per fold (best.safetensors, last.safetensors, metrics.csv, "
                "predictions.csv) and report.html.");

  hotlap::ScoreOptions score_options;
  auto* score = app.add_subcommand(
      "score", "find, frame and score the faces in photos with a trained model, ranked, with percentiles "
               "among the 5500 SCUT-FBP5500 scores");
  score->add_option("--model", score_options.model_path,
                    "RUN/best.safetensors from hotlap train, or a PyTorch-format ResNet regressor")
      ->required();
  score->add_option("photos", score_options.photos,
                    "photo files, folders (their images, not their subfolders) or globs")
      ->required()
      ->default_str("");
  score->add_option("--format", score_options.format,
                    "table, csv, json or md (default: from --out's extension, .csv .json .md; else table). The "
                    "box is the face's x, y, width and height in the photo's pixels")
      ->check(CLI::IsMember({"table", "csv", "json", "md"}));
  score->add_option("--out", score_options.out, "write the result to this file instead of stdout");
  score->add_option("--report", score_options.report, "also write a self-contained HTML report");
  score->add_flag("--report-paths", score_options.report_paths,
                  "show full file paths in the report (default: file names only, so the page can be shared)");
  score->add_flag("--explain", score_options.explain, "Grad-CAM heat maps of each crop in the report");
  score->add_flag("--tta", score_options.tta, "average the score over the horizontal flip");
  score->add_flag("--all-faces", score_options.all_faces,
                  "score every face found, one row each (group photos); default: the one face chosen by "
                  "landmarks, probability and size");
  score->add_flag("!--no-face-crop", score_options.face_crop, "score the frame as given (SCUT-style photos)");
  score->add_flag("!--upright", score_options.try_turns,
                  "look for a face in the photo as it is only (by default a photo with no confident face "
                  "upright is also searched turned a quarter each way and upside down, as a phone photo "
                  "that lost its orientation tag is stored sideways)");
  score->add_option("--crops", score_options.crops_dir, "also save each network input as NAME.png here");
  auto* score_resize = score->add_option(
      "--resize", score_options.resize,
      "shorter side before the centre crop: needed when the model file does not say how photos must be "
      "prepared for it (a PyTorch file from elsewhere: --resize 256 --size 224 for torchvision-style models); "
      "when given, it overrides the file's own transform");
  score_resize->check(CLI::Range(32, 4096))->default_str("");
  auto* score_size = score->add_option("--size", score_options.size,
                                       "network input size (the centre crop, at most --resize)");
  score_size->check(CLI::Range(32, 4096))->default_str("");
  score_resize->needs(score_size);
  score_size->needs(score_resize);
  score->add_option("--min-face", score_options.detector.min_face, "smallest face to look for, in pixels")
      ->check(CLI::Range(12.0, 100000.0));
  score->add_option("--face-extent", score_options.framing.face_extent,
                    "face half-extent over the crop side (larger: tighter crop)")
      ->check(CLI::Range(0.06, 2.0));
  score->add_option("--centre-shift", score_options.framing.centre_shift,
                    "crop centre below the eyes, in eye-to-mouth distances")
      ->check(CLI::Range(-2.0, 2.0));
  score->add_flag("!--no-level", score_options.framing.level_eyes, "do not rotate to level the eyes");
  score->add_option("--detector", score_options.detector_weights,
                    "MTCNN weights (default: models/mtcnn.safetensors)");
  score->add_flag("--quiet", score_options.quiet, "no progress lines on stderr");
  add_compute_options(score, score_options.compute);
  score->footer("Examples:\n"
                "  hotlap score --model runs/r50/fold1/best.safetensors portraits/\n"
                "  hotlap score --model best.safetensors a.jpg b.png --report ranking.html\n"
                "  hotlap score --model best.safetensors group.jpg --all-faces --format csv\n"
                "  hotlap score --model scut.safetensors --resize 256 --size 224 'grid/*.png'");

  // A mistyped command ("hotlap scor"): CLI11 alone would say only that a subcommand is required.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string guess = hotlap::closest_word(argv[1], names);
      std::string all;
      for (const std::string& name : names) all += (all.empty() ? "" : ", ") + name;
      std::fprintf(stderr, "hotlap: '%s' is not a command%s\n  the commands: %s (hotlap --help says what each does)\n",
                   hotlap::elide_long_words(argv[1]).c_str(),
                   guess.empty() ? "" : ("; did you mean '" + guess + "'?").c_str(), all.c_str());
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // A bad HOTLAP_CPU_ISA, HOTLAP_GEMM, ... is one line here, before any work, rather than in the
    // middle of it (kernels/choice.h).
    hotlap::kernels::cpu::active_cpu_isa();
    hotlap::kernels::kernel_options();
    if (*demo) return run_demo(demo_config, demo_compute);
    if (*info) return run_info();
    if (*ops) {
      std::fputs(hotlap::op_matrix_text().c_str(), stdout);
      return 0;
    }
    if (*bench) return hotlap::run_bench_command(bench_config);
    if (*convert) return hotlap::run_convert(convert_options);
    if (*score) {
      note_ignored(score, {"--min-face", "--face-extent", "--centre-shift", "--no-level", "--all-faces", "--detector",
                         "--upright"},
                   !score_options.face_crop, "with --no-face-crop (no face is looked for)");
      return hotlap::run_score(score_options);
    }
    if (*train) {
      if (!recipe.empty()) {
        // The recipe sets defaults; options given on the command line win. Parse again on top.
        hotlap::apply_recipe(recipe, train_config);
        app.parse(argc, argv);
        // Either length given on the command line replaces the recipe's, whichever that was.
        if (train->count("--epochs") > 0) train_config.iterations = 0;
        if (train->count("--iterations") > 0) train_config.epochs = 0;
      }
      {
        const hotlap::TrainConfig& c = train_config;
        note_ignored(train, {"--momentum"}, c.optimizer != "sgd", "with --optimizer " + c.optimizer);
        note_ignored(train, {"--step-size"}, c.schedule != "step", "with --schedule " + c.schedule);
        note_ignored(train, {"--warmup"}, c.schedule != "cosine", "with --schedule " + c.schedule);
        note_ignored(train, {"--resize"}, c.whole_image, "with --whole-image (the whole image is resized to --size)");
        note_ignored(train, {"--protocol"}, !c.labels_file.empty() || !c.ratings_csv.empty(),
                     "with --labels or --ratings (they are split 80/20)");
      }
      if (!recipe.empty()) {
        if (recipe == "paper" && train_config.init == "scratch")
          std::fprintf(stderr, "hotlap: note: the paper's recipe fine-tunes ImageNet weights (--init FILE); this run "
                               "starts\n  from random weights, so expect a lower PC than the paper's\n");
      }
      try {
        hotlap::run_training(train_config);
      } catch (const hotlap::TrainingStopped& e) {
        std::fprintf(stderr, "hotlap: %s\n  continue with: %s\n", e.what(), resume_command(argc, argv).c_str());
        return 128 + e.signal;  // as the shell reports a process ended by the signal
      }
      return 0;
    }
    if (*synth) {
      const int64_t n = hotlap::write_synthetic_scut(synth_options);
      std::printf("wrote %lld drawn faces to %s\n  in SCUT-FBP5500's layout: Images/, train_test_files/ and %s\n",
                  static_cast<long long>(n), synth_options.out_dir.c_str(), hotlap::kSynthMarker);
      return 0;
    }
  } catch (const std::bad_alloc&) {  // where no layer said what it was building
    std::fprintf(stderr, "hotlap: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hotlap: error: %s\n", hotlap::elide_long_words(e.what()).c_str());
    return 1;
  }
  return 0;
}
