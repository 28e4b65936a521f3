#include "model/model.h"

#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <atomic>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "model/arch.h"
#include "model/decode_layout.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "util/cpu_topology.h"
#include "util/error.h"
#include "util/log.h"
#include "util/mapped_file.h"
#include "util/sha256.h"

namespace warden::model {
namespace {

class Loader {
 public:
  Loader(const gguf::File& f) : f_(f) {}

  Matrix matrix(const std::string& name, int64_t cols, int64_t rows, int64_t slices = 1) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) throw Error(f_.path() + ": missing tensor " + name);
    std::vector<int64_t> want{cols, rows};
    if (slices > 1) want.push_back(slices);
    if (t->dims != want)
      throw Error(f_.path() + ": tensor " + name + " has shape " + shape(t->dims) + ", expected " + shape(want));
    if (!tensor::can_compute(t->type))
      throw Error(f_.path() + ": tensor " + name + " has type " + std::string(gguf::type_name(t->type)) +
                  ", which cannot be computed");
    Matrix m;
    m.type = t->type;
    m.data = f_.view(*t).data;
    m.cols = cols;
    m.rows = rows;
    m.slices = slices;
    m.row_bytes = gguf::row_bytes(t->type, cols);
    return m;
  }

  std::optional<Matrix> optional_matrix(const std::string& name, int64_t cols, int64_t rows) const {
    if (!f_.find_tensor(name)) return std::nullopt;
    return matrix(name, cols, rows);
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) throw Error(f_.path() + ": missing tensor " + name);
    if (t->dims != std::vector<int64_t>{n})
      throw Error(f_.path() + ": tensor " + name + " has shape " + shape(t->dims) + ", expected " + std::to_string(n));
    if (!tensor::can_compute(t->type))
      throw Error(f_.path() + ": tensor " + name + " has unsupported type " + std::string(gguf::type_name(t->type)));
    std::vector<float> out(static_cast<size_t>(n));
    tensor::dequantize_row(t->type, f_.view(*t).data, out.data(), n);
    return out;
  }

 private:
  static std::string shape(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); i++) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }
  const gguf::File& f_;
};

Config read_config(const gguf::File& f) {
  Config c;
  c.arch = f.get_string("general.architecture");
  if (c.arch.empty()) throw Error(f.path() + ": missing metadata key general.architecture");
  const Architecture* arch = find_architecture(c.arch);
  if (!arch) throw Error(f.path() + ": architecture '" + c.arch + "' is not supported (llama, qwen2, qwen3, qwen3moe are)");
  read_common_hparams(f, c);
  arch->configure(f, c);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2) throw Error(f.path() + ": missing or malformed tensor token_embd.weight");
  c.n_vocab = embd->dims[1];
  return c;
}

