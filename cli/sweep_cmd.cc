// `septsim sweep` and `septsim sweep-merge`.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "cli/help.h"
#include "cli/sweep.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace septsim::cli {

int cmd_sweep(const std::vector<std::string>& args, const std::string& self) {
  po::options_description opts("sweep options");
  opts.add_options()("help,h", "this help")("jobs,j", po::value<unsigned>(), "parallel points (default: cores)")(
      "out,o", po::value<std::string>(), "output directory (default: sweep-NAME)")(
      "emit", po::value<std::string>(), "write a job list instead of running: parallel (GNU Parallel) or slurm")(
      "resume", "run only the points DIR does not have finished yet (after an interrupted run)");
  po::options_description hidden, all;  // the positional SWEEP.json, left out of --help
  hidden.add_options()("sweep", po::value<std::string>());
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    print_help("sweep", &opts);
    return 0;
  }
  if (vm.count("resume") && vm.count("emit")) throw po::error("--resume runs points here; it does not go with --emit");
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
  RunResult r = run_local(self, spec, dir, jobs, vm.count("resume") != 0);
  std::cout << "wrote " << dir << "/results.csv and " << dir << "/manifest.json";
  if (r.skipped) std::cout << " (" << r.skipped << " points kept from the earlier run)";
  if (r.failed) std::cout << " (" << r.failed << " points failed)";
  std::cout << "\n";
  if (r.signal) {
    std::cerr << "septsim: sweep stopped by " << (r.signal == SIGINT ? "SIGINT" : "SIGTERM") << ": "
              << r.unfinished << " points not run; the finished ones are in the CSV. Resume with:\n  septsim sweep "
              << vm["sweep"].as<std::string>() << " -o " << dir << " --resume\n";
    return 128 + r.signal;
  }
  return r.failed ? 1 : 0;
}

int cmd_sweep_merge(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    print_help("sweep-merge", nullptr);
    return 0;
  }
  if (args.size() != 1) throw po::error("sweep-merge needs one DIR");
  if (!fs::exists(fs::path(args[0]) / "sweep.json"))
    throw std::runtime_error(args[0] + ": not a sweep directory (no sweep.json)");
  size_t missing = merge(args[0]);
  std::cout << "wrote " << args[0] << "/results.csv and " << args[0] << "/manifest.json";
  if (missing) std::cout << " (" << missing << " points have no results)";
  std::cout << "\n";
  return missing ? 1 : 0;
}

}  // namespace septsim::cli
