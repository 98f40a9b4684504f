// The command line a newcomer meets: one command's help at a time, README's
// command list kept true to the --help texts, the config preview, refused
// geometry, README's first screen, and the statistics' descriptions (stats --list, docs/stats.md,
// the stats file's JSON schema).
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "../traces/cli_util.h"
#include "json_schema.h"

using namespace septsim::test;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kCommands = {"replay",      "config",  "stats", "import ftrace", "import lackey",
                                            "import champsim", "kvm-compare", "convert", "gen", "sweep", "sweep-merge"};

// The options a --help text lists, by long name ("-o [ --output ]" is --output).
std::set<std::string> help_options(const std::string& help, std::map<std::string, std::string>& aliases) {
  std::set<std::string> out;
  std::regex alias("(-[a-zA-Z]) \\[ (--[a-z][a-z0-9-]*) \\]");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), alias); it != std::sregex_iterator(); ++it)
    aliases[(*it)[1]] = (*it)[2];
  std::regex re("(^|[\\s\\[|])(--[a-z][a-z0-9-]*)");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), re); it != std::sregex_iterator(); ++it)
    out.insert((*it)[2]);
  out.erase("--help");
  return out;
}

// The options README gives a command, short ones named by their long names.
std::set<std::string> readme_options(const std::string& text, const std::map<std::string, std::string>& aliases) {
  std::set<std::string> out;
  std::regex re("(^|[\\s\\[|])(-[a-zA-Z]|--[a-z][a-z0-9-]*)\\b");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    std::string o = (*it)[2];
    out.insert(aliases.count(o) ? aliases.at(o) : o);
  }
  return out;
}

// README's command list: "build/septsim CMD ..." lines and the "[...]"
// continuation lines under them, comments ("# ...") left out.
std::map<std::string, std::string> readme_commands() {
  std::istringstream in(slurp(fs::path(SEPTSIM_SOURCE_DIR) / "README.md"));
  std::map<std::string, std::string> out;
  std::string current;
  for (std::string line; std::getline(in, line);) {
    std::string code = line.substr(0, line.find('#'));
    if (line.starts_with("build/septsim ")) {
      std::istringstream words(code.substr(14));
      std::string cmd, sub;
      words >> cmd;
      if (cmd.starts_with("-")) {  // septsim --help | --version
        current.clear();
        continue;
      }
      if (cmd == "import") words >> sub, cmd += " " + sub;
      current = cmd;
      out[current] += code;
    } else if (!current.empty() && code.find_first_not_of(' ') != std::string::npos &&
               code[code.find_first_not_of(' ')] == '[') {
      out[current] += code;
    } else {
      current.clear();
    }
  }
  return out;
}

std::string config_row(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + " ")) return line;
  return "";
}

}  // namespace

TEST_CASE("each command's --help shows that command's usage and options only", "[help]") {
  for (const auto& cmd : kCommands) {
    auto r = run_septsim(cmd + " --help");
    INFO(cmd << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.starts_with("usage: septsim " + cmd + " "));
    for (const auto& other : kCommands)
      if (other != cmd && !(cmd.starts_with("import") && other.starts_with("import")))
        CHECK(r.out.find("septsim " + other + " ") == std::string::npos);
  }
  // `septsim import --help` covers both formats.
  auto r = run_septsim("import --help");
  CHECK(r.out.find("usage: septsim import ftrace") != std::string::npos);
  CHECK(r.out.find("septsim import lackey") != std::string::npos);
}

TEST_CASE("a command-line error prints the usage of that command only", "[help]") {
  auto r = run_septsim("config --frobnicate");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("frobnicate") != std::string::npos);
  CHECK(r.err.find("usage: septsim config") != std::string::npos);
  CHECK(r.err.find("septsim replay") == std::string::npos);
}

TEST_CASE("README's command list gives every command with exactly the options its --help lists", "[help][readme]") {
  auto readme = readme_commands();
  for (const auto& cmd : kCommands) {
    INFO(cmd);
    REQUIRE(readme.count(cmd) == 1);
    auto help = run_septsim(cmd + " --help");
    std::map<std::string, std::string> aliases;
    auto listed = help_options(help.out, aliases);
    if (cmd != "convert" && cmd != "sweep-merge") CHECK_FALSE(listed.empty());
    CHECK(readme_options(readme[cmd], aliases) == listed);
  }
  for (const auto& [cmd, text] : readme) {
    INFO(cmd);
    CHECK(std::find(kCommands.begin(), kCommands.end(), cmd) != kCommands.end());
  }
}

