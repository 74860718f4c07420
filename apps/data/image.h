// Images for the apps: decode (JPEG, PNG, BMP, ... through stb_image), resize, crop, flip, normalise,
// and write JPEG/PNG. This is where a training step starts: file bytes -> float RGB -> the NHWC input
// tensor.
//
// An Image is float RGB in [0, 1], HWC (channels last, 3 channels): pixel (y, x) channel c lives at
// pixels[(y * width + x) * 3 + c]. The same layout as the network's NHWC activations, so a batch is a
// plain concatenation of images.
//
// Decoding (see docs/images.md):
// - The formats read are readable_image_formats() (JPEG, PNG, BMP, GIF, TGA, PSD, PNM, HDR); known
//   image types outside that list (WebP, TIFF, HEIF, AVIF, JPEG XL) are named in the error.
// - A JPEG's EXIF Orientation (1-8) is applied, as every photo viewer and PIL's exif_transpose do: a
//   portrait a phone stored sideways comes out upright. A malformed EXIF block is ignored (the image is
//   decoded as stored), never an error. DecodeOptions::keep_stored_orientation turns this off.
// - Grayscale is replicated to R = G = B.
// - Alpha (straight, not premultiplied, as PNG stores it) is composited onto DecodeOptions::background:
//   out = a * c + (1 - a) * background, in the stored (sRGB-encoded) values, as PIL's alpha_composite
//   does. The default background is a neutral grey (0.5): a portrait with a transparent background is
//   scored on grey, not on black.
// - 16-bit PNGs are decoded at 16 bits and scaled by 1/65535; 8-bit images by 1/255 (exact: k/255).
// - The dimensions are read from the header first; an image with more than max_pixels pixels, or a
//   longer side more than max_aspect times its shorter, is refused before anything large is allocated.
// - Every failure is a hotlap::Error whose message starts with the path (or origin) and says what is
//   wrong, with stb_image's reason where it gave one.
// - Thread-safe: several loader threads may decode at once (stb's failure reason is thread-local, and
//   no global stb flag is ever set).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hotlap {

struct Image {
  int64_t height = 0, width = 0;
  std::vector<float> pixels;  // height * width * 3, RGB, HWC, in [0, 1]

  float& at(int64_t y, int64_t x, int c) { return pixels[static_cast<size_t>((y * width + x) * 3 + c)]; }
  float at(int64_t y, int64_t x, int c) const { return pixels[static_cast<size_t>((y * width + x) * 3 + c)]; }
};

// An image of the given size, every pixel `value` in all three channels.
Image make_image(int64_t height, int64_t width, float value = 0.0f);

struct DecodeOptions {
  int64_t max_pixels = 100'000'000;                       // larger images are refused (memory guard)
  int64_t max_aspect = 20;  // refused when the longer side is more than this times the shorter: a
                            // 100000x1 PNG of 370 bytes would become 256x25600000 once its shorter side
                            // is resized to 256 (6.5 GB); no photo is so thin (a panorama is about 8:1)
  std::array<float, 3> background = {0.5f, 0.5f, 0.5f};  // what transparent pixels are composited onto
  bool keep_stored_orientation = false;                   // true: ignore the EXIF Orientation tag
};

// An image format: its name and the file name extensions it goes by (lower-case, without the dot).
struct ImageFormat {
  std::string name;                     // "JPEG"
  std::vector<std::string> extensions;  // {"jpg", "jpeg", "jpe", "jfif"}
};

// What decode_image reads, in the order they are named: JPEG, PNG, BMP, GIF, TGA, PSD, PNM, HDR. The
// one list of hotlap's image formats: the decoder's error message and the folder scan of
// `hotlap score` (apps/score/photo_inputs.h) both come from it.
const std::vector<ImageFormat>& readable_image_formats();

// Image types hotlap knows but does not read: WebP, TIFF, HEIF, AVIF, JPEG XL.
const std::vector<ImageFormat>& unreadable_image_formats();

// The readable formats as a phrase: "JPEG, PNG, BMP, GIF, TGA, PSD, PNM (PPM/PGM) and HDR".
std::string readable_formats_phrase();

// The extensions of the formats hotlap reads, lower-case, without the dot: jpg jpeg jpe jfif png bmp
// gif tga psd pnm ppm pgm hdr.
const std::vector<std::string>& image_extensions();

// Whether the file name ends in one of image_extensions(), in any case ("A.JPG" does).
bool has_image_extension(const std::string& path);

// Whether the file name ends in the extension of a known image type hotlap does not read
// (unreadable_image_formats(): webp tif tiff heic heif avif jxl), in any case.
bool has_unreadable_image_extension(const std::string& path);

