#include "modelgen/progress.h"

#include <cstdio>
#include <unistd.h>

namespace warden::modelgen {

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total ? total : 1), enabled_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { finish(); }

void Progress::advance(uint64_t amount) {
  done_ += amount;
  if (enabled_) draw(false);
}

void Progress::set_detail(const std::string& detail) {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    detail_ = detail;
  }
  draw(false);
}

void Progress::draw(bool force) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double pct = 100.0 * double(done_.load()) / double(total_);
  std::fprintf(stderr, "\r\033[K%s %5.1f%%  %s", label_.c_str(), pct > 100 ? 100.0 : pct, detail_.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  draw(true);
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  std::fputs("\n", stderr);
}

}  // namespace warden::modelgen
