#pragma once
// Where a model's repacked weights live: anonymous memory, or a file in the
// user's cache folder that later loads of the same model map as it is.
//
// Why a file: repacking writes a fresh copy of nearly every weight, and fresh
// memory is what makes a load slow on a VM whose hypervisor backs guest
// memory only on first touch (the 971 MiB llama-3.2-1b q6_K file: 1.4-2.4 s,
// three quarters of it the kernel zeroing new pages; 0.3 s where the memory
// had been used before). A file's pages stay in the page cache between runs,
// and mapping the copy of that 1 GB file takes about 20 ms.
//
// A cached copy is found by a key over the model file's identity (device,
// inode, size, modification time), the kernel set, and the packed layout
// itself (see Model::pack_weights), so a changed model or a changed packing
// never reads a stale copy. It is written to an unnamed file, made durable,
// and only then linked under its key, so a crash never leaves a partial copy
// under a valid name. The copies are evicted least recently used first beyond
// a size limit. The cache folder is one the sandbox never exposes.
//
// Each model file's copies live in a folder of their own, named after the
// file's identity. The engine confines itself (cli::confine_engine) to that
// one folder before it parses a byte of the model: should a hostile GGUF or
// prompt take over the engine, it can rewrite only the copy of the model it
// was given, not plant weights under another model's name for later loads.
// Making room for a new copy means removing other models' copies, so the
// engine does that before it confines itself (make_room).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "util/mapped_file.h"

namespace warden::model {

struct PackedCacheSettings {
  std::string root;      // every model's folder; empty: no cache
  std::string dir;       // one model's folder (for_model); empty: no cache
  size_t max_bytes = 0;  // all copies together; a larger model is not cached
  // The root <cache_dir>/packed, limited by WARDEN_PACKED_CACHE_MIB (default
  // 8192; 0 turns the cache off). Throws warden::Error on a malformed limit.
  static PackedCacheSettings from_environment();
  // The same, for the copies of the model file with this identity
  // (MappedFile::identity; an empty one gets no cache).
  PackedCacheSettings for_model(const std::string& model_identity) const;
};

// Before the engine confines itself to the model's folder: creates that
// folder, and evicts other models' copies, least recently used first, until
// a new copy of about `bytes` would fit the limit next to the rest. Returns
// false (the load then says why, or packs in memory) when the folder cannot
// be made.
bool make_room(const PackedCacheSettings& s, size_t bytes);

class PackedWeights {
 public:
  // A cache file is a header, then the packed weights at this offset: a
  // multiple of every page size Linux uses, so they can be mapped on their
  // own, and of the 2 MiB huge page, as the in-memory region is. With the
  // weights 64 KiB into the file instead, decode ran 2-4 % slower in the
  // slow memory regime (qwen3-0.6b q4_K_M, alternating runs).
  static constexpr size_t kHeaderBytes = size_t(2) << 20;

  // The cached copy under `key` when there is a complete one of `bytes`
  // bytes, mapped read-only (and marked as just used); otherwise nullptr.
  static std::unique_ptr<PackedWeights> open_cached(const PackedCacheSettings& s, const std::string& key, size_t bytes);
  // Writable memory for packing `bytes` bytes: a new cache copy when the
  // settings allow one and the folder takes it, anonymous memory otherwise
  // (with one line saying why, unless the copy is merely over the limit).
  static std::unique_ptr<PackedWeights> create(const PackedCacheSettings& s, const std::string& key, size_t bytes);
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool from_cache() const { return from_cache_; }
  // Packing is done: the weights become read-only, and a new cache copy is
  // made durable, named and mapped again through a read-only descriptor
  // (so no mprotect can make it writable again). data() may move.
  void finish();

 private:
  PackedWeights() = default;
  void seal(const std::string& path);

  std::unique_ptr<AnonymousMemory> memory_;
  int fd_ = -1;  // the cache file, named or not yet
  uint8_t* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool from_cache_ = false;
  PackedCacheSettings settings_;
  std::string key_;
};

}  // namespace warden::model
