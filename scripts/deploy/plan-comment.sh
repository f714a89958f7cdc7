#!/usr/bin/env bash
# Posts the plan to the pull request as one comment, updated in place on
# every push (found by a marker on its first line), never duplicated.
#   GH_TOKEN=… GITHUB_REPOSITORY=o/r PR_NUMBER=12 PLAN_OUTCOME=success \
#     scripts/deploy/plan-comment.sh plan.txt
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
plan="${1:?usage: plan-comment.sh PLAN_FILE}"
need_var GH_TOKEN GITHUB_REPOSITORY PR_NUMBER
marker='<!-- retainwise: terraform plan -->'
# GitHub refuses comments over 65,536 characters: keep the end of the plan,
# where the summary and any error are.
limit=60000
body=$(mktemp)
{
    echo "$marker"
    echo "**terraform plan**: ${PLAN_OUTCOME:-unknown} for ${GITHUB_SHA:-this commit}"
    echo
    echo '```'
    if [ "$(wc -c < "$plan")" -gt "$limit" ]; then
        echo "… (the start is cut; the whole plan is in the job log)"
        tail -c "$limit" "$plan"
    else
        cat "$plan"
    fi
    echo '```'
} > "$body"
existing=$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" \
    --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | head -n 1)
if [ -n "$existing" ]; then
    say "updating comment $existing"
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -F "body=@$body" >/dev/null
else
    say "posting the plan comment"
    gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" -F "body=@$body" >/dev/null
fi
