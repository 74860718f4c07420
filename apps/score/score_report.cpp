// The score report (apps/score/score_report.h): the ranked table with the network's inputs and heat maps, the
// SCUT-FBP5500 score histogram with the scored photos marked, and how each face was framed.
#include "apps/score/score_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numbers>
#include <set>
#include <span>

#include "apps/score/gradcam.h"
#include "apps/common/html.h"
#include "apps/data/image.h"
#include "apps/score/percentile.h"
#include "apps/score/score_output.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"

namespace hotlap {
namespace {

using html::coord, html::escape;

constexpr int kJpegQuality = 90;
constexpr const char* kDash = "&mdash;";
constexpr const char* kOffScaleMark = "!";  // as in the table and Markdown (apps/score/score_output.h)

// On top of html::kBaseStyle: the ranked table, the framing panels and their photo overlays, the
// Grad-CAM colour key, the notes and the histogram's markers.
const char* const kScoreStyle = R"(
main{max-width:1200px}
table.ranked td{vertical-align:middle}
table.ranked td.name,table.ranked td.framing,table.ranked td.warnings,table.ranked td.error{text-align:left}
table.ranked td.name{font-weight:600}.face-of{font-weight:400;color:#555;font-size:.9em;white-space:nowrap}
table.ranked td.crop,table.ranked td.heat{padding:3px;text-align:center}
img.thumb{display:block;margin:0 auto;image-rendering:auto}img.px{image-rendering:pixelated}
td.warnings{color:#8a5a00;font-size:.9em}td.warnings div+div{margin-top:2px}
tr.failed td{background:#fff5f5}td.error{color:#b00000}
td.score.off-scale{background:#fde8d4;color:#a03c00;font-weight:600}.off-scale-mark{color:#a03c00}
.coarse-tag{font-size:.75em;color:#a03c00;margin-top:2px}
p.note{font-size:.85em;color:#444;margin:.4em 0;max-width:60em}p.note.warn{color:#a03c00}
.ramp{display:inline-block;width:120px;height:10px;vertical-align:middle;border:1px solid #999;margin:0 4px}
section.face{border-top:1px solid #e4e4e4;padding:.5em 0 .9em}
section.face h3{font-size:1em;margin:.2em 0 .5em}section.face h3 .sub{font-weight:400;color:#555}
.panels{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.panels figure{margin:0;max-width:100%}
.panels figcaption{text-align:left;font-size:.8em;color:#555;margin-top:4px}
.photo-box{position:relative;background:#e6e6e6;max-width:100%}
.photo-box img,.photo-box .shared{position:absolute;display:block}
.photo-box .shared{background-size:100% 100%}.photo-box .shared.px{image-rendering:pixelated}
.photo-box svg{position:absolute;left:0;top:0;background:none;overflow:hidden}
ul.faces{margin:.3em 0 0;padding-left:1.3em;font-size:.8em;color:#444}
.heat-pair{display:flex;gap:6px;align-items:stretch}
.key{display:flex;flex-direction:column;align-items:center;font-size:.72em;color:#555}
.key .bar{width:12px;flex:1;border:1px solid #999;margin:2px 0}
svg .cand rect{fill:none;stroke:#e66101;stroke-width:1.5;stroke-dasharray:5 3}
svg .cand text{fill:#b34700}
svg .cand.scored rect{stroke:#1a9850;stroke-width:2.5;stroke-dasharray:none}svg .cand.scored text{fill:#137a3f}
svg .crop-square rect{fill:none;stroke:#2c7bb6;stroke-width:1.5}svg .crop-square text{fill:#1d5f91}
svg.overlay text{font-size:11px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .bar{fill:#9ab6d3}svg .marker line{stroke:#d62728;stroke-width:1.5}
svg .marker line.leader{stroke-width:.8;stroke-opacity:.8}
svg .marker.off-axis line:not(.leader){stroke-dasharray:4 2}svg .marker.off-axis path{fill:#d62728}
svg .marker-label rect{fill:#fff;stroke:#efb0b0;stroke-width:.8}svg .marker-label text{fill:#c21d1e;font-size:10px}
svg.histogram{max-width:100%;height:auto}
table.config td{overflow-wrap:normal;word-break:normal}table.config .nobr{white-space:nowrap}
p.marker-key{font-size:.8em;color:#444;margin:.2em 0}p.marker-key span{display:inline-block;max-width:100%;overflow-wrap:anywhere}figure.scut{max-width:680px}
@media (max-width:900px){table.ranked img.thumb{width:var(--narrow);height:auto}
table.ranked th,table.ranked td{padding:3px 6px}}
)";

// ---- images ---------------------------------------------------------------------------------------

// "data:image/jpeg;base64,..." for an image.
std::string jpeg_data_uri(const Image& img) {
  const std::vector<uint8_t> jpeg = encode_jpeg(img, kJpegQuality);
  return "data:image/jpeg;base64," + html::base64(std::span<const uint8_t>(jpeg.data(), jpeg.size()));
}

// How large an image is shown: a whole multiple of its pixel size (drawn pixelated, so scaling up
// never blurs it) or a whole fraction of it, the longer side as near `target` CSS pixels as that allows.
struct Shown {
  double width = 0, height = 0;
  int64_t up = 1, down = 1;  // shown at up x, or at 1/down
};

Shown fit(const Image& img, int64_t target) {
  const int64_t longer = std::max<int64_t>(1, std::max(img.height, img.width));
  Shown s;
  if (longer * 2 <= target)
    s.up = target / longer;
  else if (longer > target)
    s.down = (longer + target - 1) / target;
  s.width = static_cast<double>(img.width * s.up) / static_cast<double>(s.down);
  s.height = static_cast<double>(img.height * s.up) / static_cast<double>(s.down);
  return s;
}

std::string scale_text(const Shown& s) {
  if (s.up > 1) return "shown " + std::to_string(s.up) + "&times;";
  if (s.down > 1) return "shown at 1/" + std::to_string(s.down);
  return "shown at its size";
}

std::string size_text(const Image& img) { return std::to_string(img.width) + "&times;" + std::to_string(img.height); }

std::string img_tag(const Image& img, const std::string& alt, const Shown& s, const std::string& cls,
                    const std::string& style = "") {
  return "<img class=\"" + cls + (s.up > 1 ? " px" : "") + "\" src=\"" + jpeg_data_uri(img) + "\" width=\"" +
         coord(s.width) + "\" height=\"" + coord(s.height) + "\"" + (style.empty() ? "" : " style=\"" + style + "\"") +
         " alt=\"" + escape(alt) + "\">";
}

// The inferno colour map (apps/score/gradcam.h) as a CSS gradient towards `direction`, low to high.
std::string inferno_gradient(const std::string& direction) {
  std::string g = "linear-gradient(" + direction;
  for (int i = 0; i <= 10; ++i) {
    const std::array<float, 3> rgb = inferno(static_cast<float>(i) / 10.0f);
    char buf[16];
    std::snprintf(buf, sizeof buf, ",#%02x%02x%02x", static_cast<int>(std::lround(rgb[0] * 255.0f)),
                  static_cast<int>(std::lround(rgb[1] * 255.0f)), static_cast<int>(std::lround(rgb[2] * 255.0f)));
    g += buf;
  }
  return g + ")";
}

// ---- text -----------------------------------------------------------------------------------------

// 3 decimals (html::number), more where a score off the scale would round into it (score_digits).
std::string score_text(double score) {
  if (!std::isfinite(score)) return kDash;
  const std::string text = html::number(score, 3);
  if (outside_score_scale(score) && !outside_score_scale(std::strtod(text.c_str(), nullptr)))
    return score_digits(score, 3);
  return text;
}

std::string percentile_text(double percentile) {
  if (!std::isfinite(percentile)) return kDash;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", percentile);
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

bool levelled(const ScoredPhoto& p) { return std::isfinite(p.roll_degrees) && std::abs(p.roll_degrees) >= 0.05; }

std::string framing_text(const ScoredPhoto& p) {
  std::string s = p.framing.empty() ? kDash : escape(p.framing);
  if (p.turned_degrees != 0) s += ", photo turned " + std::to_string(p.turned_degrees) + "&deg; clockwise";
  if (levelled(p)) s += ", levelled by " + fixed(p.roll_degrees, 1) + "&deg;";
  return s;
}

// "face 2 of 3" for a row of --all-faces, else "".
std::string face_of_text(const ScoredPhoto& p) {
  if (p.face_number <= 0) return "";
  const int n = p.faces_found > 0 ? p.faces_found : static_cast<int>(p.candidates.size());
  return "face " + std::to_string(p.face_number) + (n > 0 ? " of " + std::to_string(n) : "");
}

bool has_heat(const ScoredPhoto& p) { return !p.heat.empty(); }

// A sentence when the Grad-CAM map is too coarse to localise anything (3 cells or fewer a side), else "".
std::string coarse_heat_note(const ScoredPhoto& p) {
  if (!has_heat(p) || (p.heat_height > 3 && p.heat_width > 3)) return "";
  const int64_t cells = p.heat_height * p.heat_width;
  std::string input;
  if (!p.crop.pixels.empty())
    input = p.crop.width == p.crop.height ? " at its " + std::to_string(p.crop.width) + " px input"
                                          : " at its " + size_text(p.crop) + " px input";
  std::string what = "can only say which of its " + std::to_string(cells) + " cells mattered";
  if (cells == 1)
    what = "is one value: it cannot show where anything is";
  else if (p.heat_height == 2 && p.heat_width == 2)
    what = "can only say which quarter of the face mattered";
  else if (p.heat_height == 1 || p.heat_width == 1)
    what = "can only say which of " + std::to_string(cells) + " strips mattered";
  return "The model's last feature map is " + std::to_string(p.heat_height) + "&times;" + std::to_string(p.heat_width) +
         input + ": the Grad-CAM map " + what + ".";
}

// ---- paths ----------------------------------------------------------------------------------------

// The last part of a path ("best.safetensors" for "runs/r50/best.safetensors"); the path itself when
// it has none.
std::string file_name(const std::string& path) {
  const size_t end = path.find_last_not_of("/\\");
  if (end == std::string::npos) return path;
  const size_t slash = path.find_last_of("/\\", end);
  return slash == std::string::npos ? path.substr(0, end + 1) : path.substr(slash + 1, end - slash);
}

// Every word holding a '/' or '\' reduced to its last part (what it opens with, such as a bracket,
// kept).
std::string without_directories(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      out += text[i++];
      continue;
    }
    const size_t end = std::min(text.find(' ', i), text.size());
    const std::string word = text.substr(i, end - i);
    if (word.find_first_of("/\\") == std::string::npos) {
      out += word;
    } else {
      const size_t start = word.find_first_not_of("([{\"'<");
      out += word.substr(0, start) + (start == std::string::npos ? "" : file_name(word.substr(start)));
    }
    i = end;
  }
  return out;
}

// A header value for the page: escaped, each word holding a hyphen kept on one line ("input 72->64" must
// not become "72-" and ">64", nor "ResNet-" and "18"), so that, with the style sheet's normal wrapping,
// the cell wraps only at spaces. A path (--report-paths) may also wrap after its separators: it can be
// longer than the page is wide.
std::string header_value(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = std::min(text.find(' ', i), text.size());
    const std::string word = text.substr(i, end - i);
    if (word.find_first_of("/\\") != std::string::npos) {
      for (char c : word) out += escape(std::string(1, c)) + (c == '/' || c == '\\' ? "<wbr>" : "");
    } else if (word.find('-') != std::string::npos) {
      out += "<span class=\"nobr\">" + escape(word) + "</span>";
    } else {
      out += escape(word);
    }
    if (end < text.size()) out += ' ';
    i = end + 1;
  }
  return out;
}

struct PathPolicy {
  bool paths = false;
  std::string shown(const ScoredPhoto& p) const { return paths ? p.path : file_name(p.path); }
  // The photo's path replaced by its file name wherever it occurs in `text` (unless paths are shown).
  std::string text(const ScoredPhoto& p, const std::string& text) const {
    if (paths || p.path.empty()) return text;
    const std::string name = file_name(p.path);
    std::string out;
    size_t from = 0;
    for (size_t at = text.find(p.path); at != std::string::npos; at = text.find(p.path, from)) {
      out += text.substr(from, at - from) + name;
      from = at + p.path.size();
    }
    return out + text.substr(from);
  }
};

// ---- the ranked table -----------------------------------------------------------------------------

constexpr int64_t kThumbSide = 128;  // the table's images, CSS pixels on the longer side (about)

std::string score_cell(const ScoredPhoto& p) {
  if (outside_score_scale(p.score))
    return "<td class=\"score off-scale\" title=\"outside the " + fixed(kScoreScaleMin, 0) + "-" +
           fixed(kScoreScaleMax, 0) + " scale\">" + score_text(p.score) + kOffScaleMark + "</td>";
  return "<td class=\"score\">" + score_text(p.score) + "</td>";
}

std::string ranked_table(const std::vector<ScoredPhoto>& ranked, const PathPolicy& policy) {
  const bool explain = std::any_of(ranked.begin(), ranked.end(), has_heat);
  std::string t = "<table class=\"ranked\">\n<thead><tr><th>Rank</th><th>Network input</th>";
  if (explain) t += "<th>Grad-CAM</th>";
  t += "<th>Name</th><th>Score</th><th>Percentile</th><th>Framing</th><th>Faces</th><th>Warnings</th>"
       "</tr></thead>\n<tbody>\n";
  int rank = 0;
  for (const ScoredPhoto& p : ranked) {
    const std::string face_of = face_of_text(p);
    const std::string name_cell = "<td class=\"name\" title=\"" + escape(policy.shown(p)) + "\">" + escape(p.name) +
                                  (face_of.empty() ? "" : "<div class=\"face-of\">" + face_of + "</div>") + "</td>";
    if (!p.ok()) {
      t += "<tr class=\"photo failed\"><td class=\"rank\">" + std::string(kDash) + "</td><td></td>";
      if (explain) t += "<td></td>";
      t += name_cell + "<td class=\"error\" colspan=\"5\">" + escape(policy.text(p, p.error)) + "</td></tr>\n";
      continue;
    }
    t += "<tr class=\"photo\"><td class=\"rank\">" + std::to_string(++rank) + "</td>";
    // Half as large in a narrow window (the style sheet's media query), again a whole multiple or fraction.
    const Shown shown = fit(p.crop, kThumbSide);
    const std::string narrow = "--narrow:" + coord(fit(p.crop, kThumbSide / 2).width) + "px";
    t += "<td class=\"crop\">" +
         (p.crop.pixels.empty() ? std::string(kDash) : img_tag(p.crop, p.name, shown, "thumb", narrow)) + "</td>";
    if (explain) {
      t += "<td class=\"heat\">";
      if (has_heat(p) && !p.crop.pixels.empty()) {
        t += img_tag(heat_overlay(p.crop, p.heat, p.heat_height, p.heat_width), p.name + ": Grad-CAM", shown, "thumb",
                     narrow);
        if (!coarse_heat_note(p).empty())
          t += "<div class=\"coarse-tag\">" + std::to_string(p.heat_height) + "&times;" + std::to_string(p.heat_width) +
               " map</div>";
      } else {
        t += kDash;
      }
      t += "</td>";
    }
    t += name_cell + score_cell(p) + "<td class=\"percentile\">" + percentile_text(p.percentile) +
         "</td><td class=\"framing\">" + framing_text(p) + "</td><td class=\"faces\">" +
         (p.faces_found >= 0 ? std::to_string(p.faces_found) : kDash) + "</td><td class=\"warnings\">";
    for (const std::string& w : p.warnings) t += "<div>" + escape(policy.text(p, w)) + "</div>";
    t += "</td></tr>\n";
  }
  t += "</tbody>\n</table>\n";

  // The notes the table needs: the colour key, maps too coarse to localise, scores off the scale.
  if (explain)
    t += "<p class=\"note heat-key\">Grad-CAM colours, low to high:<span class=\"ramp\" style=\"background:" +
         inferno_gradient("to right") +
         "\"></span>how much the score rose with what the network saw there (mixed over its input).</p>\n";
  std::set<std::string> coarse;
  for (const ScoredPhoto& p : ranked)
    if (p.ok() && coarse.insert(coarse_heat_note(p)).second && !coarse_heat_note(p).empty())
      t += "<p class=\"note warn coarse\">" + coarse_heat_note(p) + "</p>\n";
  if (std::any_of(ranked.begin(), ranked.end(),
                  [](const ScoredPhoto& p) { return p.ok() && outside_score_scale(p.score); }))
    t += "<p class=\"note warn off-scale-note\"><span class=\"off-scale-mark\">" + std::string(kOffScaleMark) +
         "</span> Outside SCUT-FBP5500's " + fixed(kScoreScaleMin, 0) + "-" + fixed(kScoreScaleMax, 0) +
         " scale, which a model fed as it was trained stays within: the photo is unlike the photos it was "
         "trained on, or the model is fed differently from how it was trained (see its input transform). "
         "The percentile of such a score is 0 or 100 and says little.</p>\n";
  return t;
}

// ---- how each face was framed ---------------------------------------------------------------------

constexpr int64_t kCardImageSide = 224;  // the network input and its map in the framing panels
constexpr int64_t kFramedSide = 175;     // the SCUT-like square (350 px: shown at half)
constexpr double kOverlayMargin = 60;    // room around the photo for squares that reach past it
constexpr int64_t kPhotoSide = 400;      // a photo smaller than half this is shown at a whole multiple

struct Point2 {
  double x, y;
};

// The photo with the faces found and the square cropped drawn over it: an <img> with an SVG on top,
// in a box with room around the photo for what reaches past its edges. A photo shown in more than one
// card (one per face with --all-faces) is drawn as the background of a <div> of CSS class
// `shared_class`, whose image the page's style holds once (shared_photo_styles).
std::string photo_panel(const ScoredPhoto& p, const std::string& shared_class) {
  const Image& preview = *p.preview;
  // A small photo is shown at a whole multiple of its size (pixelated), so that its boxes have room.
  const int64_t zoom =
      std::max<int64_t>(1, kPhotoSide / std::max<int64_t>(1, std::max(preview.height, preview.width)));
  const double s = (std::isfinite(p.preview_scale) && p.preview_scale > 0 ? p.preview_scale : 1.0) * zoom;
  const auto w = static_cast<double>(preview.width * zoom), h = static_cast<double>(preview.height * zoom);
  auto scaled = [s](const PixelBox& b) { return PixelBox{b.x * s, b.y * s, b.width * s, b.height * s}; };

  // What the overlay draws, in CSS pixels from the photo's top-left corner, and how far it reaches past
  // the photo.
  double min_x = 0, min_y = 0, max_x = w, max_y = h;
  auto reach = [&](double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    min_x = std::min(min_x, x), max_x = std::max(max_x, x);
    min_y = std::min(min_y, y), max_y = std::max(max_y, y);
  };
  const bool square = p.crop_box.width > 0 && p.crop_box.height > 0;
  const PixelBox sq = scaled(p.crop_box);
  const double cx = sq.x + sq.width / 2, cy = sq.y + sq.height / 2;
  const double roll = std::isfinite(p.roll_degrees) ? p.roll_degrees : 0.0;
  if (square) {
    const double c = std::cos(roll * std::numbers::pi / 180), sn = std::sin(roll * std::numbers::pi / 180);
    for (const Point2 corner : {Point2{-1, -1}, Point2{1, -1}, Point2{1, 1}, Point2{-1, 1}}) {
      const double dx = corner.x * sq.width / 2, dy = corner.y * sq.height / 2;
      reach(cx + dx * c - dy * sn, cy + dx * sn + dy * c);
    }
  }
  for (const FaceCandidate& f : p.candidates) {
    const PixelBox b = scaled(f.box);
    reach(b.x, b.y);
    reach(b.x + b.width, b.y + b.height);
  }
  const double ml = std::min(kOverlayMargin, std::ceil(-min_x)), mt = std::min(kOverlayMargin, std::ceil(-min_y));
  const double mr = std::min(kOverlayMargin, std::ceil(max_x - w)), mb = std::min(kOverlayMargin, std::ceil(max_y - h));
  const double box_w = w + ml + mr, box_h = h + mt + mb;

  std::string svg = "<svg class=\"overlay\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"" + coord(-ml) + " " +
                    coord(-mt) + " " + coord(box_w) + " " + coord(box_h) + "\" width=\"" + coord(box_w) +
                    "\" height=\"" + coord(box_h) + "\" role=\"img\" aria-label=\"" + escape(p.name) +
                    ": the faces found and the square cropped\">";
  if (square) {
    svg += "<g class=\"crop-square\"";
    if (roll != 0) svg += " transform=\"rotate(" + fixed(roll, 2) + " " + coord(cx) + " " + coord(cy) + ")\"";
    svg += "><title>the square cropped: " + fixed(p.crop_box.width, 0) + " photo pixels a side" +
           (levelled(p) ? ", turned " + fixed(roll, 1) + "&deg; to level the eyes" : std::string()) +
           "</title><rect x=\"" + coord(sq.x) + "\" y=\"" + coord(sq.y) + "\" width=\"" + coord(sq.width) +
           "\" height=\"" + coord(sq.height) + "\"/><text x=\"" + coord(sq.x + 4) + "\" y=\"" +
           coord(sq.y + sq.height - 5) + "\">crop</text></g>";
  }
  // Each face's label: above its box; where there is no room there or another label is in the way,
  // below it, else inside it at the top (moved left as far as it must be to end inside the panel).
  // The scored face's label is placed first, the others in the choice order around it.
  constexpr double kLabelSize = 11;
  struct Label {
    std::string text;
    double x = 0, y = 0, width = 0;  // y: the baseline
  };
  std::vector<Label> labels(p.candidates.size());
  std::vector<size_t> placing;
  for (size_t i = 0; i < p.candidates.size(); ++i)
    if (p.candidates[i].scored) placing.push_back(i);
  for (size_t i = 0; i < p.candidates.size(); ++i)
    if (!p.candidates[i].scored) placing.push_back(i);
  std::vector<size_t> placed;
  for (const size_t i : placing) {
    const FaceCandidate& f = p.candidates[i];
    const PixelBox b = scaled(f.box);
    Label& label = labels[i];
    label.text = std::to_string(i + 1) + " \u00b7 " + fixed(f.probability, 3);
    if (f.scored)
      label.text += " \u00b7 scored";
    else if (!f.implausible.empty())
      label.text += " \u00b7 implausible";
    label.width = 1.1 * html::text_width(label.text, kLabelSize);  // the labels are semi-bold
    label.x = std::max(-ml + 2, std::min(b.x, w + mr - 2 - label.width));
    auto clear = [&](double y) {
      for (const size_t j : placed)
        if (label.x < labels[j].x + labels[j].width && labels[j].x < label.x + label.width &&
            y - kLabelSize < labels[j].y + 3 && labels[j].y - kLabelSize < y + 3)
          return false;
      return true;
    };
    const double above = b.y - 5, below = b.y + b.height + kLabelSize + 1, inside = b.y + kLabelSize + 2;
    const bool room_above = above - kLabelSize >= -mt, room_below = below + 3 <= h + mb;
    if (room_above && clear(above))
      label.y = above;
    else if (room_below && clear(below))
      label.y = below;
    else if (clear(inside) || !(room_above || room_below))
      label.y = inside;
    else
      label.y = room_above ? above : below;
    placed.push_back(i);
  }
  // The scored face drawn last, on top.
  for (auto it = placing.rbegin(); it != placing.rend(); ++it) {
    const FaceCandidate& f = p.candidates[*it];
    const PixelBox b = scaled(f.box);
    std::string title = "face " + std::to_string(*it + 1) + ": probability " + fixed(f.probability, 3);
    if (f.scored) title += ", scored";
    if (!f.implausible.empty()) title += "; its landmarks cannot be a face's: " + escape(f.implausible);
    svg += "<g class=\"cand" + std::string(f.scored ? " scored" : "") + "\"><title>" + title + "</title><rect x=\"" +
           coord(b.x) + "\" y=\"" + coord(b.y) + "\" width=\"" + coord(b.width) + "\" height=\"" + coord(b.height) +
           "\"/><text x=\"" + coord(labels[*it].x) + "\" y=\"" + coord(labels[*it].y) + "\">" +
           escape(labels[*it].text) + "</text></g>";
  }
  svg += "</svg>";

  std::string fig = "<figure class=\"photo\" style=\"width:" + coord(box_w) +
                    "px\"><div class=\"photo-box\" style=\"width:" + coord(box_w) + "px;height:" + coord(box_h) +
                    "px\">";
  const std::string place = "left:" + coord(ml) + "px;top:" + coord(mt) + "px";
  if (shared_class.empty())
    fig += img_tag(preview, p.name + ": the photo", Shown{w, h, zoom, 1}, "preview", place);
  else
    fig += "<div class=\"preview shared " + shared_class + (zoom > 1 ? " px" : "") + "\" role=\"img\" aria-label=\"" +
           escape(p.name + ": the photo") + "\" style=\"" + place + ";width:" + coord(w) + "px;height:" + coord(h) +
           "px\"></div>";
  fig += svg + "</div><figcaption>The photo";
  if (std::abs(s - 1) > 1e-6) fig += " (at " + fixed(100 * s, 0) + "% of its size)";
  fig += ": ";
  std::vector<std::string> parts;
  const bool any_scored =
      std::any_of(p.candidates.begin(), p.candidates.end(), [](const FaceCandidate& f) { return f.scored; });
  if (any_scored) parts.push_back("green, the face scored");
  if (p.candidates.size() > (any_scored ? 1u : 0u)) parts.push_back("dashed orange, the other faces found");
  if (!p.candidates.empty()) parts.back() += " (number &middot; detector probability)";
  if (square)
    parts.push_back(std::string("blue, the square cropped") +
                    (levelled(p) ? ", turned " + fixed(roll, 1) + "&deg; to level the eyes" : ""));
  if (parts.empty()) parts.push_back("no face found");
  for (size_t i = 0; i < parts.size(); ++i) fig += (i ? "; " : "") + parts[i];
  fig += ".";
  if (!p.candidates.empty()) {
    fig += "<ul class=\"faces\">";
    for (size_t i = 0; i < p.candidates.size(); ++i) {
      const FaceCandidate& f = p.candidates[i];
      fig += "<li>" + std::to_string(i + 1) + ": probability " + fixed(f.probability, 3);
      if (f.scored) fig += ", scored here";
      if (!f.implausible.empty()) fig += ", implausible: " + escape(f.implausible);
      fig += "</li>";
    }
    fig += "</ul>";
  }
  return fig + "</figcaption></figure>";
}

// A card is drawn for a photo scored with a preview or a framed square (kept for the report only).
bool has_card(const ScoredPhoto& p) { return p.has_preview() || !p.framed.pixels.empty(); }

std::string face_card(const ScoredPhoto& p, int rank, const std::string& shared_class) {
  std::string c =
      "<section class=\"face\"><h3>" + std::to_string(rank) + ". " + escape(p.name) + " <span class=\"sub\">";
  const std::string face_of = face_of_text(p);
  if (!face_of.empty()) c += face_of + " &middot; ";
  c += "score " + score_text(p.score);
  if (outside_score_scale(p.score)) c += "<span class=\"off-scale-mark\">" + std::string(kOffScaleMark) + "</span>";
  c += " &middot; percentile " + percentile_text(p.percentile) + " &middot; " + framing_text(p) + "</span></h3>\n";
  c += "<div class=\"panels\">";
  if (p.has_preview()) c += photo_panel(p, shared_class);
  if (!p.framed.pixels.empty()) {
    const Shown shown = fit(p.framed, kFramedSide);
    c += "<figure class=\"framed\" style=\"width:" + coord(shown.width) + "px\">" +
         img_tag(p.framed, p.name + ": framed", shown, "framed") + "<figcaption>Framed like a SCUT-FBP5500 photo, " +
         size_text(p.framed) + " px, " + scale_text(shown) + "</figcaption></figure>";
  }
  if (!p.crop.pixels.empty()) {
    const Shown shown = fit(p.crop, kCardImageSide);
    c += "<figure class=\"input\" style=\"width:" + coord(shown.width) + "px\">" +
         img_tag(p.crop, p.name + ": network input", shown, "input") + "<figcaption>The network's input, " +
         size_text(p.crop) + " px, " + scale_text(shown) + "</figcaption></figure>";
    if (has_heat(p)) {
      const std::string note = coarse_heat_note(p);
      c +=
          "<figure class=\"heat\" style=\"width:" + coord(shown.width + 40) + "px\"><div class=\"heat-pair\">" +
          img_tag(heat_overlay(p.crop, p.heat, p.heat_height, p.heat_width), p.name + ": Grad-CAM", shown, "heat") +
          "<div class=\"key\" title=\"Grad-CAM colour key\"><span>high</span><span class=\"bar\" style=\"background:" +
          inferno_gradient("to top") +
          "\"></span><span>low</span></div></div><figcaption>Grad-CAM: where the score rose with what the network saw" +
          (note.empty() ? " (a " + std::to_string(p.heat_height) + "&times;" + std::to_string(p.heat_width) + " map)."
                        : ". <span class=\"coarse\">" + note + "</span>") +
          "</figcaption></figure>";
    }
  }
  c += "</div></section>\n";
  return c;
}

// ---- the histogram --------------------------------------------------------------------------------

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

// A marker's label above the chart.
struct MarkerLabel {
  const ScoredPhoto* photo = nullptr;
  int rank = 0;
  double x = 0;      // the marker's x
  int off_axis = 0;  // -1: the score lies below the axis (under 1), +1: above it (over 5); drawn at the edge
  std::string text;  // escaped
  double width = 0;  // the label's box
  double left = 0;   // placed
  int row = 0;
};

constexpr double kLabelFont = 10, kLabelPad = 3, kLabelGap = 3, kLabelHeight = 13, kRowHeight = 16;

// Places `row` (in marker order) side by side within [lo, hi], in that order and kLabelGap apart, each
// as near its marker as the others allow (overlapping labels are pushed apart as a group, centred on
// their markers). false: they do not fit in one row.
bool spread(const std::vector<MarkerLabel*>& row, double lo, double hi) {
  double total = -kLabelGap;
  for (const MarkerLabel* l : row) total += l->width + kLabelGap;
  if (total > hi - lo) return false;
  struct Group {
    size_t first, count;
    double width, sum, left;  // sum: of the group's left edge as each member would have it
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < row.size(); ++i) {
    const double want = row[i]->x - row[i]->width / 2;
    groups.push_back({i, 1, row[i]->width, want, std::clamp(want, lo, hi - row[i]->width)});
    while (groups.size() >= 2) {
      Group& a = groups[groups.size() - 2];
      const Group& b = groups.back();
      if (a.left + a.width + kLabelGap <= b.left) break;
      a.sum += b.sum - static_cast<double>(b.count) * (a.width + kLabelGap);
      a.count += b.count;
      a.width += kLabelGap + b.width;
      a.left = std::clamp(a.sum / static_cast<double>(a.count), lo, hi - a.width);
      groups.pop_back();
    }
  }
  for (const Group& g : groups) {
    double left = g.left;
    for (size_t k = g.first; k < g.first + g.count; ++k) {
      row[k]->left = left;
      left += row[k]->width + kLabelGap;
    }
  }
  return true;
}

// Lays the labels out in `rows` rows (label i of the marker order in row i % rows); false if a row
// does not fit.
bool lay_out(std::vector<MarkerLabel>& labels, int rows, double lo, double hi) {
  for (int r = 0; r < rows; ++r) {
    std::vector<MarkerLabel*> row;
    for (size_t i = static_cast<size_t>(r); i < labels.size(); i += static_cast<size_t>(rows)) {
      labels[i].row = r;
      row.push_back(&labels[i]);
    }
    if (!spread(row, lo, hi)) return false;
  }
  return true;
}

std::string histogram(const std::vector<ScoredPhoto>& ranked) {
  constexpr double kWidth = 680, kPlotHeight = 248;
  const double l = 50, r = kWidth - 12;
  const html::Axis ax = html::make_axis(1, 5, false, 9);

  // The labels: names when they fit in one row, else the ranks (in as many rows as they need) and a key.
  std::vector<MarkerLabel> labels;
  int rank = 0;
  for (const ScoredPhoto& p : ranked) {
    if (!p.ok()) continue;
    ++rank;
    if (!std::isfinite(p.score)) continue;
    MarkerLabel m;
    m.photo = &p;
    m.rank = rank;
    m.x = ax.map(std::clamp(p.score, ax.lo, ax.hi), l, r);
    m.off_axis = p.score < ax.lo ? -1 : p.score > ax.hi ? 1 : 0;
    labels.push_back(m);
  }
  std::stable_sort(labels.begin(), labels.end(), [](const MarkerLabel& a, const MarkerLabel& b) { return a.x < b.x; });
  const double lo = 4, hi = kWidth - 4;
  auto label_as = [&](bool names) {
    for (MarkerLabel& m : labels) {
      std::string text = names ? m.photo->name : std::to_string(m.rank);
      if (names && m.photo->face_number > 0) text += ", face " + std::to_string(m.photo->face_number);
      if (m.off_axis != 0) text += m.off_axis > 0 ? " (> " + fixed(ax.hi, 0) + ")" : " (< " + fixed(ax.lo, 0) + ")";
      m.text = escape(text);
      m.width = html::text_width(text, kLabelFont) + 2 * kLabelPad;
    }
  };
  label_as(true);
  bool numbered = false;
  int rows = 1;
  if (!lay_out(labels, 1, lo, hi)) {
    numbered = true;
    label_as(false);
    while (!lay_out(labels, rows, lo, hi)) ++rows;
  }

  const double band = 6;  // the labels' rows from here down; row 0 nearest the plot
  const double t = band + rows * kRowHeight + 12, b = t + kPlotHeight, height = b + 36;
  const std::vector<int64_t> bins = scut_histogram();
  const int64_t tallest = *std::max_element(bins.begin(), bins.end());
  const html::Axis ay = html::make_axis(0, static_cast<double>(tallest), true, 5);

  std::string s = html::svg_open("histogram", "SCUT-FBP5500 score histogram with the scored photos", kWidth, height);
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
  auto box_top = [&](const MarkerLabel& m) { return band + (rows - 1 - m.row) * kRowHeight; };
  auto title = [&](const MarkerLabel& m) {
    std::string text = escape(m.photo->name) + ": " + score_text(m.photo->score);
    if (m.off_axis != 0)
      text += std::string(", ") + (m.off_axis > 0 ? "above " : "below ") + fixed(m.off_axis > 0 ? ax.hi : ax.lo, 0) +
              ": off the axis, drawn at its edge";
    return "<title>" + text + "</title>";
  };
  // The lines first, the labels over them (a leader may pass behind a lower row's label). A score off
  // the axis is a dashed line on the edge with an arrow pointing out past it.
  for (const MarkerLabel& m : labels) {
    s += std::string("<g class=\"marker") + (m.off_axis != 0 ? " off-axis" : "") + "\">" + title(m) + "<line x1=\"" +
         coord(m.x) + "\" y1=\"" + coord(t) + "\" x2=\"" + coord(m.x) + "\" y2=\"" + coord(b) +
         "\"/><line class=\"leader\" x1=\"" + coord(m.left + m.width / 2) + "\" y1=\"" +
         coord(box_top(m) + kLabelHeight) + "\" x2=\"" + coord(m.x) + "\" y2=\"" + coord(t) + "\"/>";
    if (m.off_axis != 0) {
      const double y = t + 14, tip = m.x + m.off_axis * 9;
      s += "<path class=\"arrow\" d=\"M" + coord(m.x) + " " + coord(y - 5) + "L" + coord(tip) + " " + coord(y) + "L" +
           coord(m.x) + " " + coord(y + 5) + "Z\"/>";
    }
    s += "</g>";
  }
  for (const MarkerLabel& m : labels)
    s += "<g class=\"marker-label\">" + title(m) + "<rect class=\"label-box\" x=\"" + coord(m.left) + "\" y=\"" +
         coord(box_top(m)) + "\" width=\"" + coord(m.width) + "\" height=\"" + coord(kLabelHeight) +
         "\"/><text text-anchor=\"middle\" x=\"" + coord(m.left + m.width / 2) + "\" y=\"" +
         coord(box_top(m) + kLabelHeight - 3.5) + "\">" + m.text + "</text></g>";
  s += "</svg>";

  if (numbered) {
    std::vector<const MarkerLabel*> by_rank;
    for (const MarkerLabel& m : labels) by_rank.push_back(&m);
    std::sort(by_rank.begin(), by_rank.end(),
              [](const MarkerLabel* a, const MarkerLabel* b) { return a->rank < b->rank; });
    // Each entry in a span that a line breaks before or after, not inside (unless it is wider than the line).
    s += "<p class=\"marker-key\">Marked by rank: ";
    for (size_t i = 0; i < by_rank.size(); ++i) {
      const ScoredPhoto& p = *by_rank[i]->photo;
      s += (i ? " &middot; " : "") + std::string("<span><b>") + std::to_string(by_rank[i]->rank) + "</b> " +
           escape(p.name);
      if (p.face_number > 0) s += ", face " + std::to_string(p.face_number);
      s += " (" + score_text(p.score) + (outside_score_scale(p.score) ? kOffScaleMark : "") + ")</span>";
    }
    s += "</p>";
  }
  return s;
}

}  // namespace

std::string render_score_report(const std::vector<ScoredPhoto>& ranked,
                                const std::vector<std::pair<std::string, std::string>>& meta,
                                const ScoreReportOptions& options) {
  for (const ScoredPhoto& p : ranked)
    HOTLAP_CHECK(!has_heat(p) || (p.heat_height > 0 && p.heat_width > 0 &&
                                  static_cast<int64_t>(p.heat.size()) == p.heat_height * p.heat_width),
                 "score report: the heat map of ", p.name, " holds ", p.heat.size(), " values, not ", p.heat_height,
                 "x", p.heat_width);
  const PathPolicy policy{options.paths};
  // The photos shown in more than one card (a photo's faces with --all-faces): each one's image is
  // held once, in the style, and the cards draw it from there.
  std::map<const Image*, int> cards_of;
  for (const ScoredPhoto& p : ranked)
    if (p.ok() && has_card(p) && p.has_preview()) ++cards_of[p.preview.get()];
  std::map<const Image*, std::string> shared_photos;
  std::string shared_style;
  for (const ScoredPhoto& p : ranked) {
    if (!p.has_preview() || cards_of[p.preview.get()] < 2 || shared_photos.count(p.preview.get())) continue;
    const std::string cls = "photo" + std::to_string(shared_photos.size() + 1);
    shared_photos[p.preview.get()] = cls;
    shared_style += "." + cls + "{background-image:url(\"" + jpeg_data_uri(*p.preview) + "\")}\n";
  }
  const auto scored = std::count_if(ranked.begin(), ranked.end(), [](const ScoredPhoto& p) { return p.ok(); });
  const auto failed = static_cast<int64_t>(ranked.size()) - scored;
  std::string h;
  h.reserve(256 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hotlap score</title>\n"
       "<style>" +
       std::string(html::kBaseStyle) + kScoreStyle + shared_style + "</style>\n</head>\n<body>\n<main>\n";
  h += "<h1>Face scores</h1>\n<p class=\"meta\">" + counted(static_cast<long long>(ranked.size()), "photo") +
       " &middot; " + std::to_string(scored) + " scored";
  if (failed > 0) h += " &middot; " + std::to_string(failed) + " failed";
  h += " &middot; scores on SCUT-FBP5500's 1-5 scale, percentiles among its 5500 images</p>\n";
  if (!meta.empty()) {
    h += "<table class=\"config\">\n<tbody>\n";
    for (const auto& [k, v] : meta)
      h += "<tr><th>" + escape(k) + "</th><td>" + header_value(options.paths ? v : without_directories(v)) +
           "</td></tr>\n";
    h += "</tbody>\n</table>\n";
  }

  h += "<h2>Ranking</h2>\n" + ranked_table(ranked, policy);
  // The histogram right under the table (the framing blocks can be long), its markers beside the ranks.
  const bool off_axis = std::any_of(ranked.begin(), ranked.end(),
                                    [](const ScoredPhoto& p) { return p.ok() && outside_score_scale(p.score); });
  h += "<h2>Among the SCUT-FBP5500 scores</h2>\n<figure class=\"scut\">" + histogram(ranked) + "<figcaption>The " +
       std::to_string(scut_score_count()) + " SCUT-FBP5500 scores in bins 0.1 wide; red lines: the photos scored here" +
       (off_axis ? " (dashed, with an arrow pointing out: a score off the 1-5 axis, drawn at its edge)" : "") +
       ".</figcaption></figure>\n";

  std::string cards;
  int rank = 0;
  for (const ScoredPhoto& p : ranked) {
    if (!p.ok()) continue;
    ++rank;
    if (has_card(p)) {
      const auto shared = shared_photos.find(p.preview.get());
      cards += face_card(p, rank, shared == shared_photos.end() ? std::string() : shared->second);
    }
  }
  if (!cards.empty()) h += "<h2>How each face was framed</h2>\n" + cards;
  h += "</main>\n</body>\n</html>\n";
  return h;
}

void write_score_report(const std::string& path, const std::vector<ScoredPhoto>& ranked,
                        const std::vector<std::pair<std::string, std::string>>& meta,
                        const ScoreReportOptions& options) {
  const std::string page = render_score_report(ranked, meta, options);
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(page.data()), page.size()));
}

}  // namespace hotlap
