// Catch2 runner shared by every test binary. SystemC wants sc_main to exist
// even though the tests elaborate their own modules through sc_core API calls.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>
#include <systemc>

int sc_main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }

// libsystemc's own main() prints a banner on stdout; ours silences it first.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}
