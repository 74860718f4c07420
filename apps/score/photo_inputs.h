// The PHOTOS arguments of `hotlap score`, expanded into the list of files to score.
//
// Each argument is one of:
//   a file     kept as given, whatever it holds (a file that is not an image gets its own failed row
//              when the scorer cannot decode it)
//   a folder   its image files (see image_extensions(), any case), sorted by name; not recursive;
//              hidden files (".name") skipped. Files of a known image type hotlap does not read
//              (.webp, .tif, .tiff, .heic, .heif, .avif, .jxl) are left out and reported as skipped
//   a pattern  with * ? or [...]: expanded with glob(3), sorted; each match is taken as if it had been
//              an argument (a matched folder gives its images)
// Anything that gives nothing is a problem, returned rather than thrown, so the other photos can still
// be scored:
//   "PATH: no such file or folder" (or "a link to nothing (TARGET)", "a link loop",
//          "cannot be reached (permission denied)")
//   "PATTERN: no file matches"
//   "DIR: no images (looked for .jpg, .jpeg, ...)"
// In a folder, entries named like images that are not files to read (a link to nothing, a link loop,
// a pipe or device, a folder) are skipped too, with their reason. Skipped files are notes, not
// problems: the folder's other photos are still scored. (A folder whose only images are skipped ones
// is also a "no images" problem.)
// A file reached twice (the same path named twice, or through a folder and a pattern) is kept once,
// where it first came.
#pragma once

#include <string>
#include <vector>

#include "apps/data/image.h"  // image_extensions(), has_image_extension()

namespace hotlap {

// An argument that gave no file, or a file a folder scan skipped, and why.
struct PhotoProblem {
  std::string path;    // the argument (or the folder a pattern matched), or the skipped file
  std::string reason;  // "no such file or folder", "no file matches", "no images (looked for ...)";
                       // for a skipped file "not a format hotlap reads", "a link to nothing (T)", ...
  std::string message() const { return path + ": " + reason; }
};

// The files to score, in order; problems gets one entry per argument that gave none. When `skipped` is
// given, it gets the files that folder scans left out (a format hotlap does not read, see
// has_unreadable_image_extension, or not a file to read), with paths spelled like the returned ones
// (folder / name), in the order they were found, each once, and none that is also among the files
// (named directly too).
std::vector<std::string> expand_photo_arguments(const std::vector<std::string>& args,
                                                std::vector<PhotoProblem>& problems,
                                                std::vector<PhotoProblem>* skipped = nullptr);

}  // namespace hotlap
