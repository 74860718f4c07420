// What a person reads first: every command's --help (fits the width, shows defaults and examples), the
// answer to a mistyped command, options refused when they conflict, and the training progress line that
// must fit the terminal to be redrawn in place.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "apps/common/cli_help.h"
#include "apps/cli_util.h"
#include "apps/common/progress.h"

namespace hotlap {
namespace {

using test::Run;
using test::run;
using test::run_env;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The longest line of `text`, in characters (bytes: help text is ASCII).
size_t longest_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  size_t longest = 0;
  while (std::getline(lines, line)) longest = std::max(longest, line.size());
  return longest;
}

// The words of `text` with single spaces between them: what the help says, wherever it was wrapped.
std::string words_of(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string w; in >> w;) out += (out.empty() ? "" : " ") + w;
  return out;
}

TEST_CASE("help: wrap_words keeps to the width, breaks at spaces and indents what follows") {
  const std::string text = "a learning rate that decays by a factor of ten every few thousand iterations";
  for (size_t width : {30, 40, 80}) {
    const std::string wrapped = wrap_words(text, width, 10);
    CAPTURE(wrapped);
    CHECK(longest_line(std::string(10, ' ') + wrapped) <= width);
    CHECK(words_of(wrapped) == text);  // the words, in order, none lost or cut
    if (width < 80) CHECK(contains(wrapped, "\n" + std::string(10, ' ')));  // lines after the first are indented
  }
  CHECK(wrap_words("short", 80, 24) == "short");
  CHECK(wrap_words("two\nlines", 80, 2) == "two\n  lines");
  // A list item: a margin before every line, the hang after it on the later ones; width 0 is one line.
  CHECK(wrapped_item("warning: a b c d e f g h", 30, 4, 9) == "    warning: a b c d\n             e f g h\n");
  const std::string item = wrapped_item(text, 40, 2, 2);
  CHECK(longest_line(item) <= 40);
  CHECK(words_of(item) == text);
  CHECK(wrapped_item(text, 0, 2, 2) == "  " + text + "\n");
}

TEST_CASE("help: closest_word finds a typo's command and nothing for a stranger") {
  const std::vector<std::string> commands = {"demo", "info", "bench", "convert", "synth", "train", "score"};
  CHECK(closest_word("scor", commands) == "score");
  CHECK(closest_word("trian", commands) == "train");
  CHECK(closest_word("convret", commands) == "convert");
  CHECK(closest_word("benhc", commands) == "bench");
  CHECK(closest_word("frobnicate", commands).empty());
  CHECK(closest_word("x", commands).empty());
}

TEST_CASE("help: every command's help fits 80 and 60 columns, shows its defaults and examples, no {false}") {
  for (const char* command : {"", "demo", "info", "bench", "convert", "synth", "train", "score", "predict"}) {
    for (int columns : {80, 60}) {
      const Run r = run_env("COLUMNS=" + std::to_string(columns), std::string(command) + " --help");
      CAPTURE(command);
      CAPTURE(r.output);
      CHECK(r.status == 0);
      // Example command lines are kept whole (up to 80), everything else is wrapped to the width.
      std::istringstream lines(r.output);
      for (std::string line; std::getline(lines, line);) {
        CAPTURE(line);
        CHECK(line.size() <= (line.rfind("  hotlap ", 0) == 0 || line.rfind("      --", 0) == 0 ? 80u
                                                                                                 : size_t(columns)));
      }
      CHECK(!contains(r.output, "{false}"));
      CHECK(!contains(r.output, " in ["));  // ranges are written compactly, INT[1-1024]
      if (*command != '\0' && std::string(command) != "info") CHECK(contains(r.output, "Examples:\n  hotlap "));
    }
  }
  const std::string train = words_of(run("train --help").output);
  for (const char* shown : {"--lr FLOAT learning rate (default: 0.001)", "--depth {18,34,50,101} ResNet depth (default: 50)",
                            "--batch INT[2-100000] batch size (default: 16)", "(default: 256)", "--optimizer {sgd,adamw}",
                            "--schedule {step,cosine,constant}", "--fold INT[1-5]", "--no-image-check do not",
                            "not with --iterations", "Options on the command line override it wherever they appear",
                            "not searched recursively"})
    CHECK_MESSAGE(contains(train, shown), shown);
  const std::string score = words_of(run("score --help").output);
  for (const char* shown : {"(default: 20)", "(default: 0.44)", "(default: 0.2)", "--no-face-crop score", "box is the",
                            "not their subfolders"})
    CHECK_MESSAGE(contains(score, shown), shown);
}

