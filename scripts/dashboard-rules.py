#!/usr/bin/env python3
"""Prints every PromQL expression of a Grafana dashboard as a Prometheus
recording rule, so that `promtool check rules` parses each one.

Grafana's own variables are replaced by values Prometheus accepts
(`$__rate_interval` and `$__interval` by 5m, `$__range` by 1h); any other
`$variable` is an error, since promtool could not check the query.

    scripts/dashboard-rules.py config/grafana/retainwise.json > rules.yml
"""
import json
import re
import sys

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "5m", "$__range": "1h"}


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def main(path):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    rules = []
    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            left = re.findall(r"\$\{?\w+", expr)
            if left:
                sys.exit(f"{path}: panel {panel.get('title')!r} uses {left}: promtool cannot check it")
            rules.append((f"dashboard:panel{panel['id']}_{target.get('refId', 'A').lower()}", expr))
    if not rules:
        sys.exit(f"{path}: no PromQL expression found")
    print("groups:\n  - name: grafana-dashboard-queries\n    rules:")
    for record, expr in rules:
        print(f"      - record: {record}\n        expr: {json.dumps(expr)}")


if __name__ == "__main__":
    main(sys.argv[1])
