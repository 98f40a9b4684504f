// A JSON Schema checker for the subset docs/stats.schema.json uses: type,
// enum, required, properties, patternProperties, additionalProperties
// (false or a schema), items, minItems, minimum, pattern and "#/$defs/NAME"
// references. An unknown keyword is an error, so the schema cannot use more
// than this checks.
#pragma once
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace septsim::test {

class SchemaChecker {
 public:
  explicit SchemaChecker(nlohmann::json schema) : root_(std::move(schema)) {}

  // Every place `doc` breaks the schema: "PATH: what".
  std::vector<std::string> check(const nlohmann::json& doc) {
    errors_.clear();
    walk(root_, doc, "$");
    return errors_;
  }

 private:
  static bool is_type(const nlohmann::json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer") return v.is_number_integer();
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
  }

  void walk(const nlohmann::json& s, const nlohmann::json& v, const std::string& at) {
    static const std::set<std::string> known = {"$schema", "$id", "title", "description", "type", "enum", "required",
                                                "properties", "patternProperties", "additionalProperties", "items",
                                                "minItems", "minimum", "pattern", "$ref", "$defs"};
    for (const auto& [k, x] : s.items())
      if (!known.count(k)) errors_.push_back(at + ": schema keyword '" + k + "' not supported by the checker");
    if (s.contains("$ref")) {
      std::string ref = s["$ref"];
      const std::string prefix = "#/$defs/";
      if (!ref.starts_with(prefix) || !root_["$defs"].contains(ref.substr(prefix.size()))) {
        errors_.push_back(at + ": unresolved $ref " + ref);
        return;
      }
      walk(root_["$defs"][ref.substr(prefix.size())], v, at);
    }
    if (s.contains("type")) {
      bool ok = false;
      if (s["type"].is_array()) {
        for (const auto& t : s["type"]) ok = ok || is_type(v, t);
      } else {
        ok = is_type(v, s["type"]);
      }
      if (!ok) {
        errors_.push_back(at + ": expected type " + s["type"].dump() + ", got " + v.dump().substr(0, 40));
        return;
      }
    }
    if (s.contains("enum")) {
      bool ok = false;
      for (const auto& e : s["enum"]) ok = ok || e == v;
      if (!ok) errors_.push_back(at + ": " + v.dump() + " not in " + s["enum"].dump());
    }
    if (s.contains("minimum") && v.is_number() && v.get<double>() < s["minimum"].get<double>())
      errors_.push_back(at + ": below the minimum " + s["minimum"].dump());
    if (s.contains("pattern") && v.is_string() && !std::regex_search(v.get<std::string>(), std::regex(s["pattern"].get<std::string>())))
      errors_.push_back(at + ": '" + v.get<std::string>() + "' does not match " + s["pattern"].get<std::string>());
    if (v.is_array()) {
      if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) errors_.push_back(at + ": too few items");
      if (s.contains("items"))
        for (size_t i = 0; i < v.size(); ++i) walk(s["items"], v[i], at + "[" + std::to_string(i) + "]");
    }
    if (v.is_object()) {
      if (s.contains("required"))
        for (const auto& r : s["required"])
          if (!v.contains(r.get<std::string>())) errors_.push_back(at + ": missing required '" + r.get<std::string>() + "'");
      for (const auto& [k, x] : v.items()) {
        bool matched = false;
        if (s.contains("properties") && s["properties"].contains(k)) {
          matched = true;
          walk(s["properties"][k], x, at + "." + k);
        }
        if (s.contains("patternProperties"))
          for (const auto& [pat, sub] : s["patternProperties"].items())
            if (std::regex_search(k, std::regex(pat))) {
              matched = true;
              walk(sub, x, at + "." + k);
            }
        if (!matched && s.contains("additionalProperties")) {
          const auto& ap = s["additionalProperties"];
          if (ap.is_boolean()) {
            if (!ap.get<bool>()) errors_.push_back(at + ": unexpected key '" + k + "'");
          } else {
            walk(ap, x, at + "." + k);
          }
        }
      }
    }
  }

  nlohmann::json root_;
  std::vector<std::string> errors_;
};

}  // namespace septsim::test
