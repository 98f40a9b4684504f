#include "traces/ftrace_import.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "traces/line_reader.h"
#include "traces/tracedat_import.h"
#include "traces/reader.h"

namespace septsim::traces {

namespace {

// ---- text helpers -----------------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

bool parse_hex(std::string_view t, u64& out) {
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t.remove_prefix(2);
  if (t.empty() || t.size() > 16) return false;
  u64 v = 0;
  for (char c : t) {
    unsigned d;
    if (is_digit(c)) d = unsigned(c - '0');
    else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
    else return false;
    v = v << 4 | d;
  }
  out = v;
  return true;
}

bool parse_dec(std::string_view t, u64& out) {
  if (t.empty() || t.size() > 19) return false;
  u64 v = 0;
  for (char c : t) {
    if (!is_digit(c)) return false;
    v = v * 10 + u64(c - '0');
  }
  out = v;
  return true;
}

// The token after the word `key` (which starts the body or follows a space).
std::string_view token_after(std::string_view body, std::string_view key) {
  size_t from = 0;
  while (true) {
    size_t at = body.find(key, from);
    if (at == std::string_view::npos) return {};
    size_t end = at + key.size();
    if ((at == 0 || is_space(body[at - 1])) && end < body.size() && is_space(body[end])) {
      while (end < body.size() && is_space(body[end])) ++end;
      size_t stop = end;
      while (stop < body.size() && !is_space(body[stop])) ++stop;
      return body.substr(end, stop - end);
    }
    from = at + 1;
  }
}

bool hex_after(std::string_view body, std::string_view key, u64& v) { return parse_hex(token_after(body, key), v); }
bool dec_after(std::string_view body, std::string_view key, u64& v) { return parse_dec(token_after(body, key), v); }

// ---- events -------------------------------------------------------------------

enum class Kind : u8 {
  Unknown, Marker, PageFault, SpteRequested, TdpSpteChanged, FastPageFault, SplitHugePage, PagetableWalk,
  PagingElement, GetPage, SetSpte, PrepareZapPage, ZapAllFast, UnmapHvaRange,
  Ignored,  // known kvm/kvmmmu events with nothing to import
};

Kind kind_of(std::string_view ev) {
  static const std::pair<std::string_view, Kind> kKnown[] = {
      {"tracing_mark_write", Kind::Marker},
      {"kvm_page_fault", Kind::PageFault},
      {"kvm_mmu_spte_requested", Kind::SpteRequested},
      {"kvm_tdp_mmu_spte_changed", Kind::TdpSpteChanged},
      {"fast_page_fault", Kind::FastPageFault},
      {"kvm_mmu_split_huge_page", Kind::SplitHugePage},
      {"kvm_mmu_pagetable_walk", Kind::PagetableWalk},
      {"kvm_mmu_paging_element", Kind::PagingElement},
      {"kvm_mmu_get_page", Kind::GetPage},
      {"kvm_mmu_set_spte", Kind::SetSpte},
      {"kvm_mmu_prepare_zap_page", Kind::PrepareZapPage},
      {"kvm_mmu_zap_all_fast", Kind::ZapAllFast},
      {"kvm_unmap_hva_range", Kind::UnmapHvaRange},
      {"kvm_exit", Kind::Ignored},
      {"kvm_entry", Kind::Ignored},
      {"kvm_emulate_insn", Kind::Ignored},
      {"kvm_pio", Kind::Ignored},
      {"kvm_mmio", Kind::Ignored},
      {"kvm_userspace_exit", Kind::Ignored},
      {"kvm_inj_exception", Kind::Ignored},
      {"kvm_age_hva", Kind::Ignored},
      {"kvm_test_age_hva", Kind::Ignored},
      {"kvm_try_async_get_page", Kind::Ignored},
      {"kvm_async_pf_not_present", Kind::Ignored},
      {"kvm_async_pf_ready", Kind::Ignored},
      {"kvm_async_pf_completed", Kind::Ignored},
      {"kvm_async_pf_repeated_fault", Kind::Ignored},
      {"kvm_mmu_sync_page", Kind::Ignored},
      {"kvm_mmu_unsync_page", Kind::Ignored},
      {"mark_mmio_spte", Kind::Ignored},
      {"handle_mmio_page_fault", Kind::Ignored},
      {"check_mmio_spte", Kind::Ignored},
      {"kvm_mmu_walker_error", Kind::Ignored},
  };
  for (const auto& [name, k] : kKnown)
    if (name == ev) return k;
  return Kind::Unknown;
}

// Events that belong to the fault a shadow walk started; anything else from
// the same task ends that fault.
bool continues_walk(Kind k) {
  return k == Kind::PagingElement || k == Kind::GetPage || k == Kind::SpteRequested || k == Kind::SetSpte ||
         k == Kind::PrepareZapPage;
}

struct Slot {
  u32 id = 0;
  std::string name;
  u64 gpa = 0, size = 0, hva = 0;
  bool data = true;  // not the VMM's "sys" slot
};

// The `kvmrec: start` marker: vcpus, thp and the slot layout.
struct StartMarker {
  u32 vcpus = 0;
  std::string thp;
  std::vector<Slot> slots;
};

// The word of `text` at or after `i` (spaces skipped); `i` moves past it.
std::string_view next_word(std::string_view text, size_t& i) {
  while (i < text.size() && is_space(text[i])) ++i;
  size_t j = i;
  while (j < text.size() && !is_space(text[j])) ++j;
  std::string_view w = text.substr(i, j - i);
  i = j;
  return w;
}

bool parse_start_marker(std::string_view text, StartMarker& out) {
  constexpr std::string_view kStart = "kvmrec: start";
  if (text.substr(0, kStart.size()) != kStart) return false;
  size_t i = kStart.size();
  while (i < text.size()) {
    std::string_view tok = next_word(text, i);
    if (tok.substr(0, 4) == "slot" && tok.size() > 4 && is_digit(tok[4])) {
      Slot s;
      size_t k = 4;
      u64 id = 0;
      while (k < tok.size() && is_digit(tok[k]) && id < 100000) id = id * 10 + u64(tok[k++] - '0');
      s.id = u32(id);
      if (k < tok.size() && tok[k] == '(' && tok.back() == ')') s.name = std::string(tok.substr(k + 1, tok.size() - k - 2));
      s.data = s.name != "sys";
      out.slots.push_back(s);
      continue;
    }
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = tok.substr(0, eq), v = tok.substr(eq + 1);
    u64 n = 0;
    if (k == "vcpus" && parse_dec(v, n) && n <= TraceReader::kMaxVcpus) out.vcpus = u32(n);
    else if (k == "thp") out.thp = std::string(v);
    else if (!out.slots.empty() && parse_hex(v, n)) {
      if (k == "gpa") out.slots.back().gpa = n;
      else if (k == "size") out.slots.back().size = n;
      else if (k == "hva") out.slots.back().hva = n;
    }
  }
  return true;
}

// The marker vocabulary's prefix (docs/markers.md).
constexpr std::string_view kVocab = "septsim: ";

// "septsim: vm vcpus=N [type=tdx]": the VM (before its first fault).
bool parse_vm_marker(std::string_view text, u32& vcpus, bool& tdx) {
  constexpr std::string_view kVm = "septsim: vm ";
  if (text.substr(0, kVm.size()) != kVm) return false;
  bool any = false;
  for (std::string_view rest = text.substr(kVm.size()); !rest.empty();) {
    std::string_view tok = rest.substr(0, rest.find(' '));
    rest.remove_prefix(std::min(rest.size(), tok.size() + 1));
    u64 n;
    if (tok.substr(0, 6) == "vcpus=" && parse_dec(tok.substr(6), n) && n >= 1 && n <= TraceReader::kMaxVcpus)
      vcpus = u32(n), any = true;
    else if (tok == "type=tdx") tdx = true;
  }
  return any;
}

// A shadow-MMU fault in progress on one task: the guest walk seen so far.
struct PendingWalk {
  bool active = false;
  bool emitted = false;  // its access event is written
  bool leaf = false;     // the guest walk reached a present leaf
  u64 addr = 0, pferr = 0, ts_ns = 0, gpa = 0, line = 0;
  int guest_level = 0;
};

struct Task {
  int vcpu = -1;
  PendingWalk walk;
  u64 requested_gfn = ~u64{0};  // the last kvm_mmu_spte_requested not yet matched by its set_spte
};

constexpr u64 kPfWrite = 1u << 1, kPfFetch = 1u << 4;
constexpr size_t kMaxWarnings = 20, kMaxUnknownNames = 1000;
constexpr size_t kMaxTasks = 4096;

class Importer {
 public:
  Importer(const std::string& path, EventSink& sink, const FtraceImportOptions& opts)
      : path_(path), sink_(sink), opts_(opts) {}

