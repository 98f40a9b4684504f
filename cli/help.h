// Command usage texts (cli/help.cc). README's command list is tested against
// them (tests/cli/03_help_test.cc).
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace septsim::cli {

struct CommandHelp {
  const char* name;   // "replay", "import lackey", ...
  const char* usage;  // "septsim replay TRACE ..." (continuation lines indented)
  const char* what;   // what the command does
};

const std::vector<CommandHelp>& commands();
const CommandHelp& command_help(const std::string& name);
// Every command's usage (septsim --help).
std::string global_usage();
// The usage of `name` (a command, or "import" for both import formats) and a
// pointer to its --help: printed after a command-line error.
std::string short_usage(const std::string& name);
// `septsim CMD --help`: usage, what it does, then the options.
void print_help(const std::string& name, const boost::program_options::options_description* opts);

}  // namespace septsim::cli
