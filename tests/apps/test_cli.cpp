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
#include "kernels/gemm.h"
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
  // No GPU here: the reason is the machine's (no driver, or none built in), never a version riddle.
  if (r.output.find("CUDA driver: none") != std::string::npos)
    CHECK(r.output.find("no CUDA device (no NVIDIA driver is installed)") != std::string::npos);
  CHECK(r.output.find("insufficient") == std::string::npos);
}

TEST_CASE("cli: HOTLAP_REFERENCE runs the readable kernels, bench --kernels says which ran, a bad value is one error") {
  const Run reference = run_env("HOTLAP_REFERENCE=1", "bench --depth 18 --mode infer --batch 1 --size 64 --iters 1 "
                                                      "--warmup 0 --kernels");
  CHECK(reference.status == 0);
  CHECK(reference.output.find("\"reference\":true") != std::string::npos);
  CHECK(reference.output.find("forward: direct") != std::string::npos);
  CHECK(reference.output.find("winograd") == std::string::npos);
  const Run chosen = run("bench --depth 18 --mode infer --batch 1 --size 64 --iters 1 --warmup 0 --kernels");
  CHECK(chosen.status == 0);
  CHECK(chosen.output.find("\"reference\":false") != std::string::npos);
  CHECK(chosen.output.find("forward: direct") == std::string::npos);
  const Run bad = run_env("HOTLAP_REFERENCE=yes", "info");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("HOTLAP_REFERENCE=yes is neither 1") != std::string::npos);
}

