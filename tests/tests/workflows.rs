//! The GitHub workflows (`.github/workflows/`), read as YAML: the order and
//! conditions of the deploy pipeline (plan only on pull requests, deploy
//! only from main in the production environment, migrations before the
//! apply, the smoke test after it and the rollback on its failure), OIDC
//! instead of stored AWS keys, least permissions per job, and every action
//! pinned by commit. Nothing here reaches GitHub: the files are parsed.
//! `scripts/check-infra.sh` runs actionlint, zizmor and checkov on the same
//! files.

use std::fs;
use std::path::Path;

use retainwise_e2e::workspace_root;
use serde_json::{Value, json};

fn read(path: &str) -> String {
    fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn workflow(name: &str) -> Value {
    let path = format!(".github/workflows/{name}");
    serde_saphyr::from_str(&read(&path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn workflows() -> Vec<(String, String)> {
    let dir = workspace_root().join(".github/workflows");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect(".github/workflows exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into();
            (name, fs::read_to_string(&p).expect("readable workflow"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the ci and deploy workflows exist");
    files
}

fn job<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    let job = &workflow["jobs"][name];
    assert!(job.is_object(), "job {name} exists");
    job
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_array().expect("the job has steps")
}

/// The position of the step with this `id`.
fn position(job: &Value, id: &str) -> usize {
    steps(job)
        .iter()
        .position(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step with id {id}"))
}

fn step<'a>(job: &'a Value, id: &str) -> &'a Value {
    &steps(job)[position(job, id)]
}

fn run(step: &Value) -> &str {
    step["run"].as_str().unwrap_or_default()
}

fn ids(job: &Value) -> Vec<&str> {
    steps(job)
        .iter()
        .map(|s| s["id"].as_str().unwrap_or(""))
        .collect()
}

/// Asserts that the steps with these ids exist and come in this order.
fn assert_in_order(job: &Value, order: &[&str]) {
    let positions: Vec<usize> = order.iter().map(|id| position(job, id)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "steps run in the order {order:?}; the job has {:?}",
        ids(job)
    );
}

#[test]
fn every_third_party_action_is_pinned_by_commit_sha_with_its_version() {
    let mut seen = 0;
    for (name, text) in workflows() {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("- ");
            let Some(reference) = line.strip_prefix("uses:") else {
                continue;
            };
            let reference = reference.trim();
            if reference.starts_with("./") {
                continue;
            }
            seen += 1;
            let (action, rest) = reference
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: {reference} names no version"));
            let (sha, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: {action} is pinned by a full commit SHA, not {sha:?}"
            );
            let version = comment.trim();
            assert!(
                version.starts_with('v') && version[1..].split('.').count() == 3,
                "{name}: {action}@{sha} carries its version in a comment (# vX.Y.Z), got {comment:?}"
            );
        }
    }
    assert!(seen >= 4, "the workflows use actions ({seen} seen)");
}

#[test]
fn workflows_grant_nothing_by_default_and_each_job_only_what_it_needs() {
    let expected = [
        ("ci.yml", "test", json!({"contents": "read"})),
        (
            "deploy.yml",
            "plan",
            json!({"contents": "read", "id-token": "write", "pull-requests": "write"}),
        ),
        (
            "deploy.yml",
            "deploy",
            json!({"contents": "read", "id-token": "write"}),
        ),
    ];
    for (file, _) in workflows() {
        let w = workflow(&file);
        assert_eq!(
            w["permissions"],
            json!({}),
            "{file}: no permission at the top"
        );
        for (name, job) in w["jobs"].as_object().expect("jobs") {
            let want = expected
                .iter()
                .find(|(f, j, _)| *f == file && j == name)
                .map(|(_, _, p)| p)
                .unwrap_or_else(|| panic!("{file}: job {name} is not reviewed by this test"));
            assert_eq!(&job["permissions"], want, "{file}: permissions of {name}");
        }
    }
}

#[test]
fn aws_is_reached_through_oidc_and_no_long_lived_key_exists() {
    for (file, text) in workflows() {
        for needle in [
            "aws-access-key-id",
            "aws-secret-access-key",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "secrets.",
        ] {
            assert!(
                !text.contains(needle),
                "{file} mentions {needle}: AWS is reached with OIDC only"
            );
        }
        let w = workflow(&file);
        for (name, job) in w["jobs"].as_object().expect("jobs") {
            let logins: Vec<&Value> = steps(job)
                .iter()
                .filter(|s| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
                })
                .collect();
            for login in &logins {
                let with = login["with"].as_object().expect("inputs");
                let mut keys: Vec<&str> = with.keys().map(String::as_str).collect();
                keys.sort();
                assert_eq!(
                    keys,
                    ["aws-region", "role-to-assume"],
                    "{file}/{name}: a role through OIDC"
                );
            }
            let oidc = job["permissions"]["id-token"] == "write";
            assert_eq!(
                oidc,
                !logins.is_empty(),
                "{file}/{name}: id-token: write exactly where AWS is signed in to"
            );
        }
    }
    let deploy = workflow("deploy.yml");
    assert_eq!(
        step(job(&deploy, "plan"), "aws")["with"]["role-to-assume"],
        "${{ vars.AWS_PLAN_ROLE_ARN }}"
    );
    assert_eq!(
        step(job(&deploy, "deploy"), "aws")["with"]["role-to-assume"],
        "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    );
}

#[test]
fn the_plan_runs_only_on_pull_requests_touching_infra_and_posts_one_comment() {
    let deploy = workflow("deploy.yml");
    assert_eq!(
        deploy["on"]["pull_request"]["paths"],
        json!(["infra/**"]),
        "pull requests that touch infra/"
    );
    let plan = job(&deploy, "plan");
    assert_eq!(plan["if"], "github.event_name == 'pull_request'");
    assert_in_order(
        plan,
        &[
            "checkout", "fmt", "aws", "init", "validate", "plan", "comment",
        ],
    );
    assert!(run(step(plan, "fmt")).contains("fmt -check"));
    assert!(run(step(plan, "init")).contains("scripts/deploy/terraform-init.sh"));
    assert!(run(step(plan, "validate")).contains("validate"));
    assert!(run(step(plan, "plan")).contains("scripts/deploy/plan.sh"));
    // Every step up to the plan fails the job; the comment is posted for a
    // failed plan too, so the author sees why.
    for id in ["fmt", "init", "validate", "plan"] {
        let s = step(plan, id);
        assert!(s["if"].is_null(), "{id} has no condition");
        assert!(s["continue-on-error"].is_null(), "{id} fails the job");
    }
    let comment = step(plan, "comment");
    assert_eq!(
        comment["if"],
        "${{ !cancelled() && steps.init.outcome == 'success' }}"
    );
    assert!(run(comment).contains("scripts/deploy/plan-comment.sh"));
    // One comment, updated in place: found by its marker, then PATCHed.
    let script = read("scripts/deploy/plan-comment.sh");
    assert!(script.contains("marker="));
    assert!(script.contains("--method PATCH"));
    assert!(script.contains("startswith(\\\"$marker\\\")"));
}

#[test]
fn deploy_runs_only_from_main_in_the_production_environment_one_at_a_time() {
    let deploy = workflow("deploy.yml");
    assert_eq!(deploy["on"]["push"]["branches"], json!(["main"]));
    assert!(
        deploy["on"]
            .as_object()
            .is_some_and(|on| on.contains_key("workflow_dispatch")),
        "a manual dispatch"
    );
    let job = job(&deploy, "deploy");
    assert_eq!(
        job["if"],
        "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"
    );
    assert_eq!(job["environment"]["name"], "production");
    assert_eq!(job["concurrency"]["group"], "deploy-production");
    assert_eq!(job["concurrency"]["cancel-in-progress"], false);
}

#[test]
fn deploy_pushes_images_migrates_applies_smoke_tests_and_rolls_back_in_that_order() {
    let deploy = workflow("deploy.yml");
    let job = job(&deploy, "deploy");
    assert_in_order(
        job,
        &[
            "checkout", "aws", "init", "previous", "images", "migrate", "apply", "smoke",
            "rollback",
        ],
    );
    assert_eq!(job["env"]["IMAGE_TAG"], "${{ github.sha }}");
    let expect_run = [
        ("previous", "scripts/deploy/running-tags.sh"),
        ("images", "scripts/deploy/push-images.sh \"$IMAGE_TAG\""),
        ("migrate", "scripts/deploy/migrate.sh \"$IMAGE_TAG\""),
        (
            "apply",
            "scripts/deploy/apply.sh \"$IMAGE_TAG\" \"$IMAGE_TAG\"",
        ),
        ("smoke", "scripts/smoke-test.sh \"$PRODUCTION_URL\""),
    ];
    for (id, command) in expect_run {
        let s = step(job, id);
        assert!(
            run(s).contains(command),
            "step {id} runs {command}: {}",
            run(s)
        );
        // Each step fails the run when it fails, and none is skipped.
        assert!(s["if"].is_null(), "step {id} has no condition");
        assert!(s["continue-on-error"].is_null(), "step {id} fails the run");
    }
    assert!(
        run(step(job, "smoke")).contains("web_target_group_arn"),
        "the smoke test checks the target group's health"
    );
    let rollback = step(job, "rollback");
    assert_eq!(
        rollback["if"],
        "${{ failure() && steps.smoke.outcome == 'failure' && steps.previous.outputs.app_tag != '' }}"
    );
    let script = run(rollback);
    assert!(
        script.contains("scripts/deploy/apply.sh \"$PREVIOUS_PROXY_TAG\" \"$PREVIOUS_APP_TAG\"")
    );
    assert!(
        script.trim_end().ends_with("exit 1"),
        "the rollback fails the run"
    );
    assert_eq!(
        rollback["env"]["PREVIOUS_APP_TAG"],
        "${{ steps.previous.outputs.app_tag }}"
    );
}

#[test]
fn migrations_and_apply_keep_every_task_definition_in_terraform() {
    let migrate = read("scripts/deploy/migrate.sh");
    let target = migrate
        .find("-target=aws_ecs_task_definition.migrate")
        .expect("the migrate task definition is registered through Terraform");
    let run_task = migrate.find("aws ecs run-task").expect("runs the task");
    assert!(target < run_task, "registered before it runs");
    assert!(migrate.contains("aws ecs wait tasks-stopped"));
    assert!(
        migrate.contains("if [ \"$code\" != 0 ]"),
        "a non-zero exit stops the deploy"
    );
    let apply = read("scripts/deploy/apply.sh");
    assert!(apply.contains("aws ecs wait services-stable"));
    assert!(apply.contains("worker_service_name") && apply.contains("web_service_name"));
    for script in script_files() {
        let text = fs::read_to_string(&script).expect("readable script");
        for forbidden in ["register-task-definition", "update-service"] {
            assert!(
                !text.contains(forbidden),
                "{}: {forbidden} outside Terraform would drift",
                script.display()
            );
        }
    }
}

fn script_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in ["scripts", "scripts/deploy", "scripts/ci"] {
        for entry in fs::read_dir(workspace_root().join(dir)).expect("a scripts folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|x| x == "sh") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn ci_runs_the_test_command_in_debian_bookworm_as_root_with_cargo_caching() {
    let ci = workflow("ci.yml");
    let on = ci["on"].as_object().expect("triggers");
    assert!(on.contains_key("pull_request") && on.contains_key("push"));
    let test = job(&ci, "test");
    assert_eq!(test["runs-on"], "ubuntu-latest");
    assert_eq!(test["container"]["image"], "debian:bookworm");
    assert_eq!(test["container"]["options"], "--user root");
    assert_in_order(
        test,
        &["checkout", "system-packages", "rust", "cargo-cache", "test"],
    );
    let cache = step(test, "cargo-cache");
    assert!(
        cache["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache@"))
    );
    assert!(
        cache["with"]["key"]
            .as_str()
            .is_some_and(|k| k.contains("hashFiles('Cargo.lock')"))
    );
    assert!(
        cache["with"]["path"]
            .as_str()
            .is_some_and(|p| p.lines().any(|l| l.trim() == "target"))
    );
    assert!(run(step(test, "test")).contains("bash .ci/run"));
    assert!(read(".ci/run").contains("scripts/test.sh"));
}

#[test]
fn every_script_a_workflow_runs_exists() {
    let mut seen = 0;
    for (file, text) in workflows() {
        for word in text.split_whitespace() {
            let word = word.trim_matches('"');
            if (word.starts_with("scripts/") || word.starts_with(".ci/")) && !word.contains('*') {
                seen += 1;
                assert!(
                    Path::new(&workspace_root().join(word)).is_file(),
                    "{file} runs {word}, which does not exist"
                );
            }
        }
    }
    assert!(seen >= 8, "the workflows call the scripts ({seen} seen)");
}

/// Runs `scripts/deploy/plan-comment.sh` with a stand-in `gh` (GitHub is
/// out of reach here) that answers the comment search with `existing`
/// (a comment id, or nothing) and records every call. Returns the calls.
fn post_plan_comment(existing: &str, plan: &str) -> (std::process::ExitStatus, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "retainwise-plan-comment-{}-{}",
        std::process::id(),
        existing.len()
    ));
    fs::create_dir_all(&dir).expect("temp dir");
    let gh = dir.join("gh");
    fs::write(
        &gh,
        format!(
            "#!/bin/sh\necho \"$*\" >> \"{calls}\"\n\
             case \"$*\" in *--paginate*) [ -n \"{existing}\" ] && echo \"{existing}\";; esac\n\
             for a in \"$@\"; do case \"$a\" in body=@*) cat \"${{a#body=@}}\" > \"{body}\";; esac; done\n",
            calls = dir.join("calls").display(),
            body = dir.join("body").display(),
        ),
    )
    .expect("write gh");
    fs::set_permissions(&gh, fs::Permissions::from_mode(0o755)).expect("chmod");
    let plan_file = dir.join("plan.txt");
    fs::write(&plan_file, plan).expect("write plan");
    let path = std::env::var("PATH").unwrap_or_default();
    let status = std::process::Command::new("bash")
        .arg(workspace_root().join("scripts/deploy/plan-comment.sh"))
        .arg(&plan_file)
        .env("PATH", format!("{}:{path}", dir.display()))
        .env("GH_TOKEN", "not-a-token")
        .env("GITHUB_REPOSITORY", "owner/retainwise")
        .env("PR_NUMBER", "12")
        .env("PLAN_OUTCOME", "success")
        .status()
        .expect("bash runs");
    let calls = fs::read_to_string(dir.join("calls")).unwrap_or_default();
    let body = fs::read_to_string(dir.join("body")).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    (status, format!("{calls}---\n{body}"))
}

#[test]
fn the_plan_comment_is_posted_once_then_updated_in_place() {
    let (status, first) = post_plan_comment("", "Plan: 1 to add, 0 to change, 0 to destroy.");
    assert!(status.success(), "{first}");
    assert!(
        first.contains("--method POST repos/owner/retainwise/issues/12/comments"),
        "no comment yet: one is posted\n{first}"
    );
    assert!(!first.contains("PATCH"), "{first}");
    assert!(first.contains("<!-- retainwise: terraform plan -->"));
    assert!(first.contains("Plan: 1 to add"));

    let (status, again) = post_plan_comment("4242", "Plan: 2 to add, 0 to change, 0 to destroy.");
    assert!(status.success(), "{again}");
    assert!(
        again.contains("--method PATCH repos/owner/retainwise/issues/comments/4242"),
        "the existing comment is updated\n{again}"
    );
    assert!(
        !again.contains("--method POST"),
        "never a second comment\n{again}"
    );
    assert!(again.contains("Plan: 2 to add"));
}
