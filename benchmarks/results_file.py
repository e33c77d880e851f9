"""Where every benchmark writes its figures: one JSON file with when, where and what."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def write_results(path: str | Path, figures: dict[str, Any]) -> None:
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # the machine is shared: how busy it was when the figures were written
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        **figures,
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out}")
