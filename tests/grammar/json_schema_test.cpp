// JSON Schema -> grammar IR: per-feature acceptance and rejection of JSON texts (reference matcher),
// every refusal with its JSON pointer, strict mode, integer ranges against brute force, limits and
// the corpus of tests/data/json_schemas.
#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ember/error.h"
#include "grammar/compiled_grammar.h"
#include "grammar/reference_matcher.h"

namespace ember::grammar {
namespace {

using testing::reference_matches;

Grammar convert(std::string_view schema, bool strict = false) {
  return json_schema_grammar(schema, JsonSchemaOptions{.strict = strict});
}

// The texts each accepted / rejected by the schema's grammar.
void expect_schema_language(std::string_view schema, const std::vector<std::string>& accepted,
                            const std::vector<std::string>& rejected) {
  SCOPED_TRACE(schema);
  const Grammar g = convert(schema);
  for (const std::string& text : accepted) EXPECT_TRUE(reference_matches(g, text)) << "should accept: " << text;
  for (const std::string& text : rejected) EXPECT_FALSE(reference_matches(g, text)) << "should reject: " << text;
}

std::string refusal(std::string_view schema, bool strict = false) {
  try {
    convert(schema, strict);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "(accepted)";
}

TEST(JsonSchemaBuiltins, JsonModeAcceptsAnyObject) {
  const Grammar g = json_object_grammar();
  for (const char* text : {"{}", "{ }", R"({"a":1})", R"({"a": [1, {"b": null}], "c": "x\n\u00e9"})",
                           "{\n  \"a\": true,\n  \"b\": -1.5e+3\n}", R"({"a":{"a":{"a":{}}}})"}) {
    EXPECT_TRUE(reference_matches(g, text)) << text;
  }
  for (const char* text : {"[]", "1", R"("a")", R"({"a"})", "{,}", R"({"a":1,})", R"({'a':1})", " {}", "{} ",
                           R"({"a":01})", R"({"a":1.})", R"({"a":tru})"}) {
    EXPECT_FALSE(reference_matches(g, text)) << text;
  }
}

TEST(JsonSchemaBuiltins, BuiltinsAreSharedRulesDefinedOnce) {
  const Grammar g = convert(R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"},
      "c":{"type":"number"},"d":{},"e":{"type":"integer"}},"required":["a"]})");
  // Single characters and whitespace are inlined into their callers on purpose (not shared).
  for (const char* name : {"json-char", "json-ws"}) {
    ASSERT_GE(g.find_rule(name), 0) << name;
    EXPECT_FALSE(g.rule(g.find_rule(name)).shared) << name;
  }
  for (const char* name : {"json-string", "json-number", "json-integer", "json-value", "json-object", "json-array"}) {
    const RuleId r = g.find_rule(name);
    ASSERT_GE(r, 0) << name;
    EXPECT_TRUE(g.rule(r).shared) << name;
  }
  EXPECT_EQ(g.rule(g.root()).name, "root");
  EXPECT_NO_THROW(g.check_complete());
  EXPECT_LT(g.rule_count(), 12);
}

TEST(JsonSchemaBuiltins, WhitespaceIsBounded) {
  const std::string schema = R"({"type":"array","items":{"type":"integer"}})";
  expect_schema_language(schema,
                         {"[1,2]", "[ 1 , 2 ]", "[\n  1,\n  2\n]", "[\n\n" + std::string(20, ' ') + "1]", "[\n\t1]"},
                         {"[\n" + std::string(21, ' ') + "1]", "[\n\n\n1]", "[  1]", "[\t1]", " [1]", "[1] "});
}

TEST(JsonSchemaTypes, Primitives) {
  expect_schema_language(R"({"type":"string"})", {R"("")", R"("abc")", R"("a\"b\\c\n\u00e9\/")", "\"é😀\""},
                         {"abc", R"("a)", "\"a\nb\"", R"("\x")", R"("\u12")", "1"});
  expect_schema_language(R"({"type":"integer"})", {"0", "-0", "7", "-123", "1234567890123456"},
                         {"01", "1.0", "1e3", "+1", "12345678901234567", "", "-"});
  expect_schema_language(R"({"type":"number"})", {"0", "-1.5", "3.1415926535897932", "1e5", "1E-3", "2.5e+100", "-0.0"},
                         {"1.", ".5", "1e", "1e1000", "1.12345678901234567", "01.5", "NaN"});
  expect_schema_language(R"({"type":"boolean"})", {"true", "false"}, {"True", "1", "null"});
  expect_schema_language(R"({"type":"null"})", {"null"}, {"nul", "false"});
  expect_schema_language(R"({"type":["string","null"]})", {R"("x")", "null"}, {"1"});
  expect_schema_language(R"({"type":"integer","nullable":true})", {"1", "null"}, {R"("1")"});
  expect_schema_language("true", {"1", R"({"a":[null]})", R"("s")"}, {"", "nope"});
  expect_schema_language("{}", {"1", "[]", "false"}, {"{"});
  expect_schema_language(R"({"description":"anything"})", {"1", "{}"}, {"x"});
}

