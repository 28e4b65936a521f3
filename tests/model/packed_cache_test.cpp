// The packed-weights cache (src/model/packed_cache.h): a second load maps the
// copy the first one wrote and computes exactly the same logits; a changed
// model file, a damaged copy or a crash mid-write never hands out stale or
// partial weights; copies are evicted least recently used first; a cache
// folder that cannot be used only costs the cache. Every test has its own
// XDG_CACHE_HOME.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/test_env.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/packed_cache.h"
#include "tensor/quant.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace warden {
namespace {

namespace fs = std::filesystem;

class PackedCache : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tensor::kernel_set_name() == std::string("scalar")) GTEST_SKIP() << "the scalar kernels pack nothing";
    cache_home_ = test::make_temp_dir("cache");
    ::setenv("XDG_CACHE_HOME", cache_home_.c_str(), 1);
    ::unsetenv("WARDEN_PACKED_CACHE_MIB");
    model_ = test::make_temp_dir("model") + "/tiny.gguf";
    auto r = test::run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q4_K_M", "--seed", "3", model_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override { ::unsetenv("WARDEN_PACKED_CACHE_MIB"); }

  std::string root() const { return cache_home_ + "/warden/packed"; }
  // Every copy's file, in every model's folder.
  std::vector<fs::path> copies() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(root(), ec))
      if (e.path().extension() == ".bin") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  // The settings of a model that is no file, for tests of the copies alone.
  static model::PackedCacheSettings settings_of(const std::string& model_identity = "a model") {
    return model::PackedCacheSettings::from_environment().for_model(model_identity);
  }

  std::string cache_home_, model_;
};

// Logits of six decode steps (each its own forward pass over the packed weights).
std::vector<float> decode_logits(const model::Model& m) {
  ThreadPool pool(2);
  model::Forward fwd(m, pool);
  model::KvCache cache(m.config(), 16, 1);
  std::vector<float> all;
  for (int64_t pos = 0; pos < 6; pos++) {
    const std::vector<float> l = fwd.run({{int32_t((pos * 131 + 7) % m.config().n_vocab), pos, 0, true}}, cache);
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

TEST_F(PackedCache, TheSecondLoadMapsTheFirstLoadsCopyAndComputesTheSame) {
  auto first = model::Model::load(model_);
  EXPECT_FALSE(first->packed_from_cache());
  ASSERT_GT(first->packed_bytes(), 0u);
  ASSERT_EQ(copies().size(), 1u);
  EXPECT_EQ(fs::file_size(copies()[0]), model::PackedWeights::kHeaderBytes + first->packed_bytes());
  // Read-only by its mode: another engine of the same user cannot open it
  // for writing or cut it short under the engines that map it.
  EXPECT_EQ(fs::status(copies()[0]).permissions() & fs::perms::all, fs::perms::owner_read);
  // In the folder of this model file, the one its engine may write.
  EXPECT_EQ(copies()[0].parent_path(), fs::path(settings_of(identity_of_file(model_)).dir));

  auto second = model::Model::load(model_);
  EXPECT_TRUE(second->packed_from_cache());
  EXPECT_EQ(second->packed_bytes(), first->packed_bytes());
  EXPECT_EQ(copies().size(), 1u);
  const std::vector<float> expected = decode_logits(*first), cached = decode_logits(*second);
  ASSERT_EQ(cached.size(), expected.size());
  for (size_t i = 0; i < expected.size(); i++) ASSERT_EQ(cached[i], expected[i]) << "logit " << i;

  // Turned off: packed in memory, and the folder is left as it was.
  ::setenv("WARDEN_PACKED_CACHE_MIB", "0", 1);
  auto uncached = model::Model::load(model_);
  EXPECT_FALSE(uncached->packed_from_cache());
  EXPECT_EQ(uncached->packed_bytes(), first->packed_bytes());
  EXPECT_EQ(copies().size(), 1u);
}

TEST_F(PackedCache, AChangedModelFileIsPackedAfresh) {
  model::Model::load(model_);
  ASSERT_EQ(copies().size(), 1u);
  // Same bytes, new modification time: the file may have been rewritten.
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, model_.c_str(), times, 0), 0);
  auto again = model::Model::load(model_);
  EXPECT_FALSE(again->packed_from_cache());
  EXPECT_EQ(copies().size(), 2u);
  EXPECT_TRUE(model::Model::load(model_)->packed_from_cache());
}

