#!/usr/bin/env bash
# The baseline of a pull request's (or a branch's) matrix: the matrix artifact
# of the newest completed run of a workflow on the default branch, downloaded
# with the GitHub CLI (preinstalled on GitHub's runners; no third-party action).
#
# Environment: GH_TOKEN (needs actions: read), GITHUB_REPOSITORY, GITHUB_RUN_ID,
# RUNNER_TEMP, GITHUB_OUTPUT (set by GitHub), DEFAULT_BRANCH, BASELINE_WORKFLOW (the
# workflow's file name, or a workflow ref such as
# owner/repo/.github/workflows/x.yml@refs/heads/main), and optionally
# ARTIFACT (default archmatrix-matrix) and RUNS (how many runs to try, default 5).
#
# Writes path=<matrix.json> to GITHUB_OUTPUT, or path= when there is none (a
# first run, expired artifacts, no permission): then the report has no
# baseline, and the job does not fail for it.
set -uo pipefail

ARTIFACT=${ARTIFACT:-archmatrix-matrix}
RUNS=${RUNS:-5}
workflow=${BASELINE_WORKFLOW%%@*}  # a workflow ref's path, without @ref
workflow=${workflow##*/}   # its file name, which `gh run list --workflow` takes
dir="$RUNNER_TEMP/archmatrix-baseline"
path=""

# Completed, whatever the conclusion: a matrix with failing lanes is still a baseline.
if runs=$(gh run list --repo "$GITHUB_REPOSITORY" --workflow "$workflow" --branch "$DEFAULT_BRANCH" \
        --status completed --limit "$RUNS" --json databaseId --jq '.[].databaseId' 2>/dev/null); then
    for run in $runs; do
        [[ "$run" == "$GITHUB_RUN_ID" ]] && continue
        rm -rf "$dir"
        if gh run download "$run" --repo "$GITHUB_REPOSITORY" --name "$ARTIFACT" --dir "$dir" >/dev/null 2>&1 \
                && [[ -f "$dir/matrix.json" ]]; then
            path="$dir/matrix.json"
            echo "baseline: $ARTIFACT of run $run of $workflow on $DEFAULT_BRANCH"
            break
        fi
    done
    [[ -n "$path" ]] || echo "no baseline: no recent run of $workflow on $DEFAULT_BRANCH kept $ARTIFACT"
else
    echo "no baseline: could not list the runs of $workflow on $DEFAULT_BRANCH (the job needs actions: read)"
fi
echo "path=$path" >>"$GITHUB_OUTPUT"