TEST(JsonSchemaObjects, RequiredAlwaysOptionalAnySubsetInSchemaOrder) {
  const std::string schema = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},
      "c":{"type":"boolean"}},"required":["b"]})";
  expect_schema_language(schema,
                         {R"({"b":"x"})", R"({"a":1,"b":"x"})", R"({"b":"x","c":true})", R"({"a":1,"b":"x","c":false})",
                          R"({ "a": 1, "b": "x" })"},
                         {"{}", R"({"a":1})", R"({"b":"x","a":1})", R"({"c":true,"b":"x"})", R"({"b":"x","d":1})",
                          R"({"b":1})", R"({"b":"x",})", R"({"a":1,,"b":"x"})"});
}

TEST(JsonSchemaObjects, AllOptional) {
  const std::string schema =
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"},
      "d":{"type":"integer"}}})";
  expect_schema_language(
      schema,
      {"{}", R"({"a":1})", R"({"d":4})", R"({"b":2,"d":4})", R"({"a":1,"c":3})", R"({"a":1,"b":2,"c":3,"d":4})"},
      {R"({"b":2,"a":1})", R"({,"a":1})", R"({"a":1,})", R"({"e":1})", R"({"a":1,"a":1})"});
}

TEST(JsonSchemaObjects, AdditionalPropertiesExcludeDeclaredNames) {
  expect_schema_language(
      R"({"type":"object","properties":{"a":{"type":"integer"},"ab":{"type":"integer"}},
                      "additionalProperties":true})",
      {"{}", R"({"a":1})", R"({"a":1,"x":[1]})", R"({"b":null})", R"({"abc":1})", R"({"":1})",
       R"({"a":1,"ab":2,"x":1,"y":"z"})", R"({"A":1})"},
      {R"({"x":1,"a":1})", R"({"a":1,"a":2})", R"({"ab":1,"ab":2})", R"({"x\n":1})", R"({"\u0061":1})"});
  expect_schema_language(R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],
                      "additionalProperties":{"type":"string"}})",
                         {R"({"id":1})", R"({"id":1,"k":"v","l":"w"})"}, {R"({"id":1,"k":1})", R"({"k":"v"})"});
  expect_schema_language(R"({"type":"object","additionalProperties":{"type":"integer"}})", {"{}", R"({"x":1,"y":2})"},
                         {R"({"x":"1"})"});
  // A property whose schema is false must be absent (and is no extra key either).
  expect_schema_language(R"({"properties":{"a":false,"b":{}},"additionalProperties":true})",
                         {"{}", R"({"b":1})", R"({"c":1})"}, {R"({"a":1})"});
  // Nothing declared and additionalProperties absent: any object.
  expect_schema_language(R"({"type":"object"})", {"{}", R"({"x":[1,{"y":null}]})"}, {"[]"});
  expect_schema_language(R"({"type":"object","additionalProperties":false})", {"{}", "{ }"}, {R"({"x":1})"});
  // Required but undeclared: present with any value (or the additionalProperties schema).
  expect_schema_language(R"({"type":"object","required":["k"]})", {R"({"k":1})", R"({"k":{"z":[]}})"},
                         {"{}", R"({"j":1})"});
  expect_schema_language(R"({"required":["k"],"additionalProperties":{"type":"string"}})", {R"({"k":"v"})"},
                         {R"({"k":1})"});
}

TEST(JsonSchemaObjects, PropertyCountsOnlyWhenImplied) {
  expect_schema_language(R"({"type":"object","properties":{"a":{},"b":{}},"required":["a"],"minProperties":1,
                      "maxProperties":2})",
                         {R"({"a":1})", R"({"a":1,"b":2})"}, {"{}"});
  EXPECT_EQ(refusal(R"({"properties":{"a":{}},"minProperties":1})"),
            "schema/minProperties: minProperties 1 is not implied by the 0 required properties; not supported");
  EXPECT_EQ(refusal(R"({"properties":{"a":{},"b":{}},"maxProperties":1})"),
            "schema/maxProperties: maxProperties 1 is not implied by the declared properties; not supported");
  EXPECT_EQ(refusal(R"({"additionalProperties":true,"maxProperties":3})"),
            "schema/maxProperties: maxProperties 3 is not implied by the declared properties; not supported");
}

TEST(JsonSchemaArrays, ItemsAndCounts) {
  expect_schema_language(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})",
                         {"[1]", "[1,2]", "[1, 2, 3]"}, {"[]", "[1,2,3,4]", R"(["a"])", "[1,]"});
  expect_schema_language(R"({"type":"array","items":{"type":"integer"},"minItems":2})", {"[1,2]", "[1,2,3,4,5]"},
                         {"[1]"});
  expect_schema_language(R"({"type":"array"})", {"[]", R"([1,"a",{}])"}, {"{}"});
  expect_schema_language(R"({"type":"array","maxItems":0})", {"[]", "[ ]"}, {"[1]"});
  expect_schema_language(R"({"type":"array","items":false})", {"[]"}, {"[1]"});
}

