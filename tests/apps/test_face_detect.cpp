// The MTCNN cascade against facenet-pytorch's detect_face on the same picture
// (tests/data/mtcnn_detect_golden.safetensors, tools/mtcnn_detect_reference.py: a generated picture
// with two face-like figures), plus the pieces it is made of: non-maximum suppression and the
// area resampler of the image pyramid.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "apps/score/face/face_detect.h"
#include "apps/data/image.h"
#include "kernels/error.h"
#include "nn/files/serialize.h"

namespace {

using hotlap::DetectedFace;
using hotlap::FaceDetector;
using hotlap::Image;

const std::string kWeights = std::string(HOTLAP_TEST_DATA_DIR) + "/../../models/mtcnn.safetensors";
const std::string kGolden = std::string(HOTLAP_TEST_DATA_DIR) + "/mtcnn_detect_golden.safetensors";

Image image_from_golden(const hotlap::Tensor& t) {
  Image img = hotlap::make_image(t.dim(0), t.dim(1));
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = t.f32()[i] / 255.0f;
  return img;
}

}  // namespace

TEST_CASE("face detect: boxes, probabilities and landmarks match facenet-pytorch's detect_face") {
  auto golden = hotlap::read_tensors(kGolden);
  const Image image = image_from_golden(golden.at("image"));
  FaceDetector detector(kWeights);
  const std::vector<DetectedFace> faces = detector.detect(image);
  const hotlap::Tensor& boxes = golden.at("boxes");
  const hotlap::Tensor& probs = golden.at("probs");
  const hotlap::Tensor& points = golden.at("points");
  REQUIRE(boxes.dim(0) == 2);  // the picture has two figures, the golden found both
  REQUIRE(faces.size() == static_cast<size_t>(boxes.dim(0)));
  for (size_t i = 0; i < faces.size(); ++i) {
    const DetectedFace& f = faces[i];
    const float* b = boxes.f32() + i * 4;
    INFO("face ", i, ": hotlap (", f.x1, ", ", f.y1, ", ", f.x2, ", ", f.y2, ") golden (", b[0], ", ", b[1], ", ",
         b[2], ", ", b[3], ")");
    // Same crops (the integer bounds agree), so the boxes agree to float rounding.
    CHECK(std::abs(f.x1 - b[0]) < 1e-2);
    CHECK(std::abs(f.y1 - b[1]) < 1e-2);
    CHECK(std::abs(f.x2 - b[2]) < 1e-2);
    CHECK(std::abs(f.y2 - b[3]) < 1e-2);
    CHECK(std::abs(f.probability - probs.f32()[i]) < 1e-4);
    for (int k = 0; k < 5; ++k) {
      CHECK(std::abs(f.landmarks[k][0] - points.f32()[(i * 5 + k) * 2 + 0]) < 1e-2);
      CHECK(std::abs(f.landmarks[k][1] - points.f32()[(i * 5 + k) * 2 + 1]) < 1e-2);
    }
  }
  CHECK(faces[0].area() > faces[1].area());  // largest first
  // The figures were drawn with their centres at (70, 62) and (160, 50), the first larger.
  CHECK((faces[0].x1 < 70 && 70 < faces[0].x2 && faces[0].y1 < 62 && 62 < faces[0].y2));
  CHECK((faces[1].x1 < 160 && 160 < faces[1].x2 && faces[1].y1 < 50 && 50 < faces[1].y2));
  // Landmarks in order: eyes above the nose above the mouth, image-left before image-right.
  for (const DetectedFace& f : faces) {
    CHECK(f.landmarks[0][0] < f.landmarks[1][0]);
    CHECK(f.landmarks[3][0] < f.landmarks[4][0]);
    CHECK(f.landmarks[2][1] > f.landmarks[0][1]);
    CHECK(f.landmarks[3][1] > f.landmarks[2][1]);
  }
}

TEST_CASE("face detect: nothing in a flat picture, nothing in one smaller than P-Net's window") {
  FaceDetector detector(kWeights);
  CHECK(detector.detect(hotlap::make_image(90, 120, 0.4f)).empty());
  CHECK(detector.detect(hotlap::make_image(11, 40, 0.4f)).empty());
}

