#include "traces/reader.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "seam/tdx_leaf.h"
#include "seam/tdx_status.h"
#include "traces/event_desc.h"

namespace septsim::traces {

TraceError::TraceError(const std::string& file, u64 line, const std::string& field, const std::string& message)
    : std::runtime_error(file + (line ? ":" + std::to_string(line) : std::string()) + ": " +
                         (field.empty() ? std::string() : "field '" + field + "': ") + message),
      line_(line),
      field_(field),
      message_(message) {}

namespace {

enum class NumStatus { Ok, Malformed, Overflow };

NumStatus parse_number(std::string_view t, u64& out) {
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    u64 v = 0;
    for (size_t i = 2; i < t.size(); ++i) {
      char c = t[i];
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return NumStatus::Malformed;
      if (v >> 60) return NumStatus::Overflow;
      v = v << 4 | d;
    }
    out = v;
    return NumStatus::Ok;
  }
  size_t n = t.size();
  unsigned shift = 0;
  if (n) {
    switch (t[n - 1]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: break;
    }
    if (shift) --n;
  }
  if (n == 0) return NumStatus::Malformed;
  u64 v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = t[i];
    if (c < '0' || c > '9') return NumStatus::Malformed;
    u64 d = u64(c - '0');
    if (v > (std::numeric_limits<u64>::max() - d) / 10) return NumStatus::Overflow;
    v = v * 10 + d;
  }
  if (shift && v > (std::numeric_limits<u64>::max() >> shift)) return NumStatus::Overflow;
  out = v << shift;
  return NumStatus::Ok;
}

std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// Text of a key or string value fit for a one-line message.
std::string printable(std::string_view s, size_t max = 64) {
  std::string r;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    } else {
      r += char(c);
    }
  }
  if (s.size() > max) r += "...";
  return r;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

