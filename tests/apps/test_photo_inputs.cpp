// hotlap score's PHOTOS arguments: files kept as given, folders give their images sorted, patterns
// expand with glob(3), and what gives nothing is a problem line rather than an exception.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/photo_inputs.h"
#include "test_util.h"

namespace hotlap {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::vector<std::string> messages(const std::vector<PhotoProblem>& problems) {
  std::vector<std::string> out;
  for (const PhotoProblem& p : problems) out.push_back(p.message());
  return out;
}

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "bytes";
}

// A folder of photos and things that are not: images in mixed case, a text file, a hidden image, a
// sub-folder (with an image inside) and a folder whose name looks like an image.
void make_photo_folder(const TempDir& dir) {
  for (const char* name : {"b.jpg", "a.png", "C.JPEG", "d.Bmp", "e.webp", "notes.txt", ".hidden.jpg", "f.hdr",
                           "sub/inner.jpg", "folder.jpg/x.png"})
    touch(dir.file("photos/" + std::string(name)));
}

TEST_CASE("photo inputs: a folder gives its images, sorted by name, not recursive, no hidden files") {
  TempDir dir;
  make_photo_folder(dir);
  std::vector<PhotoProblem> problems;
  const std::string photos = dir.file("photos");
  const auto files = expand_photo_arguments({photos}, problems);
  CHECK(problems.empty());
  CHECK(files == std::vector<std::string>{photos + "/C.JPEG", photos + "/a.png", photos + "/b.jpg",
                                          photos + "/d.Bmp", photos + "/f.hdr"});
  // A trailing slash gives the same paths.
  CHECK(expand_photo_arguments({photos + "/"}, problems) == files);
  CHECK(problems.empty());
}

TEST_CASE("photo inputs: a file is kept as given, image or not") {
  TempDir dir;
  make_photo_folder(dir);
  std::vector<PhotoProblem> problems;
  const std::string notes = dir.file("photos/notes.txt"), webp = dir.file("photos/e.webp");
  const std::string hidden = dir.file("photos/.hidden.jpg");
  CHECK(expand_photo_arguments({notes, webp, hidden}, problems) == std::vector<std::string>{notes, webp, hidden});
  CHECK(problems.empty());
}

TEST_CASE("photo inputs: patterns expand sorted, one with no match is a problem") {
  TempDir dir;
  make_photo_folder(dir);
  const std::string p = dir.file("photos");
  std::vector<PhotoProblem> problems;
  // A matched folder gives its images, as it would named on its own.
  CHECK(expand_photo_arguments({p + "/*.jpg"}, problems) ==
        std::vector<std::string>{p + "/b.jpg", p + "/folder.jpg/x.png"});
  CHECK(expand_photo_arguments({p + "/[ab].*"}, problems) == std::vector<std::string>{p + "/a.png", p + "/b.jpg"});
  CHECK(expand_photo_arguments({p + "/?.png"}, problems) == std::vector<std::string>{p + "/a.png"});
  CHECK(problems.empty());

  // Every match is taken as an argument: files as they are, the folder "sub" for its images.
  const auto all = expand_photo_arguments({p + "/*"}, problems);
  CHECK(all == std::vector<std::string>{p + "/C.JPEG", p + "/a.png", p + "/b.jpg", p + "/d.Bmp", p + "/e.webp",
                                        p + "/f.hdr", p + "/folder.jpg/x.png", p + "/notes.txt",
                                        p + "/sub/inner.jpg"});
  CHECK(problems.empty());

  CHECK(expand_photo_arguments({p + "/*.gif", p + "/a.png"}, problems) == std::vector<std::string>{p + "/a.png"});
  CHECK(messages(problems) == std::vector<std::string>{p + "/*.gif: no file matches"});

  // A file whose name holds pattern characters is that file.
  const std::string odd = dir.file("odd[1].jpg");
  touch(odd);
  problems.clear();
  CHECK(expand_photo_arguments({odd}, problems) == std::vector<std::string>{odd});
  CHECK(problems.empty());
}

TEST_CASE("photo inputs: missing paths and folders without images are problems, the rest still comes") {
  TempDir dir;
  make_photo_folder(dir);
  fs::create_directories(dir.file("empty"));
  touch(dir.file("text_only/readme.txt"));
  touch(dir.file("text_only/.secret.png"));
  std::vector<PhotoProblem> problems;
  const auto files = expand_photo_arguments(
      {dir.file("missing.jpg"), dir.file("empty"), dir.file("photos/a.png"), dir.file("text_only")}, problems);
  CHECK(files == std::vector<std::string>{dir.file("photos/a.png")});
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].message() == dir.file("missing.jpg") + ": no such file or folder");
  CHECK(problems[1].message().rfind(dir.file("empty") + ": no images (looked for .jpg, .jpeg, .png,", 0) == 0);
  CHECK(problems[1].message().find(".hdr)") != std::string::npos);
  CHECK(problems[2].message().rfind(dir.file("text_only") + ": no images", 0) == 0);
}

TEST_CASE("photo inputs: a photo reached twice is kept once, where it first came") {
  TempDir dir;
  make_photo_folder(dir);
  const std::string p = dir.file("photos");
  std::vector<PhotoProblem> problems;
  const auto files = expand_photo_arguments(
      {p + "/b.jpg", p, p + "/./b.jpg", p + "/sub/../a.png", p + "/*.png", p + "/b.jpg"}, problems);
  CHECK(files == std::vector<std::string>{p + "/b.jpg", p + "/C.JPEG", p + "/a.png", p + "/d.Bmp", p + "/f.hdr"});
  CHECK(problems.empty());
}

TEST_CASE("photo inputs: image extensions, in any case") {
  CHECK(has_image_extension("x/a.JPG"));
  CHECK(has_image_extension("a.jpeg"));
  CHECK(has_image_extension("a.PgM"));
  CHECK_FALSE(has_image_extension("a.webp"));
  CHECK_FALSE(has_image_extension("jpg"));
  CHECK_FALSE(has_image_extension("a."));
  CHECK(image_extensions().size() == 11);
}

}  // namespace
}  // namespace hotlap
