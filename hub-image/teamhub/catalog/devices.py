"""Accelerators requested by Dynamic Resource Allocation (issue 27): the catalog's DeviceClasses and claims.

An accelerator kind either asks for an extended resource (`gpu: {resource: amd.com/gpu, count: 1}`, the device
plugin's way, unchanged) or for devices by DRA (`devices:`): a DeviceClass (one the chart renders from
`catalog.deviceClasses`, or one the cluster's driver installed), a count, an optional share of a device's
capacity, or alternatives in order (`firstAvailable`). From that:
  - `objects()` writes the DeviceClasses (cluster-wide, `<release fullname>-<key>`, the driver and the
    attribute equalities as CEL selectors) and one ResourceClaimTemplate `teamhub-<kind>` per DRA kind in the
    servers' namespace. Helm cannot call Python, so the chart writes the same objects itself
    (chart/templates/_devices.tpl, "teamhub.devices.objects"); tests/chart/test_device_objects.py holds the
    two equal for every values file;
  - the hub adds a claim made from the kind's template to each server's pod (`hub/devices.py`): the control
    plane creates it, owned by the pod, so nothing is left behind when the pod ends.
"""

from __future__ import annotations

from ..values.quantities import memory_bytes
from .model import Alternative, DeviceClass, Devices, gpu_text
from .queue import name as cluster_name

API_VERSION = "resource.k8s.io/v1"
POD_CLAIM = "teamhub-devices"  # the claim's name inside the pod (pod.spec.resourceClaims[].name)
REQUEST = "devices"  # the one request of every template
TEMPLATE_PREFIX = "teamhub-"  # as the servers' pods ("teamhub-<user>"): the hub's objects in that namespace
VENDORS = {"gpu.amd.com": "AMD", "gpu.nvidia.com": "NVIDIA", "mig.nvidia.com": "NVIDIA", "gpu.intel.com": "Intel"}


def template_name(kind: str) -> str:
    return f"{TEMPLATE_PREFIX}{kind}"


def class_name(catalog, fullname: str, ref: str) -> str:
    """The DeviceClass a request names: the chart's for a key of catalog.deviceClasses, else `ref` as written."""
    return cluster_name(fullname, ref) if ref in catalog.device_classes else ref


def _literal(value) -> str:
    """A selector value as a CEL literal (the schema keeps strings to characters needing no escape)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def selector_expression(cls: DeviceClass) -> str:
    """The class's driver and attribute equalities as one CEL expression. `has()` first: a device without the
    attribute (a whole GPU has no partitionProfile) must not match, and a missing key would be a runtime error."""
    attrs = f'device.attributes["{cls.driver}"]'
    terms = [f'device.driver == "{cls.driver}"']
    for attr in sorted(cls.selectors):
        terms.append(f"has({attrs}.{attr}) && {attrs}.{attr} == {_literal(cls.selectors[attr])}")
    return " && ".join(terms)


def expressions(cls: DeviceClass) -> list:
    """The DeviceClass's CEL selectors in order: the generated one, then the operator's own."""
    return [selector_expression(cls)] + ([cls.cel] if cls.cel else [])


def vendor(catalog, devices: Devices | None) -> str | None:
    """"AMD", "NVIDIA", "Intel" when every alternative's driver is known to be that vendor's, else None."""
    if devices is None:
        return None
    found = set()
    for alt in devices.alternatives:
        cls = catalog.device_classes.get(alt.device_class)
        found.add(VENDORS.get(cls.driver if cls else alt.device_class))
    return found.pop() if len(found) == 1 else None


def _article(name: str) -> str:
    """ "an" before a vowel sound: "an MI300X", "an H100", "a W7900", "an A100"."""
    head = name[:1].upper()
    spelled = len(name) > 1 and name[1:2].isupper() or name[1:2].isdigit()  # read letter by letter: "em-eye"
    return "an" if head in "AEIOU" or spelled and head in "FHLMNRSX" else "a"


def _gigabytes(memory: str) -> str:
    return f"{float(memory_bytes(memory)) / 2**30:g} GB"


def alternative_text(alt: Alternative) -> str:
    """One alternative for people: "1/4 of an MI300X (48 GB)", "an MI300X (192 GB)", "2 × MI300X (192 GB each)"
    when the class says what GPU it is; else "1 × mi300x-cpx", "1 × shared-gpu (a share: 12Gi memory)"."""
    if alt.gpu is not None:
        size = _gigabytes(alt.memory)
        if alt.share < 1:
            part = f"{gpu_text(alt.share)} of {_article(alt.gpu.name)} {alt.gpu.name} ({size})"
            return part if alt.count == 1 else f"{alt.count} × {part}"
        return f"{_article(alt.gpu.name)} {alt.gpu.name} ({size})" if alt.count == 1 else f"{alt.count} × {alt.gpu.name} ({size} each)"
    share = ", ".join(f"{q} {n}" for n, q in sorted(alt.capacity.items()))
    return f"{alt.count} × {alt.device_class}" + (f" (a share: {share})" if share else "")


def text(devices: Devices) -> str:
    """What a kind's devices are, for people: "1/4 of an MI300X (48 GB)", "1 × shared-gpu (a share: 12Gi memory)",
    "1/4 of an MI300X (48 GB), else 1 × gpu.amd.com"."""
    return ", else ".join(alternative_text(a) for a in devices.alternatives)


def _request(catalog, fullname: str, alt: Alternative) -> dict:
    req = {"deviceClassName": class_name(catalog, fullname, alt.device_class), "allocationMode": "ExactCount", "count": alt.count}
    if alt.capacity:
        req["capacity"] = {"requests": dict(alt.capacity)}
    return req


def claim_spec(catalog, fullname: str, devices: Devices) -> dict:
    if devices.first_available:
        request = {"name": REQUEST, "firstAvailable": [{"name": f"alt-{i}", **_request(catalog, fullname, a)}
                                                      for i, a in enumerate(devices.alternatives)]}
    else:
        request = {"name": REQUEST, "exactly": _request(catalog, fullname, devices.alternatives[0])}
    return {"devices": {"requests": [request]}}


def namespace(catalog, release_namespace: str) -> str:
    """Where servers (and so their claim templates) live: singleuser.namespace, else the release's."""
    return catalog.queue.namespace or release_namespace


