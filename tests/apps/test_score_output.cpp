// hotlap score's ranking and output formats: the order is deterministic, and each format reads back
// to the values it was given (CSV with RFC 4180 quoting, JSON with null for NaN, Markdown with pipes
// escaped, the table aligned without trailing spaces, errors listed under it rather than in a column,
// off-scale scores never rounded into the scale); names that repeat are told apart, and the format
// follows --out's extension when --format is not given.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/score/score_output.h"
#include "kernels/error.h"

namespace hotlap {
namespace {

ScoredPhoto scored(const std::string& name, double score, double percentile, const std::string& path = "") {
  ScoredPhoto p;
  p.name = name;
  p.path = path.empty() ? "photos/" + name + ".png" : path;
  p.score = score;
  p.percentile = percentile;
  p.framing = "face";
  p.faces_found = 1;
  p.has_box = true;
  p.face_box = {120.4, 80.6, 200.2, 210.5};
  return p;
}

ScoredPhoto failed(const std::string& name, const std::string& error) {
  ScoredPhoto p;
  p.name = name;
  p.path = "photos/" + name + ".png";
  p.error = error;
  return p;
}

std::vector<std::string> names_of(const std::vector<ScoredPhoto>& photos) {
  std::vector<std::string> names;
  for (const auto& p : photos) names.push_back(p.name);
  return names;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

size_t utf8_width(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The terminal column where the byte at `at` of `line` is shown.
size_t column_at(const std::string& line, size_t at) { return utf8_width(line.substr(0, at)); }

// An RFC 4180 reader: records of fields, quoted fields may hold commas, doubled quotes and newlines.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.push_back(field);
      field.clear();
    } else if (c == '\n') {
      record.push_back(field);
      field.clear();
      records.push_back(record);
      record.clear();
    } else {
      field += c;
    }
  }
  REQUIRE_FALSE(quoted);
  REQUIRE(field.empty());
  REQUIRE(record.empty());  // the text ends with a newline
  return records;
}

TEST_CASE("score output: ranking puts high scores first, ties by name then path, failures last in input order") {
  std::vector<ScoredPhoto> photos = {
      failed("zeta", "zeta.png: cannot decode"),
      scored("b", 3.0, 50),
      scored("a", 3.0, 50, "z/a.png"),
      failed("alpha", "alpha.png: cannot decode"),
      scored("c", 4.5, 99),
      scored("a", 3.0, 50, "y/a.png"),
      scored("d", 1.5, 1),
  };
  rank_photos(photos);
  CHECK(names_of(photos) == std::vector<std::string>{"c", "a", "a", "b", "d", "zeta", "alpha"});
  CHECK(photos[1].path == "y/a.png");
  CHECK(photos[2].path == "z/a.png");

  // The same photos in another order rank the same way.
  std::vector<ScoredPhoto> reversed(photos.rbegin(), photos.rend());
  rank_photos(reversed);
  CHECK(names_of(reversed) == std::vector<std::string>{"c", "a", "a", "b", "d", "alpha", "zeta"});
  CHECK(reversed[1].path == "y/a.png");

  // Ranks count scored photos only.
  const std::string csv = format_scores(photos, "csv");
  const auto records = parse_csv(csv);
  REQUIRE(records.size() == 8);
  CHECK(records[1][0] == "1");
  CHECK(records[5][0] == "5");
  CHECK(records[6][0] == "");
  CHECK(records[7][0] == "");
}

TEST_CASE("score output: CSV has RFC 4180 quoting and the exact columns") {
  ScoredPhoto comma = scored("Pérez, Sergio", 3.14159, 71.234);
  comma.warnings = {"no face found", "two \"faces\""};
  comma.framing = "chosen";
  comma.faces_found = 2;
  ScoredPhoto bad = failed("odd\"name", "photos/odd.png: line one\nline two");
  ScoredPhoto frame = scored("plain", 2.5, 20.0);
  frame.framing = "frame";
  frame.faces_found = -1;
  frame.has_box = false;
  ScoredPhoto low = scored("low", 0.95, 0.0);  // below the 1-5 scale; face 2 of 3 (--all-faces)
  low.faces_found = 3;
  low.face_number = 2;
  std::vector<ScoredPhoto> photos = {comma, frame, low, bad};
  const std::string csv = format_scores(photos, "csv");
  CHECK(csv ==
        "rank,name,path,score,percentile,outside_scale,framing,faces,face,box_x,box_y,box_w,box_h,error,warnings\n"
        "1,\"Pérez, Sergio\",\"photos/Pérez, Sergio.png\",3.1416,71.23,,chosen,2,,120.4,80.6,200.2,210.5,,"
        "\"no face found; two \"\"faces\"\"\"\n"
        "2,plain,photos/plain.png,2.5000,20.00,,frame,,,,,,,,\n"
        "3,low,photos/low.png,0.9500,0.00,1,face,3,2,120.4,80.6,200.2,210.5,,\n"
        ",\"odd\"\"name\",\"photos/odd\"\"name.png\",,,,,,,,,,,\"photos/odd.png: line one\nline two\",\n");

  const auto records = parse_csv(csv);
  REQUIRE(records.size() == 5);
  for (const auto& r : records) CHECK(r.size() == 15);
  CHECK(records[1][1] == "Pérez, Sergio");
  CHECK(records[1][14] == "no face found; two \"faces\"");
  CHECK(records[4][1] == "odd\"name");
  CHECK(records[4][13] == "photos/odd.png: line one\nline two");
}

TEST_CASE("score output: a score outside the 1-5 scale is marked in every format, face k of n shown") {
  ScoredPhoto high = scored("high", 5.25, 100.0);
  ScoredPhoto inside = scored("inside", 4.99, 99.9);
  inside.faces_found = 3;
  inside.face_number = 2;
  std::vector<ScoredPhoto> photos = {high, inside};
  const std::string table = format_scores(photos, "table");
  CHECK(table.find(" 5.25!") != std::string::npos);
  CHECK(table.find("4.99!") == std::string::npos);
  CHECK(table.find("2/3") != std::string::npos);
  CHECK(format_scores(photos, "md").find("5.25!") != std::string::npos);
  const auto j = nlohmann::json::parse(format_scores(photos, "json"));
  CHECK(j["photos"][0]["outside_scale"] == true);
  CHECK(j["photos"][1]["outside_scale"] == false);
  CHECK(j["photos"][1]["face"] == 2);
  CHECK(j["photos"][0]["face"].is_null());
  CHECK(outside_score_scale(0.999));
  CHECK_FALSE(outside_score_scale(1.0));
  CHECK_FALSE(outside_score_scale(5.0));
  CHECK_FALSE(outside_score_scale(NAN));
}

TEST_CASE("score output: JSON reads back, with null for NaN, failures and missing boxes") {
  ScoredPhoto a = scored("verstappen", 3.456789, 88.8888);
  a.warnings = {"rotated 4.0 degrees"};
  ScoredPhoto nan_score = scored("nan", NAN, NAN);
  nan_score.has_box = true;
  nan_score.face_box = {NAN, 0, 1, 1};
  nan_score.faces_found = 0;
  nan_score.framing = "centre";
  ScoredPhoto bad = failed("broken", "photos/broken.png: not an image");
  ScoredPhoto odd_bytes = scored(std::string("bad\xff") + "utf8", 2.0, 10.0);
  std::vector<ScoredPhoto> photos = {a, odd_bytes, nan_score, bad};
  rank_photos(photos);
  const std::string text = format_scores(photos, "json", {{"model", "runs/r50/fold1/best.safetensors"}});
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("nan,") == std::string::npos);

