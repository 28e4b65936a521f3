#pragma once
// One exception type for user-facing errors: its message is printed as the
// single line the user sees ("warden: error: <what>"), so it must name the
// file/argument and the problem.
#include <stdexcept>
#include <string>

namespace warden {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown for bad command-line usage (exit code 2 rather than 1).
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace warden
