#pragma once
// XDG base directories for warden's config, data, cache and runtime files.
#include <string>

namespace warden::paths {

std::string home();              // $HOME (throws if unset)
std::string config_dir();        // $XDG_CONFIG_HOME/warden or ~/.config/warden
std::string data_dir();          // $XDG_DATA_HOME/warden or ~/.local/share/warden
std::string cache_dir();         // $XDG_CACHE_HOME/warden or ~/.cache/warden
std::string runtime_dir();       // $XDG_RUNTIME_DIR/warden or <cache_dir>/run

}  // namespace warden::paths
