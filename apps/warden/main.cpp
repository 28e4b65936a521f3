// warden: one binary, subcommands registered by the cmd_*.cpp files.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "command.h"
#include "util/log.h"

namespace {

void print_usage(FILE* out) {
  std::fputs("usage: warden COMMAND [OPTIONS]\n\ncommands:\n", out);
  auto commands = warden::cli::registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& c : commands) std::fprintf(out, "  %-14s %s\n", c.name.c_str(), c.summary.c_str());
  std::fputs(
      "\nRun 'warden COMMAND --help' (or 'warden help COMMAND') for a command's options; 'warden --version'\n"
      "prints the version.\n",
      out);
}

int unexpected(const char* arg) {
  std::fprintf(stderr, "warden: unexpected argument '%s' (see warden --help)\n", warden::log::printable(arg).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--version" || name == "version") {
    if (argc > 2) return unexpected(argv[2]);
    std::printf("warden %s\n", WARDEN_VERSION);
    return 0;
  }
  if (name == "-h" || name == "--help" || name == "help") {
    // `warden help COMMAND` is `warden COMMAND --help`.
    if (argc == 3 && name == "help")
      for (const auto& c : warden::cli::registry())
        if (c.name == argv[2]) {
          char help_flag[] = "--help";
          char* args[] = {argv[2], help_flag, nullptr};
          return warden::cli::run_command(c, 2, args);
        }
    if (argc > 2) return unexpected(argv[2]);
    print_usage(stdout);
    return 0;
  }
  for (const auto& c : warden::cli::registry()) {
    if (c.name == name) return warden::cli::run_command(c, argc - 1, argv + 1);
  }
  std::fprintf(stderr, "warden: unknown command '%s' (see warden --help)\n", warden::log::printable(name).c_str());
  return 2;
}
