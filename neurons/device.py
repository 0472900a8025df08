"""Choose Brian2's code-generation target per run: numpy, cython or cpp_standalone.

- ``'numpy'``: no compiler, slowest; good for tiny runs and debugging.
- ``'cython'``: runtime mode; compiles once per code shape (cached in
  ``~/.cython``), then fast; the default for short interactive runs.
- ``'cpp_standalone'``: the whole network becomes a C++ program (OpenMP
  threads optional); ~7 s build, fastest per step; the default for long runs.
- ``'cuda_standalone'``: the same on an NVIDIA GPU through brian2cuda, when it is
  installed (``pip install brian2cuda`` and a CUDA toolkit); for full-size networks.

``'auto'`` picks cpp_standalone when ``neurons x steps`` exceeds
:data:`AUTO_STANDALONE_WORK` and cython otherwise (numpy if no C compiler is
available). Use :func:`use_target` *before* creating Brian2 objects; for a
standalone run call :func:`build` after ``run`` (or let ``run`` build: we set
``build_on_run=True``). Repeated standalone runs in one process work because
:func:`use_target` calls ``device.reinit()`` and gives each shape its own
build folder, so a rerun of the same shape is an incremental (warm) ``make``.

Builds announce themselves on standard error, so a cold compile is never minutes of silence: a standalone
build prints a line when it starts (cold or warm) and one with its elapsed time (compile and run), and a
cython run prints a line with the elapsed time of every code object it compiles (those not yet cached).
"""
from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from .common import MburstError

__all__ = ["TARGETS", "STANDALONE", "AUTO_STANDALONE_WORK", "choose_target", "use_target", "standalone_directory",
           "last_build_timers"]

TARGETS = ("numpy", "cython", "cpp_standalone", "cuda_standalone")
STANDALONE = ("cpp_standalone", "cuda_standalone")
AUTO_STANDALONE_WORK = 2e8  # neuron-steps (e.g. 2,000 neurons for 10 s at 0.1 ms)

_state = {"standalone_used": False, "directory": None, "cython_compiled": 0, "cython_seconds": 0.0}


def _have_compiler() -> bool:
    return shutil.which("g++") is not None or shutil.which("c++") is not None or shutil.which("clang++") is not None


def choose_target(target: str = "auto", n_neurons: int | None = None, duration=None, dt=None) -> str:
    """Resolve ``target`` ('auto' or one of :data:`TARGETS`) to a concrete target name.

    'auto': numpy without a C++ compiler, cpp_standalone when
    ``n_neurons * duration/dt`` exceeds :data:`AUTO_STANDALONE_WORK`, else cython.

    Parameters
    ----------
    target : str, optional
        'auto' or one of :data:`TARGETS`.
    n_neurons : int, optional
        Network size, used by 'auto' (with ``duration``).
    duration : Quantity (s), optional
        Simulated time, used by 'auto'.
    dt : Quantity (s), optional
        Time step for 'auto', default 0.1 ms.

    Returns
    -------
    str
        One of :data:`TARGETS`.

    Raises
    ------
    MburstError
        If ``target`` is unknown, 'cuda_standalone' lacks brian2cuda, or a
        compiled target finds no C++ compiler.
    """
    if target not in TARGETS + ("auto",):
        raise MburstError(f"target={target!r} is unknown; expected 'auto' or one of {TARGETS}")
    if target != "auto":
        if target == "cuda_standalone" and importlib.util.find_spec("brian2cuda") is None:
            raise MburstError("target='cuda_standalone' needs brian2cuda (pip install brian2cuda, and a CUDA toolkit); "
                              "use 'cpp_standalone' with --threads on a CPU machine")
        if target != "numpy" and not _have_compiler():
            raise MburstError(f"target={target!r} needs a C++ compiler (g++), none found on PATH; use 'numpy'")
        return target
    if not _have_compiler():
        return "numpy"
    if n_neurons is not None and duration is not None:
        from brian2 import ms, second

        steps = float(duration / second) / float((dt if dt is not None else 0.1 * ms) / second)
        if n_neurons * steps > AUTO_STANDALONE_WORK:
            return "cpp_standalone"
    return "cython"


def standalone_directory(tag: str) -> Path:
    """The build folder for standalone code of shape ``tag`` (under the mburst cache).

    Parameters
    ----------
    tag : str
        Name of the code shape; characters other than alphanumerics and
        ``-_.`` become ``_``.

    Returns
    -------
    pathlib.Path
        ``$MBURST_CACHE`` (default ``~/.cache/mburst``) ``/brian2_standalone/<tag>``.
    """

    root = Path(os.environ.get("MBURST_CACHE", Path.home() / ".cache" / "mburst"))
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tag) or "run"
    return root / "brian2_standalone" / safe


