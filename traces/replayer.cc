#include "traces/replayer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>
#include <iostream>
#include <memory>
#include <sstream>
#include <systemc>

#include "mmu/kvm.h"
#include "mmu/nested_mmu.h"
#include "mmu/tdx_vm.h"
#include "model/hex.h"
#include "model/phys_mem.h"
#include "model/sim_error.h"
#include "model/timing.h"
#include "model/vcpu.h"
#include "model/walk/host_memory_target.h"
#include "traces/checksum.h"
#include "traces/config_check.h"
#include "traces/derived.h"
#include "traces/event.h"
#include "traces/guest_page_tables.h"
#include "traces/invariant_report.h"
#include "traces/kvmmmu_writer.h"
#include "traces/event_source.h"
#include "traces/reader.h"
#include "traces/seam_replay.h"

namespace septsim::traces {

namespace {

// Per-vCPU events are handed out in batches of this many before the replayer
// waits for the vCPUs: bounds memory on multi-GB traces.
constexpr u64 kBatch = 4096;

model::VcpuOp to_op(const Event& e) {
  using K = model::VcpuOp::Kind;
  model::VcpuOp op;
  op.addr = e.type == EventType::Access ? e.addr : e.gva;
  op.pcid = e.pcid;
  op.inv = model::VcpuOp::Inv(static_cast<u8>(e.inv_kind));
  switch (e.type) {
    case EventType::Access:
      op.kind = K::Access;
      op.access = e.access;
      op.is_gva = e.is_gva;
      op.count = e.count;
      op.stride = e.stride;
      break;
    case EventType::SetCr3:
      op.kind = K::SetCr3;
      op.addr = e.cr3;
      op.levels = e.guest_levels;
      break;
    case EventType::Invept: op.kind = K::Invept; break;
    case EventType::Invvpid: op.kind = K::Invvpid; break;
    case EventType::Invlpg: op.kind = K::Invlpg; break;
    default: op.kind = K::Invpcid; break;
  }
  return op;
}

// Newlines in a JSON Lines file (0 for binary traces, whose "line" is an
// event index): the denominator of the progress percentage.
u64 count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  u64 n = 0;
  bool first = true, text = true;
  while (in && text) {
    in.read(buf.data(), std::streamsize(buf.size()));
    size_t got = size_t(in.gcount());
    if (first && got > 0 && buf[0] != '{' && buf[0] != '#' && buf[0] != '\n' && buf[0] != ' ' && buf[0] != '\xef')
      text = false;
    first = false;
    for (size_t i = 0; i < got; ++i) n += buf[i] == '\n';
  }
  return text ? n : 0;
}

bool is_vcpu_event(EventType t) {
  switch (t) {
    case EventType::Access:
    case EventType::SetCr3:
    case EventType::Invept:
    case EventType::Invvpid:
    case EventType::Invlpg:
    case EventType::Invpcid:
      return true;
    default:
      return false;
  }
}

class ReplayTop : public sc_core::sc_module {
 public:
  ReplayTop(sc_core::sc_module_name name, const ReplayOptions& opts, EventSource& reader, u32 vcpus,
            model::StatsRegistry& stats)
      : sc_module(name),
        opts_(opts),
        reader_(reader),
        stats_(stats),
        timing_(model::Timing::from(opts.config)),
        mem_(opts.config.u("host.mem_gib") << 30),
        kvm_(opts.config, timing_, mem_, stats),
        nested_(opts.config, timing_, stats, vcpus),
        tdx_("tdx", opts.config, mem_, stats),
        seam_(tdx_, mem_, opts.display_path.empty() ? opts.trace_path : opts.display_path),
        target_("memory", mem_, timing_),
        guest_pt_(kvm_, mem_),
        checker_(kvm_, mem_) {
    for (u32 i = 0; i < vcpus; ++i) {
      vcpus_.push_back(std::make_unique<model::Vcpu>(("vcpu" + std::to_string(i)).c_str(), i, opts.config, timing_,
                                                    stats, kvm_));
      vcpus_.back()->walker().mem.bind(target_.socket);
      kvm_.add_vcpu(*vcpus_.back());
    }
    if (!opts.emit_kvmmmu.empty()) {
      kvmmmu_ = std::make_unique<KvmmmuWriter>(opts.emit_kvmmmu, vcpus, [this](int vcpu) {
        return timing_.to_ps(vcpu < 0 ? timing_.from_time(sc_core::sc_time_stamp()) : vcpus_[size_t(vcpu)]->cycles());
      });
      kvm_.set_tracepoints(kvmmmu_.get());
    }
    if (!opts.timeline.path.empty()) {
      timeline_ = std::make_unique<TimelineWriter>(opts.timeline, vcpus, [this](int vcpu) {
        return vcpu < 0 ? u64(sc_core::sc_time_stamp().value()) : timing_.to_ps(vcpus_[size_t(vcpu)]->cycles());
      });
      if (kvmmmu_) tee_ = std::make_unique<TracepointTee>(kvmmmu_.get(), timeline_.get());
      kvm_.set_tracepoints(tee_ ? static_cast<mmu::MmuTracepoints*>(tee_.get()) : timeline_.get());
      tdx_.set_observer(timeline_.get());
    }
    checker_.set_nested(&nested_);
    if (opts.check) {
      checker_.attach(kvm_);
      checker_.set_full_sweep_interval(opts.config.u("check.full_sweep_interval"));
    }
    events_ = &stats.counter("replay.events", "trace events replayed");
    vm_ops_ = &stats.counter("replay.vm_ops", "VM-wide events (ioctls, guest setup)");
    vm_cycles_ = &stats.counter("replay.vm_op_cycles", "cycles spent in VM-wide events");
    accept_fallbacks_ = &stats.counter("replay.accept_2m_fallbacks",
                                       "2M ACCEPTs the guest redid as 512 4K ACCEPTs (TDX_PAGE_SIZE_MISMATCH)");
    after_dead_ = &stats.counter("replay.events_after_vm_dead",
                                 "trace events not replayed because KVM had killed the VM (KVM_BUG_ON, kvm_vm_dead)");
    SC_HAS_PROCESS(ReplayTop);
    SC_THREAD(run);
  }

