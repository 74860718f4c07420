// apps/data/image: decoding (every colour type, 16-bit, every listed format, EXIF orientation, every failure
// named by file), the antialiased resize against a float64 reference, torchvision's shorter-side and
// centre-crop rounding, normalisation, and the JPEG/PNG writers. Test images are built here: a minimal
// PNG encoder (stored zlib blocks, real CRCs), a BMP writer, PNM/TGA/PSD/GIF/HDR bytes and EXIF
// segments, so no fixture files are needed.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <stb_image_write.h>

#include "apps/data/image.h"
#include "kernels/error.h"
#include "test_util.h"

namespace hotlap {
namespace {

using test::TempDir;

// ---- tiny encoders ---------------------------------------------------------------------------------

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0xFFFFFFFFu) {
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put_be32(out, crc32(body.data(), body.size()) ^ 0xFFFFFFFFu);
}

// A PNG of `w` x `h` with the given colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA) and bit depth
// (8 or 16); `samples` holds h * w * channels values, row-major. The image data is zlib with stored
// (uncompressed) blocks.
// The PNG signature and IHDR chunk alone.
std::vector<uint8_t> png_header(uint32_t w, uint32_t h, int color_type, int bit_depth) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  png_chunk(png, "IHDR", ihdr);
  return png;
}

std::vector<uint8_t> make_png(uint32_t w, uint32_t h, int color_type, int bit_depth,
                              const std::vector<uint16_t>& samples) {
  const int channels = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 4 ? 2 : 4;
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (uint32_t i = 0; i < w * channels; ++i) {
      uint16_t v = samples[y * w * channels + i];
      if (bit_depth == 16) raw.push_back(static_cast<uint8_t>(v >> 8));
      raw.push_back(static_cast<uint8_t>(v & 0xFF));
    }
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  size_t pos = 0;
  do {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n & 0xFF));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n & 0xFF));
    z.push_back(static_cast<uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_be32(z, (b << 16) | a);

  std::vector<uint8_t> png = png_header(w, h, color_type, bit_depth);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", {});
  return png;
}

// A 24-bit BMP (rows bottom-up, BGR, padded to 4 bytes; with top_down the rows top-down and the height
// negative, the other valid layout); rgb is h * w * 3 bytes, top row first.
std::vector<uint8_t> make_bmp(int w, int h, const std::vector<uint8_t>& rgb, bool top_down = false) {
  const int stride = (w * 3 + 3) / 4 * 4;
  const uint32_t data_size = static_cast<uint32_t>(stride * h), file_size = 54 + data_size;
  std::vector<uint8_t> out(54, 0);
  auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  out[0] = 'B', out[1] = 'M';
  le32(2, file_size);
  le32(10, 54);
  le32(14, 40);
  le32(18, static_cast<uint32_t>(w));
  le32(22, static_cast<uint32_t>(top_down ? -h : h));
  out[26] = 1;   // planes
  out[28] = 24;  // bits per pixel
  le32(34, data_size);
  for (int row = 0; row < h; ++row) {
    const int y = top_down ? row : h - 1 - row;
    for (int x = 0; x < w; ++x)
      for (int c = 2; c >= 0; --c) out.push_back(rgb[(y * w + x) * 3 + c]);
    for (int p = w * 3; p < stride; ++p) out.push_back(0);
  }
  return out;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The error message decode_image throws for these bytes, written to `name` in `dir` ("" if none).
// The JPEG with its frame header (SOF0: FF C0 len(2) precision(1) height(2) width(2)) claiming
// side x side pixels; the image data stay as they were.
std::vector<uint8_t> jpeg_claiming(std::vector<uint8_t> jpeg, int side) {
  for (size_t i = 0; i + 8 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = jpeg[i + 7] = static_cast<uint8_t>(side >> 8);
      jpeg[i + 6] = jpeg[i + 8] = static_cast<uint8_t>(side & 0xFF);
      break;
    }
  return jpeg;
}

std::string decode_error(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& bytes,
                         const DecodeOptions& options = {}) {
  write_bytes(dir.file(name), bytes);
  try {
    decode_image(dir.file(name), options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Image random_image(int64_t h, int64_t w, uint64_t seed) {
  Image img = make_image(h, w);
  img.pixels = test::random_floats(static_cast<size_t>(h * w * 3), seed, 0.0f, 1.0f);
  return img;
}

// ---- decoding ----------------------------------------------------------------------------------------

TEST_CASE("image: PNG round trip is exact to 1/255") {
  TempDir dir;
  Image img = random_image(7, 11, 1);
  for (float& v : img.pixels) v = std::round(v * 255.0f) / 255.0f;
  write_png(dir.file("a.png"), img);
  Image back = decode_image(dir.file("a.png"));
  REQUIRE(back.height == 7);
  REQUIRE(back.width == 11);
  CHECK(back.pixels == img.pixels);
  CHECK(dir.listing() == std::vector<std::string>{"a.png"});  // no temporary left behind
}

TEST_CASE("image: JPEG round trip is close") {
  TempDir dir;
  Image img = make_image(32, 48);
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 48; ++x) {
      img.at(y, x, 0) = static_cast<float>(x) / 47.0f;
      img.at(y, x, 1) = static_cast<float>(y) / 31.0f;
      img.at(y, x, 2) = 0.3f;
    }
  write_jpeg(dir.file("a.jpg"), img, 95);
  Image back = decode_image(dir.file("a.jpg"));
  REQUIRE(back.height == 32);
  REQUIRE(back.width == 48);
  double max_err = 0, sum_err = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    double e = std::abs(back.pixels[i] - img.pixels[i]);
    max_err = std::max(max_err, e);
    sum_err += e;
  }
  CHECK(max_err < 0.06);
  CHECK(sum_err / static_cast<double>(img.pixels.size()) < 0.01);
}

TEST_CASE("image: grayscale PNG is replicated to RGB") {
  Image img = [] {
    auto png = make_png(3, 2, 0, 8, {0, 51, 255, 128, 7, 200});
    return decode_image(png.data(), png.size(), "grey.png");
  }();
  REQUIRE(img.height == 2);
  REQUIRE(img.width == 3);
  const uint16_t expect[] = {0, 51, 255, 128, 7, 200};
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) CHECK(img.pixels[i * 3 + c] == static_cast<float>(expect[i]) / 255.0f);
}

TEST_CASE("image: RGBA and grey+alpha are composited onto the background") {
  // Pixels: opaque red, transparent green, half-transparent blue (alpha 102 = 0.4).
  auto png = make_png(3, 1, 6, 8, {255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 102});
  Image grey_bg = decode_image(png.data(), png.size(), "rgba.png");
  const float a = 102.0f / 255.0f;
  const std::vector<float> expect_grey = {1, 0, 0, 0.5f, 0.5f, 0.5f, (1 - a) * 0.5f, (1 - a) * 0.5f,
                                          a + (1 - a) * 0.5f};
  for (size_t i = 0; i < expect_grey.size(); ++i)
    CHECK(grey_bg.pixels[i] == doctest::Approx(expect_grey[i]).epsilon(1e-6));

  DecodeOptions opt;
  opt.background = {1.0f, 0.25f, 0.0f};
  Image orange_bg = decode_image(png.data(), png.size(), "rgba.png", opt);
  const std::vector<float> expect_orange = {1, 0, 0, 1, 0.25f, 0, (1 - a) * 1.0f, (1 - a) * 0.25f, a};
  for (size_t i = 0; i < expect_orange.size(); ++i)
    CHECK(orange_bg.pixels[i] == doctest::Approx(expect_orange[i]).epsilon(1e-6));

  auto ga = make_png(2, 1, 4, 8, {200, 255, 200, 51});  // grey 200, opaque; grey 200 at alpha 0.2
  Image g = decode_image(ga.data(), ga.size(), "ga.png");
  for (int c = 0; c < 3; ++c) {
    CHECK(g.pixels[c] == doctest::Approx(200.0f / 255.0f));
    CHECK(g.pixels[3 + c] == doctest::Approx(0.2f * 200.0f / 255.0f + 0.8f * 0.5f));
  }
}

TEST_CASE("image: 16-bit PNG keeps 16-bit precision") {
  // Values that are not multiples of 257, so an 8-bit decode would lose them.
  const std::vector<uint16_t> s = {0, 1, 65535, 1000, 30001, 65534};
  auto png = make_png(2, 1, 2, 16, s);
  Image img = decode_image(png.data(), png.size(), "deep.png");
  REQUIRE(img.width == 2);
  for (size_t i = 0; i < s.size(); ++i) CHECK(img.pixels[i] == doctest::Approx(s[i] / 65535.0).epsilon(1e-6));

  auto rgba16 = make_png(1, 1, 6, 16, {65535, 0, 32768, 16384});  // alpha 0.25
  Image c = decode_image(rgba16.data(), rgba16.size(), "deep_rgba.png");
  const double a = 16384.0 / 65535.0;
  CHECK(c.pixels[0] == doctest::Approx(a + (1 - a) * 0.5).epsilon(1e-6));
  CHECK(c.pixels[1] == doctest::Approx((1 - a) * 0.5).epsilon(1e-6));
  CHECK(c.pixels[2] == doctest::Approx(a * 32768.0 / 65535.0 + (1 - a) * 0.5).epsilon(1e-6));
}

TEST_CASE("image: BMP") {
  TempDir dir;
  const std::vector<uint8_t> rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};
  write_bytes(dir.file("a.bmp"), make_bmp(3, 2, rgb));  // 9-byte rows: padding exercised
  Image img = decode_image(dir.file("a.bmp"));
  REQUIRE(img.height == 2);
  REQUIRE(img.width == 3);
  for (size_t i = 0; i < rgb.size(); ++i) CHECK(img.pixels[i] == static_cast<float>(rgb[i]) / 255.0f);
  // The same pixels stored top-down (negative height): the same image.
  write_bytes(dir.file("b.bmp"), make_bmp(3, 2, rgb, true));
  const Image top_down = decode_image(dir.file("b.bmp"));
  CHECK(top_down.height == 2);
  CHECK(top_down.pixels == img.pixels);
}

