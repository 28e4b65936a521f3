#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "util/error.h"
#include "util/output_file.h"

namespace warden::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxTensors = 1u << 20;
constexpr uint64_t kMaxKeyValues = 1u << 20;
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 2;

const char* value_type_name(uint32_t t) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                "bool",  "string", "array",  "uint64", "int64", "float64"};
  return t < 13 ? names[t] : "unknown";
}

// Bounds-checked little-endian reader over the mapped bytes. Every read names
// what it was reading, so a truncated file reports exactly where it ended.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& name) : p_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(name_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }

  template <typename T>
  T read(const char* what) {
    if (remaining() < sizeof(T)) fail(std::string("truncated while reading ") + what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail(std::string(what) + " length " + std::to_string(len) + " exceeds the file");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

size_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;   // the length prefix
    case ValueType::ARRAY: return 12;   // element type + count
  }
  return 1;
}

Value read_value(Cursor& c, uint32_t raw_type, const std::string& key, int depth) {
  if (raw_type > uint32_t(ValueType::FLOAT64))
    c.fail("metadata key '" + key + "' has unknown value type " + std::to_string(raw_type));
  Value v;
  v.type = ValueType(raw_type);
  switch (v.type) {
    case ValueType::UINT8: v.data = uint64_t(c.read<uint8_t>("uint8 value")); break;
    case ValueType::UINT16: v.data = uint64_t(c.read<uint16_t>("uint16 value")); break;
    case ValueType::UINT32: v.data = uint64_t(c.read<uint32_t>("uint32 value")); break;
    case ValueType::UINT64: v.data = c.read<uint64_t>("uint64 value"); break;
    case ValueType::INT8: v.data = int64_t(c.read<int8_t>("int8 value")); break;
    case ValueType::INT16: v.data = int64_t(c.read<int16_t>("int16 value")); break;
    case ValueType::INT32: v.data = int64_t(c.read<int32_t>("int32 value")); break;
    case ValueType::INT64: v.data = c.read<int64_t>("int64 value"); break;
    case ValueType::FLOAT32: v.data = double(c.read<float>("float32 value")); break;
    case ValueType::FLOAT64: v.data = c.read<double>("float64 value"); break;
    case ValueType::BOOL: {
      uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) c.fail("metadata key '" + key + "' has bool value " + std::to_string(b));
      v.data = b != 0;
      break;
    }
    case ValueType::STRING: v.data = c.read_string("string value"); break;
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) c.fail("metadata key '" + key + "' nests arrays too deeply");
      Array a;
      uint32_t elem = c.read<uint32_t>("array element type");
      if (elem > uint32_t(ValueType::FLOAT64))
        c.fail("metadata key '" + key + "' has unknown array element type " + std::to_string(elem));
      a.element_type = ValueType(elem);
      uint64_t n = c.read<uint64_t>("array length");
      // Each element needs at least this many bytes, so an absurd count is
      // rejected before any allocation.
      if (n > c.remaining() / min_encoded_size(a.element_type))
        c.fail("metadata key '" + key + "' claims " + std::to_string(n) + " " + value_type_name(elem) +
               " elements, more than the file holds");
      a.items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; i++) a.items.push_back(read_value(c, elem, key, depth + 1));
      v.data = std::move(a);
      break;
    }
  }
  return v;
}

std::string describe_type(const Value& v) { return value_type_name(uint32_t(v.type)); }

[[noreturn]] void type_mismatch(const Value& v, const char* wanted) {
  throw Error(std::string("metadata value is ") + describe_type(v) + ", expected " + wanted);
}

