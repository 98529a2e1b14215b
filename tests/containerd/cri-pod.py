#!/usr/bin/env python3
"""A pod of two containers through the CRI API, checked to share one sandbox.

Usage: cri-pod.py SOCKET --handler H --cordon-root DIR [--image I] [--logdir D]

Runs a pod (its sandbox container) and two containers in it with the
runtime handler H (our shim), then checks what a pod in one Cordon sandbox
means:
  - each container has its own root file system (a file one writes to its
    root is not in the other's);
  - they share the pod's IPC namespace (a POSIX message queue one makes is
    the other's), as Kubernetes pods do;
  - c1 has a PID namespace of its own (PID namespace mode CONTAINER,
    Kubernetes' default): its init is pid 1 there, and /proc shows only its
    own processes; c2 shares the pod's (mode POD, as with
    shareProcessNamespace) and sees every process of the pod;
  - under DIR (the cordon state root) the pod's sandbox container's process
    is the only sentry (`cordon boot`), the two containers' processes stand
    for their inits (`cordon exec-wait`) in that sentry;
  - stopping one container leaves the other running and reachable;
  - the pod stops and is removed.
Prints PASS/FAIL per step and "CRI pod: OK" at the end; exits non-zero on
any failure. Uses the CRI stubs of cri-smoke.py (beside this file).
"""
import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time