TEST_CASE("image: every bad file is an Error that names the file") {
  TempDir dir;

  std::string missing;
  try {
    decode_image(dir.file("nope.jpg"));
  } catch (const Error& e) {
    missing = e.what();
  }
  CHECK(contains(missing, "nope.jpg"));
  CHECK(contains(missing, "No such file"));

  std::string empty = decode_error(dir, "empty.jpg", {});
  CHECK(contains(empty, "empty.jpg"));
  CHECK(contains(empty, "empty"));

  std::string garbage = decode_error(dir, "garbage.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'g'});
  CHECK(contains(garbage, "garbage.png"));
  CHECK(contains(garbage, "not a readable image"));

  Image img = random_image(40, 40, 2);
  std::vector<uint8_t> jpeg = encode_jpeg(img);
  std::vector<uint8_t> half(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2));
  std::string truncated = decode_error(dir, "cut.jpg", half);
  CHECK(contains(truncated, "cut.jpg"));
  CHECK(contains(truncated, "truncated"));
  std::vector<uint8_t> header_only(jpeg.begin(), jpeg.begin() + 20);
  CHECK(contains(decode_error(dir, "stub.jpg", header_only), "stub.jpg"));
  // Trailing bytes after the end-of-image marker are fine.
  std::vector<uint8_t> trailer = jpeg;
  trailer.insert(trailer.end(), 100, 0xAB);
  CHECK(decode_error(dir, "trailer.jpg", trailer).empty());

  // A PNG whose compressed data is corrupt (stored-block length and its complement disagree).
  std::vector<uint8_t> png = make_png(4, 4, 2, 8, std::vector<uint16_t>(48, 9));
  std::vector<uint8_t> bad_png = png;
  bad_png[33 + 8 + 2 + 3] ^= 0xFF;  // IHDR is 8 + 25 bytes; IDAT data starts after length+type; NLEN
  std::string corrupt = decode_error(dir, "corrupt.png", bad_png);
  CHECK(contains(corrupt, "corrupt.png"));
  CHECK(contains(corrupt, "cannot decode"));
  std::vector<uint8_t> cut_png(png.begin(), png.begin() + 50);
  CHECK(contains(decode_error(dir, "cut.png", cut_png), "cut.png"));

  // A header claiming 20000x20000 is refused from the header alone, before any allocation.
  std::vector<uint8_t> huge = png_header(20000, 20000, 2, 8);  // no image data at all
  std::string big = decode_error(dir, "huge.png", huge);
  CHECK(contains(big, "huge.png"));
  CHECK(contains(big, "20000x20000"));
  CHECK(contains(big, "limit"));
  // The same for a JPEG whose frame header says so.
  const std::vector<uint8_t> huge_jpeg = jpeg_claiming(jpeg, 20000);
  std::string big_jpeg = decode_error(dir, "huge.jpg", huge_jpeg);
  CHECK(contains(big_jpeg, "huge.jpg"));
  CHECK(contains(big_jpeg, "20000x20000"));

  DecodeOptions small;
  small.max_pixels = 15;
  CHECK(contains(decode_error(dir, "sixteen.png", png, small), "limit of 15"));
  small.max_pixels = 16;
  CHECK(decode_error(dir, "sixteen.png", png, small).empty());

  // A thin strip is refused by its aspect ratio: 100000x1 would be 25.6 million pixels long at 256.
  const std::vector<uint8_t> strip = make_png(100000, 1, 2, 8, std::vector<uint16_t>(300000, 7));
  CHECK(contains(decode_error(dir, "strip.png", strip), "strip.png: image is 100000x1, its longer side more than 20"));
  const std::vector<uint8_t> column = make_png(1, 21, 2, 8, std::vector<uint16_t>(63, 7));
  CHECK(contains(decode_error(dir, "column.png", column), "1x21"));
  CHECK(decode_error(dir, "twenty.png", make_png(1, 20, 2, 8, std::vector<uint16_t>(60, 7))).empty());
  // Nor can a resize make more pixels than a decode may.
  CHECK_THROWS_WITH_AS(resize(make_image(1, 20), 256, 100'000'000 / 256 + 1), doctest::Contains("more than"), Error);

  std::string directory;
  try {
    decode_image(dir.path.string());
  } catch (const Error& e) {
    directory = e.what();
  }
  CHECK(contains(directory, "directory"));
}

