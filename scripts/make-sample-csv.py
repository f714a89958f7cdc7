#!/usr/bin/env python3
"""Writes the quickstart's sample upload, tests/fixtures/sample-customers.csv.

Synthesised, not copied: N customers (default 300) in the public Telco
customer churn layout (21 columns, the header the app requires), drawn
from a fixed seed so the file is the same on every run. The values follow
the data set's own rules: no internet service means "No internet service"
in the six add-on columns, no phone service means "No phone service" in
MultipleLines, and TotalCharges is about MonthlyCharges times tenure.

Usage: scripts/make-sample-csv.py [--rows N] [--seed S] [OUT]
"""
import argparse
import csv
import random
import sys
from pathlib import Path

HEADER = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure",
    "PhoneService", "MultipleLines", "InternetService", "OnlineSecurity",
    "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
    "StreamingMovies", "Contract", "PaperlessBilling", "PaymentMethod",
    "MonthlyCharges", "TotalCharges", "Churn",
]
ADDONS = ["OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport",
          "StreamingTV", "StreamingMovies"]
PAYMENT = ["Electronic check", "Mailed check", "Bank transfer (automatic)",
           "Credit card (automatic)"]


def customer(rng: random.Random, i: int) -> dict:
    contract = rng.choices(["Month-to-month", "One year", "Two year"], [55, 21, 24])[0]
    tenure = {
        "Month-to-month": lambda: rng.randint(1, 40),
        "One year": lambda: rng.randint(8, 65),
        "Two year": lambda: rng.randint(20, 72),
    }[contract]()
    internet = rng.choices(["Fiber optic", "DSL", "No"], [44, 34, 22])[0]
    phone = rng.random() < 0.9
    row = {
        "customerID": f"{rng.randint(1000, 9999)}-{''.join(rng.choices('ABCDEFGHIJKLMNOPQRSTUVWXYZ', k=5))}",
        "gender": rng.choice(["Female", "Male"]),
        "SeniorCitizen": "1" if rng.random() < 0.16 else "0",
        "Partner": rng.choice(["Yes", "No"]),
        "Dependents": "Yes" if rng.random() < 0.3 else "No",
        "tenure": str(tenure),
        "PhoneService": "Yes" if phone else "No",
        "MultipleLines": rng.choice(["Yes", "No"]) if phone else "No phone service",
        "InternetService": internet,
        "Contract": contract,
        "PaperlessBilling": "Yes" if rng.random() < 0.6 else "No",
        "PaymentMethod": rng.choice(PAYMENT),
    }
    monthly = 20.0 if phone else 0.0
    if internet == "No":
        for addon in ADDONS:
            row[addon] = "No internet service"
    else:
        monthly += 45.0 if internet == "Fiber optic" else 25.0
        for addon in ADDONS:
            row[addon] = "Yes" if rng.random() < 0.4 else "No"
            monthly += 5.0 if row[addon] == "Yes" else 0.0
    monthly = max(18.25, monthly + rng.uniform(-2.0, 2.0))
    total = monthly * tenure * rng.uniform(0.97, 1.03)
    row["MonthlyCharges"] = f"{monthly:.2f}"
    row["TotalCharges"] = f"{total:.2f}"
    risk = (0.35 if contract == "Month-to-month" else 0.08) + (0.12 if internet == "Fiber optic" else 0.0)
    row["Churn"] = "Yes" if rng.random() < risk * (1.4 if tenure < 12 else 0.8) else "No"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("out", nargs="?",
                        default=str(Path(__file__).resolve().parent.parent
                                    / "tests/fixtures/sample-customers.csv"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seen = set()
    rows = []
    while len(rows) < args.rows:
        row = customer(rng, len(rows))
        if row["customerID"] in seen:
            continue
        seen.add(row["customerID"])
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} customers to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
