// One description per event type of the trace vocabulary (docs/trace-format.md):
// its name, its fields (kind, whether required, numeric range), where it runs
// (host-wide, VM-wide, on one vCPU), which layer consumes it, the first binary
// format version that carries it and whether it uses TdxEventFields. The JSON
// Lines reader takes the names, the accepted fields and the ranges from here,
// the binary writer and reader the versions, scopes and ranges, the replayer
// the scopes; tests compare the table with docs/trace-schema.json. A new event
// type starts with one entry here.
#pragma once
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "traces/event.h"

namespace septsim::traces {

// What a field holds (how the JSON reader parses it).
enum class FieldKind : u8 {
  Number,     // a non-negative integer (the trace's number syntax)
  Gpa,        // a guest-physical address, below 2^52
  Gva,        // a canonical guest-linear address
  Bytes,      // a size in bytes
  Bool,       // true / false
  Text,       // a string
  Choice,     // one of the strings in `choices` ("a|b|c")
  Flags,      // an array of strings from `choices`
  Status,     // a TDX status name or hex string
  Registers,  // an object of TDX output registers
};

enum class Need : u8 { Optional, Required, OneOf };  // OneOf: exactly one of the OneOf fields (access: gpa | gva)

// One field of one event on its JSON Lines line (traces/jsonl_writer.cc):
// a field's writer calls one of these to give its value (`,"name":value`
// then goes out), or none to leave the field out (at its default).
class FieldOut {
 public:
  FieldOut(std::string& line, std::string_view name) : line_(line), name_(name) {}
  void dec(u64 v);                 // 4096
  void hex(u64 v);                 // "0x1000"
  void word(std::string_view w);   // "thp" (a name from the field's choices)
  void text(const std::string& s); // a JSON string, escaped
  void literal(std::string_view v);  // true, false, [..], {..}: written as given
 private:
  void key();
  std::string& line_;
  std::string_view name_;
};

using FieldWriter = void (*)(FieldOut&, const Event&);

struct FieldDesc {
  std::string_view name;
  FieldKind kind;
  Need need;
  u64 lo;                    // Number: smallest value the reader accepts
  u64 hi;                    // Number: largest
  std::string_view choices;  // Choice / Flags: "a|b|c"
  FieldWriter write = nullptr;  // how the JSON Lines writer gives the field of an Event
  constexpr FieldDesc(std::string_view n, FieldKind k, Need nd = Need::Optional, u64 l = 0, u64 h = ~u64{0},
                      std::string_view c = {})
      : name(n), kind(k), need(nd), lo(l), hi(h), choices(c) {}
  // The same field, written by `w`.
  constexpr FieldDesc out(FieldWriter w) const {
    FieldDesc f = *this;
    f.write = w;
    return f;
  }
};

// Names of the Event's enumerations in traces (the fields' choices).
const char* backing_name(mmu::HostBacking b);
const char* dirty_op_name(DirtyLogOp op);
const char* access_op_name(AccessType a);
const char* inv_kind_name(EventType t, InvKind k);
const char* decision_name(DecisionKind k);
const char* guest_page_name(int level);
// Composite writers (traces/jsonl_writer.cc): a memslot's flags, the TDX
// events' leaf, registers, "expect" and "expect_out".
void write_slot_flags(FieldOut& o, const Event& e);
void write_leaf(FieldOut& o, const Event& e);
void write_expect(FieldOut& o, const Event& e);
void write_expect_out(FieldOut& o, const Event& e);
template <unsigned Reg>
void write_reg(FieldOut& o, const Event& e) {
  if (e.tdx.reg_mask >> Reg & 1) o.hex(e.tdx.regs[Reg]);
}

// Where an event runs: on the host (no "vm"), on one VM (after every vCPU of
// that VM has finished the events before it), or on one vCPU in file order.
enum class Scope : u8 { Host, Vm, Vcpu };

// The layer that acts on an event.
enum class Layer : u8 { Replayer, Mmu, Vcpu, Seam, Nested, Annotation };

struct EventDesc {
  EventType type;
  std::string_view name;
  Scope scope;
  Layer consumer;
  bool needs_td_vm;    // only in a VM created with "vm_type":"tdx"
  bool tdx_record;     // reads TdxEventFields (the binary format's TDX record)
  u32 binary_version;  // first binary format version with the event; 0 = none yet
  std::span<const FieldDesc> fields;
};

namespace desc_detail {
using enum FieldKind;
using enum Need;
constexpr u64 kU64 = ~u64{0};
using R = TdxEventFields::Reg;
// Limits shared by the readers (TraceReader::kMaxVcpus, kMaxSlots).
constexpr FieldDesc kVcpuReq =
    FieldDesc{"vcpu", Number, Required}.out([](FieldOut& o, const Event& e) { o.dec(u64(e.vcpu)); });
constexpr FieldDesc kSlotReq =
    FieldDesc{"slot", Number, Required, 0, 32763}.out([](FieldOut& o, const Event& e) { o.dec(e.slot.id); });
// "levels" of guest page tables: 4 is left out.
constexpr FieldDesc kGuestLevels = FieldDesc{"levels", Number, Optional, 4, 5}.out([](FieldOut& o, const Event& e) {
  if (e.guest_levels != 4) o.dec(u64(e.guest_levels));
});
constexpr FieldDesc kExpect = FieldDesc{"expect", Status}.out(write_expect);
constexpr FieldDesc kExpectOut = FieldDesc{"expect_out", Registers}.out(write_expect_out);
constexpr FieldDesc kTsNs = FieldDesc{"ts_ns", Number}.out([](FieldOut& o, const Event& e) {
  if (e.ts_ns) o.dec(e.ts_ns);
});
constexpr FieldDesc kConcurrent = FieldDesc{"concurrent", Bool}.out([](FieldOut& o, const Event& e) {
  if (e.tdx.concurrent) o.literal("true");
});
constexpr FieldDesc kInterrupt = FieldDesc{"interrupt", Bool}.out([](FieldOut& o, const Event& e) {
  if (e.tdx.interrupt) o.literal("true");
});
constexpr FieldDesc kTdxLevel = FieldDesc{"level", Number, Optional, 0, 4}.out([](FieldOut& o, const Event& e) {
  if (e.tdx.level) o.dec(u64(e.tdx.level));
});
constexpr FieldDesc kTdxGpa = FieldDesc{"gpa", Gpa}.out([](FieldOut& o, const Event& e) {
  if (e.tdx.has_gpa) o.hex(e.tdx.gpa);
});
constexpr FieldDesc kGpaHex = FieldDesc{"gpa", Gpa, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.gpa); });
constexpr FieldDesc kSizeHex = FieldDesc{"size", Bytes, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.size); });
constexpr FieldDesc kCount = FieldDesc{"count", Number, Optional, 1}.out([](FieldOut& o, const Event& e) {
  if (e.count != 1) o.dec(e.count);
});
constexpr FieldDesc kStride = FieldDesc{"stride", Number}.out([](FieldOut& o, const Event& e) {
  if (e.stride) o.hex(e.stride);
});
constexpr FieldDesc kAccessOp = FieldDesc{"op", Choice, Required, 0, kU64, "r|w|x|read|write|fetch"}.out(
    [](FieldOut& o, const Event& e) { o.word(access_op_name(e.access)); });