TEST_CASE("image: bytes that Debian's stb_image 2.27 mishandles are refused before it reads them") {
  TempDir dir;
  Image img = make_image(16, 16, 0.25f);
  img.at(3, 5, 0) = 1.0f;
  const std::vector<uint8_t> jpeg = encode_jpeg(img, 90);
  REQUIRE(decode_error(dir, "good.jpg", jpeg).empty());
  // A Huffman table whose 16 code counts add up to more than 256 (stb writes past its table).
  std::vector<uint8_t> dht = jpeg;
  size_t at = 0;
  for (size_t i = 0; i + 5 < dht.size(); ++i)
    if (dht[i] == 0xFF && dht[i + 1] == 0xC4) { at = i + 5; break; }
  REQUIRE(at > 0);
  for (int i = 0; i < 16; ++i) dht[at + i] = 40;
  CHECK(contains(decode_error(dir, "dht.jpg", dht), "dht.jpg: corrupt JPEG (a Huffman table defines 640 codes"));
  dht.insert(dht.begin(), 0xFF);  // fill bytes before the SOI: still a JPEG to stb, still refused
  CHECK(contains(decode_error(dir, "fill.jpg", dht), "a Huffman table defines"));

  // A PNG chunk claiming more bytes than the file has (stb would reallocate to the claim first), and an
  // empty IDAT before the data (stb copies through a null pointer).
  const std::vector<uint8_t> png = make_png(4, 4, 2, 8, std::vector<uint16_t>(48, 9));
  std::vector<uint8_t> claim = png;
  claim[33] = 0x7F;  // the IDAT's length, after the signature (8) and IHDR (25)
  CHECK(contains(decode_error(dir, "claim.png", claim), "truncated PNG (a IDAT chunk claims"));
  std::vector<uint8_t> empty_idat(png.begin(), png.begin() + 33);
  const uint8_t chunk[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};  // length 0, CRC of "IDAT"
  empty_idat.insert(empty_idat.end(), std::begin(chunk), std::end(chunk));
  empty_idat.insert(empty_idat.end(), png.begin() + 33, png.end());
  CHECK(contains(decode_error(dir, "empty.png", empty_idat), "an empty IDAT chunk before the image data"));

  // A PNM header number of ten digits or more (stb's parser overflows an int).
  const std::string pgm = "P5 1234567890 2\n255\n";
  CHECK(contains(decode_error(dir, "big.pgm", std::vector<uint8_t>(pgm.begin(), pgm.end())), "a number of 10 digits"));

  // A JPEG with fill bytes before its SOI is a JPEG to stb, so to every check too: cut short, it is
  // refused as truncated rather than decoded with a grey bottom.
  std::vector<uint8_t> filled = jpeg;
  filled.insert(filled.begin(), {0xFF, 0xFF});
  CHECK(decode_error(dir, "filled.jpg", filled).empty());
  filled.resize(filled.size() - 40);
  CHECK(contains(decode_error(dir, "filled-cut.jpg", filled), "filled-cut.jpg: truncated JPEG"));
  // A header claiming more pixels than the bytes can code: a few hundred bytes cannot be a 9000x9000 JPEG.
  const std::vector<uint8_t> claims = jpeg_claiming(jpeg, 9000);
  CHECK(contains(decode_error(dir, "claims.jpg", claims), "claims.jpg: claims 9000x9000 pixels, but its " +
                                                              std::to_string(claims.size()) + " bytes cannot hold them"));
  // ... while a PNG compressed as far as deflate goes (zlib level 9, 1-bit zeros: 590 bytes for 526336) is read.
  const std::vector<uint8_t> tight = test::read_bytes(std::string(HOTLAP_TEST_DATA_DIR) + "/deflate_1032_to_1.png");
  CHECK(decode_error(dir, "tight.png", tight).empty());
}

// A file in every format whose header claims 10000x10000 pixels (within the pixel limit) and whose
// image data are missing: stb would decode each at full size, filling the gap with zeros (a 54-byte BMP
// took 1.3 GB and 12 s). Each is refused from its size alone, naming the format's densest coding.
TEST_CASE("image: a header claiming more pixels than the bytes can code is refused, in every format") {
  TempDir dir;
  auto text = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  auto refused = [&](const std::string& name, std::vector<uint8_t> bytes, const std::string& why) {
    CAPTURE(name);
    const std::string error = decode_error(dir, name, bytes);
    CAPTURE(error);
    CHECK(contains(error, name + ": claims 10000x10000 pixels, but its " + std::to_string(bytes.size()) +
                              " bytes cannot hold them (" + why));
  };
  // BMP, 24 and 1 bits a pixel (a 1-bit one has a two-colour palette, still 12.5 MB of rows).
  std::vector<uint8_t> bmp = make_bmp(1, 1, {1, 2, 3});
  bmp.resize(54);
  for (int at : {18, 22}) bmp[at] = 0x10, bmp[at + 1] = 0x27;  // 10000 = 0x2710, little-endian
  refused("a.bmp", bmp, "a BMP stores every row of its 24-bit pixels; at least 300000000 bytes)");
  bmp[28] = 1;
  bmp[10] = 62;  // the pixels after a two-entry palette
  bmp.insert(bmp.end(), {0, 0, 0, 0, 255, 255, 255, 0});
  refused("one-bit.bmp", bmp, "a BMP stores every row of its 1-bit pixels; at least 12519998 bytes)");
  // A top-down BMP's height is negative; -2^31 has no positive int and is refused as it stands.
  std::vector<uint8_t> lowest = bmp;
  for (int i = 0; i < 4; ++i) lowest[22 + i] = i == 3 ? 0x80 : 0;
  CHECK(contains(decode_error(dir, "lowest.bmp", lowest), "lowest.bmp: image has no pixels (10000x-2147483648)"));
  // TGA, uncompressed and run-length coded: an 18-byte header.
  std::vector<uint8_t> tga = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x27, 0x10, 0x27, 24, 0x20};
  refused("raw.tga", tga, "an uncompressed TGA stores every pixel");
  tga[2] = 10;
  refused("runs.tga", tga, "a TGA run codes at most 128 pixels per packet; at least 3125000 bytes)");
  // PSD: 3 channels, raw, every section empty.
  std::vector<uint8_t> psd = {'8', 'B', 'P', 'S', 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 0, 8, 0, 3};
  psd.insert(psd.end(), 14, 0);
  refused("a.psd", psd, "a PSD's PackBits codes at most 128 pixels per 2 bytes of each channel");
  refused("a.ppm", text("P6\n10000 10000\n255\n"), "a PNM stores every sample");
  refused("a.pgm", text("P5\n10000 10000\n255\n"), "a PNM stores every sample, at least a byte each; at least 100000000");
  refused("a.hdr", text("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 10000 +X 10000\n"),
          "an HDR scanline codes at most 127 pixels per 2 bytes of each component");
  // GIF: a 10000x10000 canvas whose one frame is a single pixel; stb builds the whole canvas.
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 0x10, 0x27, 0x10, 0x27, 0x80, 0, 0, 255, 255, 255,
                                    0, 0, 0, ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'};
  refused("a.gif", gif, "a GIF's LZW codes at most 4096 pixels per 12-bit code, over its whole canvas; at least 36621");
}

