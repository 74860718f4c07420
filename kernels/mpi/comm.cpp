// The collectives on MPI (kernels/comm.h). Every call is non-blocking under the hood (MPI_I*) and
// waited for with a deadline, so that a rank that died or stopped calling ends the job with a message
// instead of a hang.
//
// The sum: MPI_Allreduce would do, but the standard leaves its order of additions (and so the bits)
// to the library and the message size. hotlap's is written out instead, as the reduce-scatter +
// all-gather that ring all-reduce also is: the buffer is cut into `size` chunks; each rank receives
// chunk r from every rank (alltoall), sums them in rank order 0, 1, ..., size-1, and every rank
// gathers the summed chunks (allgather). Each rank sends and receives 2 (size-1)/size of the buffer,
// as in a ring, and every rank ends with the same bits, whatever the MPI.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kernels/comm.h"
#include "kernels/comm_environment.h"
#include "kernels/error.h"

namespace hotlap::kernels::comm {

namespace {

void check(int status, const char* call, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw_error(call, " failed in ", what, ": ", std::string(text, static_cast<size_t>(length)));
}

// Waits for `request` until the timeout, then ends the job naming the collective.
void wait(MPI_Request& request, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  const double timeout = collective_timeout_seconds();
  for (int spins = 0;; ++spins) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test", what);
    if (done) return;
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout) {
      char message[512];
      std::snprintf(message, sizeof message,
                    "hotlap: error: rank %d of %d waited %.0f s in %s for the other ranks (one died or "
                    "stopped calling); ending the job (HOTLAP_COMM_TIMEOUT sets the wait)",
                    world().rank, world().size, waited, what);
      abort_job(message, 1);
    }
  }
}

// Chunk r of n elements cut into `size` near-equal chunks: [offset(r), offset(r + 1)).
int64_t offset(int64_t n, int size, int r) { return n * r / size; }

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

int count_of(int64_t n, const char* what) {
  HOTLAP_CHECK(n >= 0 && n <= INT32_MAX, what, ": ", n, " elements are more than one MPI call takes");
  return static_cast<int>(n);
}

// The channels' communicators: the world's, and its duplicate for the gradients (init() makes it).
MPI_Comm g_gradients = MPI_COMM_NULL;
MPI_Comm communicator(Channel channel) {
  return channel == Channel::gradients && g_gradients != MPI_COMM_NULL ? g_gradients : MPI_COMM_WORLD;
}

template <typename T>
void sum_all(T* data, int64_t n, const char* what, MPI_Comm comm) {
  const World& w = world();
  if (w.size == 1 || n == 0) return;
  const int size = w.size, me = w.rank;
  const int64_t mine = offset(n, size, me + 1) - offset(n, size, me);
  // Receive chunk `me` of every rank, rank by rank.
  std::vector<T> gathered(static_cast<size_t>(mine * size));
  std::vector<int> send_counts(size), send_offsets(size), recv_counts(size), recv_offsets(size);
  for (int r = 0; r < size; ++r) {
    send_counts[r] = count_of(offset(n, size, r + 1) - offset(n, size, r), what);
    send_offsets[r] = count_of(offset(n, size, r), what);
    recv_counts[r] = count_of(mine, what);
    recv_offsets[r] = count_of(mine * r, what);
  }
  MPI_Request request;
  check(MPI_Ialltoallv(data, send_counts.data(), send_offsets.data(), mpi_type<T>(), gathered.data(),
                       recv_counts.data(), recv_offsets.data(), mpi_type<T>(), comm, &request),
        "MPI_Ialltoallv", what);
  wait(request, what);
  // The sum of chunk `me`, in rank order.
  std::vector<T> sum(static_cast<size_t>(mine));
  for (int64_t i = 0; i < mine; ++i) {
    T s = gathered[static_cast<size_t>(i)];
    for (int r = 1; r < size; ++r) s += gathered[static_cast<size_t>(r * mine + i)];
    sum[static_cast<size_t>(i)] = s;
  }
  // Every rank's summed chunk, into place.
  check(MPI_Iallgatherv(sum.data(), count_of(mine, what), mpi_type<T>(), data, send_counts.data(),
                        send_offsets.data(), mpi_type<T>(), comm, &request),
        "MPI_Iallgatherv", what);
  wait(request, what);
}

}  // namespace

bool mpi_compiled() { return true; }

std::string mpi_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, static_cast<size_t>(length));
  v = v.substr(0, v.find_first_of(",\n"));  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  return v;
}

namespace {
bool g_in_job = false;      // set once init() has joined a job of several ranks
bool g_concurrent = false;  // MPI granted MPI_THREAD_MULTIPLE
}  // namespace

bool in_job() { return g_in_job; }
bool concurrent_channels() { return init().size > 1 && g_concurrent; }

const World& init() {
  static const World w = [] {
    World result;
    if (launcher_world_size() <= 1) return result;  // not started by a launcher: alone, no MPI
    int provided = 0;
    // The training thread calls MPI on the main channel and, while backward runs, a thread of the
    // gradients' all-reduce on the other (Channel): that needs MPI_THREAD_MULTIPLE. Granted less,
    // the all-reduce runs on the training thread (concurrent_channels() says which).
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread", "joining the job");
    g_concurrent = provided >= MPI_THREAD_MULTIPLE;
    MPI_Comm_rank(MPI_COMM_WORLD, &result.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &result.size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, result.rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &result.local_rank);
    MPI_Comm_free(&local);
    // An error on one rank ends the job rather than leaving the others waiting (abort_job).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &g_gradients), "MPI_Comm_dup", "the gradients' channel");
    // A rank that returns from main without MPI_Finalize counts as failed to mpirun.
    std::atexit([] { finalize(); });
    g_in_job = result.size > 1;
    return result;
  }();
  return w;
}

const World& world() { return init(); }

void allreduce_sum(float* data, int64_t n, const char* what, Channel channel) {
  sum_all(data, n, what, communicator(channel));
}
void allreduce_sum(double* data, int64_t n, const char* what, Channel channel) {
  sum_all(data, n, what, communicator(channel));
}

void broadcast(void* data, int64_t bytes, int root, const char* what) {
  if (world().size == 1) return;
  MPI_Request request;
  check(MPI_Ibcast(data, count_of(bytes, what), MPI_BYTE, root, MPI_COMM_WORLD, &request), "MPI_Ibcast", what);
  wait(request, what);
}

std::vector<float> allgather(const std::vector<float>& mine, const char* what) {
  const World& w = world();
  if (w.size == 1) return mine;
  std::vector<int> counts(static_cast<size_t>(w.size)), offsets(static_cast<size_t>(w.size));
  int count = count_of(static_cast<int64_t>(mine.size()), what);
  MPI_Request request;
  check(MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, &request), "MPI_Iallgather",
        what);
  wait(request, what);
  int64_t total = 0;
  for (int r = 0; r < w.size; ++r) {
    offsets[static_cast<size_t>(r)] = count_of(total, what);
    total += counts[static_cast<size_t>(r)];
  }
  std::vector<float> all(static_cast<size_t>(total));
  check(MPI_Iallgatherv(mine.data(), count, MPI_FLOAT, all.data(), counts.data(), offsets.data(), MPI_FLOAT,
                        MPI_COMM_WORLD, &request),
        "MPI_Iallgatherv", what);
  wait(request, what);
  return all;
}

void barrier(const char* what) {
  if (world().size == 1) return;
  MPI_Request request;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier", what);
  wait(request, what);
}

[[noreturn]] void abort_job(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && world().size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

void finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace hotlap::kernels::comm
