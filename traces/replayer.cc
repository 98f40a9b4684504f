#include "traces/replayer.h"

#include <unistd.h>

#include <chrono>
#include <deque>
#include <cstdio>
#include <fstream>
#include <future>
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
#include "traces/event_desc.h"
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
  op.addr = e.type == EventType::Access ? e.addr : e.gva.raw();
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

// Statistics names of VM `id`: VM 0 keeps the plain names, VM N > 0 gets "vmN.".
std::string vm_prefix(u32 id) { return id ? "vm" + std::to_string(id) + "." : std::string(); }

class ReplayTop : public sc_core::sc_module {
 public:
  ReplayTop(sc_core::sc_module_name name, const ReplayOptions& opts, EventSource& reader,
            const std::vector<ReplayVm>& vms, model::StatsRegistry& stats)
      : sc_module(name),
        opts_(opts),
        reader_(reader),
        stats_(stats),
        timing_(model::Timing::from(opts.config)),
        mem_(opts.config.u("host.mem_gib") << 30),
        tdx_("tdx", opts.config, mem_, stats),
        seam_(tdx_, mem_, opts.display_path.empty() ? opts.trace_path : opts.display_path),
        target_("memory", mem_, timing_) {  // vms_ is filled below
    for (u32 id = 0; id < vms.size(); ++id) {
      // Everything the VM registers, its vCPUs' too, is named under its prefix.
      stats.set_name_prefix(vm_prefix(id));
      vms_.push_back(std::make_unique<Vm>(id, vms[id].vcpus, opts.config, timing_, mem_, stats));
      Vm& vm = *vms_.back();
      // "vm_type":"native": the trace asks for guest.native for this VM's vCPUs.
      const model::Config* vcpu_config = &opts.config;
      if (vms[id].native) {
        native_configs_.push_back(opts.config);
        native_configs_.back().set("guest.native", "true", "vm_create \"vm_type\":\"native\"");
        vcpu_config = &native_configs_.back();
      }
      for (u32 i = 0; i < vms[id].vcpus; ++i) {
        std::string module = (id ? "vm" + std::to_string(id) + "_" : std::string()) + "vcpu" + std::to_string(i);
        vm.vcpus.push_back(
            std::make_unique<model::Vcpu>(module.c_str(), i, *vcpu_config, timing_, stats, vm.kvm));
        vm.vcpus.back()->walker().mem.bind(target_.socket);
        vm.kvm.add_vcpu(*vm.vcpus.back());
      }
      vm.accept_fallbacks = &stats.counter(
          "replay.accept_2m_fallbacks", "2M ACCEPTs the guest redid as 512 4K ACCEPTs (TDX_PAGE_SIZE_MISMATCH)");
      stats.set_name_prefix("");
    }
    // --emit-kvmmmu and --timeline follow VM 0 (docs/timeline.md).
    mmu::Kvm& kvm0 = vms_[0]->kvm;
    const u32 nvcpus0 = u32(vms_[0]->vcpus.size());
    if (!opts.emit_kvmmmu.empty()) {
      kvmmmu_ = std::make_unique<KvmmmuWriter>(opts.emit_kvmmmu, nvcpus0, [this](int vcpu) {
        return timing_.to_ps(vcpu < 0 ? timing_.from_time(sc_core::sc_time_stamp())
                                      : vms_[0]->vcpus[size_t(vcpu)]->cycles());
      });
      kvm0.set_tracepoints(kvmmmu_.get());
    }
    if (!opts.timeline.path.empty()) {
      timeline_ = std::make_unique<TimelineWriter>(opts.timeline, nvcpus0, [this](int vcpu) {
        return vcpu < 0 ? u64(sc_core::sc_time_stamp().value()) : timing_.to_ps(vms_[0]->vcpus[size_t(vcpu)]->cycles());
      });
      timeline_->set_cycles_to_ps([this](Cycles c) { return timing_.to_ps(c); });
      if (kvmmmu_) tee_ = std::make_unique<TracepointTee>(kvmmmu_.get(), timeline_.get());
      kvm0.set_tracepoints(tee_ ? static_cast<mmu::MmuTracepoints*>(tee_.get()) : timeline_.get());
      tdx_.set_observer(timeline_.get());
      other_vms_ = std::make_unique<OtherVmTracepoints>(timeline_.get());
      for (size_t i = 1; i < vms_.size(); ++i) vms_[i]->kvm.set_tracepoints(other_vms_.get());
    }
    for (const auto& v : vms) any_td_ = any_td_ || v.tdx;
    td_pages_ = &stats.counter("seam.td_pages_4k");
    sept_pages_ = &stats.counter("seam.sept.pages");
    if (opts.check)
      for (auto& vm : vms_) {
        vm->checker.attach(vm->kvm);
        vm->checker.set_full_sweep_interval(opts.config.u("check.full_sweep_interval"));
      }
    events_ = &stats.counter("replay.events", "trace events replayed");
    vm_ops_ = &stats.counter("replay.vm_ops", "VM-wide events (ioctls, guest setup)");
    vm_cycles_ = &stats.counter("replay.vm_op_cycles", "cycles spent in VM-wide events");
    after_dead_ = &stats.counter("replay.events_after_vm_dead",
                                 "trace events not replayed because KVM had killed their VM (KVM_BUG_ON, kvm_vm_dead)");
    SC_HAS_PROCESS(ReplayTop);
    SC_THREAD(run);
  }

