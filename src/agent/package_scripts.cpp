#include "agent/package_scripts.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>

namespace warden::agent {
namespace {

using json = nlohmann::json;

// One command of a line: its words, split as a shell would roughly split
// them (quotes dropped, so `concurrently "npm run a"` shows its inner
// command); a separator (; & | ( ) `) ends a command.
std::vector<std::vector<std::string>> commands_of(std::string_view line) {
  std::vector<std::vector<std::string>> commands(1);
  std::string word;
  const auto finish = [&] {
    if (!word.empty()) commands.back().push_back(word);
    word.clear();
  };
  for (const char c : line) {
    if (std::string_view(";&|()`").find(c) != std::string_view::npos) {
      finish();
      if (!commands.back().empty()) commands.emplace_back();
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '<' || c == '>') {
      finish();
    } else {
      word.push_back(c);
    }
  }
  finish();
  return commands;
}

// A program's name as a command line gives it: without its folder, and
// without a version corepack or npx takes (`npm@10`, `pnpm@9.1.0`).
std::string program_name(const std::string& word) {
  if (word == "$npm_execpath" || word == "${npm_execpath}") return "npm";  // the package manager running a script
  const size_t slash = word.rfind('/');
  std::string name = slash == std::string::npos ? word : word.substr(slash + 1);
  if (const size_t at = name.find('@'); at != std::string::npos && at > 0) name.resize(at);
  return name;
}

bool is_one_of(const std::string& word, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), word) != set.end();
}

// The words after position `from` that are no options, up to `--` (what
// follows it goes to the script); an option known to take a value takes
// the next word with it.
std::vector<std::string> plain_words(const std::vector<std::string>& words, size_t from) {
  std::vector<std::string> out;
  for (size_t i = from; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") break;
    if (w[0] != '-') {
      out.push_back(w);
      continue;
    }
    const bool takes_value = w.find('=') == std::string::npos &&
                             is_one_of(w, {"--prefix", "-C", "--cwd", "--dir", "-w", "--workspace", "--filter", "-F"});
    if (takes_value) ++i;
  }
  return out;
}

// What install-like commands run: the package's lifecycle scripts, and
// its dependencies' (and what node-gyp builds).
void add_lifecycle(ScriptsRun& run) {
  for (const char* name : {"install", "prepare", "prepublish", "dependencies"}) run.names.insert(name);
  run.installs = true;
}

const std::initializer_list<std::string_view> kRunCommands = {"run", "run-script", "rum", "urn"};
const std::initializer_list<std::string_view> kInstallCommands = {
    "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall", "add", "ci",
    "clean-install", "ic", "install-clean", "isntall-clean"};
// Commands that run no script of the package (they run a package's binary,
// or only look): `npm exec`, `yarn dlx`, `npm ls`.
const std::initializer_list<std::string_view> kNoScriptCommands = {
    "exec", "x", "dlx", "ls", "list", "view", "info", "outdated", "why", "help", "config", "whoami", "ping",
    "search", "root", "bin", "prefix", "cache", "explain", "fund", "doctor", "get", "set"};

void add_npm_command(const std::vector<std::string>& words, ScriptsRun& run) {
  if (words.empty()) {  // a hook manager's `entry: npm` with its arguments on another line
    run.all_scripts = true;
    return;
  }
  const std::string& sub = words[0];
  if (is_one_of(sub, kRunCommands)) {
    run.names.insert(words.begin() + 1, words.end());
  } else if (is_one_of(sub, {"test", "t", "tst", "start", "stop", "restart"})) {
    run.names.insert(sub == "t" || sub == "tst" ? "test" : sub);
    if (sub == "restart") run.names.insert({"stop", "start"});
  } else if (is_one_of(sub, kInstallCommands)) {
    add_lifecycle(run);
  } else if (is_one_of(sub, {"cit", "it", "install-test", "install-ci-test"})) {
    add_lifecycle(run);
    run.names.insert("test");
  } else if (!is_one_of(sub, kNoScriptCommands)) {
    run.all_scripts = true;  // version, pack, publish, rebuild...: all, for all this can tell
  }
}

// yarn, pnpm and bun run a script by its name alone (`yarn lint`); every
// plain word is taken for one (a word that names no script is harmless).
void add_yarn_like_command(const std::vector<std::string>& words, ScriptsRun& run) {
  if (words.empty()) {  // bare `yarn` installs; or a hook manager's `entry: yarn` with its arguments elsewhere
    add_lifecycle(run);
    run.all_scripts = true;
  } else if (is_one_of(words[0], kInstallCommands)) {
    add_lifecycle(run);
  } else if (!is_one_of(words[0], kNoScriptCommands)) {
    run.names.insert(words.begin() + (is_one_of(words[0], kRunCommands) ? 1 : 0), words.end());
    // pnpm's `run "/^lint:/"` runs the scripts a pattern matches.
    for (const std::string& name : words)
      if (name.size() > 1 && name.front() == '/' && name.back() == '/') run.all_scripts = true;
  }
}