TEST_F(PackedCache, ADamagedOrForeignCopyIsReplacedNotUsed) {
  const size_t bytes = model::Model::load(model_)->packed_bytes();
  ASSERT_EQ(copies().size(), 1u);
  const fs::path copy = copies()[0];
  const std::vector<float> expected = decode_logits(*model::Model::load(model_));

  // Cut short (as by a full disk under an older writer), then a header
  // from another key: each time the copy is ignored and written anew.
  fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);  // (the test's own doing)
  fs::resize_file(copy, model::PackedWeights::kHeaderBytes + bytes / 2);
  auto after_cut = model::Model::load(model_);
  EXPECT_FALSE(after_cut->packed_from_cache());
  EXPECT_EQ(fs::file_size(copy), model::PackedWeights::kHeaderBytes + bytes);
  {
    fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);  // inside the key
    f.put('#');
  }
  EXPECT_FALSE(model::Model::load(model_)->packed_from_cache());
  auto restored = model::Model::load(model_);
  EXPECT_TRUE(restored->packed_from_cache());
  const std::vector<float> logits = decode_logits(*restored);
  for (size_t i = 0; i < expected.size(); i++) ASSERT_EQ(logits[i], expected[i]) << "logit " << i;
}

TEST_F(PackedCache, ACopyIsNamedOnlyOnceWhole) {
  const model::PackedCacheSettings settings = settings_of();
  {
    auto w = model::PackedWeights::create(settings, "0123abcd", 1 << 20);
    ASSERT_NE(w->data(), nullptr);
    std::memset(w->data(), 0x5A, w->size());
    // Destroyed without finish(), as by a crash while packing: nothing named.
  }
  EXPECT_TRUE(copies().empty());
  EXPECT_EQ(model::PackedWeights::open_cached(settings, "0123abcd", 1 << 20), nullptr);
  {
    auto w = model::PackedWeights::create(settings, "0123abcd", 1 << 20);
    std::memset(w->data(), 0x5A, w->size());
    w->finish();
  }
  auto found = model::PackedWeights::open_cached(settings, "0123abcd", 1 << 20);
  ASSERT_NE(found, nullptr);
  EXPECT_TRUE(found->from_cache());
  EXPECT_EQ(found->data()[0], 0x5A);
  EXPECT_EQ(found->data()[(1 << 20) - 1], 0x5A);
  // The same name for another size is not this copy.
  EXPECT_EQ(model::PackedWeights::open_cached(settings, "0123abcd", 2 << 20), nullptr);
}

// Once packed, a new copy is read through a read-only descriptor: the
// engine (confined, and with no file changes allowed once loaded) could not
// make its mapping writable again to change the copy on disk.
TEST_F(PackedCache, AFinishedCopyCannotBeMadeWritableAgain) {
  auto w = model::PackedWeights::create(settings_of(), "sealed", 1 << 20);
  std::memset(w->data(), 0x11, w->size());
  w->finish();
  EXPECT_NE(::mprotect(w->data(), 4096, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(w->data()[0], 0x11);
  EXPECT_EQ(w->data()[(1 << 20) - 1], 0x11);
}

// The page cache's copy of `path` from byte `from` on in small folios: those
// pages dropped, then every other 4 KiB page read with readahead off.
void read_back_in_small_folios(const fs::path& path, off_t from = 0) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::posix_fadvise(fd, from, 0, POSIX_FADV_DONTNEED), 0);
  ASSERT_EQ(::posix_fadvise(fd, from, 0, POSIX_FADV_RANDOM), 0);
  char page[4096];
  for (off_t at = from; at < off_t(fs::file_size(path)); at += 2 * sizeof page)
    ASSERT_EQ(::pread(fd, page, sizeof page, at), ssize_t(sizeof page));
  ::close(fd);
}

