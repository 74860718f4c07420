// The score report (apps/score_report.h): the ranked table with embedded crops and heat maps, and the
// SCUT-FBP5500 score histogram with the scored photos marked.
#include "apps/score_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

#include "apps/gradcam.h"
#include "apps/html.h"
#include "apps/image.h"
#include "apps/percentile.h"
#include "nn/atomic_file.h"

namespace hotlap {
namespace {

using html::coord, html::escape;

constexpr int kJpegQuality = 90;
constexpr const char* kDash = "&mdash;";

// On top of html::kBaseStyle: thumbnails, the ranked table's text columns, failures, the histogram.
const char* const kScoreStyle = R"(
table.ranked td{vertical-align:middle}
table.ranked td.name,table.ranked td.framing,table.ranked td.warnings,table.ranked td.error{text-align:left}
table.ranked td.name{font-weight:600}
img.thumb{display:block;width:112px;height:auto;image-rendering:auto}
td.warnings{color:#8a5a00;font-size:.9em}td.warnings div+div{margin-top:2px}
tr.failed td{background:#fff5f5}td.error{color:#b00000}
svg .bar{fill:#9ab6d3}svg .marker line{stroke:#d62728;stroke-width:1.5}
svg .marker text{fill:#d62728;font-size:10px}
)";

// "data:image/jpeg;base64,..." for an image.
std::string jpeg_data_uri(const Image& img) {
  const std::vector<uint8_t> jpeg = encode_jpeg(img, kJpegQuality);
  return "data:image/jpeg;base64," + html::base64(std::span<const uint8_t>(jpeg.data(), jpeg.size()));
}

std::string thumbnail(const Image& img, const std::string& alt) {
  return "<img class=\"thumb\" src=\"" + jpeg_data_uri(img) + "\" width=\"" + std::to_string(img.width) +
         "\" height=\"" + std::to_string(img.height) + "\" alt=\"" + escape(alt) + "\">";
}

bool has_heat(const ScoredPhoto& p) { return !p.heat.empty(); }

std::string score_text(double score) { return std::isfinite(score) ? html::number(score, 3) : kDash; }

std::string percentile_text(double percentile) {
  if (!std::isfinite(percentile)) return kDash;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", percentile);
  return buf;
}

std::string framing_text(const ScoredPhoto& p) {
  std::string s = p.framing.empty() ? kDash : escape(p.framing);
  if (std::isfinite(p.roll_degrees) && std::abs(p.roll_degrees) >= 0.05) {
    char buf[48];
    std::snprintf(buf, sizeof buf, ", levelled by %.1f&deg;", p.roll_degrees);
    s += buf;
  }
  return s;
}

std::string ranked_table(const std::vector<ScoredPhoto>& ranked) {
  const bool explain = std::any_of(ranked.begin(), ranked.end(), has_heat);
  std::string t = "<table class=\"ranked\">\n<thead><tr><th>Rank</th><th>Crop scored</th>";
  if (explain) t += "<th>Grad-CAM</th>";
  t += "<th>Name</th><th>Score</th><th>Percentile</th><th>Framing</th><th>Faces</th><th>Warnings</th>"
       "</tr></thead>\n<tbody>\n";
  int rank = 0;
  for (const ScoredPhoto& p : ranked) {
    const std::string name_cell =
        "<td class=\"name\" title=\"" + escape(p.path) + "\">" + escape(p.name) + "</td>";
    if (!p.ok()) {
      t += "<tr class=\"photo failed\"><td class=\"rank\">" + std::string(kDash) + "</td><td></td>";
      if (explain) t += "<td></td>";
      t += name_cell + "<td class=\"error\" colspan=\"5\">" + escape(p.error) + "</td></tr>\n";
      continue;
    }
    t += "<tr class=\"photo\"><td class=\"rank\">" + std::to_string(++rank) + "</td>";
    t += "<td class=\"crop\">" + (p.crop.pixels.empty() ? std::string(kDash) : thumbnail(p.crop, p.name)) +
         "</td>";
    if (explain) {
      t += "<td class=\"heat\">";
      if (has_heat(p) && !p.crop.pixels.empty())
        t += thumbnail(heat_overlay(p.crop, p.heat, p.heat_height, p.heat_width), p.name + ": Grad-CAM");
      else
        t += kDash;
      t += "</td>";
    }
    t += name_cell + "<td class=\"score\">" + score_text(p.score) + "</td><td class=\"percentile\">" +
         percentile_text(p.percentile) + "</td><td class=\"framing\">" + framing_text(p) +
         "</td><td class=\"faces\">" + (p.faces_found >= 0 ? std::to_string(p.faces_found) : kDash) +
         "</td><td class=\"warnings\">";
    for (const std::string& w : p.warnings) t += "<div>" + escape(w) + "</div>";
    t += "</td></tr>\n";
  }
  t += "</tbody>\n</table>\n";
  return t;
}

// The SCUT-FBP5500 scores in bins 0.1 wide over [1, 5] (the last bin includes 5). Every score is k/60,
// so the bin is found in integers: k in [60 + 6 b, 66 + 6 b) lies in bin b.
constexpr int kBins = 40;
std::vector<int64_t> scut_histogram() {
  std::vector<int64_t> bins(kBins, 0);
  for (int k = 0; k <= 5 * 60; ++k) {
    const int64_t n = scut_count_at_sixtieth(k);
    if (n == 0) continue;
    bins[static_cast<size_t>(std::clamp((k - 60) / 6, 0, kBins - 1))] += n;
  }
  return bins;
}

std::string histogram_svg(const std::vector<ScoredPhoto>& ranked) {
  constexpr double kWidth = 680, kHeight = 300;
  const double l = 50, r = kWidth - 12, t = 16, b = kHeight - 36;
  const std::vector<int64_t> bins = scut_histogram();
  const int64_t tallest = *std::max_element(bins.begin(), bins.end());
  const html::Axis ax = html::make_axis(1, 5, false, 9);
  const html::Axis ay = html::make_axis(0, static_cast<double>(tallest), true, 5);

  std::string s =
      html::svg_open("histogram", "SCUT-FBP5500 score histogram with the scored photos", kWidth, kHeight);
  html::draw_frame(s, ax, ay, l, r, t, b, "SCUT-FBP5500 score (1-5)", "images");
  s += "<g class=\"bars\">";
  for (int i = 0; i < kBins; ++i) {
    const double x0 = ax.map(1.0 + 0.1 * i, l, r), x1 = ax.map(1.0 + 0.1 * (i + 1), l, r);
    const double y = ay.map(static_cast<double>(bins[static_cast<size_t>(i)]), b, t);
    char range[64];
    std::snprintf(range, sizeof range, "%.1f-%.1f: ", 1.0 + 0.1 * i, 1.0 + 0.1 * (i + 1));
    s += "<rect class=\"bar\" x=\"" + coord(x0 + 0.5) + "\" y=\"" + coord(y) + "\" width=\"" +
         coord(std::max(0.0, x1 - x0 - 1)) + "\" height=\"" + coord(b - y) + "\"><title>" + range +
         std::to_string(bins[static_cast<size_t>(i)]) + " images</title></rect>";
  }
  s += "</g>";
  for (const ScoredPhoto& p : ranked) {
    if (!p.ok() || !std::isfinite(p.score)) continue;
    const double x = ax.map(std::clamp(p.score, ax.lo, ax.hi), l, r);
    s += "<g class=\"marker\"><title>" + escape(p.name) + ": " + score_text(p.score) + "</title><line x1=\"" +
         coord(x) + "\" y1=\"" + coord(t) + "\" x2=\"" + coord(x) + "\" y2=\"" + coord(b) +
         "\"/><text transform=\"translate(" + coord(x + 3) + " " + coord(t + 4) + ") rotate(90)\">" +
         escape(p.name) + "</text></g>";
  }
  s += "</svg>";
  return s;
}

}  // namespace

std::string render_score_report(const std::vector<ScoredPhoto>& ranked,
                                 const std::vector<std::pair<std::string, std::string>>& meta) {
  const auto scored = std::count_if(ranked.begin(), ranked.end(), [](const ScoredPhoto& p) { return p.ok(); });
  const auto failed = static_cast<int64_t>(ranked.size()) - scored;
  std::string h;
  h.reserve(64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hotlap score</title>\n"
       "<style>" +
       std::string(html::kBaseStyle) + kScoreStyle + "</style>\n</head>\n<body>\n<main>\n";
  h += "<h1>Face scores</h1>\n<p class=\"meta\">" + std::to_string(ranked.size()) +
       (ranked.size() == 1 ? " photo" : " photos") + " &middot; " + std::to_string(scored) + " scored";
  if (failed > 0) h += " &middot; " + std::to_string(failed) + " failed";
  h += " &middot; scores on SCUT-FBP5500's 1-5 scale, percentiles among its 5500 images</p>\n";
  if (!meta.empty()) {
    h += "<table class=\"config\">\n<tbody>\n";
    for (const auto& [k, v] : meta) h += "<tr><th>" + escape(k) + "</th><td>" + escape(v) + "</td></tr>\n";
    h += "</tbody>\n</table>\n";
  }

  h += "<h2>Ranking</h2>\n" + ranked_table(ranked);

  h += "<h2>Among the SCUT-FBP5500 scores</h2>\n<figure>" + histogram_svg(ranked) +
       "<figcaption>The " + std::to_string(scut_score_count()) +
       " SCUT-FBP5500 scores in bins 0.1 wide; red lines: the photos scored here.</figcaption></figure>\n";
  h += "</main>\n</body>\n</html>\n";
  return h;
}

void write_score_report(const std::string& path, const std::vector<ScoredPhoto>& ranked,
                        const std::vector<std::pair<std::string, std::string>>& meta) {
  const std::string page = render_score_report(ranked, meta);
  write_file_atomically(path,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(page.data()), page.size()));
}

}  // namespace hotlap
