// The KV cache's layout: each key/value head's positions contiguous, kept in
// place as the storage grows, and sequences independent.
#include <gtest/gtest.h>

#include "model/kv_cache.h"
#include "util/error.h"

namespace {

using warden::model::Config;
using warden::model::KvCache;

Config small_config() {
  Config c;
  c.n_layer = 2;
  c.n_head = 6;
  c.n_head_kv = 3;
  c.head_dim = 8;
  c.head_dim_v = 4;
  return c;
}

// A value no other (seq, layer, head, position, element, key/value) shares.
uint16_t mark(int seq, int64_t layer, int64_t head, int64_t pos, int64_t i, bool key) {
  return uint16_t((((seq * 2 + layer) * 3 + head) * 200 + pos) * 16 + i * 2 + (key ? 1 : 0));
}

void write_position(KvCache& cache, const Config& c, int seq, int64_t pos) {
  cache.reserve(seq, pos);
  for (int64_t l = 0; l < c.n_layer; l++)
    for (int64_t h = 0; h < c.n_head_kv; h++) {
      for (int64_t i = 0; i < c.head_dim; i++) cache.keys(seq, l, h)[pos * c.head_dim + i] = mark(seq, l, h, pos, i, true);
      for (int64_t i = 0; i < c.head_dim_v; i++)
        cache.values(seq, l, h)[pos * c.head_dim_v + i] = mark(seq, l, h, pos, i, false);
    }
}

TEST(KvCache, HeadsKeepTheirPositionsContiguousAcrossGrowth) {
  const Config c = small_config();
  KvCache cache(c, 200, 2);
  // 150 positions cross the 64 -> 128 -> 200 growth steps; the second
  // sequence grows at other moments.
  for (int64_t pos = 0; pos < 150; pos++) {
    write_position(cache, c, 0, pos);
    if (pos % 3 == 0) write_position(cache, c, 1, pos / 3);
    cache.set_length(0, pos + 1);
    cache.set_length(1, pos / 3 + 1);
  }
  for (int seq = 0; seq < 2; seq++) {
    const int64_t n = seq == 0 ? 150 : 50;
    ASSERT_EQ(cache.length(seq), n);
    for (int64_t l = 0; l < c.n_layer; l++)
      for (int64_t h = 0; h < c.n_head_kv; h++) {
        const uint16_t* k = cache.keys(seq, l, h);
        const uint16_t* v = cache.values(seq, l, h);
        for (int64_t pos = 0; pos < n; pos++) {
          for (int64_t i = 0; i < c.head_dim; i++)
            ASSERT_EQ(k[pos * c.head_dim + i], mark(seq, l, h, pos, i, true)) << seq << " " << l << " " << h << " " << pos;
          for (int64_t i = 0; i < c.head_dim_v; i++)
            ASSERT_EQ(v[pos * c.head_dim_v + i], mark(seq, l, h, pos, i, false)) << seq << " " << l << " " << h << " " << pos;
        }
      }
  }
}

TEST(KvCache, PositionPastTheContextIsAnError) {
  const Config c = small_config();
  KvCache cache(c, 10, 1);
  cache.reserve(0, 9);
  EXPECT_THROW(cache.reserve(0, 10), warden::Error);
}

}  // namespace
