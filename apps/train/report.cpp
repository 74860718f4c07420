// The training report: metrics tables and line/scatter charts per fold, drawn with apps/common/html.h.
#include "apps/train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <span>

#include "apps/common/html.h"
#include "apps/train/metrics.h"
#include "apps/data/synth.h"
#include "kernels/error.h"
#include "nn/files/atomic_file.h"

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
// A horizontal dashed line across a chart at a reference value, such as a baseline's error.
struct Level {
  double y;
  std::string color;
};

constexpr double kW = 290, kH = 230;
// The font sizes html::kBaseStyle gives chart text: tick labels and legends, axis titles, titles (bold).
constexpr double kTickPx = 10, kAxisPx = 11, kTitlePx = 12;

size_t code_points(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

// An upper bound on the width of chart text: html::text_width, but never under 0.6 em a character
// (wide system fonts set digits and lower case wider than that estimate) and a tenth more in bold.
// Labels are placed with it, so that nothing drawn runs past its chart's edge in any browser.
double label_width(const std::string& text, double px, bool bold = false) {
  const double w = std::max(html::text_width(text, px), 0.6 * px * static_cast<double>(code_points(text)));
  return bold ? 1.1 * w : w;
}

// `text`, or as much of it as fits in `room` pixels followed by an ellipsis: fold names and other
// text from outside can be any length, a chart cannot.
std::string fit(const std::string& text, double px, double room, bool bold = false) {
  if (label_width(text, px, bold) <= room) return text;
  std::string t = text;
  while (!t.empty()) {
    size_t n = t.size() - 1;
    while (n > 0 && (static_cast<unsigned char>(t[n]) & 0xc0) == 0x80) --n;  // whole UTF-8 characters
    t.resize(n);
    if (label_width(t + "\u2026", px, bold) <= room) return t + "\u2026";
  }
  return "";
}

// On top of html::kBaseStyle: the average, baseline and paper rows, the notes, the scatter's diagonal
// and points, the reference levels.
const char* const kTrainingStyle = R"(
main{max-width:1200px}
tr.avg th,tr.avg td{font-weight:600;background:#fafafa}tr.paper th,tr.paper td,tr.baseline th,tr.baseline td{color:#666;font-style:italic}
p.note{font-size:.85em;color:#444;margin:.4em 0;max-width:60em}.charts figure{width:min-content}
svg .diag{stroke:#999;stroke-dasharray:4 3;stroke-width:1}svg .pts circle{fill:#1f77b4;fill-opacity:.45}
svg .level{stroke-dasharray:5 3;stroke-width:1.3}
div.scroll{overflow-x:auto}table.confusion td{text-align:right;min-width:2.2em}table.confusion thead th{font-size:.8em}
)";

// A chart's title at the top left, over the plot area when it fits there.
void draw_title(std::string& s, const std::string& title, double left, double width) {
  const std::string shown = fit(title, kTitlePx, width - 8, true);
  const double x = left + label_width(shown, kTitlePx, true) <= width - 4 ? left : 4;
  s += "<text class=\"title\" x=\"" + coord(x) + "\" y=\"14\">" + escape(shown) + "</text>";
}

// Lines over epochs. The margins follow the tick labels (an epoch axis may reach 1000, a loss 1e+300),
// the legend wraps onto more rows (and the chart grows) when its names do not fit on one, and the
// levels are dashed lines named in the legend by `levels_name`. from_zero: the y axis starts at 0 or
// below (errors: how far from no error at all, and a level near the lowest value stays off the frame).
std::string line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<Series>& series, const std::vector<Level>& levels = {},
                       const std::string& levels_name = "", bool from_zero = false) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& se : series)
    for (const auto& p : se.points)
      if (std::isfinite(p.x) && std::isfinite(p.y)) {
        xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
        ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
      }
  bool empty = !(xlo <= xhi);
  std::vector<Level> shown_levels;
  if (!empty)
    for (const Level& v : levels)
      if (std::isfinite(v.y)) {
        shown_levels.push_back(v);
        ylo = std::min(ylo, v.y), yhi = std::max(yhi, v.y);
      }
  if (from_zero && !empty) ylo = std::min(ylo, 0.0);
  Axis ax = make_axis(empty ? 1 : xlo, empty ? 1 : xhi, true, 6);
  Axis ay = make_axis(empty ? 0 : ylo, empty ? 1 : yhi, false, 5);
  double ytick = 0, xtick = 0;
  for (double v : ay.ticks) ytick = std::max(ytick, label_width(ay.label(v), kTickPx));
  for (double v : ax.ticks) xtick = std::max(xtick, label_width(ax.label(v), kTickPx));
  const double l = std::max(44.0, 22 + ytick), r = kW - std::max(10.0, xtick / 2 + 3);

  struct Entry {
    std::string name, color;
    bool dashed;
    double x = 0;
    int row = 0;
  };
  std::vector<Entry> legend;
  if (series.size() > 1)
    for (const auto& se : series) legend.push_back({se.name, se.color, false});
  if (!shown_levels.empty() && !levels_name.empty()) legend.push_back({levels_name, "#555", true});
  int rows = 0;
  double x = l;
  for (Entry& e : legend) {
    e.name = fit(e.name, kTickPx, kW - 4 - l - 18);
    const double w = 18 + label_width(e.name, kTickPx);
    if (rows == 0 || x + w > kW - 4) ++rows, x = l;
    e.x = x, e.row = rows - 1;
    x += w + 12;
  }
  const double height = kH + 14 * std::max(0, rows - 1);
  const double t = 24 + 14 * rows, b = height - 36;

  std::string s = svg_open("chart", title, kW, height);
  draw_title(s, title, l, kW);
  draw_frame(s, ax, ay, l, r, t, b, fit(xlabel, kAxisPx, kW - 8), fit(ylabel, kAxisPx, b - t + 24));
  for (const Entry& e : legend) {
    const double y = 26 + 14 * e.row;
    s += "<line x1=\"" + coord(e.x) + "\" y1=\"" + coord(y) + "\" x2=\"" + coord(e.x + 14) + "\" y2=\"" + coord(y) +
         "\" stroke=\"" + e.color + "\" stroke-width=\"2\"" + (e.dashed ? " stroke-dasharray=\"4 2\"" : "") +
         "/><text class=\"tick\" x=\"" + coord(e.x + 18) + "\" y=\"" + coord(y + 3.5) + "\">" + escape(e.name) +
         "</text>";
  }
  if (empty)
    s += "<text class=\"note\" text-anchor=\"middle\" x=\"" + coord((l + r) / 2) + "\" y=\"" +
         coord((t + b) / 2) + "\">no finite values</text>";
  for (const Level& v : shown_levels) {
    const std::string y = coord(ay.map(v.y, b, t));
    s += "<line class=\"level\" stroke=\"" + v.color + "\" x1=\"" + coord(l) + "\" y1=\"" + y + "\" x2=\"" +
         coord(r) + "\" y2=\"" + y + "\"/>";
  }
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

// Predicted (y) against true (x) on the 1-5 score scale, with the diagonal y = x. The epoch is in the
// caption, not the title: the title has to fit whatever the epoch number.
std::string scatter_chart(const ReportFold& f, size_t* count, size_t* pinned) {
  const double l = 50, t = 24, b = kH - 36, r = l + (b - t);  // square plot area
  const double width = r + 16;
  Axis a = make_axis(1, 5, true, 5);
  std::string s = svg_open("scatter", f.name + ": predicted vs true", width, kH);
  draw_title(s, "Predicted vs true", l, width);
  draw_frame(s, a, a, l, r, t, b, "true score", "predicted score");
  s += "<line class=\"diag\" x1=\"" + coord(l) + "\" y1=\"" + coord(b) + "\" x2=\"" + coord(r) + "\" y2=\"" +
       coord(t) + "\"/>";
  const size_t n = std::min(f.predicted.size(), f.truth.size());
  size_t k = 0;
  *pinned = 0;
  s += "<g class=\"pts\">";
  for (size_t i = 0; i < n; ++i) {
    double p = f.predicted[i], y = f.truth[i];
    if (!std::isfinite(p) || !std::isfinite(y)) continue;
    // Out-of-range values are pinned to the frame so they stay visible (the caption counts them).
    if (p < a.lo || p > a.hi || y < a.lo || y > a.hi) ++*pinned;
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

// A throughput for tables and notes: whole images per second from 100 up, one decimal below.
std::string rate_text(double v) {
  if (!std::isfinite(v) || v <= 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : "%.1f", v);
  return buf;
}

double mean_of(const std::vector<ReportFold>& folds, double ReportFold::*field) {
  double sum = 0;
  for (const auto& f : folds) sum += f.*field;
  return sum / static_cast<double>(folds.size());
}

// The mean of the folds' finite values of `field`; NaN when none has one (not measured).
double finite_mean_of(const std::vector<ReportFold>& folds, double ReportFold::*field) {
  double sum = 0;
  int n = 0;
  for (const auto& f : folds)
    if (std::isfinite(f.*field)) sum += f.*field, ++n;
  return n > 0 ? sum / n : kNotMeasured;
}

// A table row, padded with empty cells to `columns` so that its borders line up with the header's.
std::string row(const std::string& cls, std::vector<std::string> cells, size_t columns = 0) {
  if (cells.size() < columns) cells.resize(columns);
  std::string s = cls.empty() ? "<tr>" : "<tr class=\"" + cls + "\">";
  for (size_t i = 0; i < cells.size(); ++i) s += (i == 0 ? "<th>" : "<td>") + cells[i] + (i == 0 ? "</th>" : "</td>");
  return s + "</tr>\n";
}


// The end of the results table's notes: what its time columns mean (`timed`: the table has them; `part`:
// what a row is, "fold" or "split") and how long the whole run took.
std::string timing_notes(bool timed, const ReportTable& table, const std::string& part) {
  std::string h;
  if (timed)
    h += " Time: wall clock of the " + part + " (loading, training, testing)" +
         std::string(table.resumed ? " in this session" : "") +
         "; training img/s: images trained per second of training steps.";
  if (std::isfinite(table.run_seconds)) {
    h += " The whole run: " + duration_text(table.run_seconds);
    if (rate_text(table.images_per_s) != "") h += ", " + rate_text(table.images_per_s) + " training images/s";
    h += ".";
  }
  return h;
}

// The results table, its notes and the charts of a regressor's run.
std::string regression_sections(const std::vector<ReportFold>& folds, const ReportTable& table) {
  std::string h;
  // Metrics table: the folds, their average, the baseline every model has to beat, the paper.
  const bool timed = std::any_of(folds.begin(), folds.end(), [](const ReportFold& f) {
    return std::isfinite(f.seconds) || std::isfinite(f.images_per_s);
  });
  const double baseline_mae = finite_mean_of(folds, &ReportFold::baseline_mae),
               baseline_rmse = finite_mean_of(folds, &ReportFold::baseline_rmse);
  const bool baseline = std::isfinite(baseline_mae) || std::isfinite(baseline_rmse);
  const size_t columns = timed ? 7 : 5;
  h += "<h2>Results</h2>\n<table class=\"metrics\">\n<thead><tr><th>Fold</th><th>Best epoch</th><th>PC</th>"
       "<th>MAE</th><th>RMSE</th>" +
       std::string(timed ? "<th>Time</th><th>Training img/s</th>" : "") + "</tr></thead>\n<tbody>\n";
  for (const auto& f : folds) {
    std::vector<std::string> cells = {escape(f.name), std::to_string(f.best_epoch), number(f.best_pearson),
                                      number(f.best_mae), number(f.best_rmse)};
    if (timed) {
      cells.push_back(std::isfinite(f.seconds) ? duration_text(f.seconds) : "");
      cells.push_back(rate_text(f.images_per_s));
    }
    h += row("", cells);
  }
  if (folds.size() > 1)
    h += row("avg",
             {"Average", "", number(mean_of(folds, &ReportFold::best_pearson)),
              number(mean_of(folds, &ReportFold::best_mae)), number(mean_of(folds, &ReportFold::best_rmse))},
             columns);
  if (baseline)
    h += row("baseline",
             {folds.size() > 1 ? "Predicting the training mean (average)" : "Predicting the training mean", "",
              number(0), number(baseline_mae), number(baseline_rmse)},
             columns);
  if (table.show_paper_rows) {
    h += row("paper", {"ResNet-18 (paper, 5-fold)", "", "0.8900", "-", "-"}, columns);
    h += row("paper", {"ResNeXt-50 (paper, 5-fold)", "", "0.8997", "0.2291", "0.3017"}, columns);
  }
  h += "</tbody>\n</table>\n";
  // What the numbers are: the table has no room for units.
  h += "<p class=\"note\">PC: Pearson correlation between the predicted and the true scores of the test images "
       "(1 is perfect). MAE and RMSE: mean absolute and root-mean-square error, in score points on the 1-5 "
       "rating scale.";
  if (baseline) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& f : folds)
      if (std::isfinite(f.train_mean)) lo = std::min(lo, f.train_mean), hi = std::max(hi, f.train_mean);
    std::string mean;
    if (lo <= hi) mean = lo == hi || number(lo, 3) == number(hi, 3) ? " (" + number(lo, 3) + ")"
                                                                    : " (" + number(lo, 3) + " to " + number(hi, 3) + ")";
    h += " Predicting the training mean: every test image given the mean score of the training split" + mean +
         ", the error a model has to beat; a constant prediction has no correlation (PC 0).";
  }
  if (table.show_paper_rows)
    h += " Paper: the SCUT-FBP5500 paper's five-fold results with ImageNet-pretrained networks.";
  h += timing_notes(timed, table, "fold") + "</p>\n";

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
         line_chart("Training loss per epoch", "epoch", table.loss.empty() ? "loss" : table.loss + " loss", loss) +
         "</figure>\n</div>\n";
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
    h += "<figure>" +
         line_chart("Training loss", "epoch", table.loss.empty() ? "loss" : table.loss + " loss", {loss}) +
         "<figcaption>mean training loss per epoch</figcaption></figure>\n";
    h += "<figure>" + line_chart("Test PC", "epoch", "Pearson correlation", {pc}) + "<figcaption>best PC " +
         number(f.best_pearson) + " at epoch " + std::to_string(f.best_epoch) + "</figcaption></figure>\n";
    const bool levels = std::isfinite(f.baseline_mae) || std::isfinite(f.baseline_rmse);
    h += "<figure>" +
         line_chart("Test MAE and RMSE", "epoch", "error (score points)", {mae, rmse},
                    {{f.baseline_mae, kPalette[1]}, {f.baseline_rmse, kPalette[2]}}, "predicting the mean",
                    true) +
         "<figcaption>on the 1-5 scale" +
         (levels ? "; dashed: every image given the training mean" +
                       (std::isfinite(f.train_mean) ? " " + number(f.train_mean, 3) : std::string())
                 : std::string()) +
         "</figcaption></figure>\n";
    size_t n = 0, pinned = 0;
    std::string sc = scatter_chart(f, &n, &pinned);
    h += "<figure>" + sc + "<figcaption>" + (f.best_epoch > 0 ? "epoch " + std::to_string(f.best_epoch) + " (the best): " : "") +
         counted(static_cast<long long>(n), "point") +
         (pinned > 0 ? " (" + std::to_string(pinned) + " off the 1-5 scale, on the frame)" : "") + ", PC " +
         number(f.best_pearson) + "</figcaption></figure>\n</div>\n";
    if (!f.epochs.empty()) {
      const bool speeds = std::any_of(f.epochs.begin(), f.epochs.end(),
                                      [](const ReportEpoch& e) { return e.images_per_s > 0; });
      h += "<details><summary>Per-epoch values</summary>\n<table>\n<thead><tr><th>Epoch</th><th>Step</th>"
           "<th>Train loss</th><th>PC</th><th>MAE</th><th>RMSE</th><th>LR</th>" +
           std::string(speeds ? "<th>Img/s</th>" : "") + "</tr></thead>\n<tbody>\n";
      for (const auto& e : f.epochs) {
        std::vector<std::string> cells = {std::to_string(e.epoch), std::to_string(e.step), number(e.train_loss),
                                          number(e.pearson),        number(e.mae),           number(e.rmse),
                                          fmt_g(e.lr)};
        if (speeds) cells.push_back(rate_text(e.images_per_s));
        h += row("", cells);
      }
      h += "</tbody>\n</table>\n</details>\n";
    }
  }

  return h;
}

