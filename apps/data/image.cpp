// Image decode / resize / crop / normalise / encode. See image.h and docs/images.md.
#include "apps/data/image.h"
#include "apps/data/stb_guards.h"
#include "apps/data/text_lines.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <filesystem>
#include <memory>

#include "kernels/error.h"
#include "nn/files/atomic_file.h"

namespace hotlap {
namespace {

const char* stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "no reason given";
}

// A JPEG must end with an EOI marker (FF D9) somewhere after its first start-of-scan (FF DA). stb_image
// decodes a truncated JPEG without complaint (it pads the missing entropy-coded data with zeros, giving a
// grey or smeared bottom), so we look for the marker ourselves. Inside entropy-coded data a 0xFF byte is
// always followed by 0x00 or a marker, so FF D9 after the first SOS is the real end of the image (or of a
// later scan's tables, which can only make us accept, never wrongly refuse). Trailing bytes after EOI are
// allowed (some cameras append data).
bool jpeg_is_truncated(const uint8_t* data, size_t size) {
  size_t pos = jpeg_start(data, size);  // after SOI (and any fill bytes before it)
  // Walk the marker segments (each FF xx LEN_hi LEN_lo ...) up to the first SOS.
  while (true) {
    while (pos < size && data[pos] == 0xFF && pos + 1 < size && data[pos + 1] == 0xFF) ++pos;  // fill bytes
    if (pos + 4 > size || data[pos] != 0xFF) return true;
    uint8_t marker = data[pos + 1];
    size_t len = (size_t(data[pos + 2]) << 8) | data[pos + 3];
    if (marker == 0xD9) return false;  // EOI before any scan: stb will reject it anyway
    pos += 2 + len;
    if (marker == 0xDA) break;
  }
  for (size_t i = pos; i + 1 < size; ++i)
    if (data[i] == 0xFF && data[i + 1] == 0xD9) return false;
  return true;
}

// A PNG's dimensions straight from its IHDR chunk (bytes 16-23). stb_image refuses very large PNGs in its
// own header scan, but then reports only "unknown image type"; reading them here lets the size limit
// say what the size is.
bool peek_png_dimensions(const uint8_t* data, size_t size, int64_t* w, int64_t* h) {
  if (size < 24 || !is_png(data, size) || std::memcmp(data + 12, "IHDR", 4) != 0) return false;
  auto be32 = [&](size_t at) {
    return (int64_t(data[at]) << 24) | (int64_t(data[at + 1]) << 16) | (int64_t(data[at + 2]) << 8) | data[at + 3];
  };
  *w = be32(16);
  *h = be32(20);
  return true;
}


// ---- formats ------------------------------------------------------------------------------------------

// A known image type hotlap does not read, recognised by its first bytes (for the error message); null
// if the bytes are none of them.
const char* unreadable_type(const uint8_t* d, size_t n) {
  auto at = [&](size_t offset, const char* magic, size_t len) {
    return n >= offset + len && std::memcmp(d + offset, magic, len) == 0;
  };
  if (at(0, "RIFF", 4) && at(8, "WEBP", 4)) return "WebP";
  if (at(0, "II*\0", 4) || at(0, "MM\0*", 4) || at(0, "II+\0", 4) || at(0, "MM\0+", 4)) return "TIFF";
  if (at(0, "\xFF\x0A", 2) || at(0, "\0\0\0\x0CJXL \r\n\x87\n", 12)) return "JPEG XL";
  if (at(4, "ftyp", 4)) {  // ISO base media file: the major brand says which
    for (const char* brand : {"avif", "avis"})
      if (at(8, brand, 4)) return "AVIF";
    for (const char* brand : {"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1"})
      if (at(8, brand, 4)) return "HEIF";
  }
  return nullptr;
}

// ---- EXIF orientation -----------------------------------------------------------------------------------

// Reads from a TIFF block of n bytes in one byte order. Every read checks that it lies inside the block
// and says whether it did.
struct TiffReader {
  const uint8_t* p;
  size_t n;
  bool big_endian;

