"""The command that starts a job's stage, from the generated accelerate config.

``accelerate launch`` decides from the config how to start the script: a single process is
run directly with some ``ACCELERATE_*`` environment variables (its "simple launcher"); several
processes, several machines or DeepSpeed go through torchrun or the DeepSpeed launcher. For the
single-process case the worker asks accelerate's own launch code, in the worker, for the exact
command and environment ``accelerate launch`` would run, and starts that: the same launch
without an extra Python process that imports torch only to start another one (seconds per
job). Everything else is handed to ``accelerate launch`` as a subprocess.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from backend.jobs.devices import DevicePlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchCommand:
    argv: list[str]
    env: dict[str, str]  # set on top of the worker's environment
    how: str  # for the log: which path was taken


def accelerate_args(config_file: Path, plan: DevicePlan, module: str, job_dir: Path
                    ) -> list[str]:
    threads = ["--num_cpu_threads_per_process", str(os.cpu_count() or 1)] \
        if plan.use_cpu else []
    return ["--config_file", str(config_file), *threads, "-m", module, "--job-dir",
            str(job_dir)]


def single_process_launch(args: list[str]) -> LaunchCommand | None:
    """What ``accelerate launch ARGS`` would run, when it is one plain process; None when
    the config needs a distributed launcher (or accelerate's launch code cannot be used)."""
    try:
        from accelerate.commands.launch import (  # type: ignore[import-untyped]
            _validate_launch_command,
            launch_command_parser,
        )
        from accelerate.utils.launch import (  # type: ignore[import-untyped]
            prepare_simple_launcher_cmd_env,
        )

        parsed = launch_command_parser().parse_args(args)
        parsed, _defaults, _ = _validate_launch_command(parsed)
        if any(getattr(parsed, name, False) for name in (
                "use_deepspeed", "use_fsdp", "use_megatron_lm", "multi_gpu", "tpu")):
            return None
        if int(getattr(parsed, "num_processes", 1) or 1) > 1 or \
                int(getattr(parsed, "num_machines", 1) or 1) > 1:
            return None
        cmd, env = prepare_simple_launcher_cmd_env(parsed)
    except Exception:  # an accelerate version whose internals moved: launch it as a program
        log.warning("preparing the accelerate launch in process failed; using the "
                    "`accelerate launch` program", exc_info=True)
        return None
    added = {k: v for k, v in env.items() if os.environ.get(k) != v}
    return LaunchCommand(list(cmd), added, "accelerate launch (single process, prepared by "
                         "accelerate's launcher in the worker)")


def launch_command(launcher: str, plan: DevicePlan, module: str, job_dir: Path,
                   config_file: Path) -> LaunchCommand:
    """The command for ``launcher`` ("accelerate", "accelerate-subprocess" or "python")."""
    if launcher == "python":
        return LaunchCommand([sys.executable, "-m", module, "--job-dir", str(job_dir)], {},
                             "python (no accelerate)")
    args = accelerate_args(config_file, plan, module, job_dir)
    if launcher == "accelerate":
        prepared = single_process_launch(args)
        if prepared is not None:
            return prepared
    return LaunchCommand([sys.executable, "-m", "accelerate.commands.launch", *args], {},
                         "accelerate launch")
