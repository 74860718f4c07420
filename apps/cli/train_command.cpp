// hotlap train: the options of training (apps/train/train.h), a --recipe's defaults under them, and
// the line that continues a stopped run.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/cli/commands.h"
#include "apps/train/train.h"
#include "kernels/comm.h"

namespace hotlap::cli {

namespace {

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
  // Started by mpirun: the same number of ranks again (any number would resume the run).
  const int ranks = kernels::comm::world().size;
  if (ranks > 1) command = "mpirun -np " + std::to_string(ranks) + " " + command;
  return resume ? command : command + " --resume";
}

}  // namespace

Command add_train_command(CLI::App& app) {
  struct Options {
    TrainConfig config;
    std::string recipe;
  };
  auto o = std::make_shared<Options>();
  TrainConfig& train_config = o->config;
  std::string& recipe = o->recipe;
  auto* train = app.add_subcommand(
      "train", "train a ResNet regressor on SCUT-FBP5500 (or a data set in its layout) and report Pearson "
               "correlation, MAE and RMSE on the test split after every epoch; or (--task classify) a "
               "classifier on an image folder, with top-1 and top-5 accuracy");
  train->add_option("--task", train_config.task,
                    "score: a regressor of 1-5 scores (SCUT-FBP5500); classify: a classifier of an image "
                    "folder's classes (cross-entropy, random resized crops)")
      ->check(CLI::IsMember({"score", "classify"}))
      ->capture_default_str();
  train->add_option("--data", train_config.data_dir,
                    "SCUT-FBP5500_v2 folder (Images/, train_test_files/); classify: an image folder "
                    "(train/CLASS/IMAGE, val/CLASS/IMAGE)");
  train->add_option("--labels", train_config.labels_file,
                    "NAME SCORE lines instead of the split files (80/20); classify: a CSV with columns path and "
                    "label (80/20)");
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
                    "(AdamW, lr 0.001, batch 200, 10 epochs, the whole image at 350, 80-20) or imagenet (a "
                    "ResNet-50 classifier as torchvision's reference: SGD, lr 0.1 per 256 images of --batch, "
                    "batch 256, weight decay 0.0001 but not on biases and batch norm, 90 epochs, x0.1 every "
                    "30). Options on the command line override it wherever they appear")
      ->check(CLI::IsMember({"paper", "seed", "imagenet"}));
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
  train->add_option("--step-epochs", train_config.step_epochs,
                    "epochs between decays of --schedule step, instead of --step-size (0: use --step-size)")
      ->check(CLI::Range(0, 1000000));
  train->add_option("--warmup-epochs", train_config.warmup_epochs,
                    "warm-up of --schedule cosine in epochs, instead of --warmup (0: use --warmup)")
      ->check(CLI::Range(0, 1000000));
  train->add_flag("!--no-bias-decay", train_config.decay_vectors,
                  "no weight decay on biases and batch norm's scales and shifts (the ImageNet recipe's)");
  train->add_option("--loss", train_config.loss,
                    "mean squared error, mean absolute error or smooth L1 (Huber); a classifier's is "
                    "cross-entropy")
      ->check(CLI::IsMember({"mse", "l1", "smooth_l1"}));
  train->add_option("--label-smoothing", train_config.label_smoothing,
                    "classify: the target puts this much on the classes spread evenly, the rest on the label "
                    "(ImageNet recipes use 0.1)")
      ->check(CLI::Range(0.0, 0.99));
  train->add_option("--min-scale", train_config.min_scale,
                    "classify: the smallest share of an image's area a random resized crop takes (torchvision: "
                    "0.08)")
      ->check(CLI::Range(0.01, 1.0));
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
  train->add_flag("--sync-bn", train_config.sync_bn,
                  "under mpirun: batch norm with the statistics of the whole batch, summed over the ranks "
                  "(fp32 and tf32); by default each rank normalises its own slice");
  train->add_flag("--skip-bad-labels", train_config.skip_bad_labels,
                  "drop malformed label lines and missing images (with a report) instead of stopping");
  train->footer("Examples:\n"
                "  hotlap train --data SCUT-FBP5500_v2 --out runs/r50 --recipe paper \\\n"
                "      --init resnet50-imagenet.safetensors\n"
                "  hotlap train --data SCUT-FBP5500_v2 --out runs/quick --protocol 60-40 \\\n"
                "      --depth 18 --epochs 10 --lr 0.01\n"
                "  hotlap train --labels scores.txt --images photos --out runs/mine --epochs 20\n"
                "  hotlap train --task classify --data shapes --out runs/shapes --depth 18 \\\n"
                "      --width 16 --size 64 --resize 72 --epochs 10 --lr 0.05\n"
                "The run folder gets a folder per fold (best.safetensors, last.safetensors, metrics.csv, "
                "predictions.csv) and report.html.");
  return {train, [train, o](const CommandLine& line) {
            TrainConfig& c = o->config;
            if (!o->recipe.empty()) {
              // The recipe sets defaults; options given on the command line win. Parse again on top.
              apply_recipe(o->recipe, c);
              line.app.parse(line.argc, line.argv);
              // Either length given on the command line replaces the recipe's, whichever that was.
              if (train->count("--epochs") > 0) c.iterations = 0;
              if (train->count("--iterations") > 0) c.epochs = 0;
              // The ImageNet recipe's rate follows the global batch, whichever --batch says.
              if (o->recipe == "imagenet" && train->count("--lr") == 0) c.lr = imagenet_lr(c.batch_size);
            }
            note_ignored(train, {"--momentum"}, c.optimizer != "sgd", "with --optimizer " + c.optimizer);
            note_ignored(train, {"--step-size", "--step-epochs"}, c.schedule != "step", "with --schedule " + c.schedule);
            note_ignored(train, {"--warmup", "--warmup-epochs"}, c.schedule != "cosine", "with --schedule " + c.schedule);
            note_ignored(train, {"--step-size"}, c.step_epochs > 0, "with --step-epochs");
            note_ignored(train, {"--warmup"}, c.warmup_epochs > 0, "with --warmup-epochs");
            note_ignored(train, {"--resize"}, c.whole_image, "with --whole-image (the whole image is resized to --size)");
            note_ignored(train, {"--protocol"}, !c.labels_file.empty() || !c.ratings_csv.empty(),
                         "with --labels or --ratings (they are split 80/20)");
            const bool classify = c.task == "classify";
            note_ignored(train, {"--protocol"}, classify && c.labels_file.empty(),
                         "with --task classify (an image folder has its own train/ and val/)");
            note_ignored(train, {"--loss"}, classify, "with --task classify (its loss is cross-entropy)");
            note_ignored(train, {"--label-smoothing", "--min-scale"}, !classify, "with --task score");
            if (o->recipe == "paper" && c.init == "scratch")
              std::fprintf(stderr, "hotlap: note: the paper's recipe fine-tunes ImageNet weights (--init FILE); this run "
                                   "starts\n  from random weights, so expect a lower PC than the paper's\n");
            try {
              run_training(c);
            } catch (const TrainingStopped& e) {
              if (kernels::comm::is_root())  // every rank stopped at the same step; rank 0 says so
                std::fprintf(stderr, "hotlap: %s\n  continue with: %s\n", e.what(),
                             resume_command(line.argc, line.argv).c_str());
              return 128 + e.signal;  // as the shell reports a process ended by the signal
            }
            return 0;
          },
          true};
}

}  // namespace hotlap::cli
