// The HTML training report: content, escaping, well-formed SVG on edge cases, atomic writing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "apps/report.h"
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

// Well-formed enough: <svg> balanced, every SVG attribute value a number list (no nan / inf).
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
  CHECK(html.find("98 points, PC ") != std::string::npos);
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

// Not a check: writes a realistic five-fold report for people to look at (HOTLAP_SAMPLE_REPORT=path).
TEST_CASE("report: sample five-fold report") {
  const char* out = std::getenv("HOTLAP_SAMPLE_REPORT");
  if (out == nullptr) return;
  std::vector<ReportFold> folds;
  for (int i = 1; i <= 5; ++i) folds.push_back(make_fold("fold" + std::to_string(i), 20, 1100, 100 + i));
  std::vector<std::pair<std::string, std::string>> config = {
      {"command", "hotlap train --data /data/SCUT-FBP5500_v2 --split 5fold --model resnet18"},
      {"model", "resnet18 (ImageNet weights)"}, {"epochs", "20"}, {"batch size", "32"},
      {"optimizer", "SGD momentum 0.9, weight decay 1e-4"}, {"learning rate", "0.001, cosine"},
      {"image size", "224x224"}, {"augmentation", "random crop, horizontal flip"}, {"device", "cuda:0 (NVIDIA H100)"},
      {"seed", "42"}};
  write_training_report(out, "ResNet-18 on SCUT-FBP5500, five-fold cross-validation", config, folds,
                        {.show_paper_rows = true});
}

}  // namespace
}  // namespace hotlap
