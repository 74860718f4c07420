// The hotlap binary end to end: exit codes and messages of its subcommands.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <cstdio>
#include <sys/wait.h>
#include <string>
#include <vector>

#include "apps/cli_util.h"
#include "test_util.h"

namespace {

using hotlap::test::Run;
using hotlap::test::run;
using hotlap::test::run_env;

TEST_CASE("cli: info reports backends and, without a GPU, says so plainly") {
  Run r = run("info");
  CHECK(r.status == 0);
  CHECK(r.output.find("cpu gemm:") != std::string::npos);
  CHECK(r.output.find("devices:") != std::string::npos);
}

TEST_CASE("cli: a short demo runs and prints the held-out Pearson") {
  Run r = run("demo --epochs 1 --train 64");
  CHECK(r.status == 0);
  CHECK(r.output.find("held-out Pearson") != std::string::npos);
  // The compute options every app takes: on the CPU explicitly, and on a GPU when there is one.
  Run cpu = run("demo --epochs 1 --train 64 --device cpu");
  CHECK(cpu.status == 0);
  CHECK(cpu.output.find("compute: cpu") != std::string::npos);
  Run gpu = run("demo --epochs 1 --train 64 --device cuda");
  if (hotlap::kernels::cuda_device_count() > 0) {
    CHECK(gpu.status == 0);
    CHECK(gpu.output.find("held-out Pearson") != std::string::npos);
  } else {
    CHECK(gpu.status == 1);
    CHECK(gpu.output.find("--device cuda") != std::string::npos);
  }
}

TEST_CASE("cli: HOTLAP_GEMM picks the CPU GEMM, and a bad value is one clear error") {
  Run blocked = run_env("HOTLAP_GEMM=blocked", "info");
  CHECK(blocked.status == 0);
  CHECK(blocked.output.find("cpu gemm:  blocked") != std::string::npos);
  Run bad = run_env("HOTLAP_GEMM=fastest", "info");
  CHECK(bad.status == 1);
  CHECK(bad.output.find("HOTLAP_GEMM") != std::string::npos);
}

TEST_CASE("cli: HOTLAP_CPU_ISA caps the CPU kernels' instruction set, and a bad value is one clear error") {
  Run info = run("info");
  CHECK(info.status == 0);
  CHECK(info.output.find("cpu isa:") != std::string::npos);
  CHECK(info.output.find("cpu best:") != std::string::npos);
  CHECK(info.output.find("HOTLAP_CPU_ISA=baseline|avx2|avx512") != std::string::npos);
  Run baseline = run_env("HOTLAP_CPU_ISA=baseline", "info");
  CHECK(baseline.status == 0);
  CHECK(baseline.output.find("cpu isa:   baseline") != std::string::npos);
  // Checked at start-up, whatever the command: one line naming the variable and the value.
  for (const std::string command : {"info", "demo --epochs 1 --train 64"}) {
    CAPTURE(command);
    Run bad = run_env("HOTLAP_CPU_ISA=avx1024", command);
    CHECK(bad.status == 1);
    CHECK(bad.output.find("HOTLAP_CPU_ISA=avx1024 is not an instruction-set level") != std::string::npos);
    CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
  }
}

TEST_CASE("cli: convert round-trips a torchvision file, a missing file is one line naming it") {
  const std::string tmp = std::filesystem::temp_directory_path() / ("hotlap_cli_" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  Run in = run("convert " HOTLAP_TEST_DATA_DIR "/tv_resnet50_w8_bf16.safetensors " + tmp + "/a.safetensors");
  CHECK(in.status == 0);
  CHECK(in.output.find("loaded") != std::string::npos);
  Run out = run("convert " + tmp + "/a.safetensors " + tmp + "/b.safetensors");
  CHECK(out.status == 0);
  CHECK(out.output.find("resnet50-w8") != std::string::npos);
  Run missing = run("convert " + tmp + "/nothing.safetensors " + tmp + "/c.safetensors");
  CHECK(missing.status == 1);
  CHECK(missing.output.find("nothing.safetensors") != std::string::npos);
  CHECK(std::count(missing.output.begin(), missing.output.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(tmp + "/c.safetensors"));
  std::filesystem::remove_all(tmp);
}

TEST_CASE("cli: a training run killed with SIGKILL mid-epoch resumes to the same bits") {
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 150 --size 48").status == 0);
  const std::string args = " --data " + dir.file("data") + " --protocol 60-40 --depth 18 --width 8 --epochs 4"
                           " --batch 10 --resize 40 --size 32 --optimizer sgd --lr 0.01 --deterministic";
  REQUIRE(run("train --out " + dir.file("straight") + args).status == 0);

  // Start the same run, and kill it once its first epoch is on disk (so during the second).
  const std::string killed = dir.file("killed");
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string command = std::string(HOTLAP_BINARY) + " train --out " + killed + args + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::string csv = killed + "/60-40/metrics.csv";
  for (int i = 0; i < 6000; ++i) {  // up to a minute
    std::vector<uint8_t> bytes = hotlap::test::read_bytes(csv);
    if (std::count(bytes.begin(), bytes.end(), '\n') >= 2) break;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));  // it was still running: killed mid-run, not finished
  std::vector<uint8_t> partial = hotlap::test::read_bytes(csv);
  CHECK(std::count(partial.begin(), partial.end(), '\n') < 5);

  REQUIRE(run("train --resume --out " + killed + args).status == 0);
  CHECK(hotlap::test::read_bytes(killed + "/60-40/last.safetensors") ==
        hotlap::test::read_bytes(dir.file("straight") + "/60-40/last.safetensors"));
  CHECK(hotlap::test::read_bytes(killed + "/60-40/best.safetensors") ==
        hotlap::test::read_bytes(dir.file("straight") + "/60-40/best.safetensors"));
}

TEST_CASE("cli: a run killed right after any of its file writes resumes to the files of an uninterrupted run") {
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 60 --size 48").status == 0);
  const std::string args = " --data " + dir.file("data") + " --protocol 60-40 --depth 18 --width 8 --epochs 3"
                           " --batch 10 --resize 40 --size 32 --optimizer sgd --lr 0.05 --deterministic";
  REQUIRE(run("train --out " + dir.file("straight") + args).status == 0);
  const std::string want = dir.file("straight") + "/60-40/";
  // Every write is a rename (nn/atomic_file.h): stop the run right after the first, the second, ...
  // until one finishes; each stopped run must resume to the same model, best model, predictions and
  // metrics as the run that was never stopped.
  int stopped = 0;
  for (int n = 1; n <= 60; ++n) {
    const std::string out = dir.file("stop" + std::to_string(n)), got = out + "/60-40/";
    const Run first = run_env("HOTLAP_TEST_EXIT_AFTER_RENAMES=" + std::to_string(n), "train --out " + out + args);
    if (first.status == 0) break;  // n is past the run's last write
    INFO("stopped after write ", n, ": ", first.output);
    REQUIRE(first.status == 137);
    ++stopped;
    const Run resumed = run("train --resume --out " + out + args);
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK(hotlap::test::read_bytes(got + "last.safetensors") == hotlap::test::read_bytes(want + "last.safetensors"));
    CHECK(hotlap::test::read_bytes(got + "best.safetensors") == hotlap::test::read_bytes(want + "best.safetensors"));
    CHECK(hotlap::test::read_bytes(got + "predictions.csv") == hotlap::test::read_bytes(want + "predictions.csv"));
    CHECK(hotlap::test::metrics_without_speed(got + "metrics.csv") ==
          hotlap::test::metrics_without_speed(want + "metrics.csv"));
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(got, ec))
      CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
    std::filesystem::remove_all(out);
  }
  CHECK(stopped >= 3 * 4);  // at least best, predictions, metrics and last in each of the 3 epochs
}

TEST_CASE("cli: bad arguments give one clear message and a non-zero exit") {
  CHECK(run("").status != 0);
  Run unknown = run("frobnicate");
  CHECK(unknown.status != 0);
  Run bad = run("demo --epochs 0");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("--epochs") != std::string::npos);
}

}  // namespace

TEST_CASE("cli: bench with --precision bf16 runs on the cpu (emulated) and reports bf16") {
  const Run r = run("bench --device cpu --precision bf16 --depth 18 --batch 2 --size 64 --outputs 1 "
                    "--warmup 0 --iters 1 --mode train");
  CAPTURE(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("\"precision\":\"bf16\"") != std::string::npos);
}
