// hotlap score's PHOTOS arguments: files kept as given, folders give their images sorted (and report
// the images hotlap does not read), patterns expand with glob(3), and what gives nothing is a problem
// line rather than an exception.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/data/image.h"
#include "apps/score/photo_inputs.h"
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

std::vector<std::string> paths_of(const std::vector<PhotoProblem>& skipped) {
  std::vector<std::string> out;
  for (const PhotoProblem& p : skipped) out.push_back(p.path);
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
  std::vector<PhotoProblem> skipped;
  const auto files = expand_photo_arguments({photos}, problems, &skipped);
  CHECK(problems.empty());
  CHECK(files == std::vector<std::string>{photos + "/C.JPEG", photos + "/a.png", photos + "/b.jpg",
                                          photos + "/d.Bmp", photos + "/f.hdr"});
  // A WebP and a folder named like an image: noted, not scored.
  CHECK(messages(skipped) == std::vector<std::string>{photos + "/e.webp: not a format hotlap reads",
                                                      photos + "/folder.jpg: a folder, whose contents are not searched"});
  // A trailing slash gives the same paths; without a list for them, skipped files are just left out.
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
  CHECK(problems[1].message().rfind(dir.file("empty") + ": no images (looked for .jpg, .jpeg, .jpe, .jfif, .png,", 0) ==
        0);
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

TEST_CASE("photo inputs: image extensions, in any case, from the decoder's list of formats") {
  CHECK(has_image_extension("x/a.JPG"));
  CHECK(has_image_extension("a.jpeg"));
  CHECK(has_image_extension("a.jfif"));
  CHECK(has_image_extension("a.PgM"));
  CHECK_FALSE(has_image_extension("a.webp"));
  CHECK_FALSE(has_image_extension("jpg"));
  CHECK_FALSE(has_image_extension("a."));
  CHECK(image_extensions() == std::vector<std::string>{"jpg", "jpeg", "jpe", "jfif", "png", "bmp", "gif", "tga",
                                                       "psd", "pnm", "ppm", "pgm", "hdr"});
  size_t listed = 0;
  for (const ImageFormat& f : readable_image_formats()) listed += f.extensions.size();
  CHECK(listed == image_extensions().size());

  for (const char* name : {"a.webp", "a.WEBP", "x/a.tif", "a.Tiff", "a.heic", "a.HEIF", "a.avif", "a.jxl"}) {
    CAPTURE(name);
    CHECK(has_unreadable_image_extension(name));
    CHECK_FALSE(has_image_extension(name));
  }
  for (const char* name : {"a.jpg", "a.txt", "webp", "a.", "a.webp.txt"}) {
    CAPTURE(name);
    CHECK_FALSE(has_unreadable_image_extension(name));
  }
}

TEST_CASE("photo inputs: images hotlap does not read are skipped in folders and reported, not problems") {
  TempDir dir;
  const std::string p = dir.file("mixed");
  for (const char* name : {"a.jpg", "b.webp", "c.TIFF", "d.heic", "e.avif", "f.jxl", "g.tif", "h.heif", "x.jfif",
                           "notes.txt", ".hidden.webp", "sub.webp/inner.webp"})
    touch(p + "/" + name);
  std::vector<PhotoProblem> problems;
  std::vector<PhotoProblem> skipped;
  CHECK(expand_photo_arguments({p}, problems, &skipped) == std::vector<std::string>{p + "/a.jpg", p + "/x.jfif"});
  CHECK(problems.empty());
  // Sorted by name; hidden files and files not named like images are not mentioned.
  CHECK(paths_of(skipped) == std::vector<std::string>{p + "/b.webp", p + "/c.TIFF", p + "/d.heic", p + "/e.avif",
                                                      p + "/f.jxl", p + "/g.tif", p + "/h.heif", p + "/sub.webp"});

  // A folder named twice (or reached through a pattern) reports its skipped files once. A file named
  // directly (or matched by a pattern) is kept, as any named file is (its decode error then says what
  // it is), and so is not reported as skipped.
  skipped.clear();
  CHECK(expand_photo_arguments({p, p + "/", dir.file("*"), p + "/b.*"}, problems, &skipped) ==
        std::vector<std::string>{p + "/a.jpg", p + "/x.jfif", p + "/b.webp"});
  CHECK(problems.empty());
  CHECK(paths_of(skipped) == std::vector<std::string>{p + "/c.TIFF", p + "/d.heic", p + "/e.avif", p + "/f.jxl",
                                                      p + "/g.tif", p + "/h.heif", p + "/sub.webp"});

  // A folder with only images hotlap does not read has no images (a problem) and reports them as well.
  const std::string webp_only = dir.file("webp_only");
  touch(webp_only + "/z.webp");
  touch(webp_only + "/y.webp");
  skipped.clear();
  CHECK(expand_photo_arguments({webp_only, p + "/a.jpg"}, problems, &skipped) ==
        std::vector<std::string>{p + "/a.jpg"});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message().rfind(webp_only + ": no images (looked for", 0) == 0);
  CHECK(paths_of(skipped) == std::vector<std::string>{webp_only + "/y.webp", webp_only + "/z.webp"});
}

TEST_CASE("photo inputs: links to nothing, link loops and pipes are skipped with their reason, or named") {
  TempDir dir;
  const std::string p = dir.file("odd");
  touch(p + "/a.jpg");
  fs::create_symlink(dir.file("nowhere.jpg"), p + "/dangling.jpg");
  fs::create_symlink(p + "/loop.png", p + "/loop.png");
  fs::create_symlink(p + "/a.jpg", p + "/link.jpg");  // a link to a photo is a photo
  REQUIRE(::mkfifo((p + "/pipe.jpg").c_str(), 0644) == 0);
  std::vector<PhotoProblem> problems, skipped;
  CHECK(expand_photo_arguments({p}, problems, &skipped) == std::vector<std::string>{p + "/a.jpg", p + "/link.jpg"});
  CHECK(problems.empty());
  CHECK(messages(skipped) == std::vector<std::string>{p + "/dangling.jpg: a link to nothing",
                                                      p + "/loop.png: a link loop",
                                                      p + "/pipe.jpg: not a regular file (a pipe, a device or a socket)"});

  // Named directly, a link to nothing says where it points; a loop says it is one.
  skipped.clear();
  CHECK(expand_photo_arguments({p + "/dangling.jpg", p + "/loop.png"}, problems, &skipped).empty());
  CHECK(messages(problems) == std::vector<std::string>{
                                  p + "/dangling.jpg: a link to nothing (" + dir.file("nowhere.jpg") + ")",
                                  p + "/loop.png: a link loop"});
}

}  // namespace
}  // namespace hotlap
