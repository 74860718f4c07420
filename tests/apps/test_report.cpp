// The HTML training report: content, escaping, well-formed SVG on edge cases, atomic writing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "apps/browser_util.h"
#include "apps/train/report.h"
#include "apps/data/synth.h"
#include "apps/train/train.h"
#include "cli_util.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::TempDir;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// Each <svg ...>...</svg> block of the document.
std::vector<std::string> svgs(const std::string& html, const std::string& cls = "") {
  std::vector<std::string> out;
  const std::string open = cls.empty() ? "<svg" : "<svg class=\"" + cls + "\"";
  for (size_t p = html.find(open); p != std::string::npos; p = html.find(open, p + 1)) {
    size_t e = html.find("</svg>", p);
    if (e == std::string::npos) break;
    out.push_back(html.substr(p, e + 6 - p));
  }
  return out;
}

// The value of attribute `name` in a tag's text, "" when absent.
std::string attribute(const std::string& tag, const std::string& name) {
  const std::regex re("(^|\\s)" + name + "=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(tag, m, re) ? std::string(m[2]) : std::string();
}

// Characters as drawn: an entity such as &amp; is one.
size_t drawn_chars(const std::string& text) {
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xc0) == 0x80) continue;
    if (c == '&') i = text.find(';', i);
    ++n;
  }
  return n;
}

// Every <text> of every chart lies inside its viewBox, and no two overlap, with a width estimated
// conservatively: 0.6 em a character at the font size its class has (html::kBaseStyle), a tenth more
// for the bold titles. Anchors and classes are inherited from the enclosing <g>; the rotated axis title
// is checked along its length vertically.
void check_text_inside(const std::string& html) {
  for (const auto& svg : svgs(html)) {
    const std::string view = attribute(svg.substr(0, svg.find('>')), "viewBox");
    double vx = 0, vy = 0, width = 0, height = 0;
    REQUIRE(std::sscanf(view.c_str(), "%lf %lf %lf %lf", &vx, &vy, &width, &height) == 4);
    struct Box {
      double x0, x1, y0, y1;
      std::string text;
    };
    std::vector<Box> boxes;
    std::vector<std::pair<std::string, std::string>> groups;  // (anchor, class) of the open <g>s
    for (size_t p = svg.find('<'); p != std::string::npos; p = svg.find('<', p + 1)) {
      const size_t e = svg.find('>', p);
      REQUIRE(e != std::string::npos);
      const std::string tag = svg.substr(p + 1, e - p - 1);
      if (tag == "g" || tag.rfind("g ", 0) == 0) {
        std::string anchor = attribute(tag, "text-anchor"), cls = attribute(tag, "class");
        if (!groups.empty()) {
          if (anchor.empty()) anchor = groups.back().first;
          if (cls.empty()) cls = groups.back().second;
        }
        groups.emplace_back(anchor, cls);
        continue;
      }
      if (tag == "/g") {
        REQUIRE(!groups.empty());
        groups.pop_back();
        continue;
      }
      if (tag.rfind("text ", 0) != 0) continue;
      const size_t close = svg.find("</text>", e);
      REQUIRE(close != std::string::npos);
      const std::string text = svg.substr(e + 1, close - e - 1);
      std::string anchor = attribute(tag, "text-anchor"), cls = attribute(tag, "class");
      if (anchor.empty() && !groups.empty()) anchor = groups.back().first;
      if (cls.empty() && !groups.empty()) cls = groups.back().second;
      const double px = cls == "title" || cls == "note" ? 12 : cls == "axis" ? 11 : 10;
      const double w = (cls == "title" ? 0.66 : 0.6) * px * static_cast<double>(drawn_chars(text));
      const double before = anchor == "middle" ? w / 2 : anchor == "end" ? w : 0;
      INFO("text \"" << text << "\" (" << tag << ") in a viewBox " << view);
      const std::string transform = attribute(tag, "transform");
      if (!transform.empty()) {  // the y axis title: translate(X Y) rotate(-90), anchored in the middle
        double tx = 0, ty = 0;
        REQUIRE(std::sscanf(transform.c_str(), "translate(%lf %lf) rotate(-90)", &tx, &ty) == 2);
        CHECK(tx - 0.8 * px >= 0);
        CHECK(tx + 0.25 * px <= width);
        CHECK(ty - w / 2 >= 0);
        CHECK(ty + w / 2 <= height);
        continue;
      }
      const double x = std::stod(attribute(tag, "x")), y = std::stod(attribute(tag, "y"));
      CHECK(x - before >= 0);
      CHECK(x - before + w <= width);
      CHECK(y - 0.8 * px >= 0);
      CHECK(y + 0.25 * px <= height);
      boxes.push_back({x - before, x - before + w, y - 0.75 * px, y + 0.2 * px, text});
    }
    for (size_t i = 0; i < boxes.size(); ++i)
      for (size_t j = i + 1; j < boxes.size(); ++j) {
        const Box &a = boxes[i], &b = boxes[j];
        INFO("\"" << a.text << "\" and \"" << b.text << "\" in a viewBox " << view);
        CHECK_FALSE((a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1));
      }
  }
}