// Once the configuration and the caller's tokenizer are built, the parsed
// vocabulary arrays (~18 MiB for a 128k-token vocabulary, in hundreds of
// thousands of small allocations) are dead weight for the rest of the run.
// glibc keeps freed small chunks in its arena, so the freed pages are handed
// back to the system explicitly.
void release_metadata_arrays(gguf::File& f) {
  if (f.release_large_arrays() == 0) return;
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const MetadataReader& read_metadata, int decode_team) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = std::make_unique<gguf::File>(path);
  const gguf::File& f = *m->file_;
  m->config_ = read_config(f);
  // Before the weights are repacked, so the reader's temporary copies of the
  // vocabulary never coincide with the packed copy of the weights.
  if (read_metadata) read_metadata(f);
  release_metadata_arrays(*m->file_);
  const Config& c = m->config_;
  Loader load(f);

  m->token_embd = load.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  m->output = load.optional_matrix("output.weight", c.n_embd, c.n_vocab).value_or(m->token_embd);
  m->output_norm = load.vector("output_norm.weight", c.n_embd);
  if (f.find_tensor("rope_freqs.weight")) m->rope_freqs = load.vector("rope_freqs.weight", c.rope_dim / 2);

  for (int64_t i = 0; i < c.n_layer; i++) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer l;
    l.attn_norm = load.vector(p + "attn_norm.weight", c.n_embd);
    l.ffn_norm = load.vector(p + "ffn_norm.weight", c.n_embd);
    l.wq = load.matrix(p + "attn_q.weight", c.n_embd, c.q_dim());
    l.wk = load.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim());
    l.wv = load.matrix(p + "attn_v.weight", c.n_embd, c.v_dim());
    l.wo = load.matrix(p + "attn_output.weight", c.n_head * c.head_dim_v, c.n_embd);
    if (c.qkv_bias) {
      l.bq = load.vector(p + "attn_q.bias", c.q_dim());
      l.bk = load.vector(p + "attn_k.bias", c.kv_dim());
      l.bv = load.vector(p + "attn_v.bias", c.v_dim());
    }
    if (c.qk_norm) {
      l.q_norm = load.vector(p + "attn_q_norm.weight", c.head_dim);
      l.k_norm = load.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    if (c.n_expert > 0) {
      l.router = load.matrix(p + "ffn_gate_inp.weight", c.n_embd, c.n_expert);
      l.gate_exps = load.matrix(p + "ffn_gate_exps.weight", c.n_embd, c.n_ff_expert, c.n_expert);
      l.up_exps = load.matrix(p + "ffn_up_exps.weight", c.n_embd, c.n_ff_expert, c.n_expert);
      l.down_exps = load.matrix(p + "ffn_down_exps.weight", c.n_ff_expert, c.n_embd, c.n_expert);
    } else {
      l.ffn_gate = load.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
      l.ffn_up = load.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
      l.ffn_down = load.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    }
    m->layers.push_back(std::move(l));
  }
  m->pack_weights(decode_team);
  return m;
}

