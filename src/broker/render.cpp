#include "broker/render.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "util/display.h"

namespace warden::broker {
namespace {

using display::Style;
using display::render_unit;

// Renders text[from, end) unit by unit into `out` while it stays within
// `budget` output bytes; returns the input offset where it stopped.
size_t render_head(std::string_view text, size_t from, size_t budget, const Style& style, std::string& out) {
  std::string unit;
  size_t i = from;
  while (i < text.size()) {
    unit.clear();
    size_t n = render_unit(text, i, style, unit);
    if (out.size() + unit.size() > budget) break;
    out += unit;
    i += n;
  }
  return i;
}

// The last whole units of text[from, end) that fit in `budget` output bytes;
// `start` gets the input offset where they begin. A unit's display form is
// never shorter than its input, so the last `budget` input bytes suffice.
std::string render_tail(std::string_view text, size_t from, size_t budget, const Style& style, size_t& start) {
  size_t s = std::max(from, text.size() - std::min(budget, text.size()));
  for (int k = 0; k < 3 && s > from && s < text.size() && (text[s] & 0xc0) == 0x80; ++k) ++s;  // a char's start
  std::vector<std::pair<size_t, size_t>> units;  // (input offset, output offset)
  std::string out;
  for (size_t i = s; i < text.size();) {
    units.emplace_back(i, out.size());
    i += render_unit(text, i, style, out);
  }
  size_t k = 0;
  while (k < units.size() && out.size() - units[k].second > budget) ++k;
  start = k < units.size() ? units[k].first : text.size();
  return k < units.size() ? out.substr(units[k].second) : std::string();
}

void append_line(std::string& out, std::string_view gutter, std::string_view text) {
  out.append(gutter);
  out.append(text);
  out.push_back('\n');
}

}  // namespace

std::string neutralize(std::string_view text, bool keep_newlines) { return display::render(text, Style{keep_newlines, false}); }

std::string neutralize_ascii(std::string_view text) { return display::render(text, Style{false, true}); }

bool has_non_ascii(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

CappedText neutralize_capped(std::string_view text, size_t head_bytes, size_t tail_bytes, bool ascii_only) {
  const Style style{false, ascii_only};
  CappedText r;
  size_t cut = render_head(text, 0, head_bytes + tail_bytes, style, r.text);
  if (cut == text.size()) return r;  // all of it fits
  r.text.clear();
  cut = render_head(text, 0, head_bytes, style, r.text);
  size_t tail_start = text.size();
  std::string tail = tail_bytes ? render_tail(text, cut, tail_bytes, style, tail_start) : std::string();
  r.hidden_bytes = tail_start - cut;
  r.text += " ...(" + std::to_string(r.hidden_bytes) + " more bytes)";
  if (!tail.empty()) r.text += "... " + tail;
  return r;
}

std::string quote_block(std::string_view text, std::string_view gutter) {
  std::string safe = neutralize(text, true);
  if (!safe.empty() && safe.back() == '\n') safe.pop_back();  // the block ends the line itself
  std::string out(gutter);
  for (char c : safe) {
    out += c;
    if (c == '\n') out += gutter;
  }
  return out + "\n";
}

std::string quote_excerpt(std::string_view text, const ExcerptLimits& limits, std::string_view where_to_see_all,
                          std::string_view gutter) {
  std::string_view body = text;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);  // as quote_block: no empty last line
  const size_t lines = size_t(std::count(body.begin(), body.end(), '\n')) + 1;
  const bool cut = lines > limits.head_lines + limits.tail_lines;
  const size_t tail_from = lines - limits.tail_lines;  // first line of the tail, when cut
  std::string out;
  size_t pos = 0;
  for (size_t k = 0; k < lines; ++k) {
    size_t end = std::min(body.find('\n', pos), body.size());
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (!cut || k < limits.head_lines || k >= tail_from) {
      append_line(out, gutter, neutralize_capped(line, limits.line_bytes, 0, false).text);
    } else if (k == limits.head_lines) {
      out += "... " + std::to_string(tail_from - limits.head_lines) + " lines not shown; ";
      out.append(where_to_see_all);
      out += " ...\n";
    }
  }
  return out;
}

}  // namespace warden::broker
