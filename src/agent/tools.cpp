#include "agent/tools.h"

#include <cmath>
#include <filesystem>

#include "agent/html_text.h"
#include "broker/autorun.h"
#include "broker/client.h"
#include "broker/protocol.h"
#include "broker/render.h"
#include "util/display.h"
#include "util/error.h"
#include "util/json_nesting.h"
#include "util/log.h"

namespace warden::agent {
namespace fs = std::filesystem;
using broker::Capability;
using broker::LabelSet;
using nlohmann::json;

// ---------------------------------------------------------------- broker gate

class BrokerClientHolder {
 public:
  explicit BrokerClientHolder(const std::string& path) : client(path) {}
  broker::AgentClient client;
};

BrokerGate::BrokerGate(const std::string& agent_socket)
    : client_(std::make_unique<BrokerClientHolder>(agent_socket)) {}

BrokerGate::~BrokerGate() = default;

broker::Decision BrokerGate::request(const broker::EffectRequest& r) {
  broker::Decision d;
  d.outcome = broker::Outcome::denied;
  if (!failure_.empty()) {
    d.reason = "the audit log is unreachable (" + failure_ + "), so the effect is refused";
    return d;
  }
  // A line over the broker's limit makes it drop the connection, and with it
  // every later event: refused here instead, and audited.
  if (const size_t bytes = broker::dump_line(broker::effect_request_to_json(r)).size();
      bytes >= broker::kMaxLineBytes) {
    d.reason =
        "the request (" + std::to_string(bytes) + " bytes) is too large for the broker, so the effect is refused";
    record_event("agent.error", std::string(broker::capability_name(r.capability)) + " request refused: " + d.reason);
    return d;
  }
  try {
    return client_->client.request(r);
  } catch (const std::exception& e) {
    d.reason = std::string("broker unavailable (") + e.what() + "), so the effect is refused";
    // The broker refused this request alone, or dropped the connection:
    // auditing the failure tells which, and marks the gate failed if lost.
    record_event("agent.error", std::string("an effect request failed: ") + e.what());
    return d;
  }
}

void BrokerGate::report_result(int64_t audit_seq, const std::string& result) {
  if (!failure_.empty()) return;
  try {
    client_->client.report_result(audit_seq, result);
  } catch (const std::exception& e) {
    fail("could not audit a result", e);
  }
}

void BrokerGate::record_event(const std::string& kind, const std::string& detail) {
  if (!failure_.empty()) return;
  try {
    client_->client.record_event(kind, cap_event_detail(detail));
  } catch (const std::exception& e) {
    fail("could not audit an event", e);
  }
}

broker::BrokerAbout BrokerGate::about() { return client_->client.about(); }

void BrokerGate::fail(const std::string& what, const std::exception& e) {
  failure_ = what + ": " + e.what();
  log::warn("agent: " + failure_);
}

std::string cap_event_detail(std::string detail) {
  if (detail.size() <= kMaxEventDetailBytes) return detail;
  const size_t cut = detail.size() - kMaxEventDetailBytes;
  detail.resize(kMaxEventDetailBytes);  // may split a UTF-8 character: the client's dump replaces it
  return detail + "... (" + std::to_string(cut) + " bytes cut)";
}

// ---------------------------------------------------------------- helpers
namespace {

json tool_schema(const char* name, const char* description, json properties, std::vector<std::string> required) {
  return json{{"type", "function"},
              {"function",
               {{"name", name},
                {"description", description},
                {"parameters", {{"type", "object"}, {"properties", properties}, {"required", required}}}}}};
}

json str_prop(const char* description) { return json{{"type", "string"}, {"description", description}}; }

// A required string argument; throws Error naming it.
std::string need_string(const json& args, const char* key) {
  if (!args.contains(key) || !args[key].is_string())
    throw Error(std::string("argument '") + key + "' is required and must be a string");
  return args[key].get<std::string>();
}

// An optional string; null and "" (as small models send for "none") are
// the fallback.
std::string opt_string(const json& args, const char* key, const std::string& fallback) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_string()) throw Error(std::string("argument '") + key + "' must be a string");
  const std::string& value = args[key].get_ref<const std::string&>();
  return value.empty() ? fallback : value;
}

// An optional whole number in [min, max]. Small models often send numbers
// as strings ("10"): those are read too.
long long opt_count(const json& args, const char* key, long long fallback, long long min, long long max) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  const json& v = args[key];
  long long n = 0;
  if (v.is_number_unsigned() && v.get<unsigned long long>() > (unsigned long long)max) n = max + 1;
  else if (v.is_number_integer()) n = v.get<long long>();
  else if (v.is_number_float() && std::abs(v.get<double>()) < 1e15 && v.get<double>() == std::floor(v.get<double>()))
    n = static_cast<long long>(v.get<double>());
  else if (const std::string* t = v.is_string() ? &v.get_ref<const std::string&>() : nullptr;
           t && !t->empty() && t->size() <= 18 && t->find_first_not_of("0123456789") == std::string::npos)
    n = std::stoll(*t);
  else
    throw Error(std::string("argument '") + key + "' must be a whole number");
  if (n < min || n > max)
    throw Error(std::string("argument '") + key + "' must be from " + std::to_string(min) + " to " +
                std::to_string(max));
  return n;
}

// An optional true or false; "true" and "false" as strings too (Llama 3.x
// often sends every argument as a string).
bool opt_flag(const json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return false;
  const json& v = args[key];
  if (v.is_boolean()) return v.get<bool>();
  if (v == "true" || v == "false") return v == "true";
  throw Error(std::string("argument '") + key + "' must be true or false");
}

LabelSet only(broker::Source s, const std::string& origin) {
  LabelSet l;
  l.add(broker::Label{s, origin});
  return l;
}

// A denial or an error: warden's own words, not the tool's output.
ToolOutcome failure(std::string text, LabelSet labels) { return {std::move(text), std::move(labels), true}; }

// Caps text for the model, marking the cut.
std::string cap(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  text.resize(limit);
  return text + "\n[... truncated at " + std::to_string(limit) + " bytes]";
}

// A stream the sandbox kept the first `head` and last bytes of
// (Limits::keep_output_ends), with the gap marked.
std::string with_gap(const std::string& text, uint64_t dropped, size_t head) {
  if (dropped == 0 || text.size() < head) return text;
  std::string out = text.substr(0, head);
  out.append("\n[... ").append(std::to_string(dropped)).append(" bytes omitted ...]\n").append(text, head);
  return out;
}

