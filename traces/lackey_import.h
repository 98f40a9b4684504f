// Import of `valgrind --tool=lackey --trace-mem=yes` logs: the program's
// memory accesses as a guest-linear access stream of one vCPU, driven through
// 2D walks by a guest paging model that maps each guest page on first touch
// (traces/guest_paging_model.h).
//
// Lines lackey writes (any other line, such as the `==PID==` banner or the
// program's own output, is noise: counted and skipped, except the markers
// below):
//   "I  ADDR,SIZE"   instruction fetch       -> op "x" (or dropped, --ifetch drop)
//   " L ADDR,SIZE"   data load               -> op "r"
//   " S ADDR,SIZE"   data store              -> op "w"
//   " M ADDR,SIZE"   load then store (RMW)   -> op "r", then op "w"
// ADDR is hex without "0x", SIZE decimal bytes. An access that crosses a
// 4 KiB boundary touches every 4 KiB page it covers (one access each).
// Consecutive accesses with the same op at a constant forward stride become
// one `access` event with count and stride. The file is streamed.
//
// Phase markers: a program marks its region of interest with valgrind's
// client request VALGRIND_PRINTF (valgrind.h), which valgrind writes into the
// same log, in order with lackey's lines, as "**PID** TEXT":
//   "**PID** septsim: phase begin NAME"  -> a `phase` event NAME
//   "**PID** septsim: phase end NAME"    -> a phase "after-NAME" starts at the
//                                           next access (none when a begin or
//                                           the end of the log comes first)
// Any other "**PID** " line is an unknown marker: counted and listed, never
// an event. Another "septsim:" text, an end that does not name the phase
// begun, or markers together with --warmup are bad input.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "traces/event_sink.h"
#include "traces/guest_paging_model.h"

namespace septsim::traces {

// The program runs inside a TD (--vm-type tdx): the VM is a TD with every
// page private, finalized before the program's first access and torn down
// after its last. The guest accepts each private page before its first
// touch, as a Linux TD does with lazy acceptance: with `accept_2m`, the
// whole 2 MiB region around it by one 2M TDG.MEM.PAGE.ACCEPT when the host
// backs guest memory with 2 MiB pages (thp, hugetlb1g), page by page (4K)
// otherwise or without `accept_2m`. Page-table pages are accepted the same
// way before the guest writes them. Pages of [shared_gva, shared_gva +
// shared_size) are mapped at shared GPAs instead (the shared bit, 47, set):
// the guest converts each by MapGPA before its first touch and accepts nothing.
struct LackeyTdOptions {
  bool enabled = false;
  bool accept_2m = true;
  Gva shared_gva = 0;
  u64 shared_size = 0;
};

struct LackeyImportOptions {
  GuestPagingOptions paging;  // guest memory, page size, placement
  u32 vcpu = 0;               // the vCPU that runs the stream; the VM gets vcpu + 1 vCPUs
  bool ifetch = true;         // instruction fetches are accesses (op "x"); false drops them
  LackeyTdOptions td;
  // When > 0: a `phase` event "measured" after this many accesses, so the
  // program's start-up stays in the first phase ("warmup"). Not together
  // with phase markers in the log.
  u64 warmup = 0;
};

struct LackeyImportReport {
  u64 lines = 0;               // all lines
  u64 fetches = 0;             // "I" lines
  u64 loads = 0, stores = 0, modifies = 0;  // "L", "S", "M" lines
  u64 noise_lines = 0;         // banner, program output, blank lines
  u64 first_noise_line = 0;    // 0 = none
  u64 phase_markers = 0;       // "septsim: phase begin|end NAME" lines
  u64 unknown_markers = 0;     // other "**PID** TEXT" lines
  std::vector<std::pair<u64, std::string>> first_unknown_markers;  // line and text of the first kMaxListed
  static constexpr size_t kMaxListed = 5;
  u64 accesses = 0;            // guest accesses written (events x count)
  u64 access_events = 0;       // access events written
  u64 guest_pages = 0;         // guest pages mapped on first touch
  u64 guest_tables = 0;        // guest page tables below the root
  u64 accepts_4k = 0, accepts_2m = 0;  // TD: TDG.MEM.PAGE.ACCEPT events written
  u64 shared_pages = 0;        // TD: guest pages converted to shared (map_gpa)
  bool measured_phase = false;  // the "measured" phase event was written (warmup reached)
};

// Imports `path` into `sink` (which it does not finish). Throws TraceError
// naming the file, line and field of a malformed access line, of an access
// the guest cannot map, or of a file with no access line at all; a bad
// option is std::invalid_argument.
LackeyImportReport import_lackey(const std::string& path, EventSink& sink, const LackeyImportOptions& opts = {});

// Import of a ChampSim trace (docs/lackey-import.md, "ChampSim traces"):
// uncompressed 64-byte input_instr records (the CLI decompresses .xz / .gz
// first), each an instruction fetch at ip (op "x", unless !opts.ifetch), a
// load (op "r") per non-zero source_memory and a store (op "w") per non-zero
// destination_memory, through the same guest paging, VM or TD, as lackey's
// log. The report's `lines` are records, `fetches` records, `loads` and
// `stores` memory operands; errors name the record number as the line.
LackeyImportReport import_champsim(const std::string& path, EventSink& sink, const LackeyImportOptions& opts = {});

}  // namespace septsim::traces
