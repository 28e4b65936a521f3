#pragma once
// Key/value cache in f16, one independent sequence per slot. Storage grows on
// demand (doubling) up to the context length, so a large -c costs memory only
// when it is used. Each layer holds its key heads one after the other, each
// head's positions contiguous: attention reads one head's keys and values as
// a stream the hardware prefetchers follow (with all heads of a position
// together, one head's rows would be a few cache lines every kv_dim * 2
// bytes, a stride they follow poorly once the cache outgrows L3).
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

  // Key head `head` of a layer: head_dim f16 per position, position 0 first.
  uint16_t* keys(int seq, int64_t layer, int64_t head) { return at(seq, layer, head, head_dim_, true); }
  // Value head `head`: head_dim_v f16 per position.
  uint16_t* values(int seq, int64_t layer, int64_t head) { return at(seq, layer, head, head_dim_v_, false); }
  const uint16_t* keys(int seq, int64_t layer, int64_t head) const {
    return const_cast<KvCache*>(this)->keys(seq, layer, head);
  }
  const uint16_t* values(int seq, int64_t layer, int64_t head) const {
    return const_cast<KvCache*>(this)->values(seq, layer, head);
  }
  void set_length(int seq, int64_t length);
  size_t bytes() const;

 private:
  struct Seq {
    int64_t length = 0;
    int64_t capacity = 0;
    std::vector<std::vector<uint16_t>> k, v;  // [layer][(head * capacity + pos) * head dim]
  };
  uint16_t* at(int seq, int64_t layer, int64_t head, int64_t head_dim, bool is_key);

  int64_t n_ctx_;
  int64_t n_layer_;
  int64_t n_head_kv_;
  int64_t head_dim_;
  int64_t head_dim_v_;
  std::vector<Seq> seqs_;
};

}  // namespace warden::model