TEST(JsonSchemaArrays, Tuples) {
  expect_schema_language(R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false})",
                         {"[]", "[1]", R"([1,"a"])"}, {R"(["a"])", R"([1,"a",2])", "[1,2]"});
  expect_schema_language(
      R"({"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":{"type":"boolean"},
          "minItems":2})",
      {R"([1,"a"])", R"([1,"a",true,false])"}, {"[1]", R"([1,"a",1])"});
  expect_schema_language(
      R"({"type":"array","prefixItems":[{"const":1},{"const":2},{"const":3}],"minItems":3,"maxItems":4})",
      {"[1,2,3]", "[1,2,3,null]"}, {"[1,2]", "[1,2,3,4,5]"});
  // Draft 4 tuples: items as an array, additionalItems.
  expect_schema_language(R"({"items":[{"type":"string"}],"additionalItems":{"type":"integer"}})",
                         {"[]", R"(["a"])", R"(["a",1,2])"}, {R"(["a","b"])", "[1]"});
  expect_schema_language(R"({"items":[{"type":"string"}],"additionalItems":false,"minItems":1})", {R"(["a"])"},
                         {"[]", R"(["a",1])"});
  expect_schema_language(R"({"prefixItems":[{"type":"integer"},false,{}]})", {"[]", "[1]"}, {"[1,2]", "[1,2,3]"});
  EXPECT_EQ(refusal(R"({"prefixItems":[{}],"items":false,"minItems":2})"),
            "schema/minItems: minItems 2 but at most 1 items are allowed");
}

TEST(JsonSchemaStrings, LengthsCountJsonCharacters) {
  expect_schema_language(R"({"type":"string","minLength":2,"maxLength":3})",
                         {R"("ab")", R"("abc")", R"("\n\t")", R"("\u00e9a")", "\"éé\""},
                         {R"("a")", R"("abcd")", R"("\")"});
  expect_schema_language(R"({"type":"string","maxLength":0})", {R"("")"}, {R"("a")"});
}

TEST(JsonSchemaStrings, PatternMatchesDecodedContent) {
  expect_schema_language(R"({"type":"string","pattern":"^[a-z]+-[0-9]{2}$"})", {R"("ab-12")"},
                         {R"("ab-1")", R"("Ab-12")", R"("ab-123")", R"("")"});
  expect_schema_language(R"({"type":"string","pattern":"ab"})", {R"("ab")", R"("xxabyy")"}, {R"("a")", R"("ba")"});
  expect_schema_language(R"({"type":"string","pattern":"^a\"b$"})", {R"("a\"b")"}, {R"("a"b")", R"("ab")"});
  EXPECT_EQ(refusal(R"({"type":"string","pattern":"(?<=a)b"})").rfind("schema/pattern: regex: ", 0), 0u);
  EXPECT_EQ(refusal(R"({"type":"string","pattern":"^a+$","maxLength":3})"),
            "schema/pattern: pattern together with minLength/maxLength is not supported");
  EXPECT_EQ(refusal(R"({"type":"string","pattern":"^a+$","format":"date"})"),
            "schema/format: format together with pattern is not supported");
}

TEST(JsonSchemaStrings, Formats) {
  expect_schema_language(R"({"format":"date"})", {R"("2024-02-29")", R"("1999-12-31")", R"("2023-04-30")"},
                         {R"("2024-02-30")", R"("2023-04-31")", R"("2023-13-01")", R"("2023-00-10")", R"("23-01-01")"});
  expect_schema_language(R"({"type":"string","format":"time"})",
                         {R"("23:59:59Z")", R"("00:00:00.123+05:30")", R"("12:30:00-08:00")"},
                         {R"("24:00:00Z")", R"("12:60:00Z")", R"("12:00:00")", R"("12:00Z")"});
  expect_schema_language(R"({"type":"string","format":"date-time"})", {R"("2024-01-15T10:20:30Z")"},
                         {R"("2024-01-15 10:20:30Z")", R"("2024-01-15")"});
  expect_schema_language(R"({"type":"string","format":"uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"},
                         {R"("123e4567e89b12d3a456426614174000")", R"("123e4567-e89b-12d3-a456-42661417400g")"});
  expect_schema_language(R"({"type":"string","format":"email"})", {R"("joe.doe+x@mail.example.com")", R"("a@b.co")"},
                         {R"("joe@localhost")", R"("@b.co")", R"("a..b@c.de")", R"("a@-b.de")"});
  expect_schema_language(R"({"type":"string","format":"ipv4"})",
                         {R"("192.168.0.1")", R"("255.255.255.255")", R"("0.0.0.0")"},
                         {R"("256.1.1.1")", R"("01.1.1.1")", R"("1.1.1")"});
  expect_schema_language(R"({"type":"string","format":"ipv6"})",
                         {R"("::")", R"("::1")", R"("fe80::1:2")", R"("2001:db8:0:0:0:0:2:1")", R"("::ffff:192.0.2.1")",
                          R"("1:2:3:4:5:6:7::")"},
                         {R"(":::")", R"("1:2:3:4:5:6:7:8:9")", R"("12345::")", R"("1::2::3")"});
  expect_schema_language(R"({"type":"string","format":"hostname"})",
                         {R"("example.com")", R"("a-b.c1")", R"("localhost")"},
                         {R"("-a.com")", R"("a..b")", R"("a_b")"});
  expect_schema_language(R"({"type":"string","format":"duration"})",
                         {R"("P1D")", R"("PT1H30M")", R"("P1Y2M3DT4S")", R"("P2W")"},
                         {R"("P")", R"("PT")", R"("P1H")", R"("1D")"});
  expect_schema_language(R"({"type":"string","format":"date","minLength":10,"maxLength":12})", {R"("2024-01-01")"}, {});
  EXPECT_EQ(refusal(R"({"type":"string","format":"uri"})"), "schema/format: format 'uri' is not supported");
  EXPECT_EQ(refusal(R"({"type":"string","format":"email","maxLength":64})"),
            "schema/format: format 'email' together with minLength/maxLength is not supported");
}

