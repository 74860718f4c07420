// Regression metrics as the SCUT-FBP5500 paper reports them: Pearson correlation (PC), mean absolute
// error (MAE) and root mean squared error (RMSE), accumulated in double; and a classifier's, as
// ImageNet's are reported: top-1 and top-5 accuracy, with the confusion matrix behind them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hotlap {

struct RegressionMetrics {
  double pearson = 0.0, mae = 0.0, rmse = 0.0;
  size_t count = 0;
};

// Pearson is 0 when either side has no variance (a constant prediction correlates with nothing).
RegressionMetrics regression_metrics(const std::vector<float>& predicted, const std::vector<float>& truth);

struct ClassificationMetrics {
  // The fraction of samples whose class is the first guess (top_classes: the confusion matrix's
  // diagonal), or among the first five (class_rank < 5).
  double top1 = 0.0, top5 = 0.0;
  size_t count = 0;
  int64_t classes = 0;
  std::vector<int64_t> confusion;  // classes x classes, row = true class, column = the first guess
};

// The rank of a sample's true class among its logits: how many classes score strictly higher (a tie
// goes to the true class, and a NaN logit outranks nothing). It is a top-k hit when the rank is < k.
int64_t class_rank(const float* logits, int64_t classes, int64_t label);

// The first guess of each row of `classes` logits: the index of the largest (the first of equals).
std::vector<float> top_classes(const std::vector<float>& logits, int64_t classes);

// From each sample's row of `classes` logits and its true class (an index stored as a float). The first
// guesses (top_classes) go to *guesses when it is given.
ClassificationMetrics classification_metrics(const std::vector<float>& logits, const std::vector<float>& labels,
                                             int64_t classes, std::vector<float>* guesses = nullptr);

// The confusion matrix (ClassificationMetrics::confusion) of true classes and first guesses, both class
// indices stored as floats; one outside [0, classes) is an Error naming `what`.
std::vector<int64_t> confusion_matrix(const std::vector<float>& truth, const std::vector<float>& guesses,
                                      int64_t classes, const std::string& what);

// Of class k's row of a confusion matrix: how many were guessed right, and how many there were.
struct ClassTally {
  int64_t right = 0, total = 0;
};
ClassTally class_tally(const std::vector<int64_t>& confusion, int64_t classes, int64_t k);

}  // namespace hotlap
