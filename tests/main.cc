// Catch2 runner shared by every test binary. SystemC wants sc_main to exist
// even though the tests elaborate their own modules through sc_core API calls.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <systemc>

int sc_main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
