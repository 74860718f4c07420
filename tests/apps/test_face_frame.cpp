// SCUT-like face framing: the geometry from the landmarks, the similarity-transform sampling, the
// antialiased path for large photos, the fill outside the photo and the centred fallback.
#include <doctest/doctest.h>

#include <cmath>

#include "apps/score/face/face_frame.h"
#include "kernels/error.h"

namespace {

using hotlap::DetectedFace;
using hotlap::FramingOptions;
using hotlap::Image;

constexpr double kPi = 3.14159265358979323846;

// A frontal face: eyes d apart at height ey, mouth corners m below the eye line, around x = cx;
// then every landmark rotated by `degrees` (clockwise on screen: y points down) about (cx, ey).
DetectedFace face_at(double cx, double ey, double d, double m, double degrees = 0) {
  DetectedFace f;
  f.landmarks = {{{cx - d / 2, ey}, {cx + d / 2, ey}, {cx, ey + m / 2}, {cx - d / 3, ey + m}, {cx + d / 3, ey + m}}};
  const double r = degrees * kPi / 180, c = std::cos(r), s = std::sin(r);
  for (auto& p : f.landmarks) {
    const double x = p[0] - cx, y = p[1] - ey;
    p = {cx + c * x - s * y, ey + s * x + c * y};
  }
  f.x1 = cx - d, f.x2 = cx + d, f.y1 = ey - d, f.y2 = ey + 2 * m;
  return f;
}

// A photo with two dark dots on a light background, where `face` has its eyes.
Image photo_with_eyes(int64_t h, int64_t w, const DetectedFace& face, double radius) {
  Image img = hotlap::make_image(h, w, 0.9f);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int e = 0; e < 2; ++e)
        if (std::hypot(static_cast<double>(x) - face.landmarks[e][0], static_cast<double>(y) - face.landmarks[e][1]) <
            radius)
          for (int c = 0; c < 3; ++c) img.at(y, x, c) = 0.0f;
  return img;
}

// The centroid of the dark pixels in the left or right half of the crop.
std::array<double, 2> dark_centroid(const Image& img, bool right_half) {
  double sx = 0, sy = 0, n = 0;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = right_half ? img.width / 2 : 0; x < (right_half ? img.width : img.width / 2); ++x) {
      const double dark = 1.0 - img.at(y, x, 0);
      if (dark < 0.5) continue;
      sx += dark * static_cast<double>(x), sy += dark * static_cast<double>(y), n += dark;
    }
  REQUIRE(n > 0);
  return {sx / n, sy / n};
}

}  // namespace

TEST_CASE("face frame: an upright face: size, centre and where the eyes land") {
  // Eyes 40 apart, mouth 44 below: q = max(2 * 40, 1.8 * 44) = 80.
  const DetectedFace face = face_at(200, 150, 40, 44);
  FramingOptions o;
  o.size = 350;
  const Image photo = photo_with_eyes(400, 400, face, 5);
  const hotlap::FaceFrame f = hotlap::frame_face(photo, face, o);
  CHECK(f.roll_degrees == doctest::Approx(0).epsilon(1e-9));
  CHECK(f.side == doctest::Approx(80 / 0.44));
  CHECK(f.centre[0] == doctest::Approx(200));
  CHECK(f.centre[1] == doctest::Approx(150 + 0.2 * 44));
  CHECK(f.square.width == doctest::Approx(f.side));
  REQUIRE(f.crop.height == 350);
  REQUIRE(f.crop.width == 350);
  // In the crop the eyes sit at centre +- 20 photo pixels across, 0.2 * 44 above the centre.
  const double k = 350 / f.side;  // crop pixels per photo pixel
  const auto left = dark_centroid(f.crop, false), right = dark_centroid(f.crop, true);
  CHECK(left[0] == doctest::Approx(175 - 20 * k - 0.5).epsilon(0.01));
  CHECK(right[0] == doctest::Approx(175 + 20 * k - 0.5).epsilon(0.01));
  CHECK(left[1] == doctest::Approx(175 - 0.2 * 44 * k - 0.5).epsilon(0.01));
  CHECK(std::abs(left[1] - right[1]) < 0.5);
}

