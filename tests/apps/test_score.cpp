// hotlap score end to end: a narrow random regressor (the pipeline, not the model's quality, is under
// test), the face-detection picture of tests/data (two face-like figures), a flat picture with no
// face, and broken files. In process: what score_image computes equals the model run on the framed
// crop. Through the binary: formats, --out, --report, exit codes and error rows.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "apps/cli_util.h"
#include "apps/score/face/face_choice.h"
#include "apps/score/face/face_detect.h"
#include "apps/score/face/face_frame.h"
#include "apps/data/image.h"
#include "apps/data/loader.h"
#include "apps/score/percentile.h"
#include "apps/score/score.h"
#include "kernels/math_mode.h"
#include "nn/runtime/autograd.h"
#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "nn/files/serialize.h"
#include "resnet/resnet.h"
#include "apps/score_fixtures.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::TempDir;

const std::string& kWeights = test::kMtcnnWeights;
const std::string kPicture = std::string(HOTLAP_TEST_DATA_DIR) + "/mtcnn_detect_golden.safetensors";

Image two_faces() {
  const Tensor t = read_tensors(kPicture).at("image");
  Image img = make_image(t.dim(0), t.dim(1));
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = t.f32()[i] / 255.0f;
  return img;
}

using test::save_model;

double forward(const ScoringModel& m, const Image& view) {
  NoGradGuard no_grad;
  Tensor x = Tensor::empty({1, view.height, view.width, 3});
  to_normalized_nhwc(view, kImageNetMean, kImageNetStd, x.f32());
  return m.net->forward(x).f32()[0];
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The one row score_image gives without --all-faces.
ScoredPhoto one_row(const std::vector<ScoredPhoto>& rows) {
  REQUIRE(rows.size() == 1);
  return rows[0];
}

nlohmann::json parse_file(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("score: the chosen face is framed and scored exactly as the model scores that crop") {
  TempDir dir;
  const ScoringModel model = load_scoring_model(save_model(dir));
  const FaceDetector detector(kWeights);
  const Image photo = two_faces();
  ScoreOptions options;
  const ScoredPhoto p = one_row(score_image(photo, model, &detector, options));

  const auto faces = detector.detect(photo);
  REQUIRE(faces.size() == 2);
  CHECK(p.framing == "chosen");  // both figures are confident faces: the larger
  CHECK(p.faces_found == 2);
  REQUIRE(p.has_box);
  CHECK(p.face_box.x == doctest::Approx(faces[0].x1));
  CHECK(p.face_box.width == doctest::Approx(faces[0].width()));
  // A random model's score may lie off the 1-5 scale: then a second warning says so.
  REQUIRE(p.warnings.size() == (outside_score_scale(p.score) ? 2u : 1u));
  CHECK(p.warnings[0] == "2 faces found: scored " + describe_face(faces[0]));
  REQUIRE(p.candidates.size() == 2);
  CHECK(p.candidates[0].scored);
  CHECK(p.candidates[1].box.x == doctest::Approx(faces[1].x1));

  const FaceFrame frame = frame_face(photo, faces[0], options.framing);
  const Image view = evaluation_view(frame.crop, AugmentConfig{72, 64, false, false});
  CHECK(p.crop.height == 64);
  CHECK(p.crop.pixels == view.pixels);
  CHECK(p.score == forward(model, view));
  CHECK(p.percentile == scut_percentile(p.score));
  CHECK(p.heat.empty());

  SUBCASE("--tta averages the photo and its mirror image") {
    options.tta = true;
    const ScoredPhoto q = one_row(score_image(photo, model, &detector, options));
    Image mirrored = view;
    flip_horizontal(mirrored);
    CHECK(q.score == doctest::Approx(0.5 * (forward(model, view) + forward(model, mirrored))).epsilon(1e-12));
  }
  SUBCASE("a report keeps the framed square and a preview of the photo; without one they are not kept") {
    CHECK(p.framed.pixels.empty());
    CHECK(!p.preview);
    options.report = "report.html";  // only read as "a report is wanted"; score_image writes nothing
    const ScoredPhoto q = one_row(score_image(photo, model, &detector, options));
    CHECK(q.framed.pixels == frame.crop.pixels);
    REQUIRE(q.preview);
    CHECK(q.preview->pixels == photo.pixels);  // 200 x 120 fits the preview as is
    CHECK(q.preview_scale == 1.0);
    CHECK(q.score == p.score);
  }
  SUBCASE("--explain adds a Grad-CAM map over the crop") {
    options.explain = true;
    const ScoredPhoto q = one_row(score_image(photo, model, &detector, options));
    CHECK(q.score == p.score);
    CHECK(q.heat_height == 2);  // 64 / 32
    CHECK(q.heat_width == 2);
    REQUIRE(q.heat.size() == 4);
    for (float v : q.heat) CHECK((v >= 0.0f && v <= 1.0f));
    CHECK(Autograd::tape_size() == 0);
  }
}

TEST_CASE("score: no face falls back to the centred square with a warning, --no-face-crop scores the frame") {
  TempDir dir;
  const ScoringModel model = load_scoring_model(save_model(dir));
  const FaceDetector detector(kWeights);
  const Image flat = make_image(90, 150, 0.6f);
  ScoreOptions options;
  const ScoredPhoto p = one_row(score_image(flat, model, &detector, options));
  CHECK(p.framing == "centre");
  CHECK(p.faces_found == 0);
  CHECK_FALSE(p.has_box);
  CHECK(p.crop_box.width == doctest::Approx(90));
  REQUIRE(p.warnings.size() == (outside_score_scale(p.score) ? 2u : 1u));
  CHECK(p.warnings[0].find("no face") != std::string::npos);

  options.face_crop = false;
  const ScoredPhoto q = one_row(score_image(two_faces(), model, nullptr, options));
  CHECK(q.framing == "frame");
  CHECK(q.faces_found == -1);
  // What the network saw of the 200 x 120 frame: the shorter side to 72, the centre 64: a centred
  // square of 120 * 64 / 72 pixels.
  CHECK(q.crop_box.width == doctest::Approx(120.0 * 64 / 72));
  CHECK(q.crop_box.x == doctest::Approx((200 - 120.0 * 64 / 72) / 2));
  CHECK(q.crop_box.y == doctest::Approx((120 - 120.0 * 64 / 72) / 2));
  CHECK(q.score == forward(model, evaluation_view(two_faces(), AugmentConfig{72, 64, false, false})));
}

TEST_CASE("score: the command ranks every photo, writes --out and --report, and a broken file is a row") {
  TempDir dir;
  const std::string model = save_model(dir);
  std::filesystem::create_directories(dir.file("photos"));
  write_png(dir.file("photos/two_faces.png"), two_faces());
  write_png(dir.file("photos/flat.png"), make_image(80, 80, 0.3f));
  {
    std::ofstream(dir.file("photos/broken.jpg")) << "this is not a JPEG";
    std::ofstream(dir.file("photos/empty.png")).flush();  // zero bytes
    const std::vector<uint8_t> png = encode_png(two_faces());
    std::ofstream(dir.file("photos/truncated.png"), std::ios::binary)
        .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size() / 2));
  }
  const std::string out = dir.file("scores.json"), report = dir.file("report.html");
  test::Run r = test::run("score --quiet --model " + model + " " + dir.file("photos") + " --format json --out " +
                          out + " --report " + report + " --tta");
  INFO(r.output);
  CHECK(r.status == 1);  // three photos failed
  const nlohmann::json j = parse_file(out);
  REQUIRE(j["photos"].size() == 5);
  // Scored photos first, by score; failures after, each naming its file.
  CHECK(j["photos"][0]["error"].is_null());
  CHECK(j["photos"][1]["error"].is_null());
  CHECK(j["photos"][0]["score"].get<double>() >= j["photos"][1]["score"].get<double>());
  int failures = 0;
  for (const auto& p : j["photos"])
    if (!p["error"].is_null()) {
      ++failures;
      const std::string error = p["error"];
      CHECK((error.find("broken.jpg") != std::string::npos || error.find("truncated.png") != std::string::npos ||
             error.find("empty.png") != std::string::npos));
    }
  CHECK(failures == 3);
  std::ifstream html(report);
  REQUIRE(html.good());
  const std::string page((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  CHECK(page.find("two_faces") != std::string::npos);
  CHECK(page.find("flat") != std::string::npos);

  SUBCASE("only good photos: exit 0, the table on stdout, deterministic") {
    std::filesystem::remove(dir.file("photos/broken.jpg"));
    std::filesystem::remove(dir.file("photos/truncated.png"));
    std::filesystem::remove(dir.file("photos/empty.png"));
    test::Run a = test::run("score --quiet --model " + model + " " + dir.file("photos"));
    test::Run b = test::run("score --quiet --model " + model + " " + dir.file("photos/*.png"));
    CHECK(a.status == 0);
    CHECK(a.output.find("rank") != std::string::npos);
    CHECK(a.output.find("two_faces") != std::string::npos);
    CHECK(a.output == b.output);
    test::Run csv = test::run("score --quiet --format csv --model " + model + " " + dir.file("photos/two_faces.png"));
    CHECK(csv.status == 0);
    CHECK(csv.output.rfind("rank,name,", 0) == 0);
  }
}

// The lines on stderr while photos are scored: a count that accounts for every argument, and columns
// that line up whatever the names' lengths.
TEST_CASE("score: the progress lines count every argument and keep their columns") {
  TempDir dir;
  const std::string model = save_model(dir);
  write_png(dir.file("a.png"), two_faces());
  write_png(dir.file("a_much_longer_photo_name.png"), make_image(80, 80, 0.3f));
  const test::Run r = test::run("score --format csv --out " + dir.file("out.csv") + " --model " + model + " " +
                                dir.file("a.png") + " " + dir.file("a_much_longer_photo_name.png") + " " +
                                dir.file("missing.png"));
  INFO(r.output);
  CHECK(r.status == 1);  // the missing photo
  CHECK(r.output.find("hotlap score: 2 photos, and 1 argument naming none (listed with the results)\n  model: ") !=
        std::string::npos);
  // "  NAME  FRAMING  SCORE  (N faces found)": the framing starts in one column on every line.
  std::vector<size_t> framing_at;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    for (const char* framing : {" chosen ", " face ", " centre "})
      if (line.rfind("  a", 0) == 0 && line.find(framing) != std::string::npos) {
        framing_at.push_back(line.find_first_not_of(' ', line.find(' ', 2)));
        CHECK((line.find("(1 face found)") != std::string::npos || line.find(" faces found)") != std::string::npos));
        break;
      }
  REQUIRE(framing_at.size() == 2);
  CHECK(framing_at[0] == framing_at[1]);
}

TEST_CASE("score: a score off the 1-5 scale is flagged in the table, CSV and JSON, with a warning") {
  TempDir dir;
  manual_seed(5);
  auto net = resnet::make_resnet({18, 1, 8});
  for (auto& [name, t] : net->named_parameters())
    if (name == "fc.bias") t.f32()[0] = -40.0f;  // far below 1 whatever the features
  CheckpointInfo info;
  info.arch = "resnet18";
  info.extra = {{"input.resize", "72"}, {"input.crop", "64"}, {"input.whole_image", "0"}, {"pearson", "0.31"}};
  const std::string model = dir.file("low.safetensors");
  save_checkpoint(model, *net, nullptr, info);
  write_png(dir.file("two_faces.png"), two_faces());

  test::Run table = test::run("score --quiet --model " + model + " " + dir.file("two_faces.png"));
  INFO(table.output);
  CHECK(table.status == 0);
  CHECK(table.output.find("!  ") != std::string::npos);  // the score cell is marked
  CHECK(table.output.find("score outside the 1-5 scale") != std::string::npos);
  test::Run csv = test::run("score --quiet --format csv --model " + model + " " + dir.file("two_faces.png"));
  CHECK(csv.output.find(",0.00,1,chosen,") != std::string::npos);  // percentile 0, outside_scale 1
  test::Run json = test::run("score --quiet --format json --model " + model + " " + dir.file("two_faces.png"));
  const auto j = nlohmann::json::parse(json.output);
  CHECK(j["photos"][0]["outside_scale"] == true);
  CHECK(j["photos"][0]["score"].get<double>() < 1.0);
  // The model recorded a held-out Pearson correlation of 0.31: every output says it is weak.
  CHECK(j["model_note"].get<std::string>().find("Pearson correlation is 0.31") != std::string::npos);
  test::Run noisy = test::run("score --model " + model + " " + dir.file("two_faces.png"));
  CHECK(noisy.output.find("note: this model's held-out Pearson correlation is 0.31") != std::string::npos);
}

TEST_CASE("score: --out's extension picks the format, and photos sharing a name are told apart, crops too") {
  TempDir dir;
  const std::string model = save_model(dir);
  std::filesystem::create_directories(dir.file("a"));
  std::filesystem::create_directories(dir.file("b"));
  write_png(dir.file("a/face.png"), two_faces());
  write_png(dir.file("b/face.png"), make_image(60, 60, 0.4f));
  test::Run r = test::run("score --quiet --model " + model + " " + dir.file("a") + " " + dir.file("b") + " --out " +
                          dir.file("scores.json") + " --crops " + dir.file("crops"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const nlohmann::json j = parse_file(dir.file("scores.json"));  // JSON, from the extension
  REQUIRE(j["photos"].size() == 2);
  std::set<std::string> names = {j["photos"][0]["name"], j["photos"][1]["name"]};
  CHECK(names == std::set<std::string>{"a/face.png", "b/face.png"});
  CHECK(std::filesystem::exists(dir.file("crops/a_face_png.png")));
  CHECK(std::filesystem::exists(dir.file("crops/b_face_png.png")));
}

TEST_CASE("score: --precision bf16 scores the model in bf16 and still finds the faces in fp32") {
  TempDir dir;
  write_png(dir.file("two_faces.png"), two_faces());
  const std::string model = save_model(dir);
  test::Run fp32 = test::run("score --quiet --format json --model " + model + " " + dir.file("two_faces.png"));
  test::Run bf16 =
      test::run("score --quiet --format json --precision bf16 --model " + model + " " + dir.file("two_faces.png"));
  INFO(bf16.output);
  REQUIRE(bf16.status == 0);
  const auto a = nlohmann::json::parse(fp32.output)["photos"][0], b = nlohmann::json::parse(bf16.output)["photos"][0];
  CHECK(b["faces"] == 2);
  CHECK(b["box"] == a["box"]);  // the same detection
  CHECK(b["score"].get<double>() == doctest::Approx(a["score"].get<double>()).epsilon(0.05));
  CHECK(kernels::math_mode() == kernels::MathMode::fp32);
}

TEST_CASE("score: a model that is not a regressor, a missing model and an empty folder are clear errors") {
  TempDir dir;
  write_png(dir.file("a.png"), make_image(40, 40, 0.5f));
  const std::string out = dir.file("out.csv");
  test::Run r = test::run("score --quiet --model " + save_model(dir, 3) + " " + dir.file("a.png") + " --out " + out);
  CHECK(r.status == 1);
  CHECK(r.output.find("classifier.safetensors") != std::string::npos);
  CHECK(r.output.find("3 outputs") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));

  // Results that cannot be written (stdout on a full disk) are a failure, not a silent success.
  if (std::filesystem::exists("/dev/full")) {
    r = test::run("score --quiet --model " + save_model(dir) + " " + dir.file("a.png") + " > /dev/full");
    CHECK(r.status == 1);
  }

  // A pipe or a device named as a photo or a model is refused at once (reading one would never end).
  REQUIRE(mkfifo(dir.file("pipe.png").c_str(), 0600) == 0);
  REQUIRE(mkfifo(dir.file("pipe.safetensors").c_str(), 0600) == 0);
  std::filesystem::create_symlink("/dev/zero", dir.file("zero.png"));
  r = test::run("score --quiet --format csv --model " + save_model(dir) + " " + dir.file("pipe.png") + " " +
                dir.file("zero.png") + " " + dir.file("a.png"));
  CHECK(r.status == 1);
  CHECK(r.output.find(dir.file("pipe.png") + ": is not a regular file") != std::string::npos);
  CHECK(r.output.find(dir.file("zero.png") + ": is not a regular file") != std::string::npos);
  CHECK(r.output.find(",a,") != std::string::npos);  // the good photo is still scored
  r = test::run("score --quiet --model " + dir.file("pipe.safetensors") + " " + dir.file("a.png"));
  CHECK(r.status == 1);
  CHECK(r.output.find(dir.file("pipe.safetensors") + ": is not a regular file") != std::string::npos);

  // Outputs are checked before any photo is scored; none may replace an input.
  const std::string good = save_model(dir);
  r = test::run("score --quiet --model " + good + " " + dir.file("a.png") + " --out " + dir.file("no/such/x.csv"));
  CHECK(r.status == 1);
  CHECK(r.output.find("the folder " + dir.file("no/such") + " does not exist") != std::string::npos);
  r = test::run("score --quiet --model " + good + " " + dir.file("a.png") + " --out " + good);
  CHECK(r.status == 1);
  CHECK(r.output.find("would overwrite an input") != std::string::npos);
  r = test::run("score --quiet --model " + good + " " + dir.file("a.png") + " --report " + dir.file("./a.png"));
  CHECK(r.status == 1);
  CHECK(r.output.find("would overwrite an input") != std::string::npos);
  CHECK(read_bytes(dir.file("a.png")).size() > 0);

  r = test::run("score --quiet --model " + dir.file("nope.safetensors") + " " + dir.file("a.png"));
  CHECK(r.status == 1);
  CHECK(r.output.find("nope.safetensors") != std::string::npos);

  std::filesystem::create_directories(dir.file("empty"));
  r = test::run("score --quiet --model " + save_model(dir) + " " + dir.file("empty"));
  CHECK(r.status == 1);
  CHECK(r.output.find("no images") != std::string::npos);

  // In a folder, what is named like a photo and is not one is said, one line per reason.
  std::filesystem::create_directories(dir.file("odd"));
  write_png(dir.file("odd/b.png"), make_image(40, 40, 0.5f));
  std::filesystem::create_symlink(dir.file("nowhere.png"), dir.file("odd/dangling.png"));
  std::filesystem::create_symlink(dir.file("nowhere.jpg"), dir.file("odd/dangling.jpg"));
  REQUIRE(mkfifo(dir.file("odd/pipe.png").c_str(), 0600) == 0);
  r = test::run("score --quiet --format csv --model " + good + " " + dir.file("odd"));
  CHECK(r.status == 0);
  CHECK(r.output.find("skipped 2 files, a link to nothing: dangling.jpg, dangling.png") != std::string::npos);
  CHECK(r.output.find("skipped 1 file, not a regular file (a pipe, a device or a socket): pipe.png") !=
        std::string::npos);
  CHECK(r.output.find(",b,") != std::string::npos);

  // A name of any length gives lines of a readable length.
  const std::string long_name = dir.file(std::string(5000, 'n') + ".png");
  r = test::run("score --model " + good + " " + long_name);
  CHECK(r.status == 1);
  CHECK(r.output.find("bytes left out") != std::string::npos);
  CHECK(r.output.size() < 3000);
}

}  // namespace hotlap

namespace hotlap {

TEST_CASE("score: a photo scores the same on the GPU as on the CPU, within the printed precision") {
  HOTLAP_SKIP_WITHOUT_CUDA_DEVICE();
  test::TempDir dir;
  const std::string path = save_model(dir);
  const ScoringModel on_cpu = load_scoring_model(path);
  const ScoringModel on_gpu = load_scoring_model(path);
  on_gpu.net->to(Device::cuda);
  const FaceDetector detector(kWeights);
  ScoreOptions options;
  options.tta = true;
  const ScoredPhoto a = one_row(score_image(two_faces(), on_cpu, &detector, options));
  const ScoredPhoto b = one_row(score_image(two_faces(), on_gpu, &detector, options));
  CHECK(std::abs(a.score - b.score) < 5e-4);  // the table prints two decimals
  CHECK(a.crop.pixels == b.crop.pixels);
}

}  // namespace hotlap
