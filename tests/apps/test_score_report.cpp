// The HTML score report: escaping, rank order, embedded thumbnails that decode to the crop's size and
// are never scaled up by a fraction, failure rows, no "nan", how each face was framed (the photo with
// its faces and the square cropped, the framed square, the network input), the Grad-CAM colour key and
// the note on coarse maps, off-scale scores (marked "!", never rounded into the scale, off the
// histogram's axis drawn apart) and "face k of n", no local paths unless asked, the histogram right
// under the table with marker labels that never overlap (up to 150 photos), atomic writing; and the
// same report rendered by headless Chromium, which must decode every image, show one row per photo,
// draw each marker label inside its box and clear of the others (also with 40, 60 and 150 photos),
// and fit an 800 px window.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "apps/browser_util.h"
#include "apps/score/face/face_frame.h"
#include "apps/data/image.h"
#include "apps/score/percentile.h"
#include "apps/score/score_report.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::find_chromium;
using test::quoted;
using test::read_text;
using test::run_chromium;

using test::TempDir;

const std::vector<std::pair<std::string, std::string>> kMeta = {
    {"model", "runs/r50/fold1/best.safetensors (ResNet-50)"},
    {"date", "2024-03-01 12:00 UTC"},
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

// A photo as `hotlap score --report` keeps it: 640x480 with three faces found (the first scored, the
// third implausible), the square cropped turned by 8 degrees, the 350 px framed square and a 64 px
// network input with a 2x2 Grad-CAM map (a small model's last feature map).
ScoredPhoto framed_photo(const std::string& name, double score) {
  ScoredPhoto p = scored(name, score, 64, true);
  p.path = "photos/" + name + ".jpg";
  p.framing = "chosen";
  p.faces_found = 3;
  p.preview = std::make_shared<const Image>(test_crop(240, 320, 0.6f));
  p.preview_scale = 0.5;
  p.candidates = {{{300, 120, 120, 150}, 0.999, "", true},
                  {{80, 200, 90, 110}, 0.93, "", false},
                  {{500, 20, 60, 60}, 0.74, "the mouth is above the eyes", false}};
  p.has_box = true;
  p.face_box = p.candidates[0].box;
  p.crop_box = {210, 70, 300, 300};
  p.roll_degrees = 8;
  p.framed = test_crop(350, 350, 0.5f);
  p.warnings = {"3 faces found: scored the face at 300,120 (120x150, p 0.999)"};
  return p;
}

// The label boxes of the histogram's markers, in document order.
struct Box {
  double x, y, width, height;
};
std::vector<Box> label_boxes(const std::string& html) {
  const std::regex rect(
      "<rect class=\"label-box\" x=\"([-0-9.]+)\" y=\"([-0-9.]+)\" width=\"([0-9.]+)\" height=\"([0-9.]+)\"");
  std::vector<Box> boxes;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), rect); it != std::sregex_iterator(); ++it)
    boxes.push_back(
        {std::stod((*it)[1].str()), std::stod((*it)[2].str()), std::stod((*it)[3].str()), std::stod((*it)[4].str())});
  return boxes;
}

bool intersect(const Box& a, const Box& b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// Photos whose scores all lie within `spread` of 3.0.
std::vector<ScoredPhoto> bunched_photos(int n, double spread) {
  std::vector<ScoredPhoto> photos;
  const char* names[] = {"leclerc", "norris", "sainz",   "russell", "verstappen", "hamilton",
                         "alonso",  "perez",  "piastri", "gasly",   "ocon",       "albon"};
  for (int i = 0; i < n; ++i) {
    const double score = 3.0 + spread * (0.5 - static_cast<double>(i) / std::max(1, n - 1));
    photos.push_back(scored(std::string(names[i % 12]) + "-" + std::to_string(i), score, 16, false));
  }
  return photos;
}

// `n` photos named as cameras name them, their scores spread as real ones are (about 3 +- 0.6, a
// fixed pseudo-random draw), ranked.
std::vector<ScoredPhoto> camera_photos(int n) {
  std::vector<ScoredPhoto> photos;
  uint32_t state = 12345;
  auto uniform = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<double>(state >> 8) / 16777216.0;
  };
  for (int i = 0; i < n; ++i) {
    double z = -6;
    for (int k = 0; k < 12; ++k) z += uniform();
    char name[64];
    std::snprintf(name, sizeof name, "IMG_2024%04d_%06d", i * 7 % 1000, i * 7919 % 1000000);
    photos.push_back(scored(name, 3.0 + 0.6 * z, 16, false));
  }
  std::stable_sort(photos.begin(), photos.end(),
                   [](const ScoredPhoto& a, const ScoredPhoto& b) { return a.score > b.score; });
  return photos;
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
  CHECK(html.find("<span class=\"nobr\">--name</span> &quot;&lt;i&gt;&quot;") != std::string::npos);
}

