#!/usr/bin/env bash
# terraform init against the S3 state with DynamoDB locking
# (infra/backend.hcl.example), from TF_STATE_BUCKET, TF_LOCK_TABLE, AWS_REGION.
# shellcheck source=scripts/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_var TF_STATE_BUCKET TF_LOCK_TABLE AWS_REGION
say "terraform init (state s3://$TF_STATE_BUCKET)"
tf init -input=false -no-color \
    -backend-config="bucket=$TF_STATE_BUCKET" \
    -backend-config="key=retainwise/prod/terraform.tfstate" \
    -backend-config="region=$AWS_REGION" \
    -backend-config="dynamodb_table=$TF_LOCK_TABLE" \
    -backend-config="encrypt=true"
