#include "model/packed_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.h"
#include "util/log.h"
#include "util/mapped_file.h"
#include "util/paths.h"
#include "util/sha256.h"

namespace warden::model {
namespace {

constexpr char kMagic[8] = {'W', 'A', 'R', 'D', 'P', 'A', 'C', 'K'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kDefaultMiB = 8192;
// Free disk space a new copy must leave behind.
constexpr size_t kDiskReserve = size_t(1) << 30;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t key_length;
  uint64_t bytes;
  char key[96];
};
static_assert(sizeof(Header) <= PackedWeights::kHeaderBytes);

Header header_for(const std::string& key, size_t bytes) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.key_length = uint32_t(std::min(key.size(), sizeof h.key));
  h.bytes = bytes;
  std::memcpy(h.key, key.data(), h.key_length);
  return h;
}

std::string path_of(const PackedCacheSettings& s, const std::string& key) { return s.dir + "/" + key + ".bin"; }
std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The files of the cache: every regular file in each model's folder (its
// copies, and the note below), and the copies an older version left in the
// root itself. Not followed through links, and folders that are links are
// not entered. A model's folder holds whatever the engine that wrote there
// put in it, so each file counts with the disk blocks it takes (a sparse
// file claiming a terabyte takes few), and a modification time in the
// future counts as now.
struct Copy {
  std::filesystem::path path;
  int64_t used_ns;  // the modification time, which every use renews
  uintmax_t bytes;
};
int64_t nanoseconds(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

// Calls `visit` with the path of each entry of `folder`; an error (a folder
// another process just removed) ends the walk instead of throwing.
template <typename Visit>
void for_each_entry(const std::filesystem::path& folder, Visit visit) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    visit(it->path());
}

std::vector<Copy> copies_in(const std::filesystem::path& root) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::vector<Copy> copies;
  auto add = [&](const std::filesystem::path& path, const struct stat& st) {
    copies.push_back({path, std::min(nanoseconds(st.st_mtim), nanoseconds(now)), uintmax_t(st.st_blocks) * 512});
  };
  for_each_entry(root, [&](const std::filesystem::path& entry) {
    struct stat st {};
    if (::lstat(entry.c_str(), &st) != 0) return;
    if (S_ISREG(st.st_mode) && entry.extension() == ".bin") add(entry, st);
    if (!S_ISDIR(st.st_mode)) return;
    for_each_entry(entry, [&](const std::filesystem::path& file) {
      struct stat f {};
      if (::lstat(file.c_str(), &f) == 0 && S_ISREG(f.st_mode)) add(file, f);
    });
  });
  return copies;
}

// Removes the least recently used files until all of them fit the limit.
// What stays is `keep`: one copy, or of a model's folder the copy used
// most recently (older ones of the same model, for another kernel set or
// layout, go like any other), counted as at least `keep_bytes`. A confined
// engine cannot even list the root, so it evicts nothing; every engine
// makes room before it confines itself (make_room).
void evict(const PackedCacheSettings& s, const std::filesystem::path& keep, uintmax_t keep_bytes) {
  std::vector<Copy> copies = copies_in(s.root);
  const Copy* kept = nullptr;
  for (const Copy& c : copies)
    if (c.path == keep || (c.path.parent_path() == keep && c.path.extension() == ".bin" &&
                           (!kept || c.used_ns > kept->used_ns)))
      kept = &c;
  uintmax_t total = std::max<uintmax_t>(kept ? kept->bytes : 0, keep_bytes);
  std::vector<const Copy*> others;
  for (const Copy& c : copies)
    if (&c != kept) {
      total += c.bytes;
      others.push_back(&c);
    }
  std::sort(others.begin(), others.end(), [](const Copy* a, const Copy* b) { return a->used_ns < b->used_ns; });
  const std::filesystem::path root(s.root);
  for (const Copy* c : others) {
    if (total <= s.max_bytes) break;
    if (::unlink(c->path.c_str()) != 0) continue;
    total -= c->bytes;
    if (c->path.parent_path() != root) ::rmdir(c->path.parent_path().c_str());  // once empty
  }
}