TEST_CASE("score report: the meta, every photo in rank order, failures as rows with their error") {
  std::vector<ScoredPhoto> photos = three_photos();
  photos.insert(photos.begin() + 1, scored("leclerc", 3.3, 32, false));
  const std::string html = render_score_report(photos, kMeta);
  // The model's path shown as its file name (ScoreReportOptions::paths).
  CHECK(html.find("<th>model</th><td>best.safetensors <span class=\"nobr\">(ResNet-50)</span></td>") !=
        std::string::npos);
  CHECK(html.find("<th>date</th><td><span class=\"nobr\">2024-03-01</span> 12:00 UTC</td>") != std::string::npos);
  CHECK(html.find("<th>options</th><td><span class=\"nobr\">--explain</span> <span class=\"nobr\">--tta</span> "
                  "flip</td>") != std::string::npos);
  // Names in the given order, each once in the table.
  size_t last = 0;
  for (const auto& p : photos) {
    CAPTURE(p.name);
    const size_t at = html.find("<td class=\"name\" title=\"" + p.name + ".png\">" + p.name + "</td>");
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
  CHECK(html.find("<td class=\"error\" colspan=\"5\">broken.png: not an image (corrupt JPEG)</td>") !=
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
    crop_error = std::max(crop_error, static_cast<double>(std::abs(images[0].pixels[j] - photos[0].crop.pixels[j])));
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
  CHECK(count(html, "<g class=\"marker\">") == 2);
  // A score off the axis: a dashed line on its edge, an arrow pointing out past it, "(> 5)" in its label.
  CHECK(count(html, "<g class=\"marker off-axis\">") == 1);
  CHECK(count(html, "<path class=\"arrow\"") == 1);
  CHECK(html.find(">off-scale (&gt; 5)</text>") != std::string::npos);
  CHECK(html.find("<title>off-scale: 5.700, above 5: off the axis, drawn at its edge</title>") != std::string::npos);
  CHECK(html.find("dashed, with an arrow pointing out") != std::string::npos);
  const std::regex arrow("<path class=\"arrow\" d=\"M([-0-9.]+) [-0-9.]+L([-0-9.]+) ");
  std::smatch a;
  REQUIRE(std::regex_search(html, a, arrow));
  CHECK(std::stod(a[2].str()) > std::stod(a[1].str()));  // pointing right, past the 5 edge
  CHECK(std::stod(a[2].str()) <= 680);
  // Below the axis: the arrow points left, the label says "(< 1)".
  std::vector<ScoredPhoto> low = {scored("dark", 0.61, 32, false), scored("fine", 3.0, 32, false)};
  const std::string low_html = render_score_report(low, kMeta);
  CHECK(low_html.find(">dark (&lt; 1)</text>") != std::string::npos);
  REQUIRE(std::regex_search(low_html, a, arrow));
  CHECK(std::stod(a[2].str()) < std::stod(a[1].str()));
  CHECK(std::stod(a[2].str()) >= 0);
  // Inside the scale: no arrow, nothing said.
  const std::string plain = render_score_report(three_photos(), kMeta);
  CHECK(plain.find("class=\"marker off-axis\"") == std::string::npos);
  CHECK(plain.find("class=\"arrow\"") == std::string::npos);
  CHECK(plain.find("dashed, with an arrow") == std::string::npos);
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

TEST_CASE("score report: each face's framing: the photo with its boxes and crop square, the framed square, the input") {
  std::vector<ScoredPhoto> photos = {framed_photo("grid", 3.4)};
  photos.push_back(scored("plain", 3.0, 64, true));  // nothing but its input: no framing panel
  const std::string html = render_score_report(photos, kMeta);
  CHECK(count(html, "<section class=\"face\">") == 1);
  CHECK(html.find("<h2>How each face was framed</h2>") != std::string::npos);
  // The histogram comes right after the table (and its notes), before the framing, however long that is.
  const size_t table_end = html.find("</table>", html.find("<table class=\"ranked\">"));
  const size_t histogram_at = html.find("<h2>Among the SCUT-FBP5500 scores</h2>");
  const size_t framing_at = html.find("<h2>How each face was framed</h2>");
  REQUIRE(table_end != std::string::npos);
  REQUIRE(histogram_at != std::string::npos);
  CHECK(table_end < histogram_at);
  CHECK(histogram_at < framing_at);
  CHECK(html.find("</figure>", histogram_at) < framing_at);
  CHECK(html.find("<section class=\"face\">") > histogram_at);
  CHECK(html.find("<h2>", html.find("</table>", html.find("<table class=\"ranked\">"))) == histogram_at);
  // The faces: the scored one (green, solid) and the two others (dashed), each numbered in the choice
  // order with its probability; the implausible one says why in its tooltip and in the list.
  CHECK(count(html, "<g class=\"cand scored\">") == 1);
  CHECK(count(html, "<g class=\"cand\">") == 2);
  CHECK(html.find("<text x=\"150\" y=\"55\">1 \u00b7 0.999 \u00b7 scored</text>") != std::string::npos);
  CHECK(html.find(">2 \u00b7 0.930</text>") != std::string::npos);
  CHECK(html.find(">3 \u00b7 0.740 \u00b7 implausible</text>") != std::string::npos);
  CHECK(html.find("<title>face 3: probability 0.740; its landmarks cannot be a face's: the mouth is above "
                  "the eyes</title>") != std::string::npos);
  CHECK(html.find("<li>3: probability 0.740, implausible: the mouth is above the eyes</li>") != std::string::npos);
  // Boxes in preview pixels (photo pixels x 0.5); the crop square turned about its centre.
  CHECK(html.find("<rect x=\"150\" y=\"60\" width=\"60\" height=\"75\"/>") != std::string::npos);
  CHECK(html.find("<g class=\"crop-square\" transform=\"rotate(8.00 180 110)\">") != std::string::npos);
  CHECK(html.find("<rect x=\"105\" y=\"35\" width=\"150\" height=\"150\"/>") != std::string::npos);
  CHECK(html.find("turned 8.0&deg; to level the eyes") != std::string::npos);
  // A photo framed turned (stored sideways) says so where the framing is given.
  CHECK(html.find("photo turned") == std::string::npos);
  std::vector<ScoredPhoto> turned = photos;
  turned[0].turned_degrees = 270;
  const std::string turned_html = render_score_report(turned, kMeta);
  CHECK(count(turned_html, "chosen, photo turned 270&deg; clockwise, levelled by 8.0&deg;") == 2);  // table, card

  // Images: the table's input and map for both rows, then the panel's photo, framed square, input and map.
  const std::vector<Image> images = embedded_images(html);
  REQUIRE(images.size() == 8);
  CHECK((images[4].width == 320 && images[4].height == 240));
  CHECK((images[5].width == 350 && images[5].height == 350));
  CHECK((images[6].width == 64 && images[6].height == 64));
  CHECK((images[7].width == 64 && images[7].height == 64));
  // Scaled up only by whole multiples, drawn pixelated; the framed square at half its size.
  CHECK(html.find("<img class=\"thumb px\" src=\"data:") != std::string::npos);
  CHECK(html.find("width=\"128\" height=\"128\" style=\"--narrow:64px\" alt=\"grid\">") != std::string::npos);
  CHECK(html.find("width=\"192\" height=\"192\" alt=\"grid: network input\">") != std::string::npos);
  CHECK(html.find("<img class=\"framed\" src=\"data:") != std::string::npos);
  CHECK(html.find("width=\"175\" height=\"175\" alt=\"grid: framed\">") != std::string::npos);
  CHECK(html.find("350&times;350 px, shown at 1/2") != std::string::npos);
  CHECK(html.find("64&times;64 px, shown 3&times;") != std::string::npos);
  const std::regex img_size("<img class=\"([a-z ]+)\" src=\"data:[^\"]+\" width=\"([0-9.]+)\" height=\"([0-9.]+)\"");
  size_t i = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), img_size); it != std::sregex_iterator(); ++it, ++i) {
    REQUIRE(i < images.size());
    CAPTURE(i);
    const double shown = std::stod((*it)[2].str()), natural = static_cast<double>(images[i].width);
    const bool pixelated = (*it)[1].str().find(" px") != std::string::npos;
    if (shown > natural) {  // scaled up: a whole multiple, pixelated
      CHECK(pixelated);
      CHECK(std::fmod(shown, natural) == 0);
    } else {
      CHECK(!pixelated);
    }
  }
  CHECK(i == images.size());

  // A square reaching past the photo's top-left corner gets room around the photo.
  photos[0].crop_box = {-60, -40, 300, 300};
  photos[0].roll_degrees = 0;
  const std::string edge = render_score_report(photos, kMeta);
  CHECK(edge.find("viewBox=\"-30 -20 350 260\"") != std::string::npos);
  CHECK(edge.find("style=\"left:30px;top:20px\"") != std::string::npos);
  CHECK(edge.find("<g class=\"crop-square\">") != std::string::npos);

  // Without a preview or a framed square, what there is; with neither, no panel at all.
  photos[0].preview = nullptr;
  std::string html2 = render_score_report(photos, kMeta);
  CHECK(count(html2, "<section class=\"face\">") == 1);
  CHECK(html2.find("class=\"overlay\"") == std::string::npos);
  CHECK(embedded_images(html2).size() == 7);
  photos[0].framed = Image{};
  html2 = render_score_report(photos, kMeta);
  CHECK(html2.find("<section class=\"face\">") == std::string::npos);
  CHECK(embedded_images(html2).size() == 4);
}