  const nlohmann::json j = nlohmann::json::parse(text);
  CHECK(j.at("scale") == "SCUT-FBP5500 1-5");
  CHECK(j.at("percentile") == "share of the 5500 SCUT-FBP5500 scores below, ties half");
  CHECK(j.at("model") == "runs/r50/fold1/best.safetensors");
  const auto& list = j.at("photos");
  REQUIRE(list.size() == 4);

  const auto& first = list[0];
  CHECK(first.at("rank") == 1);
  CHECK(first.at("name") == "verstappen");
  CHECK(first.at("path") == "photos/verstappen.png");
  CHECK(first.at("score").get<double>() == doctest::Approx(3.4568).epsilon(1e-12));
  CHECK(first.at("percentile").get<double>() == doctest::Approx(88.89).epsilon(1e-12));
  CHECK(first.at("framing") == "face");
  CHECK(first.at("faces") == 1);
  CHECK(first.at("turned") == 0);  // used as it is
  CHECK(first.at("box").at("x").get<double>() == doctest::Approx(120.4));
  CHECK(first.at("box").at("height").get<double>() == doctest::Approx(210.5));
  CHECK(first.at("warnings") == nlohmann::json::array({"rotated 4.0 degrees"}));
  CHECK(first.at("error").is_null());

  CHECK(list[1].at("rank") == 2);  // invalid UTF-8 in a name is replaced, not an exception
  CHECK(list[1].at("name").get<std::string>().find("utf8") != std::string::npos);

