#include "traces/timeline.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/hex.h"
#include "seam/tdx_leaf.h"
#include "seam/tdx_status.h"

namespace septsim::traces {

namespace {

constexpr int kPhaseTid = 999999;

// Picoseconds as the format's microseconds, exactly: "12.345678".
std::string us(u64 ps) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llu.%06llu", static_cast<unsigned long long>(ps / 1000000),
                static_cast<unsigned long long>(ps % 1000000));
  return buf;
}

std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

int tid(int track) { return track < 0 ? 0 : 1 + track; }

}  // namespace

TimelineWriter::TimelineWriter(const TimelineOptions& opts, unsigned vcpus, std::function<u64(int)> clock_ps)
    : opts_(opts), vcpus_(vcpus), clock_ps_(std::move(clock_ps)) {
  // Fail before the replay, not after it.
  {
    std::ofstream probe(opts_.path + ".tmp", std::ios::binary | std::ios::trunc);
    if (!probe) throw std::runtime_error(opts_.path + ": cannot write the timeline");
  }
  std::filesystem::remove(opts_.path + ".tmp");
  phase_name_ = "warmup", in_phase_ = true;  // the first phase, as in the stats
}

void TimelineWriter::rename_phase(const std::string& name) { phase_name_ = name; }

bool TimelineWriter::keep(u64 ts_ps) {
  if (ts_ps < opts_.from_ps || ts_ps >= opts_.to_ps) return false;
  if (events_.size() >= opts_.max_events) {
    ++dropped_;
    return false;
  }
  return true;
}

void TimelineWriter::add(std::string event) { events_.push_back(std::move(event)); }

void TimelineWriter::slice(int track, const std::string& name, u64 start_ps, u64 dur_ps, std::string args_json) {
  if (!keep(start_ps)) return;
  add("{\"name\":" + json_string(name) + ",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(tid(track)) +
      ",\"ts\":" + us(start_ps) + ",\"dur\":" + us(dur_ps) + (args_json.empty() ? "" : ",\"args\":" + args_json) + "}");
}

void TimelineWriter::instant(int track, const std::string& name, u64 ts_ps, std::string args_json) {
  if (!keep(ts_ps)) return;
  add("{\"name\":" + json_string(name) + ",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":" + std::to_string(tid(track)) +
      ",\"ts\":" + us(ts_ps) + (args_json.empty() ? "" : ",\"args\":" + args_json) + "}");
}

void TimelineWriter::phase(const std::string& name, u64 ts_ps) {
  if (in_phase_)
    add("{\"name\":" + json_string(phase_name_) + ",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(kPhaseTid) +
        ",\"ts\":" + us(phase_start_) + ",\"dur\":" + us(ts_ps - phase_start_) + "}");
  add("{\"name\":" + json_string("phase " + name) + ",\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":" +
      std::to_string(kPhaseTid) + ",\"ts\":" + us(ts_ps) + "}");
  phase_name_ = name, phase_start_ = ts_ps, in_phase_ = true;
}

void TimelineWriter::kvm_page_fault(unsigned vcpu_id, u64, Gpa fault_address, u64 error_code) {
  instant(int(vcpu_id), "EPT violation", clock_ps_(int(vcpu_id)),
          "{\"gpa\":" + json_string(hex(fault_address)) + ",\"exit_qualification\":" + json_string(hex(error_code)) + "}");
}

void TimelineWriter::fast_page_fault(unsigned vcpu_id, Gpa gpa, u64, u64, u64, int ret) {
  instant(int(vcpu_id), "fast_page_fault", clock_ps_(int(vcpu_id)),
          "{\"gpa\":" + json_string(hex(gpa)) + ",\"ret\":" + std::to_string(ret) + "}");
}

void TimelineWriter::kvm_mmu_split_huge_page(Gfn gfn, u64, int level, int err) {
  instant(task_, "split huge page", clock_ps_(task_),
          "{\"gfn\":" + json_string(hex(gfn)) + ",\"level\":" + std::to_string(level) + ",\"err\":" + std::to_string(err) +
              "}");
}

