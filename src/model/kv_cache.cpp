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
  for (auto& s : seqs_) {
    s.k.resize(size_t(n_layer_));
    s.v.resize(size_t(n_layer_));
  }
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
  if (pos < s.capacity) return;
  int64_t cap = std::max<int64_t>(64, s.capacity);
  while (cap <= pos) cap *= 2;
  cap = std::min(cap, n_ctx_);
  // Each head's positions move to the start of its larger span (all of them:
  // a batch writes positions before it updates the length).
  auto grow = [&](std::vector<uint8_t>& buf, size_t row_bytes) {
    const size_t old_span = size_t(s.capacity) * row_bytes, new_span = size_t(cap) * row_bytes;
    std::vector<uint8_t> grown(size_t(n_head_kv_) * new_span);
    for (int64_t h = 0; h < n_head_kv_; h++)
      std::copy_n(buf.data() + size_t(h) * old_span, old_span, grown.data() + size_t(h) * new_span);
    buf = std::move(grown);
  };
  for (int64_t l = 0; l < n_layer_; l++) {
    grow(s.k[size_t(l)], key_row_bytes_);
    grow(s.v[size_t(l)], value_row_bytes_);
  }
  s.capacity = cap;
}

uint8_t* KvCache::row(int seq, int64_t layer, int64_t head, int64_t pos, bool is_key) {
  Seq& s = seqs_[size_t(seq)];
  auto& buf = is_key ? s.k[size_t(layer)] : s.v[size_t(layer)];
  const size_t row_bytes = is_key ? key_row_bytes_ : value_row_bytes_;
  return buf.data() + size_t(head * s.capacity + pos) * row_bytes;
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
  for (const auto& s : seqs_)
    for (int64_t l = 0; l < n_layer_; l++) total += s.k[size_t(l)].size() + s.v[size_t(l)].size();
  return total;
}

}  // namespace warden::model
