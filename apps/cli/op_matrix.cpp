// The support matrix of `hotlap ops`: one line per row of the op table (nn/layers/op_table.h), one column
// per device, backend and dtype, each cell what dispatch::supports says runs there.
#include "apps/cli/op_matrix.h"

#include <cstdio>
#include <string>

#include "kernels/device.h"
#include "nn/runtime/dispatch.h"
#include "nn/layers/op_table.h"

namespace hotlap {

namespace {

std::string format(const char* fmt, const std::string& a, int b) {
  char line[128];
  std::snprintf(line, sizeof line, fmt, a.c_str(), b);
  return line;
}

}  // namespace

std::string op_matrix_text() {
  using dispatch::Backend;
  struct Column {
    Device device;
    Backend backend;
  };
  const Column columns[] = {{Device::cpu, Backend::native}, {Device::cuda, Backend::native}, {Device::cuda, Backend::cudnn}};
  std::string out;
  out += "What runs each op, by device, backend (--conv, --batchnorm) and dtype\n";
  out += "(--precision bf16 runs the bf16 columns):\n\n";
  out += "                  cpu           cuda native   cuda cudnn    cases checked\n";
  out += "op                f32    bf16   f32    bf16   f32    bf16   (ResNet-50)\n";
  for (const op_table::Row& row : op_table::rows()) {
    std::string line = row.op;
    line.resize(18, ' ');
    for (const Column& c : columns) {
      for (DType dtype : {DType::f32, DType::bf16}) {
        std::string cell = dispatch::support_name(dispatch::supports(row.op, c.device, c.backend, dtype));
        cell.resize(7, ' ');
        line += cell;
      }
    }
    int resnet = 0;
    for (const op_table::Case& k : row.cases) resnet += k.resnet50 ? 1 : 0;
    line += format("%s(%d)", std::to_string(row.cases.size()) + " ", resnet);
    out += line + "\n";
  }
  out += "\n";
  out += "  own   hotlap's own kernel           lib   cuDNN or cuBLAS\n";
  out += "  emu   bf16 by emulation: the fp32 kernel, each result rounded to bf16\n";
  out += "  fp32  a bf16 input is cast up; the op computes in fp32\n";
  out += "  -     no kernel: the op stops with an error\n\n";
  out += std::string("This build: CUDA ") + (kernels::cuda_compiled() ? "compiled in" : "not compiled in") +
         ", cuDNN " + (kernels::cudnn_compiled() ? "compiled in" : "not compiled in") + ".\n";
  out += "Devices: " + kernels::cuda_device_summary() + ".\n";
  out += "Each op is checked against its float64 reference, forward and backward, on\n"
         "every device present (hotlap_nn_tests -tc='op table*'), and benchmarked at its\n"
         "ResNet-50 shapes (hotlap_bench --benchmark_filter=ops/).\n";
  return out;
}

}  // namespace hotlap
