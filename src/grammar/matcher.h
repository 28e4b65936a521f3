#pragma once
// Runs a Grammar over a token stream: accepts tokens, computes the mask of
// token ids allowed next, and says when the value is complete.
//
// State: a set of parse stacks (a pushdown automaton over bytes). Each stack
// is a linked list in an arena, hash-consed so that equal stacks have the
// same id; advancing by a byte is O(1) per stack and stacks share tails.
// The mask is computed by walking the vocabulary's byte trie once, carrying
// the set of stacks along and pruning every branch where the set becomes
// empty. Because ids are canonical, each (stack, byte) transition is
// computed once and memoized: inside a JSON string the walk then costs a
// table lookup per trie node. Whole masks are also cached by the stack set,
// which repeats constantly inside strings and between properties.
//
// Guarantees (given a byte-complete vocabulary, e.g. byte-level BPE or byte
// fallback tokens): the mask is never empty before the value is complete,
// because the builder removed every alternative that cannot be finished;
// shortest_completion() gives the bytes that finish the value from any state.
//
// fill_mask/accept_* throw warden::Error only when a grammar is so ambiguous
// that more than Options::max_stacks parses stay alive (fail closed: stop
// generating). Not thread-safe; one Matcher per sequence, sharing Grammar
// and Vocabulary.
#include <array>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/vocab.h"

namespace warden::grammar {

// One bit per token id.
class TokenMask {
 public:
  TokenMask() = default;
  explicit TokenMask(size_t tokens) { resize(tokens); }
  void resize(size_t tokens) { size_ = tokens; words_.assign((tokens + 63) / 64, 0); }
  void clear() { std::fill(words_.begin(), words_.end(), 0); }
  void set(int32_t id) { words_[size_t(id) >> 6] |= uint64_t(1) << (id & 63); }
  bool test(int32_t id) const { return (words_[size_t(id) >> 6] >> (id & 63)) & 1; }
  size_t size() const { return size_; }
  size_t count() const;
  const std::vector<uint64_t>& words() const { return words_; }
  std::vector<uint64_t>& words() { return words_; }

 private:
  size_t size_ = 0;
  std::vector<uint64_t> words_;
};

class Matcher {
 public:
  struct Options {
    size_t mask_cache_entries = 64;  // 0 disables the cache
    size_t max_stacks = 4096;        // more live parses than this: error
  };

  Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocab);
  Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocab,
          Options options);

  // Back to the start of the grammar.
  void reset();

  // Accepts one token. Returns false (state unchanged) when the grammar does
  // not allow it. An end token is accepted only when the value is complete,
  // and finishes the matcher.
  bool accept_token(int32_t id);
  // Accepts raw bytes (e.g. a forced completion, or a prompt prefix).
  bool accept_bytes(std::string_view bytes);
  // Whether accept_token(id) would succeed, without changing the state. Much
  // cheaper than a mask: a decode loop can sample from the raw logits first
  // and compute the mask only when the sampled token is not allowed;
  // resampling from the masked logits then gives exactly the masked
  // distribution.
  bool is_allowed(int32_t id);

  // Writes the allowed token ids into `mask` (resized to the vocabulary).
  void fill_mask(TokenMask& mask);
  TokenMask mask() {
    TokenMask m;
    fill_mask(m);
    return m;
  }

  bool is_complete() const;    // the value is complete: end tokens allowed
  bool can_continue() const;   // some more bytes are allowed
  bool is_finished() const { return finished_; }  // an end token was accepted
  // The shortest bytes that complete the value from here ("" if complete).
  // Throws warden::Error when even the shortest is over `max_bytes` (a
  // schema can demand huge minimum sizes).
  std::string shortest_completion(size_t max_bytes = size_t(1) << 20) const;
  // The bytes accepted so far (since reset).
  const std::string& text() const { return text_; }

  const Grammar& grammar() const { return *grammar_; }
  const Vocabulary& vocabulary() const { return *vocab_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;  // the empty stack: complete
  struct Node {
    uint32_t pos;     // element position: the next thing to match / resume at
    uint32_t parent;  // the stack below, or kNil
  };

  uint32_t new_node(uint32_t pos, uint32_t parent);
  void push_continuation(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out);
  void step(uint32_t pos, uint32_t parent, uint8_t byte, std::vector<uint32_t>& out);
  void step_stack(uint32_t stack, uint8_t byte, std::vector<uint32_t>& out);
  bool stack_first(uint32_t stack, ByteSet& acc) const;
  void check_stack_count(const std::vector<uint32_t>& set) const;
  bool advance_set(std::string_view bytes, std::vector<uint32_t>& result);
  void commit(const std::vector<uint32_t>& stacks);
  void walk_trie(uint32_t trie_node, size_t depth, TokenMask& mask);
  void compute_mask(TokenMask& mask);

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const Vocabulary> vocab_;
  Options options_;

  // Memo of one stack's transitions: the stacks after each byte (a range of
  // results_), and the bytes it can take at all.
  static constexpr uint32_t kUnset = UINT32_MAX;
  struct Transition {
    uint32_t offset = 0;
    uint32_t count = kUnset;
  };
  struct NodeMemo {
    ByteSet first;
    std::array<Transition, 256> next;
  };
  // Bounds on the memo; past them it is rebuilt from the current stacks.
  static constexpr size_t kMaxNodes = size_t(1) << 19;
  static constexpr size_t kMaxMemos = 2048;
  uint32_t memo_index(uint32_t node);
  Transition transition(uint32_t node, uint8_t byte);
  void clear_memo();

  std::vector<Node> nodes_;        // arena of hash-consed stack nodes
  std::unordered_map<uint64_t, uint32_t> node_ids_;  // (pos, parent) -> node
  std::vector<uint32_t> memo_of_node_;  // index into memos_, or kUnset
  std::vector<NodeMemo> memos_;
  std::vector<uint32_t> results_;
  std::vector<uint32_t> scratch_;
  std::vector<uint32_t> stacks_;   // current set (lazy: tops are byte sets or rules; kNil = done)
  std::vector<uint32_t> signature_;  // canonical form of stacks_, the cache key
  bool finished_ = false;
  std::string text_;

  std::vector<std::vector<uint32_t>> levels_;  // per trie depth, for the walk
  struct CacheEntry {
    std::vector<uint64_t> words;
    uint64_t last_used = 0;
  };
  std::map<std::vector<uint32_t>, CacheEntry> cache_;
  uint64_t clock_ = 0;
};

}  // namespace warden::grammar
