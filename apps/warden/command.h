#pragma once
// Subcommand registry. Each cmd_*.cpp in this folder registers its
// subcommands with WARDEN_COMMAND; main() dispatches on argv[1].
//
// A command body throws warden::Error for user errors (exit 1) and
// warden::UsageError or CLI11 parse errors for bad usage (exit 2).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace warden::cli {

struct Command {
  std::string name;
  std::string summary;
  // Adds options to `app` and returns the body to run after parsing.
  std::function<std::function<int()>(CLI::App& app)> setup;
};

std::vector<Command>& registry();
bool add_command(Command c);

// Parses argv for one subcommand and runs it with warden's error conventions.
int run_command(const Command& c, int argc, char** argv);

}  // namespace warden::cli

#define WARDEN_CONCAT_INNER(a, b) a##b
#define WARDEN_CONCAT(a, b) WARDEN_CONCAT_INNER(a, b)
#define WARDEN_COMMAND(NAME, SUMMARY, SETUP) \
  static const bool WARDEN_CONCAT(warden_cmd_registered_, __LINE__) = \
      ::warden::cli::add_command({NAME, SUMMARY, SETUP})
