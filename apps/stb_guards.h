// Checks on an image file's bytes made before stb_image sees them: the inputs known to make the stb_image
// that Debian 12 ships (2.27) write out of bounds, overflow an int or allocate without limit, and files
// whose header claims far more pixels than their bytes can encode. Each finding was made by the image
// fuzz target (fuzz/fuzz_image.cpp) under AddressSanitizer and UBSan; docs/images.md lists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hotlap {

// Why stb_image must not read these bytes, or "" when nothing known is wrong with them:
// - a JPEG Huffman table (DHT) whose 16 code counts add up to more than 256 symbols: stb 2.27 writes past
//   its tables (fixed upstream in 2.28);
// - a PNG chunk longer than what is left of the file (stb reallocates its buffer to the claimed length,
//   up to 2 GB, before it finds the data missing), or an empty IDAT chunk before any data (stb copies
//   zero bytes through a null pointer);
// - a PNM (P5/P6) header number of more than 9 digits (stb's parser overflows an int).
std::string stb_hazard(const uint8_t* data, size_t size);

// Why a file of `size` bytes cannot hold the width x height image its header claims, or "": a JPEG codes
// every 8x8 block of its full-resolution plane with at least one bit, and deflate expands at most
// 1032:1, so a PNG is at least its filtered rows (a filter byte and the pixels' bits) over 1032. A 744-byte JPEG claiming 10000x10000 pixels
// (1.5 GB once decoded) is refused before anything is allocated.
std::string too_few_bytes(const uint8_t* data, size_t size, int64_t width, int64_t height);

}  // namespace hotlap
