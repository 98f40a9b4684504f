// One description per event type of the trace vocabulary (docs/trace-format.md):
// its name, its fields (kind, whether required, numeric range), where it runs
// (host-wide, VM-wide, on one vCPU), which layer consumes it, the first binary
// format version that carries it and whether it uses TdxEventFields. The JSON
// Lines reader decodes each field with the field's reader (FieldDesc::in) and
// then runs the event's checks across fields (EventDesc::check); the writer
// gives each field with its writer (FieldDesc::out); the binary writer and
// reader take the versions, scopes and ranges, the replayer the scopes; tests
// compare the table with docs/trace-schema.json. A new event type starts with
// one entry here.
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

struct FieldDesc;
struct EventDesc;
struct JsonEventDecoder;  // the JSON Lines reader's state (traces/reader.cc)
struct JsonValue;         // one value of a JSON line (traces/reader.cc)

// One field of one event line as the JSON Lines reader gives it to the
// field's reader (FieldDesc::in), with the reader's checks; each failure is a
// TraceError naming the file, the line and the field (reader.h). An event's
// check (EventDesc::check) gets one without a field (name() empty): it names
// the field it fails on.
class FieldIn {
 public:
  FieldIn(const JsonEventDecoder& r, const FieldDesc* f, const JsonValue* v) : r_(r), f_(f), v_(v) {}
  std::string_view name() const;
  bool given() const { return v_ != nullptr; }
  bool given(std::string_view field) const;  // another field is on the line
  u64 num() const;                           // a number (the trace's number syntax)
  u64 num(const JsonValue& v) const;         // `v` as a number
  u64 ranged() const;                        // a number within the field's lo..hi
  u64 gpa(u64 align) const;                  // below 2^52, aligned to `align`
  u64 size(u64 align) const;                 // not 0, a multiple of `align`
  u64 gva(int levels = 5) const;             // canonical for `levels`-level paging
  int levels() const;                        // 4 or 5
  bool flag() const;                         // true / false
  const std::string& text() const;           // a string
  unsigned choice() const;                   // the index of the value in the field's choices
  u32 flags() const;                         // bit i: choice i is in the array
  int vcpu() const;                          // a vCPU of the event's VM
  u32 td() const;                            // a TD created before
  bool td_exists(u64 td) const;
  u32 td_vcpu(u32 td) const;                 // a vCPU of TD `td`
  const JsonValue& value() const;            // the field's value (required if not given)
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail(std::string_view field, const std::string& message) const;
  // A field the line must have: "missing required field of TYPE" if it has not.
  void require(std::string_view field) const;
  // `v` aligned to `align` / a multiple of it, else an error on `field`.
  void aligned(std::string_view field, u64 v, u64 align) const;
  void multiple(std::string_view field, u64 v, u64 align) const;
  // gpa + size within the 52-bit guest-physical address space, else
  // "WHAT end 0x.. is beyond ..." on this field.
  void end_within(std::string_view what, u64 gpa, u64 size) const;
  static std::string hex(u64 v);
  static std::string size_name(u64 bytes);  // "4 KiB", "2 MiB", "1 GiB"
  static bool canonical(u64 va, int levels);  // bits 63..(47|56) copy bit 47|56

 private:
  const JsonEventDecoder& r_;
  const FieldDesc* f_;
  const JsonValue* v_;
};

// How the JSON Lines reader decodes one field into an Event (called when the
// field is on the line, and for a required or one-of field also when it is not),
// and the checks of an event that span fields (after every field's reader).
using FieldReader = void (*)(const FieldIn&, Event&);
using EventCheck = void (*)(const FieldIn&, Event&);

