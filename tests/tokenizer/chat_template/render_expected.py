#!/usr/bin/env python3
"""Expected renderings of real chat templates, made by Python Jinja2 the way Hugging Face does it.

Usage: render_expected.py [--templates DIR] [--conversations FILE] [--out DIR]
                          [--features FILE] [--features-out FILE]

Renders every DIR/*.jinja (default ../shared/data/templates beside the repository; skipped when
absent) for every context of FILE (default tests/data/chat_templates/conversations.json), once with
add_generation_prompt true and once false, with strftime_now's clock fixed at FILE's "now", and
writes OUT/<template stem>.json (default tests/data/chat_templates/expected/): for each
"<conversation>/gen" and "<conversation>/nogen" either {"output": TEXT} or, when the template
raises, {"error": MESSAGE, "error_type": CLASS}.

It also renders the crafted cases of --features (default tests/data/chat_templates/features.json:
{"now", "cases": [{"name", "template", "context"}]}) into --features-out (default
tests/data/chat_templates/features_expected.json), one result per case in the same form.

ember's chat-template tests render the same and compare byte for byte. Run it again after changing
the conversations or the cases; the test ChatTemplateOracle.ExpectedFilesAreUpToDate re-runs it into
a temporary directory and fails when the committed files differ.

The environment mirrors transformers' _compile_jinja_template (chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension and a `generation` block tag (a call block that renders its body), the globals
raise_exception (raises TemplateError with the template's message) and strftime_now (strftime of
the fixed clock here), and the filter tojson(x, ensure_ascii=False, indent=None, separators=None,
sort_keys=False) = json.dumps with those arguments. Use Debian's python3-jinja2 (3.1.2):
/usr/bin/python3 render_expected.py.
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body (transformers' AssistantTracker
    without the index tracking, which does not change the text)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment(now):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(format):
        return now.strftime(format)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_one(env, source, context):
    try:
        template = env.from_string(source)
        return {"output": template.render(**context)}
    except Exception as e:  # every failure is an expected result, recorded with its message
        return {"error": str(e), "error_type": type(e).__name__}


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(value, ensure_ascii=False, indent=1) + "\n")


def render_features(features_path, out_path):
    with open(features_path, encoding="utf-8") as f:
        spec = json.load(f)
    env = make_environment(datetime.datetime.fromisoformat(spec["now"]))
    results = {case["name"]: render_one(env, case["template"], case["context"]) for case in spec["cases"]}
    write_json(out_path, results)
    print(f"render_expected.py: {len(results)} feature cases -> {out_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", default=os.path.join(ROOT, "..", "shared", "data", "templates"))
    parser.add_argument("--conversations",
                        default=os.path.join(ROOT, "tests", "data", "chat_templates", "conversations.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "chat_templates", "expected"))
    parser.add_argument("--features", default=os.path.join(ROOT, "tests", "data", "chat_templates", "features.json"))
    parser.add_argument("--features-out",
                        default=os.path.join(ROOT, "tests", "data", "chat_templates", "features_expected.json"))
    args = parser.parse_args()
    render_features(args.features, args.features_out)
    if not os.path.isdir(args.templates):
        print(f"render_expected.py: {args.templates} not found; real templates skipped")
        return

    with open(args.conversations, encoding="utf-8") as f:
        spec = json.load(f)
    now = datetime.datetime.fromisoformat(spec["now"])
    env = make_environment(now)
    names = sorted(n for n in os.listdir(args.templates) if n.endswith(".jinja"))
    if not names:
        sys.exit(f"render_expected.py: no *.jinja in {args.templates}")
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        # Bytes decoded as UTF-8 with newlines untouched: Jinja2 normalizes them itself.
        with open(os.path.join(args.templates, name), "rb") as f:
            source = f.read().decode("utf-8")
        renders = {}
        for conversation in spec["conversations"]:
            for suffix, add_generation_prompt in (("gen", True), ("nogen", False)):
                context = dict(conversation["context"], add_generation_prompt=add_generation_prompt)
                renders[f"{conversation['name']}/{suffix}"] = render_one(env, source, context)
        stem = name[: -len(".jinja")]
        write_json(os.path.join(args.out, stem + ".json"), {"template": name, "renders": renders})
    print(f"render_expected.py: {len(names)} templates x {2 * len(spec['conversations'])} renders -> {args.out}")


if __name__ == "__main__":
    main()
