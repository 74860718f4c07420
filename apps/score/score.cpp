// hotlap score: see score.h.
#include "apps/score/score.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <span>

#include "apps/common/cli_help.h"
#include "apps/common/compute_threads.h"
#include "apps/score/face/face_choice.h"
#include "apps/score/gradcam.h"
#include "apps/data/loader.h"
#include "apps/score/command_output.h"
#include "apps/score/percentile.h"
#include "apps/score/photo_inputs.h"
#include "apps/common/progress.h"
#include "apps/score/score_output.h"
#include "apps/score/score_report.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"
#include "nn/runtime/autograd.h"

namespace hotlap {

namespace {

double predict(const ScoringModel& model, const Image& view) {
  NoGradGuard no_grad;
  Tensor y = model.net->forward(network_input(model, view));
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
  const Image view = model_view(model, framed);

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
    const GradCam cam = grad_cam(*model.net, network_input(model, view));
    result.heat = cam.heat;
    result.heat_height = cam.height;
    result.heat_width = cam.width;
  }
  result.crop = view;
  if (!options.report.empty()) result.framed = framed;
}

// A model whose recorded held-out Pearson correlation is below this gets a note in every output.
constexpr double kWeakModel = 0.5;

// A face narrower than this (in photo pixels) is enlarged many times into the 350-pixel crop: the
// network then sees mostly blur, and the score says little.
constexpr double kSmallFace = 32;

// The part of a frame that the model's evaluation transform keeps: the centred square of side
// short * crop / resize (the shorter side resized to `resize`, then the centre crop `crop`), or the
// whole frame with whole_image.
PixelBox evaluation_region(const Image& frame, const ScoringModel& model) {
  const auto h = static_cast<double>(frame.height), w = static_cast<double>(frame.width);
  if (model.whole_image) return {0, 0, w, h};
  const double side = std::min(h, w) * static_cast<double>(model.crop) / static_cast<double>(model.resize);
  return {(w - side) / 2, (h - side) / 2, side, side};
}

// The highest probability among the faces that are confident and plausible (face_choice.h), 0 if none.
double best_sure_face(const std::vector<DetectedFace>& faces) {
  double best = 0;
  for (const DetectedFace& f : faces)
    if (f.probability >= kConfidentFace && face_geometry_problem(f).empty()) best = std::max(best, double(f.probability));
  return best;
}

// The photo scaled down to fit kPreviewSide x kPreviewSide (never up), for the report.
constexpr int64_t kPreviewSide = 480;
void attach_preview(const Image& photo, ScoredPhoto& result) {
  result.preview = std::make_shared<const Image>(shrink_to_fit(photo, kPreviewSide));
  result.preview_scale = static_cast<double>(result.preview->width) / static_cast<double>(photo.width);
}

}  // namespace