  bool u16(size_t at, uint32_t* v) const {
    if (at > n || n - at < 2) return false;
    *v = big_endian ? (uint32_t(p[at]) << 8) | p[at + 1] : uint32_t(p[at]) | (uint32_t(p[at + 1]) << 8);
    return true;
  }
  bool u32(size_t at, uint32_t* v) const {
    if (at > n || n - at < 4) return false;
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= uint32_t(p[at + (big_endian ? i : 3 - i)]) << (8 * (3 - i));
    *v = r;
    return true;
  }
};

// The Orientation tag (0x0112) of IFD0 in a TIFF block (an EXIF payload after "Exif\0\0"); 1 when it is
// absent or anything is malformed.
int tiff_orientation(const uint8_t* p, size_t n) {
  if (n < 8) return 1;
  bool big_endian;
  if (p[0] == 'I' && p[1] == 'I') big_endian = false;
  else if (p[0] == 'M' && p[1] == 'M') big_endian = true;
  else return 1;
  const TiffReader r{p, n, big_endian};
  uint32_t magic = 0, ifd = 0, count = 0;
  if (!r.u16(2, &magic) || magic != 42 || !r.u32(4, &ifd) || ifd < 8 || !r.u16(ifd, &count)) return 1;
  // The whole directory (2 + 12 * count bytes) must lie inside the block: a huge count is malformed.
  if ((n - ifd - 2) / 12 < count) return 1;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t entry = size_t(ifd) + 2 + size_t(i) * 12;
    uint32_t tag = 0, type = 0, values = 0, value = 0;
    if (!r.u16(entry, &tag) || !r.u16(entry + 2, &type) || !r.u32(entry + 4, &values)) return 1;
    if (tag != 0x0112) continue;
    if (values != 1) return 1;
    if (type == 3) {  // SHORT, as the standard says
      if (!r.u16(entry + 8, &value)) return 1;
    } else if (type == 4) {  // LONG, written by some tools
      if (!r.u32(entry + 8, &value)) return 1;
    } else {
      return 1;
    }
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// Converts n-channel samples of type T (1 = grey, 2 = grey+alpha, 3 = RGB, 4 = RGBA) into float RGB,
// compositing alpha onto the background.
template <typename T>
void to_rgb_float(const T* src, int channels, int64_t count, const std::array<float, 3>& bg, const float* lut,
                  float scale, float* dst) {
  auto val = [&](T v) { return lut ? lut[v] : static_cast<float>(v) * scale; };
  for (int64_t i = 0; i < count; ++i, dst += 3) {
    const T* p = src + i * channels;
    switch (channels) {
      case 1: dst[0] = dst[1] = dst[2] = val(p[0]); break;
      case 2: {
        float a = val(p[1]), g = val(p[0]);
        for (int c = 0; c < 3; ++c) dst[c] = a * g + (1.0f - a) * bg[c];
        break;
      }
      case 3: dst[0] = val(p[0]), dst[1] = val(p[1]), dst[2] = val(p[2]); break;
      default: {
        float a = val(p[3]);
        for (int c = 0; c < 3; ++c) dst[c] = a * val(p[c]) + (1.0f - a) * bg[c];
        break;
      }
    }
  }
}

const float* lut_8bit() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int k = 0; k < 256; ++k) t[k] = static_cast<float>(k) / 255.0f;
    return t;
  }();
  return table.data();
}

// A resampled image may be as large as a decoded one may be (DecodeOptions::max_pixels' default):
// with the aspect-ratio limit that keeps `--resize` up to 4096 in bounds, and refuses what would not be.
void check_target(int64_t height, int64_t width, const char* op) {
  HOTLAP_CHECK(height > 0 && width > 0, op, ": target size ", height, "x", width, " must be positive");
  HOTLAP_CHECK(height <= DecodeOptions{}.max_pixels / width, op, ": target size ", height, "x", width,
               " is more than ", DecodeOptions{}.max_pixels, " pixels");
}

void check_image(const Image& img, const char* op) {
  HOTLAP_CHECK(img.height > 0 && img.width > 0, op, ": empty image (", img.height, "x", img.width, ")");
  HOTLAP_CHECK(img.pixels.size() == static_cast<size_t>(img.height * img.width * 3), op, ": image of ",
               img.height, "x", img.width, " holds ", img.pixels.size(), " floats, expected ",
               img.height * img.width * 3);
}

