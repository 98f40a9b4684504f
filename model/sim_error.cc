#include "model/sim_error.h"

#include <systemc>

namespace septsim::model {

namespace {
std::exception_ptr& slot() {
  static std::exception_ptr first;
  return first;
}
}  // namespace

void record_sim_error(std::exception_ptr e) {
  if (!slot()) slot() = e;
  sc_core::sc_stop();
}

void rethrow_sim_error() {
  if (slot()) std::rethrow_exception(slot());
}

}  // namespace septsim::model