// A copy the page cache holds in small folios (evicted, then read back a
// page at a time) is read again into 2 MiB folios, so decode reaches it
// through huge page entries: with 4 KiB entries qwen3-0.6b q4_K_M decoded
// 9-10 % slower. Not where a note says this kernel gave a copy no huge
// folios before. Skipped where this kernel and file system give the page
// cache no huge folios at all (the first open, of a copy just written
// through a mapping that asked for them, reaches none either).
TEST_F(PackedCache, ACopyInSmallFoliosIsReadAgainIntoHugePages) {
  constexpr size_t kBytes = size_t(16) << 20;
  const model::PackedCacheSettings settings = settings_of();
  {
    auto w = model::PackedWeights::create(settings, "f01105", kBytes);
    for (size_t i = 0; i < kBytes; i++) w->data()[i] = uint8_t(i * 7);
    w->finish();
  }
  if (huge_mapped_bytes(model::PackedWeights::open_cached(settings, "f01105", kBytes)->data()) == 0)
    GTEST_SKIP() << "no huge page-cache folios on this kernel and file system";
  const fs::path copy = copies().at(0);
  ASSERT_EQ(copy.extension(), ".bin");

  // A note from this kernel: left in small folios.
  struct utsname u {};
  ASSERT_EQ(::uname(&u), 0);
  test::write_file(settings.dir + "/no-huge-folios", std::string(u.release) + "\n");
  read_back_in_small_folios(copy);
  EXPECT_LT(huge_mapped_bytes(model::PackedWeights::open_cached(settings, "f01105", kBytes)->data()), kBytes / 2);

  // A note from another kernel: read again.
  test::write_file(settings.dir + "/no-huge-folios", "another kernel\n");
  read_back_in_small_folios(copy);
  auto found = model::PackedWeights::open_cached(settings, "f01105", kBytes);
  ASSERT_NE(found, nullptr);
  EXPECT_GE(huge_mapped_bytes(found->data()), kBytes * 9 / 10);
  for (size_t i = 0; i < kBytes; i += 4093) ASSERT_EQ(found->data()[i], uint8_t(i * 7)) << "byte " << i;
}

// A load looks at the first 64 MiB before mapping the rest; small folios
// past them are still found, and read again.
TEST_F(PackedCache, SmallFoliosPastTheFirst64MiBAreReadAgainToo) {
  constexpr size_t kBytes = size_t(80) << 20;
  const model::PackedCacheSettings settings = settings_of();
  {
    auto w = model::PackedWeights::create(settings, "f01106", kBytes);
    std::memset(w->data(), 0x3C, kBytes);
    w->finish();
  }
  if (huge_mapped_bytes(model::PackedWeights::open_cached(settings, "f01106", kBytes)->data()) == 0)
    GTEST_SKIP() << "no huge page-cache folios on this kernel and file system";
  read_back_in_small_folios(copies().at(0), off_t(model::PackedWeights::kHeaderBytes + (size_t(70) << 20)));
  auto found = model::PackedWeights::open_cached(settings, "f01106", kBytes);
  ASSERT_NE(found, nullptr);
  EXPECT_GE(huge_mapped_bytes(found->data()), kBytes * 9 / 10);
  EXPECT_EQ(found->data()[kBytes - 1], 0x3C);
}

// Copies of 1 MiB of weights, one per model, and their ages.
class PackedCacheEviction : public PackedCache {
 protected:
  // Room for two such copies (and their headers), not three.
  void SetUp() override {
    PackedCache::SetUp();
    ::setenv("WARDEN_PACKED_CACHE_MIB", std::to_string(2 * kCopyMiB + 1).c_str(), 1);
  }
  static constexpr size_t kCopyMiB = 1 + model::PackedWeights::kHeaderBytes / (1 << 20);