TEST_CASE("score report: a photo with several faces scored is embedded once, and each face's card draws it") {
  // Two rows of one photo, as --all-faces makes them (one preview shared), and a photo of one face.
  std::vector<ScoredPhoto> photos = {framed_photo("grid", 3.5), framed_photo("grid", 3.45), framed_photo("solo", 3)};
  photos[1].preview = photos[0].preview;
  photos[1].face_number = 2;
  std::swap(photos[1].candidates[0].scored, photos[1].candidates[1].scored);
  const std::string html = render_score_report(photos, kMeta);
  CHECK(count(html, "<section class=\"face\">") == 3);
  // The shared photo: once in the page's style, drawn by both of its cards at its shown size.
  const std::string rule = ".photo1{background-image:url(\"data:image/jpeg;base64,";
  REQUIRE(count(html, rule) == 1);
  CHECK(html.find(rule) < html.find("</head>"));
  CHECK(html.find(".photo2{") == std::string::npos);
  CHECK(count(html, "<div class=\"preview shared photo1\" role=\"img\" aria-label=\"grid: the photo\" "
                    "style=\"left:0px;top:0px;width:320px;height:240px\"></div>") == 2);
  const size_t from = html.find(rule) + rule.size();
  const Image shared = [&] {
    const std::vector<uint8_t> jpeg = base64_decode(html.substr(from, html.find('"', from) - from));
    return decode_image(jpeg.data(), jpeg.size(), "the shared photo");
  }();
  CHECK(shared.width == 320);
  CHECK(shared.height == 240);
  // Each card still marks its own face as the one scored.
  const size_t second_card = html.find("<section class=\"face\">", html.find("<section class=\"face\">") + 1);
  CHECK(html.find("<title>face 1: probability 0.999, scored</title>") < second_card);
  CHECK(html.find("<title>face 2: probability 0.930, scored</title>") > second_card);
  // A photo in one card keeps its own <img>.
  CHECK(count(html, "<img class=\"preview\"") == 1);
  CHECK(html.find("solo: the photo") != std::string::npos);
}