constexpr FieldDesc kTdTd = FieldDesc{"td", Number, Required}.out([](FieldOut& o, const Event& e) { o.dec(e.tdx.td); });
constexpr FieldDesc kTdVcpuReq =
    FieldDesc{"vcpu", Number, Required}.out([](FieldOut& o, const Event& e) { o.dec(e.tdx.vcpu); });
// td_create and a TD VM's vm_create: GPA width and Secure-EPT levels.
constexpr FieldDesc kTdGpaw = FieldDesc{"gpaw", Choice, Optional, 0, kU64, "48|52"}.out(
    [](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.gpaw)); });
constexpr FieldDesc kTdLevels = FieldDesc{"levels", Number, Optional, 4, 5}.out(
    [](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.ept_levels)); });
constexpr FieldDesc kDynamicPamt = FieldDesc{"dynamic_pamt", Bool}.out([](FieldOut& o, const Event& e) {
  if (e.tdx.dynamic_pamt) o.literal("true");
});
// The eptp of L1's nested events; l1_invept "all" has none.
constexpr FieldDesc kEptp = FieldDesc{"eptp", Number, Required}.out([](FieldOut& o, const Event& e) {
  if (e.type != EventType::L1Invept || e.inv_kind != InvKind::All) o.hex(e.eptp);
});
constexpr FieldDesc kInvKind(std::string_view choices) {
  return FieldDesc{"kind", Choice, Required, 0, kU64, choices}.out(
      [](FieldOut& o, const Event& e) { o.word(inv_kind_name(e.type, e.inv_kind)); });
}
// invvpid / invpcid "address" and invlpg name a linear address.
constexpr FieldDesc kInvGva(Need need) {
  return FieldDesc{"gva", Gva, need}.out([](FieldOut& o, const Event& e) {
    if (e.type == EventType::Invlpg || e.inv_kind == InvKind::Address) o.hex(e.gva);
  });
}
constexpr FieldDesc kRegs[] = {
    FieldDesc{"rax", Number}.out(write_reg<R::RAX>), FieldDesc{"rcx", Number}.out(write_reg<R::RCX>),
    FieldDesc{"rdx", Number}.out(write_reg<R::RDX>), FieldDesc{"r8", Number}.out(write_reg<R::R8>),
    FieldDesc{"r9", Number}.out(write_reg<R::R9>),   FieldDesc{"r10", Number}.out(write_reg<R::R10>),
    FieldDesc{"r11", Number}.out(write_reg<R::R11>), FieldDesc{"r12", Number}.out(write_reg<R::R12>),
    FieldDesc{"r13", Number}.out(write_reg<R::R13>)};

