// hotlap score: the options of face scoring (apps/score/score.h).
#include <memory>

#include "apps/cli/commands.h"
#include "apps/score/score.h"

namespace hotlap::cli {

Command add_score_command(CLI::App& app) {
  auto score_options = std::make_shared<ScoreOptions>();
  auto* score = app.add_subcommand(
      "score", "find, frame and score the faces in photos with a trained model, ranked, with percentiles "
               "among the 5500 SCUT-FBP5500 scores");
  score->add_option("--model", score_options->model_path,
                    "RUN/best.safetensors from hotlap train, or a PyTorch-format ResNet regressor")
      ->required();
  score->add_option("photos", score_options->photos,
                    "photo files, folders (their images, not their subfolders) or globs")
      ->required()
      ->default_str("");
  score->add_option("--format", score_options->format,
                    "table, csv, json or md (default: from --out's extension, .csv .json .md; else table). The "
                    "box is the face's x, y, width and height in the photo's pixels")
      ->check(CLI::IsMember({"table", "csv", "json", "md"}));
  score->add_option("--out", score_options->out, "write the result to this file instead of stdout");
  score->add_option("--report", score_options->report, "also write a self-contained HTML report");
  score->add_flag("--report-paths", score_options->report_paths,
                  "show full file paths in the report (default: file names only, so the page can be shared)");
  score->add_flag("--explain", score_options->explain, "Grad-CAM heat maps of each crop in the report");
  score->add_flag("--tta", score_options->tta, "average the score over the horizontal flip");
  score->add_flag("--all-faces", score_options->all_faces,
                  "score every face found, one row each (group photos); default: the one face chosen by "
                  "landmarks, probability and size");
  score->add_flag("!--no-face-crop", score_options->face_crop, "score the frame as given (SCUT-style photos)");
  score->add_flag("!--upright", score_options->try_turns,
                  "look for a face in the photo as it is only (by default a photo with no confident face "
                  "upright is also searched turned a quarter each way and upside down, as a phone photo "
                  "that lost its orientation tag is stored sideways)");
  score->add_option("--crops", score_options->crops_dir, "also save each network input as NAME.png here");
  auto* score_resize = score->add_option(
      "--resize", score_options->resize,
      "shorter side before the centre crop: needed when the model file does not say how photos must be "
      "prepared for it (a PyTorch file from elsewhere: --resize 256 --size 224 for torchvision-style models); "
      "when given, it overrides the file's own transform");
  score_resize->check(CLI::Range(32, 4096))->default_str("");
  auto* score_size = score->add_option("--size", score_options->size,
                                       "network input size (the centre crop, at most --resize)");
  score_size->check(CLI::Range(32, 4096))->default_str("");
  score_resize->needs(score_size);
  score_size->needs(score_resize);
  score->add_option("--min-face", score_options->detector.min_face, "smallest face to look for, in pixels")
      ->check(CLI::Range(12.0, 100000.0));
  score->add_option("--face-extent", score_options->framing.face_extent,
                    "face half-extent over the crop side (larger: tighter crop)")
      ->check(CLI::Range(0.06, 2.0));
  score->add_option("--centre-shift", score_options->framing.centre_shift,
                    "crop centre below the eyes, in eye-to-mouth distances")
      ->check(CLI::Range(-2.0, 2.0));
  score->add_flag("!--no-level", score_options->framing.level_eyes, "do not rotate to level the eyes");
  score->add_option("--detector", score_options->detector_weights,
                    "MTCNN weights (default: models/mtcnn.safetensors)");
  score->add_flag("--quiet", score_options->quiet, "no progress lines on stderr");
  add_compute_options(score, score_options->compute);
  score->footer("Examples:\n"
                "  hotlap score --model runs/r50/fold1/best.safetensors portraits/\n"
                "  hotlap score --model best.safetensors a.jpg b.png --report ranking.html\n"
                "  hotlap score --model best.safetensors group.jpg --all-faces --format csv\n"
                "  hotlap score --model scut.safetensors --resize 256 --size 224 'grid/*.png'");
  return {score, [score, score_options](const CommandLine&) {
            note_ignored(score, {"--min-face", "--face-extent", "--centre-shift", "--no-level", "--all-faces",
                                 "--detector", "--upright"},
                         !score_options->face_crop, "with --no-face-crop (no face is looked for)");
            return run_score(*score_options);
          }};
}

}  // namespace hotlap::cli
