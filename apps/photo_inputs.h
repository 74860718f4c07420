// The PHOTOS arguments of `hotlap score`, expanded into the list of files to score.
//
// Each argument is one of:
//   a file     kept as given, whatever it holds (a file that is not an image gets its own failed row
//              when the scorer cannot decode it)
//   a folder   its image files (see image_extensions(), any case), sorted by name; not recursive;
//              hidden files (".name") skipped
//   a pattern  with * ? or [...]: expanded with glob(3), sorted; each match is taken as if it had been
//              an argument (a matched folder gives its images)
// Anything that gives nothing is a problem, returned rather than thrown, so the other photos can still
// be scored:
//   "PATH: no such file or folder"
//   "PATTERN: no file matches"
//   "DIR: no images (looked for .jpg, .jpeg, ...)"
// A file reached twice (the same path named twice, or through a folder and a pattern) is kept once,
// where it first came.
#pragma once

#include <string>
#include <vector>

namespace hotlap {

// An argument that gave no file, and why.
struct PhotoProblem {
  std::string path;    // the argument (or the folder a pattern matched)
  std::string reason;  // "no such file or folder", "no file matches", "no images (looked for ...)"
  std::string message() const { return path + ": " + reason; }
};

// Lower-case, without the dot: jpg jpeg png bmp gif tga psd pnm ppm pgm hdr (what stb_image reads).
const std::vector<std::string>& image_extensions();

// Whether the file name ends in one of image_extensions(), in any case ("A.JPG" does).
bool has_image_extension(const std::string& path);

// The files to score, in order; problems gets one entry per argument that gave none.
std::vector<std::string> expand_photo_arguments(const std::vector<std::string>& args,
                                                std::vector<PhotoProblem>& problems);

}  // namespace hotlap
