// SystemC processes must not let exceptions escape into the kernel: a process
// records the first error here and stops the simulation; whoever called
// sc_start rethrows it.
#pragma once
#include <exception>

namespace septsim::model {

void record_sim_error(std::exception_ptr e);
// Rethrows the recorded error, if any.
void rethrow_sim_error();

}  // namespace septsim::model
