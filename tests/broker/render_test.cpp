// Neutralizing model-made text for the terminal.
#include <gtest/gtest.h>

#include "broker/render.h"

#include <algorithm>
#include <random>

namespace wb = warden::broker;

TEST(Neutralize, EscapesAndControlsBecomeVisible) {
  EXPECT_EQ(wb::neutralize("\x1b[2Jhi\x07", true), "\\x1b[2Jhi\\x07");
  EXPECT_EQ(wb::neutralize("a\rb", true), "a\\rb");
  EXPECT_EQ(wb::neutralize("a\nb", true), "a\nb");
  EXPECT_EQ(wb::neutralize("a\nb", false), "a\\nb");
  EXPECT_EQ(wb::neutralize("tab\there", false), "tab\there");
  EXPECT_EQ(wb::neutralize("\x7f", false), "\\x7f");
  EXPECT_EQ(wb::neutralize(std::string("a\0b", 3), false), "a\\x00b");
}

TEST(Neutralize, C1BidiAndInvalidUtf8) {
  EXPECT_EQ(wb::neutralize("\xc2\x9b" "31m", false), "\\u009b31m");      // C1 CSI
  EXPECT_EQ(wb::neutralize("\x9b" "31m", false), "\\x9b31m");            // raw 8-bit CSI
  EXPECT_EQ(wb::neutralize("abc\xe2\x80\xae" "cba", false), "abc\\u202ecba");  // RLO
  EXPECT_EQ(wb::neutralize("\xc0\xaf", false), "\\xc0\\xaf");            // overlong '/'
  EXPECT_EQ(wb::neutralize("caf\xc3\xa9 \xe2\x9c\x93", false), "caf\xc3\xa9 \xe2\x9c\x93");  // real UTF-8 kept
}

// A terminal in an 8-bit mode reads the bytes 0x80-0x9f as C1 controls,
// and they come inside many UTF-8 characters: where the locale names no
// UTF-8, every such character is escaped (the others stay, mojibake but
// harmless there). The test processes run in C.UTF-8 (test_main.cpp).
TEST(Neutralize, AnEightBitTerminalGetsNoC1Bytes) {
  const std::string text = "\xc3\x9b caf\xc3\xa9 \xe4\xb8\x80 \xf0\x9f\x98\x80";  // Û café 一 😀
  auto shown_with = [&](const char* lc_all, const char* lang) {
    lc_all ? ::setenv("LC_ALL", lc_all, 1) : ::unsetenv("LC_ALL");
    lang ? ::setenv("LANG", lang, 1) : ::unsetenv("LANG");
    return wb::neutralize(text, false);
  };
  const std::string escaped = "\\u00db caf\xc3\xa9 \\u4e00 \\U0001f600";
  EXPECT_EQ(shown_with("C", "en_US.UTF-8"), escaped);  // LC_ALL decides
  EXPECT_EQ(shown_with(nullptr, nullptr), escaped);     // no locale: the C locale
  EXPECT_EQ(shown_with(nullptr, "de_DE.ISO-8859-1"), escaped);
  EXPECT_EQ(shown_with(nullptr, "en_US.utf8"), text);
  EXPECT_EQ(shown_with("C.UTF-8", nullptr), text);
  for (unsigned char c : shown_with("POSIX", nullptr)) EXPECT_FALSE(c >= 0x80 && c <= 0x9f) << int(c);
  ::setenv("LC_ALL", "C.UTF-8", 1);
  ::unsetenv("LANG");
}

TEST(Neutralize, OutputHasNoControlBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  std::string out = wb::neutralize(all + all, true);
  for (unsigned char c : out) EXPECT_TRUE(c >= 0x20 || c == '\n' || c == '\t') << int(c);
}

TEST(QuoteBlock, EveryLineGetsTheGutter) {
  EXPECT_EQ(wb::quote_block("line1\nApprove request 1? yes\n\x1b[1A"), "  | line1\n  | Approve request 1? yes\n  | \\x1b[1A\n");
}

