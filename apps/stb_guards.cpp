// Byte-level checks made before stb_image: see stb_guards.h.
#include "apps/stb_guards.h"

#include <cmath>
#include <cstring>

namespace hotlap {
namespace {

// Where a JPEG's data start after its SOI marker, or 0 if the bytes are not a JPEG's as stb reads them:
// it takes any number of 0xFF fill bytes before the D8 ("FF FF D8" is a JPEG to it too).
size_t jpeg_start(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 0xFF) return 0;
  size_t i = 1;
  while (i < n && d[i] == 0xFF) ++i;
  return i < n && d[i] == 0xD8 ? i + 1 : 0;
}

bool is_jpeg(const uint8_t* d, size_t n) { return jpeg_start(d, n) != 0; }

bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

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

}  // namespace

std::string stb_hazard(const uint8_t* data, size_t size) {
  if (is_jpeg(data, size)) return jpeg_hazard(data, size);
  if (is_png(data, size)) return png_hazard(data, size);
  if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6')) return pnm_hazard(data, size);
  return "";
}

std::string too_few_bytes(const uint8_t* data, size_t size, int64_t width, int64_t height) {
  double needed = 0;  // the fewest bytes that can hold the image
  const char* why = nullptr;
  if (is_jpeg(data, size)) {
    needed = static_cast<double>((width + 7) / 8) * static_cast<double>((height + 7) / 8) / 8;
    why = "a JPEG needs at least one bit per 8x8 block";
  } else if (is_png(data, size) && size >= 33) {
    // The filtered rows deflate compresses: a filter byte, then the pixels at bit depth x channels.
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type: grey, -, RGB, palette, ...
    const int bit_depth = data[24], colour = data[25];
    const int bits = bit_depth * (colour <= 6 ? channels[colour] : 0);
    if (bits == 0) return "";  // stb refuses the header itself
    const double row = 1 + std::ceil(static_cast<double>(width) * bits / 8);
    needed = row * static_cast<double>(height) / 1032;
    why = "deflate expands at most 1032:1";
  } else {
    return "";
  }
  if (static_cast<double>(size) >= needed) return "";
  return std::to_string(size) + " bytes cannot hold " + std::to_string(width) + "x" + std::to_string(height) +
         " pixels (" + why + "; at least " + std::to_string(static_cast<int64_t>(needed)) + " bytes)";
}

}  // namespace hotlap
