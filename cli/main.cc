// septsim command line: `septsim replay TRACE [options]`.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <systemc>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/help.h"
#include "cli/sweep.h"
#include "mmu/kvm.h"
#include "model/config.h"
#include "model/phys_mem.h"
#include "traces/checksum.h"
#include "traces/config_check.h"
#include "traces/event_sink.h"
#include "traces/event_source.h"
#include "traces/ftrace_import.h"
#include "traces/generators.h"
#include "traces/kvm_compare.h"
#include "traces/lackey_import.h"
#include "traces/reader.h"
#include "traces/replayer.h"
#include "traces/stat_catalog.h"
#include "traces/trace_input.h"

namespace po = boost::program_options;
using namespace septsim;

namespace {

constexpr int kExitOk = 0, kExitViolations = 1, kExitBadInput = 2;

using cli::print_help;

// The command being run, for the usage printed after a command-line error.
std::string g_command;

// Writes the file next to its final name and renames it, so an interrupted
// run never leaves a stats file (or --check-report) that looks whole.
void write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot write the file");
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

// The options every command that builds a model takes.
void add_model_options(po::options_description& opts) {
  opts.add_options()("config", po::value<std::string>(), "JSON config file")(
      "preset", po::value<std::string>(), "CPU preset: skylake-sp (default), sapphire-rapids")(
      "set", po::value<std::vector<std::string>>(), "override one config key: --set tlb.stlb.entries=2048")(
      "quantum", po::value<std::string>(), "global quantum in ns (sim.quantum_ns); 0 = strict ordering");
}

// Parses `args` with the given positional names; false when --help was
// asked for (and answered).
bool parse_args(const std::string& command, const std::vector<std::string>& args, po::options_description& opts,
                const std::vector<const char*>& positional, po::variables_map& vm) {
  opts.add_options()("help,h", "this help");
  // Positional arguments are options too, but not shown in --help.
  po::options_description hidden, all;
  po::positional_options_description pos;
  for (const char* name : positional) {
    hidden.add_options()(name, po::value<std::string>());
    pos.add(name, 1);
  }
  all.add(opts).add(hidden);
  g_command = command;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    print_help(command, &opts);
    return false;
  }
  return true;
}

// Where a key's value comes from: the declared default, the preset, or the
// --config file / --set options on top.
std::string value_origin(const std::string& key, const nlohmann::json& value, const nlohmann::json& defaults,
                         const nlohmann::json& preset, const std::string& preset_name) {
  if (value != preset[key]) return "set";
  if (value != defaults[key]) return "preset " + preset_name;
  return "default";
}

int cmd_config(const std::vector<std::string>& args) {
  po::options_description opts("config options");
  add_model_options(opts);
  opts.add_options()("json", "print the effective values as a JSON config file (usable as --config F)");
  po::variables_map vm;
  if (!parse_args("config", args, opts, {}, vm)) return kExitOk;
  model::Config cfg = build_config(vm);
  traces::check_config(cfg, "config");
  nlohmann::json values = cfg.to_json();
  if (vm.count("json")) {
    std::cout << values.dump(2) << "\n";
    return kExitOk;
  }
  // The preset a --config file names counts as the preset too.
  model::Config preset_only;
  std::string preset_name = "skylake-sp";
  if (vm.count("preset")) preset_name = vm["preset"].as<std::string>();
  if (vm.count("config")) {
    std::ifstream in(vm["config"].as<std::string>());
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("preset") && j["preset"].is_string()) preset_name = j["preset"].get<std::string>();
  }
  preset_only.apply_preset(preset_name);
  nlohmann::json defaults = model::Config().to_json(), preset = preset_only.to_json();
  std::printf("%-34s %-20s %-22s %s\n", "key", "value", "from", "meaning");
  for (const auto& p : model::Config::params()) {
    std::string v = values[p.key].is_string() ? values[p.key].get<std::string>() : values[p.key].dump();
    std::printf("%-34s %-20s %-22s %s\n", p.key.c_str(), v.c_str(),
                value_origin(p.key, values[p.key], defaults, preset, preset_name).c_str(), p.description.c_str());
  }
  return kExitOk;
}