// Well-formed enough: <svg> balanced, every SVG attribute value a number list (no nan / inf), every
// label inside its chart.
void check_svg_sane(const std::string& html) {
  CHECK(count(html, "<svg") == count(html, "</svg>"));
  CHECK(count(html, "<svg") > 0);
  static const std::regex coord(
      R"#(\s(x|y|x1|x2|y1|y2|cx|cy|r|width|height|points)="([^"]*)")#");
  for (const auto& svg : svgs(html)) {
    CHECK(count(svg, "<svg") == 1);
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), coord); it != std::sregex_iterator(); ++it) {
      const std::string v = (*it)[2];
      INFO("attribute " << (*it)[1] << "=\"" << v << "\"");
      CHECK(v.find("nan") == std::string::npos);
      CHECK(v.find("inf") == std::string::npos);
      CHECK(std::regex_match(v, std::regex(R"(^[-0-9., ]+$)")));
    }
    CHECK(svg.find("nan\"") == std::string::npos);
  }
  check_text_inside(html);
}

ReportFold make_fold(const std::string& name, int epochs, size_t points, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  ReportFold f;
  f.name = name;
  double best = -1;
  for (int e = 1; e <= epochs; ++e) {
    ReportEpoch r;
    r.epoch = e;
    r.step = e * 69;
    r.train_loss = 0.08 + 0.9 * std::exp(-0.35 * e) + 0.005 * noise(rng);
    r.pearson = 0.89 - 0.3 * std::exp(-0.3 * e) + 0.004 * noise(rng);
    r.mae = 0.22 + 0.25 * std::exp(-0.3 * e) + 0.004 * noise(rng);
    r.rmse = 0.29 + 0.3 * std::exp(-0.3 * e) + 0.004 * noise(rng);
    r.lr = 1e-3 * 0.5 * (1 + std::cos(M_PI * (e - 1) / epochs));
    if (r.pearson > best) {
      best = r.pearson;
      f.best_epoch = e, f.best_pearson = r.pearson, f.best_mae = r.mae, f.best_rmse = r.rmse;
    }
    f.epochs.push_back(r);
  }
  std::uniform_real_distribution<double> score(1.3, 4.6);
  for (size_t i = 0; i < points; ++i) {
    double t = score(rng);
    f.truth.push_back(static_cast<float>(t));
    f.predicted.push_back(static_cast<float>(3.0 + 0.85 * (t - 3.0) + 0.27 * noise(rng)));
  }
  return f;
}

const std::vector<std::pair<std::string, std::string>> kConfig = {
    {"model", "resnet18"}, {"epochs", "20"}, {"batch", "32"}, {"lr", "0.001"}, {"device", "cuda:0"}};

