// The HTML score report: escaping, rank order, embedded thumbnails that decode to the crop's size,
// failure rows, no "nan", the histogram and its markers, atomic writing; and the same report rendered
// by headless Chromium, which must decode every image and show one row per photo.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "apps/image.h"
#include "apps/percentile.h"
#include "apps/score_report.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::TempDir;

const std::vector<std::pair<std::string, std::string>> kMeta = {
    {"model", "runs/r50/fold1/best.safetensors (ResNet-50)"}, {"date", "2024-03-01 12:00 UTC"},
    {"options", "--explain --tta flip"}};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// A crop with some structure (JPEG of a flat image would decode whatever the size was).
Image test_crop(int64_t height, int64_t width, float tint) {
  Image img = make_image(height, width);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      img.at(y, x, 0) = static_cast<float>(x) / static_cast<float>(width);
      img.at(y, x, 1) = static_cast<float>(y) / static_cast<float>(height);
      img.at(y, x, 2) = tint;
    }
  return img;
}

ScoredPhoto scored(const std::string& name, double score, int64_t size, bool heat) {
  ScoredPhoto p;
  p.path = "photos/" + name + ".png";
  p.name = name;
  p.score = score;
  p.percentile = scut_percentile(score);
  p.framing = "face";
  p.faces_found = 1;
  p.crop = test_crop(size, size, 0.3f);
  if (heat) {
    p.heat = {0.0f, 0.5f, 1.0f, 0.25f};
    p.heat_height = p.heat_width = 2;
  }
  return p;
}

ScoredPhoto failed(const std::string& name, const std::string& error) {
  ScoredPhoto p;
  p.path = "photos/" + name + ".png";
  p.name = name;
  p.error = error;
  return p;
}

std::vector<ScoredPhoto> three_photos() {
  std::vector<ScoredPhoto> photos = {scored("verstappen", 3.41, 64, true), scored("hamilton", 3.12, 48, true),
                                     failed("broken", "photos/broken.png: not an image (corrupt JPEG)")};
  photos[1].framing = "largest";
  photos[1].faces_found = 3;
  photos[1].warnings = {"3 faces found; scored the largest"};
  return photos;
}

std::vector<uint8_t> base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = value(c);
    REQUIRE_MESSAGE(v >= 0, "not base64: '", c, "'");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<uint8_t>((bits >> count) & 0xff));
    }
  }
  return out;
}

// The images embedded in <img> tags, decoded, in document order.
std::vector<Image> embedded_images(const std::string& html) {
  std::vector<Image> images;
  const std::regex data_uri("<img [^>]*src=\"data:image/jpeg;base64,([A-Za-z0-9+/=]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), data_uri); it != std::sregex_iterator(); ++it) {
    const std::vector<uint8_t> jpeg = base64_decode((*it)[1].str());
    images.push_back(decode_image(jpeg.data(), jpeg.size(), "embedded thumbnail"));
  }
  return images;
}

