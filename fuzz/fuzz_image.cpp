// Fuzz target: image decoding (apps/data/image.h, stb_image underneath) and the resizes that follow it in
// hotlap score and hotlap train.
//
// The input is a whole image file. decode_image must refuse what it cannot read with a hotlap::Error
// and otherwise return an upright RGB image of the size it says, every value in [0, 1]. The image then
// goes where photos go:
//   evaluation_view               the test split in training, and score --no-face-crop (apps/data/loader.h);
//                                 training's random crop starts with the same resize_shorter_side
//   frame_centre                  score's framing when no face is found (apps/score/face/face_frame.h)
//   shrink_to_fit(480)            the photo's preview in score's report
// at make demo's sizes (72 -> 64, and a 64-pixel frame) rather than the paper's (256 -> 224, 350): the
// code is the same at any size, and the smaller output makes a run several times faster.
// Face detection (MTCNN) is left out: a network's forward pass per input is too slow to fuzz with.
//
// The pixel limit. decode_image's default (DecodeOptions::max_pixels, 100 million) admits images of
// 1.2 GB of floats, which a file of a few hundred bytes can claim (a JPEG's header is enough: stb fills
// missing data with zeros). Under ASan that is seconds and gigabytes per input, each one a finding
// against -rss_limit_mb and -timeout, and the fuzzer would find nothing else. The limit here is
// 4 million pixels (2048 x 2048), far larger than any structure the decoders have; HOTLAP_FUZZ_MAX_PIXELS
// sets another (e.g. 100000000 to rerun an input under the command's own limit).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "apps/score/face/face_frame.h"
#include "apps/data/image.h"
#include "apps/data/loader.h"
#include "fuzz/fuzz_util.h"

namespace fz = hotlap::fuzz;

namespace {

int64_t max_pixels = 4'000'000;

std::string exact(float v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

// The image is height x width and its values lie in [0, 1]. The decoder's exactly; a resampled image's
// up to `slack`: its weights add up to 1 only to within float rounding (a bilinear sample of a white
// photo can be 1.0000001), which is not a bug.
void check_image(const hotlap::Image& img, const char* what, int64_t height, int64_t width, float slack = 0) {
  HOTLAP_FUZZ_REQUIRE(img.height == height && img.width == width &&
                          img.pixels.size() == static_cast<size_t>(height * width * 3),
                      what,
                      "returned " + std::to_string(img.height) + "x" + std::to_string(img.width) + " with " +
                          std::to_string(img.pixels.size()) + " floats, expected " + std::to_string(height) +
                          "x" + std::to_string(width));
  for (float v : img.pixels)
    HOTLAP_FUZZ_REQUIRE(v >= -slack && v <= 1 + slack, what,
                        "returned the value " + exact(v) + ", outside [0, 1]");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz::single_threaded();
  if (const char* s = std::getenv("HOTLAP_FUZZ_MAX_PIXELS")) max_pixels = std::atoll(s);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hotlap::DecodeOptions options;
  options.max_pixels = max_pixels;
  hotlap::Image img;
  if (!fz::refuses_cleanly("decode_image", [&] { img = hotlap::decode_image(data, size, "input", options); }))
    return 0;
  HOTLAP_FUZZ_REQUIRE(img.height > 0 && img.width > 0 && img.height * img.width <= max_pixels, "decode_image",
                      "accepted an image of " + std::to_string(img.height) + "x" + std::to_string(img.width));
  check_image(img, "decode_image", img.height, img.width);

  // The same bytes with the EXIF orientation ignored: the stored image, which the orientation only turns.
  options.keep_stored_orientation = true;
  hotlap::Image stored;
  HOTLAP_FUZZ_REQUIRE(
      fz::refuses_cleanly("decode_image",
                          [&] { stored = hotlap::decode_image(data, size, "input", options); }),
      "decode_image", "refused with keep_stored_orientation what it read without");
  HOTLAP_FUZZ_REQUIRE(stored.height * stored.width == img.height * img.width, "decode_image",
                      "the orientation changed the number of pixels");

  hotlap::AugmentConfig augment;
  augment.resize = 72;
  augment.crop = 64;
  augment.train = false;
  fz::refuses_cleanly("evaluation_view", [&] {
    check_image(hotlap::evaluation_view(img, augment), "evaluation_view", augment.crop, augment.crop, 1e-5f);
  });
  fz::refuses_cleanly("frame_centre", [&] {
    hotlap::FramingOptions framing;
    framing.size = 64;
    check_image(hotlap::frame_centre(img, framing).crop, "frame_centre", 64, 64, 1e-5f);
  });
  fz::refuses_cleanly("shrink_to_fit", [&] {
    const hotlap::Image preview = hotlap::shrink_to_fit(img, 480);
    HOTLAP_FUZZ_REQUIRE(
        std::max(preview.height, preview.width) <= 480 && preview.height > 0 && preview.width > 0,
        "shrink_to_fit", "returned " + std::to_string(preview.height) + "x" + std::to_string(preview.width));
  });
  return 0;
}