// Whether a jail's output is whole: a jail killed (for its output, time or
// memory) may have printed only part of it, whatever its exit status says.
bool whole(const sandbox::SandboxResult& r) { return r.killed == sandbox::KillReason::none && !r.out_truncated; }

bool under(const fs::path& p, const fs::path& root) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q)
    if (q == p.end() || *q != *r) return false;
  return true;
}

std::string describe_failure(const sandbox::SandboxResult& r) {
  std::string s = "exit " + std::to_string(r.exit_code);
  if (r.killed != sandbox::KillReason::none) s += std::string(", killed: ") + sandbox::kill_reason_name(r.killed);
  std::string err = strip_control_chars(r.err);
  if (!err.empty())
    s.append("\n").append(cap(err, 4096));  // piecewise: GCC 12 warns falsely (-Wrestrict) on "\n" + string
  return s;
}

}  // namespace

ParsedUrl parse_url(const std::string& url) {
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7F) throw Error("URL contains whitespace or control characters");
  ParsedUrl u;
  const size_t colon = url.find("://");
  if (colon == std::string::npos) throw Error("URL must start with http:// or https://");
  u.scheme = url.substr(0, colon);
  for (auto& ch : u.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (u.scheme != "http" && u.scheme != "https") throw Error("only http and https URLs can be fetched");
  const size_t auth_start = colon + 3;
  const size_t auth_end = url.find_first_of("/?#", auth_start);
  std::string authority =
      url.substr(auth_start, auth_end == std::string::npos ? std::string::npos : auth_end - auth_start);
  // user@host hides the real destination from a quick look: refuse it.
  if (authority.find('@') != std::string::npos) throw Error("URLs with user info (user@host) are refused");
  if (authority.empty()) throw Error("URL has no host");
  if (authority.front() == '[') throw Error("IP literal hosts are refused; use a domain name");
  std::string host = authority;
  u.port = u.scheme == "https" ? 443 : 80;
  const size_t pc = authority.rfind(':');
  if (pc != std::string::npos) {
    host = authority.substr(0, pc);
    const std::string port = authority.substr(pc + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw Error("URL port '" + port + "' is not a number");
    const unsigned long p = std::stoul(port);
    if (p == 0 || p > 65535) throw Error("URL port " + port + " is out of range");
    u.port = static_cast<uint16_t>(p);
  }
  for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host.empty()) throw Error("URL has no host");
  for (char ch : host)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.'))
      throw Error("URL host '" + host + "' has characters a domain name cannot have");
  // A numeric last label makes an address, not a name (1.1.1.1, 2130706433,
  // 0x7f.1): refused, so the broker only ever judges domain names.
  const size_t last_label = host.rfind('.') == std::string::npos ? 0 : host.rfind('.') + 1;
  if (std::isdigit(static_cast<unsigned char>(host[last_label])))
    throw Error("IP literal hosts are refused ('" + host + "'); use a domain name");
  u.host = host;
  u.path = auth_end == std::string::npos ? "/" : url.substr(auth_end);
  return u;
}

// ---------------------------------------------------------------- runner

ToolRunner::ToolRunner(ToolConfig config, Gate& gate) : config_(std::move(config)), gate_(gate) {
  if (config_.workspace.empty() || !fs::path(config_.workspace).is_absolute())
    throw Error("agent: workspace must be an absolute path");
  config_.workspace = fs::path(config_.workspace).lexically_normal().string();
  while (config_.workspace.size() > 1 && config_.workspace.back() == '/') config_.workspace.pop_back();
}