namespace {

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

std::string utf8(uint32_t cp) {
  std::string s;
  put_utf8(s, cp);
  return s;
}

// Reads neutralize()'s output back into the original bytes. That this always
// works is what "every escape is unambiguous" means; a raw backslash in the
// output (the old rendering) makes it fail.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    char k = s.at(++i);
    auto hex = [&](size_t digits) {
      uint32_t v = uint32_t(std::stoul(std::string(s.substr(i + 1, digits)), nullptr, 16));
      i += digits;
      return v;
    };
    if (k == '\\') out += '\\';
    else if (k == 'r') out += '\r';
    else if (k == 'n') out += '\n';
    else if (k == 't') out += '\t';
    else if (k == 'x') out += char(hex(2));
    else if (k == 'u') put_utf8(out, hex(4));
    else if (k == 'U') put_utf8(out, hex(8));
    else ADD_FAILURE() << "unknown escape \\" << k << " in " << s;
  }
  return out;
}

}  // namespace

TEST(Neutralize, InvisibleAndFillerCharactersAreEscaped) {
  struct Case {
    uint32_t cp;
    const char* shown;
  };
  const Case cases[] = {
      {0xe0001, "\\U000e0001"}, {0xe0041, "\\U000e0041"}, {0xe007f, "\\U000e007f"},  // tag characters
      {0xfe00, "\\ufe00"},      {0xfe0f, "\\ufe0f"},                                    // variation selectors
      {0xe0100, "\\U000e0100"}, {0xe01ef, "\\U000e01ef"},                               // VS supplement
      {0x00ad, "\\u00ad"},      {0x034f, "\\u034f"},     {0x115f, "\\u115f"},     {0x1160, "\\u1160"},
      {0x3164, "\\u3164"},      {0xffa0, "\\uffa0"},     {0x180e, "\\u180e"},     {0x17b4, "\\u17b4"},
      {0x17b5, "\\u17b5"},      {0x1d173, "\\U0001d173"}, {0x1d17a, "\\U0001d17a"}, {0xfff9, "\\ufff9"},
      {0xfffb, "\\ufffb"},      {0x2060, "\\u2060"},     {0x2064, "\\u2064"},     {0x200b, "\\u200b"},
      {0xfeff, "\\ufeff"},      {0xe000, "\\ue000"},     {0x10fffd, "\\U0010fffd"}, {0xffff, "\\uffff"},
      // Spaces other than ' ': a shell does not split words on them.
      {0x00a0, "\\u00a0"},      {0x1680, "\\u1680"},     {0x2000, "\\u2000"},     {0x200a, "\\u200a"},
      {0x202f, "\\u202f"},      {0x205f, "\\u205f"},     {0x3000, "\\u3000"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(wb::neutralize("notes" + utf8(c.cp) + ".txt", false), std::string("notes") + c.shown + ".txt")
        << std::hex << c.cp;
  // "notes.txt" with a hidden tag string cannot look like plain "notes.txt".
  std::string tagged = "notes" + utf8(0xe0072) + utf8(0xe006d) + ".txt";
  EXPECT_EQ(wb::neutralize(tagged, true), "notes\\U000e0072\\U000e006d.txt");
  // Visible non-ASCII text is still shown as itself.
  EXPECT_EQ(wb::neutralize("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe4\xbd\xa0\xe5\xa5\xbd", true),
            "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe4\xbd\xa0\xe5\xa5\xbd");
}

TEST(Neutralize, BackslashIsEscapedSoEscapesAreUnambiguous) {
  EXPECT_EQ(wb::neutralize("a\\b", false), "a\\\\b");
  EXPECT_EQ(wb::neutralize("\\x1b[2J", false), "\\\\x1b[2J");  // literal text, not an ESC
  EXPECT_NE(wb::neutralize("\\x1b[2J", false), wb::neutralize("\x1b[2J", false));
  EXPECT_NE(wb::neutralize("\\u202e", false), wb::neutralize("\xe2\x80\xae", false));
  EXPECT_EQ(wb::neutralize("tab\there\n", true), "tab\there\n");  // tab and kept newline unchanged
}

TEST(Neutralize, OutputDecodesBackToTheInput) {
  std::mt19937 rng(7);
  const uint32_t interesting[] = {'\\', 'x', 'u', '1', '\n', '\r', '\t', 0x1b, 0x7f, 0xad, 0xe9, 0x202e,
                                  0xfe0f, 0xe0041, 0x1f600, 0x10ffff, 0x43e};
  for (int round = 0; round < 2000; ++round) {
    std::string in;
    for (int k = int(rng() % 12); k > 0; --k) {
      uint32_t r = rng() % 4;
      if (r == 0) in += char(rng() % 256);  // any byte, valid UTF-8 or not
      else put_utf8(in, interesting[rng() % std::size(interesting)]);
    }
    EXPECT_EQ(unescape(wb::neutralize(in, true)), in);
    EXPECT_EQ(unescape(wb::neutralize(in, false)), in);
    EXPECT_EQ(unescape(wb::neutralize_ascii(in)), in);
  }
}

TEST(NeutralizeAscii, LookAlikeLettersAreSpelledOut) {
  EXPECT_EQ(wb::neutralize_ascii("b\xd0\xbe" "b.txt"), "b\\u043eb.txt");                  // Cyrillic o
  EXPECT_EQ(wb::neutralize_ascii("alice@ex\xd0\xb0mple.com"), "alice@ex\\u0430mple.com");  // Cyrillic a
  EXPECT_EQ(wb::neutralize_ascii("\xf0\x9f\x98\x80\t\\"), "\\U0001f600\\t\\\\");
  EXPECT_EQ(wb::neutralize_ascii("plain.txt"), "plain.txt");
  EXPECT_TRUE(wb::has_non_ascii("b\xd0\xbe" "b.txt"));
  EXPECT_FALSE(wb::has_non_ascii("bob.txt\t\x1b"));
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  for (unsigned char c : wb::neutralize_ascii(all + utf8(0x430) + utf8(0xe0041)))
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
}

TEST(NeutralizeCapped, ShortTextIsWholeLongTextShowsStartAndEnd) {
  auto whole = wb::neutralize_capped("short\x1b", 10, 5, false);
  EXPECT_EQ(whole.text, "short\\x1b");
  EXPECT_EQ(whole.hidden_bytes, 0u);

  std::string long_path = "/ws/" + std::string(1000, 'a') + "/.git/hooks/pre-commit";
  auto capped = wb::neutralize_capped(long_path, 20, 22, false);
  EXPECT_EQ(capped.text, "/ws/aaaaaaaaaaaaaaaa ...(" + std::to_string(long_path.size() - 42) +
                             " more bytes)... /.git/hooks/pre-commit");
  EXPECT_EQ(capped.hidden_bytes, long_path.size() - 42);

  auto head_only = wb::neutralize_capped(std::string(500, 'x'), 10, 0, false);
  EXPECT_EQ(head_only.text, "xxxxxxxxxx ...(490 more bytes)");
}

TEST(NeutralizeCapped, CutsBetweenWholeCharactersAndEscapes) {
  // 3-byte characters and 4-character escapes: no cut inside either.
  std::string text;
  for (int i = 0; i < 50; ++i) text += "\xe4\xbd\xa0\x1b";
  auto c = wb::neutralize_capped(text, 10, 10, false);
  EXPECT_EQ(c.text.substr(0, 10), "\xe4\xbd\xa0\\x1b\xe4\xbd\xa0") << c.text;
  EXPECT_EQ(c.text.substr(c.text.size() - 7), "\xe4\xbd\xa0\\x1b") << c.text;
  EXPECT_EQ(c.hidden_bytes, text.size() - 7 - 4);  // head: 3+1+3 bytes; tail: 3+1 bytes
}

TEST(QuoteExcerpt, LongTextShowsHeadOmissionAndTail) {
  std::string text;
  for (int i = 1; i <= 3000; ++i) text += "line " + std::to_string(i) + "\n";
  wb::ExcerptLimits lim;
  std::string out = wb::quote_excerpt(text, lim, "`warden approve show 3` prints them all");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 51);
  EXPECT_EQ(out.substr(0, 11), "  | line 1\n");
  EXPECT_NE(out.find("  | line 40\n... 2950 lines not shown; `warden approve show 3` prints them all ...\n  | line 2991\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.substr(out.size() - 14), "  | line 3000\n");
  EXPECT_EQ(out.find("line 41\n"), std::string::npos);

  // Short text: the same as quote_block.
  EXPECT_EQ(wb::quote_excerpt("a\nb\x1b\n", lim, "x"), wb::quote_block("a\nb\x1b\n"));
  EXPECT_EQ(wb::quote_excerpt("", lim, "x"), wb::quote_block(""));
}

TEST(QuoteExcerpt, LongLinesAreCapped) {
  std::string text = "short\n" + std::string(100000, 'z') + "\nend\n";
  std::string out = wb::quote_excerpt(text, wb::ExcerptLimits{40, 10, 240}, "x");
  EXPECT_EQ(out, "  | short\n  | " + std::string(240, 'z') + " ...(99760 more bytes)\n  | end\n");
}
