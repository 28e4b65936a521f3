// Changing the policy while the broker runs: the diff a human approves, the
// atomic write, Broker::change_policy (validate -> ask -> write -> pin ->
// audit), and drift: an edit of policy.toml made behind the broker's back is
// audited and has no effect.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <optional>
#include <random>
#include <thread>

#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/policy_file.h"
#include "common/test_env.h"
#include "util/error.h"

namespace fs = std::filesystem;
namespace wb = warden::broker;
using warden::test::make_temp_dir;
using warden::test::read_file;
using warden::test::write_file;

namespace {

TEST(UnifiedDiff, ShowsOneChangedLineWithContext) {
  std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  std::string b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  EXPECT_EQ(wb::unified_diff(a, b, "a/p", "b/p"),
            "--- a/p\n+++ b/p\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(UnifiedDiff, EqualTextsGiveNothing) { EXPECT_EQ(wb::unified_diff("x\n", "x\n", "a", "b"), ""); }

TEST(UnifiedDiff, FromEmptyAndToEmpty) {
  EXPECT_EQ(wb::unified_diff("", "a\nb\n", "a", "b"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n");
  EXPECT_EQ(wb::unified_diff("a\n", "", "a", "b"), "--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n");
}

TEST(UnifiedDiff, MarksAMissingFinalNewline) {
  EXPECT_EQ(wb::unified_diff("a\n", "a", "x", "y"),
            "--- x\n+++ y\n@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n");
}

TEST(UnifiedDiff, FarApartChangesMakeTwoHunks) {
  std::string a, b;
  for (int i = 1; i <= 20; ++i) {
    a += std::to_string(i) + "\n";
    b += (i == 2 ? std::string("two") : i == 18 ? std::string("eighteen") : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(wb::unified_diff(a, b, "a", "b"),
            "--- a\n+++ b\n@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n"
            "@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+eighteen\n 19\n 20\n");
}

// Applies a unified diff to `old_text` the way patch(1) would, checking
// every context and deleted line against the old text. Returns nullopt when
// the diff does not fit.
std::optional<std::string> apply_diff(const std::string& old_text, const std::string& diff) {
  std::vector<std::string> old_lines;  // each with its '\n' when it had one
  for (size_t i = 0; i < old_text.size();) {
    size_t nl = old_text.find('\n', i);
    size_t end = nl == std::string::npos ? old_text.size() : nl + 1;
    old_lines.push_back(old_text.substr(i, end - i));
    i = end;
  }
  std::vector<std::string> diff_lines;
  for (size_t i = 0; i < diff.size();) {
    size_t nl = diff.find('\n', i);
    diff_lines.push_back(diff.substr(i, nl - i));
    i = nl + 1;
  }
  std::string out;
  size_t next_old = 0;  // first old line not yet copied
  for (size_t k = 2; k < diff_lines.size(); ++k) {
    const std::string& l = diff_lines[k];
    if (l.rfind("@@ -", 0) == 0) {
      size_t start = std::stoul(l.substr(4));
      size_t comma = l.find(',');
      size_t space = l.find(' ', 4);
      size_t count = comma != std::string::npos && comma < space ? std::stoul(l.substr(comma + 1)) : 1;
      size_t first = count == 0 ? start : start - 1;  // 0-based index of the hunk's first old line
      if (first < next_old || first > old_lines.size()) return std::nullopt;
      while (next_old < first) out += old_lines[next_old++];
      continue;
    }
    bool no_newline = k + 1 < diff_lines.size() && diff_lines[k + 1] == "\\ No newline at end of file";
    std::string text = l.substr(1) + (no_newline ? "" : "\n");
    if (l[0] == ' ' || l[0] == '-') {
      if (next_old >= old_lines.size() || old_lines[next_old] != text) return std::nullopt;
      ++next_old;
      if (l[0] == ' ') out += text;
    } else if (l[0] == '+') {
      out += text;
    } else if (l[0] != '\\') {
      return std::nullopt;
    }
  }
  while (next_old < old_lines.size()) out += old_lines[next_old++];
  return out;
}

TEST(UnifiedDiff, AppliedToTheOldTextGivesTheNewOneForRandomEdits) {
  std::mt19937 rng(20261125);  // fixed: the same cases every run
  auto random_text = [&](size_t lines) {
    std::string t;
    for (size_t i = 0; i < lines; ++i) t += std::string(1, char('a' + rng() % 4)) + "\n";
    if (rng() % 4 == 0 && !t.empty()) t.pop_back();  // sometimes no final newline
    return t;
  };
  for (int round = 0; round < 2000; ++round) {
    std::string a = random_text(rng() % 30), b = random_text(rng() % 30);
    if (round % 2 == 0) {  // half the cases: a few edits of the same text
      b = a;
      for (int e = 0, n = int(rng() % 4); e < n && !b.empty(); ++e) b.insert(rng() % b.size(), "x\n");
    }
    std::string d = wb::unified_diff(a, b, "a", "b");
    if (a == b) {
      EXPECT_EQ(d, "");
      continue;
    }
    auto applied = apply_diff(a, d);
    ASSERT_TRUE(applied) << "diff does not fit its old text:\n" << a << "\n---\n" << d;
    ASSERT_EQ(*applied, b) << "old:\n" << a << "\ndiff:\n" << d;
  }
}

TEST(AtomicWrite, ReplacesWithMode0600AndLeavesNoTemporaryFile) {
  std::string dir = make_temp_dir("aw") + "/new/sub";
  std::string path = dir + "/policy.toml";
  wb::write_file_atomically(path, "one\n");
  EXPECT_EQ(read_file(path), "one\n");
  wb::write_file_atomically(path, "two\n");
  EXPECT_EQ(read_file(path), "two\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for (auto& e : fs::directory_iterator(dir)) entries += e.exists();
  EXPECT_EQ(entries, 1);
}

TEST(AtomicWrite, ASymlinkedFileIsReplacedWhereItLives) {
  std::string dir = make_temp_dir("aw");
  write_file(dir + "/dotfiles/policy.toml", "old\n");
  fs::create_directories(dir + "/config");
  fs::create_symlink(dir + "/dotfiles/policy.toml", dir + "/config/policy.toml");
  wb::write_file_atomically(dir + "/config/policy.toml", "new\n");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(dir + "/config/policy.toml")));
  EXPECT_EQ(read_file(dir + "/dotfiles/policy.toml"), "new\n");
}

TEST(AtomicWrite, AFailureReplacesNothing) {
  std::string dir = make_temp_dir("aw");
  std::string path = dir + "/policy.toml";
  fs::create_directories(path);  // a directory where the file should go: rename fails
  EXPECT_THROW(wb::write_file_atomically(path, "x\n"), warden::Error);
  EXPECT_TRUE(fs::is_directory(path));
  int entries = 0;
  for (auto& e : fs::directory_iterator(dir)) entries += e.exists();
  EXPECT_EQ(entries, 1);  // no temporary file left behind
}

// A broker with a pinned policy file, no sockets: the queue is answered
// directly, as the terminal or `warden approve` would.
struct PinnedBroker {
  std::string root = fs::canonical(make_temp_dir("pin")).string();
  std::string workspace = root + "/ws";
  std::string path = root + "/config/policy.toml";
  std::unique_ptr<wb::AuditLog> audit;
  wb::ApprovalQueue queue;
  std::unique_ptr<wb::Broker> broker;

  explicit PinnedBroker(const std::string& text) {
    fs::create_directories(workspace);
    write_file(path, text);
    audit = std::make_unique<wb::AuditLog>(root + "/audit.db");
    wb::PolicyFileState f = wb::read_policy_file(path);
    broker = std::make_unique<wb::Broker>(wb::Policy::parse(f.text, path, wb::PolicyEnv::current(workspace)), *audit,
                                          queue);
    broker->pin_policy_file(f);
    broker->set_approval_timeout(std::chrono::seconds(30));
  }

  // Answers the next pending approval; returns what it showed.
  wb::PendingApproval answer(bool approve) {
    for (int i = 0; i < 3000; ++i) {
      auto pending = queue.list();
      if (!pending.empty()) {
        queue.resolve(pending[0].id, approve, "test");
        return pending[0];
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "nothing was asked";
    return {};
  }

  wb::Decision net(const std::string& domain) {
    wb::EffectRequest r;
    r.capability = wb::Capability::net;
    r.target = domain;
    r.context_labels = wb::LabelSet::parse({"user"});
    return broker->decide(r);
  }

  std::string audit_text() const {
    std::string all;
    for (auto& r : wb::read_audit(audit->path()))
      all += r.entry.capability + " | " + r.entry.decision + " | " + r.entry.arguments + " | " + r.entry.reason + "\n";
    return all;
  }
};

const char kAllowWiki[] =
    "[[rule]]\ncapability = \"net\"\npattern = \"*.wikipedia.org\"\naction = \"allow\"\n";
const char kDenyWiki[] = "[[rule]]\ncapability = \"net\"\npattern = \"*.wikipedia.org\"\naction = \"deny\"\n";

TEST(PolicyChange, ApprovedDiffIsWrittenPinnedAuditedAndInForce) {
  PinnedBroker b(kDenyWiki);
  EXPECT_FALSE(b.net("en.wikipedia.org").allowed());
  const std::string old_sha = wb::sha256_hex(kDenyWiki);

  auto change = std::async(std::launch::async, [&] { return b.broker->change_policy(kAllowWiki, "test"); });
  wb::PendingApproval shown = b.answer(true);
  wb::PolicyChange c = change.get();

  EXPECT_EQ(shown.request.capability, wb::Capability::config_change);
  EXPECT_EQ(shown.request.target, b.path);
  EXPECT_EQ(shown.request.detail,
            "--- a/policy.toml (in force)\n+++ b/policy.toml (proposed)\n@@ -1,4 +1,4 @@\n [[rule]]\n"
            " capability = \"net\"\n pattern = \"*.wikipedia.org\"\n-action = \"deny\"\n+action = \"allow\"\n");
  ASSERT_TRUE(c.applied) << c.message;
  EXPECT_EQ(c.old_sha256, old_sha);
  EXPECT_EQ(c.new_sha256, wb::sha256_hex(kAllowWiki));
  EXPECT_EQ(read_file(b.path), kAllowWiki);
  EXPECT_TRUE(b.net("en.wikipedia.org").allowed());
  ASSERT_TRUE(b.broker->pinned_policy_file());
  EXPECT_EQ(b.broker->pinned_policy_file()->sha256, c.new_sha256);
  EXPECT_FALSE(b.broker->check_policy_drift());  // its own write is not drift

  const std::string audit = b.audit_text();
  EXPECT_NE(audit.find("config.change | approved by human"), std::string::npos) << audit;
  EXPECT_NE(audit.find("policy.apply | event | {\"new_sha256\":\"" + c.new_sha256 + "\",\"old_sha256\":\"" + old_sha),
            std::string::npos)
      << audit;
  EXPECT_TRUE(wb::verify_audit(b.audit->path()).ok);
}

TEST(PolicyChange, DeniedChangeWritesNothingAndKeepsThePolicy) {
  PinnedBroker b(kDenyWiki);
  auto change = std::async(std::launch::async, [&] { return b.broker->change_policy(kAllowWiki, "test"); });
  b.answer(false);
  wb::PolicyChange c = change.get();
  EXPECT_FALSE(c.applied);
  EXPECT_NE(c.message.find("not applied: denied by the human on test"), std::string::npos) << c.message;
  EXPECT_EQ(read_file(b.path), kDenyWiki);
  EXPECT_FALSE(b.net("en.wikipedia.org").allowed());
}

TEST(PolicyChange, NobodyAnsweringWritesNothing) {
  PinnedBroker b(kDenyWiki);
  b.broker->set_approval_timeout(std::chrono::milliseconds(200));
  wb::PolicyChange c = b.broker->change_policy(kAllowWiki, "test");
  EXPECT_FALSE(c.applied);
  EXPECT_NE(c.message.find("nobody approved"), std::string::npos) << c.message;
  EXPECT_EQ(read_file(b.path), kDenyWiki);
}

TEST(PolicyChange, InvalidPolicyIsRefusedBeforeAnyoneIsAsked) {
  PinnedBroker b(kDenyWiki);
  wb::PolicyChange c = b.broker->change_policy("[[rule]]\ncapability = \"net\"\naction = \"maybe\"\n", "test");
  EXPECT_FALSE(c.applied);
  EXPECT_EQ(c.message, "invalid policy: " + b.path + ":3: action must be \"allow\", \"ask\" or \"deny\"");
  EXPECT_TRUE(b.queue.list().empty());
  EXPECT_EQ(read_file(b.path), kDenyWiki);
  EXPECT_NE(b.audit_text().find("config.change | denied"), std::string::npos);
}

TEST(PolicyChange, AnExplicitConfigChangeDenyRuleLocksThePolicy) {
  const std::string locked = std::string("[[rule]]\ncapability = \"config.change\"\naction = \"deny\"\n") + kDenyWiki;
  PinnedBroker b(locked);
  wb::PolicyChange c = b.broker->change_policy(kAllowWiki, "test");
  EXPECT_FALSE(c.applied);
  EXPECT_NE(c.message.find("refused: deny by rule"), std::string::npos) << c.message;
  EXPECT_TRUE(b.queue.list().empty());
  EXPECT_EQ(read_file(b.path), locked);
}

TEST(PolicyChange, UnchangedTextAsksNothing) {
  PinnedBroker b(kDenyWiki);
  wb::PolicyChange c = b.broker->change_policy(kDenyWiki, "test");
  EXPECT_FALSE(c.applied);
  EXPECT_NE(c.message.find("nothing to change"), std::string::npos);
}

TEST(PolicyDrift, AnEditBehindTheBrokersBackIsAuditedOnceAndHasNoEffect) {
  PinnedBroker b(kDenyWiki);
  write_file(b.path, kAllowWiki + std::string("# loosened behind the broker's back\n"));
  EXPECT_FALSE(b.net("en.wikipedia.org").allowed());  // the pinned deny rule still decides
  EXPECT_FALSE(b.net("de.wikipedia.org").allowed());
  auto drift = b.broker->check_policy_drift();
  ASSERT_TRUE(drift);
  EXPECT_EQ(drift->pinned_sha256, wb::sha256_hex(kDenyWiki));
  const std::string audit = b.audit_text();
  size_t first = audit.find("policy.drift");
  ASSERT_NE(first, std::string::npos) << audit;
  EXPECT_EQ(audit.find("policy.drift", first + 1), std::string::npos) << "reported more than once:\n" << audit;

  // Applying the edited file goes through the human like any change; the
  // prompt says the file was edited outside warden.
  auto change = std::async(std::launch::async, [&] { return b.broker->change_policy(read_file(b.path), "test"); });
  wb::PendingApproval shown = b.answer(true);
  ASSERT_TRUE(change.get().applied);
  bool says_edited = false;
  for (auto& why : shown.ask_reasons) says_edited |= why.find("was edited outside warden") != std::string::npos;
  EXPECT_TRUE(says_edited);
  EXPECT_TRUE(b.net("en.wikipedia.org").allowed());
  EXPECT_FALSE(b.broker->check_policy_drift());
}

TEST(PolicyDrift, ADeletedFileIsDriftToo) {
  PinnedBroker b(kDenyWiki);
  fs::remove(b.path);
  auto drift = b.broker->check_policy_drift();
  ASSERT_TRUE(drift);
  EXPECT_FALSE(drift->file_exists);
  EXPECT_FALSE(b.net("en.wikipedia.org").allowed());
}

}  // namespace