  const auto& no_score = list[2];  // scored, but the score is NaN: after the real scores
  CHECK(no_score.at("name") == "nan");
  CHECK(no_score.at("rank") == 3);
  CHECK(no_score.at("score").is_null());
  CHECK(no_score.at("percentile").is_null());
  CHECK(no_score.at("box").is_null());
  CHECK(no_score.at("faces") == 0);
  CHECK(no_score.at("framing") == "centre");

  const auto& failure = list[3];
  CHECK(failure.at("rank").is_null());
  CHECK(failure.at("score").is_null());
  CHECK(failure.at("faces").is_null());
  CHECK(failure.at("framing").is_null());
  CHECK(failure.at("box").is_null());
  CHECK(failure.at("warnings").empty());
  CHECK(failure.at("error") == "photos/broken.png: not an image");

  CHECK_THROWS_WITH_AS(format_scores(photos, "json", {{"photos", "x"}}), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(format_scores(photos, "json", {{"scale", "x"}}), doctest::Contains("reserved"), Error);
}

TEST_CASE("score output: the table is aligned, numbers rounded, warnings as notes below") {
  ScoredPhoto a = scored("Pérez", 3.14159, 71.26);
  a.warnings = {"two faces: scored the largest"};
  ScoredPhoto b = scored("a much longer name, with a comma", 2.0, 9.0);
  b.face_box = {-3.6, 1000.4, 50, 50};
  ScoredPhoto c = scored("tab\there", 1.234, 0.04);
  c.has_box = false;
  c.faces_found = -1;
  c.framing = "frame";
  ScoredPhoto bad = failed("broken", "photos/broken.png: not an image");
  std::vector<ScoredPhoto> photos = {a, b, c, bad};
  rank_photos(photos);
  const std::vector<std::string> lines = lines_of(format_scores(photos, "table"));
  REQUIRE(lines.size() == 12);
  // No line ends in a space; the header, the rule and the four rows are no wider than the rule.
  for (const std::string& line : lines) {
    CAPTURE(line);
    CHECK((line.empty() || line.back() != ' '));
  }
  for (size_t i = 0; i < 6; ++i) CHECK(utf8_width(lines[i]) <= utf8_width(lines[1]));
  CHECK(lines[0].rfind("rank", 0) == 0);
  for (const char* column : {"name", "score", "percentile", "framing", "faces", "box"})
    CHECK(lines[0].find(column) != std::string::npos);
  CHECK(lines[0].find("error") == std::string::npos);
  CHECK(lines[1].find_first_not_of("- ") == std::string::npos);
  // Left-aligned columns start where their header starts, in every row.
  const size_t framing_at = column_at(lines[0], lines[0].find("framing"));
  const size_t box_at = column_at(lines[0], lines[0].find("box"));
  for (size_t i = 2; i < 6; ++i) {
    CAPTURE(lines[i]);
    const char* framing = i == 4 ? "  frame" : i == 5 ? "  failed" : "  face";
    CHECK(column_at(lines[i], lines[i].find(framing) + 2) == framing_at);
  }
  CHECK(column_at(lines[2], lines[2].find("120,81")) == box_at);
  CHECK(column_at(lines[3], lines[3].find("-4,1000")) == box_at);
  // The rule's dashes run under each header, the last one too.
  CHECK(utf8_width(lines[1]) == box_at + 14);
  CHECK(lines[2].find("3.14") != std::string::npos);
  CHECK(lines[2].find("71.3") != std::string::npos);
  CHECK(lines[2].find("120,81,200,211") != std::string::npos);  // x, y, w, h rounded
  CHECK(lines[3].find("-4,1000,50,50") != std::string::npos);
  CHECK(lines[4].find("tab here") != std::string::npos);  // a tab cannot break the row
  CHECK(lines[4].find("0.0 ") != std::string::npos);
  // Scores are right-aligned: they end in the same column as the header "score".
  const size_t score_end = lines[0].find("score") + 5;
  CHECK(lines[3].substr(score_end - 4, 4) == "2.00");  // (row 2's name is not ASCII: bytes != columns)
  CHECK(lines[4].substr(score_end - 4, 4) == "1.23");
  // The failed row has no rank and no error in it: "failed" in the framing column, nothing after.
  CHECK(lines[5].rfind("    ", 0) == 0);
  CHECK(lines[5].find("broken") != std::string::npos);
  CHECK(lines[5].find("not an image") == std::string::npos);
  CHECK(lines[5].substr(lines[5].size() - 6) == "failed");
  // Warnings, then errors, sit below the table, naming the photo.
  CHECK(lines[6].empty());
  CHECK(lines[7] == "warnings:");
  CHECK(lines[8] == "  #1 Pérez: two faces: scored the largest");
  CHECK(lines[9].empty());
  CHECK(lines[10] == "errors:");
  CHECK(lines[11] == "  broken: photos/broken.png: not an image");

  // Without failures there is no error list.
  std::vector<ScoredPhoto> good = {a, b};
  CHECK(format_scores(good, "table").find("error") == std::string::npos);
  // For a terminal narrower than the table: the right-hand columns go, and a line says which.
  for (size_t width : {size_t(60), size_t(45), size_t(30)}) {
    const std::vector<std::string> narrow = lines_of(format_scores(photos, "table", {}, width));
    CAPTURE(width);
    // The table fits, or it is down to the four columns a ranking needs (rank, name, score, percentile).
    const bool fits = std::all_of(narrow.begin(), narrow.begin() + 6,
                                  [&](const std::string& l) { return utf8_width(l) <= width; });
    CHECK((fits || narrow[0].find("framing") == std::string::npos));
    CHECK(narrow[0].find("percentile") != std::string::npos);
    CHECK(narrow[6].rfind("(left out for the terminal's width: ", 0) == 0);
    CHECK(narrow[6].find("box x,y,w,h") != std::string::npos);
  }
  CHECK(format_scores(photos, "table", {}, 200) == format_scores(photos, "table"));

  // A long warning is wrapped to the width too, its later lines indented under its text; a file or a
  // pipe (width 0) keeps it on one line.
  std::vector<ScoredPhoto> warned = {a};
  warned[0].warnings = {"no face upright: found one with the photo turned 90 degrees clockwise (its orientation "
                        "tag may be missing): scored it that way, boxes in the turned photo's pixels"};
  std::string item = "  #1 ";
  item.append(a.name).append(": ").append(warned[0].warnings[0]);
  for (size_t width : {size_t(80), size_t(50)}) {
    const std::vector<std::string> out = lines_of(format_scores(warned, "table", {}, width));
    CAPTURE(width);
    const auto first = std::find(out.begin(), out.end(), "warnings:") + 1;
    REQUIRE(first < out.end());
    CHECK(first->rfind("  #1 ", 0) == 0);
    CHECK(out.end() - first >= 2);  // wrapped
    std::string words;
    for (auto it = first; it != out.end() && !it->empty(); ++it) {
      CHECK(utf8_width(*it) <= width);
      if (it != first) CHECK(it->rfind("    ", 0) == 0);
      if (!words.empty()) words += ' ';
      words.append(*it, it->find_first_not_of(' '));
    }
    CHECK(words == item.substr(2));
  }
  const std::vector<std::string> piped = lines_of(format_scores(warned, "table"));
  CHECK(piped.back() == item);
}

TEST_CASE("score output: a photo that failed does not widen the table or the Markdown") {
  // A new user's first run: three photos, one of them not an image, with an error as long as they come.
  const std::string error = "/home/someone/Pictures/holiday 2023/beach/IMG_20230812_141516.jpg: not an image "
                            "(stb_image: unknown image type; the file starts with 3C 21 44 4F, an HTML page?)";
  std::vector<ScoredPhoto> photos = {scored("IMG_20230812_141502", 3.41, 72.3), scored("IMG_20230812_141509", 2.87, 40.1),
                                     failed("IMG_20230812_141516", error)};
  rank_photos(photos);
  const std::string table = format_scores(photos, "table");
  const std::vector<std::string> lines = lines_of(table);
  REQUIRE(lines.size() == 8);
  // The table fits an 80-column terminal; the rows are as wide as they would be without the failure.
  const std::vector<ScoredPhoto> without(photos.begin(), photos.begin() + 2);
  const std::vector<std::string> scored_only = lines_of(format_scores(without, "table"));
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(lines[i]);
    CHECK(utf8_width(lines[i]) < 80);
    CHECK(lines[i].back() != ' ');
  }
  CHECK(lines[0] == scored_only[0]);
  CHECK(lines[1] == scored_only[1]);
  CHECK(lines[4].find("IMG_20230812_141516") != std::string::npos);
  CHECK(lines[4].find("failed") != std::string::npos);
  CHECK(lines[5].empty());
  CHECK(lines[6] == "errors:");
  CHECK(lines[7] == "  IMG_20230812_141516: " + error);

