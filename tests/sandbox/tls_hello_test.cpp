// The ClientHello scanner the egress proxy checks CONNECT tunnels with.
#include "sandbox/tls_hello.h"

#include <gtest/gtest.h>

#include "common/test_env.h"
#include "sandbox/tls_hello_builder.h"

namespace warden::sandbox {
namespace {

using Status = ClientHelloScan::Status;
using namespace test;

TEST(TlsHello, ReadsTheServerName) {
  const std::string hello = client_hello("Allowed.Test.");
  ClientHelloScan s = scan_client_hello(hello);
  ASSERT_EQ(s.status, Status::complete) << s.error;
  EXPECT_EQ(s.server_name, "allowed.test");
  EXPECT_EQ(s.length, hello.size());
}

TEST(TlsHello, ReadsRealClientHellos) {
  // Captured from curl 7.88 (--resolve allowed.test:PORT:127.0.0.1) and from
  // python3's ssl module (server_hostname='www.Example.org'); also fuzz seeds.
  const std::pair<const char*, const char*> hellos[] = {{"curl_hello.bin", "allowed.test"},
                                                        {"python_hello.bin", "www.example.org"}};
  for (const auto& [file, name] : hellos) {
    const std::string hello = warden::test::read_file(warden::test::source_path("fuzz/corpus/proxy_tls/") + file);
    ClientHelloScan s = scan_client_hello(hello);
    ASSERT_EQ(s.status, Status::complete) << file << ": " << s.error;
    EXPECT_EQ(s.server_name, name) << file;
    EXPECT_EQ(s.length, hello.size()) << file;
  }
}

TEST(TlsHello, WaitsForEveryByteAcrossRecords) {
  // Split into 30-byte records, and fed a byte at a time.
  const std::string hello = client_hello("allowed.test", 30);
  ASSERT_GT(hello.size(), 90u);
  for (size_t n = 0; n < hello.size(); n++)
    ASSERT_EQ(scan_client_hello(hello.substr(0, n)).status, Status::need_more) << n;
  ClientHelloScan s = scan_client_hello(hello + "\x17\x03\x03 early data");
  ASSERT_EQ(s.status, Status::complete) << s.error;
  EXPECT_EQ(s.server_name, "allowed.test");
  EXPECT_EQ(s.length, hello.size());  // what follows the hello is not part of it
}

TEST(TlsHello, HelloWithoutServerName) {
  ClientHelloScan s = scan_client_hello(client_hello(std::nullopt));
  ASSERT_EQ(s.status, Status::complete) << s.error;
  EXPECT_FALSE(s.server_name.has_value());
}

TEST(TlsHello, RefusesWhatIsNotAWellFormedHello) {
  const std::string good = client_hello_message(server_name_extension({"a.test"}));
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n",                     // plain HTTP in the tunnel
      "\x17\x03\x03" + be(5, 2) + "hello",                             // application data first
      std::string("\x16\x02\x00", 3) + be(uint32_t(good.size()), 2) + good,  // not a TLS 1.x version
      "\x16\x03\x01" + be(0, 2),                                       // empty record
      in_records(std::string(1, 2) + good.substr(1)),                  // a ServerHello
      in_records(good + good),                                         // two messages in the records
      in_records(client_hello_message(server_name_extension({"a.test", "b.test"}))),
      in_records(client_hello_message(server_name_extension({"a.test"}) + server_name_extension({"b.test"}))),
      in_records(client_hello_message(server_name_extension({"bad_name!"}))),
      in_records(client_hello_message(server_name_extension({std::string("a.test\0", 7)}))),
      in_records(client_hello_message(server_name_extension({""}))),
      in_records(client_hello_message(be(0, 2) + with_length("", 2))),  // server_name without a list
      // Encrypted Client Hello: the checked name would be only the outer one.
      in_records(client_hello_message(server_name_extension({"a.test"}) + be(0xfe0d, 2) + with_length("ech", 2))),
      in_records('\x01' + with_length(good.substr(4, 10), 3)),  // a body cut short
  };
  for (const auto& c : cases) {
    ClientHelloScan s = scan_client_hello(c);
    EXPECT_EQ(s.status, Status::invalid) << testing::PrintToString(c);
    EXPECT_NE(s.error.find("TLS ClientHello"), std::string::npos) << s.error;
  }
}

TEST(TlsHello, RefusesAHelloLargerThanTheLimit) {
  const std::string padding = be(21, 2) + with_length(std::string(kMaxClientHello, '\0'), 2);
  const std::string big = client_hello_message(padding);
  // Refused from its header alone: the proxy does not buffer it first.
  ClientHelloScan s = scan_client_hello(in_records(big).substr(0, 16));
  EXPECT_EQ(s.status, Status::invalid);
  EXPECT_NE(s.error.find("larger than"), std::string::npos) << s.error;
}

}  // namespace
}  // namespace warden::sandbox