  FtraceImportReport run() {
    VcpuCount count = prescan(!opts_.vcpus);
    vcpus_ = opts_.vcpus ? opts_.vcpus : count.result();
    tdx_vm_ = count.tdx;
    begin();
    LineReader in(path_);
    std::string_view line;
    bool overlong;
    u64 non_comment = 0;
    while (in.next(line, overlong)) {
      ++line_no_;
      ++report_.lines;
      FtraceRecord r;
      if (!overlong && parse_ftrace_line(line, r)) {
        ++report_.event_lines;
        handle(r);
        continue;
      }
      size_t i = 0;
      while (i < line.size() && is_space(line[i])) ++i;
      if (!overlong && (i == line.size() || line[i] == '#' || header_line(line.substr(i)))) continue;
      ++non_comment;
      ++report_.malformed_lines;
      if (!report_.first_malformed_line) report_.first_malformed_line = line_no_;
      warn(line_no_, overlong ? "line longer than 1 MiB skipped" : "not an ftrace event line, skipped");
    }
    if (report_.event_lines == 0 && non_comment > 0)
      throw TraceError(path_, report_.first_malformed_line, "",
                       "not ftrace text: no line has the form 'TASK-PID [CPU] TIMESTAMP: EVENT: ...'");
    for (auto& [pid, t] : tasks_) resolve(t);
    infer();
    return report_;
  }

  // The same from records (trace.dat): record numbers stand for line numbers.
  FtraceImportReport run(FtraceRecordSource& src) {
    FtraceRecord r;
    VcpuCount count;
    while (src.next(r) && !count.add(r) && (!opts_.vcpus || !count.faults())) {
    }
    src.rewind();
    vcpus_ = opts_.vcpus ? opts_.vcpus : count.result();
    tdx_vm_ = count.tdx;
    begin();
    while (src.next(r)) {
      ++line_no_;
      ++report_.lines;
      ++report_.event_lines;
      handle(r);
    }
    report_.lost_events = src.lost_events();
    infer();
    if (report_.lost_events)
      warn(line_no_, "the kernel dropped " + std::to_string(report_.lost_events) +
                         " events (ring buffer overrun): the import misses what they said");
    for (auto& [pid, t] : tasks_) resolve(t);
    return report_;
  }

 private:
  // What the kernel's own events prove where no marker said it: reported,
  // not turned into events (the slot and the moment are not known exactly).
  void infer() {
    if (report_.write_protects && !dirty_log_ops_)
      report_.inferences.push_back(
          std::to_string(report_.write_protects) + " present SPTEs write-protected (kvm_tdp_mmu_spte_changed clearing W, "
          "first at " + path_ + ":" + std::to_string(first_write_protect_) +
          ") with no dirty-log marker: dirty logging was probably enabled on their slot; a "
          "'septsim: dirty-log enable slot=N' marker (docs/markers.md) lets the model follow it");
  }