// Creates the model's folder (and the root), readable by the user alone;
// returns why it cannot, or "".
std::string make_folder(const PackedCacheSettings& s) {
  std::error_code ec;
  std::filesystem::create_directories(s.dir, ec);
  if (ec) return "cannot create " + s.dir + ": " + ec.message();
  ::chmod(s.root.c_str(), 0700);
  ::chmod(s.dir.c_str(), 0700);
  return "";
}

// Why a new copy cannot go into the model's folder, or "" when it can.
std::string refusal(const PackedCacheSettings& s, size_t file_bytes) {
  if (std::string why = make_folder(s); !why.empty()) return why;
  struct statvfs fs {};
  if (::statvfs(s.dir.c_str(), &fs) != 0) return "cannot stat " + s.dir + ": " + std::strerror(errno);
  if (uintmax_t(fs.f_bavail) * fs.f_frsize < file_bytes + kDiskReserve)
    return "less than " + mib(file_bytes + kDiskReserve) + " free on the disk of " + s.dir;
  return "";
}

// The copy in fd mapped read-only, its first `populated` bytes mapped now
// rather than a fault at a time (populate() maps the rest); where the page
// cache holds 2 MiB folios (create() asks for them), through huge page
// entries. (Advising huge pages on this mapping as well measured 1-3 %
// slower decode.)
void* map_copy(int fd, size_t bytes, size_t populated) {
  void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, off_t(PackedWeights::kHeaderBytes));
  if (p != MAP_FAILED) ::madvise(p, std::min(bytes, populated), MADV_POPULATE_READ);
  return p;
}
void populate(void* p, size_t from, size_t to) {
  if (from < to) ::madvise(static_cast<uint8_t*>(p) + from, to - from, MADV_POPULATE_READ);
}

// Whether at least 90 % of the 2 MiB pages inside the mapping are mapped
// as such.
bool in_huge_pages(const void* p, size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  return huge_mapped_bytes(p) / kHuge * 10 >= bytes / kHuge * 9;
}

// Drops the copy's pages from the page cache (those no process maps) and
// reads them back through a mapping that asks for huge pages, so the page
// cache holds them in 2 MiB folios, which later mappings reach through huge
// page entries.
void reread_in_huge_folios(int fd, size_t bytes) {
  ::posix_fadvise(fd, off_t(PackedWeights::kHeaderBytes), off_t(bytes), POSIX_FADV_DONTNEED);
  void* p = map_copy(fd, bytes, 0);
  if (p == MAP_FAILED) return;
  ::madvise(p, bytes, MADV_HUGEPAGE);
  populate(p, 0, bytes);
  ::munmap(p, bytes);
}

// Where reading a copy again gave it no huge pages at all (transparent huge
// pages off, or a file system that keeps small folios), a note in the
// model's folder naming the kernel keeps later loads on this kernel from trying
// again.
std::string no_huge_folios_note(const PackedCacheSettings& s) { return s.dir + "/no-huge-folios"; }
std::string kernel_release() {
  struct utsname u {};
  return ::uname(&u) == 0 ? u.release : "";
}
bool may_reread(const PackedCacheSettings& s) {
  std::ifstream note(no_huge_folios_note(s));
  std::string release;
  return !(std::getline(note, release) && release == kernel_release());
}
// Written afresh rather than truncated: the confined engine may not
// truncate (seccomp_filter.h).
void remember_no_huge_folios(const PackedCacheSettings& s) {
  const std::string note = no_huge_folios_note(s), text = kernel_release() + "\n";
  ::unlink(note.c_str());
  const int fd = ::open(note.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  [[maybe_unused]] const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
}

}  // namespace

PackedCacheSettings PackedCacheSettings::from_environment() {
  size_t limit_mib = kDefaultMiB;
  if (const char* v = std::getenv("WARDEN_PACKED_CACHE_MIB"); v && *v) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (*end != '\0' || errno != 0 || !std::all_of(v, static_cast<const char*>(end), [](char c) { return c >= '0' && c <= '9'; }))
      throw Error(std::string("WARDEN_PACKED_CACHE_MIB: expected a size in MiB (0 turns the cache off), got \"") + v +
                  "\"");
    limit_mib = size_t(n);
  }
  PackedCacheSettings s;
  if (limit_mib == 0) return s;
  s.root = paths::cache_dir() + "/packed";
  s.max_bytes = limit_mib > (SIZE_MAX >> 20) ? SIZE_MAX : limit_mib << 20;
  return s;
}

