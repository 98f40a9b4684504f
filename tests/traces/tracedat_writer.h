// A small writer of trace-cmd's trace.dat, version 6 (trace-cmd.dat.v6(5)),
// for tests on a machine that cannot record one (no tracefs, no /dev/kvm):
// turns the kernel's text lines back into ring-buffer records. The ring-buffer
// page and event header follow the kernel's own descriptions
// (kernel/trace/ring_buffer.c: ring_buffer_print_page_header,
// ring_buffer_print_entry_header); the event fields are the tracepoints'
// TP_STRUCT__entry (arch/x86/kvm/mmu/mmutrace.h, arch/x86/kvm/trace.h,
// include/trace/events/kvm.h, kernel/trace/trace_entries.h for ftrace's
// print). Print formats are the kernel's where libtraceevent can evaluate
// them without plugins, simpler ones elsewhere (the importer rebuilds what it
// reads from the fields, not from the print format).
#pragma once
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "traces/ftrace_import.h"

namespace septsim::test {

class TraceDatWriter {
 public:
  static constexpr unsigned kPage = 4096;

  explicit TraceDatWriter(unsigned cpus) : cpus_(cpus), pages_(cpus), last_ts_(cpus, 0), used_(cpus, 0) {
    add_formats();
  }

  // Adds the event of one text line; false for an event this writer has no format for.
  bool add_line(const traces::FtraceRecord& r) {
    std::string name(r.event);
    auto it = formats_.find(name);
    if (it == formats_.end()) return false;
    const Format& f = it->second;
    std::vector<u8> d(8, 0);
    put(d, 0, 2, u64(f.id));
    put(d, 4, 4, r.pid);
    std::string body(r.body);
    unsigned long long a = 0, b = 0, c = 0, e = 0;
    unsigned u = 0, v = 0;
    auto field = [&](unsigned off, unsigned size, u64 x) {
      if (d.size() < off + size) d.resize(off + size, 0);
      put(d, off, size, x);
    };
    const char* s = body.c_str();
    if (name == "tracing_mark_write") {
      field(8, 8, 0);  // ip
      std::string buf = body + "\n";
      d.insert(d.end(), buf.begin(), buf.end());
      d.push_back(0);
    } else if (name == "kvm_mmu_pagetable_walk") {
      if (std::sscanf(s, "addr %llx pferr %x", &a, &u) != 2) return bad(r);
      field(8, 8, a), field(16, 4, u);
    } else if (name == "kvm_mmu_paging_element") {
      if (std::sscanf(s, "pte %llx level %u", &a, &u) != 2) return bad(r);
      field(8, 8, a), field(16, 4, u);
    } else if (name == "kvm_mmu_get_page" || name == "kvm_mmu_prepare_zap_page") {
      if (std::sscanf(s, "sp gen %u gfn %llx l%u", &u, &a, &v) != 3) return bad(r);
      field(8, 1, u), field(16, 8, a), field(24, 4, v), field(28, 4, 0), field(32, 1, 0);
      if (name == "kvm_mmu_get_page") field(33, 1, 1);
    } else if (name == "kvm_mmu_spte_requested") {
      if (std::sscanf(s, "gfn %llx pfn %llx level %u", &a, &b, &u) != 3) return bad(r);
      field(8, 8, a), field(16, 8, b), field(24, 1, u);
    } else if (name == "kvm_mmu_set_spte") {
      if (std::sscanf(s, "gfn %llx spte %llx %*s level %u at %llx", &a, &b, &u, &c) != 4) return bad(r);
      field(8, 8, a), field(16, 8, b), field(24, 8, c), field(32, 1, u), field(33, 1, 1), field(34, 1, 1), field(35, 1, 1);
    } else if (name == "kvm_mmu_zap_all_fast") {
      if (std::sscanf(s, "kvm-mmu-valid-gen %u used_pages %u", &u, &v) != 2) return bad(r);
      field(8, 1, u), field(12, 4, v);
    } else if (name == "kvm_unmap_hva_range") {
      if (std::sscanf(s, "mmu notifier unmap range: %llx -- %llx", &a, &b) != 2) return bad(r);
      field(8, 8, a), field(16, 8, b);
    } else if (name == "kvm_page_fault") {
      if (std::sscanf(s, "vcpu %u rip %llx address %llx error_code %llx", &u, &a, &b, &c) != 4) return bad(r);
      field(8, 4, u), field(16, 8, a), field(24, 8, b), field(32, 8, c);
    } else if (name == "kvm_tdp_mmu_spte_changed") {
      if (std::sscanf(s, "as id %u gfn %llx level %u old_spte %llx new_spte %llx", &v, &a, &u, &b, &e) != 5)
        return bad(r);
      field(8, 4, v), field(16, 8, a), field(24, 8, b), field(32, 8, e), field(40, 4, u);
    }
    comms_[r.pid] = std::string(r.task);
    add_record(r.cpu, r.ts_ns, d);
    return true;
  }