  // The VM and the --memslots slots, before the first record.
  void begin() {
    report_.vcpus = vcpus_;
    Event e;
    e.type = EventType::VmCreate;
    e.vcpus = vcpus_;
    e.tdx_vm = tdx_vm_;
    put(e);
    for (const mmu::MemslotSpec& spec : opts_.memslots) {
      slots_.push_back(Slot{spec.id, "data", spec.gpa, spec.size, spec.userspace_addr, true});
      Event m;
      m.type = EventType::MemslotAdd;
      m.slot = spec;
      put(m);
    }
    live_ = !slots_.empty();
  }

  // trace-cmd report starts with lines such as "version = 6", "cpus=2",
  // "CPU 0 is empty", "CPU0 data recorded at offset=...".
  static bool header_line(std::string_view s) {
    return s.substr(0, 7) == "version" || s.substr(0, 5) == "cpus=" || s.substr(0, 3) == "CPU" ||
           s.substr(0, 9) == "trace-cmd";
  }

  void warn(u64 line, const std::string& msg) {
    if (report_.warnings.size() < kMaxWarnings) report_.warnings.push_back(path_ + ":" + std::to_string(line) + ": " + msg);
  }

  // vCPUs when no option gives them: the start marker's if it comes before
  // the first fault, else the number of faulting tasks (or vcpu ids) in the file.
  struct VcpuCount {
    std::vector<u32> pids;
    u64 max_vcpu = 0;
    bool have_vcpu_field = false;
    u32 marker_vcpus = 0;
    bool tdx = false;
    bool faults() const { return !pids.empty() || have_vcpu_field; }
    // False until the count is settled (a start marker before any fault).
    bool add(const FtraceRecord& r) {
      Kind k = kind_of(r.event);
      if (k == Kind::Marker) {
        StartMarker m;
        if (parse_start_marker(r.body, m) && m.vcpus && pids.empty() && !have_vcpu_field) {
          marker_vcpus = m.vcpus;
          return true;
        }
        if (pids.empty() && !have_vcpu_field && parse_vm_marker(r.body, marker_vcpus, tdx)) return true;
      } else if (k == Kind::PageFault || k == Kind::PagetableWalk) {
        u64 v;
        if (k == Kind::PageFault && dec_after(r.body, "vcpu", v) && v < TraceReader::kMaxVcpus) {
          have_vcpu_field = true;
          max_vcpu = std::max(max_vcpu, v);
        } else if (std::find(pids.begin(), pids.end(), r.pid) == pids.end() && pids.size() < TraceReader::kMaxVcpus) {
          pids.push_back(r.pid);
        }
      }
      return false;
    }
    u32 result() const {
      if (marker_vcpus) return marker_vcpus;
      u64 n = std::max<u64>(pids.size(), have_vcpu_field ? max_vcpu + 1 : 0);
      return u32(std::clamp<u64>(n, 1, TraceReader::kMaxVcpus));
    }
  };

  // `full`: until the count is settled; else only until the first fault
  // (the VM's type, when --vcpus gives the count).
  VcpuCount prescan(bool full) {
    LineReader in(path_);
    std::string_view line;
    bool overlong;
    VcpuCount count;
    while (in.next(line, overlong)) {
      FtraceRecord r;
      if (overlong || !parse_ftrace_line(line, r)) continue;
      if (count.add(r) || (!full && count.faults())) break;
    }
    return count;
  }

  void put(Event& e) {
    e.line = line_no_;
    sink_.put(e);
  }

  Task& task(u32 pid) {
    auto it = tasks_.find(pid);
    if (it != tasks_.end()) return it->second;
    if (tasks_.size() >= kMaxTasks) tasks_.erase(tasks_.begin());  // bounds memory on pathological input
    return tasks_[pid];
  }

  int vcpu_of(Task& t) {
    if (t.vcpu < 0) {
      if (next_vcpu_ >= vcpus_)
        throw TraceError(path_, line_no_, "", "more faulting tasks than the VM's " + std::to_string(vcpus_) +
                                                  " vCPUs (give --vcpus or fix the kvmrec start marker)");
      t.vcpu = int(next_vcpu_++);
    }
    return t.vcpu;
  }

  const Slot* slot_of(u64 gpa) const {
    for (const Slot& s : slots_)
      if (gpa >= s.gpa && gpa - s.gpa < s.size) return &s;
    return nullptr;
  }

  void emit_access(int vcpu, u64 gpa, AccessType a, u64 ts) {
    Event e;
    e.type = EventType::Access;
    e.vcpu = vcpu;
    e.addr = gpa;
    e.access = a;
    e.ts_ns = ts;
    put(e);
    ++report_.faults;
  }

  void emit_decision(DecisionKind k, int vcpu, u64 gpa, int level, int guest_level, u64 ts) {
    Event e;
    e.type = EventType::KvmDecision;
    e.decision = k;
    e.vcpu = vcpu;
    e.gpa = gpa < TraceReader::kMaxGpa ? gpa : 0;
    e.page_level = level >= 0 && level <= 5 ? level : 0;
    e.guest_level = guest_level;
    e.ts_ns = ts;
    put(e);
    ++report_.decisions;
    if (k == DecisionKind::Prefetch) ++report_.prefetches;
  }

  static AccessType pferr_access(u64 pferr) {
    return (pferr & kPfFetch) ? AccessType::Fetch : (pferr & kPfWrite) ? AccessType::Write : AccessType::Read;
  }

  // Ends the shadow fault in progress on `t`. A walk that led to no SPTE is a
  // hardware fault only on a data slot (a retried or spurious fault); outside
  // them it is the emulator's (kvm-shadow README, "Rules").
  void resolve(Task& t) {
    PendingWalk& w = t.walk;
    if (!w.active) return;
    w.active = false;
    if (w.emitted) return;
    const Slot* s = w.leaf ? slot_of(w.gpa) : nullptr;
    if (s && s->data && w.gpa < TraceReader::kMaxGpa) {
      emit_access(vcpu_of(t), w.gpa, pferr_access(w.pferr), w.ts_ns);
    } else {
      ++report_.emulator_walks;
    }
  }

