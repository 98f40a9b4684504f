#include "mmu/sp_layout.h"

#include <algorithm>
#include <stdexcept>

#include "model/config.h"

namespace septsim::mmu {

namespace {

SpMember field(const char* name, u32 size, u32 align) { return {{{name, size, align}}}; }

// Field sizes: x86-64 kernel types (struct list_head 16, hlist_node 16, u64 and
// pointers 8, role 4, refcount_t/int 4, DECLARE_BITMAP(512) 64, rcu_head 16).
SpMember link() { return field("link", 16, 8); }
SpMember hash_link() { return field("hash_link", 16, 8); }
SpMember flags() {
  // tdp_mmu_page, unsync, mmu_valid_gen/tdp_mmu_scheduled_root_to_zap,
  // nx_huge_page_disallowed: four bytes in a row.
  return field("tdp_mmu_page+unsync+mmu_valid_gen+nx_huge_page_disallowed", 4, 1);
}
SpMember role() { return field("role", 4, 4); }
SpMember gfn() { return field("gfn", 8, 8); }
SpMember spt() { return field("spt", 8, 8); }
SpMember shadowed_translation() { return field("shadowed_translation", 8, 8); }
SpMember root_count() { return field("root_count/tdp_mmu_root_count", 4, 4); }
SpMember has_mapped_host_mmio() { return field("has_mapped_host_mmio", 1, 1); }
SpMember unsync_children() { return field("unsync_children+write_flooding_count", 8, 4); }
SpMember external_spt() { return field("external_spt", 8, 8); }
SpMember parent_ptes_or_ptep() { return field("parent_ptes/ptep", 8, 8); }
SpMember unsync_child_bitmap() { return field("unsync_child_bitmap", 64, 8); }
SpMember possible_nx_huge_page_link() { return field("possible_nx_huge_page_link", 16, 8); }
SpMember rcu_head() { return field("rcu_head", 16, 8); }

SpMember union_of(std::initializer_list<SpMember> ms) {
  SpMember u;
  for (const SpMember& m : ms) u.alternatives.insert(u.alternatives.end(), m.alternatives.begin(), m.alternatives.end());
  return u;
}

u32 member_size(const SpMember& m) {
  u32 s = 0;
  for (const SpField& f : m.alternatives) s = std::max(s, f.size);
  return s;
}
u32 member_align(const SpMember& m) {
  u32 a = 1;
  for (const SpField& f : m.alternatives) a = std::max(a, f.align);
  return a;
}
u32 round_up(u32 v, u32 a) { return (v + a - 1) / a * a; }

std::vector<SpLayout> make_layouts() {
  std::vector<SpLayout> l;
  l.push_back({SpLayoutKind::ExternalInUnion, "external-in-union",
               {link(), hash_link(), flags(), role(), gfn(), spt(), shadowed_translation(), root_count(),
                has_mapped_host_mmio(), union_of({unsync_children(), external_spt()}), parent_ptes_or_ptep(),
                unsync_child_bitmap(), possible_nx_huge_page_link(), rcu_head()}});
  l.push_back({SpLayoutKind::ExternalSeparate, "external-separate",
               {link(), hash_link(), flags(), role(), gfn(), spt(), shadowed_translation(), root_count(),
                has_mapped_host_mmio(), unsync_children(), external_spt(), parent_ptes_or_ptep(),
                unsync_child_bitmap(), possible_nx_huge_page_link(), rcu_head()}});
  // The shadow-only fields (hash_link, shadowed_translation, unsync
  // children/bitmap) overlay the TDP-only ones (rcu_head, external_spt);
  // parent_ptes/ptep is already a union.
  SpMember shadow_only = {{{"hash_link+shadowed_translation+unsync_children+write_flooding_count+unsync_child_bitmap",
                            16 + 8 + 8 + 64, 8}}};
  SpMember tdp_only = {{{"rcu_head+external_spt", 16 + 8, 8}}};
  l.push_back({SpLayoutKind::ShadowTdpUnion, "shadow-tdp-union",
               {link(), flags(), role(), gfn(), spt(), root_count(), has_mapped_host_mmio(), parent_ptes_or_ptep(),
                union_of({shadow_only, tdp_only}), possible_nx_huge_page_link()}});
  l.push_back({SpLayoutKind::TdpOnly, "tdp-only",
               {link(), flags(), role(), gfn(), spt(), root_count(), has_mapped_host_mmio(), parent_ptes_or_ptep(),
                external_spt(), possible_nx_huge_page_link(), rcu_head()}});
  return l;
}

const std::vector<SpLayout>& layouts() {
  static const std::vector<SpLayout> l = make_layouts();
  return l;
}

}  // namespace

u32 SpLayout::size() const {
  u32 off = 0, align = 1;
  for (const SpMember& m : members) {
    off = round_up(off, member_align(m)) + member_size(m);
    align = std::max(align, member_align(m));
  }
  return round_up(off, align);
}

u32 SpLayout::offset_of(const std::string& name) const {
  u32 off = 0;
  for (const SpMember& m : members) {
    off = round_up(off, member_align(m));
    for (const SpField& f : m.alternatives)
      if (f.name == name) return off;
    off += member_size(m);
  }
  throw std::out_of_range("struct kvm_mmu_page layout '" + this->name + "' has no field " + name);
}

const SpLayout& sp_layout(SpLayoutKind kind) { return layouts()[size_t(kind)]; }

SpLayoutKind parse_sp_layout(const std::string& value) {
  std::string known;
  for (const SpLayout& l : layouts()) {
    if (l.name == value) return l.kind;
    known += (known.empty() ? "" : ", ") + l.name;
  }
  throw model::ConfigError("config key 'mmu.sp_layout': unknown layout '" + value + "' (known: " + known + ")");
}

}  // namespace septsim::mmu
