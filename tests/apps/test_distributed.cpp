// hotlap train on several ranks (mpirun -np 2, docs/distributed.md): one run folder written once by
// rank 0, the test predictions of every image, the same files from the same run, a resume on another
// number of ranks, and a job that ends, with a message, when a rank cannot go on. These cases start
// mpirun themselves; without MPI (a build without it, or no mpirun) they say so and ctest reports
// them as skipped.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/cli_util.h"
#include "test_util.h"

using hotlap::test::read_text;
using hotlap::test::Run;
using hotlap::test::run;

namespace {

// Two processes of one thread each on any machine; Open MPI's settings by environment (more ranks
// than cores; as root in CI). Other MPIs ignore them.
const char* kRanksEnv =
    "OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1 "
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";

bool mpi_available() {
  static const bool available = run("info").output.find("mpi:       not compiled in") == std::string::npos &&
                                std::system("command -v mpirun > /dev/null 2>&1") == 0;
  return available;
}

#define HOTLAP_SKIP_WITHOUT_MPI()                                                          \
  do {                                                                                     \
    if (!mpi_available()) {                                                                \
      MESSAGE("MPI test skipped: this hotlap has no MPI, or mpirun is not installed");     \
      return;                                                                              \
    }                                                                                      \
  } while (false)

Run run_ranks(int ranks, const std::string& args) {
  return hotlap::test::run_env(std::string(kRanksEnv) + " mpirun -np " + std::to_string(ranks), args);
}

int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

const char* kSmallRun = "--depth 18 --width 8 --batch 8 --resize 40 --size 32 --fold 1 --deterministic";

}  // namespace

TEST_CASE("mpi train: two ranks write one run folder once, predict every test image, and resume on one rank") {
  HOTLAP_SKIP_WITHOUT_MPI();
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 120 --size 48").status == 0);
  const std::string out = dir.file("run");
  const Run two = run_ranks(2, "train --data " + dir.file("data") + " --out " + out + " --epochs 2 " + kSmallRun);
  INFO(two.output);
  REQUIRE(two.status == 0);
  // Rank 0 alone speaks and writes: each line once.
  CHECK(count(two.output, "epoch 2/2  loss") == 1);
  CHECK(count(two.output, "trained 1 fold") == 1);
  const std::string log = read_text(out + "/fold1/log.txt");
  CHECK(count(log, "epoch 1/2  loss") == 1);
  CHECK(count(log, "\n") == 4);  // the split, the model, two epochs
  // Every test image's prediction, gathered from both ranks (fold 1 of 120: 24 test images).
  CHECK(count(read_text(out + "/fold1/predictions.csv"), "\n") == 1 + 24);
  const std::string metrics = read_text(out + "/fold1/metrics.csv");
  CHECK(count(metrics, "\n") == 1 + 2);
  // A checkpoint written by two ranks resumes on one: its first two epochs stay as they were.
  const Run one = run("train --data " + dir.file("data") + " --out " + out + " --epochs 3 --resume " + kSmallRun);
  INFO(one.output);
  REQUIRE(one.status == 0);
  const std::string resumed = read_text(out + "/fold1/metrics.csv");
  CHECK(count(resumed, "\n") == 1 + 3);
  CHECK(resumed.substr(0, metrics.size()) == metrics);
}

TEST_CASE("mpi train: the same two-rank run twice gives the same files, bit for bit") {
  HOTLAP_SKIP_WITHOUT_MPI();
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 100 --size 48").status == 0);
  for (const char* name : {"a", "b"}) {
    const Run r = run_ranks(2, "train --data " + dir.file("data") + " --out " + dir.file(name) + " --epochs 2 " +
                                   kSmallRun);
    INFO(r.output);
    REQUIRE(r.status == 0);
  }
  using hotlap::test::metrics_without_speed;
  using hotlap::test::read_bytes;
  CHECK(metrics_without_speed(dir.file("a/fold1/metrics.csv")) == metrics_without_speed(dir.file("b/fold1/metrics.csv")));
  CHECK(read_bytes(dir.file("a/fold1/predictions.csv")) == read_bytes(dir.file("b/fold1/predictions.csv")));
  CHECK(read_bytes(dir.file("a/fold1/last.safetensors")) == read_bytes(dir.file("b/fold1/last.safetensors")));
  // With the batch norm's statistics summed over the ranks: another run (tests/nn/test_collective.cpp
  // holds it to one process's), recorded in config.json.
  const Run sync = run_ranks(2, "train --data " + dir.file("data") + " --out " + dir.file("sync") + " --epochs 2 --sync-bn " +
                                    kSmallRun);
  INFO(sync.output);
  REQUIRE(sync.status == 0);
  CHECK(read_text(dir.file("sync/fold1/config.json")).find("\"sync_bn\": true") != std::string::npos);
  CHECK(metrics_without_speed(dir.file("sync/fold1/metrics.csv")) != metrics_without_speed(dir.file("a/fold1/metrics.csv")));
}

TEST_CASE("mpi train: a batch the ranks cannot share and a one-process command are refused, a killed rank ends the job") {
  HOTLAP_SKIP_WITHOUT_MPI();
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 100 --size 48").status == 0);
  const Run odd = run_ranks(2, "train --data " + dir.file("data") + " --out " + dir.file("odd") +
                                   " --epochs 1 --depth 18 --width 8 --batch 7 --resize 40 --size 32 --fold 1");
  CHECK(odd.status != 0);
  CHECK(odd.output.find("--batch 7 is the global batch, shared by 2 ranks") != std::string::npos);
  // A command made for one process is refused, before it writes anything.
  const Run synth = run_ranks(2, "synth --out " + dir.file("twice") + " --n 20 --size 48");
  CHECK(synth.status != 0);
  CHECK(synth.output.find("synth runs as one process, not as one of 2 started by mpirun") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("twice")));
  // Rank 1 is killed a second into a run of hundreds of seconds: mpirun ends the job, non-zero.
  const std::string train = std::string(HOTLAP_BINARY) + " train --data " + dir.file("data") + " --out " +
                            dir.file("killed") + " --epochs 5000 --depth 18 --width 8 --batch 8 --resize 40 --size 32 --fold 1";
  const std::string command = std::string(kRanksEnv) + " mpirun -np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then "
                              "(sleep 1; kill -9 $$) & fi; exec " + train + "' > /dev/null 2>&1";
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system(command.c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(seconds < 60);
}

TEST_CASE("mpi train: a rank that stops answering ends the job after HOTLAP_COMM_TIMEOUT, naming the collective") {
  HOTLAP_SKIP_WITHOUT_MPI();
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 100 --size 48").status == 0);
  // Rank 1 is stopped (SIGSTOP: alive, silent) two seconds in, well after MPI_Init (the one call
  // without a deadline); rank 0 waits 3 s in its next collective.
  const std::string train = std::string(HOTLAP_BINARY) + " train --data " + dir.file("data") + " --out " +
                            dir.file("stopped") + " --epochs 5000 --depth 18 --width 8 --batch 8 --resize 40 --size 32 --fold 1";
  const std::string log = dir.file("log.txt");
  const std::string command = std::string(kRanksEnv) + " HOTLAP_COMM_TIMEOUT=3 mpirun -np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; "
                              "then (sleep 2; kill -STOP $$) & fi; exec " + train + "' > " + log + " 2>&1";
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system(command.c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string output = read_text(log);
  INFO(output);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(seconds < 60);
  CHECK(output.find("rank 0 of 2 waited 3 s in") != std::string::npos);
  CHECK(output.find("for the other ranks") != std::string::npos);
}