struct FieldDesc {
  std::string_view name;
  FieldKind kind;
  Need need;
  u64 lo;                    // Number: smallest value the reader accepts
  u64 hi;                    // Number: largest
  std::string_view choices;  // Choice / Flags: "a|b|c"
  FieldWriter write = nullptr;  // how the JSON Lines writer gives the field of an Event
  FieldReader read = nullptr;   // how the JSON Lines reader sets it in an Event
  constexpr FieldDesc(std::string_view n, FieldKind k, Need nd = Need::Optional, u64 l = 0, u64 h = ~u64{0},
                      std::string_view c = {})
      : name(n), kind(k), need(nd), lo(l), hi(h), choices(c) {}
  // The same field, written by `w`.
  constexpr FieldDesc out(FieldWriter w) const {
    FieldDesc f = *this;
    f.write = w;
    return f;
  }
  // The same field, read by `r`.
  constexpr FieldDesc in(FieldReader r) const {
    FieldDesc f = *this;
    f.read = r;
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
  EventCheck check = nullptr;  // the JSON Lines reader's checks across fields
};

namespace desc_detail {
using enum FieldKind;
using enum Need;
constexpr u64 kU64 = ~u64{0};
using R = TdxEventFields::Reg;
constexpr u64 kMaxGpa = u64{1} << 52;
// Limits shared by the readers (TraceReader::kMaxVcpus, kMaxSlots).
constexpr FieldDesc kVcpuReq = FieldDesc{"vcpu", Number, Required}
                                   .in([](const FieldIn& in, Event& e) { e.vcpu = in.vcpu(); })
                                   .out([](FieldOut& o, const Event& e) { o.dec(u64(e.vcpu)); });
constexpr FieldDesc kSlotReq = FieldDesc{"slot", Number, Required, 0, 32763}
                                   .in([](const FieldIn& in, Event& e) { e.slot.id = u32(in.ranged()); })
                                   .out([](FieldOut& o, const Event& e) { o.dec(e.slot.id); });
// "levels" of guest page tables: 4 is left out.
constexpr FieldDesc kGuestLevels = FieldDesc{"levels", Number, Optional, 4, 5}
                                       .in([](const FieldIn& in, Event& e) { e.guest_levels = in.levels(); })
                                       .out([](FieldOut& o, const Event& e) {
                                         if (e.guest_levels != 4) o.dec(u64(e.guest_levels));
                                       });
// "expect" / "expect_out" of the TDX events (traces/reader.cc).
void read_expect(const FieldIn& in, Event& e);
void read_expect_out(const FieldIn& in, Event& e);
void read_leaf(const FieldIn& in, Event& e);
// An EPTP as VM entry checks it (SDM 26.2.1.1): memory type UC or WB, walk
// length 4 or 5, reserved bits 11:8 clear (traces/event_desc.cc).
void read_eptp(const FieldIn& in, Event& e);
constexpr FieldDesc kExpect = FieldDesc{"expect", Status}.in(read_expect).out(write_expect);
constexpr FieldDesc kExpectOut = FieldDesc{"expect_out", Registers}.in(read_expect_out).out(write_expect_out);
constexpr FieldDesc kTsNs = FieldDesc{"ts_ns", Number}
                                .in([](const FieldIn& in, Event& e) { e.ts_ns = in.num(); })
                                .out([](FieldOut& o, const Event& e) {
                                  if (e.ts_ns) o.dec(e.ts_ns);
                                });
// td_vcpu: only an "enter" (a VP.ENTER) overlaps the previous SEAMCALL.
constexpr FieldDesc kConcurrent = FieldDesc{"concurrent", Bool}
                                      .in([](const FieldIn& in, Event& e) {
                                        if (e.type == EventType::TdVcpu && !e.tdx.enter)
                                          in.fail("only an \"enter\" (a VP.ENTER) overlaps the previous SEAMCALL");
                                        e.tdx.concurrent = in.flag();
                                      })
                                      .out([](FieldOut& o, const Event& e) {
                                        if (e.tdx.concurrent) o.literal("true");
                                      });
constexpr FieldDesc kInterrupt = FieldDesc{"interrupt", Bool}
                                     .in([](const FieldIn& in, Event& e) { e.tdx.interrupt = in.flag(); })
                                     .out([](FieldOut& o, const Event& e) {
                                       if (e.tdx.interrupt) o.literal("true");
                                     });
constexpr FieldDesc kTdxLevel = FieldDesc{"level", Number, Optional, 0, 4}
                                    .in([](const FieldIn& in, Event& e) {
                                      u64 v = in.num();
                                      if (v > 4) in.fail("a TDX level is 0 (4K) .. 4 (PML5E), got " + std::to_string(v));
                                      e.tdx.level = int(v);
                                    })
                                    .out([](FieldOut& o, const Event& e) {
                                      if (e.tdx.level) o.dec(u64(e.tdx.level));
                                    });
// A SEAMCALL's or TDCALL's GPA, or the faulting GPA of a td_vcpu "exit".
constexpr FieldDesc kTdxGpa = FieldDesc{"gpa", Gpa}
                                  .in([](const FieldIn& in, Event& e) {
                                    const bool exit = e.type == EventType::TdVcpu;
                                    if (exit && e.tdx.enter)
                                      in.fail("only an \"exit\" has a faulting GPA (an EPT-violation exit)");
                                    e.tdx.has_gpa = true;
                                    e.tdx.gpa = in.gpa(exit ? 1 : kPageSize);
                                  })
                                  .out([](FieldOut& o, const Event& e) {
                                    if (e.tdx.has_gpa) o.hex(e.tdx.gpa);
                                  });
constexpr FieldDesc kGpaHex = FieldDesc{"gpa", Gpa, Required}
                                  .in([](const FieldIn& in, Event& e) { e.gpa = in.gpa(kPageSize); })
                                  .out([](FieldOut& o, const Event& e) { o.hex(e.gpa); });
// guest_map and accept align "gpa" to their page size (their checks).
constexpr FieldDesc kGpaAnyAlign = kGpaHex.in([](const FieldIn& in, Event& e) { e.gpa = in.gpa(1); });
// The end of a range of guest-physical memory, as its error message names it.
constexpr std::string_view range_end_name(EventType t) {
  return t == EventType::GuestPtPool ? "pool" : t == EventType::HostUnmap ? "unmap" : t == EventType::TdInitMemRegion ? "region" : "range";
}
constexpr FieldDesc kSizeHex = FieldDesc{"size", Bytes, Required}
                                   .in([](const FieldIn& in, Event& e) {
                                     e.size = in.size(kPageSize);
                                     in.end_within(range_end_name(e.type), e.gpa, e.size);
                                   })
                                   .out([](FieldOut& o, const Event& e) { o.hex(e.size); });
constexpr FieldDesc kCount = FieldDesc{"count", Number, Optional, 1}
                                 .in([](const FieldIn& in, Event& e) {
                                   e.count = in.num();
                                   if (e.count == 0) in.fail("must be at least 1");
                                 })
                                 .out([](FieldOut& o, const Event& e) {
                                   if (e.count != 1) o.dec(e.count);
                                 });
constexpr FieldDesc kStride = FieldDesc{"stride", Number}
                                  .in([](const FieldIn& in, Event& e) { e.stride = in.num(); })
                                  .out([](FieldOut& o, const Event& e) {
                                    if (e.stride) o.hex(e.stride);
                                  });
// "r|w|x|read|write|fetch": AccessType Read, Write, Fetch twice over.
constexpr FieldDesc kAccessOp = FieldDesc{"op", Choice, Required, 0, kU64, "r|w|x|read|write|fetch"}
                                    .in([](const FieldIn& in, Event& e) { e.access = AccessType(in.choice() % 3); })
                                    .out([](FieldOut& o, const Event& e) { o.word(access_op_name(e.access)); });
constexpr FieldDesc kTdTd = FieldDesc{"td", Number, Required}
                                .in([](const FieldIn& in, Event& e) { e.tdx.td = in.td(); })
                                .out([](FieldOut& o, const Event& e) { o.dec(e.tdx.td); });
constexpr FieldDesc kTdVcpuReq = FieldDesc{"vcpu", Number, Required}
                                     .in([](const FieldIn& in, Event& e) { e.tdx.vcpu = in.td_vcpu(e.tdx.td); })
                                     .out([](FieldOut& o, const Event& e) { o.dec(e.tdx.vcpu); });
// td_create and a TD VM's vm_create: GPA width and Secure-EPT levels; a
// TD VM's vm_create alone takes them.
inline void only_td_vm(const FieldIn& in, const Event& e) {
  if (e.type == EventType::VmCreate && !e.tdx_vm) in.fail("only a TD VM (\"vm_type\":\"tdx\") takes it");
}
constexpr FieldDesc kTdGpaw = FieldDesc{"gpaw", Choice, Optional, 0, kU64, "48|52"}
                                  .in([](const FieldIn& in, Event& e) {
                                    only_td_vm(in, e);
                                    u64 v = in.num();
                                    if (v != 48 && v != 52) in.fail("must be 48 or 52, got " + std::to_string(v));
                                    e.tdx.gpaw = int(v);
                                  })
                                  .out([](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.gpaw)); });
