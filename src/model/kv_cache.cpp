#include "model/kv_cache.h"

#include <algorithm>

#include "util/error.h"

namespace warden::model {

KvCache::KvCache(const Config& c, int64_t n_ctx, int n_seq)
    : n_ctx_(n_ctx),
      n_layer_(c.n_layer),
      n_head_kv_(c.n_head_kv),
      head_dim_(c.head_dim),
      head_dim_v_(c.head_dim_v),
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
  auto grow = [&](std::vector<uint16_t>& buf, int64_t head_dim) {
    std::vector<uint16_t> grown(size_t(n_head_kv_ * cap * head_dim));
    for (int64_t h = 0; h < n_head_kv_; h++)
      std::copy_n(buf.data() + h * s.capacity * head_dim, s.capacity * head_dim, grown.data() + h * cap * head_dim);
    buf = std::move(grown);
  };
  for (int64_t l = 0; l < n_layer_; l++) {
    grow(s.k[size_t(l)], head_dim_);
    grow(s.v[size_t(l)], head_dim_v_);
  }
  s.capacity = cap;
}

uint16_t* KvCache::at(int seq, int64_t layer, int64_t head, int64_t head_dim, bool is_key) {
  Seq& s = seqs_[size_t(seq)];
  auto& buf = is_key ? s.k[size_t(layer)] : s.v[size_t(layer)];
  return buf.data() + size_t(head * s.capacity * head_dim);
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (const auto& s : seqs_)
    for (int64_t l = 0; l < n_layer_; l++) total += (s.k[size_t(l)].size() + s.v[size_t(l)].size()) * 2;
  return total;
}

}  // namespace warden::model
