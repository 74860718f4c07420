// What `hotlap score` knows about one photo once it has been scored (or has failed): the record the
// ranked table, the CSV/JSON/Markdown output and the HTML report are all written from.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "apps/image.h"

namespace hotlap {

// A rectangle in the source photo's pixel coordinates (x to the right, y down; may extend past the
// photo's edges when the framing needed more room than the photo has).
struct PixelBox {
  double x = 0, y = 0, width = 0, height = 0;
};

struct ScoredPhoto {
  std::string path;   // the file as found (a command-line argument or a file inside a given folder)
  std::string name;   // the file's stem: "verstappen" for photos/verstappen.png
  std::string error;  // non-empty: this photo could not be scored, and why (one line, names the file)

  double score = NAN;       // predicted SCUT-FBP5500 score, 1-5 scale (the mean of the TTA views)
  double percentile = NAN;  // scut_percentile(score)

  // How the scored square was chosen:
  //   "face"       the only face found
  //   "largest"    the largest of faces_found faces
  //   "centre"     no face found: the centred square (a warning says so)
  //   "frame"      --no-face-crop: the whole frame as given
  std::string framing;
  int faces_found = -1;          // -1 when detection did not run (--no-face-crop, or a failure)
  bool has_box = false;
  PixelBox face_box;             // the detector's face box (when a face was found)
  PixelBox crop_box;             // the square the crop was taken from, before rotation (if any)
  double roll_degrees = 0;       // the rotation applied to level the eyes
  std::vector<std::string> warnings;

  Image crop;                    // the aligned crop the network saw (RGB in [0, 1], before normalisation)
  // Grad-CAM (--explain): heat_height x heat_width values in [0, 1], row-major, over the crop.
  std::vector<float> heat;
  int64_t heat_height = 0, heat_width = 0;

  bool ok() const { return error.empty(); }
};

}  // namespace hotlap
