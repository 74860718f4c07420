// Writes the seed corpora of the fuzz targets: fuzz/corpus/<target>/, small valid inputs of every kind
// each target reads, so that fuzzing starts from deep inside the parsers rather than from their first
// check. Made with hotlap's own writers (checkpoints, PyTorch export, PNG and JPEG) and, for the image
// formats hotlap only reads, stb_image_write or a few lines here.
//
//   build-fuzz/fuzz/hotlap_fuzz_seeds fuzz/corpus      (rewrites the files it makes, leaves others)
//
// Everything is deterministic (fixed seeds, no dates), so rerunning it changes nothing that is committed.
#include <stb_image_write.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/data/image.h"
#include "fuzz/fuzz_util.h"
#include "nn/runtime/autograd.h"
#include "nn/files/checkpoint.h"
#include "nn/layers/ops.h"
#include "nn/layers/optim.h"
#include "nn/runtime/random.h"
#include "nn/files/safetensors.h"
#include "nn/files/torch_format.h"
#include "resnet/resnet.h"

namespace fs = std::filesystem;
namespace st = hotlap::safetensors;

namespace {

using Bytes = std::vector<uint8_t>;

fs::path out_dir;

void write(const std::string& target, const std::string& name, const void* data, size_t size) {
  const fs::path dir = out_dir / target;
  fs::create_directories(dir);
  hotlap::fuzz::write_bytes((dir / name).string(), data, size);
}
void write(const std::string& target, const std::string& name, const Bytes& b) {
  write(target, name, b.data(), b.size());
}
void write(const std::string& target, const std::string& name, const std::string& s) {
  write(target, name, s.data(), s.size());
}

// ---- safetensors ------------------------------------------------------------------------------------

void safetensors_seeds() {
  const float six[] = {1, -2, 3.5f, 0, 1e-3f, 65504};
  st::File small;
  small.metadata = {{"format", "pt"}};
  small.records.push_back(st::make_f32("weight", {2, 3}, six));
  small.records.push_back(st::make_bf16("bias", {3}, six));
  const int64_t step = 7;
  small.records.push_back(st::make_record("step", st::DType::I64, {}, &step));
  write("safetensors", "small.safetensors", st::serialize(small));

  // One record of every dtype, an empty tensor among them.
  st::File all;
  const uint8_t raw[64] = {0, 0x3c, 0x80, 0x3f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const st::DType dtypes[] = {st::DType::F64, st::DType::F32, st::DType::F16, st::DType::BF16,
                              st::DType::I64, st::DType::I32, st::DType::I16, st::DType::I8,
                              st::DType::U8,  st::DType::BOOL};
  for (st::DType d : dtypes)
    all.records.push_back(st::make_record(std::string("t_") + st::dtype_name(d), d, {2}, raw));
  all.records.push_back(st::make_record("empty", st::DType::F32, {0, 4}, nullptr));
  write("safetensors", "dtypes.safetensors", st::serialize(all));

  st::File meta_only;
  meta_only.metadata = {{"hotlap.format", "checkpoint-v1"}, {"note", "no tensors"}};
  write("safetensors", "metadata-only.safetensors", st::serialize(meta_only));
}

// ---- checkpoints ------------------------------------------------------------------------------------

// A narrow ResNet-18 (width 1: about 3,000 parameters, a 20 KB file) as hotlap train saves one.
std::shared_ptr<hotlap::resnet::ResNet> tiny_net(int depth = 18, int64_t outputs = 1) {
  hotlap::manual_seed(1);
  return hotlap::resnet::make_resnet({depth, outputs, 1});
}

// One training step, so that the optimizer has state to save.
void one_step(hotlap::resnet::ResNet& net, hotlap::Optimizer& optimizer) {
  net.train();
  const hotlap::Tensor x = hotlap::Tensor::full({2, 32, 32, 3}, 0.5f);
  const hotlap::Tensor y = hotlap::Tensor::full({2, 1}, 3.0f);
  optimizer.zero_grad();
  hotlap::ops::loss(hotlap::kernels::LossKind::mse, net.forward(x), y).backward();
  optimizer.step();
}

std::string temp_file() { return (fs::temp_directory_path() / "hotlap-fuzz-seed.safetensors").string(); }

Bytes read_back(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  Bytes b(static_cast<size_t>(fs::file_size(path)));
  if (!f || std::fread(b.data(), 1, b.size(), f) != b.size())
    hotlap::fuzz::finding("make_seeds", "cannot read " + path);
  std::fclose(f);
  fs::remove(path);
  return b;
}

void checkpoint_seeds() {
  const std::string tmp = temp_file();
  hotlap::CheckpointInfo info;
  info.arch = "resnet18-w1";
  info.step = 120;
  info.epoch = 3;
  info.extra = {
      {"input.resize", "72"}, {"input.crop", "64"}, {"input.whole_image", "0"}, {"pearson", "0.61"}};
  {
    auto net = tiny_net();
    net->eval();
    hotlap::save_checkpoint(tmp, *net, nullptr, info);
    write("checkpoint", "resnet18-w1.safetensors", read_back(tmp));
  }
  {
    auto net = tiny_net();
    hotlap::SgdOptions o;
    o.momentum = 0.9;
    hotlap::SGD sgd(net->named_parameters(), o);
    one_step(*net, sgd);
    hotlap::CheckpointInfo whole = info;
    whole.extra = {{"input.crop", "350"}, {"input.whole_image", "1"}};
    hotlap::save_checkpoint(tmp, *net, &sgd, whole);
    write("checkpoint", "resnet18-w1-sgd.safetensors", read_back(tmp));
  }
  {
    auto net = tiny_net();
    hotlap::AdamW adamw(net->named_parameters(), hotlap::AdamWOptions{});
    one_step(*net, adamw);
    hotlap::save_checkpoint(tmp, *net, &adamw, info);
    write("checkpoint", "resnet18-w1-adamw.safetensors", read_back(tmp));
  }
  {  // a PyTorch-layout file as hotlap convert exports it, with the transform under "hotlap.input."
    auto net = tiny_net();
    hotlap::export_torch_state(*net, tmp, hotlap::torch_provenance_metadata(info, "resnet18-w1.safetensors"),
                               120);
    write("checkpoint", "resnet18-w1-torch.safetensors", read_back(tmp));
  }
  {  // a classifier as hotlap train --task classify saves one: its task and class names in the metadata
    auto net = tiny_net(18, 3);
    net->eval();
    hotlap::CheckpointInfo classifier = info;
    classifier.extra = {{"input.resize", "72"}, {"input.crop", "64"}, {"input.whole_image", "0"},
                        {"task", "classify"}, {"classes", "[\"cat\",\"dog, big\",\"\\u00e9l\u00e9phant\"]"},
                        {"top1", "0.5"}, {"top5", "1"}};
    hotlap::save_checkpoint(tmp, *net, nullptr, classifier);
    write("checkpoint", "resnet18-w1-classifier.safetensors", read_back(tmp));
  }
  {  // a PyTorch-layout ImageNet-style classifier with bottlenecks, recording no transform
    auto net = tiny_net(50, 3);
    hotlap::export_torch_state(*net, tmp, {}, 0);
    write("checkpoint", "resnet50-w1-3-outputs-torch.safetensors", read_back(tmp));
  }
}

// ---- images -----------------------------------------------------------------------------------------

void append(void* context, void* data, int size) {
  auto* out = static_cast<Bytes*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// A w x h test pattern of `comp` 8-bit channels (alpha, when there is one, ramps down the rows).
Bytes pattern(int w, int h, int comp) {
  Bytes p;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < comp; ++c)
        p.push_back(static_cast<uint8_t>(
            (comp == 2 || comp == 4) && c == comp - 1 ? 255 - 60 * y : 40 * x + 70 * c + 30 * y));
  return p;
}

hotlap::Image pattern_image(int w, int h) {
  hotlap::Image img = hotlap::make_image(h, w);
  const Bytes p = pattern(w, h, 3);
  for (size_t i = 0; i < p.size(); ++i) img.pixels[i] = static_cast<float>(p[i]) / 255.0f;
  return img;
}

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(Bytes& png, const char* type, const Bytes& data) {
  put_be32(png, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  put_be32(png, crc32(body.data(), body.size()));
}

// A 16-bit RGB PNG (stb_image_write writes only 8 bits): the rows in one stored (uncompressed) deflate
// block.
Bytes png16(int w, int h) {
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const uint16_t v = static_cast<uint16_t>(9000 * x + 20000 * c + 13000 * y);
        raw.push_back(static_cast<uint8_t>(v >> 8));
        raw.push_back(static_cast<uint8_t>(v));
      }
  }
  Bytes z = {0x78,
             0x01,
             0x01,
             static_cast<uint8_t>(raw.size()),
             static_cast<uint8_t>(raw.size() >> 8),
             static_cast<uint8_t>(~raw.size()),
             static_cast<uint8_t>(~raw.size() >> 8)};
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) a = (a + v) % 65521, b = (b + a) % 65521;
  put_be32(z, (b << 16) | a);
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, ihdr;
  put_be32(ihdr, static_cast<uint32_t>(w));
  put_be32(ihdr, static_cast<uint32_t>(h));
  ihdr.insert(ihdr.end(), {16, 2, 0, 0, 0});  // 16 bits, RGB, deflate, adaptive filters, not interlaced
  png_chunk(png, "IHDR", ihdr);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", {});
  return png;
}

