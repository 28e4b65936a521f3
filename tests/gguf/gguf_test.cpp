// GGUF reader/writer: round trips of every value type, every class of bad
// file rejected with one clear error naming the file and the problem, and
// large metadata arrays released after load.
#include <gtest/gtest.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstring>
#include <fstream>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "util/error.h"

namespace warden::gguf {
namespace {

std::vector<uint8_t> bytes_of(const std::string& path) {
  std::string s = test::read_file(path);
  return {s.begin(), s.end()};
}

// A small valid file written by our writer, returned as raw bytes for mutation.
std::string write_sample(const std::string& dir) {
  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.set("u8", Value{ValueType::UINT8, uint64_t(200)});
  w.set("i8", Value{ValueType::INT8, int64_t(-100)});
  w.set("u16", Value{ValueType::UINT16, uint64_t(60000)});
  w.set("i16", Value{ValueType::INT16, int64_t(-30000)});
  w.set("u32", Value::u32(4000000000u));
  w.set("i32", Value::i32(-2000000000));
  w.set("u64", Value::u64(1ull << 60));
  w.set("i64", Value{ValueType::INT64, int64_t(-(1ll << 60))});
  w.set("f32", Value::f32(1.5f));
  w.set("f64", Value{ValueType::FLOAT64, 2.25});
  w.set("b", Value::boolean(true));
  w.set("strs", Value::strings({"a", "", "ü▁"}));
  w.set("floats", Value::f32s({1.0f, -2.0f}));
  w.set("ints", Value::i32s({7, -8, 9}));
  std::vector<uint8_t> a(4 * 8 * 2), b(34 * 2);
  for (size_t i = 0; i < a.size(); i++) a[i] = uint8_t(i);
  for (size_t i = 0; i < b.size(); i++) b[i] = uint8_t(255 - i);
  w.add_tensor("tensor_a", {8, 2}, TensorType::F32, a);
  w.add_tensor("tensor_b", {64}, TensorType::Q8_0, b);
  std::string path = dir + "/sample.gguf";
  w.write(path);
  return path;
}

std::string expect_error(const std::vector<uint8_t>& data, const std::string& name = "bad.gguf") {
  try {
    File f(data.data(), data.size(), name);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(name + ": ", 0), 0u) << msg;  // names the file first
    return msg;
  }
  ADD_FAILURE() << "file was accepted";
  return "";
}

TEST(Gguf, RoundTripsEveryValueType) {
  std::string path = write_sample(test::make_temp_dir());
  File f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get("u8").as_uint(), 200u);
  EXPECT_EQ(f.get("i8").as_int(), -100);
  EXPECT_EQ(f.get("u16").as_uint(), 60000u);
  EXPECT_EQ(f.get("i16").as_int(), -30000);
  EXPECT_EQ(f.get("u32").as_uint(), 4000000000u);
  EXPECT_EQ(f.get("i32").as_int(), -2000000000);
  EXPECT_EQ(f.get("u64").as_uint(), 1ull << 60);
  EXPECT_EQ(f.get("i64").as_int(), -(1ll << 60));
  EXPECT_FLOAT_EQ(float(f.get("f32").as_float()), 1.5f);
  EXPECT_DOUBLE_EQ(f.get("f64").as_float(), 2.25);
  EXPECT_TRUE(f.get("b").as_bool());
  EXPECT_EQ(f.get("strs").as_string_array(), (std::vector<std::string>{"a", "", "ü▁"}));
  EXPECT_EQ(f.get("floats").as_float_array(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f.get("ints").as_int_array(), (std::vector<int64_t>{7, -8, 9}));
  EXPECT_THROW(f.get("strs").as_string(), Error);
  EXPECT_THROW(f.get_string("u8"), Error);
  EXPECT_THROW(f.get("missing"), Error);

  ASSERT_EQ(f.tensors().size(), 2u);
  TensorView a = f.tensor("tensor_a");
  EXPECT_EQ(a.info->dims, (std::vector<int64_t>{8, 2}));
  EXPECT_EQ(a.info->rows(), 2);
  EXPECT_EQ(a.data[5], 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % f.alignment(), 0u);
  TensorView b = f.tensor("tensor_b");
  EXPECT_EQ(b.info->type, TensorType::Q8_0);
  EXPECT_EQ(b.info->size, 68u);
  EXPECT_EQ(b.data[0], 255);
  EXPECT_THROW(f.tensor("tensor_c"), Error);
}

TEST(Gguf, HonoursCustomAlignment) {
  Writer w;
  w.set_alignment(64);
  w.add_tensor("x", {4}, TensorType::F32, std::vector<uint8_t>(16, 1));
  w.add_tensor("y", {4}, TensorType::F32, std::vector<uint8_t>(16, 2));
  std::string path = test::make_temp_dir() + "/al.gguf";
  w.write(path);
  File f(path);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.find_tensor("y")->offset, 64u);
  EXPECT_EQ(f.tensor("y").data[0], 2);
}