TEST_CASE("report: title, fold names, table values and the paper rows only when asked") {
  std::vector<ReportFold> folds;
  for (int i = 1; i <= 5; ++i) folds.push_back(make_fold("fold" + std::to_string(i), 6, 40, i));
  folds[0].best_epoch = 5, folds[0].best_pearson = 0.87654321, folds[0].best_mae = 0.2345, folds[0].best_rmse = 0.3;

  const std::string html = render_training_report("ResNet-18 five folds", kConfig, folds);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<h1>ResNet-18 five folds</h1>") == 1);
  CHECK(count(html, "<title>ResNet-18 five folds</title>") == 1);
  CHECK(html.find("Generated ") != std::string::npos);
  for (const auto& f : folds) CHECK(html.find("<h2>" + f.name + "</h2>") != std::string::npos);
  CHECK(html.find("<tr><th>fold1</th><td>5</td><td>0.8765</td><td>0.2345</td><td>0.3000</td></tr>") !=
        std::string::npos);
  CHECK(html.find("<th>Average</th>") != std::string::npos);
  CHECK(html.find("<th>model</th><td>resnet18</td>") != std::string::npos);
  CHECK(html.find("ResNeXt-50") == std::string::npos);
  CHECK(html.find("0.8997") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  check_svg_sane(html);

  const std::string paper = render_training_report("ResNet-18 five folds", kConfig, folds, {.show_paper_rows = true});
  CHECK(paper.find("<th>ResNet-18 (paper, 5-fold)</th><td></td><td>0.8900</td><td>-</td><td>-</td>") !=
        std::string::npos);
  CHECK(paper.find("<th>ResNeXt-50 (paper, 5-fold)</th><td></td><td>0.8997</td><td>0.2291</td><td>0.3017</td>") !=
        std::string::npos);
}

TEST_CASE("report: a single fold has no average row") {
  const std::string html = render_training_report("60-40 split", kConfig, {make_fold("60-40", 3, 10, 7)});
  CHECK(html.find("<h2>60-40</h2>") != std::string::npos);
  CHECK(html.find("Average") == std::string::npos);
  check_svg_sane(html);
}

TEST_CASE("report: the scatter has one circle per finite prediction") {
  ReportFold f = make_fold("fold1", 4, 100, 3);
  f.predicted[3] = std::numeric_limits<float>::quiet_NaN();
  f.truth[7] = std::numeric_limits<float>::infinity();
  f.predicted[9] = 9.5f;  // out of range: still drawn (pinned to the frame)
  const std::string html = render_training_report("t", {}, {f});
  auto scatter = svgs(html, "scatter");
  REQUIRE(scatter.size() == 1);
  CHECK(count(scatter[0], "<circle") == 98);
  size_t off_scale = 0;
  for (size_t i = 0; i < f.predicted.size(); ++i)
    if (std::isfinite(f.predicted[i]) && std::isfinite(f.truth[i]) &&
        (f.predicted[i] < 1 || f.predicted[i] > 5 || f.truth[i] < 1 || f.truth[i] > 5))
      ++off_scale;
  CHECK(off_scale >= 1);  // the 9.5
  CHECK(html.find("98 points (" + std::to_string(off_scale) + " off the 1-5 scale, on the frame), PC ") !=
        std::string::npos);
  CHECK(scatter[0].find("class=\"diag\"") != std::string::npos);
  check_svg_sane(html);
}

TEST_CASE("report: all text is escaped") {
  ReportFold f = make_fold("a<b>&\"c'", 2, 5, 1);
  const std::string html = render_training_report(
      "Run <1> & \"2\"", {{"note", "<script>alert('x')</script>"}, {"k&<", "v"}}, {f});
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("<th>k&amp;&lt;</th>") != std::string::npos);
  CHECK(html.find("<h1>Run &lt;1&gt; &amp; &quot;2&quot;</h1>") != std::string::npos);
  CHECK(html.find("<h2>a&lt;b&gt;&amp;&quot;c&#39;</h2>") != std::string::npos);
  CHECK(html.find("a<b>") == std::string::npos);
  check_svg_sane(html);
}

TEST_CASE("report: edge cases give well-formed output") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();

  SUBCASE("one epoch") {
    ReportFold f = make_fold("fold1", 1, 20, 2);
    const std::string html = render_training_report("t", kConfig, {f});
    check_svg_sane(html);
    CHECK(count(html, "<polyline") == 0);  // a single point is a dot, not a line
    CHECK(count(html, "<circle") >= 4 + 20);
  }
  SUBCASE("NaN and infinite values") {
    ReportFold f = make_fold("fold1", 6, 20, 2);
    f.epochs[2].train_loss = nan;
    f.epochs[3].pearson = inf;
    f.epochs[4].mae = -inf;
    f.epochs[0].epoch = 1;
    f.best_pearson = nan, f.best_mae = inf, f.best_rmse = nan;
    ReportFold g = make_fold("fold2", 6, 0, 3);
    for (auto& e : g.epochs) e.train_loss = e.pearson = e.mae = e.rmse = nan;  // nothing finite at all
    const std::string html = render_training_report("t", kConfig, {f, g});
    check_svg_sane(html);
    CHECK(html.find("<td>nan</td>") != std::string::npos);
    CHECK(html.find("<td>inf</td>") != std::string::npos);
    CHECK(html.find("no finite values") != std::string::npos);
  }
  SUBCASE("empty predictions and no epochs") {
    ReportFold f;
    f.name = "empty";
    const std::string html = render_training_report("t", {}, {f});
    check_svg_sane(html);
    auto scatter = svgs(html, "scatter");
    REQUIRE(scatter.size() == 1);
    CHECK(count(scatter[0], "<circle") == 0);
    CHECK(html.find("0 points") != std::string::npos);
    CHECK(html.find("no predictions") != std::string::npos);
  }
  SUBCASE("constant series and huge values") {
    ReportFold f = make_fold("fold1", 5, 10, 2);
    for (auto& e : f.epochs) e.train_loss = 0.5, e.pearson = 0, e.mae = 0, e.rmse = 0;
    ReportFold g = make_fold("fold2", 5, 10, 2);
    g.epochs[1].train_loss = 1e300;
    g.epochs[2].train_loss = -1e300;
    const std::string html = render_training_report("t", {}, {f, g});
    check_svg_sane(html);
  }
  SUBCASE("no folds at all") {
    const std::string html = render_training_report("t", {}, {});
    CHECK(count(html, "<svg") == 0);
    CHECK(html.find("</html>") != std::string::npos);
  }
}

