// SCUT-FBP5500 label layer: both 60/40 spellings, all five folds, tolerant line parsing, every kind of
// problem with its file and line, the summary, skip mode, rater-CSV averaging and the image check.
// Layouts are built in a temp folder; nothing here reads the real data set.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "apps/data/scut.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void touch_images(const fs::path& root, const std::vector<std::string>& names) {
  fs::create_directories(root / "Images");
  for (const auto& n : names) write_file(root / "Images" / n, "");
}

// Ten names with their real v2 scores (from the top of the real fold files), split 6 train / 4 test.
const std::vector<std::pair<std::string, std::string>> kRows = {
    {"CF437.jpg", "2.883333"}, {"AM1384.jpg", "2.466667"}, {"AM1234.jpg", "2.15"},
    {"AM152.jpg", "4.316667"}, {"CM416.jpg", "2.633333"},  {"AF1.jpg", "1.017"},
    {"AF2.jpg", "4.75"},       {"CM1.jpg", "3.5"},          {"CF2.jpg", "1"},
    {"AM2.jpg", "5"}};

std::string lines(size_t from, size_t to, const std::string& eol = "\n") {
  std::string s;
  for (size_t i = from; i < to; ++i) s += kRows[i].first + " " + kRows[i].second + eol;
  return s;
}

std::vector<std::string> all_names() {
  std::vector<std::string> v;
  for (const auto& r : kRows) v.push_back(r.first);
  return v;
}

fs::path fold_dir(const fs::path& root, int k) {
  return root / "train_test_files" / "5_folders_cross_validations_files" / ("cross_validation_" + std::to_string(k));
}

// Fold k tests on rows 2(k-1), 2(k-1)+1 and trains on the other eight.
void write_folds(const fs::path& root) {
  for (int k = 1; k <= 5; ++k) {
    size_t a = 2 * static_cast<size_t>(k - 1);
    write_file(fold_dir(root, k) / ("train_" + std::to_string(k) + ".txt"), lines(0, a) + lines(a + 2, kRows.size()));
    write_file(fold_dir(root, k) / ("test_" + std::to_string(k) + ".txt"), lines(a, a + 2));
  }
}

