#!/bin/bash
# Submits the grid as a job array and the merge as a job that waits for all of its tasks.
# Usage (from the project's root): examples/slurm/submit.sh [extra sbatch options for the array]
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p logs

array_job=$(sbatch --parsable "$@" examples/slurm/pgd-grid.sbatch)
array_job=${array_job%%;*} # "id;cluster" on multi-cluster sites
merge_job=$(sbatch --parsable --dependency="afterany:${array_job}" examples/slurm/pgd-merge.sbatch)
merge_job=${merge_job%%;*}
echo "grid: job array ${array_job}; merge: job ${merge_job} (runs when every task has ended)"
echo "progress: npx --yes deno@2.9.6 run -A cli/main.ts status ${PGD_RUN:-results/paper}/shards/*/"
