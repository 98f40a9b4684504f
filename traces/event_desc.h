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

struct FieldDesc {
  std::string_view name;
  FieldKind kind;
  Need need;
  u64 lo;                    // Number: smallest value the reader accepts
  u64 hi;                    // Number: largest
  std::string_view choices;  // Choice / Flags: "a|b|c"
  constexpr FieldDesc(std::string_view n, FieldKind k, Need nd = Need::Optional, u64 l = 0, u64 h = ~u64{0},
                      std::string_view c = {})
      : name(n), kind(k), need(nd), lo(l), hi(h), choices(c) {}
};

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
// Limits shared by the readers (TraceReader::kMaxVcpus, kMaxSlots).
constexpr FieldDesc kVcpuReq{"vcpu", Number, Required};
constexpr FieldDesc kSlotReq{"slot", Number, Required, 0, 32763};
constexpr FieldDesc kLevels{"levels", Number, Optional, 4, 5};
constexpr FieldDesc kGpaw{"gpaw", Choice, Optional, 0, kU64, "48|52"};
constexpr FieldDesc kExpect{"expect", Status};
constexpr FieldDesc kExpectOut{"expect_out", Registers};
constexpr FieldDesc kTsNs{"ts_ns", Number};

constexpr FieldDesc kVmCreate[] = {{"vcpus", Number, Required, 1, 256}, {"vm_type", Choice, Optional, 0, kU64, "default|tdx|native"},
                                   kGpaw, kLevels, {"dynamic_pamt", Bool}};
constexpr FieldDesc kMemslotAdd[] = {kSlotReq,
                                     {"gpa", Gpa, Required},
                                     {"size", Bytes, Required},
                                     {"backing", Choice, Required, 0, kU64, "4k|thp|hugetlb1g"},
                                     {"hva", Number},
                                     {"flags", Flags, Optional, 0, kU64, "dirty_log|readonly"}};
constexpr FieldDesc kMemslotDelete[] = {kSlotReq};
constexpr FieldDesc kMemslotMove[] = {kSlotReq, {"gpa", Gpa, Required}};
constexpr FieldDesc kDirtyLog[] = {kSlotReq, {"op", Choice, Required, 0, kU64, "enable|get|clear|disable"},
                                   {"first_page", Number}, {"num_pages", Number}};
constexpr FieldDesc kAccess[] = {kVcpuReq,   {"gpa", Gpa, OneOf},     {"gva", Gva, OneOf},
                                 {"op", Choice, Required, 0, kU64, "r|w|x|read|write|fetch"},
                                 {"count", Number, Optional, 1}, {"stride", Number}, kTsNs};
constexpr FieldDesc kGuestMap[] = {{"cr3", Gpa, Required},  {"gva", Gva, Required},
                                   {"gpa", Gpa, Required},  {"size", Bytes, Required},
                                   {"page", Choice, Required, 0, kU64, "4k|2m|1g"},
                                   kLevels, {"writable", Bool}, {"executable", Bool}};
constexpr FieldDesc kSetCr3[] = {kVcpuReq, {"cr3", Gpa, Required}, {"pcid", Number, Optional, 0, 4095}, kLevels};
constexpr FieldDesc kInvept[] = {kVcpuReq, {"kind", Choice, Required, 0, kU64, "single|all"}};
constexpr FieldDesc kInvvpid[] = {kVcpuReq, {"kind", Choice, Required, 0, kU64, "address|single|all|single_retain_globals"},
                                  {"gva", Gva}};
constexpr FieldDesc kInvlpg[] = {kVcpuReq, {"gva", Gva, Required}};
constexpr FieldDesc kInvpcid[] = {kVcpuReq, {"kind", Choice, Required, 0, kU64, "address|single|all|all_retain_globals"},
                                  {"pcid", Number, Optional, 0, 4095}, {"gva", Gva}};
