// Import of ftrace / trace-cmd text recordings of the kernel's `kvm` and
// `kvmmmu` tracepoints (arch/x86/kvm/mmu/mmutrace.h; the tracefs `trace` file and
// `trace-cmd report` output) into septsim events: the hardware fault stream
// (one `access` per EPT/NPT violation or shadow #PF, with vCPU, GPA, access
// type and time) plus what the kernel decided (`kvm_decision` annotations:
// mapping level per fault, prefetch, fast-PF fixes, zaps, fast zaps, splits),
// `marker`s and `phase`s from `tracing_mark_write`, memslots from the
// `kvmrec: start` marker and `host_unmap`s from `kvm_unmap_hva_range`.
//
// The file is read a chunk at a time; state is per task (a handful), so any
// size imports in constant memory. Unknown events and malformed lines are
// counted and reported, never fatal.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmu/kvm.h"
#include "traces/event_sink.h"

namespace septsim::traces {

// One event line: `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: BODY` (FLAGS is
// optional, as in `trace-cmd report`; TASK may contain spaces and dashes).
struct FtraceRecord {
  std::string_view task;
  u32 pid = 0;
  u32 cpu = 0;
  std::string_view flags;
  u64 ts_ns = 0;
  std::string_view event;
  std::string_view body;
};

// A recording read record by record in time order: trace-cmd's trace.dat
// (traces/tracedat_import.h). Text recordings are read line by line instead.
class FtraceRecordSource {
 public:
  virtual ~FtraceRecordSource() = default;
  // The next record (valid until the next call); false at the end.
  virtual bool next(FtraceRecord& r) = 0;
  // Back to the first record (the import reads a file twice).
  virtual void rewind() = 0;
  // Events the kernel dropped (ring buffer overruns) before the records read so far.
  virtual u64 lost_events() const = 0;
};

// Splits one line (without its newline). False for anything that is not an
// event line: headers, comments, blank or malformed lines.
bool parse_ftrace_line(std::string_view line, FtraceRecord& out);

struct FtraceImportOptions {
  // Host backing of the data memslots (those the start marker does not call
  // "sys"); default: THP when the marker says thp=on, else 4K.
  std::optional<mmu::HostBacking> backing;
  // vCPUs of the VM; 0 = from the start marker, else counted in a pre-scan.
  u32 vcpus = 0;
  // The VM's memslots for a recording without a `kvmrec: start` marker
  // (--memslots); when given, they are the data slots and a start marker's
  // slots are ignored.
  std::vector<mmu::MemslotSpec> memslots;
};

// Parses --memslots "GPA:SIZE[:BACKING[:HVA]],..." (numbers in the trace
// syntax: "0x40000000", "256M"; BACKING 4k, thp or hugetlb1g, default
// `backing`); slot ids are the positions. Throws std::invalid_argument
// naming the bad part.
std::vector<mmu::MemslotSpec> parse_memslots_option(std::string_view text, mmu::HostBacking backing);

struct FtraceImportReport {
  u64 lines = 0;            // all lines
  u64 event_lines = 0;      // lines that parsed as events
  u64 malformed_lines = 0;  // neither comment, blank nor event
  u64 first_malformed_line = 0;
  std::map<std::string, u64> event_counts;    // every event name, known or not
  std::map<std::string, u64> unknown_events;  // names the importer does not interpret
  u64 faults = 0;            // access events written
  u64 decisions = 0;         // kvm_decision events written
  u64 prefetches = 0;        // of which SPTE prefetch
  u64 emulator_walks = 0;    // shadow walks that are no hardware fault (emulator, guest #PF)
  u64 host_unmaps = 0;       // host_unmap events written (unmaps overlapping a memslot)
  u64 markers = 0;
  u64 lost_events = 0;
  // Markers that are neither kvmrec's forms nor the vocabulary's
  // (docs/markers.md): their number, and each text (first 120 characters) with its count.
  u64 unknown_marker_count = 0;
  std::map<std::string, u64> unknown_markers;
  // Inferred from the kernel's events where no marker says it (reported only).
  u64 write_protects = 0;  // present leaf SPTEs that lost W (kvm_tdp_mmu_spte_changed)
  std::vector<std::string> inferences;       // trace.dat: events the kernel's ring buffer dropped
  u32 vcpus = 0;
  std::string host_mmu;      // "shadow", "tdp" or "" (no fault seen)
  std::vector<std::string> warnings;  // the first few, "FILE:LINE: ..."
};

// Imports `path` into `sink` (which it does not finish). Throws TraceError
// when the file cannot be read, is not ftrace text at all, or is inconsistent
// (more vCPU threads than declared vCPUs).
// A trace-cmd trace.dat (by its magic) is read through libtracecmd; its
// "line" numbers in messages are record numbers in time order.
FtraceImportReport import_ftrace(const std::string& path, EventSink& sink, const FtraceImportOptions& opts = {});

}  // namespace septsim::traces
