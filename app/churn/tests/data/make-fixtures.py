#!/usr/bin/env python3
"""Writes the customer-file fixtures in this folder and `cases.json`, the
outcome each must have (rows scored, ingest report fields, or the exact
error). Ids are invented. Rerun after changing a case:

    python3 -m venv .dev/fixvenv && .dev/fixvenv/bin/pip install openpyxl
    .dev/fixvenv/bin/python app/churn/tests/data/make-fixtures.py
"""
import gzip
import json
import os
import zipfile

import openpyxl

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = ["customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure",
          "PhoneService", "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup",
          "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies", "Contract",
          "PaperlessBilling", "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn"]


def row(cid, **changes):
    values = dict(zip(HEADER, [cid, "Female", "0", "Yes", "No", "2", "Yes", "No", "DSL", "Yes",
                               "No", "Yes", "No", "No", "No", "Month-to-month", "Yes",
                               "Mailed check", "70.70", "151.65", "No"]))
    values.update(changes)
    return values


def line(values, header=HEADER, sep=","):
    def cell(v):
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',";\n\r') else v
    return sep.join(cell(values.get(h, "")) for h in header)


cases = []


def write(name, data, **outcome):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    cases.append({"file": name, **outcome})


def csv(rows, header=HEADER, sep=",", end="\n"):
    return end.join([sep.join(header)] + [line(r, header, sep) for r in rows]) + end


ids = [f"9{n:03d}-TEST" for n in range(8)]

# 1. Nothing wrong passes silently.
notes = HEADER + ["Notes"]
lines = [",".join(notes)]
for i, cid in enumerate(ids):
    r = row(cid, Notes="ok")
    lines.append(line(r, notes))
lines[3] = line(row(ids[2]), notes[:-1]) + ',"said the 5G box is broken'
write("unclosed-quote.csv", "\n".join(lines) + "\n",
      error="row 3 (line 4): a quoted field opens here and is never closed")
write("duplicate-ids.csv", csv([row("1.23457E+11"), row("9101-TEST"), row("1.23457E+11", tenure="40")]),
      error='rows 1 (line 2) and 3 (line 4) have the same customerID "1.23457E+11"; each customer must appear once')
usd = [h if h != "TotalCharges" else "Total Charges (USD)" for h in HEADER]
write("total-charges-usd.csv",
      csv([dict(row(c), **{"Total Charges (USD)": "151.65"}) for c in ids[:3]], usd),
      rows=3, report={"columns_ignored": ["Total Charges (USD)", "Churn"],
                      "columns_imputed": {"TotalCharges": 3},
                      "likely_mistakes": [{"header": "Total Charges (USD)", "looks_like": "TotalCharges"}]})
# 2. Spreadsheet leftovers.
write("blank-rows.csv", csv([row(ids[0])]) + ",,,,,,,,,,,,,,,,,,,,\n" + line(row(ids[1])) + "\n ,  ,\n   \n",
      rows=2, report={"blank_rows_skipped": 3})
short = line(row(ids[1]))
short = short[: short.index(",151.65")]  # TotalCharges and Churn left out
write("short-row.csv", csv([row(ids[0])]) + short + "\n", rows=2,
      report={"columns_imputed": {"TotalCharges": 1}})
write("short-row-missing-required.csv",
      csv([row(ids[0])]) + ",".join(line(row(ids[1])).split(",")[:17]) + "\n",
      error="row 2 (line 3), column MonthlyCharges: is blank; a value is required")
write("trailing-delimiter.csv",
      ",".join(HEADER) + "\n" + "".join(line(row(c)) + ",\n" for c in ids[:3]), rows=3)
write("two-trailing-fields.csv", ",".join(HEADER) + "\n" + line(row(ids[0])) + ",,x\n",
      error="row 1 (line 2): has 23 fields but the header has 21")
# 3. Plain meanings.
write("yes-no-spellings.csv", csv([
    row(ids[0], SeniorCitizen="Yes", Partner="TRUE", Dependents="false", PhoneService="1",
        PaperlessBilling="0", Churn="True"),
    row(ids[1], SeniorCitizen="no", Partner="Y", Dependents="n", MultipleLines="TRUE",
        OnlineSecurity="False", Churn="False"),
    row(ids[2], Churn="maybe later"),
]), rows=3, report={"columns_ignored": ["Churn"]})
write("unknown-yes-no.csv", csv([row(ids[0]), row(ids[1], Partner="maybe")]),
      error='row 2 (line 3), column Partner: unknown value "maybe"; expected one of: No, Yes '
            "(or Y/N, True/False, 1/0, in any case)")
