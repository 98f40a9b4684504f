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
  nlohmann::json raw;         // the file as read
  nlohmann::json base;        // base config (may hold "preset")
  std::vector<std::string> traces;  // absolute paths
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;  // in file order
  bool check = false;         // replay with --check
  std::string phase;          // CSV columns from this phase's counters ("" = totals)

  // Reads and validates a sweep file; throws std::runtime_error naming the
  // file and field (unknown config keys and bad values included).
  static SweepSpec load(const std::string& path);
  // Cartesian product, traces outermost, then axes in file order.
  std::vector<SweepPoint> expand() const;
};

// The command line that runs one point, writing DIR/points/NNNNN.json.
std::string point_command(const std::string& septsim, const std::string& dir, const SweepSpec& spec,
                          const SweepPoint& p);
std::string point_stats_path(const std::string& dir, size_t index);

// Prepares DIR (base.json, sweep.json copy, points/) and returns the points.
std::vector<SweepPoint> prepare_dir(const SweepSpec& spec, const std::string& dir);

// Runs every point with up to `jobs` processes; returns the number that failed.
size_t run_local(const std::string& septsim, const SweepSpec& spec, const std::string& dir, unsigned jobs);
// Writes DIR/jobs.txt (and DIR/sweep.sbatch for slurm).
void emit_jobs(const std::string& septsim, const SweepSpec& spec, const std::string& dir, const std::string& engine);
// Builds DIR/results.csv and DIR/manifest.json from DIR/sweep.json and the
// point stats files; returns the number of points without results.
size_t merge(const std::string& dir);

int cmd_sweep(const std::vector<std::string>& args, const std::string& self);
int cmd_sweep_merge(const std::vector<std::string>& args);

}  // namespace septsim::cli
