#pragma once
// Logging goes to stderr only; stdout is reserved for results. Messages may
// carry text from outside (a request's path, a file name), so what reaches
// the terminal has its control characters shown, not obeyed.
#include <string>
#include <string_view>

namespace warden::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, quiet = 4 };

void set_level(Level level);
Level level();
void write(Level level, std::string_view message);
// For a line already made displayable (broker::neutralize, on one line):
// printed as it is, since printable() would double its escapes' backslashes.
void write_shown(Level level, std::string_view shown);

// `text` as display::render shows it (control characters, backslashes,
// invalid UTF-8 and invisible code points as visible escapes; a backslash
// shows doubled), each line after the first indented by four spaces: no
// escape sequence, hidden character or line that passes for warden's own
// reaches the terminal.
std::string printable(std::string_view text);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace warden::log