// contentEncoding base64 is enforced (RFC 4648, padded; "/" may be spelled "\/" in JSON); other
// encodings and JSON media types, which a validator could check and we cannot, are refused. Other
// media types are annotations.
TEST(JsonSchemaStrings, ContentEncodingAndMediaType) {
  expect_schema_language(R"({"type":"string","contentEncoding":"base64"})",
                         {R"("")", R"("eyJmb28iOiAiYmFyIn0K")", R"("YQ==")", R"("YWI=")", R"("a+\/9")", R"("a+/9")"},
                         {R"("YQ")", R"("YQ=")", R"("Y===")", R"("eyJmb28iOi%iYmFyIn0K")", R"("YWJj ")", R"("=")"});
  expect_schema_language(R"({"type":"string","contentEncoding":"base64","contentMediaType":"image/png"})",
                         {R"("YWI=")"}, {R"("YWI")"});
  EXPECT_EQ(refusal(R"({"type":"string","contentEncoding":"base32"})"),
            R"(schema/contentEncoding: contentEncoding "base32" is not supported (only "base64"))");
  EXPECT_EQ(refusal(R"({"type":"string","contentEncoding":"base64","maxLength":8})"),
            "schema/contentEncoding: contentEncoding together with pattern, format, minLength or maxLength is not "
            "supported");
  EXPECT_EQ(refusal(R"({"allOf":[{"contentMediaType":"application/json"},{"type":"string"}]})"),
            "schema/allOf/0/contentMediaType: contentMediaType 'application/json' is not supported (the string's "
            "content cannot be constrained to JSON)");
  EXPECT_EQ(refusal(R"({"type":"string","contentMediaType":"application/ld+json"})").substr(0, 32),
            "schema/contentMediaType: content");
  // Media types are case-insensitive and may carry parameters; text/json is JSON too.
  for (const char* type : {"Application/JSON", "text/json", "application/json; charset=utf-8"}) {
    EXPECT_NE(refusal(fmt::format(R"({{"type":"string","contentMediaType":"{}"}})", type)), "(accepted)") << type;
  }
  // Only strings have content: on another type it constrains nothing.
  expect_schema_language(R"({"type":"object","contentMediaType":"application/json"})", {"{}"}, {R"("{}")"});
  expect_schema_language(R"({"type":"string","contentEncoding":"BASE64"})", {R"("YQ==")"}, {R"("YQ")"});
}

TEST(JsonSchemaEnums, CanonicalLiterals) {
  expect_schema_language(R"({"enum":["red","Grün",1,2.5,null,true,{"a":[1,2]},"a\"b"]})",
                         {R"("red")", "\"Grün\"", "1", "2.5", "null", "true", R"({"a":[1,2]})", R"("a\"b")"},
                         {R"("blue")", R"("Gr\u00fcn")", "1.0", R"({"a": [1, 2]})", "false"});
  expect_schema_language(R"({"type":"string","enum":["a",1]})", {R"("a")"}, {"1"});
  expect_schema_language(R"({"const":"fixed"})", {R"("fixed")"}, {R"("other")"});
  expect_schema_language(R"({"type":"integer","const":3,"enum":[3,4]})", {"3"}, {"4"});
  EXPECT_EQ(refusal(R"({"type":"string","enum":[1,2]})"), "schema/enum: no value has an allowed type");
  EXPECT_EQ(refusal(R"({"const":1,"enum":[2]})"), "schema/enum: const is not one of the enum values");
  EXPECT_EQ(refusal(R"({"enum":["a"],"maxLength":3})"),
            "schema/maxLength: 'maxLength' next to enum/const is not supported");
  EXPECT_EQ(refusal(R"({"enum":[]})"), "schema/enum: enum must be a non-empty array");
}

TEST(JsonSchemaCombinators, AnyOfAndDisjointOneOf) {
  expect_schema_language(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]})", {"1", R"("a")"},
                         {R"("ab")", "null"});
  expect_schema_language(R"({"oneOf":[{"type":"integer"},{"type":"string"},{"type":"null"}]})", {"1", R"("a")", "null"},
                         {"[]"});
  // A const discriminator on a property both branches require.
  expect_schema_language(R"({"oneOf":[
      {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
      {"type":"object","properties":{"kind":{"enum":["square"]},"side":{"type":"number"}},"required":["kind","side"]}]})",
                         {R"({"kind":"circle","r":1})", R"({"kind":"square","side":2})"},
                         {R"({"kind":"circle","side":1})"});
  EXPECT_EQ(refusal(R"({"oneOf":[{"type":"integer"},{"type":"number"}]})"),
            "schema/oneOf: oneOf branches 0 and 1 may both match one instance; use anyOf or a const discriminator");
  EXPECT_EQ(refusal(R"({"oneOf":[{"properties":{"a":{"const":1}},"required":["a"]},
                                 {"properties":{"a":{"const":2}},"required":["a"]}]})"),
            "schema/oneOf: oneOf branches 0 and 1 may both match one instance; use anyOf or a const discriminator");
  EXPECT_EQ(refusal(R"({"anyOf":[]})"), "schema/anyOf: anyOf must be a non-empty array");
}

