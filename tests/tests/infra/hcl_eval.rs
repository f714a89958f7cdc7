//! Reading `infra/`: every block of every `.tf` file, and a small
//! evaluator for the expressions the checks need (see the crate doc of
//! `main.rs`).

use std::collections::HashMap;
use std::fs;
use std::sync::OnceLock;

use hcl::expr::{BinaryOperator, Operation, TemplateExpr, TraversalOperator};
use hcl::{Body, Expression, ObjectKey};
use retainwise_e2e::workspace_root;
use serde_json::{Map, Value, json};

// --- reading infra/ --------------------------------------------------------------------

pub(crate) struct Infra {
    /// Every top-level block of every `.tf` file, with the file it came from.
    pub(crate) blocks: Vec<(String, hcl::Block)>,
    pub(crate) locals: HashMap<String, Expression>,
    pub(crate) variables: HashMap<String, Body>,
}

pub(crate) fn infra() -> &'static Infra {
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
    pub(crate) fn parse(files: Vec<(String, String)>) -> Infra {
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
pub(crate) enum Mode {
    /// Keep the expression's text.
    Lenient,
    /// Fail, naming the expression.
    Strict,
}

pub(crate) fn label(block: &hcl::Block, i: usize) -> &str {
    block.labels.get(i).map(|l| l.as_str()).unwrap_or("")
}

impl Infra {
    /// `resource "<kind>" "<name>"` blocks, by name.
    pub(crate) fn resources(&self, kind: &str) -> Vec<(&str, &Body)> {
        self.of("resource", kind)
    }

    pub(crate) fn data(&self, kind: &str) -> Vec<(&str, &Body)> {
        self.of("data", kind)
    }

    pub(crate) fn of(&self, identifier: &str, kind: &str) -> Vec<(&str, &Body)> {
        self.blocks
            .iter()
            .filter(|(_, b)| b.identifier.as_str() == identifier && label(b, 0) == kind)
            .map(|(_, b)| (label(b, 1), &b.body))
            .collect()
    }

    pub(crate) fn resource(&self, kind: &str, name: &str) -> &Body {
        self.resources(kind)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("resource {kind}.{name} is missing"))
    }

    /// An attribute of a body, evaluated.
    pub(crate) fn attr(&self, body: &Body, key: &str) -> Value {
        let expr = attr_expr(body, key).unwrap_or_else(|| panic!("attribute {key} is missing"));
        self.eval(expr)
    }

    /// Evaluates `expr` for the checks that compare plain values. What the
    /// evaluator cannot resolve (a reference to another resource, a
    /// function it does not know) is kept as its HCL text, which those
    /// checks compare as text.
    pub(crate) fn eval(&self, expr: &Expression) -> Value {
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
    pub(crate) fn resolve(&self, expr: &Expression) -> Result<Value, String> {
        self.evaluate(expr, Mode::Strict)
    }

    pub(crate) fn evaluate(&self, expr: &Expression, mode: Mode) -> Result<Value, String> {
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
    pub(crate) fn template(&self, text: &str) -> Result<String, String> {
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

    pub(crate) fn var_default(&self, name: &str) -> Value {
        let expr = self
            .variables
            .get(name)
            .and_then(|v| attr_expr(v, "default"))
            .unwrap_or_else(|| panic!("variable {name} has a default"));
        self.eval(expr)
    }

    /// The container definitions of an ECS task definition, by name.
    pub(crate) fn containers(&self, task: &str) -> Vec<Value> {
        let body = self.resource("aws_ecs_task_definition", task);
        match self.attr(body, "container_definitions") {
            Value::Array(items) => items,
            other => panic!("container_definitions of {task} is not a list: {other}"),
        }
    }

    pub(crate) fn container(&self, task: &str, name: &str) -> Value {
        self.containers(task)
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("task {task} has no container {name}"))
    }
}

pub(crate) fn attr_expr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

pub(crate) fn blocks<'a>(
    body: &'a Body,
    identifier: &'a str,
) -> impl Iterator<Item = &'a Body> + 'a {
    body.blocks()
        .filter(move |b| b.identifier.as_str() == identifier)
        .map(|b| &b.body)
}

pub(crate) fn block<'a>(body: &'a Body, identifier: &str) -> &'a Body {
    body.blocks()
        .find(|b| b.identifier.as_str() == identifier)
        .map(|b| &b.body)
        .unwrap_or_else(|| panic!("block {identifier} is missing"))
}

/// `environment = [{ name, value }]` of a container, as a map.
pub(crate) fn environment(container: &Value) -> HashMap<String, Value> {
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

pub(crate) fn read(path: &str) -> String {
    fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every upper-case string literal in `proxy/src/settings.rs`'s `KEYS`
/// table: the environment names the proxy reads, keyed by setting.
pub(crate) fn proxy_env_names() -> HashMap<String, String> {
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

pub(crate) fn as_i64(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().expect("an integer"),
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{s:?} is not a number")),
        other => panic!("{other} is not a number"),
    }
}
