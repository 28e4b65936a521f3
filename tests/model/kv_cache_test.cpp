// The KV cache's layout: each key/value head's positions contiguous, kept in
// place as the storage grows, and sequences independent; Q8_0 rows.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/test_env.h"
#include "model/kv_cache.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace {

using warden::model::Config;
using warden::model::KvCache;
using warden::tensor::fp16_to_fp32;
using warden::tensor::fp32_to_fp16;
namespace gguf = warden::gguf;

Config small_config() {
  Config c;
  c.n_layer = 2;
  c.n_head = 6;
  c.n_head_kv = 3;
  c.head_dim = 8;
  c.head_dim_v = 4;
  return c;
}

// A half no other (seq, layer, head, position, element, key/value) shares:
// ids below 0x7C00 are finite halves, which the f16 cache stores bit for bit.
uint16_t mark(int seq, int64_t layer, int64_t head, int64_t pos, int64_t i, bool key) {
  return uint16_t((((seq * 2 + layer) * 3 + head) * 150 + pos) * 16 + i * 2 + (key ? 1 : 0));
}

void write_position(KvCache& cache, const Config& c, int seq, int64_t pos) {
  cache.reserve(seq, pos);
  std::vector<float> k(size_t(c.head_dim)), v(size_t(c.head_dim_v));
  for (int64_t l = 0; l < c.n_layer; l++)
    for (int64_t h = 0; h < c.n_head_kv; h++) {
      for (int64_t i = 0; i < c.head_dim; i++) k[size_t(i)] = fp16_to_fp32(mark(seq, l, h, pos, i, true));
      for (int64_t i = 0; i < c.head_dim_v; i++) v[size_t(i)] = fp16_to_fp32(mark(seq, l, h, pos, i, false));
      cache.store(seq, l, h, pos, k.data(), v.data());
    }
}

// Element i of position pos of f16 rows.
uint16_t half_at(const warden::tensor::CacheRows& rows, int64_t pos, int64_t i) {
  uint16_t h;
  std::memcpy(&h, rows.data + size_t(pos) * rows.row_bytes + 2 * size_t(i), sizeof h);
  return h;
}

TEST(KvCache, HeadsKeepTheirPositionsContiguousAcrossGrowth) {
  const Config c = small_config();
  KvCache cache(c, 200, 2);
  // 150 positions cross the 64 -> 128 -> 200 growth steps, each spread over
  // the last quarter before it; the second sequence grows at other moments.
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
        const auto k = cache.keys(seq, l, h), v = cache.values(seq, l, h);
        ASSERT_EQ(k.row_bytes, size_t(2 * c.head_dim));
        ASSERT_EQ(v.row_bytes, size_t(2 * c.head_dim_v));
        for (int64_t pos = 0; pos < n; pos++) {
          for (int64_t i = 0; i < c.head_dim; i++)
            ASSERT_EQ(half_at(k, pos, i), mark(seq, l, h, pos, i, true)) << seq << " " << l << " " << h << " " << pos;
          for (int64_t i = 0; i < c.head_dim_v; i++)
            ASSERT_EQ(half_at(v, pos, i), mark(seq, l, h, pos, i, false)) << seq << " " << l << " " << h << " " << pos;
        }
      }
  }
  // Room for 200 positions, and the second sequence half-way through growing
  // (its 50 positions are past three quarters of 64: its first layer has
  // moved to the storage for 128, read above alongside the layer that has
  // not): 200 + 64 + 128 positions of 2 layers x 3 heads x (8 + 4) halves.
  EXPECT_EQ(cache.bytes(), size_t((200 + 64 + 128) * 2 * 3 * (8 + 4) * 2));
}

TEST(KvCache, Q8_0RowsHoldTheQuantizedKeysAndValuesInHalfTheBytes) {
  // Keys Q8_0 and values f16, as -ctk q8_0 alone gives: each key row is
  // quantize_row's bytes (34 per 32 elements), across growth.
  Config c = small_config();
  c.head_dim = 64;
  c.head_dim_v = 32;
  KvCache cache(c, 100, 1, {gguf::TensorType::Q8_0, gguf::TensorType::F16});
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<std::vector<float>> keys, values;  // [pos * 6 + layer * 3 + head]
  for (int64_t pos = 0; pos < 70; pos++) {
    cache.reserve(0, pos);
    for (int64_t l = 0; l < c.n_layer; l++)
      for (int64_t h = 0; h < c.n_head_kv; h++) {
        std::vector<float> k(64), v(32);
        for (auto& x : k) x = normal(rng);
        for (auto& x : v) x = normal(rng);
        cache.store(0, l, h, pos, k.data(), v.data());
        keys.push_back(k);
        values.push_back(v);
      }
  }
  for (int64_t l = 0; l < c.n_layer; l++)
    for (int64_t h = 0; h < c.n_head_kv; h++) {
      const auto k = cache.keys(0, l, h), v = cache.values(0, l, h);
      ASSERT_EQ(k.type, gguf::TensorType::Q8_0);
      ASSERT_EQ(k.row_bytes, size_t(2 * 34));
      for (int64_t pos = 0; pos < 70; pos++) {
        const size_t at = size_t(pos * 6 + l * 3 + h);
        std::vector<uint8_t> want(2 * 34);
        warden::tensor::quantize_row(gguf::TensorType::Q8_0, keys[at].data(), want.data(), 64);
        ASSERT_EQ(0, std::memcmp(k.data + size_t(pos) * k.row_bytes, want.data(), want.size())) << l << " " << h << " " << pos;
        for (int64_t i = 0; i < 32; i++)
          ASSERT_EQ(fp16_to_fp32(half_at(v, pos, i)), fp16_to_fp32(fp32_to_fp16(values[at][size_t(i)])));
      }
    }
  EXPECT_EQ(cache.bytes(), size_t(100 * 2 * 3 * (2 * 34 + 2 * 32)));  // grown to the context's 100 positions
}