TEST_CASE("score report: the Grad-CAM colour key, and a note when the map is too coarse to localise") {
  std::vector<ScoredPhoto> photos = {framed_photo("small", 3.4), framed_photo("small-too", 3.2)};
  const std::string html = render_score_report(photos, kMeta);
  // The key under the table and beside each map: the inferno ramp from black to pale yellow.
  CHECK(count(html, "linear-gradient(to right,#000004,") == 1);
  CHECK(count(html, "linear-gradient(to top,#000004,") == 2);
  CHECK(html.find(",#fcffa4)") != std::string::npos);
  const std::string note =
      "The model&#39;s last feature map is 2&times;2 at its 64 px input: the Grad-CAM map can only say which "
      "quarter of the face mattered.";
  CHECK(html.find(note) == std::string::npos);  // escaped once, not twice
  const std::string raw_note =
      "The model's last feature map is 2&times;2 at its 64 px input: the Grad-CAM map can only say which "
      "quarter of the face mattered.";
  CHECK(count(html, "<p class=\"note warn coarse\">" + raw_note + "</p>") == 1);  // once for the table
  CHECK(count(html, "<span class=\"coarse\">" + raw_note + "</span>") == 2);      // and in each panel
  CHECK(count(html, "<div class=\"coarse-tag\">2&times;2 map</div>") == 2);

  // A 7x7 map (224 px input) localises: no note.
  for (ScoredPhoto& p : photos) {
    p.crop = test_crop(224, 224, 0.2f);
    p.heat.assign(49, 0.5f);
    p.heat_height = p.heat_width = 7;
  }
  const std::string fine = render_score_report(photos, kMeta);
  CHECK(fine.find("last feature map") == std::string::npos);
  CHECK(fine.find("<div class=\"coarse-tag\">") == std::string::npos);
  CHECK(fine.find("linear-gradient(to right,#000004,") != std::string::npos);
  // A 1x1 map is one value.
  photos[0].heat = {1.0f};
  photos[0].heat_height = photos[0].heat_width = 1;
  CHECK(render_score_report(photos, kMeta).find("1&times;1 at its 224 px input: the Grad-CAM map is one value") !=
        std::string::npos);
  // No maps: no key.
  const std::string plain = render_score_report({scored("a", 3.0, 40, false)}, kMeta);
  CHECK(plain.find("linear-gradient") == std::string::npos);
}

TEST_CASE("score report: off-scale scores are flagged, --all-faces rows say which face") {
  std::vector<ScoredPhoto> photos = {scored("bright", 5.42, 32, false), scored("edge", 5.0004, 32, false),
                                     scored("fine", 3.1, 32, false), scored("dark", 0.61, 32, false)};
  photos[2].face_number = 2;
  photos[2].faces_found = 3;
  const std::string html = render_score_report(photos, kMeta);
  // The mark is the text formats' "!", and a score just past the scale's end is not rounded onto it.
  CHECK(html.find("<td class=\"score off-scale\" title=\"outside the 1-5 scale\">5.420!</td>") !=
        std::string::npos);
  CHECK(html.find("<td class=\"score off-scale\" title=\"outside the 1-5 scale\">5.0004!</td>") !=
        std::string::npos);
  CHECK(html.find("<td class=\"score off-scale\" title=\"outside the 1-5 scale\">0.610!</td>") !=
        std::string::npos);
  CHECK(html.find("5.000!") == std::string::npos);
  CHECK(html.find("&dagger;") == std::string::npos);
  CHECK(html.find("<td class=\"score\">3.100</td>") != std::string::npos);
  CHECK(count(html, "<p class=\"note warn off-scale-note\">") == 1);
  CHECK(html.find("<p class=\"note warn off-scale-note\"><span class=\"off-scale-mark\">!</span> Outside") !=
        std::string::npos);
  CHECK(html.find("<title>edge: 5.0004, above 5: off the axis") != std::string::npos);
  CHECK(html.find("Outside SCUT-FBP5500&#39;s 1-5 scale") == std::string::npos);
  CHECK(html.find("Outside SCUT-FBP5500's 1-5 scale") != std::string::npos);
  CHECK(html.find("<td class=\"name\" title=\"fine.png\">fine<div class=\"face-of\">face 2 of 3</div></td>") !=
        std::string::npos);
  // Within the scale: no note.
  const std::string plain = render_score_report({scored("fine", 3.1, 32, false)}, kMeta);
  CHECK(plain.find("class=\"score off-scale\"") == std::string::npos);
  CHECK(plain.find("off-scale-note") == std::string::npos);
  CHECK(plain.find("class=\"face-of\"") == std::string::npos);
}

