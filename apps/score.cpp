// hotlap score: see score.h.
#include "apps/score.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <span>

#include "apps/face_choice.h"
#include "apps/gradcam.h"
#include "apps/loader.h"
#include "apps/percentile.h"
#include "apps/photo_inputs.h"
#include "apps/score_output.h"
#include "apps/score_report.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/autograd.h"

namespace hotlap {

namespace {

// The normalised image as a batch of one, on `device`.
Tensor network_input(const Image& view, Device device) {
  Tensor x = Tensor::empty({1, view.height, view.width, 3});
  to_normalized_nhwc(view, kImageNetMean, kImageNetStd, x.f32());
  return x.to(device);
}

Device model_device(const ScoringModel& model) { return model.net->parameters().front().device(); }

double predict(const ScoringModel& model, const Image& view) {
  NoGradGuard no_grad;
  Tensor y = model.net->forward(network_input(view, model_device(model)));
  return static_cast<double>(y.item());
}

PixelBox box_of(const DetectedFace& f) { return {f.x1, f.y1, f.x2 - f.x1, f.y2 - f.y1}; }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

namespace {

// Steps 3-4 for one framed square: the model's evaluation view of it, the score (the mean over the
// mirror image too with --tta), its percentile, and with --explain the Grad-CAM map.
void score_framed(const Image& framed, const ScoringModel& model, const ScoreOptions& options, ScoredPhoto& result) {
  AugmentConfig view_config;
  view_config.resize = model.resize;
  view_config.crop = model.crop;
  view_config.train = false;
  view_config.whole_image = model.whole_image;
  const Image view = evaluation_view(framed, view_config);

  double score = predict(model, view);
  if (options.tta) {
    Image mirrored = view;
    flip_horizontal(mirrored);
    score = 0.5 * (score + predict(model, mirrored));
  }
  HOTLAP_CHECK(std::isfinite(score), "the model's score is not finite (", score, "): the checkpoint is broken");
  result.score = score;
  result.percentile = scut_percentile(score);
  if (outside_score_scale(score))
    result.warnings.push_back("score outside the " + fixed(kScoreScaleMin, 0) + "-" + fixed(kScoreScaleMax, 0) +
                              " scale: the photo is unlike the training photos, or the model is fed other than "
                              "as trained");
  if (options.explain) {
    const GradCam cam = grad_cam(*model.net, network_input(view, model_device(model)));
    result.heat = cam.heat;
    result.heat_height = cam.height;
    result.heat_width = cam.width;
  }
  result.crop = view;
  if (!options.report.empty()) result.framed = framed;
}

// The photo scaled down to fit kPreviewSide x kPreviewSide (never up), for the report.
constexpr int64_t kPreviewSide = 480;
void attach_preview(const Image& photo, ScoredPhoto& result) {
  result.preview = shrink_to_fit(photo, kPreviewSide);
  result.preview_scale = static_cast<double>(result.preview.width) / static_cast<double>(photo.width);
}

}  // namespace

std::vector<ScoredPhoto> score_image(const Image& photo, const ScoringModel& model, const FaceDetector* detector,
                                     const ScoreOptions& options, const ScoredPhoto& base) {
  ScoredPhoto first = base;
  if (!options.report.empty()) attach_preview(photo, first);
  if (!options.face_crop) {
    first.framing = "frame";
    first.crop_box = {0, 0, static_cast<double>(photo.width), static_cast<double>(photo.height)};
    score_framed(photo, model, options, first);
    return {first};
  }
  HOTLAP_CHECK(detector != nullptr, "score_image: face cropping needs a face detector");
  const std::vector<DetectedFace> faces = detector->detect(photo);
  first.faces_found = static_cast<int>(faces.size());
  if (faces.empty()) {
    const FaceFrame f = frame_centre(photo, options.framing);
    first.framing = "centre";
    first.crop_box = f.square;
    first.warnings.push_back("no face found: scored the centred square");
    score_framed(f.crop, model, options, first);
    return {first};
  }

  const FaceChoice choice = choose_faces(faces);
  for (size_t i : choice.order)
    first.candidates.push_back({box_of(faces[i]), faces[i].probability, choice.implausible[i], false});
  const size_t rows = options.all_faces ? faces.size() : 1;
  std::vector<ScoredPhoto> results;
  for (size_t k = 0; k < rows; ++k) {
    const DetectedFace& face = faces[choice.order[k]];
    ScoredPhoto r = first;
    r.candidates[k].scored = true;
    r.framing = faces.size() == 1 || options.all_faces ? "face" : "chosen";
    r.face_number = options.all_faces ? static_cast<int>(k) + 1 : 0;
    r.has_box = true;
    r.face_box = box_of(face);
    if (!options.all_faces && !choice.doubt.empty())
      r.warnings.push_back("doubtful choice: " + choice.doubt);
    else if (!options.all_faces && faces.size() > 1)
      r.warnings.push_back(std::to_string(faces.size()) + " faces found: scored " + describe_face(face));
    else if (options.all_faces && !choice.implausible[choice.order[k]].empty())
      r.warnings.push_back("this box may not be a face: " + choice.implausible[choice.order[k]]);
    const FaceFrame f = frame_face(photo, face, options.framing);
    r.crop_box = f.square;
    r.roll_degrees = f.roll_degrees;
    score_framed(f.crop, model, options, r);
    results.push_back(std::move(r));
  }
  return results;
}

int run_score(const ScoreOptions& options) {
  HOTLAP_CHECK(!options.photos.empty(), "hotlap score: no photos given");
  // Check everything that does not depend on a photo before the first one is read.
  const auto& formats = score_formats();
  HOTLAP_CHECK(std::find(formats.begin(), formats.end(), options.format) != formats.end(),
               "hotlap score: unknown format '", options.format, "' (table, csv, json or md)");
  const Device device = apply_compute_options(options.compute);
  const ScoringModel model = load_scoring_model(options.model_path, {options.resize, options.size});
  model.net->to(device);
  std::unique_ptr<FaceDetector> detector;
  if (options.face_crop) {
    const std::string weights =
        options.detector_weights.empty() ? find_mtcnn_weights() : options.detector_weights;
    detector = std::make_unique<FaceDetector>(weights, options.detector);
  }
  if (!options.crops_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.crops_dir, ec);
    HOTLAP_CHECK(!ec, options.crops_dir, ": cannot create the crops folder (", ec.message(), ")");
  }

