#!/usr/bin/env bash
# The cost of credibility-based verification over ε × f (issue 21): one `jobmesh simnet --verification credibility`
# run per pair ε ∈ {1e-2, 1e-3, 1e-4} × f ∈ {0.05, 0.1, 0.2}, same seed and adversaries, and a Markdown table of
# executions per accepted job (overall, warm-up, steady state), spot-checks, wrong results and their 95 % bound.
#
# Usage: scripts/credibility-curve.sh [OUT_DIR] — environment: JOBMESH_BIN (default: jobmesh on PATH), NODES (100),
# JOBS (3000), SEED (42), EPSILONS ("1e-2 1e-3 1e-4"), FS ("0.05 0.1 0.2"), EXTRA (more simnet flags).
# Writes OUT_DIR/<eps>-<f>/summary.json and OUT_DIR/table.md (also printed). Needs jq.
set -euo pipefail
out="${1:-out/credibility-curve}"
bin="${JOBMESH_BIN:-jobmesh}"
nodes="${NODES:-100}"; jobs="${JOBS:-3000}"; seed="${SEED:-42}"
epsilons="${EPSILONS:-1e-2 1e-3 1e-4}"; fs="${FS:-0.05 0.1 0.2}"
command -v jq >/dev/null || { echo "credibility-curve: jq is needed" >&2; exit 1; }
mkdir -p "$out"
table="$out/table.md"
{
  echo "| ε | f | executions / accepted job | warm-up | steady state | spot-checks | accepted | wrong | wrong rate ≤ (95 %) | all terminal | wall s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$table"
for eps in $epsilons; do
  for f in $fs; do
    dir="$out/$eps-$f"
    rm -rf "$dir"; mkdir -p "$dir"
    # A run that fails a check (a wrong result accepted) still writes its report: record it and go on.
    "$bin" --data-dir "$dir/home" simnet --nodes "$nodes" --jobs "$jobs" --seed "$seed" \
      --byzantine 0.1 --saboteurs 0.05 --sabotage-rate 0.3 --collude --stake \
      --verification credibility --error-rate "$eps" --assumed-fault-rate "$f" ${EXTRA:-} \
      --report "$dir" >"$dir/stdout.txt" 2>"$dir/stderr.txt" || echo "run ε=$eps f=$f exited non-zero (see $dir/stderr.txt)" >&2
    if [ ! -f "$dir/summary.json" ]; then
      echo "| $eps | $f | no report | | | | | | | | |" >>"$table"
      continue
    fi
    jq -r --arg eps "$eps" --arg f "$f" '
      def r2: (. * 100 | round) / 100;
      [ $eps, $f,
        (.executions_per_accepted_job | r2), (.warm_up.executions_per_accepted_job | r2),
        (.steady_state.executions_per_accepted_job | r2), .spot_checks, .accepted, .wrong_results_accepted,
        (.wrong_rate_upper_95 * 1e5 | round / 1e5),
        ([.checks[] | select(.name == "all_jobs_terminal") | .verdict] | first),
        (.wall_s | round) ] | "| " + (map(tostring) | join(" | ")) + " |"' "$dir/summary.json" >>"$table"
  done
done
cat "$table"