  void write_copy(const std::string& model_identity, const std::string& key = "key") {
    auto w = model::PackedWeights::create(settings_of(model_identity), key, 1 << 20);
    std::memset(w->data(), 1, w->size());
    w->finish();
  }
  static fs::path copy_of(const std::string& model_identity, const std::string& key = "key") {
    return settings_of(model_identity).dir + "/" + key + ".bin";
  }
  static void age(const fs::path& copy, time_t when) {
    struct timespec times[2] = {{when, 0}, {when, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, copy.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << copy;
  }
};

TEST_F(PackedCacheEviction, TheLeastRecentlyUsedCopiesGoBeyondTheLimit) {
  EXPECT_EQ(settings_of().max_bytes, (2 * kCopyMiB + 1) << 20);
  write_copy("used");
  age(copy_of("used"), 1000000000);
  write_copy("newer");
  age(copy_of("newer"), 1200000000);
  // Each model's copies in a folder of their own.
  EXPECT_NE(settings_of("used").dir, settings_of("newer").dir);
  EXPECT_EQ(fs::path(settings_of("used").dir).parent_path(), fs::path(root()));
  // Reading "used" marks it as used now, so "newer" is the least recently
  // used when a third copy needs room; its folder goes with it.
  ASSERT_NE(model::PackedWeights::open_cached(settings_of("used"), "key", 1 << 20), nullptr);
  write_copy("newest");
  std::vector<fs::path> left{copy_of("newest"), copy_of("used")};
  std::sort(left.begin(), left.end());
  EXPECT_EQ(copies(), left);
  EXPECT_FALSE(fs::exists(settings_of("newer").dir));
  // A copy larger than the whole limit is not written at all.
  auto big = model::PackedWeights::create(settings_of("big"), "big", settings_of().max_bytes);
  big->finish();
  EXPECT_EQ(copies().size(), 2u);
}

// A copy an older version left in the root counts, and goes first when it
// is the oldest. What a folder holds besides regular files is neither
// counted nor followed: a link there to a file elsewhere leaves that file.
TEST_F(PackedCacheEviction, OldCopiesInTheRootCountAndLinksAreNotFollowed) {
  write_copy("a");
  age(copy_of("a"), 1100000000);
  const fs::path legacy = root() + "/legacy.bin";
  test::write_file(legacy, std::string(1 << 20, 'x'));
  age(legacy, 1000000000);
  const std::string outside = test::make_temp_dir("outside") + "/big.bin";
  test::write_file(outside, std::string(3 << 20, 'y'));
  age(outside, 900000000);
  fs::create_symlink(outside, settings_of("a").dir + "/link.bin");
  const std::string elsewhere = test::make_temp_dir("elsewhere");
  fs::create_directory_symlink(elsewhere, root() + "/linked-folder");
  test::write_file(elsewhere + "/deep.bin", "z");
  age(elsewhere + "/deep.bin", 800000000);

  write_copy("b");  // a, b and the legacy copy fill the limit; the link's target would overfill it
  EXPECT_TRUE(fs::exists(legacy));
  write_copy("c");  // two must go: the legacy copy, the oldest, then a
  EXPECT_FALSE(fs::exists(legacy));
  EXPECT_FALSE(fs::exists(copy_of("a")));
  EXPECT_TRUE(fs::exists(copy_of("b")));
  EXPECT_EQ(fs::file_size(outside), size_t(3) << 20);
  EXPECT_TRUE(fs::exists(elsewhere + "/deep.bin"));
}

// Before the engine confines itself to its model's folder it makes room
// there: other models' copies go, least recently used first; its own stay.
TEST_F(PackedCacheEviction, MakingRoomEvictsOtherModelsCopiesOnly) {
  write_copy("other");
  age(copy_of("other"), 1000000000);
  write_copy("own");
  age(copy_of("own"), 900000000);  // the oldest, but the model's own
  // A larger copy of "own" may come (its layout changed): room for it.
  EXPECT_TRUE(model::make_room(settings_of("own"), 4 << 20));
  EXPECT_FALSE(fs::exists(copy_of("other")));
  EXPECT_TRUE(fs::exists(copy_of("own")));
  EXPECT_TRUE(model::make_room(settings_of("new"), 1 << 20));
  EXPECT_TRUE(fs::is_directory(settings_of("new").dir));
  EXPECT_EQ(fs::status(settings_of("new").dir).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_TRUE(fs::exists(copy_of("own")));  // it and a new copy fit
  // Nothing to make room for when the copy could not fit at all.
  EXPECT_TRUE(model::make_room(settings_of("huge"), settings_of().max_bytes));
  EXPECT_TRUE(fs::exists(copy_of("own")));
  EXPECT_FALSE(model::make_room(settings_of(""), 1 << 20));  // not a file: no cache
}

// Of the model's own copies only the one used last is kept for it; older
// ones (packed for another kernel set or layout) go like any other.
TEST_F(PackedCacheEviction, MakingRoomKeepsOnlyTheModelsLatestCopy) {
  write_copy("own", "older");
  age(copy_of("own", "older"), 900000000);
  write_copy("own", "latest");
  age(copy_of("own", "latest"), 1000000000);
  EXPECT_TRUE(model::make_room(settings_of("own"), 3 << 20));  // both, and room for this: over the limit
  EXPECT_FALSE(fs::exists(copy_of("own", "older")));
  EXPECT_TRUE(fs::exists(copy_of("own", "latest")));
}

// What a model's folder holds was put there by an engine that may have
// been taken over: a sparse file claiming a terabyte, from the future,
// does not make the next load evict every other model's copy; it and any
// other file there count, and go, like copies.
TEST_F(PackedCacheEviction, AFolderCannotClaimTheWholeCache) {
  write_copy("other");
  age(copy_of("other"), 1000000000);
  fs::create_directories(settings_of("hostile").dir);
  const fs::path claim = settings_of("hostile").dir + "/claim.bin";
  test::write_file(claim, "x");
  fs::resize_file(claim, uintmax_t(1) << 40);
  age(claim, 4102444800);  // 2100
  const fs::path junk = settings_of("hostile").dir + "/junk";
  test::write_file(junk, std::string(3 << 20, 'j'));
  age(junk, 900000000);
  EXPECT_TRUE(model::make_room(settings_of("new"), 1 << 20));
  EXPECT_TRUE(fs::exists(copy_of("other")));
  EXPECT_FALSE(fs::exists(junk));  // the oldest of all
}

TEST_F(PackedCache, AnUnusableFolderOnlyCostsTheCache) {
  const std::string not_a_folder = test::make_temp_dir("file") + "/plain";
  test::write_file(not_a_folder, "x");
  ::setenv("XDG_CACHE_HOME", not_a_folder.c_str(), 1);
  auto m = model::Model::load(model_);
  EXPECT_FALSE(m->packed_from_cache());
  EXPECT_GT(m->packed_bytes(), 0u);
  EXPECT_FALSE(decode_logits(*m).empty());
}

TEST_F(PackedCache, AMalformedLimitIsOneClearError) {
  for (const char* bad : {"abc", "-5", " -5", "+5", "12MiB", "99999999999999999999999"}) {
    ::setenv("WARDEN_PACKED_CACHE_MIB", bad, 1);
    try {
      model::Model::load(model_);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("WARDEN_PACKED_CACHE_MIB"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(copies().empty());
  ::setenv("WARDEN_PACKED_CACHE_MIB", "many", 1);
  auto r = test::run_warden({"generate", "-m", model_, "-p", "x", "-n", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("WARDEN_PACKED_CACHE_MIB"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace warden
