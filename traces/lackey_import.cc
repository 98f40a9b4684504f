#include "traces/lackey_import.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>
#include <unordered_set>
#include <vector>

#include "traces/line_reader.h"
#include "traces/reader.h"

namespace septsim::traces {

namespace {

// One access line: its letter, the address and the size in bytes.
struct LackeyAccess {
  char kind = 0;  // 'I', 'L', 'S' or 'M'
  u64 addr = 0;
  u64 size = 0;
};

// Why an access line is malformed: the field and the message.
struct LineFault {
  const char* field = "";
  std::string message;
};

constexpr u64 kMaxSize = 1 << 20;      // bytes of one access; more is not a lackey line
constexpr u64 k2M = u64{2} << 20;
constexpr Gpa kTdSharedBit = Gpa{1} << 47;  // gpaw 48
constexpr u64 kMaxStride = u64{1} << 32;  // runs stay well inside one canonical half

// Hex digit values by character, 0xff for the rest.
constexpr std::array<u8, 256> kHexValue = [] {
  std::array<u8, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int c = 0; c < 10; ++c) t['0' + c] = u8(c);
  for (int c = 0; c < 6; ++c) t['a' + c] = t['A' + c] = u8(10 + c);
  return t;
}();

bool hex_digit(char c, unsigned& d) {
  d = kHexValue[u8(c)];
  return d != 0xff;
}

// The prefix lackey gives each kind: "I  " for fetches, " L " etc. for data.
bool access_prefix(std::string_view line, char& kind) {
  if (line.size() < 3) return false;
  if (line[0] == 'I' && line[1] == ' ' && line[2] == ' ') kind = 'I';
  else if (line[0] == ' ' && (line[1] == 'L' || line[1] == 'S' || line[1] == 'M') && line[2] == ' ') kind = line[1];
  else return false;
  return true;
}

// False with `fault` set when the text after the prefix is not "ADDR,SIZE".
bool parse_operands(std::string_view t, LackeyAccess& out, LineFault& fault) {
  size_t i = 0;
  while (i < t.size() && t[i] == ' ') ++i;
  size_t start = i;
  u64 addr = 0;
  unsigned d;
  for (; i < t.size() && hex_digit(t[i], d); ++i) {
    if (i - start == 16) return fault = {"addr", "more than 16 hex digits"}, false;
    addr = addr << 4 | d;
  }
  if (i == start) return fault = {"addr", "expected a hex address, got \"" + std::string(t.substr(start, 20)) + "\""}, false;
  if (i == t.size() || t[i] != ',')
    return fault = {"size", "expected ',SIZE' after the address, got \"" + std::string(t.substr(i, 20)) + "\""}, false;
  start = ++i;
  u64 size = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    size = size * 10 + u64(t[i] - '0');
    if (size > kMaxSize) return fault = {"size", "more than " + std::to_string(kMaxSize) + " bytes"}, false;
  }
  if (i == start) return fault = {"size", "expected a decimal size, got \"" + std::string(t.substr(start, 20)) + "\""}, false;
  while (i < t.size() && t[i] == ' ') ++i;
  if (i != t.size()) return fault = {"size", "unexpected text after the size: \"" + std::string(t.substr(i, 20)) + "\""}, false;
  if (size == 0) return fault = {"size", "an access of 0 bytes"}, false;
  if (addr + (size - 1) < addr) return fault = {"size", "the access wraps past the end of the address space"}, false;
  out.addr = addr;
  out.size = size;
  return true;
}

// The length with its newline of the line at p, when the newline is among
// the 32 bytes from p (which must be readable); 0 otherwise. Found apart from
// the parse, so the next line's start does not wait for it.
size_t short_line(const char* p) {
#if defined(__SSE2__) && defined(__x86_64__)
  const __m128i nl = _mm_set1_epi8('\n');
  const unsigned lo = unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), nl)));
  const unsigned hi =
      unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), nl)));
  const unsigned m = lo | hi << 16;
  return m ? size_t(std::countr_zero(m)) + 1 : 0;
#else
  const void* nl = std::memchr(p, '\n', 32);
  return nl ? size_t(static_cast<const char*>(nl) - p) + 1 : 0;
#endif
}

