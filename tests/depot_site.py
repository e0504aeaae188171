"""The test depot of tests/data/depot served the way a depot is: index, vendor index, metadata zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.fixtures.feed_site import Site

DEPOT = Path(__file__).parent / "data" / "depot"


def metadata_zip(extra_profiles: tuple[str, ...] = ()) -> bytes:
    """The metadata bundle built from tests/data/depot/metadata (deterministic bytes), plus profiles."""
    out = io.BytesIO()
    members = sorted(p for p in (DEPOT / "metadata").rglob("*") if p.is_file())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in members:
            info = zipfile.ZipInfo(str(path.relative_to(DEPOT / "metadata")), (2025, 6, 17, 0, 0, 0))
            bundle.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        template = (DEPOT / "metadata" / "profiles" / "ESXi-8.0U3d-24585383-standard.xml").read_text()
        for name in extra_profiles:
            info = zipfile.ZipInfo(f"profiles/{name}.xml", (2025, 6, 17, 0, 0, 0))
            bundle.writestr(info, template.replace("ESXi-8.0U3d-24585383-standard", name))
    return out.getvalue()


def serve_depot(site: Site, prefix: str = "", extra_profiles: tuple[str, ...] = ()) -> str:
    """Put the depot on the local site under ``prefix``; returns the depot index URL."""
    site.docs[f"{prefix}/vmw-depot-index.xml"] = ((DEPOT / "vmw-depot-index.xml").read_bytes(), "text/xml")
    site.docs[f"{prefix}/vmw/vmw-esx-index.xml"] = (
        (DEPOT / "vmw" / "vmw-esx-index.xml").read_bytes(),
        "text/xml",
    )
    site.docs[f"{prefix}/vmw/vmw-ESXi-metadata.zip"] = (metadata_zip(extra_profiles), "application/zip")
    return f"{site.base}{prefix}/vmw-depot-index.xml"