constexpr FieldDesc kTdLevels = FieldDesc{"levels", Number, Optional, 4, 5}
                                    .in([](const FieldIn& in, Event& e) {
                                      only_td_vm(in, e);
                                      e.tdx.ept_levels = in.levels();
                                    })
                                    .out([](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.ept_levels)); });
constexpr FieldDesc kDynamicPamt = FieldDesc{"dynamic_pamt", Bool}
                                       .in([](const FieldIn& in, Event& e) {
                                         only_td_vm(in, e);
                                         e.tdx.dynamic_pamt = in.flag();
                                       })
                                       .out([](FieldOut& o, const Event& e) {
                                         if (e.tdx.dynamic_pamt) o.literal("true");
                                       });
// GPAW 52 means a 5-level Secure EPT ("levels" 5 by default).
inline void check_gpaw(const FieldIn& in, Event& e) {
  if (e.tdx.gpaw != 52) return;
  if (!in.given("levels")) e.tdx.ept_levels = 5;
  if (e.tdx.ept_levels != 5) in.fail("levels", "GPAW 52 needs a 5-level Secure EPT");
}
// The eptp of L1's nested events; l1_invept "all" has none.
constexpr FieldDesc kEptp = FieldDesc{"eptp", Number, Required}.in(read_eptp).out([](FieldOut& o, const Event& e) {
  if (e.type != EventType::L1Invept || e.inv_kind != InvKind::All) o.hex(e.eptp);
});
// The kinds of invept / l1_invept ("single|all"); those of invvpid and
// invpcid are InvKind's order.
constexpr InvKind kInveptKinds[] = {InvKind::Single, InvKind::All};
constexpr FieldDesc kInvKind(std::string_view choices) {
  return FieldDesc{"kind", Choice, Required, 0, kU64, choices}
      .in([](const FieldIn& in, Event& e) {
        const unsigned i = in.choice();
        e.inv_kind = e.type == EventType::Invept || e.type == EventType::L1Invept ? kInveptKinds[i] : InvKind(i);
      })
      .out([](FieldOut& o, const Event& e) { o.word(inv_kind_name(e.type, e.inv_kind)); });
}
// invvpid / invpcid "address" and invlpg name a linear address.
constexpr FieldDesc kInvGva(Need need) {
  return FieldDesc{"gva", Gva, need}
      .in([](const FieldIn& in, Event& e) {
        if (e.type != EventType::Invlpg && e.inv_kind != InvKind::Address) in.fail("only valid with kind \"address\"");
        e.gva = in.gva();
      })
      .out([](FieldOut& o, const Event& e) {
        if (e.type == EventType::Invlpg || e.inv_kind == InvKind::Address) o.hex(e.gva);
      });
}
template <unsigned Reg>
void read_reg(const FieldIn& in, Event& e) {
  e.tdx.regs[Reg] = in.num();
  e.tdx.reg_mask |= 1u << Reg;
}
constexpr FieldDesc kRegs[] = {
    FieldDesc{"rax", Number}.in(read_reg<R::RAX>).out(write_reg<R::RAX>),
    FieldDesc{"rcx", Number}.in(read_reg<R::RCX>).out(write_reg<R::RCX>),
    FieldDesc{"rdx", Number}.in(read_reg<R::RDX>).out(write_reg<R::RDX>),
    FieldDesc{"r8", Number}.in(read_reg<R::R8>).out(write_reg<R::R8>),
    FieldDesc{"r9", Number}.in(read_reg<R::R9>).out(write_reg<R::R9>),
    FieldDesc{"r10", Number}.in(read_reg<R::R10>).out(write_reg<R::R10>),
    FieldDesc{"r11", Number}.in(read_reg<R::R11>).out(write_reg<R::R11>),
    FieldDesc{"r12", Number}.in(read_reg<R::R12>).out(write_reg<R::R12>),
    FieldDesc{"r13", Number}.in(read_reg<R::R13>).out(write_reg<R::R13>)};