std::vector<ScoredPhoto> score_image(const Image& photo, const ScoringModel& model, const FaceDetector* detector,
                                     const ScoreOptions& options, const ScoredPhoto& base) {
  ScoredPhoto first = base;
  if (!options.report.empty()) attach_preview(photo, first);
  if (!options.face_crop) {
    first.framing = "frame";
    first.crop_box = evaluation_region(photo, model);
    score_framed(photo, model, options, first);
    return {first};
  }
  HOTLAP_CHECK(detector != nullptr, "score_image: face cropping needs a face detector");
  std::vector<DetectedFace> faces = detector->detect(photo);
  // No confident, plausible face upright: look for one in the photo turned a quarter each way and
  // upside down, and frame the photo the way that finds the most confident one.
  Image turned;
  if (options.try_turns && best_sure_face(faces) < kConfidentFace) {
    double best = best_sure_face(faces);
    for (const auto& [orientation, degrees] : {std::pair{6, 90}, std::pair{8, 270}, std::pair{3, 180}}) {
      Image candidate = apply_orientation(photo, orientation);
      std::vector<DetectedFace> found = detector->detect(candidate);
      if (const double p = best_sure_face(found); p > best) {
        best = p;
        turned = std::move(candidate);
        faces = std::move(found);
        first.turned_degrees = degrees;
      }
    }
    if (first.turned_degrees != 0) {
      if (!options.report.empty()) attach_preview(turned, first);
      first.warnings.push_back("no face upright: found one with the photo turned " +
                               std::string(first.turned_degrees == 180 ? "upside down" : first.turned_degrees == 90
                                                                             ? "90 degrees clockwise"
                                                                             : "90 degrees anticlockwise") +
                               " (its orientation tag may be missing): scored it that way, boxes in the turned "
                               "photo's pixels");
    }
  }
  const Image& photo_used = first.turned_degrees != 0 ? turned : photo;
  first.faces_found = static_cast<int>(faces.size());
  if (faces.empty()) {
    const FaceFrame f = frame_centre(photo, options.framing);
    first.framing = "centre";
    first.crop_box = f.square;
    const double smallest = detector->smallest_face_searched(photo.height, photo.width);
    if (smallest > detector->options().min_face + 0.5)
      first.warnings.push_back("no face found (this large photo was searched at reduced size: faces under " +
                               fixed(smallest, 0) + " pixels are not found): scored the centred square");
    else
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
    else if (options.all_faces && face.probability < kConfidentFace)
      r.warnings.push_back("this box may not be a face: its probability " + fixed(face.probability, 3) +
                           " is below " + fixed(kConfidentFace, 2));
    if (face.width() < kSmallFace)
      r.warnings.push_back("the face is only " + fixed(face.width(), 0) + " pixels wide: its crop is enlarged " +
                           fixed(static_cast<double>(options.framing.size) * options.framing.face_extent /
                                     std::max(1.0, 0.5 * face.width()), 0) +
                           " times and mostly blur");
    const FaceFrame f = frame_face(photo_used, face, options.framing);
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
  // Without --format, the format follows --out's extension (res.csv: CSV).
  const std::string format = format_for_output(options.format, options.out);
  const auto& formats = score_formats();
  HOTLAP_CHECK(std::find(formats.begin(), formats.end(), format) != formats.end(),
               "hotlap score: unknown format '", format, "' (table, csv, json or md)");
  if (const std::string note = format_note(options.format, options.out); !note.empty())
    std::fprintf(stderr, "hotlap score: %s\n", note.c_str());
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
  std::vector<PhotoProblem> skipped;
  const std::vector<std::string> paths = expand_photo_arguments(options.photos, problems, &skipped);
  // What a folder held that is not scored (a format hotlap cannot read, a link to nothing, a pipe):
  // said, not hidden, one line per reason.
  std::map<std::string, std::vector<std::string>> skipped_by_reason;
  for (const PhotoProblem& f : skipped)
    skipped_by_reason[f.reason].push_back(std::filesystem::path(f.path).filename().string());
  for (const auto& [reason, files] : skipped_by_reason) {
    std::string names;
    for (const std::string& f : files) names += (names.empty() ? "" : ", ") + f;
    std::fprintf(stderr, "hotlap score: skipped %s, %s: %s\n", counted(static_cast<long long>(files.size()), "file").c_str(),
                 elide_long_words(reason).c_str(), elide_long_words(names).c_str());
  }
  // Outputs are checked before any photo is scored: a folder that does not exist is an error now,
  // not after minutes of work, and no output may replace the model or a photo.
  for (const auto& [option, out] : {std::pair<const char*, const std::string*>{"--out", &options.out},
                                    {"--report", &options.report}}) {
    if (out->empty()) continue;
    std::vector<std::string> inputs = paths;
    inputs.push_back(options.model_path);
    check_output_path(*out, option, inputs);
  }
  std::vector<ScoredPhoto> photos;
  for (const PhotoProblem& problem : problems) {
    ScoredPhoto p;
    p.path = problem.path;
    p.name = std::filesystem::path(p.path).filename().string();
    p.error = problem.message();
    photos.push_back(std::move(p));
  }
  // Arguments that name no photo (a missing file, an empty folder) are rows of the result, with their error.
  if (!options.quiet)
    std::fprintf(stderr, "hotlap score: %s%s\n  model: %s\n", counted(static_cast<long long>(paths.size()), "photo").c_str(),
                 problems.empty() ? ""
                                  : (", and " + counted(static_cast<long long>(problems.size()), "argument") +
                                     " naming none (listed with the results)").c_str(),
                 model.description.c_str());
  // A model that learnt little ranks photos by little: say so where the scores are read.
  std::string weak_model;
  if (std::isfinite(model.pearson) && model.pearson < kWeakModel)
    weak_model = "this model's held-out Pearson correlation is " + fixed(model.pearson, 2) +
                 " (0: no better than the mean; ResNets trained on SCUT-FBP5500 reach about 0.9): its scores "
                 "and their ranking say little";
  if (!weak_model.empty() && !options.quiet) std::fprintf(stderr, "hotlap score: note: %s\n", weak_model.c_str());

  // The progress lines' name column: as wide as the longest name, within reason, so the columns line up.
  size_t name_width = 8;
  for (const std::string& path : paths)
    name_width = std::max(name_width, std::filesystem::path(path).stem().string().size() + (options.all_faces ? 4 : 0));
  name_width = std::min<size_t>(name_width, 32);
  auto fit = [&](const std::string& name) {  // a longer name keeps its start and end
    return name.size() <= name_width ? name : name.substr(0, name_width - 10) + "..." + name.substr(name.size() - 7);
  };
  for (const std::string& path : paths) {
    adapt_compute_threads();  // fewer compute threads while other programs keep the CPUs busy
    ScoredPhoto base;
    base.path = path;
    base.name = std::filesystem::path(path).stem().string();
    std::vector<ScoredPhoto> rows;
    try {
      rows = score_image(decode_image(path), model, detector.get(), options, base);
    } catch (const std::exception& e) {
      const std::string message = e.what();
      ScoredPhoto p = base;
      p.error = message.rfind(path, 0) == 0 ? message : path + ": " + message;
      rows = {p};
    }
    for (ScoredPhoto& p : rows) {
      if (!options.quiet) {
        const std::string who = fit(p.face_number > 0 ? p.name + " #" + std::to_string(p.face_number) : p.name);
        const int width = static_cast<int>(name_width);
        if (p.ok())
          std::fprintf(stderr, "  %-*s %-6s %5.2f  (%s)\n", width, who.c_str(), p.framing.c_str(), p.score,
                       p.faces_found < 0 ? "no detection"
                                         : (counted(p.faces_found, "face") + " found").c_str());
        else
          std::fprintf(stderr, "  %-*s failed: %s\n", width, who.c_str(), elide_long_words(p.error).c_str());
        const int columns = stderr_columns();
        for (const std::string& w : p.warnings)
          std::fputs(wrapped_item("warning: " + w, columns > 0 ? static_cast<size_t>(columns - 1) : 0, 4, 9).c_str(),
                     stderr);
      }
      photos.push_back(std::move(p));
    }
  }
  // Photos that share a file stem get the shortest part of their path that tells them apart.
  disambiguate_names(photos);
  if (!options.crops_dir.empty()) {
    std::set<std::string> crop_names;
    for (const ScoredPhoto& p : photos) {
      if (!p.ok() || p.crop.pixels.empty()) continue;
      std::string stem = p.face_number > 0 ? p.name + "-face" + std::to_string(p.face_number) : p.name;
      // A name that tells photos apart by their folder or extension keeps that in the file name:
      // a/face.png -> a_face_png.png, ham.gif -> ham_gif.png.
      for (char& ch : stem)
        if (ch == '/' || ch == '\\' || ch == '.') ch = '_';
      std::string file = stem;
      for (int k = 2; crop_names.count(file); ++k) file = stem + "-" + std::to_string(k);
      crop_names.insert(file);
      write_png((std::filesystem::path(options.crops_dir) / (file + ".png")).string(), p.crop);
    }
  }
  rank_photos(photos);

  std::map<std::string, std::string> meta = {
      {"model", options.model_path},
      {"model_description", model.description},
      {"model_note", weak_model},
      {"framing", options.face_crop ? std::string(options.all_faces ? "every MTCNN face" : "MTCNN face (landmarks, probability, size)") +
                                          ", SCUT-like crop (face extent " + fixed(options.framing.face_extent, 2) +
                                          ", centre shift " + fixed(options.framing.centre_shift, 2) + ")"
                                    : "whole frame"},
      {"tta", options.tta ? "horizontal flip" : "none"},
      {"compute", compute_description(device)},
      {"date", today()},
  };
  std::erase_if(meta, [](const auto& entry) { return entry.second.empty(); });
  // A table for a terminal fits its width; written to a file or a pipe, it keeps every column.
  const bool to_terminal = options.out.empty() && isatty(fileno(stdout)) != 0;
  const std::string text = format_scores(photos, format, meta,
                                         to_terminal ? static_cast<size_t>(std::max(terminal_columns() - 1, 0)) : 0);
  write_result(text, options.out, "hotlap score");
  if (!options.report.empty()) {
    std::vector<std::pair<std::string, std::string>> header = {
        {"Model", options.model_path + " (" + model.description + ")"},
        {"Note", weak_model},
        {"Framing", meta["framing"]},
        {"Test-time augmentation", meta["tta"]},
        {"Computed on", meta["compute"]},
        {"Scored", meta["date"]},
    };
    std::erase_if(header, [](const auto& entry) { return entry.second.empty(); });
    write_score_report(options.report, photos, header, {.paths = options.report_paths});
    if (!options.quiet) std::fprintf(stderr, "hotlap score: report written to %s\n", options.report.c_str());
  }
  for (const ScoredPhoto& p : photos)
    if (!p.ok()) return 1;
  return 0;
}

}  // namespace hotlap