// The JPEG with an APP1 "Exif" segment after SOI holding Orientation = `orientation` (big-endian TIFF).
Bytes with_exif_orientation(const Bytes& jpeg, int orientation) {
  const Bytes tiff = {'M',  'M',  0, 42, 0, 0, 0, 8,  // header, IFD0 at 8
                      0,    1,                        // one entry
                      0x01, 0x12, 0, 3,  0, 0, 0, 1, 0, static_cast<uint8_t>(orientation),
                      0,    0,    0, 0,  0, 0};  // no next IFD
  Bytes app1 = {'E', 'x', 'i', 'f', 0, 0};
  app1.insert(app1.end(), tiff.begin(), tiff.end());
  const size_t len = app1.size() + 2;
  Bytes out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  out.insert(out.end(), {0xFF, 0xE1, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
  out.insert(out.end(), app1.begin(), app1.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

// A 2x2 RGB Photoshop file: header, empty colour-mode, resource and layer sections, raw planar data.
Bytes psd() {
  Bytes b = {'8', 'B', 'P', 'S', 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 8, 0, 3};
  for (int section = 0; section < 3; ++section) put_be32(b, 0);
  b.insert(b.end(), {0, 0});  // no compression
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(60 * c + 40 * i));
  return b;
}

void image_seeds() {
  write("image", "rgb-5x3.png", hotlap::encode_png(pattern_image(5, 3)));
  write("image", "rgb-8x8.jpg", hotlap::encode_jpeg(pattern_image(8, 8), 90));
  write("image", "rgb-9x5-exif6.jpg", with_exif_orientation(hotlap::encode_jpeg(pattern_image(9, 5), 75), 6));
  write("image", "rgb16-3x2.png", png16(3, 2));
  write("image", "rgb-2x2.psd", psd());
  const std::string ppm = "P6\n3 2\n255\n", pgm = "P5\n# grey\n2 2\n255\n";
  Bytes p6(ppm.begin(), ppm.end()), p5(pgm.begin(), pgm.end());
  const Bytes rgb = pattern(3, 2, 3), grey = pattern(2, 2, 1);
  p6.insert(p6.end(), rgb.begin(), rgb.end());
  p5.insert(p5.end(), grey.begin(), grey.end());
  write("image", "rgb-3x2.ppm", p6);
  write("image", "grey-2x2.pgm", p5);
  // GIF89a, 2x1, a two-colour global palette, LZW with minimum code size 2 (codes: clear 4, end 5).
  const Bytes gif = {'G',  'I',  'F', '8', '9', 'a', 2, 0, 1, 0, 0x80, 0, 0, 0xFF, 0,    0, 0,   0,
                     0xFF, 0x2C, 0,   0,   0,   0,   2, 0, 1, 0, 0,    2, 2, 0x44, 0x0A, 0, 0x3B};
  write("image", "palette-2x1.gif", gif);
  for (int comp : {1, 2, 4}) {
    Bytes png;
    const Bytes px = pattern(4, 3, comp);
    stbi_write_png_to_func(&append, &png, 4, 3, comp, px.data(), 4 * comp);
    write("image", "comp" + std::to_string(comp) + "-4x3.png", png);
  }
  for (int comp : {3, 4}) {
    Bytes bmp, tga;
    const Bytes px = pattern(3, 2, comp);
    stbi_write_bmp_to_func(&append, &bmp, 3, 2, comp, px.data());
    stbi_write_tga_to_func(&append, &tga, 3, 2, comp, px.data());  // run-length encoded (stb's default)
    write("image", "comp" + std::to_string(comp) + "-3x2.bmp", bmp);
    write("image", "comp" + std::to_string(comp) + "-3x2.tga", tga);
  }
  {
    Bytes hdr;
    const float px[] = {0.1f, 0.5f, 2.0f, 1.0f, 0.0f, 0.25f};
    stbi_write_hdr_to_func(&append, &hdr, 2, 1, 3, px);
    write("image", "rgb-2x1.hdr", hdr);
    // From 8 pixels wide, HDR scanlines are run-length coded: another decoder path.
    Bytes runs;
    std::vector<float> row(9 * 2 * 3, 0.5f);
    for (size_t i = 0; i < row.size(); i += 4) row[i] = 0.125f * static_cast<float>(i % 9);
    stbi_write_hdr_to_func(&append, &runs, 9, 2, 3, row.data());
    write("image", "rgb-9x2-runs.hdr", runs);
  }
}

// ---- label files and PHOTOS arguments ---------------------------------------------------------------

void text_seeds() {
  // SCUT-FBP5500's own "NAME SCORE" lines; then with a BOM, CRLF and problems; then a split (train, the
  // marker line, test) as fuzz_labels cuts it.
  write("labels", "name-score.txt",
        std::string("AF1.jpg 3.5\nAM1.jpg 2.233333\nCF1.jpg 4\nCM1.jpg 1.9666667\n"));
  write("labels", "bom-crlf-problems.txt",
        std::string("\xEF\xBB\xBF"
                    "AF1.jpg 3.5\r\nAF1.jpg 2\r\n\r\nAF2.jpg six\r\nCM2.jpg 6\r\nAM9.jpg +2.5 \r\nAF3.jpg"));
  write("labels", "split.txt",
        std::string("AF1.jpg 3.5\nAM1.jpg 2.5\nCF1.jpg 1.5\n--\nCM1.jpg 4.25\nAF1.jpg 3\n"));
  // The per-rater CSV exported from All_Ratings.xlsx, and its semicolon and tab variants.
  write("labels", "ratings.csv",
        std::string(
            "Rater,Filename,Rating,original Rating\r\n1,AF1.jpg,3,3\r\n2,AF1.jpg,4,4\r\n1,\"a b.jpg\",2,\r\n"
            "1,CM1.jpg,5,5\r\n2,CM1.jpg,seven,7\r\n"));
  write("labels", "ratings-semicolon.csv",
        std::string("Filename;Rating\nAF2.jpg;2,5\n\"CF1.jpg\";3\nAM1.jpg;1\n"));
  write("labels", "ratings-tab.csv",
        std::string("filename\trater\trating\nAF1.jpg\t1\t4.5\nAF404.jpg\t2\t1\n"));

  write("photo_inputs", "folder.txt", std::string("photos\n"));
  write("photo_inputs", "files.txt",
        std::string("top.jpg\nphotos/a.jpg\nlink.jpg\ndangling.jpg\nmissing.png\n"));
  write("photo_inputs", "patterns.txt",
        std::string("photos/*.jpg\n*.jpg\nphotos/[ab]*\nphotos/star*.png\nnone-*.png\n"));
  write("photo_inputs", "folders.txt", std::string("photos/sub\nempty\nonly-skipped\nphotos/dir.jpg\n*/\n"));
  write("photo_inputs", "odd-files.txt",
        std::string("loop.jpg\nphotos/pipe.jpg\nphotos/gone.png\nphotos/*.png\nphotos/p*\n"));
  write("photo_inputs", "spellings.txt",
        std::string("photos/a.jpg\n./photos/a.jpg\nphotos/sub/../a.jpg\n/photos//a.jpg\nphotos/odd "
                    "[1].jpg\nphotos/q?.bmp\n"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  try {
    safetensors_seeds();
    checkpoint_seeds();
    image_seeds();
    text_seeds();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