TEST_CASE("score report: names, errors, warnings and meta are escaped") {
  std::vector<ScoredPhoto> photos = three_photos();
  photos[0].name = "<script>alert(1)</script>";
  photos[1].warnings = {"a \"quoted\" & <b>bold</b> warning"};
  photos[2].error = "x.png: <img src=x onerror=alert(1)>";
  const std::string html = render_score_report(photos, {{"options<", "--name \"<i>\""}});
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("<b>bold</b>") == std::string::npos);
  CHECK(html.find("a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; warning") != std::string::npos);
  CHECK(html.find("x.png: &lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  CHECK(html.find("<img src=x") == std::string::npos);
  CHECK(html.find("options&lt;") != std::string::npos);
  CHECK(html.find("--name &quot;&lt;i&gt;&quot;") != std::string::npos);
}

TEST_CASE("score report: the meta, every photo in rank order, failures as rows with their error") {
  std::vector<ScoredPhoto> photos = three_photos();
  photos.insert(photos.begin() + 1, scored("leclerc", 3.3, 32, false));
  const std::string html = render_score_report(photos, kMeta);
  for (const auto& [k, v] : kMeta) {
    CHECK(html.find("<th>" + k + "</th><td>" + v + "</td>") != std::string::npos);
  }
  // Names in the given order, each once in the table.
  size_t last = 0;
  for (const auto& p : photos) {
    CAPTURE(p.name);
    const size_t at = html.find("<td class=\"name\" title=\"" + p.path + "\">" + p.name + "</td>");
    REQUIRE(at != std::string::npos);
    CHECK(at > last);
    last = at;
  }
  CHECK(count(html, "<tr class=\"photo\">") == 3);
  CHECK(count(html, "<tr class=\"photo failed\">") == 1);
  const std::regex rank("<td class=\"rank\">([^<]*)</td>");
  std::vector<std::string> ranks;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), rank); it != std::sregex_iterator(); ++it)
    ranks.push_back((*it)[1].str());
  CHECK(ranks == std::vector<std::string>{"1", "2", "3", "&mdash;"});
  CHECK(html.find("<td class=\"error\" colspan=\"5\">photos/broken.png: not an image (corrupt JPEG)</td>") !=
        std::string::npos);
  CHECK(html.find("<td class=\"score\">3.410</td>") != std::string::npos);
  CHECK(html.find("<td class=\"faces\">3</td>") != std::string::npos);
  CHECK(html.find("3 faces found; scored the largest") != std::string::npos);
  CHECK(html.find("1 failed") != std::string::npos);
}

TEST_CASE("score report: thumbnails are the crops (and heat overlays), as JPEG data URIs that decode") {
  const std::vector<ScoredPhoto> photos = three_photos();
  const std::string html = render_score_report(photos, kMeta);
  const std::vector<Image> images = embedded_images(html);
  // Two scored photos with heat: crop, overlay, crop, overlay. The failed photo has none.
  REQUIRE(images.size() == 4);
  CHECK(count(html, "<img ") == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    const Image& crop = photos[i / 2].crop;
    CHECK(images[i].height == crop.height);
    CHECK(images[i].width == crop.width);
  }
  // The first is the crop itself (within JPEG's error); the second is not (the heat is drawn on it).
  double crop_error = 0, overlay_change = 0;
  for (size_t j = 0; j < photos[0].crop.pixels.size(); ++j) {
    crop_error =
        std::max(crop_error, static_cast<double>(std::abs(images[0].pixels[j] - photos[0].crop.pixels[j])));
    overlay_change += std::abs(images[1].pixels[j] - photos[0].crop.pixels[j]);
  }
  CHECK(crop_error < 0.1);
  CHECK(overlay_change / static_cast<double>(photos[0].crop.pixels.size()) > 0.05);
  CHECK(html.find("<th>Grad-CAM</th>") != std::string::npos);

  // Without heat maps there is no Grad-CAM column.
  std::vector<ScoredPhoto> plain = {scored("a", 3.0, 40, false), scored("b", 2.5, 40, false)};
  const std::string plain_html = render_score_report(plain, kMeta);
  CHECK(embedded_images(plain_html).size() == 2);
  CHECK(plain_html.find("Grad-CAM") == std::string::npos);

  // A heat map of the wrong size is a caller's mistake, reported.
  plain[0].heat = {1.0f, 0.5f, 0.0f};
  plain[0].heat_height = plain[0].heat_width = 2;
  CHECK_THROWS_AS(render_score_report(plain, kMeta), Error);
}

TEST_CASE("score report: a non-finite score or percentile is a dash, never nan") {
  std::vector<ScoredPhoto> photos = three_photos();
  photos[0].score = NAN;
  photos[0].percentile = NAN;
  photos[1].percentile = INFINITY;
  photos[1].roll_degrees = NAN;
  const std::string html = render_score_report(photos, kMeta);
  CHECK(html.find("nan") == std::string::npos);
  CHECK(html.find("NaN") == std::string::npos);
  CHECK(html.find(">inf") == std::string::npos);
  CHECK(html.find("<td class=\"score\">&mdash;</td>") != std::string::npos);
  CHECK(html.find("<td class=\"percentile\">&mdash;</td>") != std::string::npos);
}

