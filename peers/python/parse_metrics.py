"""Parses an OpenMetrics exposition (stdin) with the official Prometheus Python client's
parser, which rejects anything not in the format, and prints it as JSON: one object per
family with its type and samples.

    curl -s http://127.0.0.1:9901/metrics | parse_metrics.py
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    out = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value}
                for s in family.samples
            ],
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
