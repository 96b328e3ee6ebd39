#!/usr/bin/env python3
"""Fetch the web UI's front-end library from the npm registry into the package, verified.

The control plane ships these files inside its wheel, so neither a user nor a browser ever
needs a build step or a CDN. Run this to change a version (edit ASSETS), then commit the file
and the lock beside it; tests/controlplane/test_ui_assets.py checks the two agree.

    .venv/bin/python scripts/vendor-ui-assets.py
"""

import base64
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).resolve().parent.parent / "tether_controlplane" / "ui" / "static" / "vendor"
# package, version, file inside the package's tarball, name in vendor/.
ASSETS = [("htmx.org", "2.0.11", "package/dist/htmx.min.js", "htmx.min.js")]


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def vendor(package: str, version: str, member: str, name: str) -> dict[str, str]:
    meta = json.loads(fetch(f"{REGISTRY}/{package}/{version}"))
    dist = meta["dist"]
    tarball = fetch(dist["tarball"])
    algorithm, _, expected = dist["integrity"].partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise SystemExit(
            f"{package}@{version}: the tarball does not match the registry's integrity"
        )
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise SystemExit(f"{package}@{version} has no {member}")
        content = extracted.read()
    (VENDOR / name).write_bytes(content)
    return {
        "file": name,
        "package": package,
        "version": version,
        "from": f"{dist['tarball']} ({member})",
        "integrity": dist["integrity"],
        "sha256": hashlib.sha256(content).hexdigest(),
        "license": str(meta.get("license", "")),
    }


def main() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    lock = [vendor(*asset) for asset in ASSETS]
    (VENDOR / "vendored.json").write_text(json.dumps(lock, indent=2) + "\n")
    for entry in lock:
        print(f"{entry['file']}: {entry['package']}@{entry['version']} sha256 {entry['sha256']}")


if __name__ == "__main__":
    main()
