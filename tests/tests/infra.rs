//! The deployment, read as text: `infra/*.tf`, `Dockerfile.proxy`,
//! `Dockerfile.app`. Nothing is applied; these tests parse the HCL and check
//! the properties issue 6 and DESIGN.md ask for, and that the settings the
//! containers get are the ones the code reads (`proxy/src/settings.rs`,
//! `proxy/src/metrics.rs`), so infrastructure and code cannot drift apart.
//!
//! A tiny evaluator resolves what the checks need: `var.x` (its default),
//! `local.x`, `jsonencode`, `concat`, `merge`, `tostring`, `tonumber` and
//! `+`/`-`. Anything else is kept as its HCL text.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::sync::OnceLock;

use hcl::expr::{BinaryOperator, Operation, TemplateExpr};
use hcl::{Body, Expression, ObjectKey};
use retainwise_e2e::workspace_root;
use serde_json::{Map, Value, json};

// --- reading infra/ --------------------------------------------------------------------

struct Infra {
    /// Every top-level block of every `.tf` file, with the file it came from.
    blocks: Vec<(String, hcl::Block)>,
    locals: HashMap<String, Expression>,
    variables: HashMap<String, Body>,
}

fn infra() -> &'static Infra {
    static INFRA: OnceLock<Infra> = OnceLock::new();
    INFRA.get_or_init(|| {
        let dir = workspace_root().join("infra");
        let mut paths: Vec<_> = fs::read_dir(&dir)
            .expect("infra/ exists")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no .tf files in infra/");
        let mut blocks = Vec::new();
        for path in paths {
            let text = fs::read_to_string(&path).expect("readable .tf file");
            let body = hcl::parse(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            let file = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for block in body.into_blocks() {
                blocks.push((file.clone(), block));
            }
        }
        let mut locals = HashMap::new();
        let mut variables = HashMap::new();
        for (_, block) in &blocks {
            match block.identifier.as_str() {
                "locals" => {
                    for attr in block.body.attributes() {
                        let old = locals.insert(attr.key.to_string(), attr.expr.clone());
                        assert!(old.is_none(), "local.{} defined twice", attr.key);
                    }
                }
                "variable" => {
                    variables.insert(label(block, 0).to_owned(), block.body.clone());
                }
                _ => {}
            }
        }
        Infra {
            blocks,
            locals,
            variables,
        }
    })
}

fn label(block: &hcl::Block, i: usize) -> &str {
    block.labels.get(i).map(|l| l.as_str()).unwrap_or("")
}

impl Infra {
    /// `resource "<kind>" "<name>"` blocks, by name.
    fn resources(&self, kind: &str) -> Vec<(&str, &Body)> {
        self.of("resource", kind)
    }

    fn data(&self, kind: &str) -> Vec<(&str, &Body)> {
        self.of("data", kind)
    }

    fn of(&self, identifier: &str, kind: &str) -> Vec<(&str, &Body)> {
        self.blocks
            .iter()
            .filter(|(_, b)| b.identifier.as_str() == identifier && label(b, 0) == kind)
            .map(|(_, b)| (label(b, 1), &b.body))
            .collect()
    }

