// SCUT-like face framing from MTCNN's landmarks. See face_frame.h for the geometry.
#include "apps/score/face/face_frame.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace hotlap {

namespace {

constexpr double kPi = 3.14159265358979323846;

void check_options(const FramingOptions& o) {
  HOTLAP_CHECK(o.size >= 32 && o.size <= 4096, "face framing: crop size ", o.size, " must lie in [32, 4096]");
  HOTLAP_CHECK(o.face_extent > 0.05 && o.face_extent <= 2.0, "face framing: face extent ", o.face_extent,
               " must lie in (0.05, 2]");
  HOTLAP_CHECK(std::isfinite(o.centre_shift) && std::abs(o.centre_shift) <= 2.0, "face framing: centre shift ",
               o.centre_shift, " must lie in [-2, 2]");
}

// Bilinear sample at pixel-index coordinates (pixel k's centre at k); outside the image, `fill`
// (blended at the border, so the edge is not a hard step).
void sample_bilinear(const Image& img, double x, double y, const std::array<float, 3>& fill, float* out) {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  const double ax = x - fx, ay = y - fy;
  float acc[3] = {0, 0, 0};
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const double w = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
      if (w == 0) continue;
      const int64_t xi = x0 + dx, yi = y0 + dy;
      const bool inside = xi >= 0 && yi >= 0 && xi < img.width && yi < img.height;
      for (int c = 0; c < 3; ++c)
        acc[c] += static_cast<float>(w) * (inside ? img.at(yi, xi, c) : fill[static_cast<size_t>(c)]);
    }
  std::copy(acc, acc + 3, out);
}

}  // namespace

Image sample_square(const Image& photo, double cx, double cy, double side, double roll_radians, int64_t size,
                    const std::array<float, 3>& fill) {
  HOTLAP_CHECK(photo.height > 0 && photo.width > 0, "face framing: empty photo");
  HOTLAP_CHECK(side > 0 && std::isfinite(side) && std::isfinite(cx) && std::isfinite(cy),
               "face framing: degenerate square (side ", side, " at ", cx, ", ", cy, ")");
  const double step = side / static_cast<double>(size);  // photo pixels per crop pixel
  // Shrinking by more than 1.25x: resize the part of the photo the square covers with the
  // antialiasing filter first, so the bilinear sampling below never skips photo pixels.
  const Image* source = &photo;
  Image region;
  // Source pixel-index coordinate = (photo pixel-index coordinate - origin) / scale.
  double origin_x = 0, origin_y = 0, scale_x = 1, scale_y = 1;
  if (step > 1.25) {
    const double reach = side * 0.7072 + 2;  // half-diagonal of the square, and a margin
    const auto x0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cx - reach)));
    const auto y0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cy - reach)));
    const auto x1 = std::min<int64_t>(photo.width, static_cast<int64_t>(std::ceil(cx + reach)));
    const auto y1 = std::min<int64_t>(photo.height, static_cast<int64_t>(std::ceil(cy + reach)));
    if (x1 > x0 && y1 > y0) {
      const int64_t w = std::max<int64_t>(1, std::llround(static_cast<double>(x1 - x0) / step));
      const int64_t h = std::max<int64_t>(1, std::llround(static_cast<double>(y1 - y0) / step));
      region = resize(crop(photo, y0, x0, y1 - y0, x1 - x0), h, w);
      source = &region;
      scale_x = static_cast<double>(x1 - x0) / static_cast<double>(w);
      scale_y = static_cast<double>(y1 - y0) / static_cast<double>(h);
      // Region pixel k covers photo pixels [x0 + k * scale, x0 + (k + 1) * scale): its centre, index
      // k, sits at photo index x0 + (k + 0.5) * scale - 0.5.
      origin_x = static_cast<double>(x0) + 0.5 * scale_x - 0.5;
      origin_y = static_cast<double>(y0) + 0.5 * scale_y - 0.5;
    }
  }
  const double ux = std::cos(roll_radians), uy = std::sin(roll_radians);  // the square's x axis
  const double vx = -uy, vy = ux;                                         // and its y axis (down)
  Image out = make_image(size, size);
  for (int64_t i = 0; i < size; ++i)
    for (int64_t j = 0; j < size; ++j) {
      const double a = (static_cast<double>(j) + 0.5) * step - side / 2;
      const double b = (static_cast<double>(i) + 0.5) * step - side / 2;
      // Photo coordinates with pixel centres at k + 0.5 -> pixel-index coordinates (centre at k).
      const double px = cx + a * ux + b * vx - 0.5;
      const double py = cy + a * uy + b * vy - 0.5;
      sample_bilinear(*source, (px - origin_x) / scale_x, (py - origin_y) / scale_y, fill, &out.at(i, j, 0));
    }
  return out;
}

FaceFrame frame_face(const Image& photo, const DetectedFace& face, const FramingOptions& options) {
  check_options(options);
  const auto& p = face.landmarks;
  const double eye_x = (p[0][0] + p[1][0]) / 2, eye_y = (p[0][1] + p[1][1]) / 2;
  const double mouth_x = (p[3][0] + p[4][0]) / 2, mouth_y = (p[3][1] + p[4][1]) / 2;
  const double e2e_x = p[1][0] - p[0][0], e2e_y = p[1][1] - p[0][1];
  const double e2m_x = mouth_x - eye_x, e2m_y = mouth_y - eye_y;
  // x axis: e2e minus e2m turned a quarter counter-clockwise (an upright face: (d + m, 0)).
  const double ax = e2e_x + e2m_y, ay = e2e_y - e2m_x;
  const double q = std::max(2 * std::hypot(e2e_x, e2e_y), 1.8 * std::hypot(e2m_x, e2m_y));
  HOTLAP_CHECK(q > 1e-6 && std::hypot(ax, ay) > 1e-6, "face framing: degenerate landmarks (eyes and mouth at one point)");
  FaceFrame f;
  f.side = q / options.face_extent;
  f.centre = {eye_x + options.centre_shift * e2m_x, eye_y + options.centre_shift * e2m_y};
  const double roll = options.level_eyes ? std::atan2(ay, ax) : 0.0;
  f.roll_degrees = roll * 180.0 / kPi;
  // Landmarks are pixel-index coordinates (pixel k's centre at k); the square is in photo
  // coordinates with pixel centres at k + 0.5.
  const double cx = f.centre[0] + 0.5, cy = f.centre[1] + 0.5;
  f.square = {cx - f.side / 2, cy - f.side / 2, f.side, f.side};
  f.crop = sample_square(photo, cx, cy, f.side, roll, options.size, options.fill);
  return f;
}

FaceFrame frame_centre(const Image& photo, const FramingOptions& options) {
  check_options(options);
  HOTLAP_CHECK(photo.height > 0 && photo.width > 0, "face framing: empty photo");
  FaceFrame f;
  f.side = static_cast<double>(std::min(photo.height, photo.width));
  f.centre = {static_cast<double>(photo.width) / 2, static_cast<double>(photo.height) / 2};
  f.square = {f.centre[0] - f.side / 2, f.centre[1] - f.side / 2, f.side, f.side};
  f.crop = sample_square(photo, f.centre[0], f.centre[1], f.side, 0.0, options.size, options.fill);
  return f;
}

}  // namespace hotlap
