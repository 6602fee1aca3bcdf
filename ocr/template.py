"""Form templates: named fields at known places, with optional validation.

The format (YAML or JSON, same keys)::

    name: application_form          # free text
    size: [1240, 1754]              # template page width, height in pixels
    fields:
      - name: date_of_birth
        kind: comb                  # comb (one digit per box), box (free digits
                                    # in a rectangle) or line (digits on a line)
        cells: 8                    # comb only: number of boxes
        bbox: [120, 300, 400, 60]   # x, y, w, h in template pixels
        validate:                   # all optional
          length: 8                 # exact digit count, or [min, max]
          pattern: '^[0-9]{8}$'     # regular expression the text must match
          min: 0                    # numeric bounds on the value
          max: 99999999
          date: DDMMYYYY            # the digits must form a real date in this order (written
                                    # with separators, 3/7/2025: each part as written)
          required: true            # an empty field is an error (default false)

Coordinates are in the template's own pixel grid; reading registers each scan
onto it first (see :mod:`ocr.register`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ocr.errors import TemplateError
from ocr.geometry import FIELD_KINDS, Box

_DATE_ORDERS = ("DDMMYYYY", "MMDDYYYY", "YYYYMMDD", "DDMMYY", "MMDDYY", "YYMMDD")


@dataclass(frozen=True)
class Validation:
    length: tuple[int, int] | None = None  # (min, max) digit count
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    date: str | None = None
    required: bool = False

    def problems(self, value: str, text: str) -> list[str]:
        """Why ``value`` (digits only) / ``text`` (with separators) fails; empty if it passes."""
        found: list[str] = []
        if not value:
            return ["required field is empty"] if self.required else []
        if self.length is not None and not self.length[0] <= len(value) <= self.length[1]:
            lo, hi = self.length
            want = str(lo) if lo == hi else f"{lo}-{hi}"
            found.append(f"has {len(value)} digits, expected {want}")
        if self.pattern is not None and not re.fullmatch(self.pattern, text):
            found.append(f"does not match pattern {self.pattern}")
        number = _as_number(text)
        if self.min is not None and number is not None and number < self.min:
            found.append(f"{text} is below the minimum {self.min:g}")
        if self.max is not None and number is not None and number > self.max:
            found.append(f"{text} is above the maximum {self.max:g}")
        if self.date is not None and not _is_date(value, self.date, text):
            found.append(f"{text if _date_parts(text) else value} is not a valid {self.date} date")
        return found


@dataclass(frozen=True)
class TemplateField:
    name: str
    kind: str
    bbox: Box
    cells: int = 0
    validate: Validation = field(default_factory=Validation)


@dataclass(frozen=True)
class Template:
    name: str
    size: tuple[int, int]  # width, height in pixels
    fields: tuple[TemplateField, ...]

    def field(self, name: str) -> TemplateField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        out = {"name": self.name, "size": list(self.size), "fields": []}
        for f in self.fields:
            item: dict = {"name": f.name, "kind": f.kind}
            if f.kind == "comb":
                item["cells"] = f.cells
            item["bbox"] = list(f.bbox)
            rules = {k: v for k, v in asdict(f.validate).items() if v is not None and v is not False}
            if "length" in rules:
                lo, hi = rules["length"]
                rules["length"] = lo if lo == hi else [lo, hi]
            if rules:
                item["validate"] = rules
            out["fields"].append(item)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_template(data: dict, source: str = "<template>") -> Template:
    """Build and check a :class:`Template` from its dict form."""
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: a template must be a mapping with name, size and fields")
    try:
        width, height = (int(v) for v in data["size"])
        raw_fields = data["fields"]
    except (KeyError, TypeError, ValueError) as exc:
        raise TemplateError(f"{source}: needs 'size: [width, height]' and a 'fields' list ({exc})") from exc
    if width <= 0 or height <= 0 or not isinstance(raw_fields, list) or not raw_fields:
        raise TemplateError(f"{source}: size must be positive and fields a non-empty list")
    fields = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_fields, start=1):
        where = f"{source}: field {i}"
        if not isinstance(raw, dict):
            raise TemplateError(f"{where}: must be a mapping")
        name = str(raw.get("name") or "")
        if not name or name in seen:
            raise TemplateError(f"{where}: needs a unique non-empty name (got {name!r})")
        seen.add(name)
        kind = raw.get("kind")
        if kind not in FIELD_KINDS:
            raise TemplateError(f"{where} ({name}): kind must be one of {', '.join(FIELD_KINDS)}, got {kind!r}")
        try:
            x, y, w, h = (int(v) for v in raw["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TemplateError(f"{where} ({name}): bbox must be [x, y, w, h] in pixels") from exc
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise TemplateError(f"{where} ({name}): bbox {[x, y, w, h]} is not inside the {width}x{height} page")
        cells = int(raw.get("cells", 0) or 0)
        if kind == "comb" and cells < 1:
            raise TemplateError(f"{where} ({name}): a comb needs 'cells' >= 1")
        fields.append(TemplateField(name, kind, (x, y, w, h), cells, _parse_validation(raw.get("validate"), where)))
    return Template(name=str(data.get("name") or Path(source).stem), size=(width, height), fields=tuple(fields))


def load_template(path: Path | str) -> Template:
    """Read a YAML or JSON template file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise TemplateError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from exc
    return parse_template(data, str(path))


