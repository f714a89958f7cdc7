//! IAM: no wildcard where it widens access, task roles with what their
//! code calls, and the CI roles (`infra/ci.tf`): their trust conditions
//! and what each may do.

use std::collections::BTreeSet;

use hcl::Body;
use serde_json::{Map, Value, json};

use crate::hcl_eval::{Infra, attr_expr, blocks, infra};

// --- IAM -----------------------------------------------------------------------------------

/// Actions that have no resource type, so AWS requires `"*"` as their resource.
const RESOURCELESS_ACTIONS: &[&str] = &[
    "ecr:GetAuthorizationToken",
    "ecs:ListTasks",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "kms:ListAliases",
    "sts:GetCallerIdentity",
];

/// Services that hold customer data, images, secrets or the state: never a
/// wildcard action on them, in any policy.
const DATA_SERVICES: &[&str] = &[
    "s3",
    "sqs",
    "rds",
    "dynamodb",
    "secretsmanager",
    "kms",
    "ecr",
    "sns",
    "ssm",
];

/// The policy documents GitHub Actions' roles get (infra/ci.tf).
const CI_DOCUMENTS: &[&str] = &["ci_read", "ci_deploy"];

/// The statements of a policy document, with its actions and resources
/// evaluated strictly: an expression the evaluator cannot resolve is an
/// error, never a pass.
struct Statement {
    doc: String,
    sid: String,
    deny: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Value>,
}

fn statements(infra: &Infra, doc: &str, body: &Body) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    for (i, statement) in blocks(body, "statement").enumerate() {
        let place = format!("{doc} statement {i}");
        let strings = |key: &str| -> Result<Vec<String>, String> {
            let Some(expr) = attr_expr(statement, key) else {
                return Ok(Vec::new());
            };
            let value = infra
                .resolve(expr)
                .map_err(|e| format!("{place}: {key}: {e}"))?;
            let items = value
                .as_array()
                .ok_or_else(|| format!("{place}: {key} is not a list: {value}"))?;
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{place}: {key} holds {v}, not a string"))
                })
                .collect()
        };
        let effect = match attr_expr(statement, "effect") {
            Some(e) => infra
                .resolve(e)
                .map_err(|e| format!("{place}: effect: {e}"))?,
            None => json!("Allow"),
        };
        let sid = match attr_expr(statement, "sid") {
            Some(e) => infra.resolve(e).map_err(|e| format!("{place}: sid: {e}"))?,
            None => json!(""),
        };
        let conditions = blocks(statement, "condition")
            .map(|c| {
                let mut map = Map::new();
                for key in ["test", "variable", "values"] {
                    let expr = attr_expr(c, key)
                        .ok_or_else(|| format!("{place}: condition without {key}"))?;
                    let value = infra
                        .resolve(expr)
                        .map_err(|e| format!("{place}: condition {key}: {e}"))?;
                    map.insert(key.to_owned(), value);
                }
                Ok(Value::Object(map))
            })
            .collect::<Result<_, String>>()?;
        out.push(Statement {
            doc: doc.to_owned(),
            sid: sid.as_str().unwrap_or_default().to_owned(),
            deny: effect == "Deny",
            actions: strings("actions")?,
            resources: strings("resources")?,
            conditions,
        });
    }
    Ok(out)
}

