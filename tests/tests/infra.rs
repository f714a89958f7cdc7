//! The deployment, read as text: `infra/*.tf`, `Dockerfile.proxy`,
//! `Dockerfile.app`. Nothing is applied; these tests parse the HCL and check
//! the properties issue 6 and DESIGN.md ask for, and that the settings the
//! containers get are the ones the code reads (`proxy/src/settings.rs`,
//! `proxy/src/metrics.rs`), so infrastructure and code cannot drift apart.
//!
//! A tiny evaluator resolves what the checks need: `var.x` (its default),
//! `local.x`, string templates, `jsonencode`, `concat`, `merge`,
//! `tostring`, `tonumber` and `+`/`-`. For plain comparisons anything else
//! is kept as its HCL text; the policy checks evaluate strictly, so an
//! expression the evaluator does not know fails them instead of passing
//! unchecked, and a reference to another resource's attribute stays a
//! marked unknown (`«aws_kms_key.data.arn»`).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::sync::OnceLock;

use hcl::expr::{BinaryOperator, Operation, TemplateExpr, TraversalOperator};
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
        let files = paths
            .iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let text = fs::read_to_string(path).expect("readable .tf file");
                (name.into_owned(), text)
            })
            .collect();
        Infra::parse(files)
    })
}

impl Infra {
    /// Parses `(file name, HCL text)` pairs.
    fn parse(files: Vec<(String, String)>) -> Infra {
        let mut blocks = Vec::new();
        for (file, text) in files {
            let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{file} does not parse: {e}"));
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
    }
}

/// How [`Infra::evaluate`] treats what it cannot evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keep the expression's text.
    Lenient,
    /// Fail, naming the expression.
    Strict,
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

    /// Evaluates `expr` for the checks that compare plain values. What the
    /// evaluator cannot resolve (a reference to another resource, a
    /// function it does not know) is kept as its HCL text, which those
    /// checks compare as text.
    fn eval(&self, expr: &Expression) -> Value {
        self.evaluate(expr, Mode::Lenient)
            .expect("lenient evaluation never fails")
    }

    /// Evaluates `expr` completely, or says which part it could not: for
    /// checks (wildcards in policies) that an unevaluated expression would
    /// otherwise pass unchecked. A reference to another resource's
    /// attribute (`aws_kms_key.data.arn`) or to a variable without a
    /// default is a value only known at apply time: it becomes
    /// `«reference»` inside the string, and the caller decides whether an
    /// unknown part is acceptable where it stands.
    fn resolve(&self, expr: &Expression) -> Result<Value, String> {
        self.evaluate(expr, Mode::Strict)
    }