json ToolRunner::schemas() {
  const auto number = [](const char* description) {
    return json{{"type", "integer"}, {"minimum", 1}, {"description", description}};
  };
  const auto flag = [](const char* description) { return json{{"type", "boolean"}, {"description", description}}; };
  return json::array({
      tool_schema("read_file",
                  "Read a text file in the workspace. A long file is shown in parts: the result says which lines "
                  "it holds and where to read on.",
                  {{"path", str_prop("File path relative to the workspace")},
                   {"start_line", number("First line to show (default 1)")},
                   {"max_lines", number("Lines to show at most (default: as many as fit)")}},
                  {"path"}),
      tool_schema("list_dir", "List a directory in the workspace.",
                  {{"path", str_prop("Directory relative to the workspace (default: .)")}}, {}),
      tool_schema("search_files",
                  "Search the text files under a workspace directory (or one file) for a Perl-compatible regular "
                  "expression (grep -P: \\d, \\s, \\b, (?i) work). Prints path:line:text; long lines are cut.",
                  {{"pattern", str_prop("Regular expression (PCRE)")},
                   {"path", str_prop("Directory or file relative to the workspace (default: .)")},
                   {"ignore_case", flag("Match letters in either case (default false)")},
                   {"include", str_prop("Only files whose name matches this glob, e.g. *.py")}},
                  {"pattern"}),
      tool_schema(
          "write_file", "Create or replace a file in the workspace (a human may have to approve the diff).",
          {{"path", str_prop("File path relative to the workspace")}, {"content", str_prop("Full new content")}},
          {"path", "content"}),
      tool_schema("edit_file",
                  "Replace an exact string in a workspace file: it must occur exactly once, unless replace_all is "
                  "true.",
                  {{"path", str_prop("File path relative to the workspace")},
                   {"old_string", str_prop("Exact text to replace, with its indentation")},
                   {"new_string", str_prop("Replacement text")},
                   {"replace_all", flag("Replace every occurrence (default false)")}},
                  {"path", "old_string", "new_string"}),
      tool_schema(
          "run_command",
          "Run a shell command in a sandbox with the workspace as current directory. No network unless "
          "allow_domains is given and approved. Long output keeps its start and its end.",
          {{"command", str_prop("Shell command (sh -c)")},
           {"allow_domains",
            {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Domains the command may reach"}}},
           {"write_git",
            {{"type", "boolean"},
             {"description",
              "The command writes the workspace's .git (git init, commit, checkout); a human "
              "must approve. Without it .git, .envrc and .vscode are read-only."}}},
           {"timeout", number("Seconds the command may run (default 60, at most 600)")}},
          {"command"}),
      tool_schema("fetch_url",
                  "Fetch a web page (http/https) and return its readable text (HTML is turned into text, other "
                  "types are returned as they are). Redirects are reported, not followed.",
                  {{"url", str_prop("Absolute http:// or https:// URL")},
                   {"start",
                    {{"type", "integer"},
                     {"minimum", 0},
                     {"description",
                      "Byte of the page's text to show from, as an earlier result's note gives (read from that "
                      "earlier fetch: no new request)"}}}},
                  {"url"}),
  });
}

ToolRunner::Path ToolRunner::resolve_path(const std::string& given) const {
  if (given.empty()) throw Error("path is empty");
  if (given.find('\0') != std::string::npos) throw Error("path contains a NUL byte");
  fs::path p;
  const fs::path ws(config_.workspace);
  if (given == "~" || given.rfind("~/", 0) == 0) p = fs::path(config_.home) / given.substr(given.size() > 1 ? 2 : 1);
  else if (given.front() == '/') p = given;
  else p = ws / given;
  p = p.lexically_normal();
  // Tools print paths as the jail shows them (/workspace/...): one given
  // back means the workspace.
  if (const fs::path jail_ws(sandbox::kJailWorkspace); !under(p, ws) && under(p, jail_ws))
    p = (ws / p.lexically_relative(jail_ws)).lexically_normal();
  std::string host = p.string();
  while (host.size() > 1 && host.back() == '/') host.pop_back();
  Path out{host, ""};
  if (under(fs::path(host), ws)) out.jail = fs::path(host).lexically_relative(ws).string();
  return out;
}

sandbox::Profile ToolRunner::file_profile(bool writable) const {
  sandbox::Profile p = sandbox::named_profile(writable ? "default" : "readonly");
  p.workspace = config_.workspace;
  p.limits.wall_seconds = 30;
  return p;
}

sandbox::SandboxResult ToolRunner::sandboxed(const sandbox::Profile& profile, const std::vector<std::string>& argv,
                                             const std::string& input, const sandbox::RunOptions& options) {
  if (config_.run_sandbox) return config_.run_sandbox(profile, argv, input, options);
  return sandbox::run(profile, argv, input, options);
}

bool ToolRunner::authorize(Capability cap, const std::string& target, const std::string& detail, const LabelSet& ctx,
                           bool network, int64_t& audit_seq, std::string& denied_text, bool whole_tree) {
  broker::EffectRequest r;
  r.capability = cap;
  r.target = target;
  r.detail = detail;
  r.network = network;
  r.whole_tree = whole_tree;
  r.context_labels = ctx;
  // The model wrote the arguments after seeing everything in its context, so
  // they may carry any of it: they get the context's labels.
  r.argument_labels = ctx;
  broker::Decision d = gate_.request(r);
  audit_seq = d.audit_seq;
  if (!d.allowed()) denied_text = "denied: " + d.reason;
  return d.allowed();
}

void ToolRunner::apply_user_resolve(sandbox::Profile& profile, sandbox::RunOptions& options) const {
  // Only hosts the user mapped with --resolve (and the profile allows) get
  // the mapping; they may then be private addresses, e.g. a local service.
  std::map<std::string, sandbox::IpAddress> mapped;
  for (const auto& host : profile.allowed_domains) {
    auto it = config_.resolve.find(host);
    if (it == config_.resolve.end()) continue;
    auto ip = sandbox::parse_ip_literal(it->second);
    if (!ip) throw Error("--resolve address '" + it->second + "' is not an IP address");
    mapped[host] = *ip;
    profile.private_destinations.push_back(host);
  }
  if (mapped.empty()) return;
  const sandbox::Resolver system = sandbox::system_resolver();
  options.resolver = [mapped, system](const std::string& h) {
    auto it = mapped.find(h);
    return it != mapped.end() ? std::vector<sandbox::IpAddress>{it->second} : system(h);
  };
}

namespace {

// Throws Error naming an argument the tool does not take: one ignored
// silently (replace_all: true to a tool without it) would do what the model
// did not ask for. Unknown tools are left to execute().
void check_argument_names(const std::string& tool, const json& args) {
  static const json kSchemas = ToolRunner::schemas();
  for (const json& schema : kSchemas) {
    const json& function = schema["function"];
    if (function["name"] != tool) continue;
    const json& properties = function["parameters"]["properties"];
    for (const auto& [name, value] : args.items()) {
      if (properties.contains(name)) continue;
      std::string known;
      for (const auto& [known_name, _] : properties.items()) known.append(known.empty() ? "" : ", ").append(known_name);
      throw Error("unknown argument '" + std::string(display::utf8_prefix(name, 64)) + "'; " + tool + " takes " +
                  known);
    }
  }
}

}  // namespace

ToolOutcome ToolRunner::execute(const ToolCall& call, const LabelSet& ctx) {
  if (!fatal_.empty()) return failure("error: " + fatal_, only(broker::Source::tool, "agent"));
  const bool too_deep = json_nests_deeper_than(call.arguments);
  json args = too_deep ? json() : json::parse(call.arguments, nullptr, false);  // null: not an object
  if (args.is_discarded() || !args.is_object()) {
    const std::string problem = too_deep ? "nest more than " + std::to_string(kMaxJsonNesting) + " levels deep"
                                         : "are not a JSON object";
    gate_.record_event("tool.invalid", call.name + ": arguments " + problem);
    return failure("error: the arguments of " + call.name + " " + problem, only(broker::Source::tool, "agent"));
  }
  try {
    check_argument_names(call.name, args);
    if (call.name == "read_file") return read_file(args, ctx);
    if (call.name == "list_dir") return list_dir(args, ctx);
    if (call.name == "search_files") return search_files(args, ctx);
    if (call.name == "write_file") return write_file(args, ctx);
    if (call.name == "edit_file") return edit_file(args, ctx);
    if (call.name == "run_command") return run_command(args, ctx);
    if (call.name == "fetch_url") return fetch_url(args, ctx);
    gate_.record_event("tool.invalid", "unknown tool " + call.name);
    return failure("error: unknown tool '" + call.name + "'", only(broker::Source::tool, "agent"));
  } catch (const std::exception& e) {
    // Bad arguments or a sandbox that cannot start: the model is told, the
    // attempt is audited, nothing ran unprotected.
    gate_.record_event("tool.error", call.name + ": " + e.what());
    return failure("error: " + call.name + ": " + e.what(), only(broker::Source::tool, call.name));
  }
}

std::optional<ToolOutcome> ToolRunner::file_refusal(Capability cap, const Path& p, const std::string& detail,
                                                    const LabelSet& ctx, const std::string& tool, int64_t& seq,
                                                    bool whole_tree) {
  std::string denied;
  const bool allowed = authorize(cap, p.host, detail, ctx, false, seq, denied, whole_tree);
  // Outside the workspace the tools never reach, whatever the policy says
  // (the broker was asked all the same, for the audit log).
  if (p.jail.empty())
    return failure("denied: " + p.host + " is outside the workspace; tools reach only files in it (give paths "
                   "relative to it)",
                   only(broker::Source::tool, tool));
  if (!allowed) return failure(denied, only(broker::Source::tool, tool));
  return std::nullopt;
}

// read_file in the jail: first "LINES BYTES" (awk counts a last line
// without a newline too), then the lines asked for, at most $4 bytes.
constexpr const char* kReadFileSh =
    "if [ ! -e \"$1\" ]; then echo \"$1 does not exist\" >&2; exit 2; fi; "
    "if [ -d \"$1\" ]; then echo \"$1 is a directory; list it with list_dir\" >&2; exit 2; fi; "
    "if [ ! -f \"$1\" ]; then echo \"$1 is not a regular file\" >&2; exit 2; fi; "
    "if [ ! -r \"$1\" ]; then echo \"$1 cannot be read (permission denied)\" >&2; exit 2; fi; "
    "echo \"$(awk 'END { print NR }' < \"$1\") $(wc -c < \"$1\")\"; "
    "tail -n \"+$2\" -- \"$1\" | head -n \"$3\" | head -c \"$4\"";

// Whether text is a binary file's: a NUL in its first 8 KiB, as grep and
// git decide.
static bool looks_binary(std::string_view text) { return text.substr(0, 8192).find('\0') != std::string_view::npos; }

ToolOutcome ToolRunner::read_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  const long long start = opt_count(args, "start_line", 1, 1, 1ll << 40);
  const long long max_lines = opt_count(args, "max_lines", 1ll << 40, 1, 1ll << 40);
  int64_t seq = 0;
  if (auto refused = file_refusal(Capability::fs_read, p, "read " + p.host, ctx, "read_file", seq)) return *refused;
  check_read_links(p);  // throws: execute() audits it as tool.error
  auto r = sandboxed(file_profile(false),
                     {"sh", "-c", kReadFileSh, "sh", p.jail, std::to_string(start), std::to_string(max_lines),
                      std::to_string(config_.max_read_bytes + 1)},
                     "");
  long long total_lines = 0, total_bytes = 0;
  const size_t header_end = r.out.find('\n');
  if (r.exit_code != 0 || !whole(r) || header_end == std::string::npos ||
      std::sscanf(r.out.c_str(), "%lld %lld", &total_lines, &total_bytes) != 2)
    return failure("error: read_file: " + describe_failure(r), only(broker::Source::tool, "read_file"));
  gate_.report_result(seq, r.out);
  const LabelSet labels = only(broker::Source::workspace, p.host);
  std::string text = r.out.substr(header_end + 1);
  if (total_bytes == 0) return {"(the file is empty)", labels};
  if (looks_binary(text))
    return {"(a binary file of " + std::to_string(total_bytes) +
                " bytes, not shown; run_command with od, xxd or file can look into it)",
            labels};
  if (text.empty())
    return failure("error: read_file: start_line " + std::to_string(start) + " is past the end of the file (" +
                       std::to_string(total_lines) + " lines)",
                   only(broker::Source::tool, "read_file"));
  // Over the cap, the result ends with the last whole line that fits, so
  // that reading on from the next one misses nothing; a single line longer
  // than the cap shows its start.
  bool cut = false, long_line = false;
  if (text.size() > config_.max_read_bytes) {
    const size_t newline = text.rfind('\n', config_.max_read_bytes - 1);
    long_line = newline == std::string::npos;
    text.resize(long_line ? display::utf8_prefix(text, config_.max_read_bytes).size() : newline + 1);
    cut = true;
  }
  const long long shown = std::count(text.begin(), text.end(), '\n') + (text.back() == '\n' ? 0 : 1);
  const long long end = start + shown - 1;
  if (!cut && start == 1 && end >= total_lines) return {text, labels};
  std::string note = long_line ? "\n[warden: line " + std::to_string(start) + " is longer than the " +
                                     std::to_string(config_.max_read_bytes) +
                                     " bytes a result holds; only its start is shown (run_command with cut or fold "
                                     "shows the rest)"
                               : "\n[warden: lines " + std::to_string(start) + "-" + std::to_string(end) + " of " +
                                     std::to_string(total_lines) + " shown";
  if (end < total_lines) note.append("; read on with start_line=").append(std::to_string(end + 1));
  return {text + note + "]", labels};
}

ToolOutcome ToolRunner::list_dir(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(opt_string(args, "path", "."));
  int64_t seq = 0;
  if (auto refused = file_refusal(Capability::fs_read, p, "list " + p.host, ctx, "list_dir", seq)) return *refused;
  check_read_links(p);
  auto r = sandboxed(file_profile(false), {"ls", "-la", "--", p.jail}, "");
  if (r.exit_code != 0 || !whole(r))
    return failure("error: list_dir: " + describe_failure(r), only(broker::Source::tool, "list_dir"));
  gate_.report_result(seq, r.out);
  return {cap(r.out, config_.max_command_output), only(broker::Source::workspace, p.host)};
}

// search_files in the jail: $2 (the file or folder; "" for the
// workspace) must exist, then grep's matches, each line cut at 500 bytes
// (a minified file's one line would fill the result), capped at $1 bytes;
// grep's own status is the script's. -s: a file that cannot be read is
// skipped, not the whole search lost (grep still says 2).
constexpr const char* kSearchSh =
    "cap=$1; path=$2; shift 2; "
    "if [ -n \"$path\" ] && [ ! -e \"$path\" ]; then echo \"$path does not exist\" >&2; exit 3; fi; "
    "{ grep \"$@\" ${path:+\"$path\"}; echo $? > /tmp/grep-status; } | cut -b 1-500 | head -c \"$cap\"; "
    "exit \"$(cat /tmp/grep-status)\"";

// grep --include globs from what models write: braces expanded
// ("*.{py,js}"), a leading "**/" dropped. A glob with a folder in it
// cannot be one (--include matches file names): an error says so.
static std::vector<std::string> include_globs(const std::string& glob) {
  std::string name = glob;
  while (name.rfind("**/", 0) == 0) name.erase(0, 3);
  if (name.find('/') != std::string::npos)
    throw Error("argument 'include' matches file names only (e.g. *.py); give the folder as 'path'");
  const size_t open = name.find('{'), close = name.find('}', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return {name};
  std::vector<std::string> out;
  const std::string head = name.substr(0, open), tail = name.substr(close + 1);
  const std::string choices = name.substr(open + 1, close - open - 1);
  const std::vector<std::string> rests = include_globs(tail);
  for (size_t from = 0;;) {
    const size_t comma = std::min(choices.find(',', from), choices.size());
    for (const std::string& rest : rests) out.push_back(head + choices.substr(from, comma - from) + rest);
    if (comma == choices.size() || out.size() > 64) break;
    from = comma + 1;
  }
  return out;
}

ToolOutcome ToolRunner::search_files(const json& args, const LabelSet& ctx) {
  const std::string pattern = need_string(args, "pattern");
  const Path p = resolve_path(opt_string(args, "path", "."));
  const bool ignore_case = opt_flag(args, "ignore_case");
  const std::string include = opt_string(args, "include", "");
  const std::vector<std::string> globs = include.empty() ? std::vector<std::string>{} : include_globs(include);
  int64_t seq = 0;
  if (auto refused =
          file_refusal(Capability::fs_read, p, "search /" + pattern + "/ under " + p.host, ctx, "search_files", seq,
                       /*whole_tree=*/true))
    return *refused;
  check_read_links(p);  // grep -r follows the link it is given, not those it finds
  // In the workspace itself grep names files relative to it, as the model
  // gives them back; -H: a single file's matches are named too. The
  // entries the jail masks (git's, direnv's, VS Code's) are left out, not
  // reported as unreadable.
  // (--include first: grep keeps a file no glob names only when the first
  // of them is an --exclude.)
  std::vector<std::string> argv = {"sh", "-c", kSearchSh, "sh", std::to_string(config_.max_command_output + 1),
                                   p.jail == "." ? "" : p.jail, "-rnIsPH", "--color=never"};
  if (ignore_case) argv.push_back("-i");
  for (const std::string& glob : globs) argv.push_back("--include=" + glob);
  argv.insert(argv.end(), {"--exclude-dir=.git", "--exclude-dir=.vscode", "--exclude=.envrc", "-e", pattern, "--"});
  auto r = sandboxed(file_profile(false), argv, "");
  const LabelSet labels = only(broker::Source::workspace, p.host);
  // 2: some file could not be read (-s hides which), with or without
  // matches; 141: the cap was reached.
  const bool some_unreadable = r.exit_code == 2 && r.err.empty();
  if ((r.exit_code != 0 && r.exit_code != 1 && !some_unreadable && r.exit_code != 141) || !whole(r))
    return failure("error: search_files: " + describe_failure(r), only(broker::Source::tool, "search_files"));
  gate_.report_result(seq, r.out);
  std::string text = r.out.empty() ? "no matches" : r.out;
  if (text.size() > config_.max_command_output) {
    text.resize(text.rfind('\n', config_.max_command_output - 1) + 1);
    text.append("[warden: more matches than fit in ")
        .append(std::to_string(config_.max_command_output))
        .append(" bytes; narrow the pattern or the path, or give include]");
  }
  if (some_unreadable)
    text.append(r.out.empty() ? " " : "").append("[warden: some files could not be read and were skipped]");
  return {text, labels};
}

// The jail scripts of write_content refuse, inside the jail too, a path with
// a symbolic link in it ($2: the path relative to the workspace), so no link
// can appear between the host's check (refuse_links) and the write.
static const char* kRefuseLinksSh =
    "set -f; p=/workspace; IFS=/; for c in $2; do p=\"$p/$c\"; "
    "if [ -L \"$p\" ]; then echo \"$p is a symbolic link\" >&2; exit 3; fi; done; unset IFS; set +f; ";

void ToolRunner::refuse_links(const Path& p) const {
  // The broker judges the path with its links resolved on the host, but the
  // write runs in the jail, where a link (e.g. to /proc/self/cwd/...) may
  // resolve elsewhere: following none is the only way both see one file.
  const fs::path ws(config_.workspace);
  fs::path at = ws;
  for (const auto& part : fs::path(p.host).lexically_relative(ws)) {
    at /= part;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(at, ec);
    if (ec || !fs::exists(st)) return;  // the rest does not exist yet: nothing to follow
    if (fs::is_symlink(st))
      throw Error("'" + at.lexically_relative(ws).string() + "' is a symbolic link; file tools do not follow links");
  }
}

// The diff a human approves is at most this large: the broker takes a
// request of 4 MiB at most, and a diff can double the bytes of a file.
constexpr uint64_t kMaxDiffBytes = 2u << 20;

void ToolRunner::check_read_links(const Path& p) const {
  // The broker judges the path with its links resolved on the host, the
  // read runs in the jail: both resolve a relative link that stays in the
  // workspace alike, but an absolute one (to /proc/self/cwd/..., or to the
  // host path of a denied file) only the host reads as written. Resolved
  // as the kernel does, one component at a time, a link before the ".."
  // after it: `a/../x` with `a` a link is not `x`.
  const fs::path ws(config_.workspace);
  std::vector<fs::path> rest;  // what is left to walk, last component first
  for (const auto& part : fs::path(p.host).lexically_relative(ws)) rest.push_back(part);
  std::reverse(rest.begin(), rest.end());
  fs::path at = ws;  // walked so far: no link in it, inside the workspace
  for (int links = 0; !rest.empty();) {
    const fs::path part = rest.back();
    rest.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      at = at.parent_path();
      if (!under(at, ws))
        throw Error("'" + p.host + "' leads out of the workspace through a symbolic link; file tools follow only links "
                    "that stay in it");
      continue;
    }
    const fs::path next = at / part;
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(next, ec))) {
      at = next;
      continue;
    }
    const std::string shown = next.lexically_relative(ws).string();
    const fs::path target = fs::read_symlink(next, ec);
    if (ec || target.is_absolute() || ++links > 40)
      throw Error("'" + shown + "' is a symbolic link to an absolute path; file tools follow only links that stay in "
                  "the workspace");
    std::vector<fs::path> parts(target.begin(), target.end());
    rest.insert(rest.end(), parts.rbegin(), parts.rend());
  }
}

