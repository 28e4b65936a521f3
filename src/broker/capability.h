#pragma once
// The effects the broker can authorize. Each request names one capability
// and one argument (its target): a path, a domain, a recipient, a command...
#include <optional>
#include <string>
#include <string_view>

namespace warden::broker {

enum class Capability {
  fs_read,         // target: absolute path
  fs_write,        // target: absolute path
  exec,            // target: the full command line (runs in the sandbox)
  net,             // target: domain
  msg_send,        // target: recipient
  wallet_spend,    // target: destination (amount goes in the request detail)
  remote_llm,      // target: provider / endpoint
  config_change,   // target: config file or key
  plugin_install,  // target: plugin name or source
};

inline constexpr Capability kAllCapabilities[] = {
    Capability::fs_read,   Capability::fs_write,      Capability::exec,
    Capability::net,       Capability::msg_send,      Capability::wallet_spend,
    Capability::remote_llm, Capability::config_change, Capability::plugin_install};

// "fs.read", "net", "msg.send", ...
std::string_view capability_name(Capability c);
// Inverse of capability_name; nullopt for an unknown name.
std::optional<Capability> parse_capability(std::string_view name);

// Whether the target is a filesystem path (normalized before matching).
bool target_is_path(Capability c);
// Whether targets are domains (compared ignoring case, a final dot dropped).
bool target_is_domain(Capability c);
// Whether targets are mail addresses: compared ignoring ASCII case, the
// local part too, so a deny rule on bob@example.com holds for BOB@Example.COM.
bool target_is_address(Capability c);

// Splits "net:example.com" / "msg.send:bob" into capability and target.
// A bare name ("fs.read") gives an empty target. Throws warden::Error naming
// the text when the capability is unknown.
std::pair<Capability, std::string> parse_capability_spec(std::string_view spec);

}  // namespace warden::broker