    fn resource(&self, kind: &str, name: &str) -> &Body {
        self.resources(kind)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("resource {kind}.{name} is missing"))
    }

    /// An attribute of a body, evaluated.
    fn attr(&self, body: &Body, key: &str) -> Value {
        let expr = attr_expr(body, key).unwrap_or_else(|| panic!("attribute {key} is missing"));
        self.eval(expr)
    }

    fn eval(&self, expr: &Expression) -> Value {
        match expr {
            Expression::Null => Value::Null,
            Expression::Bool(b) => Value::Bool(*b),
            Expression::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
            Expression::String(s) => Value::String(s.clone()),
            Expression::Array(items) => Value::Array(items.iter().map(|e| self.eval(e)).collect()),
            Expression::Object(object) => {
                let mut map = Map::new();
                for (key, value) in object {
                    let key = match key {
                        ObjectKey::Identifier(id) => id.to_string(),
                        ObjectKey::Expression(e) => match self.eval(e) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    map.insert(key, self.eval(value));
                }
                Value::Object(map)
            }
            Expression::TemplateExpr(t) => match t.as_ref() {
                TemplateExpr::QuotedString(s) => Value::String(s.clone()),
                TemplateExpr::Heredoc(h) => Value::String(h.template.clone()),
            },
            Expression::Parenthesis(inner) => self.eval(inner),
            Expression::FuncCall(call) => {
                let args: Vec<Value> = call.args.iter().map(|a| self.eval(a)).collect();
                match (call.name.name.as_str(), args.as_slice()) {
                    ("jsonencode" | "tostring" | "tonumber" | "toset", [one]) => {
                        match (call.name.name.as_str(), one) {
                            ("tostring", Value::Number(n)) => Value::String(n.to_string()),
                            ("tonumber", Value::String(s)) => s
                                .parse::<i64>()
                                .map(Value::from)
                                .unwrap_or_else(|_| one.clone()),
                            _ => one.clone(),
                        }
                    }
                    ("concat", _) if args.iter().all(Value::is_array) => Value::Array(
                        args.iter()
                            .flat_map(|a| a.as_array().cloned().unwrap_or_default())
                            .collect(),
                    ),
                    ("merge", _) if args.iter().all(Value::is_object) => {
                        let mut map = Map::new();
                        for arg in &args {
                            for (k, v) in arg.as_object().into_iter().flatten() {
                                map.insert(k.clone(), v.clone());
                            }
                        }
                        Value::Object(map)
                    }
                    _ => Value::String(expr.to_string()),
                }
            }
            Expression::Operation(op) => match op.as_ref() {
                Operation::Binary(bin) => {
                    let (l, r) = (self.eval(&bin.lhs_expr), self.eval(&bin.rhs_expr));
                    match (l.as_i64(), r.as_i64(), &bin.operator) {
                        (Some(l), Some(r), BinaryOperator::Plus) => json!(l + r),
                        (Some(l), Some(r), BinaryOperator::Minus) => json!(l - r),
                        _ => Value::String(expr.to_string()),
                    }
                }
                Operation::Unary(_) => Value::String(expr.to_string()),
            },
            Expression::Traversal(_) => {
                let text = expr.to_string();
                if let Some(name) = text.strip_prefix("local.")
                    && let Some(local) = self.locals.get(name)
                {
                    return self.eval(local);
                }
                if let Some(name) = text.strip_prefix("var.")
                    && let Some(default) = self
                        .variables
                        .get(name)
                        .and_then(|v| attr_expr(v, "default"))
                {
                    return self.eval(default);
                }
                Value::String(text)
            }
            _ => Value::String(expr.to_string()),
        }
    }

    fn var_default(&self, name: &str) -> Value {
        let expr = self
            .variables
            .get(name)
            .and_then(|v| attr_expr(v, "default"))
            .unwrap_or_else(|| panic!("variable {name} has a default"));
        self.eval(expr)
    }

    /// The container definitions of an ECS task definition, by name.
    fn containers(&self, task: &str) -> Vec<Value> {
        let body = self.resource("aws_ecs_task_definition", task);
        match self.attr(body, "container_definitions") {
            Value::Array(items) => items,
            other => panic!("container_definitions of {task} is not a list: {other}"),
        }
    }

    fn container(&self, task: &str, name: &str) -> Value {
        self.containers(task)
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("task {task} has no container {name}"))
    }
}

fn attr_expr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

fn blocks<'a>(body: &'a Body, identifier: &'a str) -> impl Iterator<Item = &'a Body> + 'a {
    body.blocks()
        .filter(move |b| b.identifier.as_str() == identifier)
        .map(|b| &b.body)
}

fn block<'a>(body: &'a Body, identifier: &str) -> &'a Body {
    body.blocks()
        .find(|b| b.identifier.as_str() == identifier)
        .map(|b| &b.body)
        .unwrap_or_else(|| panic!("block {identifier} is missing"))
}

/// `environment = [{ name, value }]` of a container, as a map.
fn environment(container: &Value) -> HashMap<String, Value> {
    container["environment"]
        .as_array()
        .unwrap_or_else(|| panic!("container {} has no environment list", container["name"]))
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("env entry has a name").to_owned();
            (name, e["value"].clone())
        })
        .collect()
}

fn read(path: &str) -> String {
    fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every upper-case string literal in `proxy/src/settings.rs`'s `KEYS`
/// table: the environment names the proxy reads, keyed by setting.
fn proxy_env_names() -> HashMap<String, String> {
    let source = read("proxy/src/settings.rs");
    let start = source
        .find("const KEYS")
        .expect("proxy/src/settings.rs has a KEYS table");
    let table = &source[start..];
    let table = &table[..table.find("];").expect("the KEYS table ends with ];")];
    // String literals in order: a lower-case one names the setting, the
    // upper-case ones after it are its environment names.
    let mut names = HashMap::new();
    let mut key = String::new();
    for literal in table.split('"').skip(1).step_by(2) {
        if literal.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            key = literal.to_owned();
        } else if literal.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            names.insert(literal.to_owned(), key.clone());
        }
    }
    assert!(names.len() > 10, "read too few names from KEYS: {names:?}");
    names
}

fn as_i64(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().expect("an integer"),
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{s:?} is not a number")),
        other => panic!("{other} is not a number"),
    }
}

// --- state ------------------------------------------------------------------------------

