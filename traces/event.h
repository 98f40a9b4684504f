// One decoded trace event (trace vocabulary v1, docs/trace-format.md).
#pragma once
#include <string>

#include "mmu/kvm.h"
#include "model/types.h"

namespace septsim::traces {

enum class EventType : u8 {
  VmCreate,       // {"type":"vm_create","vcpus":2} or {"type":"vm_create","vcpus":2,"vm_type":"tdx","gpaw":48} or "vm_type":"native"
  MemslotAdd,     // {"type":"memslot_add","slot":0,"gpa":"0x0","size":"1G","backing":"thp"}
  MemslotDelete,  // {"type":"memslot_delete","slot":0}
  MemslotMove,    // {"type":"memslot_move","slot":0,"gpa":"0x80000000"}
  DirtyLog,       // {"type":"dirty_log","slot":1,"op":"enable"|"get"|"clear"|"disable"}
  Access,         // {"type":"access","vcpu":0,"gpa":"0x1000","op":"w"} or "gva"; optional count/stride
  GuestMap,       // {"type":"guest_map","cr3":"0x1000","gva":..,"gpa":..,"size":..,"page":"4k"}
  SetCr3,         // {"type":"set_cr3","vcpu":0,"cr3":"0x1000","pcid":0,"levels":4}
  Invept,         // {"type":"invept","vcpu":0,"kind":"single"|"all"}
  Invvpid,        // {"type":"invvpid","vcpu":0,"kind":"address"|"single"|"all"|"single_retain_globals","gva":..}
  Invlpg,         // {"type":"invlpg","vcpu":0,"gva":..}
  Invpcid,        // {"type":"invpcid","vcpu":0,"kind":"address"|"single"|"all"|"all_retain_globals","pcid":1,"gva":..}
  Phase,          // {"type":"phase","name":"measured"}
  GuestPtPool,    // {"type":"guest_pt_pool","gpa":"0x3ff00000","size":"1M"}: where the replayer puts guest page tables
  // Imported recordings (traces/ftrace_import.h). Annotations (Marker,
  // KvmDecision) record what happened on the real host; replay ignores them
  // unless an observer asks for them (kvm-compare).
  Marker,         // {"type":"marker","text":"kvmrec: begin phase write-4k"}
  KvmDecision,    // {"type":"kvm_decision","kind":"map","vcpu":0,"gpa":"0x40000000","level":2,"guest_level":2}
  HostUnmap,      // {"type":"host_unmap","gpa":"0x40000000","size":"2M"}: an mmu-notifier unmap of guest memory
  // The TDX module (seam/), VM-wide: see TdxEventFields.
  TdCreate,       // {"type":"td_create","td":0,"vcpus":2,"gpaw":48,"dynamic_pamt":false}
  Seamcall,       // {"type":"seamcall","leaf":"TDH.MEM.PAGE.AUG","td":0,"gpa":"0x40000000","level":0,"expect":"TDX_SUCCESS"}
  Tdcall,         // {"type":"tdcall","leaf":"TDG.MEM.PAGE.ACCEPT","td":0,"vcpu":0,"gpa":..,"level":0}
  TdVcpu,         // {"type":"td_vcpu","td":0,"vcpu":1,"op":"enter"|"exit"}; exit may add "gpa","rip" (EPT violation)
  // The VM's own TD (vm_create "vm_type":"tdx"), driven through the MMU.
  TdInitMemRegion,  // {"type":"td_init_mem_region","gpa":"0x100000","size":"64K","measure":true,"tag":"0x1000"}
  TdFinalize,       // {"type":"td_finalize"}
  TdTeardown,       // {"type":"td_teardown"} or {"type":"td_teardown","terminate":true}
  Accept,           // {"type":"accept","vcpu":0,"gpa":"0x200000","level":0}: the guest's TDG.MEM.PAGE.ACCEPT
  SetMemoryAttributes,  // {"type":"set_memory_attributes","gpa":"0x300000","size":"4K","private":false}
  MapGpa,               // {"type":"map_gpa","vcpu":0,"gpa":"0x800000000300000","size":"4K"}: shared bit set = to shared
  NxRecoveryTick,       // {"type":"nx_recovery_tick"}: one run of KVM's NX-recovery worker (merge policy A)
  // Nested EPT: an L1 hypervisor running L2 guests (mmu/nested_mmu.h).
  NestedVmentry,  // {"type":"nested_vmentry","vcpu":0,"eptp":"0x10105e"}: L1 enters an L2 with that EPTP
  L2Access,       // {"type":"l2_access","vcpu":0,"gpa":"0x1000","op":"r"}: optional count/stride
  L1EptWrite,     // {"type":"l1_ept_write","vcpu":0,"eptp":"0x10105e","gpa":"0x3000"}: L1 changes its EPT12 leaf
  L1Invept,       // {"type":"l1_invept","vcpu":0,"kind":"single","eptp":"0x10105e"} or "kind":"all"
  // The VM's own TD again (last, so the binary format's type numbers stay).
  VcpuMigrate,    // {"type":"vcpu_migrate","vcpu":1,"lp":5}: the host runs TD vCPU 1 on LP 5 from now on
};

// Fields of the TDX events. Registers given in the trace override what the
// replayer derives (RCX = gpa|level, RDX = the TD's TDR, pages from the allocator).
struct TdxEventFields {
  enum Reg : u8 { RAX, RCX, RDX, R8, R9, R10, R11, R12, R13, kNumRegs };
  // The registers' names in traces ("rcx"), in Reg order.
  static constexpr const char* kRegNames[kNumRegs] = {"rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13"};
  u32 td = 0;
  u32 vcpu = 0;  // TD-local vCPU index (tdcall, td_vcpu)
  // td_create
  u32 vcpus = 1;
  int gpaw = 48;
  int ept_levels = 4;
  bool dynamic_pamt = false;
  bool create_only = false;  // td_create: TDH.MNG.CREATE only; the trace runs KEY.CONFIG and the rest
  // seamcall / tdcall
  u16 leaf = 0;
  unsigned version = 0;
  bool has_gpa = false;
  Gpa gpa = 0;
  int level = 0;  // TDX level: 0 = 4K, 1 = 2M, 2 = 1G
  u64 regs[kNumRegs] = {};
  u32 reg_mask = 0;  // bit i: regs[i] was given
  unsigned lp = 0;          // initiating logical processor
  bool concurrent = false;  // starts with the previous seamcall/tdcall instead of after it
  bool interrupt = false;   // seamcall: a host interrupt is pending while it runs
  // expect: a status; compared on the upper 32 bits unless exact
  bool has_expect = false;
  u64 expect = 0;
  bool expect_exact = false;
  // expect_out: output registers (RCX..R13, by Reg) compared whole;
  // bit i of the mask: expect_out[i] was given
  u64 expect_out[kNumRegs] = {};
  u32 expect_out_mask = 0;
  // td_vcpu: enter, or exit (with has_gpa: an EPT violation on gpa at rip)
  bool enter = true;
  u64 rip = 0;
};

// What the recorded kernel decided (KvmDecision): a fault's mapping level
// (kvm_mmu_spte_requested), an SPTE prefetch (set_spte without a request), a
// fast_page_fault fix, a zap of one SPTE or shadow page, a fast zap of all
// roots, a huge-page split.
enum class DecisionKind : u8 { Map, Prefetch, Fast, Zap, ZapAllFast, Split };

enum class DirtyLogOp : u8 { Enable, Get, Clear, Disable };
// Values are the INVVPID/INVPCID type numbers; type 3 is invvpid
// "single_retain_globals" and invpcid "all_retain_globals" (both keep globals).
enum class InvKind : u8 { Address, Single, All, SingleRetainGlobals };

struct Event {
  EventType type = EventType::Phase;
  u64 line = 0;   // 1-based line number in the trace file
  u32 vm = 0;     // the VM of a VM-scoped event ("vm", vm_scoped in event_desc.h); vm_create: the VM it creates
  int vcpu = -1;  // per-vCPU events only

