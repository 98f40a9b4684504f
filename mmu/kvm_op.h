// One KVM operation in progress, the context everything on the MMU side
// reads and charges: a vCPU's exit being handled (its local time, its
// SEAMCALLs made as that TD vCPU) or a VMM ioctl (the VMM's time). The
// kernel has the same things in scattered places (current, the running
// vCPU, lockdep's idea of mmu_lock); the model keeps them in one object
// per VM that begin_vcpu_op / begin_ioctl start and finish ends.
#pragma once
#include <optional>

#include "mmu/mmu_lock_mode.h"
#include "model/hypervisor.h"
#include "model/types.h"

namespace septsim::mmu {

struct KvmOp {
  Cycles start = 0;  // simulated time the operation began
  Cycles spent = 0;  // host cycles it has taken so far
  const model::VcpuControl* vcpu = nullptr;  // whose exit is handled; null in an ioctl
  std::optional<MmuLockMode> lock;           // the side of mmu_lock it holds (MmuLockGuard)

  Cycles now() const { return start + spent; }
  // Who makes the SEAMCALLs: 0 the VMM, 1 + i TD vCPU i.
  unsigned initiator() const { return vcpu ? 1 + vcpu->id() : 0; }
};

}  // namespace septsim::mmu
