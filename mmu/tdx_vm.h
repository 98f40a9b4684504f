// The TD side of a VM (KVM_X86_TDX_VM): creation through the TDX module,
// TD vCPUs bound to their hardware vCPUs, the initial memory image
// (KVM_TDX_INIT_MEM_REGION), finalize, private faults that AUG, the guest's
// ACCEPT, and teardown that reclaims every page the TD owned
// (kvm-mmu.md 7, tdx-seam.md 2, 4, 9). Every action is a SEAMCALL/TDCALL
// transaction on the TdxModule.
//
// Private mappings are kept per gfn in `private_` (what KVM's mirror root
// records); Secure-EPT tables added for them in `sept_tables_`.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "model/phys_mem.h"
#include "model/types.h"
#include "seam/pamt_refcount.h"
#include "seam/td_builder.h"
#include "seam/tdx_module.h"

namespace septsim::model {
class Vcpu;
}

namespace septsim::mmu {

struct MmuStats;
class MmuLock;

struct TdxVmParams {
  int gpaw = 48;  // 48 or 52
  int ept_levels = 4;
  u16 hkid = 1;
};

// A private page the VMM gave the TD (PAGE.ADD or PAGE.AUG). 16 bytes: the
// HPA and the flags share one word.
struct PrivatePage {
  Hpa hpa : 52 = 0;
  int level : 8 = PG_LEVEL_4K;  // 1 = 4K, 2 = 2M
  bool added : 1 = false;       // PAGE.ADD (initial image) rather than AUG
  u64 tag = 0;                  // content tag when the page was given or last written by the guest
};
static_assert(sizeof(PrivatePage) == 16);

inline PrivatePage private_page(Hpa hpa, int level, u64 tag, bool added) {
  PrivatePage p;
  p.hpa = hpa;
  p.level = level;
  p.added = added;
  p.tag = tag;
  return p;
}

// The VM's private pages by gfn (what KVM's mirror root records): a dense
// array of 512 records per 2 MiB region, allocated when the region gets its
// first page, with a presence bitmap. A map-like interface that iterates in
// ascending gfn order.
class PrivatePageMap {
  struct Chunk {
    PrivatePage pages[512];
    u64 present[8] = {};
    u32 count = 0;
  };
  using Chunks = std::map<Gfn, std::unique_ptr<Chunk>>;  // by gfn >> 9

 public:
  template <bool Const>
  class Iter {
    using Map = std::conditional_t<Const, const PrivatePageMap, PrivatePageMap>;
    using Page = std::conditional_t<Const, const PrivatePage, PrivatePage>;
    using CIt = typename Chunks::const_iterator;

   public:
    using value_type = std::pair<const Gfn, Page&>;
    Iter() = default;
    Iter(CIt c, CIt end, unsigned off) : c_(c), end_(end), off_(off) { settle(); }
    Iter(const Iter& o) : c_(o.c_), end_(o.end_), off_(o.off_) { load(); }
    Iter& operator=(const Iter& o) {
      c_ = o.c_, end_ = o.end_, off_ = o.off_;
      load();
      return *this;
    }
    operator Iter<true>() const { return Iter<true>(c_, end_, off_); }
    value_type& operator*() const { return *v_; }
    value_type* operator->() const { return &*v_; }
    Iter& operator++() {
      ++off_;
      settle();
      return *this;
    }
    bool operator==(const Iter& o) const { return c_ == o.c_ && (c_ == end_ || off_ == o.off_); }
    bool operator!=(const Iter& o) const { return !(*this == o); }

