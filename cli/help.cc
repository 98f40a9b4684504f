// The usage text of every command, shared by `septsim --help`,
// `septsim CMD --help` and the usage printed after a command-line error.
#include "cli/help.h"

#include <iostream>
#include <stdexcept>

namespace septsim::cli {

namespace po = boost::program_options;

namespace {

// One entry per command: its usage lines and what it does. `septsim --help`
// prints every usage; `septsim CMD --help` one entry and its options.

const std::vector<CommandHelp> kCommands = {
    {"replay",
     "septsim replay TRACE|- [--config F] [--preset NAME] [--set key=value]...\n"
     "                      [--stats OUT.json] [--quantum NS] [--check] [--check-report OUT.json] [--quiet]\n"
     "                      [--emit-kvmmmu OUT.trace]\n"
     "                      [--timeline OUT.json [--timeline-from NS] [--timeline-to NS] [--timeline-max-events N]]",
     "Replays a trace (JSON Lines or .sstb, plain or gzip/xz/zstd compressed; - reads standard input) and prints\n"
     "the report: counters, the derived metrics per phase (docs/stats.md) and, with --check, the one-line verdict\n"
     "'invariants: K broken, N checks, M rules' (docs/invariants.md). --check-report writes the violations as JSON\n"
     "for CI tools (rule, event, file, line, details; whole or not at all) and implies --check."},
    {"config", "septsim config [--config F] [--preset NAME] [--set key=value]... [--quantum NS] [--json]",
     "Prints the configuration these options give: every key, its value, where the value comes from and what it\n"
     "means (--json: the effective values as a config file). Impossible TLB or cache geometry is an error."},
    {"stats", "septsim stats --list [--json | --markdown]",
     "Describes every statistic of the stats file (name, kind, unit, module, meaning) and the derived metrics\n"
     "with their formulas."},
    {"import ftrace",
     "septsim import ftrace IN.trace -o OUT.jsonl|OUT.sstb [--backing thp|4k] [--vcpus N] [--memslots SLOTS]",
     "Imports kvm/kvmmmu tracepoints recorded with ftrace: the text (tracefs `trace`, `trace-cmd report`) or\n"
     "trace-cmd's binary trace.dat (docs/kvm-compare.md); IN may be gzip, xz or zstd compressed. Markers a VMM\n"
     "writes to trace_marker become memslot, dirty-log, TD and phase events (docs/markers.md)."},
    {"import lackey",
     "septsim import lackey IN.log -o OUT [--page-size 4k|2m|1g] [--placement sequential|fragmented] [--seed N]\n"
     "                             [--mem SIZE] [--backing 4k|thp|hugetlb1g] [--vcpu N] [--ifetch exec|drop]\n"
     "                             [--vm-type vm|tdx] [--accept 2m|4k] [--shared GVA:SIZE] [--warmup N]",
     "Imports a valgrind lackey log as a guest-linear access stream (docs/lackey-import.md), in a VM or in a TD\n"
     "(docs/your-program.md); IN may be gzip, xz or zstd compressed. Phase markers: lines the program writes with\n"
     "VALGRIND_PRINTF(\"septsim: phase begin NAME\\n\") and (\"septsim: phase end NAME\\n\") become phase events\n"
     "(the accesses after an end: phase after-NAME); other VALGRIND_PRINTF lines are counted and listed."},
    {"import champsim",
     "septsim import champsim IN.trace -o OUT [--page-size 4k|2m|1g] [--placement sequential|fragmented] [--seed N]\n"
     "                                [--mem SIZE] [--backing 4k|thp|hugetlb1g] [--vcpu N] [--ifetch exec|drop]\n"
     "                                [--vm-type vm|tdx] [--accept 2m|4k] [--shared GVA:SIZE] [--warmup N]",
     "Imports a ChampSim trace (64-byte input_instr records; IN may be xz, gzip or zstd compressed) as a\n"
     "guest-linear access stream: a fetch at each ip, loads and stores at its memory operands\n"
     "(docs/lackey-import.md), in a VM or a TD."},
    {"kvm-compare",
     "septsim kvm-compare TRACE [--kvm-stats STATS.json] [--json OUT] [--backing thp|4k] [--memslots SLOTS]\n"
     "                           [--config F] [--preset NAME] [--set key=value]... [--quantum NS] [--quiet]",
     "Replays an ftrace recording and compares the model's MMU decisions with the real kernel's\n"
     "(docs/kvm-compare.md)."},
    {"convert", "septsim convert IN OUT", "Converts a trace between JSON Lines and binary .sstb (by OUT's extension)."},
    {"gen", "septsim gen NAME -o OUT [--vcpus N] [--size S] [--seed N] [--count N] [--list]",
     "Writes a synthetic trace."},
    {"sweep", "septsim sweep SWEEP.json [-j N] [-o DIR] [--emit parallel|slurm] [--resume]",
     "Runs a what-if sweep (docs/sweeps.md): one replay per point, results.csv and manifest.json in DIR."},
    {"sweep-merge", "septsim sweep-merge DIR",
     "Builds DIR/results.csv and DIR/manifest.json from points run by GNU Parallel or Slurm."},
};

}  // namespace

std::string global_usage() {
  std::string out = "usage: ";
  bool first = true;
  for (const auto& c : kCommands) {
    // Continuation lines are indented for a "usage: " prefix.
    out += (first ? "" : "       ") + std::string(c.usage) + "\n";
    first = false;
  }
  out += "       septsim --help | --version\n"
         "`septsim CMD --help` shows one command's options. Exit codes: 0 ok, 1 --check found broken invariants,\n"
         "2 bad input.\n";
  return out;
}

const CommandHelp& command_help(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return c;
  throw std::logic_error("no help for " + name);
}

const std::vector<CommandHelp>& commands() { return kCommands; }

std::string short_usage(const std::string& name) {
  std::string out;
  for (const auto& c : kCommands)
    if (std::string(c.name) == name || std::string(c.name).starts_with(name + " "))
      out += std::string(out.empty() ? "usage: " : "       ") + c.usage + "\n";
  if (out.empty()) return global_usage();
  return out + "(septsim " + name + " --help for the options)\n";
}

void print_help(const std::string& name, const po::options_description* opts) {
  const CommandHelp& c = command_help(name);
  std::cout << "usage: " << c.usage << "\n\n" << c.what << "\n";
  if (opts) std::cout << "\n" << *opts;
}

}  // namespace septsim::cli
