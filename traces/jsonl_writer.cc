#include "traces/jsonl_writer.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "seam/tdx_leaf.h"
#include "seam/tdx_status.h"
#include "traces/reader.h"

namespace septsim::traces {

namespace {

void hex(std::string& out, u64 v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "\"0x%llx\"", static_cast<unsigned long long>(v));
  out.append(buf, size_t(n));
}
void dec(std::string& out, u64 v) { out += std::to_string(v); }
void key(std::string& out, const char* k) {
  out += ",\"";
  out += k;
  out += "\":";
}
void str(std::string& out, const std::string& s) { out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

const char* access_name(AccessType a) { return a == AccessType::Write ? "w" : a == AccessType::Fetch ? "x" : "r"; }
const char* backing_name(mmu::HostBacking b) {
  return b == mmu::HostBacking::Thp2M ? "thp" : b == mmu::HostBacking::Hugetlb1G ? "hugetlb1g" : "4k";
}
const char* page_name(int level) { return level == PG_LEVEL_1G ? "1g" : level == PG_LEVEL_2M ? "2m" : "4k"; }
const char* dirty_name(DirtyLogOp op) {
  switch (op) {
    case DirtyLogOp::Enable: return "enable";
    case DirtyLogOp::Get: return "get";
    case DirtyLogOp::Clear: return "clear";
    default: return "disable";
  }
}
const char* inv_name(EventType t, InvKind k) {
  switch (k) {
    case InvKind::Address: return "address";
    case InvKind::Single: return "single";
    case InvKind::All: return "all";
    default: return t == EventType::Invpcid ? "all_retain_globals" : "single_retain_globals";
  }
}
const char* decision_name(DecisionKind k) {
  switch (k) {
    case DecisionKind::Map: return "map";
    case DecisionKind::Prefetch: return "prefetch";
    case DecisionKind::Fast: return "fast";
    case DecisionKind::Zap: return "zap";
    case DecisionKind::ZapAllFast: return "zap_all_fast";
    default: return "split";
  }
}

// An "expect" the reader parses back to the same status and exactness: the
// name when there is one and the low 32 bits are clear, else 64-bit hex.
void expect(std::string& o, const TdxEventFields& t) {
  if (!t.has_expect) return;
  key(o, "expect");
  const char* name = t.expect_exact ? nullptr : seam::status_name(t.expect);
  if (name && (t.expect & 0xffffffffull) == 0) {
    o += '"', o += name, o += '"';
    return;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"0x%016llx\"", static_cast<unsigned long long>(t.expect));
  o += buf;
}

// "expect_out":{"rcx":"0x...",...}, the registers given.
void expect_out(std::string& o, const TdxEventFields& t) {
  if (!t.expect_out_mask) return;
  key(o, "expect_out");
  o += '{';
  for (unsigned i = 0, n = 0; i < TdxEventFields::kNumRegs; ++i)
    if (t.expect_out_mask >> i & 1) {
      if (n++) o += ',';
      str(o, TdxEventFields::kRegNames[i]), o += ':', hex(o, t.expect_out[i]);
    }
  o += '}';
}

// seamcall / tdcall: leaf, TD (always for a TDCALL; RDX defaults to TD 0's
// TDR anyway, so a SEAMCALL leaves td 0 out), registers given, expect.
void seamcall(std::string& o, const Event& e) {
  const TdxEventFields& t = e.tdx;
  const bool tdcall = e.type == EventType::Tdcall;
  const char* leaf = tdcall ? seam::tdcall_leaf_name(t.leaf) : seam::leaf_name(t.leaf);
  key(o, "leaf"), str(o, leaf ? leaf : "?");
  if (tdcall || t.td || t.vcpu) key(o, "td"), dec(o, t.td);
  if (tdcall || t.vcpu) key(o, "vcpu"), dec(o, t.vcpu);
  if (t.has_gpa) key(o, "gpa"), hex(o, t.gpa);
  if (t.level) key(o, "level"), dec(o, u64(t.level));
  if (!tdcall) {
    if (t.version) key(o, "version"), dec(o, t.version);
    if (t.lp) key(o, "lp"), dec(o, t.lp);
  }
  if (t.concurrent) key(o, "concurrent"), o += "true";
  if (t.interrupt) key(o, "interrupt"), o += "true";
  for (unsigned i = 0; i < TdxEventFields::kNumRegs; ++i)
    if (t.reg_mask >> i & 1) key(o, TdxEventFields::kRegNames[i]), hex(o, t.regs[i]);
  expect(o, t);
  expect_out(o, t);
}

void nested_fields(std::string& o, const Event& e) {
  key(o, "vcpu"), dec(o, u64(e.vcpu));
  if (e.type == EventType::L1Invept) key(o, "kind"), o += e.inv_kind == InvKind::All ? "\"all\"" : "\"single\"";
  if (e.type != EventType::L1Invept || e.inv_kind != InvKind::All) key(o, "eptp"), hex(o, e.eptp);
  if (e.type == EventType::L1EptWrite) key(o, "gpa"), hex(o, e.gpa);
}

}  // namespace

std::string event_to_json(const Event& e) {
  std::string o = "{\"type\":\"";
  o += event_type_name(e.type);
  o += '"';
  if (e.vm) key(o, "vm"), dec(o, e.vm);
  switch (e.type) {
    case EventType::VmCreate:
      key(o, "vcpus"), dec(o, e.vcpus);
      if (e.native_vm) key(o, "vm_type"), o += "\"native\"";
      if (e.tdx_vm) {
        key(o, "vm_type"), o += "\"tdx\"";
        key(o, "gpaw"), dec(o, u64(e.tdx.gpaw));
        key(o, "levels"), dec(o, u64(e.tdx.ept_levels));
        if (e.tdx.dynamic_pamt) key(o, "dynamic_pamt"), o += "true";
      }
      break;
    case EventType::MemslotAdd:
      key(o, "slot"), dec(o, e.slot.id);
      key(o, "gpa"), hex(o, e.slot.gpa);
      key(o, "size"), hex(o, e.slot.size);
      key(o, "backing"), o += '"', o += backing_name(e.slot.backing), o += '"';
      if (e.slot.userspace_addr) key(o, "hva"), hex(o, e.slot.userspace_addr);
      if (e.slot.flags) {
        key(o, "flags");
        o += '[';
        if (e.slot.flags & mmu::KVM_MEM_LOG_DIRTY_PAGES) o += "\"dirty_log\"";
        if (e.slot.flags & mmu::KVM_MEM_READONLY)
          o += (e.slot.flags & mmu::KVM_MEM_LOG_DIRTY_PAGES) ? ",\"readonly\"" : "\"readonly\"";
        o += ']';
      }
      break;
    case EventType::MemslotDelete: key(o, "slot"), dec(o, e.slot.id); break;
    case EventType::MemslotMove: key(o, "slot"), dec(o, e.slot.id), key(o, "gpa"), hex(o, e.slot.gpa); break;
    case EventType::DirtyLog:
      key(o, "slot"), dec(o, e.slot.id);
      key(o, "op"), o += '"', o += dirty_name(e.dirty_op), o += '"';
      if (e.dirty_op == DirtyLogOp::Clear && (e.first_page || e.num_pages))
        key(o, "first_page"), dec(o, e.first_page), key(o, "num_pages"), dec(o, e.num_pages);
      break;
    case EventType::NestedVmentry:
    case EventType::L1EptWrite:
    case EventType::L1Invept:
      nested_fields(o, e);
      break;
    case EventType::Access:
    case EventType::L2Access:
      key(o, "vcpu"), dec(o, u64(e.vcpu));
      key(o, e.is_gva ? "gva" : "gpa"), hex(o, e.addr);
      key(o, "op"), o += '"', o += access_name(e.access), o += '"';
      if (e.count != 1) key(o, "count"), dec(o, e.count);
      if (e.stride) key(o, "stride"), hex(o, e.stride);
      if (e.ts_ns) key(o, "ts_ns"), dec(o, e.ts_ns);
      break;
    case EventType::GuestMap:
      key(o, "cr3"), hex(o, e.cr3);
      key(o, "gva"), hex(o, e.gva);
      key(o, "gpa"), hex(o, e.gpa);
      key(o, "size"), hex(o, e.size);
      key(o, "page"), o += '"', o += page_name(e.page_level), o += '"';
      if (e.guest_levels != 4) key(o, "levels"), dec(o, u64(e.guest_levels));
      if (!e.writable) key(o, "writable"), o += "false";
      if (!e.executable) key(o, "executable"), o += "false";
      break;
    case EventType::SetCr3:
      key(o, "vcpu"), dec(o, u64(e.vcpu));
      key(o, "cr3"), hex(o, e.cr3);
      if (e.pcid) key(o, "pcid"), dec(o, e.pcid);
      if (e.guest_levels != 4) key(o, "levels"), dec(o, u64(e.guest_levels));
      break;
    case EventType::Invept:
    case EventType::Invvpid:
    case EventType::Invlpg:
    case EventType::Invpcid:
      key(o, "vcpu"), dec(o, u64(e.vcpu));
      if (e.type != EventType::Invlpg) key(o, "kind"), o += '"', o += inv_name(e.type, e.inv_kind), o += '"';
      if (e.type == EventType::Invpcid && (e.inv_kind == InvKind::Address || e.inv_kind == InvKind::Single))
        key(o, "pcid"), dec(o, e.pcid);
      if (e.type == EventType::Invlpg || (e.type != EventType::Invept && e.inv_kind == InvKind::Address))
        key(o, "gva"), hex(o, e.gva);
      break;
    case EventType::Phase: key(o, "name"), str(o, e.name); break;
    case EventType::GuestPtPool: key(o, "gpa"), hex(o, e.gpa), key(o, "size"), hex(o, e.size); break;
    case EventType::Marker: key(o, "text"), str(o, e.name); break;
    case EventType::KvmDecision:
      key(o, "kind"), o += '"', o += decision_name(e.decision), o += '"';
      if (e.vcpu >= 0) key(o, "vcpu"), dec(o, u64(e.vcpu));
      if (e.gpa) key(o, "gpa"), hex(o, e.gpa);
      if (e.page_level) key(o, "level"), dec(o, u64(e.page_level));
      if (e.guest_level) key(o, "guest_level"), dec(o, u64(e.guest_level));
      if (e.ts_ns) key(o, "ts_ns"), dec(o, e.ts_ns);
      break;
    case EventType::HostUnmap: key(o, "gpa"), hex(o, e.gpa), key(o, "size"), hex(o, e.size); break;
    case EventType::TdInitMemRegion:
      key(o, "gpa"), hex(o, e.gpa), key(o, "size"), hex(o, e.size);
      if (e.measure) key(o, "measure"), o += "true";
      if (e.tag) key(o, "tag"), hex(o, e.tag);
      break;
    case EventType::TdTeardown:
      if (e.terminate) key(o, "terminate"), o += "true";
      break;
    case EventType::TdFinalize:
    case EventType::NxRecoveryTick: break;
    case EventType::Accept:
      key(o, "vcpu"), dec(o, u64(e.vcpu)), key(o, "gpa"), hex(o, e.gpa), key(o, "level"), dec(o, u64(e.tdx.level));
      if (e.tdx.interrupt) key(o, "interrupt"), o += "true";
      break;
    case EventType::SetMemoryAttributes:
      key(o, "gpa"), hex(o, e.gpa), key(o, "size"), hex(o, e.size), key(o, "private");
      o += e.make_private ? "true" : "false";
      break;
    case EventType::MapGpa:
      key(o, "vcpu"), dec(o, u64(e.vcpu)), key(o, "gpa"), hex(o, e.gpa), key(o, "size"), hex(o, e.size);
      break;
    case EventType::TdCreate:
      key(o, "td"), dec(o, e.tdx.td), key(o, "vcpus"), dec(o, e.tdx.vcpus);
      key(o, "gpaw"), dec(o, u64(e.tdx.gpaw)), key(o, "levels"), dec(o, u64(e.tdx.ept_levels));
      if (e.tdx.dynamic_pamt) key(o, "dynamic_pamt"), o += "true";
      if (e.tdx.create_only) key(o, "create_only"), o += "true";
      break;
    case EventType::Seamcall:
    case EventType::Tdcall: seamcall(o, e); break;
    case EventType::TdVcpu:
      key(o, "td"), dec(o, e.tdx.td), key(o, "vcpu"), dec(o, e.tdx.vcpu);
      key(o, "op"), o += e.tdx.enter ? "\"enter\"" : "\"exit\"";
      if (e.tdx.lp) key(o, "lp"), dec(o, e.tdx.lp);
      if (e.tdx.concurrent) key(o, "concurrent"), o += "true";
      if (e.tdx.has_gpa) key(o, "gpa"), hex(o, e.tdx.gpa);
      if (e.tdx.rip) key(o, "rip"), hex(o, e.tdx.rip);
      expect(o, e.tdx);
      expect_out(o, e.tdx);
      break;
  }
  o += '}';
  return o;
}

JsonlWriter::JsonlWriter(const std::string& path, const std::string& description) : path_(path) {
  errno = 0;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw std::runtime_error(path + ": cannot write: " + std::strerror(errno ? errno : EIO));
  std::string h = "{\"format\":\"septsim-trace\",\"version\":1";
  if (!description.empty()) h += ",\"description\":", str(h, description);
  h += "}\n";
  std::fwrite(h.data(), 1, h.size(), f_);
}

JsonlWriter::~JsonlWriter() {
  if (f_) std::fclose(f_);
}

void JsonlWriter::put(const Event& e) {
  line_ = event_to_json(e);
  line_ += '\n';
  std::fwrite(line_.data(), 1, line_.size(), f_);
}

void JsonlWriter::finish() {
  if (!f_) return;
  bool bad = std::ferror(f_) != 0;
  bad |= std::fclose(f_) != 0;
  f_ = nullptr;
  if (bad) throw std::runtime_error(path_ + ": write failed");
}

}  // namespace septsim::traces