ToolOutcome ToolRunner::write_content(const Path& p, const std::string& content, const std::string& tool,
                                      const LabelSet& ctx, const std::string& done) {
  if (!p.jail.empty()) refuse_links(p);  // throws: execute() audits it as tool.error
  // The human approves the exact change: a unified diff computed inside a
  // read-only jail (the agent does not open the file itself). -a: content
  // with a NUL is still shown line by line, never as "Binary files differ"
  // (the broker's display makes control bytes visible).
  std::string detail;
  const std::string rel = fs::path(p.host).lexically_relative(config_.workspace).string();
  if (!p.jail.empty()) {
    const std::string script =
        std::string(kRefuseLinksSh) +
        "if [ -d \"$1\" ]; then echo \"$1 is a directory\" >&2; exit 2; fi; "
        "cat > /tmp/new || exit 2; if [ -e \"$1\" ]; then old=\"$1\"; else old=/dev/null; fi; "
        "diff -a -u --label \"a/$2\" --label \"b/$2\" -- \"$old\" /tmp/new; [ $? -le 1 ]";
    sandbox::Profile profile = file_profile(false);
    profile.limits.max_output_bytes = kMaxDiffBytes;
    auto d = sandboxed(profile, {"sh", "-c", script, "sh", p.jail, rel}, content);
    // A diff cut short would show the human a part of the change: never.
    if (d.killed == sandbox::KillReason::output_limit || d.out_truncated)
      return failure("error: " + tool + ": the change is too large to show for approval (its diff is over " +
                         std::to_string(kMaxDiffBytes >> 20) + " MiB); write it in smaller files",
                     only(broker::Source::tool, tool));
    if (d.exit_code != 0 || !whole(d))
      return failure("error: " + tool + ": " + describe_failure(d), only(broker::Source::tool, tool));
    detail = d.out.empty() ? "(no change)" : d.out;
  } else {
    detail = "write " + std::to_string(content.size()) + " bytes to " + p.host + ":\n" + content;
  }
  int64_t seq = 0;
  if (auto refused = file_refusal(Capability::fs_write, p, detail, ctx, tool, seq)) return *refused;
  // A write may make code for later without naming it: the last of HEAD,
  // config, objects/ and refs/ written into a folder (or made by the
  // write's mkdir -p) makes it a repository whose config git runs. What a
  // write plants is moved aside after it, as after a command; only the
  // path the broker flagged as such, which a human approved, stays.
  const bool flagged = !broker::autorun_reason(p.host, config_.workspace).empty();
  const PlantedSnapshot before = snapshot_autorun_entries(config_.workspace, true, config_.home);
  auto r = sandboxed(file_profile(true),
                     {"sh", "-c", std::string(kRefuseLinksSh) + "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"",
                      "sh", p.jail, rel},
                     content);
  const std::string planted = move_aside_planted_code(before, /*write_git=*/false, flagged ? rel : "");
  if (r.exit_code != 0 || !whole(r))
    return failure("error: " + tool + ": " + describe_failure(r) + planted, only(broker::Source::tool, tool));
  gate_.report_result(seq, content);
  return {done + planted, only(broker::Source::tool, tool)};
}

