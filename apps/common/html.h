// The pieces hotlap's self-contained HTML reports (training report, score report) share: text
// escaping, number formatting, a common style sheet, inline-SVG chart frames and base64 for data URIs.
// Everything is drawn here as text; the reports load nothing from the network.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hotlap::html {

// Text for HTML element content and attribute values: & < > " ' escaped.
std::string escape(const std::string& s);

// A table value: fixed digits (%.*g for very large or small magnitudes), "nan" / "inf" / "-inf" for
// non-finite values.
std::string number(double v, int digits = 4);

// An SVG coordinate: one decimal, no trailing ".0"; never "nan" (a non-finite value becomes 0).
std::string coord(double v);

// Axis range and ticks: "nice" steps (1, 2, 5 x 10^k), the range widened to whole steps.
struct Axis {
  double lo = 0, hi = 1, step = 0.25;
  std::vector<double> ticks;
  // v in [lo, hi] mapped linearly onto [p0, p1] (pixels).
  double map(double v, double p0, double p1) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
  std::string label(double v) const;  // a tick label with as many decimals as the step needs
};

// An axis covering [lo, hi] with about target_ticks ticks; integer: steps of at least 1. A constant or
// empty (non-finite) range gets a padded one, so mapping never divides by zero.
Axis make_axis(double lo, double hi, bool integer, int target_ticks = 5);

// A chart's frame into `svg`: gridlines, tick labels and axis titles around the plot area
// [left, right] x [top, bottom].
void draw_frame(std::string& svg, const Axis& ax, const Axis& ay, double left, double right, double top,
                double bottom, const std::string& xlabel, const std::string& ylabel);

// An upper estimate of the width, in pixels, of `text` (UTF-8) set in the reports' sans-serif font at
// font_px, for placing SVG labels without measuring them (wide fonts such as DejaVu Sans included).
double text_width(const std::string& text, double font_px);

// The opening <svg> tag of an inline chart width x height pixels, with class `cls` and an accessible
// label.
std::string svg_open(const std::string& cls, const std::string& aria_label, double width, double height);

// The style sheet both reports start from (page, headings, tables, charts); a report appends its own.
extern const char* const kBaseStyle;

// The current time as "YYYY-MM-DD HH:MM UTC".
std::string utc_now();

// Standard base64 (RFC 4648, with '=' padding), for data: URIs.
std::string base64(std::span<const uint8_t> bytes);

}  // namespace hotlap::html