#[test]
fn state_is_in_s3_with_dynamodb_locking_and_the_provider_is_pinned() {
    let infra = infra();
    let terraform: Vec<_> = infra
        .blocks
        .iter()
        .filter(|(_, b)| b.identifier.as_str() == "terraform")
        .map(|(_, b)| &b.body)
        .collect();
    assert_eq!(terraform.len(), 1, "one terraform block");
    let backend = terraform[0]
        .blocks()
        .find(|b| b.identifier.as_str() == "backend")
        .expect("a backend block");
    assert_eq!(label_of(backend), "s3");

    let providers = infra
        .eval(attr_expr(block(terraform[0], "required_providers"), "aws").expect("aws provider"));
    let version = providers["version"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("= ") && version[2..].split('.').count() == 3,
        "the AWS provider is pinned to one version, got {version:?}"
    );

    let example =
        hcl::parse(&read("infra/backend.hcl.example")).expect("backend.hcl.example parses");
    for key in ["bucket", "key", "region", "dynamodb_table", "encrypt"] {
        assert!(
            attr_expr(&example, key).is_some(),
            "backend.hcl.example sets {key}"
        );
    }
    assert_eq!(
        attr_expr(&example, "encrypt"),
        Some(&Expression::Bool(true))
    );
}

fn label_of(block: &hcl::Block) -> &str {
    label(block, 0)
}

// --- web service ---------------------------------------------------------------------------

#[test]
fn web_task_runs_two_essential_containers_proxy_and_app() {
    let containers = infra().containers("web");
    let names: Vec<_> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["proxy", "app"]);
    for c in &containers {
        assert_eq!(c["essential"], true, "{} is essential", c["name"]);
        assert_eq!(
            c["readonlyRootFilesystem"], true,
            "{} runs read-only",
            c["name"]
        );
    }
    let task = infra().resource("aws_ecs_task_definition", "web");
    assert_eq!(infra().attr(task, "network_mode"), "awsvpc");
    assert_eq!(
        infra().attr(task, "requires_compatibilities"),
        json!(["FARGATE"])
    );
}

#[test]
fn proxy_maps_8080_and_9090_and_the_app_maps_no_port() {
    let proxy = infra().container("web", "proxy");
    let ports: BTreeSet<i64> = proxy["portMappings"]
        .as_array()
        .expect("proxy port mappings")
        .iter()
        .map(|p| as_i64(&p["containerPort"]))
        .collect();
    assert_eq!(ports, BTreeSet::from([8080, 9090]));

    let app = infra().container("web", "app");
    assert_eq!(app["portMappings"], json!([]), "the app exposes no port");
    let env = environment(&app);
    assert_eq!(
        env["APP_LISTEN"], "127.0.0.1:3000",
        "the app listens on loopback only"
    );
}

#[test]
fn proxy_environment_uses_only_names_the_proxy_reads_and_sets_the_required_ones() {
    let known = proxy_env_names();
    let env = environment(&infra().container("web", "proxy"));
    for name in env.keys() {
        assert!(
            known.contains_key(name),
            "{name} is set on the proxy container but proxy/src/settings.rs does not read it"
        );
    }
    // Two names of one setting (PROXY_ISSUER and CLERK_ISSUER_URL) would be
    // ambiguous; the proxy refuses to start when they differ.
    let mut settings = BTreeSet::new();
    for name in env.keys() {
        assert!(
            settings.insert(&known[name]),
            "setting {} is set twice",
            known[name]
        );
    }
    for required in [
        "CLERK_JWKS_URL",
        "CLERK_ISSUER_URL",
        "CLERK_AUTHORIZED_PARTIES",
        "JWKS_CACHE_TTL",
        "JWKS_CACHE_MAX_AGE",
        "PROXY_UPSTREAM",
        "PROXY_DRAIN_TIMEOUT",
    ] {
        assert!(
            env.contains_key(required),
            "the proxy container sets {required}"
        );
    }
    assert_eq!(env["PROXY_UPSTREAM"], "http://127.0.0.1:3000");
    assert_eq!(env["PROXY_LISTEN"], "0.0.0.0:8080");
    assert_eq!(env["PROXY_ADMIN_LISTEN"], "0.0.0.0:9090");
    // Durations are whole seconds in the environment (DESIGN.md section 2).
    for name in [
        "JWKS_CACHE_TTL",
        "JWKS_CACHE_MAX_AGE",
        "PROXY_DRAIN_TIMEOUT",
    ] {
        assert!(
            as_i64(&env[name]) > 0,
            "{name} is a whole number of seconds"
        );
    }
}