[[noreturn]] void released_array(const ReleasedArray& r) {
  throw Error("metadata array of " + std::to_string(r.length) + " " + value_type_name(uint32_t(r.element_type)) +
              " elements was released after loading");
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

// ---- Value ----------------------------------------------------------------

uint64_t Value::as_uint() const {
  if (auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (auto* i = std::get_if<int64_t>(&data)) {
    if (*i < 0) throw Error("metadata value " + std::to_string(*i) + " is negative, expected unsigned");
    return uint64_t(*i);
  }
  type_mismatch(*this, "an integer");
}

int64_t Value::as_int() const {
  if (auto* i = std::get_if<int64_t>(&data)) return *i;
  if (auto* u = std::get_if<uint64_t>(&data)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) throw Error("metadata value too large");
    return int64_t(*u);
  }
  type_mismatch(*this, "an integer");
}

double Value::as_float() const {
  if (auto* d = std::get_if<double>(&data)) return *d;
  if (auto* u = std::get_if<uint64_t>(&data)) return double(*u);
  if (auto* i = std::get_if<int64_t>(&data)) return double(*i);
  type_mismatch(*this, "a number");
}

bool Value::as_bool() const {
  if (auto* b = std::get_if<bool>(&data)) return *b;
  type_mismatch(*this, "a bool");
}

const std::string& Value::as_string() const {
  if (auto* s = std::get_if<std::string>(&data)) return *s;
  type_mismatch(*this, "a string");
}

const Array& Value::as_array() const {
  if (auto* a = std::get_if<Array>(&data)) return *a;
  if (auto* r = std::get_if<ReleasedArray>(&data)) released_array(*r);
  type_mismatch(*this, "an array");
}

std::vector<std::string> Value::as_string_array() const {
  std::vector<std::string> out;
  for (const auto& item : as_array().items) out.push_back(item.as_string());
  return out;
}

std::vector<float> Value::as_float_array() const {
  std::vector<float> out;
  for (const auto& item : as_array().items) out.push_back(float(item.as_float()));
  return out;
}

std::vector<int64_t> Value::as_int_array() const {
  std::vector<int64_t> out;
  for (const auto& item : as_array().items) out.push_back(item.as_int());
  return out;
}

Value Value::u32(uint32_t v) { return Value{ValueType::UINT32, uint64_t(v)}; }
Value Value::i32(int32_t v) { return Value{ValueType::INT32, int64_t(v)}; }
Value Value::u64(uint64_t v) { return Value{ValueType::UINT64, v}; }
Value Value::f32(float v) { return Value{ValueType::FLOAT32, double(v)}; }
Value Value::boolean(bool v) { return Value{ValueType::BOOL, v}; }
Value Value::string(std::string v) { return Value{ValueType::STRING, std::move(v)}; }
Value Value::strings(std::vector<std::string> v) {
  Array a{ValueType::STRING, {}};
  for (auto& s : v) a.items.push_back(string(std::move(s)));
  return Value{ValueType::ARRAY, std::move(a)};
}
Value Value::f32s(const std::vector<float>& v) {
  Array a{ValueType::FLOAT32, {}};
  for (float f : v) a.items.push_back(f32(f));
  return Value{ValueType::ARRAY, std::move(a)};
}
Value Value::i32s(const std::vector<int32_t>& v) {
  Array a{ValueType::INT32, {}};
  for (int32_t i : v) a.items.push_back(i32(i));
  return Value{ValueType::ARRAY, std::move(a)};
}

// ---- TensorInfo -------------------------------------------------------------

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t TensorInfo::rows() const { return dims.empty() ? 0 : elements() / dims[0]; }

// ---- File ---------------------------------------------------------------------

File::File(const std::string& path) : map_(std::make_unique<MappedFile>(path)), name_(path) {
  base_ = map_->data();
  size_ = map_->size();
  parse();
  // The metadata (a vocabulary can be megabytes) now lives in kv_; its pages
  // of the read-only mapping leave the resident set (a later read would map
  // them back).
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  if (const size_t header = std::min(data_offset_, size_) / page * page; header > 0)
    ::madvise(const_cast<uint8_t*>(base_), header, MADV_DONTNEED);
}

File::File(const uint8_t* data, size_t size, std::string name) : base_(data), size_(size), name_(std::move(name)) {
  parse();
}

void File::parse() {
  Cursor c(base_, size_, name_);
  if (size_ < 4) throw Error(name_ + ": not a GGUF file (too short for the magic)");
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) throw Error(name_ + ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) throw Error(name_ + ": GGUF version 1 is not supported (convert it to v3)");
  if (version_ != 2 && version_ != 3)
    throw Error(name_ + ": unsupported GGUF version " + std::to_string(version_));
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > kMaxTensors) c.fail("absurd tensor count " + std::to_string(n_tensors));
  if (n_kv > kMaxKeyValues) c.fail("absurd metadata count " + std::to_string(n_kv));

  for (uint64_t i = 0; i < n_kv; i++) {
    std::string key = c.read_string("metadata key");
    if (kv_index_.count(key)) c.fail("duplicate metadata key '" + key + "'");
    uint32_t type = c.read<uint32_t>("metadata value type");
    Value v = read_value(c, type, key, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::UINT32) throw Error(name_ + ": general.alignment must be uint32");
    alignment_ = a->as_uint();
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
      throw Error(name_ + ": general.alignment " + std::to_string(alignment_) + " is not a power of two");
  }

  tensors_.reserve(size_t(std::min<uint64_t>(n_tensors, c.remaining() / 24)));
  for (uint64_t i = 0; i < n_tensors; i++) {
    TensorInfo t;
    t.name = c.read_string("tensor name");
    if (tensor_index_.count(t.name)) c.fail("duplicate tensor name '" + t.name + "'");
    uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
      uint64_t ne = c.read<uint64_t>("tensor dimension");
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(elements))
        c.fail("tensor '" + t.name + "' has an invalid dimension " + std::to_string(ne));
      elements *= int64_t(ne);
      t.dims.push_back(int64_t(ne));
    }
    uint32_t type = c.read<uint32_t>("tensor type");
    auto info = type_info(type);
    if (!info) c.fail("tensor '" + t.name + "' has unknown type id " + std::to_string(type));
    t.type = TensorType(type);
    if (t.dims[0] % info->block_size != 0)
      c.fail("tensor '" + t.name + "' row length " + std::to_string(t.dims[0]) +
             " is not a multiple of the " + std::string(info->name) + " block size");
    t.offset = c.read<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      c.fail("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " +
             std::to_string(alignment_));
    // elements / block_size * type_size cannot overflow: elements < 2^63 and type_size <= 292 < block*2^1
    // does not hold in general, so check explicitly.
    uint64_t blocks = uint64_t(elements) / info->block_size;
    if (blocks > std::numeric_limits<uint64_t>::max() / info->type_size)
      c.fail("tensor '" + t.name + "' is too large");
    t.size = blocks * info->type_size;
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  data_offset_ = size_t(align_up(c.pos(), alignment_));
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  if (!tensors_.empty() && data_offset_ > size_)
    throw Error(name_ + ": truncated: tensor data section starts past the end of the file");

  // Bounds and overlap, checked in offset order.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  uint64_t end_of_previous = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (t->offset > data_size || t->size > data_size - t->offset)
      throw Error(name_ + ": truncated or corrupt: tensor '" + t->name + "' data (" + std::to_string(t->size) +
                  " bytes at offset " + std::to_string(t->offset) + ") extends past the end of the file");
    if (previous && t->offset < end_of_previous)
      throw Error(name_ + ": tensors '" + previous->name + "' and '" + t->name + "' overlap");
    end_of_previous = t->offset + t->size;
    previous = t;
  }
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& File::get(std::string_view key) const {
  const Value* v = find(key);
  if (!v) throw Error(name_ + ": missing metadata key " + std::string(key));
  if (const auto* r = std::get_if<ReleasedArray>(&v->data))
    throw Error(name_ + ": metadata key " + std::string(key) + " (" + std::to_string(r->length) + " " +
                value_type_name(uint32_t(r->element_type)) +
                " elements) was released after loading; it can only be read before release_large_arrays");
  return *v;
}