// npm-run-all and its run-s / run-p take script names, globs included.
void add_run_all_command(const std::vector<std::string>& words, ScriptsRun& run) {
  for (const std::string& name : words) {
    if (name.find_first_of("*?{") != std::string::npos) run.all_scripts = true;
    run.names.insert(name);
  }
}

// Hook runners that read their settings from package.json or files of
// their own beside it.
bool names_a_hook_runner(const std::string& word) {
  for (const char* runner : {"husky", "lint-staged", "nano-staged", "yorkie", "ghooks", "simple-git-hooks", "wireit"})
    if (word.find(runner) != std::string::npos) return true;
  return false;
}

// package.json's members that run nothing: what describes or publishes
// the package, and the dependency maps where no install runs.
const std::initializer_list<std::string_view> kInertMembers = {
    "name",   "version", "description", "keywords",      "author", "contributors", "maintainers", "license",
    "licenses", "homepage", "repository", "bugs",        "funding", "files",       "private",     "publishConfig",
    "engines", "os",      "cpu",         "libc",          "readme", "readmeFilename"};
const std::initializer_list<std::string_view> kDependencyMembers = {
    "dependencies", "devDependencies", "peerDependencies", "peerDependenciesMeta", "optionalDependencies",
    "bundleDependencies", "bundledDependencies", "overrides", "resolutions"};

// A dependency that is a folder of the workspace (`file:tools/x`,
// `link:../lib`, `./x`): its own scripts run on install.
std::string local_package(const std::string& spec) {
  for (const char* prefix : {"file:", "link:", "portal:"})
    if (spec.rfind(prefix, 0) == 0) return spec.substr(std::string_view(prefix).size());
  if (spec.rfind("./", 0) == 0 || spec.rfind("../", 0) == 0 || spec.rfind("/", 0) == 0) return spec;
  return "";
}

// Every string in a member, as a command line.
void collect_strings(const json& j, std::vector<std::string>& out) {
  if (j.is_string()) out.push_back(j.get<std::string>());
  if (j.is_structured())
    for (const json& item : j) collect_strings(item, out);
}

// Whether the text's arrays and objects nest at most `limit` deep (strings
// skipped): writing out or walking a JSON value recurses, and a manifest
// nested a million deep would overflow the stack.
bool nests_at_most(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace

void ScriptsRun::merge(const ScriptsRun& other) {
  runs_a_package_tool = runs_a_package_tool || other.runs_a_package_tool;
  all_scripts = all_scripts || other.all_scripts;
  installs = installs || other.installs;
  lint_staged = lint_staged || other.lint_staged;
  names.insert(other.names.begin(), other.names.end());
}

ScriptsRun scripts_a_line_runs(std::string_view line) {
  ScriptsRun run;
  for (const std::vector<std::string>& words : commands_of(line)) {
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string program = program_name(words[i]);
      if (names_a_hook_runner(words[i])) run.runs_a_package_tool = true;
      if (words[i].find("lint-staged") != std::string::npos || words[i].find("nano-staged") != std::string::npos)
        run.lint_staged = true;
      // concurrently's and wireit's `npm:lint`: the script lint
      // (`npm:lint:*`, a pattern: all of them).
      for (const char* manager : {"npm:", "yarn:", "pnpm:", "bun:"})
        if (words[i].rfind(manager, 0) == 0 && words[i].size() > std::strlen(manager)) {
          run.runs_a_package_tool = true;
          run.names.insert(words[i].substr(std::strlen(manager)));
          if (words[i].find_first_of("*(") != std::string::npos) run.all_scripts = true;
        }
      if (is_one_of(program, {"npx", "pnpx", "bunx", "node", "nodejs", "corepack"})) run.runs_a_package_tool = true;
      if (is_one_of(program, {"node", "nodejs"}) && i + 2 < words.size() && words[i + 1] == "--run")
        run.names.insert(words[i + 2]);  // node --run lint
      const bool npm = program == "npm", yarn_like = is_one_of(program, {"yarn", "yarnpkg", "pnpm", "bun"}),
                 run_all = is_one_of(program, {"npm-run-all", "npm-run-all2", "run-s", "run-p"});
      if (!npm && !yarn_like && !run_all) continue;
      run.runs_a_package_tool = true;
      const std::vector<std::string> rest = plain_words(words, i + 1);
      if (npm) add_npm_command(rest, run);
      if (yarn_like) add_yarn_like_command(rest, run);
      if (run_all) add_run_all_command(rest, run);
      // The rest of this command is that program's arguments, but for one
      // that runs another command (`npm exec -c "npm run lint"`).
      if (run_all || rest.empty() || !is_one_of(rest[0], {"exec", "x", "dlx"})) break;
    }
  }
  // Each script runs with its pre- and post- script.
  for (const std::string& name : std::set<std::string>(run.names)) run.names.insert({"pre" + name, "post" + name});
  return run;
}