  void resolve_all() {
    for (auto& [pid, t] : tasks_) resolve(t);
  }

  void handle(const FtraceRecord& r) {
    std::string name(r.event);
    ++report_.event_counts[name];
    Kind k = kind_of(r.event);
    if (k == Kind::Unknown) {
      if (report_.unknown_events.size() < kMaxUnknownNames || report_.unknown_events.count(name))
        ++report_.unknown_events[name];
      return;
    }
    Task& t = task(r.pid);
    if (!continues_walk(k) && k != Kind::Marker && k != Kind::UnmapHvaRange && k != Kind::ZapAllFast) resolve(t);
    u64 a = 0, b = 0, c = 0;
    switch (k) {
      case Kind::Marker: marker(r); break;
      case Kind::PagetableWalk:
        if (!hex_after(r.body, "addr", a) || !hex_after(r.body, "pferr", b)) return warn(line_no_, "kvm_mmu_pagetable_walk without addr/pferr");
        report_.host_mmu = "shadow";
        t.walk = PendingWalk{};
        t.walk.active = true;
        t.walk.addr = a;
        t.walk.pferr = b;
        t.walk.ts_ns = r.ts_ns;
        t.walk.line = line_no_;
        break;
      case Kind::PagingElement: {
        if (!t.walk.active || t.walk.leaf) return;
        if (!hex_after(r.body, "pte", a) || !dec_after(r.body, "level", b)) return warn(line_no_, "kvm_mmu_paging_element without pte/level");
        if (!(a & 1)) return;  // not present: the guest takes its own #PF
        if (b == 1 || ((b == 2 || b == 3) && (a & 0x80))) {
          u64 page = level_size(int(b));
          t.walk.leaf = true;
          t.walk.guest_level = int(b);
          t.walk.gpa = (a & 0x000ffffffffff000ull & ~(page - 1)) | (t.walk.addr & (page - 1));
        }
        break;
      }
      case Kind::PageFault: {
        if (!hex_after(r.body, "address", a) || !hex_after(r.body, "error_code", b)) return warn(line_no_, "kvm_page_fault without address/error_code");
        report_.host_mmu = "tdp";
        int vcpu;
        if (dec_after(r.body, "vcpu", c)) {
          if (c >= vcpus_) throw TraceError(path_, line_no_, "vcpu", std::to_string(c) + " is out of range (the VM has " + std::to_string(vcpus_) + " vCPUs)");
          vcpu = t.vcpu = int(c);
        } else {
          vcpu = vcpu_of(t);
        }
        // NPF error codes carry PFERR_GUEST_FINAL/PAGE (bits 32/33); an EPT
        // exit qualification has nothing above bit 12.
        AccessType acc = (b >> 32) ? pferr_access(b)
                                   : (b & 4) ? AccessType::Fetch : (b & 2) ? AccessType::Write : AccessType::Read;
        if (a >= TraceReader::kMaxGpa) return warn(line_no_, "kvm_page_fault address beyond 52 bits");
        emit_access(vcpu, a, acc, r.ts_ns);
        break;
      }
      case Kind::SpteRequested: {
        if (!hex_after(r.body, "gfn", a) || !dec_after(r.body, "level", b)) return warn(line_no_, "kvm_mmu_spte_requested without gfn/level");
        if (a >= (TraceReader::kMaxGpa >> kPageShift)) return warn(line_no_, "gfn beyond 52 bits");
        int guest_level = 0;
        if (t.walk.active) {
          if (!t.walk.emitted) {
            u64 gpa = t.walk.leaf ? t.walk.gpa : (a << kPageShift | (t.walk.addr & (kPageSize - 1)));
            emit_access(vcpu_of(t), gpa, pferr_access(t.walk.pferr), t.walk.ts_ns);
            t.walk.emitted = true;
          }
          guest_level = t.walk.guest_level;
        }
        t.requested_gfn = a & ~(level_size(int(std::clamp<u64>(b, 1, 3))) / kPageSize - 1);
        emit_decision(DecisionKind::Map, t.vcpu, a << kPageShift, int(b), guest_level, r.ts_ns);
        break;
      }
      case Kind::SetSpte:
        if (!hex_after(r.body, "gfn", a) || !dec_after(r.body, "level", b)) return warn(line_no_, "kvm_mmu_set_spte without gfn/level");
        if (a == t.requested_gfn) {
          t.requested_gfn = ~u64{0};
        } else if (a < (TraceReader::kMaxGpa >> kPageShift)) {
          emit_decision(DecisionKind::Prefetch, t.vcpu, a << kPageShift, int(b), 0, r.ts_ns);
        }
        break;
      case Kind::FastPageFault: {
        if (!hex_after(r.body, "gva", a)) return warn(line_no_, "fast_page_fault without gva");
        int vcpu = dec_after(r.body, "vcpu", c) && c < vcpus_ ? int(c) : t.vcpu;
        if (dec_after(r.body, "fixed", b) && b) emit_decision(DecisionKind::Fast, vcpu, a & ~(kPageSize - 1), 0, 0, r.ts_ns);
        break;
      }
      case Kind::TdpSpteChanged: {
        u64 level;
        if (!hex_after(r.body, "gfn", a) || !dec_after(r.body, "level", level) || !hex_after(r.body, "old_spte", b) ||
            !hex_after(r.body, "new_spte", c))
          return warn(line_no_, "kvm_tdp_mmu_spte_changed without gfn/level/old_spte/new_spte");
        // Present = any of R/W/X (EPT) or P (NPT); leaf = 4K or the PS bit.
        auto present = [](u64 s) { return (s & 7) != 0; };
        auto leaf = [&](u64 s) { return level == 1 || (s & 0x80); };
        if (present(b) && leaf(b) && !present(c) && a < (TraceReader::kMaxGpa >> kPageShift))
          emit_decision(DecisionKind::Zap, -1, a << kPageShift, int(std::min<u64>(level, 5)), 0, r.ts_ns);
        // A present leaf that stays present but loses W (bit 1 in EPT and
        // NPT entries): write-protection, as KVM does for dirty logging
        // (kvm_tdp_mmu_wrprot_slot) when no marker said so.
        if (present(b) && leaf(b) && present(c) && (b & 2) && !(c & 2)) {
          if (!report_.write_protects) first_write_protect_ = line_no_;
          ++report_.write_protects;
        }
        break;
      }
      case Kind::SplitHugePage:
        if (!hex_after(r.body, "gfn", a) || !dec_after(r.body, "level", b)) return warn(line_no_, "kvm_mmu_split_huge_page without gfn/level");
        if (a < (TraceReader::kMaxGpa >> kPageShift))
          emit_decision(DecisionKind::Split, -1, a << kPageShift, int(std::min<u64>(b, 5)), 0, r.ts_ns);
        break;
      case Kind::PrepareZapPage: {
        std::string_view g = token_after(r.body, "gfn");
        std::string_view lv;
        if (!g.empty()) {
          std::string_view rest = r.body.substr(size_t(g.data() + g.size() - r.body.data()));
          while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
          lv = rest.substr(0, rest.find(' '));
        }
        if (!hex_after(r.body, "gfn", a) || lv.size() < 2 || lv[0] != 'l' || !parse_dec(lv.substr(1), b))
          return warn(line_no_, "kvm_mmu_prepare_zap_page without gfn/level");
        if (a < (TraceReader::kMaxGpa >> kPageShift))
          emit_decision(DecisionKind::Zap, -1, a << kPageShift, int(std::min<u64>(b, 5)), 0, r.ts_ns);
        break;
      }
      case Kind::ZapAllFast:
        resolve_all();
        emit_decision(DecisionKind::ZapAllFast, -1, 0, 0, 0, r.ts_ns);
        break;
      case Kind::UnmapHvaRange: unmap(r); break;
      default: break;
    }
  }

