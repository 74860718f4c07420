// A training run's folder (hotlap train --out): one writer at a time, and no run replaced by mistake.
//
// A second `hotlap train` on a folder that one is writing would interleave its checkpoints and
// logs with the first's; RunFolderLock refuses it, naming the process that holds the folder. The
// lock is flock(2) on RUN/.lock: the system releases it when its process ends, even by SIGKILL, so a
// killed run never leaves a stale lock behind.
//
// A folder whose fold folders hold a run (a checkpoint or metrics) is continued with --resume or
// replaced with --overwrite; train without either refuses it (check_run_folder), so that a run is
// not restarted over the checkpoints of days of training by leaving out --resume.
#pragma once

#include <string>
#include <vector>

namespace hotlap {

class RunFolderLock {
 public:
  // Creates `folder` if needed and takes its lock, or throws Error naming the process holding it.
  explicit RunFolderLock(const std::string& folder);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  int fd_ = -1;
};

// The files a fold's training writes into its folder.
const std::vector<std::string>& run_file_names();

enum class ExistingRun { refuse, resume, overwrite };

// For the fold folders (under `run`) that a training is about to write: with `refuse`, throws Error if
// one of them already holds a run, saying how far it got and how to continue or replace it; with
// `overwrite`, removes their run files (run_file_names()) so the training starts clean; with
// `resume`, changes nothing.
void check_run_folder(const std::string& run, const std::vector<std::string>& fold_folders, ExistingRun mode);

}  // namespace hotlap
