// The HTML report of `hotlap score`: one self-contained file (no network, no scripts, every image
// embedded as a data: URI) that shows
//   - the run's details (model, date, options) as given by the caller;
//   - the ranked table: rank, the aligned crop the network scored, with --explain its Grad-CAM heat map
//     over the crop, name, score, percentile among the SCUT-FBP5500 scores, framing, faces found and
//     warnings; photos that failed are rows with their error;
//   - the histogram of the 5500 SCUT-FBP5500 scores (inline SVG, bins 0.1 wide from 1 to 5) with each
//     scored photo marked at its score.
// Drawn with the helpers the training report uses (apps/html.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "apps/scored_photo.h"

namespace hotlap {

// `ranked` in the order to show (best first); photos that failed may sit anywhere and get no rank.
// `meta`: (label, value) pairs for the header, shown in order. All text is escaped; a score or
// percentile that is not finite is shown as a dash, never as "nan". Throws hotlap::Error if a photo's
// heat map does not hold heat_height x heat_width values.
std::string render_score_report(const std::vector<ScoredPhoto>& ranked,
                                 const std::vector<std::pair<std::string, std::string>>& meta);

// Renders and writes `path` atomically. Throws hotlap::Error naming `path` if it cannot be written.
void write_score_report(const std::string& path, const std::vector<ScoredPhoto>& ranked,
                        const std::vector<std::pair<std::string, std::string>>& meta);

}  // namespace hotlap
