// `hotlap ops`: which kernel runs each op of the op table, by device, backend and dtype.
#pragma once

#include <string>

namespace hotlap {

// The support matrix (dispatch::supports over the op table's rows), with its legend and what this
// build and machine have; lines of at most 80 columns.
std::string op_matrix_text();

}  // namespace hotlap
