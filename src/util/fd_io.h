#pragma once
// Writing a whole buffer to a file descriptor (a file, a pipe, a terminal),
// retrying short writes and EINTR.
#include <string_view>

namespace warden {

// False on any other error (errno says which); part may have been written.
bool write_all(int fd, std::string_view data);

}  // namespace warden
