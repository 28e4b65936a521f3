#pragma once
// Noticing that an HTTP client went away while its answer is being generated.
//
// cpp-httplib 0.11 gives a handler neither its connection's socket nor a
// disconnect signal (a plain, non-streamed response is written only after
// the handler returns). The connection's socket is still open in this
// process while the handler runs, though, and its addresses are in the
// request: find_connection_socket() finds it by that 4-tuple, and
// peer_has_left() polls it without consuming anything.
#include <string>

namespace warden::server {

// The accepted socket whose local end is local_addr:local_port and whose peer
// is remote_addr:remote_port (addresses as numeric strings, the way the HTTP
// library reports them); -1 when there is none. The descriptor stays owned by
// the HTTP library: it is valid only while that connection's request is being
// handled, and must never be closed or read by the caller.
int find_connection_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port);

// True when the peer closed its end (orderly or by reset) or the socket is in
// error. Never blocks, never consumes data: bytes of a pipelined next request
// mean the client is still there. A client that half-closes (shutdown of its
// sending side) while waiting counts as gone, as in upstream cpp-httplib's
// is_connection_closed().
bool peer_has_left(int fd);

}  // namespace warden::server
