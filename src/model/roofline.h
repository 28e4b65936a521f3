#pragma once
// The decode roofline: which bytes of weights one generated token reads, and
// how long the thread pool takes to read exactly those bytes with no
// arithmetic. Measured in the same process, on the same pages (huge pages
// for repacked weights, the file mapping otherwise) and with the same
// threads as decode, so "tokens/s at the memory limit" needs no figure from
// another program.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "util/thread_pool.h"

namespace warden::model {

struct ReadSpan {
  const uint8_t* data;
  size_t bytes;
};

// Every matrix a single-token step multiplies by, as the kernels read it (the
// packed copy where there is one): all layer matrices, for a MoE layer the
// share of n_expert_used experts (the first ones: any choice reads the same
// number of bytes), and the output matrix. Not the embedding (one row per
// token), norms or the KV cache: its bytes depend on the position, so
// `warden bench` adds them from the cache's size per position (0.3-2 % of
// a 128-token run from an empty cache, most of it at a depth of thousands).
std::vector<ReadSpan> decode_read_set(const Model& m);

size_t total_bytes(const std::vector<ReadSpan>& spans);

// Seconds for one pass that reads every byte of `spans`, split evenly over
// the pool's threads as the matrix products split their rows.
double time_read_pass(const std::vector<ReadSpan>& spans, ThreadPool& pool);

// Seconds for one handoff of a cache line between the first two threads of
// the pool's team (each waits for the other's write, then writes), the cost
// of every barrier and of every value one thread writes for the other to
// read; 0 for a team of one. Where two vCPUs can sit on one CCD or on two,
// this says which: about 50-80 ns on one, 160-280 ns on two (this
// project's measuring VM, whose memory then reads at about 32 and 55 GB/s).
double time_handoff(ThreadPool& pool);

}  // namespace warden::model
