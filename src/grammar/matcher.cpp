#include "grammar/matcher.h"

#include <algorithm>

#include "util/error.h"

namespace warden::grammar {

size_t TokenMask::count() const {
  size_t n = 0;
  for (uint64_t w : words_) n += size_t(__builtin_popcountll(w));
  return n;
}

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocab)
    : Matcher(std::move(grammar), std::move(vocab), Options{}) {}

Matcher::Matcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocab,
                 Options options)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), options_(options) {
  if (!grammar_ || !vocab_) throw Error("grammar matcher: needs a grammar and a vocabulary");
  levels_.resize(vocab_->max_token_bytes() + 2);
  reset();
}

void Matcher::reset() {
  finished_ = false;
  text_.clear();
  std::vector<uint32_t> start;
  for (uint32_t alt : grammar_->alternatives(grammar_->root()))
    push_continuation(alt, kNil, start);
  check_stack_count(start);
  commit(start);
}

uint32_t Matcher::new_node(uint32_t pos, uint32_t parent) {
  uint64_t key = (uint64_t(pos) << 32) | parent;
  auto [it, inserted] = node_ids_.try_emplace(key, uint32_t(nodes_.size()));
  if (inserted) nodes_.push_back(Node{pos, parent});
  return it->second;
}

uint32_t Matcher::memo_index(uint32_t node) {
  if (memo_of_node_.size() <= node) memo_of_node_.resize(nodes_.size(), kUnset);
  if (memo_of_node_[node] == kUnset) {
    NodeMemo memo;
    stack_first(node, memo.first);
    memo_of_node_[node] = uint32_t(memos_.size());
    memos_.push_back(memo);
  }
  return memo_of_node_[node];
}

Matcher::Transition Matcher::transition(uint32_t node, uint8_t byte) {
  uint32_t m = memo_index(node);
  Transition t = memos_[m].next[byte];
  if (t.count != kUnset) return t;
  scratch_.clear();
  step_stack(node, byte, scratch_);
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  t.offset = uint32_t(results_.size());
  t.count = uint32_t(scratch_.size());
  results_.insert(results_.end(), scratch_.begin(), scratch_.end());
  memos_[m].next[byte] = t;
  return t;
}

void Matcher::clear_memo() {
  nodes_.clear();
  node_ids_.clear();
  memo_of_node_.clear();
  memos_.clear();
  results_.clear();
}

// Stacks are kept lazy: the top may be a byte set or a rule reference, and
// a rule is expanded only when the next byte is known, into just the
// alternatives that can take that byte (their FIRST sets). Inside a JSON
// string that means one alternative out of eleven per character.

// Pushes the stack "continue at `pos` (may be the end of a sequence), then
// `parent`", popping finished sequences.
void Matcher::push_continuation(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out) {
  if (grammar_->element(pos).kind != Element::kEnd)
    out.push_back(new_node(pos, parent));
  else
    out.push_back(parent);  // parent's position is never an end (or kNil: complete)
}

// Consumes `byte` at element `pos` on top of `parent`; pushes the results.
// Terminates because the grammar has no left recursion.
void Matcher::step(uint32_t pos, uint32_t parent, uint8_t byte, std::vector<uint32_t>& out) {
  const Element& e = grammar_->element(pos);
  if (e.kind == Element::kEnd) {
    step_stack(parent, byte, out);
    return;
  }
  if (e.kind == Element::kBytes) {
    if (grammar_->byte_set(e.value).has(byte)) push_continuation(pos + 1, parent, out);
    return;
  }
  // A rule: its alternatives run on top of the continuation after it. When
  // nothing follows in this sequence, return straight to the parent (tail
  // call), so right recursion (repetition) does not grow the stack.
  uint32_t ret = kNil;
  bool have_ret = false;
  for (uint32_t alt : grammar_->alternatives(e.value)) {
    if (!grammar_->first_from(alt).has(byte) && !grammar_->nullable_from(alt)) continue;
    if (!have_ret) {
      ret = grammar_->element(pos + 1).kind == Element::kEnd ? parent : new_node(pos + 1, parent);
      have_ret = true;
    }
    step(alt, ret, byte, out);
  }
}