// A share as a percentage for tables: "93.4%".
std::string percent(double v) {
  if (!std::isfinite(v)) return number(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * v);
  return buf;
}

// A class name in a narrow column head: at most 12 characters, then an ellipsis (the row heads and the
// per-class table have the whole name).
std::string short_name(const std::string& name) {
  return code_points(name) <= 12 ? name : name.substr(0, name.size() > 11 ? 11 : name.size()) + "\u2026";
}

// The confusion matrix of a fold's best epoch (rows: the true class; columns: the first guess), each
// cell shaded by its share of its row, and each class's accuracy (its diagonal cell over its row) at
// the end of the row. Too many classes for a grid (ImageNet's thousand): the per-class table alone.
std::string confusion_table(const ReportFold& f) {
  const auto k = static_cast<int64_t>(f.classes.size());
  if (k == 0 || f.confusion.size() != static_cast<size_t>(k * k)) return "";
  const auto cell = [&](int64_t t, int64_t p) { return f.confusion[static_cast<size_t>(t * k + p)]; };
  std::vector<ClassTally> tallies;
  for (int64_t t = 0; t < k; ++t) tallies.push_back(class_tally(f.confusion, k, t));
  // A class's accuracy; one with no held-out image sorts last.
  const auto accuracy = [&](int64_t t) {
    const ClassTally& c = tallies[static_cast<size_t>(t)];
    return c.total > 0 ? static_cast<double>(c.right) / static_cast<double>(c.total) : 2.0;
  };
  const auto accuracy_text = [&](int64_t t) { return tallies[static_cast<size_t>(t)].total > 0 ? percent(accuracy(t)) : "-"; };
  std::string h;
  if (k <= 30) {
    h += "<div class=\"scroll\"><table class=\"confusion\">\n<thead><tr><th>true \u2193 / guessed \u2192</th>";
    for (const auto& name : f.classes) h += "<th title=\"" + escape(name) + "\">" + escape(short_name(name)) + "</th>";
    h += "<th>Accuracy</th><th>Images</th></tr></thead>\n<tbody>\n";
    for (int64_t t = 0; t < k; ++t) {
      const int64_t total = tallies[static_cast<size_t>(t)].total;
      h += "<tr><th>" + escape(f.classes[static_cast<size_t>(t)]) + "</th>";
      for (int64_t p = 0; p < k; ++p) {
        const double share = total > 0 ? static_cast<double>(cell(t, p)) / static_cast<double>(total) : 0.0;
        char style[64];
        std::snprintf(style, sizeof style, " style=\"background:rgba(%s,%.2f)\"",
                      t == p ? "44,160,44" : "214,39,40", share > 0 ? 0.1 + 0.6 * share : 0.0);
        h += "<td" + std::string(share > 0 ? style : "") + ">" + std::to_string(cell(t, p)) + "</td>";
      }
      h += "<td>" + accuracy_text(t) + "</td><td>" + std::to_string(total) + "</td></tr>\n";
    }
    return h + "</tbody>\n</table></div>\n";
  }
  // Many classes: each class's accuracy, the worst first.
  std::vector<int64_t> order(static_cast<size_t>(k));
  for (int64_t t = 0; t < k; ++t) order[static_cast<size_t>(t)] = t;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return accuracy(a) < accuracy(b); });
  h += "<details><summary>Accuracy of each of the " + std::to_string(k) + " classes, the worst first</summary>\n"
       "<table>\n<thead><tr><th>Class</th><th>Accuracy</th><th>Images</th></tr></thead>\n<tbody>\n";
  for (int64_t t : order)
    h += row("", {escape(f.classes[static_cast<size_t>(t)]), accuracy_text(t),
                  std::to_string(tallies[static_cast<size_t>(t)].total)});
  return h + "</tbody>\n</table>\n</details>\n";
}

