"""What-if throughput studies: scenarios x replications on the plant model, with confidence
intervals, paired comparisons under common random numbers, warm-up detection and bottlenecks.

Typical use::

    from twin.studies import load_study, run_and_report
    study = load_study("plant_config/studies/add_mill.toml", days=20, replications=5)
    result, stats, files = run_and_report(study, "runs/studies/add_mill")
"""

from twin.studies.definition import Study, load_study
from twin.studies.driver import run_and_report

__all__ = ["Study", "load_study", "run_and_report"]
