// Atomic file replacement: a reader sees either the old file or the complete new one, never a torn
// half-written file, even if the process is killed or the machine loses power mid-write.
//
// The recipe: write a temporary file in the same directory (same filesystem, so rename is atomic),
// fsync it so its bytes are on disk before its name is, rename it over the final name, then fsync
// the directory so the rename itself is durable. On any failure the temporary file is removed and
// an existing file at `path` is left untouched.
//
// For tests of what a kill leaves behind: with HOTLAP_TEST_EXIT_AFTER_RENAMES=N in the environment,
// the process ends (exit status 137, as SIGKILL would) right after its N-th completed rename.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <span>
#include <string>

namespace hotlap {

// Streams the file's contents through `writer`. Throws hotlap::Error naming `path` (and strerror
// where the system said why) if the file cannot be created, written, synced or renamed, or if
// `writer` throws (its message is kept).
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& writer);

// The same for bytes already in memory.
void write_file_atomically(const std::string& path, std::span<const uint8_t> bytes);

// Removes the temporary files that write_file_atomically left in `folder` when its process was
// killed mid-write ("NAME.tmp.PID.N", possibly as large as a checkpoint): only those whose PID is
// no longer a running process, so a writer still at work keeps its file. Returns how many it
// removed; a folder that does not exist has none.
size_t remove_stale_temporaries(const std::string& folder);

}  // namespace hotlap