TEST_CASE("report: write_training_report writes the file, an unwritable path throws naming it") {
  TempDir dir;
  const std::string path = dir.file("report.html");
  std::vector<ReportFold> folds = {make_fold("fold1", 3, 10, 1)};
  write_training_report(path, "written", kConfig, folds);
  const auto bytes = test::read_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  CHECK(text.find("<h1>written</h1>") != std::string::npos);
  CHECK(text.find("</html>") != std::string::npos);
  CHECK(dir.listing() == std::vector<std::string>{"report.html"});

  const std::string bad = dir.file("no/such/dir/report.html");
  CHECK_THROWS_AS(write_training_report(bad, "x", {}, folds), Error);
  try {
    write_training_report(bad, "x", {}, folds);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(bad) != std::string::npos);
  }
}

// The hardest report to lay out: five folds of 1000 epochs with long names, tick labels of many digits.
struct LongReport {
  std::vector<ReportFold> folds;
  ReportTable table;
};
LongReport long_report() {
  LongReport r;
  for (int i = 1; i <= 5; ++i) {
    ReportFold f = make_fold("cross-validation fold " + std::to_string(i) + " of a run with a long name", 1000, 200, i);
    f.best_epoch = 1000;
    f.train_mean = 3.01, f.baseline_mae = 0.55, f.baseline_rmse = 0.69;
    f.seconds = 3725, f.images_per_s = 412.5;
    r.folds.push_back(std::move(f));
  }
  r.folds[1].epochs[10].train_loss = 123456789.0;  // tick labels of many digits
  r.folds[2].epochs[20].mae = -0.000123456;
  r.table.show_paper_rows = true;
  r.table.data = "synthetic faces from hotlap synth (a folder with a long name)";
  r.table.loss = "smooth_l1";
  r.table.run_seconds = 5 * 3725;
  return r;
}

TEST_CASE("report: no chart text runs past its chart or over another, to 1000 epochs and long fold names") {
  const auto [folds, table] = long_report();
  const std::string html = render_training_report("t", kConfig, folds, table);
  CHECK(count(html, "<svg") == 2 + 5 * 4);
  check_svg_sane(html);  // every <text> checked
  check_svg_sane(render_training_report("t", kConfig, {folds[0]}, table));
  // Resumed at epoch 120: the epoch axis starts at three digits, beside the y axis's labels.
  ReportFold late = make_fold("fold1", 60, 20, 9);
  for (auto& e : late.epochs) e.epoch += 119;
  late.best_epoch += 119;
  check_svg_sane(render_training_report("t", kConfig, {late}));
}

// The same long report measured in the browser's own font: every <text> of every chart (rotated axis
// titles included) inside its <svg>, and the page no wider than its window.
TEST_CASE("report: headless Chromium finds every chart text inside its chart, to 1000 epochs and long names") {
  if (test::skip_browser_tests("the training report")) return;
  const std::string chromium = test::find_chromium();
  REQUIRE_MESSAGE(!chromium.empty(), "chromium is not installed: run scripts/install-deps.sh --test (make test "
                                     "does), or set HOTLAP_SKIP_BROWSER_TESTS=1 to skip this test");
  const auto [folds, table] = long_report();
  std::string page = render_training_report("t", kConfig, folds, table);
  const std::string probe = R"(<script>
window.addEventListener("load", () => {
  let texts = 0, outside = 0, first = "";
  for (const svg of document.querySelectorAll("svg")) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll("text")) {
      texts++;
      const r = t.getBoundingClientRect();  // after any rotation, in the page's pixels
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        outside++;
        if (!first) first = t.textContent;
      }
    }
  }
  const wide = document.documentElement.scrollWidth > window.innerWidth ? 1 : 0;
  const out = document.createElement("pre");
  out.textContent = `PROBE texts=${texts} outside=${outside} wide=${wide} first=[${first}]`;
  document.body.appendChild(out);
});
</script>
)";
  const size_t body_end = page.rfind("</body>");
  REQUIRE(body_end != std::string::npos);
  page.insert(body_end, probe);
  TempDir dir;
  const std::string probed = dir.file("probed.html"), dom = dir.file("dom.html");
  std::ofstream(probed, std::ios::binary) << page;
  const int status = test::run_chromium(chromium, dir, probed, "--window-size=1280,1000 --dump-dom", dom);
  REQUIRE_MESSAGE(status == 0, "chromium --dump-dom exited with ", status, "; it said:\n",
                  test::read_text(dir.file("chromium.log")).substr(0, 4000));
  std::smatch m;
  const std::string dumped = test::read_text(dom);
  REQUIRE_MESSAGE(std::regex_search(dumped, m, std::regex("PROBE texts=(\\d+) outside=(\\d+) wide=(\\d+) first=\\[([^\\]]*)\\]")),
                  "the probe's line is not in the dumped DOM");
  CAPTURE(m[4].str());
  CHECK(std::stoi(m[1].str()) > 5 * 4 * 8);  // titles, axis titles and tick labels of 20 charts
  CHECK(m[2].str() == "0");
  CHECK(m[3].str() == "0");
}

