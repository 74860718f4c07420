// The choice of the face to score (see face_choice.h).
#include "apps/score/face/face_choice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include "kernels/error.h"

namespace hotlap {

namespace {

using Point = std::array<double, 2>;

Point minus(const Point& a, const Point& b) { return {a[0] - b[0], a[1] - b[1]}; }
Point mid(const Point& a, const Point& b) { return {(a[0] + b[0]) / 2, (a[1] + b[1]) / 2}; }
double dot(const Point& a, const Point& b) { return a[0] * b[0] + a[1] * b[1]; }

bool plausible(const FaceChoice& c, size_t i) { return c.implausible[i].empty(); }
bool confident(const DetectedFace& f) { return f.probability >= kConfidentFace; }

}  // namespace

std::string face_geometry_problem(const DetectedFace& face) {
  const auto& [left_eye, right_eye, nose, left_mouth, right_mouth] = face.landmarks;
  if (!(face.width() > 0 && face.height() > 0)) return "the box is empty";
  const double slack = 0.25 * std::max(face.width(), face.height());
  for (const Point& p : face.landmarks)
    if (!(p[0] >= face.x1 - slack && p[0] <= face.x2 + slack && p[1] >= face.y1 - slack && p[1] <= face.y2 + slack))
      return "its landmarks lie outside the box";

  const Point e2e = minus(right_eye, left_eye);
  const double d = std::hypot(e2e[0], e2e[1]);
  if (!(d > 0)) return "both eyes are at one point";
  if (d < 0.12 * face.width()) return "the eyes are too close together for the box";
  if (d > 0.8 * face.width()) return "the eyes are too far apart for the box";
  const Point x = {e2e[0] / d, e2e[1] / d};  // along the eye line, unit length
  const Point y = {-x[1], x[0]};             // across it, towards the mouth on an upright face

  const Point eyes = mid(left_eye, right_eye);
  const double mouth_y = dot(minus(mid(left_mouth, right_mouth), eyes), y) / d;
  if (mouth_y < 0) return "the mouth is above the eyes";
  if (mouth_y < 0.4) return "the mouth is level with the eyes";
  if (mouth_y > 2.5) return "the mouth is too far below the eyes";
  const double nose_y = dot(minus(nose, eyes), y) / d;
  const double nose_x = dot(minus(nose, eyes), x) / d;
  if (nose_y < -0.25 || nose_y > mouth_y + 0.25) return "the nose is not between the eyes and the mouth";
  if (std::abs(nose_x) > 1.5) return "the nose is beside the face";
  const double mouth_width = dot(minus(right_mouth, left_mouth), x) / d;
  if (mouth_width < 0) return "the mouth corners are the wrong way round";
  if (mouth_width < 0.3 || mouth_width > 2.0) return "the mouth is too narrow or too wide for the eyes";
  return "";
}

std::string describe_face(const DetectedFace& face) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "the face at %lld,%lld (%lldx%lld, p %.3f)", std::llround(face.x1),
                std::llround(face.y1), std::llround(face.width()), std::llround(face.height()), face.probability);
  return buf;
}

FaceChoice choose_faces(const std::vector<DetectedFace>& faces) {
  FaceChoice c;
  for (const DetectedFace& f : faces) c.implausible.push_back(face_geometry_problem(f));
  c.order.resize(faces.size());
  std::iota(c.order.begin(), c.order.end(), size_t{0});
  std::stable_sort(c.order.begin(), c.order.end(), [&](size_t a, size_t b) {
    if (plausible(c, a) != plausible(c, b)) return plausible(c, a);
    if (confident(faces[a]) != confident(faces[b])) return confident(faces[a]);
    return faces[a].area() > faces[b].area();
  });
  if (faces.empty()) return c;

  const size_t chosen = c.order[0];
  const DetectedFace& f = faces[chosen];
  const std::string count = counted(static_cast<long long>(faces.size()), "face") + " found";
  if (!plausible(c, chosen)) {
    c.doubt = count + ", none with a face's landmarks: scored " + describe_face(f) + " anyway (" +
              c.implausible[chosen] + ")";
    return c;
  }
  if (!confident(f)) {
    char why[96];
    std::snprintf(why, sizeof why, ", whose probability is below %.2f: it may not be a face", kConfidentFace);
    c.doubt = count + ": scored " + describe_face(f) + why;
    return c;
  }
  size_t largest = 0;
  for (size_t i = 1; i < faces.size(); ++i)
    if (faces[i].area() > faces[largest].area()) largest = i;
  if (faces[largest].area() > f.area()) {
    char below[64];
    std::snprintf(below, sizeof below, "its probability is below %.2f", kConfidentFace);
    const std::string why = !plausible(c, largest) ? c.implausible[largest] : below;
    c.doubt = count + ": scored " + describe_face(f) + ", not the larger " + describe_face(faces[largest]).substr(4) +
              " (" + why + ")";
    return c;
  }
  for (size_t k = 1; k < c.order.size(); ++k) {
    const size_t i = c.order[k];
    if (plausible(c, i) && confident(faces[i]) && faces[i].area() >= 0.5 * f.area()) {
      c.doubt = count + " of similar size: scored the larger, " + describe_face(f) + ", not " +
                describe_face(faces[i]) + " (--all-faces scores each)";
      return c;
    }
  }
  return c;
}

}  // namespace hotlap
