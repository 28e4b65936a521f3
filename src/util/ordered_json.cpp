#include "util/ordered_json.h"

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/display.h"
#include "util/error.h"
#include "util/json_nesting.h"

namespace warden {
namespace {

using json = nlohmann::ordered_json;

// nlohmann's parse errors end with the text last read ("last read: '...'"),
// which may be the whole input and any bytes: cut to `max_bytes`, and shown
// in ASCII escapes (display.h), so that an error message neither grows
// with the input nor carries invalid UTF-8 (which the message's own JSON
// answer could not hold).
std::string printable_start(std::string_view text, size_t max_bytes) {
  display::Style ascii;
  ascii.ascii_only = true;
  return display::render(text.substr(0, max_bytes), ascii) + (text.size() > max_bytes ? "..." : "");
}

// nlohmann's SAX events, building the value as its DOM parser does but with
// each object's keys also in a hash map, so a member is appended (or, for a
// repeated key, its value replaced) without searching the members.
class OrderedBuilder {
 public:
  json take() { return std::move(root_); }
  const std::string& error() const { return error_; }

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(json::number_integer_t v) { return put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return put(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
  bool string(json::string_t& v) { return put(std::move(v)); }
  bool binary(json::binary_t&) {  // only binary formats (CBOR, ...) have these
    error_ = "is not valid JSON: a binary value";
    return false;
  }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    error_ = "is not valid JSON: " + printable_start(e.what(), 300);
    return false;
  }

 private:
  struct Open {
    json* node;
    std::unordered_map<std::string, size_t> member_of_key;  // objects only
  };

  // Adds v where the parser stands: the root, the open array's next
  // element, or the open object's member under the last key.
  json* place(json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Open& at = open_.back();
    if (at.node->is_array()) {
      auto& items = at.node->get_ref<json::array_t&>();
      items.push_back(std::move(v));
      return &items.back();
    }
    auto& members = static_cast<json::object_t::Container&>(at.node->get_ref<json::object_t&>());
    auto [it, fresh] = at.member_of_key.try_emplace(key_, members.size());
    if (!fresh) return &(members[it->second].second = std::move(v));
    members.emplace_back(key_, std::move(v));
    return &members.back().second;
  }
  bool put(json v) {
    place(std::move(v));
    return true;
  }
  // A container stays where it was placed while it is open: its parent
  // gains no member until it closes.
  bool open(json container) {
    if (open_.size() == kMaxJsonNesting) {
      error_ = "nests arrays and objects more than " + std::to_string(kMaxJsonNesting) + " levels deep";
      return false;
    }
    json* node = place(std::move(container));
    open_.push_back({node, {}});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  json root_;
  std::vector<Open> open_;
  std::string key_;
  std::string error_;
};

}  // namespace

nlohmann::ordered_json parse_ordered_json(std::string_view text) {
  OrderedBuilder builder;
  if (!json::sax_parse(text.begin(), text.end(), &builder)) throw Error(builder.error());
  return builder.take();
}

}  // namespace warden
