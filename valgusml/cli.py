"""`valgusml` command: one entry point dispatching to each stage's own module.

Sub-commands import their stage lazily, so `valgusml predict` never pays for torch or Lightning start-up.
Hydra apps (generate, train, evaluate) take Hydra overrides (`key=value`, `-m`); the others take flags.
"""

from __future__ import annotations

import importlib
import sys

from valgusml.errors import stopped_by_ctrl_c

COMMANDS = {
    "generate": ("valgusml.synth.app", "main", "synthesise a labelled dataset (Hydra overrides)"),
    "train": ("valgusml.training.train", "main", "train a model, tracked in MLflow (Hydra overrides)"),
    "evaluate": ("valgusml.evaluation.evaluate", "main", "evaluate on held-out athletes (Hydra overrides)"),
    "export": ("valgusml.export.cli", "main", "export a run or checkpoint as a predictor folder"),
    "ensemble": ("valgusml.export.ensemble", "main", "average exported predictors into one predictor folder"),
    "predict": ("valgusml.viz.cli", "main", "predict from pose or video files (--overlay/--plot pictures)"),
    "keypoints": ("valgusml.io.video", "main", "pose keypoints from a video (MediaPipe, offline) to a CSV/JSON"),
    "convert": ("valgusml.data.convert", "main", "turn pose files (labelled by a CSV, by the rule, or not) into a dataset"),
    "film": ("valgusml.evaluation.transfer.film", "main", "film a labelled 3D dataset as 2D views and estimators"),
    "verify": ("valgusml.data.verify", "main", "check a dataset folder's hashes and fingerprint against its data"),
}
# What a command interrupted with Ctrl-C kept, and how to go on (a traceback would say neither).
INTERRUPTED = {
    "generate": "the shards already written are kept; run the same command again to write only the missing ones",
    "convert": "nothing was written (the dataset is written whole at the end); run the command again",
    "film": "nothing was written (the dataset is written whole at the end); run the command again",
    "train": "its last.ckpt is kept and its MLflow run marked KILLED; go on with the same command and resume=true "
             "(a sweep: and the hydra.sweep.dir named above)",
    "evaluate": "a new report folder appears only when complete, and an MLflow run it had opened is marked "
                "KILLED; run the command again",
}
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C'd command


def _usage() -> str:
    lines = ["usage: valgusml COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from valgusml import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"valgusml: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    func = getattr(importlib.import_module(module_name), func_name)
    # Hydra apps read sys.argv themselves; give them the command line without the sub-command.
    sys.argv = [f"valgusml {name}", *rest]
    try:
        result = func(rest)
    except (KeyboardInterrupt, SystemExit) as exc:
        if not stopped_by_ctrl_c(exc):
            raise
        kept = INTERRUPTED.get(name)
        print(f"\nvalgusml {name}: interrupted (Ctrl-C){'; ' + kept if kept else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
