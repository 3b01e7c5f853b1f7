#!/usr/bin/env python3
"""A real third-party client of namerd's io.linkerd.mesh gRPC API.

Generates Python stubs at run time from proto/proto/io/linkerd/mesh/*.proto
(with grpc_tools.protoc, into a temporary directory), then opens what a
Linkerd 1.x proxy opens: StreamBoundTree for NAME in namespace NAMESPACE,
and StreamReplicas for ID. Prints one JSON line per received message to
stdout, flushed at once:

  {"rpc": "StreamBoundTree", "n": 1, "tree": "/$/inet/127.0.0.1/8080",
   "leaves": [{"id": "/$/inet/127.0.0.1/8080", "residual": "/web"}], "message": {...}}
  {"rpc": "StreamReplicas", "n": 1, "state": "bound",
   "endpoints": ["127.0.0.1:8080"], "message": {...}}

A stream that ends prints {"rpc": ..., "end": "OK"} or
{"rpc": ..., "error": {"code": "NOT_FOUND", "details": "Root not found"}}.

Exit status: 0 once --trees bound trees and --replicas replica sets have
arrived (0 skips that stream); 1 on --timeout (a {"timeout": ...} line is
printed first); 2 if a stream ended before its count was reached.

  pip install -r tests/grpcio/requirements.txt
  python3 tests/grpcio/mesh_client.py 127.0.0.1:4321 default /svc/web \\
      /#/io.l5d.fs/web --trees 2 --replicas 1 --timeout 30
"""

import argparse
import base64
import importlib
import ipaddress
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto", "proto", "io", "linkerd", "mesh")
# The generated modules cannot live under `io/...`: Python's standard
# library already owns `io`. The .proto files are copied under this package
# name with their imports rewritten; the protobuf package (and so every gRPC
# method path, e.g. /io.linkerd.mesh.Interpreter/StreamBoundTree) is kept.
GEN_PACKAGE = "l5d_mesh_pb"


