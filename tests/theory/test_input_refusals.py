"""Bad input is refused with a message naming the argument, the value and the allowed range."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import cliff


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"p": np.nan}, r"p must be in the open interval \(0, 1\), got nan"),
        ({"p": 1.0}, r"p must be in the open interval \(0, 1\), got 1.0"),
        ({"b": 0.0}, r"b must be in the open interval \(0, 1\), got 0.0"),
        ({"b": -0.2}, r"b must be in .*got -0.2"),
        ({"c": 1.0}, r"c must be in \(1, inf\) \(a finite ratio cap > 1\), got 1.0"),
        ({"c": 0.5}, r"c must be in \(1, inf\)"),
        ({"c": np.inf}, r"c must be in \(1, inf\).*got inf"),
        ({"c_low": 1.0}, r"c_low must be in \[0, 1\) \(0 = no lower clip\), got 1.0"),
        ({"c_low": -0.1}, r"c_low must be in \[0, 1\)"),
        ({"p": "high"}, r"p must be a real number"),
    ],
)
def test_scalar_errors_name_argument_value_and_range(kwargs: dict, pattern: str) -> None:
    args = {"p": 0.99, "b": 0.5, "c": 5.0, "c_low": None} | kwargs
    with pytest.raises(ValueError, match=pattern):
        cliff.solve(args["p"], args["b"], args["c"], c_low=args["c_low"])


LONG = pytest.mark.skipif(np.finfo(np.longdouble).eps == np.finfo(np.float64).eps,
                          reason="longdouble is float64 on this platform")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"p": np.array([0.9 + 0j])}, r"p must be real numbers, got complex input"),
        ({"p": 0.9 + 0j}, r"p must be real numbers, got complex input \(0.9\+0j\)"),
        ({"p": "0.9"}, r"p must be a real number or array of reals, got '0.9'"),
        ({"c": "5"}, r"c must be a real number or array of reals, got '5'"),
        ({"b": np.array(["0.5"])}, r"b must be real numbers, got string input"),
        ({"p": None}, r"p must be a real number or array of reals, got None"),
        ({"p": [0.9, None]}, r"p must be a real number .*holds None \(NoneType\)"),
        ({"p": True}, r"p must be real numbers, got boolean input True"),
        ({"c": 10**400}, r"c must be .*within the float64 range"),
        ({"p": np.ma.array([0.9, 0.95], mask=[False, True])},
         r"p is a masked array with 1 masked entries.*p.compressed\(\)"),
        pytest.param({"p": np.longdouble(1) - np.longdouble(2) ** -60},
                     r"p must be in the open interval \(0, 1\), got 0.9999999999999999991\d* "
                     r"\((float128|longdouble)\), 1.0 in float64", marks=LONG),
        pytest.param({"c": np.array([5.0, np.longdouble("1e400")], dtype=np.longdouble)},
                     r"c must be in \(1, inf\).*first at index 1: 1e\+400 "
                     r"\((float128|longdouble)\), inf in float64", marks=LONG),
    ],
)
def test_non_reals_are_refused_and_values_reported_as_passed(kwargs: dict, pattern: str
                                                            ) -> None:
    """Complex, strings, None, booleans and masked entries are refused, not coerced; a bad
    value is shown as the caller passed it (a longdouble with its own digits)."""
    args = {"p": 0.99, "b": 0.5, "c": 5.0, "c_low": None} | kwargs
    with pytest.raises(ValueError, match=pattern):
        cliff.solve(args["p"], args["b"], args["c"], c_low=args["c_low"])


def test_masked_array_without_masked_entries_is_its_data() -> None:
    """The mask decides: with no entry masked a masked array is solved as its data."""
    p = np.ma.array([0.9, 0.95], mask=[False, False])
    np.testing.assert_array_equal(cliff.solve(p, 0.5, 5.0).lambda_star,
                                  cliff.solve(p.data, 0.5, 5.0).lambda_star)


def test_torch_tensors_with_grad_are_detached() -> None:
    """A tensor that requires grad (as a training loop holds it) is read, not refused."""
    torch = pytest.importorskip("torch")
    p = torch.tensor([0.9, 0.95], dtype=torch.float64, requires_grad=True)
    got = cliff.solve(p, torch.tensor(0.5), torch.tensor(5.0)).lambda_star
    np.testing.assert_array_equal(got, cliff.solve(np.array([0.9, 0.95]), 0.5, 5.0).lambda_star)
    t = torch.tensor([[0.7, 0.3]], requires_grad=True)
    assert np.isfinite(cliff.solve_kary(t, [[0.5, 0.5]], 5.0).lambda_star).all()
    with pytest.raises(ValueError, match="complex"):
        cliff.solve(torch.tensor([0.9 + 0j]), 0.5, 5.0)


def test_array_error_counts_bad_entries_and_first_index() -> None:
    p = np.array([0.5, 0.9, np.nan, 1.2, 0.3])
    with pytest.raises(ValueError, match=r"p must be in .*: 2 of 5 entries are not "
                                         r"\(first at index 2: nan\)"):
        cliff.solve(p, 0.5, 5.0)


def test_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(ValueError, match=r"shapes do not broadcast together: p \(3,\), "
                                         r"b \(2,\)"):
        cliff.solve(np.full(3, 0.9), np.full(2, 0.5), 5.0)


def test_lambda_must_be_finite_nonnegative() -> None:
    with pytest.raises(ValueError, match=r"lam must be in \[0, inf\)"):
        cliff.fixed_point(0.9, 0.5, -1.0)
    with pytest.raises(ValueError, match=r"lam must be >= 1 for clipped_fixed_point"):
        cliff.clipped_fixed_point(0.9, 0.5, 5.0, 0.5)


def test_nothing_is_clipped_or_nan_at_extremes() -> None:
    r = cliff.solve(np.array([1 - 1e-12, 1e-12]), np.array([1e-12, 1 - 1e-12]), 1 + 1e-6,
                    c_low=0.0)
    assert np.all(np.isfinite(r.lambda_star)) and np.all(r.lambda_star > 1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cliff", *args], capture_output=True,
                          text=True, check=False)


def test_cli_solve_text_and_json_agree_with_library() -> None:
    text = _cli("solve", "--p", "0.999", "--b", "0.99", "--c", "5")
    assert text.returncode == 0 and "lambda*" in text.stdout and "sharpening" in text.stdout
    out = _cli("solve", "--p", "0.999", "--b", "0.99", "--c", "5", "--json")
    got = json.loads(out.stdout)
    want = cliff.solve(0.999, 0.99, 5.0)
    assert got["lambda_star"] == want.lambda_star
    assert got["lambda_collapse"] == want.lambda_collapse
    assert (got["regime"], got["binding"]) == (want.regime, want.binding)


def test_cli_reports_bad_input_and_help_states_ranges() -> None:
    bad = _cli("solve", "--p", "1.5", "--b", "0.9")
    assert bad.returncode == 2 and "p must be in the open interval (0, 1), got 1.5" in bad.stderr
    help_text = _cli("solve", "--help").stdout
    for fragment in ("(0, 1)", "(1,", "[0, 1)"):
        assert fragment in help_text
    assert _cli("--help").returncode == 0