// The EXIF Orientation (1-8) of a JPEG held in `data`: the tag 0x0112 of IFD0 in its first APP1
// "Exif" segment. 1 (as stored) when the bytes are not a JPEG, carry no EXIF or no Orientation, or when
// anything about the EXIF block is malformed (truncated, offsets outside it, a wrong type or count, a
// value outside 1-8). Every read is bounds-checked against `size`; it never throws.
int jpeg_exif_orientation(const uint8_t* data, size_t size);

// The image turned the way EXIF Orientation `orientation` says a viewer shows it (PIL's
// exif_transpose): 1 as is, 2 mirrored left to right, 3 rotated 180 degrees, 4 flipped top to bottom,
// 5 transposed (mirrored across the main diagonal), 6 rotated 90 degrees clockwise, 7 transversed
// (mirrored across the other diagonal), 8 rotated 90 degrees counter-clockwise. 5-8 swap height and
// width. Throws hotlap::Error for any other value.
Image apply_orientation(const Image& img, int orientation);

// Decodes the file at `path`, upright (EXIF Orientation applied unless options say otherwise). Throws
// hotlap::Error "<path>: ..." if it is missing, unreadable, empty, corrupt, truncated, in a format
// hotlap does not read or larger than options.max_pixels.
Image decode_image(const std::string& path, const DecodeOptions& options = {});

// The same for bytes in memory; `origin` names them in error messages (a path, "zip:member", ...).
Image decode_image(const uint8_t* data, size_t size, const std::string& origin,
                   const DecodeOptions& options = {});

// Resampling, separable (rows, then columns), with a triangle (tent, bilinear) filter:
//   output pixel i along an axis of in -> out samples has its centre at input coordinate
//   c = (i + 0.5) * s, s = in / out (pixel centres at j + 0.5), and
//   value = sum_j w_j * in[j] / sum_j w_j,  w_j = max(0, 1 - |j + 0.5 - c| / max(s, 1)).
// When shrinking (s > 1) the triangle's support widens to s input pixels on each side, so every input
// pixel contributes: proper antialiasing, the same filter as PIL's Image.resize(BILINEAR) and
// torchvision's resize(antialias=True). When enlarging (s <= 1) it is plain bilinear interpolation
// (edges clamp). Weights are computed once per axis in double precision; the identity size is exact.
// Throws hotlap::Error on an empty source or a non-positive size.
Image resize(const Image& src, int64_t height, int64_t width);

// Box-filter resampling, PyTorch's interpolate(mode="area") (adaptive average pooling): output pixel
// (i, j) is the plain mean of the input pixels in rows [floor(i * H / height), ceil((i + 1) * H /
// height)) and the same columns. What MTCNN's image pyramid and crops were made with. Throws
// hotlap::Error on an empty source or a non-positive size.
Image resize_area(const Image& src, int64_t height, int64_t width);

// The image box-filtered (resize_area) down so that its longer side is at most `max_side`, the aspect
// ratio kept to the nearest pixel; a copy when it already fits. Used where only a bounded working copy
// is needed (face detection, report previews).
Image shrink_to_fit(const Image& src, int64_t max_side);

// The paper's "resize 256": the shorter side becomes `size`, the longer side int(size * long / short)
// (truncated, as torchvision's Resize(int) computes it): 350x350 -> 256x256, 480x640 -> 256x341.
Image resize_shorter_side(const Image& src, int64_t size);

// The rectangle [top, top + height) x [left, left + width); throws hotlap::Error if it is empty or does
// not lie inside the image.
Image crop(const Image& src, int64_t top, int64_t left, int64_t height, int64_t width);

// The central size x size square, placed as torchvision's CenterCrop places it:
// top = round((h - size) / 2), left = round((w - size) / 2), with Python's round (halves to even).
// Throws hotlap::Error if the image is smaller than size in either dimension.
Image center_crop(const Image& src, int64_t size);

// Mirrors the image left to right, in place.
void flip_horizontal(Image& img);

inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

// Writes height * width * 3 floats, (x - mean[c]) / std[c], in the image's HWC order: one image of an
// NHWC batch.
void to_normalized_nhwc(const Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std,
                        float* out);

// Writes the image as a JPEG (quality 1-100) or an 8-bit RGB PNG, atomically (write_file_atomically).
// Values are clamped to [0, 1] and rounded to 8 bits. Errors are hotlap::Error naming the path.
void write_jpeg(const std::string& path, const Image& img, int quality = 95);
void write_png(const std::string& path, const Image& img);

// The same encoders into memory (for tests and for callers that store images elsewhere).
std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 95);
std::vector<uint8_t> encode_png(const Image& img);

}  // namespace hotlap