TEST_CASE("score report: no local paths in the page unless asked for") {
  const std::string secret = "/home/someone/private";
  std::vector<ScoredPhoto> photos = {framed_photo("photo", 3.4), failed("broken", "")};
  photos[0].path = secret + "/photo.png";
  photos[0].warnings.push_back("read " + photos[0].path + " with its EXIF rotation");
  photos[1].path = secret + "/broken.png";
  photos[1].error = photos[1].path + ": not an image (corrupt JPEG)";
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"Model", secret + "/models/best.safetensors (ResNet-18 (width 64), hotlap checkpoint, input 72->64)"},
      {"Framing", "MTCNN face, SCUT-like crop (face extent 0.60, centre shift 0.10)"},
      {"Weights", "(" + secret + "/mtcnn)"}};

  const std::string shared = render_score_report(photos, meta);
  CHECK(shared.find("/home") == std::string::npos);
  CHECK(shared.find("someone") == std::string::npos);
  CHECK(shared.find("private") == std::string::npos);
  CHECK(shared.find("<td class=\"name\" title=\"photo.png\">photo</td>") != std::string::npos);
  CHECK(shared.find("<td class=\"error\" colspan=\"5\">broken.png: not an image (corrupt JPEG)</td>") !=
        std::string::npos);
  CHECK(shared.find("read photo.png with its EXIF rotation") != std::string::npos);
  CHECK(shared.find("<th>Model</th><td>best.safetensors <span class=\"nobr\">(ResNet-18</span> (width 64), hotlap "
                    "checkpoint, input <span class=\"nobr\">72-&gt;64)</span></td>") != std::string::npos);
  CHECK(shared.find("<td>MTCNN face, <span class=\"nobr\">SCUT-like</span> crop (face extent 0.60, centre shift "
                    "0.10)</td>") != std::string::npos);
  CHECK(shared.find("<th>Weights</th><td>(mtcnn)</td>") != std::string::npos);

  // Paths may wrap after their separators (<wbr>).
  const std::string full = std::regex_replace(render_score_report(photos, meta, {.paths = true}), std::regex("<wbr>"), "");
  CHECK(full.find("<td class=\"name\" title=\"" + secret + "/photo.png\">photo</td>") != std::string::npos);
  CHECK(full.find("<td class=\"error\" colspan=\"5\">" + secret + "/broken.png: not an image") != std::string::npos);
  CHECK(full.find("<th>Model</th><td>" + secret + "/models/best.safetensors <span class=\"nobr\">(ResNet-18") !=
        std::string::npos);
  CHECK(full.find("<th>Weights</th><td>(" + secret + "/mtcnn)</td>") != std::string::npos);
}

TEST_CASE("score report: a header cell wraps only at spaces, never inside a word such as 72->64") {
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"Model", "/runs/r18/fold1/best.safetensors (ResNet-18 (width 16), hotlap checkpoint, input 72->64)"},
      {"Framing", "MTCNN face, SCUT-like crop (face extent 0.60, centre shift 0.10)"}};
  for (const bool paths : {false, true}) {
    const std::string html = render_score_report(three_photos(), meta, {.paths = paths});
    // The base style lets a config cell break anywhere (long paths in the training report's); here
    // the header's cells break at spaces, which a later rule of the same weight decides.
    const size_t base = html.find("table.config td{text-align:left"),
                 here = html.find("table.config td{overflow-wrap:normal;word-break:normal}");
    REQUIRE(base != std::string::npos);
    REQUIRE(here != std::string::npos);
    CHECK(here > base);
    CHECK(html.find("table.config .nobr{white-space:nowrap}") != std::string::npos);
    for (const auto& [label, value] : meta) {
      const std::string open = "<th>" + label + "</th><td>";
      const size_t start = html.find(open);
      REQUIRE(start != std::string::npos);
      std::string cell = html.substr(start + open.size(), html.find("</td>", start) - start - open.size());
      INFO(cell);
      // What is left outside the no-wrap spans breaks only at spaces: no hyphen but in a path.
      const std::string nobr = "<span class=\"nobr\">";
      for (size_t p = cell.find(nobr); p != std::string::npos; p = cell.find(nobr)) {
        const size_t end = cell.find("</span>", p);
        REQUIRE(end != std::string::npos);
        CHECK(cell.substr(p + nobr.size(), end - p - nobr.size()).find(' ') == std::string::npos);
        cell.erase(p, end + 7 - p);
      }
      for (size_t p = cell.find('-'); p != std::string::npos; p = cell.find('-', p + 1)) {
        const size_t word = cell.rfind(' ', p) == std::string::npos ? 0 : cell.rfind(' ', p);
        CHECK(cell.substr(word, cell.find(' ', p) - word).find('/') != std::string::npos);
      }
    }
    CHECK(html.find("input <span class=\"nobr\">72-&gt;64)</span>") != std::string::npos);
    if (paths) CHECK(html.find("<td>/<wbr>runs/<wbr>r18/<wbr>fold1/<wbr>best.safetensors ") != std::string::npos);
  }
}

