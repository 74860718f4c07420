// MTCNN's three networks (P-Net, R-Net, O-Net; Zhang et al. 2016) as trained by facenet-pytorch
// (MIT, Tim Esler), run by hotlap's own ops: convolution with bias, per-channel PReLU, max pooling
// with PyTorch's ceil_mode, linear, softmax. Inference only (each call runs under NoGradGuard).
//
// The weights are models/mtcnn.safetensors (tools/convert_mtcnn.py; see models/README.md), named
// "pnet.<name>", "rnet.<name>", "onet.<name>" after facenet-pytorch's state_dicts, in hotlap layout.
// Inputs are NHWC f32, normalised as facenet-pytorch does: (pixel - 127.5) / 128, RGB.
//
// This is only the networks; the detector around them (image pyramid, proposals, NMS, refinement)
// is apps/score/face/face_detect.h.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "nn/runtime/tensor.h"

namespace hotlap {

class Mtcnn {
 public:
  // Reads and checks every tensor (names and shapes); errors name the file.
  explicit Mtcnn(const std::string& weights_path);

  struct PNetOut {
    Tensor prob;  // [N, P, Q, 2]: softmax over (not face, face) at each 12x12 window (stride 2)
    Tensor box;   // [N, P, Q, 4]: box regression (dx1, dy1, dx2, dy2) relative to the window
  };
  // x [N, H, W, 3] with H, W >= 12.
  PNetOut pnet(const Tensor& x);
  // x [N, 24, 24, 3] -> {box [N, 4], prob [N, 2]}.
  std::pair<Tensor, Tensor> rnet(const Tensor& x);
  // x [N, 48, 48, 3] -> {box [N, 4], landmarks [N, 10], prob [N, 2]}. Landmarks as facenet-pytorch
  // orders them: five x offsets, then five y offsets (eyes, nose, mouth corners), relative to the box.
  std::tuple<Tensor, Tensor, Tensor> onet(const Tensor& x);

 private:
  const Tensor& w(const std::string& name) const;
  std::map<std::string, Tensor> weights_;
};

}  // namespace hotlap
