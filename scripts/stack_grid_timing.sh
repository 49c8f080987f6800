#!/usr/bin/env bash
# Wall time of one grid run seed by seed and with seeds stacked
# (`--stack-seeds off` and `on`), and whether every cell's final score is the
# same both ways. The grid: maze2d-umaze, real data, TD3+BC and IQL, seeds
# 0–3, two workers. Both runs write into fresh temporary folders and share
# one cache, whose dataset is collected first so collection is not timed.
#
#   scripts/stack_grid_timing.sh            from anywhere; runs from the repository root
#
# Environment: PRESET (quick) sizes the grid; KEEP=1 keeps the temporary
# folder (result folders and logs) and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-quick}
work=$(mktemp -d "${TMPDIR:-/tmp}/pgd-stack-timing-XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
  echo "stack_grid_timing: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
cache="$work/cache"
pgd=(deno run --allow-all --quiet cli/main.ts)
grid=(--preset "$preset" --datasets maze2d-umaze --sources real --agents td3bc,iql
  --seeds 0,1,2,3 --workers 2 --cache-dir "$cache")

echo "stack_grid_timing: collecting maze2d-umaze ($preset) into a fresh cache (not timed)"
"${pgd[@]}" collect maze2d-umaze --preset "$preset" --cache-dir "$cache" >"$work/collect.log" 2>&1 ||
  { tail -20 "$work/collect.log"; exit 1; }

for mode in off on; do
  started=$(date +%s.%N)
  if ! "${pgd[@]}" run "${grid[@]}" --stack-seeds "$mode" --out "$work/$mode" \
    >"$work/$mode.log" 2>&1; then
    tail -20 "$work/$mode.log"
    echo "stack_grid_timing: the run with --stack-seeds $mode failed" >&2
    exit 1
  fi
  ended=$(date +%s.%N)
  seconds=$(awk -v from="$started" -v to="$ended" 'BEGIN { printf "%.1f", to - from }')
  echo "stack-seeds $mode: $seconds s wall"
done

# Each cell's final score both ways (bit-identical on the wasm backend's kernels).
deno eval --quiet "
import { ResultStore } from './core/store.ts';
import { cellId } from './core/results.ts';
const scores = async (out: string) =>
  new Map((await new ResultStore(out).readAll()).map((r) => [cellId(r.cell), r.finalScore]));
const [off, on] = [await scores('$work/off'), await scores('$work/on')];
let differing = 0;
for (const id of [...new Set([...off.keys(), ...on.keys()])].sort()) {
  const same = off.get(id) === on.get(id);
  if (!same) differing += 1;
  console.log(id.padEnd(40), String(off.get(id)).padStart(22), String(on.get(id)).padStart(22),
    same ? 'same' : 'DIFFERS');
}
console.log(differing ? differing + ' cell(s) differ' : 'every final score is the same both ways');
if (differing) Deno.exit(1);
"
