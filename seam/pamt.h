// Physical Address Metadata Table (pamt_manager.c): page type, owner TDR and
// BEPOCH for every page TDX knows, at the level (4K/2M/1G) where the page's
// metadata lives, plus Dynamic PAMT's per-2M PAMT_4K page pairs and "is a
// PAMT page" bitmap. Memory is accounted as the module would lay it out:
// 16-byte entries, static PAMT_1G/2M/4K arrays per GiB of TDMR; with Dynamic
// PAMT the PAMT_4K array is replaced by a 1-bit-per-page bitmap plus two
// 4 KiB pages per 2 MiB region that holds 4K TDX pages.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "model/types.h"
#include "seam/tdx_status.h"

namespace septsim::seam {

enum class PageType : u8 { PT_NDA = 0, PT_RSVD = 1, PT_REG = 3, PT_TDR = 4, PT_TDCX = 5, PT_TDVPR = 6, PT_EPT = 8, PT_PAMT = 15 };

struct PamtEntry {
  PageType pt = PageType::PT_NDA;
  Hpa owner = 0;  // TDR of the owning TD
  u64 bepoch = 0;
};

struct PamtPair {
  Hpa page0 = 0, page1 = 0;
  u32 page_count = 0;  // 4K pages of this 2M region assigned to TDs
};

constexpr u64 kPamtEntryBytes = 16;       // PAMT_ENTRY_SIZE_IN_BYTES
constexpr unsigned kPamtPairPages = 2;    // DEFAULT_NUM_PAMT_PAGES
// Bit 62 of a returned HPA: the 2M region's page_count dropped to 0.
constexpr u64 kPamtRemovalHint = 1ull << 62;

class Pamt {
 public:
  Pamt(u64 tdmr_bytes, bool dynamic);

  bool dynamic() const { return dynamic_; }
  // Only before any page has been given to TDX (TDH.SYS.CONFIG time).
  void set_dynamic(bool on) { dynamic_ = on; }
  bool in_tdmr(Hpa hpa) const { return hpa < tdmr_bytes_; }

  // Level (1 = 4K, 2 = 2M, 3 = 1G) whose entry is authoritative for `hpa`.
  int leaf_level(Hpa hpa) const;
  PamtEntry get(Hpa hpa, int level) const;
  // Writes the entry of the page at `hpa` (aligned to `level`); returns true
  // when a Dynamic PAMT region's page count dropped to 0 (removal hint).
  bool set(Hpa hpa, int level, const PamtEntry& e);
  void set_bepoch(Hpa hpa, int level, u64 bepoch);

  // The check a leaf applies to a 4K page it is about to take: NDA, in the
  // TDMR, not a PAMT page, its 2M region has a PAMT_4K pair (DPAMT).
  // Returns the status base (without operand) or TDX_SUCCESS.
  Status check_free_4k(Hpa hpa) const;
  // Same for a 2M page (AUG 2M): 2M entry NDA and all 512 4K entries NDA.
  Status check_free_2m(Hpa hpa) const;

  // Dynamic PAMT.
  bool has_pair(Hpa hpa) const { return pairs_.count(hpa >> 21) != 0; }
  const PamtPair* pair(Hpa hpa) const;
  bool is_pamt_page(Hpa hpa) const { return pamt_pages_.count(hpa >> kPageShift) != 0; }
  void install_pair(Hpa region, Hpa page0, Hpa page1);
  PamtPair remove_pair(Hpa region);
  // Pages with non-NDA 4K entries in a region (DPAMT page_count, or counted
  // the same way under static PAMT for PAMT.REMOVE's emptiness check).
  u32 used_4k_in_region(Hpa region) const;

  // Memory accounting.
  u64 static_bytes() const;        // arrays allocated at module init
  u64 pair_bytes() const { return u64(pairs_.size()) * kPamtPairPages * kPageSize; }
  u64 bytes() const { return static_bytes() + pair_bytes(); }
  u64 pairs() const { return pairs_.size(); }
  static u64 static_bytes_per_gib(bool dynamic);

 private:
  static u64 key(Hpa hpa, int level) { return hpa >> level_shift(level); }
  // 2M/1G entries (few): non-NDA only.
  std::unordered_map<u64, PamtEntry>& table(int level) { return levels_[level - 2]; }
  const std::unordered_map<u64, PamtEntry>& table(int level) const { return levels_[level - 2]; }

  // A 4K entry packed in 8 bytes: page type (bits 0-3), "held in big_"
  // (bit 4), owner as an index into owners_ (bits 5-23), BEPOCH (bits
  // 24-63). 0 = NDA. An entry whose fields do not fit lives in big_.
  static constexpr unsigned kOwnerBits = 19, kBepochShift = 24;
  static constexpr u64 kBig = 1u << 4;
  // The 4K entries of one 2 MiB region, allocated with its first non-NDA
  // entry and freed with its last.
  struct Region4k {
    u64 e[512] = {};
    u32 used = 0;  // non-NDA entries
  };
  const Region4k* region4k(u64 region) const {
    return region < regions_.size() ? regions_[region].get() : nullptr;
  }
  PamtEntry unpack(Hpa hpa, u64 w) const;
  // Stores `e` (not NDA) at slot `w` of the page at `hpa`.
  void pack(Hpa hpa, u64& w, const PamtEntry& e);
  u64 owner_index(Hpa owner);

  u64 tdmr_bytes_;
  bool dynamic_;
  std::unordered_map<u64, PamtEntry> levels_[2];        // 2M, 1G
  std::vector<std::unique_ptr<Region4k>> regions_;     // PAMT_4K by 2M region index
  std::map<u64, PamtPair> pairs_;                      // by 2M region index
  std::set<Pfn> pamt_pages_;                           // the DPAMT bitmap's set bits
  std::vector<Hpa> owners_{0};                         // owner index -> owner (0 = none)
  std::unordered_map<Hpa, u64> owner_index_;
  std::unordered_map<Pfn, PamtEntry> big_;             // 4K entries that do not pack
};

}  // namespace septsim::seam
