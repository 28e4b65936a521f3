#include "grammar/grammar.h"

#include <algorithm>
#include <limits>
#include <queue>

#include "util/error.h"

namespace warden::grammar {

namespace {
constexpr uint64_t kInfinite = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kLengthCap = uint64_t(1) << 60;  // saturate, never overflow

uint64_t add_capped(uint64_t a, uint64_t b) { return std::min(kLengthCap, a + b); }
}  // namespace

int ByteSet::first() const {
  for (int w = 0; w < 4; ++w)
    if (words[w]) return w * 64 + __builtin_ctzll(words[w]);
  return -1;
}

// ---------------------------------------------------------------- builder

uint32_t GrammarBuilder::new_rule(std::string name) {
  rules_.push_back(PendingRule{std::move(name), {}});
  check_size();
  return uint32_t(rules_.size() - 1);
}

void GrammarBuilder::add_alternative(uint32_t rule, Sequence seq) {
  symbol_count_ += seq.size() + 1;
  check_size();
  rules_.at(rule).alts.push_back(std::move(seq));
}

void GrammarBuilder::check_size() const {
  if (rules_.size() > kMaxRules || symbol_count_ > kMaxElements)
    throw Error("grammar: too large (over " + std::to_string(kMaxRules) + " rules or " +
                std::to_string(kMaxElements) + " elements); the schema asks for too much");
}

GrammarBuilder::Symbol GrammarBuilder::bytes(const ByteSet& set) {
  auto it = byte_set_ids_.find(set.words);
  if (it != byte_set_ids_.end()) return Symbol{false, it->second};
  uint32_t id = uint32_t(byte_sets_.size());
  byte_sets_.push_back(set);
  byte_set_ids_.emplace(set.words, id);
  return Symbol{false, id};
}

GrammarBuilder::Sequence GrammarBuilder::literal(std::string_view text) {
  Sequence seq;
  seq.reserve(text.size());
  for (char c : text) seq.push_back(byte(uint8_t(c)));
  return seq;
}

uint32_t GrammarBuilder::rule(std::string name, std::vector<Sequence> alts) {
  uint32_t id = new_rule(std::move(name));
  for (auto& a : alts) add_alternative(id, std::move(a));
  return id;
}

namespace {

// Knuth's generalisation of Dijkstra: the shortest derivable length of every
// rule, in time linear in the grammar size (times a log). A rule that never
// gets a length derives no finite string (it is unproductive).
struct ShortestLengths {
  std::vector<uint64_t> rule_length;  // kInfinite when unproductive
  std::vector<uint32_t> rule_best_alt;
};

ShortestLengths compute_shortest(const std::vector<std::vector<GrammarBuilder::Sequence>>& alts_of,
                                 const std::vector<ByteSet>& sets) {
  size_t n = alts_of.size();
  struct AltState {
    uint32_t rule, alt;
    uint64_t sum = 0;
    uint32_t pending = 0;  // rule references not yet resolved
    bool dead = false;     // contains an empty byte set
  };
  std::vector<AltState> alts;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> users(n);  // rule -> (alt state, count)
  using Entry = std::tuple<uint64_t, uint32_t, uint32_t>;            // length, rule, alt
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  for (uint32_t r = 0; r < n; ++r) {
    for (uint32_t a = 0; a < alts_of[r].size(); ++a) {
      AltState st{r, a};
      for (const auto& sym : alts_of[r][a]) {
        if (sym.is_rule) {
          ++st.pending;
        } else {
          if (sets[sym.id].empty()) st.dead = true;
          st.sum = add_capped(st.sum, 1);
        }
      }
      uint32_t idx = uint32_t(alts.size());
      alts.push_back(st);
      if (st.dead) continue;
      if (st.pending == 0) {
        queue.emplace(st.sum, r, a);
      } else {
        for (const auto& sym : alts_of[r][a])
          if (sym.is_rule) users[sym.id].emplace_back(idx, 1);
      }
    }
  }
  ShortestLengths out{std::vector<uint64_t>(n, kInfinite), std::vector<uint32_t>(n, 0)};
  while (!queue.empty()) {
    auto [len, r, a] = queue.top();
    queue.pop();
    if (out.rule_length[r] != kInfinite) continue;
    out.rule_length[r] = len;
    out.rule_best_alt[r] = a;
    for (auto [idx, count] : users[r]) {
      AltState& st = alts[idx];
      st.sum = add_capped(st.sum, len);
      if (--st.pending == 0) queue.emplace(st.sum, st.rule, st.alt);
    }
  }
  return out;
}

}  // namespace

Grammar GrammarBuilder::build(uint32_t root) && {
  if (root >= rules_.size()) throw Error("grammar: root rule does not exist");
  size_t n = rules_.size();
  std::vector<std::vector<Sequence>> alts_of(n);
  for (size_t r = 0; r < n; ++r) alts_of[r] = std::move(rules_[r].alts);

  // 1. Drop alternatives that cannot derive a finite string.
  ShortestLengths lengths = compute_shortest(alts_of, byte_sets_);
  if (lengths.rule_length[root] == kInfinite)
    throw Error("grammar: rule '" + rules_[root].name + "' admits no value");
  std::vector<std::vector<uint32_t>> kept_index(n);  // original alt index of each kept alt
  for (size_t r = 0; r < n; ++r) {
    std::vector<Sequence> kept;
    for (uint32_t a = 0; a < alts_of[r].size(); ++a) {
      bool ok = true;
      for (const auto& sym : alts_of[r][a]) {
        if (sym.is_rule ? lengths.rule_length[sym.id] == kInfinite : byte_sets_[sym.id].empty()) {
          ok = false;
          break;
        }
      }
      if (ok) {
        kept_index[r].push_back(a);
        kept.push_back(std::move(alts_of[r][a]));
      }
    }
    alts_of[r] = std::move(kept);
  }

  // 2. Reject left recursion: expanding a rule must always terminate.
  std::vector<bool> nullable(n);
  for (size_t r = 0; r < n; ++r) nullable[r] = lengths.rule_length[r] == 0;
  std::vector<std::vector<uint32_t>> left_edges(n);
  for (size_t r = 0; r < n; ++r) {
    for (const auto& seq : alts_of[r]) {
      for (const auto& sym : seq) {
        if (!sym.is_rule) break;
        left_edges[r].push_back(sym.id);
        if (!nullable[sym.id]) break;
      }
    }
  }
  {
    std::vector<uint8_t> color(n, 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::pair<uint32_t, size_t>> stack;
    for (uint32_t start = 0; start < n; ++start) {
      if (color[start]) continue;
      stack.emplace_back(start, 0);
      color[start] = 1;
      while (!stack.empty()) {
        auto& [r, i] = stack.back();
        if (i < left_edges[r].size()) {
          uint32_t next = left_edges[r][i++];
          if (color[next] == 1)
            throw Error("grammar: rule '" + rules_[next].name +
                        "' is left-recursive (a $ref cycle that consumes no input?)");
          if (color[next] == 0) {
            color[next] = 1;
            stack.emplace_back(next, 0);
          }
        } else {
          color[r] = 2;
          stack.pop_back();
        }
      }
    }
  }

  // 3. Flatten.
  Grammar g;
  g.byte_sets_ = std::move(byte_sets_);
  g.root_ = root;
  g.rules_.resize(n);
  for (size_t r = 0; r < n; ++r) {
    Grammar::Rule& out = g.rules_[r];
    out.name = std::move(rules_[r].name);
    out.min_length = lengths.rule_length[r];
    for (size_t a = 0; a < alts_of[r].size(); ++a) {
      if (kept_index[r][a] == lengths.rule_best_alt[r]) out.min_alt = uint32_t(a);
      out.alts.push_back(uint32_t(g.elements_.size()));
      for (const auto& sym : alts_of[r][a])
        g.elements_.push_back(Element{sym.is_rule ? Element::kRule : Element::kBytes, sym.id});
      g.elements_.push_back(Element{Element::kEnd, 0});
    }
  }
  g.compute_first_sets();
  return g;
}

// FIRST sets (bytes that can begin a non-empty derivation) per rule by
// fixpoint, then per element position by one backward pass over each
// alternative. The matcher uses them to expand only the alternatives that
// can take the next byte.
void Grammar::compute_first_sets() {
  size_t n = rules_.size();
  std::vector<ByteSet> rule_first(n);
  auto nullable_rule = [&](uint32_t r) { return rules_[r].min_length == 0; };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = n; r-- > 0;) {
      ByteSet acc = rule_first[r];
      for (uint32_t alt : rules_[r].alts) {
        for (uint32_t p = alt; elements_[p].kind != Element::kEnd; ++p) {
          const Element& e = elements_[p];
          if (e.kind == Element::kBytes) {
            acc |= byte_sets_[e.value];
            break;
          }
          acc |= rule_first[e.value];
          if (!nullable_rule(e.value)) break;
        }
      }
      if (!(acc == rule_first[r])) {
        rule_first[r] = acc;
        changed = true;
      }
    }
  }
  std::map<std::array<uint64_t, 4>, uint32_t> ids;
  auto intern = [&](const ByteSet& s) {
    auto [it, inserted] = ids.emplace(s.words, uint32_t(first_sets_.size()));
    if (inserted) first_sets_.push_back(s);
    return it->second;
  };
  first_from_.assign(elements_.size(), 0);
  nullable_from_.assign(elements_.size(), 0);
  ByteSet acc;
  bool nullable = true;
  for (size_t p = elements_.size(); p-- > 0;) {
    const Element& e = elements_[p];
    if (e.kind == Element::kEnd) {
      acc = ByteSet{};
      nullable = true;
    } else if (e.kind == Element::kBytes) {
      acc = byte_sets_[e.value];
      nullable = false;
    } else {
      ByteSet here = rule_first[e.value];
      if (nullable_rule(e.value)) {
        here |= acc;
      } else {
        nullable = false;
      }
      acc = here;
    }
    first_from_[p] = intern(acc);
    nullable_from_[p] = nullable ? 1 : 0;
  }
}

