// The training report: metrics tables and line/scatter charts per fold, drawn with apps/html.h.
#include "apps/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

#include "apps/html.h"
#include "nn/atomic_file.h"

namespace hotlap {
namespace {

using html::Axis, html::coord, html::draw_frame, html::escape, html::make_axis, html::number, html::svg_open;

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

std::string fmt_g(double v) {
  if (!std::isfinite(v)) return number(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
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

// On top of html::kBaseStyle: the average and paper rows, the scatter's diagonal and points.
const char* const kTrainingStyle = R"(
tr.avg th,tr.avg td{font-weight:600;background:#fafafa}tr.paper th,tr.paper td{color:#666;font-style:italic}
svg .diag{stroke:#999;stroke-dasharray:4 3;stroke-width:1}svg .pts circle{fill:#1f77b4;fill-opacity:.45}
)";

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

  std::string s = svg_open("chart", title, kW, kH);
  s += "<text class=\"title\" x=\"" + coord(l) + "\" y=\"14\">" + escape(title) + "</text>";
  draw_frame(s, ax, ay, l, r, t, b, xlabel, ylabel);
  if (legend) {
    double x = l;
    for (const auto& se : series) {
      s += "<line x1=\"" + coord(x) + "\" y1=\"26\" x2=\"" + coord(x + 14) + "\" y2=\"26\" stroke=\"" +
           se.color + "\" stroke-width=\"2\"/><text class=\"tick\" x=\"" + coord(x + 18) + "\" y=\"29.5\">" +
           escape(se.name) + "</text>";
      x += 34 + 6.5 * static_cast<double>(std::min<size_t>(se.name.size(), 16));
    }
  }
  if (empty)
    s += "<text class=\"note\" text-anchor=\"middle\" x=\"" + coord((l + r) / 2) + "\" y=\"" +
         coord((t + b) / 2) + "\">no finite values</text>";
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
          s += coord(run[i].x);
          s += ',';
          s += coord(run[i].y);
        }
        s += "\"/>";
      }
      if (run.size() <= 25)
        for (const auto& p : run)
          s += "<circle cx=\"" + coord(p.x) + "\" cy=\"" + coord(p.y) + "\" r=\"2.2\"/>";
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
  std::string s = svg_open("scatter", f.name + ": predicted vs true", r + 16, kH);
  s += "<text class=\"title\" x=\"" + coord(l) + "\" y=\"14\">Predicted vs true (epoch " +
       std::to_string(f.best_epoch) + ")</text>";
  draw_frame(s, a, a, l, r, t, b, "true score", "predicted score");
  s += "<line class=\"diag\" x1=\"" + coord(l) + "\" y1=\"" + coord(b) + "\" x2=\"" + coord(r) + "\" y2=\"" +
       coord(t) + "\"/>";
  const size_t n = std::min(f.predicted.size(), f.truth.size());
  size_t k = 0;
  s += "<g class=\"pts\">";
  for (size_t i = 0; i < n; ++i) {
    double p = f.predicted[i], y = f.truth[i];
    if (!std::isfinite(p) || !std::isfinite(y)) continue;
    // Out-of-range values are pinned to the frame so they stay visible.
    double cx = a.map(std::clamp(y, a.lo, a.hi), l, r), cy = a.map(std::clamp(p, a.lo, a.hi), b, t);
    s += "<circle cx=\"" + coord(cx) + "\" cy=\"" + coord(cy) + "\" r=\"1.8\"/>";
    ++k;
  }
  s += "</g>";
  if (k == 0)
    s += "<text class=\"note\" text-anchor=\"middle\" x=\"" + coord((l + r) / 2) + "\" y=\"" +
         coord((t + b) / 2) + "\">no predictions</text>";
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

}  // namespace

std::string render_training_report(const std::string& title,
                                   const std::vector<std::pair<std::string, std::string>>& config,
                                   const std::vector<ReportFold>& folds, const ReportTable& table) {
  std::string h;
  h.reserve(64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
       escape(title) + "</title>\n<style>" + html::kBaseStyle + kTrainingStyle +
       "</style>\n</head>\n<body>\n<main>\n";
  h += "<h1>" + escape(title) + "</h1>\n";
  size_t max_epochs = 0;
  for (const auto& f : folds) max_epochs = std::max(max_epochs, f.epochs.size());
  h += "<p class=\"meta\">Generated " + html::utc_now() + " by hotlap &middot; " +
       std::to_string(folds.size()) +
       (folds.size() == 1 ? " fold" : " folds") + " &middot; up to " + std::to_string(max_epochs) +
       (max_epochs == 1 ? " epoch" : " epochs") + " per fold &middot; SCUT-FBP5500 test split</p>\n";

  // Metrics table.
  h += "<h2>Results</h2>\n<table class=\"metrics\">\n<thead><tr><th>Fold</th><th>Best epoch</th><th>PC</th>"
       "<th>MAE</th><th>RMSE</th></tr></thead>\n<tbody>\n";
  for (const auto& f : folds)
    h += row("", {escape(f.name), std::to_string(f.best_epoch), number(f.best_pearson), number(f.best_mae),
                  number(f.best_rmse)});
  if (folds.size() > 1)
    h += row("avg", {"Average", "", number(mean_of(folds, &ReportFold::best_pearson)),
                     number(mean_of(folds, &ReportFold::best_mae)),
                     number(mean_of(folds, &ReportFold::best_rmse))});
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
         "<figcaption>best PC " + number(f.best_pearson) + " at epoch " + std::to_string(f.best_epoch) +
         "</figcaption></figure>\n";
    size_t n = 0;
    std::string sc = scatter_chart(f, &n);
    h += "<figure>" + sc + "<figcaption>" + std::to_string(n) + (n == 1 ? " point" : " points") + ", PC " +
         number(f.best_pearson) + "</figcaption></figure>\n</div>\n";
    if (!f.epochs.empty()) {
      h += "<details><summary>Per-epoch values</summary>\n<table>\n<thead><tr><th>Epoch</th><th>Step</th>"
           "<th>Train loss</th><th>PC</th><th>MAE</th><th>RMSE</th><th>LR</th></tr></thead>\n<tbody>\n";
      for (const auto& e : f.epochs)
        h += row("", {std::to_string(e.epoch), std::to_string(e.step), number(e.train_loss),
                      number(e.pearson), number(e.mae), number(e.rmse), fmt_g(e.lr)});
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
  const std::string page = render_training_report(title, config, folds, table);
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(page.data()), page.size()));
}

}  // namespace hotlap
