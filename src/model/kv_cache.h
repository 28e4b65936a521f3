#pragma once
// Key/value cache, one independent sequence per slot. Storage grows on
// demand (doubling) up to the context length, so a large -c costs memory only
// when it is used. Growing copies the cache into fresh pages, so it is spread
// out: from three quarters of the capacity on, the layers move to the doubled
// storage one after another across the positions that remain (moving them all
// at once stalled qwen3-0.6b's decode 0.25 s at 2048 positions, 0.53 s at
// 4096 and 1.06 s at 8192 on the 2-core EPYC VM this project measures on;
// docs/performance.md). Each layer holds its key heads one after the other,
// then its value heads, each head's positions contiguous: attention reads one
// head's keys and values as a stream the hardware prefetchers follow (with
// all heads of a position together, one head's rows would be a few cache
// lines every kv_dim * 2 bytes, a stride they follow poorly once the cache
// outgrows L3).
//
// A sequence's storage is one mapping marked for huge pages, as the packed
// weights are. In a short context each head's keys are a few KiB to tens of
// KiB, and in 4 KiB pages every page began a stream anew for the prefetchers
// and the TLB: decode attention over 64-128 positions took 20 % longer
// (qwen3-0.6b, 2 threads, the same cache in both kinds of pages, alternating
// token by token), about 1 % of a tg128 step.
//
// Keys and values are each stored as F16 (the default) or Q8_0 (llama.cpp's
// --cache-type-k / --cache-type-v q8_0): 34 bytes per 32 elements instead of
// 64, so a long context takes about half the memory and decode reads about
// half as many bytes from the cache per token, at 8-bit precision.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "gguf/types.h"
#include "model/config.h"
#include "tensor/vector_ops.h"
#include "util/mapped_file.h"

namespace warden::model {

struct KvCacheTypes {
  gguf::TensorType key = gguf::TensorType::F16;
  gguf::TensorType value = gguf::TensorType::F16;
};

// "f16" or "q8_0" (as llama.cpp spells them); anything else throws
// warden::Error naming `flag` and the value.
gguf::TensorType parse_kv_cache_type(std::string_view name, std::string_view flag);

class KvCache {
 public:
  // Throws warden::Error for a type other than F16 or Q8_0, or Q8_0 for
  // heads whose size is not a multiple of 32.
  KvCache(const Config& config, int64_t n_ctx, int n_seq, KvCacheTypes types = {});

  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return int(seqs_.size()); }
  // Number of positions currently held for a sequence.
  int64_t length(int seq) const { return seqs_.at(size_t(seq)).length; }
  // Forgets positions >= pos (pos = 0 clears the sequence).
  void truncate(int seq, int64_t pos);
  // Makes room for position `pos`; throws warden::Error past the context.
  void reserve(int seq, int64_t pos);

  // Key head `head` of a layer (head_dim elements per position) and its
  // value head (head_dim_v), position 0 first.
  tensor::CacheRows keys(int seq, int64_t layer, int64_t head) const;
  tensor::CacheRows values(int seq, int64_t layer, int64_t head) const;
  // Stores one position's key and value of a head (reserve() it first),
  // converted to the cache's types.
  void store(int seq, int64_t layer, int64_t head, int64_t pos, const float* key, const float* value);
  void set_length(int seq, int64_t length);
  // The storage mapped for the sequences (while a sequence grows, its old
  // storage and its doubled one).
  size_t bytes() const;
  // The keys and values of one position in every layer and head.
  size_t bytes_per_position() const { return size_t(n_layer_ * n_head_kv_) * (key_row_bytes_ + value_row_bytes_); }

 private:
  struct Seq {
    int64_t length = 0;
    int64_t capacity = 0;
    // Per layer: keys [(head * capacity + pos) * key row bytes], then values
    // alike; null until the first reserve().
    std::unique_ptr<AnonymousMemory> storage;
    // While growing: the doubled storage, laid out alike for next_capacity
    // positions, which holds the layers below `moved` (their old rows are
    // given back); null otherwise.
    std::unique_ptr<AnonymousMemory> next;
    int64_t next_capacity = 0;
    int64_t moved = 0;
  };
  void move_layer(Seq& s);
  // One layer's keys and values in storage laid out for `capacity` positions.
  size_t layer_bytes(int64_t capacity) const;
  // Row 0 of a head's keys (or values) in storage laid out for `capacity` positions.
  uint8_t* head_rows(uint8_t* storage, int64_t capacity, int64_t layer, int64_t head, bool is_key) const;
  uint8_t* row(int seq, int64_t layer, int64_t head, int64_t pos, bool is_key);

  int64_t n_ctx_;
  int64_t n_layer_;
  int64_t n_head_kv_;
  int64_t head_dim_;
  int64_t head_dim_v_;
  KvCacheTypes types_;
  size_t key_row_bytes_, value_row_bytes_;
  std::vector<Seq> seqs_;
};

}  // namespace warden::model
