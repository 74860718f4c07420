// Collectives between the processes of one job: what data-parallel training needs to keep N copies of
// a model identical. Each process (a "rank") trains on its slice of every batch; after backward the
// ranks sum their gradients (all-reduce), so every rank takes the same optimizer step.
//
//   mpirun -np 2 hotlap train ...     two ranks; without mpirun, one, as ever
//
// The processes are started and connected by MPI (Open MPI from Debian, or any MPI: design rule 9);
// hotlap calls it only here. A process that MPI did not start (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or
// PMIX_RANK in its environment) is a world of one and never initialises MPI, so the same binary runs
// alone without an MPI runtime. A build without MPI runs as a world of one, and refuses to run as a
// rank of a larger job (kernels/comm_none.cpp).
//
// Every call here is collective: all ranks make the same calls in the same order with the same
// sizes. Buffers are host memory. A collective that waits longer than the timeout (a rank that died
// or stopped calling) ends the whole job with a message naming the collective, never a silent hang.
//
// Test: hotlap_kernel_tests -tc='comm*' (one rank) and the "mpi:" tests (two ranks through mpirun).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda_memory.h"

namespace hotlap::kernels::comm {

struct World {
  int rank = 0;        // 0 .. size-1; rank 0 writes the files
  int size = 1;
  int local_rank = 0;  // among the ranks on this host: which GPU this rank takes
};

bool mpi_compiled();  // built with MPI
// "Open MPI 4.1.4" (the library's own words), or "not compiled in".
std::string mpi_version();

// Joins the job when MPI started this process (else a world of one). Idempotent; the first call
// decides. Throws Error when the environment names a job of more than one process and this build
// has no MPI.
const World& init();
// The world init() joined (init() first if it has not run).
const World& world();
inline bool is_root() { return world().rank == 0; }
// Whether init() has joined a job of more than one rank (never starts one itself).
bool in_job();

// The collectives run on one of two channels (two MPI communicators over the same ranks). The main
// one is the training thread's. The gradients' one carries the all-reduce of gradient buckets,
// which data-parallel training runs on a thread of its own while backward goes on, beside what the
// training thread sends meanwhile (--sync-bn's statistics). On each channel the calls come from one
// thread at a time, in the same order on every rank; the two channels are independent of each other.
enum class Channel { main, gradients };
// Whether a second thread may use the gradients' channel while the main thread uses the main one
// (MPI granted MPI_THREAD_MULTIPLE). False in a world of one and in a build without MPI.
bool concurrent_channels();

// In-place sums over all ranks, in an order that depends on the world size only (the same bits on
// every rank, and from run to run). A world of one returns at once.
void allreduce_sum(float* data, int64_t n, const char* what, Channel channel = Channel::main);
void allreduce_sum(double* data, int64_t n, const char* what, Channel channel = Channel::main);
// `bytes` bytes from rank `root` into every other rank's buffer.
void broadcast(void* data, int64_t bytes, int root, const char* what);
// Every rank's `mine` (any length, even 0), concatenated in rank order, on every rank.
std::vector<float> allgather(const std::vector<float>& mine, const char* what);
void barrier(const char* what);

// Ends every rank of the job at once (MPI_Abort), after `message` on stderr. For an error on one
// rank that the others, waiting in a collective, would never hear of. A world of one exits.
[[noreturn]] void abort_job(const std::string& message, int code);

// ---- the GPUs' all-reduce: NCCL (from the CUDA toolkit), compiled in with CUDA ---------------------
// Run at one rank on an H200, not yet across GPUs (docs/gpu.md). The ranks exchange NCCL's unique id through MPI once, on the
// first call.
bool nccl_compiled();
std::string nccl_version();  // "NCCL 2.27.7", or "not compiled in"
// In-place mean over the ranks of n floats in this rank's GPU memory (NCCL's ncclAvg), queued on
// `stream` (kernels/cuda_memory.h: the comm stream, or the compute stream) behind the work already
// there. The order of additions is NCCL's (its ring or tree); every rank receives the same values.
// A world of one runs it too (a one-rank communicator), so that one GPU checks the path.
void allreduce_mean_device(float* data, int64_t n, cuda::Stream stream, const char* what);

// Leaves the job (MPI_Finalize) at exit; a no-op for a world of one.
void finalize();

}  // namespace hotlap::kernels::comm