ToolOutcome ToolRunner::write_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  const std::string content = need_string(args, "content");
  return write_content(p, content, "write_file", ctx,
                       "wrote " + std::to_string(content.size()) + " bytes to " + p.host);
}

namespace {

// Where `needle` occurs in `text`, without overlaps.
std::vector<size_t> occurrences(const std::string& text, const std::string& needle) {
  std::vector<size_t> at;
  for (size_t i = text.find(needle); i != std::string::npos; i = text.find(needle, i + needle.size())) at.push_back(i);
  return at;
}

// "\n" as "\r\n", for a file with Windows line ends.
std::string with_crlf(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out.push_back('\r');
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace

ToolOutcome ToolRunner::edit_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  std::string old_s = need_string(args, "old_string"), new_s = need_string(args, "new_string");
  const bool replace_all = opt_flag(args, "replace_all");
  if (old_s.empty()) throw Error("argument 'old_string' must not be empty");
  if (!p.jail.empty()) refuse_links(p);  // before the read too: the link is refused, not read through
  int64_t seq = 0;
  if (auto refused = file_refusal(Capability::fs_read, p, "read " + p.host + " (to edit it)", ctx, "edit_file", seq))
    return *refused;
  sandbox::Profile profile = file_profile(false);
  profile.limits.max_output_bytes = config_.max_edit_bytes + 1;
  auto r = sandboxed(profile, {"head", "-c", std::to_string(config_.max_edit_bytes + 1), "--", p.jail}, "");
  if (r.exit_code != 0 || !whole(r))
    return failure("error: edit_file: " + describe_failure(r), only(broker::Source::tool, "edit_file"));
  if (r.out.size() > config_.max_edit_bytes)
    throw Error("the file is larger than " + std::to_string(config_.max_edit_bytes) +
                " bytes; run_command (sed, a script) can change it");
  std::vector<size_t> at = occurrences(r.out, old_s);
  // Models write "\n" where a file from Windows has "\r\n": the same edit.
  if (at.empty() && r.out.find("\r\n") != std::string::npos && old_s.find('\n') != std::string::npos) {
    old_s = with_crlf(old_s);
    new_s = with_crlf(new_s);
    at = occurrences(r.out, old_s);
  }
  if (old_s == new_s)
    return failure("error: edit_file: old_string and new_string are the same; nothing would change",
                   only(broker::Source::tool, "edit_file"));
  if (at.empty())
    return failure("error: edit_file: old_string was not found in " + p.host +
                       "; it must match the file exactly, with its indentation (tabs or spaces) and line ends: "
                       "read_file the part again and copy it",
                   only(broker::Source::tool, "edit_file"));
  if (at.size() > 1 && !replace_all) {
    std::string lines;
    for (size_t k = 0; k < at.size() && k < 10; ++k)
      lines.append(k ? ", " : "")
          .append(std::to_string(1 + std::count(r.out.begin(), r.out.begin() + long(at[k]), '\n')));
    if (at.size() > 10) lines.append(", ...");
    return failure("error: edit_file: old_string occurs " + std::to_string(at.size()) + " times in " + p.host +
                       " (at lines " + lines + "); give more of the text around it to pick one, or replace_all: true",
                   only(broker::Source::tool, "edit_file"));
  }
  std::string updated;
  size_t from = 0;
  for (const size_t i : at) {
    updated.append(r.out, from, i - from).append(new_s);
    from = i + old_s.size();
  }
  updated.append(r.out, from);
  LabelSet with_file = ctx;
  with_file.add(broker::Label{broker::Source::workspace, p.host});
  return write_content(p, updated, "edit_file", with_file,
                       "replaced " + std::to_string(at.size()) + " occurrence(s) in " + p.host);
}

ToolOutcome ToolRunner::run_command(const json& args, const LabelSet& ctx) {
  const std::string command = need_string(args, "command");
  std::vector<std::string> domains;
  if (args.contains("allow_domains") && !args["allow_domains"].is_null()) {
    if (!args["allow_domains"].is_array()) throw Error("argument 'allow_domains' must be an array of strings");
    for (const auto& d : args["allow_domains"]) {
      if (!d.is_string()) throw Error("argument 'allow_domains' must be an array of strings");
      domains.push_back(parse_url("http://" + d.get<std::string>()).host);
    }
  }
  const bool write_git = opt_flag(args, "write_git");
  const double seconds = double(opt_count(args, "timeout", (long long)config_.command_wall_seconds, 1, 600));
  const bool network = !domains.empty();
  // What the command line cannot show, where a human is asked to let it
  // out (network) or let it write git metadata (after which the files
  // git's hooks run are the command's to change): the scripts an earlier
  // command (no network, no approval) may have written for this one to run.
  const std::string changed =
      network || write_git ? describe_changed_files(changed_since(config_.workspace, session_start_ns_), command) : "";
  std::string detail = "$ " + command;
  if (network) {
    detail += "\nwith network to:";
    for (const auto& d : domains) detail += " " + d;
    if (!changed.empty()) detail += "\n" + changed;
  }
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::exec, command, detail, ctx, network, seq, denied))
    return failure(denied, only(broker::Source::tool, "run_command"));
  for (const auto& d : domains) {
    int64_t net_seq = 0;
    if (!authorize(Capability::net, d, "run_command may connect to " + d + " for:\n$ " + command, ctx, true, net_seq,
                   denied))
      return failure(denied, only(broker::Source::tool, "run_command"));
  }
  // Code that runs later outside the jail (git hooks and config, .envrc...)
  // stays read-only unless the human approved a .git write for this command.
  if (write_git) {
    int64_t git_seq = 0;
    if (!authorize(Capability::fs_write, config_.workspace + "/.git",
                   "run_command may write git metadata (" + config_.workspace +
                       "/.git, and any repository it makes in the workspace) for:\n$ " + command +
                       (changed.empty() ? "" : "\n" + changed),
                   ctx, false, git_seq, denied))
      return failure(denied, only(broker::Source::tool, "run_command"));
  }
  sandbox::Profile profile = sandbox::named_profile(network ? "network" : "default");
  profile.workspace = config_.workspace;
  for (const auto& entry : broker::kAutorunNames)
    if (!(write_git && std::string_view(entry.name) == ".git"))
      profile.readonly_in_workspace.push_back({entry.name, entry.directory});
  profile.limits.wall_seconds = seconds;
  profile.limits.cpu_seconds = std::max<uint64_t>(profile.limits.cpu_seconds, uint64_t(seconds));
  // A build's errors and a test run's summary come last: the command runs
  // to its end, and its output keeps its start and its end.
  profile.limits.max_output_bytes = config_.max_command_output;
  profile.limits.keep_output_ends = true;
  profile.allowed_domains = domains;
  sandbox::RunOptions options;
  if (network) apply_user_resolve(profile, options);
  // Deeper down, and for repositories without a .git name, what the
  // command planted is found afterwards and moved aside.
  const PlantedSnapshot before = snapshot_autorun_entries(config_.workspace, !write_git, config_.home);
  // Nested repositories too: their index, objects and refs are what git
  // and git-lfs read as the repository's content (a .lfsconfig staged
  // there sends the next push elsewhere). (With write_git the snapshot
  // leaves repositories out, but for a .git file that sends git outside the
  // workspace or through a link, which stays read-only.)
  for (const std::string& repository : nested_repository_entries(before, config_.workspace))
    profile.readonly_in_workspace.push_back({repository, true});
  auto r = sandboxed(profile, {"sh", "-c", command}, "", options);
  std::string text = "exit " + std::to_string(r.exit_code);
  if (r.killed == sandbox::KillReason::timeout)
    text.append(" (killed: timeout after ")
        .append(std::to_string(int(seconds)))
        .append(" s; a longer run needs timeout: SECONDS, at most 600)");
  else if (r.killed != sandbox::KillReason::none)
    text += " (killed: " + std::string(sandbox::kill_reason_name(r.killed)) + ")";
  text += move_aside_planted_code(before, write_git);
  const size_t head = config_.max_command_output / 2;
  text.append("\nstdout:\n").append(strip_control_chars(with_gap(r.out, r.out_dropped, head)));
  text.append("\nstderr:\n").append(strip_control_chars(with_gap(r.err, r.err_dropped, head)));
  gate_.report_result(seq, r.out + r.err);
  return {text, only(broker::Source::tool, "run_command")};
}