// The bounds are the formats' densest codings, so what real writers make of a blank image (their best
// case) still decodes: stb_image_write's run-length TGA and HDR (the bound exactly: 128 and 127 pixels a
// run), its BMP, and hotlap's own PNG and JPEG.
TEST_CASE("image: the densest files writers make are read") {
  const int side = 1024;
  const std::vector<uint8_t> black(static_cast<size_t>(side * side * 3), 0);
  const std::vector<float> dark(static_cast<size_t>(side * side * 3), 0.0f);
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  std::vector<uint8_t> tga, hdr, bmp;
  REQUIRE(stbi_write_tga_to_func(append, &tga, side, side, 3, black.data()));
  REQUIRE(stbi_write_hdr_to_func(append, &hdr, side, side, 3, dark.data()));
  REQUIRE(stbi_write_bmp_to_func(append, &bmp, side, side, 3, black.data()));
  const Image blank = make_image(side, side, 0.0f);
  for (const auto& [name, bytes] : {std::pair{"blank.tga", tga}, std::pair{"blank.hdr", hdr}, std::pair{"blank.bmp", bmp},
                                    std::pair{"blank.png", encode_png(blank)}, std::pair{"blank.jpg", encode_jpeg(blank, 50)}}) {
    CAPTURE(name);
    CAPTURE(bytes.size());
    const Image img = decode_image(bytes.data(), bytes.size(), name);
    CHECK(img.width == side);
    CHECK(*std::max_element(img.pixels.begin(), img.pixels.end()) == 0.0f);
  }
  CHECK(tga.size() < 34000);  // 8 packets of 4 bytes a row: the bound is met, not exceeded
}

// A run-length coded HDR scanline that ends before the file does made stb 2.27 loop for ever.
TEST_CASE("image: an HDR whose scanlines stop early is refused, not decoded for ever") {
  std::vector<uint8_t> hdr;
  const std::string head = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 8\n";
  hdr.assign(head.begin(), head.end());
  std::vector<uint8_t> row = {2, 2, 0, 8};  // a run-length scanline of 8 pixels
  for (int component = 0; component < 4; ++component) row.insert(row.end(), {128 + 8, 100});  // one run each
  hdr.insert(hdr.end(), row.begin(), row.end());
  hdr.insert(hdr.end(), row.begin(), row.end());
  REQUIRE(decode_image(hdr.data(), hdr.size(), "whole.hdr").height == 2);
  for (size_t cut : {1, 2, 5, 10}) {
    std::vector<uint8_t> part(hdr.begin(), hdr.end() - static_cast<std::ptrdiff_t>(cut));
    CAPTURE(cut);
    CHECK_THROWS_WITH_AS(decode_image(part.data(), part.size(), "cut.hdr"),
                         doctest::Contains("cut.hdr: truncated HDR (scanline 2 of 2"), Error);
  }
  // Runs of zero length walk the file to its end the same way.
  std::vector<uint8_t> zeros(hdr.begin(), hdr.begin() + static_cast<std::ptrdiff_t>(head.size() + row.size()));
  zeros.insert(zeros.end(), {2, 2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(decode_image(zeros.data(), zeros.size(), "zeros.hdr"),
                       doctest::Contains("ends past the end of the file"), Error);
}

TEST_CASE("image: decoding from several threads at once, failures included") {
  std::vector<uint8_t> good = make_png(5, 3, 2, 8, std::vector<uint16_t>(45, 77));
  std::vector<uint8_t> bad = {'x', 'y', 'z', 'w'};
  std::array<int, 4> ok{};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        try {
          Image img = decode_image(good.data(), good.size(), "good");
          if (img.width == 5 && img.pixels[0] == 77.0f / 255.0f) ++ok[t];
          decode_image(bad.data(), bad.size(), "bad" + std::to_string(t));
        } catch (const Error& e) {
          if (std::string(e.what()).rfind("bad" + std::to_string(t) + ": ", 0) == 0) ++ok[t];
        }
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) CHECK(ok[t] == 100);
}

// ---- formats ----------------------------------------------------------------------------------------

TEST_CASE("image: every listed format decodes: PNM, TGA, PSD, GIF, HDR") {
  auto bytes = [](const std::string& head, const std::vector<uint8_t>& body) {
    std::vector<uint8_t> out(head.begin(), head.end());
    out.insert(out.end(), body.begin(), body.end());
    return out;
  };
  const std::vector<uint8_t> rgb = {255, 0, 0, 10, 20, 30, 0, 0, 255, 40, 50, 60};  // 2x2, top row first
  auto check_rgb = [&](const std::vector<uint8_t>& file, const std::string& name) {
    CAPTURE(name);
    Image img = decode_image(file.data(), file.size(), name);
    REQUIRE(img.height == 2);
    REQUIRE(img.width == 2);
    for (size_t i = 0; i < rgb.size(); ++i) CHECK(img.pixels[i] == static_cast<float>(rgb[i]) / 255.0f);
  };
  check_rgb(bytes("P6\n2 2\n255\n", rgb), "a.ppm");

  Image grey = [&] {
    auto pgm = bytes("P5\n3 1\n255\n", {0, 128, 255});
    return decode_image(pgm.data(), pgm.size(), "a.pgm");
  }();
  REQUIRE(grey.width == 3);
  CHECK(grey.at(0, 1, 2) == 128.0f / 255.0f);

  // TGA: uncompressed true colour (type 2), 24 bits, rows top-down (descriptor bit 5), BGR.
  std::vector<uint8_t> tga = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 24, 0x20};
  for (size_t i = 0; i < rgb.size(); i += 3) tga.insert(tga.end(), {rgb[i + 2], rgb[i + 1], rgb[i]});
  check_rgb(tga, "a.tga");

  // PSD: version 1, 3 channels, 2x2, 8 bits, RGB mode, no colour mode data, resources or layers, raw
  // planar image data.
  std::vector<uint8_t> psd = {'8', 'B', 'P', 'S', 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 8, 0, 3};
  psd.insert(psd.end(), 4 * 3 + 2, 0);  // three empty sections, compression 0 (raw)
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) psd.push_back(rgb[i * 3 + c]);
  check_rgb(psd, "a.psd");

  // GIF: the classic 1x1 GIF89a, one white pixel.
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 255, 255, 255, 0, 0, 0,
                                    ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'};
  Image white = decode_image(gif.data(), gif.size(), "a.gif");
  REQUIRE(white.height == 1);
  CHECK(white.pixels == std::vector<float>{1.0f, 1.0f, 1.0f});

  // Radiance HDR, flat RGBE pixels: (128, 64, 0) * 2^(129 - 136) = (1, 0.5, 0), tone-mapped by stb's
  // gamma 2.2: 0.5 -> round(255 * 0.5^(1/2.2)) = 186.
  auto hdr = bytes("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 2\n", {128, 64, 0, 129, 0, 0, 0, 0});
  Image lit = decode_image(hdr.data(), hdr.size(), "a.hdr");
  REQUIRE(lit.width == 2);
  CHECK(lit.pixels == std::vector<float>{1.0f, 186.0f / 255.0f, 0.0f, 0.0f, 0.0f, 0.0f});

  // The list names them all, each with its extensions.
  CHECK(readable_formats_phrase() == "JPEG, PNG, BMP, GIF, TGA, PSD, PNM (PPM/PGM) and HDR");
  for (const ImageFormat& f : readable_image_formats()) CHECK(!f.extensions.empty());
}

