// What `hotlap score` knows about one photo once it has been scored (or has failed): the record the
// ranked table, the CSV/JSON/Markdown output and the HTML report are all written from.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/data/image.h"

namespace hotlap {

// A rectangle in the source photo's pixel coordinates (x to the right, y down; may extend past the
// photo's edges when the framing needed more room than the photo has).
struct PixelBox {
  double x = 0, y = 0, width = 0, height = 0;
};

// One face the detector found in the photo, and what the choice of the face to score made of it
// (apps/score/face/face_choice.h).
struct FaceCandidate {
  PixelBox box;               // the detector's box, in photo pixels
  double probability = 0;     // the detector's face probability (O-Net's)
  std::string implausible;    // why its landmarks cannot be a face's ("" when they can)
  bool scored = false;        // this face is the one scored in this row
};

// The scale the scores are on: SCUT-FBP5500's ratings run from 1 to 5. A model fed as it was trained
// stays inside it; a score outside is flagged in every output (the photo is unlike the training data,
// or the model is fed differently from how it was trained).
inline constexpr double kScoreScaleMin = 1.0, kScoreScaleMax = 5.0;
inline bool outside_score_scale(double score) {
  return std::isfinite(score) && (score < kScoreScaleMin || score > kScoreScaleMax);
}

struct ScoredPhoto {
  std::string path;   // the file as found (a command-line argument or a file inside a given folder)
  std::string name;   // the file's stem: "verstappen" for photos/verstappen.png
  std::string error;  // non-empty: this photo could not be scored, and why (one line, names the file)

  double score = NAN;       // predicted SCUT-FBP5500 score, 1-5 scale (the mean of the TTA views)
  double percentile = NAN;  // scut_percentile(score)

  // How the scored square was chosen:
  //   "face"       the only face found (with --all-faces: each face, one row each)
  //   "chosen"     the face the choice rule picked among faces_found faces (apps/score/face/face_choice.h)
  //   "centre"     no face found: the centred square (a warning says so)
  //   "frame"      --no-face-crop: the whole frame as given
  std::string framing;
  int faces_found = -1;          // -1 when detection did not run (--no-face-crop, or a failure)
  // The photo was turned clockwise by this many degrees (90, 180, 270) before its face was found and
  // framed (ScoreOptions::try_turns): the boxes, the preview and the crop are the turned photo's. 0: as is.
  int turned_degrees = 0;
  int face_number = 0;           // --all-faces: this row's face, 1..faces_found in the choice order; else 0
  bool has_box = false;
  PixelBox face_box;             // the detector's box of the scored face (when a face was found)
  std::vector<FaceCandidate> candidates;  // every face found, in the choice order (best first)
  PixelBox crop_box;             // the square the crop was taken from, before rotation (if any)
  double roll_degrees = 0;       // the rotation applied to level the eyes
  std::vector<std::string> warnings;

  Image crop;                    // the aligned crop the network saw (RGB in [0, 1], before normalisation)
  // Kept only for the HTML report (empty otherwise):
  Image framed;                  // the SCUT-like square the crop was prepared from (350 x 350 by default)
  // The whole photo, scaled by preview_scale to fit the report; one image shared by the rows of one
  // photo (--all-faces), and shown once in the report however many faces it has.
  std::shared_ptr<const Image> preview;
  double preview_scale = 1;      // preview pixels per photo pixel
  // Grad-CAM (--explain): heat_height x heat_width values in [0, 1], row-major, over the crop.
  std::vector<float> heat;
  int64_t heat_height = 0, heat_width = 0;

  bool ok() const { return error.empty(); }
  bool has_preview() const { return preview && !preview->pixels.empty(); }
};

}  // namespace hotlap
