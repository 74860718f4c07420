#include "apps/data/synth.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <numeric>
#include <sstream>
#include <vector>

#include "apps/data/image.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/runtime/random.h"

namespace hotlap {

namespace {

struct Face {
  double cx, cy, rx, ry;            // head ellipse, in units of the image size
  double eye_spacing, eye_tilt;     // spacing / head width; vertical offset between the eyes
  double skin[3], background[3], hair[3];
  double score;
};

double clamp01(double v) { return std::min(1.0, std::max(0.0, v)); }

Face draw_parameters(Rng& rng) {
  Face f;
  f.cx = rng.uniform(0.45, 0.55);
  f.cy = rng.uniform(0.47, 0.55);
  f.rx = rng.uniform(0.22, 0.28);
  f.ry = f.rx * rng.uniform(1.2, 1.4);
  f.eye_spacing = rng.uniform(0.26, 0.66);  // ideal 0.46
  f.eye_tilt = rng.uniform(0.0, 0.06);      // 0 is level
  const double skin_level = rng.uniform(0.35, 0.9);
  const double bg_level = rng.uniform(0.1, 0.9);
  for (int c = 0; c < 3; ++c) {
    f.skin[c] = clamp01(skin_level * rng.uniform(0.85, 1.1));
    f.background[c] = clamp01(bg_level * rng.uniform(0.8, 1.2));
    f.hair[c] = rng.uniform(0.05, 0.35);
  }
  const double proportion = 1.0 - std::min(1.0, std::abs(f.eye_spacing - 0.46) / 0.2);
  const double symmetry = 1.0 - f.eye_tilt / 0.06;
  const double contrast = std::min(1.0, std::abs(skin_level - bg_level) / 0.5);
  f.score = 1.0 + 4.0 * (0.4 * proportion + 0.3 * symmetry + 0.3 * contrast);
  return f;
}

// Soft-edged inside test for an ellipse: 1 inside, 0 outside, a ramp of ~1.5 pixels at the edge.
double ellipse(double x, double y, double cx, double cy, double rx, double ry, double pixel) {
  const double d = std::sqrt((x - cx) * (x - cx) / (rx * rx) + (y - cy) * (y - cy) / (ry * ry));
  const double edge = pixel * 1.5 / std::min(rx, ry);
  return clamp01((1.0 - d) / edge + 0.5);
}

Image render(const Face& f, int64_t size, Rng& rng) {
  Image img;
  img.height = img.width = size;
  img.pixels.resize(static_cast<size_t>(size * size * 3));
  const double px = 1.0 / static_cast<double>(size);
  const double eye_dx = f.eye_spacing * f.rx, eye_y = f.cy - 0.25 * f.ry;
  const double eye_rx = 0.18 * f.rx, eye_ry = 0.09 * f.rx;
  for (int64_t yi = 0; yi < size; ++yi) {
    const double y = (static_cast<double>(yi) + 0.5) * px;
    for (int64_t xi = 0; xi < size; ++xi) {
      const double x = (static_cast<double>(xi) + 0.5) * px;
      double rgb[3];
      for (int c = 0; c < 3; ++c) rgb[c] = f.background[c] * (0.9 + 0.2 * y);
      // hair: a larger ellipse behind the head, visible above it
      const double hair = ellipse(x, y, f.cx, f.cy - 0.12 * f.ry, f.rx * 1.12, f.ry * 1.0, px);
      const double head = ellipse(x, y, f.cx, f.cy, f.rx, f.ry, px);
      const double left = ellipse(x, y, f.cx - eye_dx, eye_y - f.eye_tilt / 2, eye_rx, eye_ry, px);
      const double right = ellipse(x, y, f.cx + eye_dx, eye_y + f.eye_tilt / 2, eye_rx, eye_ry, px);
      const double mouth = ellipse(x, y, f.cx, f.cy + 0.5 * f.ry, 0.35 * f.rx, 0.07 * f.rx, px);
      for (int c = 0; c < 3; ++c) {
        double v = rgb[c];
        v = v + (f.hair[c] - v) * hair;
        v = v + (f.skin[c] - v) * head;
        v = v * (1.0 - 0.85 * std::max(left, right));
        v = v + (0.55 * (c == 0) + 0.15 - v) * mouth;
        img.pixels[static_cast<size_t>((yi * size + xi) * 3 + c)] = static_cast<float>(clamp01(v + 0.02 * rng.normal()));
      }
    }
  }
  return img;
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::string label_lines(const std::vector<int64_t>& order, const std::vector<std::string>& names,
                        const std::vector<double>& scores) {
  std::ostringstream os;
  os.precision(7);
  for (int64_t i : order) os << names[static_cast<size_t>(i)] << " " << scores[static_cast<size_t>(i)] << "\n";
  return os.str();
}

// The marker file's first line: what is_synthetic_scut looks for.
constexpr const char* kMarkerFirstLine = "Synthetic faces drawn by hotlap synth: not photographs, not SCUT-FBP5500.";
constexpr const char* kClassesMarkerFirstLine = "Synthetic shapes drawn by hotlap synth --task classify: not photographs.";

bool marker_says(const std::string& dir, const char* first_line) {
  std::ifstream in(std::filesystem::path(dir) / kSynthMarker, std::ios::binary);
  std::string first;
  return in.good() && std::getline(in, first) && first == first_line;
}

// Checks out_dir and makes it ready: a folder that holds anything is refused unless --overwrite, which
// deletes the `parts` a data set of this kind consists of; then out_dir exists.
void prepare_folder(const SynthOptions& o, std::initializer_list<const char*> parts) {
  namespace fs = std::filesystem;
  HOTLAP_CHECK(!o.out_dir.empty(), "synth: --out is empty; give the folder to write the data set into");
  const fs::path root(o.out_dir);
  std::error_code ec;
  if (fs::is_directory(root, ec) && !fs::is_empty(root, ec)) {
    std::string listed;
    for (const char* part : parts) listed += std::string(listed.empty() ? "" : " and ") + part + "/";
    HOTLAP_CHECK(o.overwrite, "synth: ", o.out_dir, " is not empty (a data set of its own?); give an empty or new "
                 "folder, or --overwrite to replace its ", listed);
    for (const char* part : parts) {
      fs::remove_all(root / part, ec);
      HOTLAP_CHECK(!ec, "synth: cannot remove ", (root / part).string(), " for --overwrite: ", ec.message());
    }
  }
  fs::create_directories(root, ec);
  HOTLAP_CHECK(!ec, "synth: cannot create ", root.string(), ": ", ec.message());
}

// Draws image i of a data set in parallel, each from its own random stream (the data set is the same
// for any thread count): draw(i, rng) for i < count. An exception must not leave an OpenMP region: the
// first one is kept and rethrown after it.
template <typename Draw>
void draw_in_parallel(int64_t count, uint64_t seed, Draw&& draw) {
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < count; ++i) {
    try {
      Rng image_rng(seed * 1000003ULL + static_cast<uint64_t>(i));
      draw(i, image_rng);
    } catch (...) {
#pragma omp critical(hotlap_synth_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// ---- shapes for a classifier ----------------------------------------------------------------------

// How far (x, y) lies inside the class's shape centred at the origin with radius r, rotated by the
// caller: <= 1 inside, > 1 outside, growing with the distance (a gauge of the shape, as |p| / r is the
// circle's), so one soft edge serves every shape.
double shape_gauge(int64_t shape, double x, double y, double r) {
  const double ax = std::abs(x), ay = std::abs(y);
  switch (shape) {
    case 0:  // circle
      return std::sqrt(x * x + y * y) / r;
    case 1:  // square
      return std::max(ax, ay) / (0.85 * r);
    case 2: {  // equilateral triangle: the largest distance along its three edge normals
      double g = 0.0;
      for (int k = 0; k < 3; ++k) {
        const double a = 3.14159265358979 / 2 + k * 2 * 3.14159265358979 / 3;
        g = std::max(g, (x * std::cos(a) + y * std::sin(a)) / (0.5 * r));
      }
      return g;
    }
    case 3:  // cross: two bars
      return std::min(std::max(ax / r, ay / (0.3 * r)), std::max(ax / (0.3 * r), ay / r));
    case 4:  // ring
      return std::abs(std::sqrt(x * x + y * y) - 0.72 * r) / (0.22 * r);
    default:  // bar: a long thin rectangle
      return std::max(ax / r, ay / (0.28 * r));
  }
}

Image render_shape(int64_t shape, int64_t size, Rng& rng) {
  const double cx = rng.uniform(0.35, 0.65), cy = rng.uniform(0.35, 0.65), r = rng.uniform(0.18, 0.3);
  const double angle = rng.uniform(0.0, 2 * 3.14159265358979), c = std::cos(angle), s = std::sin(angle);
  double fg[3], bg[3];
  const double fg_level = rng.uniform(0.1, 0.9);
  double bg_level = rng.uniform(0.1, 0.9);
  if (std::abs(bg_level - fg_level) < 0.25) bg_level = fg_level < 0.5 ? fg_level + 0.3 : fg_level - 0.3;
  for (int k = 0; k < 3; ++k) {
    fg[k] = clamp01(fg_level * rng.uniform(0.6, 1.4));
    bg[k] = clamp01(bg_level * rng.uniform(0.8, 1.2));
  }
  Image img = make_image(size, size);
  const double px = 1.0 / static_cast<double>(size);
  for (int64_t yi = 0; yi < size; ++yi)
    for (int64_t xi = 0; xi < size; ++xi) {
      const double x = (static_cast<double>(xi) + 0.5) * px - cx, y = (static_cast<double>(yi) + 0.5) * px - cy;
      const double g = shape_gauge(shape, c * x + s * y, -s * x + c * y, r);
      const double inside = clamp01((1.0 - g) * r / (1.5 * px) + 0.5);  // a ramp of ~1.5 pixels
      for (int k = 0; k < 3; ++k)
        img.at(yi, xi, k) = static_cast<float>(clamp01(bg[k] + (fg[k] - bg[k]) * inside + 0.03 * rng.normal()));
    }
  return img;
}

}  // namespace

int64_t write_synthetic_scut(const SynthOptions& o) {
  namespace fs = std::filesystem;
  HOTLAP_CHECK(o.count >= 10, "synth: --n must be at least 10 (five folds of two), got ", o.count);
  HOTLAP_CHECK(o.size >= 32 && o.size <= 2048, "synth: --size must be in [32, 2048], got ", o.size);
  const fs::path root(o.out_dir);
  prepare_folder(o, {"Images", "train_test_files"});

  // SCUT's mix: 2000 AF, 2000 AM, 750 CF, 750 CM of 5500; the same shares for other counts.
  const char* prefixes[4] = {"AF", "AM", "CF", "CM"};
  const int64_t shares[4] = {2000, 2000, 750, 750};
  std::vector<std::string> names;
  int64_t assigned = 0;
  for (int k = 0; k < 4; ++k) {
    const int64_t n = k == 3 ? o.count - assigned : o.count * shares[k] / 5500;
    for (int64_t i = 1; i <= n; ++i) names.push_back(std::string(prefixes[k]) + std::to_string(i) + ".jpg");
    assigned += n;
  }

  Rng rng(o.seed);
  std::vector<double> scores(names.size());
  fs::create_directories(root / "Images");
  draw_in_parallel(static_cast<int64_t>(names.size()), o.seed, [&](int64_t i, Rng& image_rng) {
    const Face f = draw_parameters(image_rng);
    scores[static_cast<size_t>(i)] = f.score;
    write_jpeg((root / "Images" / names[static_cast<size_t>(i)]).string(), render(f, o.size, image_rng), o.quality);
  });

  // Splits: a seeded permutation; fold k tests on the k-th fifth; 60/40 takes the first 60%.
  std::vector<int64_t> order(names.size());
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  const fs::path tt = root / "train_test_files";
  const fs::path cv = tt / "5_folders_cross_validations_files";
  const int64_t n = static_cast<int64_t>(order.size());
  for (int k = 1; k <= 5; ++k) {
    const fs::path dir = cv / ("cross_validation_" + std::to_string(k));
    fs::create_directories(dir);
    const int64_t begin = n * (k - 1) / 5, end = n * k / 5;
    std::vector<int64_t> train, test;
    for (int64_t i = 0; i < n; ++i) (i >= begin && i < end ? test : train).push_back(order[i]);
    write_text((dir / ("train_" + std::to_string(k) + ".txt")).string(), label_lines(train, names, scores));
    write_text((dir / ("test_" + std::to_string(k) + ".txt")).string(), label_lines(test, names, scores));
  }
  const fs::path split = tt / "split_of_60%training and 40%testing";
  fs::create_directories(split);
  const int64_t cut = n * 3 / 5;
  write_text((split / "train.txt").string(),
             label_lines(std::vector<int64_t>(order.begin(), order.begin() + cut), names, scores));
  write_text((split / "test.txt").string(),
             label_lines(std::vector<int64_t>(order.begin() + cut, order.end()), names, scores));
  std::ostringstream marker;
  marker << kMarkerFirstLine << "\n" << n << " images of " << o.size << "x" << o.size << " pixels, seed " << o.seed
         << ", in SCUT-FBP5500's layout. Each score is a known function of the figure drawn\n"
            "(eye spacing, eye level, face contrast), for demos and tests: a model trained here\n"
            "has learnt those figures, not faces.\n";
  write_text((root / kSynthMarker).string(), marker.str());
  return n;
}

bool is_synthetic_scut(const std::string& dir) { return marker_says(dir, kMarkerFirstLine); }

int64_t write_synthetic_classes(const SynthOptions& o) {
  namespace fs = std::filesystem;
  constexpr int64_t kMaxClasses = static_cast<int64_t>(std::size(kSynthClasses));
  HOTLAP_CHECK(o.classes >= 2 && o.classes <= kMaxClasses, "synth: --classes must be in [2, ", kMaxClasses, "], got ",
               o.classes);
  HOTLAP_CHECK(o.count >= 5 * o.classes, "synth: --n must be at least 5 images a class (one of them for val/), got ",
               o.count, " for ", o.classes, " classes");
  HOTLAP_CHECK(o.size >= 32 && o.size <= 2048, "synth: --size must be in [32, 2048], got ", o.size);
  prepare_folder(o, {"train", "val"});
  const fs::path root(o.out_dir);
  // Image i is of class i % classes; of each class, every fifth image is held out in val/.
  for (const char* part : {"train", "val"})
    for (int64_t k = 0; k < o.classes; ++k) fs::create_directories(root / part / kSynthClasses[k]);
  draw_in_parallel(o.count, o.seed, [&](int64_t i, Rng& image_rng) {
    const int64_t shape = i % o.classes, index = i / o.classes;
    char name[32];
    std::snprintf(name, sizeof name, "%05lld.jpg", static_cast<long long>(index));
    const fs::path path = root / (index % 5 == 4 ? "val" : "train") / kSynthClasses[shape] / name;
    write_jpeg(path.string(), render_shape(shape, o.size, image_rng), o.quality);
  });
  std::ostringstream marker;
  marker << kClassesMarkerFirstLine << "\n" << o.count << " images of " << o.size << "x" << o.size << " pixels, seed "
         << o.seed << ", " << o.classes << " classes in torchvision's ImageFolder layout (train/, val/).\n"
         << "Each image holds one shape -- its class -- in a random place, size, angle and colour.\n";
  write_text((root / kSynthMarker).string(), marker.str());
  return o.count;
}

bool is_synthetic_classes(const std::string& dir) { return marker_says(dir, kClassesMarkerFirstLine); }

}  // namespace hotlap
