#include "modelgen/weights.h"

#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "modelgen/progress.h"
#include "tensor/quant.h"
#include "util/error.h"

namespace warden::modelgen {
namespace {

uint64_t mix64(uint64_t z) {  // SplitMix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct RowRng {
  uint64_t state;
  uint64_t next() { return mix64(state += 0x9e3779b97f4a7c15ull); }
};

constexpr int64_t kRowsPerChunk = 16;

}  // namespace

WeightGenerator::WeightGenerator(const ModelPlan& plan, uint64_t seed, const std::vector<bool>& normal_token)
    : plan_(plan), seed_(seed) {
  if (plan.preset.rope_scaling_factor > 0) rope_factors_ = llama3_rope_factors(plan.preset);
  if (plan.peaked && !plan.preset.tied_embeddings) {
    // Output row j is token_embd row sigma(j) for a random permutation sigma
    // of the ordinary tokens, so the logit of j peaks when the last token is
    // sigma(j): greedy decoding walks a fixed chain through the vocabulary,
    // with margins far above quantization noise. Special tokens get fresh
    // random rows, so the chain never lands on EOS.
    std::vector<int64_t> ordinary;
    for (size_t i = 0; i < normal_token.size(); i++)
      if (normal_token[i]) ordinary.push_back(int64_t(i));
    std::vector<int64_t> shuffled = ordinary;
    RowRng rng{mix64(seed ^ 0x7065616b6564ull)};
    for (size_t i = shuffled.size(); i > 1; i--) std::swap(shuffled[i - 1], shuffled[rng.next() % i]);
    output_source_row_.assign(normal_token.size(), -1);
    for (size_t k = 0; k < ordinary.size(); k++) output_source_row_[size_t(ordinary[k])] = shuffled[k];
  }
}

void WeightGenerator::normal_row(const std::string& stream, int64_t row, float scale, int64_t n, float* out) const {
  // An Irwin-Hall approximation of N(0, 1): the sum of four uniforms from one
  // 64-bit draw, centred and scaled to unit variance. Tails stop at 3.46
  // sigma, which weights do not need; it is ~10x cheaper than Box-Muller,
  // and generating the weights is most of make-model's time.
  RowRng rng{mix64(seed_ ^ hash_name(stream)) ^ mix64(uint64_t(row) + 1)};
  constexpr float kUnit = 1.0f / 65536.0f;
  const float factor = scale * 1.7320508f;  // sqrt(12 / 4)
  for (int64_t i = 0; i < n; i++) {
    const uint64_t bits = rng.next();
    const float sum = float((bits & 0xffff) + ((bits >> 16) & 0xffff) + ((bits >> 32) & 0xffff) + (bits >> 48)) +
                      2.0f;  // + 4 * 0.5: centre each 16-bit value in its interval
    out[i] = (sum * kUnit - 2.0f) * factor;
  }
}

void WeightGenerator::row(const PlannedTensor& t, int64_t r, float* out) const {
  const int64_t n = t.dims[0];
  switch (t.init) {
    case Init::ones:
      for (int64_t i = 0; i < n; i++) out[i] = 1.0f;
      return;
    case Init::rope_freqs:
      for (int64_t i = 0; i < n; i++) out[i] = rope_factors_.at(size_t(i));
      return;
    case Init::normal:
      normal_row(t.name, r, t.scale, n, out);
      return;
    case Init::embedding:
      normal_row("token_embd.weight", r, t.scale, n, out);
      return;
    case Init::peaked_output: {
      const int64_t source = output_source_row_.empty() ? -1 : output_source_row_.at(size_t(r));
      if (source >= 0)
        normal_row("token_embd.weight", source, t.scale, n, out);
      else
        normal_row(t.name, r, t.scale, n, out);
      return;
    }
  }
}

void parallel_rows(int64_t rows, int threads, const std::function<void(int64_t, int64_t)>& fill) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    while (!failed) {
      const int64_t first = next.fetch_add(kRowsPerChunk);
      if (first >= rows) return;
      try {
        fill(first, std::min(kRowsPerChunk, rows - first));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  const int64_t useful = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  for (int i = 1; i < threads && i < useful; i++) helpers.emplace_back(work);
  work();
  for (auto& h : helpers) h.join();
  if (error) std::rethrow_exception(error);
}

std::vector<uint8_t> encode_tensor(gguf::TensorType type, int64_t n, int64_t rows, int threads,
                                   const std::function<void(int64_t, float*)>& make, Progress* progress) {
  const size_t row_size = gguf::row_bytes(type, n);
  std::vector<uint8_t> data(row_size * size_t(rows));
  parallel_rows(rows, threads, [&](int64_t first, int64_t count) {
    std::vector<float> buffer(static_cast<size_t>(n));
    for (int64_t r = first; r < first + count; r++) {
      make(r, buffer.data());
      tensor::quantize_row(type, buffer.data(), data.data() + size_t(r) * row_size, n);
    }
    if (progress) progress->advance(uint64_t(count) * uint64_t(n));
  });
  return data;
}

}  // namespace warden::modelgen
