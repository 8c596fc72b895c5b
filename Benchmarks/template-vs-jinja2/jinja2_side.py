"""Jinja2 renders per second of the same notification template and data as TemplateBenchmark (autoescape on,
compiled once, rendered from the parsed JSON each time)."""
import json
import pathlib
import sys
import time

import jinja2

here = pathlib.Path(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "--print" else 2.0
environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
template = environment.from_string((here / "receipt.jinja").read_text(encoding="utf-8"))
data = json.loads((here / "case.json").read_text(encoding="utf-8"))
if "--print" in sys.argv:
    print(template.render(**data))
    sys.exit(0)
for _ in range(500):
    template.render(**data)
count = 0
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    for _ in range(100):
        template.render(**data)
    count += 100
elapsed = time.perf_counter() - start
print(f"RESULT jinja2 receipt {int(count / elapsed)}")