def cri_smoke():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("cri_smoke", os.path.join(here, "cri-smoke.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def sandbox_processes(root):
    """The host process of each container under the cordon state root, by
    what it is: {id: 'boot' | 'exec-wait' | other}."""
    kinds = {}
    for cid in os.listdir(root):
        try:
            with open(os.path.join(root, cid, "state.json")) as f:
                pid = json.load(f)["pid"]
        except (OSError, ValueError, KeyError):
            continue
        args = cmdline(pid)
        kinds[cid] = next((a for a in args[1:] if a in ("boot", "exec-wait")), " ".join(args) or "gone")
    return kinds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--handler", required=True)
    ap.add_argument("--cordon-root", required=True)
    ap.add_argument("--image", default="docker.io/cordon/busybox:latest")
    ap.add_argument("--logdir", default=None)
    a = ap.parse_args()
    import grpc
    smoke = cri_smoke()
    # cri-smoke's subset of the CRI proto, plus a container's namespace
    # options (LinuxContainerSecurityContext.namespace_options).
    smoke.PROTO = smoke.PROTO.replace(
        "message LinuxContainerConfig { LinuxContainerResources resources = 1; }",
        "message LinuxContainerSecurityContext { NamespaceOption namespace_options = 3; }\n"
        "message LinuxContainerConfig { LinuxContainerResources resources = 1;"
        " LinuxContainerSecurityContext security_context = 2; }")
    pb, pbg = smoke.load_stubs()
    rt = pbg.RuntimeServiceStub(grpc.insecure_channel("unix://" + os.path.abspath(a.socket)))
    ok = True

    def step(name, fn):
        nonlocal ok
        t0 = time.monotonic()
        try:
            r = fn()
            print(f"PASS {name} ({(time.monotonic() - t0) * 1000:.0f} ms)")
            return r
        except Exception as e:  # grpc.RpcError and assertion failures
            ok = False
            msg = e.details() if hasattr(e, "details") else repr(e)
            print(f"FAIL {name}: {msg}")
            return None

    logdir = a.logdir or tempfile.mkdtemp(prefix="cri-pod-logs-")
    os.makedirs(logdir, exist_ok=True)
    sbcfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="pod2", uid=f"uid-pod-{os.getpid()}", namespace="default", attempt=0),
        log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD))))
    sb = step(f"RunPodSandbox (handler '{a.handler}')", lambda: rt.RunPodSandbox(
        pb.RunPodSandboxRequest(config=sbcfg, runtime_handler=a.handler), timeout=120))
    if not sb:
        print("CRI pod: FAILED")
        return 1
    pod = sb.pod_sandbox_id
    ids = {}
    for name in ("c1", "c2"):
        pid_mode = pb.CONTAINER if name == "c1" else pb.POD
        linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pid_mode, ipc=pb.POD)))
        cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=a.image),
                                 command=["sh", "-c", f"echo hello-{name}; exec sleep 3600"], log_path=f"{name}.log",
                                 linux=linux)
        cc = step(f"CreateContainer {name}", lambda: rt.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg, sandbox_config=sbcfg), timeout=60))
        if cc:
            ids[name] = cc.container_id
            step(f"StartContainer {name}", lambda: rt.StartContainer(
                pb.ContainerIdRequest(container_id=ids[name]), timeout=60))

    def run(name, script):
        r = rt.ExecSync(pb.ExecSyncRequest(container_id=ids[name], cmd=["sh", "-c", script], timeout=10), timeout=30)
        return r.exit_code, r.stdout.decode(errors="replace").strip(), r.stderr.decode(errors="replace").strip()

    def logs_say_hello():
        for name in ids:
            p = os.path.join(logdir, f"{name}.log")
            for _ in range(50):
                if os.path.exists(p) and f"hello-{name}" in open(p).read():
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"hello-{name} not in {p}")

    def own_roots():
        code, out, err = run("c1", "echo one > /pod-marker && cat /pod-marker")
        assert (code, out) == (0, "one"), (code, out, err)
        code, out, err = run("c2", "cat /pod-marker")
        assert code != 0 and "No such file" in err, ("c2 sees c1's root", code, out, err)

    def one_ipc_namespace():
        code, out, err = run("c1", "touch /dev/mqueue/podq && ls /dev/mqueue")
        assert code == 0 and "podq" in out, ("c1 cannot make a queue", code, out, err)
        code, out, err = run("c2", "ls /dev/mqueue")
        assert code == 0 and "podq" in out, ("c2 does not see the pod's queue", code, out, err)

    def pid_namespaces():
        # In c1's own namespace init's sleep is pid 1 and the exec'd shell
        # the only other process; from the pod's, c2 sees the pod's
        # processes: its sandbox's, c1's and its own.
        script = "cat /proc/1/comm; for d in /proc/[0-9]*; do echo $d; done"
        code, out, err = run("c1", script)
        lines = out.split()
        assert code == 0 and lines[:2] == ["sleep", "/proc/1"] and len(lines) == 3, ("c1", code, out, err)
        code, out, err = run("c2", script)
        assert code == 0 and len(out.split()) >= 5, ("c2", code, out, err)

    def one_sentry():
        kinds = sandbox_processes(a.cordon_root)
        print(f"     {kinds}")
        assert kinds.get(pod) == "boot", f"the pod's sandbox container is no sentry: {kinds}"
        for name, cid in ids.items():
            assert kinds.get(cid) == "exec-wait", f"{name} is not in the pod's sentry: {kinds}"
        assert list(kinds.values()).count("boot") == 1, f"more than one sentry: {kinds}"

    def status(name, want):
        r = rt.ContainerStatus(pb.ContainerIdRequest(container_id=ids[name]), timeout=10)
        assert r.status.state == want, pb.ContainerState.Name(r.status.state)

    if len(ids) == 2:
        step("each container logs its hello", logs_say_hello)
        step("each container has its own root", own_roots)
        step("the containers share the pod's IPC namespace", one_ipc_namespace)
        step("c1's PID namespace is its own, c2's the pod's", pid_namespaces)
        step("one sentry for the pod", one_sentry)
        step("StopContainer c1", lambda: rt.StopContainer(
            pb.StopContainerRequest(container_id=ids["c1"], timeout=2), timeout=60))
        step("c1 EXITED, c2 RUNNING", lambda: (status("c1", pb.CONTAINER_EXITED),
                                               status("c2", pb.CONTAINER_RUNNING)))

        def c2_still_serves():
            code, out, err = run("c2", "echo still-here")
            assert (code, out) == (0, "still-here"), (code, out, err)
        step("ExecSync in c2 after c1 stopped", c2_still_serves)
        step("RemoveContainer c1", lambda: rt.RemoveContainer(pb.ContainerIdRequest(container_id=ids["c1"]),
                                                              timeout=60))
    step("StopPodSandbox", lambda: rt.StopPodSandbox(pb.PodSandboxIdRequest(pod_sandbox_id=pod), timeout=60))
    if "c2" in ids:
        step("c2 EXITED with its pod", lambda: status("c2", pb.CONTAINER_EXITED))
    step("RemovePodSandbox", lambda: rt.RemovePodSandbox(pb.PodSandboxIdRequest(pod_sandbox_id=pod), timeout=60))
    print("CRI pod:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
