#pragma once
// Where the next HTTP/1.1 request in a connection's bytes ends, measured
// before any worker thread takes it (connection.h): the head ends at the
// first line after the request line that is only CRLF (cpp-httplib skips
// lines that end in a bare LF), and the body is Content-Length bytes.
//
// This reading only decides when to hand the request on. cpp-httplib then
// parses it again, from exactly these bytes and no more; where the two
// readings differ the connection is closed (connection.cpp), so a request
// can never be cut in two differently by them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace warden::server {

struct RequestExtent {
  bool head_complete = false;
  size_t head_bytes = 0;          // when head_complete
  size_t bytes = 0;               // when head_complete: head and body together
  bool expects_continue = false;  // "Expect: 100-continue"
  // Whether `have` bytes hold the whole request.
  bool complete(size_t have) const { return head_complete && have >= bytes; }
};

// `bytes` starts where the request does. A body over `max_body`, or one
// whose length is missing, malformed or chunked, counts as no body at all:
// the request is handed on at its head, to be refused there (413, 411, 400).
RequestExtent measure_request(std::string_view bytes, size_t max_body);

// A Content-Length value as warden takes one: decimal digits only, at most
// 18 of them (cpp-httplib itself would read "12abc" as 12).
std::optional<uint64_t> content_length_value(std::string_view value);

// Whether `bytes` hold a whole head, found without parsing: a line that is
// only CRLF follows some line end. `from` says where the bytes before were
// already searched (so that bytes arriving one at a time cost no more than
// once each); returns where to search from next time, or npos when found.
size_t find_head_end(std::string_view bytes, size_t from);

}  // namespace warden::server