#[test]
fn app_containers_use_the_app_settings() {
    // DESIGN.md section 3, plus the app's own APP_* knobs and the AWS names
    // its SDK clients read. PGPASSWORD carries the database password (sqlx
    // reads it when DATABASE_URL has none).
    let design = [
        "APP_LISTEN",
        "DATABASE_URL",
        "STORAGE_URL",
        "QUEUE_URL",
        "AWS_ENDPOINT_URL",
    ];
    let app_settings = fs::read_to_string(workspace_root().join("app/src/settings.rs")).ok();
    for (task, container) in [("web", "app"), ("worker", "worker"), ("migrate", "migrate")] {
        let c = infra().container(task, container);
        let env = environment(&c);
        for name in env.keys() {
            let known =
                design.contains(&name.as_str()) || name == "AWS_REGION" || name.starts_with("APP_");
            assert!(
                known,
                "{task}/{container} sets {name}, which the app does not read"
            );
            // Once the app's settings module is in the tree, every APP_ name
            // must be one it reads.
            if let Some(source) = &app_settings
                && name.starts_with("APP_")
            {
                assert!(
                    source.contains(&format!("\"{name}\"")),
                    "{task}/{container} sets {name}, which app/src/settings.rs does not read"
                );
            }
        }
        assert!(env.contains_key("DATABASE_URL"), "{task} sets DATABASE_URL");
        let url = env["DATABASE_URL"].as_str().unwrap_or_default();
        let userinfo = url
            .strip_prefix("postgres://")
            .and_then(|rest| rest.split_once('@'))
            .map(|(user, _)| user)
            .unwrap_or_else(|| panic!("DATABASE_URL is postgres://user@host/db: {url}"));
        assert!(
            !userinfo.contains(':'),
            "DATABASE_URL carries no password: {url}"
        );
        let secrets = c["secrets"]
            .as_array()
            .expect("the database password is a secret");
        assert!(secrets.iter().any(|s| s["name"] == "PGPASSWORD"));
    }
    for (task, container) in [("web", "app"), ("worker", "worker")] {
        let env = environment(&infra().container(task, container));
        for name in ["STORAGE_URL", "QUEUE_URL"] {
            assert!(env.contains_key(name), "{task} sets {name}");
        }
        assert!(
            env["STORAGE_URL"]
                .as_str()
                .unwrap_or_default()
                .starts_with("s3://")
        );
    }
}

#[test]
fn health_checks_use_each_binarys_healthcheck_subcommand_not_a_shell() {
    for (task, container, binary) in [
        ("web", "proxy", "retainwise-proxy"),
        ("web", "app", "retainwise-app"),
        ("worker", "worker", "retainwise-app"),
    ] {
        let c = infra().container(task, container);
        let command: Vec<&str> = c["healthCheck"]["command"]
            .as_array()
            .unwrap_or_else(|| panic!("{task}/{container} has a health check"))
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        assert_eq!(command[0], "CMD", "exec form, no shell: {command:?}");
        assert_eq!(command[1], format!("/usr/local/bin/{binary}"));
        assert_eq!(command[2], "healthcheck");
    }
    let proxy = infra().container("web", "proxy");
    let url = proxy["healthCheck"]["command"][4]
        .as_str()
        .unwrap_or_default();
    assert!(
        url.starts_with("http://127.0.0.1:9090/"),
        "the proxy checks its admin port: {url}"
    );
}

#[test]
fn stop_timeout_is_above_the_proxy_drain_and_deregistration_matches_it() {
    let proxy = infra().container("web", "proxy");
    let drain = as_i64(&environment(&proxy)["PROXY_DRAIN_TIMEOUT"]);
    for c in infra().containers("web") {
        let stop = as_i64(&c["stopTimeout"]);
        assert!(
            stop > drain,
            "{}: stopTimeout {stop} must exceed the drain {drain}",
            c["name"]
        );
        assert!(stop <= 120, "Fargate caps stopTimeout at 120 s");
    }
    let tg = infra().resource("aws_lb_target_group", "proxy");
    assert_eq!(as_i64(&infra().attr(tg, "deregistration_delay")), drain);
    // And the proxy stops before the app: it depends on it.
    assert_eq!(proxy["dependsOn"][0]["containerName"], "app");
}

#[test]
fn target_group_points_at_the_proxy_port_and_checks_readyz_on_the_admin_port() {
    let infra = infra();
    let tg = infra.resource("aws_lb_target_group", "proxy");
    assert_eq!(as_i64(&infra.attr(tg, "port")), 8080);
    assert_eq!(infra.attr(tg, "target_type"), "ip");
    let hc = block(tg, "health_check");
    assert_eq!(as_i64(&infra.attr(hc, "port")), 9090);
    assert_eq!(infra.attr(hc, "path"), "/readyz");
    assert_eq!(infra.attr(hc, "matcher"), "200");

    let service = infra.resource("aws_ecs_service", "web");
    let lb = block(service, "load_balancer");
    assert_eq!(infra.attr(lb, "container_name"), "proxy");
    assert_eq!(as_i64(&infra.attr(lb, "container_port")), 8080);
}