def _parse_validation(raw: dict | None, where: str) -> Validation:
    if raw is None:
        return Validation()
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: validate must be a mapping")
    unknown = set(raw) - {"length", "pattern", "min", "max", "date", "required"}
    if unknown:
        raise TemplateError(f"{where}: unknown validation keys {sorted(unknown)}")
    length = raw.get("length")
    if length is not None:
        length = (int(length), int(length)) if isinstance(length, int) else tuple(int(v) for v in length)
        if len(length) != 2 or length[0] > length[1]:
            raise TemplateError(f"{where}: length must be N or [min, max]")
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise TemplateError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
    date = raw.get("date")
    if date is not None and date not in _DATE_ORDERS:
        raise TemplateError(f"{where}: date must be one of {', '.join(_DATE_ORDERS)}")
    return Validation(
        length=length,
        pattern=pattern,
        min=None if raw.get("min") is None else float(raw["min"]),
        max=None if raw.get("max") is None else float(raw["max"]),
        date=date,
        required=bool(raw.get("required", False)),
    )


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def _date_parts(text: str) -> list[str] | None:
    """The three runs of digits of a date written with separators ("3/7/2025", "03-07-25"), else None."""
    parts = re.split(r"[/.\-]", text)
    return parts if len(parts) == 3 and all(p.isdigit() for p in parts) else None


def _is_date(value: str, order: str, text: str = "") -> bool:
    """Whether the digits form a real date in ``order``.  Written with separators (``text``),
    each part is taken as written: a day or month of one or two digits, the year as long as
    ``order`` has it ("3/7/2025" is a DDMMYYYY date)."""
    keys = sorted(("DD", "MM", "YYYY" if "YYYY" in order else "YY"), key=order.find)
    written = _date_parts(text)
    if written is not None:
        if any(
            len(p) != len(k) if k.startswith("Y") else not 1 <= len(p) <= 2 for p, k in zip(written, keys, strict=True)
        ):
            return False
        parts = {k: int(p) for k, p in zip(keys, written, strict=True)}
    elif len(value) != len(order):
        return False
    else:
        parts = {k: int(value[order.find(k) : order.find(k) + len(k)]) for k in keys}
    year = parts.get("YYYY", 2000 + parts.get("YY", 0))
    try:
        dt.date(year, parts["MM"], parts["DD"])
    except ValueError:
        return False
    return True