TEST_CASE("README's first screen is the default run's report, abridged: its lines in the same order", "[readme]") {
  std::string readme = slurp(fs::path(SEPTSIM_SOURCE_DIR) / "README.md");
  auto from = readme.find("septsim replay summary\n");
  REQUIRE(from != std::string::npos);
  std::istringstream shown(readme.substr(from, readme.find("```", from) - from));
  auto r = run_septsim("replay " + sample_trace() + " --check");  // what scripts/run runs
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> printed;
  std::istringstream out(r.out);
  for (std::string line; std::getline(out, line);) printed.push_back(line);
  size_t at = 0, checked = 0;
  for (std::string line; std::getline(shown, line);) {
    // "  ..." marks what the README leaves out; report: and figure: lines are scripts/run's own.
    if (line == "  ..." || line.starts_with("report: ") || line.starts_with("figure: ")) continue;
    INFO(line);
    auto it = std::find(printed.begin() + long(at), printed.end(), line);
    CHECK(it != printed.end());
    if (it != printed.end()) at = size_t(it - printed.begin()) + 1, ++checked;
  }
  CHECK(checked > 30);
  CHECK(readme.substr(from).find("per phase (docs/stats.md)") < readme.substr(from).find("```"));
}

TEST_CASE("septsim config previews a preset, a config file and --set, saying where each value comes from",
          "[config]") {
  auto d = temp_dir();
  std::ofstream(d / "c.json") << R"({"preset": "sapphire-rapids", "tlb": {"replacement": "plru"}})";
  auto r = run_septsim("config --config " + (d / "c.json").string() + " --set tlb.stlb.ways=8");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(config_row(r.out, "tlb.stlb.ways").find(" 8 ") != std::string::npos);
  CHECK(config_row(r.out, "tlb.stlb.ways").find(" set ") != std::string::npos);
  CHECK(config_row(r.out, "tlb.replacement").find(" set ") != std::string::npos);
  CHECK(config_row(r.out, "tlb.stlb.entries").find("preset sapphire-rapids") != std::string::npos);
  CHECK(config_row(r.out, "ept.levels").find(" default ") != std::string::npos);
}

TEST_CASE("septsim config --json prints a config file that reads back to the same values", "[config]") {
  auto d = temp_dir();
  auto a = run_septsim("config --preset sapphire-rapids --set mmu.pml=true --json");
  REQUIRE(a.exit_code == 0);
  auto j = nlohmann::json::parse(a.out);
  CHECK(j["mmu.pml"] == true);
  CHECK(j["tlb.stlb.entries"] == 2048);
  std::ofstream(d / "back.json") << a.out;
  auto b = run_septsim("config --config " + (d / "back.json").string() + " --json");
  REQUIRE(b.exit_code == 0);
  CHECK(b.out == a.out);
}

TEST_CASE("the example config in the repository loads and changes what it says", "[config]") {
  auto path = fs::path(SEPTSIM_SOURCE_DIR) / "docs" / "example-config.json";
  REQUIRE(fs::exists(path));
  auto r = run_septsim("config --config " + path.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(slurp(path));
  CHECK(config_row(r.out, "tlb.stlb.entries").find(" set ") != std::string::npos);
}

TEST_CASE("impossible TLB geometry is refused by config and replay with the keys named", "[config][badinput]") {
  auto r = run_septsim("config --set tlb.stlb.entries=1000");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("tlb.stlb.entries = 1000 is not a multiple of tlb.stlb.ways = 12") != std::string::npos);
  auto stats = temp_dir() / "s.json";
  auto p = run_septsim("replay " + sample_trace() + " --set tlb.l1d.4k.ways=65 --stats " + stats.string());
  CHECK(p.exit_code == 2);
  CHECK(p.err.find("tlb.l1d.4k.ways = 65 exceeds tlb.l1d.4k.entries = 64") != std::string::npos);
  CHECK_FALSE(fs::exists(stats));
}