  // VmCreate; a TD VM also uses tdx.gpaw and tdx.ept_levels
  u32 vcpus = 1;
  bool tdx_vm = false;
  bool native_vm = false;  // "vm_type":"native": guest-linear walks 1D (guest.native for this VM)

  // TdInitMemRegion (gpa, size, measure, tag); Accept (vcpu, gpa, tdx.level);
  // SetMemoryAttributes (gpa, size, make_private); MapGpa (vcpu, gpa, size)
  bool measure = false;
  bool make_private = false;
  bool terminate = false;  // TdTeardown: KVM_TDX_TERMINATE_VM (the HKID is released first)
  u64 tag = 0;

  // Memslot events: slot id, gpa (base or new base), size, backing, flags
  mmu::MemslotSpec slot;

  // DirtyLog
  DirtyLogOp dirty_op = DirtyLogOp::Get;
  u64 first_page = 0, num_pages = 0;  // Clear: range in pages within the slot (0,0 = whole slot)

  // Access: addr is a GVA when is_gva, else a GPA. count >= 1 accesses at
  // addr, addr + stride, ...
  u64 addr = 0;
  bool is_gva = false;
  AccessType access = AccessType::Read;
  u64 count = 1;
  u64 stride = 0;

  // GuestMap / SetCr3: guest page tables rooted at cr3 (a GPA).
  Gpa cr3 = 0;
  int guest_levels = 4;
  Gva gva = 0;     // GuestMap, Invlpg, Inv*(Address)
  Gpa gpa = 0;     // GuestMap, GuestPtPool
  u64 size = 0;    // GuestMap, GuestPtPool: bytes
  int page_level = PG_LEVEL_4K;  // GuestMap: guest page size (1 = 4K, 2 = 2M, 3 = 1G)
  bool writable = true;          // GuestMap
  bool executable = true;        // GuestMap
  u16 pcid = 0;

  // Invalidation
  InvKind inv_kind = InvKind::All;

  // NestedVmentry, L1EptWrite, L1Invept (single): L1's EPT pointer for the L2
  // (VMCS12 EPT_POINTER: root address, walk length, A/D, memory type)
  u64 eptp = 0;

  // Phase; Marker: the marker text
  std::string name;

  // KvmDecision: kind, gpa, page_level (the SPTE level), vcpu (-1 when not
  // tied to a vCPU) and the guest's own mapping level (0 = unknown).
  DecisionKind decision = DecisionKind::Map;
  int guest_level = 0;
  // Access, KvmDecision: host timestamp in ns from the recording (0 = none).
  u64 ts_ns = 0;

  // TdCreate, Seamcall, Tdcall, TdVcpu
  TdxEventFields tdx;
};

}  // namespace septsim::traces