TEST_CASE("face frame: a tilted face comes out level, at the same size") {
  for (double degrees : {-25.0, 12.0, 40.0}) {
    CAPTURE(degrees);
    const DetectedFace upright = face_at(220, 180, 50, 55);
    const DetectedFace tilted = face_at(220, 180, 50, 55, degrees);
    const Image photo = photo_with_eyes(450, 450, tilted, 6);
    const hotlap::FaceFrame a = hotlap::frame_face(photo, tilted);
    const hotlap::FaceFrame b = hotlap::frame_face(photo_with_eyes(450, 450, upright, 6), upright);
    CHECK(a.roll_degrees == doctest::Approx(degrees).epsilon(1e-9));
    CHECK(a.side == doctest::Approx(b.side));
    const auto left = dark_centroid(a.crop, false), right = dark_centroid(a.crop, true);
    const auto left0 = dark_centroid(b.crop, false), right0 = dark_centroid(b.crop, true);
    CHECK(std::abs(left[1] - right[1]) < 0.5);  // level
    CHECK(std::abs(left[0] - left0[0]) < 0.5);
    CHECK(std::abs(left[1] - left0[1]) < 0.5);
    CHECK(std::abs(right[0] - right0[0]) < 0.5);
    // Without levelling the eyes keep their tilt.
    FramingOptions keep;
    keep.level_eyes = false;
    const hotlap::FaceFrame c = hotlap::frame_face(photo, tilted, keep);
    CHECK(c.roll_degrees == 0);
    const auto l2 = dark_centroid(c.crop, false), r2 = dark_centroid(c.crop, true);
    CHECK((r2[1] - l2[1]) / (r2[0] - l2[0]) == doctest::Approx(std::tan(degrees * kPi / 180)).epsilon(0.03));
  }
}

TEST_CASE("face frame: the identity square reproduces the photo, outside the photo is the fill colour") {
  Image photo = hotlap::make_image(64, 64);
  for (int64_t y = 0; y < 64; ++y)
    for (int64_t x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) photo.at(y, x, c) = static_cast<float>((x * 3 + y * 7 + c * 11) % 17) / 16.0f;
  const Image same = hotlap::sample_square(photo, 32, 32, 64, 0, 64, {0.5f, 0.5f, 0.5f});
  for (size_t i = 0; i < photo.pixels.size(); ++i) REQUIRE(same.pixels[i] == doctest::Approx(photo.pixels[i]).epsilon(1e-5));
  // A square reaching 32 pixels past the left edge: its left quarter is fill.
  const Image shifted = hotlap::sample_square(photo, 0, 32, 128, 0, 128, {0.25f, 0.5f, 0.75f});
  CHECK(shifted.at(10, 5, 0) == doctest::Approx(0.25f));
  CHECK(shifted.at(100, 20, 2) == doctest::Approx(0.75f));
  CHECK(shifted.at(40, 64 + 10, 1) == doctest::Approx(photo.at(40 - 32, 10, 1)).epsilon(1e-5));
}

TEST_CASE("face frame: shrinking a large photo is antialiased") {
  // A one-pixel checkerboard: sampling without a low-pass filter would return black and white;
  // properly filtered, every pixel of a 4x smaller crop is mid grey.
  Image photo = hotlap::make_image(1400, 1400);
  for (int64_t y = 0; y < 1400; ++y)
    for (int64_t x = 0; x < 1400; ++x)
      for (int c = 0; c < 3; ++c) photo.at(y, x, c) = static_cast<float>((x + y) % 2);
  const Image small = hotlap::sample_square(photo, 700, 700, 1200, 0.3, 300, {0.5f, 0.5f, 0.5f});
  float lo = 1, hi = 0;
  for (float v : small.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo > 0.4f);
  CHECK(hi < 0.6f);
}

TEST_CASE("face frame: no face: the centred square, bad landmarks and options are errors") {
  Image photo = hotlap::make_image(300, 500, 0.2f);
  for (int64_t y = 0; y < 300; ++y)
    for (int64_t x = 100; x < 400; ++x) photo.at(y, x, 0) = 0.8f;  // the centred 300x300 square is red-ish
  FramingOptions o;
  o.size = 100;
  const hotlap::FaceFrame f = hotlap::frame_centre(photo, o);
  CHECK(f.square.x == doctest::Approx(100));
  CHECK(f.square.width == doctest::Approx(300));
  CHECK(f.crop.height == 100);
  CHECK(f.crop.at(50, 1, 0) == doctest::Approx(0.8f));
  CHECK(f.crop.at(50, 98, 0) == doctest::Approx(0.8f));

  DetectedFace degenerate;
  for (auto& p : degenerate.landmarks) p = {10, 10};
  CHECK_THROWS_WITH_AS(hotlap::frame_face(photo, degenerate), doctest::Contains("degenerate"), hotlap::Error);
  FramingOptions bad;
  bad.face_extent = 0;
  CHECK_THROWS_AS(hotlap::frame_face(photo, face_at(250, 150, 40, 44), bad), hotlap::Error);
  bad = {};
  bad.size = 8;
  CHECK_THROWS_AS(hotlap::frame_centre(photo, bad), hotlap::Error);
}