// Per-output-coordinate taps of the triangle filter along one axis (see image.h).
struct AxisWeights {
  std::vector<int64_t> first;   // first input index of output i
  std::vector<int64_t> count;   // number of taps of output i
  std::vector<float> weights;   // out * max_taps, normalised to sum 1
  int64_t max_taps = 0;
};

AxisWeights axis_weights(int64_t in, int64_t out) {
  AxisWeights a;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // the triangle's half-width is 1 at scale 1
  a.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(static_cast<size_t>(out));
  a.count.resize(static_cast<size_t>(out));
  a.weights.assign(static_cast<size_t>(out * a.max_taps), 0.0f);
  std::vector<double> w(static_cast<size_t>(a.max_taps));
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    // The same bounds as PIL's precompute_coeffs: taps j with |j + 0.5 - center| < support.
    int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    int64_t n = std::min(hi - lo, a.max_taps);
    double sum = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      double x = (static_cast<double>(lo + k) + 0.5 - center) / filter_scale;
      w[k] = std::max(0.0, 1.0 - std::abs(x));
      sum += w[k];
    }
    a.first[i] = lo;
    a.count[i] = n;
    for (int64_t k = 0; k < n; ++k) a.weights[i * a.max_taps + k] = static_cast<float>(sum > 0 ? w[k] / sum : 0.0);
  }
  return a;
}

// Box-filter taps along one axis: output i averages inputs [floor(i * in / out), ceil((i + 1) * in /
// out)), in integers, as PyTorch's adaptive average pooling (and interpolate(mode="area")) computes them.
AxisWeights axis_weights_area(int64_t in, int64_t out) {
  AxisWeights a;
  a.max_taps = (in + out - 1) / out + 1;
  a.first.resize(static_cast<size_t>(out));
  a.count.resize(static_cast<size_t>(out));
  a.weights.assign(static_cast<size_t>(out * a.max_taps), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t lo = (i * in) / out;
    const int64_t hi = ((i + 1) * in + out - 1) / out;
    a.first[i] = lo;
    a.count[i] = hi - lo;
    for (int64_t k = 0; k < hi - lo; ++k) a.weights[i * a.max_taps + k] = 1.0f / static_cast<float>(hi - lo);
  }
  return a;
}

// The separable two-pass resampler both filters share: rows with wx, then columns with wy.
Image resample(const Image& src, int64_t height, int64_t width, const AxisWeights& wx, const AxisWeights& wy) {
  // Pass 1, along rows: src (H x W) -> tmp (H x width).
  std::vector<float> tmp(static_cast<size_t>(src.height * width * 3));
  for (int64_t y = 0; y < src.height; ++y) {
    const float* row = src.pixels.data() + y * src.width * 3;
    float* out = tmp.data() + y * width * 3;
    for (int64_t x = 0; x < width; ++x) {
      const float* w = wx.weights.data() + x * wx.max_taps;
      const float* in = row + wx.first[x] * 3;
      float r = 0, g = 0, b = 0;
      for (int64_t k = 0; k < wx.count[x]; ++k) {
        r += w[k] * in[k * 3 + 0];
        g += w[k] * in[k * 3 + 1];
        b += w[k] * in[k * 3 + 2];
      }
      out[x * 3 + 0] = r, out[x * 3 + 1] = g, out[x * 3 + 2] = b;
    }
  }
  // Pass 2, along columns: tmp (H x width) -> dst (height x width), whole rows at a time.
  Image dst = make_image(height, width);
  const int64_t row_len = width * 3;
  for (int64_t y = 0; y < height; ++y) {
    float* out = dst.pixels.data() + y * row_len;
    const float* w = wy.weights.data() + y * wy.max_taps;
    for (int64_t k = 0; k < wy.count[y]; ++k) {
      const float* in = tmp.data() + (wy.first[y] + k) * row_len;
      const float wk = w[k];
      for (int64_t i = 0; i < row_len; ++i) out[i] += wk * in[i];
    }
  }
  return dst;
}

std::vector<uint8_t> to_rgb8(const Image& img) {
  std::vector<uint8_t> out(img.pixels.size());
  for (size_t i = 0; i < out.size(); ++i) {
    float v = img.pixels[i];
    v = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
    out[i] = static_cast<uint8_t>(v * 255.0f + 0.5f);
  }
  return out;
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

void check_encodable(const Image& img, const char* op) {
  check_image(img, op);
  HOTLAP_CHECK(img.height <= 65500 && img.width <= 65500, op, ": ", img.height, "x", img.width,
               " is too large to encode (at most 65500 per side)");
}

}  // namespace

