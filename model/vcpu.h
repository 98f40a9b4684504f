// A vCPU: one SC_THREAD that executes its queue of guest operations (accesses,
// CR3 loads, TLB-management instructions) against its TLBs and page walker,
// and reports VM exits to the Hypervisor. Time is kept as an integer cycle
// count and handed to a tlm_quantumkeeper only when a quantum's worth has
// accumulated, so a TLB hit costs no SystemC kernel work.
//
// With memory.model = hierarchy the vCPU owns its L1D and L2 (model/cache/):
// its walker's references and the data access of every translated load and
// store (at its HPA) go through the L1D; L2 misses leave through the walker's
// socket to the shared LLC and DRAM behind HostMemoryTarget. Instruction
// fetches have no L1I model and keep latency.mem_access.
#pragma once
#include <memory>
#include <systemc>
#include <vector>
#include <tlm_utils/tlm_quantumkeeper.h>

#include "model/cache/cache.h"
#include "model/cache/forward.h"
#include "model/hypervisor.h"
#include "model/tlb/tlb_hierarchy.h"
#include "model/walk/page_walker.h"

namespace septsim::model {

// One unit of work for a vCPU thread.
struct VcpuOp {
  enum class Kind : u8 { Access, SetCr3, Invept, Invvpid, Invlpg, Invpcid };
  enum class Inv : u8 { Address, Single, All, SingleRetainGlobals };
  Kind kind = Kind::Access;
  AccessType access = AccessType::Read;
  bool is_gva = false;
  Inv inv = Inv::All;
  u16 pcid = 0;
  u8 levels = 4;    // SetCr3: 4 or 5
  u64 addr = 0;    // Access: first address; Inv*: linear address
  u64 count = 1;   // Access: number of accesses
  u64 stride = 0;  // Access: distance between accesses
};

class Vcpu : public sc_core::sc_module, public VcpuControl {
 public:
  Vcpu(sc_core::sc_module_name name, unsigned id, const Config& cfg, const Timing& timing, StatsRegistry& stats,
       Hypervisor& hv);

  TlbHierarchy& tlb() { return tlb_; }
  PageWalker& walker() { return walker_; }
  Cache* l1d() { return l1d_.get(); }  // null under memory.model = flat
  Cache* l1i() { return l1i_.get(); }  // instruction fetches; null under memory.model = flat
  Cache* l2() { return l2_.get(); }
  const GuestPaging& guest() const { return guest_; }
  const TlbContext& context() const { return ctx_; }
  u32 pending_requests() const { return requests_; }

  // Work queue filled by the replayer; drained() fires when it empties and
  // the vCPU has synchronised its local time.
  void push(const VcpuOp& op) {
    // The thread waits for work_ only with an empty queue, and a pending
    // delta notification absorbs later ones: one per filling is enough.
    if (queue_empty()) work_.notify(sc_core::SC_ZERO_TIME);
    queue_.push_back(op);
    idle_ = false;
  }
  // Room for n operations at the queue's end, which the caller fills in
  // place (a batch of accesses): push() of each of them, without a copy.
  VcpuOp* push_n(size_t n) {
    if (queue_empty()) work_.notify(sc_core::SC_ZERO_TIME);
    const size_t at = queue_.size();
    queue_.resize(at + n);
    idle_ = false;
    return queue_.data() + at;
  }
  bool idle() const { return idle_; }
  const sc_core::sc_event& drained() const { return drained_; }
  // Moves local time forward to at least `t` (after VM-wide work).
  void advance_to(Cycles t) { if (cycles_ < t) cycles_ = t; }
  Cycles cycles() const { return cycles_; }

  // Executes one operation in the calling thread and returns its cycles
  // (also used directly by tests and benchmarks).
  Cycles execute(const VcpuOp& op);
  Cycles access(u64 addr, bool is_gva, AccessType type);

