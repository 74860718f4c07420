// hotlap predict: a trained classifier's top classes for each photo (the counterpart of hotlap score for
// a model from hotlap train --task classify, or any ResNet classifier in PyTorch format).
//
// For each photo: decode it (transparent parts onto neutral grey, EXIF orientation applied), prepare it
// as the model was tested -- the shorter side to the model's resize, the centre crop (the file says
// which; --resize and --size override) -- run the network once, and turn its logits into probabilities
// with a softmax. No face is looked for: the whole photo is the input.
//
// The result lists, per photo, the `top` most probable classes with their probabilities, in one of
// three formats:
//   table  the photo's name, then one line per class: rank, class, probability (1 decimal, in %)
//   csv    path,name,rank,class,index,probability,error: one row per class of each photo (probability
//          6 decimals, a fraction); a photo that failed has one row with its error
//   json   {"model": ..., "classes": K, "photos": [{"path", "name", "top": [{"class", "index",
//          "probability"}], "error"}]}
// A photo that cannot be read becomes an entry with its error and the rest are still classified; the
// exit status is then 1.
#pragma once

#include <string>
#include <vector>

#include "apps/common/compute_options.h"

namespace hotlap {

struct PredictOptions {
  std::string model_path;           // RUN/train-val/best.safetensors, or a PyTorch-format classifier
  std::vector<std::string> photos;  // files, folders, globs (as hotlap score takes them)
  int top = 5;                      // classes listed per photo (at most the model's)
  std::string format;               // table | csv | json; empty: from --out's extension, else table
  std::string out;                  // write the result here instead of stdout
  int64_t resize = 0, size = 0;     // the evaluation transform, overriding the file's (both or neither)
  ComputeOptions compute;
  bool quiet = false;               // no progress lines on stderr
};

struct ClassGuess {
  std::string name;
  int64_t index = 0;
  double probability = 0;
};

struct Prediction {
  std::string path, name;        // name: the file's stem
  std::vector<ClassGuess> top;   // most probable first
  std::string error;             // why the photo could not be classified; empty when it was
};

// The `top` most probable classes of a row of logits: a softmax in double (the largest logit
// subtracted first), sorted by probability, equal ones by index.
std::vector<ClassGuess> top_guesses(const std::vector<float>& logits, const std::vector<std::string>& classes,
                                    int top);

// The predictions in `format` ("table", "csv" or "json"); an unknown one is an Error.
std::string format_predictions(const std::vector<Prediction>& predictions, const std::string& format,
                               const std::string& model_path, const std::string& model_description, size_t classes);

// The whole command: the exit status (0: every photo classified; 1: any failed).
int run_predict(const PredictOptions& options);

}  // namespace hotlap
