#include "apps/train/splits.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "apps/data/image_folder.h"
#include "apps/data/loader.h"
#include "apps/data/synth.h"
#include "kernels/error.h"
#include "nn/runtime/random.h"

namespace hotlap {

namespace {

// The labelled samples split 80/20 by a seeded shuffle: the original notebook's protocol, and the one
// for a plain list of labels (--labels, --ratings).
Split split_80_20(std::vector<Sample> samples, uint64_t seed, const std::string& description) {
  HOTLAP_CHECK(samples.size() >= 10, "train: ", samples.size(), " labelled images are too few to split 80/20");
  Rng rng(seed ^ 0x8020802080208020ULL);
  for (size_t i = samples.size() - 1; i > 0; --i)
    std::swap(samples[i], samples[static_cast<size_t>(rng.below(static_cast<int64_t>(i) + 1))]);
  const size_t cut = samples.size() * 4 / 5;
  Split split;
  split.train.assign(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(cut));
  split.test.assign(samples.begin() + static_cast<std::ptrdiff_t>(cut), samples.end());
  split.name = description + ", random 80/20 split (seed " + std::to_string(seed) + ")";
  count_split(split);
  return split;
}

}  // namespace

Split load_split(const TrainConfig& c, int fold) {
  LoadOptions load;
  load.check_images_exist = c.check_images;
  load.stop_on_problems = !c.skip_bad_labels;
  std::vector<Problem> problems;
  Split split;
  const std::string images = c.images_dir.empty() ? c.data_dir + "/Images" : c.images_dir;
  if (c.task == "classify") {
    if (!c.labels_file.empty()) {
      std::vector<std::string> classes;
      split = split_80_20(load_class_csv(c.labels_file, classes, load, &problems), c.seed, "class CSV " + c.labels_file);
      split.classes = classes;
    } else {
      std::vector<std::string> skipped;
      split = load_image_folder(c.data_dir, &skipped);
      HOTLAP_CHECK(!split.test.empty(), c.data_dir, ": no images in val/; a classifier is tested on ",
                   "DIR/val/CLASS/IMAGE (or give --labels, a path,label CSV, to split 80/20)");
      if (!skipped.empty())
        std::printf("note: left out %zu %s that %s not images hotlap reads (the first: %s)\n", skipped.size(),
                    skipped.size() == 1 ? "file" : "files", skipped.size() == 1 ? "is" : "are", skipped[0].c_str());
    }
    HOTLAP_CHECK(split.classes.size() >= 2, "train: a classifier needs at least 2 classes; ",
                 c.labels_file.empty() ? c.data_dir + "/train" : c.labels_file, " has only '",
                 split.classes.empty() ? std::string() : split.classes[0], "'");
  } else if (!c.labels_file.empty()) {
    split = split_80_20(load_labels(c.labels_file, images, load, &problems), c.seed, c.labels_file);
  } else if (!c.ratings_csv.empty()) {
    split = split_80_20(load_rater_csv(c.ratings_csv, images, load, &problems), c.seed,
                        c.ratings_csv + " (mean of the ratings per image)");
  } else if (fold < 0) {  // all of the 60/40 lists' images, split 80/20
    Split all = load_scut_split(c.data_dir, Protocol::sixty_forty, 0, load);
    problems = all.problems;
    all.train.insert(all.train.end(), all.test.begin(), all.test.end());
    split = split_80_20(all.train, c.seed,
                        (is_synthetic_scut(c.data_dir) ? "hotlap synth's faces (" : "SCUT-FBP5500 (") + c.data_dir + ")");
  } else {
    split = load_scut_split(c.data_dir, fold == 0 ? Protocol::sixty_forty : Protocol::five_fold, fold, load);
    problems = split.problems;
  }
  if (!problems.empty())
    std::printf("warning: skipped what the labels got wrong:\n%s\n", summarize_problems(problems).c_str());
  return split;
}

void check_images_load(const TrainConfig& c, Split& split, std::set<std::string>& known_good) {
  const auto start = std::chrono::steady_clock::now();
  const AugmentConfig view{c.resize, c.crop, false, c.whole_image};
  const int threads = std::max(c.threads, omp_get_max_threads());
  std::vector<std::string> failures;
  for (std::vector<Sample>* part : {&split.train, &split.test}) {
    std::vector<Sample> unknown;
    std::vector<size_t> where;  // unknown[j] is (*part)[where[j]]
    for (size_t i = 0; i < part->size(); ++i)
      if (known_good.count((*part)[i].path) == 0) unknown.push_back((*part)[i]), where.push_back(i);
    const auto found = find_unloadable_samples(unknown, view, threads);
    std::set<size_t> bad;
    for (const auto& f : found) bad.insert(f.first);
    for (size_t j = 0; j < unknown.size(); ++j)
      if (bad.count(j) == 0) known_good.insert(unknown[j].path);
    for (auto it = found.rbegin(); it != found.rend(); ++it) {  // from the back: indices stay valid
      failures.push_back(it->second);
      if (c.skip_bad_labels) part->erase(part->begin() + static_cast<std::ptrdiff_t>(where[it->first]));
    }
  }
  std::reverse(failures.begin(), failures.end());
  if (c.skip_bad_labels && !failures.empty()) count_split(split);  // the lines printed next say what trains
  const size_t total = split.train.size() + split.test.size() + (c.skip_bad_labels ? failures.size() : 0);
  if (!failures.empty()) {
    std::string list;
    for (size_t i = 0; i < failures.size() && i < 10; ++i) list += "\n  " + failures[i];
    if (failures.size() > 10) list += "\n  ... and " + std::to_string(failures.size() - 10) + " more";
    HOTLAP_CHECK(c.skip_bad_labels, "train: ", failures.size(), " of ", total, " images cannot be loaded",
                 " (--skip-bad-labels trains without them):", list);
    std::printf("warning: left out %zu of %zu images that cannot be loaded:%s\n", failures.size(), total,
                list.c_str());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (seconds >= 2.0)
    std::printf("checked that the %zu images load (%.1f s; --no-image-check skips this)\n", total, seconds);
}

}  // namespace hotlap