/// What is wrong with the policy documents of `infra`, one line per
/// finding: wildcard actions (or actions not known before apply), data
/// actions on `"*"`, and for the CI roles a wildcard on a data service or a
/// wildcard that is not a verb prefix.
fn policy_findings(infra: &Infra) -> Vec<String> {
    let mut findings = Vec::new();
    for (doc, body) in infra.data("aws_iam_policy_document") {
        let statements = match statements(infra, doc, body) {
            Ok(s) => s,
            Err(e) => {
                findings.push(e);
                continue;
            }
        };
        for s in statements {
            // A wildcard in a Deny widens the protection; the key policy's
            // standard statement lets the account's IAM decide who uses the key.
            if s.deny || (s.doc == "kms_data" && s.sid == "AccountAdministersThroughIam") {
                continue;
            }
            let ci = CI_DOCUMENTS.contains(&s.doc.as_str());
            for action in &s.actions {
                if action.contains('«') {
                    findings.push(format!(
                        "{}: action {action} is not known before apply",
                        s.doc
                    ));
                    continue;
                }
                let (service, verb) = action.split_once(':').unwrap_or(("", action));
                if action.contains('*') {
                    let verb_prefix = verb.len() > 1
                        && verb.ends_with('*')
                        && !verb[..verb.len() - 1].contains('*')
                        && verb.starts_with(|c: char| c.is_ascii_uppercase());
                    if !ci {
                        findings.push(format!("{}: wildcard action {action}", s.doc));
                    } else if DATA_SERVICES.contains(&service) {
                        findings.push(format!(
                            "{}: wildcard action {action} on a data service",
                            s.doc
                        ));
                    } else if !verb_prefix {
                        findings.push(format!(
                            "{}: wildcard action {action} is not a verb prefix",
                            s.doc
                        ));
                    }
                }
                let wildcard_resource = s.resources.iter().any(|r| r == "*");
                let in_key_policy = s.doc == "kms_data";
                // The CI roles manage the network, balancer and firewall,
                // whose calls are mostly resourceless; data stays scoped.
                let non_data = ci && !DATA_SERVICES.contains(&service);
                if wildcard_resource
                    && !in_key_policy
                    && !RESOURCELESS_ACTIONS.contains(&action.as_str())
                    && !non_data
                {
                    findings.push(format!("{}: {action} on resource \"*\"", s.doc));
                }
            }
        }
    }
    findings
}

#[test]
fn no_policy_allows_a_wildcard_action_or_data_on_a_wildcard_resource() {
    let infra = infra();
    assert!(infra.data("aws_iam_policy_document").len() > 5);
    let findings = policy_findings(infra);
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    // Every inline policy is one of those documents, not hand-written JSON.
    for (name, body) in infra.resources("aws_iam_role_policy") {
        let policy = attr_expr(body, "policy").expect("policy").to_string();
        assert!(
            policy.starts_with("data.aws_iam_policy_document."),
            "aws_iam_role_policy.{name} uses a checked policy document"
        );
    }
    for (name, body) in infra.resources("aws_iam_role_policy_attachment") {
        let arn = infra.attr(body, "policy_arn").to_string();
        assert!(
            !arn.contains("FullAccess")
                && !arn.contains("AdministratorAccess")
                && !arn.contains("PowerUser"),
            "{name} attaches a broad managed policy: {arn}"
        );
    }
    assert!(
        infra.resources("aws_iam_policy").is_empty(),
        "no standalone policies to audit"
    );
}

/// A policy document in a small configuration of its own, for the checks
/// above to judge.
fn policy_infra(statement: &str) -> Infra {
    let text = format!(
        r#"
variable "project" {{
  default = "retainwise"
}}
variable "service" {{
  default = "s3"
}}
variable "everything" {{
  default = "*"
}}
variable "chosen_at_apply" {{
  type = string
}}
locals {{
  all_actions = "*"
  one_service = "${{var.service}}:*"
}}
data "aws_iam_policy_document" "web_task" {{
  statement {{
{statement}
  }}
}}
"#
    );
    Infra::parse(vec![("iam.tf".to_owned(), text)])
}