std::set<std::string> names_of(const std::vector<Sample>& v) {
  std::set<std::string> s;
  for (const auto& x : v) s.insert(x.name);
  return s;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

LoadOptions skipping() {
  LoadOptions o;
  o.stop_on_problems = false;
  return o;
}

TEST_CASE("scut: the 60/40 split is found under both folder spellings") {
  for (const std::string folder : {"split_of_60%training and 40%testing", "split_of_60%training_40%testing"}) {
    CAPTURE(folder);
    TempDir dir;
    touch_images(dir.path, all_names());
    write_file(dir.path / "train_test_files" / folder / "train.txt", lines(0, 6));
    write_file(dir.path / "train_test_files" / folder / "test.txt", lines(6, 10));
    Split s = load_scut_split(dir.path.string(), Protocol::sixty_forty, 0);
    CHECK(s.train.size() == 6);
    CHECK(s.test.size() == 4);
    CHECK(s.problems.empty());
    CHECK(s.train[0].name == "CF437.jpg");
    CHECK(s.train[0].score == doctest::Approx(2.883333f));
    CHECK(s.train[0].path == (dir.path / "Images" / "CF437.jpg").string());
    CHECK(s.test[3].name == "AM2.jpg");
    CHECK(s.test[3].score == 5.0f);
    CHECK(contains(s.description, "60/40"));
    CHECK(contains(s.description, "6 train, 4 test"));
  }
}

TEST_CASE("scut: all five folds load, each covering every image once with no overlap") {
  TempDir dir;
  touch_images(dir.path, all_names());
  write_folds(dir.path);
  std::set<std::string> tested;
  for (int k = 1; k <= 5; ++k) {
    CAPTURE(k);
    Split s = load_scut_split(dir.path.string(), Protocol::five_fold, k);
    CHECK(s.train.size() == 8);
    CHECK(s.test.size() == 2);
    std::set<std::string> tr = names_of(s.train), te = names_of(s.test), all = tr;
    all.insert(te.begin(), te.end());
    CHECK(all.size() == kRows.size());
    CHECK(s.test[0].name == kRows[2 * static_cast<size_t>(k - 1)].first);
    CHECK(contains(s.description, "fold " + std::to_string(k)));
    tested.insert(te.begin(), te.end());
  }
  CHECK(tested.size() == kRows.size());
  CHECK(contains(error_of([&] { load_scut_split(dir.path.string(), Protocol::five_fold, 6); }), "fold 6 is not in 1..5"));
  CHECK(contains(error_of([&] { load_scut_split(dir.path.string(), Protocol::five_fold, 0); }), "not in 1..5"));
}

TEST_CASE("scut: CRLF, trailing whitespace, tabs, blank lines, a BOM and no final newline are fine") {
  TempDir dir;
  touch_images(dir.path, all_names());
  std::string text = "\xEF\xBB\xBF" + kRows[0].first + " " + kRows[0].second + "  \r\n\r\n" + kRows[1].first + "\t" +
                     kRows[1].second + "\t\r\n   \n" + kRows[2].first + "   " + kRows[2].second + " \r\n" +
                     kRows[3].first + " " + kRows[3].second;  // no newline at the end
  write_file(dir.path / "labels.txt", text);
  std::vector<Problem> problems;
  std::vector<Sample> s = load_labels(dir.file("labels.txt"), (dir.path / "Images").string(), skipping(), &problems);
  CHECK(problems.empty());
  REQUIRE(s.size() == 4);
  CHECK(s[0].name == "CF437.jpg");
  CHECK(s[1].name == "AM1384.jpg");
  CHECK(s[1].score == doctest::Approx(2.466667f));
  CHECK(s[3].name == "AM152.jpg");
  CHECK(s[3].score == doctest::Approx(4.316667f));

  // The same rows with CRLF throughout, as a split file.
  write_file(dir.path / "train_test_files/split_of_60%training and 40%testing/train.txt", lines(0, 6, "\r\n"));
  write_file(dir.path / "train_test_files/split_of_60%training and 40%testing/test.txt", lines(6, 10, " \r\n"));
  Split split = load_scut_split(dir.path.string(), Protocol::sixty_forty, 0);
  CHECK(split.train.size() == 6);
  CHECK(split.test.size() == 4);
}

TEST_CASE("scut: every kind of problem is reported with its file and line") {
  TempDir dir;
  touch_images(dir.path, all_names());
  const fs::path d = fold_dir(dir.path, 2);
  const std::string train = (d / "train_2.txt").string(), test = (d / "test_2.txt").string();
  write_file(train,
             "CF437.jpg 2.883333\n"     // 1 ok
             "AM1384.jpg\n"             // 2 missing score
             "AM1234.jpg abc\n"         // 3 not a number
             "AM152.jpg 5.5\n"          // 4 out of range
             "CM416.jpg 2.5 extra\n"    // 5 extra field
             "\n"                       // 6 blank
             "CF437.jpg 3.0\n"          // 7 duplicate of line 1
             "AF404.jpg 3.0\n"          // 8 image missing
             "AF1.jpg 0.99\n");         // 9 out of range (below 1)
  write_file(test,
             "AF2.jpg 4.75\n"           // 1 ok
             "CF437.jpg 2.883333\n"     // 2 overlap with train line 1
             "CM1.jpg nan\n");          // 3 not a number
  Split s = load_scut_split(dir.path.string(), Protocol::five_fold, 2, skipping());
  struct Want {
    std::string file;
    int64_t line;
    ProblemKind kind;
    std::string text;
  };
  const std::vector<Want> want = {
      {train, 2, ProblemKind::malformed, "missing score"},
      {train, 3, ProblemKind::malformed, "\"abc\" is not a number"},
      {train, 4, ProblemKind::score_out_of_range, "score 5.5 of AM152.jpg is outside [1, 5]"},
      {train, 5, ProblemKind::malformed, "got 3 fields"},
      {train, 7, ProblemKind::duplicate, "CF437.jpg is listed twice (first at line 1)"},
      {train, 8, ProblemKind::missing_image, "image not found: " + (dir.path / "Images" / "AF404.jpg").string()},
      {train, 9, ProblemKind::score_out_of_range, "outside [1, 5]"},
      {test, 2, ProblemKind::overlap, "CF437.jpg is in both train and test (also train_2.txt:1)"},
      {test, 3, ProblemKind::malformed, "\"nan\" is not a number"},
  };
  REQUIRE(s.problems.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CAPTURE(s.problems[i].message);
    CHECK(s.problems[i].file == want[i].file);
    CHECK(s.problems[i].line == want[i].line);
    CHECK(s.problems[i].kind == want[i].kind);
    CHECK(contains(s.problems[i].message, want[i].text));
  }
  // Skip mode: only the good lines remain, the overlapping name stays in train only.
  CHECK(names_of(s.train) == std::set<std::string>{"CF437.jpg"});
  CHECK(s.test.size() == 1);
  CHECK(s.test[0].name == "AF2.jpg");
  CHECK(s.train[0].score == doctest::Approx(2.883333f));  // the first of the duplicates is kept
}

TEST_CASE("scut: by default problems stop the load with one summary Error") {
  TempDir dir;
  touch_images(dir.path, all_names());
  write_file(dir.path / "labels.txt",
             "CF437.jpg 2.9\nAM1384.jpg\nAM1234.jpg 7\nCF437.jpg 3\nAF404.jpg 3\nAF1.jpg x y\n");
  const std::string file = dir.file("labels.txt"), images = (dir.path / "Images").string();
  std::string msg = error_of([&] { load_labels(file, images); });
  CHECK(msg.rfind("5 problems in the labels (2 malformed lines, 1 score outside [1, 5], 1 duplicate name, "
                  "1 missing image):", 0) == 0);
  CHECK(contains(msg, "\n  " + file + ":2: missing score"));
  CHECK(contains(msg, "\n  " + file + ":3: score 7 of AM1234.jpg is outside [1, 5]"));
  CHECK(contains(msg, "\n  " + file + ":4: CF437.jpg is listed twice (first at line 1)"));
  CHECK(contains(msg, "\n  " + file + ":5: image not found"));
  CHECK(contains(msg, "\n  " + file + ":6: expected \"NAME SCORE\", got 3 fields"));
  CHECK(!contains(msg, "more"));

  // Many problems: the first ten are listed, then a count of the rest.
  std::string many;
  for (int i = 0; i < 25; ++i) many += "AF" + std::to_string(i + 1) + ".jpg bad\n";
  write_file(dir.path / "many.txt", many);
  msg = error_of([&] { load_labels(dir.file("many.txt"), images); });
  CHECK(msg.rfind("25 problems in the labels (25 malformed lines):", 0) == 0);
  CHECK(contains(msg, dir.file("many.txt") + ":10: score \"bad\""));
  CHECK(!contains(msg, dir.file("many.txt") + ":11:"));
  CHECK(contains(msg, "\n  ... and 15 more"));

  std::vector<Problem> one = {{"f.txt", 3, "bad", ProblemKind::overlap}};
  CHECK(summarize_problems(one) == "1 problem in the labels (1 train/test overlap):\n  f.txt:3: bad");
}

TEST_CASE("scut: skip mode returns the good lines and the problems") {
  TempDir dir;
  touch_images(dir.path, all_names());
  write_file(dir.path / "labels.txt", "CF437.jpg 2.9\nAM1384.jpg\nAM1234.jpg 7\nAF1.jpg 1.5\n");
  std::vector<Problem> problems;
  std::vector<Sample> s = load_labels(dir.file("labels.txt"), (dir.path / "Images").string(), skipping(), &problems);
  CHECK(names_of(s) == std::set<std::string>{"CF437.jpg", "AF1.jpg"});
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].line == 2);
  CHECK(problems[1].line == 3);
  // Without an out-parameter skip mode still works.
  CHECK(load_labels(dir.file("labels.txt"), (dir.path / "Images").string(), skipping()).size() == 2);
  // Nothing usable at all is still an Error.
  write_file(dir.path / "bad.txt", "AF1.jpg x\n");
  CHECK(contains(error_of([&] { load_labels(dir.file("bad.txt"), (dir.path / "Images").string(), skipping()); }),
                 "no usable samples"));
}

