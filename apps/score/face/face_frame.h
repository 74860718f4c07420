// Framing a detected face the way SCUT-FBP5500 frames its faces, so that a model trained on SCUT
// sees a photo from elsewhere at the same scale and position: one square, the face upright and
// centred, the whole face with the hairline and a little neck and background around it.
//
// The geometry follows the widely used FFHQ alignment recipe, from the five MTCNN landmarks:
//   eye_mid   = midpoint of the eyes              e2e = right eye - left eye (image left/right)
//   mouth_mid = midpoint of the mouth corners      e2m = mouth_mid - eye_mid
//   x axis    = direction of e2e - rot90(e2m)      (the eye line, steadied by the face's vertical axis,
//                                                   so a turned head does not tilt the crop)
//   size      q = max(2 |e2e|, 1.8 |e2m|)          (the face's half-extent; robust to yaw, where |e2e|
//                                                   shrinks, and to pitch, where |e2m| does)
//   side      = q / face_extent                    the crop's side in photo pixels
//   centre    = eye_mid + centre_shift * e2m
// FFHQ uses face_extent 0.5 and centre_shift 0.1. SCUT-FBP5500's 350x350 photos show the whole head
// (hair, chin, a little neck) with the eyes a little above the middle; the defaults here,
// face_extent 0.44 and centre_shift 0.2, give that: for a frontal face (|e2m| ~ 1.1 |e2e|) the side
// is ~4.5 eye distances, the eyes ~0.22 of the side apart and ~0.45 of it from the top. Both are
// options of `hotlap score` (--face-extent, --centre-shift).
//
// The crop is resampled from the photo by the similarity transform (rotation by the roll, uniform
// scale), bilinearly; when it shrinks the photo by more than 1.25x the region is first resized with
// the antialiasing filter of apps/data/image.h. Parts of the square outside the photo are filled with
// `fill` (the neutral grey that transparent backgrounds are composited onto).
#pragma once

#include <array>
#include <cstdint>

#include "apps/score/face/face_detect.h"
#include "apps/data/image.h"
#include "apps/score/scored_photo.h"

namespace hotlap {

struct FramingOptions {
  int64_t size = 350;          // side of the output square, in pixels (SCUT-FBP5500's photos are 350)
  double face_extent = 0.44;   // the face's half-extent q as a fraction of the side (see above)
  double centre_shift = 0.2;   // the centre lies this fraction of e2m below the eye midpoint
  bool level_eyes = true;      // rotate so that the eyes are level
  std::array<float, 3> fill = {0.5f, 0.5f, 0.5f};
};

struct FaceFrame {
  Image crop;                  // size x size
  PixelBox square;             // the square in photo pixels, before rotation (centre +- side / 2)
  double roll_degrees = 0;     // the rotation applied (positive: the photo's face was tilted clockwise)
  std::array<double, 2> centre{};
  double side = 0;
};

// The SCUT-like crop of one face. Throws hotlap::Error on options out of range or degenerate
// landmarks (both eyes at one point and the mouth on them).
FaceFrame frame_face(const Image& photo, const DetectedFace& face, const FramingOptions& options = {});

// The fallback when no face is found: the centred square on the shorter side, resized to size.
FaceFrame frame_centre(const Image& photo, const FramingOptions& options = {});

// The crop of an arbitrary square, centred at (cx, cy) in photo pixels, `side` pixels wide, rotated by
// roll_radians (the square's x axis points along (cos, sin)): what frame_face computes its crop with.
Image sample_square(const Image& photo, double cx, double cy, double side, double roll_radians, int64_t size,
                    const std::array<float, 3>& fill);

}  // namespace hotlap