constexpr FieldDesc kVmCreate[] = {
    FieldDesc{"vcpus", Number, Required, 1, 256}.out([](FieldOut& o, const Event& e) { o.dec(e.vcpus); }),
    FieldDesc{"vm_type", Choice, Optional, 0, kU64, "default|tdx|native"}.out([](FieldOut& o, const Event& e) {
      if (e.native_vm) o.word("native");
      if (e.tdx_vm) o.word("tdx");
    }),
    kTdGpaw.out([](FieldOut& o, const Event& e) {
      if (e.tdx_vm) o.dec(u64(e.tdx.gpaw));
    }),
    kTdLevels.out([](FieldOut& o, const Event& e) {
      if (e.tdx_vm) o.dec(u64(e.tdx.ept_levels));
    }),
    kDynamicPamt.out([](FieldOut& o, const Event& e) {
      if (e.tdx_vm && e.tdx.dynamic_pamt) o.literal("true");
    })};
constexpr FieldDesc kMemslotAdd[] = {
    kSlotReq,
    FieldDesc{"gpa", Gpa, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.slot.gpa); }),
    FieldDesc{"size", Bytes, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.slot.size); }),
    FieldDesc{"backing", Choice, Required, 0, kU64, "4k|thp|hugetlb1g"}.out(
        [](FieldOut& o, const Event& e) { o.word(backing_name(e.slot.backing)); }),
    FieldDesc{"hva", Number}.out([](FieldOut& o, const Event& e) {
      if (e.slot.userspace_addr) o.hex(e.slot.userspace_addr);
    }),
    FieldDesc{"flags", Flags, Optional, 0, kU64, "dirty_log|readonly"}.out(write_slot_flags)};
constexpr FieldDesc kMemslotDelete[] = {kSlotReq};
constexpr FieldDesc kMemslotMove[] = {
    kSlotReq, FieldDesc{"gpa", Gpa, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.slot.gpa); })};
