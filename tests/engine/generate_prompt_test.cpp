// `warden generate`'s prompt as llama.cpp takes it: -p TEXT or -f FILE (less
// one final newline), escapes (\n, \t, \xHH, ...) read unless --no-escape;
// on the real trained tiny model, greedy, so equal prompts give equal text.
#include <gtest/gtest.h>

#include <fstream>

#include "common/test_env.h"

namespace warden::test {
namespace {

RunResult generate(const std::vector<std::string>& prompt_args) {
  std::vector<std::string> args{"generate", "-m", shared_path("models/stories260K.gguf"), "-n", "30", "--temp", "0",
                                "-t", "1", "-q"};
  args.insert(args.end(), prompt_args.begin(), prompt_args.end());
  return run_warden(args);
}

std::string written(const std::string& text) {
  const std::string path = make_temp_dir("prompt") + "/prompt.txt";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(GeneratePrompt, AFileAndEscapesAreReadAsLlamaCppReadsThem) {
  const RunResult escaped = generate({"-p", "Once upon a time,\\nthere was"});
  ASSERT_EQ(escaped.exit_code, 0) << escaped.err;
  const RunResult from_file = generate({"-f", written("Once upon a time,\nthere was\n")});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(escaped.out, from_file.out);
  const RunResult as_written = generate({"-p", "Once upon a time,\\nthere was", "--no-escape"});
  ASSERT_EQ(as_written.exit_code, 0) << as_written.err;
  EXPECT_NE(as_written.out, escaped.out);
  const RunResult hex = generate({"-p", "\\x4fnce upon a time"});
  const RunResult plain = generate({"-p", "Once upon a time"});
  ASSERT_EQ(hex.exit_code, 0) << hex.err;
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(plain.out.empty());
  EXPECT_EQ(hex.out, plain.out);
  // A backslash that starts no escape stays, as does one at the end.
  for (const char* odd : {"a \\q b", "ends with \\", "\\x4", "\\x"}) {
    const RunResult read = generate({"-p", odd});
    EXPECT_EQ(read.exit_code, 0) << odd << ": " << read.err;
    EXPECT_EQ(read.out, generate({"-p", odd, "--no-escape"}).out) << odd;
  }
  // An empty file is an empty prompt (this model adds a BOS token).
  const RunResult empty = generate({"-f", written("")});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_FALSE(empty.out.empty());
}

TEST(GeneratePrompt, OnePromptMustBeGiven) {
  const RunResult both = generate({"-p", "x", "-f", written("y")});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  const RunResult none = generate({});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("give the prompt: -p TEXT or -f FILE"), std::string::npos) << none.err;
  const std::string missing = make_temp_dir("prompt") + "/none.txt";
  const RunResult unreadable = generate({"-f", missing});
  EXPECT_EQ(unreadable.exit_code, 1) << unreadable.err;
  EXPECT_NE(unreadable.err.find("-f " + missing + ": cannot read the file"), std::string::npos) << unreadable.err;
}

}  // namespace
}  // namespace warden::test