void TimelineWriter::remote_tlb_flush(unsigned ipis) {
  instant(task_, "remote TLB flush", clock_ps_(task_), "{\"ipis\":" + std::to_string(ipis) + "}");
}

void TimelineWriter::cycles_slice(unsigned vcpu_id, const char* name, Cycles cycles) {
  if (!cycles_ps_) return;
  slice(int(vcpu_id), name, clock_ps_(int(vcpu_id)), cycles_ps_(cycles), "{\"cycles\":" + std::to_string(cycles) + "}");
}

void TimelineWriter::ipi_exit(unsigned target, Cycles cycles) { cycles_slice(target, "VM exit: TLB flush IPI", cycles); }

void TimelineWriter::mmu_lock_wait(bool write, Cycles wait) {
  instant(task_, write ? "mmu_lock wait (write)" : "mmu_lock wait (read)", clock_ps_(task_),
          "{\"cycles\":" + std::to_string(wait) + "}");
}

void TimelineWriter::tdx_kick(unsigned ipis) {
  instant(task_, "kick TD vCPUs", clock_ps_(task_), "{\"ipis\":" + std::to_string(ipis) + "}");
}

void TimelineWriter::exit_handled(unsigned vcpu_id, Cycles cycles) {
  cycles_slice(vcpu_id, "EPT violation handling", cycles);
}

void TimelineWriter::on_td_exit(u32 vcpu) {
  instant(task_, "TD exit", clock_ps_(task_), "{\"vcpu\":" + std::to_string(vcpu) + "}");
}

void TimelineWriter::on_call(const seam::SeamcallOutcome& o) {
  const char* leaf = o.tdcall ? seam::tdcall_leaf_name(o.leaf) : seam::leaf_name(o.leaf);
  std::string name = leaf ? leaf : (o.tdcall ? "TDCALL " : "SEAMCALL ") + std::to_string(o.leaf);
  instant(task_, name, clock_ps_(task_),
          "{\"status\":" + json_string(seam::status_string(o.status)) + ",\"level\":" + std::to_string(o.level) + "}");
}

void TimelineWriter::finish(u64 end_ps) {
  if (in_phase_) {
    add("{\"name\":" + json_string(phase_name_) + ",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(kPhaseTid) +
        ",\"ts\":" + us(phase_start_) + ",\"dur\":" + us(end_ps - phase_start_) + "}");
    in_phase_ = false;
  }
  std::string tmp = opts_.path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(opts_.path + ": cannot write the timeline");
    out << "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"source\":\"septsim replay --timeline\",\"kept_events\":"
        << events_.size() << ",\"dropped_events\":" << dropped_ << ",\"from_ps\":" << opts_.from_ps
        << ",\"to_ps\":" << (opts_.to_ps == std::numeric_limits<u64>::max() ? std::string("null") : std::to_string(opts_.to_ps))
        << "},\n\"traceEvents\":[\n";
    std::vector<std::string> meta = {"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"septsim\"}}"};
    auto thread = [&](int t, const std::string& name) {
      meta.push_back("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(t) +
                     ",\"args\":{\"name\":" + json_string(name) + "}}");
      meta.push_back("{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(t) +
                     ",\"args\":{\"sort_index\":" + std::to_string(t) + "}}");
    };
    thread(kPhaseTid, "phases");
    thread(0, "VMM / TDX module");
    for (unsigned i = 0; i < vcpus_; ++i) thread(int(1 + i), "vCPU " + std::to_string(i));
    for (size_t i = 0; i < meta.size(); ++i) out << meta[i] << (i + 1 < meta.size() || !events_.empty() ? ",\n" : "\n");
    for (size_t i = 0; i < events_.size(); ++i) out << events_[i] << (i + 1 < events_.size() ? ",\n" : "\n");
    out << "]}\n";
    if (!out.flush()) throw std::runtime_error(opts_.path + ": write failed");
  }
  std::filesystem::rename(tmp, opts_.path);
}

}  // namespace septsim::traces
