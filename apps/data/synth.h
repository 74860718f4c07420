// hotlap synth: a procedural data set in SCUT-FBP5500's layout, for the demo and the end-to-end tests
// (and, with --task classify, one of shapes for a classifier: write_synthetic_classes below).
//
// Same file names (AF1.jpg ... CM750.jpg for n = 5500, in proportion for other n), same split files
// (five cross-validation folds, the 60/40 split), JPEGs of a configurable size (350 like SCUT).
// Each image draws a face-like figure: a head ellipse on a noisy background, two eyes, a mouth and
// hair. Its score is a known function of what is drawn, in [1, 5] with SCUT's mean and spread
// (about 3.0 and 0.69), built from three features that survive resizing, cropping and flipping:
//   proportion  how close the eye spacing is to 0.46 of the head's width      (weight 0.4)
//   symmetry    how level the two eyes are                                    (weight 0.3)
//   contrast    how far the face's brightness stands from the background's    (weight 0.3)
// score = 1 + 4 * (0.4 * proportion + 0.3 * symmetry + 0.3 * contrast), each feature in [0, 1].
// A network that reaches a high Pearson correlation on the held-out fold has learnt to see them.
#pragma once

#include <cstdint>
#include <string>

namespace hotlap {

struct SynthOptions {
  std::string out_dir;
  int64_t count = 5500;
  int64_t classes = 6;  // write_synthetic_classes: how many of kSynthClasses, in order
  int64_t size = 350;
  uint64_t seed = 1;
  int quality = 90;
  bool overwrite = false;  // replace what out_dir holds (its Images/ and train_test_files/ are deleted
                           // first); without it, a folder that is not empty is refused
};

// Writes out_dir/Images/*.jpg, out_dir/train_test_files/... and out_dir/kSynthMarker; returns the
// number of images. A folder that holds anything is refused unless options.overwrite: it may be a data
// set of its own.
int64_t write_synthetic_scut(const SynthOptions& options);

// The text file write_synthetic_scut leaves beside Images/: it tells people (and hotlap train's report,
// which would otherwise call the data SCUT-FBP5500 by its layout) that the faces are drawn, not photos.
inline constexpr const char* kSynthMarker = "hotlap-synth.txt";

// Whether `dir` holds a data set written by write_synthetic_scut (its marker file is there and says so).
bool is_synthetic_scut(const std::string& dir);

// hotlap synth --task classify: a generated classification data set in torchvision's ImageFolder layout
// (apps/data/image_folder.h), out_dir/train/CLASS/NNNNN.jpg and out_dir/val/CLASS/NNNNN.jpg, every fifth
// image of a class in val/. Each image draws one shape -- its class -- at a random place, size and
// angle, in a random colour on a random, noisy background: only the shape tells the classes apart, so
// a network that classifies the held-out images well has learnt to see shapes. `count` images in all,
// spread evenly over `classes` of kSynthClasses (2 to 6). Writes the same marker file as
// write_synthetic_scut, saying what it holds. A folder that holds anything is refused unless
// options.overwrite (its train/ and val/ are then deleted first). Returns the number of images.
inline constexpr const char* kSynthClasses[] = {"circle", "square", "triangle", "cross", "ring", "bar"};
int64_t write_synthetic_classes(const SynthOptions& options);

// Whether `dir` holds a data set written by write_synthetic_classes.
bool is_synthetic_classes(const std::string& dir);

}  // namespace hotlap
