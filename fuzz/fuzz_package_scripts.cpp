// Fuzzes what the planted-code check reads from package.json files and the
// command lines in them, which a jailed command may have written. It must
// never crash or loop; a script name is never empty, every script found
// comes with its pre- and post- script, and the part watched of a text
// that is no JSON object is the whole text (of one, "" or JSON).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/package_scripts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const warden::agent::ScriptsRun run = warden::agent::scripts_a_line_runs(input);
  for (const std::string& name : run.names) {
    if (name.empty()) std::abort();
    if (name.rfind("pre", 0) != 0 && name.rfind("post", 0) != 0 &&
        (!run.names.count("pre" + name) || !run.names.count("post" + name)))
      std::abort();
  }
  if (!run.runs_a_package_tool && (run.all_scripts || !run.names.empty())) std::abort();
  const warden::agent::ManifestRuns runs = warden::agent::what_a_manifest_runs(input, run);
  const nlohmann::json parsed = nlohmann::json::parse(input, nullptr, false);
  if (!parsed.is_object() && runs.watched != input) std::abort();
  if (parsed.is_object() && !runs.watched.empty() && !nlohmann::json::accept(runs.watched)) std::abort();
  return 0;
}
