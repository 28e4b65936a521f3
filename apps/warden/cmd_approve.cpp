// warden approve list | show ID | approve ID | deny ID: the second approval
// channel, from another terminal, over the broker's approval socket.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "broker/client.h"
#include "broker/render.h"
#include "broker/tty_prompt.h"
#include "command.h"
#include "util/error.h"

namespace {
using namespace warden::broker;

struct ApproveOptions {
  std::string verb;
  std::string id;
  std::string socket;
  bool json = false;
};

int run_approve(const ApproveOptions& o) {
  bool needs_id = o.verb == "show" || o.verb == "approve" || o.verb == "deny";
  if (o.verb != "list" && !needs_id)
    throw warden::UsageError("unknown action '" + o.verb + "' (expected list, show ID, approve ID, deny ID)");
  if (needs_id && o.id.empty()) throw warden::UsageError(o.verb + " needs a request ID (see warden approve list)");
  if (needs_id && !is_approval_id(o.id))
    throw warden::UsageError("'" + o.id + "' is not a request ID; IDs look like k7qm2-3 (see warden approve list)");
  if (!needs_id && !o.id.empty()) throw warden::UsageError("list takes no ID");

  ApproverClient client(o.socket);
  nlohmann::json req = {{"op", o.verb}};
  if (needs_id) req["id"] = o.id;
  nlohmann::json reply = client.call(req);
  if (o.json) {
    // ASCII only: a request holds model-made text (bidi, C1 controls).
    std::printf("%s\n", reply.dump(2, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (o.verb == "list") {
    if (reply["pending"].empty()) std::printf("no pending requests\n");
    for (auto& j : reply["pending"]) {
      PendingApproval p = approval_from_json(j);
      // Capped like the prompt's target; a non-ASCII one is spelled in ASCII
      // too, so a look-alike letter shows here already.
      const std::string& target = p.request.target;
      std::printf("%s  %s %s\n", p.id.c_str(), std::string(capability_name(p.request.capability)).c_str(),
                  neutralize_capped(target, 200, 80, false).text.c_str());
      if (has_non_ascii(target)) std::printf("    in ASCII: %s\n", neutralize_capped(target, 200, 80, true).text.c_str());
    }
  } else if (o.verb == "show") {
    std::fputs(render_show(approval_from_json(reply["approval"])).c_str(), stdout);
  } else {
    std::printf("request %s %s\n", o.id.c_str(), o.verb == "approve" ? "approved" : "denied");
  }
  return 0;
}

std::function<int()> setup_approve(CLI::App& app) {
  auto o = std::make_shared<ApproveOptions>();
  app.add_option("action", o->verb, "list | show ID | approve ID | deny ID")->required();
  app.add_option("id", o->id, "Request ID, e.g. k7qm2-3 (from list)");
  app.add_option("--socket", o->socket, "Approval socket (default $XDG_RUNTIME_DIR/warden/approve.sock)");
  app.add_flag("--json", o->json, "Print the broker's reply as JSON");
  return [o]() -> int { return run_approve(*o); };
}

WARDEN_COMMAND("approve", "Answer the broker's pending approvals from another terminal", setup_approve);

}  // namespace