template <class List>
std::string_view closest(std::string_view word, const List& candidates) {
  std::string_view best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (std::string_view c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

template <class List>
std::string join(const List& items) {
  std::string r;
  for (std::string_view s : items) {
    if (!r.empty()) r += ", ";
    r += s;
  }
  return r;
}

// ---------------------------------------------------------------------------
// One JSON line, flattened by a SAX handler into (key, value) pairs. Vectors
// and strings keep their capacity from line to line.

}  // namespace

// One value of a JSON line (FieldIn::value()).
enum class JsonKind : u8 { Null, Bool, Unsigned, Negative, Float, String, Array, Object };

struct JsonValue {
  std::string key;
  JsonKind kind = JsonKind::Null;
  bool b = false;
  u64 u = 0;
  std::int64_t i = 0;
  std::string text;                // String: contents; Float: the literal
  std::vector<std::string> items;  // Array: its string elements
  bool items_ok = true;            // Array: every element was a string
  // Object: its members' keys and values (strings, or unsigned numbers in
  // decimal); members_ok is false if one is anything else.
  std::vector<std::pair<std::string, std::string>> members;
  bool members_ok = true;

  std::string describe() const {
    switch (kind) {
      case JsonKind::Null: return "null";
      case JsonKind::Bool: return b ? "true" : "false";
      case JsonKind::Unsigned: return std::to_string(u);
      case JsonKind::Negative: return std::to_string(i);
      case JsonKind::Float: return text;
      case JsonKind::String: return "\"" + printable(text) + "\"";
      case JsonKind::Array: return "an array";
      case JsonKind::Object: return "an object";
    }
    return "?";
  }
};

namespace {

using Kind = JsonKind;
using Value = JsonValue;

class LineParser {
 public:
  using json = nlohmann::json;
  enum class Error { None, Syntax, NotObject, Duplicate };

  bool parse(std::string_view line) {
    n_ = 0;
    depth_ = 0;
    cur_ = nullptr;
    error_ = Error::None;
    if (fast_parse(line)) return error_ == Error::None;
    n_ = 0;
    depth_ = 0;
    cur_ = nullptr;
    error_ = Error::None;
    return json::sax_parse(line.data(), line.data() + line.size(), this) && error_ == Error::None;
  }

  size_t size() const { return n_; }
  const Value& operator[](size_t i) const { return fields_[i]; }
  const Value* find(std::string_view key) const {
    for (size_t i = 0; i < n_; ++i)
      if (fields_[i].key == key) return &fields_[i];
    return nullptr;
  }

  Error error() const { return error_; }
  size_t error_byte() const { return error_byte_; }
  const std::string& error_text() const { return error_text_; }

  // nlohmann SAX interface
  bool null() { return scalar(Kind::Null); }
  bool boolean(bool v) {
    if (!scalar(Kind::Bool)) return false;
    if (depth_ == 1) cur_->b = v;
    return true;
  }
  bool number_integer(json::number_integer_t v) {
    if (!scalar(Kind::Negative)) return false;
    if (depth_ == 1) cur_->i = v;
    return true;
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (member()) {
      cur_->members.back().second = std::to_string(v);
      return true;
    }
    if (!scalar(Kind::Unsigned)) return false;
    if (depth_ == 1) cur_->u = v;
    return true;
  }
  bool number_float(json::number_float_t, const json::string_t& raw) {
    if (!scalar(Kind::Float)) return false;
    if (depth_ == 1) cur_->text.assign(raw);
    return true;
  }
  bool string(json::string_t& v) {
    if (member()) {
      cur_->members.back().second = v;
      return true;
    }
    if (depth_ == 2 && cur_->kind == Kind::Array) {
      cur_->items.emplace_back(v);
      return true;
    }
    if (!scalar(Kind::String)) return false;
    if (depth_ == 1) cur_->text.assign(v);
    return true;
  }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    if (depth_ == 1) {
      cur_->kind = Kind::Object;
      cur_->members.clear();
      cur_->members_ok = true;
    } else if (depth_ == 2 && cur_->kind == Kind::Array) {
      cur_->items_ok = false;
    } else if (depth_ == 2 && cur_->kind == Kind::Object) {
      cur_->members_ok = false;
    }
    ++depth_;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 0) return not_object();
    if (depth_ == 2 && cur_->kind == Kind::Object) cur_->members_ok = false;
    if (depth_ == 1) {
      cur_->kind = Kind::Array;
      cur_->items.clear();
      cur_->items_ok = true;
    } else if (depth_ == 2 && cur_->kind == Kind::Array) {
      cur_->items_ok = false;
    }
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool key(json::string_t& k) {
    if (depth_ == 2 && cur_->kind == Kind::Object) {
      for (const auto& m : cur_->members)
        if (m.first == k) cur_->members_ok = false;
      cur_->members.emplace_back(k, std::string());
      return true;
    }
    if (depth_ != 1) return true;
    if (find(k)) {
      error_ = Error::Duplicate;
      error_text_.assign(k);
      return false;
    }
    if (n_ == fields_.size()) fields_.emplace_back();
    cur_ = &fields_[n_++];
    cur_->key.assign(k);
    cur_->kind = Kind::Null;
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& ex) {
    error_ = Error::Syntax;
    error_byte_ = byte;
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 7: ".
    std::string_view w = ex.what();
    if (size_t c = w.find(", column "); c != std::string_view::npos)
      if (size_t colon = w.find(": ", c); colon != std::string_view::npos) w.remove_prefix(colon + 2);
    error_text_ = printable(w, 200);
    return false;
  }

 private:
  // Most lines are flat objects of plain strings and small unsigned integers
  // ({"type":"access","vcpu":0,"gpa":"0x1000","op":"r"}). They are decoded
  // here without the general lexer; false means "not such a line" and the
  // caller falls back to nlohmann, which also produces every error message.
  bool fast_parse(std::string_view l) {
    size_t i = 0, n = l.size();
    auto ws = [&] {
      while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r')) ++i;
    };
    auto plain_string = [&](std::string_view& out) {
      if (i >= n || l[i] != '"') return false;
      size_t start = ++i;
      while (i < n && l[i] != '"') {
        if (l[i] == '\\' || static_cast<unsigned char>(l[i]) < 0x20) return false;
        ++i;
      }
      if (i >= n) return false;
      out = l.substr(start, i - start);
      ++i;
      return true;
    };
    ws();
    if (i >= n || l[i] != '{') return false;
    ++i;
    depth_ = 1;
    ws();
    if (i < n && l[i] == '}') return false;  // {} is rare: let the general parser have it
    for (;;) {
      ws();
      std::string_view k, text;
      if (!plain_string(k)) return false;
      ws();
      if (i >= n || l[i] != ':') return false;
      ++i;
      ws();
      if (find(k)) return false;  // duplicates get the general parser's report
      if (n_ == fields_.size()) fields_.emplace_back();
      Value& v = fields_[n_++];
      v.key.assign(k);
      if (i < n && l[i] == '"') {
        if (!plain_string(text)) return false;
        v.kind = Kind::String;
        v.text.assign(text);
      } else if (i < n && l[i] >= '0' && l[i] <= '9') {
        if (l[i] == '0' && i + 1 < n && l[i + 1] >= '0' && l[i + 1] <= '9') return false;
        u64 x = 0;
        size_t digits = 0;
        while (i < n && l[i] >= '0' && l[i] <= '9' && digits < 19) x = x * 10 + u64(l[i++] - '0'), ++digits;
        if (i < n && ((l[i] >= '0' && l[i] <= '9') || l[i] == '.' || l[i] == 'e' || l[i] == 'E')) return false;
        v.kind = Kind::Unsigned;
        v.u = x;
      } else if (l.substr(i, 4) == "true" || l.substr(i, 5) == "false") {
        v.kind = Kind::Bool;
        v.b = l[i] == 't';
        i += v.b ? 4 : 5;
      } else {
        return false;
      }
      ws();
      if (i < n && l[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && l[i] == '}') {
        ++i;
        ws();
        return i == n;
      }
      return false;
    }
  }

  bool scalar(Kind k) {
    if (depth_ == 0) return not_object();
    if (depth_ == 1) cur_->kind = k;
    else if (depth_ == 2 && cur_->kind == Kind::Array) cur_->items_ok = false;
    else if (depth_ == 2 && cur_->kind == Kind::Object) cur_->members_ok = false;
    return true;
  }
  // A string or unsigned number directly inside an object value.
  bool member() const { return depth_ == 2 && cur_->kind == Kind::Object && !cur_->members.empty(); }
  bool not_object() {
    error_ = Error::NotObject;
    return false;
  }

  std::vector<Value> fields_;
  size_t n_ = 0;
  int depth_ = 0;
  Value* cur_ = nullptr;
  Error error_ = Error::None;
  size_t error_byte_ = 0;
  std::string error_text_;
};

const std::array<std::string_view, 3> kHeaderFields = {"format", "version", "description"};
constexpr std::string_view kHeaderExample = R"({"format":"septsim-trace","version":1})";

}  // namespace

bool parse_trace_number(std::string_view text, u64& out) { return parse_number(text, out) == NumStatus::Ok; }

const char* event_type_name(EventType type) { return event_desc(type).name.data(); }

// ---------------------------------------------------------------------------

// The JSON Lines reader: the file, the line, and what the trace has made so
// far (VMs, TDs) that later events are checked against.
// The most fields an event type has (a SEAMCALL's).
constexpr size_t kMaxEventFields = [] {
  size_t n = 0;
  for (const EventDesc& d : kEventDescs) n = std::max(n, d.fields.size());
  return n;
}();

struct JsonEventDecoder {
  static constexpr size_t kMaxLineBytes = TraceReader::kMaxLineBytes;
  static constexpr size_t kBufBytes = 2 * kMaxLineBytes;
  static constexpr u64 kMaxGpa = TraceReader::kMaxGpa;

  std::string path;
  std::ifstream in;
  std::unique_ptr<char[]> buf{new char[kBufBytes]};
  size_t begin = 0, end = 0;
  bool eof = false;

  u64 line_no = 0;
  bool line_has_newline = true;
  Header header;
  LineParser parser;
  // The VMs vm_create made, by id: their vCPU count, type and line.
  struct VmDecl {
    u32 vcpus;
    bool tdx;
    u64 line;
  };
  std::vector<VmDecl> vms;
  u64 first_other_line = 0;  // the first event that is not a vm_create (0: none yet)
  bool vm_created = false;
  bool tdx_vm = false;  // of the event's VM
  std::map<u64, u32> td_vcpus;  // TDs created so far: vCPU count
  u32 vcpus = 0;        // of the event's VM
  u32 cur_vm = 0;       // the event's VM
  const EventDesc* spec = nullptr;

  [[noreturn]] void fail(std::string_view field, const std::string& message) const {
    throw TraceError(path, line_no, std::string(field), message);
  }

  void fill() {
    if (begin) {
      std::memmove(buf.get(), buf.get() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    in.read(buf.get() + end, std::streamsize(kBufBytes - end));
    if (in.bad()) fail("", std::string("read error: ") + std::strerror(errno));
    size_t got = size_t(in.gcount());
    end += got;
    if (got == 0) eof = true;
  }

  // Next raw line without its '\n' (and '\r'); false at end of file.
  bool read_line(std::string_view& line) {
    for (;;) {
      const char* b = buf.get() + begin;
      size_t avail = end - begin;
      if (const void* nl = std::memchr(b, '\n', std::min(avail, kMaxLineBytes + 1))) {
        size_t len = size_t(static_cast<const char*>(nl) - b);
        line = std::string_view(b, len);
        begin += len + 1;
        line_has_newline = true;
        break;
      }
      if (avail > kMaxLineBytes) {
        ++line_no;
        fail("", "line longer than " + std::to_string(kMaxLineBytes) + " bytes; a trace is JSON Lines text");
      }
      if (eof) {
        if (avail == 0) return false;
        line = std::string_view(b, avail);
        begin = end;
        line_has_newline = false;
        break;
      }
      fill();
    }
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    check_text(line);
    return true;
  }

  // Rejects control bytes (binary data) and malformed UTF-8 before JSON parsing.
  void check_text(std::string_view s) const {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size();
    for (size_t i = 0; i < n;) {
      unsigned char c = p[i];
      if (c >= 0x20 && c < 0x80) {
        ++i;
        continue;
      }
      if (c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      char b[128];
      if (c < 0x20) {
        std::snprintf(b, sizeof b, "binary data: control byte 0x%02x at byte %zu; a trace is JSON Lines text", c, i + 1);
        fail("", b);
      }
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      u32 cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
      bool ok = c >= 0xc2 && c <= 0xf4 && i + len <= n;
      for (size_t k = 1; ok && k < len; ++k) {
        ok = (p[i + k] & 0xc0) == 0x80;
        cp = cp << 6 | (p[i + k] & 0x3f);
      }
      ok = ok && !(len == 3 && cp < 0x800) && !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
           !(cp >= 0xd800 && cp <= 0xdfff);
      if (!ok) {
        std::snprintf(b, sizeof b, "not UTF-8 text: invalid byte 0x%02x at byte %zu", c, i + 1);
        fail("", b);
      }
      i += len;
    }
  }

  static bool skippable(std::string_view s) {
    size_t i = s.find_first_not_of(" \t");
    return i == std::string_view::npos || s[i] == '#';
  }

  // Next line holding JSON, parsed into `parser`; false at end of file.
  bool next_json() {
    std::string_view line;
    do {
      if (!read_line(line)) return false;
    } while (skippable(line));
    if (parser.parse(line)) return true;
    switch (parser.error()) {
      case LineParser::Error::Syntax:
        if (!line_has_newline)
          fail("", "truncated last line (no newline at end of file, malformed JSON at byte " +
                       std::to_string(parser.error_byte()) + ": " + parser.error_text() + ")");
        fail("", "malformed JSON at byte " + std::to_string(parser.error_byte()) + ": " + parser.error_text());
      case LineParser::Error::NotObject:
        fail("", "expected a JSON object on each line");
      case LineParser::Error::Duplicate:
        fail(printable(parser.error_text()), "given twice");
      case LineParser::Error::None:
        break;
    }
    return true;
  }

  void check_magic() {
    fill();
    std::string_view head(buf.get(), std::min<size_t>(end, 8));
    static constexpr std::pair<std::string_view, std::string_view> kMagic[] = {
        {"\x1f\x8b", "gzip-compressed data; decompress it first"},
        {"\x28\xb5\x2f\xfd", "zstd-compressed data; decompress it first"},
        {"\xfd" "7zXZ", "xz-compressed data; decompress it first"},
        {"BZh", "bzip2-compressed data; decompress it first"},
        {"PK\x03\x04", "a zip archive"},
        {"\x7f" "ELF", "an ELF executable"},
    };
    for (auto [magic, what] : kMagic)
      if (head.substr(0, magic.size()) == magic)
        throw TraceError(path, 1, "", "binary file (" + std::string(what) + "); a trace is JSON Lines text");
  }

  void read_header() {
    if (!next_json())
      throw TraceError(path, std::max<u64>(line_no, 1), "",
                       "missing header: empty trace; the first line must be " + std::string(kHeaderExample));
    if (parser.find("type") || !parser.find("format"))
      fail("", "missing header: the first line must be " + std::string(kHeaderExample) + " before any event");
    for (size_t i = 0; i < parser.size(); ++i) {
      std::string_view k = parser[i].key;
      if (std::find(kHeaderFields.begin(), kHeaderFields.end(), k) == kHeaderFields.end())
        fail(printable(k), "unknown header field; did you mean '" + std::string(closest(k, kHeaderFields)) +
                               "'? (header fields: " + join(kHeaderFields) + ")");
    }
    header.format = string_field("format");
    if (header.format != "septsim-trace")
      fail("format", "expected \"septsim-trace\", got \"" + printable(header.format) + "\"");
    const Value& ver = need("version");
    if (ver.kind != Kind::Unsigned) fail("version", "expected an integer, got " + ver.describe());
    u64 v = ver.u;
    if (v != TraceReader::kVersion)
      fail("version", "unsupported version " + std::to_string(v) + " (this reader reads version " +
                          std::to_string(TraceReader::kVersion) + ")");
    header.version = u32(v);
    if (parser.find("description")) header.description = string_field("description");
  }

  // ---- typed field access -------------------------------------------------

  const Value& need(std::string_view key) const {
    const Value* v = parser.find(key);
    if (!v) fail(key, spec ? "missing required field of " + std::string(spec->name) : "missing required field");
    return *v;
  }

  u64 number(const Value& v) const {
    switch (v.kind) {
      case Kind::Unsigned: return v.u;
      case Kind::String: {
        u64 r;
        switch (parse_number(v.text, r)) {
          case NumStatus::Ok: return r;
          case NumStatus::Overflow: fail(v.key, "bad number " + v.describe() + ": does not fit in 64 bits");
          case NumStatus::Malformed:
            fail(v.key, "bad number " + v.describe() +
                            ": expected hex (\"0x1000\"), decimal (\"4096\") or a size (\"4K\", \"2M\", \"1G\")");
        }
        break;
      }
      case Kind::Negative: fail(v.key, "bad number " + v.describe() + ": must not be negative");
      case Kind::Float: fail(v.key, "bad number " + v.describe() + ": expected an integer of at most 64 bits");
      default: break;
    }
    fail(v.key, "expected a number (an integer or a string such as \"0x1000\" or \"4K\"), got " + v.describe());
  }

  u64 num(std::string_view key, u64 dflt) const {
    const Value* v = parser.find(key);
    return v ? number(*v) : dflt;
  }

  const std::string& string_field(std::string_view key) const { return string_of(need(key)); }
  const std::string& string_of(const Value& v) const {
    if (v.kind != Kind::String) fail(v.key, "expected a string, got " + v.describe());
    return v.text;
  }

  int vcpu_field(const Value& v) const {
    u64 i = number(v);
    if (i >= vcpus)
      fail("vcpu", std::to_string(i) + " is out of range: vm_create" +
                       (vms.size() > 1 ? " of VM " + std::to_string(cur_vm) : std::string()) + " declared " +
                       std::to_string(vcpus) +
                       " vCPU" + (vcpus == 1 ? "" : "s") + " (0.." + std::to_string(vcpus - 1) + ")");
    return int(i);
  }

  // A number in the range its event type's description gives (event_desc.h).
  u64 in_range(std::string_view key, u64 v) const {
    if (std::string e = field_range_error(spec->type, key, v); !e.empty()) fail(key, e);
    return v;
  }

  // ---- events ---------------------------------------------------------------

  void decode(Event& out) {
    spec = nullptr;
    const Value* t = parser.find("type");
    if (!t) fail("type", "missing required field (every event has a \"type\")");
    if (t->kind != Kind::String) fail("type", "expected a string, got " + t->describe());
    spec = event_desc_by_name(t->text);
    if (!spec) {
      std::vector<std::string_view> names;
      for (const EventDesc& d : kEventDescs) names.push_back(d.name);
      fail("type", "unknown event type " + t->describe() + "; did you mean \"" +
                       std::string(closest(t->text, names)) + "\"? (known: " + join(names) + ")");
    }
    const bool vm_scoped = traces::vm_scoped(spec->type);
    // The line's value of each field of the description, by index (none: not given).
    std::array<const Value*, kMaxEventFields> given{};
    for (size_t i = 0; i < parser.size(); ++i) {
      std::string_view k = parser[i].key;
      if (k == "vm" && !vm_scoped)
        fail("vm", std::string(spec->name) + " is not an event of one VM (phase, marker and the raw TDX module "
                   "events are host-wide); remove \"vm\"");
      if (k == "type" || k == "vm") continue;
      if (const FieldDesc* f = find_field(*spec, k)) {
        given[size_t(f - spec->fields.data())] = &parser[i];
      } else {
        std::vector<std::string_view> fields;
        for (const FieldDesc& d : spec->fields) fields.push_back(d.name);
        fail(printable(k), "unknown field of " + std::string(spec->name) + "; did you mean '" +
                               std::string(closest(k, fields)) + "'? (fields: " + join(fields) + ")");
      }
    }

    out = Event{};
    out.type = spec->type;
    out.line = line_no;

    if (out.type == EventType::VmCreate) {
      // Every VM's vCPUs are built before the simulation starts (SystemC
      // cannot add modules later), so the VMs are declared up front.
      if (first_other_line)
        fail("", "vm_create after other events (line " + std::to_string(first_other_line) +
                     "): create every VM at the start of the trace");
      u64 id = num("vm", 0);
      if (id != vms.size()) {
        if (id < vms.size())
          fail(vms.size() == 1 && !parser.find("vm") ? "" : "vm",
               "second vm_create for VM " + std::to_string(id) + " (the first is on line " +
                   std::to_string(vms[id].line) + "); another VM takes \"vm\":" + std::to_string(vms.size()));
        fail("vm", "VM " + std::to_string(id) + " created before VM " + std::to_string(vms.size()) +
                       " (VMs are numbered 0, 1, ... in vm_create order)");
      }
      if (vms.size() >= TraceReader::kMaxVms) fail("vm", "more than " + std::to_string(TraceReader::kMaxVms) + " VMs");
    } else if (!vm_created) {
      fail("", std::string(spec->name) + " before vm_create: vm_create must be the first event");
    } else {
      if (!first_other_line) first_other_line = line_no;
      if (vm_scoped) {
        u64 id = num("vm", 0);
        if (id >= vms.size())
          fail("vm", "VM " + std::to_string(id) + " was not created (" + std::to_string(vms.size()) +
                         " VM" + (vms.size() == 1 ? "" : "s") + ": vm_create with \"vm\":" + std::to_string(id) +
                         " at the start of the trace)");
        out.vm = u32(id);
      }
      cur_vm = out.vm;
      vcpus = vms[out.vm].vcpus;
      tdx_vm = vms[out.vm].tdx;
    }

    if (spec->needs_td_vm) need_tdx_vm();
    for (size_t i = 0; i < spec->fields.size(); ++i) {
      const FieldDesc& f = spec->fields[i];
      if (given[i] || f.need != Need::Optional) f.read(FieldIn(*this, &f, given[i]), out);
    }
    if (spec->check) spec->check(FieldIn(*this, nullptr, nullptr), out);
    // What later events are checked against: the VMs and TDs made.
    if (out.type == EventType::VmCreate) {
      vcpus = out.vcpus;
      out.vm = cur_vm = u32(vms.size());
      vms.push_back({vcpus, out.tdx_vm, line_no});
      vm_created = true;
    } else if (out.type == EventType::TdCreate) {
      td_vcpus[out.tdx.td] = out.tdx.vcpus;
    }
  }

  void need_tdx_vm() const {
    if (!tdx_vm)
      fail("type", vms.size() > 1 ? "needs a TD VM: VM " + std::to_string(cur_vm) +
                                        " is not one (its vm_create has no \"vm_type\":\"tdx\")"
                                  : std::string("needs a TD VM: vm_create must say \"vm_type\":\"tdx\""));
  }

  u32 td_field(const Value& v) const {
    u64 td = number(v);
    if (!td_vcpus.count(td)) fail("td", "TD " + std::to_string(td) + " was not created (send td_create first)");
    return u32(td);
  }

  u32 td_vcpu_field(const Value& v, u32 td) const {
    u64 i = number(v);
    u32 n = td_vcpus.at(td);
    if (i >= n) fail("vcpu", std::to_string(i) + " is out of range: TD " + std::to_string(td) + " has " +
                                 std::to_string(n) + " vCPU" + (n == 1 ? "" : "s"));
    return u32(i);
  }
};

// ---- FieldIn: the reader's checks for the fields' readers (event_desc.h) ----

std::string_view FieldIn::name() const { return f_ ? f_->name : std::string_view(); }
bool FieldIn::given(std::string_view field) const { return r_.parser.find(field) != nullptr; }
const JsonValue& FieldIn::value() const { return v_ ? *v_ : r_.need(name()); }
void FieldIn::fail(const std::string& message) const { r_.fail(name(), message); }
void FieldIn::fail(std::string_view field, const std::string& message) const { r_.fail(field, message); }
void FieldIn::require(std::string_view field) const { r_.need(field); }

u64 FieldIn::num() const { return r_.number(value()); }
u64 FieldIn::num(const JsonValue& v) const { return r_.number(v); }
u64 FieldIn::ranged() const { return r_.in_range(name(), num()); }

std::string FieldIn::hex(u64 v) { return traces::hex(v); }
std::string FieldIn::size_name(u64 bytes) {
  if (bytes >= (u64{1} << 30) && !(bytes & ((u64{1} << 30) - 1))) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (u64{1} << 20) && !(bytes & ((u64{1} << 20) - 1))) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes >> 10) + " KiB";
}
// Canonical: the bits above the top of the paging mode (47 or 56) copy it.
bool FieldIn::canonical(u64 va, int levels) {
  unsigned bits = levels == 5 ? 57 : 48;
  u64 upper = va >> (bits - 1);
  return upper == 0 || upper == (~u64{0} >> (bits - 1));
}
void FieldIn::aligned(std::string_view field, u64 v, u64 align) const {
  if (v & (align - 1)) fail(field, hex(v) + " is not " + size_name(align) + " aligned");
}
void FieldIn::multiple(std::string_view field, u64 v, u64 align) const {
  if (v & (align - 1)) fail(field, hex(v) + " is not a multiple of " + size_name(align));
}
void FieldIn::end_within(std::string_view what, u64 gpa, u64 size) const {
  if (size > TraceReader::kMaxGpa - gpa)
    fail(std::string(what) + " end " + hex(gpa + size) + " is beyond the 52-bit guest-physical address space");
}

u64 FieldIn::gpa(u64 align) const {
  u64 v = num();
  if (v >= TraceReader::kMaxGpa) fail(hex(v) + " is beyond the 52-bit guest-physical address space");
  aligned(name(), v, align);
  return v;
}
u64 FieldIn::size(u64 align) const {
  u64 v = num();
  if (v == 0) fail("must not be 0");
  multiple(name(), v, align);
  return v;
}
u64 FieldIn::gva(int levels) const {
  u64 v = num();
  if (!canonical(v, levels)) fail(hex(v) + " is not canonical for " + std::to_string(levels) + "-level paging");
  return v;
}
int FieldIn::levels() const {
  u64 v = num();
  if (v != 4 && v != 5) fail("must be 4 or 5, got " + std::to_string(v));
  return int(v);
}
bool FieldIn::flag() const {
  const JsonValue& v = value();
  if (v.kind != Kind::Bool) fail("expected true or false, got " + v.describe());
  return v.b;
}
const std::string& FieldIn::text() const { return r_.string_of(value()); }

// The field's choices, "a|b|c", one at a time.
template <class F>
static bool each_choice(std::string_view choices, F&& f) {
  for (unsigned i = 0;; ++i) {
    size_t bar = choices.find('|');
    if (f(choices.substr(0, bar), i)) return true;
    if (bar == std::string_view::npos) return false;
    choices.remove_prefix(bar + 1);
  }
}
static std::string choice_list(std::string_view choices) {
  std::string list;
  each_choice(choices, [&](std::string_view c, unsigned) { return list += (list.empty() ? "" : ", ") + std::string(c), false; });
  return list;
}

unsigned FieldIn::choice() const {
  const std::string& t = text();
  unsigned found = 0;
  if (each_choice(f_->choices, [&](std::string_view c, unsigned i) { return c == t && (found = i, true); })) return found;
  fail("unknown value " + value().describe() + " (expected one of: " + choice_list(f_->choices) + ")");
}
u32 FieldIn::flags() const {
  const JsonValue& v = value();
  std::string_view first = f_->choices.substr(0, f_->choices.find('|'));
  if (v.kind != Kind::Array)
    fail("expected an array of strings such as [\"" + std::string(first) + "\"], got " + v.describe());
  if (!v.items_ok) fail("expected an array of strings, got an element that is not a string");
  u32 bits = 0;
  for (const std::string& item : v.items) {
    unsigned found = 0;
    if (!each_choice(f_->choices, [&](std::string_view c, unsigned i) { return c == item && (found = i, true); }))
      fail("unknown flag \"" + printable(item) + "\" (expected: " + choice_list(f_->choices) + ")");
    bits |= 1u << found;
  }
  return bits;
}

int FieldIn::vcpu() const { return r_.vcpu_field(value()); }
u32 FieldIn::td() const { return r_.td_field(value()); }
bool FieldIn::td_exists(u64 td) const { return r_.td_vcpus.count(td) != 0; }
u32 FieldIn::td_vcpu(u32 td) const { return r_.td_vcpu_field(value(), td); }

namespace desc_detail {

void read_leaf(const FieldIn& in, Event& e) {
  const std::string& name = in.text();
  if (e.type == EventType::Tdcall) {
    auto l = seam::tdcall_leaf_by_name(name);
    if (!l) in.fail("unknown TDCALL leaf \"" + printable(name) + "\" (known: TDG.MEM.PAGE.ACCEPT)");
    e.tdx.leaf = u16(*l);
  } else {
    auto l = seam::leaf_by_name(name);
    if (!l) in.fail("unknown SEAMCALL leaf \"" + printable(name) + "\" (a TDX name such as \"TDH.MEM.PAGE.AUG\")");
    e.tdx.leaf = u16(*l);
  }
}

void read_expect(const FieldIn& in, Event& e) {
  const JsonValue& v = in.value();
  if (v.kind != Kind::String) in.fail("expected a status name or hex string, got " + v.describe());
  if (!seam::parse_status(v.text, e.tdx.expect, e.tdx.expect_exact))
    in.fail("unknown status " + v.describe() + " (a name such as \"TDX_SUCCESS\", \"TDX_OPERAND_INVALID|RCX\" or hex such as \"0xC0000B0D00000001\")");
  e.tdx.has_expect = true;
}

// "expect_out": {"rcx": "0x1000", "r8": 0}: output registers RCX..R13.
void read_expect_out(const FieldIn& in, Event& e) {
  const JsonValue& v = in.value();
  const std::string how = " (an object of registers such as {\"rcx\": \"0x1000\", \"r8\": 0})";
  if (v.kind != Kind::Object) in.fail("expected an object, got " + v.describe() + how);
  if (!v.members_ok) in.fail("each register once, with a number or a string" + how);
  if (v.members.empty()) in.fail("names no register" + how);
  for (const auto& [reg, text] : v.members) {
    unsigned i = 1;
    while (i < TdxEventFields::kNumRegs && reg != TdxEventFields::kRegNames[i]) ++i;
    if (i == TdxEventFields::kNumRegs)
      in.fail("unknown register \"" + printable(reg) + "\" (rcx, rdx, r8 .. r13; the status is \"expect\")");
    JsonValue n;
    n.key = "expect_out." + reg;
    n.kind = Kind::String;
    n.text = text;
    e.tdx.expect_out[i] = in.num(n);
    e.tdx.expect_out_mask |= 1u << i;
  }
}

}  // namespace desc_detail

struct TraceReader::Impl : JsonEventDecoder {};

TraceReader::TraceReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw TraceError(path, 0, "", std::string("cannot open: ") + std::strerror(EISDIR));
  errno = 0;
  m.in.open(path, std::ios::binary);
  if (!m.in.is_open()) throw TraceError(path, 0, "", std::string("cannot open: ") + std::strerror(errno ? errno : ENOENT));
  m.check_magic();
  m.read_header();
}

TraceReader::~TraceReader() = default;

bool TraceReader::next(Event& out) {
  if (!impl_->next_json()) return false;
  impl_->decode(out);
  return true;
}

u64 TraceReader::line() const { return impl_->line_no; }
const Header& TraceReader::header() const { return impl_->header; }
const std::string& TraceReader::path() const { return impl_->path; }

}  // namespace septsim::traces