// first_page / num_pages: only a "clear" of part of the slot.
constexpr bool clears_part(const Event& e) { return e.dirty_op == DirtyLogOp::Clear && (e.first_page || e.num_pages); }
constexpr FieldDesc kDirtyLog[] = {
    kSlotReq,
    FieldDesc{"op", Choice, Required, 0, kU64, "enable|get|clear|disable"}.out(
        [](FieldOut& o, const Event& e) { o.word(dirty_op_name(e.dirty_op)); }),
    FieldDesc{"first_page", Number}.out([](FieldOut& o, const Event& e) {
      if (clears_part(e)) o.dec(e.first_page);
    }),
    FieldDesc{"num_pages", Number}.out([](FieldOut& o, const Event& e) {
      if (clears_part(e)) o.dec(e.num_pages);
    })};
constexpr FieldDesc kAccess[] = {kVcpuReq,
                                 FieldDesc{"gpa", Gpa, OneOf}.out([](FieldOut& o, const Event& e) {
                                   if (!e.is_gva) o.hex(e.addr);
                                 }),
                                 FieldDesc{"gva", Gva, OneOf}.out([](FieldOut& o, const Event& e) {
                                   if (e.is_gva) o.hex(e.addr);
                                 }),
                                 kAccessOp, kCount, kStride, kTsNs};
constexpr FieldDesc kGuestMap[] = {
    FieldDesc{"cr3", Gpa, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.cr3); }),
    FieldDesc{"gva", Gva, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.gva); }),
    kGpaHex,
    kSizeHex,
    FieldDesc{"page", Choice, Required, 0, kU64, "4k|2m|1g"}.out(
        [](FieldOut& o, const Event& e) { o.word(guest_page_name(e.page_level)); }),
    kGuestLevels,
    FieldDesc{"writable", Bool}.out([](FieldOut& o, const Event& e) {
      if (!e.writable) o.literal("false");
    }),
    FieldDesc{"executable", Bool}.out([](FieldOut& o, const Event& e) {
      if (!e.executable) o.literal("false");
    })};
// "pcid": set_cr3's when not 0, invpcid's with kind address or single.
constexpr FieldDesc kPcid = FieldDesc{"pcid", Number, Optional, 0, 4095}.out([](FieldOut& o, const Event& e) {
  if (e.type == EventType::SetCr3 ? e.pcid != 0 : e.inv_kind == InvKind::Address || e.inv_kind == InvKind::Single)
    o.dec(e.pcid);
});
constexpr FieldDesc kSetCr3[] = {kVcpuReq, FieldDesc{"cr3", Gpa, Required}.out([](FieldOut& o, const Event& e) { o.hex(e.cr3); }),
                                 kPcid, kGuestLevels};
constexpr FieldDesc kInvept[] = {kVcpuReq, kInvKind("single|all")};
constexpr FieldDesc kInvvpid[] = {kVcpuReq, kInvKind("address|single|all|single_retain_globals"), kInvGva(Optional)};
constexpr FieldDesc kInvlpg[] = {kVcpuReq, kInvGva(Required)};
constexpr FieldDesc kInvpcid[] = {kVcpuReq, kInvKind("address|single|all|all_retain_globals"), kPcid, kInvGva(Optional)};
constexpr FieldDesc kPhase[] = {FieldDesc{"name", Text, Required}.out([](FieldOut& o, const Event& e) { o.text(e.name); })};
constexpr FieldDesc kGpaSize[] = {kGpaHex, kSizeHex};
constexpr FieldDesc kMarker[] = {FieldDesc{"text", Text, Required}.out([](FieldOut& o, const Event& e) { o.text(e.name); })};
constexpr FieldDesc kKvmDecision[] = {
    FieldDesc{"kind", Choice, Required, 0, kU64, "map|prefetch|fast|zap|zap_all_fast|split"}.out(
        [](FieldOut& o, const Event& e) { o.word(decision_name(e.decision)); }),
    FieldDesc{"vcpu", Number}.out([](FieldOut& o, const Event& e) {
      if (e.vcpu >= 0) o.dec(u64(e.vcpu));
    }),
    FieldDesc{"gpa", Gpa}.out([](FieldOut& o, const Event& e) {
      if (e.gpa) o.hex(e.gpa);
    }),
    FieldDesc{"level", Number, Optional, 0, 5}.out([](FieldOut& o, const Event& e) {
      if (e.page_level) o.dec(u64(e.page_level));
    }),
    FieldDesc{"guest_level", Number, Optional, 0, 5}.out([](FieldOut& o, const Event& e) {
      if (e.guest_level) o.dec(u64(e.guest_level));
    }),
    kTsNs};