TEST_CASE("report: MAE and RMSE are charted in score points, beside the predict-the-mean baseline") {
  ReportFold f = make_fold("fold1", 8, 30, 4), g = make_fold("fold2", 8, 30, 5);
  f.train_mean = 3.012, f.baseline_mae = 0.5511, f.baseline_rmse = 0.6902;
  g.train_mean = 2.988, g.baseline_mae = 0.5489, g.baseline_rmse = 0.6898;
  const std::string html = render_training_report("t", kConfig, {f, g});
  check_svg_sane(html);
  size_t error_charts = 0;
  for (const auto& chart : svgs(html, "chart")) {
    if (chart.find("aria-label=\"Test MAE and RMSE\"") == std::string::npos) {
      CHECK(count(chart, "class=\"level\"") == 0);
      continue;
    }
    ++error_charts;
    CHECK(chart.find(">error (score points)</text>") != std::string::npos);
    CHECK(count(chart, "class=\"level\"") == 2);  // the baseline's MAE and RMSE, dashed
    CHECK(chart.find(">predicting the mean</text>") != std::string::npos);
  }
  CHECK(error_charts == 2);
  CHECK(html.find("<tr class=\"baseline\"><th>Predicting the training mean (average)</th><td></td><td>0.0000</td>"
                  "<td>0.5500</td><td>0.6900</td></tr>") != std::string::npos);
  CHECK(html.find("in score points on the 1-5 rating scale") != std::string::npos);
  CHECK(html.find("mean score of the training split (2.988 to 3.012)") != std::string::npos);
  CHECK(html.find("dashed: every image given the training mean 3.012") != std::string::npos);

  // Not known (a report drawn from elsewhere): no row, no dashed lines.
  const std::string none = render_training_report("t", kConfig, {make_fold("fold1", 8, 30, 4)});
  CHECK(none.find("class=\"baseline\"") == std::string::npos);
  CHECK(none.find("class=\"level\"") == std::string::npos);
  CHECK(none.find(">error (score points)</text>") != std::string::npos);
}

TEST_CASE("report: run time and training throughput, per fold and for the whole run") {
  CHECK(duration_text(8.34) == "8.3 s");
  CHECK(duration_text(42.4) == "42 s");
  CHECK(duration_text(59.7) == "1 min 00 s");
  CHECK(duration_text(725) == "12 min 05 s");
  CHECK(duration_text(3725) == "1 h 02 min");
  CHECK(duration_text(3599.8) == "1 h 00 min");
  CHECK(duration_text(std::nan("")) == "-");

  ReportFold f = make_fold("fold1", 3, 10, 1);
  f.seconds = 725, f.images_per_s = 412.4;
  for (auto& e : f.epochs) e.images_per_s = 50.5;
  ReportTable table;
  table.run_seconds = 3725, table.images_per_s = 398.6;
  const std::string html = render_training_report("t", kConfig, {f}, table);
  CHECK(html.find("<th>Time</th><th>Training img/s</th>") != std::string::npos);
  CHECK(html.find("<td>12 min 05 s</td><td>412</td></tr>") != std::string::npos);
  CHECK(html.find("run time 1 h 02 min") != std::string::npos);
  CHECK(html.find("The whole run: 1 h 02 min, 399 training images/s.") != std::string::npos);
  CHECK(html.find("<th>Img/s</th>") != std::string::npos);
  CHECK(html.find("<td>50.5</td>") != std::string::npos);
  table.resumed = true;
  CHECK(render_training_report("t", kConfig, {f}, table).find("run time 1 h 02 min (this session)") !=
        std::string::npos);
  // Not measured: no columns.
  const std::string plain = render_training_report("t", kConfig, {make_fold("fold1", 3, 10, 1)});
  CHECK(plain.find("<th>Time</th>") == std::string::npos);
  CHECK(plain.find("run time") == std::string::npos);
}