TEST_CASE("score report: the SCUT-FBP5500 histogram, with one marker per scored photo") {
  std::vector<ScoredPhoto> photos = three_photos();
  photos.push_back(scored("off-scale", 5.7, 32, false));  // pinned to the frame, still marked
  photos.push_back(scored("unscored", NAN, 32, false));   // no score: no marker
  const std::string html = render_score_report(photos, kMeta);
  REQUIRE(count(html, "<svg class=\"histogram\"") == 1);
  CHECK(count(html, "<rect class=\"bar\"") == 40);
  CHECK(count(html, "<g class=\"marker\">") == 3);
  CHECK(html.find("<title>verstappen: 3.410</title>") != std::string::npos);
  CHECK(html.find("SCUT-FBP5500 score (1-5)") != std::string::npos);
  CHECK(html.find(">images</text>") != std::string::npos);
  // The bars hold all 5500 images.
  const std::regex bar_count("<title>[0-9.]+-[0-9.]+: ([0-9]+) images</title>");
  int64_t total = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), bar_count); it != std::sregex_iterator(); ++it)
    total += std::stoll((*it)[1].str());
  CHECK(total == scut_score_count());
  // Self-contained: nothing fetched, nothing run.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
}

TEST_CASE("score report: no photos at all is still a well-formed page") {
  const std::string html = render_score_report({}, {});
  CHECK(html.find("0 photos") != std::string::npos);
  CHECK(count(html, "<g class=\"marker\">") == 0);
  CHECK(html.find("</html>") != std::string::npos);
}

TEST_CASE("score report: write_score_report writes the file, an unwritable path throws naming it") {
  TempDir dir;
  const std::string path = dir.file("report.html");
  write_score_report(path, three_photos(), kMeta);
  const auto bytes = test::read_bytes(path);
  CHECK(std::string(bytes.begin(), bytes.end()) == render_score_report(three_photos(), kMeta));
  CHECK(dir.listing() == std::vector<std::string>{"report.html"});
  const std::string bad = dir.file("no/such/dir/report.html");
  CHECK_THROWS_WITH_AS(write_score_report(bad, three_photos(), kMeta), doctest::Contains(bad.c_str()), Error);
}

// ---- rendered by a browser ------------------------------------------------------------------------

// The browser's path, or "" when there is none on PATH.
std::string find_chromium() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, end - start)) / "chromium";
    std::error_code ec;
    if (!candidate.parent_path().empty() && std::filesystem::is_regular_file(candidate, ec) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
    start = end + 1;
  }
  return "";
}