int cmd_stats(const std::vector<std::string>& args) {
  po::options_description opts("stats options");
  opts.add_options()("list", "describe every statistic and derived metric")("json", "as JSON")(
      "markdown", "as the Markdown tables of docs/stats.md");
  po::variables_map vm;
  if (!parse_args("stats", args, opts, {}, vm)) return kExitOk;
  if (!vm.count("list")) throw po::error("stats needs --list");
  if (vm.count("json") && vm.count("markdown")) throw po::error("--json and --markdown exclude each other");
  auto described = traces::describe_stats(traces::registered_stats(model::Config()));
  if (vm.count("json"))
    std::cout << traces::stat_catalog_json(described).dump(2) << "\n";
  else if (vm.count("markdown"))
    std::cout << traces::stat_catalog_markdown(described);
  else
    std::cout << traces::stat_catalog_text(described);
  return kExitOk;
}

// Rewrites a reader's error about the decompressed copy so it names the
// trace as the user gave it.
[[noreturn]] void rethrow_for(const traces::TraceInput& in, const traces::TraceError& e) {
  if (!in.is_copy()) throw e;
  throw traces::TraceError(in.display(), e.line(), e.field(), e.message());
}

// Runs `read(path)` on `input` (decompressed first when compressed); errors
// name `input`.
template <typename Read>
void read_input(const std::string& input, Read read) {
  traces::TraceInput in(input);
  try {
    read(in.path());
  } catch (const traces::TraceError& e) {
    rethrow_for(in, e);
  }
}