TEST_CASE("report: the configuration shows what applied, numbers as people write them, the device used") {
  const std::vector<std::pair<std::string, std::string>> adamw = {
      {"data_dir", "\"/d/SCUT-FBP5500_v2\""}, {"labels", "\"\""},         {"ratings", "\"\""},
      {"images", "\"\""},                     {"protocol", "\"60-40\""},  {"fold", "0"},
      {"optimizer", "\"adamw\""},             {"lr", "0.0010000000000000002"},
      {"momentum", "0.90000000000000002"},    {"weight_decay", "1.0000000000000001e-05"},
      {"schedule", "\"cosine\""},             {"step_size", "5000"},      {"warmup", "100"},
      {"epochs", "12"},                       {"iterations", "0"},        {"seed", "18446744073709551615"},
      {"whole_image", "false"},               {"device", "\"auto\""},     {"note", "\"say \\\"hi\\\"\""}};
  const std::vector<std::pair<std::string, std::string>> shown = {
      {"data_dir", "/d/SCUT-FBP5500_v2"}, {"protocol", "60-40"}, {"optimizer", "adamw"}, {"lr", "0.001"},
      {"weight_decay", "1e-05"},          {"schedule", "cosine"}, {"warmup", "100"},     {"epochs", "12"},
      {"seed", "18446744073709551615"},   {"whole_image", "false"}, {"device", "cpu"},   {"note", "say \"hi\""}};
  CHECK(training_report_config(adamw, "cpu") == shown);

  const std::vector<std::pair<std::string, std::string>> sgd = {
      {"data_dir", "\"/d\""},  {"protocol", "\"5fold\""}, {"fold", "0"},          {"optimizer", "\"sgd\""},
      {"momentum", "0.9"},     {"schedule", "\"step\""},  {"step_size", "5000"},  {"warmup", "0"},
      {"epochs", "0"},         {"iterations", "20000"},   {"device", "\"auto\""}};
  CHECK(training_report_config(sgd, "") ==
        std::vector<std::pair<std::string, std::string>>{{"data_dir", "/d"},   {"protocol", "5fold"},
                                                         {"fold", "all five"}, {"optimizer", "sgd"},
                                                         {"momentum", "0.9"},  {"schedule", "step"},
                                                         {"step_size", "5000"}, {"iterations", "20000"},
                                                         {"device", "auto"}});
  // --labels: split 80/20 whatever --protocol says, so no fold either.
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"labels", "\"/l/labels.txt\""}, {"protocol", "\"5fold\""}, {"fold", "3"}};
  CHECK(training_report_config(labels, "cpu") ==
        std::vector<std::pair<std::string, std::string>>{{"labels", "/l/labels.txt"}, {"protocol", "80-20"}});
}

TEST_CASE("report: the data are named from what was read, hotlap synth's as synthetic") {
  TempDir dir;
  SynthOptions s;
  s.out_dir = dir.file("faces");
  s.count = 10;
  s.size = 32;
  write_synthetic_scut(s);
  CHECK(is_synthetic_scut(s.out_dir));
  CHECK(training_data_name(s.out_dir, "", "") == "synthetic faces from hotlap synth (faces)");
  CHECK(training_data_name(s.out_dir + "/", "", "") == "synthetic faces from hotlap synth (faces)");
  std::filesystem::create_directories(dir.file("SCUT-FBP5500_v2/Images"));
  CHECK(!is_synthetic_scut(dir.file("SCUT-FBP5500_v2")));
  CHECK(training_data_name(dir.file("SCUT-FBP5500_v2"), "", "") == "SCUT-FBP5500_v2");
  // A file of that name that is not hotlap synth's does not make a folder synthetic.
  std::filesystem::create_directories(dir.file("other"));
  std::ofstream(dir.file("other/") + kSynthMarker) << "notes about this folder\n";
  CHECK(!is_synthetic_scut(dir.file("other")));
  CHECK(training_data_name(dir.file("other"), "", "") == "other");
  CHECK(training_data_name(s.out_dir, "/x/labels.txt", "") == "labels file labels.txt");
  CHECK(training_data_name("", "", "/x/All_Ratings.csv") == "ratings file All_Ratings.csv");
  CHECK(training_data_name("", "", "") == "");
}

// Reads a NAME SCORE file's scores.
std::vector<double> scores_in(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> out;
  std::string name;
  double score = 0;
  while (in >> name >> score) out.push_back(score);
  return out;
}