  void unmap(const FtraceRecord& r) {
    size_t colon = r.body.find(':');
    size_t dash = r.body.find(" -- ");
    u64 start, end;
    if (colon == std::string_view::npos || dash == std::string_view::npos || dash < colon) return warn(line_no_, "kvm_unmap_hva_range without a range");
    std::string_view s = r.body.substr(colon + 1, dash - colon - 1), e = r.body.substr(dash + 4);
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!e.empty() && is_space(e.back())) e.remove_suffix(1);
    size_t sp = e.find(' ');
    if (sp != std::string_view::npos) e = e.substr(0, sp);
    if (!parse_hex(s, start) || !parse_hex(e, end) || end <= start) return warn(line_no_, "kvm_unmap_hva_range with a bad range");
    // Only the unmapping task's own walk ends here: its fault took the host
    // page fault (a COW in hva_to_pfn) that sent the invalidation, and is
    // retried. Another vCPU's walk in flight on another CPU is not ended:
    // its fault rechecks the invalidation under mmu_lock before writing an
    // SPTE (mmu.c: is_page_fault_stale, mmu_invalidate_retry_gfn), so it
    // retries or maps after the unmap, and its access belongs after it.
    // Ending it here lost it when its walk had not reached its guest leaf,
    // and put it before the unmap when it had.
    bool first = true;
    for (const Slot& sl : slots_) {
      u64 lo = std::max(start, sl.hva), hi = std::min(end, sl.hva + sl.size);
      if (lo >= hi) continue;
      if (first) resolve(task(r.pid)), first = false;
      Event ev;
      ev.type = EventType::HostUnmap;
      ev.gpa = sl.gpa + ((lo - sl.hva) & ~(kPageSize - 1));
      u64 last = sl.gpa + (((hi - sl.hva) + kPageSize - 1) & ~(kPageSize - 1));
      ev.size = last - ev.gpa;
      put(ev);
      ++report_.host_unmaps;
    }
  }

  void marker(const FtraceRecord& r) {
    resolve_all();
    std::string_view text = r.body;
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    Event m;
    m.type = EventType::Marker;
    m.name = std::string(text);
    put(m);
    ++report_.markers;

    StartMarker sm;
    if (parse_start_marker(text, sm)) return start(sm);
    if (text.substr(0, kVocab.size()) == kVocab) return vocabulary(text.substr(kVocab.size()));
    if (!kvmrec_marker(text)) unknown_marker(text);
  }

  // Counted and listed (the first 120 characters of each), never silently dropped.
  void unknown_marker(std::string_view text) {
    ++report_.unknown_marker_count;
    std::string key(text.substr(0, 120));
    if (report_.unknown_markers.size() < kMaxUnknownNames || report_.unknown_markers.count(key)) ++report_.unknown_markers[key];
  }

