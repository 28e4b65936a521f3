#pragma once
// `warden serve` flags that follow llama-server (b9749) where CLI11 alone
// cannot: its two-letter short option -np, and what -c means with slots.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warden::server {

// CLI11 2.1 has no multi-letter short options, so `-np N` reaches warden as
// an argument CLI11 did not recognise. `warden serve` lets CLI11 keep such
// arguments aside (allow_extras) and hands them here, in order: "-np N" and
// "-np=N" give the slot count; anything else left over is a usage error
// (warden::UsageError naming it), exactly as CLI11 would have refused it.
// Returns nullopt when the extras hold no -np.
std::optional<int> parallel_from_llama_flags(const std::vector<std::string>& extras);

// The context of each slot, exactly as llama-server b9749 sizes it (checked
// against that binary: -c 3000 -np 3 gives 1024, -c 1000 -np 3 gives 512,
// -c 3000 without -np gives 4 slots of 3072):
//  - ctx 0 means the model's training context (n_ctx_train);
//  - the total is rounded up to a multiple of 256 (its KV cells come in 256s);
//  - slots given explicitly (-np/--parallel N): the total is divided over
//    the N slots and each share rounded up to a multiple of 256 again
//    (llama-server's non-unified KV cache);
//  - slots left at their default: every slot may use the whole total
//    (llama-server's automatic slots share one unified cache);
//  - a slot never gets more than n_ctx_train (llama-server caps it too).
struct SlotContext {
  int64_t per_slot = 0;
  bool capped = false;  // the training context cut it down
};
SlotContext slot_context(int64_t ctx, int64_t n_ctx_train, int slots, bool slots_given);

}  // namespace warden::server