  // VcpuControl
  unsigned id() const override { return id_; }
  const ept::Eptp& eptp() const override { return eptp_; }
  void load_eptp(const ept::Eptp& eptp) override;
  void invept_single(const ept::Eptp& eptp) override;
  void invept_all() override;
  void make_request(u32 request) override {
    // KVM_REQ_VM_DEAD never clears: KVM_RUN fails from now on.
    if (request & KVM_REQ_VM_DEAD) dead_ = true;
    requests_ |= request & ~u32(KVM_REQ_VM_DEAD);
  }
  bool vm_dead() const { return dead_; }
  Cycles local_time() const override { return cycles_ + inflight_; }
  void charge(Cycles c) override {
    cycles_ += c;
    *cycles_ctr_ += c;
  }

  void load_secure_eptp(const ept::Eptp& eptp, unsigned shared_bit) override {
    secure_eptp_ = eptp;
    shared_bit_ = shared_bit;
    is_td_ = true;
  }
  bool is_td() const { return is_td_; }
  const ept::Eptp& secure_eptp() const { return secure_eptp_; }

 private:
  void run();
  void run_queue();
  void sync();
  Cycles enter_guest();
  Cycles invalidate(const VcpuOp& op);
  // The data access after translation `t` of `addr` (memory.model = hierarchy;
  // flat charges latency.mem_access without calling it).
  Cycles data(const Translation& t, u64 addr, AccessType type);

  unsigned id_;
  const Timing& timing_;
  Hypervisor& hv_;
  TlbHierarchy tlb_;
  PageWalker walker_;
  std::unique_ptr<Cache> l1i_, l1d_, l2_;  // memory.model = hierarchy
  std::unique_ptr<Forward> uplink_;       // L2 misses -> walker_.mem
  std::unique_ptr<Forward> l1i_to_l2_;    // L1I misses -> the L2's socket
  ept::Eptp eptp_{0, 4, true};
  ept::Eptp secure_eptp_{0, 4, false};
  unsigned shared_bit_ = 0;
  bool is_td_ = false;
  TlbContext ctx_;
  GuestPaging guest_;
  u32 requests_ = 0;
  bool dead_ = false;  // KVM_REQ_VM_DEAD: operations are dropped, not run
  u64* dropped_ = nullptr;

  // FIFO: queue_[head_..] are pending; emptied whole once drained, so the
  // replayer's batches reuse one allocation.
  std::vector<VcpuOp> queue_;
  size_t head_ = 0;
  bool queue_empty() const { return head_ == queue_.size(); }
  sc_core::sc_event work_, drained_;
  bool idle_ = true;
  Cycles cycles_ = 0;         // this vCPU's local time
  Cycles synced_ = 0;         // local time at the last synchronisation
  Cycles op_done_ = 0;        // cycles of the current execute() not yet in cycles_
  Cycles inflight_ = 0;       // cycles of the operation in progress at a VM exit
  Cycles quantum_cycles_ = 0;
  tlm_utils::tlm_quantumkeeper qk_;

  // Counters ("vcpuN.*").
  Counter *accesses_gpa_, *accesses_gva_, *tlb_hits_, *walks_, *ept_violations_, *ept_misconfigs_, *guest_page_faults_,
      *emulated_, *vmexits_, *invalidations_, *cycles_ctr_;
  Counter* data_served_[kMemLevels] = {};
  Counter *row_hits_ = nullptr, *row_misses_ = nullptr;
  Histogram* data_cycles_ = nullptr;
  Counter* fetch_served_[kMemLevels + 1] = {};  // by MemLevel: l2, llc, dram, l1i (index 0 unused)
  Histogram* fetch_cycles_ = nullptr;

  // Look-ahead (after the members of the hot path, whose layout it leaves as it was).
  // Host-side only: while most recent accesses walk, the walker prepares the
  // walks of the accesses k kLookahead operations ahead, k = 1..kAheadStages
  // (PageWalker::prefetch's stage kAheadStages - k), two accesses at a time
  // at every other access.
  void look_ahead();
  static constexpr size_t kLookahead = 8, kAheadStages = 4;
  static constexpr size_t kAheadRing = 64;  // a power of two > kAheadStages kLookahead
  PageWalker::Lookahead ahead_[kAheadRing];
  u64 walks_seen_ = 0;   // *walks_ at the previous single access
  u8 recent_walks_ = 0;  // bit i: the single access i+1 back walked
};

}  // namespace septsim::model
