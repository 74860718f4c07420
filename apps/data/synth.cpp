#include "apps/data/synth.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
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

}  // namespace

int64_t write_synthetic_scut(const SynthOptions& o) {
  namespace fs = std::filesystem;
  HOTLAP_CHECK(o.count >= 10, "synth: --n must be at least 10 (five folds of two), got ", o.count);
  HOTLAP_CHECK(o.size >= 32 && o.size <= 2048, "synth: --size must be in [32, 2048], got ", o.size);
  HOTLAP_CHECK(!o.out_dir.empty(), "synth: --out is empty; give the folder to write the data set into");
  const fs::path root(o.out_dir);
  std::error_code ec;
  if (fs::is_directory(root, ec) && !fs::is_empty(root, ec)) {
    HOTLAP_CHECK(o.overwrite, "synth: ", o.out_dir, " is not empty (a data set of its own?); give an empty or new "
                 "folder, or --overwrite to replace its Images/ and train_test_files/");
    for (const char* part : {"Images", "train_test_files"}) {
      fs::remove_all(root / part, ec);
      HOTLAP_CHECK(!ec, "synth: cannot remove ", (root / part).string(), " for --overwrite: ", ec.message());
    }
  }
  fs::create_directories(root / "Images", ec);
  HOTLAP_CHECK(!ec, "synth: cannot create ", (root / "Images").string(), ": ", ec.message());

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
  // Each image comes from its own random stream, so the images can be drawn in parallel and the
  // data set is the same for any thread count.
  const int64_t count = static_cast<int64_t>(names.size());
  // An exception must not leave an OpenMP region: the first one is kept and rethrown after it.
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < count; ++i) {
    try {
      Rng image_rng(o.seed * 1000003ULL + static_cast<uint64_t>(i));
      const Face f = draw_parameters(image_rng);
      scores[static_cast<size_t>(i)] = f.score;
      write_jpeg((root / "Images" / names[static_cast<size_t>(i)]).string(), render(f, o.size, image_rng),
                 o.quality);
    } catch (...) {
#pragma omp critical(hotlap_synth_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);

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

bool is_synthetic_scut(const std::string& dir) {
  std::ifstream in(std::filesystem::path(dir) / kSynthMarker, std::ios::binary);
  std::string first;
  return in.good() && std::getline(in, first) && first == kMarkerFirstLine;
}

}  // namespace hotlap