  // kvmrec's own forms (the VMM that made the recordings in tests/data/kvm-shadow):
  // "begin phase NAME (...)", "end phase NAME", "begin action NAME" with the
  // actions memslot-delete, memslot-add, dirty-log-enable, dirty-log-get-N,
  // dirty-log-disable, and the informational "dirty log NAME: N dirty 4K
  // pages", "guest finished ...", "teardown", "exit". False for anything else.
  bool kvmrec_marker(std::string_view text) {
    constexpr std::string_view kRec = "kvmrec: ";
    if (text.substr(0, kRec.size()) != kRec) return false;
    std::string_view rest = text.substr(kRec.size());
    auto word = [&](std::string_view w) {
      if (rest.substr(0, w.size()) != w) return false;
      rest.remove_prefix(w.size());
      return true;
    };
    if (word("begin phase ")) {
      std::string_view name = rest.substr(0, rest.find(' '));
      if (name.empty()) return false;
      phase(name);
      return true;
    }
    if (word("end phase ")) return !rest.empty();  // phases end where the next begins
    if (word("begin action ")) {
      std::string_view name = rest.substr(0, rest.find(' '));
      // The memslot-churn workload deletes and re-adds the data slots; the
      // dirtylog workload's KVM_SET_USER_MEMORY_REGION with and without
      // KVM_MEM_LOG_DIRTY_PAGES, and its KVM_GET_DIRTY_LOG, on the data slot.
      if (name == "memslot-delete") {
        for (const Slot& s : slots_)
          if (s.data && live_) slot_event(EventType::MemslotDelete, s);
        live_ = false;
      } else if (name == "memslot-add") {
        for (const Slot& s : slots_)
          if (s.data && !live_) slot_event(EventType::MemslotAdd, s);
        live_ = true;
      } else if (name == "dirty-log-enable" || name.substr(0, 14) == "dirty-log-get-" || name == "dirty-log-disable") {
        const DirtyLogOp op = name == "dirty-log-enable"    ? DirtyLogOp::Enable
                              : name == "dirty-log-disable" ? DirtyLogOp::Disable
                                                            : DirtyLogOp::Get;
        for (const Slot& s : slots_)
          if (s.data && live_) dirty_log_event(op, s.id);
      } else {
        return false;
      }
      phase(name);
      return true;
    }
    return word("dirty log ") || word("guest finished") || rest == "teardown" || rest == "exit";
  }

  void phase(std::string_view name) {
    Event p;
    p.type = EventType::Phase;
    p.name = std::string(name);
    put(p);
  }

  // ---- the marker vocabulary (docs/markers.md) ----------------------------------

  [[noreturn]] void bad_marker(std::string_view what, std::string_view field, const std::string& msg) const {
    throw TraceError(path_, line_no_, std::string(field),
                     "marker \"septsim: " + std::string(what) + "\": " + msg + " (docs/markers.md)");
  }

  // "KEY=VALUE" words and bare words of a vocabulary marker.
  struct MarkerArgs {
    std::vector<std::pair<std::string_view, std::string_view>> kv;
    std::vector<std::string_view> words;
    const std::string_view* get(std::string_view key) const {
      for (const auto& [k, v] : kv)
        if (k == key) return &v;
      return nullptr;
    }
    bool has(std::string_view w) const { return std::find(words.begin(), words.end(), w) != words.end(); }
  };

  static MarkerArgs split_args(std::string_view rest) {
    MarkerArgs a;
    size_t i = 0;
    while (i < rest.size()) {
      std::string_view tok = next_word(rest, i);
      if (tok.empty()) continue;
      size_t eq = tok.find('=');
      if (eq == std::string_view::npos) a.words.push_back(tok);
      else a.kv.emplace_back(tok.substr(0, eq), tok.substr(eq + 1));
    }
    return a;
  }

  u64 marker_number(std::string_view what, const MarkerArgs& a, std::string_view key, bool required, u64 dflt = 0) const {
    const std::string_view* v = a.get(key);
    if (!v) {
      if (required) bad_marker(what, key, "missing " + std::string(key) + "=");
      return dflt;
    }
    u64 n;
    if (!parse_trace_number(*v, n)) bad_marker(what, key, "bad number \"" + std::string(*v) + "\" (hex 0x..., decimal or 4K/2M/1G)");
    return n;
  }

  Slot* find_slot(u32 id) {
    for (Slot& s : slots_)
      if (s.id == id) return &s;
    return nullptr;
  }

  u32 marker_slot(std::string_view what, const MarkerArgs& a) const {
    u64 id = marker_number(what, a, "slot", true);
    if (id >= TraceReader::kMaxSlots) bad_marker(what, "slot", std::to_string(id) + " is out of range (0..32763)");
    return u32(id);
  }

