#include "server/serve_args.h"

#include <charconv>

#include "util/error.h"

namespace warden::server {

namespace {

int parse_slot_count(const std::string& text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 256)
    throw UsageError("-np: '" + text + "' is not a slot count from 1 to 256");
  return value;
}

}  // namespace

std::optional<int> parallel_from_llama_flags(const std::vector<std::string>& extras) {
  std::optional<int> parallel;
  for (size_t i = 0; i < extras.size(); ++i) {
    const std::string& arg = extras[i];
    if (arg == "-np") {
      if (i + 1 >= extras.size()) throw UsageError("-np needs a value (the number of slots)");
      parallel = parse_slot_count(extras[++i]);
    } else if (arg.rfind("-np=", 0) == 0) {
      parallel = parse_slot_count(arg.substr(4));
    } else {
      throw UsageError("unexpected argument '" + arg + "' (see warden serve --help)");
    }
  }
  return parallel;
}

SlotContext slot_context(int64_t ctx, int64_t n_ctx_train, int slots, bool slots_given) {
  if (ctx < 0) throw UsageError("-c: the context size cannot be negative");
  if (n_ctx_train < 1) throw UsageError("the model declares no training context; give -c");
  if (slots < 1) throw UsageError("there must be at least one slot");
  auto round_up = [](int64_t n) { return (n + 255) / 256 * 256; };
  const int64_t total = round_up(ctx > 0 ? ctx : n_ctx_train);
  SlotContext out;
  out.per_slot = slots_given ? round_up(total / slots) : total;
  if (out.per_slot > n_ctx_train) {
    out.per_slot = n_ctx_train;
    out.capped = true;
  }
  return out;
}

}  // namespace warden::server