int cmd_replay(const std::vector<std::string>& args) {
  po::options_description opts("replay options");
  add_model_options(opts);
  opts.add_options()("stats", po::value<std::string>(), "write statistics JSON here (written whole or not at all)")(
      "check", "check invariants; exit 1 if any is broken")(
      "check-report", po::value<std::string>(),
      "with --check (implied): write the violations as JSON here (rule, event, file, line, details; written whole "
      "or not at all)")("quiet,q", "no summary on stdout")(
      "emit-kvmmmu", po::value<std::string>(), "write the MMU's decisions as kvm/kvmmmu tracepoint text (ftrace) here")(
      "timeline", po::value<std::string>(), "write a timeline here (Chrome trace-event JSON; Perfetto opens it)")(
      "timeline-from", po::value<u64>(), "timeline: keep events from this simulated time on (ns)")(
      "timeline-to", po::value<u64>(), "timeline: keep events before this simulated time (ns)")(
      "timeline-max-events", po::value<u64>()->default_value(1000000), "timeline: keep at most this many events");
  po::variables_map vm;
  if (!parse_args("replay", args, opts, {"trace"}, vm)) return kExitOk;
  if (!vm.count("trace")) throw po::error("replay needs a TRACE file (or - for standard input)");

  traces::ReplayOptions ro;
  ro.config = build_config(vm);
  traces::check_config(ro.config, "config");
  traces::TraceInput input(vm["trace"].as<std::string>());
  ro.trace_path = input.path();
  ro.display_path = input.display();
  ro.check = vm.count("check") != 0 || vm.count("check-report") != 0;
  ro.progress = isatty(2) != 0;
  if (vm.count("emit-kvmmmu")) ro.emit_kvmmmu = vm["emit-kvmmmu"].as<std::string>();
  if (vm.count("timeline")) {
    ro.timeline.path = vm["timeline"].as<std::string>();
    if (vm.count("timeline-from")) ro.timeline.from_ps = vm["timeline-from"].as<u64>() * 1000;
    if (vm.count("timeline-to")) ro.timeline.to_ps = vm["timeline-to"].as<u64>() * 1000;
    ro.timeline.max_events = vm["timeline-max-events"].as<u64>();
    if (ro.timeline.from_ps >= ro.timeline.to_ps) throw po::error("--timeline-from must be below --timeline-to");
  } else if (vm.count("timeline-from") || vm.count("timeline-to")) {
    throw po::error("--timeline-from and --timeline-to need --timeline OUT.json");
  }
  traces::ReplayReport r;
  try {
    r = traces::replay(ro);
  } catch (const traces::TraceError& e) {
    rethrow_for(input, e);
  }

  if (!vm.count("quiet")) std::cout << traces::summary_table(r, ro.config);
  for (const auto& v : r.violations) std::cerr << "invariant: " << v << "\n";
  for (const auto& m : r.expect_mismatches) std::cerr << "expect: " << m << "\n";
  if (!r.vm_dead.empty()) std::cerr << "vm-dead: " << r.vm_dead << "\n";
  if (vm.count("stats")) {
    nlohmann::json out;
    out["septsim_version"] = SEPTSIM_VERSION;
    std::string shown = input.display() == "-" ? "-" : std::filesystem::path(input.display()).filename().string();
    out["trace"] = {{"path", shown},
                    {"fnv1a64", traces::fnv1a_hex(r.trace_fnv1a)},
                    {"events", r.events}};
    if (input.compression() != traces::Compression::None)
      out["trace"]["compression"] = traces::compression_name(input.compression());
    out["config"] = ro.config.to_json();
    out["sim_time_ps"] = r.sim_time_ps;
    out["stats"] = r.stats;
    out["invariant_violations"] = r.violations;
    if (!r.vm_dead.empty()) out["vm_dead"] = r.vm_dead;
    if (ro.check) out["invariant_checks"] = r.invariant_checks;
    if (r.vms.size() > 1) {
      out["vms"] = nlohmann::json::array();
      for (const auto& v : r.vms)
        out["vms"].push_back({{"prefix", v.prefix}, {"vcpus", v.vcpus}, {"vm_type", v.tdx ? "tdx" : v.native ? "native" : "default"}});
    }
    if (!r.td_series.empty()) {
      nlohmann::json t = nlohmann::json::array(), p = nlohmann::json::array(), sp = nlohmann::json::array();
      for (const auto& x : r.td_series) t.push_back(x.time_ns), p.push_back(x.private_pages), sp.push_back(x.sept_pages);
      out["td_series"] = {{"time_ns", t}, {"private_pages", p}, {"sept_pages", sp}};
    }
    write_atomically(vm["stats"].as<std::string>(), out.dump(2) + "\n");
  }
  if (vm.count("check-report")) {
    const std::string report = traces::check_report_json(r, input.display()).dump(2) + "\n";
    write_atomically(vm["check-report"].as<std::string>(), report);
  }
  if (!r.expect_mismatches.empty()) return kExitViolations;  // a TDX trace's "expect" failed
  // A VM that KVM killed (KVM_BUG_ON, kvm_vm_dead) is a broken run.
  return ro.check && (!r.violations.empty() || !r.vm_dead.empty()) ? kExitViolations : kExitOk;
}

std::optional<mmu::HostBacking> backing_option(const po::variables_map& vm) {
  if (!vm.count("backing")) return std::nullopt;
  std::string b = vm["backing"].as<std::string>();
  if (b == "thp") return mmu::HostBacking::Thp2M;
  if (b == "4k") return mmu::HostBacking::Page4K;
  throw po::error("--backing must be thp or 4k, not '" + b + "'");
}

// --memslots for recordings without a kvmrec start marker.
std::vector<mmu::MemslotSpec> memslots_option(const po::variables_map& vm) {
  if (!vm.count("memslots")) return {};
  try {
    return traces::parse_memslots_option(vm["memslots"].as<std::string>(),
                                         backing_option(vm).value_or(mmu::HostBacking::Thp2M));
  } catch (const std::invalid_argument& e) {
    throw po::error(e.what());
  }
}

constexpr const char* kMemslotsHelp = "the VM's memslots GPA:SIZE[:4k|thp|hugetlb1g[:HVA]],... when the recording has no kvmrec start marker";