TEST_CASE("face detect: a figure moved by whole pixels moves its box by the same amount") {
  auto golden = hotlap::read_tensors(kGolden);
  const Image image = image_from_golden(golden.at("image"));
  // Put the picture into a larger grey canvas at (dy, dx) = (20, 36): the pyramid then samples
  // different pixels, so the boxes agree only approximately, but they must follow the shift.
  Image big = hotlap::make_image(image.height + 40, image.width + 72, 0.45f);
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c) big.at(y + 20, x + 36, c) = image.at(y, x, c);
  FaceDetector detector(kWeights);
  auto a = detector.detect(image);
  auto b = detector.detect(big);
  REQUIRE(a.size() >= 1);
  REQUIRE(b.size() >= 1);
  const double tol = 0.15 * a[0].width();
  CHECK(std::abs((b[0].x1 - 36) - a[0].x1) < tol);
  CHECK(std::abs((b[0].y1 - 20) - a[0].y1) < tol);
  CHECK(std::abs(b[0].width() - a[0].width()) < tol);
}

TEST_CASE("face detect: bad options and missing weights are clear errors") {
  hotlap::FaceDetectorOptions o;
  o.min_face = 5;
  CHECK_THROWS_WITH_AS(FaceDetector(kWeights, o), doctest::Contains("at least 12"), hotlap::Error);
  o = {};
  o.thresholds[1] = 1.5;
  CHECK_THROWS_AS(FaceDetector(kWeights, o), hotlap::Error);
  CHECK_THROWS_WITH_AS(FaceDetector("/nonexistent/mtcnn.safetensors"), doctest::Contains("/nonexistent/"),
                       hotlap::Error);
}

TEST_CASE("face detect: non-maximum suppression") {
  using Box = std::array<double, 4>;
  // b overlaps a with IoU 50/150 = 1/3; c lies inside a (IoU 0.25, but all of c is in a); d is apart.
  std::vector<Box> boxes = {{0, 0, 10, 10}, {5, 0, 15, 10}, {2, 2, 7, 7}, {20, 20, 30, 30}};
  std::vector<double> scores = {0.9, 0.8, 0.95, 0.7};
  SUBCASE("IoU") {
    CHECK(hotlap::non_maximum_suppression(boxes, scores, 0.5, false) == std::vector<size_t>{2, 0, 1, 3});
    CHECK(hotlap::non_maximum_suppression(boxes, scores, 0.3, false) == std::vector<size_t>{2, 0, 3});
    CHECK(hotlap::non_maximum_suppression(boxes, scores, 0.2, false) == std::vector<size_t>{2, 1, 3});
  }
  SUBCASE("intersection over the smaller box (+1 pixel areas)") {
    // c in a: 36/36 = 1 -> c (highest) suppresses a; b vs c: x 5..7 -> 3 * 6 = 18 / 36 = 0.5.
    CHECK(hotlap::non_maximum_suppression(boxes, scores, 0.7, true) == std::vector<size_t>{2, 1, 3});
    CHECK(hotlap::non_maximum_suppression(boxes, scores, 0.4, true) == std::vector<size_t>{2, 3});
  }
  SUBCASE("ties keep the earlier box") {
    std::vector<Box> same = {{0, 0, 10, 10}, {0, 0, 10, 10}};
    CHECK(hotlap::non_maximum_suppression(same, {0.5, 0.5}, 0.5, false) == std::vector<size_t>{0});
  }
  CHECK(hotlap::non_maximum_suppression({}, {}, 0.5, false).empty());
}

TEST_CASE("image: area resampling averages whole boxes like adaptive average pooling") {
  Image img = hotlap::make_image(4, 6);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 6; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<float>(y * 6 + x + c * 100);
  SUBCASE("integer factor: 2x3 blocks") {
    Image out = hotlap::resize_area(img, 2, 2);
    // block (0,0): rows 0-1, cols 0-2: mean of 0,1,2,6,7,8 = 4
    CHECK(out.at(0, 0, 0) == doctest::Approx(4.0));
    CHECK(out.at(1, 1, 2) == doctest::Approx(200 + (15 + 16 + 17 + 21 + 22 + 23) / 6.0));
  }
  SUBCASE("non-integer factor: windows overlap") {
    Image out = hotlap::resize_area(img, 1, 4);
    // column windows for 6 -> 4: [0,2), [1,3), [3,5), [4,6)
    CHECK(out.at(0, 1, 0) == doctest::Approx((1 + 2 + 7 + 8 + 13 + 14 + 19 + 20) / 8.0));
    CHECK(out.at(0, 2, 0) == doctest::Approx((3 + 4 + 9 + 10 + 15 + 16 + 21 + 22) / 8.0));
  }
  SUBCASE("enlarging repeats pixels") {
    Image out = hotlap::resize_area(img, 8, 12);
    CHECK(out.at(7, 11, 1) == doctest::Approx(img.at(3, 5, 1)));
    CHECK(out.at(2, 3, 0) == doctest::Approx(img.at(1, 1, 0)));
  }
  CHECK_THROWS_AS(hotlap::resize_area(img, 0, 3), hotlap::Error);
}
