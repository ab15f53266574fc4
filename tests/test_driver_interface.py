"""The driver interface: declarations are checked at load, and bad drivers stop a run with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance.adapters.memory import MemoryDriver
from conftest import gspc
from engine_drivers import MissingWrite, UnknownPair

from conformance import errors
from conformance.driver import BaseDriver, Capabilities, DriverError, Mode, Object, check_driver


def test_declared_but_undefined_operation_is_rejected() -> None:
    with pytest.raises(DriverError, match="^driver 'missing-write': declares write but does not define it$"):
        check_driver(MissingWrite())


def test_unknown_pair_is_rejected() -> None:
    with pytest.raises(DriverError, match="unknown pair 'colour' on write"):
        check_driver(UnknownPair())


@pytest.mark.parametrize(
    ("caps", "problem"),
    [
        (Capabilities(operations={"rename"}), "unknown operation 'rename'"),
        (Capabilities(operations={"write"}, limits={"append_size_maximum": 0}), "must be a positive integer"),
        (Capabilities(operations={"write"}, limits={"speed": 1}), "unknown limit 'speed'"),
        (Capabilities(operations={"write"}, features={"teleport"}), "unknown feature 'teleport'"),
    ],
)
def test_capability_problems(caps: Capabilities, problem: str) -> None:
    assert any(problem in p for p in caps.problems())


def test_capability_tokens() -> None:
    caps = MemoryDriver().capabilities()
    assert caps.has("write") and caps.has("read.offset") and caps.has("limit.append_size_maximum")
    assert not caps.has("delete.content_type") and not caps.has("feature.loose_pair")


def test_base_driver_refuses_what_it_lacks() -> None:
    class OnlyDelete(BaseDriver):
        name = "only-delete"

        def capabilities(self) -> Capabilities:
            return Capabilities(operations={"delete"})

        def delete(self, path: str, **pairs: object) -> None:
            self.check_pairs("delete", pairs, path)

    driver = OnlyDelete()
    assert check_driver(driver).operations == {"delete"}
    with pytest.raises(errors.NotImplemented) as missing:
        driver.create_append("p")
    assert (missing.value.op, missing.value.path) == ("create_append", "p")
    with pytest.raises(errors.PairUnsupported) as refused:
        driver.delete("p", content_type="text/plain")
    assert refused.value.pair == "content_type" and isinstance(refused.value, errors.CapabilityInsufficient)
    with pytest.raises(errors.ObjectModeInvalid):
        driver.check_append("write_append", Object("p", Mode.READ))


def test_mode_prints_like_go_storage() -> None:
    assert str(Mode.READ | Mode.APPEND) == "read|append" and Mode.APPEND == 64


@pytest.mark.parametrize(
    ("driver", "message"),
    [
        ("engine_drivers:MissingWrite", "declares write but does not define it"),
        ("engine_drivers:UnknownPair", "unknown pair 'colour' on write"),
        ("nosuchdriver", "unknown driver 'nosuchdriver'"),
        ("engine_drivers:Nope", "module engine_drivers has no Nope"),
        ("engine_drivers:BrokenInit", "cannot open: RuntimeError: backend refused the handshake"),
        ("engine_drivers:CapsRaise", "capabilities() raised KeyError"),
    ],
)
def test_bad_driver_stops_the_run_with_one_line(tmp_path: Path, driver: str, message: str) -> None:
    done = gspc("run", "--driver", driver, "--spec", "delete", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr + done.stdout


def test_a_driver_that_never_opens_stops_the_run(tmp_path: Path) -> None:
    done = gspc("run", "--driver", "engine_drivers:SlowOpen", "--spec", "delete", "--timeout", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert "opening took longer than 1 s" in done.stderr and "Traceback" not in done.stderr + done.stdout
