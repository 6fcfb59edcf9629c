// The body's key order: nlohmann::json (std::map) sorts an object's keys, and the tools and schemas
// a client sends keep theirs (properties come out in the client's order). ordered_json's own parser
// inserts each key with a linear search for a duplicate (quadratic in an object's keys: a body with
// one 100k-key object took seconds), so this one builds the objects with a hash index instead.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ember::server {

// The value at `path` (object keys from the root) of the JSON text `text`, with every object's
// keys in the order of the text (a repeated key: its first place, its last value); null when the
// text is not valid JSON or the path is not there. Time linear in the text.
nlohmann::ordered_json ordered_subtree(std::string_view text, std::initializer_list<const char*> path);

// Nesting deeper than this is refused before parsing (nlohmann's copy and dump recurse), in the
// body and in the JSON texts it carries (a tool call's arguments).
inline constexpr int kMaxJsonDepth = 64;
// The deepest nesting of arrays and objects in the JSON text `text`, strings skipped; stops
// counting past `limit`.
int json_depth(std::string_view text, int limit);

// The most keys one object of a tool list or schema may have (what consumes them, the grammar and
// the template, is not meant for more).
inline constexpr size_t kMaxObjectKeys = 5000;

// Refuses (400, `param`) a value holding an object with more than kMaxObjectKeys keys.
void refuse_huge_objects(const nlohmann::json& value, const std::string& param);

}  // namespace ember::server