TEST_CASE("report: a training run's report names its data and shows its baseline, times and settings") {
  TempDir dir;
  SynthOptions s;
  s.out_dir = dir.file("faces");
  s.count = 30;
  s.size = 40;
  write_synthetic_scut(s);
  TrainConfig c;
  c.data_dir = s.out_dir;
  c.run_dir = dir.file("run");
  c.protocol = "60-40";
  c.depth = 18;
  c.width = 4;
  c.batch_size = 6;
  c.epochs = 2;
  c.resize = 36;
  c.crop = 32;
  c.optimizer = "adamw";
  c.schedule = "constant";
  c.momentum = 0.9000000000000002;  // 0.1 * 9 as a command line's arithmetic might give it
  const std::vector<FoldResult> results = run_training(c);
  REQUIRE(results.size() == 1);
  const FoldResult& r = results[0];

  // The baseline from the split files themselves.
  const std::string split = s.out_dir + "/train_test_files/split_of_60%training and 40%testing/";
  const std::vector<double> train = scores_in(split + "train.txt"), test = scores_in(split + "test.txt");
  REQUIRE(train.size() == 18);
  REQUIRE(test.size() == 12);
  double mean = 0, abs_sum = 0, square_sum = 0;
  for (double v : train) mean += v / static_cast<double>(train.size());
  for (double v : test) abs_sum += std::abs(v - mean), square_sum += (v - mean) * (v - mean);
  CHECK(r.train_mean == doctest::Approx(mean).epsilon(1e-6));
  CHECK(r.baseline.mae == doctest::Approx(abs_sum / 12).epsilon(1e-6));
  CHECK(r.baseline.rmse == doctest::Approx(std::sqrt(square_sum / 12)).epsilon(1e-6));
  CHECK(r.baseline.pearson == 0);
  CHECK(r.seconds > 0);

  const std::vector<uint8_t> bytes = test::read_bytes(c.run_dir + "/report.html");
  const std::string html(bytes.begin(), bytes.end());
  check_svg_sane(html);
  CHECK(html.find("<h1>hotlap train: ResNet-18 on synthetic faces from hotlap synth (faces)</h1>") !=
        std::string::npos);
  CHECK(html.find("SCUT") == std::string::npos);  // nothing calls these faces SCUT-FBP5500
  char row[160];
  std::snprintf(row, sizeof row, "<th>Predicting the training mean</th><td></td><td>0.0000</td><td>%.4f</td><td>%.4f</td>",
                r.baseline.mae, r.baseline.rmse);
  CHECK(html.find(row) != std::string::npos);
  CHECK(count(html, "class=\"level\"") == 2);
  CHECK(html.find("<th>Time</th><th>Training img/s</th>") != std::string::npos);
  CHECK(html.find(" &middot; run time ") != std::string::npos);
  CHECK(html.find("<th>device</th><td>cpu</td>") != std::string::npos);
  CHECK(html.find("<th>protocol</th><td>60-40</td>") != std::string::npos);
  CHECK(html.find("<th>optimizer</th><td>adamw</td>") != std::string::npos);
  for (const char* absent : {"<th>momentum</th>", "<th>step_size</th>", "<th>warmup</th>", "<th>fold</th>",
                             "<th>labels</th>", "<th>iterations</th>", "&quot;", "0.9000000000000002"})
    CHECK_MESSAGE(html.find(absent) == std::string::npos, absent);
  // config.json keeps what the run was given, every digit.
  const std::vector<uint8_t> json_bytes = test::read_bytes(c.run_dir + "/60-40/config.json");
  const std::string json(json_bytes.begin(), json_bytes.end());
  CHECK(json.find("\"momentum\": 0.90000000000000024") != std::string::npos);
  CHECK(json.find("\"device\": \"auto\"") != std::string::npos);
}

TEST_CASE("report: hotlap train's last line is its time and speed, under 80 columns") {
  TempDir dir;
  REQUIRE(test::run("synth --out " + dir.file("data") + " --n 20 --size 40").status == 0);
  const test::Run r = test::run("train --data " + dir.file("data") + " --out " + dir.file("run") +
                                " --protocol 60-40 --depth 18 --width 4 --batch 6 --epochs 1 --resize 36 --size 32");
  REQUIRE(r.status == 0);
  std::string text = r.output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string last = text.substr(text.rfind('\n') + 1);
  INFO(r.output);
  CHECK(std::regex_match(last, std::regex(R"(trained 1 fold in [0-9.]+ s \([0-9.]+ img/s\))")));
  CHECK(last.size() < 80);
}

// Not a check: writes a realistic five-fold report for people to look at (HOTLAP_SAMPLE_REPORT=path).
TEST_CASE("report: sample five-fold report") {
  const char* out = std::getenv("HOTLAP_SAMPLE_REPORT");
  if (out == nullptr) return;
  std::vector<ReportFold> folds;
  for (int i = 1; i <= 5; ++i) {
    ReportFold f = make_fold("fold" + std::to_string(i), 20, 1100, 100 + i);
    f.train_mean = 2.98 + 0.01 * i, f.baseline_mae = 0.55 + 0.002 * i, f.baseline_rmse = 0.69 - 0.001 * i;
    f.seconds = 2400 + 37 * i, f.images_per_s = 410 + i;
    for (auto& e : f.epochs) e.images_per_s = 405 + 3 * i;
    folds.push_back(std::move(f));
  }
  std::vector<std::pair<std::string, std::string>> config = {
      {"command", "hotlap train --data /data/SCUT-FBP5500_v2 --split 5fold --model resnet18"},
      {"model", "resnet18 (ImageNet weights)"}, {"epochs", "20"}, {"batch size", "32"},
      {"optimizer", "SGD momentum 0.9, weight decay 1e-4"}, {"learning rate", "0.001, cosine"},
      {"image size", "224x224"}, {"augmentation", "random crop, horizontal flip"}, {"device", "cuda:0 (NVIDIA H100)"},
      {"seed", "42"}};
  ReportTable table;
  table.show_paper_rows = true;
  table.data = "SCUT-FBP5500_v2";
  table.loss = "mse";
  table.run_seconds = 5 * 2520;
  table.images_per_s = 412;
  write_training_report(out, "ResNet-18 on SCUT-FBP5500, five-fold cross-validation", config, folds, table);
}

}  // namespace
}  // namespace hotlap