TEST_CASE("scut: the rater CSV averages ratings per file, columns found by name") {
  TempDir dir;
  touch_images(dir.path, all_names());
  const std::string images = (dir.path / "Images").string();
  SUBCASE("Rater,Filename,Rating,original Rating") {
    write_file(dir.path / "r.csv",
               "Rater,Filename,Rating,original Rating\r\n"
               "1,AF1.jpg,2,2\r\n1,CM1.jpg,4,4\r\n2,AF1.jpg,3,3\r\n"
               "2,CM1.jpg,5,5\r\n3,AF1.jpg,3,1\r\n3,CM1.jpg,4,4\r\n");
  }
  SUBCASE("different order, case, quotes, semicolons") {
    write_file(dir.path / "r.csv",
               "\xEF\xBB\xBF\"RATING\";\"Note, free text\";\"FILENAME\"\n"
               "2;\"x\";\"AF1.jpg\"\n4;y;CM1.jpg\n3; \"a; b\" ;AF1.jpg\n5;;CM1.jpg\n\n3;z;AF1.jpg\n4;w;CM1.jpg");
  }
  std::vector<Sample> s = load_rater_csv(dir.file("r.csv"), images);
  REQUIRE(s.size() == 2);
  CHECK(s[0].name == "AF1.jpg");
  CHECK(s[0].score == doctest::Approx(8.0 / 3.0));
  CHECK(s[0].path == (dir.path / "Images" / "AF1.jpg").string());
  CHECK(s[1].name == "CM1.jpg");
  CHECK(s[1].score == doctest::Approx(13.0 / 3.0));
}

