// The model's configuration: a flat, typed key/value set ("tlb.stlb.entries")
// with one declared default per key, presets per CPU generation, JSON files
// (nested objects are flattened into dotted keys) and --set overrides.
// Unknown keys are errors that name the closest known keys.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/types.h"

namespace septsim::model {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Config {
 public:
  enum class Type { Int, Bool, String };
  struct Param {
    std::string key;
    Type type;
    std::string default_value;
    std::string description;  // says where the default comes from, or that it is a guess
  };

  // The declared defaults (the `skylake-sp` preset).
  Config();
  static const std::vector<Param>& params();
  static std::vector<std::string> preset_names();

  // Applies a named preset on top of the current values.
  void apply_preset(const std::string& name);
  // Loads a JSON config file; {"preset": "..."} is applied first.
  void load_file(const std::string& path);
  void load_json(const nlohmann::json& j, const std::string& origin);
  // Sets one key from text; `origin` names where it came from for errors.
  void set(const std::string& key, const std::string& value, const std::string& origin = "--set");

  u64 u(const std::string& key) const;
  bool b(const std::string& key) const;
  const std::string& s(const std::string& key) const;

  // Effective values, sorted by key (for the stats manifest).
  nlohmann::json to_json() const;
  // Known keys closest to `key` (edit distance), best first.
  static std::vector<std::string> close_matches(const std::string& key);

 private:
  const Param& param(const std::string& key, const std::string& origin) const;
  std::map<std::string, std::string> values_;
};

}  // namespace septsim::model
