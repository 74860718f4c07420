// The choice of the face to score (apps/score/face/face_choice.h): the landmark geometry a face must have, the
// order (plausible, confident, large), the doubtful cases and their warnings; then end to end on
// generated pictures in which the detector finds a larger box than the real face that it only half
// believes, and on a large photo searched at the detector's working size.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "apps/score/face/face_choice.h"
#include "apps/score/face/face_detect.h"
#include "apps/data/image.h"
#include "apps/score/score.h"
#include "nn/files/checkpoint.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"
#include "apps/score_fixtures.h"
#include "test_util.h"

namespace hotlap {
namespace {

const std::string& kWeights = test::kMtcnnWeights;

// A frontal face in a box of side `side` at (x, y), rolled by `roll` radians about the box centre:
// eyes 0.4 of the side apart, mouth 1.1 eye distances below them, as MTCNN places them on real faces.
DetectedFace frontal(double x, double y, double side, double probability = 0.999, double roll = 0) {
  DetectedFace f;
  f.x1 = x, f.y1 = y, f.x2 = x + side, f.y2 = y + side;
  f.probability = probability;
  const double cx = x + side / 2, cy = y + side / 2, d = 0.4 * side;
  // (dx, dy) from the centre on an upright face, in eye distances.
  const double at[5][2] = {{-0.5, -0.35}, {0.5, -0.35}, {0, 0.2}, {-0.4, 0.75}, {0.4, 0.75}};
  for (int k = 0; k < 5; ++k) {
    const double u = at[k][0] * d, v = at[k][1] * d;
    f.landmarks[static_cast<size_t>(k)] = {cx + u * std::cos(roll) - v * std::sin(roll),
                                           cy + u * std::sin(roll) + v * std::cos(roll)};
  }
  return f;
}

}  // namespace

TEST_CASE("face choice: real faces' landmarks pass, whatever the roll, turn or expression") {
  CHECK(face_geometry_problem(frontal(10, 10, 100)) == "");
  for (double degrees : {-60.0, -25.0, 15.0, 45.0}) {
    INFO("roll ", degrees);
    CHECK(face_geometry_problem(frontal(10, 10, 100, 0.99, degrees * M_PI / 180)) == "");
  }
  DetectedFace turned = frontal(10, 10, 100);  // three-quarter view: eyes closer, nose to one side
  turned.landmarks[0][0] += 12;
  turned.landmarks[2][0] += 15;
  turned.landmarks[3][0] += 8;
  CHECK(face_geometry_problem(turned) == "");
  DetectedFace shouting = frontal(10, 10, 100);  // mouth open: corners lower and wider
  shouting.landmarks[3] = {shouting.landmarks[3][0] - 6, shouting.landmarks[3][1] + 14};
  shouting.landmarks[4] = {shouting.landmarks[4][0] + 6, shouting.landmarks[4][1] + 14};
  CHECK(face_geometry_problem(shouting) == "");
}

TEST_CASE("face choice: landmarks that describe no face are named") {
  DetectedFace upside_down = frontal(10, 10, 100);
  for (auto& p : upside_down.landmarks) p[1] = 120 - p[1];  // mirrored top to bottom
  CHECK(face_geometry_problem(upside_down) == "the mouth is above the eyes");

  DetectedFace level = frontal(10, 10, 100);
  level.landmarks[3][1] = level.landmarks[4][1] = level.landmarks[0][1] + 5;
  level.landmarks[2][1] = level.landmarks[0][1] + 2;
  CHECK(face_geometry_problem(level) == "the mouth is level with the eyes");

  DetectedFace crossed = frontal(10, 10, 100);
  std::swap(crossed.landmarks[3], crossed.landmarks[4]);
  CHECK(face_geometry_problem(crossed) == "the mouth corners are the wrong way round");

  DetectedFace outside = frontal(10, 10, 100);
  outside.landmarks[2] = {300, 60};
  CHECK(face_geometry_problem(outside) == "its landmarks lie outside the box");

  DetectedFace wide_box = frontal(10, 10, 100);  // a box four times wider than the face in it
  wide_box.x1 -= 150, wide_box.x2 += 150;
  CHECK(face_geometry_problem(wide_box) == "the eyes are too close together for the box");

  DetectedFace one_point = frontal(10, 10, 100);
  one_point.landmarks[1] = one_point.landmarks[0];
  CHECK(face_geometry_problem(one_point) == "both eyes are at one point");

  DetectedFace nose_below = frontal(10, 10, 100);
  nose_below.landmarks[2][1] += 60;
  CHECK(face_geometry_problem(nose_below) == "the nose is not between the eyes and the mouth");
}

TEST_CASE("face choice: a larger box whose landmarks are not a face's loses, and the warning names both") {
  DetectedFace chest = frontal(100, 300, 200, 0.999);
  std::swap(chest.landmarks[3], chest.landmarks[4]);
  const std::vector<DetectedFace> faces = {chest, frontal(150, 60, 90, 0.998)};
  const FaceChoice c = choose_faces(faces);
  REQUIRE(c.order.size() == 2);
  CHECK(c.order[0] == 1);
  CHECK(c.implausible[0] == "the mouth corners are the wrong way round");
  CHECK(c.implausible[1] == "");
  CHECK(c.doubt.find("scored the face at 150,60 (90x90, p 0.998)") != std::string::npos);
  CHECK(c.doubt.find("not the larger face at 100,300 (200x200, p 0.999)") != std::string::npos);
  CHECK(c.doubt.find("wrong way round") != std::string::npos);
}

TEST_CASE("face choice: a larger box the detector only half believes loses to a confident face") {
  const std::vector<DetectedFace> faces = {frontal(100, 300, 200, 0.75), frontal(150, 60, 90, 0.9934)};
  const FaceChoice c = choose_faces(faces);
  CHECK(c.order == std::vector<size_t>{1, 0});
  CHECK(c.doubt.find("not the larger face at 100,300") != std::string::npos);
  CHECK(c.doubt.find("probability is below 0.95") != std::string::npos);
}

TEST_CASE("face choice: the clear cases, two subjects, and no plausible face") {
  SUBCASE("one face: nothing to doubt") {
    const FaceChoice c = choose_faces({frontal(10, 10, 100)});
    CHECK(c.order == std::vector<size_t>{0});
    CHECK(c.doubt == "");
  }
  SUBCASE("one box the detector only half believes (a logo on a shirt): scored, and doubted") {
    const FaceChoice c = choose_faces({frontal(10, 10, 30, 0.836)});
    CHECK(c.order == std::vector<size_t>{0});
    CHECK(c.doubt == "1 face found: scored the face at 10,10 (30x30, p 0.836), whose probability is below 0.95: "
                     "it may not be a face");
  }
  SUBCASE("no confident face among several: the largest, doubted") {
    const FaceChoice c = choose_faces({frontal(10, 10, 30, 0.75), frontal(100, 10, 50, 0.80)});
    CHECK(c.order == std::vector<size_t>{1, 0});
    CHECK(c.doubt.find("whose probability is below 0.95") != std::string::npos);
  }
  SUBCASE("a portrait's sitter and a small face behind: the sitter, no doubt") {
    const FaceChoice c = choose_faces({frontal(400, 20, 30, 0.97), frontal(100, 60, 200)});
    CHECK(c.order == std::vector<size_t>{1, 0});
    CHECK(c.doubt == "");
  }
  SUBCASE("two confident faces of similar size: the larger, with a warning naming the other") {
    const FaceChoice c = choose_faces({frontal(10, 10, 100), frontal(200, 10, 110)});
    CHECK(c.order == std::vector<size_t>{1, 0});
    CHECK(c.doubt.find("of similar size") != std::string::npos);
    CHECK(c.doubt.find("not the face at 10,10 (100x100") != std::string::npos);
  }
  SUBCASE("no plausible face: the largest confident one, flagged") {
    DetectedFace a = frontal(10, 10, 100, 0.99), b = frontal(200, 10, 150, 0.8);
    std::swap(a.landmarks[0], a.landmarks[1]);  // eyes swapped: the mouth is then "above" them
    std::swap(b.landmarks[0], b.landmarks[1]);
    const FaceChoice c = choose_faces({a, b});
    CHECK(c.order == std::vector<size_t>{0, 1});
    CHECK(c.doubt.find("none with a face's landmarks") != std::string::npos);
  }
  SUBCASE("equal faces keep the detector's order") {
    const FaceChoice c = choose_faces({frontal(10, 10, 100), frontal(200, 10, 100)});
    CHECK(c.order == std::vector<size_t>{0, 1});
  }
}

// ---- end to end, on generated pictures -------------------------------------------------------------

namespace {

// Face-like figures on a noisy blue background, drawn the way tools/mtcnn_detect_reference.py draws
// its test picture (a skin-toned ellipse, darker eyes and brows, a nose and a red mouth), with the
// proportions as parameters: a figure with a stretched chin and a low mouth is something MTCNN
// boxes with only moderate belief, like a pattern on clothing.
struct Figure {
  double cx, cy, s;           // centre and scale (1: an ellipse of 60 x 80 pixels)
  double half_height = 40;    // the ellipse's vertical half-axis at scale 1
  double mouth_below = 20;    // the mouth's centre below the figure's centre at scale 1
};

class Canvas {
 public:
  Canvas(int64_t h, int64_t w) : img_(make_image(h, w)) {
    uint64_t state = 7;
    for (int64_t i = 0; i < h * w; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const float noise = static_cast<float>((state >> 40) % 51) - 25.0f;  // -25..25, one value per pixel
      const float base[3] = {60, 90, 120};
      for (int c = 0; c < 3; ++c) img_.pixels[static_cast<size_t>(i * 3 + c)] = (base[c] + noise) / 255.0f;
    }
  }
  void draw(const Figure& f) {
    for (int64_t y = 0; y < img_.height; ++y)
      for (int64_t x = 0; x < img_.width; ++x) {
        const double u = (static_cast<double>(x) - f.cx) / (30 * f.s);
        const double v = (static_cast<double>(y) - f.cy) / (f.half_height * f.s);
        if (u * u + v * v <= 1) set(x, y, {215, 170, 140}, 1);
      }
    for (double dx : {-12.0, 12.0}) {
      blob(f.cx + dx * f.s, f.cy - 8 * f.s, 6 * f.s, 3.5 * f.s, {40, 30, 30});
      blob(f.cx + dx * f.s, f.cy - 17 * f.s, 8 * f.s, 1.8 * f.s, {90, 60, 40});
    }
    blob(f.cx, f.cy + 4 * f.s, 3 * f.s, 6 * f.s, {190, 140, 115});
    blob(f.cx, f.cy + f.mouth_below * f.s, 10 * f.s, 3 * f.s, {150, 60, 60});
  }
  const Image& image() const { return img_; }

