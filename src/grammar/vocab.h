#pragma once
// The vocabulary as the grammar sees it: the exact bytes each token id stands
// for, which ids may appear in constrained text at all (control/special tokens
// may not), and which ids end generation. It also holds a byte trie of the
// text tokens, so that a mask is computed by one walk of the trie per step
// rather than by checking every token separately.
#include <cstdint>
#include <string>
#include <vector>

namespace warden::grammar {

class Vocabulary {
 public:
  // token_bytes[id]: the decoded bytes of token id (byte-level BPE already
  // mapped back to raw bytes, "<0x0A>"-style byte tokens already turned into
  // their byte). is_text[id] false: the token can never be emitted under a
  // grammar (special/control tokens). Empty tokens are never allowed either.
  // end_ids: tokens that end generation (EOS, EOT, <|im_end|>, ...).
  // Throws warden::Error when sizes disagree or an end id is out of range.
  Vocabulary(std::vector<std::string> token_bytes, std::vector<bool> is_text,
             std::vector<int32_t> end_ids);

  size_t size() const { return bytes_.size(); }
  const std::string& bytes(int32_t id) const { return bytes_.at(size_t(id)); }
  bool is_text(int32_t id) const { return is_text_.at(size_t(id)); }
  bool is_end(int32_t id) const { return is_end_.at(size_t(id)); }
  const std::vector<int32_t>& end_ids() const { return end_ids_; }
  size_t max_token_bytes() const { return max_token_bytes_; }

  // Trie: node 0 is the root. Children of a node are edges
  // [first_edge, first_edge + edge_count) sorted by byte; tokens whose bytes
  // end exactly at a node are token_ids[first_token, first_token + token_count).
  struct TrieNode {
    uint32_t first_edge = 0;
    uint32_t edge_count = 0;
    uint32_t first_token = 0;
    uint32_t token_count = 0;
  };
  struct TrieEdge {
    uint8_t byte;
    uint32_t child;
  };
  const std::vector<TrieNode>& trie_nodes() const { return nodes_; }
  const std::vector<TrieEdge>& trie_edges() const { return edges_; }
  const std::vector<int32_t>& trie_token_ids() const { return token_ids_; }

 private:
  void build_trie();

  std::vector<std::string> bytes_;
  std::vector<bool> is_text_;
  std::vector<bool> is_end_;
  std::vector<int32_t> end_ids_;
  size_t max_token_bytes_ = 0;
  std::vector<TrieNode> nodes_;
  std::vector<TrieEdge> edges_;
  std::vector<int32_t> token_ids_;
};

}  // namespace warden::grammar