// The common access line [p, nl) (nl its newline; 32 bytes from p readable),
// parsed where it lies: exactly "I  ADDR,SIZE" or " K ADDR,SIZE" (K one of
// L, S, M) with ADDR 1 to 16 hex digits and SIZE 1..kMaxSize in decimal, not
// wrapping. False for any other line (spaces, "\r", an error...), which
// access_prefix() and parse_operands() then take in full.
bool plain_access_line(const char* p, const char* nl, LackeyAccess& out) {
  constexpr size_t kShortest = 3 + 1 + 1 + 1;  // prefix, a digit, ',', a digit
  if (size_t(nl - p) < kShortest) return false;
  char kind;
  if (p[0] == 'I' && p[1] == ' ' && p[2] == ' ') kind = 'I';
  else if (p[0] == ' ' && (p[1] == 'L' || p[1] == 'S' || p[1] == 'M') && p[2] == ' ') kind = p[1];
  else return false;
  const char* q = p + 3;
  const char* start = q;
  u64 addr = 0;
#if defined(__SSE2__) && defined(__x86_64__)
  // The address's (up to 16) hex digits at once, without a branch per digit
  // (the newline, not a digit, ends them within the line).
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i dec = _mm_sub_epi8(v, _mm_set1_epi8('0'));
  const __m128i is_dec = _mm_cmpeq_epi8(_mm_min_epu8(dec, _mm_set1_epi8(9)), dec);
  const __m128i let = _mm_sub_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
  const __m128i is_let = _mm_cmpeq_epi8(_mm_min_epu8(let, _mm_set1_epi8(5)), let);
  const unsigned hex = unsigned(_mm_movemask_epi8(_mm_or_si128(is_dec, is_let)));
  const unsigned digits = unsigned(std::countr_one(hex));  // 0..16
  if (digits == 0 || q[digits] != ',') return false;
  // Nibble values, zero past the digits; then pairs into bytes, first digit high.
  const __m128i keep =
      _mm_cmpgt_epi8(_mm_set1_epi8(char(digits)), _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m128i nib = _mm_and_si128(
      keep, _mm_or_si128(_mm_and_si128(is_dec, dec), _mm_and_si128(is_let, _mm_add_epi8(let, _mm_set1_epi8(10)))));
  const __m128i pairs = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(nib, _mm_set1_epi16(0xff)), 4), _mm_srli_epi16(nib, 8));
  const u64 all = u64(_mm_cvtsi128_si64(_mm_packus_epi16(pairs, pairs)));
  addr = __builtin_bswap64(all) >> (4 * (16 - digits));
  q += digits;
#else
  for (unsigned d; q < nl && (d = kHexValue[u8(*q)]) != 0xff; ++q) addr = addr << 4 | d;
  if (q == start || q - start > 16 || q == nl || *q != ',') return false;
#endif
  start = ++q;
  u64 size = 0;
  for (; q < nl && q - start < 8 && *q >= '0' && *q <= '9'; ++q) size = size * 10 + u64(*q - '0');
  if (q == start || q != nl || size == 0 || size > kMaxSize || addr + (size - 1) < addr) return false;
  out.kind = kind, out.addr = addr, out.size = size;
  return true;
}

// Consecutive accesses with the same op at a constant forward stride, held
// back until the run breaks and then written as one `access` event.
class AccessRun {
 public:
  AccessRun(EventSink& sink, u32 vcpu, LackeyImportReport& report) : sink_(sink), report_(report) {
    run_.type = EventType::Access;
    run_.vcpu = int(vcpu);
    run_.is_gva = true;
  }

  void add(Gva addr, AccessType op) {
    ++report_.accesses;
    if (open_ && op == run_.access && addr >= last_) {
      u64 step = addr - last_;
      if (run_.count == 1 && step < kMaxStride) {
        run_.stride = step;
        ++run_.count;
        last_ = addr;
        return;
      }
      if (run_.count > 1 && step == run_.stride) {
        ++run_.count;
        last_ = addr;
        return;
      }
    }
    flush();
    open_ = true;
    run_.addr = last_ = addr;
    run_.access = op;
    run_.count = 1;
    run_.stride = 0;
  }

  void flush() {
    if (!open_) return;
    sink_.put_access(run_);  // run_ has only access fields
    ++report_.access_events;
    open_ = false;
  }