TEST(JsonSchemaCombinators, AllOfMerges) {
  expect_schema_language(R"({"allOf":[
      {"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
      {"properties":{"b":{"type":"string"}},"required":["b"]},
      {"properties":{"a":{"minimum":0}}}]})",
                         {R"({"a":1,"b":"x"})"}, {R"({"a":-1,"b":"x"})", R"({"a":1})", R"({"b":"x","a":1})"});
  expect_schema_language(R"({"allOf":[{"type":["string","integer"]},{"type":["integer","null"]},{"minimum":5}]})",
                         {"5"}, {"4", R"("5")", "null"});
  // additionalProperties: false of one part drops what only the other declares.
  expect_schema_language(R"({"allOf":[{"properties":{"a":{},"b":{}},"additionalProperties":false},
                               {"properties":{"b":{"type":"integer"},"c":{}}}]})",
                         {"{}", R"({"a":1,"b":2})"}, {R"({"b":"x"})", R"({"c":1})"});
  // anyOf with sibling keywords distributes over the branches.
  expect_schema_language(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},
                      "anyOf":[{"required":["a"]},{"required":["b"]}]})",
                         {R"({"a":1})", R"({"b":1})", R"({"a":1,"b":2})"}, {"{}"});
  expect_schema_language(
      R"({"$defs":{"base":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}},
                      "$ref":"#/$defs/base","properties":{"name":{"type":"string"}},"required":["name"]})",
      {R"({"id":1,"name":"n"})"}, {R"({"id":1})"});
  EXPECT_EQ(refusal(R"({"allOf":[{"type":"string"},{"type":"integer"}]})"),
            "schema/allOf/1/type: allOf: no type satisfies every branch");
  EXPECT_EQ(refusal(R"({"allOf":[{"pattern":"a"},{"pattern":"b"}]})"),
            "schema/allOf/1/pattern: allOf: different 'pattern' values cannot be combined");
  EXPECT_EQ(refusal(R"({"allOf":[{"properties":{"a":{}},"required":["a"]},{"additionalProperties":false}]})"),
            "schema/allOf/1/additionalProperties: allOf: required property 'a' is not allowed by "
            "additionalProperties: false");
  EXPECT_EQ(refusal(R"({"allOf":[{"$ref":"#"},{"type":"object"}]})"),
            "schema/allOf/0/$ref: $ref nested more than 32 deep inside allOf (a cycle?)");
  // One allOf item and annotations (pydantic's field descriptions): the item itself, refs stay rules.
  EXPECT_EQ(refusal(R"({"allOf":[{"$ref":"#"}]})"),
            "schema: $ref cycle that consumes no input (left recursion through rule 'root')");
  expect_schema_language(R"({"$defs":{"n":{"type":"object","properties":{"next":{"allOf":[{"$ref":"#/$defs/n"}],
                      "description":"the next node"}}}},"$ref":"#/$defs/n"})",
                         {"{}", R"({"next":{"next":{}}})"}, {R"({"next":1})"});
}

TEST(JsonSchemaRefs, RecursiveTree) {
  const std::string schema = R"({"$defs":{"node":{"type":"object","properties":{
      "value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
      "required":["value"]}},"$ref":"#/$defs/node"})";
  expect_schema_language(schema,
                         {R"({"value":1})", R"({"value":1,"children":[]})",
                          R"({"value":1,"children":[{"value":2},{"value":3,"children":[{"value":4}]}]})"},
                         {R"({"value":1,"children":[{}]})", R"({"children":[]})"});
  const Grammar g = convert(schema);
  EXPECT_GE(g.find_rule("node"), 0);
  // Refs to the root and through "definitions".
  expect_schema_language(R"({"type":"array","items":{"anyOf":[{"type":"integer"},{"$ref":"#"}]}})",
                         {"[]", "[1,[2,[]]]"}, {"[[x]]"});
  expect_schema_language(
      R"({"definitions":{"a b":{"type":"integer"}},"properties":{"x":{"$ref":"#/definitions/a%20b"}}})", {R"({"x":1})"},
      {R"({"x":"1"})"});
}