  void vocabulary(std::string_view text) {
    size_t sp = text.find(' ');
    std::string_view noun = text.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
    size_t sp2 = rest.find(' ');
    std::string_view verb = rest.substr(0, sp2);
    std::string what = std::string(noun) + " " + std::string(verb);
    MarkerArgs a = split_args(sp2 == std::string_view::npos ? std::string_view() : rest.substr(sp2 + 1));
    if (noun == "vm") return;  // read before the import (vm_create)
    if (noun == "phase" && (verb == "begin" || verb == "end")) {
      if (a.words.empty()) bad_marker(what, "name", "missing the phase name");
      if (verb == "begin") phase(a.words.front());
      return;
    }
    if (noun == "memslot") {
      u32 id = marker_slot(what, a);
      Slot* s = find_slot(id);
      if (verb == "add") {
        if (s) bad_marker(what, "slot", "slot " + std::to_string(id) + " exists already");
        Slot n;
        n.id = id;
        n.name = "data";
        n.gpa = marker_number(what, a, "gpa", true);
        n.size = marker_number(what, a, "size", true);
        n.hva = marker_number(what, a, "hva", false);
        if (n.size == 0 || (n.gpa | n.size | n.hva) & (kPageSize - 1) || n.gpa >= TraceReader::kMaxGpa ||
            n.size > TraceReader::kMaxGpa - n.gpa)
          bad_marker(what, "size", "gpa, size and hva must be 4 KiB aligned, size non-zero, below 2^52");
        u32 flags = marker_flags(what, a);
        std::optional<mmu::HostBacking> backing;
        if (const std::string_view* b = a.get("backing")) {
          if (*b == "4k") backing = mmu::HostBacking::Page4K;
          else if (*b == "thp") backing = mmu::HostBacking::Thp2M;
          else if (*b == "hugetlb1g") backing = mmu::HostBacking::Hugetlb1G;
          else bad_marker(what, "backing", "must be 4k, thp or hugetlb1g");
        }
        slots_.push_back(n);
        live_ = true;
        slot_event(EventType::MemslotAdd, n, flags, backing);
        return;
      }
      if (!s) bad_marker(what, "slot", "slot " + std::to_string(id) + " was not added");
      if (verb == "delete") {
        slot_event(EventType::MemslotDelete, *s);
        slots_.erase(slots_.begin() + (s - slots_.data()));
        return;
      }
      if (verb == "move") {
        s->gpa = marker_number(what, a, "gpa", true);
        if (s->gpa & (kPageSize - 1) || s->gpa >= TraceReader::kMaxGpa || s->size > TraceReader::kMaxGpa - s->gpa)
          bad_marker(what, "gpa", "must be 4 KiB aligned and the slot below 2^52");
        slot_event(EventType::MemslotMove, *s);
        return;
      }
      bad_marker(what, "", "unknown memslot action (add, delete, move)");
    }
    if (noun == "dirty-log") {
      u32 id = marker_slot(what, a);
      if (!find_slot(id)) bad_marker(what, "slot", "slot " + std::to_string(id) + " was not added");
      if (verb == "enable") return dirty_log_event(DirtyLogOp::Enable, id);
      if (verb == "get") return dirty_log_event(DirtyLogOp::Get, id);
      if (verb == "disable") return dirty_log_event(DirtyLogOp::Disable, id);
      if (verb == "clear") {
        u64 first = marker_number(what, a, "first", false), num = marker_number(what, a, "num", false);
        if (first % 64) bad_marker(what, "first", "must be a multiple of 64 (KVM_CLEAR_DIRTY_LOG)");
        if (first && !num) bad_marker(what, "num", "required when first= is given");
        return dirty_log_event(DirtyLogOp::Clear, id, first, num);
      }
      bad_marker(what, "", "unknown dirty-log action (enable, get, clear, disable)");
    }
    if (noun == "attributes") {
      what = "attributes";
      need_td(what);
      a = split_args(rest);
      Event e;
      e.type = EventType::SetMemoryAttributes;
      e.gpa = marker_number(what, a, "gpa", true);
      e.size = marker_number(what, a, "size", true);
      range_check(what, e.gpa, e.size);
      if (a.has("private") == a.has("shared")) bad_marker(what, "private", "say private or shared");
      e.make_private = a.has("private");
      return put(e);
    }
    if (noun == "td") {
      need_td(what);
      Event e;
      if (verb == "init-mem-region") {
        e.type = EventType::TdInitMemRegion;
        e.gpa = marker_number(what, a, "gpa", true);
        e.size = marker_number(what, a, "size", true);
        range_check(what, e.gpa, e.size);
        e.measure = a.has("measure");
      } else if (verb == "finalize") {
        e.type = EventType::TdFinalize;
      } else if (verb == "teardown") {
        e.type = EventType::TdTeardown;
        e.terminate = a.has("terminate");
      } else {
        bad_marker(what, "", "unknown td action (init-mem-region, finalize, teardown)");
      }
      return put(e);
    }
    unknown_marker(std::string(kVocab) + std::string(text));
  }

  void need_td(std::string_view what) const {
    if (!tdx_vm_) bad_marker(what, "", "needs a TD: write \"septsim: vm vcpus=N type=tdx\" before the first fault");
  }
  void range_check(std::string_view what, u64 gpa, u64 size) const {
    if (size == 0 || (gpa | size) & (kPageSize - 1) || gpa >= TraceReader::kMaxGpa || size > TraceReader::kMaxGpa - gpa)
      bad_marker(what, "size", "gpa and size must be 4 KiB aligned, size non-zero, below 2^52");
  }
  u32 marker_flags(std::string_view what, const MarkerArgs& a) const {
    const std::string_view* f = a.get("flags");
    if (!f || *f == "none") return 0;
    u32 flags = 0;
    for (std::string_view rest = *f; !rest.empty();) {
      std::string_view one = rest.substr(0, rest.find(','));
      rest.remove_prefix(std::min(rest.size(), one.size() + 1));
      if (one == "dirty_log") flags |= mmu::KVM_MEM_LOG_DIRTY_PAGES;
      else if (one == "readonly") flags |= mmu::KVM_MEM_READONLY;
      else bad_marker(what, "flags", "unknown flag \"" + std::string(one) + "\" (dirty_log, readonly, none)");
    }
    return flags;
  }

  void start(const StartMarker& m) {
    if (!opts_.memslots.empty()) return warn(line_no_, "kvmrec start marker: its memslots are ignored, --memslots gives them");
    if (!slots_.empty()) return warn(line_no_, "second kvmrec start marker ignored");
    if (m.vcpus && m.vcpus != vcpus_) warn(line_no_, "start marker says vcpus=" + std::to_string(m.vcpus) + ", importing " + std::to_string(vcpus_));
    thp_ = m.thp == "on";
    for (const Slot& s : m.slots) {
      if (s.size == 0 || (s.gpa | s.size | s.hva) & (kPageSize - 1) || s.gpa >= TraceReader::kMaxGpa ||
          s.size > TraceReader::kMaxGpa - s.gpa || s.id >= TraceReader::kMaxSlots) {
        warn(line_no_, "memslot " + std::to_string(s.id) + " of the start marker is malformed, skipped");
        continue;
      }
      slots_.push_back(s);
      slot_event(EventType::MemslotAdd, s);
    }
    live_ = true;
  }

  void dirty_log_event(DirtyLogOp op, u32 slot, u64 first_page = 0, u64 num_pages = 0) {
    ++dirty_log_ops_;
    Event e;
    e.type = EventType::DirtyLog;
    e.slot.id = slot;
    e.dirty_op = op;
    e.first_page = first_page;
    e.num_pages = num_pages;
    put(e);
  }

  void slot_event(EventType type, const Slot& s, u32 flags = 0, std::optional<mmu::HostBacking> backing = {}) {
    Event e;
    e.type = type;
    e.slot.id = s.id;
    e.slot.gpa = s.gpa;
    e.slot.size = s.size;
    e.slot.flags = flags;
    e.slot.userspace_addr = s.hva < (u64{1} << 56) && s.size <= (u64{1} << 56) - s.hva ? s.hva : 0;
    e.slot.backing = backing          ? *backing
                     : !s.data        ? mmu::HostBacking::Page4K
                     : opts_.backing  ? *opts_.backing
                     : thp_           ? mmu::HostBacking::Thp2M
                                      : mmu::HostBacking::Page4K;
    put(e);
  }