// "vm_type": default|tdx|native.
constexpr FieldDesc kVmCreate[] = {
    FieldDesc{"vcpus", Number, Required, 1, 256}
        .in([](const FieldIn& in, Event& e) { e.vcpus = u32(in.ranged()); })
        .out([](FieldOut& o, const Event& e) { o.dec(e.vcpus); }),
    FieldDesc{"vm_type", Choice, Optional, 0, kU64, "default|tdx|native"}
        .in([](const FieldIn& in, Event& e) {
          const unsigned t = in.choice();
          e.tdx_vm = t == 1;
          e.native_vm = t == 2;
        })
        .out([](FieldOut& o, const Event& e) {
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
constexpr FieldDesc kSlotGpa = FieldDesc{"gpa", Gpa, Required}
                                   .in([](const FieldIn& in, Event& e) { e.slot.gpa = in.gpa(kPageSize); })
                                   .out([](FieldOut& o, const Event& e) { o.hex(e.slot.gpa); });
constexpr u64 kUserSpace = u64{1} << 56;  // the user address space of "hva"
constexpr FieldDesc kMemslotAdd[] = {
    kSlotReq,
    kSlotGpa,
    FieldDesc{"size", Bytes, Required}
        .in([](const FieldIn& in, Event& e) {
          e.slot.size = in.size(kPageSize);
          in.end_within("slot", e.slot.gpa, e.slot.size);
        })
        .out([](FieldOut& o, const Event& e) { o.hex(e.slot.size); }),
    FieldDesc{"backing", Choice, Required, 0, kU64, "4k|thp|hugetlb1g"}
        .in([](const FieldIn& in, Event& e) {
          constexpr mmu::HostBacking kBackings[] = {mmu::HostBacking::Page4K, mmu::HostBacking::Thp2M,
                                                    mmu::HostBacking::Hugetlb1G};
          e.slot.backing = kBackings[in.choice()];
        })
        .out([](FieldOut& o, const Event& e) { o.word(backing_name(e.slot.backing)); }),
    FieldDesc{"hva", Number}
        .in([](const FieldIn& in, Event& e) {
          u64 v = e.slot.userspace_addr = in.num();
          in.aligned("hva", v, kPageSize);
          if (v >= kUserSpace || e.slot.size > kUserSpace - v)
            in.fail("range " + FieldIn::hex(v) + " + size is beyond the user address space (2^56)");
        })
        .out([](FieldOut& o, const Event& e) {
          if (e.slot.userspace_addr) o.hex(e.slot.userspace_addr);
        }),
    FieldDesc{"flags", Flags, Optional, 0, kU64, "dirty_log|readonly"}
        .in([](const FieldIn& in, Event& e) {
          const u32 f = in.flags();
          e.slot.flags = (f & 1 ? mmu::KVM_MEM_LOG_DIRTY_PAGES : 0) | (f & 2 ? mmu::KVM_MEM_READONLY : 0);
        })
        .out(write_slot_flags)};
constexpr FieldDesc kMemslotDelete[] = {kSlotReq};
constexpr FieldDesc kMemslotMove[] = {kSlotReq, kSlotGpa};
// first_page / num_pages: only a "clear" of part of the slot.
constexpr bool clears_part(const Event& e) { return e.dirty_op == DirtyLogOp::Clear && (e.first_page || e.num_pages); }
inline void only_clear(const FieldIn& in, const Event& e) {
  if (e.dirty_op != DirtyLogOp::Clear) in.fail("only valid with op \"clear\"");
}
template <u64 Event::*Pages>
constexpr FieldDesc kClearPages(std::string_view name) {
  return FieldDesc{name, Number}
      .in([](const FieldIn& in, Event& e) {
        only_clear(in, e);
        e.*Pages = in.num();
      })
      .out([](FieldOut& o, const Event& e) {
        if (clears_part(e)) o.dec(e.*Pages);
      });
}
constexpr FieldDesc kDirtyLog[] = {
    kSlotReq,
    FieldDesc{"op", Choice, Required, 0, kU64, "enable|get|clear|disable"}
        .in([](const FieldIn& in, Event& e) { e.dirty_op = DirtyLogOp(in.choice()); })
        .out([](FieldOut& o, const Event& e) { o.word(dirty_op_name(e.dirty_op)); }),
    kClearPages<&Event::first_page>("first_page"), kClearPages<&Event::num_pages>("num_pages")};
// KVM_CLEAR_DIRTY_LOG: first_page a multiple of 64, num_pages with it.
inline void check_dirty_log(const FieldIn& in, Event& e) {
  if (e.first_page % 64) in.fail("first_page", "must be a multiple of 64 (KVM_CLEAR_DIRTY_LOG)");
  if (e.first_page && !e.num_pages) in.fail("num_pages", "required (>= 1) when first_page is given");
  if (e.num_pages > ~u64{0} - e.first_page) in.fail("num_pages", "first_page + num_pages overflows");
}
// access (and l2_access): "gpa" or "gva", not both.
inline void read_access_gpa(const FieldIn& in, Event& e) {
  if (!in.given()) {
    if (!in.given("gva")) in.fail("missing required field of access (give 'gpa' or 'gva')");
    return;
  }
  if (in.given("gva")) in.fail("gva", "an access takes 'gpa' or 'gva', not both");
  e.addr = in.gpa(1);
}
constexpr FieldDesc kAccessGpa = FieldDesc{"gpa", Gpa, OneOf}.in(read_access_gpa).out([](FieldOut& o, const Event& e) {
  if (!e.is_gva) o.hex(e.addr);
});
constexpr FieldDesc kAccess[] = {kVcpuReq,
                                 kAccessGpa,
                                 FieldDesc{"gva", Gva, OneOf}
                                     .in([](const FieldIn& in, Event& e) {
                                       if (!in.given()) return;
                                       e.is_gva = true;
                                       e.addr = in.num();
                                       if (!FieldIn::canonical(e.addr, 5))
                                         in.fail(FieldIn::hex(e.addr) + " is not canonical");
                                     })
                                     .out([](FieldOut& o, const Event& e) {
                                       if (e.is_gva) o.hex(e.addr);
                                     }),
                                 kAccessOp,
                                 kCount,
                                 kStride,
                                 kTsNs};
// The last of `count` accesses stays in the address space of the first.
void check_access(const FieldIn& in, Event& e);
constexpr FieldDesc kGuestMap[] = {
    FieldDesc{"cr3", Gpa, Required}
        .in([](const FieldIn& in, Event& e) { e.cr3 = in.gpa(kPageSize); })
        .out([](FieldOut& o, const Event& e) { o.hex(e.cr3); }),
    FieldDesc{"gva", Gva, Required}
        .in([](const FieldIn& in, Event& e) { e.gva = in.num(); })
        .out([](FieldOut& o, const Event& e) { o.hex(e.gva); }),
    kGpaAnyAlign,
    kSizeHex.in([](const FieldIn& in, Event& e) { e.size = in.size(1); }),
    FieldDesc{"page", Choice, Required, 0, kU64, "4k|2m|1g"}
        .in([](const FieldIn& in, Event& e) { e.page_level = PG_LEVEL_4K + int(in.choice()); })
        .out([](FieldOut& o, const Event& e) { o.word(guest_page_name(e.page_level)); }),
    kGuestLevels,
    FieldDesc{"writable", Bool}
        .in([](const FieldIn& in, Event& e) { e.writable = in.flag(); })
        .out([](FieldOut& o, const Event& e) {
          if (!e.writable) o.literal("false");
        }),
    FieldDesc{"executable", Bool}
        .in([](const FieldIn& in, Event& e) { e.executable = in.flag(); })
        .out([](FieldOut& o, const Event& e) {
          if (!e.executable) o.literal("false");
        })};
// gpa, size and gva aligned to the page, the range in the address spaces.
void check_guest_map(const FieldIn& in, Event& e);
// "pcid": set_cr3's when not 0, invpcid's with kind address or single.
constexpr FieldDesc kPcid = FieldDesc{"pcid", Number, Optional, 0, 4095}
                                .in([](const FieldIn& in, Event& e) {
                                  if (e.type == EventType::Invpcid && e.inv_kind != InvKind::Address &&
                                      e.inv_kind != InvKind::Single)
                                    in.fail("only valid with kind \"address\" or \"single\"");
                                  e.pcid = u16(in.ranged());
                                })
                                .out([](FieldOut& o, const Event& e) {
                                  if (e.type == EventType::SetCr3 ? e.pcid != 0
                                                                  : e.inv_kind == InvKind::Address || e.inv_kind == InvKind::Single)
                                    o.dec(e.pcid);
                                });
constexpr FieldDesc kSetCr3[] = {kVcpuReq,
                                 FieldDesc{"cr3", Gpa, Required}
                                     .in([](const FieldIn& in, Event& e) { e.cr3 = in.gpa(kPageSize); })
                                     .out([](FieldOut& o, const Event& e) { o.hex(e.cr3); }),
                                 kPcid, kGuestLevels};
constexpr FieldDesc kInvept[] = {kVcpuReq, kInvKind("single|all")};
constexpr FieldDesc kInvvpid[] = {kVcpuReq, kInvKind("address|single|all|single_retain_globals"), kInvGva(Optional)};
constexpr FieldDesc kInvlpg[] = {kVcpuReq, kInvGva(Required)};
constexpr FieldDesc kInvpcid[] = {kVcpuReq, kInvKind("address|single|all|all_retain_globals"), kPcid, kInvGva(Optional)};
// invvpid / invpcid: kind "address" needs "gva", invpcid "single" "pcid".
inline void check_inv_kind(const FieldIn& in, Event& e) {
  if (e.type == EventType::Invpcid && (e.inv_kind == InvKind::Address || e.inv_kind == InvKind::Single))
    in.require("pcid");
  if (e.inv_kind == InvKind::Address) in.require("gva");
}
constexpr FieldDesc kPhase[] = {FieldDesc{"name", Text, Required}
                                    .in([](const FieldIn& in, Event& e) {
                                      e.name = in.text();
                                      if (e.name.empty()) in.fail("must not be empty");
                                    })
                                    .out([](FieldOut& o, const Event& e) { o.text(e.name); })};
constexpr FieldDesc kGpaSize[] = {kGpaHex, kSizeHex};
constexpr FieldDesc kMarker[] = {FieldDesc{"text", Text, Required}
                                     .in([](const FieldIn& in, Event& e) { e.name = in.text(); })
                                     .out([](FieldOut& o, const Event& e) { o.text(e.name); })};
// kvm_decision "level" / "guest_level": 0 (unknown) .. 5.
inline int decision_level(const FieldIn& in) {
  u64 v = in.num();
  if (v > 5) in.fail("must be 0..5, got " + std::to_string(v));
  return int(v);
}
constexpr FieldDesc kKvmDecision[] = {
    FieldDesc{"kind", Choice, Required, 0, kU64, "map|prefetch|fast|zap|zap_all_fast|split"}
        .in([](const FieldIn& in, Event& e) { e.decision = DecisionKind(in.choice()); })
        .out([](FieldOut& o, const Event& e) { o.word(decision_name(e.decision)); }),
    FieldDesc{"vcpu", Number}.in(kVcpuReq.read).out([](FieldOut& o, const Event& e) {
      if (e.vcpu >= 0) o.dec(u64(e.vcpu));
    }),
    FieldDesc{"gpa", Gpa}.in(kGpaAnyAlign.read).out([](FieldOut& o, const Event& e) {
      if (e.gpa) o.hex(e.gpa);
    }),
    FieldDesc{"level", Number, Optional, 0, 5}
        .in([](const FieldIn& in, Event& e) { e.page_level = decision_level(in); })
        .out([](FieldOut& o, const Event& e) {
          if (e.page_level) o.dec(u64(e.page_level));
        }),
    FieldDesc{"guest_level", Number, Optional, 0, 5}
        .in([](const FieldIn& in, Event& e) { e.guest_level = decision_level(in); })
        .out([](FieldOut& o, const Event& e) {
          if (e.guest_level) o.dec(u64(e.guest_level));
        }),
    kTsNs};
// Without "level" the SPTE level is 0 (unknown), not the Event's 4K.
inline void check_kvm_decision(const FieldIn& in, Event& e) {
  if (!in.given("level")) e.page_level = 0;
}
constexpr FieldDesc kTdCreate[] = {
    FieldDesc{"td", Number, Required, 0, 0xffff}
        .in([](const FieldIn& in, Event& e) {
          u64 v = in.num();
          if (in.td_exists(v)) in.fail("TD " + std::to_string(v) + " exists already");
          if (v > 0xffff) in.fail("must be below 65536");
          e.tdx.td = u32(v);
        })
        .out([](FieldOut& o, const Event& e) { o.dec(e.tdx.td); }),
    FieldDesc{"vcpus", Number, Optional, 1, 256}
        .in([](const FieldIn& in, Event& e) { e.tdx.vcpus = u32(in.ranged()); })
        .out([](FieldOut& o, const Event& e) { o.dec(e.tdx.vcpus); }),
    kTdGpaw, kTdLevels, kDynamicPamt,
    FieldDesc{"create_only", Bool}
        .in([](const FieldIn& in, Event& e) { e.tdx.create_only = in.flag(); })
        .out([](FieldOut& o, const Event& e) {
          if (e.tdx.create_only) o.literal("true");
        })};
// A logical processor (seamcall, td_vcpu "enter").
inline void read_lp(const FieldIn& in, Event& e) {
  if (e.type == EventType::TdVcpu && !e.tdx.enter) in.fail("only an \"enter\" runs on a named logical processor");
  e.tdx.lp = unsigned(in.num());
  if (e.tdx.lp >= 4096) in.fail("must be below 4096");
}
constexpr FieldDesc kLp = FieldDesc{"lp", Number, Optional, 0, 4095}.in(read_lp).out([](FieldOut& o, const Event& e) {
  if (e.tdx.lp) o.dec(e.tdx.lp);
});
// A SEAMCALL leaves "td" 0 out (RDX defaults to TD 0's TDR anyway).
constexpr FieldDesc kSeamcall[] = {
    FieldDesc{"leaf", Text, Required}.in(read_leaf).out(write_leaf),
    FieldDesc{"td", Number}.in(kTdTd.read).out([](FieldOut& o, const Event& e) {
      if (e.tdx.td || e.tdx.vcpu) o.dec(e.tdx.td);
    }),
    FieldDesc{"vcpu", Number}
        .in([](const FieldIn& in, Event& e) {
          if (!in.td_exists(e.tdx.td))
            in.fail("names a vCPU of TD " + std::to_string(e.tdx.td) + ", which was not created");
          e.tdx.vcpu = in.td_vcpu(e.tdx.td);
        })
        .out([](FieldOut& o, const Event& e) {
          if (e.tdx.vcpu) o.dec(e.tdx.vcpu);
        }),
    kTdxGpa, kTdxLevel,
    FieldDesc{"version", Number, Optional, 0, 255}
        .in([](const FieldIn& in, Event& e) {
          e.tdx.version = unsigned(in.num());
          if (e.tdx.version > 255) in.fail("must be 0..255");
        })
        .out([](FieldOut& o, const Event& e) {
          if (e.tdx.version) o.dec(e.tdx.version);
        }),
    kLp,
    kConcurrent, kInterrupt, kRegs[0], kRegs[1], kRegs[2], kRegs[3], kRegs[4], kRegs[5], kRegs[6], kRegs[7], kRegs[8],
    kExpect, kExpectOut};
constexpr FieldDesc kTdcall[] = {FieldDesc{"leaf", Text, Required}.in(read_leaf).out(write_leaf), kTdTd, kTdVcpuReq, kTdxGpa, kTdxLevel,
                                 kConcurrent, kInterrupt, kRegs[R::RCX], kExpect, kExpectOut};
// td_vcpu "enter": TDH.VP.ENTER's RCX (vcpu_handle_and_flags).
inline void read_vp_enter_rcx(const FieldIn& in, Event& e) {
  if (!e.tdx.enter) in.fail("only an \"enter\" takes RCX");
  read_reg<R::RCX>(in, e);
}
constexpr FieldDesc kTdVcpu[] = {
    kTdTd, kTdVcpuReq,
    FieldDesc{"op", Choice, Required, 0, kU64, "enter|exit"}
        .in([](const FieldIn& in, Event& e) { e.tdx.enter = in.choice() == 0; })
        .out([](FieldOut& o, const Event& e) { o.word(e.tdx.enter ? "enter" : "exit"); }),
    kLp, FieldDesc{"rcx", Number}.in(read_vp_enter_rcx).out(write_reg<R::RCX>),
    kConcurrent, kTdxGpa,
    FieldDesc{"rip", Number}
        .in([](const FieldIn& in, Event& e) { e.tdx.rip = in.num(); })
        .out([](FieldOut& o, const Event& e) {
          if (e.tdx.rip) o.hex(e.tdx.rip);
        }),
    kExpect, kExpectOut};
constexpr FieldDesc kTdInitMemRegion[] = {kGpaHex, kSizeHex,
                                          FieldDesc{"measure", Bool}
                                              .in([](const FieldIn& in, Event& e) { e.measure = in.flag(); })
                                              .out([](FieldOut& o, const Event& e) {
                                                if (e.measure) o.literal("true");
                                              }),
                                          FieldDesc{"tag", Number}
                                              .in([](const FieldIn& in, Event& e) { e.tag = in.num(); })
                                              .out([](FieldOut& o, const Event& e) {
                                                if (e.tag) o.hex(e.tag);
                                              })};
constexpr FieldDesc kTdTeardown[] = {FieldDesc{"terminate", Bool}
                                         .in([](const FieldIn& in, Event& e) { e.terminate = in.flag(); })
                                         .out([](FieldOut& o, const Event& e) {
                                           if (e.terminate) o.literal("true");
                                         })};
constexpr FieldDesc kAccept[] = {kVcpuReq, kGpaAnyAlign,
                                 FieldDesc{"level", Number, Optional, 0, 1}
                                     .in([](const FieldIn& in, Event& e) {
                                       u64 v = in.num();
                                       if (v > 1) in.fail("ACCEPT takes TDX level 0 (4K) or 1 (2M), got " + std::to_string(v));
                                       e.tdx.level = int(v);
                                     })
                                     .out([](FieldOut& o, const Event& e) { o.dec(u64(e.tdx.level)); }),
                                 kInterrupt};
// The GPA of an ACCEPT is aligned to its level's page.
inline void check_accept(const FieldIn& in, Event& e) { in.aligned("gpa", e.gpa, u64{1} << (12 + 9 * e.tdx.level)); }
constexpr FieldDesc kSetMemoryAttributes[] = {
    kGpaHex, kSizeHex,
    FieldDesc{"private", Bool, Required}
        .in([](const FieldIn& in, Event& e) { e.make_private = in.flag(); })
        .out([](FieldOut& o, const Event& e) { o.literal(e.make_private ? "true" : "false"); })};
constexpr FieldDesc kMapGpa[] = {kVcpuReq, kGpaHex, kSizeHex};
constexpr FieldDesc kNestedVmentry[] = {kVcpuReq, kEptp};
constexpr FieldDesc kL2Access[] = {kVcpuReq,
                                   kGpaHex.in(read_access_gpa).out([](FieldOut& o, const Event& e) { o.hex(e.addr); }),
                                   kAccessOp, kCount, kStride};
constexpr FieldDesc kL1EptWrite[] = {kVcpuReq, kEptp, kGpaHex};
constexpr FieldDesc kL1Invept[] = {kVcpuReq, kInvKind("single|all"),
                                   FieldDesc{"eptp", Number}
                                       .in([](const FieldIn& in, Event& e) {
                                         if (e.inv_kind == InvKind::All) in.fail("only valid with kind \"single\"");
                                         read_eptp(in, e);
                                       })
                                       .out(kEptp.write)};
// l1_invept "single" names the EPTP.
inline void check_l1_invept(const FieldIn& in, Event& e) {
  if (e.inv_kind == InvKind::Single) in.require("eptp");
}
constexpr FieldDesc kVcpuMigrate[] = {kVcpuReq, FieldDesc{"lp", Number, Required, 0, 4095}.in(read_lp).out([](FieldOut& o, const Event& e) {
                                        o.dec(e.tdx.lp);
                                      })};

using T = EventType;
using S = Scope;
using L = Layer;

// In EventType order (checked below).
constexpr EventDesc kDescs[] = {
    //  type                       name                     scope       consumer          TD VM  TDX   bin
    {T::VmCreate, "vm_create", S::Vm, L::Replayer, false, true, 1, kVmCreate, check_gpaw},
    {T::MemslotAdd, "memslot_add", S::Vm, L::Mmu, false, false, 1, kMemslotAdd},
    {T::MemslotDelete, "memslot_delete", S::Vm, L::Mmu, false, false, 1, kMemslotDelete},
    {T::MemslotMove, "memslot_move", S::Vm, L::Mmu, false, false, 1, kMemslotMove},
    {T::DirtyLog, "dirty_log", S::Vm, L::Mmu, false, false, 1, kDirtyLog, check_dirty_log},
    {T::Access, "access", S::Vcpu, L::Vcpu, false, false, 1, kAccess, check_access},
    {T::GuestMap, "guest_map", S::Vm, L::Replayer, false, false, 1, kGuestMap, check_guest_map},
    {T::SetCr3, "set_cr3", S::Vcpu, L::Vcpu, false, false, 1, kSetCr3},
    {T::Invept, "invept", S::Vcpu, L::Vcpu, false, false, 1, kInvept},
    {T::Invvpid, "invvpid", S::Vcpu, L::Vcpu, false, false, 1, kInvvpid, check_inv_kind},
    {T::Invlpg, "invlpg", S::Vcpu, L::Vcpu, false, false, 1, kInvlpg},
    {T::Invpcid, "invpcid", S::Vcpu, L::Vcpu, false, false, 1, kInvpcid, check_inv_kind},
    {T::Phase, "phase", S::Host, L::Replayer, false, false, 1, kPhase},
    {T::GuestPtPool, "guest_pt_pool", S::Vm, L::Replayer, false, false, 1, kGpaSize},
    {T::Marker, "marker", S::Host, L::Annotation, false, false, 1, kMarker},
    {T::KvmDecision, "kvm_decision", S::Vm, L::Annotation, false, false, 1, kKvmDecision, check_kvm_decision},
    {T::HostUnmap, "host_unmap", S::Vm, L::Mmu, false, false, 1, kGpaSize},
    {T::TdCreate, "td_create", S::Host, L::Seam, false, true, 2, kTdCreate, check_gpaw},
    {T::Seamcall, "seamcall", S::Host, L::Seam, false, true, 2, kSeamcall},
    {T::Tdcall, "tdcall", S::Host, L::Seam, false, true, 2, kTdcall},
    {T::TdVcpu, "td_vcpu", S::Host, L::Seam, false, true, 2, kTdVcpu},
    {T::TdInitMemRegion, "td_init_mem_region", S::Vm, L::Mmu, true, false, 2, kTdInitMemRegion},
    {T::TdFinalize, "td_finalize", S::Vm, L::Mmu, true, false, 2, {}},
    {T::TdTeardown, "td_teardown", S::Vm, L::Mmu, true, false, 2, kTdTeardown},
    {T::Accept, "accept", S::Vm, L::Mmu, true, true, 2, kAccept, check_accept},
    {T::SetMemoryAttributes, "set_memory_attributes", S::Vm, L::Mmu, true, false, 2, kSetMemoryAttributes},
    {T::MapGpa, "map_gpa", S::Vm, L::Mmu, true, false, 2, kMapGpa},
    {T::NxRecoveryTick, "nx_recovery_tick", S::Vm, L::Mmu, false, false, 2, {}},
    {T::NestedVmentry, "nested_vmentry", S::Vm, L::Nested, false, false, 0, kNestedVmentry},
    {T::L2Access, "l2_access", S::Vm, L::Nested, false, false, 0, kL2Access, check_access},
    {T::L1EptWrite, "l1_ept_write", S::Vm, L::Nested, false, false, 0, kL1EptWrite},
    {T::L1Invept, "l1_invept", S::Vm, L::Nested, false, false, 0, kL1Invept, check_l1_invept},
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

constexpr bool every_field_read_and_written() {
  for (const EventDesc& d : kEventDescs)
    for (const FieldDesc& f : d.fields)
      if (!f.read || !f.write) return false;
  return true;
}
static_assert(every_field_read_and_written(),
              "every field of kEventDescs needs a reader and a writer (FieldDesc::in, FieldDesc::out)");

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