Image make_image(int64_t height, int64_t width, float value) {
  HOTLAP_CHECK(height >= 0 && width >= 0, "make_image: negative size ", height, "x", width);
  Image img;
  img.height = height;
  img.width = width;
  img.pixels.assign(static_cast<size_t>(height * width * 3), value);
  return img;
}

const std::vector<ImageFormat>& readable_image_formats() {
  static const std::vector<ImageFormat> formats = {
      {"JPEG", {"jpg", "jpeg", "jpe", "jfif"}},
      {"PNG", {"png"}},
      {"BMP", {"bmp"}},
      {"GIF", {"gif"}},
      {"TGA", {"tga"}},
      {"PSD", {"psd"}},
      {"PNM (PPM/PGM)", {"pnm", "ppm", "pgm"}},
      {"HDR", {"hdr"}},
  };
  return formats;
}

const std::vector<ImageFormat>& unreadable_image_formats() {
  static const std::vector<ImageFormat> formats = {
      {"WebP", {"webp"}}, {"TIFF", {"tif", "tiff"}}, {"HEIF", {"heic", "heif"}},
      {"AVIF", {"avif"}}, {"JPEG XL", {"jxl"}},
  };
  return formats;
}

std::string readable_formats_phrase() {
  const auto& formats = readable_image_formats();
  std::string s;
  for (size_t i = 0; i < formats.size(); ++i)
    s += (i == 0 ? "" : i + 1 == formats.size() ? " and " : ", ") + formats[i].name;
  return s;
}

namespace {

// The extension of `path`, lower-case, without the dot ("" if none).
std::string bare_extension(const std::string& path) {
  const std::string ext = text_lines::lower(std::filesystem::path(path).extension().string());
  return ext.size() < 2 ? std::string() : ext.substr(1);
}

bool has_extension_of(const std::string& path, const std::vector<ImageFormat>& formats) {
  const std::string ext = bare_extension(path);
  if (ext.empty()) return false;
  for (const ImageFormat& f : formats)
    if (std::find(f.extensions.begin(), f.extensions.end(), ext) != f.extensions.end()) return true;
  return false;
}

}  // namespace

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = [] {
    std::vector<std::string> all;
    for (const ImageFormat& f : readable_image_formats())
      all.insert(all.end(), f.extensions.begin(), f.extensions.end());
    return all;
  }();
  return extensions;
}

bool has_image_extension(const std::string& path) { return has_extension_of(path, readable_image_formats()); }

bool has_unreadable_image_extension(const std::string& path) {
  return has_extension_of(path, unreadable_image_formats());
}

