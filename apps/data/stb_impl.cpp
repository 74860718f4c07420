// The one translation unit that compiles stb_image and stb_image_write (Debian's libstb-dev headers).
//
// Thread safety: compiled as C++11 or later, stb_image keeps its failure reason in a thread_local, and
// hotlap never calls the global flag setters (stbi_set_flip_vertically_on_load, ...), so several loader
// threads may decode at once. stb_image_write's globals (flip, PNG compression level) are likewise left
// at their defaults.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#include <cstdlib>

// stb_image allocates its decoder state with malloc and reads some of it before writing it (a JPEG
// scan can name a Huffman table no DHT segment defined): with calloc such a read sees zeros, not
// whatever the heap held before, so a file decodes the same way every time and no old memory leaks
// into its pixels (found by the image fuzz target: one file decoded three ways).
#define STBI_MALLOC(size) calloc(1, size)
#define STBI_REALLOC(p, size) realloc(p, size)
#define STBI_FREE(p) free(p)
// Softimage PIC is not a format hotlap lists, and its run-length packets code 65535 pixels in a few
// bytes: left out, such a file is "not a readable image".
#define STBI_NO_PIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