TEST_CASE("scut: rater CSV problems and errors") {
  TempDir dir;
  touch_images(dir.path, all_names());
  const std::string images = (dir.path / "Images").string(), file = dir.file("r.csv");
  write_file(file, "Filename,Rating\nAF1.jpg,3\nAF1.jpg,six\nAF1.jpg,6\nCM1.jpg\n,3\nAF404.jpg,2\nAF1.jpg,4\n");
  std::vector<Problem> problems;
  std::vector<Sample> s = load_rater_csv(file, images, skipping(), &problems);
  REQUIRE(s.size() == 1);
  CHECK(s[0].score == doctest::Approx(3.5));
  REQUIRE(problems.size() == 5);
  CHECK(problems[0].line == 3);
  CHECK(contains(problems[0].message, "\"six\" is not a number"));
  CHECK(problems[1].line == 4);
  CHECK(problems[1].kind == ProblemKind::score_out_of_range);
  CHECK(problems[2].line == 5);
  CHECK(contains(problems[2].message, "row has 1 fields"));
  CHECK(problems[3].line == 6);
  CHECK(contains(problems[3].message, "empty Filename"));
  CHECK(problems[4].line == 7);
  CHECK(problems[4].kind == ProblemKind::missing_image);
  CHECK(contains(error_of([&] { load_rater_csv(file, images); }), "5 problems in the labels"));

  write_file(file, "Rater,Filename,Score\n1,AF1.jpg,3\n");
  std::string msg = error_of([&] { load_rater_csv(file, images); });
  CHECK(contains(msg, "needs columns Filename and Rating"));
  CHECK(contains(msg, "\"Score\""));
  write_file(file, "");
  CHECK(contains(error_of([&] { load_rater_csv(file, images); }), "ratings CSV is empty"));
  write_file(file, "Filename,Rating\n");
  CHECK(contains(error_of([&] { load_rater_csv(file, images); }), "no rows"));
}

TEST_CASE("scut: the image check finds missing files and can be turned off") {
  TempDir dir;
  touch_images(dir.path, {"CF437.jpg", "AM1384.jpg", "AF2.jpg"});
  const std::string folder = "split_of_60%training and 40%testing";
  write_file(dir.path / "train_test_files" / folder / "train.txt", lines(0, 3));  // AM1234 missing
  write_file(dir.path / "train_test_files" / folder / "test.txt", lines(6, 8));   // CM1 missing
  std::string msg = error_of([&] { load_scut_split(dir.path.string(), Protocol::sixty_forty, 0); });
  CHECK(contains(msg, "2 problems in the labels (2 missing images)"));
  CHECK(contains(msg, "train.txt:3: image not found: " + (dir.path / "Images" / "AM1234.jpg").string()));
  CHECK(contains(msg, "test.txt:2: image not found"));
  LoadOptions unchecked;
  unchecked.check_images_exist = false;
  Split s = load_scut_split(dir.path.string(), Protocol::sixty_forty, 0, unchecked);
  CHECK(s.train.size() == 3);
  CHECK(s.test.size() == 2);
  // A folder named like an image is not an image.
  fs::create_directories(dir.path / "Images" / "AM1234.jpg");
  CHECK(contains(error_of([&] { load_scut_split(dir.path.string(), Protocol::sixty_forty, 0); }), "2 missing images"));
  // No Images folder at all: one clear error, not one problem per line.
  fs::remove_all(dir.path / "Images");
  msg = error_of([&] { load_scut_split(dir.path.string(), Protocol::sixty_forty, 0); });
  CHECK(msg.rfind("images folder not found: " + (dir.path / "Images").string(), 0) == 0);
  CHECK(load_scut_split(dir.path.string(), Protocol::sixty_forty, 0, unchecked).train.size() == 3);
}