TEST_CASE("image: a known format hotlap does not read is named in the error, with what it reads") {
  auto error_of = [](std::vector<uint8_t> head) {
    head.resize(64, 0);
    try {
      decode_image(head.data(), head.size(), "photo.x");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto str = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  const std::string reads = "(it reads JPEG, PNG, BMP, GIF, TGA, PSD, PNM (PPM/PGM) and HDR)";
  CHECK(error_of(str(std::string("RIFF\x24\0\0\0WEBPVP8 ", 16))) ==
        "photo.x: WebP is not a format hotlap reads " + reads + "; convert the image to JPEG or PNG");
  auto starts = [](const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; };
  CHECK(starts(error_of(str(std::string("II*\0\x08\0\0\0", 8))), "photo.x: TIFF is not a format hotlap reads"));
  CHECK(starts(error_of(str(std::string("MM\0*\0\0\0\x08", 8))), "photo.x: TIFF is not"));
  CHECK(starts(error_of(str(std::string("\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24))), "photo.x: HEIF is not"));
  CHECK(starts(error_of(str(std::string("\0\0\0\x1C" "ftypavif\0\0\0\0avifmif1", 24))), "photo.x: AVIF is not"));
  CHECK(starts(error_of({0xFF, 0x0A, 0xFA, 0x1F}), "photo.x: JPEG XL is not"));
  CHECK(error_of(str("plain text, not an image")).find("; hotlap reads JPEG, PNG, BMP, GIF, TGA, PSD, PNM") !=
        std::string::npos);
}

// ---- EXIF orientation ---------------------------------------------------------------------------------

// The stored image turned as a viewer shows EXIF orientation `o`, written from what each value means
// (output pixel (y, x) <- stored pixel), independently of apply_orientation.
Image oriented_reference(const Image& s, int o) {
  const int64_t h = s.height, w = s.width;
  const bool swap = o >= 5;
  Image out = make_image(swap ? w : h, swap ? h : w);
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x) {
      int64_t sy = y, sx = x;
      switch (o) {
        case 2: sx = w - 1 - x; break;                  // mirror: columns reversed
        case 3: sy = h - 1 - y, sx = w - 1 - x; break;  // 180
        case 4: sy = h - 1 - y; break;                  // flip: rows reversed
        case 5: sy = x, sx = y; break;                  // transpose
        case 6: sy = h - 1 - x, sx = y; break;          // clockwise: the left column, bottom up, is the top row
        case 7: sy = h - 1 - x, sx = w - 1 - y; break;  // transverse
        case 8: sy = x, sx = w - 1 - y; break;          // counter-clockwise: the right column is the top row
        default: break;
      }
      for (int c = 0; c < 3; ++c) out.at(y, x, c) = s.at(sy, sx, c);
    }
  return out;
}

// A TIFF block (what follows "Exif\0\0") in either byte order: the header, then IFD0 at offset 8 with
// Make (ASCII, its text after the directory), Orientation (SHORT, 1 value) and XResolution (RATIONAL),
// then "next IFD: none". `orientation_type` and `orientation_count` allow malformed entries.
std::vector<uint8_t> exif_tiff(bool big_endian, uint32_t orientation, uint16_t orientation_type = 3,
                               uint32_t orientation_count = 1) {
  std::vector<uint8_t> t;
  auto u16 = [&](uint32_t v) {
    if (big_endian) t.insert(t.end(), {uint8_t(v >> 8), uint8_t(v)});
    else t.insert(t.end(), {uint8_t(v), uint8_t(v >> 8)});
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) u16(v >> 16), u16(v & 0xFFFF);
    else u16(v & 0xFFFF), u16(v >> 16);
  };
  t.insert(t.end(), big_endian ? std::initializer_list<uint8_t>{'M', 'M'} : std::initializer_list<uint8_t>{'I', 'I'});
  u16(42);
  u32(8);
  const uint32_t after_ifd = 8 + 2 + 3 * 12 + 4;
  u16(3);
  u16(0x010F), u16(2), u32(7), u32(after_ifd);  // Make: "hotlap\0"
  u16(0x0112), u16(orientation_type), u32(orientation_count);
  if (orientation_type == 3) u16(orientation), u16(0);  // a SHORT sits in the first two bytes of the field
  else u32(orientation);
  u16(0x011A), u16(5), u32(1), u32(after_ifd + 8);  // XResolution: 72/1
  u32(0);
  const char make[8] = "hotlap";
  t.insert(t.end(), make, make + 8);
  u32(72), u32(1);
  return t;
}

// The JPEG with an APP1 segment holding `payload` ("Exif\0\0" + TIFF, or anything) inserted at `at`
// (2: right after SOI; more: after the JFIF APP0 segment).
std::vector<uint8_t> with_app1(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& payload, size_t at = 2) {
  const size_t len = payload.size() + 2;
  std::vector<uint8_t> seg = {0xFF, 0xE1, uint8_t(len >> 8), uint8_t(len & 0xFF)};
  seg.insert(seg.end(), payload.begin(), payload.end());
  std::vector<uint8_t> out = jpeg;
  out.insert(out.begin() + static_cast<long>(at), seg.begin(), seg.end());
  return out;
}

std::vector<uint8_t> exif_payload(const std::vector<uint8_t>& tiff) {
  std::vector<uint8_t> p(6 + tiff.size());
  std::memcpy(p.data(), "Exif\0\0", 6);
  std::copy(tiff.begin(), tiff.end(), p.begin() + 6);
  return p;
}

std::vector<uint8_t> with_exif(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& tiff, size_t at = 2) {
  return with_app1(jpeg, exif_payload(tiff), at);
}

// After SOI and the JFIF APP0 segment stb_image_write puts first.
size_t after_app0(const std::vector<uint8_t>& jpeg) {
  REQUIRE(jpeg[2] == 0xFF);
  REQUIRE(jpeg[3] == 0xE0);
  return 4 + ((size_t(jpeg[4]) << 8) | jpeg[5]);
}

TEST_CASE("apply_orientation: the eight EXIF orientations of a 2x3 image") {
  // Stored:  a b c     (pixel value = its letter's index, in all three channels)
  //          d e f
  Image s = make_image(2, 3);
  for (int64_t i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) s.pixels[static_cast<size_t>(i * 3 + c)] = static_cast<float>(i);
  auto letters = [](const Image& img) {
    std::string out;
    for (int64_t y = 0; y < img.height; ++y) {
      for (int64_t x = 0; x < img.width; ++x) out += static_cast<char>('a' + static_cast<int>(img.at(y, x, 1)));
      out += y + 1 < img.height ? "/" : "";
    }
    return out;
  };
  CHECK(letters(apply_orientation(s, 1)) == "abc/def");
  CHECK(letters(apply_orientation(s, 2)) == "cba/fed");
  CHECK(letters(apply_orientation(s, 3)) == "fed/cba");
  CHECK(letters(apply_orientation(s, 4)) == "def/abc");
  CHECK(letters(apply_orientation(s, 5)) == "ad/be/cf");
  CHECK(letters(apply_orientation(s, 6)) == "da/eb/fc");
  CHECK(letters(apply_orientation(s, 7)) == "fc/eb/da");
  CHECK(letters(apply_orientation(s, 8)) == "cf/be/ad");
  for (int o = 1; o <= 8; ++o) CHECK(apply_orientation(s, o).pixels == oriented_reference(s, o).pixels);
  CHECK_THROWS_AS(apply_orientation(s, 0), Error);
  CHECK_THROWS_AS(apply_orientation(s, 9), Error);
}

TEST_CASE("image: a JPEG's EXIF orientation is applied on decode, both byte orders, every value") {
  TempDir dir;
  const Image original = random_image(6, 10, 11);  // not square, so a rotation shows in the shape
  const std::vector<uint8_t> jpeg = encode_jpeg(original, 90);
  const Image stored = decode_image(jpeg.data(), jpeg.size(), "plain.jpg");
  CHECK(jpeg_exif_orientation(jpeg.data(), jpeg.size()) == 1);
  DecodeOptions keep;
  keep.keep_stored_orientation = true;
  for (bool big_endian : {false, true})
    for (int o = 1; o <= 8; ++o)
      for (size_t at : {size_t(2), after_app0(jpeg)}) {
        CAPTURE(big_endian);
        CAPTURE(o);
        CAPTURE(at);
        const std::vector<uint8_t> file = with_exif(jpeg, exif_tiff(big_endian, static_cast<uint32_t>(o)), at);
        CHECK(jpeg_exif_orientation(file.data(), file.size()) == o);
        const Image got = decode_image(file.data(), file.size(), "exif.jpg");
        const Image expect = oriented_reference(stored, o);
        CHECK(got.height == expect.height);
        CHECK(got.width == expect.width);
        CHECK(got.pixels == expect.pixels);  // the same decoded pixels, moved: exact
        CHECK(decode_image(file.data(), file.size(), "exif.jpg", keep).pixels == stored.pixels);
      }

  // From a file, as the scorer and the training loader read them: a portrait stored sideways (6).
  write_bytes(dir.file("sideways.jpg"), with_exif(jpeg, exif_tiff(true, 6)));
  const Image upright = decode_image(dir.file("sideways.jpg"));
  CHECK(upright.height == 10);
  CHECK(upright.width == 6);
  CHECK(upright.pixels == oriented_reference(stored, 6).pixels);
  CHECK(decode_image(dir.file("sideways.jpg"), keep).pixels == stored.pixels);
  // Fill bytes before the SOI (stb reads such a file) do not hide the orientation.
  std::vector<uint8_t> filled = with_exif(jpeg, exif_tiff(true, 6));
  filled.insert(filled.begin(), 0xFF);
  CHECK(jpeg_exif_orientation(filled.data(), filled.size()) == 6);

  // An Orientation written as a LONG is read too; an XMP APP1 before the EXIF one is passed over.
  const std::vector<uint8_t> as_long = with_exif(jpeg, exif_tiff(false, 8, 4));
  CHECK(jpeg_exif_orientation(as_long.data(), as_long.size()) == 8);
  const std::string xmp = "http://ns.adobe.com/xap/1.0/";
  std::vector<uint8_t> xmp_payload(xmp.begin(), xmp.end());
  xmp_payload.push_back(0);
  const std::vector<uint8_t> xmp_first = with_app1(with_exif(jpeg, exif_tiff(false, 3)), xmp_payload);
  CHECK(jpeg_exif_orientation(xmp_first.data(), xmp_first.size()) == 3);
}

TEST_CASE("image: a malformed EXIF block is ignored: the JPEG decodes as stored, no error") {
  const Image original = random_image(5, 9, 12);
  const std::vector<uint8_t> jpeg = encode_jpeg(original, 90);
  const Image stored = decode_image(jpeg.data(), jpeg.size(), "plain.jpg");
  auto as_stored = [&](const std::vector<uint8_t>& file, const std::string& what) {
    CAPTURE(what);
    CHECK(jpeg_exif_orientation(file.data(), file.size()) == 1);
    Image got;
    CHECK_NOTHROW(got = decode_image(file.data(), file.size(), "bad_exif.jpg"));
    CHECK(got.pixels == stored.pixels);
  };
  auto set32 = [](std::vector<uint8_t> t, size_t at, uint32_t v, bool big_endian) {
    for (int i = 0; i < 4; ++i) t[at + static_cast<size_t>(i)] = uint8_t(v >> (8 * (big_endian ? 3 - i : i)));
    return t;
  };
  for (bool big : {false, true}) {
    const std::vector<uint8_t> good = exif_tiff(big, 6);
    // Every truncation of the TIFF block (the segment's length says where it ends) short of the whole
    // directory: the directory must fit as a whole, so even a cut right after the orientation entry counts.
    for (size_t n = 0; n < 8 + 2 + 3 * 12; ++n)
      as_stored(with_exif(jpeg, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(n))),
                "truncated to " + std::to_string(n));
    const std::vector<uint8_t> whole_directory =
        with_exif(jpeg, std::vector<uint8_t>(good.begin(), good.begin() + 8 + 2 + 3 * 12));
    CHECK(jpeg_exif_orientation(whole_directory.data(), whole_directory.size()) == 6);  // and that is enough
    // IFD0 offset past the end, far past the end (no wrap-around), and into the header.
    as_stored(with_exif(jpeg, set32(good, 4, static_cast<uint32_t>(good.size()), big)), "offset at the end");
    as_stored(with_exif(jpeg, set32(good, 4, 0xFFFFFFF0u, big)), "offset past the end");
    as_stored(with_exif(jpeg, set32(good, 4, 2, big)), "offset into the header");
    // A huge entry count.
    std::vector<uint8_t> huge = good;
    huge[8] = huge[9] = 0xFF;
    as_stored(with_exif(jpeg, huge), "65535 entries");
    // Wrong count, wrong type, values outside 1..8.
    as_stored(with_exif(jpeg, exif_tiff(big, 6, 3, 2)), "two values");
    as_stored(with_exif(jpeg, exif_tiff(big, 6, 3, 0xFFFFFFFFu)), "2^32 - 1 values");
    as_stored(with_exif(jpeg, exif_tiff(big, 6, 2)), "ASCII");
    for (uint32_t v : {0u, 9u, 0xFFFFu}) as_stored(with_exif(jpeg, exif_tiff(big, v)), "value " + std::to_string(v));
  }
  // Not a TIFF header: bad byte order mark, bad magic number; "Exif" with nothing after it.
  std::vector<uint8_t> mixed = exif_tiff(false, 6);
  mixed[1] = 'M';
  as_stored(with_exif(jpeg, mixed), "byte order IM");
  std::vector<uint8_t> magic = exif_tiff(true, 6);
  magic[3] = 43;
  as_stored(with_exif(jpeg, magic), "magic 43");
  as_stored(with_app1(jpeg, {'E', 'x', 'i', 'f', 0, 0}), "empty EXIF");
  as_stored(with_app1(jpeg, {'E', 'x', 'i', 'f'}), "short EXIF header");
  as_stored(with_app1(jpeg, {}), "empty APP1");

  // Every byte of the block set to each of a few values: any orientation may come out, but only 1..8,
  // and decoding never fails.
  const std::vector<uint8_t> good = exif_tiff(true, 6);
  for (size_t i = 0; i < good.size(); ++i)
    for (uint8_t v : {uint8_t(0x00), uint8_t(0x01), uint8_t(0x7F), uint8_t(0xFF)}) {
      std::vector<uint8_t> t = good;
      t[i] = v;
      const std::vector<uint8_t> file = with_exif(jpeg, t);
      const int o = jpeg_exif_orientation(file.data(), file.size());
      CHECK(o >= 1);
      CHECK(o <= 8);
      CHECK_NOTHROW(decode_image(file.data(), file.size(), "mutated.jpg"));
    }

  // The scan itself stays inside the bytes it is given: a segment length past the end, the bytes cut
  // at every point of the EXIF segment, and things that are not JPEGs at all.
  const std::vector<uint8_t> file = with_exif(jpeg, exif_tiff(false, 6));
  for (size_t n = 0; n < 2 + 4 + 6 + good.size(); ++n) {
    const std::vector<uint8_t> cut(file.begin(), file.begin() + static_cast<long>(n));
    CHECK(jpeg_exif_orientation(cut.data(), cut.size()) == 1);
  }
  std::vector<uint8_t> long_segment = file;
  long_segment[4] = long_segment[5] = 0xFF;
  CHECK(jpeg_exif_orientation(long_segment.data(), long_segment.size()) == 1);
  CHECK(jpeg_exif_orientation(nullptr, 0) == 1);
  const std::vector<uint8_t> png = make_png(2, 1, 2, 8, std::vector<uint16_t>(6, 5));
  CHECK(jpeg_exif_orientation(png.data(), png.size()) == 1);
}

// ---- resize ------------------------------------------------------------------------------------------

// Float64 reference of the documented filter, written directly from its definition (2-D weights, all
// input pixels, no precomputed taps).
std::vector<double> resize_reference(const Image& src, int64_t oh, int64_t ow) {
  auto weights = [](int64_t in, int64_t out, int64_t i) {
    double s = static_cast<double>(in) / static_cast<double>(out), fs = std::max(s, 1.0);
    double c = (static_cast<double>(i) + 0.5) * s, sum = 0;
    std::vector<double> w(static_cast<size_t>(in));
    for (int64_t j = 0; j < in; ++j) sum += w[j] = std::max(0.0, 1.0 - std::abs((j + 0.5 - c) / fs));
    for (double& v : w) v /= sum;
    return w;
  };
  std::vector<double> out(static_cast<size_t>(oh * ow * 3), 0.0);
  for (int64_t y = 0; y < oh; ++y) {
    auto wy = weights(src.height, oh, y);
    for (int64_t x = 0; x < ow; ++x) {
      auto wx = weights(src.width, ow, x);
      for (int64_t j = 0; j < src.height; ++j)
        for (int64_t k = 0; k < src.width; ++k)
          for (int c = 0; c < 3; ++c) out[(y * ow + x) * 3 + c] += wy[j] * wx[k] * src.at(j, k, c);
    }
  }
  return out;
}

TEST_CASE("resize: identity is exact, a constant stays constant") {
  Image img = random_image(9, 13, 3);
  CHECK(resize(img, 9, 13).pixels == img.pixels);
  Image wide = resize(img, 9, 40);  // one axis identity: rows are resampled, columns untouched
  Image narrow = resize(img, 9, 5);
  CHECK(wide.height == 9);
  CHECK(narrow.width == 5);

  Image flat = make_image(17, 23, 0.37f);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 7}, {17, 50}, {40, 3}, {16, 23}}) {
    Image r = resize(flat, h, w);
    REQUIRE(r.pixels.size() == static_cast<size_t>(h * w * 3));
    for (float v : r.pixels) CHECK(v == doctest::Approx(0.37f).epsilon(1e-6));
  }
}

TEST_CASE("shrink_to_fit: the longer side capped, the aspect kept, a fitting image copied as is") {
  const Image img = random_image(30, 80, 5);
  CHECK(shrink_to_fit(img, 80).pixels == img.pixels);
  CHECK(shrink_to_fit(img, 500).width == 80);
  const Image half = shrink_to_fit(img, 40);
  CHECK(half.width == 40);
  CHECK(half.height == 15);
  CHECK(half.pixels == resize_area(img, 15, 40).pixels);
  const Image tall = shrink_to_fit(random_image(1000, 3, 6), 100);  // 0.3 columns round up to one
  CHECK(tall.height == 100);
  CHECK(tall.width == 1);
  CHECK_THROWS_AS(shrink_to_fit(img, 0), Error);
}

TEST_CASE("resize: a fine checkerboard shrinks to grey (antialiasing)") {
  Image board = make_image(64, 64);
  for (int64_t y = 0; y < 64; ++y)
    for (int64_t x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) board.at(y, x, c) = static_cast<float>((x + y) % 2);
  for (int64_t out : {8, 10, 21, 32}) {
    Image r = resize(board, out, out);
    double worst = 0;
    for (float v : r.pixels) worst = std::max(worst, std::abs(v - 0.5));
    CHECK_MESSAGE(worst < 0.02, "64 -> ", out, ": max deviation from grey ", worst);
  }
}

TEST_CASE("resize: matches a float64 reference of the same filter") {
  Image img = random_image(13, 17, 4);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{5, 7}, {29, 31}, {29, 6}, {4, 17}, {1, 3}, {13, 40}}) {
    Image got = resize(img, h, w);
    CHECK_MESSAGE(test::max_rel_error(got.pixels, resize_reference(img, h, w)) < 1e-5, "13x17 -> ", h, "x", w);
  }
}

