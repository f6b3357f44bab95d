"""Runs one CPython regression-test module for `cloister bench compat`.

Usage: python3 compat_runner.py MODULE [REGRTEST-OPTION ...]

The module runs through regrtest in this process, as `python3 -m test
MODULE` does (same temporary working directory, same resources: none of
the optional ones). Each test's outcome is written to fd 1 as it ends, on
a line of its own:

    @@compat OUTCOME SPAWNED TEST-ID

OUTCOME is pass, xfail (an expected failure), skip or fail (a failure, an
error, an unexpected success or a failed subtest); SPAWNED is 1 when the
test tried to start another process (CPython's audit events for
subprocess, fork, exec, posix_spawn and system), else 0. Errors outside a
test (setUpClass, a module that fails to load) get a line of their own
with the description unittest gives them. The traceback of each failure
goes to fd 2 after a line `@@compat-trace TEST-ID`. The last line is
`@@compat-end STATUS` with regrtest's exit status; a run that never
prints it was stopped (a hang or a crash), and the tests reported until
then still count.
"""

import os
import sys
import traceback
import unittest.result

SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
    }
)

state = {"id": None, "outcome": None, "spawned": False}


def audit(event, _args):
    if event in SPAWN_EVENTS:
        state["spawned"] = True


def emit(outcome, spawned, test_id):
    test_id = " ".join(str(test_id).split())
    os.write(1, f"\n@@compat {outcome} {int(spawned)} {test_id}\n".encode())


def test_id(test):
    try:
        return test.id()
    except Exception:
        return str(test)


Base = unittest.result.TestResult
original = {
    name: getattr(Base, name)
    for name in (
        "startTest",
        "stopTest",
        "addError",
        "addFailure",
        "addSkip",
        "addExpectedFailure",
        "addUnexpectedSuccess",
        "addSubTest",
    )
}


def start_test(self, test):
    state.update(id=test_id(test), outcome="pass", spawned=False)
    return original["startTest"](self, test)


def stop_test(self, test):
    if state["id"] is not None and state["id"] == test_id(test):
        emit(state["outcome"], state["spawned"], state["id"])
        state["id"] = None
    return original["stopTest"](self, test)


def outside(test):
    """Whether a result is about something other than the running test
    (a class or module fixture)."""
    if state["id"] is None:
        return True
    return not isinstance(test, unittest.case._SubTest) and test_id(test) != state["id"]


def trace(test, err):
    """Writes a failure's traceback to fd 2, for the log."""
    try:
        text = "".join(traceback.format_exception(*err))
    except Exception:
        text = repr(err)
    os.write(2, f"\n@@compat-trace {test_id(test)}\n{text}\n".encode(errors="replace"))


def failed(name):
    def add(self, test, err):
        trace(test, err)
        if outside(test):
            emit("fail", state["spawned"], test_id(test))
        else:
            state["outcome"] = "fail"
        return original[name](self, test, err)

    return add


def add_skip(self, test, reason):
    if isinstance(test, unittest.case._SubTest):
        pass  # a skipped subtest leaves its test's outcome alone
    elif outside(test):
        emit("skip", False, test_id(test))
    else:
        state["outcome"] = "skip"
    return original["addSkip"](self, test, reason)


def add_expected_failure(self, test, err):
    if not outside(test):
        state["outcome"] = "xfail"
    return original["addExpectedFailure"](self, test, err)


def add_unexpected_success(self, test):
    if not outside(test):
        state["outcome"] = "fail"
    return original["addUnexpectedSuccess"](self, test)


def add_sub_test(self, test, subtest, err):
    if err is not None and not issubclass(err[0], unittest.case.SkipTest):
        trace(subtest, err)
        state["outcome"] = "fail"
    return original["addSubTest"](self, test, subtest, err)


Base.startTest = start_test
Base.stopTest = stop_test
Base.addError = failed("addError")
Base.addFailure = failed("addFailure")
Base.addSkip = add_skip
Base.addExpectedFailure = add_expected_failure
Base.addUnexpectedSuccess = add_unexpected_success
Base.addSubTest = add_sub_test


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: compat_runner.py MODULE [REGRTEST-OPTION ...]")
    module, options = sys.argv[1], sys.argv[2:]
    sys.addaudithook(audit)
    from test.libregrtest.main import main as regrtest

    sys.argv = [sys.argv[0], *options, module]
    status = 0
    try:
        regrtest()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"\n@@compat-end {status}\n".encode())
    os._exit(status)


if __name__ == "__main__":
    main()