  std::string path_;
  EventSink& sink_;
  FtraceImportOptions opts_;
  FtraceImportReport report_;
  u32 vcpus_ = 1, next_vcpu_ = 0;
  u64 line_no_ = 0;
  bool thp_ = false, live_ = false, tdx_vm_ = false;
  u64 dirty_log_ops_ = 0, first_write_protect_ = 0;
  std::vector<Slot> slots_;
  std::map<u32, Task> tasks_;
};

}  // namespace

std::vector<mmu::MemslotSpec> parse_memslots_option(std::string_view text, mmu::HostBacking backing) {
  std::vector<mmu::MemslotSpec> out;
  while (!text.empty()) {
    std::string_view item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    std::string where = "--memslots: slot " + std::to_string(out.size()) + " \"" + std::string(item) + "\": ";
    std::vector<std::string_view> parts;
    for (std::string_view rest = item;;) {
      size_t colon = rest.find(':');
      parts.push_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (parts.size() < 2 || parts.size() > 4) throw std::invalid_argument(where + "expected GPA:SIZE[:BACKING[:HVA]]");
    mmu::MemslotSpec s;
    s.id = u32(out.size());
    s.backing = backing;
    if (!parse_trace_number(parts[0], s.gpa) || !parse_trace_number(parts[1], s.size) ||
        (parts.size() == 4 && !parse_trace_number(parts[3], s.userspace_addr)))
      throw std::invalid_argument(where + "bad number (hex \"0x1000\", decimal or a size such as \"256M\")");
    if (parts.size() >= 3) {
      if (parts[2] == "4k") s.backing = mmu::HostBacking::Page4K;
      else if (parts[2] == "thp") s.backing = mmu::HostBacking::Thp2M;
      else if (parts[2] == "hugetlb1g") s.backing = mmu::HostBacking::Hugetlb1G;
      else throw std::invalid_argument(where + "backing must be 4k, thp or hugetlb1g");
    }
    if (s.size == 0 || (s.gpa | s.size | s.userspace_addr) & (kPageSize - 1) || s.gpa >= TraceReader::kMaxGpa ||
        s.size > TraceReader::kMaxGpa - s.gpa)
      throw std::invalid_argument(where + "GPA, SIZE and HVA must be 4 KiB aligned, SIZE non-zero, below 2^52");
    out.push_back(s);
  }
  if (out.empty()) throw std::invalid_argument("--memslots: no slot given");
  return out;
}

bool parse_ftrace_line(std::string_view line, FtraceRecord& out) {
  size_t n = line.size(), i = 0;
  while (i < n && is_space(line[i])) ++i;
  if (i == n || line[i] == '#') return false;
  size_t task_start = i;
  // TASK is the shortest prefix followed by "-PID [CPU]".
  size_t cpu_end = 0;
  for (size_t j = task_start + 1; j < n; ++j) {
    if (line[j] != '-') continue;
    size_t k = j + 1;
    u64 pid = 0;
    while (k < n && is_digit(line[k]) && pid <= ~u32{0}) pid = pid * 10 + u64(line[k++] - '0');
    if (k == j + 1 || k >= n || !is_space(line[k]) || pid > ~u32{0}) continue;
    while (k < n && is_space(line[k])) ++k;
    if (k >= n || line[k] != '[') continue;
    size_t c = k + 1;
    u64 cpu = 0;
    while (c < n && is_digit(line[c]) && cpu < 100000) cpu = cpu * 10 + u64(line[c++] - '0');
    if (c == k + 1 || c >= n || line[c] != ']') continue;
    out.task = line.substr(task_start, j - task_start);
    out.pid = u32(pid);
    out.cpu = u32(cpu);
    cpu_end = c + 1;
    break;
  }
  if (!cpu_end) return false;
  i = cpu_end;
  // Optional flags, then "SECONDS.FRACTION:".
  auto timestamp = [&](size_t from, size_t& after) {
    size_t k = from;
    u64 sec = 0;
    while (k < n && is_digit(line[k]) && sec < (u64{1} << 40)) sec = sec * 10 + u64(line[k++] - '0');
    if (k == from || k >= n || line[k] != '.') return false;
    size_t f = ++k;
    u64 frac = 0;
    int digits = 0;
    while (k < n && is_digit(line[k])) {
      if (digits < 9) frac = frac * 10 + u64(line[k] - '0'), ++digits;
      ++k;
    }
    if (k == f || k >= n || line[k] != ':') return false;
    while (digits < 9) frac *= 10, ++digits;
    out.ts_ns = sec * 1000000000ull + frac;
    after = k + 1;
    return true;
  };
  while (i < n && is_space(line[i])) ++i;
  size_t after = 0;
  out.flags = {};
  if (!timestamp(i, after)) {
    size_t f = i;
    while (i < n && !is_space(line[i])) ++i;
    out.flags = line.substr(f, i - f);
    while (i < n && is_space(line[i])) ++i;
    if (!timestamp(i, after)) return false;
  }
  i = after;
  while (i < n && is_space(line[i])) ++i;
  size_t e = i;
  while (i < n && is_word(line[i])) ++i;
  if (i == e || i >= n || line[i] != ':') return false;
  out.event = line.substr(e, i - e);
  ++i;
  while (i < n && is_space(line[i])) ++i;
  size_t end = n;
  while (end > i && is_space(line[end - 1])) --end;
  out.body = line.substr(i, end - i);
  return true;
}

FtraceImportReport import_ftrace(const std::string& path, EventSink& sink, const FtraceImportOptions& opts) {
  if (is_tracedat(path)) {
    TraceDatSource src(path);
    return Importer(path, sink, opts).run(src);
  }
  return Importer(path, sink, opts).run();
}

}  // namespace septsim::traces