  // Markdown: the same columns, the error in a list under the table.
  const std::vector<std::string> md = lines_of(format_scores(photos, "md"));
  REQUIRE(md.size() == 9);
  CHECK(md[0] == lines_of(format_scores(without, "md"))[0]);
  CHECK(md[0].find("error") == std::string::npos);
  for (size_t i = 0; i < 5; ++i) CHECK(utf8_width(md[i]) == utf8_width(md[0]));
  CHECK(md[4].find("| failed ") != std::string::npos);
  CHECK(md[5].empty());
  CHECK(md[6] == "Errors:");
  CHECK(md[7].empty());
  CHECK(md[8] == "- IMG_20230812_141516: " + error);

  // CSV and JSON keep the error with the row.
  const auto records = parse_csv(format_scores(photos, "csv"));
  CHECK(records[3][13] == error);
  const auto j = nlohmann::json::parse(format_scores(photos, "json"));
  CHECK(j["photos"][2]["error"] == error);
}

TEST_CASE("score output: Markdown is a pipe table with pipes in cells escaped") {
  ScoredPhoto a = scored("left|right", 3.5, 80);
  ScoredPhoto bad = failed("x", "x.png: a | in the error");
  std::vector<ScoredPhoto> photos = {a, bad};
  const std::vector<std::string> lines = lines_of(format_scores(photos, "md"));
  REQUIRE(lines.size() >= 4);
  // Splitting each line on unescaped pipes gives the same number of cells everywhere.
  auto cells = [](const std::string& line) {
    std::vector<std::string> out;
    std::string cell;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
        cell += '|';
        ++i;
      } else if (line[i] == '|') {
        out.push_back(cell);
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    out.push_back(cell);
    return out;
  };
  const size_t n = cells(lines[0]).size();
  CHECK(n == 9);  // empty before the first pipe and after the last, and seven columns
  for (size_t i = 0; i < 4; ++i) CHECK(cells(lines[i]).size() == n);
  CHECK(lines[1].rfind("| ---:", 0) == 0);  // rank right-aligned
  CHECK(cells(lines[2])[2] == " left|right ");
  CHECK(lines[2].find("left\\|right") != std::string::npos);
  CHECK(lines[2].find(" 3.50 |") != std::string::npos);
  CHECK(cells(lines[3])[5].find(" failed ") == 0);
  // The error is listed under the table, its pipe escaped too.
  REQUIRE(lines.size() == 8);
  CHECK(lines[5] == "Errors:");
  CHECK(lines[7] == "- x: x.png: a \\| in the error");
}