 private:
  void set(int64_t x, int64_t y, const std::array<float, 3>& rgb, double weight) {
    for (int c = 0; c < 3; ++c) {
      float& p = img_.pixels[static_cast<size_t>((y * img_.width + x) * 3 + c)];
      p = static_cast<float>((1 - weight) * p + weight * rgb[static_cast<size_t>(c)] / 255.0);
    }
  }
  void blob(double px, double py, double sx, double sy, const std::array<float, 3>& rgb) {
    for (int64_t y = 0; y < img_.height; ++y)
      for (int64_t x = 0; x < img_.width; ++x) {
        const double u = (static_cast<double>(x) - px) / sx, v = (static_cast<double>(y) - py) / sy;
        const double m = std::exp(-(u * u + v * v));
        if (m > 1e-4) set(x, y, rgb, m);
      }
  }
  Image img_;
};

// A small, well-formed face at the top left and a large, stretched figure with a low mouth.
Image face_and_larger_doubtful_figure() {
  Canvas canvas(320, 320);
  canvas.draw({70, 60, 0.6});
  canvas.draw({200, 200, 2.6, 50, 38});
  return canvas.image();
}

using test::save_model;

}  // namespace

TEST_CASE("face choice: on a picture where the detector finds a larger, doubtful box, the real face is scored") {
  const Image photo = face_and_larger_doubtful_figure();
  const FaceDetector detector(kWeights);
  const std::vector<DetectedFace> faces = detector.detect(photo);
  REQUIRE(faces.size() == 2);
  // What the picture is for: the detector's larger box is the figure, and it believes it less.
  const DetectedFace& figure = faces[0];
  const DetectedFace& face = faces[1];
  INFO("figure p ", figure.probability, ", face p ", face.probability);
  REQUIRE(figure.area() > 4 * face.area());
  REQUIRE(figure.probability < kConfidentFace - 0.05);
  REQUIRE(face.probability > kConfidentFace + 0.03);
  CHECK(face.x1 < 100);  // the small figure's box is around (70, 60)
  CHECK(face.y1 < 100);

  test::TempDir dir;
  const ScoringModel model = load_scoring_model(save_model(dir), {});
  ScoreOptions options;
  std::vector<ScoredPhoto> rows = score_image(photo, model, &detector, options);
  REQUIRE(rows.size() == 1);
  const ScoredPhoto& p = rows[0];
  CHECK(p.framing == "chosen");
  CHECK(p.faces_found == 2);
  CHECK(p.face_box.x == doctest::Approx(face.x1));
  CHECK(p.face_box.width == doctest::Approx(face.width()));
  REQUIRE(p.candidates.size() == 2);
  CHECK(p.candidates[0].scored);
  CHECK(!p.candidates[1].scored);
  CHECK(p.candidates[1].box.width == doctest::Approx(figure.width()));
  REQUIRE(p.warnings.size() >= 1);
  CHECK(p.warnings[0].rfind("doubtful choice: 2 faces found: scored " + describe_face(face), 0) == 0);
  CHECK(p.warnings[0].find(describe_face(figure).substr(4)) != std::string::npos);

  SUBCASE("--all-faces: one row per face, in the choice order") {
    options.all_faces = true;
    rows = score_image(photo, model, &detector, options);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].face_number == 1);
    CHECK(rows[1].face_number == 2);
    CHECK(rows[0].face_box.x == doctest::Approx(face.x1));
    CHECK(rows[1].face_box.x == doctest::Approx(figure.x1));
    CHECK(rows[0].candidates[0].scored);
    CHECK(rows[1].candidates[1].scored);
    CHECK(rows[0].score != rows[1].score);  // two different crops
  }
  SUBCASE("--all-faces with a report: the rows share one preview of the photo") {
    options.all_faces = true;
    options.report = "report.html";  // only read as "a report is wanted"
    rows = score_image(photo, model, &detector, options);
    REQUIRE(rows.size() == 2);
    REQUIRE(rows[0].has_preview());
    CHECK(rows[0].preview == rows[1].preview);
  }
}