namespace hotlap {
namespace {

using test::contains;

// A classifier's fold of `k` classes: accuracy rising over 5 epochs, a confusion matrix of 10 images a
// class with one mistake in each row, and a class name that needs escaping.
ReportFold class_fold(int64_t k) {
  ReportFold f;
  f.name = "train-val";
  for (int64_t c = 0; c < k; ++c) f.classes.push_back(c == 0 ? "<cat & dog>" : "class" + std::to_string(c));
  for (int e = 1; e <= 5; ++e) {
    ReportEpoch r;
    r.epoch = e;
    r.step = 10 * e;
    r.train_loss = 2.0 / e;
    r.top1 = 0.5 + 0.08 * e;
    r.top5 = 0.9 + 0.01 * e;
    r.lr = 0.1;
    f.epochs.push_back(r);
  }
  f.best_epoch = 5, f.best_top1 = 0.9, f.best_top5 = 0.95, f.majority_accuracy = 1.0 / static_cast<double>(k);
  f.confusion.assign(static_cast<size_t>(k * k), 0);
  for (int64_t t = 0; t < k; ++t) {
    f.confusion[static_cast<size_t>(t * k + t)] = 9;
    f.confusion[static_cast<size_t>(t * k + (t + 1) % k)] = 1;
  }
  return f;
}

TEST_CASE("report: a classifier's run shows accuracy, the baseline, the confusion matrix and each class") {
  const std::string html = render_training_report("shapes", kConfig, {class_fold(6)}, {.classify = true});
  CHECK(contains(html, "<th>Top-1</th><th>Top-5</th>"));
  CHECK(contains(html, "<td>90.0%</td><td>95.0%</td>"));
  CHECK(contains(html, "Always the most frequent class"));
  CHECK(contains(html, "16.7%"));  // 1 of 6
  CHECK(contains(html, "Confusion at epoch 5"));
  CHECK(contains(html, "&lt;cat &amp; dog&gt;"));
  CHECK_FALSE(contains(html, "<cat & dog>"));
  // Every row of the grid: 6 counts, its accuracy (9 of 10) and its images.
  size_t rows = 0;
  for (size_t at = html.find("<td>90.0%</td><td>10</td>"); at != std::string::npos;
       at = html.find("<td>90.0%</td><td>10</td>", at + 1))
    ++rows;
  CHECK(rows == 6);
  CHECK_FALSE(contains(html, "PC"));
  check_text_inside(html);
  // Few classes: no top-5 column. Many: a per-class table, the worst first, instead of the grid.
  CHECK_FALSE(contains(render_training_report("t", kConfig, {class_fold(3)}, {.classify = true}), "Top-5"));
  const std::string many = render_training_report("t", kConfig, {class_fold(40)}, {.classify = true});
  CHECK_FALSE(contains(many, "class=\"confusion\""));
  CHECK(contains(many, "Accuracy of each of the 40 classes, the worst first"));
}

TEST_CASE("report: a classifier's configuration shows its settings and not a regressor's") {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"task", "\"classify\""},    {"data_dir", "\"/d\""},        {"labels", "\"\""},
      {"protocol", "\"5fold\""},   {"fold", "0"},                 {"loss", "\"cross_entropy\""},
      {"label_smoothing", "0.1"},  {"min_scale", "0.08"},         {"schedule", "\"step\""},
      {"step_size", "5000"},       {"step_epochs", "30"},         {"warmup_epochs", "5"},
      {"whole_image", "false"},    {"bias_decay", "false"}};
  CHECK(training_report_config(entries, "cpu") ==
        std::vector<std::pair<std::string, std::string>>{{"task", "classify"},
                                                         {"data_dir", "/d"},
                                                         {"loss", "cross_entropy"},
                                                         {"label_smoothing", "0.1"},
                                                         {"min_scale", "0.08"},
                                                         {"schedule", "step"},
                                                         {"step_epochs", "30"},
                                                         {"bias_decay", "false"}});
  std::vector<std::pair<std::string, std::string>> score = entries;
  score[0].second = "\"score\"";
  const auto shown = training_report_config(score, "cpu");
  const auto has = [&](const std::string& key) {
    return std::any_of(shown.begin(), shown.end(), [&](const auto& e) { return e.first == key; });
  };
  CHECK_FALSE(has("label_smoothing"));
  CHECK_FALSE(has("min_scale"));
  CHECK(has("protocol"));
  CHECK(has("whole_image"));
}

}  // namespace
}  // namespace hotlap
