// Fuzz target: the PHOTOS arguments of hotlap score, expanded into files (apps/score/photo_inputs.h).
//
// The input is a list of arguments, one per line (a '\n' or a NUL ends each). They are expanded inside
// a scratch folder made once per process: each argument is taken relative to it (a leading '/' is
// dropped), so that what a run sees is the same on every machine. The folder holds
//   top.jpg  notes.txt  link.jpg -> photos/a.jpg  dangling.jpg -> missing.jpg  loop.jpg -> loop.jpg
//   photos/  a.jpg B.PNG c.webp .hidden.jpg notes.txt odd [1].jpg star*.png q?.bmp dir.jpg/
//            gone.png -> nothing  pipe.jpg (a FIFO)  sub/ d.jpeg e.TIF
//   empty/   only-skipped/ x.heic y.tif
// (the files are empty: nothing here decodes them). expand_photo_arguments only looks (stat, opendir,
// glob): opening pipe.jpg would wait forever, a timeout. It never writes, but it must not look
// outside the folder either, nor wander the whole disk: an
// argument that could climb out of it is passed over. That is a ".." that would leave the folder, or a
// component whose first character is a literal '.' followed by a wildcard (".*" and ".?" match ".."; a
// leading wildcard does not, glob(3) keeps those away from names that start with a dot). There is no
// link to a folder, so ".." means what it says.
//
// What comes back must keep the header's promises: no file twice (after ./ and .. are resolved), no
// skipped file that is also among the files or skipped twice, and every returned path inside the folder
// and existing.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "apps/score/photo_inputs.h"
#include "fuzz/fuzz_util.h"

namespace fz = hotlap::fuzz;
namespace fs = std::filesystem;

namespace {

struct Sandbox {
  fz::ScratchDir root{"photos"};

  Sandbox() {
    for (const char* dir : {"photos/dir.jpg", "photos/sub", "empty", "only-skipped"})
      fs::create_directories(root / dir);
    for (const char* file :
         {"top.jpg", "notes.txt", "photos/a.jpg", "photos/B.PNG", "photos/c.webp", "photos/.hidden.jpg",
          "photos/notes.txt", "photos/odd [1].jpg", "photos/star*.png", "photos/q?.bmp", "photos/sub/d.jpeg",
          "photos/sub/e.TIF", "only-skipped/x.heic", "only-skipped/y.tif"})
      fz::write_text(root / file, "");
    fs::create_symlink("photos/a.jpg", root / "link.jpg");
    fs::create_symlink("missing.jpg", root / "dangling.jpg");
    fs::create_symlink("loop.jpg", root / "loop.jpg");
    fs::create_symlink("nothing", root / "photos/gone.png");
    if (::mkfifo((root / "photos/pipe.jpg").c_str(), 0600) != 0) fz::finding("Sandbox", "cannot make a FIFO");
  }

  // The argument as a path inside the folder, or "" when it could reach outside it (see the top).
  std::string confine(std::string arg) const {
    while (!arg.empty() && arg.front() == '/') arg.erase(0, 1);
    int depth = 0;
    size_t start = 0;
    while (start <= arg.size()) {
      size_t end = arg.find('/', start);
      if (end == std::string::npos) end = arg.size();
      std::string part;
      for (char c : arg.substr(start, end - start))
        if (c != '\\') part += c;  // "\.\." is ".." to glob
      if (part == "..") {
        if (--depth < 0) return "";
      } else if (!part.empty() && part != ".") {
        if (part[0] == '.' && part.find_first_of("*?[") != std::string::npos) return "";
        ++depth;
      }
      start = end + 1;
    }
    return root / arg;
  }
};

// The header's notion of one file: its absolute path with ./ and .. resolved, links not followed.
std::string identity(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Sandbox sandbox;
  std::vector<std::string> args;
  std::string arg;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == '\n' || data[i] == '\0') {
      // Each argument is checked by name too (no file system): the extension tests the folder scan uses.
      hotlap::has_image_extension(arg);
      hotlap::has_unreadable_image_extension(arg);
      if (std::string inside = sandbox.confine(arg); !inside.empty()) args.push_back(inside);
      arg.clear();
    } else {
      arg += static_cast<char>(data[i]);
    }
  }

  std::vector<hotlap::PhotoProblem> problems, skipped;
  std::vector<std::string> files;
  fz::refuses_cleanly("expand_photo_arguments",
                      [&] { files = hotlap::expand_photo_arguments(args, problems, &skipped); });
  const char* what = "expand_photo_arguments";
  const std::string prefix = sandbox.root.path() + "/";
  std::set<std::string> seen;
  for (const std::string& f : files) {
    HOTLAP_FUZZ_REQUIRE(identity(f).rfind(prefix, 0) == 0, what, "returned " + f + ", outside the folder");
    HOTLAP_FUZZ_REQUIRE(seen.insert(identity(f)).second, what, "returned " + f + " twice");
    std::error_code ec;
    HOTLAP_FUZZ_REQUIRE(fs::exists(f, ec), what, "returned " + f + ", which does not exist");
  }
  std::set<std::string> seen_skipped;
  for (const hotlap::PhotoProblem& p : skipped) {
    const std::string& s = p.path;
    HOTLAP_FUZZ_REQUIRE(identity(s).rfind(prefix, 0) == 0, what, "skipped " + s + ", outside the folder");
    HOTLAP_FUZZ_REQUIRE(!seen.count(identity(s)), what, "skipped " + s + ", which is also among the files");
    HOTLAP_FUZZ_REQUIRE(seen_skipped.insert(identity(s)).second, what, "skipped " + s + " twice");
    HOTLAP_FUZZ_REQUIRE(!p.reason.empty(), what, "skipped " + s + " without a reason");
  }
  for (const hotlap::PhotoProblem& p : problems) (void)p.message();
  return 0;
}
