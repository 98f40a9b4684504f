// Which side of the VM's mmu_lock (an rwlock in KVM) a holder takes.
#pragma once
#include "model/types.h"

namespace septsim::mmu {

enum class MmuLockMode : u8 { Read, Write };

}  // namespace septsim::mmu
