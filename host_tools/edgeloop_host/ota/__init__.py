"""Over-the-air model updates, host side (docs/OTA.md): keys, signed manifests, the serial push and the
HTTP server boards pull from. The device side is device/edgeloop/ota.py."""
from .manifest import (Manifest, ManifestError, generate_keys, key_id, load_private_key,  # noqa: F401
                       load_public_key, make_manifest, parse_manifest, runtime_version_int, sign_blob)