// The results table, its notes and the charts of a classifier's run.
std::string classification_sections(const std::vector<ReportFold>& folds, const ReportTable& table) {
  std::string h;
  const bool timed = std::any_of(folds.begin(), folds.end(), [](const ReportFold& f) {
    return std::isfinite(f.seconds) || std::isfinite(f.images_per_s);
  });
  const bool top5 = std::any_of(folds.begin(), folds.end(), [](const ReportFold& f) { return f.classes.size() > 5; });
  const size_t columns = 3 + (top5 ? 1 : 0) + (timed ? 2 : 0);
  h += "<h2>Results</h2>\n<table class=\"metrics\">\n<thead><tr><th>Split</th><th>Best epoch</th><th>Top-1</th>" +
       std::string(top5 ? "<th>Top-5</th>" : "") +
       std::string(timed ? "<th>Time</th><th>Training img/s</th>" : "") + "</tr></thead>\n<tbody>\n";
  for (const auto& f : folds) {
    std::vector<std::string> cells = {escape(f.name), std::to_string(f.best_epoch), percent(f.best_top1)};
    if (top5) cells.push_back(percent(f.best_top5));
    if (timed) {
      cells.push_back(std::isfinite(f.seconds) ? duration_text(f.seconds) : "");
      cells.push_back(rate_text(f.images_per_s));
    }
    h += row("", cells);
  }
  const double majority = finite_mean_of(folds, &ReportFold::majority_accuracy);
  if (std::isfinite(majority)) h += row("baseline", {"Always the most frequent class", "", percent(majority)}, columns);
  h += "</tbody>\n</table>\n";
  h += "<p class=\"note\">Top-1: the share of the held-out images whose class is the network's first guess" +
       std::string(top5 ? "; top-5: whose class is among its five highest scores" : "") + ".";
  if (std::isfinite(majority))
    h += " Always the most frequent class: every held-out image given the class the training split has most of, "
         "the accuracy a model has to beat.";
  h += timing_notes(timed, table, "split") + "</p>\n";
  for (const auto& f : folds) {
    h += "<h2>" + escape(f.name) + "</h2>\n<div class=\"charts\">\n";
    Series loss{"train loss", kPalette[0], {}}, one{"top-1", kPalette[0], {}}, five{"top-5", kPalette[1], {}};
    for (const auto& e : f.epochs) {
      const double x = static_cast<double>(e.epoch);
      loss.points.push_back({x, e.train_loss});
      one.points.push_back({x, 100 * e.top1});
      five.points.push_back({x, 100 * e.top5});
    }
    std::vector<Series> accuracy = {one};
    if (f.classes.size() > 5) accuracy.push_back(five);
    h += "<figure>" + line_chart("Training loss", "epoch", "cross-entropy", {loss}) +
         "<figcaption>mean training loss per epoch</figcaption></figure>\n";
    h += "<figure>" +
         line_chart("Held-out accuracy", "epoch", "accuracy (%)", accuracy,
                    {{100 * f.majority_accuracy, kPalette[7]}}, "the most frequent class", true) +
         "<figcaption>best top-1 " + percent(f.best_top1) + " at epoch " + std::to_string(f.best_epoch) +
         "</figcaption></figure>\n</div>\n";
    if (!f.confusion.empty())
      h += "<h3>Confusion at epoch " + std::to_string(f.best_epoch) + " (the best)</h3>\n" + confusion_table(f);
    if (!f.epochs.empty()) {
      const bool speeds = std::any_of(f.epochs.begin(), f.epochs.end(),
                                      [](const ReportEpoch& e) { return e.images_per_s > 0; });
      h += "<details><summary>Per-epoch values</summary>\n<table>\n<thead><tr><th>Epoch</th><th>Step</th>"
           "<th>Train loss</th><th>Top-1</th>" +
           std::string(top5 ? "<th>Top-5</th>" : "") + "<th>LR</th>" + std::string(speeds ? "<th>Img/s</th>" : "") +
           "</tr></thead>\n<tbody>\n";
      for (const auto& e : f.epochs) {
        std::vector<std::string> cells = {std::to_string(e.epoch), std::to_string(e.step), number(e.train_loss),
                                          percent(e.top1)};
        if (top5) cells.push_back(percent(e.top5));
        cells.push_back(fmt_g(e.lr));
        if (speeds) cells.push_back(rate_text(e.images_per_s));
        h += row("", cells);
      }
      h += "</tbody>\n</table>\n</details>\n";
    }
  }
  return h;
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
       counted(static_cast<long long>(folds.size()), "fold") + " &middot; up to " +
       counted(static_cast<long long>(max_epochs), "epoch") + " per fold &middot; " +
       (table.data.empty() ? std::string("tested on the held-out split")
                           : "tested on the held-out split of " + escape(table.data));
  if (std::isfinite(table.run_seconds))
    h += " &middot; run time " + duration_text(table.run_seconds) + (table.resumed ? " (this session)" : "");
  h += "</p>\n";

  h += table.classify ? classification_sections(folds, table) : regression_sections(folds, table);

  // Configuration.
  h += "<h2>Configuration</h2>\n<table class=\"config\">\n<tbody>\n";
  for (const auto& [k, v] : config) h += "<tr><th>" + escape(k) + "</th><td>" + escape(v) + "</td></tr>\n";
  h += "</tbody>\n</table>\n</main>\n</body>\n</html>\n";
  return h;
}