std::string ToolRunner::move_aside_planted_code(const PlantedSnapshot& before, bool write_git,
                                               const std::string& approved) {
  std::vector<std::string> moved;
  try {
    std::vector<std::string> planted =
        planted_since(before, snapshot_autorun_entries(config_.workspace, !write_git, config_.home));
    // The approved path itself, or the folder it is in (a new .git for an
    // approved .git/config), stays.
    if (!approved.empty())
      planted.erase(std::remove_if(planted.begin(), planted.end(),
                                   [&](const std::string& path) {
                                     return path == approved || approved.rfind(path + "/", 0) == 0;
                                   }),
                    planted.end());
    moved = quarantine(config_.workspace, planted);
  } catch (const std::exception& e) {
    // Fail closed: what the command may have planted stays unknown, so the
    // session ends here and the human is told to look.
    fatal_ = std::string(e.what()) + "; check the workspace before running git, direnv or VS Code in it";
    gate_.record_event("tool.quarantine", "run_command in " + config_.workspace + ": " + fatal_);
    log::warn("agent: " + broker::neutralize(fatal_, /*keep_newlines=*/true));
    return "\nwarden: " + fatal_;
  }
  if (moved.empty()) return "";
  std::string list;
  for (const auto& m : moved) list += "\n  " + m;
  const std::string note =
      "the command planted files that programs run later as code outside the sandbox (git and what its hooks run, "
      "direnv, VS Code); moved aside (review them before renaming them back; a command that must create a "
      "repository passes write_git: true, which asks the user):" + list;
  gate_.record_event("tool.quarantine", "run_command in " + config_.workspace + ": " + note);
  log::warn("agent: " + broker::neutralize(note, /*keep_newlines=*/true));  // file names are the model's
  return "\nwarden: " + note;
}

