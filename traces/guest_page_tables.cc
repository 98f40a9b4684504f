#include "traces/guest_page_tables.h"

#include <string>

#include "model/hex.h"
#include "model/x86_pte.h"

namespace septsim::traces {

void GuestPageTables::set_pool(Gpa base, u64 size) {
  pool_next_ = base;
  pool_end_ = base + size;
}

Gpa GuestPageTables::alloc_table() {
  if (pool_next_ + kPageSize > pool_end_)
    throw GuestMapError(pool_end_ == 0 ? "guest_map needs a guest_pt_pool event first"
                                       : "guest page-table pool exhausted at " + hex(pool_end_));
  Gpa gpa = pool_next_;
  pool_next_ += kPageSize;
  for (unsigned i = 0; i < kPtesPerTable; ++i) write(gpa + 8 * i, 0);
  ++tables_;
  return gpa;
}

void GuestPageTables::map(Gpa cr3, int levels, Gva gva, Gpa gpa, u64 size, int page_level, bool writable,
                          bool executable) {
  u64 page = level_size(page_level);
  u64 leaf_flags = x86::kPresent | x86::kUser | (writable ? x86::kWritable : 0) |
                   (page_level > PG_LEVEL_4K ? x86::kLarge : 0) | (executable ? 0 : x86::kNoExec);
  for (u64 off = 0; off < size; off += page) {
    Gva va = gva + off;
    Gpa table = cr3;
    for (int level = levels; level > page_level; --level) {
      Gpa slot = table + 8 * pt_index(va, level);
      u64 e = read(slot);
      if (!(e & x86::kPresent)) {
        e = alloc_table() | x86::kPresent | x86::kWritable | x86::kUser;
        write(slot, e);
      } else if (x86::is_leaf(e, level)) {
        throw GuestMapError("gva " + hex(va) + " is already mapped by a larger guest page");
      }
      table = e & x86::kAddrMask;
    }
    Gpa slot = table + 8 * pt_index(va, page_level);
    u64 old = read(slot);
    if ((old & x86::kPresent) && page_level > PG_LEVEL_4K && !x86::is_leaf(old, page_level))
      throw GuestMapError("gva " + hex(va) + " is already mapped by smaller guest pages");
    write(slot, (gpa + off) | leaf_flags);
  }
}

}  // namespace septsim::traces
