"""What a chart in an AppTest run shows: its Vega-Lite spec, its data, and the text each row carries.

Streamlit sends an Altair chart as a Vega-Lite spec (JSON) plus its datasets (Arrow). A text mark
draws one label per data row, so "which label sits on which row" is read from the same row of the
same dataset the browser gets: a label list attached to rows in another order shows up here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class TextLayer:
    """One text mark of a chart: its rows (the dataset), which column is the text, which the row's place."""

    rows: pd.DataFrame
    text: str
    """The column drawn as text."""
    position: str | None
    """The nominal column that places the row (the bar's axis label), if any."""


@dataclass(frozen=True)
class Chart:
    spec: dict[str, Any]
    datasets: dict[str, pd.DataFrame]

    def layers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("layer", [self.spec]))

    def data_for(self, layer: dict[str, Any]) -> pd.DataFrame:
        name = (layer.get("data") or self.spec.get("data") or {}).get("name")
        if name is None and len(self.datasets) == 1:
            return next(iter(self.datasets.values()))
        return self.datasets[name]

    def text_layers(self) -> list[TextLayer]:
        found = []
        for layer in self.layers():
            mark = layer.get("mark")
            if (mark.get("type") if isinstance(mark, dict) else mark) != "text":
                continue
            encoding = {**self.spec.get("encoding", {}), **layer.get("encoding", {})}
            position = next((encoding[axis]["field"] for axis in ("y", "x")
                             if axis in encoding and encoding[axis].get("type") == "nominal"), None)
            found.append(TextLayer(self.data_for(layer), encoding["text"]["field"], position))
        return found

    def axis_field(self, axis: str) -> dict[str, Any]:
        """The ``axis`` encoding of the chart (top level, else its first layer that has one)."""
        for candidate in (self.spec, *self.layers()):
            if axis in candidate.get("encoding", {}):
                return dict(candidate["encoding"][axis])
        raise KeyError(axis)


def charts(at: Any) -> list[Chart]:
    """Every Vega-Lite chart on the page, in page order."""
    found = []
    for element in at.get("vega_lite_chart"):
        proto = element.proto
        datasets = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in proto.datasets}
        found.append(Chart(json.loads(proto.spec), datasets))
    return found


def text_charts(at: Any) -> list[Chart]:
    """The charts on the page that draw text labels."""
    return [c for c in charts(at) if c.text_layers()]
