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

#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