def use_target(target: str = "auto", *, threads: int = 0, tag: str = "default", directory=None,
               n_neurons: int | None = None, duration=None, dt=None, clean: bool = False) -> str:
    """Activate ``target`` for the objects created next; return the concrete target.

    Call this before building the network. It resets Brian2's device state, so
    earlier standalone objects must not be reused.

    Parameters
    ----------
    target : str, optional
        'auto' or one of :data:`TARGETS` (see :func:`choose_target`).
    threads : int, optional
        OpenMP threads for cpp_standalone (0 = no OpenMP).
    tag : str, optional
        Names the standalone build folder (same tag + same code = warm rebuild).
    directory : str or os.PathLike, optional
        Overrides the build folder given by ``tag``.
    n_neurons : int, optional
        Network size, for 'auto'.
    duration, dt : Quantity (s), optional
        Simulated time and time step, for 'auto'.
    clean : bool, optional
        Force a cold standalone build.

    Returns
    -------
    str
        The concrete target activated.

    Raises
    ------
    MburstError
        If ``threads`` is not a non-negative int, or as :func:`choose_target`.
    """
    from brian2 import device, prefs, set_device

    chosen = choose_target(target, n_neurons, duration, dt)
    if not isinstance(threads, int) or threads < 0:
        raise MburstError(f"threads={threads!r} must be a non-negative integer")
    if _state["standalone_used"]:
        device.reinit()
        device.activate()
        _state["standalone_used"] = False
    gc.collect()  # the earlier network's objects go, so this one gets their Brian2 names back (warm rebuilds)
    if chosen in STANDALONE:
        if chosen == "cuda_standalone":
            import brian2cuda  # noqa: F401  registers the device
        build_dir = Path(directory) if directory is not None else standalone_directory(tag)
        build_dir.mkdir(parents=True, exist_ok=True)
        prefs.devices.cpp_standalone.openmp_threads = threads
        # Brian2's default `make -j` starts one compiler per source file at once (dozens);
        # bound it by the cores this process may use, or a 2-core machine thrashes.
        prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{len(os.sched_getaffinity(0))}"]
        set_device(chosen, directory=str(build_dir), build_on_run=True, with_output=False, clean=clean)
        _state["standalone_used"] = True
        _state["directory"] = build_dir
        _announce_standalone_build(chosen, build_dir)
    else:
        set_device("runtime")
        prefs.codegen.target = chosen
        if chosen == "cython":
            _announce_cython_compiles()
    return chosen


def _announce_standalone_build(chosen: str, build_dir: Path) -> None:
    """Wrap the active standalone device's ``build``: a line on stderr when it starts, one with its elapsed time."""
    from brian2 import get_device

    dev = get_device()
    build = type(dev).build.__get__(dev)  # the class's method: a device used again is wrapped once, not twice

    def announced(*args, **kwargs):
        cold = not (build_dir / "main").exists()
        kind = "cold build (compiles every source file)" if cold else "warm build (make recompiles changed files)"
        print(f"Brian2 {chosen}: {kind} + run in {build_dir} ...", file=sys.stderr, flush=True)
        t0, ok = time.perf_counter(), False
        try:
            result = build(*args, **kwargs)
            ok = True
            return result
        finally:
            timers = last_build_timers() if ok else {}
            parts = [f"{name} {timers[key]:.1f} s" for name, key in (("compile", "make"), ("run", "run_binary"))
                     if isinstance(timers.get(key), (int, float))]
            print(f"Brian2 {chosen}: {'built and ran in' if ok else 'build failed after'} "
                  f"{time.perf_counter() - t0:.1f} s" + (f" ({', '.join(parts)})" if parts else ""),
                  file=sys.stderr, flush=True)

    dev.build = announced


def _announce_cython_compiles() -> None:
    """Wrap Brian2's Cython module loader: a line on stderr with the elapsed time of every code object compiled.

    Brian2 2.9 has no public hook; its extension manager's ``_load_module(module_path, ...)`` compiles when
    ``module_path`` is not yet in the cache. Wrapped once per process (the manager is a module-level singleton).
    """
    from brian2.codegen.runtime.cython_rt.extension_manager import cython_extension_manager as manager
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    if getattr(manager._load_module, "mburst_announced", False):
        return
    load = manager._load_module

    def announced(module_path, *args, **kwargs):
        if os.path.isfile(module_path):
            return load(module_path, *args, **kwargs)
        t0 = time.perf_counter()
        result = load(module_path, *args, **kwargs)
        seconds = time.perf_counter() - t0
        _state["cython_compiled"] += 1
        _state["cython_seconds"] += seconds
        print(f"Brian2 cython: compiled code object {_state['cython_compiled']} in {seconds:.1f} s "
              f"({_state['cython_seconds']:.0f} s in all; cached in {get_cython_cache_dir()}, so later runs skip it)",
              file=sys.stderr, flush=True)
        return result

    announced.mburst_announced = True
    manager._load_module = announced


def last_build_timers() -> dict:
    """Timings of the last standalone build (seconds): 'make' (compile), 'clean', 'run_binary'."""
    from brian2 import device

    timers = getattr(device, "timers", None)
    if not timers:
        return {}
    return {"make": timers["compile"]["make"], "clean": timers["compile"]["clean"],
            "run_binary": timers["run_binary"]}
