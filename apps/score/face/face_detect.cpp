// MTCNN's cascade: image pyramid, P-Net proposals, R-Net and O-Net refinement. See face_detect.h.
// Box arithmetic is in float, as facenet-pytorch does it on float32 tensors, so that the integer
// crop bounds it truncates to come out the same.
#include "apps/score/face/face_detect.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <system_error>

#include "apps/score/face/mtcnn.h"
#include "kernels/error.h"
#include "kernels/math_mode.h"
#include "nn/runtime/tensor.h"

namespace hotlap {

namespace {

// A candidate: box corners, score, and the regression the last network gave it.
struct Candidate {
  float x1, y1, x2, y2, score;
  float reg[4] = {0, 0, 0, 0};
};

// The NHWC network input for a batch of images of one size: (255 * v - 127.5) / 128.
Tensor to_mtcnn_input(const std::vector<Image>& images) {
  const int64_t h = images[0].height, w = images[0].width;
  Tensor t = Tensor::empty({static_cast<int64_t>(images.size()), h, w, 3});
  float* out = t.f32();
  for (const Image& img : images)
    for (float v : img.pixels) *out++ = (v * 255.0f - 127.5f) * 0.0078125f;
  return t;
}

// non_maximum_suppression over candidates: the indices kept, best first.
std::vector<size_t> suppress(const std::vector<Candidate>& c, double threshold, bool min_mode) {
  std::vector<std::array<double, 4>> boxes;
  std::vector<double> scores;
  for (const Candidate& k : c) {
    boxes.push_back({k.x1, k.y1, k.x2, k.y2});
    scores.push_back(k.score);
  }
  return non_maximum_suppression(boxes, scores, threshold, min_mode);
}

std::vector<Candidate> keep(const std::vector<Candidate>& c, double threshold, bool min_mode) {
  std::vector<Candidate> out;
  for (size_t i : suppress(c, threshold, min_mode)) out.push_back(c[i]);
  return out;
}

// Moves each box by its regression, scaled by its size (+1 pixel: MTCNN's bbreg).
void apply_regression(std::vector<Candidate>& c) {
  for (Candidate& k : c) {
    const float w = k.x2 - k.x1 + 1, h = k.y2 - k.y1 + 1;
    k.x1 += k.reg[0] * w;
    k.y1 += k.reg[1] * h;
    k.x2 += k.reg[2] * w;
    k.y2 += k.reg[3] * h;
  }
}

// Squares each box around its centre, on its longer side (MTCNN's rerec).
void make_square(std::vector<Candidate>& c) {
  for (Candidate& k : c) {
    const float w = k.x2 - k.x1, h = k.y2 - k.y1, l = std::max(w, h);
    k.x1 = k.x1 + w * 0.5f - l * 0.5f;
    k.y1 = k.y1 + h * 0.5f - l * 0.5f;
    k.x2 = k.x1 + l;
    k.y2 = k.y1 + l;
  }
}

// The box's pixels, clipped to the image (MTCNN's pad(): columns int(x1) - 1 .. int(x2) - 1 with
// int(x1) >= 1 and int(x2) <= width), resampled to size x size. False when nothing is left.
bool crop_box(const Image& image, const Candidate& k, int64_t size, Image& out) {
  const int64_t x = std::max<int64_t>(static_cast<int64_t>(std::trunc(k.x1)), 1);
  const int64_t y = std::max<int64_t>(static_cast<int64_t>(std::trunc(k.y1)), 1);
  const int64_t ex = std::min<int64_t>(static_cast<int64_t>(std::trunc(k.x2)), image.width);
  const int64_t ey = std::min<int64_t>(static_cast<int64_t>(std::trunc(k.y2)), image.height);
  if (ex <= x - 1 || ey <= y - 1 || x - 1 >= image.width || y - 1 >= image.height) return false;
  out = resize_area(crop(image, y - 1, x - 1, ey - y + 1, ex - x + 1), size, size);
  return true;
}

// Crops every candidate for a refinement net; drops the ones with nothing inside the image.
std::vector<Image> crops_for(const Image& image, std::vector<Candidate>& c, int64_t size) {
  std::vector<Image> crops;
  std::vector<Candidate> kept;
  for (const Candidate& k : c) {
    Image patch;
    if (!crop_box(image, k, size, patch)) continue;
    crops.push_back(std::move(patch));
    kept.push_back(k);
  }
  c = std::move(kept);
  return crops;
}

// The scale of the working copy a photo of height x width is searched on: 1 when it has at most
// `working_pixels` pixels, else the factor that brings it to that many.
double working_scale(int64_t height, int64_t width, int64_t working_pixels) {
  const double pixels = static_cast<double>(height) * static_cast<double>(width);
  return pixels <= static_cast<double>(working_pixels) ? 1.0 : std::sqrt(static_cast<double>(working_pixels) / pixels);
}

}  // namespace

std::vector<size_t> non_maximum_suppression(const std::vector<std::array<double, 4>>& boxes,
                                            const std::vector<double>& scores, double threshold,
                                            bool min_mode) {
  HOTLAP_CHECK(boxes.size() == scores.size(), "non_maximum_suppression: ", boxes.size(), " boxes but ",
               scores.size(), " scores");
  std::vector<size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const double extra = min_mode ? 1.0 : 0.0;  // MTCNN's own nms counts pixels inclusively
  auto area = [&](const std::array<double, 4>& b) { return (b[2] - b[0] + extra) * (b[3] - b[1] + extra); };
  std::vector<size_t> kept;
  std::vector<bool> dropped(boxes.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    const size_t a = order[i];
    if (dropped[a]) continue;
    kept.push_back(a);
    for (size_t j = i + 1; j < order.size(); ++j) {
      const size_t b = order[j];
      if (dropped[b]) continue;
      const auto& p = boxes[a];
      const auto& q = boxes[b];
      const double w = std::max(0.0, std::min(p[2], q[2]) - std::max(p[0], q[0]) + extra);
      const double h = std::max(0.0, std::min(p[3], q[3]) - std::max(p[1], q[1]) + extra);
      const double inter = w * h;
      const double overlap =
          min_mode ? inter / std::min(area(p), area(q)) : inter / (area(p) + area(q) - inter);
      if (overlap > threshold) dropped[b] = true;
    }
  }
  return kept;
}

FaceDetector::FaceDetector(const std::string& weights_path, const FaceDetectorOptions& options)
    : nets_(std::make_unique<Mtcnn>(weights_path)), options_(options) {
  HOTLAP_CHECK(options.min_face >= 12, "face detector: the smallest face (", options.min_face,
               " pixels) must be at least 12 pixels, P-Net's window");
  HOTLAP_CHECK(options.factor > 0.1 && options.factor < 0.95, "face detector: pyramid factor ",
               options.factor, " must lie in (0.1, 0.95)");
  for (double t : options.thresholds)
    HOTLAP_CHECK(t >= 0 && t < 1, "face detector: threshold ", t, " must lie in [0, 1)");
  HOTLAP_CHECK(options.working_pixels >= 48 * 48, "face detector: the working size (", options.working_pixels,
               " pixels) must be at least 48 x 48, O-Net's input");
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;

std::vector<DetectedFace> FaceDetector::detect(const Image& image) const {
  // MTCNN is an fp32 network, run in fp32 whatever the scoring model's --precision.
  const kernels::ScopedMathMode fp32(kernels::MathMode::fp32);
  const double scale = working_scale(image.height, image.width, options_.working_pixels);
  std::vector<DetectedFace> faces;
  if (scale >= 1) {
    faces = detect_at_full_size(image, options_.min_face);
  } else {
    const Image small = resize_area(image, std::max<int64_t>(12, std::llround(static_cast<double>(image.height) * scale)),
                                    std::max<int64_t>(12, std::llround(static_cast<double>(image.width) * scale)));
    // The copy's pixels are (photo pixels) * sy, * sx, exactly, after rounding its size.
    const double sy = static_cast<double>(small.height) / static_cast<double>(image.height);
    const double sx = static_cast<double>(small.width) / static_cast<double>(image.width);
    faces = detect_at_full_size(small, std::max(12.0, options_.min_face * std::min(sx, sy)));
    for (DetectedFace& f : faces) {
      f.x1 /= sx, f.x2 /= sx, f.y1 /= sy, f.y2 /= sy;
      for (auto& p : f.landmarks) p = {p[0] / sx, p[1] / sy};
    }
  }
  std::erase_if(faces, [&](const DetectedFace& f) {
    return std::max(f.width(), f.height()) < 0.5 * options_.min_face;
  });
  return faces;
}

double FaceDetector::smallest_face_searched(int64_t height, int64_t width) const {
  const double scale = working_scale(height, width, options_.working_pixels);
  return scale >= 1 ? options_.min_face : std::max(options_.min_face, 12.0 / scale);
}

std::vector<DetectedFace> FaceDetector::detect_at_full_size(const Image& image, double min_face) const {
  const int64_t h = image.height, w = image.width;
  if (h < 12 || w < 12) return {};

  // 1-2. Pyramid and P-Net proposals.
  const double m = 12.0 / min_face;
  std::vector<double> scales;
  for (double s = m, minl = static_cast<double>(std::min(h, w)) * m; minl >= 12;
       s *= options_.factor, minl *= options_.factor)
    scales.push_back(s);

  std::vector<Candidate> proposals;
  for (double scale : scales) {
    const auto sh = static_cast<int64_t>(static_cast<double>(h) * scale + 1);
    const auto sw = static_cast<int64_t>(static_cast<double>(w) * scale + 1);
    if (sh < 12 || sw < 12) continue;
    Mtcnn::PNetOut out = nets_->pnet(to_mtcnn_input({resize_area(image, sh, sw)}));
    const int64_t P = out.prob.dim(1), Q = out.prob.dim(2);
    const float* prob = out.prob.f32();
    const float* reg = out.box.f32();
    const auto fscale = static_cast<float>(scale);
    std::vector<Candidate> level;
    for (int64_t y = 0; y < P; ++y)
      for (int64_t x = 0; x < Q; ++x) {
        const int64_t i = y * Q + x;
        const float p = prob[i * 2 + 1];
        if (!(p >= static_cast<float>(options_.thresholds[0]))) continue;
        Candidate c{std::floor(static_cast<float>(2 * x + 1) / fscale),
                    std::floor(static_cast<float>(2 * y + 1) / fscale),
                    std::floor(static_cast<float>(2 * x + 12) / fscale),
                    std::floor(static_cast<float>(2 * y + 12) / fscale), p};
        std::copy(reg + i * 4, reg + i * 4 + 4, c.reg);
        level.push_back(c);
      }
    for (const Candidate& c : keep(level, 0.5, false)) proposals.push_back(c);
  }
  proposals = keep(proposals, 0.7, false);
  for (Candidate& k : proposals) {  // P-Net's regression scales by the box size without the +1
    const float bw = k.x2 - k.x1, bh = k.y2 - k.y1;
    k = Candidate{k.x1 + k.reg[0] * bw, k.y1 + k.reg[1] * bh, k.x2 + k.reg[2] * bw, k.y2 + k.reg[3] * bh,
                  k.score};
  }
  make_square(proposals);

  // 3. R-Net.
  std::vector<Image> crops = crops_for(image, proposals, 24);
  if (proposals.empty()) return {};
  std::vector<Candidate> refined;
  {
    auto [box, prob] = nets_->rnet(to_mtcnn_input(crops));
    for (size_t i = 0; i < proposals.size(); ++i) {
      const float p = prob.f32()[i * 2 + 1];
      if (!(p > static_cast<float>(options_.thresholds[1]))) continue;
      Candidate c = proposals[i];
      c.score = p;
      std::copy(box.f32() + i * 4, box.f32() + i * 4 + 4, c.reg);
      refined.push_back(c);
    }
  }
  refined = keep(refined, 0.7, false);
  apply_regression(refined);
  make_square(refined);

  // 4. O-Net.
  crops = crops_for(image, refined, 48);
  if (refined.empty()) return {};
  auto [box, landmarks, prob] = nets_->onet(to_mtcnn_input(crops));
  std::vector<Candidate> final_boxes;
  std::vector<std::array<std::array<double, 2>, 5>> final_points;
  for (size_t i = 0; i < refined.size(); ++i) {
    const float p = prob.f32()[i * 2 + 1];
    if (!(p > static_cast<float>(options_.thresholds[2]))) continue;
    Candidate c = refined[i];
    c.score = p;
    std::copy(box.f32() + i * 4, box.f32() + i * 4 + 4, c.reg);
    const float bw = c.x2 - c.x1 + 1, bh = c.y2 - c.y1 + 1;
    const float* pts = landmarks.f32() + i * 10;
    std::array<std::array<double, 2>, 5> points{};
    for (int k = 0; k < 5; ++k)
      points[static_cast<size_t>(k)] = {bw * pts[k] + c.x1 - 1, bh * pts[5 + k] + c.y1 - 1};
    final_boxes.push_back(c);
    final_points.push_back(points);
  }
  apply_regression(final_boxes);
  std::vector<DetectedFace> faces;
  for (size_t i : suppress(final_boxes, 0.7, true)) {
    const Candidate& k = final_boxes[i];
    DetectedFace f;
    f.x1 = k.x1, f.y1 = k.y1, f.x2 = k.x2, f.y2 = k.y2;
    f.probability = k.score;
    f.landmarks = final_points[i];
    faces.push_back(f);
  }
  std::stable_sort(faces.begin(), faces.end(),
                   [](const DetectedFace& a, const DetectedFace& b) { return a.area() > b.area(); });
  return faces;
}

std::string find_mtcnn_weights() {
  namespace fs = std::filesystem;
  const char* file = "mtcnn.safetensors";
  std::vector<fs::path> places;
  if (const char* env = std::getenv("HOTLAP_MODELS"); env && *env) {
    const fs::path p = fs::path(env) / file;
    HOTLAP_CHECK(fs::is_regular_file(p), "the face detector's weights are not at ", p.string(),
                 " (HOTLAP_MODELS is set to ", env, ")");
    return p.string();
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    places.push_back(exe.parent_path() / "models" / file);
    places.push_back(exe.parent_path().parent_path() / "models" / file);
  }
#ifdef HOTLAP_MODELS_DIR
  places.push_back(fs::path(HOTLAP_MODELS_DIR) / file);
#endif
  std::string looked;
  for (const fs::path& p : places) {
    if (fs::is_regular_file(p, ec)) return p.string();
    looked += "\n  " + p.string();
  }
  throw Error(std::string("cannot find the face detector's weights (models/mtcnn.safetensors in the "
                          "repository); set HOTLAP_MODELS to the folder that has them. Looked in:") +
              looked);
}

}  // namespace hotlap
