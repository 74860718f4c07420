// SCUT-FBP5500 as a data set description: which images, which scores, which split. No decoding here
// (apps/data/image.h does that); this layer finds the label files, parses them and validates them.
//
// Layout, as users download SCUT-FBP5500_v2 (see docs/data.md):
//   DIR/Images/AF1.jpg ...                         (prefixes AF, AM, CF, CM)
//   DIR/train_test_files/5_folders_cross_validations_files/cross_validation_K/{train,test}_K.txt
//   DIR/train_test_files/split_of_60%training and 40%testing/{train,test}.txt
//     (some copies spell the folder split_of_60%training_40%testing; both are accepted)
// Label files hold one "NAME SCORE" per line (NAME like AF1.jpg, SCORE a decimal in [1, 5]); CRLF,
// trailing whitespace, a UTF-8 BOM and a last line without newline are tolerated, blank lines skipped.
//
// Validation: every malformed line, duplicate name within one file, missing image and train/test
// overlap becomes a Problem with its file and line. By default (LoadOptions::stop_on_problems) the
// load throws one hotlap::Error whose message is summarize_problems(): counts by kind, then the first
// problems as "FILE:LINE: message". With stop_on_problems = false the offending lines are skipped and
// the problems are handed back (Split::problems, or the `problems` out-parameter), so the caller can
// print summarize_problems() as a warning. Missing folders or files and empty label files are always
// an Error, whatever the options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hotlap {

struct Sample {
  std::string name;  // as in the label file, e.g. "AF1.jpg"
  std::string path;  // images_dir / name
  float score = 0.0f;
  int64_t label = -1;  // a classifier's class index (apps/data/image_folder.h); -1: a scored sample
};

enum class ProblemKind { malformed, score_out_of_range, duplicate, missing_image, overlap };

struct Problem {
  std::string file;  // the label file the problem was found in
  int64_t line = 0;  // 1-based line in that file
  std::string message;
  ProblemKind kind = ProblemKind::malformed;
};

struct Split {
  std::vector<Sample> train, test;
  std::string name;               // e.g. "SCUT-FBP5500 5-fold cross-validation, fold 3"
  std::string description;        // the name and the counts: "...: 4400 train, 1100 test" (count_split)
  std::vector<Problem> problems;  // filled only with stop_on_problems = false (else the load threw)
  std::vector<std::string> classes;  // a classifier's class names, by index; empty for scores
};

// Sets split.description from its name and its current counts: again whenever samples are dropped.
void count_split(Split& split);

struct LoadOptions {
  bool check_images_exist = true;  // every NAME must exist as a file in the images folder
  bool stop_on_problems = true;    // throw on any Problem; false: skip the bad lines, return problems
};

enum class Protocol { five_fold, sixty_forty };

// "5fold" (also "5-fold", "five_fold") or "60-40" (also "60/40", "sixty_forty"); anything else throws.
Protocol parse_protocol(const std::string& text);
const char* protocol_name(Protocol protocol);  // "5fold" or "60-40"

// The SCUT-FBP5500_v2 split: fold is 1..5 for five_fold and ignored for sixty_forty. Images are looked
// for in data_dir/Images. Names that are in both train and test are reported (at the test file's
// line) and, when skipping, dropped from test.
Split load_scut_split(const std::string& data_dir, Protocol protocol, int fold, const LoadOptions& options = {});

// A single "NAME SCORE" file (--labels FILE); images are images_dir/NAME. Problems are appended to
// *problems when it is given (only reachable with stop_on_problems = false).
std::vector<Sample> load_labels(const std::string& labels_file, const std::string& images_dir,
                                const LoadOptions& options = {}, std::vector<Problem>* problems = nullptr);

// The per-rater export of All_Ratings.xlsx: a CSV (comma; semicolon or tab also detected from the
// header) whose header names the columns Filename and Rating (case-insensitive, any position; other
// columns such as Rater are ignored). One row per rating; a file's score is the mean of its ratings.
// Each rating must be a number in [1, 5]. Samples come in the order of each file's first row.
std::vector<Sample> load_rater_csv(const std::string& csv_file, const std::string& images_dir,
                                   const LoadOptions& options = {}, std::vector<Problem>* problems = nullptr);

// The scores of an all_scores.txt-style file (NAME SCORE lines), in file order. Always strict: any
// problem throws. Used for the percentile table.
std::vector<float> read_score_list(const std::string& path);

// "N problems (a malformed lines, b duplicate names, ...)" and then the first max_listed problems as
// "FILE:LINE: message" lines, and "... and K more" when there are more.
std::string summarize_problems(const std::vector<Problem>& problems, size_t max_listed = 10);

}  // namespace hotlap
