#pragma once
// A one-line progress display on stderr, shown only when stderr is a
// terminal (logs and pipes stay clean). Safe to advance from several threads.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace warden::modelgen {

class Progress {
 public:
  Progress(std::string label, uint64_t total);
  ~Progress();
  void advance(uint64_t amount);
  void set_detail(const std::string& detail);  // e.g. the tensor being written
  void finish();

 private:
  void draw(bool force);

  std::string label_;
  uint64_t total_;
  bool enabled_;
  std::atomic<uint64_t> done_{0};
  std::mutex mutex_;
  std::string detail_;
  std::chrono::steady_clock::time_point last_draw_{};
  bool finished_ = false;
};

}  // namespace warden::modelgen