int jpeg_exif_orientation(const uint8_t* data, size_t size) {
  if (data == nullptr) return 1;
  size_t pos = jpeg_start(data, size);  // after SOI
  if (pos == 0) return 1;  // not a JPEG
  // The marker segments before the first scan: FF xx, then (but for standalone markers) a 2-byte length
  // that counts itself.
  while (pos < size && size - pos >= 4) {
    if (data[pos] != 0xFF) return 1;
    const uint8_t marker = data[pos + 1];
    if (marker == 0xFF) {  // a fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // standalone: TEM, RSTn, SOI
      pos += 2;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // the image data (or its end): no EXIF came first
    const size_t len = (size_t(data[pos + 2]) << 8) | data[pos + 3];
    if (len < 2 || len > size - pos - 2) return 1;  // a segment running past the end of the file
    if (marker == 0xE1 && len >= 2 + 6 && std::memcmp(data + pos + 4, "Exif\0\0", 6) == 0)
      return tiff_orientation(data + pos + 10, len - 8);  // the first EXIF segment is the one
    pos += 2 + len;
  }
  return 1;
}

Image apply_orientation(const Image& img, int orientation) {
  HOTLAP_CHECK(orientation >= 1 && orientation <= 8, "apply_orientation: EXIF orientation ", orientation,
               " is not one of 1..8");
  if (orientation == 1) return img;
  check_image(img, "apply_orientation");
  const int64_t h = img.height, w = img.width;
  // Output pixel (y, x) comes from source (sy0 + y * ry + x * cy, sx0 + y * rx + x * cx).
  struct Map {
    bool last_row, last_col;  // sy0 = h - 1 / sx0 = w - 1 (else 0)
    int ry, rx, cy, cx;
  };
  static constexpr Map maps[9] = {
      {}, {},
      {false, true, 1, 0, 0, -1},   // 2: mirror left to right
      {true, true, -1, 0, 0, -1},   // 3: rotate 180
      {true, false, -1, 0, 0, 1},   // 4: flip top to bottom
      {false, false, 0, 1, 1, 0},   // 5: transpose
      {true, false, 0, 1, -1, 0},   // 6: rotate 90 clockwise
      {true, true, 0, -1, -1, 0},   // 7: transverse
      {false, true, 0, -1, 1, 0},   // 8: rotate 90 counter-clockwise
  };
  const Map& m = maps[orientation];
  const bool swap = orientation >= 5;
  Image out = make_image(swap ? w : h, swap ? h : w);
  const int64_t row_step = m.ry * w + m.rx, col_step = m.cy * w + m.cx;  // in source pixels
  const int64_t origin = (m.last_row ? h - 1 : 0) * w + (m.last_col ? w - 1 : 0);
  const float* in = img.pixels.data();
  float* dst = out.pixels.data();
  for (int64_t y = 0; y < out.height; ++y) {
    int64_t src = origin + y * row_step;
    for (int64_t x = 0; x < out.width; ++x, src += col_step, dst += 3) {
      const float* p = in + src * 3;
      dst[0] = p[0], dst[1] = p[1], dst[2] = p[2];
    }
  }
  return out;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& origin, const DecodeOptions& options) {
  HOTLAP_CHECK(size > 0 && data != nullptr, origin, ": empty file (0 bytes), not an image");
  HOTLAP_CHECK(size <= static_cast<size_t>(INT_MAX), origin, ": ", size,
               " bytes is larger than the image decoder accepts (2 GiB)");
  const int len = static_cast<int>(size);
  // A PNG header's dimensions reach 2^32 - 1 each: their product fits in uint64, not in int64.
  auto check_pixel_limit = [&](int64_t w, int64_t h) {
    const uint64_t pixels = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
    HOTLAP_CHECK(pixels <= static_cast<uint64_t>(options.max_pixels), origin, ": image is ", w, "x", h, " = ",
                 pixels, " pixels, more than the limit of ", options.max_pixels, " (refused before decoding)");
    const int64_t longer = std::max(w, h), shorter = std::max<int64_t>(std::min(w, h), 1);
    HOTLAP_CHECK(longer <= options.max_aspect * shorter, origin, ": image is ", w, "x", h, ", its longer side more than ",
                 options.max_aspect, " times its shorter (refused before decoding: with its shorter side resized to "
                 "256 it would be ", longer * 256 / shorter, " pixels long)");
  };
  if (int64_t pw = 0, ph = 0; peek_png_dimensions(data, size, &pw, &ph)) check_pixel_limit(pw, ph);
  // Before stb's own header scan, which is where some of these go wrong (apps/data/stb_guards.h).
  if (const std::string hazard = stb_hazard(data, size); !hazard.empty()) throw_error(origin, ": ", hazard);
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels)) {
    if (const char* type = unreadable_type(data, size))
      throw_error(origin, ": ", type, " is not a format hotlap reads (it reads ", readable_formats_phrase(),
                  "); convert the image to JPEG or PNG");
    throw_error(origin, ": not a readable image (unsupported format or corrupt header: ", stb_reason(),
                "); hotlap reads ", readable_formats_phrase());
  }
  // A BMP stored top-down (a valid layout, the rows first to last) gives a negative height in its
  // header, which stb's info call passes on; its decoder flips such files itself.
  // (-2^31 has no positive int: such a header is refused as it stands.)
  if (h < 0 && h != INT_MIN && size >= 2 && data[0] == 'B' && data[1] == 'M') h = -h;
  HOTLAP_CHECK(w > 0 && h > 0, origin, ": image has no pixels (", w, "x", h, ")");
  const int64_t pixel_count = static_cast<int64_t>(w) * h;
  check_pixel_limit(w, h);
  if (const std::string why = too_few_bytes(data, size, w, h); !why.empty())
    throw_error(origin, ": claims ", w, "x", h, " pixels, but ", why);
  if (const std::string why = hdr_truncated(data, size, w, h); !why.empty()) throw_error(origin, ": ", why);
  const bool is_jpeg = jpeg_start(data, size) != 0;
  HOTLAP_CHECK(!is_jpeg || !jpeg_is_truncated(data, size), origin,
               ": truncated JPEG (no end-of-image marker after the image data)");

  Image img = make_image(h, w);
  const bool sixteen = stbi_is_16_bit_from_memory(data, len) != 0;
  int got_w = 0, got_h = 0, got_channels = 0;
  if (sixteen) {
    std::unique_ptr<stbi_us, StbFree> p(stbi_load_16_from_memory(data, len, &got_w, &got_h, &got_channels, 0));
    HOTLAP_CHECK(p != nullptr, origin, ": cannot decode 16-bit image (", stb_reason(), ")");
    HOTLAP_CHECK(got_w == w && got_h == h && got_channels >= 1 && got_channels <= 4, origin,
                 ": decoder returned ", got_w, "x", got_h, "x", got_channels, ", header said ", w, "x", h);
    to_rgb_float(p.get(), got_channels, pixel_count, options.background, nullptr, 1.0f / 65535.0f,
                 img.pixels.data());
  } else {
    std::unique_ptr<stbi_uc, StbFree> p(stbi_load_from_memory(data, len, &got_w, &got_h, &got_channels, 0));
    HOTLAP_CHECK(p != nullptr, origin, ": cannot decode image (", stb_reason(), ")");
    HOTLAP_CHECK(got_w == w && got_h == h && got_channels >= 1 && got_channels <= 4, origin,
                 ": decoder returned ", got_w, "x", got_h, "x", got_channels, ", header said ", w, "x", h);
    to_rgb_float(p.get(), got_channels, pixel_count, options.background, lut_8bit(), 0.0f, img.pixels.data());
  }
  if (is_jpeg && !options.keep_stored_orientation)
    if (const int orientation = jpeg_exif_orientation(data, size); orientation != 1)
      img = apply_orientation(img, orientation);
  return img;
}

