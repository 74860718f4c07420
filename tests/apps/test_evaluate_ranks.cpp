// The test pass on two ranks (ctest runs the "mpi:" cases through mpirun -np 2; alone they are
// skipped): each rank predicts its slice of every test batch, and every rank gathers one process's
// predictions, in the loader's order, and its metrics.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "apps/data/loader.h"
#include "apps/data/scut.h"
#include "apps/data/synth.h"
#include "apps/train/train_step.h"
#include "kernels/comm.h"
#include "nn/runtime/random.h"
#include "resnet/resnet.h"
#include "test_util.h"

using namespace hotlap;
namespace comm = hotlap::kernels::comm;

TEST_CASE("mpi: evaluation shared by two ranks gives one process's predictions, in order, and its metrics") {
  HOTLAP_SKIP_WITHOUT_RANKS();
  // Rank 0 draws a data set; every rank reads it (its folder's name, broadcast).
  std::unique_ptr<test::TempDir> dir;
  std::vector<char> folder(512, '\0');
  if (comm::is_root()) {
    dir = std::make_unique<test::TempDir>();
    const std::string path = dir->file("data");
    SynthOptions options;
    options.out_dir = path;
    options.count = 50;
    options.size = 48;
    write_synthetic_scut(options);
    REQUIRE(path.size() < folder.size());
    std::copy(path.begin(), path.end(), folder.begin());
  }
  comm::broadcast(folder.data(), static_cast<int64_t>(folder.size()), 0, "test");
  const Split split = load_scut_split(folder.data(), Protocol::five_fold, 1);
  REQUIRE(split.test.size() == 10);

  manual_seed(2);
  auto model = resnet::make_resnet({18, 1, 8});
  LoaderConfig config;
  config.batch_size = 4;  // 10 test images: batches of 4, 4 and 2, each shared by the two ranks
  config.shuffle = false;
  config.augment = {40, 32, false, false};
  Loader whole(split.test, config);
  config.shard = comm::world().rank;
  config.shards = comm::world().size;
  Loader mine(split.test, config);
  const auto no_stop = [] {};
  // The same model on every rank (same seed); one process's pass, then the shared one.
  const Evaluation alone = evaluate(*model, whole, Device::cpu, no_stop);
  const Evaluation shared = evaluate(*model, mine, Device::cpu, no_stop);
  REQUIRE(shared.predicted.size() == alone.predicted.size());
  CHECK(shared.truth == alone.truth);  // the order: the scores in file order
  CHECK(test::max_rel_error(shared.predicted, alone.predicted) < 1e-5);
  CHECK(shared.metrics.pearson == doctest::Approx(alone.metrics.pearson).epsilon(1e-5));
  CHECK(shared.metrics.mae == doctest::Approx(alone.metrics.mae).epsilon(1e-5));
  CHECK(shared.metrics.count == alone.metrics.count);
  comm::barrier("test");  // rank 0 removes the data set only once every rank has read it
}
