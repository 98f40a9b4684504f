// `septsim sweep` and `septsim sweep-merge`.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "cli/sweep.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace septsim::cli {

int cmd_sweep(const std::vector<std::string>& args, const std::string& self) {
  po::options_description opts("sweep options");
  opts.add_options()("help,h", "this help")("jobs,j", po::value<unsigned>(), "parallel points (default: cores)")(
      "out,o", po::value<std::string>(), "output directory (default: sweep-NAME)")(
      "emit", po::value<std::string>(), "write a job list instead of running: parallel (GNU Parallel) or slurm")(
      "sweep", po::value<std::string>(), "sweep file (JSON)");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: septsim sweep SWEEP.json [-j N] [-o DIR] [--emit parallel|slurm]\n\n" << opts;
    return 0;
  }
  if (!vm.count("sweep")) throw po::error("sweep needs a SWEEP.json file");
  SweepSpec spec = SweepSpec::load(vm["sweep"].as<std::string>());
  std::string name = spec.raw.contains("name") ? spec.raw["name"].get<std::string>()
                                                : fs::path(spec.path).stem().string();
  std::string dir = fs::absolute(vm.count("out") ? vm["out"].as<std::string>() : "sweep-" + name).string();
  if (vm.count("emit")) {
    emit_jobs(self, spec, dir, vm["emit"].as<std::string>());
    return 0;
  }
  unsigned jobs = vm.count("jobs") ? vm["jobs"].as<unsigned>() : unsigned(sysconf(_SC_NPROCESSORS_ONLN));
  size_t failed = run_local(self, spec, dir, jobs);
  std::cout << "wrote " << dir << "/results.csv and " << dir << "/manifest.json";
  if (failed) std::cout << " (" << failed << " points failed)";
  std::cout << "\n";
  return failed ? 1 : 0;
}

int cmd_sweep_merge(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: septsim sweep-merge DIR   (DIR as written by septsim sweep --emit)\n";
    return args.size() == 1 ? 0 : 2;
  }
  if (!fs::exists(fs::path(args[0]) / "sweep.json"))
    throw std::runtime_error(args[0] + ": not a sweep directory (no sweep.json)");
  size_t missing = merge(args[0]);
  std::cout << "wrote " << args[0] << "/results.csv and " << args[0] << "/manifest.json";
  if (missing) std::cout << " (" << missing << " points have no results)";
  std::cout << "\n";
  return missing ? 1 : 0;
}

}  // namespace septsim::cli