std::string training_data_name(const std::string& data_dir, const std::string& labels_file,
                               const std::string& ratings_csv) {
  namespace fs = std::filesystem;
  // The last part of a path, also when it ends with a separator ("data/" is "data").
  const auto name = [](const std::string& path) {
    fs::path p(path);
    if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
    const std::string n = p.filename().string();
    return n.empty() ? path : n;
  };
  if (!labels_file.empty()) return "labels file " + name(labels_file);  // a classifier's class CSV too
  if (!ratings_csv.empty()) return "ratings file " + name(ratings_csv);
  if (data_dir.empty()) return "";
  if (is_synthetic_scut(data_dir)) return "synthetic faces from hotlap synth (" + name(data_dir) + ")";
  if (is_synthetic_classes(data_dir)) return "synthetic shapes from hotlap synth (" + name(data_dir) + ")";
  return name(data_dir);
}

std::vector<std::pair<std::string, std::string>> training_report_config(
    const std::vector<std::pair<std::string, std::string>>& json_entries, const std::string& device) {
  // A JSON value as people read it: a string without quotes and escapes; a fractional number with 6
  // significant digits (0.9000000000000002 is 0.9); integers whole (a 64-bit seed must stay exact).
  const auto plain = [](const std::string& json) -> std::string {
    if (json.size() >= 2 && json.front() == '"' && json.back() == '"') {
      std::string out;
      for (size_t i = 1; i + 1 < json.size(); ++i) {
        if (json[i] == '\\' && i + 2 < json.size()) ++i;
        out += json[i];
      }
      return out;
    }
    if (!json.empty() && json.find_first_of(".eE") != std::string::npos) {
      char* end = nullptr;
      const double v = std::strtod(json.c_str(), &end);
      if (end == json.c_str() + json.size()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        return buf;
      }
    }
    return json;
  };
  std::map<std::string, std::string> value;
  for (const auto& [k, v] : json_entries) value[k] = plain(v);
  const auto get = [&](const std::string& key) {
    const auto it = value.find(key);
    return it == value.end() ? std::string() : it->second;
  };
  const auto given = [&](const std::string& key) { return !get(key).empty() && get(key) != "0"; };
  // --labels and --ratings are split 80/20 whatever --protocol says; only 5fold has folds.
  const bool classify = get("task") == "classify";
  const bool split_files = get("labels").empty() && get("ratings").empty();
  const bool has_folds = !classify && split_files && get("protocol") == "5fold";
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, json] : json_entries) {
    std::string shown = value[key];
    if (key == "momentum" && get("optimizer") == "adamw") continue;
    if (key == "step_size" && (get("schedule") != "step" || given("step_epochs"))) continue;
    if (key == "warmup" && (get("schedule") != "cosine" || given("warmup_epochs"))) continue;
    if (key == "step_epochs" && (get("schedule") != "step" || shown == "0")) continue;
    if (key == "warmup_epochs" && (get("schedule") != "cosine" || shown == "0")) continue;
    if (key == "fold") {
      if (!has_folds) continue;
      if (shown == "0") shown = "all five";
    }
    if (key == "protocol" && !split_files) shown = "80-20";
    if (key == "protocol" && classify) {
      if (split_files) continue;  // an image folder's train/ and val/
      shown = "80-20";
    }
    // A regressor's settings in a classifier's run, and the other way round.
    if ((key == "label_smoothing" || key == "min_scale") && !classify) continue;
    if ((key == "whole_image" || key == "ratings" || key == "images") && classify) continue;
    if ((key == "epochs" || key == "iterations") && shown == "0") continue;
    if (key == "device" && !device.empty()) shown = device;
    if (shown.empty()) continue;  // a path that was not given
    out.emplace_back(key, shown);
  }
  return out;
}

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  char buf[48];
  if (seconds < 9.95) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 59.5) {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  } else if (seconds < 3599.5) {
    const long long t = std::llround(seconds);
    std::snprintf(buf, sizeof buf, "%lld min %02lld s", t / 60, t % 60);
  } else {
    const long long m = std::llround(seconds / 60);
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", m / 60, m % 60);
  }
  return buf;
}

void write_training_report(const std::string& path, const std::string& title,
                           const std::vector<std::pair<std::string, std::string>>& config,
                           const std::vector<ReportFold>& folds, const ReportTable& table) {
  const std::string page = render_training_report(title, config, folds, table);
  write_file_atomically(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(page.data()), page.size()));
}

}  // namespace hotlap