TEST_CASE("score report: marker labels never overlap, however the scores bunch") {
  // A few photos: labelled with their names, one row above the chart.
  {
    const std::string html = render_score_report(three_photos(), kMeta);
    CHECK(html.find(">verstappen</text>") != std::string::npos);
    CHECK(html.find(">hamilton</text>") != std::string::npos);
    CHECK(html.find("class=\"marker-key\"") == std::string::npos);
    CHECK(label_boxes(html).size() == 2);
  }
  // Bunched scores (all equal, within 0.3, over the whole axis), and scores spread as real ones are
  // (spread -1), up to 150 photos.
  for (const int n : {2, 8, 20, 40, 60, 150}) {
    for (const double spread : {0.0, 0.3, 3.0, -1.0}) {
      CAPTURE(n);
      CAPTURE(spread);
      const std::vector<ScoredPhoto> photos = spread < 0 ? camera_photos(n) : bunched_photos(n, spread);
      const std::string html = render_score_report(photos, kMeta);
      const std::vector<Box> boxes = label_boxes(html);
      REQUIRE(boxes.size() == static_cast<size_t>(n));
      for (size_t i = 0; i < boxes.size(); ++i) {
        CHECK(boxes[i].x >= 0);
        CHECK(boxes[i].x + boxes[i].width <= 680);
        CHECK(boxes[i].y >= 0);
        for (size_t j = i + 1; j < boxes.size(); ++j) {
          CAPTURE(i);
          CAPTURE(j);
          CHECK_FALSE(intersect(boxes[i], boxes[j]));
        }
      }
      // Names when they fit, else the ranks with a key naming every photo.
      const bool numbered = html.find("<p class=\"marker-key\">") != std::string::npos;
      if (numbered) {
        for (int r = 1; r <= n; ++r) CHECK(html.find("<b>" + std::to_string(r) + "</b> ") != std::string::npos);
      } else {
        for (const ScoredPhoto& p : photos) CHECK(html.find(">" + p.name + "</text>") != std::string::npos);
      }
      if (n == 20 && spread == 0.3) CHECK(numbered);  // 20 names do not fit in one row
      if (n == 2) CHECK(!numbered);
    }
  }
  // Labels in a row keep their markers' order, so the leader lines do not cross.
  const std::string html = render_score_report(bunched_photos(20, 0.3), kMeta);
  const std::regex leader("<line class=\"leader\" x1=\"([-0-9.]+)\" y1=\"([-0-9.]+)\" x2=\"([-0-9.]+)\"");
  std::map<double, std::vector<std::pair<double, double>>> rows;  // label y -> (marker x, label x)
  for (auto it = std::sregex_iterator(html.begin(), html.end(), leader); it != std::sregex_iterator(); ++it)
    rows[std::stod((*it)[2].str())].push_back({std::stod((*it)[3].str()), std::stod((*it)[1].str())});
  CHECK(!rows.empty());
  for (auto& [y, row] : rows) {
    std::sort(row.begin(), row.end());
    for (size_t i = 1; i < row.size(); ++i) CHECK(row[i - 1].second < row[i].second);
  }
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

// For the pages' probes in Chromium: of the histogram's marker labels (g elements holding a text and
// its box), how many have their text drawn outside their box, and how many pairs of texts overlap.
const char* const kCheckLabelsJs = R"(function check_labels(labels) {
  let outside = 0, overlaps = 0;
  const texts = labels.map(g => {
    const t = g.querySelector("text").getBBox(), r = g.querySelector("rect").getBBox();
    if (t.x < r.x - 0.5 || t.x + t.width > r.x + r.width + 0.5 || t.y < r.y - 1 || t.y + t.height > r.y + r.height + 1)
      outside++;
    return t;
  });
  for (let i = 0; i < texts.length; i++)
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i], b = texts[j];
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) overlaps++;
    }
  return {outside, overlaps};
})";