   private:
    friend class PrivatePageMap;
    // Moves to the first present record at or after (c_, off_).
    void settle() {
      for (; c_ != end_; ++c_, off_ = 0) {
        const Chunk& ch = *c_->second;
        for (unsigned w = off_ / 64; w < 8; ++w) {
          u64 bits = ch.present[w];
          if (w == off_ / 64) bits &= ~u64{0} << (off_ % 64);
          if (bits) {
            off_ = w * 64 + unsigned(__builtin_ctzll(bits));
            load();
            return;
          }
        }
      }
      off_ = 0;
      v_.reset();
    }
    void load() {
      v_.reset();
      if (c_ != end_) v_.emplace((c_->first << 9) | off_, const_cast<Page&>(c_->second->pages[off_]));
    }
    CIt c_{}, end_{};
    unsigned off_ = 0;
    mutable std::optional<value_type> v_;
  };
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  iterator begin() { return {chunks_.begin(), chunks_.end(), 0}; }
  iterator end() { return {chunks_.end(), chunks_.end(), 0}; }
  const_iterator begin() const { return {chunks_.begin(), chunks_.end(), 0}; }
  const_iterator end() const { return {chunks_.end(), chunks_.end(), 0}; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t count(Gfn gfn) const { return lookup(gfn) ? 1 : 0; }
  PrivatePage* lookup(Gfn gfn) {
    Chunk* c = chunk(gfn >> 9);
    return c && has(*c, gfn) ? &c->pages[gfn & 511] : nullptr;
  }
  const PrivatePage* lookup(Gfn gfn) const { return const_cast<PrivatePageMap*>(this)->lookup(gfn); }
  PrivatePage& at(Gfn gfn) {
    PrivatePage* p = lookup(gfn);
    if (!p) throw std::out_of_range("PrivatePageMap::at");
    return *p;
  }
  const PrivatePage& at(Gfn gfn) const { return const_cast<PrivatePageMap*>(this)->at(gfn); }
  PrivatePage& operator[](Gfn gfn) {
    Chunk* c = chunk(gfn >> 9);
    if (!c) {
      auto& slot = chunks_[gfn >> 9];
      slot = std::make_unique<Chunk>();
      c = slot.get();
      last_key_ = gfn >> 9, last_ = c;
    }
    if (!has(*c, gfn)) {
      c->present[(gfn & 511) / 64] |= u64{1} << (gfn % 64);
      c->pages[gfn & 511] = PrivatePage{};
      ++c->count, ++size_;
    }
    return c->pages[gfn & 511];
  }
  iterator find(Gfn gfn) {
    auto c = chunks_.find(gfn >> 9);
    if (c == chunks_.end() || !has(*c->second, gfn)) return end();
    return {c, chunks_.end(), unsigned(gfn & 511)};
  }
  const_iterator find(Gfn gfn) const {
    auto c = chunks_.find(gfn >> 9);
    if (c == chunks_.end() || !has(*c->second, gfn)) return end();
    return {c, chunks_.end(), unsigned(gfn & 511)};
  }
  // First record at or after gfn.
  iterator lower_bound(Gfn gfn) {
    auto c = chunks_.lower_bound(gfn >> 9);
    return {c, chunks_.end(), c != chunks_.end() && c->first == (gfn >> 9) ? unsigned(gfn & 511) : 0};
  }
  const_iterator lower_bound(Gfn gfn) const {
    auto c = chunks_.lower_bound(gfn >> 9);
    return {c, chunks_.end(), c != chunks_.end() && c->first == (gfn >> 9) ? unsigned(gfn & 511) : 0};
  }
  size_t erase(Gfn gfn) {
    auto c = chunks_.find(gfn >> 9);
    if (c == chunks_.end() || !has(*c->second, gfn)) return 0;
    Chunk& ch = *c->second;
    ch.present[(gfn & 511) / 64] &= ~(u64{1} << (gfn % 64));
    --size_;
    if (--ch.count == 0) {
      if (last_ == &ch) last_ = nullptr;
      chunks_.erase(c);
    }
    return 1;
  }
  void erase(const iterator& it) { erase(it->first); }
  void erase(const const_iterator& it) { erase(it->first); }
  void clear() {
    chunks_.clear();
    size_ = 0;
    last_ = nullptr;
  }

 private:
  static bool has(const Chunk& c, Gfn gfn) { return (c.present[(gfn & 511) / 64] >> (gfn % 64)) & 1; }
  Chunk* chunk(Gfn key) {
    if (last_ && last_key_ == key) return last_;
    auto it = chunks_.find(key);
    if (it == chunks_.end()) return nullptr;
    last_key_ = key, last_ = it->second.get();
    return last_;
  }

  Chunks chunks_;
  size_t size_ = 0;
  Gfn last_key_ = 0;
  Chunk* last_ = nullptr;  // the chunk last looked up
};

class TdxVm {
 public:
  TdxVm(seam::TdxModule& tdx, model::PhysMem& mem, MmuStats& stats);
  TdxVm(const TdxVm&) = delete;
  TdxVm& operator=(const TdxVm&) = delete;

