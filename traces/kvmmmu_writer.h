// `septsim replay --emit-kvmmmu FILE`: the model's MMU decisions as the
// kernel's `kvm`/`kvmmmu` tracepoint text, in the shape of the tracefs
// `trace` file (arch/x86/kvm/mmu/mmutrace.h): the `# tracer: nop` header, then one
// line per event, `TASK-PID [CPU] FLAGS SECONDS.MICROS: EVENT: FIELDS`.
// vCPU i is the thread "CPU i/KVM" (pid 4001+i) on CPU i, the VMM's own
// work (ioctls) is "septsim" (pid 4000) on CPU <vcpus>; timestamps are the
// thread's simulated time. `septsim import ftrace` reads the file back.
//
// Lines go to FILE.part while the replay runs; finish() writes FILE (header
// with the entry count, then the lines) and removes FILE.part, so a replay
// that fails leaves no FILE that looks whole.
#pragma once
#include <cstdio>
#include <functional>
#include <string>

#include "mmu/tracepoints.h"

namespace septsim::traces {

class KvmmmuWriter : public mmu::MmuTracepoints {
 public:
  // `clock_ps(i)`: simulated time of vCPU i's thread, of the VMM for -1.
  // Throws std::runtime_error "PATH: cannot write: ..." if FILE.part cannot be created.
  KvmmmuWriter(const std::string& path, unsigned vcpus, std::function<u64(int)> clock_ps);
  ~KvmmmuWriter() override;
  KvmmmuWriter(const KvmmmuWriter&) = delete;
  KvmmmuWriter& operator=(const KvmmmuWriter&) = delete;

  // A `tracing_mark_write` by the VMM ("kvmrec: begin phase NAME").
  void marker(const std::string& text);
  // Writes FILE; throws std::runtime_error "PATH: ..." on a write error.
  void finish();
  u64 entries() const { return entries_; }

  void set_task(int vcpu_id) override { task_ = vcpu_id; }
  void kvm_page_fault(unsigned vcpu_id, u64 guest_rip, Gpa fault_address, u64 error_code) override;
  void fast_page_fault(unsigned vcpu_id, Gpa cr2_or_gpa, u64 error_code, u64 old_spte, u64 new_spte, int ret) override;
  void kvm_mmu_spte_requested(Gfn gfn, Pfn pfn, int goal_level) override;
  void kvm_tdp_mmu_spte_changed(int as_id, Gfn gfn, int level, u64 old_spte, u64 new_spte) override;
  void kvm_mmu_split_huge_page(Gfn gfn, u64 spte, int level, int err) override;

 private:
  // One line for the current task; `fields` is the event's TP_printk output.
  void line(const char* event, const char* fields);

  std::string path_, part_;
  std::FILE* f_ = nullptr;     // FILE.part
  unsigned vcpus_;
  std::function<u64(int)> clock_ps_;
  int task_ = -1;              // the vCPU whose thread emits, -1 = the VMM
  u64 entries_ = 0;            // lines written
  bool finished_ = false;
};

// __print_flags of a PFERR error code as fast_page_fault prints it:
// "P|W|U|RSVD|F" for the bits set, unknown bits appended as hex.
std::string pferr_flags(u64 error_code);

}  // namespace septsim::traces