constexpr FieldDesc kTdCreate[] = {
    FieldDesc{"td", Number, Required, 0, 0xffff}.out([](FieldOut& o, const Event& e) { o.dec(e.tdx.td); }),
    FieldDesc{"vcpus", Number, Optional, 1, 256}.out([](FieldOut& o, const Event& e) { o.dec(e.tdx.vcpus); }),
    kTdGpaw, kTdLevels, kDynamicPamt,
    FieldDesc{"create_only", Bool}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.create_only) o.literal("true");
    })};
// A SEAMCALL leaves "td" 0 out (RDX defaults to TD 0's TDR anyway).
constexpr FieldDesc kSeamcall[] = {
    FieldDesc{"leaf", Text, Required}.out(write_leaf),
    FieldDesc{"td", Number}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.td || e.tdx.vcpu) o.dec(e.tdx.td);
    }),
    FieldDesc{"vcpu", Number}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.vcpu) o.dec(e.tdx.vcpu);
    }),
    kTdxGpa, kTdxLevel,
    FieldDesc{"version", Number, Optional, 0, 255}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.version) o.dec(e.tdx.version);
    }),
    FieldDesc{"lp", Number, Optional, 0, 4095}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.lp) o.dec(e.tdx.lp);
    }),
    kConcurrent, kInterrupt, kRegs[0], kRegs[1], kRegs[2], kRegs[3], kRegs[4], kRegs[5], kRegs[6], kRegs[7], kRegs[8],
    kExpect, kExpectOut};
constexpr FieldDesc kTdcall[] = {FieldDesc{"leaf", Text, Required}.out(write_leaf), kTdTd, kTdVcpuReq, kTdxGpa, kTdxLevel,
                                 kConcurrent, kInterrupt, kRegs[R::RCX], kExpect, kExpectOut};
constexpr FieldDesc kTdVcpu[] = {
    kTdTd, kTdVcpuReq,
    FieldDesc{"op", Choice, Required, 0, kU64, "enter|exit"}.out(
        [](FieldOut& o, const Event& e) { o.word(e.tdx.enter ? "enter" : "exit"); }),
    FieldDesc{"lp", Number, Optional, 0, 4095}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.lp) o.dec(e.tdx.lp);
    }),
    kConcurrent, kTdxGpa,
    FieldDesc{"rip", Number}.out([](FieldOut& o, const Event& e) {
      if (e.tdx.rip) o.hex(e.tdx.rip);
    }),
    kExpect, kExpectOut};
constexpr FieldDesc kTdInitMemRegion[] = {kGpaHex, kSizeHex,
                                          FieldDesc{"measure", Bool}.out([](FieldOut& o, const Event& e) {
                                            if (e.measure) o.literal("true");
                                          }),
                                          FieldDesc{"tag", Number}.out([](FieldOut& o, const Event& e) {
                                            if (e.tag) o.hex(e.tag);
                                          })};
constexpr FieldDesc kTdTeardown[] = {FieldDesc{"terminate", Bool}.out([](FieldOut& o, const Event& e) {
  if (e.terminate) o.literal("true");
})};
constexpr FieldDesc kAccept[] = {kVcpuReq, kGpaHex,
                                 FieldDesc{"level", Number, Optional, 0, 1}.out(
                                     [](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.level)); }),
                                 kInterrupt};