TEST_CASE("stats --list describes every statistic with kind, unit, module and meaning", "[stats]") {
  auto r = run_septsim("stats --list --json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& s : j["statistics"]) {
    INFO(s.dump());
    CHECK_FALSE(s["meaning"].get<std::string>().empty());
    CHECK_FALSE(s["unit"].get<std::string>().empty());
    CHECK_FALSE(s["module"].get<std::string>().empty());
    by_name[s["name"]] = s;
  }
  CHECK(by_name.size() > 100);
  CHECK(by_name["vcpuN.dtlb.misses"]["module"] == "model/tlb (tlb_hierarchy)");
  CHECK(by_name["vcpuN.walk.cycles"]["kind"] == "histogram");
  CHECK(by_name["vcpuN.walk.cycles"]["unit"] == "cycles");
  CHECK(by_name["seam.pamt.bytes"]["kind"] == "gauge");
  CHECK(by_name["seam.pamt.bytes"]["unit"] == "bytes");
  CHECK(by_name.count("kvm.tdx.merge.promoted") == 1);
  CHECK(by_name.count("nested.faults") == 1);
  REQUIRE(j["derived"].size() > 10);
  for (const auto& d : j["derived"]) CHECK_FALSE(d["formula"].get<std::string>().empty());
}

TEST_CASE("every counter a replay writes is one stats --list describes", "[stats]") {
  auto list = nlohmann::json::parse(run_septsim("stats --list --json").out);
  std::set<std::string> names;
  for (const auto& s : list["statistics"]) names.insert(s["name"]);
  auto stats = temp_dir() / "s.json";
  REQUIRE(run_septsim("replay " + sample_trace() + " -q --stats " + stats.string()).exit_code == 0);
  auto total = nlohmann::json::parse(slurp(stats))["stats"]["total"];
  // VM N's statistics are VM 0's under "vmN." (the default trace has a TD as VM 1).
  std::regex vm("^vm[1-9][0-9]*\\."), vcpu("^vcpu[0-9]+\\.");
  size_t other_vm = 0;
  for (const char* part : {"counters", "histograms"})
    for (const auto& [k, v] : total[part].items()) {
      INFO(k);
      other_vm += std::regex_search(k, vm);
      CHECK(names.count(std::regex_replace(std::regex_replace(k, vm, ""), vcpu, "vcpuN.")) == 1);
    }
  CHECK(other_vm > 0);
}

TEST_CASE("docs/stats.md holds the tables stats --list --markdown prints", "[stats][docs]") {
  auto r = run_septsim("stats --list --markdown");
  REQUIRE(r.exit_code == 0);
  std::string doc = slurp(fs::path(SEPTSIM_SOURCE_DIR) / "docs" / "stats.md");
  INFO("regenerate with: build/septsim stats --list --markdown (between the markers in docs/stats.md)");
  CHECK(doc.find(r.out) != std::string::npos);
}

TEST_CASE("stats files of a VM and of a TD match docs/stats.schema.json", "[stats][schema]") {
  SchemaChecker schema(nlohmann::json::parse(slurp(fs::path(SEPTSIM_SOURCE_DIR) / "docs" / "stats.schema.json")));
  auto d = temp_dir();
  REQUIRE(run_septsim("gen td-boot -o " + (d / "td.jsonl").string()).exit_code == 0);
  for (const auto& trace : {sample_trace(), (d / "td.jsonl").string()}) {
    INFO(trace);
    auto stats = d / "s.json";
    REQUIRE(run_septsim("replay " + trace + " -q --check --stats " + stats.string()).exit_code == 0);
    auto doc = nlohmann::json::parse(slurp(stats));
    auto errors = schema.check(doc);
    for (const auto& e : errors) UNSCOPED_INFO(e);
    CHECK(errors.empty());
    // The checker does catch what the schema forbids.
    auto bad = doc;
    bad["stats"]["total"]["counters"]["replay.events"] = "many";
    bad["surprise"] = 1;
    bad["stats"]["phases"][0].erase("derived");
    CHECK(schema.check(bad).size() == 3);
  }
}