  // The MMU outlives the tracepoint writer (members die in reverse order).
  ~ReplayTop() override {
    for (auto& vm : vms_) vm->kvm.set_tracepoints(nullptr);
    tdx_.set_observer(nullptr);
  }

  // Events read before the simulation (the vm_create events and the one after them).
  void set_pending(std::vector<Event> events) { pending_events_ = std::move(events); }
  void set_total_lines(u64 n) { total_lines_ = n; }
  // Every VM's violations in VM order; VM N > 0's details start "VM N: ".
  std::vector<Violation> violation_records() const {
    std::vector<Violation> all;
    for (const auto& vm : vms_)
      for (Violation v : vm->checker.records()) {
        if (vm->id) v.details = "VM " + std::to_string(vm->id) + ": " + v.details;
        all.push_back(std::move(v));
      }
    return all;
  }
  u64 invariant_checks() const {
    u64 n = 0;
    for (const auto& vm : vms_) n += vm->checker.checks();
    return n;
  }
  u64 invariant_full_sweeps() const {
    u64 n = 0;
    for (const auto& vm : vms_) n += vm->checker.full_sweeps();
    return n;
  }
  u64 invariant_rules() const {
    u64 n = 0;
    for (const auto& vm : vms_) n = std::max(n, vm->checker.rules());
    return n;
  }
  const std::vector<std::string>& expect_mismatches() const { return seam_.mismatches(); }
  const std::vector<TdSample>& td_series() const { return td_series_; }
  // "; "-joined reasons of the VMs KVM killed, in the order they died.
  const std::string& vm_dead() const { return vm_dead_; }

 private:
  // One VM of the trace: the KVM MMU with its vCPUs, guest page tables and
  // invariant checker. Built under its statistics prefix (vm_prefix).
  struct Vm {
    Vm(u32 vm_id, u32 nvcpus, const model::Config& cfg, const model::Timing& timing, model::PhysMem& mem,
       model::StatsRegistry& stats)
        : id(vm_id), kvm(cfg, timing, mem, stats), nested(cfg, timing, stats, nvcpus), guest_pt(kvm, mem), checker(kvm, mem) {
      checker.set_nested(&nested);
    }
    u32 id;
    mmu::Kvm kvm;
    mmu::NestedMmu nested;
    GuestPageTables guest_pt;
    InvariantReport checker;
    std::vector<std::unique_ptr<model::Vcpu>> vcpus;
    std::map<u32, u32> slot_flags;
    std::string dead;  // note_dead: where and why KVM killed it
    bool vcpus_ready = true;  // note_vcpus_ready(), after each of its VM-wide events
    model::Counter* accept_fallbacks = nullptr;
  };

