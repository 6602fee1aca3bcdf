"""The template format: loading, checking, round trip, validation rules."""

import pytest

from ocr.errors import TemplateError
from ocr.template import Template, TemplateField, Validation, load_template, parse_template

GOOD = """
name: survey
size: [1240, 1754]
fields:
  - name: birth_date
    kind: comb
    cells: 8
    bbox: [100, 200, 400, 56]
    validate: {date: DDMMYYYY, required: true}
  - name: income
    kind: box
    bbox: [100, 400, 300, 80]
    validate: {min: 0, max: 100000, pattern: '^[0-9]+([.,][0-9]{2})?$'}
  - name: postcode
    kind: line
    bbox: [100, 600, 300, 60]
    validate: {length: 5}
"""


def test_yaml_template_loads_and_round_trips(tmp_path):
    path = tmp_path / "survey.yaml"
    path.write_text(GOOD)
    template = load_template(path)
    assert [f.name for f in template.fields] == ["birth_date", "income", "postcode"]
    assert template.field("birth_date").cells == 8
    again = tmp_path / "again.yaml"
    again.write_text(template.to_yaml())
    assert load_template(again) == template


def test_json_template_loads(tmp_path):
    import json

    import yaml

    path = tmp_path / "survey.json"
    path.write_text(json.dumps(yaml.safe_load(GOOD)))
    assert load_template(path).size == (1240, 1754)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: comb", "kind: circle"), "kind must be one of"),
        (("cells: 8", "cells: 0"), "comb needs 'cells'"),
        (("bbox: [100, 400, 300, 80]", "bbox: [1100, 400, 300, 80]"), "not inside"),
        (("name: income", "name: birth_date"), "unique"),
        (("{length: 5}", "{length: [6, 2]}"), "length must be"),
        (("{length: 5}", "{colour: red}"), "unknown validation keys"),
        (("date: DDMMYYYY", "date: DAYMONTH"), "date must be one of"),
    ],
)
def test_malformed_templates_are_rejected_with_the_reason(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(TemplateError, match=message):
        load_template(path)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [unclosed")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template(bad)
    with pytest.raises(TemplateError, match="mapping"):
        parse_template(["not", "a", "mapping"])


@pytest.mark.parametrize(
    ("rule", "value", "text", "ok"),
    [
        (Validation(date="DDMMYYYY"), "29022024", "29022024", True),
        (Validation(date="DDMMYYYY"), "30022024", "30022024", False),
        (Validation(date="YYMMDD"), "991231", "991231", True),
        # Written with separators, a date is read by its parts: days and months of one digit too.
        (Validation(date="DDMMYYYY"), "372025", "3/7/2025", True),
        (Validation(date="DDMMYYYY"), "372025", "372025", False),
        (Validation(date="DDMMYYYY"), "3725", "3/7/25", False),
        (Validation(date="DDMMYY"), "3725", "3.7.25", True),
        (Validation(date="MMDDYYYY"), "1372025", "13/7/2025", False),
        (Validation(date="YYYYMMDD"), "202573", "2025-7-3", True),
        (Validation(date="DDMMYYYY"), "3122025", "31/2/2025", False),
        (Validation(length=(5, 5)), "1234", "1234", False),
        (Validation(length=(3, 6)), "1234", "1234", True),
        (Validation(min=0, max=120), "130", "130", False),
        (Validation(max=2000), "125075", "1250.75", True),
        (Validation(pattern=r"^[0-9]+\.[0-9]{2}$"), "125075", "1250.75", True),
        (Validation(pattern=r"^[0-9]+\.[0-9]{2}$"), "12507", "1250.7", False),
        (Validation(required=True), "", "", False),
        (Validation(length=(5, 5)), "", "", True),
    ],
)
def test_validation_rules(rule, value, text, ok):
    assert (rule.problems(value, text) == []) is ok


def test_template_field_lookup():
    t = Template("t", (100, 100), (TemplateField("a", "box", (0, 0, 10, 10)),))
    assert t.field("a").kind == "box"
    with pytest.raises(KeyError):
        t.field("b")
