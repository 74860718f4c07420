// Byte-level checks made before stb_image: see stb_guards.h.
#include "apps/data/stb_guards.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hotlap {
namespace {

// Every DHT segment, read as stb reads it: tables while the segment's length lasts, zeros past the end
// of the file (stb's reader returns 0 there), including the DHTs between the scans of a progressive
// JPEG. Between segments, 0xFF followed by 0x00, a restart marker or fill is scan data, not a marker.
std::string jpeg_hazard(const uint8_t* data, size_t size) {
  auto byte = [&](size_t at) -> size_t { return at < size ? data[at] : 0; };
  size_t pos = jpeg_start(data, size);
  while (pos + 1 < size) {
    const uint8_t marker = data[pos + 1];
    if (data[pos] != 0xFF || marker == 0x00 || marker == 0xFF || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {
      ++pos;
      continue;
    }
    if (marker == 0xD9) return "";  // end of image
    const size_t length = (byte(pos + 2) << 8) | byte(pos + 3);
    if (marker == 0xC4) {
      int64_t left = static_cast<int64_t>(length) - 2;
      size_t p = pos + 4;
      while (left > 0) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(p + i);
        if (codes > 256) return "corrupt JPEG (a Huffman table defines " + std::to_string(codes) + " codes, at most 256)";
        p += 17 + codes;
        left -= static_cast<int64_t>(17 + codes);
      }
    }
    pos += 2 + length;
  }
  return "";
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// The chunks up to IEND: length (4), type (4), data, CRC (4).
std::string png_hazard(const uint8_t* data, size_t size) {
  size_t pos = 8;
  bool idat_data = false;
  while (pos + 8 <= size) {
    const uint64_t length = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (length + 12 > size - pos)
      return "truncated PNG (a " + std::string(reinterpret_cast<const char*>(type), 4) + " chunk claims " +
             std::to_string(length) + " bytes, " + std::to_string(size - pos) + " are left in the file)";
    if (std::memcmp(type, "IDAT", 4) == 0) {
      if (length == 0 && !idat_data) return "corrupt PNG (an empty IDAT chunk before the image data)";
      idat_data = idat_data || length > 0;
    }
    if (std::memcmp(type, "IEND", 4) == 0) return "";
    pos += 12 + static_cast<size_t>(length);
  }
  return "";  // no IEND: stb says so itself ("outofdata")
}

// P5/P6: width, height and maxval, separated by whitespace and '#' comments.
std::string pnm_hazard(const uint8_t* data, size_t size) {
  size_t pos = 2;
  for (int number = 0; number < 3 && pos < size; ++number) {
    while (pos < size && (std::strchr(" \t\n\v\f\r", data[pos]) != nullptr || data[pos] == '#')) {
      if (data[pos] == '#')
        while (pos < size && data[pos] != '\n' && data[pos] != '\r') ++pos;
      else
        ++pos;
    }
    size_t digits = 0;
    while (pos < size && data[pos] >= '0' && data[pos] <= '9') ++pos, ++digits;
    if (digits > 9) return "corrupt PNM header (a number of " + std::to_string(digits) + " digits)";
    if (digits == 0) return "";  // not a number: stb refuses the header itself
  }
  return "";
}

// Radiance HDR: text lines up to an empty one, the resolution line, then the pixels. stb reads a width of
// 8 to 32767 as run-length coded scanlines, and a scanline whose data end early makes it loop for ever
// (past the end of the file it reads zeros, and a zero count is a copy of no bytes). So the runs are
// walked here as stb walks them; a file that ends inside a scanline is refused.
std::string hdr_hazard(const uint8_t* data, size_t size, int64_t width, int64_t height) {
  if (width < 8 || width >= 32768) return "";  // flat RGBE pixels: stb's reads stop at the end of the file
  size_t pos = 0;
  auto next_line = [&] {  // past the next '\n', as stb's line reader stops
    while (pos < size && data[pos] != '\n') ++pos;
    if (pos < size) ++pos;
  };
  next_line();  // "#?RADIANCE"
  while (pos < size && data[pos] != '\n') next_line();
  if (pos < size) ++pos;  // the empty line
  next_line();            // "-Y height +X width"
  for (int64_t row = 0; row < height; ++row) {
    if (size - pos < 4) return "truncated HDR (scanline " + std::to_string(row + 1) + " of " + std::to_string(height) + " is missing)";
    if (data[pos] != 2 || data[pos + 1] != 2 || (data[pos + 2] & 0x80) != 0) return "";  // flat pixels from here on
    pos += 4;
    for (int component = 0; component < 4; ++component)
      for (int64_t filled = 0; filled < width;) {
        const int count = pos < size ? data[pos] : 0;
        const size_t bytes = count > 128 ? 2 : 1 + static_cast<size_t>(count);  // a run, or count values
        if (bytes > size - pos)
          return "truncated HDR (scanline " + std::to_string(row + 1) + " of " + std::to_string(height) +
                 " ends past the end of the file)";
        filled += count > 128 ? count - 128 : count;
        pos += bytes;
        if (filled > width) return "";  // stb refuses the run itself
      }
  }
  return "";
}

bool is_hdr(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic) {
    const size_t len = std::strlen(magic);
    return n >= len && std::memcmp(d, magic, len) == 0;
  };
  return starts("#?RADIANCE\n") || starts("#?RGBE\n");
}

uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t le32(const uint8_t* p) { return le16(p) | (le16(p + 2) << 16); }
uint32_t be16(const uint8_t* p) { return (uint32_t(p[0]) << 8) | uint32_t(p[1]); }

// The fewest bytes a file of this format needs for width x height pixels, and why; {0, ""} for a format
// without such a bound here. Each bound is the densest coding the format has, so every file a writer
// can make passes it, and only files whose image data is missing (which stb fills with zeros, at full
// size) fail it.
struct Floor {
  double bytes = 0;
  std::string why;
};

Floor fewest_bytes(const uint8_t* d, size_t n, int64_t width, int64_t height) {
  const double w = static_cast<double>(width), h = static_cast<double>(height), pixels = w * h;
  if (jpeg_start(d, n) != 0)
    return {std::floor((w + 7) / 8) * std::floor((h + 7) / 8) / 8, "a JPEG needs at least one bit per 8x8 block"};
  if (is_png(d, n)) {
    if (n < 33) return {};
    // The filtered rows deflate compresses: a filter byte, then the pixels at bit depth x channels.
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type: grey, -, RGB, palette, ...
    const int bit_depth = d[24], colour = d[25];
    const int bits = bit_depth * (colour <= 6 ? channels[colour] : 0);
    if (bits == 0) return {};  // stb refuses the header itself
    const double row = 1 + std::ceil(w * bits / 8);
    return {row * h / 1032, "deflate expands at most 1032:1"};
  }
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
    // Uncompressed rows (stb reads no RLE BMP), each padded to 4 bytes but for perhaps the last.
    if (n < 30) return {};
    const uint32_t header = le32(d + 14);
    const double bits = std::clamp<uint32_t>(header == 12 ? le16(d + 24) : le16(d + 28), 1, 32);
    return {std::ceil(w * bits / 32) * 4 * (h - 1) + std::ceil(w * bits / 8),
            "a BMP stores every row of its " + std::to_string(static_cast<int>(bits)) + "-bit pixels"};
  }
  if (n >= 4 && std::memcmp(d, "GIF8", 4) == 0)
    // An LZW code of at most 12 bits stands for at most 4096 pixels.
    return {pixels * 12 / 4096 / 8, "a GIF's LZW codes at most 4096 pixels per 12-bit code, over its whole canvas"};
  if (n >= 4 && std::memcmp(d, "8BPS", 4) == 0) {
    // Planar channels (stb reads the first four), raw or PackBits (at most 128 bytes per 2).
    if (n < 14) return {};
    const double channels = std::clamp<uint32_t>(be16(d + 12), 1, 4);
    return {channels * pixels * 2 / 128, "a PSD's PackBits codes at most 128 pixels per 2 bytes of each channel"};
  }
  if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6'))
    return {pixels * (d[1] == '6' ? 3 : 1), "a PNM stores every sample, at least a byte each"};
  if (is_hdr(d, n)) {
    // Flat RGBE (4 bytes a pixel), or per row a 4-byte header and each of 4 components in runs of at most
    // 127 pixels per 2 bytes.
    const bool runs = width >= 8 && width < 32768;
    return {runs ? h * (4 + 4 * 2 * std::ceil(w / 127)) : pixels * 4,
            runs ? "an HDR scanline codes at most 127 pixels per 2 bytes of each component" : "an HDR this wide stores 4 bytes a pixel"};
  }
  // Only TGA is left (stb tries it last; it has no signature): raw pixels, or run-length packets of at
  // most 128 pixels (a packet byte and one pixel).
  if (n < 18) return {};
  const bool runs = d[2] >= 8;  // image types 9-11
  const double pixel_bytes = std::max(1.0, std::ceil(d[16] / 8.0));  // a palette index or a pixel: 8-32 bits
  return runs ? Floor{std::ceil(pixels / 128) * (1 + pixel_bytes), "a TGA run codes at most 128 pixels per packet"}
              : Floor{pixels * pixel_bytes, "an uncompressed TGA stores every pixel"};
}

}  // namespace

size_t jpeg_start(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF) return 0;
  size_t i = 1;
  while (i < n && d[i] == 0xFF) ++i;
  return i < n && d[i] == 0xD8 ? i + 1 : 0;
}

bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

std::string stb_hazard(const uint8_t* data, size_t size) {
  if (jpeg_start(data, size) != 0) return jpeg_hazard(data, size);
  if (is_png(data, size)) return png_hazard(data, size);
  if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6')) return pnm_hazard(data, size);
  return "";
}

std::string too_few_bytes(const uint8_t* data, size_t size, int64_t width, int64_t height) {
  const Floor floor = fewest_bytes(data, size, width, height);
  if (static_cast<double>(size) >= floor.bytes) return "";
  return "its " + std::to_string(size) + " bytes cannot hold them (" + floor.why + "; at least " +
         std::to_string(static_cast<int64_t>(floor.bytes)) + " bytes)";
}

std::string hdr_truncated(const uint8_t* data, size_t size, int64_t width, int64_t height) {
  return is_hdr(data, size) ? hdr_hazard(data, size, width, height) : "";
}

}  // namespace hotlap
