//! The alert rules, the CloudWatch alarms and the runbook agree: every
//! alert has a runbook section and an alarm with the same link, the same
//! thresholds and windows, and the CloudWatch dashboard shows every alarm.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::hcl_eval::{as_i64, attr_expr, infra, read};

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
