#pragma once
// A context-free grammar over bytes, in the form the matcher runs directly.
//
// Rules are alternatives of sequences; a sequence element is either a byte
// set (one input byte from the set) or a reference to another rule. The
// builder validates the grammar before anything can run it:
//   - alternatives that can never derive a finite string are dropped, and a
//     grammar whose root derives nothing is an error (so every state the
//     matcher can reach can still be completed: no dead ends);
//   - left recursion is an error (so expanding a rule always terminates);
//   - size limits bound memory whatever schema a client sends.
// It also records, per rule, the shortest string it derives, which gives the
// matcher a forced completion from any state.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace warden::grammar {

// 256-bit set of byte values.
struct ByteSet {
  std::array<uint64_t, 4> words{};

  static ByteSet of(uint8_t b) { ByteSet s; s.add(b); return s; }
  static ByteSet range(uint8_t lo, uint8_t hi) { ByteSet s; s.add_range(lo, hi); return s; }
  void add(uint8_t b) { words[b >> 6] |= uint64_t(1) << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) { for (unsigned b = lo; b <= hi; ++b) add(uint8_t(b)); }
  void remove(uint8_t b) { words[b >> 6] &= ~(uint64_t(1) << (b & 63)); }
  bool has(uint8_t b) const { return (words[b >> 6] >> (b & 63)) & 1; }
  bool empty() const { return !(words[0] | words[1] | words[2] | words[3]); }
  int first() const;  // lowest member, -1 when empty
  ByteSet& operator|=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) words[i] |= o.words[i];
    return *this;
  }
  bool operator==(const ByteSet& o) const { return words == o.words; }
};

// One element of the flattened grammar.
struct Element {
  enum Kind : uint8_t { kEnd, kBytes, kRule };
  Kind kind = kEnd;
  uint32_t value = 0;  // byte-set index for kBytes, rule id for kRule
};

class Grammar {
 public:
  const std::vector<Element>& elements() const { return elements_; }
  const Element& element(uint32_t pos) const { return elements_[pos]; }
  const ByteSet& byte_set(uint32_t id) const { return byte_sets_[id]; }
  // Start positions (into elements()) of each alternative of `rule`.
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return rules_[rule].alts; }
  const std::string& rule_name(uint32_t rule) const { return rules_[rule].name; }
  size_t rule_count() const { return rules_.size(); }
  uint32_t root() const { return root_; }

  // Shortest byte string derivable from `rule`, and from the sequence that
  // starts at element position `pos` up to its end.
  std::string shortest(uint32_t rule) const;
  void append_shortest_from(uint32_t pos, std::string& out) const;
  uint64_t shortest_length_from(uint32_t pos) const;

  // Bytes that can start a non-empty string derived from the sequence at
  // `pos` (up to its end), and whether that sequence can derive "".
  const ByteSet& first_from(uint32_t pos) const { return first_sets_[first_from_[pos]]; }
  bool nullable_from(uint32_t pos) const { return nullable_from_[pos] != 0; }

  // Human-readable GBNF-like listing (for debugging and error reports).
  std::string to_string() const;

 private:
  friend class GrammarBuilder;
  struct Rule {
    std::string name;
    std::vector<uint32_t> alts;
    uint64_t min_length = 0;
    uint32_t min_alt = 0;  // index into alts of a shortest alternative
  };
  std::vector<Element> elements_;
  std::vector<ByteSet> byte_sets_;
  std::vector<Rule> rules_;
  uint32_t root_ = 0;
  std::vector<ByteSet> first_sets_;     // deduplicated
  std::vector<uint32_t> first_from_;    // per element position
  std::vector<uint8_t> nullable_from_;  // per element position

  void compute_first_sets();
};

// Builds and validates a Grammar. Throws warden::Error on an invalid grammar.
class GrammarBuilder {
 public:
  struct Symbol {
    bool is_rule = false;
    uint32_t id = 0;  // rule id, or byte-set id
  };
  using Sequence = std::vector<Symbol>;

  // Limits that bound the compiled size (the schema decides the size).
  static constexpr size_t kMaxElements = 2'000'000;
  static constexpr size_t kMaxRules = 500'000;

  uint32_t new_rule(std::string name);
  void add_alternative(uint32_t rule, Sequence seq);
  size_t rule_count() const { return rules_.size(); }

  Symbol bytes(const ByteSet& set);
  Symbol byte(uint8_t b) { return bytes(ByteSet::of(b)); }
  static Symbol ref(uint32_t rule) { return Symbol{true, rule}; }
  Sequence literal(std::string_view text);
  // Convenience: a new rule with the given alternatives.
  uint32_t rule(std::string name, std::vector<Sequence> alts);

  Grammar build(uint32_t root) &&;

 private:
  struct PendingRule {
    std::string name;
    std::vector<Sequence> alts;
  };
  void check_size() const;
  std::vector<PendingRule> rules_;
  std::vector<ByteSet> byte_sets_;
  std::map<std::array<uint64_t, 4>, uint32_t> byte_set_ids_;
  size_t symbol_count_ = 0;
};

}  // namespace warden::grammar