void print_import_report(const traces::FtraceImportReport& r, std::ostream& out) {
  out << "imported " << r.event_lines << " events from " << r.lines << " lines: " << r.faults << " faults, "
      << r.decisions << " kernel decisions (" << r.prefetches << " prefetches), " << r.host_unmaps << " host unmaps, "
      << r.markers << " markers; " << r.emulator_walks << " emulator walks dropped; " << r.vcpus << " vCPUs"
      << (r.host_mmu.empty() ? "" : ", " + r.host_mmu + " MMU host") << "\n";
  for (const auto& [name, n] : r.unknown_events) out << "unknown event (counted, not imported): " << name << " x" << n << "\n";
  if (r.unknown_marker_count)
    out << r.unknown_marker_count << " markers outside the vocabulary (docs/markers.md; kept as marker events):\n";
  for (const auto& [text, n] : r.unknown_markers) out << "unknown marker: \"" << text << "\" x" << n << "\n";
  if (r.lost_events) out << r.lost_events << " events lost by the kernel (ring buffer overrun)\n";
  for (const auto& i : r.inferences) out << "inferred: " << i << "\n";
  if (r.malformed_lines) out << r.malformed_lines << " malformed lines skipped (first: line " << r.first_malformed_line << ")\n";
  for (const auto& w : r.warnings) out << "warning: " << w << "\n";
}

// Writes the events `produce` puts into OUT (format by extension); on any
// error OUT is removed, so no partial file looks whole.
template <typename Produce>
void write_events(const std::string& out, const std::string& description, Produce produce) {
  auto sink = traces::open_event_sink(out, description);
  try {
    produce(*sink);
    sink->finish();
  } catch (...) {
    sink.reset();
    std::filesystem::remove(out);
    throw;
  }
}

std::string imported_from(const po::variables_map& vm) {
  return "imported from " + std::filesystem::path(vm["input"].as<std::string>()).filename().string();
}

int cmd_import_ftrace(const std::vector<std::string>& args) {
  po::options_description opts("import ftrace options");
  opts.add_options()("output,o", po::value<std::string>(), "output trace (.jsonl or .sstb)")(
      "backing", po::value<std::string>(), "host backing of the data memslots: thp or 4k")(
      "vcpus", po::value<unsigned>(), "vCPUs (default: from the kvmrec start marker or the faulting tasks)")(
      "memslots", po::value<std::string>(), kMemslotsHelp);
  po::variables_map vm;
  if (!parse_args("import ftrace", args, opts, {"format", "input"}, vm)) return kExitOk;
  if (!vm.count("input")) throw po::error("import ftrace needs an input file");
  if (!vm.count("output")) throw po::error("import needs -o OUT");
  traces::FtraceImportOptions io;
  io.backing = backing_option(vm);
  io.memslots = memslots_option(vm);
  if (vm.count("vcpus")) {
    unsigned n = vm["vcpus"].as<unsigned>();
    if (n < 1 || n > traces::TraceReader::kMaxVcpus) throw po::error("--vcpus must be 1..256");
    io.vcpus = n;
  }
  traces::FtraceImportReport r;
  write_events(vm["output"].as<std::string>(), imported_from(vm),
               [&](traces::EventSink& sink) {
                 read_input(vm["input"].as<std::string>(), [&](const std::string& path) { r = traces::import_ftrace(path, sink, io); });
               });
  print_import_report(r, std::cerr);
  return kExitOk;
}

// One of `names`, by position: the option's value must be one of them.
int choice(const po::variables_map& vm, const char* option, const std::vector<const char*>& names) {
  std::string v = vm[option].as<std::string>();
  for (size_t i = 0; i < names.size(); ++i)
    if (v == names[i]) return int(i);
  std::string known;
  for (const char* n : names) known += std::string(known.empty() ? "" : ", ") + n;
  throw po::error(std::string("--") + option + " must be one of " + known + ", not '" + v + "'");
}