TEST_CASE("score report: headless Chromium decodes every image, shows every row, keeps labels apart, fits 800 px") {
  if (test::skip_browser_tests("the score report")) return;
  const std::string chromium = find_chromium();
  REQUIRE_MESSAGE(!chromium.empty(),
                  "chromium is not installed: run scripts/install-deps.sh --test (make test does), or set "
                  "HOTLAP_SKIP_BROWSER_TESTS=1 to skip this test");

  TempDir dir;
  // The three photos, two with everything the framing panels show (one of them an --all-faces row
  // whose square reaches past the photo), and 16 more whose scores bunch within 0.3.
  std::vector<ScoredPhoto> photos = three_photos();
  photos.insert(photos.begin(), framed_photo("grid", 3.5));
  photos.insert(photos.begin() + 1, framed_photo("grid", 3.45));
  photos[1].face_number = 2;
  photos[1].preview = photos[0].preview;  // one photo's two faces: its image is in the page once
  photos[1].crop_box = {-60, -40, 300, 300};
  for (ScoredPhoto& p : bunched_photos(16, 0.3)) photos.push_back(p);
  const std::string report = dir.file("report.html");
  write_score_report(report, photos, kMeta);
  const std::string html = read_text(report);
  const size_t images = count(html, "<img ");
  const size_t scored_photos = photos.size() - 1;

  // A copy with a probe that, once the page has loaded, writes what the browser made of it into the
  // DOM: the images decoded, the rows, the markers, the marker labels drawn outside their boxes or
  // over each other, and whether the page is wider than the window.
  const std::string probe = std::string("<script>\n") + kCheckLabelsJs + R"(
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
  // A photo shown in several cards is each one's background: drawn from the style, at a size.
  const shared = Array.from(document.querySelectorAll(".photo-box .shared")).filter(div => {
    const box = div.getBoundingClientRect();
    return getComputedStyle(div).backgroundImage.startsWith('url("data:image/jpeg') && box.width > 0 &&
           box.height > 0;
  }).length;
  const rows = document.querySelectorAll("table.ranked tbody tr").length;
  const markers = document.querySelectorAll("svg.histogram g.marker").length;
  const labels = Array.from(document.querySelectorAll("svg.histogram g.marker-label"));
  const {outside, overlaps} = check_labels(labels);
  const wide = document.documentElement.scrollWidth > window.innerWidth ? 1 : 0;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = `PROBE images=${images.length} decoded=${decoded} rows=${rows} markers=${markers} ` +
                    `labels=${labels.length} outside=${outside} overlaps=${overlaps} wide=${wide} ` +
                    `shared=${shared}`;
  document.body.appendChild(out);
});
</script>
)";
  std::string page = html;
  const size_t body_end = page.rfind("</body>");
  REQUIRE(body_end != std::string::npos);
  page.insert(body_end, probe);
  const std::string probed = dir.file("probed.html");
  std::ofstream(probed, std::ios::binary) << page;

  const auto start = std::chrono::steady_clock::now();
  const std::string dom = dir.file("dom.html");
  const int dump_status = run_chromium(chromium, dir, probed, "--window-size=800,1000 --dump-dom", dom);
  REQUIRE_MESSAGE(dump_status == 0, "chromium --dump-dom exited with ", dump_status, " (124: timed out); it said:\n",
                  read_text(dir.file("chromium.log")).substr(0, 4000));
  const std::string dumped = read_text(dom);
  std::smatch m;
  const std::regex probe_line(
      "PROBE images=(\\d+) decoded=(\\d+) rows=(\\d+) markers=(\\d+) labels=(\\d+) outside=(\\d+) overlaps=(\\d+) "
      "wide=(\\d+) shared=(\\d+)");
  REQUIRE_MESSAGE(std::regex_search(dumped, m, probe_line), "the probe's line is not in the dumped DOM:\n",
                  dumped.substr(0, 2000));
  // Each of the two framed rows: its input and map in the table, then the framed square, the input and
  // the map (their photo, shared, is drawn from the style); hamilton and verstappen: input and map; the
  // 16 more: their input.
  CHECK(images == 2 * 5 + 2 * 2 + 16);
  CHECK(m[1].str() == std::to_string(images));
  CHECK(m[2].str() == std::to_string(images));  // all decoded
  CHECK(m[3].str() == std::to_string(photos.size()));
  CHECK(m[4].str() == std::to_string(scored_photos));
  CHECK(m[5].str() == std::to_string(scored_photos));
  CHECK(m[6].str() == "0");  // every label's text inside its box
  CHECK(m[7].str() == "0");  // and clear of the others
  CHECK(m[8].str() == "0");  // nothing wider than an 800 px window
  CHECK(m[9].str() == "2");  // the shared photo drawn in both of its cards

  // A screenshot of the report itself: a PNG of the window's size.
  const std::string shot = dir.file("report.png");
  const int shot_status =
      run_chromium(chromium, dir, report, "--window-size=1000,700 --screenshot=" + quoted(shot), dir.file("shot.out"));
  REQUIRE_MESSAGE(shot_status == 0, "chromium --screenshot exited with ", shot_status, "; it said:\n",
                  read_text(dir.file("chromium.log")).substr(0, 4000));
  const Image png = decode_image(shot);
  CHECK(png.width == 1000);
  CHECK(png.height == 700);
  // Not blank: the page has dark text on white and coloured thumbnails.
  float lo = 1, hi = 0;
  for (float v : png.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(hi - lo > 0.5f);

  // The histogram's labels with 40, 60 and 150 photos (ranks in rows, with a key), measured in the
  // browser's own font: the three charts on one page, each label's text inside its box and clear of
  // the other labels of its chart, and nothing wider than the window.
  std::string many = render_score_report(camera_photos(150), kMeta);
  for (const int n : {40, 60}) {
    const std::string other = render_score_report(camera_photos(n), kMeta);
    const size_t from = other.find("<figure class=\"scut\">");
    const size_t to = other.find("</figure>", from);
    REQUIRE(to != std::string::npos);
    many.insert(many.rfind("</main>"), other.substr(from, to + 9 - from) + "\n");
  }
  const std::string charts_probe = std::string("<script>\n") + kCheckLabelsJs + R"(
window.addEventListener("load", () => {
  let charts = 0, count = 0, outside = 0, overlaps = 0;
  for (const svg of document.querySelectorAll("svg.histogram")) {
    charts++;
    const labels = Array.from(svg.querySelectorAll("g.marker-label"));
    const chart = check_labels(labels);
    count += labels.length;
    outside += chart.outside;
    overlaps += chart.overlaps;
  }
  const wide = document.documentElement.scrollWidth > window.innerWidth ? 1 : 0;
  const out = document.createElement("pre");
  out.textContent = `CHARTS charts=${charts} labels=${count} outside=${outside} overlaps=${overlaps} wide=${wide}`;
  document.body.appendChild(out);
});
</script>
)";
  many.insert(many.rfind("</body>"), charts_probe);
  const std::string many_page = dir.file("many.html");
  std::ofstream(many_page, std::ios::binary) << many;
  const std::string many_dom = dir.file("many-dom.html");
  const int many_status = run_chromium(chromium, dir, many_page, "--window-size=800,1000 --dump-dom", many_dom);
  REQUIRE_MESSAGE(many_status == 0, "chromium --dump-dom exited with ", many_status, "; it said:\n",
                  read_text(dir.file("chromium.log")).substr(0, 4000));
  const std::string many_dumped = read_text(many_dom);
  const std::regex charts_line("CHARTS charts=(\\d+) labels=(\\d+) outside=(\\d+) overlaps=(\\d+) wide=(\\d+)");
  REQUIRE_MESSAGE(std::regex_search(many_dumped, m, charts_line), "the probe's line is not in the dumped DOM");
  CHECK(m[1].str() == "3");
  CHECK(m[2].str() == std::to_string(150 + 40 + 60));
  CHECK(m[3].str() == "0");  // every label's text inside its box
  CHECK(m[4].str() == "0");  // and clear of the others
  CHECK(m[5].str() == "0");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("headless Chromium: ", seconds, " s for the DOM dumps and the screenshot");
}