#[test]
fn a_wildcard_behind_an_expression_is_caught_and_an_unevaluable_policy_fails() {
    let plain = policy_infra(
        r#"    actions = ["s3:GetObject"]
    resources = ["arn:aws:s3:::bucket/key"]"#,
    );
    assert_eq!(policy_findings(&plain), Vec::<String>::new());

    for (statement, expected) in [
        // A wildcard written out.
        (
            r#"    actions = ["s3:*"]
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "wildcard action s3:*",
        ),
        // Behind a local.
        (
            r#"    actions = [local.all_actions]
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "wildcard action *",
        ),
        // Inside a template, behind a variable's default.
        (
            r#"    actions = ["${var.service}:*"]
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "wildcard action s3:*",
        ),
        // A local that is itself a template.
        (
            r#"    actions = [local.one_service]
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "wildcard action s3:*",
        ),
        // Through concat.
        (
            r#"    actions = concat(["s3:GetObject"], [var.everything])
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "wildcard action *",
        ),
        // A resource "*" behind a variable.
        (
            r#"    actions = ["s3:GetObject"]
    resources = [var.everything]"#,
            "s3:GetObject on resource \"*\"",
        ),
        // An action only known at apply time.
        (
            r#"    actions = [var.chosen_at_apply]
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "is not known before apply",
        ),
        // A function the evaluator does not know: a failure, not a pass.
        (
            r#"    actions = split(",", "s3:GetObject,s3:*")
    resources = ["arn:aws:s3:::bucket/*"]"#,
            "cannot evaluate",
        ),
        (
            r#"    actions = ["s3:GetObject"]
    resources = [var.project == "retainwise" ? "*" : "arn:aws:s3:::bucket"]"#,
            "cannot evaluate",
        ),
    ] {
        let findings = policy_findings(&policy_infra(statement));
        assert!(
            findings.iter().any(|f| f.contains(expected)),
            "expected a finding containing {expected:?} for\n{statement}\ngot {findings:?}"
        );
    }
}

fn document_actions(infra: &Infra, doc: &str) -> BTreeSet<String> {
    let body = infra
        .data("aws_iam_policy_document")
        .into_iter()
        .find(|(n, _)| *n == doc)
        .unwrap_or_else(|| panic!("policy document {doc} exists"))
        .1;
    statements(infra, doc, body)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .flat_map(|s| s.actions)
        .collect()
}

#[test]
fn task_roles_get_the_data_actions_their_code_needs() {
    let infra = infra();
    let actions = |doc: &str| document_actions(infra, doc);
    let web = actions("web_task");
    for a in ["s3:PutObject", "s3:GetObject", "sqs:SendMessage"] {
        assert!(web.contains(a), "web task may {a}");
    }
    for a in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
        assert!(!web.contains(a), "web task may not {a}");
    }
    let worker = actions("worker_task");
    for a in [
        "s3:GetObject",
        "s3:PutObject",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    ] {
        assert!(worker.contains(a), "worker may {a}");
    }
    assert!(!worker.contains("sqs:SendMessage"), "worker may not send");
    let execution = actions("execution");
    for a in [
        "ecr:BatchGetImage",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
    ] {
        assert!(execution.contains(a), "execution role may {a}");
    }
}

// --- CI roles (infra/ci.tf) ---------------------------------------------------------------

fn one_statement<'a>(infra: &'a Infra, doc: &str) -> (&'a Body, Statement) {
    let body = infra
        .data("aws_iam_policy_document")
        .into_iter()
        .find(|(n, _)| *n == doc)
        .unwrap_or_else(|| panic!("policy document {doc} exists"))
        .1;
    let mut all = statements(infra, doc, body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1, "{doc} has one statement");
    let statement = blocks(body, "statement").next().expect("a statement");
    (statement, all.remove(0))
}

/// The inline policies of a role, by document name.
fn role_documents(infra: &Infra, role: &str) -> BTreeSet<String> {
    infra
        .resources("aws_iam_role_policy")
        .into_iter()
        .filter(|(_, b)| {
            attr_expr(b, "role").map(|e| e.to_string()) == Some(format!("aws_iam_role.{role}.id"))
        })
        .map(|(_, b)| {
            let policy = attr_expr(b, "policy").expect("policy").to_string();
            policy
                .strip_prefix("data.aws_iam_policy_document.")
                .and_then(|p| p.strip_suffix(".json"))
                .unwrap_or(&policy)
                .to_owned()
        })
        .collect()
}

