#include "broker/tty_prompt.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "broker/render.h"
#include "util/ascii.h"
#include "util/fd_io.h"
#include "util/log.h"

namespace warden::broker {
namespace {

std::string lower_trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : ascii_lower(std::string_view(s).substr(b, e - b + 1));
}

}  // namespace

// What the terminal prompt shows at most. The prompt must fit on a screen
// with the real effect next to the question: model-made text (a 3000-line
// diff, a 64 KiB target, hundreds of taint labels) must not push it away.
constexpr size_t kTargetHead = 200;  // output bytes of a capped target: start...
constexpr size_t kTargetTail = 80;   // ...and end (where a path names the file)
constexpr size_t kReasonBytes = 300;
constexpr size_t kMaxReasonLines = 8;

// One labelled line; appended piece by piece (no temporaries to concatenate).
static void add_line(std::string& out, std::string_view label, std::string_view value) {
  out.append(label);
  out.append(value);
  out.push_back('\n');
}

static std::string show_command(const std::string& id) { return "`warden approve show " + id + "`"; }

// "fs.write", "exec (with network)": the capability as the human reads it.
static std::string capability_text(const EffectRequest& r) {
  std::string s(capability_name(r.capability));
  if (r.capability == Capability::exec) s += r.network ? " (with network)" : " (no network)";
  return s;
}

// A reason, policy line or target: whole in the full view, capped otherwise.
static CappedText shown(std::string_view text, DetailView view, size_t head, size_t tail, bool ascii_only) {
  if (view == DetailView::full) return {ascii_only ? neutralize_ascii(text) : neutralize(text, false), 0};
  return neutralize_capped(text, head, tail, ascii_only);
}

// The effect line, plus notes (lines the model cannot forge: model-made text
// never starts a line) when the target is cut or is not plain ASCII, so a
// Cyrillic "о" or an invisible character cannot pass for the ASCII name.
static void add_effect_lines(std::string& out, const PendingApproval& p, DetailView view) {
  const std::string& target = p.request.target;
  CappedText t = shown(target, view, kTargetHead, kTargetTail, false);
  add_line(out, "effect:  ", capability_text(p.request) + " " + t.text);
  if (t.hidden_bytes)
    add_line(out, "note:    ", "the target is " + std::to_string(target.size()) + " bytes long; " +
                                   std::to_string(t.hidden_bytes) + " of them are not shown here; " +
                                   show_command(p.id) + " prints it whole");
  if (has_non_ascii(target))
    add_line(out, "note:    ", "the target has non-ASCII characters; in ASCII it reads: " +
                                   shown(target, view, kTargetHead, kTargetTail, true).text);
}

static void add_reason_lines(std::string& out, const PendingApproval& p, DetailView view) {
  add_line(out, "policy:  ", shown(p.policy_reason, view, kReasonBytes, 0, false).text);
  const size_t n = p.ask_reasons.size();
  const size_t listed = view == DetailView::full ? n : std::min(n, kMaxReasonLines);
  for (size_t k = 0; k < listed; ++k)
    add_line(out, "why:     ", shown(p.ask_reasons[k], view, kReasonBytes, 0, false).text);
  if (listed < n)
    add_line(out, "why:     ", "... " + std::to_string(n - listed) + " more reasons not shown; " + show_command(p.id) +
                                   " lists them all");
}

constexpr size_t kMaxLookAlikeWords = 5;

// Whether a code point is a letter that passes for a Latin one: IPA ("ɡ"),
// Greek, Cyrillic and its supplement ("і" in "gіthub.com", "ԁ"), Armenian
// ("ս"), Cherokee, Latin small capitals and fullwidth Latin.
static bool look_alike_script(uint32_t cp) {
  return (cp >= 0x250 && cp <= 0x2AF) || (cp >= 0x370 && cp <= 0x58F) || (cp >= 0x13A0 && cp <= 0x13FF) ||
         (cp >= 0x1D00 && cp <= 0x1D2B) || (cp >= 0xFF01 && cp <= 0xFF5E);
}