// --- worker ------------------------------------------------------------------------------

#[test]
fn worker_runs_the_app_image_with_no_inbound_port_and_scales_on_queue_depth() {
    let infra = infra();
    let containers = infra.containers("worker");
    assert_eq!(containers.len(), 1);
    let worker = &containers[0];
    assert_eq!(worker["command"], json!(["worker"]));
    assert_eq!(worker["portMappings"], json!([]));
    assert_eq!(
        infra.containers("web")[1]["image"],
        worker["image"],
        "the worker runs the app image"
    );
    let service = infra.resource("aws_ecs_service", "worker");
    assert_eq!(
        blocks(service, "load_balancer").count(),
        0,
        "no load balancer"
    );

    let policy = infra.resource("aws_appautoscaling_policy", "worker_queue_depth");
    let text = hcl::to_string(policy).expect("printable");
    assert!(
        text.contains("ApproximateNumberOfMessagesVisible"),
        "scales on queue depth"
    );
    assert!(
        text.contains("aws_sqs_queue.jobs.name"),
        "of the jobs queue"
    );
    assert_eq!(
        attr_expr(policy, "resource_id")
            .map(|e| e.to_string())
            .as_deref(),
        Some("aws_appautoscaling_target.worker.resource_id")
    );
}

// --- data --------------------------------------------------------------------------------

#[test]
fn jobs_queue_redrives_to_the_dead_letter_queue_after_five_receives() {
    let infra = infra();
    let jobs = infra.resource("aws_sqs_queue", "jobs");
    let redrive = infra.attr(jobs, "redrive_policy");
    assert_eq!(redrive["deadLetterTargetArn"], "aws_sqs_queue.jobs_dlq.arn");
    assert_eq!(as_i64(&redrive["maxReceiveCount"]), 5);
    let visibility = as_i64(&infra.attr(jobs, "visibility_timeout_seconds"));
    let longest = as_i64(&infra.var_default("longest_job_seconds"));
    assert!(
        visibility > longest,
        "visibility {visibility} s above the longest job {longest} s"
    );
    for name in ["jobs", "jobs_dlq"] {
        let q = infra.resource("aws_sqs_queue", name);
        assert!(
            attr_expr(q, "kms_master_key_id").is_some(),
            "{name} is encrypted"
        );
    }
    // The worker gives up after the same number of attempts.
    let env = environment(&infra.container("worker", "worker"));
    assert_eq!(as_i64(&env["APP_JOB_MAX_ATTEMPTS"]), 5);
}

#[test]
fn every_bucket_blocks_public_access_is_encrypted_versioned_tls_only_and_expires() {
    let infra = infra();
    let buckets: Vec<&str> = infra
        .resources("aws_s3_bucket")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(buckets.contains(&"data"));
    let of_bucket = |kind: &str, bucket: &str| -> Option<&Body> {
        infra
            .resources(kind)
            .into_iter()
            .find(|(_, b)| {
                attr_expr(b, "bucket").map(|e| e.to_string())
                    == Some(format!("aws_s3_bucket.{bucket}.id"))
            })
            .map(|(_, b)| b)
    };
    for bucket in buckets {
        let block_public = of_bucket("aws_s3_bucket_public_access_block", bucket)
            .unwrap_or_else(|| panic!("bucket {bucket} has a public access block"));
        for key in [
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        ] {
            assert_eq!(infra.attr(block_public, key), true, "{bucket}: {key}");
        }
        let enc = of_bucket("aws_s3_bucket_server_side_encryption_configuration", bucket)
            .unwrap_or_else(|| panic!("bucket {bucket} is encrypted"));
        assert!(
            hcl::to_string(enc)
                .expect("printable")
                .contains("sse_algorithm")
        );
        let versioning = of_bucket("aws_s3_bucket_versioning", bucket)
            .unwrap_or_else(|| panic!("bucket {bucket} is versioned"));
        assert_eq!(
            infra.attr(block(versioning, "versioning_configuration"), "status"),
            "Enabled"
        );
        assert!(
            of_bucket("aws_s3_bucket_lifecycle_configuration", bucket).is_some(),
            "bucket {bucket} has a lifecycle"
        );
        let policy = of_bucket("aws_s3_bucket_policy", bucket)
            .unwrap_or_else(|| panic!("bucket {bucket} has a policy"));
        let doc = attr_expr(policy, "policy").expect("policy").to_string();
        let doc_name = doc
            .strip_prefix("data.aws_iam_policy_document.")
            .and_then(|s| s.strip_suffix(".json"))
            .expect("the bucket policy is a policy document");
        let doc = infra
            .data("aws_iam_policy_document")
            .into_iter()
            .find(|(n, _)| *n == doc_name)
            .expect("document")
            .1;
        let tls_only = blocks(doc, "statement").any(|s| {
            attr_expr(s, "effect").map(|e| infra.eval(e)) == Some(json!("Deny"))
                && blocks(s, "condition").any(|c| {
                    infra.attr(c, "variable") == "aws:SecureTransport"
                        && infra.attr(c, "values") == json!(["false"])
                })
        });
        assert!(tls_only, "bucket {bucket} denies requests without TLS");
    }
    let data_enc =
        of_bucket("aws_s3_bucket_server_side_encryption_configuration", "data").expect("data");
    assert!(
        hcl::to_string(data_enc)
            .expect("printable")
            .contains("aws:kms")
    );
}