  // The MMU outlives the tracepoint writer (members die in reverse order).
  ~ReplayTop() override {
    kvm_.set_tracepoints(nullptr);
    tdx_.set_observer(nullptr);
  }

  void set_first(const Event& e) { first_ = e, have_first_ = true; }
  void set_total_lines(u64 n) { total_lines_ = n; }
  const InvariantReport& checker() const { return checker_; }
  const std::vector<std::string>& expect_mismatches() const { return seam_.mismatches(); }
  const std::string& vm_dead() const { return vm_dead_; }

 private:
  void run() {
    try {
      replay_all();
      barrier();
      note_dead(reader_.line(), "in the vCPU events up to line ");
      if (opts_.check) checker_.check(vcpus_, events_seen_, reader_.line(), true);
      if (kvmmmu_ || timeline_) kvm_.set_tracepoints(nullptr);
      if (kvmmmu_) kvmmmu_->finish();
      if (timeline_) {
        tdx_.set_observer(nullptr);
        timeline_->finish(u64(sc_core::sc_time_stamp().value()));
      }
    } catch (...) {
      model::record_sim_error(std::current_exception());
      return;
    }
    sc_core::sc_stop();
  }

  void replay_all() {
    Event e;
    u64 pending = 0;
    auto start = std::chrono::steady_clock::now();
    auto last_report = start;
    while (have_first_ || reader_.next(e)) {
      if (have_first_) e = first_, have_first_ = false;
      ++events_seen_;
      ++*events_;
      if (!vm_dead_.empty()) {
        ++*after_dead_;  // KVM answers a dead VM's ioctls and KVM_RUN with -EIO
        continue;
      }
      if (e.type == EventType::VmCreate) {
        if (e.tdx_vm) vm_op(e);
        continue;
      }
      if (e.type == EventType::Marker || e.type == EventType::KvmDecision) {
        if (opts_.on_annotation) barrier(), pending = 0, annotate(e);
        continue;
      }
      if (is_vcpu_event(e.type)) {
        if (e.vcpu < 0 || size_t(e.vcpu) >= vcpus_.size())
          throw_at(e, "field 'vcpu': vCPU " + std::to_string(e.vcpu) + " does not exist (the VM has " +
                          std::to_string(vcpus_.size()) + ")");
        if (const mmu::TdxVm* td = kvm_.tdx_vm(); td && (!td->finalized() || td->torn_down()))
          throw_at(e, std::string("field 'vcpu': a TD vCPU runs only between td_finalize and td_teardown (the TD is ") +
                          (td->torn_down() ? "torn down)" : "not finalized)"));
        vcpus_[size_t(e.vcpu)]->push(to_op(e));
        ++vcpu_events_;
        if (++pending >= kBatch) barrier(), pending = 0, note_dead(e.line, "in the vCPU events before line ");
      } else {
        barrier();
        pending = 0;
        note_dead(e.line, "in the vCPU events before line ");
        if (!vm_dead_.empty()) {
          ++*after_dead_;
          continue;
        }
        vm_op(e);
        note_dead(e.line, "at line ");
      }
      if (opts_.progress && (events_seen_ & 0xffff) == 0) {
        auto now = std::chrono::steady_clock::now();
        if (now - last_report > std::chrono::milliseconds(500)) {
          double secs = std::chrono::duration<double>(now - start).count();
          std::fprintf(stderr, "\r%llu events, %.0f events/s, line %llu", static_cast<unsigned long long>(events_seen_),
                       double(events_seen_) / secs, static_cast<unsigned long long>(reader_.line()));
          if (total_lines_) std::fprintf(stderr, " (%.1f %%)", 100.0 * double(reader_.line()) / double(total_lines_));
          std::fprintf(stderr, " ");
          last_report = now;
        }
      }
    }
    if (opts_.progress) std::fprintf(stderr, "\n");
  }