// Words of `text` (runs of letters, digits, '.', '-', '_') that mix ASCII
// letters with such letters: distinct, at most kMaxLookAlikeWords * 64.
// Russian or Greek text has no ASCII letters inside its words; a spoofed
// name has.
static std::vector<std::string> look_alike_words(std::string_view text) {
  std::vector<std::string> words;
  const auto in_word = [](unsigned char c) { return c >= 0x80 || std::isalnum(c) || c == '.' || c == '-' || c == '_'; };
  for (size_t i = 0; i < text.size() && words.size() < kMaxLookAlikeWords * 64;) {
    if (!in_word(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t end = i;
    bool ascii_letter = false, look_alike = false;
    while (end < text.size() && in_word(static_cast<unsigned char>(text[end]))) {
      const auto b = [&](size_t k) { return end + k < text.size() ? uint32_t(uint8_t(text[end + k])) : 0u; };
      if (b(0) < 0x80) {
        ascii_letter = ascii_letter || std::isalpha(int(b(0)));
        ++end;
      } else if (b(0) >= 0xC2 && b(0) <= 0xDF) {  // two bytes: Greek and Cyrillic
        look_alike = look_alike || look_alike_script(((b(0) & 0x1F) << 6) | (b(1) & 0x3F));
        end += 2;
      } else if (b(0) >= 0xE0 && b(0) <= 0xEF) {  // three bytes: fullwidth forms
        look_alike = look_alike || look_alike_script(((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F));
        end += 3;
      } else {
        ++end;
      }
    }
    end = std::min(end, text.size());
    std::string word(text.substr(i, end - i));
    if (ascii_letter && look_alike && std::find(words.begin(), words.end(), word) == words.end())
      words.push_back(std::move(word));
    i = end;
  }
  return words;
}

// A note (warden's own line) naming the words of the detail that mix
// Latin letters with look-alikes, each as it reads in ASCII: names with a
// dot first (domains, files), which decoy words cannot push out, then how
// many more there are.
static void add_look_alike_note(std::string& out, std::string_view detail) {
  std::vector<std::string> words = look_alike_words(detail);
  if (words.empty()) return;
  std::stable_partition(words.begin(), words.end(),
                        [](const std::string& w) { return w.find('.') != std::string::npos; });
  std::string list;
  for (size_t k = 0; k < words.size() && k < kMaxLookAlikeWords; ++k)
    list.append(list.empty() ? "" : ", ").append(neutralize_capped(words[k], 120, 0, true).text);
  if (words.size() > kMaxLookAlikeWords)
    list.append(" and ").append(std::to_string(words.size() - kMaxLookAlikeWords)).append(" more");
  add_line(out, "note:    ", "the exact effect mixes Latin letters with look-alike ones (Greek, Cyrillic, ...) in: " +
                                 list);
}

std::string render_effect(const PendingApproval& p, DetailView view) {
  std::string out = "==== warden: approval needed (request " + p.id + ") ====\n";
  add_effect_lines(out, p, view);
  add_reason_lines(out, p, view);
  const std::string& detail = p.request.detail;
  add_look_alike_note(out, detail);
  if (!detail.empty()) {
    out += "exact effect (model-made text; control and invisible characters shown as \\xNN, \\uXXXX, \\UXXXXXXXX; "
           "a backslash as \\\\):\n";
    out += view == DetailView::full ? quote_block(detail)
                                    : quote_excerpt(detail, ExcerptLimits{}, show_command(p.id) + " prints them all");
  }
  return out;
}

// Always capped and in ASCII: the recap is short, and a look-alike letter in
// it shows as an escape right where the human decides.
std::string render_recap(const PendingApproval& p) {
  const std::string& first_reason = p.ask_reasons.empty() ? p.policy_reason : p.ask_reasons.front();
  std::string out = "==== request " + p.id + " in short (warden's own summary, not model text) ====\n";
  std::string effect = capability_text(p.request) + " " +
                       neutralize_capped(p.request.target, kTargetHead, kTargetTail, true).text;
  if (has_non_ascii(p.request.target)) effect += "   (non-ASCII characters escaped)";
  add_line(out, "effect:  ", effect);
  std::string why = neutralize_capped(first_reason, kReasonBytes, 0, false).text;
  if (p.ask_reasons.size() > 1) why += "   (+" + std::to_string(p.ask_reasons.size() - 1) + " more reasons above)";
  add_line(out, "why:     ", why);
  return out;
}

std::string render_prompt(const PendingApproval& p) {
  std::string out = "\n";
  out += render_effect(p, DetailView::excerpt);
  out += render_recap(p);
  out += "Approve request ";
  out += p.id;
  out += "? Type yes to approve; anything else denies: ";
  return out;
}

std::string render_show(const PendingApproval& p) { return render_effect(p, DetailView::full) + render_recap(p); }

std::optional<bool> ask_on_terminal(int tty_fd, const PendingApproval& p, const std::function<bool()>& still_pending) {
  // Drop anything typed before the prompt, so no answer is pre-filled. The
  // flush comes first: after the prompt is out, every key is a real answer.
  ::tcflush(tty_fd, TCIFLUSH);
  if (!write_all(tty_fd, render_prompt(p))) return std::nullopt;
  std::string line;
  while (still_pending()) {
    pollfd pfd{tty_fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, 200);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) continue;
    char buf[256];
    ssize_t got = ::read(tty_fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;  // terminal hung up
    line.append(buf, size_t(got));
    // '\r' too: a terminal left in raw mode sends it for Enter.
    if (auto nl = line.find_first_of("\r\n"); nl != std::string::npos) {
      std::string answer = lower_trimmed(line.substr(0, nl));
      bool yes = answer == "y" || answer == "yes";
      write_all(tty_fd, yes ? "approved.\n" : "denied.\n");
      return yes;
    }
    if (line.size() > 1024) return false;  // nobody types this much to say yes
  }
  write_all(tty_fd, "\n(request " + p.id + " was answered elsewhere or timed out)\n");
  return std::nullopt;
}

void TerminalPrompter::start() {
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void TerminalPrompter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void TerminalPrompter::loop() {
  bool warned = false;
  while (!stop_) {
    auto next = queue_.next_unprompted(std::chrono::milliseconds(200));
    if (!next) continue;
    int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      if (!warned) log::warn("broker: no controlling terminal; approvals only through `warden approve`");
      warned = true;
      continue;
    }
    const std::string id = next->id;
    auto answer = ask_on_terminal(fd, *next, [&] { return !stop_ && queue_.is_pending(id); });
    ::close(fd);
    if (answer) queue_.resolve(id, *answer, "terminal");
  }
}

}  // namespace warden::broker