size_t File::release_large_arrays(size_t min_items) {
  size_t released = 0;
  for (auto& [key, value] : kv_) {
    const auto* array = std::get_if<Array>(&value.data);
    if (!array || array->items.size() < min_items) continue;
    const ReleasedArray left{array->element_type, uint64_t(array->items.size())};
    value.data = left;  // destroys the items
    released++;
  }
  return released;
}

namespace {
template <typename F>
auto with_key_context(const std::string& file, std::string_view key, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(file + ": " + std::string(key) + ": " + e.what());
  }
}
}  // namespace

std::string File::get_string(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  return v ? with_key_context(name_, key, [&] { return v->as_string(); }) : fallback;
}
uint64_t File::get_uint(std::string_view key, uint64_t fallback) const {
  const Value* v = find(key);
  return v ? with_key_context(name_, key, [&] { return v->as_uint(); }) : fallback;
}
double File::get_float(std::string_view key, double fallback) const {
  const Value* v = find(key);
  return v ? with_key_context(name_, key, [&] { return v->as_float(); }) : fallback;
}
bool File::get_bool(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  return v ? with_key_context(name_, key, [&] { return v->as_bool(); }) : fallback;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw Error(name_ + ": missing tensor " + std::string(name));
  return view(*t);
}

TensorView File::view(const TensorInfo& info) const { return TensorView{&info, base_ + data_offset_ + info.offset}; }

void File::read(const uint8_t* at, void* out, size_t n) const {
  if (map_) return map_->read(at, out, n);
  const uintptr_t offset = uintptr_t(at) - uintptr_t(base_);
  if (offset > size_ || n > size_ - offset) throw Error(name_ + ": a read outside the file");
  std::memcpy(out, at, n);
}

// ---- Writer -------------------------------------------------------------------

