#!/usr/bin/env bash
# Builds both images for linux/amd64 and pushes them to the ECR
# repositories, tagged with TAG (the commit SHA). The repositories are
# immutable: a tag that is already there (a re-run) is kept, not rebuilt.
#   scripts/deploy/push-images.sh "$GITHUB_SHA"
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
tag="${1:?usage: push-images.sh TAG}"
need_var AWS_REGION
urls=$(tf output -json ecr_repository_urls)
registry=$(jq -r '.proxy' <<<"$urls" | cut -d/ -f1)
say "logging in to $registry"
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$registry"
for image in proxy app; do
    repo=$(jq -r ".$image" <<<"$urls")
    name=${repo#*/}
    if aws ecr describe-images --repository-name "$name" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
        say "$name:$tag is already in ECR"
        continue
    fi
    say "building $name:$tag"
    docker build --platform linux/amd64 -f "Dockerfile.$image" -t "$repo:$tag" .
    docker push "$repo:$tag"
done
