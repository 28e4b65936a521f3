#pragma once
// Writing a command's output file (a model from make-model or quantize) so
// that it is complete or absent: a new file with a unique name beside it,
// renamed over OUT only once written. What is at OUT already must be a
// regular file (or nothing): a rename would replace a device, a FIFO or a
// folder the user never meant to lose.
#include <string>

namespace warden::output_file {

// Throws warden::Error naming OUT when it is empty, or exists and is not a
// regular file (a link to one is fine: the link is what gets replaced).
void check_target(const std::string& out);

// Creates the file beside `out` (OUT.tmp.XXXXXX, made with O_EXCL, never
// through a link), with the mode fopen would give; returns its descriptor
// and sets `name`. Throws warden::Error naming OUT.
int create_beside(const std::string& out, std::string& name);

// While one lives, SIGINT, SIGTERM and SIGHUP remove the file at `path`
// before they end the process as they would have: an interrupted write
// leaves nothing behind. One at a time.
class RemovedOnSignal {
 public:
  explicit RemovedOnSignal(const std::string& path);
  ~RemovedOnSignal();
  RemovedOnSignal(const RemovedOnSignal&) = delete;
  RemovedOnSignal& operator=(const RemovedOnSignal&) = delete;
};

}  // namespace warden::output_file