void Matcher::step_stack(uint32_t stack, uint8_t byte, std::vector<uint32_t>& out) {
  if (stack == kNil) return;
  const Node n = nodes_[stack];
  step(n.pos, n.parent, byte, out);
}

// Bytes the stack can take next; returns whether it can also end here.
bool Matcher::stack_first(uint32_t stack, ByteSet& acc) const {
  for (uint32_t n = stack; n != kNil; n = nodes_[n].parent) {
    acc |= grammar_->first_from(nodes_[n].pos);
    if (!grammar_->nullable_from(nodes_[n].pos)) return false;
  }
  return true;
}

void Matcher::check_stack_count(const std::vector<uint32_t>& set) const {
  if (set.size() > options_.max_stacks)
    throw Error("grammar: too ambiguous (over " + std::to_string(options_.max_stacks) +
                " parses alive at once); simplify the schema");
}

bool Matcher::advance_set(std::string_view bytes, std::vector<uint32_t>& result) {
  std::vector<uint32_t> cur = stacks_, next;
  for (char c : bytes) {
    next.clear();
    for (uint32_t s : cur) step_stack(s, uint8_t(c), next);
    check_stack_count(next);
    if (next.empty()) return false;
    cur.swap(next);
  }
  result = std::move(cur);
  return true;
}

// Makes `stacks` the current state: removes duplicate parses (the same
// stack reached two ways), computes the cache signature, and rebuilds the
// arena and memo from just these stacks when they have grown too big.
void Matcher::commit(const std::vector<uint32_t>& stacks) {
  std::vector<std::vector<uint32_t>> serialized;
  serialized.reserve(stacks.size());
  for (uint32_t s : stacks) {
    std::vector<uint32_t> positions;
    for (uint32_t n = s; n != kNil; n = nodes_[n].parent) positions.push_back(nodes_[n].pos);
    serialized.push_back(std::move(positions));
  }
  std::sort(serialized.begin(), serialized.end());
  serialized.erase(std::unique(serialized.begin(), serialized.end()), serialized.end());

  if (nodes_.size() > kMaxNodes || memos_.size() > kMaxMemos) clear_memo();
  stacks_.clear();
  signature_.clear();
  for (const auto& positions : serialized) {
    uint32_t below = kNil;
    for (auto it = positions.rbegin(); it != positions.rend(); ++it) below = new_node(*it, below);
    stacks_.push_back(below);
    signature_.insert(signature_.end(), positions.begin(), positions.end());
    signature_.push_back(kNil);
  }
}

bool Matcher::accept_token(int32_t id) {
  if (finished_ || id < 0 || size_t(id) >= vocab_->size()) return false;
  if (vocab_->is_end(id)) {
    if (!is_complete()) return false;
    finished_ = true;
    return true;
  }
  if (!vocab_->is_text(id) || vocab_->bytes(id).empty()) return false;
  return accept_bytes(vocab_->bytes(id));
}

bool Matcher::is_allowed(int32_t id) {
  if (finished_ || id < 0 || size_t(id) >= vocab_->size()) return false;
  if (vocab_->is_end(id)) return is_complete();
  if (!vocab_->is_text(id) || vocab_->bytes(id).empty()) return false;
  std::vector<uint32_t> ignored;
  return advance_set(vocab_->bytes(id), ignored);
}

bool Matcher::accept_bytes(std::string_view bytes) {
  if (finished_) return false;
  std::vector<uint32_t> result;
  if (!advance_set(bytes, result)) return false;
  commit(result);
  text_.append(bytes);
  return true;
}

bool Matcher::is_complete() const {
  if (finished_) return false;
  for (uint32_t s : stacks_) {
    ByteSet ignored;
    if (stack_first(s, ignored)) return true;
  }
  return false;
}

