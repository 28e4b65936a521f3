#include "util/mapped_file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

namespace warden {
namespace {

std::string identity_of(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::string identity_of_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? identity_of(st) : std::string();
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = size_t(st.st_size);
  identity_ = identity_of(st);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path + ": cannot map: " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  fd_ = fd;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  ::close(fd_);
}

void MappedFile::read(const uint8_t* at, void* out, size_t n) const {
  const uintptr_t offset = uintptr_t(at) - uintptr_t(data_);  // wraps for a pointer before the map
  if (offset > size_ || n > size_ - offset) throw Error(path_ + ": a read outside the file");
  auto* dst = static_cast<uint8_t*>(out);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, dst + done, n - done, off_t(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(path_ + ": cannot read: " + std::strerror(errno));
    if (got == 0) throw Error(path_ + ": the file is shorter than when it was opened");
    done += size_t(got);
  }
}

AnonymousMemory::AnonymousMemory(size_t size) : size_(size) {
  if (size == 0) return;
  // Over-map by one huge page and start at a 2 MiB boundary, so the whole
  // buffer can be backed by huge pages.
  constexpr size_t kHuge = size_t(2) << 20;
  mapped_size_ = size + kHuge;
  void* p = ::mmap(nullptr, mapped_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("cannot map " + std::to_string(size >> 20) + " MiB of memory: " + std::strerror(errno));
  mapping_ = static_cast<uint8_t*>(p);
  data_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(mapping_) + kHuge - 1) / kHuge * kHuge);
  ::madvise(data_, size, MADV_HUGEPAGE);  // a hint; without THP the pages are just small
}

AnonymousMemory::~AnonymousMemory() {
  if (mapping_) ::munmap(mapping_, mapped_size_);
}

void AnonymousMemory::release(size_t offset, size_t length) {
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(data_) + offset;
  const uintptr_t first = (start + page - 1) / page * page, last = (start + length) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

size_t huge_mapped_bytes(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const uintptr_t wanted = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  size_t kib = 0;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's first line is "start-end perms offset dev inode [path]";
    // its fields follow as "Name:   value kB".
    const size_t dash = line.find('-');
    if (dash != std::string::npos && dash > 0 && line.find(':') > dash) {
      if (inside) break;
      const uintptr_t first = std::strtoull(line.c_str(), nullptr, 16);
      const uintptr_t last = std::strtoull(line.c_str() + dash + 1, nullptr, 16);
      inside = first <= wanted && wanted < last;
      continue;
    }
    if (!inside) continue;
    for (const char* field : {"AnonHugePages:", "FilePmdMapped:", "ShmemPmdMapped:"})
      if (line.rfind(field, 0) == 0) kib += std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return kib << 10;
}

}  // namespace warden