TEST(JsonSchemaRefs, Refusals) {
  EXPECT_EQ(refusal(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"),
            "schema/$defs/a: $ref cycle that consumes no input (left recursion through rule 'a')");
  EXPECT_EQ(refusal(R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/b"},{"type":"null"}]},
                                 "b":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"string"}]}},"$ref":"#/$defs/a"})"),
            "schema/$defs/a: $ref cycle that consumes no input (left recursion through rule 'a')");
  EXPECT_EQ(refusal(R"({"type":"object","properties":{"self":{"$ref":"#"}},"required":["self"]})"),
            "schema: the schema accepts no finite JSON text (its recursion never ends)");
  EXPECT_EQ(refusal(R"({"$ref":"https://example.com/s.json"})"),
            "schema/$ref: remote $ref 'https://example.com/s.json' is not supported (only '#/...' in this schema)");
  EXPECT_EQ(refusal(R"({"$ref":"#/$defs/missing"})"), "schema/$ref: $ref target '#/$defs/missing' does not exist");
  EXPECT_EQ(refusal(R"({"$ref":"#node"})"), "schema/$ref: $ref '#node': anchors are not supported, use a JSON pointer");
}

TEST(JsonSchemaNumbers, IntegerRangesMatchBruteForce) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(-1000, 1000);
  std::vector<std::pair<int, int>> ranges = {{0, 0},      {-1, 1},       {1, 9},     {10, 99}, {-99, -10},
                                             {0, 1000},   {-1000, 1000}, {7, 7},     {19, 21}, {99, 101},
                                             {-101, -99}, {123, 987},    {-987, 123}};
  for (int i = 0; i < 12; ++i) {
    const int a = pick(rng), b = pick(rng);
    ranges.emplace_back(std::min(a, b), std::max(a, b));
  }
  for (const auto& [lo, hi] : ranges) {
    SCOPED_TRACE(::testing::Message() << "[" << lo << ", " << hi << "]");
    const Grammar g = convert(fmt::format(R"({{"type":"integer","minimum":{},"maximum":{}}})", lo, hi));
    for (int v = -1100; v <= 1100; ++v) {
      ASSERT_EQ(reference_matches(g, std::to_string(v)), v >= lo && v <= hi) << v;
    }
    EXPECT_FALSE(reference_matches(g, "-0"));
    EXPECT_FALSE(reference_matches(g, "00"));
    EXPECT_FALSE(reference_matches(g, "0" + std::to_string(std::max(lo, 1))));
  }
}

TEST(JsonSchemaNumbers, OneSidedExclusiveAndLargeBounds) {
  for (const auto& [schema, lo, hi] : std::vector<std::tuple<std::string, long, long>>{
           {R"({"type":"integer","minimum":-5})", -5, 1L << 62},
           {R"({"type":"integer","maximum":37})", -(1L << 62), 37},
           {R"({"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":40})", -2, 39},
           {R"({"type":"integer","minimum":0.5,"maximum":9.5})", 1, 9},
           {R"({"type":"integer","minimum":3,"exclusiveMinimum":true,"maximum":8,"exclusiveMaximum":true})", 4, 7},
           {R"({"type":"integer","minimum":2,"exclusiveMinimum":5})", 6, 1L << 62}}) {
    SCOPED_TRACE(schema);
    const Grammar g = convert(schema);
    for (long v = -300; v <= 300; ++v) ASSERT_EQ(reference_matches(g, std::to_string(v)), v >= lo && v <= hi) << v;
  }
  const long p53 = 1L << 53;  // 9007199254740992
  const Grammar g = convert(fmt::format(R"({{"type":"integer","minimum":{},"maximum":{}}})", -p53, p53));
  for (const long v : {-p53 - 1, -p53, -p53 + 1, -1L, 0L, 1L, p53 - 1, p53, p53 + 1, 9999999999999999L}) {
    EXPECT_EQ(reference_matches(g, std::to_string(v)), v >= -p53 && v <= p53) << v;
  }
  const Grammar above = convert(fmt::format(R"({{"type":"integer","minimum":{}}})", p53));
  for (const long v : {p53 - 1, p53, p53 + 1, 9999999999999999L}) {
    EXPECT_EQ(reference_matches(above, std::to_string(v)), v >= p53) << v;
  }
  EXPECT_FALSE(reference_matches(above, "10000000000000000"));  // open ends stop at 16 digits
  const Grammar huge = convert(R"({"type":"integer","minimum":123456789012345678})");
  EXPECT_TRUE(reference_matches(huge, "123456789012345679"));
  EXPECT_FALSE(reference_matches(huge, "123456789012345677"));
  EXPECT_TRUE(reference_matches(convert(R"({"type":"integer","minimum":0})"), "9999999999999999"));
  EXPECT_FALSE(reference_matches(convert(R"({"type":"integer","minimum":0})"), "-1"));
  EXPECT_EQ(refusal(R"({"type":"integer","minimum":5,"maximum":4})"), "schema: no integer satisfies the bounds");
  EXPECT_EQ(refusal(R"({"type":"integer","minimum":1e19})"), "schema/minimum: bounds beyond ±10^18 are not supported");
  EXPECT_EQ(refusal(R"({"type":"integer","multipleOf":2})"),
            "schema/multipleOf: multipleOf is only supported as 1 on integers");
  expect_schema_language(R"({"type":"integer","multipleOf":1})", {"3"}, {"3.5"});
}

TEST(JsonSchemaNumbers, NumberBoundsWithIntegralValues) {
  expect_schema_language(R"({"type":"number","minimum":0,"maximum":10})",
                         {"0", "10", "10.0", "10.000", "9.99", "0.5", "3", "0.0001"},
                         {"-1", "-0.5", "10.5", "10.01", "11", "1e1", "-0"});
  expect_schema_language(R"({"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1})", {"0.5", "0.999", "0.01"},
                         {"0", "0.0", "1", "1.0", "1.5", "-0.5"});
  expect_schema_language(R"({"type":"number","minimum":-2.0})", {"-2", "-1.5", "-2.0", "100.25", "0"},
                         {"-2.5", "-3", "-2.01"});
  expect_schema_language(R"({"type":"number","maximum":-1})", {"-1", "-1.5", "-100"}, {"0", "-0.5", "-1.0001e1"});
  EXPECT_EQ(refusal(R"({"type":"number","minimum":0.5})"),
            "schema/minimum: non-integer bounds are only supported for type integer");
  EXPECT_EQ(refusal(R"({"type":"number","multipleOf":0.1})"),
            "schema/multipleOf: multipleOf is only supported as 1 on integers");
}

TEST(JsonSchemaRefusals, UnsupportedKeywordsNamedWithPointers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"array","uniqueItems":true})", "schema/uniqueItems: 'uniqueItems' is not supported"},
      {R"({"type":"array","contains":{}})", "schema/contains: keyword 'contains' is not supported"},
      {R"({"not":{"type":"string"}})", "schema/not: keyword 'not' is not supported"},
      {R"({"if":{},"then":{},"else":{}})", "schema/if: keyword 'if' is not supported"},
      {R"({"properties":{"a":{"patternProperties":{"x":{}}}}})",
       "schema/properties/a/patternProperties: keyword 'patternProperties' is not supported"},
      {R"({"propertyNames":{"maxLength":3}})", "schema/propertyNames: keyword 'propertyNames' is not supported"},
      {R"({"dependentRequired":{}})", "schema/dependentRequired: keyword 'dependentRequired' is not supported"},
      {R"({"items":{"dependentSchemas":{}}})",
       "schema/items/dependentSchemas: keyword 'dependentSchemas' is not supported"},
      {R"({"unevaluatedProperties":false})",
       "schema/unevaluatedProperties: keyword 'unevaluatedProperties' is not supported"},
      {R"({"properties":{"a/b":{"minContains":1}}})",
       "schema/properties/a~1b/minContains: keyword 'minContains' is not supported"},
      {R"({"frobnicate":1})", "schema/frobnicate: keyword 'frobnicate' is not supported"},
      {R"({"type":"strin"})", "schema/type: unknown type \"strin\""},
      {R"({"type":"string","minLength":-1})", "schema/minLength: minLength must be a non-negative integer"},
      {R"({"type":"string","minLength":200000})", "schema/minLength: minLength above 100000 is not supported"},
      {R"({"type":"string","minLength":3,"maxLength":2})", "schema/minLength: minLength is larger than maxLength"},
      {R"({"properties":{"a":false},"required":["a"]})", "schema/properties/a: the schema false accepts nothing"},
      {"false", "schema: the schema false accepts nothing"},
      {"[1]", "schema: a schema must be an object or a boolean, not array"},
      {R"({"required":["x"],"additionalProperties":false})",
       "schema/required: required property 'x' is not in properties and additionalProperties is false"},
      {"{", "schema: invalid JSON: "},
  };
  for (const auto& [schema, message] : cases) {
    const std::string got = refusal(schema);
    if (message.ends_with(": ")) {
      EXPECT_EQ(got.rfind(message, 0), 0u) << schema << " -> " << got;
    } else {
      EXPECT_EQ(got, message) << schema;
    }
  }
}

