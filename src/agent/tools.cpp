#include "agent/tools.h"

#include <filesystem>

#include "agent/html_text.h"
#include "broker/autorun.h"
#include "broker/client.h"
#include "broker/protocol.h"
#include "broker/render.h"
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
  if (const size_t bytes = broker::dump_line(broker::effect_request_to_json(r)).size(); bytes >= broker::kMaxLineBytes) {
    d.reason = "the request (" + std::to_string(bytes) + " bytes) is too large for the broker, so the effect is refused";
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

std::string opt_string(const json& args, const char* key, const std::string& fallback) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_string()) throw Error(std::string("argument '") + key + "' must be a string");
  return args[key].get<std::string>();
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
  if (!err.empty()) s.append("\n").append(cap(err, 4096));  // piecewise: GCC 12 warns falsely (-Wrestrict) on "\n" + string
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
  std::string authority = url.substr(auth_start, auth_end == std::string::npos ? std::string::npos : auth_end - auth_start);
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
  return json::array({
      tool_schema("read_file", "Read a text file in the workspace.",
                  {{"path", str_prop("File path relative to the workspace")}}, {"path"}),
      tool_schema("list_dir", "List a directory in the workspace.",
                  {{"path", str_prop("Directory relative to the workspace (default: .)")}}, {}),
      tool_schema("search_files", "Search files under a workspace directory with an extended regular expression.",
                  {{"pattern", str_prop("Extended regular expression (grep -E)")},
                   {"path", str_prop("Directory relative to the workspace (default: .)")}},
                  {"pattern"}),
      tool_schema("write_file", "Create or replace a file in the workspace (a human may have to approve the diff).",
                  {{"path", str_prop("File path relative to the workspace")}, {"content", str_prop("Full new content")}},
                  {"path", "content"}),
      tool_schema("edit_file", "Replace one exact occurrence of a string in a workspace file.",
                  {{"path", str_prop("File path relative to the workspace")},
                   {"old_string", str_prop("Exact text to replace; must occur exactly once")},
                   {"new_string", str_prop("Replacement text")}},
                  {"path", "old_string", "new_string"}),
      tool_schema("run_command",
                  "Run a shell command in a sandbox with the workspace as current directory. No network unless "
                  "allow_domains is given and approved.",
                  {{"command", str_prop("Shell command (sh -c)")},
                   {"allow_domains",
                    {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Domains the command may reach"}}},
                   {"write_git",
                    {{"type", "boolean"},
                     {"description", "The command writes the workspace's .git (git init, commit, checkout); a human "
                                     "must approve. Without it .git, .envrc and .vscode are read-only."}}}},
                  {"command"}),
      tool_schema("fetch_url", "Fetch a web page (http/https) and return its readable text.",
                  {{"url", str_prop("Absolute http:// or https:// URL")}}, {"url"}),
  });
}

ToolRunner::Path ToolRunner::resolve_path(const std::string& given) const {
  if (given.empty()) throw Error("path is empty");
  if (given.find('\0') != std::string::npos) throw Error("path contains a NUL byte");
  fs::path p;
  if (given == "~" || given.rfind("~/", 0) == 0) p = fs::path(config_.home) / given.substr(given.size() > 1 ? 2 : 1);
  else if (given.front() == '/') p = given;
  else p = fs::path(config_.workspace) / given;
  p = p.lexically_normal();
  std::string host = p.string();
  while (host.size() > 1 && host.back() == '/') host.pop_back();
  Path out{host, ""};
  const fs::path ws(config_.workspace);
  if (under(fs::path(host), ws)) {
    const std::string rel = fs::path(host).lexically_relative(ws).string();
    out.jail = rel == "." ? std::string(sandbox::kJailWorkspace) : std::string(sandbox::kJailWorkspace) + "/" + rel;
  }
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
                           bool network, int64_t& audit_seq, std::string& denied_text) {
  broker::EffectRequest r;
  r.capability = cap;
  r.target = target;
  r.detail = detail;
  r.network = network;
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

static const char* kOutsideWorkspace = "error: tools only reach the workspace; this path is outside it";

ToolOutcome ToolRunner::read_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::fs_read, p.host, "read " + p.host, ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, "read_file"));
  if (p.jail.empty()) return failure(kOutsideWorkspace, only(broker::Source::tool, "read_file"));
  auto r = sandboxed(file_profile(false),
                     {"head", "-c", std::to_string(config_.max_read_bytes + 1), "--", p.jail}, "");
  if (r.exit_code != 0)
    return failure("error: read_file: " + describe_failure(r), only(broker::Source::tool, "read_file"));
  gate_.report_result(seq, r.out);
  return {cap(r.out, config_.max_read_bytes), only(broker::Source::workspace, p.host)};
}

