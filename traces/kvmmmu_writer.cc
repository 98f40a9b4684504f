#include "traces/kvmmmu_writer.h"

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <stdexcept>

#include "mmu/page_fault.h"

namespace septsim::traces {

namespace {

constexpr unsigned kVmmPid = 4000;  // the VMM; vCPU i's thread is kVmmPid + 1 + i

[[noreturn]] void write_failed(const std::string& path) {
  throw std::runtime_error(path + ": cannot write: " + std::strerror(errno ? errno : EIO));
}

}  // namespace

std::string pferr_flags(u64 error_code) {
  static const std::pair<u64, const char*> kFlags[] = {{mmu::PFERR_PRESENT_MASK, "P"},
                                                       {mmu::PFERR_WRITE_MASK, "W"},
                                                       {mmu::PFERR_USER_MASK, "U"},
                                                       {mmu::PFERR_RSVD_MASK, "RSVD"},
                                                       {mmu::PFERR_FETCH_MASK, "F"}};
  std::string out;
  for (const auto& [mask, name] : kFlags)
    if (error_code & mask) {
      out += (out.empty() ? "" : "|") + std::string(name);
      error_code &= ~mask;
    }
  if (error_code) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, error_code);
    out += (out.empty() ? "" : "|") + std::string(buf);
  }
  return out;
}

KvmmmuWriter::KvmmmuWriter(const std::string& path, unsigned vcpus, std::function<u64(int)> clock_ps)
    : path_(path), part_(path + ".part"), vcpus_(vcpus), clock_ps_(std::move(clock_ps)) {
  errno = 0;
  f_ = std::fopen(part_.c_str(), "w+b");
  if (!f_) write_failed(part_);
}

KvmmmuWriter::~KvmmmuWriter() {
  if (f_) std::fclose(f_);
  if (!finished_) std::remove(part_.c_str());
}

void KvmmmuWriter::line(const char* event, const char* fields) {
  char task[24];
  unsigned pid, cpu;
  if (task_ < 0) {
    std::snprintf(task, sizeof task, "septsim");
    pid = kVmmPid;
    cpu = vcpus_;
  } else {
    std::snprintf(task, sizeof task, "CPU %d/KVM", task_);
    pid = kVmmPid + 1 + unsigned(task_);
    cpu = unsigned(task_);
  }
  u64 us = clock_ps_(task_) / 1000000;
  std::fprintf(f_, "%16s-%-7u [%03u] ..... %5" PRIu64 ".%06" PRIu64 ": %s: %s\n", task, pid, cpu, us / 1000000,
               us % 1000000, event, fields);
  ++entries_;
}

void KvmmmuWriter::marker(const std::string& text) {
  int saved = task_;
  task_ = -1;
  line("tracing_mark_write", text.c_str());
  task_ = saved;
}

void KvmmmuWriter::kvm_page_fault(unsigned vcpu_id, u64 guest_rip, Gpa fault_address, u64 error_code) {
  char f[128];
  std::snprintf(f, sizeof f, "vcpu %u rip 0x%" PRIx64 " address 0x%016" PRIx64 " error_code 0x%" PRIx64, vcpu_id,
                guest_rip, fault_address.raw(), error_code);
  line("kvm_page_fault", f);
}

void KvmmmuWriter::fast_page_fault(unsigned vcpu_id, Gpa cr2_or_gpa, u64 error_code, u64 old_spte, u64 new_spte,
                                   int ret) {
  // sptep is a hashed %p in the kernel: no address to show, so zeros.
  char f[256];
  std::snprintf(f, sizeof f, "vcpu %u gva %" PRIx64 " error_code %s sptep 0000000000000000 old %#" PRIx64
                " new %" PRIx64 " spurious %d fixed %d",
                vcpu_id, cr2_or_gpa.raw(), pferr_flags(error_code).c_str(), old_spte, new_spte, ret == mmu::RET_PF_SPURIOUS,
                ret == mmu::RET_PF_FIXED);
  line("fast_page_fault", f);
}

void KvmmmuWriter::kvm_mmu_spte_requested(Gfn gfn, Pfn pfn, int goal_level) {
  char f[96];
  std::snprintf(f, sizeof f, "gfn %" PRIx64 " pfn %" PRIx64 " level %d", gfn.raw(), pfn.raw(), goal_level);
  line("kvm_mmu_spte_requested", f);
}

void KvmmmuWriter::kvm_tdp_mmu_spte_changed(int as_id, Gfn gfn, int level, u64 old_spte, u64 new_spte) {
  char f[128];
  std::snprintf(f, sizeof f, "as id %d gfn %" PRIx64 " level %d old_spte %" PRIx64 " new_spte %" PRIx64, as_id, gfn.raw(),
                level, old_spte, new_spte);
  line("kvm_tdp_mmu_spte_changed", f);
}

void KvmmmuWriter::kvm_mmu_split_huge_page(Gfn gfn, u64 spte, int level, int err) {
  char f[96];
  std::snprintf(f, sizeof f, "gfn %" PRIx64 " spte %" PRIx64 " level %d errno %d", gfn.raw(), spte, level, err);
  line("kvm_mmu_split_huge_page", f);
}

void KvmmmuWriter::finish() {
  errno = 0;
  if (std::fflush(f_) != 0 || std::ferror(f_)) write_failed(part_);
  std::FILE* out = std::fopen(path_.c_str(), "wb");
  if (!out) write_failed(path_);
  std::fprintf(out,
               "# tracer: nop\n"
               "#\n"
               "# entries-in-buffer/entries-written: %" PRIu64 "/%" PRIu64 "   #P:%u\n"
               "#\n"
               "#                                _-----=> irqs-off/BH-disabled\n"
               "#                               / _----=> need-resched\n"
               "#                              | / _---=> hardirq/softirq\n"
               "#                              || / _--=> preempt-depth\n"
               "#                              ||| / _-=> migrate-disable\n"
               "#                              |||| /     delay\n"
               "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
               "#              | |         |   |||||     |         |\n",
               entries_, entries_, vcpus_ + 1);
  std::rewind(f_);
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f_)) > 0)
    if (std::fwrite(buf, 1, n, out) != n) break;
  bool ok = !std::ferror(f_) && !std::ferror(out);
  ok = std::fclose(out) == 0 && ok;
  if (!ok) {
    std::remove(path_.c_str());
    write_failed(path_);
  }
  std::fclose(f_);
  f_ = nullptr;
  std::remove(part_.c_str());
  finished_ = true;
}

}  // namespace septsim::traces