#[test]
fn ci_roles_trust_only_this_repositorys_pull_requests_and_its_production_environment() {
    let infra = infra();
    let provider = infra.resource("aws_iam_openid_connect_provider", "github");
    let url = infra
        .resolve(attr_expr(provider, "url").expect("url"))
        .expect("the provider URL evaluates");
    assert_eq!(url, "https://token.actions.githubusercontent.com");
    assert_eq!(
        infra.attr(provider, "client_id_list"),
        json!(["sts.amazonaws.com"])
    );

    for (role, doc, sub) in [
        (
            "ci_plan",
            "ci_plan_assume",
            "repo:«var.github_repository»:pull_request",
        ),
        (
            "ci_deploy",
            "ci_deploy_assume",
            "repo:«var.github_repository»:environment:production",
        ),
    ] {
        let body = infra.resource("aws_iam_role", role);
        assert_eq!(
            attr_expr(body, "assume_role_policy").map(|e| e.to_string()),
            Some(format!("data.aws_iam_policy_document.{doc}.json")),
            "{role} is trusted through {doc}"
        );
        let (block, statement) = one_statement(infra, doc);
        assert!(!statement.deny);
        assert_eq!(
            statement.actions,
            ["sts:AssumeRoleWithWebIdentity"],
            "{doc}"
        );
        let principals: Vec<&Body> = blocks(block, "principals").collect();
        assert_eq!(principals.len(), 1, "{doc}: one principal");
        assert_eq!(infra.attr(principals[0], "type"), "Federated");
        assert_eq!(
            infra.resolve(attr_expr(principals[0], "identifiers").expect("identifiers")),
            Ok(json!(["«aws_iam_openid_connect_provider.github.arn»"])),
            "{doc}: GitHub's OIDC provider, nothing else"
        );
        // Exactly two conditions, both exact matches: no StringLike, no
        // wildcard that would let another repository, branch or event in.
        let mut conditions = statement.conditions.clone();
        conditions.sort_by_key(|c| c["variable"].to_string());
        assert_eq!(
            conditions,
            [
                json!({"test": "StringEquals", "variable": "token.actions.githubusercontent.com:aud", "values": ["sts.amazonaws.com"]}),
                json!({"test": "StringEquals", "variable": "token.actions.githubusercontent.com:sub", "values": [sub]}),
            ],
            "{doc}: trust conditions"
        );
    }

    for name in ["github_repository", "state_bucket"] {
        let variable = infra
            .variables
            .get(name)
            .unwrap_or_else(|| panic!("variable {name} exists"));
        assert!(
            attr_expr(variable, "default").is_none(),
            "{name} is given per deployment, not defaulted"
        );
    }
    assert!(
        blocks(&infra.variables["github_repository"], "validation")
            .next()
            .is_some(),
        "github_repository is validated (OWNER/NAME, no wildcard)"
    );
}