  // Cycles of one kick IPI (KVM charges its latency.ipi).
  void set_kick_cost(Cycles c) { kick_ipi_ = c; }
  // The simulated time and initiator of the SEAMCALLs that follow: a vCPU's
  // local time during its exit, the VMM's in an ioctl.
  void set_clock(Cycles now, unsigned initiator) {
    now_ = now;
    initiator_ = initiator;
  }
  // The simulated time after the last SEAMCALL.
  Cycles clock() const { return now_; }
  // How far apart the initiators' clocks may be (several vCPUs): the
  // module's lock windows and the in-flight SEPT.ADD/AUG records are kept
  // that long.
  void set_clock_skew(Cycles skew);
  // The last map_private failed on TDX_OPERAND_BUSY: KVM retries the fault.
  bool map_busy() const { return map_busy_; }
  // Whether another vCPU's AUG of the page at `gfn` (level 1 = 4K, 2 = 2M),
  // or its SEPT.ADD of a table on the way, is in flight at this clock: the
  // walk does not see the mapping yet.
  bool mapping_in_flight(Gfn gfn, int level) const;
  // The VM's mmu_lock: TDH.MEM.TRACK must run under its write side (rule 20).
  void set_mmu_lock(const MmuLock* lock) { mmu_lock_ = lock; }
  // Broken rule-20 (TRACK) and rule-21 (allocation under mmu_lock)
  // conditions seen so far, one line each.
  const std::vector<std::string>& hook_violations() const { return hook_violations_; }
  // MNG.CREATE .. VP.INIT; binds each TD vCPU to hw[i] (may be null).
  // Returns the cycles; throws std::runtime_error naming the failed leaf.
  Cycles create(const TdxVmParams& p, const std::vector<model::Vcpu*>& hw);

  // The shared bit (kvm_gfn_direct_bits as a GPA bit): 47 or 51.
  unsigned shared_bit() const { return unsigned(params_.gpaw) - 1; }
  bool is_private(Gpa gpa) const { return !((gpa >> shared_bit()) & 1); }
  bool finalized() const { return finalized_; }
  bool torn_down() const { return torn_down_; }
  bool bugged() const { return bugged_; }
  u32 vcpus() const { return u32(handle_.tdvpr.size()); }

  // PAGE.ADD of `hpa` at `gpa` with content copied from a source page tagged
  // `tag`; MR.EXTEND per 256 bytes when `measure`.
  Cycles page_add(Gpa gpa, Hpa hpa, u64 tag, bool measure);
  Cycles finalize();
  // The external_spt cache of TD vCPU `cache` (vm_cache(): the VM's own, for
  // ioctls), topped up before mmu_lock so the hooks never allocate.
  void topup_external_spt_cache(u32 cache, Cycles& cycles);
  u32 vm_cache() const { return u32(external_spt_cache_.size() - 1); }
  // Dynamic PAMT page pairs for the hooks under mmu_lock (kvm-mmu.md 7.3):
  // one cache per TD vCPU (KVM's way) or only the VM's (`per_vcpu` false).
  void set_pamt_cache_per_vcpu(bool per_vcpu) { pamt_per_vcpu_ = per_vcpu; }
  // Fills cache `cache`'s PAMT pool before mmu_lock with enough pages for
  // one fault: a pair for the guest page and for each table it may link.
  // Returns the pages allocated.
  u32 topup_pamt_cache(u32 cache);
  size_t cached_pamt_pages(u32 cache) const { return pamt_pool(cache).size(); }
  // TDH.MEM.PAGE.DEMOTE's R12/R13 under mmu_lock: a PAMT page pair from
  // cache `cache` (rule 21 if it runs dry).
  std::pair<Hpa, Hpa> take_pamt_pair(u32 cache);
  // TDH.MEM.PAGE.PROMOTE hands its R12/R13 pair back: into cache `cache`
  // while it is below its fill level, otherwise to the host.
  void return_pamt_pair(u32 cache, Hpa r12, Hpa r13);
  size_t cached_spt_pages(u32 cache) const { return external_spt_cache_.at(cache).size(); }
  // Private fault at `gpa` backed by `hpa` (level 1 = 4K, 2 = 2M): SEPT.ADD of
  // missing tables with pages from cache `cache`, then AUG. True when the
  // page is mapped.
  bool map_private(u32 cache, Gpa gpa, Hpa hpa, int level, Cycles& cycles);
  // remove_external_spte for the private page recorded at `gfn` (its whole
  // level): BLOCK -> TRACK -> kick every vCPU -> REMOVE -> WBINVD. On a
  // failure the VM is bugged and the page stays recorded.
  bool remove_private(Gfn gfn, Cycles& cycles);
  // TDG.MEM.PAGE.ACCEPT by TD vCPU `vcpu`; returns the TDX status.
  seam::Status accept(u32 vcpu, Gpa gpa, int tdx_level, Cycles& cycles);
  // A VM exit / entry of TD vCPU `vcpu` (TD exit, TDH.VP.ENTER).
  Cycles td_exit(u32 vcpu);
  Cycles vp_enter(u32 vcpu);
  // VP.FLUSH, VPFLUSHDONE, CACHE.WB, KEY.FREEID, then RECLAIM of every
  // private, Secure-EPT and control page (TDR last).
  Cycles teardown();

