#include "model/vcpu.h"

#include <string>

#include "model/sim_error.h"

namespace septsim::model {

namespace {
// An access whose EPT violation the hypervisor handled without changing the
// EPT for the same GPA (MMIO emulation, a read-only slot) is complete: KVM
// emulated the instruction. The bound only guards against a handler that
// never makes progress.
constexpr int kMaxExitsPerAccess = 8;
}  // namespace

Vcpu::Vcpu(sc_core::sc_module_name name, unsigned id, const Config& cfg, const Timing& timing, StatsRegistry& stats,
           Hypervisor& hv)
    : sc_module(name),
      id_(id),
      timing_(timing),
      hv_(hv),
      tlb_(cfg, stats, "vcpu" + std::to_string(id)),
      walker_("walker", cfg, timing, stats, "vcpu" + std::to_string(id)) {
  std::string p = "vcpu" + std::to_string(id) + ".";
  accesses_gpa_ = &stats.counter(p + "accesses_gpa", "guest-physical accesses");
  accesses_gva_ = &stats.counter(p + "accesses_gva", "guest-linear accesses");
  tlb_hits_ = &stats.counter(p + "tlb_hits", "accesses translated by a TLB hit");
  walks_ = &stats.counter(p + "walks", "page walks started");
  ept_violations_ = &stats.counter(p + "ept_violations", "VM exits for EPT violations");
  ept_misconfigs_ = &stats.counter(p + "ept_misconfigs", "VM exits for EPT misconfigurations");
  guest_page_faults_ = &stats.counter(p + "guest_page_faults", "guest #PF (no guest mapping)");
  emulated_ = &stats.counter(p + "emulated", "accesses completed by the hypervisor (MMIO, read-only)");
  vmexits_ = &stats.counter(p + "vmexits", "VM exits");
  invalidations_ = &stats.counter(p + "invalidations", "INVEPT/INVVPID/INVLPG/INVPCID executed");
  dropped_ = &stats.counter(p + "ops_after_vm_dead", "trace operations not run because the VM was dead (KVM_REQ_VM_DEAD)");
  cycles_ctr_ = &stats.counter(p + "cycles", "cycles spent by this vCPU");
  if (timing.memory.hierarchy) {
    const MemoryParams& m = timing.memory;
    const std::string mp = p + "mem.";
    l1d_ = std::make_unique<Cache>("l1d", MemLevel::L1D, m.l1d, m.replacement, m.seed + 2 * id, timing, &stats,
                                   mp + "l1d");
    l2_ = std::make_unique<Cache>("l2", MemLevel::L2, m.l2, m.replacement, m.seed + 2 * id + 1, timing, &stats,
                                  mp + "l2");
    uplink_ = std::make_unique<Forward>("uplink", walker_.mem);
    l1i_ = std::make_unique<Cache>("l1i", MemLevel::L1I, m.l1i, m.replacement, m.seed + 2 * id + (u64{1} << 32),
                                   timing, &stats, mp + "l1i");
    l1i_to_l2_ = std::make_unique<Forward>("l1i_to_l2", l2_->socket.get_base_interface());
    l1i_->next.bind(l1i_to_l2_->socket);
    l1d_->next.bind(l2_->socket);
    l2_->next.bind(uplink_->socket);
    walker_.attach_l1d(l1d_.get());
    for (unsigned i = 0; i < kMemLevels; ++i)
      data_served_[i] = &stats.counter(mp + "data." + kMemLevelNames[i],
                                       std::string("data accesses (loads and stores) served by ") + kMemLevelNames[i]);
    data_cycles_ = &stats.histogram(mp + "data.cycles", "load-to-use cycles per data access");
    for (unsigned i : {unsigned(MemLevel::L1I), 1u, 2u, 3u})
      fetch_served_[i] = &stats.counter(mp + "fetch." + kMemLevelNames[i],
                                        std::string("instruction fetches served by ") + kMemLevelNames[i]);
    fetch_cycles_ = &stats.histogram(mp + "fetch.cycles", "cycles per instruction fetch (L1I hit: latency.l1i)");
    row_hits_ = &stats.counter(mp + "dram.row_hits");
    row_misses_ = &stats.counter(mp + "dram.row_misses");
  }
  ctx_.vpid = u16(id + 1);  // VPID 0 is the host's
  guest_.levels = int(cfg.u("guest.levels"));
  u64 q = cfg.u("sim.quantum_ns");
  quantum_cycles_ = q * timing.freq_mhz / 1000;
  SC_HAS_PROCESS(Vcpu);
  SC_THREAD(run);
}

void Vcpu::load_eptp(const ept::Eptp& eptp) {
  eptp_ = eptp;
  ctx_.eptp = eptp.encode();
}

void Vcpu::invept_single(const ept::Eptp& eptp) {
  u64 e = eptp.encode();
  tlb_.invept_single(e);
  walker_.psc().invalidate_eptp(e);
}

void Vcpu::invept_all() {
  tlb_.invept_all();
  walker_.psc().invalidate_all();
}

Cycles Vcpu::data(const Translation& t, u64 addr, AccessType type) {
  LineAccess info;
  if (type == AccessType::Fetch) {
    const Cycles c = l1i_->access(t.frame | (addr & (level_size(t.level) - 1)), false, info);
    ++*fetch_served_[unsigned(info.served)];
    if (info.served == MemLevel::DRAM) ++*(info.row_hit ? row_hits_ : row_misses_);
    fetch_cycles_->add(c);
    return c;
  }
  const Cycles c = l1d_->access(t.frame | (addr & (level_size(t.level) - 1)), type == AccessType::Write, info);
  ++*data_served_[unsigned(info.served)];
  if (info.served == MemLevel::DRAM) ++*(info.row_hit ? row_hits_ : row_misses_);
  data_cycles_->add(c);
  return c;
}

// Services pending requests (and loads a root) the way KVM does before VM entry.
Cycles Vcpu::enter_guest() {
  u32 req = requests_;
  requests_ = 0;
  return hv_.service_requests(*this, req);
}

Cycles Vcpu::access(u64 addr, bool is_gva, AccessType type) {
  Cycles c = 0;
  ++*(is_gva ? accesses_gva_ : accesses_gpa_);
  TranslationKind kind = is_gva ? TranslationKind::Linear : TranslationKind::GuestPhysical;
  Gpa last_fault = ~0ull;
  for (int exits = 0;; ++exits) {
    if (requests_ || eptp_.root == 0) c += enter_guest();
    // No [[likely]] here: with it, miss-heavy replays (the fault and walk-2d
    // benches) ran about 4 % slower while real-program gained about 1 %.
    if (const Translation* t = tlb_.lookup_hot(kind, ctx_, addr, type)) {
      c += tlb_.l1_hit_cycles();
      ++*tlb_hits_;
      if (l1d_) [[unlikely]]
        return c + data(*t, addr, type);
      return c + timing_.mem_access;
    }
    TlbLookup lk = tlb_.lookup_rest(kind, ctx_, addr, type);
    c += lk.cycles;
    if (lk.hit) {
      ++*tlb_hits_;
      if (l1d_) [[unlikely]]
        return c + data(lk.t, addr, type);
      return c + timing_.mem_access;
    }
    ++*walks_;
    WalkRequest req{kind, addr, type, ctx_, eptp_, guest_};
    if (is_td_) req.secure_eptp = &secure_eptp_, req.shared_bit = shared_bit_;
    WalkResult r = walker_.walk(req);
    c += r.cycles;
    switch (r.outcome) {
      case WalkOutcome::Ok:
        // Host-side only: the data line's L2 and LLC sets load while the TLBs fill.
        if (l1d_) l1d_->prefetch_below(r.t.frame | (addr & (level_size(r.t.level) - 1)));
        tlb_.fill(kind, ctx_, addr, r.t, type);
        return c + (l1d_ ? data(r.t, addr, type) : timing_.mem_access);
      case WalkOutcome::GuestPageFault:
        ++*guest_page_faults_;
        return c;
      case WalkOutcome::EptMisconfig:
        ++*ept_misconfigs_;
        ++*vmexits_;
        return c + timing_.vmexit + hv_.handle_ept_misconfig(*this, r.gpa) + timing_.vmentry;
      case WalkOutcome::EptViolation:
        if (r.gpa == last_fault || exits >= kMaxExitsPerAccess) {
          ++*emulated_;
          return c;
        }
        last_fault = r.gpa;
        ++*ept_violations_;
        ++*vmexits_;
        c += timing_.vmexit;
        inflight_ = op_done_ + c;
        c += hv_.handle_ept_violation(*this, r.gpa, r.exit_qualification);
        inflight_ = 0;
        if (dead_) return c;  // the exit handler killed the VM: no entry
        c += timing_.vmentry;
        break;
    }
  }
}

Cycles Vcpu::invalidate(const VcpuOp& op) {
  ++*invalidations_;
  using K = VcpuOp::Kind;
  using I = VcpuOp::Inv;
  switch (op.kind) {
    case K::Invept:
      if (op.inv == I::All)
        invept_all();
      else
        invept_single(eptp_);
      break;
    case K::Invvpid:
      if (op.inv == I::Address) tlb_.invvpid_address(ctx_.vpid, op.addr);
      if (op.inv == I::Single || op.inv == I::SingleRetainGlobals)
        tlb_.invvpid_single(ctx_.vpid, op.inv == I::SingleRetainGlobals);
      if (op.inv == I::All) tlb_.invvpid_all();
      if (op.inv == I::All)
        walker_.psc().invalidate_all();
      else
        walker_.psc().invalidate_vpid(ctx_.vpid);
      break;
    case K::Invlpg:
      tlb_.invlpg(ctx_, op.addr);
      walker_.psc().invalidate_vpid_pcid(ctx_.vpid, ctx_.pcid);
      break;
    case K::Invpcid:
      if (op.inv == I::Address) tlb_.invpcid_address(ctx_.vpid, op.pcid, op.addr);
      if (op.inv == I::Single) tlb_.invpcid_single(ctx_.vpid, op.pcid);
      if (op.inv == I::All || op.inv == I::SingleRetainGlobals)
        tlb_.invpcid_all(ctx_.vpid, op.inv == I::All);
      if (op.inv == I::Address || op.inv == I::Single)
        walker_.psc().invalidate_vpid_pcid(ctx_.vpid, op.pcid);
      else
        walker_.psc().invalidate_vpid(ctx_.vpid);
      break;
    default:
      break;
  }
  return timing_.invalidation;
}

Cycles Vcpu::execute(const VcpuOp& op) {
  switch (op.kind) {
    case VcpuOp::Kind::Access: {
      Cycles c = 0;
      u64 addr = op.addr;
      for (u64 i = 0; i < op.count; ++i, addr += op.stride) {
        op_done_ = c;
        c += access(addr, op.is_gva, op.access);
      }
      op_done_ = 0;
      return c;
    }
    case VcpuOp::Kind::SetCr3:
      // MOV to CR3 without the no-flush bit drops the old PCID's non-global
      // linear mappings (SDM 4.10.4.1).
      tlb_.invpcid_single(ctx_.vpid, op.pcid);
      walker_.psc().invalidate_vpid_pcid(ctx_.vpid, op.pcid);
      guest_.cr3 = op.addr;
      guest_.levels = op.levels;
      ctx_.pcid = op.pcid;
      return timing_.invalidation;
    default:
      return invalidate(op);
  }
}

void Vcpu::sync() {
  sc_core::sc_time target = timing_.to_time(cycles_);
  sc_core::sc_time now = sc_core::sc_time_stamp();
  qk_.set(target > now ? target - now : sc_core::SC_ZERO_TIME);
  qk_.sync();
  synced_ = cycles_;
}

void Vcpu::look_ahead() {
  static_assert((kAheadRing & (kAheadRing - 1)) == 0 && kAheadRing > kAheadStages * kLookahead);
  // On while at least 4 of the last 8 single accesses walked.
  recent_walks_ = u8(recent_walks_ << 1 | (*walks_ != walks_seen_));
  walks_seen_ = *walks_;
  if (!recent_walks_) return;  // the common case of a trace that hits the TLBs
  // The bits set, without a library call (no POPCNT in the baseline ISA).
  unsigned bits = recent_walks_;
  bits = bits - ((bits >> 1) & 0x55u);
  bits = (bits & 0x33u) + ((bits >> 2) & 0x33u);
  bits = (bits + (bits >> 4)) & 0x0fu;
  if (bits < 4) return;
  // The previous call took the pairs (it tagged stage 0's even operation).
  const size_t first = head_ + kAheadStages * kLookahead - 1;
  if ((first & 1) && ahead_[(first - 1) & (kAheadRing - 1)].op == first) return;
  for (u8 stage = 0; stage < kAheadStages; ++stage) {
    // head_: the next operation. Two operations at a time, an even one and
    // the odd one after it, so that the host's misses of the two (a host TLB
    // miss each, most likely) overlap: the pair is taken at the call that
    // reaches its even operation, or at the next one if no call did (the
    // stage each operation has reached keeps the order).
    const size_t i0 = (head_ + (kAheadStages - stage) * kLookahead - 1) & ~size_t{1};
    for (size_t i = i0; i < i0 + 2 && i < queue_.size(); ++i) {
      PageWalker::Lookahead& la = ahead_[i & (kAheadRing - 1)];
      if (stage > 0 && (la.op != i + 1 || la.stage != stage)) continue;
      const VcpuOp& next = queue_[i];
      if (next.kind != VcpuOp::Kind::Access || next.count != 1) continue;
      if (stage == 0) {
        if (la.op == i + 1) continue;  // taken at the previous call
        la = PageWalker::Lookahead{i + 1, 0, 0};
      }
      WalkRequest req{next.is_gva ? TranslationKind::Linear : TranslationKind::GuestPhysical, next.addr, next.access,
                      ctx_, eptp_, guest_};
      if (is_td_) req.secure_eptp = &secure_eptp_, req.shared_bit = shared_bit_;
      walker_.prefetch(req, la);
    }
  }
}

void Vcpu::run() {
  try {
    run_queue();
  } catch (...) {
    record_sim_error(std::current_exception());
  }
}

void Vcpu::run_queue() {
  for (;;) {
    while (queue_empty()) {
      queue_.clear();
      head_ = 0;
      for (auto& la : ahead_) la = PageWalker::Lookahead{};
      sync();
      // sync() may yield: work pushed meanwhile must not be mistaken for idleness.
      if (!queue_empty()) break;
      idle_ = true;
      drained_.notify(sc_core::SC_ZERO_TIME);
      wait(work_);
    }
    const VcpuOp& next = queue_[head_++];
    if (dead_) {
      ++*dropped_;
      continue;
    }
    if (next.kind == VcpuOp::Kind::Access && next.count == 1) [[likely]] {
      // One access (most events of a real program's trace): execute() without
      // the loop, and without a copy of the operation (not used after access()).
      Cycles c = access(next.addr, next.is_gva, next.access);
      cycles_ += c;
      *cycles_ctr_ += c;
      look_ahead();
      if (cycles_ - synced_ >= quantum_cycles_) sync();
      continue;
    }
    const VcpuOp op = next;  // a copy: the replayer may push meanwhile (moving the queue)
    if (op.kind == VcpuOp::Kind::Access && op.count > 1) {
      // Long runs keep the quantum: synchronise between accesses, not after the run.
      u64 addr = op.addr;
      for (u64 i = 0; i < op.count && !dead_; ++i, addr += op.stride) {
        Cycles c = access(addr, op.is_gva, op.access);
        cycles_ += c;
        *cycles_ctr_ += c;
        if (cycles_ - synced_ >= quantum_cycles_) sync();
      }
      continue;
    }
    Cycles c = execute(op);
    cycles_ += c;
    *cycles_ctr_ += c;
    if (cycles_ - synced_ >= quantum_cycles_) sync();
  }
}

}  // namespace septsim::model
