// The shared pieces of hotlap's HTML reports (see apps/common/html.h), moved here from the training report so
// that the score report draws its charts and tables the same way.
#include "apps/common/html.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace hotlap::html {
namespace {

double nice_step(double raw, bool integer) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  return step;
}

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  if (v != 0 && (std::abs(v) >= 1e7 || std::abs(v) < 1e-4))
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string coord(double v) {
  if (!std::isfinite(v)) v = 0;
  v = std::clamp(v, -1e6, 1e6);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

std::string Axis::label(double v) const {
  char buf[32];
  if (std::abs(v) < step * 1e-6) v = 0;
  if (step >= 1e5 || step < 1e-6) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    int d = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
    std::snprintf(buf, sizeof buf, "%.*f", d, v);
  }
  return buf;
}

Axis make_axis(double lo, double hi, bool integer, int target_ticks) {
  Axis a;
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    lo = 0;
    hi = 1;
  }
  lo = std::clamp(lo, -1e12, 1e12);
  hi = std::clamp(hi, -1e12, 1e12);
  if (hi - lo <= 1e-9 * std::max(1.0, std::abs(lo))) {  // constant: pad around the value
    double pad = integer ? 1.0 : std::max(std::abs(lo) * 0.1, 0.05);
    lo -= pad;
    hi += pad;
  }
  a.step = nice_step((hi - lo) / std::max(1, target_ticks - 1), integer);
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  if (a.hi <= a.lo) a.hi = a.lo + a.step;
  for (int i = 0; i <= 40; ++i) {
    double t = a.lo + i * a.step;
    if (t > a.hi + a.step * 1e-6) break;
    a.ticks.push_back(t);
  }
  return a;
}

void draw_frame(std::string& s, const Axis& ax, const Axis& ay, double l, double r, double t, double b,
                const std::string& xlabel, const std::string& ylabel) {
  s += "<g class=\"grid\">";
  for (double v : ay.ticks) {
    std::string y = coord(ay.map(v, b, t));
    s += "<line x1=\"" + coord(l) + "\" y1=\"" + y + "\" x2=\"" + coord(r) + "\" y2=\"" + y + "\"/>";
  }
  for (double v : ax.ticks) {
    std::string x = coord(ax.map(v, l, r));
    s += "<line x1=\"" + x + "\" y1=\"" + coord(t) + "\" x2=\"" + x + "\" y2=\"" + coord(b) + "\"/>";
  }
  s += "</g><rect class=\"frame\" x=\"" + coord(l) + "\" y=\"" + coord(t) + "\" width=\"" + coord(r - l) +
       "\" height=\"" + coord(b - t) + "\"/>";
  s += "<g class=\"tick\" text-anchor=\"end\">";
  for (double v : ay.ticks)
    s += "<text x=\"" + coord(l - 4) + "\" y=\"" + coord(ay.map(v, b, t) + 3.5) + "\">" + ay.label(v) +
         "</text>";
  s += "</g><g class=\"tick\" text-anchor=\"middle\">";
  for (double v : ax.ticks)
    s += "<text x=\"" + coord(ax.map(v, l, r)) + "\" y=\"" + coord(b + 13) + "\">" + ax.label(v) + "</text>";
  s += "</g>";
  s += "<text class=\"axis\" text-anchor=\"middle\" x=\"" + coord((l + r) / 2) + "\" y=\"" + coord(b + 28) +
       "\">" + escape(xlabel) + "</text>";
  s += "<text class=\"axis\" text-anchor=\"middle\" transform=\"translate(11 " + coord((t + b) / 2) +
       ") rotate(-90)\">" + escape(ylabel) + "</text>";
}

double text_width(const std::string& text, double font_px) {
  constexpr std::string_view kNarrow = "iljftrI.,:;'!|()[]";
  double em = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xc0) == 0x80) continue;  // a UTF-8 continuation byte: counted with its lead byte
    if (c >= 0x80) em += 1.0;          // outside ASCII: as wide as a wide ideograph
    else if (c == ' ') em += 0.33;
    else if (kNarrow.find(static_cast<char>(c)) != std::string_view::npos) em += 0.42;
    else if (c == 'm' || c == 'w' || c == 'M' || c == 'W') em += 1.0;
    else if (c >= 'A' && c <= 'Z') em += 0.78;
    else em += 0.66;  // digits, lower case, other signs
  }
  return em * font_px;
}

std::string svg_open(const std::string& cls, const std::string& aria_label, double width, double height) {
  return "<svg class=\"" + cls + "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + coord(width) +
         " " + coord(height) + "\" width=\"" + coord(width) + "\" height=\"" + coord(height) +
         "\" role=\"img\" aria-label=\"" + escape(aria_label) + "\">";
}

std::string utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

const char* const kBaseStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fff}
main{max-width:1040px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:1.5em;margin:.4em 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666;font-size:.9em;margin:0 0 1em}
table{border-collapse:collapse;font-size:.9em;margin:.3em 0}
th,td{border:1px solid #ddd;padding:3px 10px;text-align:right;font-variant-numeric:tabular-nums}
th{text-align:left;font-weight:600}thead th{background:#f5f5f5;text-align:center}
table.config td{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.charts{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0}figcaption{font-size:.8em;color:#555;text-align:center}
svg{font-size:10px;background:#fff}
svg .grid line{stroke:#eee;stroke-width:1}svg .frame{fill:none;stroke:#999;stroke-width:1}
svg .tick{fill:#555}svg .axis{fill:#333;font-size:11px}svg .title{fill:#222;font-size:12px;font-weight:600}
svg .note{fill:#999;font-size:12px}
details{margin:.4em 0;font-size:.95em}summary{cursor:pointer;color:#444}
)";

std::string base64(std::span<const uint8_t> bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace hotlap::html