  const PrivatePageMap& private_pages() const { return private_; }
  PrivatePageMap& private_pages() { return private_; }
  const seam::TdHandle& handle() const { return handle_; }
  // Secure-EPT table pages KVM added (external_spt), keyed by level and GPA.
  const std::map<u64, Hpa>& sept_tables() const { return sept_tables_; }
  const seam::Td* td() const { return tdx_.td(handle_.tdr); }
  seam::TdxModule& module() { return tdx_; }
  const seam::TdxModule& module() const { return tdx_; }
  // The VM's "kvm.tdx.*" counters (mmu_stats.h).
  u64& seamcalls;
  u64& busy_retries;
  u64& memory_faults;
  u64& kicks;
  u64& removed;
  u64& pamt_adds;
  u64& pamt_removes;
  u64& pamt_cache_topups;
  u64& pamt_cache_pages;

 private:
  // `retry_busy`: loop on TDX_OPERAND_BUSY here (what KVM does for the
  // zap-side leaves); SEPT.ADD and AUG instead fail the fault, which retries.
  seam::Status call(seam::Leaf leaf, seam::SeamcallRegs& r, Cycles& cycles, bool retry_busy = true);
  // A SEPT.ADD or AUG by `initiator` during [from, until): another vCPU
  // whose own call would overlap that window does not see its result yet and
  // collides with it (KVM's FROZEN entry). One that walks after `until` sees
  // it; one entirely before `from` also does (the model ran that call first).
  struct InFlight {
    u64 key;             // table_key, or kPageKeyBit | gfn for a page
    unsigned initiator;  // who made the call
    Cycles from, until;  // the call's window
  };
  static constexpr u64 kPageKeyBit = u64{1} << 63;
  bool hidden(u64 key) const;
  void note_in_flight(u64 key, Cycles from);
  // Rule 20: TRACK under the write mmu_lock, after the previous epoch drained.
  void check_track();
  Hpa control_page(Cycles& cycles);
  // The kernel's Dynamic PAMT refcount (PAMT.ADD on 0->1, PAMT.REMOVE on 1->0).
  // `pool`: the pre-allocated pages a 0->1 get must use (under mmu_lock);
  // a pool that runs dry is a rule-21 violation.
  void pamt_get(Hpa hpa, Cycles& cycles, std::vector<Hpa>* pool = nullptr);
  void pamt_put(Hpa hpa, Cycles& cycles);
  // One pre-allocated page for `what` under mmu_lock; a dry pool allocates
  // and records a rule-21 violation.
  Hpa take_pamt_page(std::vector<Hpa>& pool, const std::string& what);
  std::vector<Hpa>& pamt_pool(u32 cache) { return pamt_cache_.at(pamt_per_vcpu_ ? cache : vm_cache()); }
  const std::vector<Hpa>& pamt_pool(u32 cache) const {
    return pamt_cache_.at(pamt_per_vcpu_ ? cache : vm_cache());
  }
  bool ensure_tables(Gpa gpa, int leaf_level, u32 cache, Cycles& cycles);
  bool reclaim(Hpa hpa, Cycles& cycles);
  Cycles kick_all();
  Cycles reenter_all();

  seam::TdxModule& tdx_;
  model::PhysMem& mem_;
  seam::PamtRefcount dpamt_;
  TdxVmParams params_;
  seam::TdHandle handle_;
  std::vector<model::Vcpu*> hw_;
  PrivatePageMap private_;
  std::map<u64, Hpa> sept_tables_;  // (level << 56 | gpa >> level shift) -> table page
  std::vector<std::vector<Hpa>> external_spt_cache_;  // per TD vCPU, then the VM's
  std::vector<std::vector<Hpa>> pamt_cache_;          // PAMT page pairs, indexed the same way
  bool pamt_per_vcpu_ = true;
  bool finalized_ = false;
  bool torn_down_ = false;
  bool bugged_ = false;
  // The VMM's simulated clock for SEAMCALL start times: the module's locks
  // are windows in time, so back-to-back calls must not overlap.
  Cycles now_ = 0;
  Cycles kick_ipi_ = 0;  // what one kick IPI costs
  unsigned initiator_ = 0;    // of the SEAMCALLs that follow (0: the VMM, 1 + i: vCPU i)
  Cycles skew_ = 0;           // set_clock_skew
  std::vector<InFlight> in_flight_;
  bool map_busy_ = false;
  const MmuLock* mmu_lock_ = nullptr;
  Cycles epoch_drained_ = 0;  // when the last TRACK's kick had every vCPU out
  std::vector<std::string> hook_violations_;
};

}  // namespace septsim::mmu