TEST_CASE("cli: ops lists every op of the op table with what runs it, in 80 columns") {
  Run r = run("ops");
  CHECK(r.status == 0);
  std::vector<std::string> lines;
  for (size_t start = 0; start < r.output.size();) {
    const size_t end = std::min(r.output.find('\n', start), r.output.size());
    lines.push_back(r.output.substr(start, end - start));
    start = end + 1;
  }
  for (const std::string& line : lines) {
    CAPTURE(line);
    CHECK(line.size() <= 80);
  }
  // One line per op, its cells as dispatch::supports says: the CPU convolution is hotlap's own in
  // fp32 and emulated in bf16; the face detector's PReLU exists on the CPU in fp32 only.
  auto line_of = [&](const std::string& op) {
    for (const std::string& line : lines)
      if (line.rfind(op + " ", 0) == 0) return line;
    return std::string();
  };
  CHECK(line_of("conv2d").find("own    emu    own    own    lib    lib") != std::string::npos);
  CHECK(line_of("prelu").find("own    -      -      -      -      -") != std::string::npos);
  for (const char* op : {"batch_norm", "relu", "silu", "add_relu", "max_pool2d", "linear", "mse_loss", "softmax"})
    CHECK_MESSAGE(!line_of(op).empty(), op);
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
  Run automatic = run_env("HOTLAP_GEMM=auto", "info");  // the default, spelled out
  CHECK(automatic.status == 0);
  Run bad = run_env("HOTLAP_GEMM=fastest", "info");
  CHECK(bad.status == 1);
  CHECK(bad.output.find("HOTLAP_GEMM") != std::string::npos);
  // OpenBLAS chooses its own kernels (this process's choice is the command's), and info names them.
  if (!hotlap::kernels::cpu::openblas_core().empty()) {
    Run info = run("info");
    CHECK(info.output.find("(openblas compiled in, " + hotlap::kernels::cpu::openblas_core() + " kernels)") !=
          std::string::npos);
    // An OpenBLAS that runs kernels below the CPU's level (it does not know the CPU) is explained,
    // with the setting that fixes it; one that runs the right ones is not.
    namespace cpu = hotlap::kernels::cpu;
    const bool below = cpu::openblas_below(cpu::openblas_core(), cpu::active_cpu_isa());
    CHECK((info.output.find("kernels are below the") != std::string::npos) == below);
    CHECK((info.output.find("OPENBLAS_CORETYPE=") != std::string::npos) == below);
    if (below) CHECK(info.output.find("cpu gemm:  blocked") != std::string::npos);
    Run capped = run_env("HOTLAP_CPU_ISA=baseline", "info");  // nothing is below the baseline
    CHECK(capped.output.find("kernels are below the") == std::string::npos);
    CHECK(capped.output.find("cpu gemm:  openblas") != std::string::npos);
  }
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

// Starts `hotlap ARGS` in the background, its output into `log`; returns its pid.
pid_t start_hotlap(const std::string& args, const std::string& log) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string command = "exec " + std::string(HOTLAP_BINARY) + " " + args + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits (up to a minute) until `path` has at least `lines` lines.
void wait_for_lines(const std::string& path, long lines) {
  for (int i = 0; i < 12000; ++i) {
    const std::vector<uint8_t> bytes = hotlap::test::read_bytes(path);
    if (std::count(bytes.begin(), bytes.end(), '\n') >= lines) return;
    usleep(5000);
  }
}

std::string text_of(const std::string& path) {
  const std::vector<uint8_t> bytes = hotlap::test::read_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

// A small deterministic training of `epochs` epochs, run once to the end into DIR/straight: the
// reference that a stopped and resumed run must equal. Returns the arguments after --out.
std::string straight_run(const hotlap::test::TempDir& dir, int epochs) {
  REQUIRE(run("synth --out " + dir.file("data") + " --n 150 --size 48").status == 0);
  const std::string args = " --data " + dir.file("data") + " --protocol 60-40 --depth 18 --width 8 --epochs " +
                           std::to_string(epochs) +
                           " --batch 10 --resize 40 --size 32 --optimizer sgd --lr 0.01 --deterministic --compute-threads 1";
  REQUIRE(run("train --out " + dir.file("straight") + args).status == 0);
  return args;
}

TEST_CASE("cli: a training run killed with SIGKILL mid-epoch resumes to the same bits") {
  hotlap::test::TempDir dir;
  const std::string args = straight_run(dir, 4);

  // Start the same run, and kill it once its first epoch is on disk (so during the second).
  const std::string killed = dir.file("killed");
  const pid_t pid = start_hotlap("train --out " + killed + args, "/dev/null");
  const std::string csv = killed + "/60-40/metrics.csv";
  wait_for_lines(csv, 2);
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
                           " --batch 10 --resize 40 --size 32 --optimizer sgd --lr 0.05 --deterministic --compute-threads 1";
  REQUIRE(run("train --out " + dir.file("straight") + args).status == 0);
  const std::string want = dir.file("straight") + "/60-40/";
  // Every write is a rename (nn/files/atomic_file.h): stop the run right after the first, the second, ...
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

TEST_CASE("cli: train refuses a folder that holds a run unless told --resume or --overwrite") {
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 60 --size 48").status == 0);
  const std::string args = " --data " + dir.file("data") + " --protocol 60-40 --depth 18 --width 8 --epochs 2"
                           " --batch 10 --resize 40 --size 32 --out " + dir.file("run");
  REQUIRE(run("train" + args).status == 0);
  const std::string best = dir.file("run") + "/60-40/best.safetensors";
  const std::vector<uint8_t> before = hotlap::test::read_bytes(best);

  const Run again = run("train" + args + " --lr 0.02");
  INFO(again.output);
  CHECK(again.status == 1);
  CHECK(again.output.find("already holds a run (2 epochs recorded)") != std::string::npos);
  CHECK(again.output.find("--resume") != std::string::npos);
  CHECK(again.output.find("--overwrite") != std::string::npos);
  CHECK(hotlap::test::read_bytes(best) == before);

  CHECK(run("train" + args + " --resume --overwrite").status != 0);
  const Run replaced = run("train" + args + " --lr 0.02 --overwrite");
  INFO(replaced.output);
  CHECK(replaced.status == 0);
  CHECK(hotlap::test::read_bytes(best) != before);
  const std::string log = text_of(dir.file("run") + "/60-40/log.txt");
  CHECK(std::count(log.begin(), log.end(), '\n') == 4);  // a new log: its two first lines and 2 epochs

  // synth does not write over a folder that holds something either.
  const Run synth_again = run("synth --out " + dir.file("data") + " --n 60 --size 48");
  CHECK(synth_again.status == 1);
  CHECK(synth_again.output.find("is not empty") != std::string::npos);
  CHECK(run("synth --out " + dir.file("data") + " --n 60 --size 48 --overwrite").status == 0);
}

TEST_CASE("cli: a corrupt image in either split stops train before the first epoch, naming it") {
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 60 --size 48").status == 0);
  const std::string args = " --data " + dir.file("data") + " --protocol 60-40 --depth 18 --width 8 --epochs 1"
                           " --batch 10 --resize 40 --size 32";
  // The last test image of the 60/40 split: found now, not by the evaluation after an epoch.
  const std::string test_list = text_of(dir.file("data") + "/train_test_files/split_of_60%training and 40%testing/test.txt");
  const std::string last_line = test_list.substr(test_list.rfind('\n', test_list.size() - 2) + 1);
  const std::string victim = dir.file("data") + "/Images/" + last_line.substr(0, last_line.find(' '));
  std::filesystem::resize_file(victim, 300);
  const Run r = run("train --out " + dir.file("run") + args);
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("1 of 60 images cannot be loaded") != std::string::npos);
  CHECK(r.output.find(victim + ": truncated JPEG") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("run") + "/60-40/metrics.csv"));
  const Run skipped = run("train --skip-bad-labels --out " + dir.file("run2") + args);
  INFO(skipped.output);
  CHECK(skipped.status == 0);
  CHECK(skipped.output.find("left out 1 of 60 images") != std::string::npos);
  CHECK(skipped.output.find("36 train, 23 test") != std::string::npos);  // the split as trained, without it
}

TEST_CASE("cli: a network too large for the memory is an error that names the network") {
  hotlap::test::TempDir dir;
  REQUIRE(run("synth --out " + dir.file("data") + " --n 60 --size 48").status == 0);
  // ResNet-101 at width 1024 holds about 11 billion parameters; 3 GB of address space cannot.
  const Run r = run_env("ulimit -v 3000000;", "train --device cpu --data " + dir.file("data") + " --out " +
                                                  dir.file("run") + " --depth 101 --width 1024 --epochs 1");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("out of memory building a ResNet-101 of width 1024") != std::string::npos);
  CHECK(r.output.find("batch") == std::string::npos);  // not a batch-size problem
}

