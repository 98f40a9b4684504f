// One decoded trace event (trace vocabulary v1, docs/trace-format.md).
#pragma once
#include <string>

#include "mmu/kvm.h"
#include "model/types.h"

namespace septsim::traces {

enum class EventType : u8 {
  VmCreate,       // {"type":"vm_create","vcpus":2}
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
};

enum class DirtyLogOp : u8 { Enable, Get, Clear, Disable };
// Values are the INVVPID/INVPCID type numbers; type 3 is invvpid
// "single_retain_globals" and invpcid "all_retain_globals" (both keep globals).
enum class InvKind : u8 { Address, Single, All, SingleRetainGlobals };

struct Event {
  EventType type = EventType::Phase;
  u64 line = 0;   // 1-based line number in the trace file
  int vcpu = -1;  // per-vCPU events only

  // VmCreate
  u32 vcpus = 1;

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

  // Phase
  std::string name;
};

}  // namespace septsim::traces
