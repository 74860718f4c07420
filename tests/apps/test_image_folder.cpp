// A classifier's data: torchvision's ImageFolder layout (classes, labels, what is skipped, what is an
// error) and the path,label CSV (paths, classes, every kind of problem with its line). The layouts are
// built in a temp folder; the files need only exist (decoding is apps/data/image.h's, tested there).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "apps/data/image_folder.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::TempDir;

void write_file(const fs::path& path, const std::string& text = "") {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// train/{dog,cat,ant} and val/{cat,dog}, with a nested folder, an upper-case extension, a note, a
// hidden file and a hidden folder.
void write_layout(const fs::path& root) {
  write_file(root / "train/dog/d2.png");
  write_file(root / "train/dog/d1.JPG");
  write_file(root / "train/cat/c1.jpeg");
  write_file(root / "train/cat/more/c2.bmp");  // subfolders are walked, as torchvision does
  write_file(root / "train/ant/a1.png");
  write_file(root / "train/ant/notes.txt", "not an image");
  write_file(root / "train/ant/.DS_Store");
  write_file(root / "train/.cache/x.png");  // a hidden folder is no class
  write_file(root / "val/cat/v1.png");
  write_file(root / "val/dog/v2.png");
}

TEST_CASE("image folder: sorted classes, labels, names below the split, non-images reported") {
  TempDir dir;
  write_layout(dir.path);
  CHECK(is_image_folder(dir.path.string()));
  std::vector<std::string> skipped;
  const Split split = load_image_folder(dir.path.string(), &skipped);
  CHECK(split.classes == std::vector<std::string>{"ant", "cat", "dog"});
  std::vector<std::string> names;
  std::vector<int64_t> labels;
  for (const Sample& s : split.train) {
    names.push_back(s.name);
    labels.push_back(s.label);
    CHECK(fs::exists(s.path));
  }
  CHECK(names == std::vector<std::string>{"ant/a1.png", "cat/c1.jpeg", "cat/more/c2.bmp", "dog/d1.JPG", "dog/d2.png"});
  CHECK(labels == std::vector<int64_t>{0, 1, 1, 2, 2});
  REQUIRE(split.test.size() == 2);
  CHECK(split.test[0].name == "cat/v1.png");
  CHECK(split.test[0].label == 1);
  CHECK(split.test[1].label == 2);
  REQUIRE(skipped.size() == 1);
  CHECK(contains(skipped[0], "notes.txt"));
  CHECK(contains(split.description, "5 train, 2 test"));
  CHECK(class_counts(split.train, 3) == std::vector<int64_t>{1, 2, 2});
}

TEST_CASE("image folder: what is refused, by name") {
  TempDir dir;
  write_layout(dir.path);
  SUBCASE("a val class that train lacks") {
    write_file(dir.path / "val/bird/b.png");
    const std::string m = error_of([&] { load_image_folder(dir.path.string()); });
    CHECK(contains(m, "bird"));
    CHECK(contains(m, "train/"));
  }
  SUBCASE("a class folder without an image") {
    fs::create_directories(dir.path / "train/emu");
    write_file(dir.path / "train/emu/readme.md");
    const std::string m = error_of([&] { load_image_folder(dir.path.string()); });
    CHECK(contains(m, (dir.path / "train/emu").string()));
    CHECK(contains(m, "no images"));
  }
  SUBCASE("no train/ folder") {
    fs::remove_all(dir.path / "train");
    CHECK_FALSE(is_image_folder(dir.path.string()));
    CHECK(contains(error_of([&] { load_image_folder(dir.path.string()); }), "no train/ folder"));
  }
  SUBCASE("a train/ folder without classes") {
    fs::remove_all(dir.path / "train");
    write_file(dir.path / "train/loose.png");
    CHECK(contains(error_of([&] { load_image_folder(dir.path.string()); }), "no class folders"));
  }
  SUBCASE("no folder at all") {
    CHECK(contains(error_of([&] { load_image_folder((dir.path / "nope").string()); }), "not found"));
  }
}

TEST_CASE("class CSV: paths beside the CSV, classes sorted, problems with their lines") {
  TempDir dir;
  write_file(dir.path / "img/a.png");
  write_file(dir.path / "img/b.png");
  write_file(dir.path / "img/c.png");
  const std::string absolute = (dir.path / "img/c.png").string();
  write_file(dir.path / "labels.csv", "\xEF\xBB\xBFPath,Label,Note\r\nimg/a.png,zebra,x\r\nimg/b.png,\"ape, great\",\r\n" +
                                          absolute + ",zebra\r\n");
  std::vector<std::string> classes;
  const std::vector<Sample> samples = load_class_csv(dir.file("labels.csv"), classes);
  CHECK(classes == std::vector<std::string>{"ape, great", "zebra"});
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].name == "img/a.png");
  CHECK(samples[0].path == (dir.path / "img/a.png").string());
  CHECK(samples[0].label == 1);
  CHECK(samples[1].label == 0);
  CHECK(samples[2].path == absolute);

  write_file(dir.path / "bad.csv", "label;path\nzebra;img/a.png\nzebra\n;img/b.png\nzebra;img/a.png\nape;img/gone.png\n"
                                   "ape;img/c.png\n");
  const std::string m = error_of([&] { load_class_csv(dir.file("bad.csv"), classes); });
  CHECK(contains(m, "4 problems"));
  CHECK(contains(m, "bad.csv:3: row has 1 fields"));
  CHECK(contains(m, "bad.csv:4: empty label"));
  CHECK(contains(m, "bad.csv:5: img/a.png is listed twice (first at line 2)"));
  CHECK(contains(m, "bad.csv:6: image not found"));
  LoadOptions lenient;
  lenient.stop_on_problems = false;
  std::vector<Problem> problems;
  const std::vector<Sample> kept = load_class_csv(dir.file("bad.csv"), classes, lenient, &problems);
  CHECK(problems.size() == 4);
  REQUIRE(kept.size() == 2);
  CHECK(classes == std::vector<std::string>{"ape", "zebra"});
  CHECK(kept[0].label == 1);
  CHECK(kept[1].label == 0);

  write_file(dir.path / "noheader.csv", "img/a.png,zebra\n");
  CHECK(contains(error_of([&] { load_class_csv(dir.file("noheader.csv"), classes); }), "columns path and label"));
  write_file(dir.path / "empty.csv", "");
  CHECK(contains(error_of([&] { load_class_csv(dir.file("empty.csv"), classes); }), "empty"));
  write_file(dir.path / "header_only.csv", "path,label\n");
  CHECK(contains(error_of([&] { load_class_csv(dir.file("header_only.csv"), classes); }), "no usable rows"));
  CHECK(contains(error_of([&] { load_class_csv(dir.file("missing.csv"), classes); }), "not found"));
}

}  // namespace
}  // namespace hotlap