 private:
  EventSink& sink_;
  LackeyImportReport& report_;
  Event run_;       // the run so far
  Gva last_ = 0;    // its last address
  bool open_ = false;
};

class LackeyImporter {
 public:
  LackeyImporter(const std::string& path, EventSink& sink, const LackeyImportOptions& opts)
      : path_(path), sink_(sink), opts_(opts), paging_(opts.paging), run_(sink, opts.vcpu, report_) {}

  LackeyImportReport run() {
    if (opts_.vcpu >= TraceReader::kMaxVcpus) throw std::invalid_argument("--vcpu must be 0..255");
    LineReader in(path_);
    paging_.setup(sink_, opts_.vcpu + 1, opts_.vcpu, td());
    std::string_view line;
    bool overlong;
    for (;;) {
      LackeyAccess a;
      // Most lines: short ones, parsed where they lie in the reader's buffer.
      constexpr size_t kAhead = 32;  // short_line()'s reach, beyond the longest plain line (28 bytes)
      const std::string_view ahead = in.window(kAhead);
      const size_t len = ahead.size() >= kAhead ? short_line(ahead.data()) : 0;
      if (len && plain_access_line(ahead.data(), ahead.data() + len - 1, a)) {
        in.consume(len);
        ++report_.lines;
        access(a);
        continue;
      }
      if (!in.next(line, overlong)) break;
      ++report_.lines;
      if (overlong || !access_prefix(line, a.kind)) {
        if (!overlong && client_message(line)) continue;
        if (!report_.first_noise_line) report_.first_noise_line = report_.lines;
        ++report_.noise_lines;
        continue;
      }
      LineFault fault;
      if (!parse_operands(line.substr(3), a, fault))
        throw TraceError(path_, report_.lines, fault.field,
                         (in.unterminated() ? "truncated last line: " : "") + fault.message);
      access(a);
    }
    run_.flush();
    if (td()) {
      Event e;
      e.type = EventType::TdTeardown;
      sink_.put(e);
    }
    if (report_.fetches + report_.loads + report_.stores + report_.modifies == 0)
      throw TraceError(path_, 0, "",
                       "no lackey access line (\"I  ADDR,SIZE\", \" L ADDR,SIZE\"...) in " + std::to_string(report_.lines) +
                           " lines: expected the log of valgrind --tool=lackey --trace-mem=yes");
    report_.guest_pages = paging_.pages_mapped();
    report_.guest_tables = paging_.tables();
    return report_;
  }