  void write(const std::string& path) {
    std::string o;
    o += std::string("\x17\x08\x44tracing6", 11);
    o += '\0';
    o += char(0);  // little endian
    o += char(8);  // sizeof(long)
    le(o, 4, kPage);
    section(o, "header_page", 8,
            "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
            "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
            "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
            "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n");
    section(o, "header_event", 8,
            "# compressed entry header\n"
            "\ttype_len    :    5 bits\n"
            "\ttime_delta  :   27 bits\n"
            "\tarray       :   32 bits\n\n"
            "\tpadding     : type == 29\n"
            "\ttime_extend : type == 30\n"
            "\ttime_stamp : type == 31\n"
            "\tdata max type_len  == 28\n");
    // ftrace's own events, then the systems with theirs.
    std::map<std::string, std::vector<const Format*>> systems;
    for (const auto& [n, f] : formats_) systems[f.system].push_back(&f);
    auto texts = [&](const std::vector<const Format*>& fs) {
      le(o, 4, fs.size());
      for (const Format* f : fs) {
        le(o, 8, f->text.size());
        o += f->text;
      }
    };
    texts(systems["ftrace"]);
    systems.erase("ftrace");
    le(o, 4, systems.size());
    for (const auto& [sys, fs] : systems) {
      o += sys;
      o += '\0';
      texts(fs);
    }
    le(o, 4, 0);  // kallsyms
    le(o, 4, 0);  // printk formats
    std::string cmdlines;
    for (const auto& [pid, comm] : comms_) cmdlines += std::to_string(pid) + " " + comm + "\n";
    le(o, 8, cmdlines.size());
    o += cmdlines;
    le(o, 4, cpus_);
    o += std::string("flyrecord", 9);
    o += '\0';
    size_t table = o.size();
    o.append(16 * cpus_, '\0');
    for (unsigned c = 0; c < cpus_; ++c) {
      finish_page(c);
      while (o.size() % kPage) o += '\0';
      u64 off = o.size(), size = 0;
      for (const auto& p : pages_[c]) o.append(p.begin(), p.end()), size += p.size();
      for (int i = 0; i < 8; ++i) o[table + 16 * c + i] = char(off >> (8 * i)), o[table + 16 * c + 8 + i] = char(size >> (8 * i));
    }
    std::ofstream(path, std::ios::binary).write(o.data(), std::streamsize(o.size()));
  }

 private:
  struct Format {
    std::string system;
    int id;
    std::string text;
  };

