#pragma once
// The agent's tools. Each call goes: parse and check the model's arguments ->
// ask the broker (capability, exact target, the effect shown to a human,
// taint labels) -> if allowed, run it in a fresh sandbox -> label the result
// with where it came from. The agent process itself never opens a user file
// or a network connection: file tools run coreutils inside bwrap too.
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/backend.h"
#include "agent/changed_files.h"
#include "agent/planted_code.h"
#include "broker/request.h"
#include "broker/taint.h"
#include "sandbox/sandbox.h"

namespace warden::broker {
struct BrokerAbout;  // broker/client.h
}

namespace warden::agent {

// The agent's view of the broker: ask, report, log. BrokerGate wraps the real
// socket client; tests may substitute their own.
class Gate {
 public:
  virtual ~Gate() = default;
  // Never throws: an unreachable or broken broker is a denial (fail closed).
  virtual broker::Decision request(const broker::EffectRequest& r) = 0;
  virtual void report_result(int64_t audit_seq, const std::string& result) = 0;
  virtual void record_event(const std::string& kind, const std::string& detail) = 0;
  // Why records can no longer reach the audit log (a result or event was
  // refused, the broker connection was lost); empty while they can. Once
  // non-empty, the agent stops: nothing may go on unaudited (I5).
  virtual std::string audit_failure() const { return {}; }
};

// Event details sent to the broker are cut to this size (with a note), well
// under its per-detail and per-line limits (broker/protocol.h) even when JSON
// escaping grows every byte sixfold: an over-long line would make the broker
// drop the connection and every later event.
constexpr size_t kMaxEventDetailBytes = 64 * 1024;
// Cuts `detail` to kMaxEventDetailBytes, ending in "... (N bytes cut)".
std::string cap_event_detail(std::string detail);

class BrokerClientHolder;

class BrokerGate : public Gate {
 public:
  explicit BrokerGate(const std::string& agent_socket);  // throws warden::Error when unreachable
  ~BrokerGate() override;
  broker::Decision request(const broker::EffectRequest& r) override;
  void report_result(int64_t audit_seq, const std::string& result) override;
  void record_event(const std::string& kind, const std::string& detail) override;
  std::string audit_failure() const override { return failure_; }
  // What the broker serves; throws warden::Error when it cannot say.
  broker::BrokerAbout about();

 private:
  void fail(const std::string& what, const std::exception& e);

  std::unique_ptr<BrokerClientHolder> client_;
  std::string failure_;  // sticky: a lost connection does not come back
};

// Runs one command in the sandbox; replaceable in unit tests.
using SandboxRunner = std::function<sandbox::SandboxResult(const sandbox::Profile&, const std::vector<std::string>&,
                                                           const std::string&, const sandbox::RunOptions&)>;

struct ToolConfig {
  std::string workspace;  // absolute host path
  std::string home;       // for "~" in paths the model gives
  // host -> address the egress proxy uses instead of DNS (user-given, e.g.
  // for a local service or the tests' loopback sinks); such hosts may be
  // private addresses.
  std::map<std::string, std::string> resolve;
  size_t max_read_bytes = 128 * 1024;  // about 32K tokens: a part of a file fits a common context
  size_t max_edit_bytes = 8 << 20;  // edit_file reads the whole file
  size_t max_fetch_text = 64 * 1024;
  size_t max_command_output = 64 * 1024;
  double command_wall_seconds = 60;
  SandboxRunner run_sandbox;  // empty: sandbox::run
};

struct ToolOutcome {
  std::string text;          // what the model is told
  broker::LabelSet labels;   // where that text came from
  bool failed = false;       // a denial ("denied: ...") or an error ("error: ..."), not the tool's output
};

class ToolRunner {
 public:
  ToolRunner(ToolConfig config, Gate& gate);

  // The OpenAI "tools" array describing every tool.
  static nlohmann::json schemas();

  // Executes one call the model proposed, with the labels of everything in
  // the context. Never throws for anything the model controls: bad
  // arguments, denials and failures become the outcome text.
  ToolOutcome execute(const ToolCall& call, const broker::LabelSet& context_labels);