ToolOutcome ToolRunner::list_dir(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(opt_string(args, "path", "."));
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::fs_read, p.host, "list " + p.host, ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, "list_dir"));
  if (p.jail.empty()) return failure(kOutsideWorkspace, only(broker::Source::tool, "list_dir"));
  auto r = sandboxed(file_profile(false), {"ls", "-la", "--", p.jail}, "");
  if (r.exit_code != 0)
    return failure("error: list_dir: " + describe_failure(r), only(broker::Source::tool, "list_dir"));
  gate_.report_result(seq, r.out);
  return {cap(r.out, config_.max_command_output), only(broker::Source::workspace, p.host)};
}

ToolOutcome ToolRunner::search_files(const json& args, const LabelSet& ctx) {
  const std::string pattern = need_string(args, "pattern");
  const Path p = resolve_path(opt_string(args, "path", "."));
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::fs_read, p.host, "search /" + pattern + "/ under " + p.host, ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, "search_files"));
  if (p.jail.empty()) return failure(kOutsideWorkspace, only(broker::Source::tool, "search_files"));
  auto r = sandboxed(file_profile(false),
                     {"grep", "-rnE", "--binary-files=without-match", "-e", pattern, "--", p.jail}, "");
  if (r.exit_code == 1) return {"no matches", only(broker::Source::workspace, p.host)};
  if (r.exit_code != 0)
    return failure("error: search_files: " + describe_failure(r), only(broker::Source::tool, "search_files"));
  gate_.report_result(seq, r.out);
  return {cap(r.out, config_.max_command_output), only(broker::Source::workspace, p.host)};
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

ToolOutcome ToolRunner::write_content(const Path& p, const std::string& content, const std::string& tool,
                                      const LabelSet& ctx) {
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
        "cat > /tmp/new || exit 2; if [ -e \"$1\" ]; then old=\"$1\"; else old=/dev/null; fi; "
        "diff -a -u --label \"a/$2\" --label \"b/$2\" -- \"$old\" /tmp/new; [ $? -le 1 ]";
    auto d = sandboxed(file_profile(false), {"sh", "-c", script, "sh", p.jail, rel}, content);
    if (d.exit_code != 0) return failure("error: " + tool + ": cannot compute the diff: " + describe_failure(d),
                                  only(broker::Source::tool, tool));
    detail = d.out.empty() ? "(no change)" : d.out;
  } else {
    detail = "write " + std::to_string(content.size()) + " bytes to " + p.host + ":\n" + content;
  }
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::fs_write, p.host, detail, ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, tool));
  if (p.jail.empty()) return failure(kOutsideWorkspace, only(broker::Source::tool, tool));
  auto r = sandboxed(file_profile(true),
                     {"sh", "-c", std::string(kRefuseLinksSh) + "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\"",
                      "sh", p.jail, rel},
                     content);
  if (r.exit_code != 0) return failure("error: " + tool + ": " + describe_failure(r), only(broker::Source::tool, tool));
  gate_.report_result(seq, content);
  return {"wrote " + std::to_string(content.size()) + " bytes to " + p.host, only(broker::Source::tool, tool)};
}

ToolOutcome ToolRunner::write_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  return write_content(p, need_string(args, "content"), "write_file", ctx);
}

