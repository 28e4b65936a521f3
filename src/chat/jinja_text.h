#pragma once
// Python str semantics over UTF-8 bytes: lengths, indexes and slices count
// code points; strip/split use Python's notion of whitespace. Invalid UTF-8
// bytes survive a decode/encode round trip unchanged (as lone code points
// 0xDC80+byte, like Python's surrogateescape).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warden::chat::jinja::text {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
size_t length(std::string_view s);  // code points

bool is_space(char32_t c);
char32_t to_upper(char32_t c);  // simple (one code point) case mapping
char32_t to_lower(char32_t c);
std::string strip(std::string_view s, bool left, bool right);
// Strips any of the code points in `chars`.
std::string strip_chars(std::string_view s, std::string_view chars, bool left, bool right);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // first upper, rest lower
std::string title(std::string_view s);       // Python str.title

// Substring search in time linear in the text (glibc's memmem): the
// standard find compares the needle at each position, and a hostile
// template's 60 MB text and 30 MB needle would take it hours. npos if absent.
size_t find(std::string_view s, std::string_view needle, size_t from = 0);
size_t rfind(std::string_view s, std::string_view needle);  // the last occurrence

// str.split(): on runs of whitespace when sep is empty (sep_given false).
std::vector<std::string> split(std::string_view s, bool sep_given, std::string_view sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, bool sep_given, std::string_view sep, int64_t maxsplit);
// str.replace(old, new, count); count < 0 means all.
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count, size_t limit);

}  // namespace warden::chat::jinja::text