TEST_CASE("score: a face of few pixels is scored with a warning that its crop is mostly blur") {
  Canvas canvas(120, 120);
  canvas.draw({60, 60, 0.4});  // an ellipse 24 pixels wide
  ScoreOptions options;
  options.detector.min_face = 12;
  const FaceDetector detector(kWeights, options.detector);
  test::TempDir dir;
  const ScoringModel model = load_scoring_model(save_model(dir), {});
  const std::vector<ScoredPhoto> rows = score_image(canvas.image(), model, &detector, options);
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0].has_box);
  INFO("box width ", rows[0].face_box.width);
  REQUIRE(rows[0].face_box.width < 32);
  bool warned = false;
  for (const std::string& w : rows[0].warnings) warned |= w.find("mostly blur") != std::string::npos;
  CHECK(warned);
}

TEST_CASE("score: a photo stored sideways (its orientation tag lost) is searched turned, and scored upright") {
  Canvas canvas(200, 160);
  canvas.draw({80, 100, 1.0});  // one face, 60 x 80, upright
  const Image upright = canvas.image();
  ScoreOptions options;
  const FaceDetector detector(kWeights, options.detector);
  test::TempDir dir;
  const ScoringModel model = load_scoring_model(save_model(dir), {});
  const std::vector<ScoredPhoto> straight = score_image(upright, model, &detector, options);
  REQUIRE(straight.size() == 1);
  REQUIRE(straight[0].has_box);
  REQUIRE(straight[0].candidates[0].probability >= kConfidentFace);  // what the picture is for
  CHECK(straight[0].turned_degrees == 0);
  for (const std::string& w : straight[0].warnings) CHECK(w.find("turned") == std::string::npos);

  // Stored a quarter turn either way, or upside down: no sure face as it is; turned back, the same
  // pixels as the upright photo, so the same box and the same score, with a warning saying so.
  for (const auto& [orientation, back, words] : {std::tuple{6, 270, "90 degrees anticlockwise"},
                                                 std::tuple{8, 90, "90 degrees clockwise"},
                                                 std::tuple{3, 180, "upside down"}}) {
    CAPTURE(orientation);
    const Image stored = apply_orientation(upright, orientation);
    const std::vector<ScoredPhoto> rows = score_image(stored, model, &detector, options);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].turned_degrees == back);
    CHECK(rows[0].score == straight[0].score);
    CHECK(rows[0].face_box.x == straight[0].face_box.x);
    CHECK(rows[0].face_box.y == straight[0].face_box.y);
    REQUIRE(rows[0].warnings.size() == straight[0].warnings.size() + 1);  // the same ones after this
    CHECK(rows[0].warnings[0].find(std::string("no face upright: found one with the photo turned ") + words) == 0);

    // --upright: the photo as it is, whatever is (or is not) found in it.
    ScoreOptions as_is = options;
    as_is.try_turns = false;
    const std::vector<ScoredPhoto> kept = score_image(stored, model, &detector, as_is);
    CHECK(kept[0].turned_degrees == 0);
    CHECK(kept[0].score != straight[0].score);
  }

  // A report's preview is the turned photo, in which the boxes lie.
  options.report = "report.html";  // only read as "a report is wanted"
  const std::vector<ScoredPhoto> reported = score_image(apply_orientation(upright, 6), model, &detector, options);
  REQUIRE(reported[0].has_preview());
  CHECK(reported[0].preview->pixels == upright.pixels);  // 200 x 160 fits the preview as is
}