#[test]
fn database_is_private_encrypted_backed_up_and_its_password_is_in_secrets_manager() {
    let infra = infra();
    let db = infra.resource("aws_db_instance", "main");
    assert_eq!(infra.attr(db, "engine"), "postgres");
    assert_eq!(infra.attr(db, "storage_encrypted"), true);
    assert_eq!(infra.attr(db, "publicly_accessible"), false);
    assert_eq!(infra.attr(db, "manage_master_user_password"), true);
    assert!(attr_expr(db, "password").is_none(), "no password attribute");
    assert!(as_i64(&infra.attr(db, "backup_retention_period")) >= 7);
    assert_eq!(infra.attr(db, "deletion_protection"), true);
    let subnets = infra.attr(infra.resource("aws_db_subnet_group", "main"), "subnet_ids");
    assert_eq!(subnets, "aws_subnet.private[*].id");
    for name in infra.variables.keys() {
        let lower = name.to_lowercase();
        assert!(
            !(lower.contains("password") || lower.contains("secret")),
            "variable {name}: credentials never come from plain variables"
        );
    }
}

// --- IAM -----------------------------------------------------------------------------------

/// Actions that have no resource type, so AWS requires `"*"` as their resource.
const RESOURCELESS_ACTIONS: &[&str] = &[
    "ecr:GetAuthorizationToken",
    "ecs:ListTasks",
    "ecs:DescribeTaskDefinition",
];