TEST_CASE("cli: Ctrl-C or SIGTERM stops a training between steps, locked, consistent, and says how to resume") {
  hotlap::test::TempDir dir;
  const std::string args = straight_run(dir, 40);

  for (const int signal : {SIGINT, SIGTERM}) {
    const std::string out = dir.file(signal == SIGINT ? "int" : "term"), log = out + ".log";
    const pid_t pid = start_hotlap("train --out " + out + args, log);
    wait_for_lines(out + "/60-40/metrics.csv", 3);  // two epochs done, 38 to go
    if (signal == SIGINT) {  // meanwhile, nobody else writes the folder
      const Run second = run("train --resume --out " + out + args);
      INFO(second.output);
      CHECK(second.status == 1);
      CHECK(second.output.find("another hotlap train (process " + std::to_string(pid) + ") is writing") !=
            std::string::npos);
    }
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string said = text_of(log);
    INFO(said);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 128 + signal);
    CHECK(said.find(signal == SIGINT ? "stopped by SIGINT (Ctrl-C)" : "stopped by SIGTERM") != std::string::npos);
    const size_t hint = said.find("continue with: ");
    REQUIRE(hint != std::string::npos);
    std::string command = said.substr(hint + 15);
    command = command.substr(0, command.find('\n'));
    CHECK(command.find(" --resume") != std::string::npos);
    const std::string metrics = text_of(out + "/60-40/metrics.csv");
    CHECK(std::count(metrics.begin(), metrics.end(), '\n') < 41);  // stopped before the end
    for (const auto& entry : std::filesystem::directory_iterator(out + "/60-40"))
      CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
    if (signal != SIGINT) continue;
    // The printed command, as a user would paste it, finishes the run as if it had not stopped.
    FILE* pipe = popen((command + " > /dev/null 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    CHECK(pclose(pipe) == 0);
    CHECK(hotlap::test::read_bytes(out + "/60-40/last.safetensors") ==
          hotlap::test::read_bytes(dir.file("straight") + "/60-40/last.safetensors"));
    CHECK(hotlap::test::read_bytes(out + "/60-40/best.safetensors") ==
          hotlap::test::read_bytes(dir.file("straight") + "/60-40/best.safetensors"));
  }
}

TEST_CASE("cli: bad arguments give one clear message and a non-zero exit") {
  CHECK(run("").status != 0);
  Run unknown = run("frobnicate");
  CHECK(unknown.status != 0);
  Run bad = run("demo --epochs 0");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("--epochs") != std::string::npos);
}

