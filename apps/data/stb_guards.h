// Checks on an image file's bytes made before stb_image sees them: the inputs known to make the stb_image
// that Debian 12 ships (2.27) write out of bounds, overflow an int or allocate without limit, and files
// whose header claims far more pixels than their bytes can encode. Each finding was made by the image
// fuzz target (fuzz/fuzz_image.cpp) under AddressSanitizer and UBSan; docs/images.md lists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hotlap {

// Where a JPEG's marker segments start (just after its SOI marker), or 0 if the bytes are not a JPEG's as
// stb reads them: it takes any number of 0xFF fill bytes before the D8, so "FF FF D8" is a JPEG to it.
// Every check made on a JPEG's structure starts here, so none is skipped for a file stb decodes.
size_t jpeg_start(const uint8_t* data, size_t size);

// Whether the bytes begin with the PNG signature.
bool is_png(const uint8_t* data, size_t size);

// Why stb_image must not read these bytes, or "" when nothing known is wrong with them:
// - a JPEG Huffman table (DHT) whose 16 code counts add up to more than 256 symbols: stb 2.27 writes past
//   its tables (fixed upstream in 2.28);
// - a PNG chunk longer than what is left of the file (stb reallocates its buffer to the claimed length,
//   up to 2 GB, before it finds the data missing), or an empty IDAT chunk before any data (stb copies
//   zero bytes through a null pointer);
// - a PNM (P5/P6) header number of more than 9 digits (stb's parser overflows an int).
std::string stb_hazard(const uint8_t* data, size_t size);

// Why a file of `size` bytes cannot hold the width x height image its header claims ("its N bytes cannot
// hold them (...)", to follow "claims WxH pixels, but "), or "". Each format's
// bound is its densest coding, so any file a writer makes passes and only a file whose image data are
// missing fails (stb fills them with zeros, at full size): a JPEG codes every 8x8 block with at least one
// bit; deflate expands at most 1032:1 (PNG); a BMP stores every row; a GIF's LZW code of at most 12 bits
// stands for at most 4096 pixels, counted over the whole canvas; PSD's PackBits and TGA's runs code at
// most 128 pixels per packet; an HDR scanline at most 127 pixels per 2 bytes of each component; PNM
// stores every sample. A 744-byte JPEG or a 54-byte BMP claiming 10000x10000 pixels (1.2 GB once
// decoded) is refused before anything is allocated.
std::string too_few_bytes(const uint8_t* data, size_t size, int64_t width, int64_t height);

// Why stb_image would never finish this width x height HDR file, or "": a run-length coded scanline
// that ends past the end of the file makes stb 2.27 loop for ever (it reads zeros there, and a zero
// count copies nothing).
std::string hdr_truncated(const uint8_t* data, size_t size, int64_t width, int64_t height);

}  // namespace hotlap
