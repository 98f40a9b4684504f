// What-if sweeps: a base config, a set of traces and parameter axes (any
// config key) expand into points; each point is one `septsim replay` run.
// Points run in a local process pool, or are written out as a job list for
// GNU Parallel or a Slurm array; `sweep-merge` turns the per-point stats
// files into one CSV and a manifest either way.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace septsim::cli {

struct SweepPoint {
  size_t index = 0;
  std::string trace;                                 // absolute path
  std::vector<std::pair<std::string, std::string>> set;  // axis key -> value
};

struct SweepSpec {
  std::string path;           // the sweep file
  std::string dir;            // its directory (absolute): the CSV's trace paths are relative to it
  nlohmann::json raw;         // the file as read
  nlohmann::json base;        // base config (may hold "preset")
  std::vector<std::string> traces;  // absolute paths
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // in file order
  bool check = false;         // replay with --check
  std::string phase;          // CSV columns from this phase's counters ("" = totals)

  // Reads and validates a sweep file; throws std::runtime_error naming the
  // file and field (unknown config keys, values a key cannot take, and axis
  // combinations giving an impossible TLB or cache geometry, all before any
  // point runs).
  static SweepSpec load(const std::string& path);
  // A trace as the CSV and the manifest show it: relative to the sweep file.
  std::string trace_label(const std::string& trace) const;
  // Cartesian product, traces outermost, then axes in file order.
  std::vector<SweepPoint> expand() const;
};

// The command line that runs one point, writing DIR/points/NNNNN.json.
std::string point_command(const std::string& septsim, const std::string& dir, const SweepSpec& spec,
                          const SweepPoint& p);
std::string point_stats_path(const std::string& dir, size_t index);

// Prepares DIR (base.json, sweep.json copy, points/) and returns the points.
// A fresh run first moves an earlier run's points/, results.csv and
// manifest.json aside (*.previous, removed once the new run completes); with
// `resume` DIR must hold the same sweep, and its finished points are kept.
std::vector<SweepPoint> prepare_dir(const SweepSpec& spec, const std::string& dir, bool resume = false);

// True when point `index` in DIR has finished (stats written, exit 0 or 1).
bool point_finished(const std::string& dir, size_t index);

struct RunResult {
  size_t failed = 0;       // points that exited with an error
  size_t skipped = 0;      // points already finished (--resume)
  size_t unfinished = 0;   // points not run because of a signal
  int signal = 0;          // SIGINT or SIGTERM that stopped the sweep, else 0
};

// Runs every point (with `resume`, every unfinished one) with up to `jobs`
// processes, then writes the CSV and manifest. On SIGINT or SIGTERM it stops
// the running points, keeps the finished ones and writes the CSV of those.
RunResult run_local(const std::string& septsim, const SweepSpec& spec, const std::string& dir, unsigned jobs,
                    bool resume = false);
// Writes DIR/jobs.txt (and DIR/sweep.sbatch for slurm).
void emit_jobs(const std::string& septsim, const SweepSpec& spec, const std::string& dir, const std::string& engine);
// Builds DIR/results.csv and DIR/manifest.json from DIR/sweep.json and the
// point stats files; returns the number of points without results.
size_t merge(const std::string& dir);

// One CSV field quoted as RFC 4180 says: when it holds a comma, a double
// quote, CR or LF, with its quotes doubled. (Records end with LF, not the
// RFC's CRLF: what line-based tools and the studies' readers expect.)
std::string csv_field(const std::string& s);

int cmd_sweep(const std::vector<std::string>& args, const std::string& self);
int cmd_sweep_merge(const std::vector<std::string>& args);

}  // namespace septsim::cli
