#include "apps/score/predict.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "apps/common/compute_threads.h"
#include "apps/data/image.h"
#include "apps/data/text_lines.h"
#include "apps/score/command_output.h"
#include "apps/score/photo_inputs.h"
#include "apps/score/score_output.h"
#include "apps/score/scoring_model.h"
#include "kernels/error.h"
#include "nn/runtime/autograd.h"

namespace hotlap {

namespace {

using text_lines::csv_field;

// At most `width` bytes of `s`: a longer one keeps its start and ends in "...".
std::string clipped(const std::string& s, size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

std::vector<float> logits_of(const ScoringModel& model, const Image& photo) {
  NoGradGuard no_grad;
  return model.net->forward(network_input(model, model_view(model, photo))).to_vector();
}

}  // namespace

std::vector<ClassGuess> top_guesses(const std::vector<float>& logits, const std::vector<std::string>& classes,
                                    int top) {
  HOTLAP_CHECK(!logits.empty() && logits.size() == classes.size(), "predict: ", logits.size(), " logits for ",
               classes.size(), " classes");
  for (float v : logits) HOTLAP_CHECK(std::isfinite(v), "the model's output is not finite (", v, "): the checkpoint is broken");
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t k = 0; k < logits.size(); ++k) sum += p[k] = std::exp(static_cast<double>(logits[k]) - max);
  std::vector<size_t> order(logits.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<ClassGuess> guesses;
  for (size_t r = 0; r < order.size() && r < static_cast<size_t>(std::max(top, 1)); ++r)
    guesses.push_back({classes[order[r]], static_cast<int64_t>(order[r]), p[order[r]] / sum});
  return guesses;
}

std::string format_predictions(const std::vector<Prediction>& predictions, const std::string& format,
                               const std::string& model_path, const std::string& model_description, size_t classes) {
  if (format == "json") {
    nlohmann::json photos = nlohmann::json::array();
    for (const Prediction& p : predictions) {
      nlohmann::json top = nlohmann::json::array();
      for (const ClassGuess& g : p.top) top.push_back({{"class", g.name}, {"index", g.index}, {"probability", g.probability}});
      photos.push_back({{"path", p.path}, {"name", p.name}, {"top", top},
                        {"error", p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error)}});
    }
    const nlohmann::json doc = {{"model", model_path}, {"model_description", model_description},
                                {"classes", classes}, {"photos", photos}};
    // Names are bytes from the file system: replace what is not UTF-8 rather than fail.
    return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (format == "csv") {
    std::string csv = "path,name,rank,class,index,probability,error\n";
    char number[32];
    for (const Prediction& p : predictions) {
      if (!p.error.empty()) {
        csv += csv_field(p.path) + "," + csv_field(p.name) + ",,,,," + csv_field(p.error) + "\n";
        continue;
      }
      for (size_t r = 0; r < p.top.size(); ++r) {
        std::snprintf(number, sizeof number, "%.6f", p.top[r].probability);
        csv += csv_field(p.path) + "," + csv_field(p.name) + "," + std::to_string(r + 1) + "," +
               csv_field(p.top[r].name) + "," + std::to_string(p.top[r].index) + "," + number + ",\n";
      }
    }
    return csv;
  }
  HOTLAP_CHECK(format == "table", "hotlap predict: unknown format '", format, "' (table, csv or json)");
  // Fits 80 columns: a name of up to 30, the rank, a class name of up to 32, the probability.
  size_t name_width = 4;
  for (const Prediction& p : predictions) name_width = std::max(name_width, std::min<size_t>(p.name.size(), 30));
  std::string t;
  char line[256];
  std::snprintf(line, sizeof line, "%-*s  %4s  %-32s %11s", static_cast<int>(name_width), "name", "rank", "class",
                "probability");
  t += std::string(line).substr(0, std::string(line).find_last_not_of(' ') + 1) + "\n";
  std::vector<std::string> errors;
  for (const Prediction& p : predictions) {
    const std::string name = clipped(p.name, 30);
    if (!p.error.empty()) {
      std::snprintf(line, sizeof line, "%-*s  %4s  %s", static_cast<int>(name_width), name.c_str(), "-", "failed");
      t += std::string(line) + "\n";
      errors.push_back(name + ": " + p.error);
      continue;
    }
    for (size_t r = 0; r < p.top.size(); ++r) {
      std::snprintf(line, sizeof line, "%-*s  %4zu  %-32s %10.1f%%", static_cast<int>(name_width),
                    r == 0 ? name.c_str() : "", r + 1, clipped(p.top[r].name, 32).c_str(), 100 * p.top[r].probability);
      t += std::string(line) + "\n";
    }
  }
  if (!errors.empty()) {
    t += "errors:\n";
    for (const std::string& e : errors) t += "  " + e + "\n";
  }
  return t;
}

int run_predict(const PredictOptions& options) {
  HOTLAP_CHECK(!options.photos.empty(), "hotlap predict: no photos given");
  HOTLAP_CHECK(options.top >= 1, "hotlap predict: --top must be at least 1, got ", options.top);
  std::string format = format_for_output(options.format, options.out);
  if (format == "md") format = "table";  // predict has no Markdown form; a .md file gets the table
  HOTLAP_CHECK(format == "table" || format == "csv" || format == "json", "hotlap predict: unknown format '", format,
               "' (table, csv or json)");
  const Device device = apply_compute_options(options.compute);
  const ScoringModel model = load_classifier(options.model_path, {options.resize, options.size});
  model.net->to(device);
  std::vector<PhotoProblem> problems, skipped;
  const std::vector<std::string> paths = expand_photo_arguments(options.photos, problems, &skipped);
  for (const PhotoProblem& f : skipped)
    std::fprintf(stderr, "hotlap predict: skipped %s (%s)\n", f.path.c_str(), f.reason.c_str());
  if (!options.out.empty()) {
    std::vector<std::string> inputs = paths;
    inputs.push_back(options.model_path);
    check_output_path(options.out, "--out", inputs);
  }
  if (!options.quiet)
    std::fprintf(stderr, "hotlap predict: %zu %s\n  model: %s%s\n", paths.size(), paths.size() == 1 ? "photo" : "photos",
                 model.description.c_str(),
                 model.class_names_known ? "" : "\n  note: the file names no classes: they are shown by index");
  std::vector<Prediction> predictions;
  for (const PhotoProblem& problem : problems)
    predictions.push_back({problem.path, std::filesystem::path(problem.path).filename().string(), {}, problem.message()});
  for (const std::string& path : paths) {
    adapt_compute_threads();
    Prediction p;
    p.path = path;
    p.name = std::filesystem::path(path).stem().string();
    try {
      p.top = top_guesses(logits_of(model, decode_image(path)), model.classes, options.top);
    } catch (const std::exception& e) {
      const std::string message = e.what();
      p.error = message.rfind(path, 0) == 0 ? message : path + ": " + message;
    }
    if (!options.quiet) {
      if (p.error.empty())
        std::fprintf(stderr, "  %s: %s %.1f%%\n", clipped(p.name, 40).c_str(), clipped(p.top[0].name, 24).c_str(),
                     100 * p.top[0].probability);
      else
        std::fprintf(stderr, "  %s failed: %s\n", clipped(p.name, 40).c_str(), p.error.c_str());
    }
    predictions.push_back(std::move(p));
  }
  write_result(format_predictions(predictions, format, options.model_path, model.description, model.classes.size()),
               options.out, "hotlap predict");
  for (const Prediction& p : predictions)
    if (!p.error.empty()) return 1;
  return 0;
}

}  // namespace hotlap