  // The first time the VM is seen dead: where (`where` + the event's line) and why.
  void note_dead(u64 line, const char* where) {
    if (!vm_dead_.empty() || kvm_.dead_reason().empty()) return;
    vm_dead_ = opts_.trace_path + ": " + where + std::to_string(line) + ": " + kvm_.dead_reason();
    // The KVM_BUG_ON (rule kvm-bug) is reported at the event that found the VM dead.
    if (opts_.check) checker_.check(vcpus_, events_seen_, line, false);
  }

  // Events whose changes the MMU's change log does not describe (they build
  // or tear down the TD, change memslots or their flags, or issue SEAMCALLs
  // of their own): the check after them is a full sweep.
  static bool needs_full_sweep(const Event& e) {
    switch (e.type) {
      case EventType::Accept:
      case EventType::MapGpa:
      case EventType::SetMemoryAttributes:
      case EventType::HostUnmap:
      case EventType::NxRecoveryTick:
      case EventType::TdInitMemRegion:
      case EventType::GuestPtPool:
      case EventType::GuestMap:
      case EventType::Phase:
      case EventType::NestedVmentry:
      case EventType::L2Access:
      case EventType::L1EptWrite:
      case EventType::L1Invept:
        return false;
      case EventType::DirtyLog:
        return e.dirty_op == DirtyLogOp::Enable || e.dirty_op == DirtyLogOp::Disable;
      default:
        return true;
    }
  }

