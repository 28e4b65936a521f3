#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "tensor/quant.h"
#include "util/error.h"

namespace warden::model {

gguf::TensorType parse_kv_cache_type(std::string_view name, std::string_view flag) {
  if (name == "f16") return gguf::TensorType::F16;
  if (name == "q8_0") return gguf::TensorType::Q8_0;
  throw Error(std::string(flag) + ": unknown cache type '" + std::string(name) + "' (expected f16 or q8_0)");
}

namespace {

size_t cache_row_bytes(gguf::TensorType type, int64_t head_dim, const char* what) {
  if (type != gguf::TensorType::F16 && type != gguf::TensorType::Q8_0)
    throw Error(std::string("KV cache ") + what + " type " + std::string(gguf::type_name(type)) + ": expected F16 or Q8_0");
  if (type == gguf::TensorType::Q8_0 && head_dim % 32 != 0)
    throw Error(std::string("KV cache ") + what + " type Q8_0 needs heads of a multiple of 32 elements; this model's " +
                what + " heads have " + std::to_string(head_dim));
  return gguf::row_bytes(type, head_dim);
}

}  // namespace

KvCache::KvCache(const Config& c, int64_t n_ctx, int n_seq, KvCacheTypes types)
    : n_ctx_(n_ctx),
      n_layer_(c.n_layer),
      n_head_kv_(c.n_head_kv),
      head_dim_(c.head_dim),
      head_dim_v_(c.head_dim_v),
      types_(types),
      key_row_bytes_(cache_row_bytes(types.key, c.head_dim, "key")),
      value_row_bytes_(cache_row_bytes(types.value, c.head_dim_v, "value")),
      seqs_(size_t(std::max(1, n_seq))) {
  if (n_ctx <= 0) throw Error("context length must be positive");
}

void KvCache::truncate(int seq, int64_t pos) {
  Seq& s = seqs_.at(size_t(seq));
  s.length = std::min(s.length, std::max<int64_t>(0, pos));
}

void KvCache::set_length(int seq, int64_t length) {
  Seq& s = seqs_.at(size_t(seq));
  if (length > s.capacity) throw Error("KV cache length beyond reserved capacity");
  s.length = length;
}

void KvCache::reserve(int seq, int64_t pos) {
  if (pos >= n_ctx_)
    throw Error("context is full: position " + std::to_string(pos) + " needs a context longer than " +
                std::to_string(n_ctx_) + " (use -c)");
  Seq& s = seqs_.at(size_t(seq));
  if (!s.storage) {
    s.capacity = 64;
    while (s.capacity <= pos) s.capacity *= 2;
    s.capacity = std::min(s.capacity, n_ctx_);
    s.storage = std::make_unique<AnonymousMemory>(size_t(n_layer_) * layer_bytes(s.capacity));
  }
  // Growth to twice the capacity starts a quarter of it ahead, and the
  // layers move over evenly across that quarter (all of them at once for a
  // position past it, as a long batch can ask).
  while (s.capacity < n_ctx_) {
    const int64_t start = s.capacity - s.capacity / 4;
    if (pos < start) return;
    if (!s.next) {
      s.next_capacity = std::min(2 * s.capacity, n_ctx_);
      s.next = std::make_unique<AnonymousMemory>(size_t(n_layer_) * layer_bytes(s.next_capacity));
      s.moved = 0;
    }
    const int64_t due =
        pos >= s.capacity ? n_layer_ : ((pos - start + 1) * n_layer_ + s.capacity / 4 - 1) / (s.capacity / 4);
    while (s.moved < std::min(due, n_layer_)) move_layer(s);
    if (s.moved < n_layer_) return;
    s.storage = std::move(s.next);
    s.capacity = s.next_capacity;
  }
}

// Layer `moved` to the next storage: each head's positions to the start of
// its larger span, then the old rows go back to the system.
void KvCache::move_layer(Seq& s) {
  const int64_t l = s.moved++;
  for (int64_t h = 0; h < n_head_kv_; h++)
    for (bool is_key : {true, false})
      std::copy_n(head_rows(s.storage->data(), s.capacity, l, h, is_key),
                  size_t(s.capacity) * (is_key ? key_row_bytes_ : value_row_bytes_),
                  head_rows(s.next->data(), s.next_capacity, l, h, is_key));
  s.storage->release(size_t(l) * layer_bytes(s.capacity), layer_bytes(s.capacity));
}

size_t KvCache::layer_bytes(int64_t capacity) const {
  return size_t(n_head_kv_ * capacity) * (key_row_bytes_ + value_row_bytes_);
}

uint8_t* KvCache::head_rows(uint8_t* storage, int64_t capacity, int64_t layer, int64_t head, bool is_key) const {
  const size_t keys_bytes = size_t(n_head_kv_ * capacity) * key_row_bytes_;
  uint8_t* layer_rows = storage + size_t(layer) * layer_bytes(capacity);
  return is_key ? layer_rows + size_t(head * capacity) * key_row_bytes_
                : layer_rows + keys_bytes + size_t(head * capacity) * value_row_bytes_;
}

uint8_t* KvCache::row(int seq, int64_t layer, int64_t head, int64_t pos, bool is_key) {
  Seq& s = seqs_[size_t(seq)];
  if (!s.storage) return nullptr;  // nothing reserved yet: no rows to read
  const bool moved = s.next && layer < s.moved;
  return head_rows(moved ? s.next->data() : s.storage->data(), moved ? s.next_capacity : s.capacity, layer, head,
                   is_key) +
         size_t(pos) * (is_key ? key_row_bytes_ : value_row_bytes_);
}

tensor::CacheRows KvCache::keys(int seq, int64_t layer, int64_t head) const {
  return {const_cast<KvCache*>(this)->row(seq, layer, head, 0, true), types_.key, key_row_bytes_};
}

tensor::CacheRows KvCache::values(int seq, int64_t layer, int64_t head) const {
  return {const_cast<KvCache*>(this)->row(seq, layer, head, 0, false), types_.value, value_row_bytes_};
}

void KvCache::store(int seq, int64_t layer, int64_t head, int64_t pos, const float* key, const float* value) {
  auto convert = [](gguf::TensorType type, const float* x, uint8_t* out, int64_t n) {
    if (type == gguf::TensorType::F16)  // the SIMD conversion where the CPU has one
      tensor::f32_to_f16_row(x, reinterpret_cast<uint16_t*>(out), n);
    else
      tensor::quantize_row(type, x, out, n);
  };
  convert(types_.key, key, row(seq, layer, head, pos, true), head_dim_);
  convert(types_.value, value, row(seq, layer, head, pos, false), head_dim_v_);
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const auto& s : seqs_) total += (s.storage ? s.storage->size() : 0) + (s.next ? s.next->size() : 0);
  return total;
}

}  // namespace warden::model