TEST_CASE("score output: an unknown format lists the valid ones") {
  std::vector<ScoredPhoto> photos = {scored("a", 3, 50)};
  CHECK_THROWS_WITH_AS(format_scores(photos, "xml"), doctest::Contains("table, csv, json, md"), Error);
  CHECK_THROWS_WITH_AS(format_scores(photos, "xml"), doctest::Contains("\"xml\""), Error);
  CHECK(score_formats() == std::vector<std::string>{"table", "csv", "json", "md"});
  // No photos: headers only, and JSON's empty list.
  std::vector<ScoredPhoto> none;
  CHECK(lines_of(format_scores(none, "table")).size() == 2);
  CHECK(nlohmann::json::parse(format_scores(none, "json")).at("photos").empty());
}

TEST_CASE("score output: a score just outside the scale never rounds to a number inside it") {
  // 2 decimals would print 5.00, 5.00 and 1.00: numbers inside the scale, next to the mark.
  ScoredPhoto edge = scored("edge", 5.0009, 100.0);
  ScoredPhoto hair = scored("hair", 5.00004, 100.0);
  ScoredPhoto low = scored("low", 0.99996, 0.0);
  ScoredPhoto top = scored("top", 5.0, 100.0);       // on the scale's end: inside
  ScoredPhoto near = scored("near", 4.9996, 99.99);  // inside, rounds to 5.00: fine
  ScoredPhoto bad = failed("broken", "photos/broken.png: not an image");
  std::vector<ScoredPhoto> photos = {edge, hair, top, near, low, bad};
  const std::string table = format_scores(photos, "table");
  CAPTURE(table);
  CHECK(table.find(" 5.001!") != std::string::npos);
  CHECK(table.find(" 5.00004!") != std::string::npos);
  CHECK(table.find(" 0.99996!") != std::string::npos);
  CHECK(table.find("5.00!") == std::string::npos);
  CHECK(table.find("1.00!") == std::string::npos);
  CHECK(table.find(" 5.00  ") != std::string::npos);  // top and near, unmarked
  const std::string md = format_scores(photos, "md");
  CHECK(md.find(" 5.001! |") != std::string::npos);
  CHECK(md.find(" 5.00004! |") != std::string::npos);
  CHECK(md.find(" 0.99996! |") != std::string::npos);
  // CSV and JSON (4 decimals) likewise.
  const auto records = parse_csv(format_scores(photos, "csv"));
  REQUIRE(records.size() == 7);
  CHECK(records[1][3] == "5.0009");
  CHECK(records[2][3] == "5.00004");
  CHECK(records[3][3] == "5.0000");
  CHECK(records[5][3] == "0.99996");
  CHECK(records[2][5] == "1");
  CHECK(records[3][5] == "");
  CHECK(records[6][5] == "");
  const auto j = nlohmann::json::parse(format_scores(photos, "json"));
  CHECK(j["photos"][1]["score"].get<double>() > 5.0);
  CHECK(j["photos"][1]["score"].get<double>() == 5.00004);
  CHECK(j["photos"][4]["score"].get<double>() < 1.0);
  CHECK(j["photos"][1]["outside_scale"] == true);
  CHECK(j["photos"][2]["outside_scale"] == false);
  CHECK(j["photos"][5]["outside_scale"].is_null());  // a photo that failed has no score to be outside

  CHECK(score_digits(5.25, 2) == "5.25");
  CHECK(score_digits(5.0009, 2) == "5.001");
  CHECK(score_digits(0.9996, 2) == "0.9996");
  CHECK(score_digits(4.9996, 2) == "5.00");
  CHECK(score_digits(5.0004, 3) == "5.0004");
  CHECK(score_digits(NAN, 2).empty());
  const std::string least = score_digits(std::nextafter(5.0, 6.0), 2);
  CHECK(std::strtod(least.c_str(), nullptr) > 5.0);
  const std::string below = score_digits(std::nextafter(1.0, 0.0), 2);
  CHECK(std::strtod(below.c_str(), nullptr) < 1.0);
}