TEST_CASE("resize_shorter_side and center_crop use torchvision's rounding") {
  auto size_of = [](int64_t h, int64_t w, int64_t s) {
    Image r = resize_shorter_side(make_image(h, w, 0.5f), s);
    return std::pair{r.height, r.width};
  };
  CHECK(size_of(350, 350, 256) == std::pair<int64_t, int64_t>{256, 256});
  CHECK(size_of(480, 640, 256) == std::pair<int64_t, int64_t>{256, 341});  // int(256 * 640 / 480) = 341
  CHECK(size_of(640, 480, 256) == std::pair<int64_t, int64_t>{341, 256});
  CHECK(size_of(300, 401, 224) == std::pair<int64_t, int64_t>{224, 299});  // 299.41 -> 299

  // Pixel value = its row index * 1000 + column index, so the crop's origin can be read back.
  auto coords = [](int64_t h, int64_t w) {
    Image img = make_image(h, w);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) img.at(y, x, c) = static_cast<float>(y * 1000 + x);
    return img;
  };
  Image c = center_crop(coords(256, 256), 224);
  CHECK(c.height == 224);
  CHECK(c.at(0, 0, 0) == 16 * 1000 + 16);
  CHECK(c.at(223, 223, 2) == 239 * 1000 + 239);
  // Python's round(): (225-224)/2 = 0.5 -> 0, (227-224)/2 = 1.5 -> 2, (229-224)/2 = 2.5 -> 2.
  CHECK(center_crop(coords(225, 227), 224).at(0, 0, 0) == 0 * 1000 + 2);
  CHECK(center_crop(coords(229, 224), 224).at(0, 0, 0) == 2 * 1000 + 0);
  CHECK(center_crop(coords(256, 341), 224).at(0, 0, 0) == 16 * 1000 + 58);  // round(58.5) = 58

  Image cr = crop(coords(10, 12), 3, 4, 2, 5);
  CHECK(cr.at(0, 0, 1) == 3004);
  CHECK(cr.at(1, 4, 1) == 4008);
  CHECK_THROWS_AS(crop(coords(10, 12), 9, 0, 2, 1), Error);
  CHECK_THROWS_AS(crop(coords(10, 12), 0, -1, 2, 1), Error);
  CHECK_THROWS_AS(crop(coords(10, 12), 0, 0, 0, 1), Error);
  CHECK_THROWS_AS(center_crop(coords(200, 300), 224), Error);
  CHECK_THROWS_AS(resize(Image{}, 4, 4), Error);
  CHECK_THROWS_AS(resize(coords(3, 3), 0, 4), Error);
}

