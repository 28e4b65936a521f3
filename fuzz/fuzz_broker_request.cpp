// Fuzzes the broker's agent-protocol parsing, the decision pipeline and the
// approval prompt on whatever parses: a request line must either be rejected
// with warden::Error or assessed and shown without crashing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "broker/broker.h"
#include "broker/protocol.h"
#include "broker/render.h"
#include "broker/tty_prompt.h"
#include "util/error.h"

using namespace warden::broker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Policy policy = [] {
    PolicyEnv env;
    env.workspace = "/ws";
    env.home = "/home/u";
    env.protected_dirs = {"/home/u/.config/warden"};
    return Policy::defaults(env);
  }();
  std::string line(reinterpret_cast<const char*>(data), size);
  try {
    auto j = parse_line(line);
    EffectRequest r = effect_request_from_json(j);
    (void)dump_line(effect_request_to_json(r));
    // Only lexical paths: resolving symlinks would touch the fuzzing host.
    if (!target_is_path(r.capability)) (void)assess(policy, r);
    (void)neutralize(r.detail, true);
    PendingApproval pending;
    pending.id = "fuzz-1";
    pending.request = r;
    pending.policy_reason = "ask by rule default";
    pending.ask_reasons = {r.detail.substr(0, 300)};
    (void)render_prompt(pending);
    (void)render_show(pending);
  } catch (const warden::Error&) {
  }
  return 0;
}
