"""The sam build output: what Lambda will run on arm64."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tools.harness.lambda_runtime import BUILD_DIR
from tools.harness.template import load_template

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 0xB7


def _native_files(folder: Path) -> list[Path]:
    native = []
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                if handle.read(4) == ELF_MAGIC:
                    native.append(path)
    return native


def test_the_layer_holds_the_package_and_its_pinned_dependencies() -> None:
    python = BUILD_DIR / "SharedLayer" / "python"
    assert (python / "kustomer_token" / "token.py").is_file()
    pinned = (Path(__file__).resolve().parents[2] / "layers" / "shared" / "requirements.txt").read_text()
    for requirement in (line.split()[0] for line in pinned.splitlines() if line[:1].isalnum()):
        name, version = requirement.split("==")
        normalized = name.lower().replace("-", "_")
        dist_infos = [p.name.lower() for p in python.glob("*.dist-info")]
        assert any(d.startswith(f"{normalized}-{version}.") for d in dist_infos), requirement


def test_the_layer_holds_only_arm64_or_pure_python_code() -> None:
    python = BUILD_DIR / "SharedLayer" / "python"
    for path in _native_files(python):
        header = path.read_bytes()[:20]
        machine = int.from_bytes(header[18:20], "little")
        assert machine == EM_AARCH64, f"{path.relative_to(python)} is native code for machine {machine:#x}, not arm64"


def test_the_functions_hold_only_their_handlers_and_bytecode() -> None:
    for name in ("MintTokenFunction", "RefreshSecretFunction"):
        files = sorted(str(p.relative_to(BUILD_DIR / name)) for p in (BUILD_DIR / name).rglob("*") if p.is_file())
        assert files == ["__pycache__/app.cpython-313.pyc", "app.py"], (name, files)


def test_every_module_ships_bytecode_python_313_uses_without_checking_the_source() -> None:
    # Lambda's filesystem is read-only: without shipped .pyc, every cold start compiles every module.
    folders = [BUILD_DIR / name for name in ("SharedLayer/python", "MintTokenFunction", "RefreshSecretFunction")]
    sources = [path for folder in folders for path in folder.rglob("*.py")]
    assert len(sources) > 100
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert compiled.is_file(), source
        header = compiled.read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, compiled
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{compiled} is not an unchecked-hash pyc"


def test_the_built_template_runs_python313_on_arm64() -> None:
    built = load_template(BUILD_DIR / "template.yaml")
    function_globals = built["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    layer = built["Resources"]["SharedLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