  // What the change log cannot see: attributes and host mappings change
  // over the event's range, guest page tables under the TLBs.
  void note_for_check(const Event& e) {
    switch (e.type) {
      case EventType::MapGpa:
      case EventType::SetMemoryAttributes:
      case EventType::HostUnmap:
        checker_.touch_gpa_range(e.gpa, e.size);
        break;
      case EventType::GuestMap:
        checker_.guest_tables_changed();
        break;
      default:
        break;
    }
  }

  // Waits until every vCPU has drained its queue and synchronised.
  void barrier() {
    for (auto& v : vcpus_)
      while (!v->idle()) wait(v->drained());
  }

  void annotate(const Event& e) {
    AnnotationState st;
    for (int l = PG_LEVEL_4K; l <= PG_LEVEL_1G; ++l) st.pages[l] = kvm_.pages(l);
    if (e.type == EventType::KvmDecision && e.vcpu >= 0) st.model_level = kvm_.mapped_level(u32(e.vcpu), e.gpa);
    opts_.on_annotation(e, st);
  }

  [[noreturn]] void throw_at(const Event& e, const std::string& msg) {
    throw ReplayError((opts_.display_path.empty() ? opts_.trace_path : opts_.display_path) + ":" +
                      std::to_string(e.line) + ": " + msg);
  }

  u32 slot_flags(u32 id) const {
    auto it = slot_flags_.find(id);
    return it == slot_flags_.end() ? 0 : it->second;
  }