TEST_CASE("score output: photos that share a name get the shortest part of their path that tells them apart") {
  auto row = [](const std::string& path, int face = 0) {
    ScoredPhoto p = scored(std::filesystem::path(path).stem().string(), 3.0, 50.0, path);
    p.face_number = face;
    return p;
  };
  std::vector<ScoredPhoto> photos = {row("dup/a/face.png", 1), row("dup/a/face.png", 2), row("dup/b/face.png"),
                                     row("other/face.jpg"),    row("ham.bmp"),           row("ham.gif"),
                                     row("one/same/p.png"),    row("two/same/p.png"),    row("group.png", 1),
                                     row("group.png", 2),      row("solo.png"),          row("./x/solo2.png")};
  disambiguate_names(photos);
  CHECK(names_of(photos) == std::vector<std::string>{"a/face.png", "a/face.png", "b/face.png", "face.jpg", "ham.bmp",
                                                     "ham.gif", "one/same/p.png", "two/same/p.png", "group", "group",
                                                     "solo", "solo2"});
  // Names now differ: a second pass changes nothing.
  std::vector<ScoredPhoto> again = photos;
  disambiguate_names(again);
  CHECK(names_of(again) == names_of(photos));

  // Paths that differ only in how they are written keep them whole; a failed row is named like the rest.
  std::vector<ScoredPhoto> spelled = {row("pic.png"), row("./pic.png"), failed("pic", "pic.jpg: not an image")};
  spelled[2].path = "pic.jpg";
  disambiguate_names(spelled);
  CHECK(names_of(spelled) == std::vector<std::string>{"pic.png", "./pic.png", "pic.jpg"});
  // An absolute path: only the components it takes.
  std::vector<ScoredPhoto> deep = {row("/home/a/x/y/p.png"), row("/home/b/x/y/p.png")};
  disambiguate_names(deep);
  CHECK(names_of(deep) == std::vector<std::string>{"a/x/y/p.png", "b/x/y/p.png"});
  // One photo's --all-faces rows alone: one photo, its name kept.
  std::vector<ScoredPhoto> faces = {row("team.jpg", 1), row("team.jpg", 2), row("team.jpg", 3)};
  disambiguate_names(faces);
  CHECK(names_of(faces) == std::vector<std::string>{"team", "team", "team"});
  // The table then tells them apart.
  std::vector<ScoredPhoto> two = {row("dup/a/face.png"), row("dup/b/face.png")};
  disambiguate_names(two);
  const std::string table = format_scores(two, "table");
  CHECK(table.find("a/face.png") != std::string::npos);
  CHECK(table.find("b/face.png") != std::string::npos);
}