  // ChampSim's trace: 64-byte input_instr records (ChampSim's
  // inc/trace_instruction.h, little-endian): ip (8 bytes), is_branch (1),
  // branch_taken (1), destination_registers[2], source_registers[4] (1 each),
  // destination_memory[2], source_memory[4] (8 each; 0 = no operand). Per
  // record: the fetch at ip, the loads at the source operands, then the
  // stores at the destination operands, in operand order. "Lines" are records.
  LackeyImportReport run_champsim() {
    if (opts_.vcpu >= TraceReader::kMaxVcpus) throw std::invalid_argument("--vcpu must be 0..255");
    errno = 0;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path_.c_str(), "rb"), &std::fclose);
    if (!f) throw TraceError(path_, 0, "", std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
    paging_.setup(sink_, opts_.vcpu + 1, opts_.vcpu, td());
    constexpr size_t kRecord = 64, kBatch = 4096;
    std::vector<u8> buf(kRecord * kBatch);
    size_t have = 0;
    auto le64 = [](const u8* p) {
      u64 v = 0;
      for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
      return v;
    };
    for (;;) {
      size_t got = std::fread(buf.data() + have, 1, buf.size() - have, f.get());
      if (std::ferror(f.get())) throw TraceError(path_, report_.lines, "", std::string("read error: ") + std::strerror(errno));
      have += got;
      size_t whole = have / kRecord * kRecord;
      for (size_t off = 0; off < whole; off += kRecord) {
        const u8* r = buf.data() + off;
        ++report_.lines;
        if (r[8] > 1 || r[9] > 1)
          throw TraceError(path_, report_.lines, r[8] > 1 ? "is_branch" : "branch_taken",
                           "is " + std::to_string(r[8] > 1 ? r[8] : r[9]) +
                               ", not 0 or 1: not a ChampSim input_instr trace (64-byte records), or it is still compressed");
        LackeyAccess a;
        a.size = 1;
        ++report_.fetches;
        if (opts_.ifetch) a.addr = le64(r), put(a, AccessType::Fetch);
        for (int i = 0; i < 4; ++i)
          if (u64 m = le64(r + 32 + 8 * i)) ++report_.loads, a.addr = m, put(a, AccessType::Read);
        for (int i = 0; i < 2; ++i)
          if (u64 m = le64(r + 16 + 8 * i)) ++report_.stores, a.addr = m, put(a, AccessType::Write);
      }
      std::memmove(buf.data(), buf.data() + whole, have - whole);
      have -= whole;
      if (got == 0) break;
    }
    if (have)
      throw TraceError(path_, report_.lines + 1, "", "truncated record: " + std::to_string(have) +
                                                         " bytes after the last whole 64-byte input_instr record");
    if (report_.lines == 0) throw TraceError(path_, 0, "", "empty: no 64-byte ChampSim input_instr record");
    run_.flush();
    if (td()) {
      Event e;
      e.type = EventType::TdTeardown;
      sink_.put(e);
    }
    report_.guest_pages = paging_.pages_mapped();
    report_.guest_tables = paging_.tables();
    return report_;
  }

 private:
  // An access line's accesses.
  void access(const LackeyAccess& a) {
    count(a.kind);
    if (a.kind == 'I' && !opts_.ifetch) return;
    if (a.kind == 'M') put(a, AccessType::Read);
    put(a, a.kind == 'I' ? AccessType::Fetch : a.kind == 'S' || a.kind == 'M' ? AccessType::Write : AccessType::Read);
  }

  void count(char kind) {
    switch (kind) {
      case 'I': ++report_.fetches; break;
      case 'L': ++report_.loads; break;
      case 'S': ++report_.stores; break;
      default: ++report_.modifies; break;
    }
  }

  // A line valgrind writes for the program's VALGRIND_PRINTF: "**PID** TEXT".
  // False for any other line. A phase marker starts or ends a phase; other
  // text is an unknown marker, counted and the first few kept.
  [[gnu::cold, gnu::noinline]] bool client_message(std::string_view line) {
    size_t i = 2;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (!line.starts_with("**") || i == 2 || line.substr(i, 3) != "** ") return false;
    std::string_view text = line.substr(i + 3);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
    constexpr std::string_view kPrefix = "septsim:";
    if (!text.starts_with(kPrefix)) {
      if (report_.first_unknown_markers.size() < LackeyImportReport::kMaxListed)
        report_.first_unknown_markers.emplace_back(report_.lines, std::string(text.substr(0, 120)));
      ++report_.unknown_markers;
      return true;
    }
    std::vector<std::string_view> words;
    for (std::string_view rest = text.substr(kPrefix.size());;) {
      size_t b = rest.find_first_not_of(' ');
      if (b == std::string_view::npos) break;
      rest.remove_prefix(b);
      size_t e = std::min(rest.find(' '), rest.size());
      words.push_back(rest.substr(0, e));
      rest.remove_prefix(e);
    }
    if (words.size() != 3 || words[0] != "phase" || (words[1] != "begin" && words[1] != "end"))
      throw TraceError(path_, report_.lines, "marker",
                       "a program's marker is \"septsim: phase begin NAME\" or \"septsim: phase end NAME\", not \"" +
                           std::string(text.substr(0, 80)) + "\"");
    if (opts_.warmup)
      throw TraceError(path_, report_.lines, "marker",
                       "--warmup and the log's phase markers both place phases: drop --warmup");
    ++report_.phase_markers;
    std::string name(words[2]);
    if (words[1] == "begin") {
      phase_at_ = kNever;
      begin_phase(name);
      open_phase_ = name;
    } else {
      if (name != open_phase_)
        throw TraceError(path_, report_.lines, "name",
                         "\"phase end " + name + "\" but " +
                             (open_phase_.empty() ? "no phase was begun" : "the phase begun is \"" + open_phase_ + "\""));
      open_phase_.clear();
      phase_at_ = report_.accesses;  // before the next access
      phase_name_ = "after-" + name;
    }
    return true;
  }

  // Writes a `phase` event after the accesses held back so far.
  [[gnu::cold, gnu::noinline]] void begin_phase(std::string name) {
    run_.flush();
    Event ph;
    ph.type = EventType::Phase;
    ph.name = std::move(name);
    sink_.put(ph);
  }

  bool td() const { return opts_.td.enabled; }
  bool shared(Gva gva) const {
    return td() && gva >= opts_.td.shared_gva && gva - opts_.td.shared_gva < opts_.td.shared_size;
  }

  // One access per 4 KiB page the bytes cover, each page mapped first.
  void put(const LackeyAccess& a, AccessType op) {
    u64 first = a.addr >> kPageShift, last = (a.addr + a.size - 1) >> kPageShift;
    for (u64 p = first; p <= last; ++p) {
      Gva gva = p == first ? a.addr : p << kPageShift;
      if (report_.accesses == phase_at_) [[unlikely]] {
        begin_phase(std::move(phase_name_));
        phase_at_ = kNever;
        report_.measured_phase = opts_.warmup != 0;
      }
      try {
        if (paging_.touch(gva, map_, shared(gva) ? kTdSharedBit.raw() : 0)) [[unlikely]] {
          run_.flush();
          if (td()) prepare_td(map_);
          sink_.put(map_);
        }
      } catch (const GuestPagingError& e) {
        throw TraceError(path_, report_.lines, "addr", e.what());
      }
      run_.add(gva, op);
    }
  }

  // Before `map` is written: the TD guest accepts the page-table pages the
  // map adds and the private page it maps, or converts a shared one.
  void prepare_td(const Event& map) {
    // The replayer hands out table pages in order from the pool after the
    // root; the paging model counts the same tables.
    if (tables_accepted_ == 0) accept(paging_.cr3(), kPageSize);
    for (; tables_accepted_ < paging_.tables(); ++tables_accepted_)
      accept(paging_.cr3() + (tables_accepted_ + 1) * kPageSize, kPageSize);
    if (map.gpa & kTdSharedBit) {
      Event e;
      e.type = EventType::MapGpa;
      e.vcpu = int(opts_.vcpu);
      e.gpa = map.gpa;
      e.size = map.size;
      sink_.put(e);
      ++report_.shared_pages;
      return;
    }
    accept(map.gpa, map.size);
  }

  // TDG.MEM.PAGE.ACCEPT of every page of [gpa, gpa + size) not accepted yet:
  // the 2 MiB regions whole where the policy and backing allow, else 4K pages.
  void accept(Gpa gpa, u64 size) {
    bool by_2m = opts_.td.accept_2m && opts_.paging.backing != mmu::HostBacking::Page4K;
    u64 unit = by_2m ? k2M : kPageSize;
    for (Gpa a = gpa & ~(unit - 1); a < gpa + size; a += unit) {
      if (!accepted_.insert(a).second) continue;
      Event e;
      e.type = EventType::Accept;
      e.vcpu = int(opts_.vcpu);
      e.gpa = a;
      e.tdx.level = by_2m ? 1 : 0;
      sink_.put(e);
      ++(by_2m ? report_.accepts_2m : report_.accepts_4k);
    }
  }

  std::string path_;
  EventSink& sink_;
  LackeyImportOptions opts_;
  GuestPagingModel paging_;
  LackeyImportReport report_;
  AccessRun run_;
  Event map_;  // touch()'s guest_map, kept: an Event is large to build per access
  std::string open_phase_;   // the phase a "phase begin" marker started and no "phase end" closed
  // The phase that starts before access number phase_at_ (counting from 0):
  // --warmup's "measured", or "after-NAME" once "phase end NAME" is read.
  static constexpr u64 kNever = ~u64{0};
  u64 phase_at_ = opts_.warmup ? opts_.warmup : kNever;
  std::string phase_name_ = "measured";
  u64 tables_accepted_ = 0;           // TD: page-table pages accepted after the root
  std::unordered_set<Gpa> accepted_;  // TD: accepted units (2M regions or 4K pages); looked up, never iterated
};

}  // namespace

LackeyImportReport import_lackey(const std::string& path, EventSink& sink, const LackeyImportOptions& opts) {
  return LackeyImporter(path, sink, opts).run();
}

LackeyImportReport import_champsim(const std::string& path, EventSink& sink, const LackeyImportOptions& opts) {
  return LackeyImporter(path, sink, opts).run_champsim();
}

}  // namespace septsim::traces