  std::vector<PhotoProblem> problems;
  const std::vector<std::string> paths = expand_photo_arguments(options.photos, problems);
  std::vector<ScoredPhoto> photos;
  for (const PhotoProblem& problem : problems) {
    ScoredPhoto p;
    p.path = problem.path;
    p.name = std::filesystem::path(p.path).filename().string();
    p.error = problem.message();
    photos.push_back(std::move(p));
  }
  if (!options.quiet)
    std::fprintf(stderr, "hotlap score: %zu photo%s with %s\n", paths.size(), paths.size() == 1 ? "" : "s",
                 model.description.c_str());

  std::set<std::string> crop_names;
  for (const std::string& path : paths) {
    ScoredPhoto base;
    base.path = path;
    base.name = std::filesystem::path(path).stem().string();
    std::vector<ScoredPhoto> rows;
    try {
      rows = score_image(decode_image(path), model, detector.get(), options, base);
      if (!options.crops_dir.empty())
        for (const ScoredPhoto& p : rows) {
          const std::string stem = p.face_number > 0 ? p.name + "-face" + std::to_string(p.face_number) : p.name;
          std::string file = stem;
          for (int k = 2; crop_names.count(file); ++k) file = stem + "-" + std::to_string(k);
          crop_names.insert(file);
          write_png((std::filesystem::path(options.crops_dir) / (file + ".png")).string(), p.crop);
        }
    } catch (const std::exception& e) {
      const std::string message = e.what();
      ScoredPhoto p = base;
      p.error = message.rfind(path, 0) == 0 ? message : path + ": " + message;
      rows = {p};
    }
    for (ScoredPhoto& p : rows) {
      if (!options.quiet) {
        const std::string who =
            p.face_number > 0 ? p.name + " #" + std::to_string(p.face_number) : p.name;
        if (p.ok())
          std::fprintf(stderr, "  %-24s %-6s %5.2f  (%s)\n", who.c_str(), p.framing.c_str(), p.score,
                       p.faces_found < 0    ? "no detection"
                       : p.faces_found == 1 ? "1 face found"
                                            : (std::to_string(p.faces_found) + " faces found").c_str());
        else
          std::fprintf(stderr, "  %-24s failed: %s\n", who.c_str(), p.error.c_str());
        for (const std::string& w : p.warnings) std::fprintf(stderr, "    warning: %s\n", w.c_str());
      }
      photos.push_back(std::move(p));
    }
  }
  rank_photos(photos);

  std::map<std::string, std::string> meta = {
      {"model", options.model_path},
      {"model_description", model.description},
      {"framing", options.face_crop ? std::string(options.all_faces ? "every MTCNN face" : "MTCNN face (landmarks, probability, size)") +
                                          ", SCUT-like crop (face extent " + fixed(options.framing.face_extent, 2) +
                                          ", centre shift " + fixed(options.framing.centre_shift, 2) + ")"
                                    : "whole frame"},
      {"tta", options.tta ? "horizontal flip" : "none"},
      {"compute", compute_description(device)},
      {"date", today()},
  };
  const std::string text = format_scores(photos, options.format, meta);
  if (options.out.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  } else {
    write_file_atomically(options.out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()),
                                                                text.size()));
  }
  if (!options.report.empty()) {
    std::vector<std::pair<std::string, std::string>> header = {
        {"Model", options.model_path + " (" + model.description + ")"},
        {"Framing", meta["framing"]},
        {"Test-time augmentation", meta["tta"]},
        {"Computed on", meta["compute"]},
        {"Scored", meta["date"]},
    };
    write_score_report(options.report, photos, header, {.paths = options.report_paths});
    if (!options.quiet) std::fprintf(stderr, "hotlap score: report written to %s\n", options.report.c_str());
  }
  for (const ScoredPhoto& p : photos)
    if (!p.ok()) return 1;
  return 0;
}

}  // namespace hotlap