PackedCacheSettings PackedCacheSettings::for_model(const std::string& model_identity) const {
  PackedCacheSettings s = *this;
  s.dir.clear();
  if (!root.empty() && !model_identity.empty())
    s.dir = root + "/" + sha256_hex("warden packed weights folder\n" + model_identity).substr(0, 32);
  return s;
}

bool make_room(const PackedCacheSettings& s, size_t bytes) {
  if (s.dir.empty() || !make_folder(s).empty()) return false;
  // A copy over the limit will not be written: nothing to make room for.
  if (PackedWeights::kHeaderBytes + bytes <= s.max_bytes) evict(s, s.dir, PackedWeights::kHeaderBytes + bytes);
  return true;
}

std::unique_ptr<PackedWeights> PackedWeights::open_cached(const PackedCacheSettings& s, const std::string& key,
                                                          size_t bytes) {
  if (s.dir.empty() || key.empty()) return nullptr;
  const std::string path = path_of(s, key);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return nullptr;
  struct stat st {};
  Header h{};
  const Header expected = header_for(key, bytes);
  const bool intact = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
                      size_t(st.st_size) == kHeaderBytes + bytes &&
                      ::pread(fd, &h, sizeof h, 0) == ssize_t(sizeof h) && std::memcmp(&h, &expected, sizeof h) == 0;
  if (!intact) {
    // Not one this version wrote in full for this model: it goes, and this
    // load packs a fresh copy.
    log::warn("ignoring the cached packed weights " + path + ": not a complete copy for this model");
    ::unlink(path.c_str());
    ::close(fd);
    return nullptr;
  }
  ::futimens(fd, nullptr);  // just used: the last to be evicted
  // The first 64 MiB mapped first: where those are in small folios, the
  // rest most likely is too, and mapping it all before reading it again
  // would read the evicted parts from disk twice.
  constexpr size_t kSample = size_t(64) << 20;
  void* p = map_copy(fd, bytes, kSample);
  if (p == MAP_FAILED) {
    ::close(fd);
    return nullptr;
  }
  bool huge = in_huge_pages(p, std::min(bytes, kSample));
  if (huge) {
    populate(p, kSample, bytes);
    huge = in_huge_pages(p, bytes);
  }
  if (!huge && may_reread(s)) {
    // The page cache holds the copy in small folios (evicted in part and
    // read back a page at a time): every 4 KiB of weights would cost decode
    // a TLB miss (qwen3-0.6b q4_K_M decoded 9-10 % slower so). Read it once
    // more into 2 MiB folios.
    log::info("reading the cached packed weights again in 2 MiB pages (" + mib(bytes) + ")");
    ::munmap(p, bytes);
    reread_in_huge_folios(fd, bytes);
    p = map_copy(fd, bytes, bytes);
    if (p != MAP_FAILED && huge_mapped_bytes(p) == 0) remember_no_huge_folios(s);
  } else if (!huge) {
    populate(p, kSample, bytes);  // small folios it is (already mapped, if past the sample)
  }
  ::close(fd);
  if (p == MAP_FAILED) return nullptr;
  auto w = std::unique_ptr<PackedWeights>(new PackedWeights());
  w->mapping_ = w->data_ = static_cast<uint8_t*>(p);
  w->mapping_size_ = w->size_ = bytes;
  w->from_cache_ = true;
  return w;
}