traces::LackeyImportOptions lackey_options(const po::variables_map& vm) {
  traces::LackeyImportOptions lo;
  lo.paging.page_level = PG_LEVEL_4K + choice(vm, "page-size", {"4k", "2m", "1g"});
  lo.paging.placement = choice(vm, "placement", {"sequential", "fragmented"}) ? traces::GuestPlacement::Fragmented
                                                                              : traces::GuestPlacement::Sequential;
  lo.paging.seed = vm["seed"].as<unsigned long long>();
  lo.paging.backing = mmu::HostBacking(choice(vm, "backing", {"4k", "thp", "hugetlb1g"}));
  if (!traces::parse_trace_number(vm["mem"].as<std::string>(), lo.paging.mem_size))
    throw po::error("--mem: bad size '" + vm["mem"].as<std::string>() + "'");
  lo.vcpu = vm["vcpu"].as<unsigned>();
  lo.ifetch = choice(vm, "ifetch", {"exec", "drop"}) == 0;
  lo.td.enabled = choice(vm, "vm-type", {"vm", "tdx"}) == 1;
  lo.td.accept_2m = choice(vm, "accept", {"2m", "4k"}) == 0;
  if (vm.count("shared")) {
    if (!lo.td.enabled) throw po::error("--shared needs --vm-type tdx");
    std::string v = vm["shared"].as<std::string>();
    auto colon = v.find(':');
    if (colon == std::string::npos || !traces::parse_trace_number(v.substr(0, colon), lo.td.shared_gva) ||
        !traces::parse_trace_number(v.substr(colon + 1), lo.td.shared_size) || lo.td.shared_size == 0)
      throw po::error("--shared must be GVA:SIZE (e.g. 0x7f0000000000:1M), not '" + v + "'");
  }
  lo.warmup = vm["warmup"].as<unsigned long long>();
  return lo;
}

// The options of `import lackey` and `import champsim` (the same guest, VM or TD).
void add_gva_stream_options(po::options_description& opts) {
  opts.add_options()("output,o", po::value<std::string>(), "output trace (.jsonl or .sstb)")(
      "page-size", po::value<std::string>()->default_value("4k"), "guest page size: 4k, 2m (THP) or 1g")(
      "placement", po::value<std::string>()->default_value("sequential"), "guest frames: sequential or fragmented")(
      "seed", po::value<unsigned long long>()->default_value(1), "shuffle seed of --placement fragmented")(
      "mem", po::value<std::string>()->default_value("4G"), "guest memory (one memslot at GPA 0)")(
      "backing", po::value<std::string>()->default_value("thp"), "host backing of guest memory: 4k, thp or hugetlb1g")(
      "vcpu", po::value<unsigned>()->default_value(0), "vCPU that runs the program (the VM gets vcpu+1 vCPUs)")(
      "ifetch", po::value<std::string>()->default_value("exec"), "instruction fetches: exec (op x accesses) or drop")(
      "vm-type", po::value<std::string>()->default_value("vm"),
      "vm, or tdx: the program runs in a TD (private memory accepted before first touch, finalize, teardown)")(
      "accept", po::value<std::string>()->default_value("2m"),
      "TD acceptance: 2m (a 2M ACCEPT per 2 MiB region where the host backing is 2M or 1G, else 4K) or 4k")(
      "shared", po::value<std::string>(), "TD: GVA:SIZE mapped shared (MapGPA before first touch), e.g. I/O buffers")(
      "warmup", po::value<unsigned long long>()->default_value(0),
      "accesses before a 'measured' phase starts (0: one phase, or the log's phase markers)");
}

