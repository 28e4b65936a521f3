#pragma once
// GGUF v2/v3 reader and writer.
//
// The reader maps the file and validates everything before handing out views:
// header counts, string and array lengths, metadata types, tensor infos
// (dims, type ids, offsets, alignment, overlap, bounds). Any problem throws
// warden::Error("<path>: <what is wrong>"); nothing is read out of bounds.
// Tensor data views point straight into the map (zero copy).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gguf/types.h"
#include "util/mapped_file.h"

namespace warden::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

struct Value;
// An array holds elements of one type; strings and numbers are stored decoded.
struct Array {
  ValueType element_type = ValueType::UINT8;
  std::vector<Value> items;
};

// What File::release_large_arrays leaves of an array it dropped: the element
// type and length, so the key stays listed and a later read fails with an
// error naming what was dropped instead of finding an empty array.
struct ReleasedArray {
  ValueType element_type = ValueType::UINT8;
  uint64_t length = 0;
};

struct Value {
  ValueType type = ValueType::UINT8;  // stays ARRAY for a released array
  std::variant<uint64_t, int64_t, double, bool, std::string, Array, ReleasedArray> data;

  bool released() const { return std::holds_alternative<ReleasedArray>(data); }

  // Typed accessors; throw warden::Error when the stored type does not fit
  // or the array was released.
  uint64_t as_uint() const;      // any non-negative integer type
  int64_t as_int() const;        // any integer type
  double as_float() const;       // any numeric type
  bool as_bool() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  std::vector<std::string> as_string_array() const;
  std::vector<float> as_float_array() const;
  std::vector<int64_t> as_int_array() const;

  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value u64(uint64_t v);
  static Value f32(float v);
  static Value boolean(bool v);
  static Value string(std::string v);
  static Value strings(std::vector<std::string> v);
  static Value f32s(const std::vector<float>& v);
  static Value i32s(const std::vector<int32_t>& v);
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ne[0] is the contiguous (row) dimension
  TensorType type = TensorType::F32;
  uint64_t offset = 0;        // relative to the data section
  uint64_t size = 0;          // bytes

  int64_t elements() const;
  int64_t rows() const;       // product of dims[1..]
};

struct TensorView {
  const TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;  // into the mapped file
};

class File {
 public:
  // Maps and validates `path`. Throws warden::Error on any problem.
  explicit File(const std::string& path);
  // Validates an in-memory buffer (used by the fuzz target); the buffer must
  // outlive the File. `name` is used in error messages.
  File(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return name_; }
  // MappedFile::identity of the file; empty for an in-memory buffer.
  std::string identity() const { return map_ ? map_->identity() : std::string(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }

  // Metadata in file order and by key. A released array is still listed and
  // found (has() is true), but reading its items throws.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Throws "<path>: missing metadata key <key>" if absent, and an error naming
  // the key if it is an array that release_large_arrays dropped.
  const Value& get(std::string_view key) const;
  // Convenience getters with defaults.
  std::string get_string(std::string_view key, std::string fallback = "") const;
  uint64_t get_uint(std::string_view key, uint64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;

  // Frees the decoded items of every metadata array of at least `min_items`
  // elements (the vocabulary, scores, token types and merges: ~18 MiB for a
  // 128k-token vocabulary), which nothing reads once the tokenizer is
  // built; each becomes a ReleasedArray. Scalars, strings (the chat template)
  // and short arrays stay. Returns how many arrays were released. Not
  // thread-safe against concurrent readers of the metadata.
  static constexpr size_t kLargeArrayItems = 1024;
  size_t release_large_arrays(size_t min_items = kLargeArrayItems);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Throws "<path>: missing tensor <name>" if absent.
  TensorView tensor(std::string_view name) const;
  TensorView view(const TensorInfo& info) const;
  // Copies n bytes from `at`, a pointer into this file's data (a tensor
  // view's), reading the file rather than the mapping when it is mapped, so
  // the read leaves no page of the mapping resident (MappedFile::read).
  void read(const uint8_t* at, void* out, size_t n) const;

 private:
  void parse();

  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF v3 file. Tensor data is written from caller-owned buffers or
// copied in; the file is written to "<path>.tmp" and renamed into place, so a
// failure never leaves a half-written file at `path`.
class Writer {
 public:
  void set(std::string key, Value value);  // replaces an existing key
  void set_alignment(uint32_t alignment);
  // `data` must hold row_bytes(type, dims[0]) * rows bytes.
  void add_tensor(std::string name, std::vector<int64_t> dims, TensorType type,
                  std::vector<uint8_t> data);
  void write(const std::string& path) const;
  // The same file written to `fd` (from its current offset) and synced;
  // `name` is what errors call it. Nothing is renamed or removed.
  void write_to(int fd, const std::string& name) const;

 private:
  struct PendingTensor {
    TensorInfo info;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace warden::gguf
