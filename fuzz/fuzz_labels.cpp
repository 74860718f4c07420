// Fuzz target: the label files of a data set (apps/data/scut.h): "NAME SCORE" lists, the per-rater CSV and
// the SCUT-FBP5500 split files; and a classifier's path,label CSV (apps/data/image_folder.h).
//
// The input is one text file. It is read as each kind in turn:
//   load_labels        a --labels file, strict and lenient (problems handed back rather than thrown)
//   read_score_list    an all_scores.txt, for the percentile table
//   load_rater_csv     a --ratings CSV, strict and lenient
//   load_class_csv     a classifier's --labels CSV, strict and lenient (paths relative to the scratch
//                      folder, where a few exist)
//   load_scut_split    the train and test files of fold 1 of the 5-fold layout and of the 60/40 layout,
//                      both cut from the input at its first kSplitMarker line (all of it is the
//                      train file when there is none, and the test file is then empty)
// Those take paths: the input is written into a scratch folder laid out as SCUT-FBP5500_v2, whose
// Images folder holds a few empty files with SCUT's names (so that some names exist and some do not)
// and a folder named like an image. A label name is only ever looked up (stat), never opened.
//
// Besides refusing cleanly, what is accepted must keep the promises of scut.h: every score in [1, 5],
// no name twice in one list, no name both in train and in test; and of image_folder.h: classes sorted
// and distinct, every sample's class one of them, no path twice.
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "apps/data/image_folder.h"
#include "apps/data/scut.h"
#include "fuzz/fuzz_util.h"

namespace fz = hotlap::fuzz;

namespace {

const std::string kSplitMarker = "\n--\n";

void check_samples(const std::vector<hotlap::Sample>& samples, const char* what) {
  std::set<std::string> names;
  for (const hotlap::Sample& s : samples) {
    HOTLAP_FUZZ_REQUIRE(std::isfinite(s.score) && s.score >= 1.0f && s.score <= 5.0f, what,
                        s.name + " has the score " + std::to_string(s.score) + ", outside [1, 5]");
    HOTLAP_FUZZ_REQUIRE(!s.name.empty(), what, "returned a sample without a name");
    HOTLAP_FUZZ_REQUIRE(names.insert(s.name).second, what, s.name + " is listed twice");
  }
}

void check_split(const hotlap::Split& split, const char* what) {
  check_samples(split.train, what);
  check_samples(split.test, what);
  std::set<std::string> train;
  for (const hotlap::Sample& s : split.train) train.insert(s.name);
  for (const hotlap::Sample& s : split.test)
    HOTLAP_FUZZ_REQUIRE(!train.count(s.name), what, s.name + " is in both train and test");
}

void check_classes(const std::vector<hotlap::Sample>& samples, const std::vector<std::string>& classes) {
  for (size_t k = 1; k < classes.size(); ++k)
    HOTLAP_FUZZ_REQUIRE(classes[k - 1] < classes[k], "load_class_csv", "classes not sorted and distinct");
  std::set<std::string> names;
  for (const hotlap::Sample& s : samples) {
    HOTLAP_FUZZ_REQUIRE(s.label >= 0 && static_cast<size_t>(s.label) < classes.size(), "load_class_csv",
                        s.name + " has the class " + std::to_string(s.label));
    HOTLAP_FUZZ_REQUIRE(names.insert(s.name).second, "load_class_csv", s.name + " is listed twice");
  }
}

struct Layout {
  fz::ScratchDir root{"labels"};
  std::string data = root / "SCUT-FBP5500_v2";
  std::string images = data + "/Images";
  std::string fold = data + "/train_test_files/5_folders_cross_validations_files/cross_validation_1";
  std::string sixty_forty = data + "/train_test_files/split_of_60%training and 40%testing";
  std::string labels = root / "labels.txt";

  Layout() {
    for (const std::string& dir : {images + "/CM2.jpg", fold, sixty_forty})
      std::filesystem::create_directories(dir);
    for (const char* name : {"AF1.jpg", "AF2.jpg", "AM1.jpg", "CF1.jpg", "CM1.jpg", "a b.jpg"})
      fz::write_text(images + "/" + name, "");
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::single_threaded();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Layout layout;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fz::write_text(layout.labels, text);

  hotlap::LoadOptions strict, lenient;
  lenient.stop_on_problems = false;
  hotlap::LoadOptions unchecked = lenient;
  unchecked.check_images_exist = false;

  fz::refuses_cleanly("load_labels", [&] {
    check_samples(hotlap::load_labels(layout.labels, layout.images, strict), "load_labels");
  });
  fz::refuses_cleanly("load_labels", [&] {
    std::vector<hotlap::Problem> problems;
    check_samples(hotlap::load_labels(layout.labels, layout.images, lenient, &problems), "load_labels");
    (void)hotlap::summarize_problems(problems);
  });
  fz::refuses_cleanly("load_labels", [&] {
    check_samples(hotlap::load_labels(layout.labels, "", unchecked), "load_labels");
  });
  fz::refuses_cleanly("read_score_list", [&] {
    for (float s : hotlap::read_score_list(layout.labels))
      HOTLAP_FUZZ_REQUIRE(s >= 1.0f && s <= 5.0f, "read_score_list",
                          "returned the score " + std::to_string(s));
  });
  fz::refuses_cleanly("load_rater_csv", [&] {
    check_samples(hotlap::load_rater_csv(layout.labels, layout.images, strict), "load_rater_csv");
  });
  fz::refuses_cleanly("load_rater_csv", [&] {
    std::vector<hotlap::Problem> problems;
    check_samples(hotlap::load_rater_csv(layout.labels, layout.images, lenient, &problems), "load_rater_csv");
    (void)hotlap::summarize_problems(problems, 3);
  });
  for (const hotlap::LoadOptions& options : {strict, lenient}) {
    fz::refuses_cleanly("load_class_csv", [&] {
      std::vector<std::string> classes;
      std::vector<hotlap::Problem> problems;
      check_classes(hotlap::load_class_csv(layout.labels, classes, options, &problems), classes);
    });
  }

  const size_t cut = text.find(kSplitMarker);
  const std::string train = text.substr(0, cut);
  const std::string test = cut == std::string::npos ? std::string() : text.substr(cut + kSplitMarker.size());
  fz::write_text(layout.fold + "/train_1.txt", train);
  fz::write_text(layout.fold + "/test_1.txt", test);
  fz::write_text(layout.sixty_forty + "/train.txt", train);
  fz::write_text(layout.sixty_forty + "/test.txt", test);
  fz::refuses_cleanly("load_scut_split", [&] {
    check_split(hotlap::load_scut_split(layout.data, hotlap::Protocol::five_fold, 1, strict),
                "load_scut_split");
  });
  fz::refuses_cleanly("load_scut_split", [&] {
    const hotlap::Split split =
        hotlap::load_scut_split(layout.data, hotlap::Protocol::sixty_forty, 0, lenient);
    check_split(split, "load_scut_split");
    (void)hotlap::summarize_problems(split.problems);
  });
  fz::refuses_cleanly("parse_protocol", [&] { hotlap::parse_protocol(text.substr(0, text.find('\n'))); });
  return 0;
}
