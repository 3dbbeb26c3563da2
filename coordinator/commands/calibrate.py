"""`fedzo calibrate --task NAME`: measure the return differences that set the panel scale c."""
import json

from fedzo.coordinator.tools.calibrate import calibrate
from fedzo.edge.tasks import TASK_NAMES


def add_arguments(parser):
    parser.add_argument("--task", choices=TASK_NAMES, action="append", help="task(s) (default: all four)")
    parser.add_argument("--samples", type=int, default=40, help="perturbations measured per task")


def run(args) -> int:
    for task in args.task or TASK_NAMES:
        print(json.dumps(calibrate(task, args.samples)))
    return 0
