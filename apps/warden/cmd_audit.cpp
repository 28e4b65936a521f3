// warden audit show | verify | export: read and check the hash-chained log.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "broker/audit.h"
#include "broker/render.h"
#include "command.h"
#include "util/error.h"

namespace {
using namespace warden::broker;

struct AuditOptions {
  std::string db;
  std::string since;
  bool json = false;
};

// The log to read. A missing one is an error, not an empty log that
// "verifies": a mistyped --db, or a log deleted with its head anchor, must
// not look like an intact one. (The broker, not this command, starts logs.)
std::string existing_db_path(const AuditOptions& o) {
  const std::string path = o.db.empty() ? default_audit_path() : o.db;
  if (!std::filesystem::exists(path))
    throw warden::Error("no audit log at " + path + (o.db.empty() ? " (nothing has been recorded yet)" : ""));
  return path;
}

// --since takes an ISO time prefix (2026-11-25, 2026-11-25T20:00) or an age
// (90s, 10m, 2h, 7d); both become an ISO prefix compared with record times.
std::string since_to_iso(const std::string& since) {
  if (since.empty()) return "";
  char unit = since.back();
  bool relative = since.size() >= 2 && std::string("smhd").find(unit) != std::string::npos &&
                  since.find_first_not_of("0123456789") == since.size() - 1;
  const std::string usage = "--since '" + since + "': expected an ISO time (2026-11-25T20:00) or an age (10m, 2h, 7d)";
  if (!relative) {
    // The record times are compared as text: the date must be one.
    std::tm tm{};
    const char* end = strptime(since.c_str(), "%Y-%m-%d", &tm);
    const bool iso = end && since.find_first_not_of("0123456789-T:.Z") == std::string::npos &&
                     (*end == '\0' || *end == 'T') && tm.tm_mon >= 0 && tm.tm_mon < 12 && tm.tm_mday >= 1;
    if (!iso) throw warden::UsageError(usage);
    return since;
  }
  // An age longer than the time since 1970 means every record.
  const long long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
  const std::string digits = since.substr(0, since.size() - 1);
  const long long now = std::time(nullptr);
  if (digits.size() > 15 || std::stoll(digits) > now / mult) return "0000";
  std::time_t t = std::time_t(now - std::stoll(digits) * mult);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

nlohmann::json record_json(const AuditRecord& r) {
  return {{"seq", r.seq},
          {"time", r.time},
          {"actor", r.entry.actor},
          {"capability", r.entry.capability},
          {"arguments", r.entry.arguments},
          {"decision", r.entry.decision},
          {"reason", r.entry.reason},
          {"result_digest", r.entry.result_digest},
          {"prev_hash", r.prev_hash},
          {"hash", r.hash}};
}

// ASCII only: records hold model-made text, whose bidi and C1 control
// characters must not reach a terminal as they are.
std::string dump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', true, nlohmann::json::error_handler_t::replace);
}

int show(const AuditOptions& o) {
  auto records = read_audit(existing_db_path(o), since_to_iso(o.since));
  if (o.json) {
    for (auto& r : records) std::printf("%s\n", dump(record_json(r), -1).c_str());
    return 0;
  }
  for (auto& r : records) {
    // Arguments hold model-made text: never let it reach the terminal raw.
    std::printf("#%lld %s %s %s: %s\n    args: %s\n    why: %s\n", (long long)r.seq, r.time.c_str(),
                neutralize(r.entry.actor, false).c_str(), neutralize(r.entry.capability, false).c_str(),
                r.entry.decision.c_str(), neutralize(r.entry.arguments, false).c_str(),
                neutralize(r.entry.reason, false).c_str());
    if (!r.entry.result_digest.empty()) std::printf("    result sha256: %s\n", r.entry.result_digest.c_str());
  }
  return 0;
}

int export_json(const AuditOptions& o) {
  auto records = read_audit(existing_db_path(o), since_to_iso(o.since));
  nlohmann::json arr = nlohmann::json::array();
  for (auto& r : records) arr.push_back(record_json(r));
  std::printf("%s\n", dump(arr, 2).c_str());
  return 0;
}

int verify(const AuditOptions& o) {
  std::string path = existing_db_path(o);
  VerifyReport rep = verify_audit(path);
  if (o.json) {
    nlohmann::json j = {{"ok", rep.ok},
                        {"records", rep.records},
                        {"head_hash", rep.last_hash},
                        {"problems", rep.problems},
                        {"notes", rep.notes}};
    std::printf("%s\n", dump(j, 2).c_str());
  } else {
    for (auto& p : rep.problems) std::printf("TAMPERED: %s\n", neutralize(p, false).c_str());
    for (auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
    if (rep.ok)
      std::printf("ok: %lld records, chain intact, head %s\n", (long long)rep.records, rep.last_hash.c_str());
  }
  if (!rep.ok)
    throw warden::Error("audit log " + path + " failed verification (" + std::to_string(rep.problems.size()) +
                        " problem" + (rep.problems.size() == 1 ? "" : "s") + ")");
  return 0;
}

std::function<int()> setup_audit(CLI::App& app) {
  auto o = std::make_shared<AuditOptions>();
  app.require_subcommand(1);
  auto add_db = [&](CLI::App* s) {
    s->add_option("--db", o->db, "Audit database (default $XDG_DATA_HOME/warden/audit.db)");
  };
  auto* show_cmd = app.add_subcommand("show", "Print records, oldest first");
  add_db(show_cmd);
  show_cmd->add_option("--since", o->since, "Only records since an ISO time or an age (10m, 2h, 7d)");
  show_cmd->add_flag("--json", o->json, "One JSON object per line");
  auto* verify_cmd = app.add_subcommand("verify", "Check the hash chain and the head anchor");
  add_db(verify_cmd);
  verify_cmd->add_flag("--json", o->json, "Print the report as JSON");
  auto* export_cmd = app.add_subcommand("export", "Print every record as a JSON array");
  add_db(export_cmd);
  export_cmd->add_option("--since", o->since, "Only records since an ISO time or an age");
  export_cmd->add_flag("--json", o->json, "JSON output (the only format)");
  return [o, show_cmd, verify_cmd]() -> int {
    if (show_cmd->parsed()) return show(*o);
    if (verify_cmd->parsed()) return verify(*o);
    return export_json(*o);
  };
}

WARDEN_COMMAND("audit", "Show, verify or export the tamper-evident audit log", setup_audit);

}  // namespace