ManifestRuns what_a_manifest_runs(const std::string& text, const ScriptsRun& asked) {
  ManifestRuns out;
  const json manifest =
      nests_at_most(text, 128) ? json::parse(text, nullptr, /*allow_exceptions=*/false) : json(json::value_t::discarded);
  if (!manifest.is_object()) {
    out.watched = text;  // npm would refuse it (or it nests too deep to read): any change to it counts
    return out;
  }
  json watched = json::object();
  for (const auto& [member, value] : manifest.items()) {
    if (member == "scripts" || is_one_of(member, kInertMembers)) continue;
    const bool dependencies = is_one_of(member, kDependencyMembers);
    if (dependencies && !asked.installs) continue;
    watched[member] = value;
    collect_strings(value, out.commands);
    if (dependencies && value.is_object())
      for (const auto& [package, spec] : value.items())
        if (spec.is_string() && !local_package(spec.get<std::string>()).empty())
          out.local_packages.push_back(local_package(spec.get<std::string>()));
  }
  // The scripts asked for, what the other members' commands run (husky 4's
  // hooks, lint-staged's commands), and in turn what those scripts run,
  // followed through the file.
  ScriptsRun run = asked;
  for (const std::string& command : out.commands) run.merge(scripts_a_line_runs(command));
  const json scripts = manifest.value("scripts", json());
  if (!scripts.is_object()) {
    if (!scripts.is_null()) watched["scripts"] = scripts;
    out.watched = watched.empty() ? "" : watched.dump();
    return out;
  }
  std::deque<std::string> queue(run.names.begin(), run.names.end());
  std::set<std::string> seen(run.names);
  json chosen = json::object();
  for (bool all = run.all_scripts; !queue.empty() || all;) {
    if (all) {  // one script not known here: all of them count
      chosen = scripts;
      for (const auto& [name, value] : scripts.items()) collect_strings(value, out.commands);
      break;
    }
    const std::string name = queue.front();
    queue.pop_front();
    const auto it = scripts.find(name);
    if (it == scripts.end()) continue;
    chosen[name] = *it;
    std::vector<std::string> lines;
    collect_strings(*it, lines);
    for (const std::string& line : lines) {
      out.commands.push_back(line);
      const ScriptsRun more = scripts_a_line_runs(line);
      all = all || more.all_scripts;
      for (const std::string& next : more.names)
        if (seen.insert(next).second) queue.push_back(next);
    }
  }
  // A file whose scripts run nothing asked for reads as one without them
  // (or as none at all: `npm init` in a repository whose hooks run npm).
  if (!chosen.empty()) watched["scripts"] = chosen;
  out.watched = watched.empty() ? "" : watched.dump();
  return out;
}

// lint-staged's and nano-staged's config files.
const std::vector<std::string>& lint_staged_configs() {
  static const std::vector<std::string> files = [] {
    std::vector<std::string> f = {".lintstagedrc", ".nano-staged"};
    for (const char* type : {".json", ".yaml", ".yml", ".js", ".cjs", ".mjs", ".ts", ".mts", ".cts"})
      for (const char* name : {".lintstagedrc", "lint-staged.config", ".nano-staged", "nano-staged"})
        f.push_back(std::string(name) + type);
    return f;
  }();
  return files;
}

const std::vector<std::string>& package_tool_files() {
  static const std::vector<std::string> files = [] {
    std::vector<std::string> f = {".npmrc",       ".yarnrc",      ".yarnrc.yml",     ".pnp.cjs", ".pnp.loader.mjs",
                                  ".pnpmfile.cjs", "pnpm-workspace.yaml", "bunfig.toml", "binding.gyp", ".huskyrc"};
    for (const char* type : {".json", ".yaml", ".yml", ".js", ".cjs", ".mjs", ".ts"})
      for (const char* name : {".huskyrc", "husky.config", ".simple-git-hooks", "simple-git-hooks"})
        f.push_back(std::string(name) + type);
    const std::vector<std::string>& lint_staged = lint_staged_configs();
    f.insert(f.end(), lint_staged.begin(), lint_staged.end());
    return f;
  }();
  return files;
}

bool is_lint_staged_config(const std::string& name) {
  const std::vector<std::string>& configs = lint_staged_configs();
  return std::find(configs.begin(), configs.end(), name) != configs.end();
}

}  // namespace warden::agent