bool Matcher::can_continue() const {
  if (finished_) return false;
  ByteSet next;
  for (uint32_t s : stacks_) stack_first(s, next);
  return !next.empty();
}

std::string Matcher::shortest_completion(size_t max_bytes) const {
  uint64_t best_len = UINT64_MAX;
  uint32_t best = kNil;
  for (uint32_t s : stacks_) {
    uint64_t len = 0;
    for (uint32_t n = s; n != kNil; n = nodes_[n].parent)
      len = std::min(len + grammar_->shortest_length_from(nodes_[n].pos), uint64_t(1) << 62);
    if (len < best_len) {
      best_len = len;
      best = s;
    }
  }
  if (best_len > max_bytes)
    throw Error("grammar: the shortest completion is " + std::to_string(best_len) + " bytes (limit " +
                std::to_string(max_bytes) + ")");
  std::string out;
  for (uint32_t n = best; n != kNil; n = nodes_[n].parent)
    grammar_->append_shortest_from(nodes_[n].pos, out);
  return out;
}

void Matcher::fill_mask(TokenMask& mask) {
  if (mask.size() != vocab_->size())
    mask.resize(vocab_->size());
  else
    mask.clear();
  if (finished_) return;
  if (options_.mask_cache_entries == 0) {
    compute_mask(mask);
    return;
  }
  ++clock_;
  auto it = cache_.find(signature_);
  if (it != cache_.end()) {
    it->second.last_used = clock_;
    mask.words() = it->second.words;
    return;
  }
  compute_mask(mask);
  if (cache_.size() >= options_.mask_cache_entries) {
    auto oldest = cache_.begin();
    for (auto c = cache_.begin(); c != cache_.end(); ++c)
      if (c->second.last_used < oldest->second.last_used) oldest = c;
    cache_.erase(oldest);
  }
  cache_.emplace(signature_, CacheEntry{mask.words(), clock_});
}

void Matcher::compute_mask(TokenMask& mask) {
  levels_[0] = stacks_;
  walk_trie(0, 0, mask);
  if (is_complete())
    for (int32_t id : vocab_->end_ids()) mask.set(id);
}

// Depth-first over the trie: `levels_[depth]` holds the stacks after the
// bytes on the path to `trie_node`; children whose byte no stack accepts are
// skipped, so only prefixes of allowed tokens are ever visited.
void Matcher::walk_trie(uint32_t trie_node, size_t depth, TokenMask& mask) {
  const std::vector<uint32_t>& cur = levels_[depth];
  ByteSet allowed;
  for (uint32_t s : cur)
    if (s != kNil) allowed |= memos_[memo_index(s)].first;
  if (allowed.empty()) return;

  const auto& trie = vocab_->trie_nodes();
  const auto& edges = vocab_->trie_edges();
  const auto& token_ids = vocab_->trie_token_ids();
  const Vocabulary::TrieNode node = trie[trie_node];
  std::vector<uint32_t>& next = levels_[depth + 1];
  for (uint32_t e = node.first_edge; e < node.first_edge + node.edge_count; ++e) {
    const uint8_t byte = edges[e].byte;
    if (!allowed.has(byte)) continue;
    next.clear();
    for (uint32_t s : cur) {
      if (s == kNil) continue;
      Transition t = transition(s, byte);
      next.insert(next.end(), results_.begin() + t.offset, results_.begin() + t.offset + t.count);
    }
    if (cur.size() > 1 && next.size() > 1) {
      std::sort(next.begin(), next.end());
      next.erase(std::unique(next.begin(), next.end()), next.end());
    }
    check_stack_count(next);
    if (next.empty()) continue;
    const Vocabulary::TrieNode& child = trie[edges[e].child];
    for (uint32_t t = child.first_token; t < child.first_token + child.token_count; ++t)
      mask.set(token_ids[t]);
    if (child.edge_count) walk_trie(edges[e].child, depth + 1, mask);
  }
}

}  // namespace warden::grammar
