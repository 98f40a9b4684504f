#include "traces/binary_trace.h"

#include "seam/tdx_leaf.h"
#include "traces/event_desc.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace septsim::traces {

namespace {

enum Field : u32 {
  kVcpu, kVcpus, kSlotId, kSlotGpa, kSlotSize, kSlotHva, kSlotBacking, kSlotFlags, kDirtyOp, kFirstPage,
  kNumPages, kAddr, kIsGva, kAccess, kCount, kStride, kCr3, kGuestLevels, kGva, kGpa, kSize, kPageLevel,
  kWritable, kExecutable, kPcid, kInvKind, kDecision, kGuestLevel, kTsNs, kName,
  // version 2: the TD VM fields, and kTdx: a TdxEventFields record follows the name
  kTdxVm, kMeasure, kMakePrivate, kTag, kTdx,
  // still version 2: bits old readers never see set (td_teardown's terminate,
  // the VM of a trace with several)
  kTerminate, kVm, kFieldCount
};
constexpr const char* kFieldNames[kFieldCount] = {
    "vcpu", "vcpus", "slot", "gpa", "size", "hva", "backing", "flags", "op", "first_page", "num_pages", "addr",
    "is_gva", "op", "count", "stride", "cr3", "levels", "gva", "gpa", "size", "page", "writable", "executable",
    "pcid", "kind", "kind", "guest_level", "ts_ns", "name", "vm_type", "measure", "private", "tag", "td",
    "terminate", "vm"};
// The fields of an access event (bit order: the encoder and decoders rely on it).
constexpr u64 kAccessFields = u64{1} << kVcpu | u64{1} << kAddr | u64{1} << kIsGva | u64{1} << kAccess |
                              u64{1} << kCount | u64{1} << kStride | u64{1} << kTsNs;
static_assert(kVcpu < kAddr && kAddr < kIsGva && kIsGva < kAccess && kAccess < kCount && kCount < kStride &&
              kStride < kTsNs);
// Fields that are numbers (the others: the name string, the TDX record).
constexpr u64 kNumericFields = ((u64{1} << kFieldCount) - 1) & ~(u64{1} << kName) & ~(u64{1} << kTdx);

// What each version knows: its field bits and event types.
constexpr u64 field_bits(u32 version) { return version == 1 ? (u64{1} << (kName + 1)) - 1 : (u64{1} << kFieldCount) - 1; }
constexpr u32 num_types(u32 version) { return binary_event_types(version); }
static_assert(num_types(1) == u32(EventType::HostUnmap) + 1 && num_types(2) == u32(EventType::NxRecoveryTick) + 1);

// TdxEventFields, in the order of the TDX record's own bitmap.
enum TdxField : u32 {
  kTd, kTdVcpu, kTdVcpus, kGpaw, kEptLevels, kDynamicPamt, kLeaf, kVersion, kHasGpa, kTdGpa, kLevel,
  kReg0, kRegMask = kReg0 + TdxEventFields::kNumRegs, kLp, kConcurrent, kHasExpect, kExpect, kExpectExact, kEnter,
  kOut0, kOutMask = kOut0 + TdxEventFields::kNumRegs, kInterrupt, kCreateOnly,
  kTdxFieldCount
};

// The events that read TdxEventFields (the rest leave them at their defaults).
bool uses_tdx_fields(EventType t) { return event_desc(t).tdx_record; }

u64 get_tdx(const TdxEventFields& t, u32 f) {
  if (f >= kReg0 && f < kRegMask) return t.regs[f - kReg0];
  if (f >= kOut0 && f < kOutMask) return t.expect_out[f - kOut0];
  switch (f) {
    case kTd: return t.td;
    case kTdVcpu: return t.vcpu;
    case kTdVcpus: return t.vcpus;
    case kGpaw: return u64(t.gpaw);
    case kEptLevels: return u64(t.ept_levels);
    case kDynamicPamt: return t.dynamic_pamt;
    case kLeaf: return t.leaf;
    case kVersion: return t.version;
    case kHasGpa: return t.has_gpa;
    case kTdGpa: return t.gpa;
    case kLevel: return u64(t.level);
    case kRegMask: return t.reg_mask;
    case kLp: return t.lp;
    case kConcurrent: return t.concurrent;
    case kHasExpect: return t.has_expect;
    case kExpect: return t.expect;
    case kExpectExact: return t.expect_exact;
    case kOutMask: return t.expect_out_mask;
    case kInterrupt: return t.interrupt;
    case kCreateOnly: return t.create_only;
    default: return t.enter;
  }
}

// Stores v; false if it does not fit the field.
bool set_tdx(TdxEventFields& t, u32 f, u64 v) {
  auto fits = [&](u64 max) { return v <= max; };
  if (f >= kReg0 && f < kRegMask) {
    t.regs[f - kReg0] = v;
    return true;
  }
  if (f >= kOut0 && f < kOutMask) {
    t.expect_out[f - kOut0] = v;
    return true;
  }
  switch (f) {
    case kTd: return fits(0xffff) && (t.td = u32(v), true);
    case kTdVcpu: return fits(255) && (t.vcpu = u32(v), true);
    case kTdVcpus: return fits(256) && (t.vcpus = u32(v), true);
    case kGpaw: return (v == 48 || v == 52) && (t.gpaw = int(v), true);
    case kEptLevels: return (v == 4 || v == 5) && (t.ept_levels = int(v), true);
    case kDynamicPamt: return fits(1) && (t.dynamic_pamt = v, true);
    case kLeaf: return fits(0xffff) && (t.leaf = u16(v), true);
    case kVersion: return fits(255) && (t.version = unsigned(v), true);
    case kHasGpa: return fits(1) && (t.has_gpa = v, true);
    case kTdGpa: return fits(TraceReader::kMaxGpa - 1) && (t.gpa = v, true);
    case kLevel: return fits(4) && (t.level = int(v), true);
    case kRegMask: return fits((1u << TdxEventFields::kNumRegs) - 1) && (t.reg_mask = u32(v), true);
    case kLp: return fits(4095) && (t.lp = unsigned(v), true);
    case kConcurrent: return fits(1) && (t.concurrent = v, true);
    case kHasExpect: return fits(1) && (t.has_expect = v, true);
    case kExpect: t.expect = v; return true;
    case kExpectExact: return fits(1) && (t.expect_exact = v, true);
    case kEnter: return fits(1) && (t.enter = v, true);
    case kOutMask: return fits((1u << TdxEventFields::kNumRegs) - 2) && !(v & 1) && (t.expect_out_mask = u32(v), true);
    case kInterrupt: return fits(1) && (t.interrupt = v, true);
    case kCreateOnly: return fits(1) && (t.create_only = v, true);
    default: return false;
  }
}

// Numeric value of a field (kName excluded). vcpu is stored +1 so that -1 is 0.
u64 get(const Event& e, u32 f) {
  switch (f) {
    case kVcpu: return u64(std::int64_t(e.vcpu) + 1);
    case kVcpus: return e.vcpus;
    case kSlotId: return e.slot.id;
    case kSlotGpa: return e.slot.gpa;
    case kSlotSize: return e.slot.size;
    case kSlotHva: return e.slot.userspace_addr;
    case kSlotBacking: return u64(e.slot.backing);
    case kSlotFlags: return e.slot.flags;
    case kDirtyOp: return u64(e.dirty_op);
    case kFirstPage: return e.first_page;
    case kNumPages: return e.num_pages;
    case kAddr: return e.addr;
    case kIsGva: return e.is_gva;
    case kAccess: return u64(e.access);
    case kCount: return e.count;
    case kStride: return e.stride;
    case kCr3: return e.cr3;
    case kGuestLevels: return u64(e.guest_levels);
    case kGva: return e.gva;
    case kGpa: return e.gpa;
    case kSize: return e.size;
    case kPageLevel: return u64(e.page_level);
    case kWritable: return e.writable;
    case kExecutable: return e.executable;
    case kPcid: return e.pcid;
    case kInvKind: return u64(e.inv_kind);
    case kDecision: return u64(e.decision);
    case kGuestLevel: return u64(e.guest_level);
    case kTsNs: return e.ts_ns;
    case kTdxVm: return e.tdx_vm ? 1 : e.native_vm ? 2 : 0;  // vm_type: default, tdx, native
    case kMeasure: return e.measure;
    case kMakePrivate: return e.make_private;
    case kTag: return e.tag;
    case kTerminate: return e.terminate;
    case kVm: return e.vm;
    default: return 0;
  }
}

// Stores v; false if it does not fit the field (checked before use).
bool set(Event& e, u32 f, u64 v) {
  auto small = [&](u64 max) { return v <= max; };
  switch (f) {
    case kVcpu: if (!small(1u << 16)) return false; e.vcpu = int(v) - 1; return true;
    case kVcpus: if (!small(~u32{0})) return false; e.vcpus = u32(v); return true;
    case kSlotId: if (!small(~u32{0})) return false; e.slot.id = u32(v); return true;
    case kSlotGpa: e.slot.gpa = v; return true;
    case kSlotSize: e.slot.size = v; return true;
    case kSlotHva: e.slot.userspace_addr = v; return true;
    case kSlotBacking: if (!small(2)) return false; e.slot.backing = mmu::HostBacking(v); return true;
    case kSlotFlags: if (!small(3)) return false; e.slot.flags = u32(v); return true;
    case kDirtyOp: if (!small(3)) return false; e.dirty_op = DirtyLogOp(v); return true;
    case kFirstPage: e.first_page = v; return true;
    case kNumPages: e.num_pages = v; return true;
    case kAddr: e.addr = v; return true;
    case kIsGva: if (!small(1)) return false; e.is_gva = v; return true;
    case kAccess: if (!small(2)) return false; e.access = AccessType(v); return true;
    case kCount: e.count = v; return true;
    case kStride: e.stride = v; return true;
    case kCr3: e.cr3 = v; return true;
    case kGuestLevels: if (v != 4 && v != 5) return false; e.guest_levels = int(v); return true;
    case kGva: e.gva = v; return true;
    case kGpa: e.gpa = v; return true;
    case kSize: e.size = v; return true;
    case kPageLevel: if (!small(5)) return false; e.page_level = int(v); return true;
    case kWritable: if (!small(1)) return false; e.writable = v; return true;
    case kExecutable: if (!small(1)) return false; e.executable = v; return true;
    case kPcid: if (!small(4095)) return false; e.pcid = u16(v); return true;
    case kInvKind: if (!small(3)) return false; e.inv_kind = InvKind(v); return true;
    case kDecision: if (!small(5)) return false; e.decision = DecisionKind(v); return true;
    case kGuestLevel: if (!small(5)) return false; e.guest_level = int(v); return true;
    case kTsNs: e.ts_ns = v; return true;
    case kTdxVm: if (!small(2)) return false; e.tdx_vm = v == 1; e.native_vm = v == 2; return true;
    case kMeasure: if (!small(1)) return false; e.measure = v; return true;
    case kMakePrivate: if (!small(1)) return false; e.make_private = v; return true;
    case kTag: e.tag = v; return true;
    case kTerminate: if (!small(1)) return false; e.terminate = v; return true;
    case kVm: if (!small(TraceReader::kMaxVms - 1)) return false; e.vm = u32(v); return true;
    default: return false;
  }
}

const Event& defaults() {
  static const Event d{};
  return d;
}

// The numeric fields of `e` that differ from their defaults: get(e, f) !=
// get(defaults(), f) for each, compared directly (the writer's hot path).
u64 numeric_bits(const Event& e) {
  const Event& d = defaults();
  auto b = [](bool differs, u32 f) { return u64(differs) << f; };
  return b(e.vcpu != d.vcpu, kVcpu) | b(e.vcpus != d.vcpus, kVcpus) | b(e.slot.id != d.slot.id, kSlotId) |
         b(e.slot.gpa != d.slot.gpa, kSlotGpa) | b(e.slot.size != d.slot.size, kSlotSize) |
         b(e.slot.userspace_addr != d.slot.userspace_addr, kSlotHva) | b(e.slot.backing != d.slot.backing, kSlotBacking) |
         b(e.slot.flags != d.slot.flags, kSlotFlags) | b(e.dirty_op != d.dirty_op, kDirtyOp) |
         b(e.first_page != d.first_page, kFirstPage) | b(e.num_pages != d.num_pages, kNumPages) |
         b(e.addr != d.addr, kAddr) | b(e.is_gva != d.is_gva, kIsGva) | b(e.access != d.access, kAccess) |
         b(e.count != d.count, kCount) | b(e.stride != d.stride, kStride) | b(e.cr3 != d.cr3, kCr3) |
         b(e.guest_levels != d.guest_levels, kGuestLevels) | b(e.gva != d.gva, kGva) | b(e.gpa != d.gpa, kGpa) |
         b(e.size != d.size, kSize) | b(e.page_level != d.page_level, kPageLevel) |
         b(e.writable != d.writable, kWritable) | b(e.executable != d.executable, kExecutable) |
         b(e.pcid != d.pcid, kPcid) | b(e.inv_kind != d.inv_kind, kInvKind) | b(e.decision != d.decision, kDecision) |
         b(e.guest_level != d.guest_level, kGuestLevel) | b(e.ts_ns != d.ts_ns, kTsNs) |
         b(e.tdx_vm != d.tdx_vm || e.native_vm != d.native_vm, kTdxVm) | b(e.measure != d.measure, kMeasure) |
         b(e.make_private != d.make_private, kMakePrivate) | b(e.tag != d.tag, kTag) |
         b(e.terminate != d.terminate, kTerminate) | b(e.vm != d.vm, kVm);
}

// Writes v as LEB128 at w (at most 10 bytes); returns the byte after it.
u8* put_leb(u8* w, u64 v) {
  while (v >= 0x80) *w++ = u8(v | 0x80), v >>= 7;
  *w++ = u8(v);
  return w;
}

void put_u32(u8* p, u32 v) {
  for (int i = 0; i < 4; ++i) p[i] = u8(v >> (8 * i));
}
void put_u64(u8* p, u64 v) {
  for (int i = 0; i < 8; ++i) p[i] = u8(v >> (8 * i));
}
u32 get_u32(const u8* p) { return u32(p[0]) | u32(p[1]) << 8 | u32(p[2]) << 16 | u32(p[3]) << 24; }
u64 get_u64(const u8* p) { return u64(get_u32(p)) | u64(get_u32(p + 4)) << 32; }

std::string hexs(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool canonical(u64 va) {
  u64 upper = va >> 56;
  return upper == 0 || upper == 0xff;
}

}  // namespace

namespace {

// block_checksum() in steps: the start, one 8-byte word, the end (the bytes
// from i, fewer than 8, and the mix).
u64 sum_start(size_t n) { return 0x9e3779b97f4a7c15ull ^ n; }
inline __attribute__((always_inline)) u64 sum_word(u64 h, const u8* at) {
  u64 w;
  std::memcpy(&w, at, 8);
  h = (h ^ w) * 0xff51afd7ed558ccdull;
  return h ^ (h >> 32);
}
u64 sum_end(u64 h, const u8* data, size_t i, size_t n) {
  u64 tail = 0;
  for (size_t k = 0; i + k < n; ++k) tail |= u64(data[i + k]) << (8 * k);
  h = (h ^ tail) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

// block_checksum() of two blocks at once: each is one serial chain of
// multiplies, and two independent chains take the time of one.
void block_checksums(const u8* a, size_t na, const u8* b, size_t nb, u64& sum_a, u64& sum_b) {
  u64 ha = sum_start(na), hb = sum_start(nb);
  const size_t both = std::min(na, nb) & ~size_t{7};
  size_t i = 0;
  for (; i < both; i += 8) ha = sum_word(ha, a + i), hb = sum_word(hb, b + i);
  size_t j = i;
  for (; i + 8 <= na; i += 8) ha = sum_word(ha, a + i);
  for (; j + 8 <= nb; j += 8) hb = sum_word(hb, b + j);
  sum_a = sum_end(ha, a, i, na);
  sum_b = sum_end(hb, b, j, nb);
}

}  // namespace

u64 block_checksum(const u8* data, size_t n) {
  u64 h = sum_start(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) h = sum_word(h, data + i);
  return sum_end(h, data, i, n);
}

bool is_binary_trace(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[8] = {};
  size_t n = std::fread(m, 1, 8, f);
  std::fclose(f);
  return n == 8 && std::memcmp(m, kBinaryMagic, 8) == 0;
}

// ---------------------------------------------------------------------------

BinaryTraceWriter::BinaryTraceWriter(const std::string& path) : path_(path) {
  errno = 0;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw std::runtime_error(path + ": cannot write: " + std::strerror(errno ? errno : EIO));
  u8 h[16];
  std::memcpy(h, kBinaryMagic, 8);
  put_u32(h + 8, kBinaryVersion);
  put_u32(h + 12, 0);
  std::fwrite(h, 1, sizeof h, f_);
  block_.resize(kBlockBytes + 4096);
  held_.resize(block_.size());
}

BinaryTraceWriter::~BinaryTraceWriter() {
  if (f_) std::fclose(f_);
}

void BinaryTraceWriter::put(const Event& e) {
  // Events after nx_recovery_tick (nested EPT) have fields the format cannot carry.
  if (u32(e.type) >= num_types(kBinaryVersion))
    throw std::runtime_error(std::string(event_type_name(e.type)) + " events have no binary encoding yet (line " +
                             std::to_string(e.line) + "): keep the trace as JSON Lines");
  const Event& d = defaults();
  u64 bits = numeric_bits(e);
  if (!e.name.empty()) bits |= u64{1} << kName;
  u64 tdx_bits = 0;
  if (uses_tdx_fields(e.type))
    for (u32 f = 0; f < kTdxFieldCount; ++f)
      if (get_tdx(e.tdx, f) != get_tdx(d.tdx, f)) tdx_bits |= u64{1} << f;
  if (tdx_bits) bits |= u64{1} << kTdx;
  encode(e, bits, tdx_bits);
}

void BinaryTraceWriter::put_access(const Event& e) {
  if (e.vm) return put(e);  // the access fields alone would lose the VM
  const Event& d = defaults();
  auto b = [](bool differs, u32 f) { return u64(differs) << f; };
  encode(e,
         b(e.vcpu != d.vcpu, kVcpu) | b(e.addr != d.addr, kAddr) | b(e.is_gva != d.is_gva, kIsGva) |
             b(e.access != d.access, kAccess) | b(e.count != d.count, kCount) | b(e.stride != d.stride, kStride) |
             b(e.ts_ns != d.ts_ns, kTsNs),
         0);
}

// Appends e with the fields of `bits` (and of `tdx_bits`) to the block.
void BinaryTraceWriter::encode(const Event& e, u64 bits, u64 tdx_bits) {
  // Room for the longest encoding: type, two bitmaps, every number, the name.
  const size_t most = 1 + 10 * (2 + kFieldCount + kTdxFieldCount) + 10 + e.name.size();
  if (len_ + most > block_.size()) block_.resize(len_ + most);
  u8* w = block_.data() + len_;
  *w++ = u8(e.type);
  w = put_leb(w, bits);
  if (!(bits & ~kAccessFields)) {
    // An access (most events): its fields in bit order, without get()'s switch.
    if (bits >> kVcpu & 1) w = put_leb(w, u64(std::int64_t(e.vcpu) + 1));
    if (bits >> kAddr & 1) w = put_leb(w, e.addr);
    if (bits >> kIsGva & 1) w = put_leb(w, e.is_gva);
    if (bits >> kAccess & 1) w = put_leb(w, u64(e.access));
    if (bits >> kCount & 1) w = put_leb(w, e.count);
    if (bits >> kStride & 1) w = put_leb(w, e.stride);
    if (bits >> kTsNs & 1) w = put_leb(w, e.ts_ns);
  } else {
    for (u64 rest = bits & kNumericFields; rest; rest &= rest - 1) w = put_leb(w, get(e, u32(std::countr_zero(rest))));
  }
  if (!e.name.empty()) {
    w = put_leb(w, e.name.size());
    w = std::copy(e.name.begin(), e.name.end(), w);
  }
  if (tdx_bits) {
    w = put_leb(w, tdx_bits);
    for (u64 rest = tdx_bits; rest; rest &= rest - 1) w = put_leb(w, get_tdx(e.tdx, u32(std::countr_zero(rest))));
  }
  len_ = size_t(w - block_.data());
  ++block_events_;
  ++total_;
  if (len_ >= kBlockBytes) flush_block();
}

// A full block is held back until the next one is full too, and the two
// checksums are computed together (two independent multiply chains); the
// bytes written are the same.
void BinaryTraceWriter::flush_block() {
  if (!block_events_) return;
  if (!held_events_) {
    std::swap(block_, held_);
    held_len_ = len_, held_events_ = block_events_;
  } else {
    u64 held_sum, sum;
    block_checksums(held_.data(), held_len_, block_.data(), len_, held_sum, sum);
    write_block(held_, held_len_, held_events_, held_sum);
    write_block(block_, len_, block_events_, sum);
    held_events_ = 0;
  }
  len_ = 0;
  block_events_ = 0;
}

void BinaryTraceWriter::write_block(const std::vector<u8>& payload, size_t len, u32 events, u64 sum) {
  u8 h[16];
  put_u32(h, u32(len));
  put_u32(h + 4, events);
  put_u64(h + 8, sum);
  std::fwrite(h, 1, sizeof h, f_);
  std::fwrite(payload.data(), 1, len, f_);
}

void BinaryTraceWriter::finish() {
  if (!f_) return;
  flush_block();
  if (held_events_) write_block(held_, held_len_, held_events_, block_checksum(held_.data(), held_len_));
  held_events_ = 0;
  u8 h[16] = {};
  put_u64(h + 8, total_);
  std::fwrite(h, 1, sizeof h, f_);
  bool bad = std::ferror(f_) != 0;
  bad |= std::fclose(f_) != 0;
  f_ = nullptr;
  if (bad) throw std::runtime_error(path_ + ": write failed");
}

// ---------------------------------------------------------------------------

BinaryTraceReader::BinaryTraceReader(const std::string& path) : path_(path) {
  errno = 0;
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw TraceError(path, 0, "", std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
  u8 h[16];
  size_t n = std::fread(h, 1, sizeof h, f_);
  if (n < 8 || std::memcmp(h, kBinaryMagic, 8) != 0)
    throw TraceError(path, 0, "", "not a septsim binary trace (the file does not start with the SSTB magic)");
  if (n < 16) throw TraceError(path, 0, "", "truncated binary trace: the 16-byte header is cut short");
  u32 version = get_u32(h + 8);
  if (version < 1 || version > kBinaryVersion)
    throw TraceError(path, 0, "version",
                     "unsupported binary trace version " + std::to_string(version) + " (this reader reads 1 and 2)");
  known_bits_ = field_bits(version);
  known_types_ = num_types(version);
}

BinaryTraceReader::~BinaryTraceReader() {
  if (f_) std::fclose(f_);
}

void BinaryTraceReader::fail(const std::string& field, const std::string& msg) const {
  throw TraceError(path_, index_, field, msg);
}

void BinaryTraceReader::fail_cold(const char* field, const char* msg) const { fail(field, msg); }

void BinaryTraceReader::fail_number(const char* field, const char* before, u64 v, bool in_hex, const char* after) const {
  fail(field, before + (in_hex ? hexs(v) : std::to_string(v)) + after);
}

// The next block's header and payload as read (no check yet), from the
// read-ahead when there is one.
size_t BinaryTraceReader::read_header(u8 (&h)[16]) {
  if (!ahead_.valid) return std::fread(h, 1, sizeof h, f_);
  std::memcpy(h, ahead_.head, sizeof h);
  return ahead_.head_n;
}

size_t BinaryTraceReader::read_payload(u32 bytes) {
  if (!ahead_.valid) {
    block_.resize(bytes);
    return std::fread(block_.data(), 1, bytes, f_);
  }
  ahead_.valid = false;
  std::swap(block_, ahead_.payload);  // the old block's room is the next read-ahead's
  return ahead_.payload_n;
}

// block_checksum() of the block just read. Unless the read-ahead already
// gave it, the block after it is read ahead (as it lies, checked only when
// its turn comes, so every error still comes at its place in the stream)
// and both sums are computed together.
u64 BinaryTraceReader::checksum_of_block(bool ahead_sum, u64 sum) {
  if (ahead_sum) return sum;
  ahead_.valid = true;
  ahead_.have_sum = false;
  ahead_.payload_n = 0;
  ahead_.head_n = std::fread(ahead_.head, 1, sizeof ahead_.head, f_);
  const u32 bytes = get_u32(ahead_.head), events = get_u32(ahead_.head + 4);
  if (ahead_.head_n == sizeof ahead_.head && bytes != 0 && events != 0 && bytes <= kMaxBlockBytes && events <= bytes) {
    ahead_.payload.resize(bytes);
    ahead_.payload_n = std::fread(ahead_.payload.data(), 1, bytes, f_);
    if (ahead_.payload_n == bytes) {
      u64 own;
      block_checksums(block_.data(), block_.size(), ahead_.payload.data(), bytes, own, ahead_.sum);
      ahead_.have_sum = true;
      return own;
    }
  }
  return block_checksum(block_.data(), block_.size());
}

bool BinaryTraceReader::load_block() {
  u8 h[16];
  const bool ahead_sum = ahead_.valid && ahead_.have_sum;
  const u64 known_sum = ahead_.sum;
  size_t n = read_header(h);
  std::string where = "block " + std::to_string(block_no_ + 1) + " at byte " + std::to_string(file_offset_);
  if (n == 0) throw TraceError(path_, 0, "", "truncated binary trace: no end block after " + std::to_string(index_) + " events (" + where + ")");
  if (n < sizeof h) throw TraceError(path_, 0, "", "truncated binary trace: " + where + " has a cut-short block header");
  u32 bytes = get_u32(h), events = get_u32(h + 4);
  u64 sum = get_u64(h + 8);
  if (bytes == 0 && events == 0) {
    if (sum != index_)
      throw TraceError(path_, 0, "", "corrupt binary trace: the end block counts " + std::to_string(sum) +
                                        " events but the file holds " + std::to_string(index_));
    ended_ = true;
    return false;
  }
  if (bytes == 0 || events == 0 || bytes > kMaxBlockBytes || events > bytes)
    throw TraceError(path_, 0, "", "corrupt binary trace: " + where + " has an impossible header (" +
                                      std::to_string(bytes) + " bytes, " + std::to_string(events) + " events)");
  if (read_payload(bytes) != bytes)
    throw TraceError(path_, 0, "", "truncated binary trace: " + where + " is cut short");
  if (checksum_of_block(ahead_sum, known_sum) != sum)
    throw TraceError(path_, 0, "", "corrupt binary trace: checksum mismatch in " + where);
  file_offset_ += sizeof h + bytes;
  ++block_no_;
  pos_ = 0;
  block_left_ = events;
  return true;
}

bool BinaryTraceReader::next(Event& out) {
  if (ended_) return false;
  if (block_left_ == 0) {
    if (pos_ != block_.size())
      throw TraceError(path_, index_, "", "corrupt binary trace: bytes left over after the last event of block " +
                                              std::to_string(block_no_));
    if (!load_block()) return false;
  }
  ++index_;
  --block_left_;
  if (decode_access(out)) {
    // validate_access() of a single access of an existing vCPU.
    if (others_seen_ && out.vm == 0 && u32(out.vcpu) < vms_[0].vcpus && out.count == 1 &&
        (out.is_gva ? canonical(out.addr) : out.addr < TraceReader::kMaxGpa)) [[likely]]
      return true;
  } else {
    decode(out);
  }
  validate(out);
  return true;
}

// The common case of decode(): an access event (only access fields) of an
// Event that got only access fields last time, away from the block's end.
// Decodes into locals and commits only when nothing is unusual; otherwise
// returns false having changed nothing, and decode() does it all again,
// failing with its messages where the event is bad.
namespace {

// LEB128 without bounds checks: the caller made sure that the longest
// access event (kMaxAccessBytes) fits before the block's end.
constexpr size_t kMaxAccessBytes = 1 + 8 * 10;  // type, then the bits and seven numbers of <= 10 bytes

struct AccessFields {
  u64 vcpu, addr, is_gva, access, count, stride, ts_ns;
};

// Decodes the fields of the access event whose bitmap starts at `p`; false
// (with `p` wherever) when it has other fields or a value decode() would
// refuse or must look at (a number beyond 64 bits, vCPU 127 and up).
inline __attribute__((always_inline)) bool decode_access_fields(const u8*& p, u64 known_bits, u64& bits,
                                                                AccessFields& a) {
  bool bad = false;
  auto leb = [&]() __attribute__((always_inline)) -> u64 {
    u64 b = *p++;
    if (b < 0x80) return b;
    u64 v = b & 0x7f;
    for (unsigned shift = 7;; shift += 7) {
      b = *p++;
      if (shift == 63) {
        bad |= b > 1;
        return v | b << 63;
      }
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  bits = leb();
  if ((bits & ~kAccessFields) || (bits & ~known_bits)) return false;
  // A one-byte number of a field that may be absent, without a branch (a
  // longer one, vCPU 127 and up, or out of range, is left to decode()).
  auto small = [&](u32 f) __attribute__((always_inline)) -> u64 {
    const u64 present = bits >> f & 1;
    const u64 b = *p & (0 - present);
    bad |= b >= 0x80;
    p += present;
    return b;
  };
  auto field = [&](u32 f, u64 dflt) __attribute__((always_inline)) { return bits >> f & 1 ? leb() : dflt; };
  a.vcpu = small(kVcpu);
  a.addr = field(kAddr, 0);
  a.is_gva = small(kIsGva), a.access = small(kAccess);
  a.count = field(kCount, 1), a.stride = field(kStride, 0), a.ts_ns = field(kTsNs, 0);
  return !bad && a.is_gva <= 1 && a.access <= 2;
}

}  // namespace

// The common case of decode(): an access event (only access fields) of an
// Event that got only access fields last time, away from the block's end.
// Decodes into locals and commits only when nothing is unusual; otherwise
// returns false having changed nothing, and decode() does it all again,
// failing with its messages where the event is bad.
bool BinaryTraceReader::decode_access(Event& out) {
  const u8* const base = block_.data();
  if (pos_ + kMaxAccessBytes > block_.size() || base[pos_] != u8(EventType::Access) || &out != last_out_ ||
      out.line != last_line_ || (prev_bits_ & ~kAccessFields))
    return false;
  const u8* p = base + pos_ + 1;
  u64 bits;
  AccessFields a;
  if (!decode_access_fields(p, known_bits_, bits, a)) return false;
  prev_bits_ = bits;
  out.type = EventType::Access;
  out.line = last_line_ = index_;
  out.vcpu = int(a.vcpu) - 1;
  out.addr = a.addr;
  out.is_gva = a.is_gva;
  out.access = AccessType(a.access);
  out.count = a.count;
  out.stride = a.stride;
  out.ts_ns = a.ts_ns;
  pos_ = size_t(p - base);
  return true;
}

size_t BinaryTraceReader::next_accesses(PlainAccess* out, size_t max) {
  if (!others_seen_ || vms_.empty()) return 0;
  const u8* const base = block_.data();
  const u64 vcpus = vms_[0].vcpus;
  // The reader's position in locals (stores through `out` could alias the
  // members), written back once.
  size_t pos = pos_;
  const size_t end = block_.size() < kMaxAccessBytes ? 0 : block_.size() - kMaxAccessBytes + 1;  // pos < end: room for any access
  const size_t most = std::min<size_t>(max, block_left_);
  u64 bits = prev_bits_;
  size_t n = 0;
  while (n < most && pos < end && base[pos] == u8(EventType::Access)) {
    const u8* p = base + pos + 1;
    u64 b;
    AccessFields a;
    if (!decode_access_fields(p, known_bits_, b, a) || a.vcpu == 0 || a.vcpu > vcpus || a.count == 0) break;
    // validate_access()'s checks, as conditions: an event that fails one is left to next().
    // wraps as validate_access() says, without its division: (count-1) > (max-addr)/stride
    // exactly when (count-1)*stride > max-addr.
    if (a.count == 1) [[likely]] {
      // One access: its address alone, without a branch on its kind.
      const bool gva_ok = canonical(a.addr), gpa_ok = a.addr < TraceReader::kMaxGpa;
      if (!(a.is_gva ? gva_ok : gpa_ok)) break;
    } else {
      u64 span;
      const bool wraps = __builtin_mul_overflow(a.count - 1, a.stride, &span) || span > ~u64{0} - a.addr;
      const u64 last = a.addr + (a.count - 1) * a.stride;
      if (wraps || (a.is_gva ? !canonical(a.addr) || !canonical(last) || (a.addr >> 63) != (last >> 63)
                             : a.addr >= TraceReader::kMaxGpa || last >= TraceReader::kMaxGpa))
        break;
    }
    out[n++] = PlainAccess{a.addr, a.count, a.stride, u32(a.vcpu - 1), a.is_gva != 0, AccessType(a.access)};
    pos = size_t(p - base);
    bits = b;
  }
  if (n) {
    pos_ = pos;
    index_ += n;
    block_left_ -= u32(n);
    prev_bits_ = bits;
    // The Event of the next next() is not the one decoded into last: decode() resets it.
    last_out_ = nullptr;
  }
  return n;
}

void BinaryTraceReader::decode(Event& out) {
  const u8* p = block_.data();
  size_t n = block_.size();
  size_t pos = pos_;  // a local, not the member: the compiler keeps it in a register
  // LEB128. Inlined: away from the block's end a number (at most 10 bytes)
  // needs no bounds check per byte.
  auto leb = [&](const char* field) __attribute__((always_inline)) -> u64 {
    const bool far_from_end = pos + 10 <= n;
    u64 v = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (!far_from_end && pos >= n) fail_cold(field, "corrupt binary trace: event runs past the end of its block");
      u64 b = p[pos++];
      if (shift == 63 && b > 1) fail_cold(field, "corrupt binary trace: number beyond 64 bits");
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  if (pos >= n) fail_cold("type", "corrupt binary trace: event runs past the end of its block");
  u8 type = p[pos++];
  if (type >= known_types_) fail_number("type", "corrupt binary trace: unknown event type ", type, false);
  u64 bits = leb("type");
  if (bits & ~known_bits_) fail_number("type", "corrupt binary trace: unknown field bits ", bits, true);
  // Resetting only what the previous event set keeps decoding cheap; a
  // different or modified Event gets a full reset. An access (most events)
  // writes all its fields below, so only the others need resetting.
  const bool access = type == u8(EventType::Access) && !(bits & ~kAccessFields);
  if (&out != last_out_ || out.line != last_line_) {
    out = defaults();
    prev_bits_ = 0;
  } else {
    const Event& d = defaults();
    for (u64 stale = prev_bits_ & ~bits & (access ? ~kAccessFields : ~u64{0}); stale; stale &= stale - 1) {
      u32 f = u32(std::countr_zero(stale));
      if (f == kName) out.name.clear();
      else if (f == kTdx) out.tdx = d.tdx;
      else set(out, f, get(d, f));
    }
  }
  last_out_ = &out;
  prev_bits_ = bits;
  out.type = EventType(type);
  out.line = index_;
  if (access) {
    // The fields in bit order, each present one decoded, the others default.
    auto field = [&](u32 f, u64 dflt, u64 max) __attribute__((always_inline)) {
      if (!(bits >> f & 1)) return dflt;
      u64 v = leb(kFieldNames[f]);
      if (v > max) fail_number(kFieldNames[f], "value ", v, false, " is out of range");
      return v;
    };
    out.vcpu = int(field(kVcpu, 0, 1u << 16)) - 1;
    out.addr = field(kAddr, 0, ~u64{0});
    out.is_gva = field(kIsGva, 0, 1);
    out.access = AccessType(field(kAccess, 0, 2));
    out.count = field(kCount, 1, ~u64{0});
    out.stride = field(kStride, 0, ~u64{0});
    out.ts_ns = field(kTsNs, 0, ~u64{0});
    last_line_ = out.line;
    pos_ = pos;
    return;
  }
  for (u64 present = bits & kNumericFields; present; present &= present - 1) {
    u32 f = u32(std::countr_zero(present));
    u64 v = leb(kFieldNames[f]);
    if (!set(out, f, v)) fail_number(kFieldNames[f], "value ", v, false, " is out of range");
  }
  if (bits >> kName & 1) {
    u64 len = leb("name");
    if (len > n - pos) fail("name", "corrupt binary trace: string runs past the end of its block");
    out.name.assign(reinterpret_cast<const char*>(p + pos), len);
    pos += len;
  }
  if (bits >> kTdx & 1) {
    u64 tdx_bits = leb("td");
    if (tdx_bits == 0 || tdx_bits >> kTdxFieldCount) fail("td", "corrupt binary trace: bad TDX field bits " + hexs(tdx_bits));
    out.tdx = TdxEventFields{};
    for (; tdx_bits; tdx_bits &= tdx_bits - 1) {
      u32 f = u32(std::countr_zero(tdx_bits));
      u64 v = leb("td");
      if (!set_tdx(out.tdx, f, v)) fail("td", "TDX field " + std::to_string(f) + ": value " + std::to_string(v) + " is out of range");
    }
  }
  last_line_ = out.line;
  pos_ = pos;
}

void BinaryTraceReader::validate_access(const Event& e) const {
  if (e.count == 0) fail("count", "must be at least 1");
  bool wraps = e.count > 1 && e.stride && e.count - 1 > (~u64{0} - e.addr) / e.stride;
  u64 last = e.addr + (e.count - 1) * e.stride;
  if (e.is_gva) {
    if (!canonical(e.addr) || wraps || !canonical(last) || (e.addr >> 63) != (last >> 63))
      fail("gva", hexs(e.addr) + " (or the last access) is not canonical");
  } else if (e.addr >= TraceReader::kMaxGpa || wraps || last >= TraceReader::kMaxGpa) {
    fail("gpa", hexs(e.addr) + " (or the last access) is beyond the 52-bit guest-physical address space");
  }
}

// The checks of the JSON Lines reader that keep the replayer safe.
void BinaryTraceReader::validate(const Event& e) {
  // Most events are accesses, and decode leaves their slot and TDX fields alone.
  if (e.type == EventType::Access && e.vm == 0 && !vms_.empty() && u32(e.vcpu) < vms_[0].vcpus) [[likely]] {
    others_seen_ = true;
    return validate_access(e);
  }
  constexpr u64 kMaxGpa = TraceReader::kMaxGpa;
  auto aligned_gpa = [&](const char* f, u64 v, u64 align) {
    if (v >= kMaxGpa) fail(f, hexs(v) + " is beyond the 52-bit guest-physical address space");
    if (v & (align - 1)) fail(f, hexs(v) + " is not aligned to " + hexs(align));
  };
  auto range = [&](const char* f, u64 base, u64 size, u64 align) {
    if (size == 0 || (size & (align - 1))) fail(f, hexs(size) + " is 0 or not a multiple of " + hexs(align));
    if (size > kMaxGpa - base) fail(f, "end is beyond the 52-bit guest-physical address space");
  };
  if (e.type == EventType::VmCreate) {
    // Every VM is created at the start of the trace, numbered in order (traces/reader.cc).
    if (others_seen_) fail("", "vm_create after other events: create every VM at the start of the trace");
    if (e.vm != vms_.size())
      fail("vm", e.vm < vms_.size() ? "second vm_create for VM " + std::to_string(e.vm)
                                     : "VM " + std::to_string(e.vm) + " created before VM " + std::to_string(vms_.size()));
    if (std::string r = field_range_error(e.type, "vcpus", e.vcpus); !r.empty()) fail("vcpus", r);
    if (e.tdx_vm && e.tdx.gpaw == 52 && e.tdx.ept_levels != 5) fail("levels", "GPAW 52 needs a 5-level Secure EPT");
    vms_.push_back({e.vcpus, e.tdx_vm});
    return;
  }
  if (vms_.empty()) fail("", std::string(event_type_name(e.type)) + " before vm_create: vm_create must be the first event");
  others_seen_ = true;
  if (e.vm && !vm_scoped(e.type)) fail("vm", std::string(event_type_name(e.type)) + " is host-wide and takes no VM");
  if (e.vm >= vms_.size()) fail("vm", "VM " + std::to_string(e.vm) + " was not created");
  const u32 vm_vcpus = vms_[e.vm].vcpus;
  const bool vm_is_td = vms_[e.vm].tdx;
  const EventDesc& desc = event_desc(e.type);
  const bool per_vcpu = names_vm_vcpu(e.type);
  const bool td_vm_event = desc.needs_td_vm;
  if (td_vm_event && !vm_is_td) fail("type", "needs a TD VM: vm_create must say \"vm_type\":\"tdx\"");
  if ((per_vcpu || e.vcpu >= 0) && (e.vcpu < 0 || u32(e.vcpu) >= vm_vcpus))
    fail("vcpu", std::to_string(e.vcpu) + " is out of range (0.." + std::to_string(vm_vcpus - 1) + ")");
  if (e.slot.id >= TraceReader::kMaxSlots) fail("slot", field_range_error(EventType::MemslotAdd, "slot", e.slot.id));
  switch (e.type) {
    case EventType::MemslotAdd:
      aligned_gpa("gpa", e.slot.gpa, kPageSize);
      range("size", e.slot.gpa, e.slot.size, kPageSize);
      if ((e.slot.userspace_addr & (kPageSize - 1)) || e.slot.userspace_addr >= (u64{1} << 56) ||
          e.slot.size > (u64{1} << 56) - e.slot.userspace_addr)
        fail("hva", hexs(e.slot.userspace_addr) + " is not 4 KiB aligned or the range is beyond 2^56");
      break;
    case EventType::MemslotMove: aligned_gpa("gpa", e.slot.gpa, kPageSize); break;
    case EventType::DirtyLog:
      if (e.first_page % 64) fail("first_page", "must be a multiple of 64");
      if (e.num_pages > ~u64{0} - e.first_page) fail("num_pages", "first_page + num_pages overflows");
      break;
    case EventType::Access: validate_access(e); break;
    case EventType::GuestMap: {
      if (e.page_level < PG_LEVEL_4K || e.page_level > PG_LEVEL_1G) fail("page", "must be 4k, 2m or 1g");
      u64 page = level_size(e.page_level);
      aligned_gpa("gpa", e.gpa, page);
      aligned_gpa("cr3", e.cr3, kPageSize);
      range("size", e.gpa, e.size, page);
      u64 last = e.gva + (e.size - 1);
      if ((e.gva & (page - 1)) || !canonical(e.gva) || last < e.gva || !canonical(last) ||
          (last >> 63) != (e.gva >> 63) || (e.guest_levels == 4 && (e.gva >> 47 != 0 && e.gva >> 47 != 0x1ffff)))
        fail("gva", hexs(e.gva) + " is not aligned or the range is not canonical");
      break;
    }
    case EventType::SetCr3: aligned_gpa("cr3", e.cr3, kPageSize); break;
    case EventType::Invvpid:
    case EventType::Invlpg:
    case EventType::Invpcid:
      if (!canonical(e.gva)) fail("gva", hexs(e.gva) + " is not canonical");
      break;
    case EventType::Phase:
      if (e.name.empty()) fail("name", "must not be empty");
      break;
    case EventType::GuestPtPool:
    case EventType::HostUnmap:
      aligned_gpa("gpa", e.gpa, kPageSize);
      range("size", e.gpa, e.size, kPageSize);
      break;
    case EventType::KvmDecision:
      if (e.gpa >= kMaxGpa) fail("gpa", hexs(e.gpa) + " is beyond the 52-bit guest-physical address space");
      break;
    case EventType::TdInitMemRegion:
    case EventType::SetMemoryAttributes:
    case EventType::MapGpa:
      aligned_gpa("gpa", e.gpa, kPageSize);
      range("size", e.gpa, e.size, kPageSize);
      break;
    case EventType::Accept:
      if (e.tdx.level > 1) fail("level", "ACCEPT takes TDX level 0 (4K) or 1 (2M)");
      aligned_gpa("gpa", e.gpa, u64{1} << (12 + 9 * e.tdx.level));
      break;
    default: validate_tdx(e); break;
  }
}

// The raw TDX module events: TDs exist before use, leaves and vCPUs are known.
void BinaryTraceReader::validate_tdx(const Event& e) {
  const TdxEventFields& t = e.tdx;
  auto td_vcpus = [&]() {
    auto it = td_vcpus_.find(t.td);
    if (it == td_vcpus_.end()) fail("td", "TD " + std::to_string(t.td) + " was not created (send td_create first)");
    return it->second;
  };
  switch (e.type) {
    case EventType::TdCreate:
      if (td_vcpus_.count(t.td)) fail("td", "TD " + std::to_string(t.td) + " exists already");
      if (t.vcpus < 1) fail("vcpus", "0 is out of range (1..256)");
      if (t.gpaw == 52 && t.ept_levels != 5) fail("levels", "GPAW 52 needs a 5-level Secure EPT");
      td_vcpus_[t.td] = t.vcpus;
      break;
    case EventType::Seamcall:
      if (!seam::leaf_name(t.leaf)) fail("leaf", "unknown SEAMCALL leaf " + std::to_string(t.leaf));
      if (t.td) td_vcpus();
      break;
    case EventType::Tdcall:
    case EventType::TdVcpu:
      if (e.type == EventType::Tdcall && !seam::tdcall_leaf_name(t.leaf))
        fail("leaf", "unknown TDCALL leaf " + std::to_string(t.leaf));
      if (t.vcpu >= td_vcpus()) fail("vcpu", std::to_string(t.vcpu) + " is out of range for TD " + std::to_string(t.td));
      break;
    default: break;
  }
  if (t.has_gpa && (t.gpa & (kPageSize - 1))) fail("gpa", hexs(t.gpa) + " is not 4 KiB aligned");
}

}  // namespace septsim::traces