#[test]
fn ci_plan_reads_no_data_and_ci_deploy_writes_only_the_projects_resources() {
    let infra = infra();
    assert_eq!(
        role_documents(infra, "ci_plan"),
        BTreeSet::from(["ci_read".to_owned()])
    );
    assert_eq!(
        role_documents(infra, "ci_deploy"),
        BTreeSet::from(["ci_read".to_owned(), "ci_deploy".to_owned()])
    );
    let state_object = "arn:«data.aws_partition.current.partition»:s3:::«var.state_bucket»/retainwise/prod/terraform.tfstate";
    let read = |doc: &str| -> Vec<Statement> {
        let body = infra
            .data("aws_iam_policy_document")
            .into_iter()
            .find(|(n, _)| *n == doc)
            .expect("document")
            .1;
        statements(infra, doc, body).unwrap_or_else(|e| panic!("{e}"))
    };

    // Plan: read verbs only; the state object is the one object it reads;
    // the lock table is the one thing it writes.
    for s in read("ci_read") {
        assert!(!s.deny);
        for action in &s.actions {
            let verb = action.split_once(':').map_or("", |(_, v)| v);
            let reads = ["Describe", "List", "Get"]
                .iter()
                .any(|p| verb.starts_with(p));
            if action == "dynamodb:PutItem" || action == "dynamodb:DeleteItem" {
                assert!(
                    s.resources
                        .iter()
                        .all(|r| r.ends_with(":table/retainwise-terraform-locks")),
                    "ci_read: {action} on the lock table only: {:?}",
                    s.resources
                );
                continue;
            }
            assert!(reads, "ci_read: {action} is not a read");
            assert!(
                action != "secretsmanager:GetSecretValue" && action != "kms:Decrypt",
                "ci_read: {action} reads a secret"
            );
            if action == "s3:GetObject" {
                assert_eq!(
                    s.resources,
                    [state_object],
                    "ci_read: no object but the state"
                );
            }
        }
    }

    // Deploy: no reading of data, IAM writes on the project's roles only,
    // PassRole for the task roles to ECS only, run-task for migrate only.
    let task_roles: BTreeSet<String> = [
        "execution",
        "web_task",
        "worker_task",
        "migrate_task",
        "scraper_execution",
        "scraper_task",
    ]
    .iter()
    .map(|r| format!("«aws_iam_role.{r}.arn»"))
    .collect();
    let mut passes = 0;
    let mut runs = 0;
    for s in read("ci_deploy") {
        assert!(!s.deny);
        for action in &s.actions {
            for forbidden in [
                "s3:GetObject",
                "s3:DeleteObject",
                "secretsmanager:GetSecretValue",
                "kms:Decrypt",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
                "sqs:PurgeQueue",
                "rds:DeleteDBInstance",
                "iam:CreateOpenIDConnectProvider",
                "iam:AttachRolePolicy",
            ] {
                assert_ne!(action, forbidden, "ci_deploy may not {forbidden}");
            }
            if action == "s3:PutObject" {
                assert_eq!(
                    s.resources,
                    [state_object],
                    "ci_deploy writes no object but the state"
                );
            }
            if action == "iam:PassRole" {
                passes += 1;
                let resources: BTreeSet<String> = s.resources.iter().cloned().collect();
                assert_eq!(resources, task_roles, "PassRole: the task roles only");
                assert_eq!(
                    s.conditions,
                    [
                        json!({"test": "StringEquals", "variable": "iam:PassedToService", "values": ["ecs-tasks.amazonaws.com"]})
                    ]
                );
            } else if let Some(verb) = action.strip_prefix("iam:") {
                let writes = !["Get", "List"].iter().any(|p| verb.starts_with(p));
                if writes {
                    assert!(
                        s.resources
                            .iter()
                            .all(|r| r.ends_with(":role/retainwise-prod-*")),
                        "ci_deploy: {action} beyond the project's roles: {:?}",
                        s.resources
                    );
                }
            }
            if action == "ecs:RunTask" {
                runs += 1;
                assert!(
                    s.resources
                        .iter()
                        .all(|r| r.ends_with(":task-definition/retainwise-prod-migrate:*")),
                    "run-task runs the migrate task only: {:?}",
                    s.resources
                );
                assert_eq!(
                    s.conditions,
                    [
                        json!({"test": "ArnEquals", "variable": "ecs:cluster", "values": ["«aws_ecs_cluster.main.arn»"]})
                    ]
                );
            }
        }
    }
    assert_eq!((passes, runs), (1, 1), "one PassRole and one RunTask grant");
    // The CI roles sit outside the prefix the deploy role may change.
    for role in ["ci_plan", "ci_deploy"] {
        let name = infra
            .resolve(attr_expr(infra.resource("aws_iam_role", role), "name").expect("name"))
            .expect("the name evaluates");
        let name = name.as_str().unwrap_or_default();
        assert!(
            name.starts_with("retainwise-ci-") && !name.starts_with("retainwise-prod-"),
            "{role} is named {name}"
        );
    }
}