  void run() {
    try {
      replay_all();
      barrier();
      for (auto& vm : vms_) note_dead(*vm, reader_.line(), "in the vCPU events up to line ");
      if (opts_.check)
        for (auto& vm : vms_) vm->checker.check(vm->vcpus, events_seen_, reader_.line(), true);
      if (kvmmmu_ || timeline_)
        for (auto& vm : vms_) vm->kvm.set_tracepoints(nullptr);
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

  // Every VM dead: nothing but the raw TDX module events could still run.
  bool all_dead() const {
    for (const auto& vm : vms_)
      if (vm->dead.empty()) return false;
    return true;
  }

  // The next event: the pending ones first, then the reader's.
  bool next_event(Event& e) {
    if (pending_next_ < pending_events_.size()) {
      e = pending_events_[pending_next_++];
      return true;
    }
    return reader_.next(e);
  }

  void replay_all() {
    Event e;
    u64 pending = 0;
    auto start = std::chrono::steady_clock::now();
    auto last_report = start;
    for (;;) {
      if (direct_accesses(pending)) {
        if (pending >= kBatch) barrier(), pending = 0, note_dead(*vms_[0], reader_.line(), "in the vCPU events before line ");
        continue;
      }
      if (!next_event(e)) break;
      ++events_seen_;
      ++*events_;
      // KVM answers a dead VM's ioctls and KVM_RUN with -EIO; host-wide
      // events stop once every VM is dead.
      if (e.vm >= vms_.size() || !vms_[e.vm]->dead.empty() || (!vm_scoped(e.type) && all_dead())) {
        ++*after_dead_;
        continue;
      }
      Vm& vm = *vms_[e.vm];
      if (e.type == EventType::VmCreate) {
        if (e.tdx_vm) vm_op(vm, e);
        continue;
      }
      if (e.type == EventType::Marker || e.type == EventType::KvmDecision) {
        if (opts_.on_annotation) barrier(), pending = 0, annotate(vm, e);
        continue;
      }
      if (vcpu_ordered(e.type)) {
        // vcpus_ready: no TD, or a finalized TD not torn down (only a VM-wide event changes that).
        if (e.vcpu < 0 || size_t(e.vcpu) >= vm.vcpus.size() || !vm.vcpus_ready) [[unlikely]]
          check_vcpu_event(vm, e);
        vm.vcpus[size_t(e.vcpu)]->push(to_op(e));
        ++vcpu_events_;
        if (++pending >= kBatch) barrier(), pending = 0, note_dead(vm, e.line, "in the vCPU events before line ");
      } else {
        barrier();
        pending = 0;
        for (auto& v : vms_) note_dead(*v, e.line, "in the vCPU events before line ");
        if (!vm.dead.empty() || (!vm_scoped(e.type) && all_dead())) {
          ++*after_dead_;
          continue;
        }
        vm_op(vm, e);
        note_dead(vm, e.line, "at line ");
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

  // The direct path of a run of plain accesses of VM 0 (most events of a
  // real program's trace): decoded by the reader straight into the vCPUs'
  // queues, up to the end of the current batch, with what replay_all does
  // for each access event. 0 when the next event is not one (or the VM cannot
  // take accesses now, or progress is reported per event): replay_all reads it.
  u64 direct_accesses(u64& pending) {
    if (pending_next_ < pending_events_.size() || opts_.progress) return 0;
    Vm& vm = *vms_[0];
    if (!vm.dead.empty() || !vm.vcpus_ready) return 0;
    const size_t n = reader_.next_accesses(direct_.data(), std::min<u64>(direct_.size(), kBatch - pending));
    const size_t nvcpus = vm.vcpus.size();
    u32 other_vcpus = 0;  // with one vCPU, nonzero when an access names another (refused below)
    if (nvcpus == 1)
      for (size_t i = 0; i < n; ++i) other_vcpus |= direct_[i].vcpu;
    if (nvcpus == 1 && !other_vcpus) {
      // One vCPU (a real program's trace): the batch goes into its queue in place.
      model::VcpuOp* q = n ? vm.vcpus[0]->push_n(n) : nullptr;
      for (size_t i = 0; i < n; ++i) {
        const PlainAccess& a = direct_[i];
        q[i].access = a.access, q[i].is_gva = a.is_gva, q[i].addr = a.addr, q[i].count = a.count,
        q[i].stride = a.stride;
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        const PlainAccess& a = direct_[i];
        if (a.vcpu >= nvcpus) [[unlikely]] {
          Event bad;
          bad.type = EventType::Access, bad.vcpu = int(a.vcpu), bad.line = reader_.line() - (n - 1 - i);
          check_vcpu_event(vm, bad);
        }
        model::VcpuOp op;
        op.addr = a.addr, op.is_gva = a.is_gva, op.access = a.access, op.count = a.count, op.stride = a.stride;
        vm.vcpus[a.vcpu]->push(op);
      }
    }
    events_seen_ += n;
    *events_ += n;
    vcpu_events_ += n;
    pending += n;
    return n;
  }

  [[gnu::cold]] void check_vcpu_event(const Vm& vm, const Event& e) {
    if (e.vcpu < 0 || size_t(e.vcpu) >= vm.vcpus.size())
      throw_at(e, "field 'vcpu': vCPU " + std::to_string(e.vcpu) + " does not exist (the VM has " +
                      std::to_string(vm.vcpus.size()) + ")");
    if (const mmu::TdxVm* td = vm.kvm.tdx_vm(); td && (!td->finalized() || td->torn_down()))
      throw_at(e, std::string("field 'vcpu': a TD vCPU runs only between td_finalize and td_teardown (the TD is ") +
                      (td->torn_down() ? "torn down)" : "not finalized)"));
  }
  static void note_vcpus_ready(Vm& vm) {
    const mmu::TdxVm* td = vm.kvm.tdx_vm();
    vm.vcpus_ready = !td || (td->finalized() && !td->torn_down());
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
  static void note_for_check(Vm& vm, const Event& e) {
    switch (e.type) {
      case EventType::MapGpa:
      case EventType::SetMemoryAttributes:
      case EventType::HostUnmap:
        vm.checker.touch_gpa_range(e.gpa, e.size);
        break;
      case EventType::GuestMap:
        vm.checker.guest_tables_changed();
        break;
      default:
        break;
    }
  }

  // The first time a VM is seen dead: where (`where` + the event's line) and why.
  void note_dead(Vm& vm, u64 line, const char* where) {
    if (!vm.dead.empty() || vm.kvm.dead_reason().empty()) return;
    vm.dead = opts_.trace_path + ": " + where + std::to_string(line) + ": " +
              (vm.id ? "VM " + std::to_string(vm.id) + ": " : std::string()) + vm.kvm.dead_reason();
    vm_dead_ += (vm_dead_.empty() ? "" : "; ") + vm.dead;
    // The KVM_BUG_ON (rule kvm-bug) is reported at the event that found the VM dead.
    if (opts_.check) vm.checker.check(vm.vcpus, events_seen_, line, false);
  }

  // Waits until every vCPU of every VM has drained its queue and synchronised.
  void barrier() {
    for (auto& vm : vms_)
      for (auto& v : vm->vcpus)
        while (!v->idle()) wait(v->drained());
  }

  void annotate(Vm& vm, const Event& e) {
    AnnotationState st;
    for (int l = PG_LEVEL_4K; l <= PG_LEVEL_1G; ++l) st.pages[l] = vm.kvm.pages(l);
    if (e.type == EventType::KvmDecision && e.vcpu >= 0) st.model_level = vm.kvm.mapped_level(u32(e.vcpu), e.gpa);
    const std::string prefix = vm_prefix(vm.id);
    if (stats_.has(prefix + "kvm.split_huge_page")) st.huge_splits = stats_.value(prefix + "kvm.split_huge_page");
    if (stats_.has(prefix + "kvm.recover_huge_page")) st.huge_recoveries = stats_.value(prefix + "kvm.recover_huge_page");
    opts_.on_annotation(e, st);
  }

  [[noreturn]] void throw_at(const Event& e, const std::string& msg) {
    throw ReplayError((opts_.display_path.empty() ? opts_.trace_path : opts_.display_path) + ":" +
                      std::to_string(e.line) + ": " + msg);
  }

  static u32 slot_flags(const Vm& vm, u32 id) {
    auto it = vm.slot_flags.find(id);
    return it == vm.slot_flags.end() ? 0 : it->second;
  }

  void vm_op(Vm& vm, const Event& e) {
    ++*vm_ops_;
    Cycles c = timing_.vm_ioctl;
    // The guest's own VM-wide events (ACCEPT, MapGPA, L1's nested ones) go
    // on their vCPU's track of the timeline (VM 0's), the rest on the VMM's.
    const int track =
        vm.id == 0 && e.vcpu >= 0 && size_t(e.vcpu) < vm.vcpus.size() && e.type != EventType::VmCreate ? e.vcpu : -1;
    const u64 start_ps = u64(sc_core::sc_time_stamp().value());
    if (timeline_) timeline_->set_task(track);
    try {
      switch (e.type) {
        case EventType::MemslotAdd:
          c += vm.kvm.create_memslot(e.slot);
          vm.slot_flags[e.slot.id] = e.slot.flags;
          break;
        case EventType::MemslotDelete:
          c += vm.kvm.delete_memslot(e.slot.id);
          vm.slot_flags.erase(e.slot.id);
          break;
        case EventType::MemslotMove:
          c += vm.kvm.move_memslot(e.slot.id, e.slot.gpa);
          break;
        case EventType::DirtyLog: {
          u32 id = e.slot.id;
          if (e.dirty_op == DirtyLogOp::Enable) {
            vm.slot_flags[id] = slot_flags(vm, id) | mmu::KVM_MEM_LOG_DIRTY_PAGES;
            c += vm.kvm.set_memslot_flags(id, vm.slot_flags[id]);
          } else if (e.dirty_op == DirtyLogOp::Disable) {
            vm.slot_flags[id] = slot_flags(vm, id) & ~mmu::KVM_MEM_LOG_DIRTY_PAGES;
            c += vm.kvm.set_memslot_flags(id, vm.slot_flags[id]);
          } else if (e.dirty_op == DirtyLogOp::Get) {
            u64 n = 0;
            c += vm.kvm.get_dirty_log(id, &n);
          } else {
            c += vm.kvm.clear_dirty_log(id, e.first_page, e.num_pages);
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
          p.hkid = 0x8000 + vm.id;
          if (e.tdx.dynamic_pamt && !tdx_.configure_dynamic_pamt(true))
            throw_at(e, "field 'dynamic_pamt': the TDX module already has TD pages without Dynamic PAMT");
          std::vector<model::Vcpu*> hw;
          for (auto& v : vm.vcpus) hw.push_back(v.get());
          c += vm.kvm.create_td(tdx_, p, hw);
          break;
        }
        case EventType::TdInitMemRegion:
          c += vm.kvm.td_init_mem_region(e.gpa, e.size, e.tag, e.measure);
          break;
        case EventType::TdFinalize:
          c += vm.kvm.td_finalize();
          break;
        case EventType::TdTeardown:
          c += vm.kvm.td_teardown(e.terminate);
          break;
        case EventType::Accept: {
          u64 status = 0;
          c += vm.kvm.td_accept(u32(e.vcpu), e.gpa, mmu::TdxLevel{e.tdx.level}, &status, e.tdx.interrupt);
          // The Linux guest (arch/x86/coco/tdx/tdx-shared.c: try_accept_one)
          // takes a failed 2M ACCEPT as "accept it in 4K pieces": with the
          // merged kernel a 2M ACCEPT finds the range mapped at 4K
          // (TDX_PAGE_SIZE_MISMATCH) and the guest accepts each 4K page.
          if (e.tdx.level == 1 && seam::status_class(status) == seam::TDX_PAGE_SIZE_MISMATCH) {
            ++*vm.accept_fallbacks;
            status = seam::TDX_SUCCESS;
            for (u64 off = 0; off < (u64{1} << 21) && !seam::is_error(status); off += kPageSize)
              c += vm.kvm.td_accept(u32(e.vcpu), e.gpa + off, mmu::TdxLevel{0}, &status);
          }
          if (seam::is_error(status)) {
            const std::string what = "TDG.MEM.PAGE.ACCEPT of " + hex(e.gpa) + " returned " + seam::status_string(status);
            // A refused ACCEPT is bad input, unless --check finds the VM
            // already broken: then the guest's failure is the bug's
            // symptom, reported with it, and the replay goes on.
            if (!opts_.check || !vm.checker.check_now(vm.vcpus, events_seen_, e.line))
              throw_at(e, "field 'gpa': " + what);
            vm.checker.add(events_seen_, e.line, "accept-refused: the guest's " + what);
          }
          break;
        }
        case EventType::SetMemoryAttributes:
          c += vm.kvm.set_memory_attributes(e.gpa, e.size, e.make_private);
          break;
        case EventType::MapGpa:
          c += vm.kvm.map_gpa(u32(e.vcpu), e.gpa, e.size);
          break;
        case EventType::VcpuMigrate:
          c += vm.kvm.td_vcpu_migrate(u32(e.vcpu), e.tdx.lp);
          break;
        case EventType::HostUnmap:
          c += vm.kvm.zap_gfn_range(e.gpa, e.size);
          break;
        case EventType::NxRecoveryTick:
          c += vm.kvm.nx_recovery_tick();
          break;
        // Nested EPT: guest activity (a later phase marker starts a new
        // phase), and L1's exits are not ioctls.
        case EventType::NestedVmentry: c = vm.nested.nested_vmentry(u32(e.vcpu), e.eptp), ++vcpu_events_; break;
        case EventType::L2Access: c = vm.nested.l2_access(u32(e.vcpu), e.addr, e.count, e.stride), ++vcpu_events_; break;
        case EventType::L1EptWrite: c = vm.nested.l1_ept_write(u32(e.vcpu), e.eptp, e.gpa), ++vcpu_events_; break;
        case EventType::L1Invept:
          c = vm.nested.handle_invept(u32(e.vcpu), e.inv_kind == InvKind::All, e.eptp), ++vcpu_events_;
          break;
        case EventType::GuestPtPool:
          vm.guest_pt.set_pool(e.gpa, e.size);
          c = 0;
          break;
        case EventType::GuestMap:
          vm.guest_pt.map(e.cr3, e.guest_levels, e.gva, e.gpa, e.size, e.page_level, e.writable, e.executable);
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
    note_vcpus_ready(vm);
    *vm_cycles_ += c;
    if (c) wait(timing_.to_time(c));
    Cycles now = timing_.from_time(sc_core::sc_time_stamp());
    for (auto& other : vms_)
      for (auto& v : other->vcpus) v->advance_to(now);
    if (any_td_ && td_series_.size() < kMaxTdSamples)
      td_series_.push_back({sc_core::sc_time_stamp().value() / 1000, *td_pages_, *sept_pages_});
    // The event's VM changed; a host-wide event may have changed any.
    if (opts_.check) {
      note_for_check(vm, e);
      for (auto& other : vms_)
        if (other.get() == &vm || !vm_scoped(e.type))
          other->checker.check(other->vcpus, events_seen_, e.line, needs_full_sweep(e));
    }
  }

  const ReplayOptions& opts_;
  EventSource& reader_;
  model::StatsRegistry& stats_;
  model::Timing timing_;
  model::PhysMem mem_;
  seam::TdxModule tdx_;  // the host's TDX module, shared by every TD
  SeamReplay seam_;
  // The memory target dies before the VMs (reverse order): a VM's teardown
  // frees frames, and a live target would revoke the DMI grants of its
  // vCPUs, which die first.
  std::deque<model::Config> native_configs_;  // vm_type native VMs' config (guest.native): outlives their vCPUs
  std::vector<std::unique_ptr<Vm>> vms_;  // by vm id
  model::HostMemoryTarget target_;
  std::unique_ptr<KvmmmuWriter> kvmmmu_;  // --emit-kvmmmu
  std::unique_ptr<TimelineWriter> timeline_;  // --timeline
  std::unique_ptr<TracepointTee> tee_;        // both
  std::unique_ptr<OtherVmTracepoints> other_vms_;  // --timeline: the VMs but VM 0
  std::vector<PlainAccess> direct_ = std::vector<PlainAccess>(kBatch);  // direct_accesses()' buffer
  std::vector<Event> pending_events_;
  size_t pending_next_ = 0;
  u64 events_seen_ = 0;
  u64 total_lines_ = 0;  // for the progress percentage; 0 = unknown
  u64 vcpu_events_ = 0;
  model::Counter *events_, *vm_ops_, *vm_cycles_, *after_dead_;
  // ReplayReport::td_series: sampled after each VM-wide event when a VM is a TD.
  static constexpr size_t kMaxTdSamples = 100000;
  bool any_td_ = false;
  const model::Counter *td_pages_, *sept_pages_;
  std::vector<TdSample> td_series_;
  std::string vm_dead_;  // note_dead, every VM's
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
  ReplayTop top("septsim_stats_list", opts, none, {ReplayVm{}}, stats);
  return stats.list();
}

ReplayReport replay(const ReplayOptions& opts) {
  check_config(opts.config, "config");
  auto source = open_event_source(opts.trace_path);
  EventSource& reader = *source;
  // The leading vm_create events declare the VMs (the reader refuses a later
  // one); the event after them is replayed first.
  std::vector<Event> head;
  std::vector<ReplayVm> vms;
  for (Event e; reader.next(e);) {
    head.push_back(e);
    if (e.type != EventType::VmCreate) break;
    vms.push_back({vm_prefix(u32(vms.size())), e.vcpus, e.tdx_vm, e.native_vm});
  }
  if (vms.empty()) vms.push_back(ReplayVm{});

  u64 quantum_ns = opts.config.u("sim.quantum_ns");
  tlm::tlm_global_quantum::instance().set(sc_core::sc_time(double(quantum_ns), sc_core::SC_NS));

  // sc_stop() from the replayer is the normal end, not news.
  sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  model::StatsRegistry stats;
  ReplayTop top("septsim", opts, reader, vms, stats);
  top.set_pending(std::move(head));
  if (opts.progress) top.set_total_lines(count_lines(opts.trace_path));
  // The trace's checksum (a serial byte loop, as long as a fast replay) runs
  // beside the simulation.
  std::future<u64> fnv1a = std::async(std::launch::async, fnv1a_file, opts.trace_path);
  sc_core::sc_start();
  model::rethrow_sim_error();

  ReplayReport r;
  r.events = stats.value("replay.events");
  r.trace_fnv1a = fnv1a.get();
  r.sim_time_ps = sc_core::sc_time_stamp().value();
  r.violation_records = top.violation_records();
  for (const auto& v : r.violation_records) r.violations.push_back(v.text());
  r.expect_mismatches = top.expect_mismatches();
  r.vm_dead = top.vm_dead();
  r.invariant_checks = top.invariant_checks();
  r.invariant_full_sweeps = top.invariant_full_sweeps();
  r.invariant_rules = top.invariant_rules();
  r.vms = vms;
  r.td_series = top.td_series();
  r.stats = stats.to_json();
  add_derived(r.stats, r.vms);
  r.totals = stats.totals();
  return r;
}

}  // namespace septsim::traces