  void vm_op(const Event& e) {
    ++*vm_ops_;
    Cycles c = timing_.vm_ioctl;
    // The guest's own VM-wide events (ACCEPT, MapGPA, L1's nested ones) go
    // on their vCPU's track of the timeline, the rest on the VMM's.
    const int track = e.vcpu >= 0 && size_t(e.vcpu) < vcpus_.size() && e.type != EventType::VmCreate ? e.vcpu : -1;
    const u64 start_ps = u64(sc_core::sc_time_stamp().value());
    if (timeline_) timeline_->set_task(track);
    try {
      switch (e.type) {
        case EventType::MemslotAdd:
          c += kvm_.create_memslot(e.slot);
          slot_flags_[e.slot.id] = e.slot.flags;
          break;
        case EventType::MemslotDelete:
          c += kvm_.delete_memslot(e.slot.id);
          slot_flags_.erase(e.slot.id);
          break;
        case EventType::MemslotMove:
          c += kvm_.move_memslot(e.slot.id, e.slot.gpa);
          break;
        case EventType::DirtyLog: {
          u32 id = e.slot.id;
          if (e.dirty_op == DirtyLogOp::Enable) {
            slot_flags_[id] = slot_flags(id) | mmu::KVM_MEM_LOG_DIRTY_PAGES;
            c += kvm_.set_memslot_flags(id, slot_flags_[id]);
          } else if (e.dirty_op == DirtyLogOp::Disable) {
            slot_flags_[id] = slot_flags(id) & ~mmu::KVM_MEM_LOG_DIRTY_PAGES;
            c += kvm_.set_memslot_flags(id, slot_flags_[id]);
          } else if (e.dirty_op == DirtyLogOp::Get) {
            u64 n = 0;
            c += kvm_.get_dirty_log(id, &n);
          } else {
            c += kvm_.clear_dirty_log(id, e.first_page, e.num_pages);
          }
          break;
        }
        case EventType::TdCreate:
        case EventType::Seamcall:
        case EventType::Tdcall:
        case EventType::TdVcpu:
          c = seam_.run(e, timing_.from_time(sc_core::sc_time_stamp()));
          break;
        case EventType::VmCreate: {
          // KVM_X86_TDX_VM: the VM's TD, one TD vCPU per vCPU. Its HKID is
          // above any a raw td_create event picks.
          mmu::TdxVmParams p;
          p.gpaw = e.tdx.gpaw;
          p.ept_levels = e.tdx.ept_levels;
          p.hkid = 0x8000;
          if (e.tdx.dynamic_pamt && !tdx_.configure_dynamic_pamt(true))
            throw_at(e, "field 'dynamic_pamt': the TDX module already has TD pages without Dynamic PAMT");
          std::vector<model::Vcpu*> hw;
          for (auto& v : vcpus_) hw.push_back(v.get());
          c += kvm_.create_td(tdx_, p, hw);
          break;
        }
        case EventType::TdInitMemRegion:
          c += kvm_.td_init_mem_region(e.gpa, e.size, e.tag, e.measure);
          break;
        case EventType::TdFinalize:
          c += kvm_.td_finalize();
          break;
        case EventType::TdTeardown:
          c += kvm_.td_teardown(e.terminate);
          break;
        case EventType::Accept: {
          u64 status = 0;
          c += kvm_.td_accept(u32(e.vcpu), e.gpa, e.tdx.level, &status);
          // The Linux guest (arch/x86/coco/tdx/tdx-shared.c: try_accept_one)
          // takes a failed 2M ACCEPT as "accept it in 4K pieces": with the
          // merged kernel a 2M ACCEPT finds the range mapped at 4K
          // (TDX_PAGE_SIZE_MISMATCH) and the guest accepts each 4K page.
          if (e.tdx.level == 1 && seam::status_class(status) == seam::TDX_PAGE_SIZE_MISMATCH) {
            ++*accept_fallbacks_;
            status = seam::TDX_SUCCESS;
            for (u64 off = 0; off < (u64{1} << 21) && !seam::is_error(status); off += kPageSize)
              c += kvm_.td_accept(u32(e.vcpu), e.gpa + off, 0, &status);
          }
          if (seam::is_error(status))
            throw_at(e, "field 'gpa': TDG.MEM.PAGE.ACCEPT of " + hex(e.gpa) + " returned " + seam::status_string(status));
          break;
        }
        case EventType::SetMemoryAttributes:
          c += kvm_.set_memory_attributes(e.gpa, e.size, e.make_private);
          break;
        case EventType::MapGpa:
          c += kvm_.map_gpa(u32(e.vcpu), e.gpa, e.size);
          break;
        case EventType::HostUnmap:
          c += kvm_.zap_gfn_range(e.gpa, e.size);
          break;
        case EventType::NxRecoveryTick:
          c += kvm_.nx_recovery_tick();
          break;
        // Nested EPT: guest activity (a later phase marker starts a new
        // phase), and L1's exits are not ioctls.
        case EventType::NestedVmentry: c = nested_.nested_vmentry(u32(e.vcpu), e.eptp), ++vcpu_events_; break;
        case EventType::L2Access: c = nested_.l2_access(u32(e.vcpu), e.addr, e.count, e.stride), ++vcpu_events_; break;
        case EventType::L1EptWrite: c = nested_.l1_ept_write(u32(e.vcpu), e.eptp, e.gpa), ++vcpu_events_; break;
        case EventType::L1Invept:
          c = nested_.handle_invept(u32(e.vcpu), e.inv_kind == InvKind::All, e.eptp), ++vcpu_events_;
          break;
        case EventType::GuestPtPool:
          guest_pt_.set_pool(e.gpa, e.size);
          c = 0;
          break;
        case EventType::GuestMap:
          guest_pt_.map(e.cr3, e.guest_levels, e.gva, e.gpa, e.size, e.page_level, e.writable, e.executable);
          c = 0;
          break;
        case EventType::Phase:
          if (kvmmmu_) kvmmmu_->marker("kvmrec: begin phase " + e.name);
          // A phase marker before any guest activity names the first phase.
          if (vcpu_events_ == 0)
            stats_.rename_current_phase(e.name);
          else
            stats_.begin_phase(e.name);
          c = 0;
          break;
        default:
          break;
      }
    } catch (const mmu::KvmError& err) {
      throw_at(e, err.what());
    } catch (const GuestMapError& err) {
      throw_at(e, err.what());
    }
    if (timeline_) {
      timeline_->set_task(-1);
      if (e.type == EventType::Phase)
        vcpu_events_ == 0 ? timeline_->rename_phase(e.name) : timeline_->phase(e.name, start_ps);
      else
        timeline_->slice(track, event_type_name(e.type), start_ps, timing_.to_ps(c));
    }
    *vm_cycles_ += c;
    if (c) wait(timing_.to_time(c));
    Cycles now = timing_.from_time(sc_core::sc_time_stamp());
    for (auto& v : vcpus_) v->advance_to(now);
    if (opts_.check) {
      note_for_check(e);
      checker_.check(vcpus_, events_seen_, e.line, needs_full_sweep(e));
    }
  }