Image decode_image(const std::string& path, const DecodeOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_error(path, ": is a directory, not an image file");
  // A FIFO would block the read forever and a device (a link to /dev/zero) never ends: only regular
  // files are images.
  if (const auto st = std::filesystem::status(path, ec); !ec && !std::filesystem::is_regular_file(st))
    throw_error(path, ": is not a regular file (a pipe, a device or a socket), not an image file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw_error(path, ": cannot open image file (", std::strerror(errno), ")");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(f, &std::fclose);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  while (true) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    bytes.insert(bytes.end(), buf, buf + n);
    if (n < sizeof buf) break;
  }
  if (std::ferror(f)) throw_error(path, ": cannot read image file (", std::strerror(errno), ")");
  try {
    return decode_image(bytes.data(), bytes.size(), path, options);
  } catch (const std::bad_alloc&) {  // within the pixel limit, yet more than this machine has free
    throw_error(path, ": not enough memory to decode this image (", bytes.size(), " bytes of file; hotlap holds ",
                "12 bytes per pixel while decoding)");
  }
}

Image resize(const Image& src, int64_t height, int64_t width) {
  check_image(src, "resize");
  check_target(height, width, "resize");
  if (height == src.height && width == src.width) return src;  // the filter is the identity here too
  return resample(src, height, width, axis_weights(src.width, width), axis_weights(src.height, height));
}

Image resize_area(const Image& src, int64_t height, int64_t width) {
  check_image(src, "resize_area");
  check_target(height, width, "resize_area");
  return resample(src, height, width, axis_weights_area(src.width, width), axis_weights_area(src.height, height));
}

Image shrink_to_fit(const Image& src, int64_t max_side) {
  check_image(src, "shrink_to_fit");
  HOTLAP_CHECK(max_side > 0, "shrink_to_fit: the longest side ", max_side, " must be positive");
  const int64_t longer = std::max(src.height, src.width);
  if (longer <= max_side) return src;
  const double scale = static_cast<double>(max_side) / static_cast<double>(longer);
  return resize_area(src, std::max<int64_t>(1, std::llround(static_cast<double>(src.height) * scale)),
                     std::max<int64_t>(1, std::llround(static_cast<double>(src.width) * scale)));
}