constexpr FieldDesc kSetMemoryAttributes[] = {
    kGpaHex, kSizeHex,
    FieldDesc{"private", Bool, Required}.out([](FieldOut& o, const Event& e) { o.literal(e.make_private ? "true" : "false"); })};
constexpr FieldDesc kMapGpa[] = {kVcpuReq, kGpaHex, kSizeHex};
constexpr FieldDesc kNestedVmentry[] = {kVcpuReq, kEptp};
constexpr FieldDesc kL2Access[] = {kVcpuReq, kGpaHex.out([](FieldOut& o, const Event& e) { o.hex(e.addr); }), kAccessOp,
                                   kCount, kStride};
constexpr FieldDesc kL1EptWrite[] = {kVcpuReq, kEptp, kGpaHex};
constexpr FieldDesc kVcpuMigrate[] = {kVcpuReq, FieldDesc{"lp", Number, Required, 0, 4095}.out([](FieldOut& o, const Event& e) {
                                        o.dec(e.tdx.lp);
                                      })};
constexpr FieldDesc kL1Invept[] = {kVcpuReq, kInvKind("single|all"), FieldDesc{"eptp", Number}.out(kEptp.write)};

using T = EventType;
using S = Scope;
using L = Layer;

// In EventType order (checked below).
constexpr EventDesc kDescs[] = {
    //  type                       name                     scope       consumer          TD VM  TDX   bin
    {T::VmCreate, "vm_create", S::Vm, L::Replayer, false, true, 1, kVmCreate},
    {T::MemslotAdd, "memslot_add", S::Vm, L::Mmu, false, false, 1, kMemslotAdd},
    {T::MemslotDelete, "memslot_delete", S::Vm, L::Mmu, false, false, 1, kMemslotDelete},
    {T::MemslotMove, "memslot_move", S::Vm, L::Mmu, false, false, 1, kMemslotMove},
    {T::DirtyLog, "dirty_log", S::Vm, L::Mmu, false, false, 1, kDirtyLog},
    {T::Access, "access", S::Vcpu, L::Vcpu, false, false, 1, kAccess},
    {T::GuestMap, "guest_map", S::Vm, L::Replayer, false, false, 1, kGuestMap},
    {T::SetCr3, "set_cr3", S::Vcpu, L::Vcpu, false, false, 1, kSetCr3},
    {T::Invept, "invept", S::Vcpu, L::Vcpu, false, false, 1, kInvept},
    {T::Invvpid, "invvpid", S::Vcpu, L::Vcpu, false, false, 1, kInvvpid},
    {T::Invlpg, "invlpg", S::Vcpu, L::Vcpu, false, false, 1, kInvlpg},
    {T::Invpcid, "invpcid", S::Vcpu, L::Vcpu, false, false, 1, kInvpcid},
    {T::Phase, "phase", S::Host, L::Replayer, false, false, 1, kPhase},
    {T::GuestPtPool, "guest_pt_pool", S::Vm, L::Replayer, false, false, 1, kGpaSize},
    {T::Marker, "marker", S::Host, L::Annotation, false, false, 1, kMarker},
    {T::KvmDecision, "kvm_decision", S::Vm, L::Annotation, false, false, 1, kKvmDecision},
    {T::HostUnmap, "host_unmap", S::Vm, L::Mmu, false, false, 1, kGpaSize},
    {T::TdCreate, "td_create", S::Host, L::Seam, false, true, 2, kTdCreate},
    {T::Seamcall, "seamcall", S::Host, L::Seam, false, true, 2, kSeamcall},
    {T::Tdcall, "tdcall", S::Host, L::Seam, false, true, 2, kTdcall},
    {T::TdVcpu, "td_vcpu", S::Host, L::Seam, false, true, 2, kTdVcpu},
    {T::TdInitMemRegion, "td_init_mem_region", S::Vm, L::Mmu, true, false, 2, kTdInitMemRegion},
    {T::TdFinalize, "td_finalize", S::Vm, L::Mmu, true, false, 2, {}},
    {T::TdTeardown, "td_teardown", S::Vm, L::Mmu, true, false, 2, kTdTeardown},
    {T::Accept, "accept", S::Vm, L::Mmu, true, true, 2, kAccept},
    {T::SetMemoryAttributes, "set_memory_attributes", S::Vm, L::Mmu, true, false, 2, kSetMemoryAttributes},
    {T::MapGpa, "map_gpa", S::Vm, L::Mmu, true, false, 2, kMapGpa},
    {T::NxRecoveryTick, "nx_recovery_tick", S::Vm, L::Mmu, false, false, 2, {}},
    {T::NestedVmentry, "nested_vmentry", S::Vm, L::Nested, false, false, 0, kNestedVmentry},
    {T::L2Access, "l2_access", S::Vm, L::Nested, false, false, 0, kL2Access},
    {T::L1EptWrite, "l1_ept_write", S::Vm, L::Nested, false, false, 0, kL1EptWrite},
    {T::L1Invept, "l1_invept", S::Vm, L::Nested, false, false, 0, kL1Invept},
    {T::VcpuMigrate, "vcpu_migrate", S::Vm, L::Mmu, true, true, 0, kVcpuMigrate},
};
}  // namespace desc_detail