  static bool bad(const traces::FtraceRecord& r) {
    throw std::runtime_error("tracedat_writer: cannot parse " + std::string(r.event) + ": " + std::string(r.body));
  }
  static void put(std::vector<u8>& d, unsigned off, unsigned size, u64 v) {
    for (unsigned i = 0; i < size; ++i) d[off + i] = u8(v >> (8 * i));
  }
  static void le(std::string& o, unsigned size, u64 v) {
    for (unsigned i = 0; i < size; ++i) o += char(v >> (8 * i));
  }
  static void section(std::string& o, const char* name, unsigned size_bytes, const std::string& text) {
    o += name;
    o += '\0';
    le(o, size_bytes, text.size());
    o += text;
  }

  void add_format(const std::string& system, const std::string& name, const std::string& fields, const std::string& fmt) {
    int id = next_id_++;
    std::string t = "name: " + (system == "ftrace" ? std::string("print") : name) + "\nID: " + std::to_string(id) +
                    "\nformat:\n"
                    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
                    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
                    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
                    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n" +
                    fields + "\nprint fmt: " + fmt + "\n";
    formats_[name] = Format{system, id, t};
  }

  void add_formats() {
    auto f = [](const char* decl, unsigned off, unsigned size, int sgn) {
      return "\tfield:" + std::string(decl) + ";\toffset:" + std::to_string(off) + ";\tsize:" + std::to_string(size) +
             ";\tsigned:" + std::to_string(sgn) + ";\n";
    };
    add_format("ftrace", "tracing_mark_write", f("unsigned long ip", 8, 8, 0) + f("char buf[]", 16, 0, 1),
               "\"%ps: %s\", (void *)REC->ip, REC->buf");
    add_format("kvmmmu", "kvm_mmu_pagetable_walk", f("__u64 addr", 8, 8, 0) + f("__u32 pferr", 16, 4, 0),
               "\"addr %llx pferr %x %s\", REC->addr, REC->pferr, __print_flags(REC->pferr, \"|\", { (1U << 0), \"P\" }, "
               "{ (1U << 1), \"W\" }, { (1U << 2), \"U\" }, { (1U << 3), \"RSVD\" }, { (1U << 4), \"F\" })");
    add_format("kvmmmu", "kvm_mmu_paging_element", f("__u64 pte", 8, 8, 0) + f("__u32 level", 16, 4, 0),
               "\"pte %llx level %u\", REC->pte, REC->level");
    std::string page = f("__u8 mmu_valid_gen", 8, 1, 0) + f("__u64 gfn", 16, 8, 0) + f("__u32 role", 24, 4, 0) +
                       f("__u32 root_count", 28, 4, 0) + f("bool unsync", 32, 1, 0);
    add_format("kvmmmu", "kvm_mmu_get_page", page + f("bool created", 33, 1, 0),
               "\"sp gen %u gfn %llx l%u\", REC->mmu_valid_gen, REC->gfn, REC->role & 15");
    add_format("kvmmmu", "kvm_mmu_prepare_zap_page", page,
               "\"sp gen %u gfn %llx l%u\", REC->mmu_valid_gen, REC->gfn, REC->role & 15");
    add_format("kvmmmu", "kvm_mmu_spte_requested", f("u64 gfn", 8, 8, 0) + f("u64 pfn", 16, 8, 0) + f("u8 level", 24, 1, 0),
               "\"gfn %llx pfn %llx level %d\", REC->gfn, REC->pfn, REC->level");
    add_format("kvmmmu", "kvm_mmu_set_spte",
               f("u64 gfn", 8, 8, 0) + f("u64 spte", 16, 8, 0) + f("u64 sptep", 24, 8, 0) + f("u8 level", 32, 1, 0) +
                   f("bool r", 33, 1, 0) + f("bool x", 34, 1, 0) + f("signed char u", 35, 1, 1),
               "\"gfn %llx spte %llx level %d at %llx\", REC->gfn, REC->spte, REC->level, REC->sptep");
    add_format("kvmmmu", "kvm_mmu_zap_all_fast", f("__u8 mmu_valid_gen", 8, 1, 0) + f("unsigned int mmu_used_pages", 12, 4, 0),
               "\"kvm-mmu-valid-gen %u used_pages %x\", REC->mmu_valid_gen, REC->mmu_used_pages");
    add_format("kvmmmu", "kvm_tdp_mmu_spte_changed",
               f("int as_id", 8, 4, 1) + f("gfn_t gfn", 16, 8, 0) + f("u64 old_spte", 24, 8, 0) +
                   f("u64 new_spte", 32, 8, 0) + f("int level", 40, 4, 1),
               "\"as id %d gfn %llx level %d old_spte %llx new_spte %llx\", REC->as_id, REC->gfn, REC->level, "
               "REC->old_spte, REC->new_spte");
    add_format("kvm", "kvm_unmap_hva_range", f("unsigned long start", 8, 8, 0) + f("unsigned long end", 16, 8, 0),
               "\"mmu notifier unmap range: %#016lx -- %#016lx\", REC->start, REC->end");
    add_format("kvm", "kvm_page_fault",
               f("unsigned int vcpu_id", 8, 4, 0) + f("unsigned long guest_rip", 16, 8, 0) +
                   f("u64 fault_address", 24, 8, 0) + f("u64 error_code", 32, 8, 0),
               "\"vcpu %u rip 0x%lx address 0x%016llx error_code 0x%llx\", REC->vcpu_id, REC->guest_rip, "
               "REC->fault_address, REC->error_code");
    for (const char* n : {"kvm_emulate_insn", "kvm_pio", "kvm_userspace_exit"}) add_format("kvm", n, "", "\"-\"");
  }