TEST(JsonSchemaStrict, AcceptsOpenAiStyleSchemas) {
  const std::string schema = R"({"type":"object","properties":{
      "name":{"type":"string"},"age":{"type":["integer","null"]},
      "tags":{"type":"array","items":{"type":"string"}},
      "address":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],
                 "additionalProperties":false},
      "kind":{"anyOf":[{"type":"string","enum":["a","b"]},{"$ref":"#/$defs/n"}]}},
      "required":["name","age","tags","address","kind"],"additionalProperties":false,
      "$defs":{"n":{"type":"number"}}})";
  const Grammar g = convert(schema, true);
  EXPECT_TRUE(reference_matches(g, R"({"name":"x","age":null,"tags":[],"address":{"city":"c"},"kind":"a"})"));
  EXPECT_FALSE(reference_matches(g, R"({"name":"x","age":null,"tags":[],"address":{"city":"c"}})"));
}

TEST(JsonSchemaStrict, RefusalsNameTheRule) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"array"})", "schema: strict mode requires the root schema to be \"type\": \"object\""},
      {R"({"anyOf":[{"type":"object"}]})", "schema: strict mode requires the root schema to be \"type\": \"object\""},
      {R"({"type":"object","anyOf":[{"type":"object"}]})",
       "schema/anyOf: strict mode does not allow anyOf at the root"},
      {R"({"type":"object","properties":{"a":{"type":"string"}},"required":["a"]})",
       "schema: strict mode requires \"additionalProperties\": false on every object"},
      {R"({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false})",
       "schema/required: strict mode requires every property to be required; 'a' is not"},
      {R"({"type":"object","properties":{"o":{"type":"object","properties":{}}},"required":["o"],
          "additionalProperties":false})",
       "schema/properties/o: strict mode requires \"additionalProperties\": false on every object"},
      {R"({"type":"object","properties":{"a":{"allOf":[{"type":"string"}]}},"required":["a"],
          "additionalProperties":false})",
       "schema/properties/a/allOf: strict mode does not allow 'allOf'"},
      {R"({"type":"object","properties":{"a":{"oneOf":[{"type":"string"}]}},"required":["a"],
          "additionalProperties":false})",
       "schema/properties/a/oneOf: strict mode does not allow 'oneOf'"},
  };
  for (const auto& [schema, message] : cases) EXPECT_EQ(refusal(schema, true), message) << schema;
  // The same schemas convert without strict mode (the first one too).
  EXPECT_NO_THROW(convert(cases[3].first));
  EXPECT_NO_THROW(convert(cases[0].first));
}

