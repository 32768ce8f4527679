"""Conversion benchmark: `constellation convert` of the whole shared corpus, against a parse-only
floor, in one run.

    .venv/bin/python bench/convert.py [--quick] [--output PATH]

The corpus is every file in ../shared/corpus/{compose,k8s,alerts} (Compose files, Kubernetes
manifests, Prometheus rules). Figures, each the median of several runs, interleaved with its
floor so the machine's noise hits both alike:

- `convert_cli_seconds`: wall time of the real console script converting the whole corpus
  (`constellation convert -f compose -f k8s -f alerts -o FILE`), start-up included (target
  < 2 s), against a subprocess of the same Python that reads and parses every file with the
  same YAML parser (`constellation.apis.loader.parse_documents`, ruamel's C composer);
- `convert_library_ms`: the conversion alone, in this process (`constellation.convert.run.
  convert` on texts already read), against `parse_documents` of the same texts: what the
  conversion adds to reading the YAML.

JSON goes to stdout and bench/results/convert.json, a table to stderr. `--quick` runs fewer
rounds (a smoke test); the targets are judged either way, the corpus being the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from report import publish, rounded, table

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FOLDERS = ("compose", "k8s", "alerts")
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "convert.json"
CONSTELLATION = Path(sys.executable).parent / "constellation"
PARSE_SCRIPT = """\
import sys
from pathlib import Path
from constellation.apis.loader import parse_documents
count = 0
for folder in sys.argv[1:]:
    for path in sorted(Path(folder).glob("*.y*ml")):
        count += len(parse_documents(path.read_text(encoding="utf-8"), str(path)))
print(count)
"""
BASELINES = {
    "parse_cli": "python subprocess reading and parsing every corpus file with parse_documents",
    "parse_library": "parse_documents of the same texts, in process",
}
TARGET_SECONDS = 2.0


def corpus_texts() -> list[tuple[str, str]]:
    return [
        (str(path), path.read_text(encoding="utf-8"))
        for folder in FOLDERS
        for path in sorted((CORPUS / folder).glob("*.y*ml"))
    ]


def timed_run(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} ... exited {result.returncode}: {result.stderr[-500:]}"
        )
    return elapsed


def measure_cli(runs: int, tmp: Path) -> dict[str, list[float]]:
    folders = [str(CORPUS / folder) for folder in FOLDERS]
    convert = [str(CONSTELLATION), "convert", "-o", str(tmp / "out.yaml")]
    for folder in folders:
        convert += ["-f", folder]
    parse = [sys.executable, "-c", PARSE_SCRIPT, *folders]
    samples: dict[str, list[float]] = {"convert_cli": [], "parse_cli": []}
    for _ in range(runs):
        samples["convert_cli"].append(timed_run(convert))
        samples["parse_cli"].append(timed_run(parse))
    return samples


def measure_library(runs: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    sys.path.insert(0, str(ROOT))
    from constellation.apis.loader import parse_documents
    from constellation.convert.run import convert

    texts = corpus_texts()
    samples: dict[str, list[float]] = {"convert_library": [], "parse_library": []}
    conversion = None
    for _ in range(runs):
        started = time.perf_counter()
        conversion = convert(texts, "auto", {})
        samples["convert_library"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for name, text in texts:
            parse_documents(text, name)
        samples["parse_library"].append((time.perf_counter() - started) * 1000)
    assert conversion is not None
    counts = {
        "files": len(texts),
        "bytes": sum(len(text.encode()) for _, text in texts),
        "source_objects": len(conversion.objects),
        "manifests_written": len(conversion.outputs),
    }
    return samples, counts


def figure(
    label: str,
    unit: str,
    value: float | None,
    floor: float | None,
    baseline: str,
    target: str,
    met: bool | None,
) -> dict[str, Any]:
    return {
        "label": label,
        "unit": unit,
        "better": "lower",
        "constellation": rounded(value),
        "baseline": rounded(floor),
        "baseline_is": BASELINES[baseline],
        "ratio": rounded(value / floor if value is not None and floor else None),
        "target": target,
        "met": met,
    }


def median(samples: dict[str, list[float]], name: str) -> float | None:
    return statistics.median(samples[name]) if samples.get(name) else None


def build_report(
    runs: int,
    quick: bool,
    samples: dict[str, list[float]],
    counts: dict[str, int],
    errors: dict[str, str],
) -> dict[str, Any]:
    cli = median(samples, "convert_cli")
    return {
        "benchmark": "convert",
        "ratio": "constellation / floor",
        "config": {
            "quick": quick,
            "runs": runs,
            "corpus": [f"../shared/corpus/{f}" for f in FOLDERS],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "corpus": counts,
        "figures": {
            "convert_cli_seconds": figure(
                "convert the whole corpus (CLI), wall",
                "s",
                cli,
                median(samples, "parse_cli"),
                "parse_cli",
                f"< {TARGET_SECONDS:g} s",
                None if cli is None else cli < TARGET_SECONDS,
            ),
            "convert_library_ms": figure(
                "convert the whole corpus (in process)",
                "ms",
                median(samples, "convert_library"),
                median(samples, "parse_library"),
                "parse_library",
                "-",
                None,
            ),
        },
        "details": {
            "samples": {name: [round(v, 4) for v in values] for name, values in samples.items()}
        },
        "errors": errors,
    }


def run(quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 7
    samples: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as name:
        for part in ("cli", "library"):
            print(f"bench convert: {part} ...", file=sys.stderr, flush=True)
            try:
                if part == "cli":
                    samples |= measure_cli(runs, Path(name))
                else:
                    found, counts = measure_library(runs)
                    samples |= found
            except Exception as error:
                traceback.print_exc()
                errors[part] = f"{type(error).__name__}: {error}"
    return build_report(runs, quick, samples, counts, errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    options = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"bench convert: no corpus at {CORPUS}", file=sys.stderr)
        return 1
    report = run(options.quick)
    notes = [f"floor {name}: {what}" for name, what in BASELINES.items()]
    notes.append(f"corpus: {report['corpus']}")
    headers = ("constellation", "floor", "ratio", "target")
    return publish(
        report,
        options.output,
        table(report, headers, ("constellation", "baseline", "ratio", "target"), notes),
    )


if __name__ == "__main__":
    sys.exit(main())
