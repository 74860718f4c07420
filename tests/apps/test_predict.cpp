// hotlap predict: the softmax and ranking of a classifier's outputs, the three formats, and the command
// end to end on a classifier trained here (and refused for a regressor, as score refuses a classifier).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/data/synth.h"
#include "apps/score/predict.h"
#include "apps/score/scoring_model.h"
#include "apps/train/train.h"
#include "cli_util.h"
#include "kernels/error.h"
#include "test_util.h"
#include "train_fixtures.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;
using test::contains;

TEST_CASE("predict: top_guesses is a stable softmax, most probable first, equal ones by index") {
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  // exp(1000) overflows a double: the largest logit is subtracted first.
  const std::vector<ClassGuess> g = top_guesses({1000.0f, 1002.0f, 1000.0f, 1003.0f}, names, 3);
  REQUIRE(g.size() == 3);
  const double sum = 2 * std::exp(-3.0) + std::exp(-1.0) + 1;
  CHECK(g[0].name == "d");
  CHECK(g[0].probability == doctest::Approx(1 / sum));
  CHECK(g[1].name == "b");
  CHECK(g[1].probability == doctest::Approx(std::exp(-1.0) / sum));
  CHECK(g[2].index == 0);  // a and c tie: the lower index first
  const std::vector<ClassGuess> all = top_guesses({0.0f, std::log(3.0f)}, {"x", "y"}, 10);  // --top past the classes
  REQUIRE(all.size() == 2);
  CHECK(all[0].probability == doctest::Approx(0.75));
  CHECK(all[1].probability == doctest::Approx(0.25));
  CHECK_THROWS_WITH_AS(top_guesses({0.0f, NAN}, {"x", "y"}, 1), doctest::Contains("not finite"), Error);
  CHECK_THROWS_AS(top_guesses({0.0f}, {"x", "y"}, 1), Error);
}

TEST_CASE("predict: table, CSV and JSON hold the same guesses, and a failed photo's error") {
  std::vector<Prediction> p(2);
  p[0] = {"dir/a, b.jpg", "a, b", {{"cat", 1, 0.875}, {"dog \"big\"", 0, 0.125}}, ""};
  p[1] = {"dir/gone.jpg", "gone", {}, "dir/gone.jpg: no such file or folder"};
  const std::string table = format_predictions(p, "table", "m.safetensors", "ResNet", 2);
  CHECK(contains(table, "a, b     1  cat"));
  CHECK(contains(table, "87.5%"));
  CHECK(contains(table, "12.5%"));
  CHECK(contains(table, "errors:\n  gone: dir/gone.jpg: no such file or folder"));
  for (size_t start = 0, end; (end = table.find('\n', start)) != std::string::npos; start = end + 1)
    CHECK(end - start <= 80);
  const std::string csv = format_predictions(p, "csv", "m.safetensors", "ResNet", 2);
  CHECK(contains(csv, "path,name,rank,class,index,probability,error\n"
                      "\"dir/a, b.jpg\",\"a, b\",1,cat,1,0.875000,\n"
                      "\"dir/a, b.jpg\",\"a, b\",2,\"dog \"\"big\"\"\",0,0.125000,\n"
                      "dir/gone.jpg,gone,,,,,dir/gone.jpg: no such file or folder\n"));
  const nlohmann::json j = nlohmann::json::parse(format_predictions(p, "json", "m.safetensors", "ResNet", 2));
  CHECK(j["classes"] == 2);
  CHECK(j["photos"][0]["top"][1]["class"] == "dog \"big\"");
  CHECK(j["photos"][0]["top"][0]["probability"] == 0.875);
  CHECK(j["photos"][0]["error"].is_null());
  CHECK(j["photos"][1]["error"] == "dir/gone.jpg: no such file or folder");
  CHECK_THROWS_AS(format_predictions(p, "xml", "m", "d", 2), Error);
}

TEST_CASE("predict: a classifier trained here names the classes of its photos, and a regressor is refused") {
  test::TempDir dir;
  TrainConfig c = test::small_shapes_run(dir, 30, 3, 40);
  run_training(c);
  const std::string model = dir.file("run/train-val/best.safetensors");
  const ScoringModel loaded = load_classifier(model);
  CHECK(loaded.classes == std::vector<std::string>{"circle", "square", "triangle"});
  CHECK(loaded.class_names_known);
  CHECK(loaded.resize == 36);
  CHECK(loaded.crop == 32);
  CHECK(std::isfinite(loaded.top1));
  CHECK_THROWS_WITH_AS(load_scoring_model(model), doctest::Contains("hotlap predict runs a classifier"), Error);

  const std::string photo = dir.file("shapes/val/square/00004.jpg");
  const test::Run csv = test::run("predict --quiet --model " + model + " " + photo + " --top 2 --format csv");
  CHECK(csv.status == 0);
  CHECK(contains(csv.output, "path,name,rank,class,index,probability,error\n" + photo + ",00004,1,"));
  CHECK(std::count(csv.output.begin(), csv.output.end(), '\n') == 3);  // the header and two classes
  // Into a file whose folder does not exist: refused before any photo is read.
  const test::Run missing = test::run("predict --model " + model + " " + photo + " --out " + dir.file("no/x.csv"));
  CHECK(missing.status != 0);
  CHECK(contains(missing.output, "does not exist"));
  const test::Run overwrite = test::run("predict --model " + model + " " + photo + " --out " + model);
  CHECK(overwrite.status != 0);
  CHECK(contains(overwrite.output, "would overwrite an input"));
  // A photo that cannot be read: its error in the result, and exit status 1.
  const test::Run bad = test::run("predict --quiet --model " + model + " " + dir.file("nothing.jpg") + " " + photo);
  CHECK(bad.status == 1);
  CHECK(contains(bad.output, "errors:"));
  CHECK(contains(bad.output, "00004"));

  // A regressor (hotlap train's default task) is not a classifier.
  TrainConfig r = test::small_scut_run(dir, 20);
  r.run_dir = dir.file("reg");
  r.protocol = "60-40";
  run_training(r);
  const test::Run refused = test::run("predict --model " + dir.file("reg/60-40/best.safetensors") + " " + photo);
  CHECK(refused.status != 0);
  CHECK(contains(refused.output, "not a classifier"));
}

}  // namespace
}  // namespace hotlap