namespace {

// Tells the kernel the process no longer needs these pages of the read-only
// file mapping: they leave the resident set (the page cache keeps them, and a
// later read, such as an embedding lookup, maps them back).
void release_mapped_pages(const uint8_t* begin, size_t bytes) {
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (uintptr_t(begin) + page - 1) / page * page;
  const uintptr_t last = (uintptr_t(begin) + bytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

// MemAvailable from /proc/meminfo in bytes, or 0 when unknown.
size_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

// The matrices the forward pass multiplies by. token_embd is one only as the
// tied output matrix: lookups read its rows from the file (Model::embed), so
// a packed copy of an untied embedding would be built and cached for nothing
// (175 MB for the qwen3moe preset's).
std::vector<Matrix*> matrices_of(Model& m) {
  std::vector<Matrix*> all{&m.output};
  for (Layer& l : m.layers)
    for (Matrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.router, &l.gate_exps,
                      &l.up_exps, &l.down_exps})
      if (*w) all.push_back(w);
  return all;
}

// Panels [begin, end) of every slice of a matrix, packed at `offset` of the
// region (a one-slice matrix may be packed as several runs: decode_layout.h).
struct PackedRun {
  Matrix* w;
  int64_t begin, end;
  size_t offset;
};

size_t run_bytes(const PackedRun& run) {
  return size_t(run.w->slices * (run.end - run.begin)) * tensor::active_kernels().find(run.w->type)->panel_bytes(run.w->cols);
}

// The runs to pack, in the order they lie in the region: each member of a
// decode team of `members` (the CPUs this process can use, as a ThreadPool's
// team) its panels in the order it reads them, then whatever the team does
// not read in a fixed order (MoE experts) whole. Offsets are left to the caller.
std::vector<PackedRun> packed_runs(const Model& m, const std::vector<Matrix*>& unique, int members) {
  std::vector<PackedRun> runs;
  std::set<const Matrix*> laid_out;
  for (const std::vector<PanelRange>& reads : decode_reads(m, members))
    for (const PanelRange& r : reads) {
      const auto owner = std::find(unique.begin(), unique.end(), r.w);
      if (owner == unique.end()) continue;  // not packed, or another matrix's copy
      if (!runs.empty() && runs.back().w == r.w && runs.back().end == r.begin)
        runs.back().end = r.end;  // the same member's reads go on in the same matrix
      else
        runs.push_back({*owner, r.begin, r.end, 0});
      laid_out.insert(r.w);
    }
  for (Matrix* w : unique)
    if (!laid_out.count(w)) runs.push_back({w, 0, w->panels(), 0});
  return runs;
}

// The key of a model's packed copy in the cache (packed_cache.h): the file as
// mapped, the kernel set, and the packed layout: each tensor's type, shape
// and place, and the first panel of each type as the kernel set packs it now,
// so that a change to any packing makes another key. Empty (no cache) for a
// model that is not a mapped file.
std::string packed_cache_key(const gguf::File& f, const std::vector<Matrix*>& unique,
                             const std::vector<PackedRun>& runs) {
  if (f.identity().empty()) return "";
  std::string layout = "warden packed weights\n" + f.identity() + "\n" + tensor::kernel_set_name() + "\n";
  for (const PackedRun& run : runs) {
    const int64_t matrix = std::find(unique.begin(), unique.end(), run.w) - unique.begin();
    for (int64_t v : {matrix, run.begin, run.end, int64_t(run.offset)}) layout += std::to_string(v) + " ";
  }
  std::set<gguf::TensorType> sampled;
  for (size_t i = 0; i < unique.size(); i++) {
    const Matrix& w = *unique[i];
    const tensor::TypeKernels& k = *tensor::active_kernels().find(w.type);
    for (int64_t v : {int64_t(w.type), w.rows, w.cols, w.slices}) layout += std::to_string(v) + " ";
    if (sampled.insert(w.type).second) {
      std::vector<uint8_t> panel(k.panel_bytes(w.cols));
      k.pack(w.row(0, 0), w.row_bytes, std::min<int64_t>(8, w.rows), w.cols, panel.data());
      layout.append(reinterpret_cast<const char*>(panel.data()), panel.size());
    }
  }
  return sha256_hex(layout);
}

// Packs each run at its offset of `region`, spread over the cores (each
// writes the runs of its own tensors).
void pack_runs(uint8_t* region, const std::vector<Matrix*>& unique, const std::vector<PackedRun>& runs) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < unique.size(); i = next++) {
      Matrix& w = *unique[i];
      const tensor::TypeKernels& k = *tensor::active_kernels().find(w.type);
      for (const PackedRun& run : runs) {
        if (run.w != &w) continue;
        uint8_t* out = region + run.offset;  // pages become resident only as they are packed
        // A chunk of rows at a time, each chunk's file pages released as
        // soon as it is packed, so the original and packed copies of a large
        // matrix (the token embedding) are never resident together.
        constexpr int64_t kChunkRows = 1024;
        const int64_t end_row = std::min(w.rows, run.end * Matrix::kPanelRows);
        for (int64_t s = 0; s < w.slices; s++)
          for (int64_t r0 = run.begin * Matrix::kPanelRows; r0 < end_row; r0 += kChunkRows) {
            const int64_t rows = std::min(kChunkRows, end_row - r0);
            const int64_t panel = s * (run.end - run.begin) + r0 / Matrix::kPanelRows - run.begin;
            k.pack(w.row(r0, s), w.row_bytes, rows, w.cols, out + size_t(panel) * k.panel_bytes(w.cols));
            release_mapped_pages(w.row(r0, s), size_t(rows) * w.row_bytes);
          }
      }
      // Each chunk released only its whole pages; the pages two chunks share
      // (one per chunk boundary unless rows end on page boundaries: ~8 MiB
      // over the experts of a qwen3moe file) go now.
      release_mapped_pages(w.data, size_t(w.slices * w.rows) * w.row_bytes);
    }
  };
  std::vector<std::thread> threads;  // one per CPU this process can keep busy (packing uses every hardware thread)
  for (int t = 1; t < usable_cpus(); t++) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

}  // namespace

