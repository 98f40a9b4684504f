#include "model/walk/host_memory_target.h"

#include <cstring>

namespace septsim::model {

HostMemoryTarget::HostMemoryTarget(sc_core::sc_module_name name, PhysMem& mem, const Timing& timing)
    : sc_core::sc_module(name),
      socket("socket"),
      uncore("uncore"),
      mem_(mem),
      ref_latency_(timing.to_time(timing.walk_ref)),
      flat_line_(timing.walk_ref) {
  if (timing.memory.hierarchy) {
    const MemoryParams& m = timing.memory;
    llc_ = std::make_unique<Cache>("llc", MemLevel::LLC, m.llc, m.replacement, m.seed, timing);
    dram_ = std::make_unique<Dram>("dram", m.dram, timing);
    uncore.bind(llc_->socket);
    llc_->next.bind(dram_->socket);
  }
  socket.register_b_transport(this, &HostMemoryTarget::b_transport);
  socket.register_get_direct_mem_ptr(this, &HostMemoryTarget::get_direct_mem_ptr);
  listener_ = mem_.add_release_listener([this](Pfn first, u64 frames) { revoke(first, frames); });
}

HostMemoryTarget::~HostMemoryTarget() { mem_.remove_release_listener(listener_); }

void HostMemoryTarget::b_transport(int /*id*/, tlm::tlm_generic_payload& trans, sc_core::sc_time& delay) {
  const tlm::tlm_command cmd = trans.get_command();
  const u64 addr = trans.get_address();
  unsigned char* data = trans.get_data_ptr();
  trans.set_dmi_allowed(false);

  if (trans.get_extension<LineTargetProbe>()) {  // what the uncore socket reaches (line_access.h)
    if (uncore.size()) return uncore->b_transport(trans, delay);
    trans.set_response_status(tlm::TLM_OK_RESPONSE);
    return;
  }
  if (LineAccess* line = trans.get_extension<LineAccess>()) {  // timing only
    if (uncore.size()) {
      uncore->b_transport(trans, delay);
      return;
    }
    line->served = MemLevel::DRAM;
    line->cycles = flat_line_;
    trans.set_response_status(tlm::TLM_OK_RESPONSE);
    return;
  }

  if (trans.get_byte_enable_ptr()) {
    trans.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    return;
  }
  if (trans.get_data_length() != sizeof(u64) || trans.get_streaming_width() < sizeof(u64)) {
    trans.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
    return;
  }
  if (!data) {
    trans.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    return;
  }
  if (addr & (sizeof(u64) - 1)) {
    trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return;
  }

  switch (cmd) {
    case tlm::TLM_READ_COMMAND: {
      const u64* contents = mem_.contents(addr >> kPageShift);
      const u64 v = contents ? contents[(addr & (kPageSize - 1)) / sizeof(u64)] : 0;
      std::memcpy(data, &v, sizeof v);
      trans.set_dmi_allowed(elaborated_ && contents);  // the hint: get_direct_mem_ptr would grant
      break;
    }
    case tlm::TLM_WRITE_COMMAND: {
      // Writes only land in allocated frames: anything else is a model bug.
      if (!mem_.is_allocated(addr >> kPageShift)) {
        trans.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
      }
      u64 v;
      std::memcpy(&v, data, sizeof v);
      mem_.write64(addr, v);
      trans.set_dmi_allowed(elaborated_);
      break;
    }
    default:  // TLM_IGNORE_COMMAND: no access, no latency
      trans.set_response_status(tlm::TLM_OK_RESPONSE);
      return;
  }
  delay += ref_latency_;
  trans.set_response_status(tlm::TLM_OK_RESPONSE);
}

bool HostMemoryTarget::get_direct_mem_ptr(int /*id*/, tlm::tlm_generic_payload& trans, tlm::tlm_dmi& dmi) {
  const Pfn pfn = trans.get_address() >> kPageShift;
  dmi.set_start_address(pfn << kPageShift);
  dmi.set_end_address((pfn << kPageShift) + kPageSize - 1);
  u64* contents = elaborated_ ? mem_.contents(pfn) : nullptr;
  if (!contents) {
    dmi.set_granted_access(tlm::tlm_dmi::DMI_ACCESS_NONE);
    return false;
  }
  dmi.set_dmi_ptr(reinterpret_cast<unsigned char*>(contents));
  dmi.set_granted_access(mem_.is_allocated(pfn) ? tlm::tlm_dmi::DMI_ACCESS_READ_WRITE : tlm::tlm_dmi::DMI_ACCESS_READ);
  dmi.set_read_latency(ref_latency_);
  dmi.set_write_latency(ref_latency_);
  return true;
}

void HostMemoryTarget::revoke(Pfn first, u64 frames) {
  // Only frames with contents were granted: most guest data frees revoke nothing.
  if (!elaborated_ || !mem_.any_contents(first, frames)) return;
  const sc_dt::uint64 start = first << kPageShift, end = ((first + frames) << kPageShift) - 1;
  for (unsigned i = 0; i < socket.size(); ++i) socket[int(i)]->invalidate_direct_mem_ptr(start, end);
}

}  // namespace septsim::model