std::unique_ptr<PackedWeights> PackedWeights::create(const PackedCacheSettings& s, const std::string& key,
                                                     size_t bytes) {
  auto w = std::unique_ptr<PackedWeights>(new PackedWeights());
  w->size_ = bytes;
  auto in_memory = [&](const std::string& why) {
    if (!why.empty()) log::info("not caching the packed weights: " + why);  // and packing them as before
    w->memory_ = std::make_unique<AnonymousMemory>(bytes);
    w->data_ = w->memory_->data();
    return std::move(w);
  };
  if (s.dir.empty() || key.empty()) return in_memory("");
  const size_t file_bytes = kHeaderBytes + bytes;
  if (file_bytes > s.max_bytes) {  // by choice: quietly
    log::debug("not caching the packed weights: " + mib(file_bytes) + " is over the cache limit of " +
               mib(s.max_bytes) + " (WARDEN_PACKED_CACHE_MIB)");
    return in_memory("");
  }
  if (std::string why = refusal(s, file_bytes); !why.empty()) return in_memory(why);
  // Unnamed until finish() links it: a crash before leaves nothing behind.
  // Read-only by its mode (this descriptor still writes): no process of the
  // user's, such as another engine taken over by its GGUF, can open it for
  // writing or cut it short under the engines that map it (a cut mapping
  // faults), and none may change a mode (the engine's seccomp filter).
  const int fd = ::open(s.dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0400);
  if (fd < 0) return in_memory("cannot create a file in " + s.dir + ": " + std::strerror(errno));
  // Blocks reserved up front: a full disk later would otherwise kill the
  // process with SIGBUS while it packs into the mapping.
  if (const int e = ::posix_fallocate(fd, 0, off_t(file_bytes)); e != 0) {
    ::close(fd);
    return in_memory("cannot reserve " + mib(file_bytes) + " in " + s.dir + ": " + std::strerror(e));
  }
  void* p = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    ::close(fd);
    return in_memory("cannot map a new file in " + s.dir + ": " + std::strerror(e));
  }
  // The page cache then gives the file 2 MiB folios where it can, and every
  // later mapping reaches them through huge page entries (qwen3-0.6b
  // q4_K_M: all but a few of its 372 MiB mapped so, against 268 without
  // this hint).
  ::madvise(p, file_bytes, MADV_HUGEPAGE);
  w->fd_ = fd;
  w->mapping_ = static_cast<uint8_t*>(p);
  w->mapping_size_ = file_bytes;
  w->data_ = w->mapping_ + kHeaderBytes;
  w->settings_ = s;
  w->key_ = key;
  return w;
}

// Durable first, then named: a copy found under its key is always whole.
// Synchronous: written back from a background thread while decode ran, it
// cost the first tokens 10-20 % (the kernel write-protects each page it
// cleans).
void PackedWeights::finish() {
  if (fd_ < 0) return;
  const Header h = header_for(key_, size_);
  std::memcpy(mapping_, &h, sizeof h);
  ::mprotect(mapping_, mapping_size_, PROT_READ);
  const std::string path = path_of(settings_, key_);
  const std::string self = "/proc/self/fd/" + std::to_string(fd_);
  bool named = false;
  if (::msync(mapping_, mapping_size_, MS_SYNC) != 0 || ::fdatasync(fd_) != 0) {
    log::warn("not caching the packed weights: cannot write them to " + settings_.dir + ": " + std::strerror(errno));
  } else if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    named = true;
    evict(settings_, path, 0);
  } else if (errno != EEXIST) {  // EEXIST: another load named its copy first; this one stays unnamed
    log::warn("not caching the packed weights: cannot name " + path + ": " + std::strerror(errno));
  }
  if (named) seal(path);
  ::close(fd_);
  fd_ = -1;
}

// The named copy is read from now on through a mapping of a read-only
// descriptor, as a copy from the cache is: unlike the one it was packed
// in, no mprotect() can make that writable again, so code that takes the
// engine over later cannot change the copy on disk through it. Where that
// mapping cannot be made, the copy goes: this process could still change
// it, and a later load would trust it.
void PackedWeights::seal(const std::string& path) {
  struct stat written {}, named {};
  const int read_only = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  const bool same = read_only >= 0 && ::fstat(fd_, &written) == 0 && ::fstat(read_only, &named) == 0 &&
                    written.st_dev == named.st_dev && written.st_ino == named.st_ino;
  void* p = same ? map_copy(read_only, size_, size_) : MAP_FAILED;
  if (read_only >= 0) ::close(read_only);
  if (p == MAP_FAILED) {
    log::warn("not caching the packed weights: cannot map " + path + " read-only");
    ::unlink(path.c_str());
    return;
  }
  ::munmap(mapping_, mapping_size_);
  mapping_ = data_ = static_cast<uint8_t*>(p);
  mapping_size_ = size_;
}

PackedWeights::~PackedWeights() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace warden::model