namespace {

class Output {
 public:
  explicit Output(FILE* f, const std::string& path) : f_(f), path_(path) {}
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  void put(T v) { bytes(&v, sizeof v); }
  void string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    while (pos_ % alignment) bytes(zeros, size_t(std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros)));
  }
  uint64_t pos() const { return pos_; }

 private:
  FILE* f_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

void write_value(Output& out, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: out.put<uint8_t>(uint8_t(v.as_uint())); break;
    case ValueType::INT8: out.put<int8_t>(int8_t(v.as_int())); break;
    case ValueType::UINT16: out.put<uint16_t>(uint16_t(v.as_uint())); break;
    case ValueType::INT16: out.put<int16_t>(int16_t(v.as_int())); break;
    case ValueType::UINT32: out.put<uint32_t>(uint32_t(v.as_uint())); break;
    case ValueType::INT32: out.put<int32_t>(int32_t(v.as_int())); break;
    case ValueType::UINT64: out.put<uint64_t>(v.as_uint()); break;
    case ValueType::INT64: out.put<int64_t>(v.as_int()); break;
    case ValueType::FLOAT32: out.put<float>(float(v.as_float())); break;
    case ValueType::FLOAT64: out.put<double>(v.as_float()); break;
    case ValueType::BOOL: out.put<uint8_t>(v.as_bool() ? 1 : 0); break;
    case ValueType::STRING: out.string(v.as_string()); break;
    case ValueType::ARRAY: {
      const Array& a = v.as_array();
      out.put<uint32_t>(uint32_t(a.element_type));
      out.put<uint64_t>(a.items.size());
      for (const auto& item : a.items) write_value(out, item);
      break;
    }
  }
}

}  // namespace

void Writer::set(std::string key, Value value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void Writer::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1))) throw Error("alignment must be a power of two");
  alignment_ = alignment;
  set("general.alignment", Value::u32(alignment));
}

void Writer::add_tensor(std::string name, std::vector<int64_t> dims, TensorType type, std::vector<uint8_t> data) {
  if (dims.empty() || dims.size() > kMaxDims) throw Error("tensor " + name + ": 1 to 4 dimensions allowed");
  for (const auto& t : tensors_)
    if (t.info.name == name) throw Error("tensor " + name + " added twice");
  TensorInfo info;
  info.name = std::move(name);
  info.dims = std::move(dims);
  info.type = type;
  info.size = row_bytes(type, info.dims[0]) * uint64_t(info.rows());
  if (data.size() != info.size)
    throw Error("tensor " + info.name + ": " + std::to_string(data.size()) + " bytes given, " +
                std::to_string(info.size) + " expected");
  tensors_.push_back({std::move(info), std::move(data)});
}

void Writer::write(const std::string& path) const {
  // Errors name the file the user asked for, not the temporary beside it.
  output_file::check_target(path);
  std::string tmp;
  const int fd = output_file::create_beside(path, tmp);
  const output_file::RemovedOnSignal removed(tmp);
  try {
    write_to(fd, path);
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": close failed: " + std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the written file into place: " + std::strerror(e));
  }
}

void Writer::write_to(int fd, const std::string& name) const {
  const int own = ::dup(fd);
  FILE* f = own < 0 ? nullptr : ::fdopen(own, "wb");
  if (!f) {
    if (own >= 0) ::close(own);
    throw Error(name + ": cannot write: " + std::strerror(errno));
  }
  try {
    Output out(f, name);
    out.put<uint32_t>(kMagic);
    out.put<uint32_t>(3);
    out.put<uint64_t>(tensors_.size());
    out.put<uint64_t>(kv_.size());
    for (const auto& [key, value] : kv_) {
      out.string(key);
      out.put<uint32_t>(uint32_t(value.type));
      write_value(out, value);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      out.string(t.info.name);
      out.put<uint32_t>(uint32_t(t.info.dims.size()));
      for (int64_t d : t.info.dims) out.put<uint64_t>(uint64_t(d));
      out.put<uint32_t>(uint32_t(t.info.type));
      out.put<uint64_t>(offset);
      offset = align_up(offset + t.info.size, alignment_);
    }
    out.pad_to(alignment_);
    for (const auto& t : tensors_) {
      out.bytes(t.data.data(), t.data.size());
      out.pad_to(alignment_);
    }
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) throw Error(name + ": write failed: " + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    throw;
  }
  if (std::fclose(f) != 0) throw Error(name + ": close failed: " + std::strerror(errno));
}

}  // namespace warden::gguf
