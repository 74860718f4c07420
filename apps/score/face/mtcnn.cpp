#include "apps/score/face/mtcnn.h"

#include <vector>

#include "kernels/error.h"
#include "nn/runtime/autograd.h"
#include "nn/layers/ops.h"
#include "nn/files/serialize.h"

namespace hotlap {

namespace {

struct Expected {
  const char* name;
  Shape shape;
};

// Every tensor of the three nets, hotlap layout (conv OHWI). The first dense layers of R-Net and
// O-Net take the conv output flattened NHWC (tools/convert_mtcnn.py permutes their columns).
const std::vector<Expected>& expected() {
  static const std::vector<Expected> list = {
      {"pnet.conv1.weight", {10, 3, 3, 3}},   {"pnet.conv1.bias", {10}},
      {"pnet.prelu1.weight", {10}},           {"pnet.conv2.weight", {16, 3, 3, 10}},
      {"pnet.conv2.bias", {16}},              {"pnet.prelu2.weight", {16}},
      {"pnet.conv3.weight", {32, 3, 3, 16}},  {"pnet.conv3.bias", {32}},
      {"pnet.prelu3.weight", {32}},           {"pnet.conv4_1.weight", {2, 1, 1, 32}},
      {"pnet.conv4_1.bias", {2}},             {"pnet.conv4_2.weight", {4, 1, 1, 32}},
      {"pnet.conv4_2.bias", {4}},

      {"rnet.conv1.weight", {28, 3, 3, 3}},   {"rnet.conv1.bias", {28}},
      {"rnet.prelu1.weight", {28}},           {"rnet.conv2.weight", {48, 3, 3, 28}},
      {"rnet.conv2.bias", {48}},              {"rnet.prelu2.weight", {48}},
      {"rnet.conv3.weight", {64, 2, 2, 48}},  {"rnet.conv3.bias", {64}},
      {"rnet.prelu3.weight", {64}},           {"rnet.dense4.weight", {128, 576}},
      {"rnet.dense4.bias", {128}},            {"rnet.prelu4.weight", {128}},
      {"rnet.dense5_1.weight", {2, 128}},     {"rnet.dense5_1.bias", {2}},
      {"rnet.dense5_2.weight", {4, 128}},     {"rnet.dense5_2.bias", {4}},

      {"onet.conv1.weight", {32, 3, 3, 3}},   {"onet.conv1.bias", {32}},
      {"onet.prelu1.weight", {32}},           {"onet.conv2.weight", {64, 3, 3, 32}},
      {"onet.conv2.bias", {64}},              {"onet.prelu2.weight", {64}},
      {"onet.conv3.weight", {64, 3, 3, 64}},  {"onet.conv3.bias", {64}},
      {"onet.prelu3.weight", {64}},           {"onet.conv4.weight", {128, 2, 2, 64}},
      {"onet.conv4.bias", {128}},             {"onet.prelu4.weight", {128}},
      {"onet.dense5.weight", {256, 1152}},    {"onet.dense5.bias", {256}},
      {"onet.prelu5.weight", {256}},          {"onet.dense6_1.weight", {2, 256}},
      {"onet.dense6_1.bias", {2}},            {"onet.dense6_2.weight", {4, 256}},
      {"onet.dense6_2.bias", {4}},            {"onet.dense6_3.weight", {10, 256}},
      {"onet.dense6_3.bias", {10}},
  };
  return list;
}

void check_image(const char* net, const Tensor& x, int64_t size) {
  HOTLAP_CHECK(x.defined() && x.ndim() == 4 && x.dim(3) == 3, "Mtcnn::", net,
               ": input must be [N, H, W, 3] (NHWC RGB), got ",
               x.defined() ? x.describe() : std::string("undefined"));
  if (size > 0)
    HOTLAP_CHECK(x.dim(1) == size && x.dim(2) == size, "Mtcnn::", net, ": input must be [N, ", size,
                 ", ", size, ", 3], got ", x.describe());
  else
    HOTLAP_CHECK(x.dim(1) >= 12 && x.dim(2) >= 12, "Mtcnn::", net,
                 ": input must be at least 12x12, got ", x.describe());
}

}  // namespace

Mtcnn::Mtcnn(const std::string& weights_path) {
  std::map<std::string, Tensor> file = read_tensors(weights_path);  // throws naming the file
  std::string problems;
  for (const Expected& e : expected()) {
    auto it = file.find(e.name);
    if (it == file.end()) {
      problems += std::string("\n  missing ") + e.name + " " + shape_str(e.shape);
    } else if (it->second.shape() != e.shape || it->second.dtype() != DType::f32) {
      problems += std::string("\n  ") + e.name + ": expected f32" + shape_str(e.shape) + ", file has " +
                  it->second.describe();
    } else {
      weights_[e.name] = it->second;
    }
  }
  HOTLAP_CHECK(problems.empty(), "MTCNN weights ", weights_path,
               " are not facenet-pytorch's P/R/O-Net in hotlap layout (regenerate with "
               "tools/convert_mtcnn.py):",
               problems);
}

const Tensor& Mtcnn::w(const std::string& name) const { return weights_.at(name); }

Mtcnn::PNetOut Mtcnn::pnet(const Tensor& x) {
  NoGradGuard no_grad;
  check_image("pnet", x, 0);
  Tensor h = ops::conv2d(x, w("pnet.conv1.weight"), w("pnet.conv1.bias"), 1, 0);
  h = ops::prelu(h, w("pnet.prelu1.weight"));
  h = ops::max_pool2d(h, 2, 2, 0, /*ceil_mode=*/true);
  h = ops::conv2d(h, w("pnet.conv2.weight"), w("pnet.conv2.bias"), 1, 0);
  h = ops::prelu(h, w("pnet.prelu2.weight"));
  h = ops::conv2d(h, w("pnet.conv3.weight"), w("pnet.conv3.bias"), 1, 0);
  h = ops::prelu(h, w("pnet.prelu3.weight"));
  PNetOut out;
  out.prob = ops::softmax(ops::conv2d(h, w("pnet.conv4_1.weight"), w("pnet.conv4_1.bias"), 1, 0));
  out.box = ops::conv2d(h, w("pnet.conv4_2.weight"), w("pnet.conv4_2.bias"), 1, 0);
  return out;
}

std::pair<Tensor, Tensor> Mtcnn::rnet(const Tensor& x) {
  NoGradGuard no_grad;
  check_image("rnet", x, 24);
  Tensor h = ops::conv2d(x, w("rnet.conv1.weight"), w("rnet.conv1.bias"), 1, 0);  // 22x22x28
  h = ops::prelu(h, w("rnet.prelu1.weight"));
  h = ops::max_pool2d(h, 3, 2, 0, true);                                           // 11x11
  h = ops::conv2d(h, w("rnet.conv2.weight"), w("rnet.conv2.bias"), 1, 0);          // 9x9x48
  h = ops::prelu(h, w("rnet.prelu2.weight"));
  h = ops::max_pool2d(h, 3, 2, 0, true);                                           // 4x4
  h = ops::conv2d(h, w("rnet.conv3.weight"), w("rnet.conv3.bias"), 1, 0);          // 3x3x64
  h = ops::prelu(h, w("rnet.prelu3.weight"));
  h = h.reshape({x.dim(0), -1});  // NHWC flatten: the weights' columns are in this order
  h = ops::linear(h, w("rnet.dense4.weight"), w("rnet.dense4.bias"));
  h = ops::prelu(h, w("rnet.prelu4.weight"));
  Tensor prob = ops::softmax(ops::linear(h, w("rnet.dense5_1.weight"), w("rnet.dense5_1.bias")));
  Tensor box = ops::linear(h, w("rnet.dense5_2.weight"), w("rnet.dense5_2.bias"));
  return {box, prob};
}

std::tuple<Tensor, Tensor, Tensor> Mtcnn::onet(const Tensor& x) {
  NoGradGuard no_grad;
  check_image("onet", x, 48);
  Tensor h = ops::conv2d(x, w("onet.conv1.weight"), w("onet.conv1.bias"), 1, 0);  // 46x46x32
  h = ops::prelu(h, w("onet.prelu1.weight"));
  h = ops::max_pool2d(h, 3, 2, 0, true);                                           // 23x23
  h = ops::conv2d(h, w("onet.conv2.weight"), w("onet.conv2.bias"), 1, 0);          // 21x21x64
  h = ops::prelu(h, w("onet.prelu2.weight"));
  h = ops::max_pool2d(h, 3, 2, 0, true);                                           // 10x10
  h = ops::conv2d(h, w("onet.conv3.weight"), w("onet.conv3.bias"), 1, 0);          // 8x8x64
  h = ops::prelu(h, w("onet.prelu3.weight"));
  h = ops::max_pool2d(h, 2, 2, 0, true);                                           // 4x4
  h = ops::conv2d(h, w("onet.conv4.weight"), w("onet.conv4.bias"), 1, 0);          // 3x3x128
  h = ops::prelu(h, w("onet.prelu4.weight"));
  h = h.reshape({x.dim(0), -1});
  h = ops::linear(h, w("onet.dense5.weight"), w("onet.dense5.bias"));
  h = ops::prelu(h, w("onet.prelu5.weight"));
  Tensor prob = ops::softmax(ops::linear(h, w("onet.dense6_1.weight"), w("onet.dense6_1.bias")));
  Tensor box = ops::linear(h, w("onet.dense6_2.weight"), w("onet.dense6_2.bias"));
  Tensor landmarks = ops::linear(h, w("onet.dense6_3.weight"), w("onet.dense6_3.bias"));
  return {box, landmarks, prob};
}

}  // namespace hotlap