TEST_CASE("cli: a seed outside 0..2^64-1 and conflicting lengths are refused before any work") {
  for (const char* seed : {"-1", "18446744073709551616", "1e3", "0x10"}) {
    const Run r = run(std::string("synth --out /nonexistent/never --n 10 --seed ") + seed);
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("--seed") != std::string::npos);
    CHECK(r.output.find("wrote") == std::string::npos);
  }
  const Run both = run("train --data /nonexistent --out /nonexistent/run --epochs 2 --iterations 3");
  CHECK(both.status != 0);
  CHECK(both.output.find("--epochs excludes --iterations") != std::string::npos);
  CHECK(run("train --data /nonexistent --out /nonexistent/run --epochs 0").status != 0);
}

TEST_CASE("cli: GPU-only choices on the cpu are said to change nothing") {
  const Run r = run("bench --device cpu --precision tf32 --conv cudnn --depth 18 --mode infer --batch 1 --size 32 "
                    "--outputs 1 --warmup 0 --iters 1");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("--precision tf32 is for GPU tensor cores") != std::string::npos);
  CHECK(r.output.find("--conv cudnn chooses a GPU backend") != std::string::npos);
}

}  // namespace

TEST_CASE("cli: bench folds batch norm for inference unless told not to, and profiles by layer family") {
  const std::string args = "bench --device cpu --depth 18 --batch 2 --size 64 --outputs 1 --warmup 0 --iters 1 "
                           "--mode infer";
  const Run folded = run_env("HOTLAP_PROFILE=1", args);
  CAPTURE(folded.output);
  CHECK(folded.status == 0);
  CHECK(folded.output.find("\"fuse_bn\":true") != std::string::npos);
  CHECK(folded.output.find("batch_norm") == std::string::npos);  // no batch norm ran
  // ResNet-18's forward convolutions, one line per family with its calls: the stem, 13 3x3 at stride
  // 1, 3 at stride 2 and the 3 strided 1x1 downsamples.
  CHECK(folded.output.find("forward convolutions by layer family") != std::string::npos);
  for (const char* family : {"conv 7x7 stride 2           1 calls", "conv 3x3                   13 calls",
                             "conv 3x3 stride 2           3 calls", "conv 1x1 stride 2           3 calls"})
    CHECK_MESSAGE(folded.output.find(family) != std::string::npos, family);
  const Run separate = run_env("HOTLAP_PROFILE=1", args + " --no-fuse-bn");
  CHECK(separate.status == 0);
  CHECK(separate.output.find("\"fuse_bn\":false") != std::string::npos);
  CHECK(separate.output.find("batch_norm.forward") != std::string::npos);
  // Training keeps its batch norms whatever the flag says.
  const Run train = run("bench --device cpu --depth 18 --batch 2 --size 64 --outputs 1 --warmup 0 --iters 1 "
                        "--mode train");
  CHECK(train.output.find("\"fuse_bn\":false") != std::string::npos);
}

TEST_CASE("cli: bench with --precision bf16 runs on the cpu (emulated) and reports bf16") {
  const Run r = run("bench --device cpu --precision bf16 --depth 18 --batch 2 --size 64 --outputs 1 "
                    "--warmup 0 --iters 1 --mode train");
  CAPTURE(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("\"precision\":\"bf16\"") != std::string::npos);
}
