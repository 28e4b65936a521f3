#include "broker/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "util/error.h"
#include "util/json_nesting.h"

namespace warden::broker {
namespace {

void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const char* what) {
  for (auto& [key, value] : j.items())
    if (!allowed.count(key)) throw Error(std::string("unknown field '") + key + "' in " + what);
}

std::string get_string(const nlohmann::json& j, const char* key, bool required, size_t max_bytes) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) throw Error(std::string("missing field '") + key + "'");
    return "";
  }
  if (!it->is_string()) throw Error(std::string("field '") + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_bytes) throw Error(std::string("field '") + key + "' is too long");
  return s;
}

LabelSet get_labels(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_array()) throw Error(std::string("field '") + key + "' must be an array of labels");
  if (it->size() > kMaxLabels) throw Error(std::string("field '") + key + "' has too many labels");
  LabelSet set;
  for (auto& l : *it) {
    if (!l.is_string()) throw Error(std::string("field '") + key + "' must hold strings");
    const auto& text = l.get_ref<const std::string&>();
    if (text.size() > 4096) throw Error("a taint label is longer than 4096 bytes");
    set.add(parse_label(text));
  }
  return set;
}

}  // namespace

std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json parse_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) throw Error("request line is longer than 4 MiB");
  if (json_nests_deeper_than(line))
    throw Error("request nests arrays and objects more than " + std::to_string(kMaxJsonNesting) + " levels deep");
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) throw Error("request is not valid JSON");
  if (!j.is_object()) throw Error("request must be a JSON object");
  return j;
}

EffectRequest effect_request_from_json(const nlohmann::json& j) {
  check_keys(j, {"op", "capability", "target", "network", "whole_tree", "detail", "context_labels", "argument_labels"},
             "request");
  EffectRequest r;
  std::string cap = get_string(j, "capability", true, 64);
  auto parsed = parse_capability(cap);
  if (!parsed) throw Error("unknown capability '" + cap + "'");
  r.capability = *parsed;
  r.target = get_string(j, "target", true, 64 * 1024);
  r.detail = get_string(j, "detail", false, kMaxDetailBytes);
  if (auto it = j.find("network"); it != j.end()) {
    if (!it->is_boolean()) throw Error("field 'network' must be true or false");
    r.network = it->get<bool>();
    if (r.network && r.capability != Capability::exec) throw Error("field 'network' applies only to exec");
  }
  if (auto it = j.find("whole_tree"); it != j.end()) {
    if (!it->is_boolean()) throw Error("field 'whole_tree' must be true or false");
    r.whole_tree = it->get<bool>();
    if (r.whole_tree && r.capability != Capability::fs_read) throw Error("field 'whole_tree' applies only to fs.read");
  }
  r.context_labels = get_labels(j, "context_labels");
  r.argument_labels = get_labels(j, "argument_labels");
  return r;
}

nlohmann::json effect_request_to_json(const EffectRequest& r) {
  nlohmann::json j = {{"op", "request"},
                      {"capability", std::string(capability_name(r.capability))},
                      {"target", r.target},
                      {"detail", r.detail},
                      {"context_labels", r.context_labels.to_strings()},
                      {"argument_labels", r.argument_labels.to_strings()}};
  if (r.capability == Capability::exec) j["network"] = r.network;
  if (r.whole_tree) j["whole_tree"] = true;
  return j;
}

nlohmann::json approval_to_json(const PendingApproval& p) {
  return {{"id", p.id},
          {"capability", std::string(capability_name(p.request.capability))},
          {"target", p.request.target},
          {"network", p.request.network},
          {"detail", p.request.detail},
          {"policy", p.policy_reason},
          {"why", p.ask_reasons},
          {"context_labels", p.request.context_labels.to_strings()},
          {"argument_labels", p.request.argument_labels.to_strings()}};
}

PendingApproval approval_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("malformed approval in broker reply");
  PendingApproval p;
  p.id = approval_id_from_json(j);
  auto cap = parse_capability(get_string(j, "capability", true, 64));
  if (!cap) throw Error("unknown capability in broker reply");
  p.request.capability = *cap;
  p.request.target = get_string(j, "target", true, kMaxLineBytes);
  p.request.detail = get_string(j, "detail", false, kMaxLineBytes);
  p.request.network = j.value("network", false);
  p.policy_reason = get_string(j, "policy", false, kMaxLineBytes);
  if (auto why = j.find("why"); why != j.end() && why->is_array())
    for (auto& w : *why)
      if (w.is_string()) p.ask_reasons.push_back(w.get<std::string>());
  p.request.context_labels = get_labels(j, "context_labels");
  p.request.argument_labels = get_labels(j, "argument_labels");
  return p;
}

nlohmann::json decision_to_json(const Decision& d) {
  return {{"ok", true},
          {"allowed", d.allowed()},
          {"decision", std::string(outcome_text(d.outcome))},
          {"reason", d.reason},
          {"audit_seq", d.audit_seq}};
}

Decision decision_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.value("ok", false)) {
    std::string err = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                                     : "malformed broker reply";
    throw Error("broker: " + err);
  }
  Decision d;
  std::string outcome = j.value("decision", "");
  if (outcome == outcome_text(Outcome::allowed_by_policy)) d.outcome = Outcome::allowed_by_policy;
  else if (outcome == outcome_text(Outcome::approved_by_human)) d.outcome = Outcome::approved_by_human;
  else d.outcome = Outcome::denied;  // anything unexpected counts as a no
  d.reason = j.value("reason", "");
  d.audit_seq = j.value("audit_seq", int64_t(0));
  return d;
}

std::string approval_id_from_json(const nlohmann::json& j) {
  auto it = j.find("id");
  if (it == j.end() || !it->is_string()) throw Error("field 'id' must be a request id such as k7qm2-3");
  const std::string& id = it->get_ref<const std::string&>();
  if (!is_approval_id(id)) throw Error("field 'id' must be a request id such as k7qm2-3");
  return id;
}

bool is_approval_id(std::string_view id) {
  auto dash = id.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash + 1 == id.size() || id.size() > 64) return false;
  if (id[dash + 1] == '0') return false;  // counts start at 1 and have no leading zeros
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = i < dash ? (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') : (c >= '0' && c <= '9');
    if (!ok && i != dash) return false;
  }
  return true;
}

bool LineSocket::read_line(std::string& line, const std::function<bool()>& keep_waiting) {
  while (true) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    if (buffer_.size() > kMaxLineBytes) throw Error("request line is longer than 4 MiB");
    if (!keep_waiting()) return false;
    pollfd pfd{fd_, POLLIN, 0};
    int n = ::poll(&pfd, 1, 200);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) continue;
    char buf[65536];
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer_.append(buf, size_t(got));
  }
}

bool LineSocket::write_line(const std::string& line) {
  std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += size_t(w);
  }
  return true;
}

}  // namespace warden::broker
