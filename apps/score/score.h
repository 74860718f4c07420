// hotlap score: find, frame and score the faces in photos with a trained regressor, and rank them with
// their percentiles among the 5500 SCUT-FBP5500 scores.
//
// For each photo (files, folders, globs: apps/score/photo_inputs.h):
//   1. decode it; transparent parts are composited onto neutral grey (apps/data/image.h);
//   2. find the faces with MTCNN (apps/score/face/face_detect.h), choose the one to score by landmarks,
//      probability and size (apps/score/face/face_choice.h; --all-faces: each face) and frame it like a SCUT
//      photo, eyes level (apps/score/face/face_frame.h); with no face, the centred square and a warning; with
//      --no-face-crop, the frame as given;
//   3. prepare it as the model's test split was (resize, centre crop: apps/data/loader.h's evaluation_view)
//      and run the network; with --tta also on the mirrored image, averaging the two;
//   4. with --explain, a Grad-CAM map of the crop (apps/score/gradcam.h).
// A photo that cannot be read becomes a row with its error and the rest are still scored; the exit
// status is then 1. Output: a ranked table, CSV, JSON or Markdown (apps/score/score_output.h), to stdout or
// --out (written atomically), and with --report an HTML page (apps/score/score_report.h).
#pragma once

#include <string>
#include <vector>

#include "apps/common/compute_options.h"
#include "apps/score/face/face_detect.h"
#include "apps/score/face/face_frame.h"
#include "apps/score/scored_photo.h"
#include "apps/score/scoring_model.h"

namespace hotlap {

struct ScoreOptions {
  std::string model_path;            // RUN/best.safetensors, or a PyTorch-format regressor
  std::vector<std::string> photos;   // files, folders, globs
  std::string format;                // table | csv | json | md; empty: from --out's extension, else table
  std::string out;                   // write the formatted result here instead of stdout
  std::string report;                // also write this HTML report
  std::string crops_dir;             // also write each network input as NAME.png here
  bool explain = false;              // Grad-CAM maps in the report (and JSON)
  bool tta = false;                  // average over the horizontal flip
  bool face_crop = true;             // false: score the frame as given
  bool all_faces = false;            // one row per face found, instead of the one face chosen
  // A photo with no confident, plausible face upright is searched turned by 90 degrees each way and
  // by 180 (a phone photo whose orientation tag was lost is stored sideways); false: upright only.
  bool try_turns = true;
  // --resize/--size: how photos are prepared for the network (shorter side, centre crop). 0: as the
  // model file says (apps/score/scoring_model.h); a file that does not say needs both. Given, they override
  // the file's.
  int64_t resize = 0, size = 0;
  bool report_paths = false;         // full file paths in the HTML report (default: file names only)
  std::string detector_weights;      // default: find_mtcnn_weights()
  FaceDetectorOptions detector;
  FramingOptions framing;
  ComputeOptions compute;            // --device etc. (apps/common/compute_options.h)
  bool quiet = false;                // no progress lines on stderr
};

// Scores one decoded photo (steps 2-4) with the model on whatever device it is on (the face detector
// runs on the cpu): one row, the chosen face's (apps/score/face/face_choice.h), or with options.all_faces one
// row per face found, in the choice order. Each row is `base` (path, name) with score, percentile,
// framing, boxes, candidates, warnings, crop and heat filled in, and with options.report the framed
// square and a preview of the photo. `detector` may be null when options.face_crop is false.
// Throws hotlap::Error on failure.
std::vector<ScoredPhoto> score_image(const Image& photo, const ScoringModel& model, const FaceDetector* detector,
                                     const ScoreOptions& options, const ScoredPhoto& base = {});

// The whole command: returns the exit status (0: every photo scored; 1: any failed).
int run_score(const ScoreOptions& options);

}  // namespace hotlap