def generate_stubs(out_dir):
    from grpc_tools import protoc

    src = os.path.join(out_dir, "src")
    pkg_src = os.path.join(src, GEN_PACKAGE)
    os.makedirs(pkg_src)
    names = sorted(f for f in os.listdir(PROTO_DIR) if f.endswith(".proto"))
    for name in names:
        with open(os.path.join(PROTO_DIR, name), encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r'import "io/linkerd/mesh/', f'import "{GEN_PACKAGE}/', text)
        with open(os.path.join(pkg_src, name), "w", encoding="utf-8") as f:
            f.write(text)
    proto_include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["grpc_tools.protoc", f"-I{src}", f"-I{proto_include}",
            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [os.path.join(GEN_PACKAGE, n) for n in names]
    if protoc.main(args) != 0:
        sys.exit(f"protoc failed: {args}")
    open(os.path.join(out_dir, GEN_PACKAGE, "__init__.py"), "w").close()
    sys.path.insert(0, out_dir)
    mod = lambda m: importlib.import_module(f"{GEN_PACKAGE}.{m}")
    return {m: mod(m) for m in ["dtab_pb2", "interpreter_pb2", "interpreter_pb2_grpc",
                                "resolver_pb2", "resolver_pb2_grpc"]}


def show_path(path):
    if not path.elems:
        return "/"
    return "".join("/" + e.decode("utf-8", "backslashreplace") for e in path.elems)


def wire_path(text):
    return [seg.encode("utf-8") for seg in text.split("/") if seg]


def show_tree(tree, leaves):
    kind = tree.WhichOneof("node")
    if kind == "neg":
        return "~"
    if kind == "fail":
        return "!"
    if kind == "empty":
        return "$"
    if kind == "leaf":
        leaves.append({"id": show_path(tree.leaf.id), "residual": show_path(tree.leaf.residual)})
        return show_path(tree.leaf.id)
    if kind == "alt":
        return "(" + " | ".join(show_tree(t, leaves) for t in tree.alt.trees) + ")"
    if kind == "union":
        return "(" + " & ".join(f"{w.weight}*{show_tree(w.tree, leaves)}"
                                for w in tree.union.trees) + ")"
    return "<no node>"


def describe_replicas(rsp):
    state = rsp.WhichOneof("result") or "absent"
    out = {"state": state}
    if state == "failed":
        out["failed"] = rsp.failed.message
    if state == "bound":
        eps = []
        for e in rsp.bound.endpoints:
            ip = ipaddress.ip_address(bytes(e.address))
            eps.append(f"{ip}:{e.port}" if ip.version == 4 else f"[{ip}]:{e.port}")
        out["endpoints"] = eps
    return out


def to_dict(msg):
    from google.protobuf import json_format
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def pump(name, call, describe, events):
    """Reads one stream on its own thread and hands each event over."""
    import grpc
    try:
        for msg in call:
            events.put((name, "message", describe(msg), msg))
        events.put((name, "end", "OK", None))
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            events.put((name, "error", {"code": e.code().name, "details": e.details()}, None))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="host:port of namerd's io.l5d.mesh interface")
    parser.add_argument("namespace", help="dtab namespace, e.g. default")
    parser.add_argument("name", help="logical name to bind, e.g. /svc/web")
    parser.add_argument("id", help="concrete id to resolve, e.g. /$/inet/127.0.0.1/8080")
    parser.add_argument("--trees", type=int, default=1, help="bound trees to wait for")
    parser.add_argument("--replicas", type=int, default=1, help="replica sets to wait for")
    parser.add_argument("--skip-pending", action="store_true",
                        help="do not count (or print) pending replica sets")
    parser.add_argument("--dtab", default="", help="local dtab text sent with the bind")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args()

    import grpc
    tmp = tempfile.mkdtemp(prefix="l5d-mesh-stubs-")
    try:
        pb = generate_stubs(tmp)
        run(args, grpc, pb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, grpc, pb):
    dtab_pb2, interp, resolver = pb["dtab_pb2"], pb["interpreter_pb2"], pb["resolver_pb2"]
    channel = grpc.insecure_channel(args.address)
    events = queue.Queue()
    want = {"StreamBoundTree": args.trees, "StreamReplicas": args.replicas}
    calls = []

    if args.trees > 0:
        req = interp.BindReq(root=dtab_pb2.Path(elems=[args.namespace.encode()]),
                             name=dtab_pb2.Path(elems=wire_path(args.name)))
        if args.dtab:
            codec_dtab = read_dtab(channel, pb, args.dtab)
            req.dtab.CopyFrom(codec_dtab)
        call = pb["interpreter_pb2_grpc"].InterpreterStub(channel).StreamBoundTree(req)
        calls.append(call)

        def describe_tree(rsp):
            leaves = []
            return {"tree": show_tree(rsp.tree, leaves), "leaves": leaves}
        threading.Thread(target=pump, daemon=True,
                         args=("StreamBoundTree", call, describe_tree, events)).start()
    if args.replicas > 0:
        req = resolver.ReplicasReq(id=dtab_pb2.Path(elems=wire_path(args.id)))
        call = pb["resolver_pb2_grpc"].ResolverStub(channel).StreamReplicas(req)
        calls.append(call)
        threading.Thread(target=pump, daemon=True,
                         args=("StreamReplicas", call, describe_replicas, events)).start()

    got = {k: 0 for k in want}
    deadline = time.monotonic() + args.timeout
    status = 0
    while any(got[k] < want[k] for k in want):
        left = deadline - time.monotonic()
        try:
            rpc, kind, body, msg = events.get(timeout=max(left, 0))
        except queue.Empty:
            emit({"timeout": args.timeout, "received": got})
            status = 1
            break
        if kind == "message":
            if args.skip_pending and body.get("state") == "pending":
                continue
            got[rpc] += 1
            emit({"rpc": rpc, "n": got[rpc], **body, "message": to_dict(msg)})
        else:
            emit({"rpc": rpc, kind: body})
            if got[rpc] < want[rpc]:
                status = 2
                break
    for call in calls:
        call.cancel()
    channel.close()
    sys.exit(status)


def read_dtab(channel, pb, text):
    """Parses a local dtab with the server's own Codec service."""
    codec = importlib.import_module(f"{GEN_PACKAGE}.codec_pb2")
    codec_grpc = importlib.import_module(f"{GEN_PACKAGE}.codec_pb2_grpc")
    return codec_grpc.CodecStub(channel).ReadDtab(codec.ReadDtabReq(text=text)).dtab


def emit(obj):
    # Bytes (path labels in "message") as base64, as protobuf's JSON does.
    print(json.dumps(obj, default=lambda b: base64.b64encode(b).decode()), flush=True)


if __name__ == "__main__":
    main()