constexpr FieldDesc kPhase[] = {{"name", Text, Required}};
constexpr FieldDesc kGpaSize[] = {{"gpa", Gpa, Required}, {"size", Bytes, Required}};
constexpr FieldDesc kMarker[] = {{"text", Text, Required}};
constexpr FieldDesc kKvmDecision[] = {{"kind", Choice, Required, 0, kU64, "map|prefetch|fast|zap|zap_all_fast|split"},
                                      {"vcpu", Number}, {"gpa", Gpa}, {"level", Number, Optional, 0, 5},
                                      {"guest_level", Number, Optional, 0, 5}, kTsNs};
constexpr FieldDesc kTdCreate[] = {{"td", Number, Required, 0, 0xffff}, {"vcpus", Number, Optional, 1, 256}, kGpaw, kLevels,
                                   {"dynamic_pamt", Bool}, {"create_only", Bool}};
constexpr FieldDesc kSeamcall[] = {{"leaf", Text, Required}, {"td", Number}, {"vcpu", Number}, {"gpa", Gpa},
                                   {"level", Number, Optional, 0, 4}, kExpect, kExpectOut,
                                   {"version", Number, Optional, 0, 255}, {"lp", Number, Optional, 0, 4095},
                                   {"concurrent", Bool}, {"interrupt", Bool}, {"rax", Number}, {"rcx", Number},
                                   {"rdx", Number}, {"r8", Number}, {"r9", Number}, {"r10", Number}, {"r11", Number},
                                   {"r12", Number}, {"r13", Number}};
constexpr FieldDesc kTdcall[] = {{"leaf", Text, Required}, {"td", Number, Required}, {"vcpu", Number, Required},
                                 {"gpa", Gpa}, {"level", Number, Optional, 0, 4}, kExpect, kExpectOut,
                                 {"concurrent", Bool}, {"interrupt", Bool}, {"rcx", Number}};
constexpr FieldDesc kTdVcpu[] = {{"td", Number, Required}, {"vcpu", Number, Required},
                                 {"op", Choice, Required, 0, kU64, "enter|exit"}, {"lp", Number, Optional, 0, 4095},
                                 {"concurrent", Bool}, kExpect, kExpectOut, {"gpa", Gpa}, {"rip", Number}};
constexpr FieldDesc kTdInitMemRegion[] = {{"gpa", Gpa, Required}, {"size", Bytes, Required}, {"measure", Bool},
                                          {"tag", Number}};
constexpr FieldDesc kTdTeardown[] = {{"terminate", Bool}};
constexpr FieldDesc kAccept[] = {kVcpuReq, {"gpa", Gpa, Required}, {"level", Number, Optional, 0, 1},
                                 {"interrupt", Bool}};
constexpr FieldDesc kSetMemoryAttributes[] = {{"gpa", Gpa, Required}, {"size", Bytes, Required}, {"private", Bool, Required}};
constexpr FieldDesc kMapGpa[] = {kVcpuReq, {"gpa", Gpa, Required}, {"size", Bytes, Required}};
constexpr FieldDesc kNestedVmentry[] = {kVcpuReq, {"eptp", Number, Required}};
constexpr FieldDesc kL2Access[] = {kVcpuReq, {"gpa", Gpa, Required}, {"op", Choice, Required, 0, kU64, "r|w|x|read|write|fetch"},
                                   {"count", Number, Optional, 1}, {"stride", Number}};
constexpr FieldDesc kL1EptWrite[] = {kVcpuReq, {"eptp", Number, Required}, {"gpa", Gpa, Required}};
constexpr FieldDesc kL1Invept[] = {kVcpuReq, {"kind", Choice, Required, 0, kU64, "single|all"}, {"eptp", Number}};

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
};
}  // namespace desc_detail

inline constexpr std::span<const EventDesc> kEventDescs = desc_detail::kDescs;
inline constexpr size_t kNumEventTypes = std::size(desc_detail::kDescs);

constexpr bool event_descs_in_order() {
  for (size_t i = 0; i < kNumEventTypes; ++i)
    if (size_t(kEventDescs[i].type) != i) return false;
  return size_t(EventType::L1Invept) + 1 == kNumEventTypes;
}
static_assert(event_descs_in_order(), "kEventDescs must list every EventType once, in EventType order");

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