# 4. Other formats.
text = csv([row(c) for c in ids[:4]], sep="\t", end="\r\n")
write("excel-unicode-text.txt", b"\xff\xfe" + text.encode("utf-16-le"), rows=4)
write("utf16-be.csv", b"\xfe\xff" + csv([row(c) for c in ids[:2]]).encode("utf-16-be"), rows=2)
write("utf8-bom.csv", b"\xef\xbb\xbf" + csv([row(c) for c in ids[:2]]).encode(), rows=2)
write("european-semicolons.csv",
      csv([row(c, MonthlyCharges="70,70", TotalCharges="151,65") for c in ids[:2]], sep=";"),
      rows=2, same_as="utf8-bom.csv")
write("customers.csv.gz", gzip.compress(csv([row(c) for c in ids[:5]]).encode(), mtime=0), rows=5)
wb = openpyxl.Workbook()
ws = wb.active
ws.append(HEADER)
for n, cid in enumerate([123456789012, 123456789013, "9002-TEST"]):
    values = row(str(cid))
    out = [cid if h == "customerID" else values[h] for h in HEADER]
    out[HEADER.index("tenure")] = 2
    out[HEADER.index("MonthlyCharges")] = 70.7
    out[HEADER.index("TotalCharges")] = 151.65
    out[HEADER.index("Partner")] = n == 0  # a boolean cell: TRUE / FALSE
    out[HEADER.index("SeniorCitizen")] = 0
    ws.append(out)
ws.append([])
ws.append(out[:1] + [None] * 20)
path = os.path.join(HERE, "workbook-short-row.xlsx")
wb.save(path)
with open(path, "rb") as f:
    # Sheet row 6 holds only an id: the error names the sheet's row.
    write("workbook-short-row.xlsx", f.read(),
          error="row 5 (line 6), column tenure: is blank; a value is required")
ws.delete_rows(6)
path = os.path.join(HERE, "workbook-renamed.csv")
wb.save(path)
with open(path, "rb") as f:
    write("workbook-renamed.csv", f.read(), rows=3,
          ids=["123456789012", "123456789013", "9002-TEST"])
wb.remove(ws)
ws = wb.create_sheet("Customers")
ws.append(HEADER)
for cid in [123456789012, 123456789013]:
    values = row(str(cid))
    ws.append([cid if h == "customerID" else (2 if h == "tenure" else values[h]) for h in HEADER])
path = os.path.join(HERE, "workbook.xlsx")
wb.save(path)
with open(path, "rb") as f:
    write("workbook.xlsx", f.read(), rows=2, ids=["123456789012", "123456789013"])
write("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
      error="the file appears to be a PDF document, not a CSV; save it as CSV (UTF-8) or .xlsx")
write("old-excel.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
      error="the file appears to be an old-format Excel workbook (.xls) or other Office 97-2003 "
            "file, not a CSV; save it as CSV (UTF-8) or .xlsx")
import io
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("customers.csv", csv([row(ids[0])]))
write("zipped.zip", buf.getvalue(),
      error="the file appears to be a zip archive that is not an .xlsx workbook; save it as CSV "
            "(UTF-8) or .xlsx")
# 5. Lines as an editor shows them.
bad = [row(ids[0]), row(ids[1]), row(ids[2], tenure="two")]
write("crlf-bad-value.csv", csv(bad[:2], end="\r\n") + "\r\n" + line(bad[2]) + "\r\n",
      error='row 4 (line 5), column tenure: "two" is not a number')
write("cr-only-bad-value.csv", csv(bad[:2], end="\r") + "\r" + line(bad[2]) + "\r",
      error='row 4 (line 5), column tenure: "two" is not a number')
write("multiline-note-bad-value.csv",
      ",".join(notes) + "\r\n" + line(dict(row(ids[0]), Notes="first line\r\nsecond line\r\nthird"), notes)
      + "\r\n\r\n" + line(dict(row(ids[2], tenure="two"), Notes="x"), notes) + "\r\n",
      error='row 3 (line 6), column tenure: "two" is not a number')
write("long-quoted-note.csv",
      ",".join(notes) + "\r\n" + line(dict(row(ids[0]), Notes="ok"), notes) + "\r\n"
      + line(dict(row(ids[1]), Notes="x\r\n" * 120), notes) + "\r\n",
      error="row 2 (line 3): a quoted field opens here and spans more than 100 lines; "
            "is its closing quote missing?")

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
