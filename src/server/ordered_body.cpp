// ordered_subtree (see ordered_body.h): a SAX handler that builds ordered_json in linear time.
#include "server/ordered_body.h"

#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "server/api_error.h"

namespace ember::server {
namespace {

using nlohmann::ordered_json;

class OrderedBuilder {
 public:
  using number_integer_t = ordered_json::number_integer_t;
  using number_unsigned_t = ordered_json::number_unsigned_t;
  using number_float_t = ordered_json::number_float_t;
  using string_t = ordered_json::string_t;
  using binary_t = ordered_json::binary_t;

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(number_integer_t v) { return put(v); }
  bool number_unsigned(number_unsigned_t v) { return put(v); }
  bool number_float(number_float_t v, const string_t& /*text*/) { return put(v); }
  bool string(string_t& v) { return put(std::move(v)); }
  bool binary(binary_t& v) { return put(ordered_json::binary(std::move(v))); }
  bool start_object(std::size_t /*size*/) {
    open(ordered_json::object());
    return true;
  }
  bool key(string_t& k) {
    Frame& f = stack_.back();
    auto& entries = static_cast<ordered_json::object_t::Container&>(f.value->get_ref<ordered_json::object_t&>());
    const auto [it, inserted] = f.index.try_emplace(k, entries.size());
    if (inserted) entries.emplace_back(std::move(k), nullptr);
    f.slot = &entries[it->second].second;
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t /*size*/) {
    open(ordered_json::array());
    return true;
  }
  bool end_array() { return close(); }
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                   const nlohmann::detail::exception& /*error*/) {
    failed_ = true;
    return false;
  }

  ordered_json result() && { return failed_ ? ordered_json() : std::move(root_); }

 private:
  struct Frame {
    ordered_json* value;
    ordered_json* slot = nullptr;  // an object's: where the value of the last key goes
    std::unordered_map<std::string, std::size_t> index;
  };

  // The place of the next value: the root, an array's new element, or an object's last key.
  // Only the innermost open container grows, so the pointers on the stack stay valid.
  ordered_json* place() {
    if (stack_.empty()) return &root_;
    Frame& f = stack_.back();
    if (f.value->is_array()) {
      f.value->push_back(nullptr);
      return &f.value->back();
    }
    return f.slot;
  }
  template <class V>
  bool put(V&& v) {
    *place() = ordered_json(std::forward<V>(v));
    return true;
  }
  void open(ordered_json empty) {
    ordered_json* p = place();
    *p = std::move(empty);
    stack_.push_back(Frame{.value = p, .slot = nullptr, .index = {}});
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  ordered_json root_;
  std::vector<Frame> stack_;
  bool failed_ = false;
};

}  // namespace

ordered_json ordered_subtree(std::string_view text, std::initializer_list<const char*> path) {
  OrderedBuilder builder;
  ordered_json::sax_parse(text, &builder);
  ordered_json root = std::move(builder).result();
  ordered_json* v = &root;
  for (const char* key : path) {
    if (!v->is_object()) return nullptr;
    auto& entries = static_cast<ordered_json::object_t::Container&>(v->get_ref<ordered_json::object_t&>());
    ordered_json* next = nullptr;
    for (auto& [k, value] : entries) {
      if (k == key) next = &value;
    }
    if (next == nullptr) return nullptr;
    v = next;
  }
  return std::move(*v);
}

void refuse_huge_objects(const nlohmann::json& value, const std::string& param) {
  std::vector<const nlohmann::json*> todo = {&value};
  while (!todo.empty()) {
    const nlohmann::json* v = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (v->is_object() && v->size() > kMaxObjectKeys) {
      invalid_request(param,
                      fmt::format("'{}': objects with more than {} keys are not supported", param, kMaxObjectKeys));
    }
    for (const auto& child : *v) todo.push_back(&child);
  }
}

int json_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace ember::server
