#include "cli/sweep.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <csignal>
#include <cerrno>

#include "model/config.h"
#include "traces/checksum.h"
#include "traces/config_check.h"

namespace fs = std::filesystem;

namespace septsim::cli {

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& msg) {
  throw std::runtime_error(file + ": field '" + field + "': " + msg);
}

std::string value_text(const nlohmann::ordered_json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!(out << text).flush()) throw std::runtime_error(p.string() + ": cannot write");
  }
  fs::rename(tmp, p);
}

std::string point_stem(const std::string& dir, size_t index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05zu", index);
  return (fs::path(dir) / "points" / buf).string();
}

}  // namespace

SweepSpec SweepSpec::load(const std::string& path) {
  SweepSpec s;
  s.path = path;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open sweep file");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(path + ": a sweep file holds a JSON object");
  static const std::set<std::string> known = {"name", "description", "base", "traces", "axes", "check", "phase"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      fail(path, it.key(), "unknown field (known: name, description, base, traces, axes, check, phase)");
  s.raw = nlohmann::json::parse(j.dump());
  fs::path here = fs::weakly_canonical(fs::absolute(fs::path(path))).parent_path();
  s.dir = here.string();

  model::Config base;
  if (j.contains("base")) {
    if (!j["base"].is_object()) fail(path, "base", "must be an object of config keys");
    s.base = nlohmann::json::parse(j["base"].dump());
    try {
      base.load_json(s.base, path + ": field 'base'");
    } catch (const model::ConfigError& e) {
      throw std::runtime_error(e.what());
    }
  } else {
    s.base = nlohmann::json::object();
  }
  if (!j.contains("traces") || !j["traces"].is_array() || j["traces"].empty())
    fail(path, "traces", "must be a non-empty array of trace paths");
  for (const auto& t : j["traces"]) {
    if (!t.is_string()) fail(path, "traces", "every entry must be a path string");
    fs::path p = fs::path(t.get<std::string>());
    if (p.is_relative()) p = here / p;
    if (!fs::exists(p)) fail(path, "traces", "no such trace: " + p.string());
    s.traces.push_back(fs::weakly_canonical(p).string());
  }
  if (j.contains("axes")) {
    if (!j["axes"].is_object()) fail(path, "axes", "must map config keys to arrays of values");
    for (auto it = j["axes"].begin(); it != j["axes"].end(); ++it) {
      const std::string field = "axes." + it.key();
      if (!it->is_array() || it->empty()) fail(path, field, "must be a non-empty array of values");
      std::vector<std::string> values;
      for (const auto& v : *it) {
        model::Config probe = base;
        try {
          probe.set(it.key(), value_text(v), path + ": field '" + field + "'");
        } catch (const model::ConfigError& e) {
          throw std::runtime_error(e.what());
        }
        values.push_back(value_text(v));
      }
      s.axes.emplace_back(it.key(), values);
    }
  }
  // Every point's whole configuration (geometry depends on pairs of keys),
  // before anything runs.
  {
    SweepSpec probe;
    probe.traces = {""};
    probe.axes = s.axes;
    for (const auto& p : probe.expand()) {
      model::Config cfg = base;
      std::string at;
      for (const auto& [k, v] : p.set) {
        cfg.set(k, v, path + ": field 'axes." + k + "'");
        at += (at.empty() ? "" : ", ") + k + "=" + v;
      }
      auto problems = traces::config_problems(cfg);
      if (!problems.empty())
        throw std::runtime_error(path + (at.empty() ? ": field 'base': " : ": field 'axes' (the point " + at + "): ") +
                                 problems.front());
    }
  }
  if (j.contains("phase")) {
    if (!j["phase"].is_string()) fail(path, "phase", "must be the name of a trace phase");
    s.phase = j["phase"].get<std::string>();
  }
  if (j.contains("check")) {
    if (!j["check"].is_boolean()) fail(path, "check", "must be true or false");
    s.check = j["check"].get<bool>();
  }
  return s;
}

std::vector<SweepPoint> SweepSpec::expand() const {
  std::vector<SweepPoint> out;
  for (const auto& trace : traces) {
    std::vector<size_t> idx(axes.size(), 0);
    for (;;) {
      SweepPoint p;
      p.index = out.size();
      p.trace = trace;
      for (size_t a = 0; a < axes.size(); ++a) p.set.emplace_back(axes[a].first, axes[a].second[idx[a]]);
      out.push_back(std::move(p));
      // Odometer: the last axis turns fastest.
      size_t a = axes.size();
      while (a > 0 && ++idx[a - 1] == axes[a - 1].second.size()) idx[--a] = 0;
      if (a == 0) break;
    }
  }
  return out;
}

std::string SweepSpec::trace_label(const std::string& trace) const {
  if (dir.empty()) return fs::path(trace).filename().string();
  fs::path rel = fs::path(trace).lexically_relative(dir);
  return rel.empty() ? trace : rel.string();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string point_stats_path(const std::string& dir, size_t index) { return point_stem(dir, index) + ".json"; }

bool point_finished(const std::string& dir, size_t index) {
  std::string stem = point_stem(dir, index);
  std::string exit_text = read_file(stem + ".exit");
  if (exit_text.empty() || !fs::exists(stem + ".json")) return false;
  int code = std::atoi(exit_text.c_str());
  return code == 0 || code == 1;
}

std::string point_command(const std::string& septsim, const std::string& dir, const SweepSpec& spec,
                          const SweepPoint& p) {
  std::string stem = point_stem(dir, p.index);
  std::string cmd = quote(septsim) + " replay " + quote(p.trace) + " --config " +
                    quote((fs::path(dir) / "base.json").string());
  for (const auto& [k, v] : p.set) cmd += " --set " + quote(k + "=" + v);
  cmd += " --stats " + quote(stem + ".json") + " -q";
  if (spec.check) cmd += " --check";
  // The exit code goes next to the stats, so any engine's runs merge the same way.
  return cmd + " 2>" + quote(stem + ".err") + "; echo $? >" + quote(stem + ".exit");
}

namespace {

nlohmann::json resolved_spec(const SweepSpec& spec) {
  nlohmann::json resolved;
  resolved["spec"] = spec.raw;
  resolved["spec_file"] = fs::path(spec.path).filename().string();
  resolved["spec_dir"] = spec.dir;
  resolved["traces"] = spec.traces;
  resolved["check"] = spec.check;
  resolved["phase"] = spec.phase;
  nlohmann::json axes = nlohmann::json::array();
  for (const auto& [k, vs] : spec.axes) axes.push_back({{"key", k}, {"values", vs}});
  resolved["axes"] = axes;
  resolved["base"] = spec.base;
  return resolved;
}

// What decides the points and their results (not the sweep's name or description).
nlohmann::json identity(const nlohmann::json& resolved) {
  return {{"traces", resolved["traces"]}, {"check", resolved["check"]}, {"phase", resolved.value("phase", "")},
          {"axes", resolved["axes"]}, {"base", resolved["base"]}};
}

// Moves `p` to `p`.previous (replacing an older one).
void set_aside(const fs::path& p) {
  if (!fs::exists(p)) return;
  fs::path prev = p.string() + ".previous";
  fs::remove_all(prev);
  fs::rename(p, prev);
}

void remove_previous(const std::string& dir) {
  for (const char* name : {"points", "results.csv", "manifest.json"})
    fs::remove_all(fs::path(dir) / (std::string(name) + ".previous"));
}

}  // namespace

std::vector<SweepPoint> prepare_dir(const SweepSpec& spec, const std::string& dir, bool resume) {
  nlohmann::json resolved = resolved_spec(spec);
  fs::path sweep_json = fs::path(dir) / "sweep.json";
  if (resume) {
    if (!fs::exists(sweep_json))
      throw std::runtime_error(dir + ": nothing to resume (no sweep.json); run the sweep without --resume");
    nlohmann::json old = nlohmann::json::parse(read_file(sweep_json), nullptr, false);
    if (old.is_discarded() || identity(old) != identity(resolved))
      throw std::runtime_error(dir + ": holds a different sweep (traces, axes, base, check or phase changed); "
                               "use another -o DIR or run without --resume");
  } else if (fs::exists(fs::path(dir) / "points")) {
    // The earlier run's results stay until this run has its own.
    for (const char* name : {"points", "results.csv", "manifest.json"}) set_aside(fs::path(dir) / name);
  }
  fs::create_directories(fs::path(dir) / "points");
  write_file(fs::path(dir) / "base.json", spec.base.dump(2) + "\n");
  write_file(sweep_json, resolved.dump(2) + "\n");
  auto points = spec.expand();
  for (const auto& p : points) {
    if (resume && point_finished(dir, p.index)) continue;
    fs::remove(point_stem(dir, p.index) + ".json");
    fs::remove(point_stem(dir, p.index) + ".exit");
  }
  return points;
}

namespace {

SweepSpec spec_from_dir(const std::string& dir) {
  nlohmann::json r = nlohmann::json::parse(read_file(fs::path(dir) / "sweep.json"));
  SweepSpec s;
  s.raw = r["spec"];
  s.base = r["base"];
  s.traces = r["traces"].get<std::vector<std::string>>();
  s.check = r["check"].get<bool>();
  s.phase = r.value("phase", "");
  for (const auto& a : r["axes"]) s.axes.emplace_back(a["key"], a["values"].get<std::vector<std::string>>());
  s.path = r["spec_file"];
  s.dir = r.value("spec_dir", "");
  return s;
}

void progress(size_t done, size_t total, size_t failed, double elapsed) {
  if (!isatty(2)) return;
  const int width = 30;
  int filled = total ? int(width * done / total) : width;
  double eta = done ? elapsed / double(done) * double(total - done) : 0;
  std::fprintf(stderr, "\r[%s%s] %zu/%zu points, %zu failed, ETA %d:%02d ", std::string(size_t(filled), '#').c_str(),
               std::string(size_t(width - filled), '.').c_str(), done, total, failed, int(eta) / 60, int(eta) % 60);
  if (done == total) std::fprintf(stderr, "\n");
}

}  // namespace

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// SIGINT and SIGTERM set g_stop_signal (no SA_RESTART: waitpid returns
// EINTR); the old handlers come back when this goes away.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace

RunResult run_local(const std::string& septsim, const SweepSpec& spec, const std::string& dir, unsigned jobs,
                    bool resume) {
  auto points = prepare_dir(spec, dir, resume);
  RunResult res;
  std::vector<size_t> todo;
  for (const auto& p : points)
    if (resume && point_finished(dir, p.index))
      ++res.skipped;
    else
      todo.push_back(p.index);
  StopSignals signals;
  auto start = std::chrono::steady_clock::now();
  std::map<pid_t, size_t> running;
  size_t next = 0, done = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while (done < todo.size() && !g_stop_signal) {
    while (running.size() < std::max(1u, jobs) && next < todo.size() && !g_stop_signal) {
      std::string cmd = point_command(septsim, dir, spec, points[todo[next]]);
      pid_t pid = fork();
      if (pid == 0) {
        // Its own process group: a stop ends the shell and its replay together.
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      if (pid < 0) throw std::runtime_error("sweep: fork failed");
      setpgid(pid, pid);
      running[pid] = todo[next++];
    }
    int st = 0;
    pid_t pid = waitpid(-1, &st, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    size_t i = it->second;
    running.erase(it);
    ++done;
    std::string exit_text = read_file(point_stem(dir, i) + ".exit");
    int code = exit_text.empty() ? -1 : std::atoi(exit_text.c_str());
    if (code != 0 && code != 1) {
      ++res.failed;
      std::string err = read_file(point_stem(dir, i) + ".err");
      std::fprintf(stderr, "%spoint %zu failed (exit %d): %s\n%s", isatty(2) ? "\n" : "", i, code,
                   point_command(septsim, dir, spec, points[i]).c_str(), err.c_str());
    }
    progress(done, todo.size(), res.failed, elapsed());
  }
  if (g_stop_signal) {
    res.signal = g_stop_signal;
    // Stop the running points; what they leave is not a result (a stats
    // file is written whole or not at all, and their .exit is removed).
    for (const auto& [pid, i] : running) kill(-pid, SIGTERM);
    for (const auto& [pid, i] : running) {
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      fs::remove(point_stem(dir, i) + ".exit");
      fs::remove(point_stem(dir, i) + ".json");
    }
    for (const auto& p : points)
      if (!point_finished(dir, p.index)) ++res.unfinished;
  }
  merge(dir);
  if (!res.signal) remove_previous(dir);
  return res;
}

void emit_jobs(const std::string& septsim, const SweepSpec& spec, const std::string& dir, const std::string& engine) {
  auto points = prepare_dir(spec, dir);
  std::string jobs;
  for (const auto& p : points) jobs += point_command(septsim, dir, spec, p) + "\n";
  fs::path jobs_path = fs::absolute(fs::path(dir) / "jobs.txt");
  write_file(jobs_path, jobs);
  if (engine == "parallel") {
    std::printf("wrote %s (%zu jobs). Run them with GNU Parallel, e.g.\n"
                "  parallel --jobs 2 < %s\n"
                "  parallel --sshloginfile HOSTS < %s     (DIR and septsim on a shared filesystem)\n"
                "then: septsim sweep-merge %s\n",
                jobs_path.c_str(), points.size(), jobs_path.c_str(), jobs_path.c_str(), dir.c_str());
  } else if (engine == "slurm") {
    fs::path sb = fs::absolute(fs::path(dir) / "sweep.sbatch");
    std::string name = spec.raw.contains("name") ? spec.raw["name"].get<std::string>() : "sweep";
    std::string text = "#!/bin/bash\n#SBATCH --job-name=septsim-" + name + "\n#SBATCH --array=0-" +
                       std::to_string(points.size() - 1) + "\n#SBATCH --output=" +
                       (fs::absolute(fs::path(dir)) / "points" / "slurm-%a.out").string() +
                       "\n# One array task per line of jobs.txt.\neval \"$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" " +
                       quote(jobs_path.string()) + ")\"\n";
    write_file(sb, text);
    std::printf("wrote %s and %s (%zu array tasks). Submit with\n  sbatch %s\nthen: septsim sweep-merge %s\n",
                jobs_path.c_str(), sb.c_str(), points.size(), sb.c_str(), dir.c_str());
  } else {
    throw std::runtime_error("--emit: unknown engine '" + engine + "' (known: parallel, slurm)");
  }
}

size_t merge(const std::string& dir) {
  SweepSpec spec = spec_from_dir(dir);
  auto points = spec.expand();
  std::vector<nlohmann::json> stats(points.size());
  std::vector<int> codes(points.size(), -1);
  std::set<std::string> columns;
  size_t missing = 0;
  for (const auto& p : points) {
    std::string stem = point_stem(dir, p.index);
    std::string exit_text = read_file(stem + ".exit");
    codes[p.index] = exit_text.empty() ? -1 : std::atoi(exit_text.c_str());
    std::string text = read_file(stem + ".json");
    if (text.empty()) {
      ++missing;
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(text);
    stats[p.index] = {{"sim_time_ps", j["sim_time_ps"]},
                      {"invariant_violations", j["invariant_violations"]},
                      {"scope", j["stats"]["total"]}};
    if (!spec.phase.empty()) {
      stats[p.index]["scope"] = nullptr;
      for (const auto& ph : j["stats"]["phases"])  // the last phase of that name
        if (ph["name"] == spec.phase) stats[p.index]["scope"] = ph;
      if (stats[p.index]["scope"].is_null())
        throw std::runtime_error(stem + ".json: no phase named '" + spec.phase + "' (field 'phase' of the sweep)");
    }
    for (const auto& [k, v] : stats[p.index]["scope"]["counters"].items()) columns.insert(k);
    for (const auto& [k, v] : stats[p.index]["scope"]["histograms"].items())
      columns.insert(k + ".count"), columns.insert(k + ".sum");
    if (stats[p.index]["scope"].contains("derived"))
      for (const auto& [k, v] : stats[p.index]["scope"]["derived"].items()) columns.insert("derived." + k);
    if (stats[p.index]["scope"].contains("vm_derived"))  // a trace with several VMs: VM N's as vmN.derived.NAME
      for (const auto& [vm, d] : stats[p.index]["scope"]["vm_derived"].items())
        for (const auto& [k, v] : d.items()) columns.insert(vm + ".derived." + k);
  }

  std::ostringstream csv;
  csv << "point,trace";
  for (const auto& [k, vs] : spec.axes) csv << "," << csv_field(k);
  csv << ",status,sim_time_ps,invariant_violations";
  for (const auto& c : columns) csv << "," << csv_field(c);
  csv << "\n";
  nlohmann::json manifest_points = nlohmann::json::array();
  auto status_of = [](int code, bool have) {
    if (code == 0 && have) return "ok";
    if (code == 1 && have) return "violations";
    return code < 0 ? "not run" : "failed";
  };
  for (const auto& p : points) {
    const nlohmann::json& s = stats[p.index];
    bool have = !s.is_null();
    const char* status = status_of(codes[p.index], have);
    csv << p.index << "," << csv_field(spec.trace_label(p.trace));
    for (const auto& [k, v] : p.set) csv << "," << csv_field(v);
    csv << "," << status;
    if (have) {
      csv << "," << s["sim_time_ps"].get<u64>() << "," << s["invariant_violations"].size();
      const auto& c = s["scope"]["counters"];
      const auto& h = s["scope"]["histograms"];
      static const nlohmann::json kNone = nlohmann::json::object();
      const auto& d = s["scope"].contains("derived") ? s["scope"]["derived"] : kNone;
      for (const auto& col : columns) {
        csv << ",";
        if (c.contains(col)) {
          csv << c[col].get<u64>();
        } else if (col.starts_with("derived.")) {
          auto it = d.find(col.substr(8));
          if (it != d.end() && !it->is_null()) csv << it->dump();
        } else if (auto at = col.find(".derived."); col.starts_with("vm") && at != std::string::npos) {
          const std::string vm = col.substr(0, at), name = col.substr(at + 9);
          const auto& vd = s["scope"].contains("vm_derived") ? s["scope"]["vm_derived"] : kNone;
          if (vd.contains(vm) && vd[vm].contains(name) && !vd[vm][name].is_null()) csv << vd[vm][name].dump();
        } else if (col.ends_with(".count") || col.ends_with(".sum")) {
          auto dot = col.rfind('.');
          std::string name = col.substr(0, dot), part = col.substr(dot + 1);
          if (h.contains(name)) csv << h[name][part].get<u64>();
        }
      }
    } else {
      csv << ",,";
      for (size_t i = 0; i < columns.size(); ++i) csv << ",";
    }
    csv << "\n";
    nlohmann::json mp = {{"point", p.index},
                         {"trace", spec.trace_label(p.trace)},
                         {"status", status},
                         {"exit_code", codes[p.index]},
                         {"command", point_command("septsim", dir, spec, p)}};
    nlohmann::json set = nlohmann::json::object();
    for (const auto& [k, v] : p.set) set[k] = v;
    mp["set"] = set;
    if (std::string(status) == "failed") mp["stderr"] = read_file(point_stem(dir, p.index) + ".err");
    manifest_points.push_back(mp);
  }

  model::Config base;
  base.load_json(spec.base, "base");
  nlohmann::json manifest;
  manifest["septsim_version"] = SEPTSIM_VERSION;
  manifest["sweep"] = spec.raw;
  manifest["base_config"] = base.to_json();
  manifest["traces"] = nlohmann::json::array();
  for (const auto& t : spec.traces)
    manifest["traces"].push_back(
        {{"path", spec.trace_label(t)}, {"fnv1a64", traces::fnv1a_hex(traces::fnv1a_file(t))}});
  manifest["points"] = manifest_points;
  write_file(fs::path(dir) / "results.csv", csv.str());
  write_file(fs::path(dir) / "manifest.json", manifest.dump(2) + "\n");
  return missing;
}

}  // namespace septsim::cli