// `septsim import lackey|champsim`: the same guest machinery, two input formats.
int cmd_import_gva_stream(const std::vector<std::string>& args, bool champsim) {
  const std::string cmd = champsim ? "import champsim" : "import lackey";
  po::options_description opts(cmd + " options");
  add_gva_stream_options(opts);
  po::variables_map vm;
  if (!parse_args(cmd, args, opts, {"format", "input"}, vm)) return kExitOk;
  if (!vm.count("input")) throw po::error(cmd + " needs an input file");
  if (!vm.count("output")) throw po::error("import needs -o OUT");
  traces::LackeyImportOptions lo = lackey_options(vm);
  traces::LackeyImportReport r;
  write_events(vm["output"].as<std::string>(), imported_from(vm),
               [&](traces::EventSink& sink) {
                 read_input(vm["input"].as<std::string>(), [&](const std::string& path) {
                   r = champsim ? traces::import_champsim(path, sink, lo) : traces::import_lackey(path, sink, lo);
                 });
               });
  if (champsim)
    std::cerr << "imported " << r.lines << " records: " << r.fetches << " instructions, " << r.loads << " loads, "
              << r.stores << " stores; " << r.accesses << " accesses in " << r.access_events << " access events; "
              << r.guest_pages << " guest pages and " << r.guest_tables << " guest page tables mapped";
  else
    std::cerr << "imported " << r.lines << " lines: " << r.fetches << " fetches, " << r.loads << " loads, " << r.stores
              << " stores, " << r.modifies << " modifies; " << r.accesses << " accesses in " << r.access_events
              << " access events; " << r.guest_pages << " guest pages and " << r.guest_tables
              << " guest page tables mapped; " << r.noise_lines << " other lines skipped";
  if (r.noise_lines) std::cerr << " (first: line " << r.first_noise_line << ")";
  if (r.phase_markers) std::cerr << "; " << r.phase_markers << " phase markers";
  std::cerr << "\n";
  if (r.unknown_markers) {
    std::cerr << r.unknown_markers << " unknown markers (VALGRIND_PRINTF lines that are not \"septsim: phase begin|end "
              << "NAME\"), kept out of the trace:\n";
    for (const auto& [line, text] : r.first_unknown_markers) std::cerr << "  line " << line << ": " << text << "\n";
    if (r.unknown_markers > r.first_unknown_markers.size())
      std::cerr << "  ... and " << r.unknown_markers - r.first_unknown_markers.size() << " more\n";
  }
  if (lo.td.enabled)
    std::cerr << "TD: " << r.accepts_2m << " 2M and " << r.accepts_4k << " 4K accepts, " << r.shared_pages
              << " pages converted to shared\n";
  if (lo.warmup && !r.measured_phase)
    std::cerr << "warning: --warmup " << lo.warmup << " is not below the " << r.accesses
              << " accesses: no measured phase\n";
  return kExitOk;
}

int cmd_import(const std::vector<std::string>& args) {
  std::string format = args.empty() ? "" : args[0];
  if (format == "ftrace") return cmd_import_ftrace(args);
  if (format == "lackey") return cmd_import_gva_stream(args, false);
  if (format == "champsim") return cmd_import_gva_stream(args, true);
  if (format == "--help" || format == "-h") {
    print_help("import ftrace", nullptr);
    std::cout << "\n";
    print_help("import lackey", nullptr);
    std::cout << "\n";
    print_help("import champsim", nullptr);
    std::cout << "\n`septsim import FORMAT --help` shows the options of one format.\n";
    return kExitOk;
  }
  g_command = "import";
  throw po::error("import needs a format: septsim import ftrace|lackey|champsim IN -o OUT");
}

