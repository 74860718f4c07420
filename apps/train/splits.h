// Which images train and which test each fold of a run: SCUT-FBP5500's split files (five folds, or
// 60/40), or a seeded 80/20 split of all its images or of a list of labels (--labels, --ratings); a
// classifier's image folder (train/, val/) or path,label CSV (80/20); and
// the check, before training, that every one of them loads.
#pragma once

#include <set>
#include <string>

#include "apps/data/scut.h"
#include "apps/train/train.h"

namespace hotlap {

// fold: 1-5 for five-fold, 0 for 60/40, -1 for an 80/20 split (a classifier's CSV too), -2 for an image
// folder's train/ and val/ (task classify; Split::classes names the classes). Label lines that are wrong stop it,
// or with --skip-bad-labels are left out with a warning that lists them.
Split load_split(const TrainConfig& c, int fold);

// Every image of both splits loaded once, before training: a corrupt test image would otherwise be
// found by the first evaluation, after a whole epoch. Failures stop the run with the list, or with
// --skip-bad-labels are left out (reported).
// `known_good`: the images an earlier fold's check loaded, which are not loaded again (the five folds
// share their 5500 images); this check adds the ones it loads.
void check_images_load(const TrainConfig& c, Split& split, std::set<std::string>& known_good);

}  // namespace hotlap
