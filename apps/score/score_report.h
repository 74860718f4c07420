// The HTML report of `hotlap score`: one self-contained file (no network, no scripts, every image
// embedded as a data: URI) that shows
//   - the run's details (model, date, options) as given by the caller;
//   - the ranked table: rank, the network's input (at its own pixel size or a whole multiple of it,
//     never blurred by scaling up), with --explain its Grad-CAM map, name (and "face k of n" with
//     --all-faces), score (marked "!" when it lies outside the 1-5 scale, as in the text formats, with
//     as many decimals as it takes not to read as inside it), percentile among the SCUT-FBP5500
//     scores, framing, faces found and warnings; photos that failed are rows with their error; under
//     it the Grad-CAM colour key and notes (off-scale scores, maps too coarse to localise);
//   - right under it, the histogram of the 5500 SCUT-FBP5500 scores (inline SVG, bins 0.1 wide from 1
//     to 5) with each scored photo marked at its score and labelled above the chart (labels spread
//     apart in order, with leader lines, so that they never overlap; numbered after the rank, with a
//     key, when the names do not fit); a score off the 1-5 axis is a dashed line on the edge with an
//     arrow pointing out, its label saying "(> 5)" or "(< 1)";
//   - how each scored face was framed: the photo with every face the detector found (the scored one
//     green, the others dashed orange with their probability and, when their landmarks cannot be a
//     face's, why) and the square that was cropped, turned as it was to level the eyes; beside it the
//     SCUT-like square, the network's input and its Grad-CAM map with the colour key.
// Drawn with the helpers the training report uses (apps/common/html.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "apps/score/scored_photo.h"

namespace hotlap {

struct ScoreReportOptions {
  // Full file paths in the page. false (the default): a photo is named by its file name only (also
  // in its error and warnings), and every word of a header value that holds a '/' or '\' (the model's
  // path) is shown as its last part, so that a report can be shared without the local folders.
  bool paths = false;
};

// `ranked` in the order to show (best first); photos that failed may sit anywhere and get no rank.
// `meta`: (label, value) pairs for the header, shown in order. All text is escaped; a score or
// percentile that is not finite is shown as a dash, never as "nan". A photo's `framed` and `preview`
// may be empty (the report then shows what there is); rows that share one `preview` (a photo's faces
// with --all-faces) carry it in the page once. Throws hotlap::Error if a photo's heat map does
// not hold heat_height x heat_width values.
std::string render_score_report(const std::vector<ScoredPhoto>& ranked,
                                 const std::vector<std::pair<std::string, std::string>>& meta,
                                 const ScoreReportOptions& options = {});

// Renders and writes `path` atomically. Throws hotlap::Error naming `path` if it cannot be written.
void write_score_report(const std::string& path, const std::vector<ScoredPhoto>& ranked,
                        const std::vector<std::pair<std::string, std::string>>& meta,
                        const ScoreReportOptions& options = {});

}  // namespace hotlap