std::string quoted(const std::string& s) {  // for /bin/sh: single quotes, ' written as '\''
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs the browser on `page` with the given extra flags, stdout to `out`; returns the exit status.
int run_chromium(const std::string& chromium, const TempDir& dir, const std::string& page,
                 const std::string& flags, const std::string& out) {
  const std::string command = "timeout 60 " + quoted(chromium) +
                              " --headless=new --no-sandbox --disable-gpu --allow-file-access-from-files"
                              " --no-first-run --disable-dev-shm-usage --user-data-dir=" +
                              quoted(dir.file("profile")) + " " + flags + " " + quoted("file://" + page) +
                              " >" + quoted(out) + " 2>>" + quoted(dir.file("chromium.log"));
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
  const auto bytes = test::read_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

TEST_CASE("score report: headless Chromium decodes every image and shows one row per photo") {
  const char* skip = std::getenv("HOTLAP_SKIP_BROWSER_TESTS");
  if (skip != nullptr && std::string(skip) == "1") {
    MESSAGE("SKIPPED: the headless-browser test of the score report (HOTLAP_SKIP_BROWSER_TESTS=1)");
    return;
  }
  const std::string chromium = find_chromium();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed: run scripts/install-deps.sh --test (make test does), or set "
                  "HOTLAP_SKIP_BROWSER_TESTS=1 to skip this test");

  TempDir dir;
  const std::vector<ScoredPhoto> photos = three_photos();
  const std::string report = dir.file("report.html");
  write_score_report(report, photos, kMeta);

  // A copy with a probe that, once the page has loaded, writes what the browser made of it into the DOM.
  const std::string probe = R"(<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
  const rows = document.querySelectorAll("table.ranked tbody tr").length;
  const markers = document.querySelectorAll("svg.histogram g.marker").length;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = `PROBE images=${images.length} decoded=${decoded} rows=${rows} markers=${markers}`;
  document.body.appendChild(out);
});
</script>
)";
  std::string page = read_text(report);
  const size_t body_end = page.rfind("</body>");
  REQUIRE(body_end != std::string::npos);
  page.insert(body_end, probe);
  const std::string probed = dir.file("probed.html");
  std::ofstream(probed, std::ios::binary) << page;

  const auto start = std::chrono::steady_clock::now();
  const std::string dom = dir.file("dom.html");
  const int dump_status = run_chromium(chromium, dir, probed, "--dump-dom", dom);
  REQUIRE_MESSAGE(dump_status == 0, "chromium --dump-dom exited with ", dump_status,
                  " (124: timed out); it said:\n", read_text(dir.file("chromium.log")).substr(0, 4000));
  const std::string dumped = read_text(dom);
  std::smatch m;
  const std::regex probe_line("PROBE images=(\\d+) decoded=(\\d+) rows=(\\d+) markers=(\\d+)");
  REQUIRE_MESSAGE(std::regex_search(dumped, m, probe_line), "the probe's line is not in the dumped DOM:\n",
                  dumped.substr(0, 2000));
  CHECK(m[1].str() == "4");  // two scored photos, each with its crop and its Grad-CAM overlay
  CHECK(m[2].str() == "4");  // all decoded
  CHECK(m[3].str() == std::to_string(photos.size()));
  CHECK(m[4].str() == "2");

  // A screenshot of the report itself: a PNG of the window's size.
  const std::string shot = dir.file("report.png");
  const int shot_status = run_chromium(chromium, dir, report,
                                       "--window-size=1000,700 --screenshot=" + quoted(shot), dir.file("shot.out"));
  REQUIRE_MESSAGE(shot_status == 0, "chromium --screenshot exited with ", shot_status, "; it said:\n",
                  read_text(dir.file("chromium.log")).substr(0, 4000));
  const Image png = decode_image(shot);
  CHECK(png.width == 1000);
  CHECK(png.height == 700);
  // Not blank: the page has dark text on white and coloured thumbnails.
  float lo = 1, hi = 0;
  for (float v : png.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(hi - lo > 0.5f);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("headless Chromium: ", seconds, " s for the DOM dump and the screenshot");
}

// Not a check: writes a realistic report for people to look at (HOTLAP_SAMPLE_SCORE_REPORT=path).
TEST_CASE("score report: sample report") {
  const char* out = std::getenv("HOTLAP_SAMPLE_SCORE_REPORT");
  if (out == nullptr) return;
  std::vector<ScoredPhoto> photos;
  const char* names[] = {"leclerc", "norris", "sainz", "russell", "verstappen", "hamilton", "alonso", "perez"};
  for (int i = 0; i < 8; ++i) {
    ScoredPhoto p = scored(names[i], 3.6 - 0.17 * i, 224, true);
    p.crop = test_crop(224, 224, 0.1f * static_cast<float>(i));
    p.heat.assign(49, 0.0f);
    p.heat_height = p.heat_width = 7;
    for (int y = 0; y < 7; ++y)
      for (int x = 0; x < 7; ++x)
        p.heat[static_cast<size_t>(y * 7 + x)] =
            static_cast<float>(std::exp(-((x - 3 - i % 2) * (x - 3 - i % 2) + (y - 3) * (y - 3)) / 4.0));
    photos.push_back(p);
  }
  photos[2].warnings = {"2 faces found; scored the largest"};
  photos[2].framing = "largest";
  photos[2].faces_found = 2;
  photos[5].roll_degrees = -4.2;
  photos.push_back(failed("stroll", "photos/stroll.png: truncated PNG"));
  write_score_report(out, photos, kMeta);
}

}  // namespace
}  // namespace hotlap
