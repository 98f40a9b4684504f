#include "traces/tracedat_import.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "traces/reader.h"

#ifdef SEPTSIM_HAVE_TRACECMD
#include <event-parse.h>
// libtracecmd's reading API (trace-cmd.h, libtracecmd 3.x). trace-cmd.h itself
// includes tracefs.h, which does not compile as C++ (an int given for an enum
// parameter's default), so the few functions used are declared here.
extern "C" {
struct tracecmd_input;
enum { TRACECMD_FL_LOAD_NO_PLUGINS = 1 << 0 };
tracecmd_input* tracecmd_open(const char* file, int flags);
void tracecmd_close(tracecmd_input* handle);
tep_record* tracecmd_read_cpu_first(tracecmd_input* handle, int cpu);
tep_record* tracecmd_read_data(tracecmd_input* handle, int cpu);
void tracecmd_free_record(tep_record* record);
tep_handle* tracecmd_get_tep(tracecmd_input* handle);
void tracecmd_set_loglevel(enum tep_loglevel level);
}
#endif

namespace septsim::traces {

bool is_tracedat(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[10] = {};
  size_t n = std::fread(m, 1, sizeof m, f);
  std::fclose(f);
  return n == sizeof m && std::memcmp(m, "\x17\x08\x44tracing", sizeof m) == 0;
}

#ifdef SEPTSIM_HAVE_TRACECMD

bool tracedat_supported() { return true; }

namespace {

// The event fields the text import reads, by event: the body is rebuilt from
// them in the kernel's own TP_printk wording (arch/x86/kvm/mmu/mmutrace.h,
// arch/x86/kvm/trace.h, virt/kvm's include/trace/events/kvm.h), so both
// imports parse the same words. Events not listed, or a kernel whose event
// lacks one of the fields, get the body libtraceevent prints from the file's
// own print format (as `trace-cmd report` does).
struct BodySpec {
  const char* event;
  const char* fields[4];  // read in this order; nullptr ends
  // Builds the body from the values (in `fields` order).
  void (*format)(std::string& out, const u64* v);
};

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
  char buf[160];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) out.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
}

using ull = unsigned long long;
const BodySpec kBodies[] = {
    {"kvm_page_fault", {"vcpu_id", "fault_address", "error_code"},
     [](std::string& o, const u64* v) { appendf(o, "vcpu %llu address 0x%llx error_code 0x%llx", ull(v[0]), ull(v[1]), ull(v[2])); }},
    {"kvm_mmu_pagetable_walk", {"addr", "pferr"},
     [](std::string& o, const u64* v) { appendf(o, "addr %llx pferr %llx", ull(v[0]), ull(v[1])); }},
    {"kvm_mmu_paging_element", {"pte", "level"},
     [](std::string& o, const u64* v) { appendf(o, "pte %llx level %llu", ull(v[0]), ull(v[1])); }},
    {"kvm_mmu_spte_requested", {"gfn", "pfn", "level"},
     [](std::string& o, const u64* v) { appendf(o, "gfn %llx pfn %llx level %llu", ull(v[0]), ull(v[1]), ull(v[2])); }},
    {"kvm_mmu_set_spte", {"gfn", "spte", "level"},
     [](std::string& o, const u64* v) { appendf(o, "gfn %llx spte %llx level %llu", ull(v[0]), ull(v[1]), ull(v[2])); }},
    {"kvm_tdp_mmu_spte_changed", {"gfn", "level", "old_spte", "new_spte"},
     [](std::string& o, const u64* v) {
       appendf(o, "gfn %llx level %llu old_spte %llx new_spte %llx", ull(v[0]), ull(v[1]), ull(v[2]), ull(v[3]));
     }},
    {"kvm_mmu_split_huge_page", {"gfn", "level"},
     [](std::string& o, const u64* v) { appendf(o, "gfn %llx level %llu", ull(v[0]), ull(v[1])); }},
    // KVM_MMU_PAGE_PRINTK: "sp gen G gfn X lN ..."; N is role.level, bits 3:0 of the role word.
    {"kvm_mmu_prepare_zap_page", {"mmu_valid_gen", "gfn", "role"},
     [](std::string& o, const u64* v) { appendf(o, "sp gen %llu gfn %llx l%llu", ull(v[0]), ull(v[1]), ull(v[2] & 0xf)); }},
    {"kvm_unmap_hva_range", {"start", "end"},
     [](std::string& o, const u64* v) { appendf(o, "mmu notifier unmap range: 0x%llx -- 0x%llx", ull(v[0]), ull(v[1])); }},
};

struct EventInfo {
  std::string name;              // as the text import knows it
  bool marker = false;           // ftrace's print event: body = buf
  tep_format_field* buf = nullptr;
  const BodySpec* spec = nullptr;
  tep_format_field* fields[4] = {};
  bool has_fields = false;       // every field of spec was found
};

}  // namespace

struct TraceDatSource::Impl {
  std::string path;
  tracecmd_input* handle = nullptr;
  tep_handle* tep = nullptr;
  int cpus = 0;
  std::vector<tep_record*> head;  // the next record of each CPU
  std::map<int, EventInfo> events;  // by event id
  std::string task, event, body;
  trace_seq seq{};
  u64 lost = 0;

  ~Impl() {
    for (tep_record* r : head)
      if (r) tracecmd_free_record(r);
    if (handle) tracecmd_close(handle);
    trace_seq_destroy(&seq);
  }

