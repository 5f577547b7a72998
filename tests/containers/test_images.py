"""The project's images, built from their Dockerfiles through scripts/build_images.sh on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from .images import rootfs_files

pytestmark = pytest.mark.timeout(2400)  # a cold build of both images takes minutes; warm, seconds

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def test_builds_reach_the_index_through_the_site_ca_without_keeping_it(images):
    """build_images.sh binds the host's CA bundle and pip.conf into the build; the images hold neither."""
    for ref in (images.hub, images.base_cpu):
        files = rootfs_files(ref, "/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt")
        # buildah leaves an empty file where it bound one the image did not have: present, but it holds nothing.
        assert not files["/etc/pip.conf"], f"{ref} kept the build's pip.conf: {files['/etc/pip.conf'][:200]!r}"
        if HOST_CA.is_file():
            assert files["/etc/ssl/certs/ca-certificates.crt"] != HOST_CA.read_bytes(), f"{ref} kept the host's CA bundle"


def test_tags_name_the_platform_the_machine_built(images):
    """No emulation here: amd64 only, and the tag says so rather than passing for the multi-platform image."""
    for ref in (images.hub, images.base_cpu):
        assert ref.rsplit(":", 1)[1].endswith("-amd64"), ref
