// septsim command line: `septsim replay TRACE [options]`.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <systemc>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/sweep.h"
#include "mmu/kvm.h"
#include "model/config.h"
#include "model/phys_mem.h"
#include "traces/checksum.h"
#include "traces/reader.h"
#include "traces/replayer.h"

namespace po = boost::program_options;
using namespace septsim;

namespace {

constexpr int kExitOk = 0, kExitViolations = 1, kExitBadInput = 2;

const char* kUsage =
    "usage: septsim replay TRACE [--config F] [--preset NAME] [--set key=value]...\n"
    "                            [--stats OUT.json] [--quantum NS] [--check] [--quiet]\n"
    "       septsim config [--preset NAME]     list every config key with its value and meaning\n"
    "       septsim sweep SWEEP.json [-j N] [-o DIR] [--emit parallel|slurm]\n"
    "       septsim sweep-merge DIR\n"
    "       septsim --help | --version\n";

// Writes the file next to its final name and renames it, so an interrupted
// run never leaves a stats file that looks whole.
void write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot write stats file");
    out << text;
    if (!out.flush()) throw std::runtime_error(path + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

model::Config build_config(const po::variables_map& vm) {
  model::Config cfg;
  if (vm.count("preset")) cfg.apply_preset(vm["preset"].as<std::string>());
  if (vm.count("config")) cfg.load_file(vm["config"].as<std::string>());
  if (vm.count("set"))
    for (const auto& kv : vm["set"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) throw model::ConfigError("--set " + kv + ": expected key=value");
      cfg.set(kv.substr(0, eq), kv.substr(eq + 1), "--set " + kv);
    }
  if (vm.count("quantum")) cfg.set("sim.quantum_ns", vm["quantum"].as<std::string>(), "--quantum");
  return cfg;
}

int cmd_config(const std::vector<std::string>& args) {
  po::options_description opts("config options");
  opts.add_options()("preset", po::value<std::string>(), "preset to show");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  model::Config cfg = build_config(vm);
  for (const auto& p : model::Config::params())
    std::printf("%-26s %-8s %s\n", p.key.c_str(), cfg.to_json()[p.key].dump().c_str(), p.description.c_str());
  return kExitOk;
}

int cmd_replay(const std::vector<std::string>& args) {
  po::options_description opts("replay options");
  opts.add_options()("help,h", "this help")("config", po::value<std::string>(), "JSON config file")(
      "preset", po::value<std::string>(), "CPU preset: skylake-sp (default), sapphire-rapids")(
      "set", po::value<std::vector<std::string>>(), "override one config key: --set tlb.stlb.entries=2048")(
      "stats", po::value<std::string>(), "write statistics JSON here")(
      "quantum", po::value<std::string>(), "global quantum in ns (sim.quantum_ns); 0 = strict ordering")(
      "check", "check invariants; exit 1 if any is broken")("quiet,q", "no summary on stdout")(
      "trace", po::value<std::string>(), "trace file (JSON Lines)");
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << opts;
    return kExitOk;
  }
  if (!vm.count("trace")) throw po::error("replay needs a TRACE file");

  traces::ReplayOptions ro;
  ro.trace_path = vm["trace"].as<std::string>();
  ro.config = build_config(vm);
  ro.check = vm.count("check") != 0;
  ro.progress = isatty(2) != 0;
  traces::ReplayReport r = traces::replay(ro);

  if (!vm.count("quiet")) std::cout << traces::summary_table(r, ro.config);
  for (const auto& v : r.violations) std::cerr << "invariant: " << v << "\n";
  if (vm.count("stats")) {
    nlohmann::json out;
    out["septsim_version"] = SEPTSIM_VERSION;
    out["trace"] = {{"path", std::filesystem::path(ro.trace_path).filename().string()},
                    {"fnv1a64", traces::fnv1a_hex(r.trace_fnv1a)},
                    {"events", r.events}};
    out["config"] = ro.config.to_json();
    out["sim_time_ps"] = r.sim_time_ps;
    out["stats"] = r.stats;
    out["invariant_violations"] = r.violations;
    write_atomically(vm["stats"].as<std::string>(), out.dump(2) + "\n");
  }
  return ro.check && !r.violations.empty() ? kExitViolations : kExitOk;
}

}  // namespace

// libsystemc's own main() prints a banner on stdout; ours silences it first.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}

int sc_main(int argc, char* argv[]) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitBadInput : kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "septsim " << SEPTSIM_VERSION << "\n";
    return kExitOk;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "replay") return cmd_replay(args);
    if (cmd == "config") return cmd_config(args);
    if (cmd == "sweep") return cli::cmd_sweep(args, std::filesystem::read_symlink("/proc/self/exe").string());
    if (cmd == "sweep-merge") return cli::cmd_sweep_merge(args);
    std::cerr << "septsim: unknown command '" << cmd << "'\n" << kUsage;
    return kExitBadInput;
  } catch (const po::error& e) {
    std::cerr << "septsim: " << e.what() << "\n" << kUsage;
  } catch (const traces::TraceError& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  } catch (const traces::ReplayError& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  } catch (const model::ConfigError& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  } catch (const model::OutOfHostMemory& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  } catch (const mmu::KvmError& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "septsim: " << e.what() << "\n";
  }
  return kExitBadInput;
}