// File::read gives a tensor's bytes as its view has them, from a mapped file
// (read through the descriptor) and from a buffer alike, and refuses ranges
// that leave the file.
TEST(Gguf, ReadCopiesTensorBytesAndRefusesRangesOutsideTheFile) {
  const std::string path = write_sample(test::make_temp_dir());
  const std::vector<uint8_t> raw = bytes_of(path);
  File mapped(path);
  File buffer(raw.data(), raw.size(), "buffer.gguf");
  for (const File* f : {&mapped, &buffer}) {
    const TensorView b = f->tensor("tensor_b");
    std::vector<uint8_t> out(b.info->size - 3);
    f->read(b.data + 3, out.data(), out.size());
    EXPECT_EQ(0, std::memcmp(out.data(), b.data + 3, out.size())) << f->path();
    const uint8_t* end = b.data - (b.info->offset + f->data_offset()) + f->file_size();
    uint8_t byte = 0;
    f->read(end - 1, &byte, 1);
    EXPECT_EQ(byte, end[-1]) << f->path();
    for (const uint8_t* at : {end, end - 1, b.data - (b.info->offset + f->data_offset()) - 1}) {
      try {
        f->read(at, out.data(), 2);
        ADD_FAILURE() << "read outside the file accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(f->path() + ": a read outside the file"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Gguf, ReadsTheSharedModelAndVocabs) {
  File m(test::shared_path("models/stories260K.gguf"));
  EXPECT_EQ(m.get_string("general.architecture"), "llama");
  EXPECT_NE(m.find_tensor("token_embd.weight"), nullptr);
  File v(test::shared_path("vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_EQ(v.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_GT(v.get("tokenizer.ggml.tokens").as_array().items.size(), 50000u);
}

TEST(Gguf, RejectsWrongMagicAndVersions) {
  auto data = bytes_of(write_sample(test::make_temp_dir()));
  auto bad = data;
  bad[0] = 'X';
  EXPECT_NE(expect_error(bad).find("bad magic"), std::string::npos);
  bad = data;
  bad[4] = 1;
  EXPECT_NE(expect_error(bad).find("version 1"), std::string::npos);
  bad = data;
  bad[4] = 9;
  EXPECT_NE(expect_error(bad).find("unsupported GGUF version 9"), std::string::npos);
  EXPECT_NE(expect_error({'G', 'G'}).find("too short"), std::string::npos);
}

TEST(Gguf, RejectsEveryTruncation) {
  auto data = bytes_of(write_sample(test::make_temp_dir()));
  // Every proper prefix must be rejected cleanly (header, metadata, tensor
  // infos, data), never crash or read past the end.
  // Padding after the last tensor is optional; everything before it is not.
  File whole(data.data(), data.size(), "whole");
  const TensorInfo* last = whole.find_tensor("tensor_b");
  const size_t needed = whole.data_offset() + last->offset + last->size;
  for (size_t n = needed; n <= data.size(); n++) EXPECT_NO_THROW(File(data.data(), n, "ok"));
  for (size_t n = 0; n < needed; n++) {
    std::vector<uint8_t> prefix(data.begin(), data.begin() + long(n));
    std::string msg = expect_error(prefix);
    EXPECT_FALSE(msg.empty()) << "prefix of " << n << " bytes";
  }
}

// Locates the byte offset just after a string occurring in the file.
size_t find_after(const std::vector<uint8_t>& d, const std::string& s) {
  auto it = std::search(d.begin(), d.end(), s.begin(), s.end());
  EXPECT_NE(it, d.end()) << s;
  return size_t(it - d.begin()) + s.size();
}

template <typename T>
void poke(std::vector<uint8_t>& d, size_t at, T v) {
  std::memcpy(d.data() + at, &v, sizeof v);
}

TEST(Gguf, RejectsAbsurdCountsAndLengths) {
  auto data = bytes_of(write_sample(test::make_temp_dir()));
  auto bad = data;
  poke<uint64_t>(bad, 8, 1ull << 40);  // tensor count
  EXPECT_NE(expect_error(bad).find("absurd tensor count"), std::string::npos);
  bad = data;
  poke<uint64_t>(bad, 16, 1ull << 40);  // metadata count
  EXPECT_NE(expect_error(bad).find("absurd metadata count"), std::string::npos);
  bad = data;
  poke<uint64_t>(bad, 24, 1ull << 62);  // first key's length
  EXPECT_NE(expect_error(bad).find("exceeds the file"), std::string::npos);
  bad = data;
  // "strs" array: key, then type (u32 = 9), element type (u32), count (u64).
  size_t count_at = find_after(bad, "strs") + 8;
  poke<uint64_t>(bad, count_at, 1ull << 50);
  EXPECT_NE(expect_error(bad).find("more than the file holds"), std::string::npos);
}

TEST(Gguf, RejectsUnknownTypes) {
  auto data = bytes_of(write_sample(test::make_temp_dir()));
  auto bad = data;
  poke<uint32_t>(bad, find_after(bad, "u8"), 99);  // value type of key "u8"
  EXPECT_NE(expect_error(bad).find("unknown value type 99"), std::string::npos);
  bad = data;
  // Tensor "b": name, n_dims (u32), 1 dim (u64), type (u32).
  size_t b_info = find_after(bad, std::string("tensor_b"));
  poke<uint32_t>(bad, b_info + 4 + 8, 77);
  EXPECT_NE(expect_error(bad).find("unknown type id 77"), std::string::npos);
}

TEST(Gguf, RejectsBadOffsetsOverlapAndMisalignment) {
  auto data = bytes_of(write_sample(test::make_temp_dir()));
  size_t b_info = find_after(data, std::string("tensor_b"));
  size_t b_offset_at = b_info + 4 + 8 + 4;
  auto bad = data;
  poke<uint64_t>(bad, b_offset_at, 1ull << 40);
  EXPECT_NE(expect_error(bad).find("extends past the end"), std::string::npos);
  bad = data;
  poke<uint64_t>(bad, b_offset_at, 0);  // same place as tensor "a"
  EXPECT_NE(expect_error(bad).find("overlap"), std::string::npos);
  bad = data;
  poke<uint64_t>(bad, b_offset_at, 65);
  EXPECT_NE(expect_error(bad).find("not aligned"), std::string::npos);
  bad = data;
  // A row length that is not a multiple of the block size.
  bad = data;
  poke<uint64_t>(bad, b_info + 4, 33);
  EXPECT_NE(expect_error(bad).find("block size"), std::string::npos);
  // Zero or too many dimensions.
  bad = data;
  poke<uint32_t>(bad, b_info, 0);
  EXPECT_NE(expect_error(bad).find("dimensions"), std::string::npos);
  bad = data;
  poke<uint32_t>(bad, b_info, 9);
  EXPECT_NE(expect_error(bad).find("dimensions"), std::string::npos);
}

TEST(Gguf, RejectsBadAlignmentValue) {
  Writer w;
  w.set("general.alignment", Value::u32(48));
  std::string path = test::make_temp_dir() + "/a.gguf";
  w.write(path);
  EXPECT_THROW(File{path}, Error);
}

TEST(Gguf, MissingFileNamesThePath) {
  try {
    File f("/nonexistent/x.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.gguf"), std::string::npos);
  }
}

TEST(Gguf, WriterLeavesNothingOnFailure) {
  std::string dir = test::make_temp_dir();
  Writer w;
  EXPECT_THROW(w.add_tensor("t", {4}, TensorType::F32, std::vector<uint8_t>(3)), Error);
  EXPECT_THROW(w.write(dir + "/no/such/dir/x.gguf"), Error);
  EXPECT_FALSE(std::ifstream(dir + "/no/such/dir/x.gguf.tmp").good());
}

// The error a call throws, or "" (with a test failure) if it does not throw.
template <typename F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

#ifdef __GLIBC__
size_t heap_bytes_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}
#endif

// A file with two large arrays (a vocabulary and its scores) and the small
// values a loaded model still reads.
std::string write_vocabulary_file(const std::string& dir) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  for (int i = 0; i < 3000; i++) {
    tokens.push_back("token number " + std::to_string(i) + " with a text longer than the short-string buffer");
    scores.push_back(float(-i));
  }
  Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.set("tokenizer.ggml.tokens", Value::strings(tokens));
  w.set("tokenizer.ggml.scores", Value::f32s(scores));
  w.set("rope.dimension_sections", Value::i32s({16, 24, 24, 0}));
  w.set("tokenizer.chat_template", Value::string("{{ messages }}"));
  w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
  std::string path = dir + "/vocab.gguf";
  w.write(path);
  return path;
}

TEST(Gguf, ReleasedLargeArraysStayListedButCannotBeRead) {
  const std::string path = write_vocabulary_file(test::make_temp_dir());
  File f(path);
  ASSERT_EQ(f.get("tokenizer.ggml.tokens").as_string_array().size(), 3000u);
#ifdef __GLIBC__
  const size_t heap_before = heap_bytes_in_use();
#endif

  EXPECT_EQ(f.release_large_arrays(1000), 2u);

#ifdef __GLIBC__
  // The items are gone from the heap: 6000 values, 3000 of them with strings
  // of 60-odd bytes on the heap.
  if (!test::kSanitizedBuild) {
    EXPECT_GE(heap_before - heap_bytes_in_use(), 6000 * sizeof(Value) + 3000 * 60);
  }
#endif
  // Scalars, strings and short arrays are untouched.
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), "{{ messages }}");
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id", 0), 1u);
  EXPECT_EQ(f.get("rope.dimension_sections").as_int_array(), (std::vector<int64_t>{16, 24, 24, 0}));

  // The released keys are still listed, in file order, as arrays...
  ASSERT_EQ(f.metadata().size(), 6u);
  EXPECT_EQ(f.metadata()[1].first, "tokenizer.ggml.tokens");
  EXPECT_TRUE(f.has("tokenizer.ggml.tokens"));
  const Value* tokens = f.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->type, ValueType::ARRAY);
  EXPECT_TRUE(tokens->released());
  EXPECT_FALSE(f.find("rope.dimension_sections")->released());

  // ...but every way of reading their items is a clear error.
  std::string msg = error_of([&] { f.get("tokenizer.ggml.tokens"); });
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("tokenizer.ggml.tokens (3000 string elements) was released"), std::string::npos) << msg;
  msg = error_of([&] { (void)tokens->as_string_array(); });
  EXPECT_NE(msg.find("array of 3000 string elements was released"), std::string::npos) << msg;
  msg = error_of([&] { (void)f.find("tokenizer.ggml.scores")->as_float_array(); });
  EXPECT_NE(msg.find("array of 3000 float32 elements was released"), std::string::npos) << msg;
  EXPECT_THROW((void)f.find("tokenizer.ggml.scores")->as_array(), Error);
  EXPECT_THROW(f.get_string("tokenizer.ggml.tokens"), Error);

  // Releasing again finds nothing more, and a released value cannot be
  // written out as if it were an empty array.
  EXPECT_EQ(f.release_large_arrays(1000), 0u);
  const std::string dir = test::make_temp_dir();
  Writer w;
  w.set("tokenizer.ggml.tokens", *tokens);
  EXPECT_THROW(w.write(dir + "/copy.gguf"), Error);
  EXPECT_FALSE(std::ifstream(dir + "/copy.gguf").good());
}

TEST(Gguf, ReleaseKeepsArraysBelowTheThreshold) {
  File f(write_vocabulary_file(test::make_temp_dir()));
  EXPECT_EQ(f.release_large_arrays(3001), 0u);
  EXPECT_EQ(f.get("tokenizer.ggml.tokens").as_string_array().size(), 3000u);
  EXPECT_EQ(f.release_large_arrays(3000), 2u);  // "at least min_items"
  EXPECT_EQ(File(write_vocabulary_file(test::make_temp_dir())).release_large_arrays(), 2u);  // default: 1024
}

}  // namespace
}  // namespace warden::gguf