TEST(JsonSchemaLimits, DeepLargeAndExplosiveSchemasAreRefused) {
  std::string deep = "{}";
  for (int i = 0; i < 70; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_EQ(refusal(deep).rfind("schema/items/items/", 0), 0u);
  EXPECT_NE(refusal(deep).find("schemas nested more than 64 deep are not supported"), std::string::npos);
  std::string very_deep(5000, '[');
  very_deep = R"({"default":)" + very_deep + std::string(5000, ']') + "}";
  EXPECT_EQ(refusal(very_deep), "schema: the schema nests deeper than 512 levels");
  std::string big_enum = R"({"enum":[)";
  for (int i = 0; i < 210000; ++i) big_enum += std::to_string(i) + ",";
  big_enum += "0]}";
  EXPECT_EQ(refusal(big_enum), "schema/enum: the schema is too large: its grammar exceeds 200000 expressions");
  // allOf over refs that each double: exponential unless bounded.
  std::string defs = R"({"$defs":{"d0":{"type":"integer"})";
  for (int i = 1; i <= 30; ++i) {
    defs += fmt::format(R"(,"d{}":{{"allOf":[{{"$ref":"#/$defs/d{}"}},{{"$ref":"#/$defs/d{}"}}]}})", i, i - 1, i - 1);
  }
  defs += R"(},"$ref":"#/$defs/d30"})";
  EXPECT_NE(refusal(defs).find("too complex"), std::string::npos) << refusal(defs);
  // Arrays of arrays 40 deep: the converter shares each level's item expression between the first
  // item and the rest, a DAG the compiler once walked as a tree (2^40 visits, 17 GB at depth 30).
  // Now refused for its automaton's size at once; 8 deep compiles.
  const auto nested_arrays = [](int depth) {
    std::string schema = R"({"type":"integer"})";
    for (int i = 0; i < depth; ++i) schema = R"({"type":"array","items":)" + schema + "}";
    return json_schema_grammar(schema);
  };
  EXPECT_NO_THROW(CompiledGrammar::compile(nested_arrays(8)));
  try {
    CompiledGrammar::compile(nested_arrays(40));
    ADD_FAILURE() << "compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too large to compile"), std::string::npos) << e.what();
  }
}

TEST(JsonSchemaLimits, WideObjectsStayLinear) {
  // 3000 optional properties and extra keys: one "rest" rule per optional property before the
  // first required one, and a key trie linear in the names.
  nlohmann::ordered_json schema = {{"type", "object"}, {"additionalProperties", {{"type", "integer"}}}};
  for (int i = 0; i < 3000; ++i) schema["properties"][fmt::format("p{}", i)] = {{"type", "integer"}};
  schema["required"] = {"p2999"};
  const Grammar g = json_schema_grammar(schema);
  EXPECT_LT(g.expr_count(), 100000);
  EXPECT_LT(g.rule_count(), 3100);
  // The language, on a 300-wide copy: the reference matcher recurses once per nested "rest" rule,
  // and 3000 of them overflow the stack under AddressSanitizer's larger frames.
  nlohmann::ordered_json narrow = {{"type", "object"}, {"additionalProperties", {{"type", "integer"}}}};
  for (int i = 0; i < 300; ++i) narrow["properties"][fmt::format("p{}", i)] = {{"type", "integer"}};
  narrow["required"] = {"p299"};
  const Grammar small = json_schema_grammar(narrow);
  EXPECT_TRUE(reference_matches(small, R"({"p7":1,"p299":2,"p30000":3})"));
  EXPECT_FALSE(reference_matches(small, R"({"p299":2,"p7":1})"));
}

// tests/data/json_schemas/*.json: {"schema", "strict"?, "valid": [...], "invalid": [...]}; each
// instance is dumped compactly (the canonical spelling the grammar accepts). Every grammar must also
// compile to automata.
TEST(JsonSchemaCorpus, ValidAcceptedInvalidRejected) {
  const std::filesystem::path dir = std::filesystem::path(EMBER_SOURCE_DIR) / "tests/data/json_schemas";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    SCOPED_TRACE(entry.path().filename().string());
    std::ifstream in(entry.path());
    const nlohmann::ordered_json test = nlohmann::ordered_json::parse(in);
    const Grammar g = json_schema_grammar(test.at("schema"), {.strict = test.value("strict", false)});
    EXPECT_NO_THROW(CompiledGrammar::compile(g));  // no left recursion, nothing too large to compile
    ASSERT_FALSE(test.at("valid").empty());
    for (const auto& instance : test.at("valid")) {
      EXPECT_TRUE(reference_matches(g, instance.dump())) << "valid: " << instance.dump();
    }
    for (const auto& instance : test.at("invalid")) {
      EXPECT_FALSE(reference_matches(g, instance.dump())) << "invalid: " << instance.dump();
    }
  }
  EXPECT_GE(files, 20);
}

}  // namespace
}  // namespace ember::grammar