ToolOutcome ToolRunner::edit_file(const json& args, const LabelSet& ctx) {
  const Path p = resolve_path(need_string(args, "path"));
  const std::string old_s = need_string(args, "old_string"), new_s = need_string(args, "new_string");
  if (old_s.empty()) throw Error("argument 'old_string' must not be empty");
  if (!p.jail.empty()) refuse_links(p);  // before the read too: the link is refused, not read through
  int64_t seq = 0;
  std::string denied;
  if (!authorize(Capability::fs_read, p.host, "read " + p.host + " (to edit it)", ctx, false, seq, denied))
    return failure(denied, only(broker::Source::tool, "edit_file"));
  if (p.jail.empty()) return failure(kOutsideWorkspace, only(broker::Source::tool, "edit_file"));
  auto r = sandboxed(file_profile(false), {"head", "-c", std::to_string(config_.max_read_bytes + 1), "--", p.jail}, "");
  if (r.exit_code != 0)
    return failure("error: edit_file: " + describe_failure(r), only(broker::Source::tool, "edit_file"));
  if (r.out.size() > config_.max_read_bytes) throw Error("file is larger than " + std::to_string(config_.max_read_bytes) + " bytes");
  const size_t at = r.out.find(old_s);
  if (at == std::string::npos)
    return failure("error: edit_file: old_string not found in " + p.host, only(broker::Source::tool, "edit_file"));
  if (r.out.find(old_s, at + 1) != std::string::npos)
    return failure("error: edit_file: old_string occurs more than once in " + p.host,
                   only(broker::Source::tool, "edit_file"));
  std::string updated = r.out;
  updated.replace(at, old_s.size(), new_s);
  LabelSet with_file = ctx;
  with_file.add(broker::Label{broker::Source::workspace, p.host});
  return write_content(p, updated, "edit_file", with_file);
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
  bool write_git = false;
  if (args.contains("write_git") && !args["write_git"].is_null()) {
    if (!args["write_git"].is_boolean()) throw Error("argument 'write_git' must be true or false");
    write_git = args["write_git"].get<bool>();
  }
  const bool network = !domains.empty();
  std::string detail = "$ " + command;
  if (network) {
    detail += "\nwith network to:";
    for (const auto& d : domains) detail += " " + d;
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
                       "/.git, and any repository it makes in the workspace) for:\n$ " + command,
                   ctx, false, git_seq,
                   denied))
      return failure(denied, only(broker::Source::tool, "run_command"));
  }
  sandbox::Profile profile = sandbox::named_profile(network ? "network" : "default");
  profile.workspace = config_.workspace;
  for (const auto& entry : broker::kAutorunNames)
    if (!(write_git && std::string_view(entry.name) == ".git"))
      profile.readonly_in_workspace.push_back({entry.name, entry.directory});
  profile.limits.wall_seconds = config_.command_wall_seconds;
  profile.allowed_domains = domains;
  sandbox::RunOptions options;
  if (network) apply_user_resolve(profile, options);
  // Deeper down, and for repositories without a .git name, what the
  // command planted is found afterwards and moved aside.
  const PlantedSnapshot before = snapshot_autorun_entries(config_.workspace, !write_git);
  auto r = sandboxed(profile, {"sh", "-c", command}, "", options);
  std::string text = "exit " + std::to_string(r.exit_code);
  if (r.killed != sandbox::KillReason::none) text += " (killed: " + std::string(sandbox::kill_reason_name(r.killed)) + ")";
  text += move_aside_planted_code(before, write_git);
  text += "\nstdout:\n" + cap(strip_control_chars(r.out), config_.max_command_output);
  text += "\nstderr:\n" + cap(strip_control_chars(r.err), config_.max_command_output);
  gate_.report_result(seq, r.out + r.err);
  return {text, only(broker::Source::tool, "run_command")};
}

std::string ToolRunner::move_aside_planted_code(const PlantedSnapshot& before, bool write_git) {
  std::vector<std::string> moved;
  try {
    moved = quarantine(config_.workspace,
                       planted_since(before, snapshot_autorun_entries(config_.workspace, !write_git)));
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
      "the command planted files that git, direnv or VS Code would run as code outside the sandbox; moved aside "
      "(review them before renaming them back; a command that must create a repository passes write_git: true, "
      "which asks the user):" + list;
  gate_.record_event("tool.quarantine", "run_command in " + config_.workspace + ": " + note);
  log::warn("agent: " + broker::neutralize(note, /*keep_newlines=*/true));  // file names are the model's
  return "\nwarden: " + note;
}

ToolOutcome ToolRunner::fetch_url(const json& args, const LabelSet& ctx) {
  const std::string url = need_string(args, "url");
  const ParsedUrl u = parse_url(url);
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
  auto r = sandboxed(profile,
                     {"curl", "-sS", "--max-time", "20", "--max-filesize", std::to_string(2u << 20), "--proto",
                      "=http,https", "--", url},
                     "", options);
  if (r.exit_code != 0) return failure("error: fetch_url: " + describe_failure(r), only(broker::Source::web, u.host));
  gate_.report_result(seq, r.out);
  std::string text = looks_like_html("", r.out) ? html_to_text(r.out) : strip_control_chars(r.out);
  return {cap(text, config_.max_fetch_text), only(broker::Source::web, u.host)};
}

}  // namespace warden::agent