TEST_CASE("face detect: a photo larger than the working size is searched on a scaled copy, boxes in photo pixels") {
  // The same picture drawn at 1x and 4x (1280 x 1280): searched at a working size of 320 x 320
  // pixels, the large one must give the small one's boxes times four.
  Canvas small(320, 320), large(1280, 1280);
  small.draw({160, 150, 1.2});
  large.draw({640, 600, 4.8});
  FaceDetectorOptions options;
  options.working_pixels = 320 * 320;
  const FaceDetector detector(kWeights, options);
  const auto a = detector.detect(small.image());
  const auto b = detector.detect(large.image());
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  CHECK(b[0].x1 / 4 == doctest::Approx(a[0].x1).epsilon(0.03));
  CHECK(b[0].y1 / 4 == doctest::Approx(a[0].y1).epsilon(0.03));
  CHECK(b[0].width() / 4 == doctest::Approx(a[0].width()).epsilon(0.03));
  for (size_t k = 0; k < 5; ++k) {
    CHECK(b[0].landmarks[k][0] / 4 == doctest::Approx(a[0].landmarks[k][0]).epsilon(0.03));
    CHECK(b[0].landmarks[k][1] / 4 == doctest::Approx(a[0].landmarks[k][1]).epsilon(0.03));
  }
  CHECK(detector.smallest_face_searched(320, 320) == 20);           // the default --min-face
  CHECK(detector.smallest_face_searched(1280, 1280) == doctest::Approx(48));  // 12 px at 1/4
  // A long, thin photo of few pixels is searched as it is: its faces keep their size.
  Canvas strip(80, 1200);
  strip.draw({900, 40, 0.7});
  const auto in_strip = detector.detect(strip.image());
  REQUIRE(in_strip.size() == 1);
  CHECK(in_strip[0].x1 > 850);
  CHECK(detector.smallest_face_searched(80, 1200) == 20);
  FaceDetectorOptions too_small;
  too_small.working_pixels = 40 * 40;
  CHECK_THROWS_WITH_AS(FaceDetector(kWeights, too_small), doctest::Contains("working size"), Error);
}

}  // namespace hotlap