// Whether a content type names ISO-8859-1 (or its superset windows-1252,
// whose extra letters are shown as their Latin-1 neighbours' code points).
static bool names_latin1(std::string content_type) {
  for (char& c : content_type) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* name : {"charset=iso-8859-1", "charset=latin1", "charset=windows-1252", "charset=\"iso-8859-1\""})
    if (content_type.find(name) != std::string::npos) return true;
  return false;
}

static std::string latin1_to_utf8(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (const unsigned char c : bytes) {
    if (c < 0x80) {
      out.push_back(char(c));
    } else {
      out.push_back(char(0xC0 | (c >> 6)));
      out.push_back(char(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

// What curl says after the body, on stderr: status, where a redirect
// points, and the content type (last: it may hold spaces).
constexpr std::string_view kFetchMetaTag = "\nwarden-fetch\t";
constexpr const char* kFetchMeta = "%{stderr}\nwarden-fetch\t%{http_code}\t%{redirect_url}\t%{content_type}\n";
// fetch_url in the jail: the body, at most $1 bytes (a larger page is cut,
// not refused); curl's own status is the script's.
constexpr const char* kFetchSh =
    "cap=$1; shift; { curl \"$@\"; echo $? > /tmp/curl-status; } | head -c \"$cap\"; exit \"$(cat /tmp/curl-status)\"";
constexpr int kCurlWriteError = 23;  // head took all it wanted

// A page's body is read this far; past it, its start is shown.
constexpr size_t kMaxFetchBody = 2u << 20;

ToolOutcome ToolRunner::fetch_url(const json& args, const LabelSet& ctx) {
  const std::string url = need_string(args, "url");
  const ParsedUrl u = parse_url(url);
  const size_t start = size_t(opt_count(args, "start", 0, 0, 1ll << 40));
  // Reading on in a page fetched before needs no new request (nor a second
  // approval): its text is kept. Each such read is audited as its own
  // event, naming the fetch it reads from.
  if (start > 0)
    for (const FetchedPage& page : fetched_pages_)
      if (page.url == url) {
        gate_.record_event("tool.fetch_kept", "fetch_url " + url + " from byte " + std::to_string(start) +
                                                  " of the text fetched under audit record " +
                                                  std::to_string(page.audit_seq));
        return page_part(page, start);
      }
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::net, u.host, "GET " + url, ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, "fetch_url"));

  sandbox::Profile profile = sandbox::named_profile("network");
  profile.workspace.clear();  // a fetch needs no files
  profile.allowed_domains = {u.host};
  profile.limits.wall_seconds = 30;
  profile.limits.max_output_bytes = 4u << 20;
  sandbox::RunOptions options;
  options.allowed_ports = {u.port};  // the port is part of the URL the broker authorized
  apply_user_resolve(profile, options);
  // --globoff: "{a,b}" and "[1-100]" in a URL are its characters, not many
  // URLs (one approved GET must be one request).
  auto r = sandboxed(profile,
                     {"sh", "-c", kFetchSh, "sh", std::to_string(kMaxFetchBody), "-sS", "--globoff", "--max-time", "20",
                      "--proto", "=http,https", "-w", kFetchMeta, "--", url},
                     "", options);
  // The last line on stderr is ours; what is before it is curl's message.
  std::string meta = r.err;
  while (!meta.empty() && meta.back() == '\n') meta.pop_back();
  const size_t meta_at = meta.rfind(kFetchMetaTag);
  std::vector<std::string> fields;  // status, redirect, content type
  if (meta_at != std::string::npos)
    for (size_t i = meta_at + kFetchMetaTag.size();;) {
      const size_t tab = std::min(meta.find('\t', i), meta.size());
      fields.push_back(meta.substr(i, tab - i));
      if (tab == meta.size()) break;
      i = tab + 1;
    }
  const bool cut = r.exit_code == kCurlWriteError && r.out.size() == kMaxFetchBody;
  if ((r.exit_code != 0 && !cut) || !whole(r) || fields.size() != 3) {
    if (meta_at != std::string::npos) r.err.resize(meta_at);
    return failure("error: fetch_url: " + describe_failure(r), only(broker::Source::web, u.host));
  }
  gate_.report_result(seq, r.out);
  const std::string& status = fields[0];
  const std::string& redirect = fields[1];
  const std::string& content_type = fields[2];
  const LabelSet labels = only(broker::Source::web, u.host);
  if (!redirect.empty())
    return {"HTTP " + status + ": the page has moved to " + strip_control_chars(redirect) +
                "; fetch_url that address to follow it (it is checked like any other)",
            labels};
  std::string text;
  if (looks_binary(r.out)) {
    text = "(binary content of type " +
           (content_type.empty() ? std::string("unknown") : strip_control_chars(content_type)) + ", " +
           std::to_string(r.out.size()) + (cut ? "+" : "") + " bytes, not shown)";
  } else {
    const std::string body = names_latin1(content_type) ? latin1_to_utf8(r.out) : r.out;
    text = looks_like_html(content_type, body) ? html_to_text(body) : strip_control_chars(body);
  }
  if (status.empty() || status[0] != '2') text = "HTTP " + status + "; the server sent:\n" + text;
  FetchedPage page{url, std::move(text), labels, cut, seq};
  if (page.text.size() > config_.max_fetch_text || start > 0) {
    constexpr size_t kPagesKept = 4;
    if (fetched_pages_.size() == kPagesKept) fetched_pages_.erase(fetched_pages_.begin());
    fetched_pages_.push_back(page);
  }
  return page_part(page, start);
}

ToolOutcome ToolRunner::page_part(const FetchedPage& page, size_t start) {
  const std::string& text = page.text;
  const LabelSet& labels = page.labels;
  if (start == 0 && text.size() <= config_.max_fetch_text && !page.cut) return {text, labels};
  while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;  // a char's start
  if (start >= text.size())
    return failure("error: fetch_url: start " + std::to_string(start) + " is past the end of the page's text (" +
                       std::to_string(text.size()) + " bytes)",
                   only(broker::Source::tool, "fetch_url"));
  // Whole lines where one ends within the part, else whole characters.
  size_t end = text.size();
  if (end - start > config_.max_fetch_text) {
    const size_t newline = text.rfind('\n', start + config_.max_fetch_text - 1);
    end = newline != std::string::npos && newline >= start
              ? newline + 1
              : start + display::utf8_prefix(std::string_view(text).substr(start), config_.max_fetch_text).size();
  }
  std::string part = text.substr(start, end - start);
  part.append(part.empty() || part.back() == '\n' ? "" : "\n")
      .append("[warden: bytes ")
      .append(std::to_string(start))
      .append("-")
      .append(std::to_string(end))
      .append(" of the page's text (")
      .append(std::to_string(text.size()))
      .append(page.cut ? " bytes from the page's first " + std::to_string(kMaxFetchBody >> 20) + " MiB" : " bytes")
      .append(") shown");
  if (end < text.size())
    part.append("; read on with fetch_url url: ").append(page.url).append(", start: ").append(std::to_string(end));
  return {part.append("]"), labels};
}

}  // namespace warden::agent
