"""Pod Security Standards, "restricted" profile, checked on a rendered pod (a dict as the API gets it).

The only Pod Security checker on PyPI we found (k8s-policy-guard 1.0.0) mixes rules that are not in the
standard (readOnlyRootFilesystem, service-account tokens) into its "restricted" level and accepts a
container without runAsNonRoot when it names a non-zero runAsUser, which the API server refuses. So the
documented rules are stated here, field by field, one function each:
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline + restricted, "latest").
The cluster tier checks the same pods against the real PodSecurity admission plugin.
"""

from __future__ import annotations

RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def _containers(spec):
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            yield f"{kind}[{c.get('name')}]", c


def restricted_violations(pod: dict) -> list[str]:
    """Every rule of the baseline and restricted profiles this pod breaks; [] means it is admitted."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    out = []
    # baseline
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{field} is true")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("pod is a Windows hostProcess")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"unsafe sysctl {sysctl.get('name')}")
    for ctx_name, ctx in [("pod", psc)] + [(n, c.get("securityContext") or {}) for n, c in _containers(spec)]:
        se = ctx.get("seLinuxOptions") or {}
        if se.get("type") not in (None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"):
            out.append(f"{ctx_name}: seLinuxOptions.type {se.get('type')}")
        if se.get("user") or se.get("role"):
            out.append(f"{ctx_name}: seLinuxOptions user/role set")
        if (ctx.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            out.append(f"{ctx_name}: appArmorProfile {ctx['appArmorProfile']['type']}")
    # restricted: volumes
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {vol.get('name')}: type {sorted(kinds - RESTRICTED_VOLUME_TYPES)} not allowed")
    pod_non_root = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if psc.get("runAsUser") == 0:
        out.append("pod: runAsUser is 0")
    if pod_non_root is False:
        out.append("pod: runAsNonRoot is false")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"pod: seccompProfile {pod_seccomp}")
    for name, c in _containers(spec):
        sc = c.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{name}: procMount {sc['procMount']}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort {port['hostPort']}")
        added = set(caps.get("add") or [])
        if added - BASELINE_CAPABILITIES:
            out.append(f"{name}: adds capabilities {sorted(added - BASELINE_CAPABILITIES)}")
        if added - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities other than NET_BIND_SERVICE")
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: does not drop ALL capabilities")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            out.append(f"{name}: runAsNonRoot is not true (neither on the container nor the pod)")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile is {seccomp or 'unset'} (neither on the container nor the pod)")
    return out