TEST_CASE("scut: missing folders and files, empty files are clear errors") {
  TempDir dir;
  std::string msg = error_of([&] { load_scut_split(dir.file("nope"), Protocol::five_fold, 1); });
  CHECK(msg.rfind("data folder not found: " + dir.file("nope"), 0) == 0);
  CHECK(contains(msg, "SCUT-FBP5500_v2 layout"));

  touch_images(dir.path, all_names());
  msg = error_of([&] { load_scut_split(dir.path.string(), Protocol::five_fold, 3); });
  CHECK(contains(msg, "label file not found: " + (fold_dir(dir.path, 3) / "train_3.txt").string()));
  CHECK(contains(msg, "cross_validation_K/{train,test}_K.txt"));

  msg = error_of([&] { load_scut_split(dir.path.string(), Protocol::sixty_forty, 0); });
  CHECK(contains(msg, "60/40 split files not found"));
  CHECK(contains(msg, "split_of_60%training and 40%testing/train.txt"));
  CHECK(contains(msg, "split_of_60%training_40%testing/train.txt"));

  // The zip unpacks into SCUT-FBP5500_v2/: a hint when the user points at its parent.
  fs::create_directories(dir.path / "SCUT-FBP5500_v2" / "train_test_files");
  msg = error_of([&] { load_scut_split(dir.path.string(), Protocol::five_fold, 1); });
  CHECK(contains(msg, "did you mean " + (dir.path / "SCUT-FBP5500_v2").string()));

  write_file(dir.path / "empty.txt", "\n  \r\n");
  msg = error_of([&] { load_labels(dir.file("empty.txt"), (dir.path / "Images").string()); });
  CHECK(msg.rfind("label file is empty: " + dir.file("empty.txt"), 0) == 0);
  CHECK(contains(error_of([&] { load_labels(dir.file("missing.txt"), ""); }),
                 "label file not found: " + dir.file("missing.txt")));
  CHECK(contains(error_of([&] { read_score_list(dir.file("missing.txt")); }), "not found"));

  // A NUL byte would end the name the file system sees: "AF1.jpg\0x" is not a second AF1.jpg.
  write_file(dir.path / "nul.txt", std::string("AF1.jpg 3.0\nAF1.jpg\0x 2.0\nAF2.jpg\x01 2.0\n", 39));
  msg = error_of([&] { load_labels(dir.file("nul.txt"), ""); });
  CHECK(contains(msg, "nul.txt:2: image name holds a control character (byte 0x00): \"AF1.jpg?x 2.0\""));
  CHECK(contains(msg, "nul.txt:3: image name holds a control character (byte 0x01)"));
  write_file(dir.path / "nul.csv", std::string("Filename,Rating\nAF1.jpg\0,3\n", 27));
  CHECK(contains(error_of([&] { load_rater_csv(dir.file("nul.csv"), ""); }), "control character (byte 0x00)"));

  // A pipe would block the load forever and /dev/zero would never end: both refused before reading.
  REQUIRE(::mkfifo(dir.file("pipe.txt").c_str(), 0600) == 0);
  CHECK(contains(error_of([&] { load_labels(dir.file("pipe.txt"), ""); }),
                 "label file is not a regular file (a pipe, a device or a socket): " + dir.file("pipe.txt")));
  fs::create_symlink("/dev/zero", dir.path / "zero.csv");
  CHECK(contains(error_of([&] { load_rater_csv(dir.file("zero.csv"), ""); }), "is not a regular file"));
}

TEST_CASE("scut: read_score_list and parse_protocol") {
  TempDir dir;
  write_file(dir.path / "all_scores.txt", lines(0, 10, "\r\n"));
  std::vector<float> scores = read_score_list(dir.file("all_scores.txt"));
  REQUIRE(scores.size() == 10);
  CHECK(scores[0] == doctest::Approx(2.883333f));
  CHECK(scores[5] == doctest::Approx(1.017f));
  CHECK(scores[9] == 5.0f);
  write_file(dir.path / "bad.txt", "AF1.jpg 3\nAF2.jpg 9\n");
  CHECK(contains(error_of([&] { read_score_list(dir.file("bad.txt")); }), "bad.txt:2: score 9 of AF2.jpg"));

  CHECK(parse_protocol("5fold") == Protocol::five_fold);
  CHECK(parse_protocol("5-fold") == Protocol::five_fold);
  CHECK(parse_protocol("60-40") == Protocol::sixty_forty);
  CHECK(parse_protocol("60/40") == Protocol::sixty_forty);
  CHECK(std::string(protocol_name(Protocol::sixty_forty)) == "60-40");
  CHECK(contains(error_of([] { parse_protocol("80-20"); }), "unknown protocol \"80-20\""));
}

}  // namespace
}  // namespace hotlap