  // One ring-buffer event (padded to 4 bytes) on `cpu`'s current page.
  void add_record(unsigned cpu, u64 ts, std::vector<u8> d) {
    while (d.size() % 4) d.push_back(0);
    std::vector<u8> ev;
    auto word = [&](u32 w) {
      for (int i = 0; i < 4; ++i) ev.push_back(u8(w >> (8 * i)));
    };
    auto& pages = pages_[cpu];
    u64 delta = pages.empty() ? 0 : ts - last_ts_[cpu];
    size_t need = 4 + (d.size() > 112 ? 4 : 0) + d.size() + (delta >= (1u << 27) ? 8 : 0);
    if (pages.empty() || used_[cpu] + need > kPage - 16) {
      finish_page(cpu);
      pages.emplace_back(kPage, 0);
      put_page_u64(pages.back(), 0, ts);
      used_[cpu] = 0;
      delta = 0;
    }
    if (delta >= (1u << 27)) {  // time extend: delta bits 26:0 in the header, the rest in array[0]
      word(30u | u32(delta & ((1u << 27) - 1)) << 5);
      word(u32(delta >> 27));
      delta = 0;
    }
    if (d.size() <= 112) {
      word(u32(d.size() / 4) | u32(delta) << 5);
    } else {  // type_len 0: the length (with its own 4 bytes) in array[0]
      word(u32(delta) << 5);
      word(u32(d.size() + 4));
    }
    ev.insert(ev.end(), d.begin(), d.end());
    std::memcpy(pages.back().data() + 16 + used_[cpu], ev.data(), ev.size());
    used_[cpu] += ev.size();
    last_ts_[cpu] = ts;
  }

  void finish_page(unsigned cpu) {
    if (!pages_[cpu].empty()) put_page_u64(pages_[cpu].back(), 8, used_[cpu]);
  }
  static void put_page_u64(std::vector<u8>& p, size_t off, u64 v) {
    for (int i = 0; i < 8; ++i) p[off + size_t(i)] = u8(v >> (8 * i));
  }

  unsigned cpus_;
  std::vector<std::vector<std::vector<u8>>> pages_;
  std::vector<u64> last_ts_;
  std::vector<size_t> used_;
  std::map<std::string, Format> formats_;
  std::map<u32, std::string> comms_;
  int next_id_ = 100;
};

}  // namespace septsim::test