#[test]
fn no_policy_allows_a_wildcard_action_or_data_on_a_wildcard_resource() {
    let infra = infra();
    let docs = infra.data("aws_iam_policy_document");
    assert!(docs.len() > 5);
    for (doc, body) in docs {
        for statement in blocks(body, "statement") {
            let effect = attr_expr(statement, "effect").map(|e| infra.eval(e));
            if effect.as_ref().is_some_and(|e| e == "Deny") {
                // A wildcard in a Deny widens the protection.
                continue;
            }
            let sid = attr_expr(statement, "sid").map(|e| infra.eval(e));
            let actions = infra.attr(statement, "actions");
            let resources = attr_expr(statement, "resources").map(|e| infra.eval(e));
            // The one exception: the key policy's standard statement that
            // lets the account's IAM decide who uses the key.
            if doc == "kms_data" && sid == Some(json!("AccountAdministersThroughIam")) {
                continue;
            }
            for action in actions.as_array().expect("actions is a list") {
                let action = action.as_str().unwrap_or_default();
                assert!(!action.contains('*'), "{doc}: wildcard action {action}");
                let wildcard_resource = resources
                    .as_ref()
                    .is_some_and(|r| r.as_array().is_some_and(|r| r.iter().any(|x| x == "*")));
                let in_key_policy = doc == "kms_data";
                if wildcard_resource && !in_key_policy {
                    assert!(
                        RESOURCELESS_ACTIONS.contains(&action),
                        "{doc}: {action} on resource \"*\""
                    );
                }
            }
        }
    }
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

#[test]
fn task_roles_get_the_data_actions_their_code_needs() {
    let infra = infra();
    let actions = |doc: &str| -> BTreeSet<String> {
        let body = infra
            .data("aws_iam_policy_document")
            .into_iter()
            .find(|(n, _)| *n == doc)
            .expect("doc")
            .1;
        blocks(body, "statement")
            .flat_map(|s| {
                infra
                    .attr(s, "actions")
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
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

// --- network -----------------------------------------------------------------------------------

#[test]
fn nothing_reaches_port_3000_and_the_load_balancer_reaches_only_the_proxy_ports() {
    let infra = infra();
    let app_port = 3000;
    let mut web_ingress = BTreeSet::new();
    for (name, rule) in infra.resources("aws_vpc_security_group_ingress_rule") {
        let from = as_i64(&infra.attr(rule, "from_port"));
        let to = as_i64(&infra.attr(rule, "to_port"));
        assert!(
            !(from..=to).contains(&app_port),
            "ingress rule {name} opens port {app_port}"
        );
        assert_ne!(
            infra.attr(rule, "ip_protocol"),
            "-1",
            "{name}: all protocols"
        );
        let sg = attr_expr(rule, "security_group_id")
            .expect("sg")
            .to_string();
        if sg == "aws_security_group.web.id" {
            let source = attr_expr(rule, "referenced_security_group_id").map(|e| e.to_string());
            assert!(
                source.is_some(),
                "{name}: web ingress comes from a security group, not a CIDR"
            );
            web_ingress.insert((from, source.unwrap_or_default()));
        }
    }
    // Nor does any rule send traffic to it.
    for (name, rule) in infra.resources("aws_vpc_security_group_egress_rule") {
        let from = as_i64(&infra.attr(rule, "from_port"));
        let to = as_i64(&infra.attr(rule, "to_port"));
        assert!(
            !(from..=to).contains(&app_port),
            "egress rule {name} opens port {app_port}"
        );
        assert_ne!(
            infra.attr(rule, "ip_protocol"),
            "-1",
            "{name}: all protocols"
        );
    }
    for (name, sg) in infra.resources("aws_security_group") {
        assert_eq!(
            blocks(sg, "ingress").count(),
            0,
            "{name}: rules are separate resources"
        );
    }
    assert!(infra.resources("aws_security_group_rule").is_empty());
    let from_alb: BTreeSet<i64> = web_ingress
        .iter()
        .filter(|(_, s)| s == "aws_security_group.alb.id")
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(from_alb, BTreeSet::from([8080, 9090]));

    let db_ingress: Vec<_> = infra
        .resources("aws_vpc_security_group_ingress_rule")
        .into_iter()
        .filter(|(_, r)| {
            attr_expr(r, "security_group_id").map(|e| e.to_string())
                == Some("aws_security_group.database.id".into())
        })
        .collect();
    assert!(!db_ingress.is_empty());
    for (name, rule) in db_ingress {
        assert_eq!(as_i64(&infra.attr(rule, "from_port")), 5432, "{name}");
        assert!(
            attr_expr(rule, "cidr_ipv4").is_none(),
            "{name}: the database is reached from task groups only"
        );
    }
}

#[test]
fn s3_and_sqs_are_reached_through_vpc_endpoints() {
    let infra = infra();
    let s3 = infra.resource("aws_vpc_endpoint", "s3");
    assert_eq!(infra.attr(s3, "vpc_endpoint_type"), "Gateway");
    let interface = infra.eval(&infra.locals["interface_endpoints"]);
    let interface = interface.as_array().expect("a list of services");
    assert!(
        interface.contains(&json!("sqs")),
        "an SQS interface endpoint"
    );
    for service in ["web", "worker"] {
        let svc = infra.resource("aws_ecs_service", service);
        let net = block(svc, "network_configuration");
        assert_eq!(infra.attr(net, "assign_public_ip"), false);
        assert_eq!(infra.attr(net, "subnets"), "aws_subnet.private[*].id");
    }
}

// --- observability ----------------------------------------------------------------------------

#[test]
fn log_groups_keep_logs_for_a_bounded_time() {
    let infra = infra();
    let groups = infra.resources("aws_cloudwatch_log_group");
    assert!(!groups.is_empty());
    for (name, group) in groups {
        let days = as_i64(&infra.attr(group, "retention_in_days"));
        assert!(days > 0, "{name} has a retention");
    }
}

#[test]
fn alarms_cover_401_rate_missing_keys_jwks_failures_and_the_queues() {
    let infra = infra();
    let metrics_source = read("proxy/src/metrics.rs");
    let alarms: HashMap<&str, String> = infra
        .resources("aws_cloudwatch_metric_alarm")
        .into_iter()
        .map(|(n, b)| (n, hcl::to_string(b).expect("printable")))
        .collect();
    let find = |needle: &[&str]| -> &str {
        alarms
            .iter()
            .find(|(_, text)| needle.iter().all(|n| text.contains(n)))
            .map(|(name, _)| *name)
            .unwrap_or_else(|| panic!("no alarm mentions all of {needle:?}"))
    };
    let rate = find(&[
        "retainwise_proxy_auth_decisions_total",
        "\"rejected\"",
        "retainwise_proxy_requests_total",
    ]);
    assert_eq!(
        as_i64(&infra.attr(
            infra.resource("aws_cloudwatch_metric_alarm", rate),
            "threshold"
        )),
        10
    );
    find(&["\"unavailable\"", "\"keys_unavailable\""]);
    find(&["retainwise_proxy_jwks_fetches_total", "\"error\""]);
    let dlq = find(&["ApproximateNumberOfMessagesVisible", "jobs_dlq"]);
    assert_eq!(
        as_i64(&infra.attr(
            infra.resource("aws_cloudwatch_metric_alarm", dlq),
            "threshold"
        )),
        0
    );
    find(&["ApproximateAgeOfOldestMessage", "aws_sqs_queue.jobs.name"]);

    // Every proxy metric an alarm or the scraper names is one the proxy exports.
    let every_text = read("infra/observability.tf");
    for word in every_text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("retainwise_proxy_") {
            assert!(
                metrics_source.contains(&format!("\"{word}\"")),
                "{word} is not a metric proxy/src/metrics.rs exports"
            );
        }
    }
}

#[test]
fn prometheus_discovers_the_admin_port_by_docker_labels() {
    let proxy = infra().container("web", "proxy");
    assert_eq!(
        proxy["dockerLabels"]["ECS_PROMETHEUS_EXPORTER_PORT"],
        "9090"
    );
    assert_eq!(
        proxy["dockerLabels"]["ECS_PROMETHEUS_METRICS_PATH"],
        "/metrics"
    );
    let config = infra().eval(&infra().locals["cwagent_config"]);
    let sd =
        &config["logs"]["metrics_collected"]["prometheus"]["ecs_service_discovery"]["docker_label"];
    assert_eq!(sd["sd_port_label"], "ECS_PROMETHEUS_EXPORTER_PORT");
    assert_eq!(sd["sd_metrics_path_label"], "ECS_PROMETHEUS_METRICS_PATH");
}

// --- images ------------------------------------------------------------------------------------

struct Dockerfile {
    name: &'static str,
    /// Instructions with continuation lines joined.
    lines: Vec<String>,
}

fn dockerfile(name: &'static str) -> Dockerfile {
    let text = read(name);
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            lines.push(std::mem::take(&mut current));
        }
    }
    Dockerfile { name, lines }
}

impl Dockerfile {
    /// The instructions of the last stage (the image that ships).
    fn runtime(&self) -> &[String] {
        let last_from = self
            .lines
            .iter()
            .rposition(|l| l.starts_with("FROM "))
            .expect("a FROM");
        &self.lines[last_from..]
    }

    fn check_image(&self, binary: &str) {
        let name = self.name;
        let froms = self.lines.iter().filter(|l| l.starts_with("FROM ")).count();
        assert!(froms >= 2, "{name}: multi-stage");
        assert!(
            self.lines.iter().any(|l| l.contains("cargo chef cook")),
            "{name}: dependencies are built in their own cached layer"
        );
        let runtime = self.runtime();
        assert!(
            runtime[0].contains("distroless"),
            "{name}: minimal runtime image without a shell, got {}",
            runtime[0]
        );
        let user = runtime
            .iter()
            .rfind(|l| l.starts_with("USER "))
            .unwrap_or_else(|| panic!("{name}: sets USER"));
        let user = user["USER ".len()..].trim();
        assert!(
            !user.starts_with('0') && !user.starts_with("root"),
            "{name}: runs as {user}"
        );
        let health = runtime
            .iter()
            .find(|l| l.starts_with("HEALTHCHECK"))
            .unwrap_or_else(|| panic!("{name}: has a HEALTHCHECK"));
        assert!(
            health.contains(&format!(
                "CMD [\"/usr/local/bin/{binary}\", \"healthcheck\""
            )),
            "{name}: HEALTHCHECK runs `{binary} healthcheck` in exec form: {health}"
        );
        assert!(
            runtime
                .iter()
                .any(|l| l.starts_with(&format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]"))),
            "{name}: exec-form ENTRYPOINT"
        );
        assert!(
            !runtime.iter().any(|l| l.starts_with("RUN ")),
            "{name}: the runtime stage needs no shell"
        );
    }
}

#[test]
fn proxy_image_is_multi_stage_distroless_non_root_with_a_binary_healthcheck() {
    dockerfile("Dockerfile.proxy").check_image("retainwise-proxy");
}

#[test]
fn app_image_is_multi_stage_distroless_non_root_and_carries_the_model() {
    let d = dockerfile("Dockerfile.app");
    d.check_image("retainwise-app");
    assert!(
        d.runtime()
            .iter()
            .any(|l| l == "COPY app/churn/model/churn-model.json /app/model/churn-model.json"),
        "the app image carries the shipped model at /app/model/churn-model.json"
    );
    assert!(
        workspace_root()
            .join("app/churn/model/churn-model.json")
            .is_file()
    );
}

#[test]
fn task_definitions_run_the_images_as_their_non_root_user() {
    for (task, container) in [
        ("web", "proxy"),
        ("web", "app"),
        ("worker", "worker"),
        ("migrate", "migrate"),
    ] {
        let c = infra().container(task, container);
        assert_eq!(c["user"], "65532:65532", "{task}/{container}");
    }
}
