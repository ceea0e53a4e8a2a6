"""Programs that try to turn a wrong completion into a pass (issue 15's point 2, and more).

Shared by test_sandbox_verdicts.py (through the grading path) and test_sandbox_hostile.py
(against every isolation variant). Each runs inside a wrong completion, either when the
function under test is first called or at import time.
"""

FORGE_PRELUDE = "import os, sys, gc\n"
FORGERIES = {
    # Walk the frames to the harness's token, report completion, leave before any test runs.
    "frame-walk-completed-exit": (
        "f, token = sys._getframe(), None\n"
        "while f is not None:\n"
        "    token = f.f_locals.get('token', token)\n"
        "    plan = f.f_locals.get('plan')\n"
        "    token = getattr(plan, 'token', token)\n"
        "    f = f.f_back\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        '        os.write(fd, f\'{token} {{"outcome": "completed"}}\\n\'.encode())\n'
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    ),
    # Fake a value for every call, on every descriptor, with the token found in memory.
    "fake-values-everywhere": (
        "tokens = {o for o in gc.get_objects() if isinstance(o, str) and len(o) == 32}\n"
        "plan = [o for o in gc.get_objects() if type(o).__name__ == 'RunPlan']\n"
        "tokens |= {p.token for p in plan}\n"
        "for fd in range(3, 256):\n"
        "    for token in tokens:\n"
        "        for call in range(50):\n"
        "            for value in (True, 0, [], ''):\n"
        "                line = {'outcome': 'value', 'call': call, 'value': value}\n"
        "                try:\n"
        "                    os.write(fd, f'{token} {__import__(\"json\").dumps(line)}\\n'.encode())\n"
        "                except OSError:\n"
        "                    pass\n"
    ),
    # Replace the harness's own functions.
    "monkeypatch-harness": (
        "for name, module in list(sys.modules.items()):\n"
        "    if name.startswith('phi1lib'):\n"
        "        for attr in ('_report_exception', '_evaluate_calls', 'encode', 'holds'):\n"
        "            if hasattr(module, attr):\n"
        "                setattr(module, attr, lambda *a, **k: True)\n"
    ),
    # Jump over every assert line that executes (the in-process check's weakness).
    "settrace-skips-asserts": (
        "import linecache\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'line':\n"
        "        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()\n"
        "        if line.startswith('assert'):\n"
        "            try:\n"
        "                frame.f_lineno = frame.f_lineno + 1\n"
        "            except ValueError:\n"
        "                pass\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n"
    ),
    "close-every-descriptor-then-exit-0": ("os.closerange(3, 1024)\nos._exit(0)\n"),
    # Look for the test's expected values anywhere in this process's memory.
    # Look for HumanEval/0's first expected value anywhere in this process's memory (the
    # needle is joined at run time, so that the program's own constants do not hold it).
    "gc-scan-for-the-test": (
        "needle = ''.join(['2.2], 0.3) ', '== True'])\n"
        "texts = [o for o in gc.get_objects() if isinstance(o, str | bytes)]\n"
        "texts += [c for o in gc.get_objects() if hasattr(o, 'co_consts') for c in o.co_consts]\n"
        "hits = [t for t in texts if isinstance(t, str) and needle in t]\n"
        "print('LEAK' if hits else 'no-leak', flush=True)\n"
    ),
}