int cmd_kvm_compare(const std::vector<std::string>& args) {
  po::options_description opts("kvm-compare options");
  add_model_options(opts);
  opts.add_options()("kvm-stats", po::value<std::string>(), "KVM's stats JSON (vm_at_end per phase)")(
      "json", po::value<std::string>(), "write the comparison as JSON here")(
      "backing", po::value<std::string>(), "host backing of the data memslots: thp or 4k")(
      "memslots", po::value<std::string>(), kMemslotsHelp)("quiet,q", "no table on stdout");
  po::variables_map vm;
  if (!parse_args("kvm-compare", args, opts, {"trace"}, vm)) return kExitOk;
  if (!vm.count("trace")) throw po::error("kvm-compare needs a TRACE file");
  traces::KvmCompareOptions ko;
  ko.trace_path = vm["trace"].as<std::string>();
  if (vm.count("kvm-stats")) ko.stats_path = vm["kvm-stats"].as<std::string>();
  ko.config = build_config(vm);
  ko.import.backing = backing_option(vm);
  ko.import.memslots = memslots_option(vm);
  if (vm.count("json")) ko.work_dir = std::filesystem::absolute(vm["json"].as<std::string>()).parent_path().string();
  traces::KvmCompareResult r = traces::kvm_compare(ko);
  if (!vm.count("quiet")) std::cout << r.table();
  if (vm.count("json")) write_atomically(vm["json"].as<std::string>(), r.to_json().dump(2) + "\n");
  return kExitOk;
}

int cmd_convert(const std::vector<std::string>& args) {
  g_command = "convert";
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    print_help("convert", nullptr);
    return kExitOk;
  }
  if (args.size() != 2) throw po::error("convert needs IN and OUT");
  if (std::filesystem::exists(args[1]) && std::filesystem::equivalent(args[0], args[1]))
    throw po::error("convert: IN and OUT are the same file");
  auto src = traces::open_event_source(args[0]);
  write_events(args[1], "", [&](traces::EventSink& sink) {
    traces::Event e;
    while (src->next(e)) sink.put(e);
  });
  return kExitOk;
}

int cmd_gen(const std::vector<std::string>& args) {
  po::options_description opts("gen options");
  opts.add_options()("list", "list the generators")("output,o", po::value<std::string>(), "output trace (.jsonl or .sstb)")(
      "vcpus", po::value<unsigned>()->default_value(1), "vCPUs")("size", po::value<std::string>()->default_value("256M"), "guest memory")(
      "seed", po::value<unsigned long long>()->default_value(1), "random seed")(
      "count", po::value<unsigned long long>()->default_value(100000), "accesses (or rounds) to generate");
  po::variables_map vm;
  bool help = !parse_args("gen", args, opts, {"name"}, vm);
  if (help || vm.count("list")) {
    if (help) std::cout << "\ngenerators:\n";
    for (const auto& g : traces::generators()) std::cout << "  " << g.name << ": " << g.description << "\n";
    return kExitOk;
  }
  if (!vm.count("name")) throw po::error("gen needs a generator NAME (septsim gen --list)");
  if (!vm.count("output")) throw po::error("gen needs -o OUT");
  traces::GenOptions go;
  go.vcpus = vm["vcpus"].as<unsigned>();
  if (!traces::parse_trace_number(vm["size"].as<std::string>(), go.size)) throw po::error("--size: bad size '" + vm["size"].as<std::string>() + "'");
  go.seed = vm["seed"].as<unsigned long long>();
  go.count = vm["count"].as<unsigned long long>();
  write_events(vm["output"].as<std::string>(), "septsim gen " + vm["name"].as<std::string>(),
               [&](traces::EventSink& sink) { traces::generate(vm["name"].as<std::string>(), go, sink); });
  return kExitOk;
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
    std::cout << cli::global_usage();
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
    if (cmd == "stats") return cmd_stats(args);
    if (cmd == "import") return cmd_import(args);
    if (cmd == "kvm-compare") return cmd_kvm_compare(args);
    if (cmd == "convert") return cmd_convert(args);
    if (cmd == "gen") return cmd_gen(args);
    g_command = cmd;
    if (cmd == "sweep") return cli::cmd_sweep(args, std::filesystem::read_symlink("/proc/self/exe").string());
    if (cmd == "sweep-merge") return cli::cmd_sweep_merge(args);
    std::cerr << "septsim: unknown command '" << cmd << "'\n" << cli::global_usage();
    return kExitBadInput;
  } catch (const po::error& e) {
    std::cerr << "septsim: " << e.what() << "\n" << cli::short_usage(g_command.empty() ? cmd : g_command);
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
