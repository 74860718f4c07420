// Face detection with MTCNN (Zhang et al. 2016): the cascade around the three networks of
// apps/score/face/mtcnn.h, step for step as facenet-pytorch's detect_face runs it, so that the same weights
// find the same faces:
//
//  1. Image pyramid. Pixel values 0-255, normalised (v - 127.5) / 128. Scales m * factor^k with
//     m = 12 / min_face, for as long as the shorter side times the scale is at least 12; each level is
//     the image resampled to (int(h * s + 1), int(w * s + 1)) with a box filter (resize_area).
//  2. P-Net over each level: every 12x12 window (stride 2) whose face probability is >= thresholds[0]
//     becomes a box ((2x + 1) / s, (2y + 1) / s) .. ((2x + 12) / s, (2y + 12) / s), floored, with the
//     window's regression; non-maximum suppression at IoU 0.5 within each level, then 0.7 over all.
//     Boxes are moved by their regression (scaled by the box size) and made square around their centre.
//  3. R-Net on each box cropped (clipped to the image) and resampled to 24x24: boxes with probability
//     > thresholds[1] survive, NMS at 0.7, regression, squared again.
//  4. O-Net on 48x48 crops: probability > thresholds[2]; five landmarks from the crop box; the box
//     refined by regression; NMS at 0.7 measured as intersection over the smaller box ("Min").
//
// Box conventions are MTCNN's (inherited from its MATLAB origin): pixel coordinates, corners
// (x1, y1)-(x2, y2). IoU in steps 2 and 3 uses (x2 - x1) * (y2 - y1) areas (torchvision's nms), in step
// 4 (x2 - x1 + 1) * (y2 - y1 + 1) (MTCNN's own nms); crops take rows int(y1) - 1 .. int(y2) - 1.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "apps/data/image.h"

namespace hotlap {

class Mtcnn;

struct FaceDetectorOptions {
  double min_face = 20;                          // smallest face side to look for, in photo pixels
  // A photo of more pixels than this is searched on a copy scaled down to it (box-filtered, the
  // aspect kept), and the boxes and landmarks are scaled back to the photo: the cascade's memory and
  // time then stay those of a 1280 x 1280 photo however large the original (a 16-megapixel photo at
  // full size needs over 3 GB). The price: the smallest face found is max(min_face, 12 / scale) photo
  // pixels, 12 being P-Net's window (35 pixels on a 12-megapixel photo; smallest_face_searched).
  int64_t working_pixels = 1280 * 1280;
  double factor = 0.709;                         // pyramid step
  std::array<double, 3> thresholds = {0.6, 0.7, 0.7};  // P-Net, R-Net, O-Net face probability
};

struct DetectedFace {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // the face box
  double probability = 0;                 // O-Net's face probability
  // (x, y) of: the eye on the image's left, the eye on the image's right, the nose tip, the mouth
  // corner on the image's left, the mouth corner on the image's right.
  std::array<std::array<double, 2>, 5> landmarks{};

  double width() const { return x2 - x1; }
  double height() const { return y2 - y1; }
  double area() const { return width() * height(); }
};

class FaceDetector {
 public:
  // Loads the networks (models/mtcnn.safetensors); errors name the file.
  explicit FaceDetector(const std::string& weights_path, const FaceDetectorOptions& options = {});
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  FaceDetector& operator=(FaceDetector&&) noexcept;

  // Every face found, largest box first, in the image's pixel coordinates. An image smaller than
  // 12x12 has none. A box less than half of min_face on its longer side (the regression of a window
  // at the limit can shrink it that far only on something that is not a face) is dropped.
  std::vector<DetectedFace> detect(const Image& image) const;

  // The smallest face side, in photo pixels, that detect looks for in a photo of this size.
  double smallest_face_searched(int64_t height, int64_t width) const;

  const FaceDetectorOptions& options() const { return options_; }

 private:
  // The cascade on an image no larger than the working size, looking for faces of min_face pixels.
  std::vector<DetectedFace> detect_at_full_size(const Image& image, double min_face) const;

  std::unique_ptr<Mtcnn> nets_;
  FaceDetectorOptions options_;
};

// Where the detector's weights are: $HOTLAP_MODELS/mtcnn.safetensors when that variable is set,
// otherwise the first of <folder of the running binary>/models, <that>/../models (a build folder
// inside the repository) and the repository's models/ folder as configured at build time that has
// the file. Throws hotlap::Error listing the places looked in when none has it.
std::string find_mtcnn_weights();

// Non-maximum suppression over boxes given as {x1, y1, x2, y2}: indices kept, highest score first.
// A box is dropped when its overlap with a kept box is > threshold. Overlap is IoU with
// (x2 - x1) * (y2 - y1) areas, or with `min_mode` MTCNN's intersection over the smaller box with
// +1 pixel areas. Equal scores keep the earlier box first. Exposed for tests.
std::vector<size_t> non_maximum_suppression(const std::vector<std::array<double, 4>>& boxes,
                                            const std::vector<double>& scores, double threshold,
                                            bool min_mode);

}  // namespace hotlap
