"""Scoring page reading against the ground truth of sample scans."""

from ocr.read import FieldReading
from ocr.sample_eval import _rates, score_page


def _read(value: str, text: str, bbox=(100, 100, 200, 50), reasons=()) -> FieldReading:
    return FieldReading("field_1", "box", value, text, 0.99, bbox, (), reasons)


def _truth(value: str, text: str, bbox=(100, 100, 200, 50)) -> dict:
    return {"name": "amount", "kind": "box", "value": value, "text": text, "bbox": list(bbox), "digits": []}


def test_a_separator_read_wrong_costs_the_text_not_the_value():
    counts = score_page([_read("125075", "1250.75")], [_truth("125075", "1250,75")], by_name=False)
    assert counts["exact"] == 1 and counts["exact_text"] == 0
    counts = score_page([_read("125075", "1250,75")], [_truth("125075", "1250,75")], by_name=False)
    assert counts["exact"] == 1 and counts["exact_text"] == 1


def test_rates_count_unfound_fields_as_wrong_text():
    counts = score_page(
        [_read("4183", "41.83")], [_truth("4183", "41.83"), _truth("77", "77", bbox=(500, 500, 80, 40))], False
    )
    rates = _rates(counts)
    assert rates["exact_field_accuracy"] == rates["exact_text_accuracy"] == 0.5
    assert rates["field_detection_rate"] == 0.5
