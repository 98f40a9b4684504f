#include "traces/jsonl_writer.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "seam/tdx_leaf.h"
#include "seam/tdx_status.h"
#include "traces/event_desc.h"
#include "traces/reader.h"

namespace septsim::traces {

namespace {

void hex(std::string& out, u64 v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "\"0x%llx\"", static_cast<unsigned long long>(v));
  out.append(buf, size_t(n));
}
void str(std::string& out, const std::string& s) { out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

void FieldOut::key() {
  line_ += ",\"";
  line_ += name_;
  line_ += "\":";
}
void FieldOut::dec(u64 v) { key(), line_ += std::to_string(v); }
void FieldOut::hex(u64 v) { key(), traces::hex(line_, v); }
void FieldOut::word(std::string_view w) { key(), line_ += '"', line_ += w, line_ += '"'; }
void FieldOut::text(const std::string& s) { key(), str(line_, s); }
void FieldOut::literal(std::string_view v) { key(), line_ += v; }

const char* access_op_name(AccessType a) { return a == AccessType::Write ? "w" : a == AccessType::Fetch ? "x" : "r"; }
const char* backing_name(mmu::HostBacking b) {
  return b == mmu::HostBacking::Thp2M ? "thp" : b == mmu::HostBacking::Hugetlb1G ? "hugetlb1g" : "4k";
}
const char* guest_page_name(int level) { return level == PG_LEVEL_1G ? "1g" : level == PG_LEVEL_2M ? "2m" : "4k"; }
const char* dirty_op_name(DirtyLogOp op) {
  switch (op) {
    case DirtyLogOp::Enable: return "enable";
    case DirtyLogOp::Get: return "get";
    case DirtyLogOp::Clear: return "clear";
    default: return "disable";
  }
}
const char* inv_kind_name(EventType t, InvKind k) {
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

void write_slot_flags(FieldOut& o, const Event& e) {
  const u32 f = e.slot.flags;
  if (!f) return;
  std::string list = "[";
  if (f & mmu::KVM_MEM_LOG_DIRTY_PAGES) list += "\"dirty_log\"";
  if (f & mmu::KVM_MEM_READONLY) list += (f & mmu::KVM_MEM_LOG_DIRTY_PAGES) ? ",\"readonly\"" : "\"readonly\"";
  o.literal(list + "]");
}

void write_leaf(FieldOut& o, const Event& e) {
  const char* leaf = e.type == EventType::Tdcall ? seam::tdcall_leaf_name(e.tdx.leaf) : seam::leaf_name(e.tdx.leaf);
  o.text(leaf ? leaf : "?");
}

// An "expect" the reader parses back to the same status and exactness: the
// name when there is one and the low 32 bits are clear ("NAME|0" when it is
// compared exactly: hex with clear low bits reads back as not exact), else
// 64-bit hex.
void write_expect(FieldOut& o, const Event& e) {
  const TdxEventFields& t = e.tdx;
  if (!t.has_expect) return;
  const char* name = seam::status_name(t.expect);
  if (name && (t.expect & 0xffffffffull) == 0) return o.word(t.expect_exact ? std::string(name) + "|0" : name);
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"0x%016llx\"", static_cast<unsigned long long>(t.expect));
  o.literal(buf);
}

// "expect_out":{"rcx":"0x...",...}, the registers given.
void write_expect_out(FieldOut& o, const Event& e) {
  const TdxEventFields& t = e.tdx;
  if (!t.expect_out_mask) return;
  std::string regs = "{";
  for (unsigned i = 0, n = 0; i < TdxEventFields::kNumRegs; ++i)
    if (t.expect_out_mask >> i & 1) {
      if (n++) regs += ',';
      str(regs, TdxEventFields::kRegNames[i]), regs += ':', hex(regs, t.expect_out[i]);
    }
  o.literal(regs + "}");
}

// The type, "vm" when not 0, then each field of the event's description
// (event_desc.h) as its writer gives it.
std::string event_to_json(const Event& e) {
  const EventDesc& d = event_desc(e.type);
  std::string o = "{\"type\":\"";
  o += d.name;
  o += '"';
  if (e.vm) FieldOut(o, "vm").dec(e.vm);
  for (const FieldDesc& f : d.fields) {
    FieldOut out(o, f.name);
    f.write(out, e);
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