// ---------------------------------------------------------------- grammar

uint64_t Grammar::shortest_length_from(uint32_t pos) const {
  uint64_t len = 0;
  for (; elements_[pos].kind != Element::kEnd; ++pos) {
    const Element& e = elements_[pos];
    len = add_capped(len, e.kind == Element::kBytes ? 1 : rules_[e.value].min_length);
  }
  return len;
}

void Grammar::append_shortest_from(uint32_t pos, std::string& out) const {
  // Explicit stack: derivations can be deep (long repetition chains).
  std::vector<uint32_t> stack{pos};
  while (!stack.empty()) {
    uint32_t p = stack.back();
    const Element& e = elements_[p];
    if (e.kind == Element::kEnd) {
      stack.pop_back();
      continue;
    }
    stack.back() = p + 1;
    if (e.kind == Element::kBytes) {
      out.push_back(char(byte_sets_[e.value].first()));
    } else {
      const Rule& r = rules_[e.value];
      stack.push_back(r.alts[r.min_alt]);
    }
  }
}

std::string Grammar::shortest(uint32_t rule) const {
  std::string out;
  const Rule& r = rules_.at(rule);
  append_shortest_from(r.alts[r.min_alt], out);
  return out;
}

namespace {
std::string describe_set(const ByteSet& s) {
  auto show = [](unsigned b) {
    static const char* hex = "0123456789abcdef";
    if (b >= 0x21 && b < 0x7f && b != '\\' && b != ']' && b != '-' && b != '"')
      return std::string(1, char(b));
    return std::string("\\x") + hex[b >> 4] + hex[b & 15];
  };
  std::string out = "[";
  for (unsigned b = 0; b < 256;) {
    if (!s.has(uint8_t(b))) { ++b; continue; }
    unsigned e = b;
    while (e + 1 < 256 && s.has(uint8_t(e + 1))) ++e;
    out += show(b);
    if (e > b) out.append("-").append(show(e));  // piecewise: GCC 12 warns falsely (-Wrestrict) on "-" + string
    b = e + 1;
  }
  return out + "]";
}
}  // namespace

std::string Grammar::to_string() const {
  std::string out;
  for (size_t r = 0; r < rules_.size(); ++r) {
    out += rules_[r].name + "#" + std::to_string(r) + " ::=";
    for (size_t a = 0; a < rules_[r].alts.size(); ++a) {
      if (a) out += " |";
      for (uint32_t p = rules_[r].alts[a]; elements_[p].kind != Element::kEnd; ++p) {
        const Element& e = elements_[p];
        out += " ";
        if (e.kind == Element::kBytes)
          out += describe_set(byte_sets_[e.value]);
        else
          out += rules_[e.value].name + "#" + std::to_string(e.value);
      }
      if (elements_[rules_[r].alts[a]].kind == Element::kEnd) out += " \"\"";
    }
    out += "\n";
  }
  return out;
}

}  // namespace warden::grammar
