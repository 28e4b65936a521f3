#pragma once
// A loaded model: its configuration and views of its weights, which stay in
// the memory-mapped GGUF file (only 1-D tensors such as norms and biases are
// copied out, as f32).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/packed_cache.h"
#include "util/mapped_file.h"

namespace warden::model {

// A weight matrix of `rows` rows of `cols` elements each, possibly a stack of
// `slices` such matrices (the experts of a MoE layer).
struct Matrix {
  gguf::TensorType type = gguf::TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;
  int64_t rows = 0;
  int64_t slices = 1;
  size_t row_bytes = 0;
  // The same weights repacked at load for the kernel set's matrix kernel
  // (tensor::PackFn), or null: per slice, ceil(rows / 8) panels of
  // panel_bytes each. Owned by the Model.
  const uint8_t* packed = nullptr;
  size_t panel_bytes = 0;
  // Where the panels of a one-slice matrix lie when they are not one run
  // from `packed` (the decode layout, model/decode_layout.h): run k holds
  // panels [runs[k].first, runs[k + 1].first), the last up to the end.
  // Empty: one run.
  struct PanelRun {
    int64_t first;
    const uint8_t* data;
  };
  std::vector<PanelRun> runs;

  explicit operator bool() const { return data != nullptr; }
  const uint8_t* row(int64_t r, int64_t slice = 0) const {
    return data + (size_t(slice) * size_t(rows) + size_t(r)) * row_bytes;
  }
  static constexpr int64_t kPanelRows = 8;  // rows per packed panel (tensor::PackFn)
  int64_t panels() const { return (rows + kPanelRows - 1) / kPanelRows; }
  // Panel p of slice `slice` of the packed copy; `run_end` gets the first
  // panel past p's run (the panels from p up to it lie one after another).
  const uint8_t* packed_panel(int64_t p, int64_t slice, int64_t& run_end) const;
};

struct Layer {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> q_norm, k_norm;  // qwen3: per-head RMSNorm weights
  std::vector<float> bq, bk, bv;      // qwen2: projection biases
  Matrix wq, wk, wv, wo;
  Matrix ffn_gate, ffn_up, ffn_down;            // dense FFN
  Matrix router, gate_exps, up_exps, down_exps;  // MoE FFN
};

class Model {
 public:
  // Builds whatever else the caller needs from the file's metadata (the
  // tokenizer). Called once during load, after the configuration is read and
  // before the large metadata arrays are released.
  using MetadataReader = std::function<void(const gguf::File&)>;

  // Loads and validates `path`: every tensor the architecture needs must be
  // present with the right shape. Throws warden::Error naming the problem.
  // After `read_metadata` returns, the file's large metadata arrays (the
  // vocabulary, merges, scores, token types) are released to save memory:
  // file().get() of one of them then throws; scalars and strings such as
  // tokenizer.chat_template stay readable.
  // decode_team: how many threads will decode as a team (ThreadPool's
  // team_size), for the packed copy's layout (model/decode_layout.h); 0:
  // as many as this process can use (usable_cpus()), a pool's default. Any
  // team reads any layout correctly; only its speed depends on the match.
  static std::unique_ptr<Model> load(const std::string& path, const MetadataReader& read_metadata = {},
                                     int decode_team = 0);

  const Config& config() const { return config_; }
  const gguf::File& file() const { return *file_; }

  Matrix token_embd;
  Matrix output;  // token_embd when the output projection is tied
  std::vector<float> output_norm;
  std::vector<float> rope_freqs;  // llama3 frequency factors, empty if none
  std::vector<Layer> layers;

  // Bytes of repacked weights held in memory (0 when nothing was repacked).
  size_t packed_bytes() const;
  // Whether they were mapped from the cache (packed_cache.h) rather than
  // packed by this load.
  bool packed_from_cache() const { return packed_ && packed_->from_cache(); }
  // How many of those bytes this process reaches through huge page entries
  // (decode reads the rest through 4 KiB entries, a TLB miss per page).
  size_t packed_huge_bytes() const;
  // The packed copy (nullptr when nothing was packed), for benchmarks that
  // move it (bench/model/bench_layout_swap).
  const PackedWeights* packed_weights() const { return packed_.get(); }

  // Token `token`'s embedding, n_embd floats into `out`. Where the embedding
  // is the tied output matrix and that is packed, the row comes from the
  // packed copy where its type has an unpacking routine (TypeKernels::
  // unpack: Q6_K, Q8_0, Q4_0, F16, BF16), else from the file, and never
  // through the file's mapping: a fault there maps the whole folio around the row
  // (up to 2 MiB with ext4's large folios), so lookups would make the
  // embedding resident bit by bit beside its packed copy, and mapping a
  // folio and handing it back after each lookup cost 80-310 us a token
  // (q3-q4km decode, 2026-11-27). The file's pages, unmapped, are what this
  // VM's page reclaim drops after a minute, and then each read is a read
  // from disk: 200-400 us a token, 0.65-0.7 ms for l1b-q6k (3.5 % of a
  // step); from the packed copy a lookup costs about a microsecond. Anywhere
  // else the row is read through the mapping: an untied embedding's pages
  // are the file's own share of memory, and mapped they stay out of that
  // reclaim (moe-q4km: 0.9-1.0 ms a token read from disk, 12 % of a step).
  void embed(int32_t token, float* out) const;

 private:
  void pack_weights(int decode_team);

  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<PackedWeights> packed_;  // every repacked matrix, one region
  Config config_;
};

}  // namespace warden::model