TEST_CASE("cli: a mistyped command is answered with the closest one") {
  const Run r = run("scor --model m.safetensors a.jpg");
  CHECK(r.status != 0);
  CHECK(contains(r.output, "'scor' is not a command; did you mean 'score'?"));
  CHECK(contains(r.output, "demo, info, ops, bench, convert, synth, train, score"));
  const Run far = run("frobnicate");
  CHECK(far.status != 0);
  CHECK(contains(far.output, "'frobnicate' is not a command\n"));
}

TEST_CASE("cli: train refuses a fold the protocol has not, and choices are checked when parsed") {
  const std::string base = "train --data /nonexistent --out /nonexistent/run --epochs 1 ";
  for (const char* bad : {"--fold 0", "--fold 6", "--optimizer sgdd", "--schedule linear", "--loss huber"}) {
    const Run r = run(base + bad);
    CAPTURE(bad);
    CAPTURE(r.output);
    CHECK(r.status != 0);
    CHECK(contains(r.output, std::string(bad).substr(0, std::string(bad).find(' '))));
    CHECK(!contains(r.output, "compute:"));  // refused before any work
  }
  const Run fold = run(base + "--protocol 60-40 --fold 3");
  CHECK(fold.status != 0);
  CHECK(contains(fold.output, "--fold picks one of the five folds of --protocol 5fold; --protocol 60-40 has no folds"));
  const Run labels = run("train --labels /nonexistent/l.txt --out /nonexistent/run --epochs 1 --fold 2");
  CHECK(labels.status != 0);
  CHECK(contains(labels.output, "--labels and --ratings are split 80/20, without folds"));
  // The paper's recipe starts from ImageNet weights: without --init the run is not the paper's.
  const Run paper = run("train --data /nonexistent --out /nonexistent/run --recipe paper");
  CHECK(contains(paper.output, "note: the paper's recipe fine-tunes ImageNet weights (--init FILE)"));
  CHECK(!contains(run("train --data /nonexistent --out /nonexistent/run --recipe paper --init x.safetensors").output,
                  "note: the paper's recipe"));
}

TEST_CASE("cli: an option the rest of the command line makes do nothing is said to") {
  const std::string base = "train --data /nonexistent --out /nonexistent/run --epochs 1 ";
  const Run r = run(base + "--optimizer adamw --momentum 0.5 --schedule cosine --step-size 10 --whole-image --resize 99");
  CHECK(r.status != 0);  // the data are missing; the notes come first
  CHECK(contains(r.output, "note: --momentum does nothing with --optimizer adamw"));
  CHECK(contains(r.output, "note: --step-size does nothing with --schedule cosine"));
  CHECK(contains(r.output, "note: --resize does nothing with --whole-image"));
  CHECK(!contains(r.output, "--warmup does nothing"));  // not given
  const Run quiet = run(base + "--momentum 0.5 --schedule step --step-size 10 --warmup 5");
  CHECK(!contains(quiet.output, "--momentum does nothing"));
  CHECK(!contains(quiet.output, "--step-size does nothing"));
  CHECK(contains(quiet.output, "note: --warmup does nothing with --schedule step"));
  const Run score = run("score --model /nonexistent/m.safetensors a.jpg --no-face-crop --min-face 30 --all-faces");
  CHECK(contains(score.output, "note: --min-face does nothing with --no-face-crop"));
  CHECK(contains(score.output, "note: --all-faces does nothing with --no-face-crop"));
}

TEST_CASE("progress: the line never exceeds the width it is given, and drops the least useful parts first") {
  const Progress small{3, 12, 45, 120, 0.1234, 38.2, 245};
  const Progress huge{1000, 1000, 99999, 99999, 12345.6789, 123456.7, 3600.0 * 1000};
  for (const Progress& p : {small, huge})
    for (int columns = 1; columns <= 200; ++columns) {
      const std::string line = progress_line(p, columns);
      CAPTURE(columns);
      CAPTURE(line);
      CHECK(line.size() <= static_cast<size_t>(std::max(columns - 1, 1)));
      if (columns >= 40) CHECK(contains(line, " left"));
    }
  const std::string wide = progress_line(small, 80);
  CHECK(wide == "  epoch 3/12 [#####..........] 45/120  loss 0.1234  38.2 img/s  fold ~4:05 left");
  CHECK(progress_line(small, 200).find("[" + std::string(9, '#') + std::string(15, '.') + "]") != std::string::npos);
  CHECK(progress_line(small, 60) == "  epoch 3/12 loss 0.1234  38.2 img/s  fold ~4:05 left");
  CHECK(progress_line(small, 50) == "  epoch 3/12 38.2 img/s  fold ~4:05 left");
  CHECK(progress_line(small, 30) == "  epoch 3/12 fold ~4:05 left");
  CHECK(clock_time(3725) == "1:02:05");
  CHECK(clock_time(59.6) == "1:00");
}

}  // namespace
}  // namespace hotlap
