#include "broker/capability.h"

#include "util/error.h"

namespace warden::broker {

std::string_view capability_name(Capability c) {
  switch (c) {
    case Capability::fs_read: return "fs.read";
    case Capability::fs_write: return "fs.write";
    case Capability::exec: return "exec";
    case Capability::net: return "net";
    case Capability::msg_send: return "msg.send";
    case Capability::wallet_spend: return "wallet.spend";
    case Capability::remote_llm: return "remote.llm";
    case Capability::config_change: return "config.change";
    case Capability::plugin_install: return "plugin.install";
  }
  return "?";
}

std::optional<Capability> parse_capability(std::string_view name) {
  for (Capability c : kAllCapabilities)
    if (capability_name(c) == name) return c;
  return std::nullopt;
}

bool target_is_path(Capability c) { return c == Capability::fs_read || c == Capability::fs_write; }
bool target_is_domain(Capability c) { return c == Capability::net; }
bool target_is_address(Capability c) { return c == Capability::msg_send; }

std::pair<Capability, std::string> parse_capability_spec(std::string_view spec) {
  std::string_view name = spec, target;
  // Capability names contain no ':', so the first ':' ends the name and the
  // target may contain ':' itself (URLs, commands).
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    name = spec.substr(0, colon);
    target = spec.substr(colon + 1);
  }
  auto cap = parse_capability(name);
  if (!cap) {
    std::string known;
    for (Capability c : kAllCapabilities) known += (known.empty() ? "" : ", ") + std::string(capability_name(c));
    throw Error("unknown capability '" + std::string(name) + "' (known: " + known + ")");
  }
  return {*cap, std::string(target)};
}

}  // namespace warden::broker