// Short contexts read each head's rows as short streams, which 4 KiB pages
// slowed by a fifth (kv_cache.h): the storage is in huge pages wherever the
// kernel gives a process any.
TEST(KvCache, StorageIsInHugePages) {
  {
    warden::AnonymousMemory probe(size_t(8) << 20);
    std::memset(probe.data(), 1, probe.size());
    if (warden::huge_mapped_bytes(probe.data()) == 0) GTEST_SKIP() << "no transparent huge pages for this process";
  }
  Config c = small_config();
  c.n_layer = 4;
  c.n_head_kv = 8;
  c.head_dim = c.head_dim_v = 128;
  KvCache cache(c, 1024, 1);  // 16 MiB at full length
  const std::vector<float> k(128, 0.5f), v(128, -0.5f);
  for (int64_t pos = 0; pos < 1024; pos++) {
    cache.reserve(0, pos);
    for (int64_t l = 0; l < c.n_layer; l++)
      for (int64_t h = 0; h < c.n_head_kv; h++) cache.store(0, l, h, pos, k.data(), v.data());
  }
  ASSERT_EQ(cache.bytes(), size_t(16) << 20);
  EXPECT_GE(warden::huge_mapped_bytes(cache.keys(0, 0, 0).data), cache.bytes() * 3 / 4);
}

// A field of /proc/self/status in MiB ("VmRSS", "VmHWM").
double status_mib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return -1;
}

// Growing moves every head to a larger span; each layer's old rows are given
// back once copied, so the peak is the grown cache plus one old layer, not
// old and new whole (the RSS budget of issue 6 counts the cache once).
TEST(KvCache, GrowingHoldsOneOldLayerAtATime) {
  if (warden::test::kSanitizedBuild) GTEST_SKIP() << "a sanitizer's shadow memory counts in the RSS";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a fresh peak (VmHWM) for this process alone
    Config c = small_config();
    c.n_layer = 16;
    c.n_head_kv = 8;
    c.head_dim = c.head_dim_v = 128;
    KvCache cache(c, 1024, 1);  // 64 KiB per position: 32 MiB at 512, 64 at 1024
    const std::vector<float> k(128, 0.5f), v(128, -0.5f);
    for (int64_t pos = 0; pos <= 512; pos++) {  // position 512 grows 512 -> 1024
      cache.reserve(0, pos);
      for (int64_t l = 0; l < c.n_layer; l++)
        for (int64_t h = 0; h < c.n_head_kv; h++) cache.store(0, l, h, pos, k.data(), v.data());
    }
    const double over = status_mib("VmHWM") - status_mib("VmRSS");
    std::fprintf(stderr, "peak over the grown cache's RSS: %.1f MiB\n", over);
    _exit(over < 8 ? 0 : 1);  // one old layer is 2 MiB; old and new whole were 32 MiB over
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "growing held more than one old layer at once";
}

TEST(KvCache, UnsupportedTypesAndHeadSizesAreErrors) {
  Config c = small_config();  // heads of 8 and 4 elements
  EXPECT_THROW(KvCache(c, 10, 1, {gguf::TensorType::Q8_0, gguf::TensorType::F16}), warden::Error);
  c.head_dim = c.head_dim_v = 64;
  EXPECT_NO_THROW(KvCache(c, 10, 1, {gguf::TensorType::Q8_0, gguf::TensorType::Q8_0}));
  EXPECT_THROW(KvCache(c, 10, 1, {gguf::TensorType::Q4_0, gguf::TensorType::F16}), warden::Error);
  EXPECT_THROW(KvCache(c, 10, 1, {gguf::TensorType::F16, gguf::TensorType::F32}), warden::Error);
  EXPECT_EQ(warden::model::parse_kv_cache_type("q8_0", "-ctk"), gguf::TensorType::Q8_0);
  EXPECT_EQ(warden::model::parse_kv_cache_type("f16", "-ctk"), gguf::TensorType::F16);
  try {
    warden::model::parse_kv_cache_type("q4_0", "-ctv");
    FAIL() << "q4_0 accepted";
  } catch (const warden::Error& e) {
    EXPECT_NE(std::string(e.what()).find("-ctv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q4_0"), std::string::npos) << e.what();
  }
}

TEST(KvCache, PositionPastTheContextIsAnError) {
  const Config c = small_config();
  KvCache cache(c, 10, 1);
  cache.reserve(0, 9);
  EXPECT_THROW(cache.reserve(0, 10), warden::Error);
}

}  // namespace
