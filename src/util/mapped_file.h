#pragma once
// A read-only memory map of a whole file. Model weights are used in place from
// the map (zero copy); the map, and the file descriptor behind it, live as
// long as the MappedFile.
#include <cstddef>
#include <cstdint>
#include <string>

namespace warden {

class MappedFile {
 public:
  // Throws warden::Error naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The mapped file as found when it was opened: device, inode, size and
  // modification time (a file replaced or rewritten since gives another).
  const std::string& identity() const { return identity_; }
  // Copies n bytes of the file, from where `at` points into the map, with a
  // read of the file instead of through the map: the map's page tables stay
  // as they are (a fault would map a whole page-cache folio, up to 2 MiB).
  // Throws warden::Error naming the path when the read fails or comes short.
  void read(const uint8_t* at, void* out, size_t n) const;

 private:
  std::string path_;
  std::string identity_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;
};

// The identity a MappedFile of `path` would have now; empty when the file
// cannot be found.
std::string identity_of_file(const std::string& path);

// Private anonymous memory for large read-mostly buffers (repacked weights),
// mapped directly rather than taken from the heap so it goes back to the
// system when freed, and marked for transparent huge pages: decode streams
// hundreds of MiB per token, and 2 MiB pages spare most TLB misses.
class AnonymousMemory {
 public:
  explicit AnonymousMemory(size_t size);  // throws warden::Error when it cannot map
  ~AnonymousMemory();
  AnonymousMemory(const AnonymousMemory&) = delete;
  AnonymousMemory& operator=(const AnonymousMemory&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Gives the whole pages inside [offset, offset + length) back to the
  // system (they read as zeros afterwards), while the rest stays in use.
  void release(size_t offset, size_t length);

 private:
  uint8_t* mapping_ = nullptr;
  size_t mapped_size_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// How many bytes of the mapping that holds `address` this process reaches
// through huge page entries (/proc/self/smaps: AnonHugePages, FilePmdMapped,
// ShmemPmdMapped); 0 where that cannot be read or nothing is mapped there.
size_t huge_mapped_bytes(const void* address);

}  // namespace warden
