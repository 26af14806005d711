#!/usr/bin/env python3
"""A small stand-in for the wasmCloud runtime-operator's scheduler (which ships for Kubernetes):
it talks to `wash host` processes over their NATS API directly, to start the composed llmkg
component on them. Used by scripts/lattice/run; needs the `nats-py` package.

  subjects (wash-runtime/src/washlet/mod.rs):
    runtime.operator.heartbeat.<host_id>      host -> operator, JSON HostHeartbeat
    runtime.host.<host_id>.heartbeat          request/reply
    runtime.host.<host_id>.workload.start     request/reply, JSON WorkloadStartRequest
    runtime.host.<host_id>.workload.status    request/reply, JSON WorkloadStatusRequest
    runtime.host.<host_id>.workload.stop      request/reply, JSON WorkloadStopRequest

usage:
  wcctl.py hosts [--wait N] [--timeout S]
  wcctl.py start  [--host ID|NAME ...] [--image REF] [--hostname H] [--workload-id ID]
  wcctl.py status --host ID|NAME --workload-id ID
  wcctl.py stop   --host ID|NAME --workload-id ID
Without --host, `start` deploys to every host seen (one after the other).
"""
import argparse
import asyncio
import json
import sys
import time

import nats

NATS_URL = "nats://127.0.0.1:4222"


async def discover(nc, wait_for, timeout, names=()):
    """Collect host heartbeats (id -> heartbeat) for up to `timeout` seconds,
    returning early once `wait_for` hosts (or every host in `names`) were seen."""
    hosts = {}
    done = asyncio.Event()

    def seen(n):
        return any(n in (h, hb.get("hostname"), hb.get("friendlyName")) for h, hb in hosts.items())

    async def on_hb(msg):
        hb = json.loads(msg.data)
        hosts[hb.get("id") or msg.subject.rsplit(".", 1)[-1]] = hb
        if names and all(seen(n) for n in names):
            done.set()
        elif not names and wait_for and len(hosts) >= wait_for:
            done.set()

    sub = await nc.subscribe("runtime.operator.heartbeat.*", cb=on_hb)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    await sub.unsubscribe()
    return hosts


def resolve(hosts, wanted):
    out = []
    for w in wanted:
        for hid, hb in hosts.items():
            if w in (hid, hb.get("hostname"), hb.get("friendlyName")):
                out.append(hid)
                break
        else:
            sys.exit(f"host {w!r} not seen in heartbeats: {[(h, hb.get('hostname')) for h, hb in hosts.items()]}")
    return out


def start_request(args):
    env = dict(kv.split("=", 1) for kv in args.env)
    mounts, volumes = [], []
    for i, spec in enumerate(args.volume):
        host_path, guest_path = spec.split(":", 1)
        name = f"vol{i}"
        volumes.append({"name": name, "hostPath": {"localPath": host_path}})
        mounts.append({"name": name, "mountPath": guest_path, "readOnly": False})
    return {
        "workloadId": args.workload_id,
        "workload": {
            "namespace": "default",
            "name": args.name,
            "annotations": {},
            "volumes": volumes,
            "witWorld": {
                "hostInterfaces": [
                    {
                        "namespace": "wasi",
                        "package": "http",
                        "interfaces": ["incoming-handler"],
                        # DynamicRouter routes by Host header (port stripped)
                        "config": {"host": args.hostname},
                    }
                ],
                "components": [
                    {
                        "name": "llmkg",
                        "image": args.image,
                        "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT",
                        "poolSize": args.pool_size,
                        "maxInvocations": -1,
                        "maxConcurrency": -1,
                        "localResources": {
                            "memoryLimitMb": -1,
                            "environment": env,
                            "config": {},
                            "volumeMounts": mounts,
                            "allowedHosts": [],
                        },
                    }
                ],
            },
        },
    }


async def rpc(nc, host_id, command, payload, timeout):
    t0 = time.monotonic()
    msg = await nc.request(f"runtime.host.{host_id}.{command}", json.dumps(payload).encode(), timeout=timeout)
    return json.loads(msg.data), time.monotonic() - t0


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["hosts", "start", "status", "stop"])
    p.add_argument("--nats", default=NATS_URL)
    p.add_argument("--host", action="append", default=[])
    p.add_argument("--wait", type=int, default=0, help="hosts to wait for before proceeding")
    p.add_argument("--timeout", type=float, default=40.0, help="heartbeat discovery timeout")
    p.add_argument("--image", required=True, help="OCI reference of the component")
    p.add_argument("--hostname", default="localhost", help="Host header the workload is bound to")
    p.add_argument("--name", default="llmkg")
    p.add_argument("--workload-id", default="llmkg")
    p.add_argument("--pool-size", type=int, default=-1)
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE (wasi:cli/environment)")
    p.add_argument("--volume", action="append", default=[], help="HOST_PATH:GUEST_PATH preopen")
    p.add_argument("--rpc-timeout", type=float, default=900.0)
    args = p.parse_args()

    nc = await nats.connect(args.nats)
    hosts = await discover(nc, args.wait or 1, args.timeout, args.host)
    if args.cmd == "hosts":
        for hid, hb in hosts.items():
            print(json.dumps({k: hb.get(k) for k in ("id", "hostname", "friendlyName", "version", "httpPort", "workloadCount", "labels")}))
        await nc.close()
        return
    targets = resolve(hosts, args.host) if args.host else list(hosts)
    if not targets:
        sys.exit("no hosts seen on runtime.operator.heartbeat.*")
    rc = 0
    for hid in targets:
        if args.cmd == "start":
            resp, dt = await rpc(nc, hid, "workload.start", start_request(args), args.rpc_timeout)
        else:
            resp, dt = await rpc(nc, hid, f"workload.{args.cmd}", {"workloadId": args.workload_id}, args.rpc_timeout)
        name = hosts[hid].get("hostname")
        print(f"{args.cmd} on {name} ({hid}) took {dt:.1f}s: {json.dumps(resp)}")
        state = (resp.get("workloadStatus") or {}).get("workloadState", "")
        if "ERROR" in str(state):
            rc = 1
    await nc.close()
    sys.exit(rc)


if __name__ == "__main__":
    asyncio.run(main())
