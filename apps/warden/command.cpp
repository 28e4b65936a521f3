#include "command.h"

#include <cstdio>
#include <exception>

#include "util/error.h"
#include "util/log.h"

namespace warden::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

bool add_command(Command c) {
  registry().push_back(std::move(c));
  return true;
}

int run_command(const Command& c, int argc, char** argv) {
  CLI::App app{c.summary, "warden " + c.name};
  app.set_help_flag("-h,--help", "Print this help and exit");
  std::function<int()> body;
  try {
    body = c.setup(app);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "warden %s: %s (see warden %s --help)\n", c.name.c_str(), e.what(),
                 c.name.c_str());
    return 2;
  }
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "warden %s: %s\n", c.name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warden %s: error: %s\n", c.name.c_str(), e.what());
    return 1;
  }
}

}  // namespace warden::cli