  void start() {
    for (tep_record*& r : head) {
      if (r) tracecmd_free_record(r);
      r = nullptr;
    }
    head.assign(size_t(cpus), nullptr);
    for (int c = 0; c < cpus; ++c) head[size_t(c)] = tracecmd_read_cpu_first(handle, c);
    lost = 0;
  }

  EventInfo& info(tep_record* rec) {
    int id = tep_data_type(tep, rec);
    auto it = events.find(id);
    if (it != events.end()) return it->second;
    EventInfo& e = events[id];
    tep_event* ev = tep_find_event(tep, id);
    if (!ev) {
      e.name = "event_" + std::to_string(id);
      return e;
    }
    e.name = ev->name;
    if (ev->system && std::strcmp(ev->system, "ftrace") == 0 && e.name == "print") {
      // trace_marker writes: the kernel's `trace` file shows them as
      // "tracing_mark_write: TEXT" (the print event's "%ps: %s").
      e.name = "tracing_mark_write";
      e.marker = true;
      e.buf = tep_find_field(ev, "buf");
      return e;
    }
    for (const BodySpec& s : kBodies)
      if (e.name == s.event) {
        e.spec = &s;
        e.has_fields = true;
        for (int i = 0; i < 4 && s.fields[i]; ++i) {
          e.fields[i] = tep_find_field(ev, s.fields[i]);
          // kvm_page_fault before Linux 6.2 has no vcpu_id: the text import then goes by task.
          if (!e.fields[i] && !(i == 0 && e.name == "kvm_page_fault")) e.has_fields = false;
        }
      }
    return e;
  }

  void make_body(tep_record* rec, EventInfo& e) {
    body.clear();
    if (e.marker) {
      if (e.buf) {
        const char* p = static_cast<const char*>(rec->data) + e.buf->offset;
        size_t max = rec->size > e.buf->offset ? size_t(rec->size - e.buf->offset) : 0;
        body.assign(p, strnlen(p, max));
      }
    } else if (e.spec && e.has_fields) {
      u64 v[4] = {};
      for (int i = 0; i < 4 && e.spec->fields[i]; ++i) {
        unsigned long long x = 0;
        if (e.fields[i]) tep_read_number_field(e.fields[i], rec->data, &x);
        v[i] = x;
      }
      e.spec->format(body, v);
      if (!e.fields[0] && e.name == "kvm_page_fault") body.erase(0, body.find("address"));
    } else {
      trace_seq_reset(&seq);
      tep_print_event(tep, &seq, rec, "%s", TEP_PRINT_INFO);
      trace_seq_terminate(&seq);
      body.assign(seq.buffer, seq.len);
    }
    while (!body.empty() && (body.back() == '\n' || body.back() == ' ' || body.back() == '\t')) body.pop_back();
  }
};

TraceDatSource::TraceDatSource(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  trace_seq_init(&m.seq);
  tracecmd_set_loglevel(TEP_LOG_NONE);
  m.handle = tracecmd_open(path.c_str(), TRACECMD_FL_LOAD_NO_PLUGINS);
  if (!m.handle) throw TraceError(path, 0, "", "not a trace.dat libtracecmd can read (truncated, or from a newer trace-cmd)");
  m.tep = tracecmd_get_tep(m.handle);
  m.cpus = tep_get_cpus(m.tep);
  if (m.cpus <= 0) throw TraceError(path, 0, "", "trace.dat names no CPU");
  m.start();
}

TraceDatSource::~TraceDatSource() = default;

void TraceDatSource::rewind() { impl_->start(); }

u64 TraceDatSource::lost_events() const { return impl_->lost; }

bool TraceDatSource::next(FtraceRecord& r) {
  Impl& m = *impl_;
  int best = -1;
  for (int c = 0; c < m.cpus; ++c) {
    tep_record* rec = m.head[size_t(c)];
    if (rec && (best < 0 || rec->ts < m.head[size_t(best)]->ts)) best = c;
  }
  if (best < 0) return false;
  tep_record* rec = m.head[size_t(best)];
  if (rec->missed_events > 0) m.lost += u64(rec->missed_events);
  EventInfo& e = m.info(rec);
  int pid = tep_data_pid(m.tep, rec);
  const char* comm = tep_data_comm_from_pid(m.tep, pid);
  m.task.assign(comm ? comm : "<...>");
  m.event = e.name;
  m.make_body(rec, e);
  r.task = m.task;
  r.pid = u32(pid);
  r.cpu = u32(best);
  r.flags = {};
  r.ts_ns = rec->ts;
  r.event = m.event;
  r.body = m.body;
  m.head[size_t(best)] = tracecmd_read_data(m.handle, best);
  tracecmd_free_record(rec);
  return true;
}

#else  // no libtracecmd

bool tracedat_supported() { return false; }

struct TraceDatSource::Impl {};

TraceDatSource::TraceDatSource(const std::string& path) {
  throw TraceError(path, 0, "", "a trace-cmd trace.dat, but this septsim was built without libtracecmd "
                                "(install libtracecmd-dev and libtraceevent-dev, then rebuild), or convert it "
                                "with `trace-cmd report -i FILE > FILE.txt`");
}
TraceDatSource::~TraceDatSource() = default;
bool TraceDatSource::next(FtraceRecord&) { return false; }
void TraceDatSource::rewind() {}
u64 TraceDatSource::lost_events() const { return 0; }

#endif

}  // namespace septsim::traces