def objects(catalog, fullname: str, release_namespace: str) -> list:
    """The DeviceClasses (key order) and ResourceClaimTemplates (kind order) for this catalog, without labels."""
    out = [{"apiVersion": API_VERSION, "kind": "DeviceClass", "metadata": {"name": cluster_name(fullname, key)},
            "spec": {"selectors": [{"cel": {"expression": e}} for e in expressions(catalog.device_classes[key])]}}
           for key in sorted(catalog.device_classes)]
    ns = namespace(catalog, release_namespace)
    for kind in sorted(catalog.accelerators):
        devices = catalog.accelerators[kind].devices
        if devices is not None:
            out.append({"apiVersion": API_VERSION, "kind": "ResourceClaimTemplate",
                        "metadata": {"name": template_name(kind), "namespace": ns},
                        "spec": {"spec": claim_spec(catalog, fullname, devices)}})
    return out


# --- what the cluster publishes (`teamhub validate --cluster`) ----------------------------------------

def fullname(values: dict, release: str) -> str:
    """The chart's "teamhub.fullname" for a release, from its values (fullnameOverride, nameOverride)."""
    name = values.get("nameOverride") or "teamhub"
    whole = values.get("fullnameOverride") or (release if name in release else f"{release}-{name}")
    return whole[:40].removesuffix("-")


def _attribute(device: dict, driver: str, name: str):
    """A device's attribute value as written in a ResourceSlice ({"string": "cpx"} -> "cpx"), by its short name or
    qualified with the driver's domain; None when the device lacks it."""
    attrs = device.get("attributes") or {}
    value = attrs.get(name) or attrs.get(f"{driver}/{name}")
    return next(iter(value.values()), None) if isinstance(value, dict) else None


def matching(cls: DeviceClass, slices: list) -> list:
    """"pool/device" of every published device the class's driver and attribute selectors match (its `cel`, if
    any, is the API server's to judge: not evaluated here)."""
    found = []
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("driver") != cls.driver:
            continue
        for device in spec.get("devices") or ():
            if all(_attribute(device, cls.driver, a) == v for a, v in cls.selectors.items()):
                found.append(f"{(spec.get('pool') or {}).get('name', '')}/{device.get('name')}")
    return found


def published(catalog, full: str, classes: list, slices: list) -> tuple[list, list]:
    """(lines, warnings) for `teamhub validate --cluster`: per DRA kind, how many devices the cluster's
    ResourceSlices publish that it could be given; a kind whose DeviceClass is missing, or that matches none."""
    names = {c.get("metadata", {}).get("name") for c in classes}
    drivers = {(s.get("spec") or {}).get("driver") for s in slices}
    lines, warnings = [], []
    for kind in sorted(catalog.accelerators):
        devs = catalog.accelerators[kind].devices
        if devs is None:
            continue
        counts, known = [], True
        for alt in devs.alternatives:
            name = class_name(catalog, full, alt.device_class)
            cls = catalog.device_classes.get(alt.device_class)
            if cls is not None:
                n = len(matching(cls, slices))
                counts.append(f"{n} of DeviceClass {name}" + ("" if cls.cel is None else " (its cel not checked)"))
                if name not in names:
                    warnings.append(f"catalog.accelerators.{kind}: DeviceClass {name} is not on the cluster yet (the chart "
                                    f"renders it from catalog.deviceClasses.{alt.device_class} at helm upgrade)")
                if n == 0:
                    continue
            elif name not in names:
                warnings.append(f"catalog.accelerators.{kind}: DeviceClass {name} does not exist on this cluster: no start of "
                                "this kind can get a device (install the vendor's DRA driver, or name a class it installs)")
                continue
            elif name in drivers:  # the driver's own class (named after it) selects every device it publishes
                n = sum(len((s.get("spec") or {}).get("devices") or ()) for s in slices if (s.get("spec") or {}).get("driver") == name)
                counts.append(f"{n} of DeviceClass {name}")
            else:
                known = False
                counts.append(f"? of DeviceClass {name} (its selectors are the cluster's)")
        total = [c for c in counts if not c.startswith(("0 ", "?"))]
        lines.append(f"{kind}: {', else '.join(counts) if counts else 'no DeviceClass'}")
        if not total and known:
            warnings.append(f"catalog.accelerators.{kind}: no device published in the cluster's ResourceSlices matches it, "
                            "so every start of this kind would wait for one")
    return lines, warnings


__all__ = ["API_VERSION", "POD_CLAIM", "Alternative", "DeviceClass", "Devices", "claim_spec", "expressions", "fullname",
           "matching", "objects", "published", "template_name", "text", "vendor"]
