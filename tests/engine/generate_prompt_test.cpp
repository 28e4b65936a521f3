// `warden generate`'s prompt as llama.cpp takes it: -p TEXT or -f FILE (less
// one final newline), escapes (\n, \t, \xHH, ...) read unless --no-escape;
// on the real trained tiny model, greedy, so equal prompts give equal text.
#include <gtest/gtest.h>

#include <fstream>
#include <tuple>
#include <vector>

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

// A bad sampling value is a usage error naming its flag, before the model
// is read; a flag given twice takes its last value, as llama.cpp's do.
TEST(GeneratePrompt, BadSamplingFlagsAreUsageErrorsAndTheLastOfTwoWins) {
  for (const auto& [flag, value, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--top-p", "-1", "--top-p: must be a finite number >= 0"},
           {"--min-p", "nan", "--min-p: must be a finite number <= 1"},
           {"--temp", "inf", "--temp: must be a finite number"},
           {"--repeat-penalty", "0", "--repeat-penalty: must be a finite number > 0"},
           {"--repeat-last-n", "-5", "--repeat-last-n: Value -5 not in range -1 to"},
           {"-c", "-1", "--ctx-size: Value -1 not in range 0 to 9223372036854775807"}}) {
    const RunResult r = generate({"-p", "x", flag, value});
    EXPECT_EQ(r.exit_code, 2) << flag << " " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
  EXPECT_EQ(generate({"-p", "Once", "-n", "2", "-n", "30"}).out, generate({"-p", "Once"}).out);
  EXPECT_EQ(generate({"-p", "Once", "-n", "2", "-n", "30"}).exit_code, 0);
}

// The top level: --version, `help COMMAND`, and a stray argument.
TEST(GeneratePrompt, TheTopLevelTakesVersionAndHelpForACommand) {
  const RunResult version = run_warden({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("warden ", 0), 0u) << version.out;
  EXPECT_EQ(run_warden({"help", "generate"}).out, run_warden({"generate", "--help"}).out);
  const RunResult stray = run_warden({"--help", "extra"});
  EXPECT_EQ(stray.exit_code, 2);
  EXPECT_NE(stray.err.find("unexpected argument 'extra'"), std::string::npos) << stray.err;
}

}  // namespace
}  // namespace warden::test
