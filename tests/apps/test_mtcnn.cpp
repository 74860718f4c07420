// MTCNN's three networks run by hotlap against facenet-pytorch's own outputs
// (tests/data/mtcnn_golden.safetensors, written by tools/convert_mtcnn.py in float64 from the same
// float32 weights and inputs). The P-Net input is 25x31, so its ceil_mode pool has a partial window;
// R-Net's and O-Net's pools have them too.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "apps/score/face/mtcnn.h"
#include "kernels/error.h"
#include "nn/files/serialize.h"
#include "test_util.h"

namespace {

using hotlap::Mtcnn;
using hotlap::Tensor;

const std::string kWeights = std::string(HOTLAP_TEST_DATA_DIR) + "/../../models/mtcnn.safetensors";
const std::string kGolden = std::string(HOTLAP_TEST_DATA_DIR) + "/mtcnn_golden.safetensors";

// fp32 dot products of at most 1152 terms (O-Net's dense layer), summed in blocks by either GEMM,
// against a float64 reference: normwise errors grow like sqrt(n) * u, as in tests/kernels/test_gemm.cpp
// (measured at most 1.1e-6 under AVX-512, AVX2 and the baseline, either GEMM, 1, 2, 3 and 5 threads);
// 1e-5 leaves margin while a wrong weight layout or padding is off by O(1).
constexpr double kTol = 1e-5;

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

void check_close(const char* what, const Tensor& got, const Tensor& ref) {
  INFO(what, ": got ", got.describe(), ", golden ", ref.describe());
  REQUIRE(got.shape() == ref.shape());
  const double err = hotlap::test::max_rel_error(values(got), values(ref));
  INFO("max relative error ", err);
  CHECK(err < kTol);
}

}  // namespace

TEST_CASE("mtcnn: the three nets match facenet-pytorch") {
  Mtcnn mtcnn(kWeights);
  std::map<std::string, Tensor> g = hotlap::read_tensors(kGolden);

  SUBCASE("pnet") {
    auto out = mtcnn.pnet(g.at("pnet.input"));
    check_close("pnet.prob", out.prob, g.at("pnet.prob"));
    check_close("pnet.box", out.box, g.at("pnet.box"));
  }
  SUBCASE("rnet") {
    auto [box, prob] = mtcnn.rnet(g.at("rnet.input"));
    check_close("rnet.prob", prob, g.at("rnet.prob"));
    check_close("rnet.box", box, g.at("rnet.box"));
  }
  SUBCASE("onet") {
    auto [box, landmarks, prob] = mtcnn.onet(g.at("onet.input"));
    check_close("onet.prob", prob, g.at("onet.prob"));
    check_close("onet.box", box, g.at("onet.box"));
    check_close("onet.landmarks", landmarks, g.at("onet.landmarks"));
  }
  SUBCASE("wrong input size") {
    CHECK_THROWS_AS(mtcnn.rnet(g.at("onet.input")), hotlap::Error);
    CHECK_THROWS_AS(mtcnn.pnet(Tensor::zeros({1, 11, 20, 3})), hotlap::Error);
  }
}

TEST_CASE("mtcnn: a missing or wrong weights file is an error naming it") {
  const std::string missing = "/nonexistent/mtcnn_weights.safetensors";
  CHECK_THROWS_WITH_AS(Mtcnn{missing}, doctest::Contains("mtcnn_weights.safetensors"), hotlap::Error);
  // A valid safetensors file without the nets' tensors (the golden file).
  CHECK_THROWS_WITH_AS(Mtcnn{kGolden}, doctest::Contains("mtcnn_golden.safetensors"), hotlap::Error);
  CHECK_THROWS_WITH_AS(Mtcnn{kGolden}, doctest::Contains("missing pnet.conv1.weight"), hotlap::Error);
}
