#include "grammar/vocab.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace warden::grammar {

Vocabulary::Vocabulary(std::vector<std::string> token_bytes, std::vector<bool> is_text,
                       std::vector<int32_t> end_ids)
    : bytes_(std::move(token_bytes)), is_text_(std::move(is_text)), end_ids_(std::move(end_ids)) {
  if (is_text_.size() != bytes_.size())
    throw Error("grammar vocabulary: " + std::to_string(bytes_.size()) + " tokens but " +
                std::to_string(is_text_.size()) + " text flags");
  if (bytes_.size() > size_t(INT32_MAX)) throw Error("grammar vocabulary: too many tokens");
  is_end_.assign(bytes_.size(), false);
  for (int32_t id : end_ids_) {
    if (id < 0 || size_t(id) >= bytes_.size())
      throw Error("grammar vocabulary: end token id " + std::to_string(id) + " out of range");
    is_end_[size_t(id)] = true;
  }
  build_trie();
}

void Vocabulary::build_trie() {
  // Sort the text tokens by bytes; then each trie node's subtree is a
  // contiguous range and nodes can be created in one pass, depth first.
  std::vector<int32_t> ids;
  for (size_t id = 0; id < bytes_.size(); ++id)
    if (is_text_[id] && !is_end_[id] && !bytes_[id].empty()) ids.push_back(int32_t(id));
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return bytes_[size_t(a)] < bytes_[size_t(b)] || (bytes_[size_t(a)] == bytes_[size_t(b)] && a < b);
  });
  for (int32_t id : ids) max_token_bytes_ = std::max(max_token_bytes_, bytes_[size_t(id)].size());

  // Build with per-node child lists first, then lay the edges out per node.
  struct Building {
    std::vector<std::pair<uint8_t, uint32_t>> children;
    std::vector<int32_t> tokens;
  };
  std::vector<Building> build(1);
  std::vector<uint32_t> path{0};  // node per depth along the previous token
  std::string prev;
  for (int32_t id : ids) {
    const std::string& s = bytes_[size_t(id)];
    size_t common = 0;
    while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
    path.resize(common + 1);
    for (size_t d = common; d < s.size(); ++d) {
      uint32_t parent = path[d];
      uint32_t child;
      auto& ch = build[parent].children;
      if (!ch.empty() && ch.back().first == uint8_t(s[d])) {
        child = ch.back().second;
      } else {
        child = uint32_t(build.size());
        build[parent].children.emplace_back(uint8_t(s[d]), child);
        build.emplace_back();
      }
      path.push_back(child);
    }
    build[path[s.size()]].tokens.push_back(id);
    prev = s;
  }
  nodes_.resize(build.size());
  for (size_t n = 0; n < build.size(); ++n) {
    TrieNode& node = nodes_[n];
    node.first_edge = uint32_t(edges_.size());
    node.edge_count = uint32_t(build[n].children.size());
    for (auto [b, child] : build[n].children) edges_.push_back(TrieEdge{b, child});
    node.first_token = uint32_t(token_ids_.size());
    node.token_count = uint32_t(build[n].tokens.size());
    token_ids_.insert(token_ids_.end(), build[n].tokens.begin(), build[n].tokens.end());
  }
}

}  // namespace warden::grammar