TEST_CASE("score output: without --format, the format follows --out's extension") {
  CHECK(format_for_output("", "") == "table");
  CHECK(format_for_output("", "res.csv") == "csv");
  CHECK(format_for_output("", "out/RES.JSON") == "json");
  CHECK(format_for_output("", "scores.md") == "md");
  CHECK(format_for_output("", "scores.markdown") == "md");
  CHECK(format_for_output("", "scores.txt") == "table");
  CHECK(format_for_output("", "csv") == "table");  // a file named csv, no extension
  CHECK(format_for_output("", "runs.csv/scores") == "table");
  CHECK(format_for_output("json", "res.csv") == "json");  // --format wins
  CHECK(format_for_output("table", "") == "table");
  CHECK(format_for_output("md", "notes.txt") == "md");
  // A note when --format and the extension disagree, none otherwise.
  CHECK(format_note("table", "res.csv") == "note: --format table into res.csv (its extension names csv)");
  CHECK(format_note("csv", "out/res.JSON") == "note: --format csv into out/res.JSON (its extension names json)");
  CHECK(format_note("csv", "res.csv").empty());
  CHECK(format_note("md", "res.markdown").empty());
  CHECK(format_note("", "res.csv").empty());
  CHECK(format_note("json", "res.txt").empty());
  CHECK(format_note("json", "").empty());
  CHECK(format_note("table", "res.csv").find('\n') == std::string::npos);
}

TEST_CASE("elide_long_words: long runs are cut in the middle between characters, the rest is untouched") {
  CHECK(elide_long_words("a short line, kept as it is") == "a short line, kept as it is");
  const std::string word(1000, 'w');
  const std::string cut = elide_long_words("see " + word + " here", 160);
  CHECK(cut == "see " + std::string(100, 'w') + "...(860 bytes left out)..." + std::string(40, 'w') + " here");
  // "é" is two bytes: no cut falls inside one, so the result is valid UTF-8 of whole characters.
  std::string accents;
  for (int i = 0; i < 500; ++i) accents += "\xc3\xa9";
  const std::string short_accents = elide_long_words(accents, 161);
  const size_t dots = short_accents.find("...(");
  REQUIRE(dots != std::string::npos);
  CHECK(dots % 2 == 0);
  const size_t tail = short_accents.find(")...") + 4;
  CHECK((short_accents.size() - tail) % 2 == 0);
  CHECK(static_cast<unsigned char>(short_accents[tail]) == 0xc3);
}

}  // namespace
}  // namespace hotlap
