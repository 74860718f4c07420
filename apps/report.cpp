#include "apps/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <span>

#include "nn/atomic_file.h"

namespace hotlap {
namespace {

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

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

// A table value: fixed digits, "nan" / "inf" / "-inf" for non-finite values.
std::string fmt(double v, int digits = 4) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  if (v != 0 && (std::abs(v) >= 1e7 || std::abs(v) < 1e-4))
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string fmt_g(double v) {
  if (!std::isfinite(v)) return fmt(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// An SVG coordinate: one decimal, no trailing ".0"; never "nan" (a non-finite value becomes 0).
std::string px(double v) {
  if (!std::isfinite(v)) v = 0;
  v = std::clamp(v, -1e6, 1e6);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

// Axis range and ticks: "nice" steps (1, 2, 5 x 10^k), the range widened to whole steps. A constant
// or empty series gets a padded range, so scaling never divides by zero.
struct Axis {
  double lo = 0, hi = 1, step = 0.25;
  std::vector<double> ticks;
  double map(double v, double p0, double p1) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
  std::string label(double v) const {
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
};

double nice_step(double raw, bool integer) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  return step;
}

Axis make_axis(double lo, double hi, bool integer, int target_ticks = 5) {
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

struct Point {
  double x, y;
};
struct Series {
  std::string name;
  std::string color;
  std::vector<Point> points;  // may hold non-finite values: skipped, and they break the line
};

constexpr double kW = 330, kH = 230;

// Plot frame: gridlines, ticks with labels, axis titles. Plot area [l, r] x [t, b].
void draw_frame(std::string& s, const Axis& ax, const Axis& ay, double l, double r, double t, double b,
                const std::string& xlabel, const std::string& ylabel) {
  s += "<g class=\"grid\">";
  for (double v : ay.ticks) {
    std::string y = px(ay.map(v, b, t));
    s += "<line x1=\"" + px(l) + "\" y1=\"" + y + "\" x2=\"" + px(r) + "\" y2=\"" + y + "\"/>";
  }
  for (double v : ax.ticks) {
    std::string x = px(ax.map(v, l, r));
    s += "<line x1=\"" + x + "\" y1=\"" + px(t) + "\" x2=\"" + x + "\" y2=\"" + px(b) + "\"/>";
  }
  s += "</g><rect class=\"frame\" x=\"" + px(l) + "\" y=\"" + px(t) + "\" width=\"" + px(r - l) +
       "\" height=\"" + px(b - t) + "\"/>";
  s += "<g class=\"tick\" text-anchor=\"end\">";
  for (double v : ay.ticks)
    s += "<text x=\"" + px(l - 4) + "\" y=\"" + px(ay.map(v, b, t) + 3.5) + "\">" + ay.label(v) + "</text>";
  s += "</g><g class=\"tick\" text-anchor=\"middle\">";
  for (double v : ax.ticks)
    s += "<text x=\"" + px(ax.map(v, l, r)) + "\" y=\"" + px(b + 13) + "\">" + ax.label(v) + "</text>";
  s += "</g>";
  s += "<text class=\"axis\" text-anchor=\"middle\" x=\"" + px((l + r) / 2) + "\" y=\"" + px(b + 28) + "\">" +
       escape(xlabel) + "</text>";
  s += "<text class=\"axis\" text-anchor=\"middle\" transform=\"translate(11 " + px((t + b) / 2) +
       ") rotate(-90)\">" + escape(ylabel) + "</text>";
}

std::string svg_open(const std::string& cls, const std::string& aria, double w = kW) {
  return "<svg class=\"" + cls + "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + px(w) + " " +
         px(kH) + "\" width=\"" + px(w) + "\" height=\"" + px(kH) + "\" role=\"img\" aria-label=\"" +
         escape(aria) + "\">";
}

std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<Series>& series) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& se : series)
    for (const auto& p : se.points)
      if (std::isfinite(p.x) && std::isfinite(p.y)) {
        xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
        ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
      }
  bool empty = !(xlo <= xhi);
  Axis ax = make_axis(empty ? 1 : xlo, empty ? 1 : xhi, true, 6);
  Axis ay = make_axis(empty ? 0 : ylo, empty ? 1 : yhi, false, 5);
  const bool legend = series.size() > 1;
  const double l = 50, r = kW - 10, t = legend ? 38 : 24, b = kH - 36;

  std::string s = svg_open("chart", title);
  s += "<text class=\"title\" x=\"" + px(l) + "\" y=\"14\">" + escape(title) + "</text>";
  draw_frame(s, ax, ay, l, r, t, b, xlabel, ylabel);
  if (legend) {
    double x = l;
    for (const auto& se : series) {
      s += "<line x1=\"" + px(x) + "\" y1=\"26\" x2=\"" + px(x + 14) + "\" y2=\"26\" stroke=\"" + se.color +
           "\" stroke-width=\"2\"/><text class=\"tick\" x=\"" + px(x + 18) + "\" y=\"29.5\">" + escape(se.name) +
           "</text>";
      x += 34 + 6.5 * static_cast<double>(std::min<size_t>(se.name.size(), 16));
    }
  }
  if (empty)
    s += "<text class=\"note\" text-anchor=\"middle\" x=\"" + px((l + r) / 2) + "\" y=\"" + px((t + b) / 2) +
         "\">no finite values</text>";
  for (const auto& se : series) {
    // Split into runs of finite points; a run of one point is a dot.
    std::vector<std::vector<Point>> runs(1);
    for (const auto& p : se.points) {
      if (std::isfinite(p.x) && std::isfinite(p.y))
        runs.back().push_back({ax.map(p.x, l, r), ay.map(p.y, b, t)});
      else if (!runs.back().empty())
        runs.emplace_back();
    }
    s += "<g stroke=\"" + se.color + "\" fill=\"" + se.color + "\">";
    for (const auto& run : runs) {
      if (run.size() >= 2) {
        s += "<polyline fill=\"none\" stroke-width=\"1.8\" points=\"";
        for (size_t i = 0; i < run.size(); ++i) {
          if (i) s += ' ';
          s += px(run[i].x);
          s += ',';
          s += px(run[i].y);
        }
        s += "\"/>";
      }
      if (run.size() <= 25)
        for (const auto& p : run) s += "<circle cx=\"" + px(p.x) + "\" cy=\"" + px(p.y) + "\" r=\"2.2\"/>";
    }
    s += "</g>";
  }
  s += "</svg>";
  return s;
}

// Predicted (y) against true (x) on the 1-5 score scale, with the diagonal y = x.
std::string scatter_chart(const ReportFold& f, size_t* count) {
  const double l = 50, r = kW - 10 - (kW - 60 - (kH - 60)), t = 24, b = kH - 36;  // square plot area
  Axis a = make_axis(1, 5, true, 5);
  std::string s = svg_open("scatter", f.name + ": predicted vs true", r + 16);
  s += "<text class=\"title\" x=\"" + px(l) + "\" y=\"14\">Predicted vs true (epoch " +
       std::to_string(f.best_epoch) + ")</text>";
  draw_frame(s, a, a, l, r, t, b, "true score", "predicted score");
  s += "<line class=\"diag\" x1=\"" + px(l) + "\" y1=\"" + px(b) + "\" x2=\"" + px(r) + "\" y2=\"" + px(t) + "\"/>";
  const size_t n = std::min(f.predicted.size(), f.truth.size());
  size_t k = 0;
  s += "<g class=\"pts\">";
  for (size_t i = 0; i < n; ++i) {
    double p = f.predicted[i], y = f.truth[i];
    if (!std::isfinite(p) || !std::isfinite(y)) continue;
    // Out-of-range values are pinned to the frame so they stay visible.
    double cx = a.map(std::clamp(y, a.lo, a.hi), l, r), cy = a.map(std::clamp(p, a.lo, a.hi), b, t);
    s += "<circle cx=\"" + px(cx) + "\" cy=\"" + px(cy) + "\" r=\"1.8\"/>";
    ++k;
  }
  s += "</g>";
  if (k == 0)
    s += "<text class=\"note\" text-anchor=\"middle\" x=\"" + px((l + r) / 2) + "\" y=\"" + px((t + b) / 2) +
         "\">no predictions</text>";
  s += "</svg>";
  *count = k;
  return s;
}

double mean_of(const std::vector<ReportFold>& folds, double ReportFold::*field) {
  double sum = 0;
  for (const auto& f : folds) sum += f.*field;
  return sum / static_cast<double>(folds.size());
}

std::string row(const std::string& cls, const std::vector<std::string>& cells) {
  std::string s = cls.empty() ? "<tr>" : "<tr class=\"" + cls + "\">";
  for (size_t i = 0; i < cells.size(); ++i) s += (i == 0 ? "<th>" : "<td>") + cells[i] + (i == 0 ? "</th>" : "</td>");
  return s + "</tr>\n";
}

std::string utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

const char* const kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fff}
main{max-width:1040px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:1.5em;margin:.4em 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666;font-size:.9em;margin:0 0 1em}
table{border-collapse:collapse;font-size:.9em;margin:.3em 0}
th,td{border:1px solid #ddd;padding:3px 10px;text-align:right;font-variant-numeric:tabular-nums}
th{text-align:left;font-weight:600}thead th{background:#f5f5f5;text-align:center}
tr.avg th,tr.avg td{font-weight:600;background:#fafafa}tr.paper th,tr.paper td{color:#666;font-style:italic}
table.config td{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0}figcaption{font-size:.8em;color:#555;text-align:center}
svg{font-size:10px;background:#fff}
svg .grid line{stroke:#eee;stroke-width:1}svg .frame{fill:none;stroke:#999;stroke-width:1}
svg .tick{fill:#555}svg .axis{fill:#333;font-size:11px}svg .title{fill:#222;font-size:12px;font-weight:600}
svg .note{fill:#999;font-size:12px}svg .diag{stroke:#999;stroke-dasharray:4 3;stroke-width:1}
svg .pts circle{fill:#1f77b4;fill-opacity:.45}
details{margin:.4em 0;font-size:.95em}summary{cursor:pointer;color:#444}
)";

}  // namespace

std::string render_training_report(const std::string& title,
                                   const std::vector<std::pair<std::string, std::string>>& config,
                                   const std::vector<ReportFold>& folds, const ReportTable& table) {
  std::string h;
  h.reserve(64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
       escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  h += "<h1>" + escape(title) + "</h1>\n";
  size_t max_epochs = 0;
  for (const auto& f : folds) max_epochs = std::max(max_epochs, f.epochs.size());
  h += "<p class=\"meta\">Generated " + utc_now() + " by hotlap &middot; " + std::to_string(folds.size()) +
       (folds.size() == 1 ? " fold" : " folds") + " &middot; up to " + std::to_string(max_epochs) +
       (max_epochs == 1 ? " epoch" : " epochs") + " per fold &middot; SCUT-FBP5500 test split</p>\n";

  // Metrics table.
  h += "<h2>Results</h2>\n<table class=\"metrics\">\n<thead><tr><th>Fold</th><th>Best epoch</th><th>PC</th>"
       "<th>MAE</th><th>RMSE</th></tr></thead>\n<tbody>\n";
  for (const auto& f : folds)
    h += row("", {escape(f.name), std::to_string(f.best_epoch), fmt(f.best_pearson), fmt(f.best_mae),
                  fmt(f.best_rmse)});
  if (folds.size() > 1)
    h += row("avg", {"Average", "", fmt(mean_of(folds, &ReportFold::best_pearson)),
                     fmt(mean_of(folds, &ReportFold::best_mae)), fmt(mean_of(folds, &ReportFold::best_rmse))});
  if (table.show_paper_rows) {
    h += row("paper", {"ResNet-18 (paper, 5-fold)", "", "0.8900", "-", "-"});
    h += row("paper", {"ResNeXt-50 (paper, 5-fold)", "", "0.8997", "0.2291", "0.3017"});
  }
  h += "</tbody>\n</table>\n";

  // Cross-fold overview.
  if (folds.size() > 1) {
    std::vector<Series> pc, loss;
    for (size_t i = 0; i < folds.size(); ++i) {
      Series a{folds[i].name, kPalette[i % kPaletteSize], {}}, b = a;
      for (const auto& e : folds[i].epochs) {
        a.points.push_back({static_cast<double>(e.epoch), e.pearson});
        b.points.push_back({static_cast<double>(e.epoch), e.train_loss});
      }
      pc.push_back(std::move(a));
      loss.push_back(std::move(b));
    }
    h += "<h2>All folds</h2>\n<div class=\"charts\">\n<figure>" +
         line_chart("Test PC per epoch", "epoch", "Pearson correlation", pc) + "</figure>\n<figure>" +
         line_chart("Training loss per epoch", "epoch", "loss", loss) + "</figure>\n</div>\n";
  }

  // Per fold.
  for (const auto& f : folds) {
    h += "<h2>" + escape(f.name) + "</h2>\n<div class=\"charts\">\n";
    Series loss{"train loss", kPalette[0], {}}, pc{"PC", kPalette[0], {}}, mae{"MAE", kPalette[1], {}},
        rmse{"RMSE", kPalette[2], {}};
    for (const auto& e : f.epochs) {
      double x = static_cast<double>(e.epoch);
      loss.points.push_back({x, e.train_loss});
      pc.points.push_back({x, e.pearson});
      mae.points.push_back({x, e.mae});
      rmse.points.push_back({x, e.rmse});
    }
    h += "<figure>" + line_chart("Training loss", "epoch", "loss", {loss}) +
         "<figcaption>mean training loss per epoch</figcaption></figure>\n";
    h += "<figure>" + line_chart("Test metrics", "epoch", "value", {pc, mae, rmse}) +
         "<figcaption>best PC " + fmt(f.best_pearson) + " at epoch " + std::to_string(f.best_epoch) +
         "</figcaption></figure>\n";
    size_t n = 0;
    std::string sc = scatter_chart(f, &n);
    h += "<figure>" + sc + "<figcaption>" + std::to_string(n) + (n == 1 ? " point" : " points") + ", PC " +
         fmt(f.best_pearson) + "</figcaption></figure>\n</div>\n";
    if (!f.epochs.empty()) {
      h += "<details><summary>Per-epoch values</summary>\n<table>\n<thead><tr><th>Epoch</th><th>Step</th>"
           "<th>Train loss</th><th>PC</th><th>MAE</th><th>RMSE</th><th>LR</th></tr></thead>\n<tbody>\n";
      for (const auto& e : f.epochs)
        h += row("", {std::to_string(e.epoch), std::to_string(e.step), fmt(e.train_loss), fmt(e.pearson),
                      fmt(e.mae), fmt(e.rmse), fmt_g(e.lr)});
      h += "</tbody>\n</table>\n</details>\n";
    }
  }

  // Configuration.
  h += "<h2>Configuration</h2>\n<table class=\"config\">\n<tbody>\n";
  for (const auto& [k, v] : config) h += "<tr><th>" + escape(k) + "</th><td>" + escape(v) + "</td></tr>\n";
  h += "</tbody>\n</table>\n</main>\n</body>\n</html>\n";
  return h;
}

void write_training_report(const std::string& path, const std::string& title,
                           const std::vector<std::pair<std::string, std::string>>& config,
                           const std::vector<ReportFold>& folds, const ReportTable& table) {
  const std::string html = render_training_report(title, config, folds, table);
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(html.data()), html.size()));
}

}  // namespace hotlap
