// A classifier's data set: which images, which class each belongs to, which split. As scut.h does for
// scores, this layer finds the files and validates them; apps/data/image.h decodes them.
//
// Two ways to give one:
//
//   an image folder, torchvision's ImageFolder layout, already split:
//     DIR/train/CLASS/IMAGE ...    DIR/val/CLASS/IMAGE ...
//   The classes are the folder names under DIR/train, sorted by their bytes (as Python's sorted()),
//   numbered from 0, so a model's class k is the same as torchvision's for the same folder. Images
//   are the files with an extension hotlap reads (image_extensions(), any case), anywhere beneath a
//   class folder (subfolders too, as torchvision walks them), sorted by path; links to folders are
//   not followed (a link loop would never end). A val/ folder may lack a class, but a class it names
//   must be one of train's. A class folder without an image is an error (a typo in a folder name
//   would otherwise train a class that never appears), and so is a train/ folder without one.
//
//   a CSV of path,label (load_class_csv): a header naming the columns path and label (case-
//   insensitive; others ignored; comma, semicolon or tab), one image a row. A path is relative to
//   the CSV's folder unless absolute; a label is a class name. Its classes are the labels that occur,
//   sorted the same way. It has no split of its own: hotlap train splits it 80/20 by its seed.
//
// Files that are not images (notes, thumbnails databases) are skipped and counted; hidden files and
// folders (a leading '.') are skipped silently. Every problem -- a malformed CSV row, a missing image,
// a name twice -- names its file (and line); with LoadOptions::stop_on_problems they are thrown
// together (summarize_problems), without it the rows are skipped and returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apps/data/scut.h"

namespace hotlap {

// Whether `dir` holds a train/ folder: an image folder rather than SCUT-FBP5500's layout.
bool is_image_folder(const std::string& dir);

// DIR/train and DIR/val as the split (val may be absent: then the split's test part is empty, and the
// caller decides; hotlap train refuses it). It takes no LoadOptions: the scan finds only files that
// exist, and a structural problem is always an Error. Sample::name is the path below train/ or val/
// ("cat/001.jpg"), Sample::label the class index, Split::classes the names.
// `skipped` (when given) receives the files left out for not being images, by path.
Split load_image_folder(const std::string& dir, std::vector<std::string>* skipped = nullptr);

// A path,label CSV (see above). `classes` receives the sorted class names; Sample::name is the path as
// written in the CSV. Problems are appended to *problems when given (only reachable with
// stop_on_problems = false).
std::vector<Sample> load_class_csv(const std::string& csv_file, std::vector<std::string>& classes,
                                   const LoadOptions& options = {}, std::vector<Problem>* problems = nullptr);

// How many samples of each class: counts[k] for class k (the size of `classes`).
std::vector<int64_t> class_counts(const std::vector<Sample>& samples, size_t classes);

// A model's class names as a checkpoint records them (metadata "classes"): a JSON array of the names
// by index; and back, where anything but a non-empty array of strings is an Error naming `path`.
std::string classes_json(const std::vector<std::string>& classes);
std::vector<std::string> classes_from_json(const std::string& text, const std::string& path);

}  // namespace hotlap