  // Set when the workspace could not be checked, after a command, for code
  // planted for later (or what was found could not be moved aside): nothing
  // may run after that, and the agent stops ("" while all is well).
  const std::string& fatal_error() const { return fatal_; }

 private:
  struct Path {
    std::string host;  // lexically normalized absolute host path
    std::string jail;  // relative to the jail's working directory, the workspace ("." for it); empty: outside
  };
  Path resolve_path(const std::string& given) const;

  ToolOutcome read_file(const nlohmann::json& args, const broker::LabelSet& ctx);
  ToolOutcome list_dir(const nlohmann::json& args, const broker::LabelSet& ctx);
  ToolOutcome search_files(const nlohmann::json& args, const broker::LabelSet& ctx);
  ToolOutcome write_file(const nlohmann::json& args, const broker::LabelSet& ctx);
  ToolOutcome edit_file(const nlohmann::json& args, const broker::LabelSet& ctx);
  ToolOutcome run_command(const nlohmann::json& args, const broker::LabelSet& ctx);
  // After a command or a write: moves aside the code it planted for later
  // (planted_code.h), but `approved` (a workspace-relative path a human
  // approved as such) and the folders it is in, and returns the note for
  // the model ("" when nothing was planted).
  std::string move_aside_planted_code(const PlantedSnapshot& before, bool write_git, const std::string& approved = "");
  std::string fatal_;
  ToolOutcome fetch_url(const nlohmann::json& args, const broker::LabelSet& ctx);
  struct FetchedPage {
    std::string url, text;
    broker::LabelSet labels;
    bool cut = false;     // the body was larger than fetch_url reads
    int64_t audit_seq = 0;  // the broker's record of the request that fetched it
  };
  // The part of a fetched page's text from byte `start`, with a note on
  // where to read on; a long page's text is kept for that (the last few).
  ToolOutcome page_part(const FetchedPage& page, size_t start);
  std::vector<FetchedPage> fetched_pages_;  // newest last

  // Asks the broker about a file tool's path: the refusal the model gets
  // (outside the workspace, or the broker's denial), or nothing when the
  // tool may go on. `whole_tree`: the tool reads all below the path.
  std::optional<ToolOutcome> file_refusal(broker::Capability cap, const Path& p, const std::string& detail,
                                          const broker::LabelSet& ctx, const std::string& tool, int64_t& seq,
                                          bool whole_tree = false);
  // Asks the broker; on denial fills `denied_text` ("denied: ...").
  bool authorize(broker::Capability cap, const std::string& target, const std::string& detail,
                 const broker::LabelSet& ctx, bool network, int64_t& audit_seq, std::string& denied_text,
                 bool whole_tree = false);
  // Throws Error when a component of `p` is a symbolic link that is
  // absolute or leads out of the workspace: the reading tools follow only
  // links the host and the jail resolve alike.
  void check_read_links(const Path& p) const;
  // Throws Error when an existing component of `p` (the last included) is a
  // symbolic link: file-writing tools never follow links.
  void refuse_links(const Path& p) const;
  // Writes `content` after the human or the policy allowed its diff;
  // `done` is the model's answer on success.
  ToolOutcome write_content(const Path& p, const std::string& content, const std::string& tool,
                            const broker::LabelSet& ctx, const std::string& done);
  sandbox::SandboxResult sandboxed(const sandbox::Profile& profile, const std::vector<std::string>& argv,
                                   const std::string& input, const sandbox::RunOptions& options = {});
  sandbox::Profile file_profile(bool writable) const;
  // Applies the user's --resolve mappings for the profile's allowed domains.
  void apply_user_resolve(sandbox::Profile& profile, sandbox::RunOptions& options) const;

  ToolConfig config_;
  // When the session began, on the clock of files' change times, less a
  // second's margin: a networked command's prompt lists the workspace
  // files changed since.
  int64_t session_start_ns_ = change_clock_now_ns() - 1000000000;
  Gate& gate_;
};

// Parsed pieces of a fetch_url argument; throws warden::Error naming what is
// wrong (scheme, user info, control characters, bad port...).
struct ParsedUrl {
  std::string scheme, host, path;
  uint16_t port = 0;
};
ParsedUrl parse_url(const std::string& url);

}  // namespace warden::agent
