// Throughput of the trace readers and the ftrace importer (septsim-bench
// import-ftrace | jsonl-read | binary-read). Inputs are generated in $TMPDIR
// and removed afterwards; no SystemC simulation is started.
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "traces/binary_trace.h"
#include "traces/ftrace_import.h"
#include "traces/generators.h"
#include "traces/jsonl_writer.h"
#include "traces/reader.h"

using namespace septsim;
namespace fs = std::filesystem;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU seconds of this process: on a machine shared with other builds, wall
// time measures the others too.
double cpu_s() {
  timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void report(const char* name, double value, const char* unit, double target) {
  std::printf("%-14s %14.0f %-12s target >= %.0f  %s\n", name, value, unit, target, value >= target ? "ok" : "BELOW TARGET");
}

struct NullSink : traces::EventSink {
  u64 n = 0;
  void put(const traces::Event&) override { ++n; }
  void finish() override {}
};

// A shadow-MMU recording shaped like tests/data/kvm-shadow/random.trace,
// repeated until it is `bytes` long.
void write_ftrace(const fs::path& p, u64 bytes) {
  std::ofstream o(p);
  o << "# tracer: nop\n#\n";
  o << "             vmm-100   [000] ...1.  1.000000: tracing_mark_write: kvmrec: start workload=random mem_mib=256 "
       "vcpus=2 thp=on guest_pages=2m cpl=3 pid=100 slot0(sys) gpa=0x0 size=0x200000 hva=0x7f0000000000 "
       "slot1(data) gpa=0x40000000 size=0x10000000 hva=0x7f1000000000\n";
  u64 written = 0, i = 0;
  char line[2048];
  while (written < bytes) {
    unsigned pid = 101 + unsigned(i & 1);
    unsigned long long gfn = 0x40000 + ((i * 2654435761u) & 0xffff), ts = 1000000 + i;
    int n = std::snprintf(line, sizeof line,
                          "             vmm-%u   [001] .....  %llu.%06llu: kvm_mmu_pagetable_walk: addr %llx pferr 6 W|U\n"
                          "             vmm-%u   [001] .....  %llu.%06llu: kvm_mmu_paging_element: pte 2067 level 4\n"
                          "             vmm-%u   [001] .....  %llu.%06llu: kvm_mmu_paging_element: pte 100067 level 3\n"
                          "             vmm-%u   [001] .....  %llu.%06llu: kvm_mmu_paging_element: pte %llxe7 level 2\n"
                          "             vmm-%u   [001] ...1.  %llu.%06llu: kvm_mmu_spte_requested: gfn %llx pfn 141600 level 2\n"
                          "             vmm-%u   [001] ...1.  %llu.%06llu: kvm_mmu_set_spte: gfn %llx spte 141600ee7 (rwxu) level 2 at 1125b6000\n",
                          pid, ts / 1000000, ts % 1000000, gfn << 12, pid, ts / 1000000, ts % 1000000, pid, ts / 1000000,
                          ts % 1000000, pid, ts / 1000000, ts % 1000000, (gfn & ~0x1ffull) << 12 >> 8, pid,
                          ts / 1000000, ts % 1000000, gfn, pid, ts / 1000000, ts % 1000000, gfn & ~0x1ffull);
    o.write(line, n);
    written += u64(n);
    ++i;
  }
}

}  // namespace

int import_bench(const std::string& which) {
  fs::path dir = fs::temp_directory_path() / ("septsim-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  int rc = 0;
  if (which == "import-ftrace") {
    fs::path in = dir / "rec.trace";
    write_ftrace(in, 256ull << 20);
    NullSink sink;
    double t0 = now_s();
    auto r = traces::import_ftrace(in.string(), sink);
    double t = now_s() - t0;
    std::fprintf(stderr, "import-ftrace: %llu lines, %llu faults, %llu events out\n", (unsigned long long)r.lines,
                 (unsigned long long)r.faults, (unsigned long long)sink.n);
    report("import-ftrace", double(fs::file_size(in)) / t / 1e6, "MB/s", 100);
  } else if (which == "jsonl-read" || which == "binary-read") {
    bool bin = which == "binary-read";
    fs::path p = dir / (bin ? "t.sstb" : "t.jsonl");
    traces::GenOptions g;
    g.count = bin ? 50'000'000 : 5'000'000;
    g.vcpus = 4;
    {
      std::unique_ptr<traces::EventSink> sink;
      if (bin) sink = std::make_unique<traces::BinaryTraceWriter>(p.string());
      else sink = std::make_unique<traces::JsonlWriter>(p.string());
      traces::generate("random", g, *sink);
      sink->finish();
    }
    traces::Event e;
    u64 n = 0;
    double t0 = now_s(), c0 = cpu_s();
    if (bin) {
      // As the replayer reads: runs of plain accesses through next_accesses(), the rest through next().
      traces::BinaryTraceReader r(p.string());
      std::vector<traces::PlainAccess> run(4096);
      for (;;) {
        if (const size_t k = r.next_accesses(run.data(), run.size())) {
          n += k;
          continue;
        }
        if (!r.next(e)) break;
        ++n;
      }
    } else {
      traces::TraceReader r(p.string());
      while (r.next(e)) ++n;
    }
    double t = now_s() - t0, c = cpu_s() - c0;
    std::fprintf(stderr, "%s: %llu events, %.1f MB, %.2f s wall (%.1f M events/s), %.2f CPU s\n", which.c_str(),
                 (unsigned long long)n, double(fs::file_size(p)) / 1e6, t, double(n) / t / 1e6, c);
    report((which + "/cpu").c_str(), double(n) / c, "events/CPU s", bin ? 100e6 : 2e6);
  } else {
    rc = 2;
  }
  fs::remove_all(dir);
  return rc;
}
