// The make-model and quantize subcommands through the real binary: exit
// codes, one-line errors, results on stdout.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "common/test_env.h"
#include "gguf/gguf.h"

namespace warden {
namespace {

using test::run_warden;

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_one_line_error(const test::RunResult& r, int code, const std::string& mentions) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, MakeModelAndQuantizeWork) {
  const std::string dir = test::make_temp_dir("cli");
  auto made = run_warden({"make-model", "--preset", "tiny-qwen2", "--type", "f32", "--seed", "5", dir + "/m.gguf"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("tensors"), std::string::npos);
  auto q = run_warden({"quantize", dir + "/m.gguf", dir + "/m-q8.gguf", "Q8_0"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  gguf::File f(dir + "/m-q8.gguf");
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, gguf::TensorType::Q8_0);
  EXPECT_EQ(f.get_uint("warden.modelgen.seed", 0), 5u);
  EXPECT_EQ(q.out.rfind(dir + "/m-q8.gguf: ", 0), 0u) << q.out;  // said once the file is in place

  // The file it writes first has a name of its own: an input named like
  // "OUT.tmp" is read, not overwritten, and only OUT is added beside it.
  std::filesystem::copy_file(dir + "/m.gguf", dir + "/n.gguf.tmp");
  q = run_warden({"quantize", dir + "/n.gguf.tmp", dir + "/n.gguf", "q8_0"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(std::filesystem::file_size(dir + "/n.gguf.tmp"), std::filesystem::file_size(dir + "/m.gguf"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 4);
}

TEST(Cli, MakeModelBadArgumentsExitTwo) {
  const std::string dir = test::make_temp_dir("cli");
  expect_one_line_error(run_warden({"make-model", dir + "/x.gguf"}), 2, "--preset");
  expect_one_line_error(run_warden({"make-model", "--preset", "gpt5", dir + "/x.gguf"}), 2, "gpt5");
  expect_one_line_error(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q7", dir + "/x.gguf"}), 2, "q7");
  expect_one_line_error(run_warden({"make-model", "--preset", "tiny-qwen3", "--layers", "0", dir + "/x.gguf"}), 2,
                        "--layers");
  expect_one_line_error(run_warden({"make-model", "--preset", "tiny-qwen3"}), 2, "out");
  expect_one_line_error(run_warden({"make-model", "--preset", "tiny-qwen3", "--seed", "-1", dir + "/x.gguf"}), 2,
                        "--seed: must be a whole number");
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
  // The error names the file asked for, not the temporary beside it.
  const test::RunResult r = run_warden({"make-model", "--preset", "tiny-llama", dir + "/no/such/x.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(dir + "/no/such/x.gguf: cannot create"), std::string::npos) << r.err;
}

TEST(Cli, QuantizeBadArgumentsExitTwoAndBadFilesExitOne) {
  const std::string dir = test::make_temp_dir("cli");
  expect_one_line_error(run_warden({"quantize", dir + "/in.gguf", dir + "/out.gguf"}), 2, "type");
  expect_one_line_error(run_warden({"quantize", dir + "/in.gguf", dir + "/out.gguf", "q3_K_XL"}), 2, "q3_K_XL");
  expect_one_line_error(run_warden({"quantize", dir + "/missing.gguf", dir + "/out.gguf", "q8_0"}), 1, "missing.gguf");
  test::write_file(dir + "/junk.gguf", "this is not a gguf file at all, just text\n");
  expect_one_line_error(run_warden({"quantize", dir + "/junk.gguf", dir + "/out.gguf", "q8_0"}), 1, "junk.gguf");
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.gguf"));
  // A folder at OUT is found before the conversion, not by its last step.
  expect_one_line_error(run_warden({"quantize", test::shared_path("models/stories260K.gguf"), dir, "q8_0"}), 1,
                        dir + " is a folder");
}

// OUT is written only when it is missing or a regular file: a device or a
// FIFO there would be replaced by the rename, the input itself lost, and a
// file named like the temporary beside OUT (or a link there) is never
// touched. Each is found before the work.
TEST(Cli, WhatIsAtOutIsNeverLostToAWrite) {
  const std::string dir = test::make_temp_dir("cli");
  const std::string model = test::shared_path("models/stories260K.gguf");
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0600), 0);
  for (const std::string& out : {dir + "/fifo", std::string("/dev/null")}) {
    expect_one_line_error(run_warden({"quantize", model, out, "q8_0"}), 1, out + " is not a regular file");
    expect_one_line_error(run_warden({"make-model", "--preset", "tiny-llama", out}), 1, out + " is not a regular file");
  }
  EXPECT_TRUE(std::filesystem::is_fifo(dir + "/fifo"));
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
  expect_one_line_error(run_warden({"make-model", "--preset", "tiny-llama", dir}), 1, dir + " is a folder");
  expect_one_line_error(run_warden({"quantize", model, "", "q8_0"}), 1, "the output file name is empty");

  std::filesystem::copy_file(model, dir + "/in.gguf");
  expect_one_line_error(run_warden({"quantize", dir + "/in.gguf", dir + "/in.gguf", "q8_0"}), 1,
                        dir + "/in.gguf is the input file");
  EXPECT_EQ(std::filesystem::file_size(dir + "/in.gguf"), std::filesystem::file_size(model));

  test::write_file(dir + "/m.gguf.tmp", "precious\n");
  test::write_file(dir + "/target.txt", "also precious\n");
  std::filesystem::create_symlink(dir + "/target.txt", dir + "/n.gguf.tmp");
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-llama", dir + "/m.gguf"}).exit_code, 0);
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-llama", dir + "/n.gguf"}).exit_code, 0);
  EXPECT_EQ(test::read_file(dir + "/m.gguf.tmp"), "precious\n");
  EXPECT_EQ(test::read_file(dir + "/target.txt"), "also precious\n");
  EXPECT_TRUE(std::filesystem::is_regular_file(std::filesystem::symlink_status(dir + "/n.gguf")));
}

// Output that cannot be written fails the command (exit 1, one line): a
// JSON file cut short must not pass for a whole one.
TEST(Cli, OutputThatCannotBeWrittenIsAnError) {
  const std::string model = test::shared_path("models/stories260K.gguf");
  const test::RunResult full =
      test::run({"/bin/sh", "-c", "exec \"$0\" inspect --json \"$1\" > /dev/full", test::warden_binary(), model});
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_EQ(full.err.rfind("warden inspect: error: cannot write to the standard output", 0), 0u) << full.err;
  EXPECT_EQ(count_lines(full.err), 1) << full.err;
  EXPECT_EQ(test::run({"/bin/sh", "-c", "exec \"$0\" inspect --json \"$1\" > /dev/null", test::warden_binary(), model})
                .exit_code,
            0);
}

}  // namespace
}  // namespace warden
