#pragma once
// Key/value cache in f16, one independent sequence per slot. Storage grows on
// demand (doubling) up to the context length, so a large -c costs memory only
// when it is used.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace warden::model {

class KvCache {
 public:
  KvCache(const Config& config, int64_t n_ctx, int n_seq);

  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return int(seqs_.size()); }
  // Number of positions currently held for a sequence.
  int64_t length(int seq) const { return seqs_.at(size_t(seq)).length; }
  // Forgets positions >= pos (pos = 0 clears the sequence).
  void truncate(int seq, int64_t pos);
  // Makes room for position `pos`; throws warden::Error past the context.
  void reserve(int seq, int64_t pos);

  uint16_t* key(int seq, int64_t layer, int64_t pos) { return at(seq, layer, pos, kv_dim_, true); }
  uint16_t* value(int seq, int64_t layer, int64_t pos) { return at(seq, layer, pos, v_dim_, false); }
  const uint16_t* key(int seq, int64_t layer, int64_t pos) const {
    return const_cast<KvCache*>(this)->key(seq, layer, pos);
  }
  const uint16_t* value(int seq, int64_t layer, int64_t pos) const {
    return const_cast<KvCache*>(this)->value(seq, layer, pos);
  }
  void set_length(int seq, int64_t length);
  size_t bytes() const;

 private:
  struct Seq {
    int64_t length = 0;
    int64_t capacity = 0;
    std::vector<std::vector<uint16_t>> k, v;  // [layer][pos * dim]
  };
  uint16_t* at(int seq, int64_t layer, int64_t pos, int64_t dim, bool is_key);

  int64_t n_ctx_;
  int64_t n_layer_;
  int64_t kv_dim_;
  int64_t v_dim_;
  std::vector<Seq> seqs_;
};

}  // namespace warden::model
