// Where `hotlap score` and `hotlap predict` deliver their results: outputs named on the command line are
// checked before any photo is read (a missing folder is an error now, not after minutes of work, and
// no output may replace the model or a photo), and the text is written whole or not at all.
#pragma once

#include <string>
#include <vector>

namespace hotlap {

// `path` can be written as an output: its folder exists and is writable, it is not a folder itself,
// and it is none of `inputs` (compared after resolving links and relative parts). `option` names it in
// the error ("--out").
void check_output_path(const std::string& path, const char* option, const std::vector<std::string>& inputs);

// `text` into `out` atomically (nn/files/atomic_file.h), or onto stdout when `out` is empty; a full disk
// or a closed pipe is an Error (the results were not delivered), which `command` ("hotlap score") opens.
void write_result(const std::string& text, const std::string& out, const char* command);

}  // namespace hotlap