TEST_CASE("flip_horizontal and normalisation") {
  Image img = make_image(2, 3);
  for (int64_t x = 0; x < 3; ++x)
    for (int c = 0; c < 3; ++c) img.at(1, x, c) = static_cast<float>(x * 10 + c);
  flip_horizontal(img);
  CHECK(img.at(1, 0, 0) == 20);
  CHECK(img.at(1, 0, 2) == 22);
  CHECK(img.at(1, 2, 1) == 1);

  Image px = make_image(1, 2);
  px.pixels = {0.485f, 0.456f, 0.406f, 1.0f, 0.0f, 0.5f};
  std::vector<float> out(6, -99.0f);
  to_normalized_nhwc(px, kImageNetMean, kImageNetStd, out.data());
  CHECK(out[0] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(out[1] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(out[2] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(out[3] == doctest::Approx((1.0 - 0.485) / 0.229).epsilon(1e-6));
  CHECK(out[4] == doctest::Approx((0.0 - 0.456) / 0.224).epsilon(1e-6));
  CHECK(out[5] == doctest::Approx((0.5 - 0.406) / 0.225).epsilon(1e-6));
}

TEST_CASE("image writers: errors name the path") {
  TempDir dir;
  Image img = make_image(2, 2, 0.5f);
  std::string msg;
  try {
    write_png(dir.file("no_such_dir/a.png"), img);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("no_such_dir/a.png") != std::string::npos);
  msg.clear();
  try {
    write_jpeg(dir.file("b.jpg"), Image{}, 90);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("b.jpg") != std::string::npos);
  CHECK_THROWS_AS(write_jpeg(dir.file("c.jpg"), img, 0), Error);
}

}  // namespace
}  // namespace hotlap