// Repacks every matrix whose type the kernel set can pack, once per distinct
// tensor (the output matrix may be the token embedding), and hands the
// original pages back so resident memory stays about the file's size. A copy
// packed by an earlier load is mapped from the cache instead (packed_cache.h).
// Packed weights are written to memory the kernel cannot drop and re-read
// the way it can a file mapping's clean pages: when they would not fit in the
// memory available now (with 1 GiB to spare), the model stays mapped and
// unpacked, slower but safe. The copy is laid out for a decode team of
// `decode_team` threads (decode_layout.h).
void Model::pack_weights(int decode_team) {
  const std::vector<Matrix*> all = matrices_of(*this);
  // Each distinct tensor once; every matrix that shares it points at the result.
  std::vector<Matrix*> unique;
  std::map<const uint8_t*, Matrix*> first;
  for (Matrix* w : all) {
    const tensor::TypeKernels* k = tensor::active_kernels().find(w->type);
    if (k && k->pack && first.emplace(w->data, w).second) unique.push_back(w);
  }
  if (unique.empty()) return;
  // One region for all of them, in the order each decode thread reads them
  // (packed_runs), so it can be backed by 2 MiB pages throughout (a mapping
  // per matrix would leave the unaligned ends of each in small pages) and
  // cached as one file.
  std::vector<PackedRun> runs = packed_runs(*this, unique, decode_team > 0 ? decode_team : usable_cpus());
  size_t total = 0;
  for (PackedRun& run : runs) {
    run.offset = total;
    total += (run_bytes(run) + 63) / 64 * 64;
  }
  const PackedCacheSettings cache = PackedCacheSettings::from_environment().for_model(file_->identity());
  const std::string key = packed_cache_key(*file_, unique, runs);
  packed_ = PackedWeights::open_cached(cache, key, total);
  if (!packed_) {
    const size_t available = available_memory();
    if (available != 0 && total + (size_t(1) << 30) > available) {
      log::warn("not repacking " + std::to_string(total >> 20) + " MiB of weights: only " +
                std::to_string(available >> 20) + " MiB of memory available; decode will be slower");
      return;
    }
    packed_ = PackedWeights::create(cache, key, total);
    pack_runs(packed_->data(), unique, runs);
    packed_->finish();
  }
  std::sort(runs.begin(), runs.end(), [](const PackedRun& a, const PackedRun& b) { return a.begin < b.begin; });
  for (Matrix* w : unique) {
    w->panel_bytes = tensor::active_kernels().find(w->type)->panel_bytes(w->cols);
    for (const PackedRun& run : runs)
      if (run.w == w) w->runs.push_back({run.begin, packed_->data() + run.offset});
    w->packed = w->runs.front().data;  // the run of panel 0
    if (w->runs.size() == 1) w->runs.clear();
  }
  for (Matrix* w : all)
    if (Matrix* owner = first.count(w->data) ? first[w->data] : nullptr; owner && owner != w) *w = *owner;
}

const uint8_t* Matrix::packed_panel(int64_t p, int64_t slice, int64_t& run_end) const {
  if (runs.empty()) {
    run_end = panels();
    return packed + size_t(slice * panels() + p) * panel_bytes;
  }
  const auto next = std::upper_bound(runs.begin(), runs.end(), p, [](int64_t v, const PanelRun& r) { return v < r.first; });
  run_end = next == runs.end() ? panels() : next->first;
  return std::prev(next)->data + size_t(p - std::prev(next)->first) * panel_bytes;
}

void Model::embed(int32_t token, float* out) const {
  if (!(output.packed && output.data == token_embd.data)) {
    tensor::dequantize_row(token_embd.type, token_embd.row(token), out, config_.n_embd);
    return;
  }
  thread_local std::vector<uint8_t> row;
  row.resize(token_embd.row_bytes);
  if (const tensor::UnpackFn unpack = tensor::active_kernels().find(output.type)->unpack) {
    int64_t run_end = 0;
    unpack(output.packed_panel(token / Matrix::kPanelRows, 0, run_end), int(token % Matrix::kPanelRows), output.cols,
           row.data());
  } else {
    file_->read(token_embd.row(token), row.data(), row.size());
  }
  tensor::dequantize_row(token_embd.type, row.data(), out, config_.n_embd);
}

size_t Model::packed_bytes() const { return packed_ ? packed_->size() : 0; }

// The mapping's huge pages can reach past the weights (in memory, the last
// 2 MiB page covers the end of the region and the alignment slack after it).
size_t Model::packed_huge_bytes() const {
  return packed_ ? std::min(huge_mapped_bytes(packed_->data()), packed_->size()) : 0;
}

}  // namespace warden::model
