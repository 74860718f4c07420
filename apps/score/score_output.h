// `hotlap score`'s results as text: the ranking of scored photos, and the four output formats it is
// written in (an aligned table for the terminal, CSV, JSON and a GitHub Markdown table).
//
// Every format has the same columns, one row per photo in the given order:
//   rank        1, 2, ... over the scored photos; blank (null) for photos that failed
//   name        the file's stem, or a longer part of its path where stems repeat (disambiguate_names)
//               (CSV and JSON also give the path)
//   score       SCUT-FBP5500 1-5 scale          2 decimals in table/md, 4 in CSV/JSON, more where a
//               score outside the scale would round to a number inside it (5.0009 is "5.001", not
//               "5.00"); a score outside the scale is marked "!" in table/md, outside_scale 1 (CSV)
//               or true (JSON; null for a photo that failed), with a warning
//   percentile  share of SCUT scores below      1 decimal in table/md, 2 in CSV/JSON
//   framing     face | chosen | centre | frame (see apps/score/scored_photo.h); "failed" in table/md for a
//               photo that could not be scored
//   faces       faces found; blank when detection did not run. With --all-faces the table and md show
//               "k/n" (this row is face k of n), CSV a "face" column and JSON "face": k
//   box         the face box: "x,y,w,h" rounded to pixels in table/md, box_x/box_y/box_w/box_h in CSV,
//               {"x","y","width","height"} in JSON; blank (null) without one
//   error       why a photo could not be scored: a field in CSV and JSON; in table/md a list under the
//               table ("errors:", one "name: message" line per failed photo), never a column
// JSON also lists every face found as "candidates" (box, probability, why its landmarks are not a
// face's or null, whether it is the one scored), in the order of the choice (apps/score/face/face_choice.h).
// Warnings go under the table as notes (table, md), into a "warnings" column joined with "; " (CSV), or
// into an array per photo (JSON). A number that is not finite is written blank, or null in JSON. The
// table's lines carry no trailing spaces.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "apps/score/scored_photo.h"

namespace hotlap {

// Gives rows that share a name (rows of different paths: the rows of one photo, --all-faces, are one
// photo and keep one name) the shortest name that tells them apart: the file name with its extension
// ("ham.bmp", "ham.gif"), else as many of the path's last components as it takes ("a/face.png",
// "b/face.png"), else the whole path. A name no other photo has stays as it is (the stem).
void disambiguate_names(std::vector<ScoredPhoto>& photos);

// Scored photos first, by score descending (equal scores by name, then path, so the order never
// depends on the input order); photos that failed after them, in the order they came in.
void rank_photos(std::vector<ScoredPhoto>& photos);

// The valid `format` values: "table", "csv", "json", "md".
const std::vector<std::string>& score_formats();

// The format to write: `format` when given (non-empty), else the one `out`'s extension names (.csv
// csv, .json json, .md or .markdown md, any case), else "table" (also without --out: out empty).
std::string format_for_output(const std::string& format, const std::string& out);

// "" unless `format` is given and `out`'s extension names another format: then a one-line note for
// the terminal, such as "note: --format table into res.csv (its extension names csv)".
std::string format_note(const std::string& format, const std::string& out);

// `score` with `decimals` digits after the point, or with as many more as it takes for a score
// outside the 1-5 scale not to read as one inside it (5.0009: "5.001" rather than "5.00"; 0.99996:
// "0.99996"); "" when it is not finite.
std::string score_digits(double score, int decimals);

// The photos (already ranked) in `format`. `meta` (model path, options, ...) becomes top-level string
// entries of the JSON object beside "photos", "scale" and "percentile", which it may not replace; the
// other formats do not show it. An unknown format is an Error listing the valid ones.
// `width`: for the table, the columns it may take (a terminal's); 0, no limit. A table wider than that
// leaves out its right-hand columns (box, then faces, then framing) and says so under it (--format csv
// has them all); the other formats ignore it.
std::string format_scores(const std::vector<ScoredPhoto>& ranked, const std::string& format,
                          const std::map<std::string, std::string>& meta = {}, size_t width = 0);

}  // namespace hotlap