inline constexpr std::span<const EventDesc> kEventDescs = desc_detail::kDescs;
inline constexpr size_t kNumEventTypes = std::size(desc_detail::kDescs);

constexpr bool event_descs_in_order() {
  for (size_t i = 0; i < kNumEventTypes; ++i)
    if (size_t(kEventDescs[i].type) != i) return false;
  return size_t(EventType::VcpuMigrate) + 1 == kNumEventTypes;
}
static_assert(event_descs_in_order(), "kEventDescs must list every EventType once, in EventType order");

constexpr bool every_field_written() {
  for (const EventDesc& d : kEventDescs)
    for (const FieldDesc& f : d.fields)
      if (!f.write) return false;
  return true;
}
static_assert(every_field_written(), "every field of kEventDescs needs a writer (FieldDesc::out)");

constexpr const EventDesc& event_desc(EventType t) { return kEventDescs[size_t(t)]; }

// The description of the event type named `name` (as in "type":"..."), or nullptr.
constexpr const EventDesc* event_desc_by_name(std::string_view name) {
  for (const EventDesc& d : kEventDescs)
    if (d.name == name) return &d;
  return nullptr;
}

// The field `name` of `d`, or nullptr.
constexpr const FieldDesc* find_field(const EventDesc& d, std::string_view name) {
  for (const FieldDesc& f : d.fields)
    if (f.name == name) return &f;
  return nullptr;
}

// Events that belong to one VM and take "vm" (default 0).
constexpr bool vm_scoped(EventType t) { return event_desc(t).scope != Scope::Host; }
// Events the replayer runs on a vCPU, in that vCPU's file order.
constexpr bool vcpu_ordered(EventType t) { return event_desc(t).scope == Scope::Vcpu; }
// Events that name one vCPU of their VM ("vcpu" required; TDX module events
// name a TD's vCPU instead and are host-wide). Evaluated once, at compile time.
inline constexpr auto kNamesVmVcpu = [] {
  std::array<bool, kNumEventTypes> a{};
  for (size_t i = 0; i < kNumEventTypes; ++i) {
    const FieldDesc* f = find_field(kEventDescs[i], "vcpu");
    a[i] = kEventDescs[i].scope != Scope::Host && f && f->need == Need::Required;
  }
  return a;
}();
constexpr bool names_vm_vcpu(EventType t) { return kNamesVmVcpu[size_t(t)]; }
// The number of event types binary format `version` carries (a prefix of EventType).
constexpr u32 binary_event_types(u32 version) {
  u32 n = 0;
  while (n < kNumEventTypes && kEventDescs[n].binary_version && kEventDescs[n].binary_version <= version) ++n;
  return n;
}

// "N is out of range (LO..HI)" when v is outside the range of `type`'s field
// `field`, else empty: the message both readers give.
std::string field_range_error(EventType type, std::string_view field, u64 v);

}  // namespace septsim::traces