// A 640x480 "photo" for the sample report: a sky-to-ground gradient with a face-like figure (a skin
// ellipse, two eyes, a mouth) in each box.
Image sketch_photo(const std::vector<PixelBox>& faces, float tint) {
  Image img = make_image(480, 640);
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x) {
      const float t = static_cast<float>(y) / 480.0f;
      img.at(y, x, 0) = 0.35f + 0.3f * t + 0.1f * tint;
      img.at(y, x, 1) = 0.5f + 0.1f * t;
      img.at(y, x, 2) = 0.8f - 0.4f * t;
    }
  for (const PixelBox& b : faces) {
    const double cx = b.x + b.width / 2, cy = b.y + b.height / 2;
    for (int64_t y = 0; y < img.height; ++y)
      for (int64_t x = 0; x < img.width; ++x) {
        const double u = (static_cast<double>(x) - cx) / (b.width / 2),
                     v = (static_cast<double>(y) - cy) / (b.height / 2);
        if (u * u + v * v > 1) continue;
        float rgb[3] = {0.93f, 0.76f, 0.62f};
        const double eye = std::min(std::hypot(u + 0.35, v + 0.2), std::hypot(u - 0.35, v + 0.2));
        if (eye < 0.12) rgb[0] = rgb[1] = rgb[2] = 0.15f;
        if (std::abs(v - 0.45) < 0.06 && std::abs(u) < 0.35) rgb[0] = 0.7f, rgb[1] = 0.25f, rgb[2] = 0.25f;
        for (int c = 0; c < 3; ++c) img.at(y, x, c) = rgb[c];
      }
  }
  return img;
}

// Not a check: writes a realistic report for people to look at (HOTLAP_SAMPLE_SCORE_REPORT=path): a
// small model's 64 px inputs and 2x2 maps, several faces in a photo (one row each for one photo, as
// --all-faces gives), a score off the scale, a failure, and scores bunched together.
TEST_CASE("score report: sample report") {
  const char* out = std::getenv("HOTLAP_SAMPLE_SCORE_REPORT");
  if (out == nullptr) return;
  std::vector<ScoredPhoto> photos;
  std::vector<Image> originals;
  const char* names[] = {"leclerc", "norris", "sainz", "russell", "verstappen", "hamilton", "alonso", "perez",
                         "piastri", "gasly",  "ocon",  "albon",   "stroll",     "tsunoda",  "bottas", "zhou"};
  for (int i = 0; i < 16; ++i) {
    ScoredPhoto p = framed_photo(names[i], 3.35 - 0.02 * i);
    p.path = "/home/someone/photos/" + std::string(names[i]) + ".jpg";
    const double shift = 20.0 * (i % 4);
    for (FaceCandidate& f : p.candidates) f.box.x += shift;
    p.face_box = p.candidates[0].box;
    p.crop_box.x += shift;
    p.roll_degrees = i % 3 == 0 ? 0.0 : (i % 2 ? 6.5 : -4.0);
    if (i == 1) p.candidates[1].implausible = "the eyes are too far apart for the box";
    std::vector<PixelBox> boxes;
    for (const FaceCandidate& f : p.candidates) boxes.push_back(f.box);
    originals.push_back(sketch_photo(boxes, 0.1f * static_cast<float>(i % 5)));
    p.preview = std::make_shared<const Image>(resize_area(originals.back(), 240, 320));
    p.heat = {0.2f + 0.05f * static_cast<float>(i % 4), 1.0f, 0.1f, 0.45f};
    photos.push_back(p);
  }
  // An --all-faces pair: one photo's first and second face, the second's square reaching past the
  // photo's edge.
  for (int k : {2, 3}) {
    photos[k] = photos[2];
    photos[k].framing = "face";
    photos[k].face_number = k - 1;
    photos[k].warnings.clear();
  }
  photos[3].score = 3.27;
  photos[3].percentile = scut_percentile(3.27);
  std::swap(photos[3].candidates[0].scored, photos[3].candidates[1].scored);
  photos[3].face_box = photos[3].candidates[1].box;
  photos[3].crop_box = {photos[3].face_box.x + 45 - 125, photos[3].face_box.y + 50 - 125, 250, 250};
  photos[3].roll_degrees = 0;
  originals[3] = originals[2];
  for (size_t i = 0; i < photos.size(); ++i) {  // the framed square and the network input, as hotlap makes them
    ScoredPhoto& p = photos[i];
    const double side = p.crop_box.width, cx = p.crop_box.x + side / 2, cy = p.crop_box.y + side / 2;
    p.framed =
        sample_square(originals[i], cx, cy, side, p.roll_degrees * 3.14159265358979 / 180, 350, {0.5f, 0.5f, 0.5f});
    p.crop = resize(p.framed, 64, 64);
  }
  photos[5].score = 5.31;  // off the scale
  photos[5].percentile = 100;
  photos[5].warnings = {"the score 5.31 lies outside the 1-5 scale: the photo is unlike the model's training photos"};
  std::sort(photos.begin(), photos.end(), [](const ScoredPhoto& a, const ScoredPhoto& b) { return a.score > b.score; });
  photos.push_back(failed("stroll-old", "/home/someone/photos/stroll-old.png: truncated PNG"));
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"Model",
       "/home/someone/runs/r18/fold1/best.safetensors (ResNet-18 (width 16), hotlap checkpoint, input 72->64)"},
      {"Framing", "MTCNN face, SCUT-like crop (face extent 0.60, centre shift 0.10)"},
      {"Test-time augmentation", "none"},
      {"Computed on", "cpu"},
      {"Scored", "2024-03-01 12:00 UTC"}};
  const char* paths = std::getenv("HOTLAP_SAMPLE_REPORT_PATHS");
  write_score_report(out, photos, meta, {.paths = paths != nullptr && std::string(paths) == "1"});
}

}  // namespace
}  // namespace hotlap