Image resize_shorter_side(const Image& src, int64_t size) {
  check_image(src, "resize_shorter_side");
  HOTLAP_CHECK(size > 0, "resize_shorter_side: size ", size, " must be positive");
  if (src.height <= src.width) return resize(src, size, std::max<int64_t>(1, size * src.width / src.height));
  return resize(src, std::max<int64_t>(1, size * src.height / src.width), size);
}

Image crop(const Image& src, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_image(src, "crop");
  HOTLAP_CHECK(height > 0 && width > 0 && top >= 0 && left >= 0 && top + height <= src.height &&
                   left + width <= src.width,
               "crop: rectangle ", height, "x", width, " at (top ", top, ", left ", left,
               ") does not lie inside the ", src.height, "x", src.width, " image");
  Image dst = make_image(height, width);
  for (int64_t y = 0; y < height; ++y) {
    const float* in = src.pixels.data() + ((top + y) * src.width + left) * 3;
    std::copy(in, in + width * 3, dst.pixels.data() + y * width * 3);
  }
  return dst;
}

Image center_crop(const Image& src, int64_t size) {
  check_image(src, "center_crop");
  HOTLAP_CHECK(size > 0 && size <= src.height && size <= src.width, "center_crop: ", size, "x", size,
               " does not fit in the ", src.height, "x", src.width, " image");
  // Python's round((d) / 2): d even -> d/2; d odd -> the even one of floor(d/2) and floor(d/2) + 1.
  auto half_round_even = [](int64_t d) {
    int64_t q = d / 2;
    return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
  };
  return crop(src, half_round_even(src.height - size), half_round_even(src.width - size), size, size);
}

void flip_horizontal(Image& img) {
  for (int64_t y = 0; y < img.height; ++y) {
    float* row = img.pixels.data() + y * img.width * 3;
    for (int64_t a = 0, b = img.width - 1; a < b; ++a, --b)
      for (int c = 0; c < 3; ++c) std::swap(row[a * 3 + c], row[b * 3 + c]);
  }
}

void to_normalized_nhwc(const Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std,
                        float* out) {
  check_image(img, "to_normalized_nhwc");
  for (int c = 0; c < 3; ++c)
    HOTLAP_CHECK(std[c] != 0.0f && std::isfinite(std[c]), "to_normalized_nhwc: std[", c, "] = ", std[c]);
  const std::array<float, 3> inv = {1.0f / std[0], 1.0f / std[1], 1.0f / std[2]};
  const int64_t n = img.height * img.width;
  const float* in = img.pixels.data();
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = (in[i * 3 + c] - mean[c]) * inv[c];
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  check_encodable(img, "encode_jpeg");
  HOTLAP_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality ", quality, " must be in 1..100");
  std::vector<uint8_t> rgb = to_rgb8(img), out;
  int ok = stbi_write_jpg_to_func(&append_bytes, &out, static_cast<int>(img.width), static_cast<int>(img.height),
                                  3, rgb.data(), quality);
  HOTLAP_CHECK(ok && !out.empty(), "encode_jpeg: stb_image_write failed on a ", img.height, "x", img.width,
               " image");
  return out;
}

std::vector<uint8_t> encode_png(const Image& img) {
  check_encodable(img, "encode_png");
  std::vector<uint8_t> rgb = to_rgb8(img), out;
  int ok = stbi_write_png_to_func(&append_bytes, &out, static_cast<int>(img.width), static_cast<int>(img.height),
                                  3, rgb.data(), static_cast<int>(img.width * 3));
  HOTLAP_CHECK(ok && !out.empty(), "encode_png: stb_image_write failed on a ", img.height, "x", img.width,
               " image");
  return out;
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_jpeg(img, quality);
  } catch (const Error& e) {
    throw_error(path, ": ", e.what());
  }
  write_file_atomically(path, bytes);
}

void write_png(const std::string& path, const Image& img) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_png(img);
  } catch (const Error& e) {
    throw_error(path, ": ", e.what());
  }
  write_file_atomically(path, bytes);
}

}  // namespace hotlap