    fn evaluate(&self, expr: &Expression, mode: Mode) -> Result<Value, String> {
        let strict = mode == Mode::Strict;
        // What an expression the evaluator does not know becomes.
        let unknown = || -> Result<Value, String> {
            if strict {
                Err(format!("cannot evaluate `{expr}`"))
            } else {
                Ok(Value::String(expr.to_string()))
            }
        };
        Ok(match expr {
            Expression::Null => Value::Null,
            Expression::Bool(b) => Value::Bool(*b),
            Expression::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
            Expression::String(s) => Value::String(s.clone()),
            Expression::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|e| self.evaluate(e, mode))
                    .collect::<Result<_, _>>()?,
            ),
            Expression::Object(object) => {
                let mut map = Map::new();
                for (key, value) in object {
                    let key = match key {
                        ObjectKey::Identifier(id) => id.to_string(),
                        ObjectKey::Expression(e) => match self.evaluate(e, mode)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    map.insert(key, self.evaluate(value, mode)?);
                }
                Value::Object(map)
            }
            Expression::TemplateExpr(t) => {
                let text = match t.as_ref() {
                    TemplateExpr::QuotedString(s) => s,
                    TemplateExpr::Heredoc(h) => &h.template,
                };
                if strict {
                    Value::String(self.template(text)?)
                } else {
                    Value::String(text.clone())
                }
            }
            Expression::Parenthesis(inner) => self.evaluate(inner, mode)?,
            Expression::FuncCall(call) => {
                let args: Vec<Value> = call
                    .args
                    .iter()
                    .map(|a| self.evaluate(a, mode))
                    .collect::<Result<_, _>>()?;
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
                    _ => unknown()?,
                }
            }
            Expression::Operation(op) => match op.as_ref() {
                Operation::Binary(bin) => {
                    let (l, r) = (
                        self.evaluate(&bin.lhs_expr, mode)?,
                        self.evaluate(&bin.rhs_expr, mode)?,
                    );
                    match (l.as_i64(), r.as_i64(), &bin.operator) {
                        (Some(l), Some(r), BinaryOperator::Plus) => json!(l + r),
                        (Some(l), Some(r), BinaryOperator::Minus) => json!(l - r),
                        _ => unknown()?,
                    }
                }
                Operation::Unary(_) => unknown()?,
            },
            Expression::Traversal(traversal) => {
                let text = expr.to_string();
                if let Some(name) = text.strip_prefix("local.") {
                    if let Some(local) = self.locals.get(name) {
                        return self.evaluate(local, mode);
                    }
                    return if strict {
                        Err(format!("`{text}` is not defined"))
                    } else {
                        Ok(Value::String(text))
                    };
                }
                if let Some(name) = text.strip_prefix("var.") {
                    match self.variables.get(name) {
                        Some(v) => match attr_expr(v, "default") {
                            Some(default) => return self.evaluate(default, mode),
                            None if strict => return Ok(Value::String(format!("«{text}»"))),
                            None => {}
                        },
                        None if strict => return Err(format!("`{text}` is not declared")),
                        None => {}
                    }
                    return Ok(Value::String(text));
                }
                // Another resource's or data source's attribute: known at
                // apply time only. A splat or index stays unevaluated.
                let plain = matches!(traversal.expr, Expression::Variable(_))
                    && traversal.operators.iter().all(|o| {
                        matches!(
                            o,
                            TraversalOperator::GetAttr(_)
                                | TraversalOperator::LegacyIndex(_)
                                | TraversalOperator::Index(Expression::Number(_))
                        )
                    });
                if strict && !plain {
                    return Err(format!("cannot evaluate `{text}`"));
                }
                if strict {
                    Value::String(format!("«{text}»"))
                } else {
                    Value::String(text)
                }
            }
            // `[for r in aws_x.y : r.arn]`: one attribute of each instance of
            // another resource, known at apply time.
            Expression::ForExpr(for_expr)
                if strict
                    && for_expr.cond_expr.is_none()
                    && for_expr.key_expr.is_none()
                    && matches!(for_expr.collection_expr, Expression::Traversal(_))
                    && !for_expr.collection_expr.to_string().starts_with("var.")
                    && !for_expr.collection_expr.to_string().starts_with("local.") =>
            {
                json!([format!("«{expr}»")])
            }
            _ => unknown()?,
        })
    }

    /// A string template with its interpolations evaluated strictly.
    fn template(&self, text: &str) -> Result<String, String> {
        let template: hcl::Template = text
            .parse()
            .map_err(|e| format!("template {text:?} does not parse: {e}"))?;
        let mut out = String::new();
        for element in template.elements() {
            match element {
                hcl::template::Element::Literal(literal) => out.push_str(literal),
                hcl::template::Element::Interpolation(i) => match self.resolve(&i.expr)? {
                    Value::String(s) => out.push_str(&s),
                    Value::Number(n) => out.push_str(&n.to_string()),
                    Value::Bool(b) => out.push_str(&b.to_string()),
                    other => return Err(format!("`{}` interpolates {other}", i.expr)),
                },
                hcl::template::Element::Directive(_) => {
                    return Err(format!("template {text:?} has a directive"));
                }
            }
        }
        Ok(out)
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
    let app_settings = read("app/src/settings.rs");
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
            // Every APP_ name must be one the app's settings module reads.
            if name.starts_with("APP_") {
                assert!(
                    app_settings.contains(&format!("\"{name}\"")),
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

/// The anchors of `docs/runbook.md`'s sections, as GitHub makes them.
fn runbook_anchors() -> BTreeSet<String> {
    read("docs/runbook.md")
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| {
            h.trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_section_and_a_cloudwatch_alarm_with_the_same_link() {
    let anchors = runbook_anchors();
    let rules: Value =
        serde_saphyr::from_str(&read("config/prometheus/alerts.yml")).expect("alerts.yml is YAML");
    let mut alerts = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("an alerting rule").to_owned();
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name} has a {key}"
                );
            }
            let link = format!("docs/runbook.md#{}", name.to_lowercase());
            assert_eq!(rule["annotations"]["runbook_url"], link.as_str(), "{name}");
            assert!(
                anchors.contains(&name.to_lowercase()),
                "docs/runbook.md has a section ## {name}"
            );
            alerts.push(name.to_lowercase());
        }
    }
    assert_eq!(alerts.len(), 9, "the nine alerts of the issue");

    // Each alert has a CloudWatch alarm that links the same section, and
    // every alarm links a section that exists.
    let infra = infra();
    let mut linked = BTreeSet::new();
    for (name, alarm) in infra.resources("aws_cloudwatch_metric_alarm") {
        let description = infra
            .resolve(attr_expr(alarm, "alarm_description").expect("a description"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let description = description.as_str().unwrap_or_default();
        let anchor = description
            .split("docs/runbook.md#")
            .nth(1)
            .unwrap_or_else(|| panic!("alarm {name} links the runbook: {description}"));
        assert!(
            anchors.contains(anchor),
            "{name} links #{anchor}, which docs/runbook.md lacks"
        );
        linked.insert(anchor.to_owned());
    }
    for alert in alerts {
        assert!(
            linked.contains(&alert),
            "no CloudWatch alarm for the alert {alert}"
        );
    }
}

#[test]
fn cloudwatch_alarms_use_the_alert_rules_thresholds_and_windows() {
    let infra = infra();
    let alarm = |name: &str| infra.resource("aws_cloudwatch_metric_alarm", name);
    let number = |name: &str, key: &str| as_i64(&infra.attr(alarm(name), key));
    // (alarm, threshold, evaluation periods): the window is periods × period.
    for (name, threshold, periods) in [
        ("proxy_401_rate", 10, 2),
        ("proxy_jwks_fetch_errors", 3, 1),
        ("proxy_keys_unavailable", 0, 1),
        ("proxy_token_cache_miss_rate", 50, 3),
        ("web_p99_latency", 1, 10),
        ("proxy_upstream_errors", 1, 1),
        ("worker_jobs_failing", 0, 1),
        ("dlq_depth", 0, 1),
        ("oldest_job_age", 600, 1),
    ] {
        assert_eq!(number(name, "threshold"), threshold, "{name}: threshold");
        assert_eq!(
            number(name, "evaluation_periods"),
            periods,
            "{name}: evaluation periods"
        );
        assert_eq!(
            infra.attr(alarm(name), "treat_missing_data"),
            "notBreaching",
            "{name}: quiet without traffic"
        );
    }
    assert_eq!(
        number("proxy_jwks_fetch_errors", "period"),
        300,
        "3 in 5 minutes"
    );
    // The rate alarms carry a minimum-traffic guard in their expression.
    for name in [
        "proxy_401_rate",
        "proxy_token_cache_miss_rate",
        "web_p99_latency",
        "proxy_upstream_errors",
    ] {
        let text = hcl::to_string(alarm(name)).expect("printable");
        assert!(text.contains("IF("), "{name} has a minimum-traffic guard");
    }
}

#[test]
fn a_cloudwatch_dashboard_shows_every_alarm() {
    let infra = infra();
    let dashboard = infra.resource("aws_cloudwatch_dashboard", "main");
    assert!(
        attr_expr(dashboard, "dashboard_body")
            .is_some_and(|e| e.to_string().starts_with("jsonencode(")),
        "the dashboard body is built in HCL"
    );
    let listed: BTreeSet<String> = infra
        .eval(&infra.locals["dashboard_alarms"])
        .as_array()
        .expect("a list of alarms")
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    for (name, _) in infra.resources("aws_cloudwatch_metric_alarm") {
        assert!(
            listed.contains(&format!("aws_cloudwatch_metric_alarm.{name}.arn")),
            "the dashboard's alarm widget shows {name}"
        );
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
            .any(|l| l == "COPY app/model/churn-model.json /app/model/churn-model.json"),
        "the app image carries the shipped model at /app/model/churn-model.json"
    );
    assert!(
        workspace_root()
            .join("app/model/churn-model.json")
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