  const ReplayOptions& opts_;
  EventSource& reader_;
  model::StatsRegistry& stats_;
  model::Timing timing_;
  model::PhysMem mem_;
  mmu::Kvm kvm_;
  mmu::NestedMmu nested_;
  seam::TdxModule tdx_;
  SeamReplay seam_;
  model::HostMemoryTarget target_;
  GuestPageTables guest_pt_;
  InvariantReport checker_;
  std::vector<std::unique_ptr<model::Vcpu>> vcpus_;
  std::unique_ptr<KvmmmuWriter> kvmmmu_;  // --emit-kvmmmu
  std::unique_ptr<TimelineWriter> timeline_;  // --timeline
  std::unique_ptr<TracepointTee> tee_;        // both
  std::map<u32, u32> slot_flags_;
  Event first_;
  bool have_first_ = false;
  u64 events_seen_ = 0;
  u64 total_lines_ = 0;  // for the progress percentage; 0 = unknown
  u64 vcpu_events_ = 0;
  model::Counter *events_, *vm_ops_, *vm_cycles_, *after_dead_, *accept_fallbacks_;
  std::string vm_dead_;  // note_dead
};

}  // namespace

namespace {

class NoEvents : public EventSource {
 public:
  bool next(Event&) override { return false; }
  u64 line() const override { return 0; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_ = "-";
};

}  // namespace

std::vector<model::StatsRegistry::Info> registered_stats(const model::Config& config) {
  ReplayOptions opts;
  opts.config = config;
  NoEvents none;
  model::StatsRegistry stats;
  ReplayTop top("septsim_stats_list", opts, none, 1, stats);
  return stats.list();
}

ReplayReport replay(const ReplayOptions& opts) {
  check_config(opts.config, "config");
  auto source = open_event_source(opts.trace_path);
  EventSource& reader = *source;
  Event first;
  bool have_first = reader.next(first);
  u32 vcpus = have_first && first.type == EventType::VmCreate ? first.vcpus : 1;

  u64 quantum_ns = opts.config.u("sim.quantum_ns");
  tlm::tlm_global_quantum::instance().set(sc_core::sc_time(double(quantum_ns), sc_core::SC_NS));

  // sc_stop() from the replayer is the normal end, not news.
  sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  model::StatsRegistry stats;
  ReplayTop top("septsim", opts, reader, vcpus, stats);
  if (have_first) top.set_first(first);
  if (opts.progress) top.set_total_lines(count_lines(opts.trace_path));
  sc_core::sc_start();
  model::rethrow_sim_error();

  ReplayReport r;
  r.events = stats.value("replay.events");
  r.trace_fnv1a = fnv1a_file(opts.trace_path);
  r.sim_time_ps = sc_core::sc_time_stamp().value();
  r.violations = top.checker().violations();
  r.violation_records = top.checker().records();
  r.expect_mismatches = top.expect_mismatches();
  r.vm_dead = top.vm_dead();
  r.invariant_checks = top.checker().checks();
  r.invariant_full_sweeps = top.checker().full_sweeps();
  r.invariant_rules = top.checker().rules();
  r.stats = stats.to_json();
  add_derived(r.stats);
  r.totals = stats.totals();
  return r;
}

}  // namespace septsim::traces
